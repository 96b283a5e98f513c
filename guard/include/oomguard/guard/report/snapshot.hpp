// snapshot.pickle: the live allocations and recent events in the format
// pytorch.org/memory_viz loads (torch.cuda.memory._snapshot()'s shape).
//
// Note [A snapshot built from the Ledger]
// The Ledger knows tensors, not the caching allocator's segments, so each
// live allocation becomes a one-block segment of its own size: the viewer's
// "Active Memory Timeline" (which reads device_traces) is exact, the
// "Allocator State History" shows tensors rather than segments. The host
// (cpu mode) is shown as device 0 when no accelerator was seen. Every trace
// entry carries its `category`; the viewer needs `unknown` among them (it
// throws otherwise), so when no event is unknown a `snapshot` entry of size 0
// carrying `unknown` is appended.
#pragma once

#include <string>

namespace oomguard::guard::report {

// The pickle bytes, streamed (no tree): one pass over the live allocations
// and one over the recent events.
std::string build_snapshot_pickle();

}  // namespace oomguard::guard::report
