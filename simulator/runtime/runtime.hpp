// What every entry point of the simulated runtime (libcudart.so.13) shares:
// the export attribute, the per-thread last error, the translation of the
// driver's CUresult, and the per-thread current device with its primary
// context.
//
// Note [A thin runtime]
// The real libcudart is a translation layer over the driver API: it keeps
// a current device per thread, makes that device's primary context current
// on first use, turns CUresult into cudaError_t and remembers the last
// error. This one is the same and nothing more: every object (memory,
// streams, events, pools, graphs, kernels) lives in the simulated driver,
// reached through cuda.h as a real program would, plus the few calls of
// oomguard_sim/sim_api.h that the driver API has no word for. The runtime's
// handle types are the driver's (cudaStream_t is CUstream, cudaEvent_t is
// CUevent, cudaGraph_t is CUgraph, cudaMemPool_t is CUmemoryPool), so
// handles pass through untouched.
#pragma once

#include <cuda.h>
#include <cuda_runtime_api.h>

#define OOMGUARD_SIM_RUNTIME_API extern "C" __attribute__((visibility("default")))

namespace oomguard::sim::runtime {

// The runtime's code for a driver result (CUDA_ERROR_OUT_OF_MEMORY is
// cudaErrorMemoryAllocation, CUDA_ERROR_INVALID_HANDLE is
// cudaErrorInvalidResourceHandle, ...).
cudaError_t to_runtime_error(CUresult result);

// Note [Last error]
// Every failing runtime call stores its code as the calling thread's last
// error; cudaGetLastError returns and clears it, cudaPeekAtLastError only
// returns it. A GPU also has "sticky" errors (a kernel fault poisons the
// context until it is destroyed); no kernel runs here, so none arises and
// every error is the ordinary, clearable kind.
cudaError_t fail(cudaError_t error);
inline cudaError_t check(CUresult result) {
  return result == CUDA_SUCCESS ? cudaSuccess : fail(to_runtime_error(result));
}

// The driver initialized (cuInit once per process): cudaSuccess,
// cudaErrorNoDevice or cudaErrorInitializationError. Needs no context.
cudaError_t initialize();
// Number of devices once initialized (0 before).
int device_count();

// Note [Current device]
// Each thread has a current device (0 until cudaSetDevice) and binds that
// device's primary context the first time a call needs one, retaining it
// in the driver (which charges the context's memory then, as a GPU does).
// cudaGetDevice and the property queries need no context; allocation,
// streams, events, launches do. cudaSetDevice binds at once, as since
// CUDA 12.
cudaError_t require_context();
int current_device();
cudaError_t set_current_device(int ordinal);
// The primary context of `ordinal`, retained on first use; nullptr when out
// of range or the driver refused it (the CUresult then in `error`).
CUcontext primary_context(int ordinal, CUresult& error);

// A device attribute, or `fallback` if the driver has none for it.
int attribute(CUdevice_attribute which, int ordinal, int fallback = 0);

// The limits a launch is checked against (Note [Launch validation]).
struct LaunchLimits {
  unsigned max_threads_per_block;
  unsigned max_block[3];
  unsigned max_grid[3];
  std::size_t max_shared_optin;
  std::size_t default_shared;
  // For the occupancy calculator.
  unsigned max_threads_per_sm;
  unsigned max_blocks_per_sm;
  unsigned registers_per_sm;
  std::size_t shared_per_sm;
  std::size_t reserved_shared_per_block;
  int major;
  int minor;
};
// `ordinal` must be a valid device (initialize() has succeeded).
const LaunchLimits& launch_limits(int ordinal);

}  // namespace oomguard::sim::runtime

namespace oomguard::sim::runtime {

// A registered __device__ / __constant__ variable (__cudaRegisterVar): its
// simulated device address and size; false if `symbol` is no registered
// host shadow.
bool find_symbol(const void* symbol, CUdeviceptr& address, std::size_t& size);

// As a driver pointer.
inline CUdeviceptr device_pointer(const void* pointer) { return reinterpret_cast<CUdeviceptr>(pointer); }

}  // namespace oomguard::sim::runtime
