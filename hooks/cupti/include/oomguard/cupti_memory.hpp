// CUPTI as an event source: every driver-API memory call of the process
// (allocation, free, virtual-memory create/release/map/unmap, stream-ordered
// pool allocations) as a segment-level Ledger record in `non_torch`, and the
// library each allocation came from, from MEMORY2 activity records.
//
// Note [Sharing CUPTI with torch.profiler and Nsight]
// A process has one CUPTI callback subscriber. The CUDA 13.0 headers offer
// cuptiSubscribe_v2, which still admits one subscriber but names the one
// already there (oldSubscriberName); there is no multi-subscriber flag in
// this CUPTI. So start_memory_tracking() tries once and, if Kineto
// (torch.profiler), Nsight or another tool holds CUPTI, steps aside with one
// message naming it; it never takes CUPTI away from a profiler. Start it
// before the profiler, or use the preload library, which conflicts with
// nothing.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace oomguard::cupti {

enum class TrackingState {
  active,              // callbacks and activity records enabled
  another_subscriber,  // a profiler holds CUPTI: we stepped aside
  unavailable,         // no driver, no GPU, or CUPTI failed to initialize
};

struct TrackingStatus {
  TrackingState state = TrackingState::unavailable;
  std::string message;  // one line, for the user
};

// Subscribe and enable the memory callbacks and MEMORY2 records. Idempotent.
TrackingStatus start_memory_tracking();
// Flush the activity buffers, disable and unsubscribe. Safe if not started.
void stop_memory_tracking();
TrackingStatus tracking_status();

// Bytes live per originating library ("libcublasLt.so.13", ...) seen in
// MEMORY2 records since start; an empty name when CUPTI did not give one.
std::map<std::string, std::int64_t> live_bytes_by_library();

}  // namespace oomguard::cupti
