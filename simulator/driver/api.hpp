// What every driver entry point shares: the export attribute, the
// initialization check, and resolving the current context and a stream.
#pragma once

#include <cuda.h>

#include "driver.hpp"
#include "oomguard_sim/sim_api.h"

#define OOMGUARD_SIM_DRIVER_API extern "C" __attribute__((visibility("default")))

// An exported second name for an implementation whose ABI it shares: the
// per-thread-default-stream variants (_ptds, _ptsz) and the v1 names whose
// signature the v2 kept. `target` is the implementation's real symbol.
#define OOMGUARD_SIM_ALIAS(second_name, target) \
  extern "C" __attribute__((visibility("default"), alias(#target))) decltype(target) second_name;

// The entry point's first statement: the driver, or NOT_INITIALIZED.
#define OOMGUARD_SIM_REQUIRE_DRIVER(driver)          \
  ::oomguard::sim::Driver* driver = ::oomguard::sim::Driver::initialized(); \
  if (!driver) return CUDA_ERROR_NOT_INITIALIZED

namespace oomguard::sim {

// The calling thread's current context: CUDA_ERROR_INVALID_CONTEXT if it
// has none, CUDA_ERROR_CONTEXT_IS_DESTROYED if its primary context was
// released since.
CUresult current_context(Context*& context);
CUresult current_device(Device*& device);

// The Stream of a handle: 0 and CU_STREAM_LEGACY are the current device's
// legacy default stream, CU_STREAM_PER_THREAD its per-thread one.
CUresult resolve_stream(Driver& driver, CUstream handle, Stream*& stream);

// Note [Stream capture]: CUDA_SUCCESS if the calling thread may make a
// potentially unsafe call now; otherwise invalidates the offended capture
// and returns CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED.
CUresult check_capture_safe(Driver& driver);

// With the primary context's device mutex held: create it (charging the
// context bytes) if it is not active. CUDA_ERROR_OUT_OF_MEMORY if the
// device cannot hold them.
CUresult activate_context_locked(Context& context);

// The first step of every stream-ordered operation: resolves the stream
// and, if it is capturing, adds a node of `type` to the capture's graph
// (`captured` is then true and the caller does not do the work).
// CUDA_ERROR_STREAM_CAPTURE_INVALIDATED if the capture was invalidated.
CUresult stream_operation(Driver& driver, CUstream handle, CUgraphNodeType type, bool& captured,
                          KernelRecord* kernel = nullptr, GraphNode** node = nullptr);

// Forgets a graph and its nodes (cuGraphDestroy, an invalidated capture).
void destroy_graph(Driver& driver, Graph* graph);

// A synchronization point for `device` (or every device): pools trim to
// their release thresholds (Note [Pools]).
void synchronize_device(Device& device);

}  // namespace oomguard::sim
