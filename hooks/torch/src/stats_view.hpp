// The shape oomguard.stats() returns, built from the Ledger in one place.
#pragma once

#include <string>

namespace oomguard::torch_hooks {

// "cpu" for kCpuDevice, "cuda:N" otherwise.
std::string device_name(int device);

// JSON text: {"devices": {name: {"current", "peak", "allocated",
// "peak_allocated", "reserved", "peak_reserved", "live_allocations",
// "peak_breakdown" (current by category at peak_allocated), "peak_step",
// "peak_phase"}},
// "steps": [{"step", "device", "peak_allocated", "peak_by_category"}],
// "step", "phase", "counters", "cpu_budget": {"limit", "used"}}.
std::string stats_json();

}  // namespace oomguard::torch_hooks
