// Driver entry points by name (cudaGetDriverEntryPoint*): the simulated
// driver's own functions, from its cuGetProcAddress. torch's
// c10::cuda::DriverAPI asks for its ~32 names here (cuMemCreate,
// cuMemAddressReserve, cuMemMap, ... for expandable segments) rather than
// linking libcuda.
#include <cuda_profiler_api.h>

#include <cstring>

#include "runtime.hpp"

using namespace oomguard::sim::runtime;

static_assert(static_cast<int>(cudaDriverEntryPointSymbolNotFound) == static_cast<int>(CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND));
static_assert(static_cast<int>(cudaDriverEntryPointVersionNotSufficent) ==
              static_cast<int>(CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT));

// As the real runtime: a name the driver lacks is no error, it is said in
// `status` (callers test that and fall back).
OOMGUARD_SIM_RUNTIME_API cudaError_t cudaGetDriverEntryPointByVersion(const char* symbol, void** function,
                                                                      unsigned int version, unsigned long long flags,
                                                                      cudaDriverEntryPointQueryResult* status) {
  if (!symbol || !function) return fail(cudaErrorInvalidValue);
  *function = nullptr;
  if (const cudaError_t error = initialize(); error != cudaSuccess) return fail(error);
  CUdriverProcAddressQueryResult found = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
  const CUresult result = cuGetProcAddress(symbol, function, static_cast<int>(version), flags, &found);
  if (status) *status = static_cast<cudaDriverEntryPointQueryResult>(found);
  if (result == CUDA_ERROR_NOT_FOUND || found != CU_GET_PROC_ADDRESS_SUCCESS) {
    *function = nullptr;
    return cudaSuccess;
  }
  return check(result);
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaGetDriverEntryPoint(const char* symbol, void** function,
                                                             unsigned long long flags,
                                                             cudaDriverEntryPointQueryResult* status) {
  return cudaGetDriverEntryPointByVersion(symbol, function, CUDART_VERSION, flags, status);
}

// No profiler is attached to a simulated device; starting and stopping
// one is a successful no-op, as it is on a GPU without a profiler.
OOMGUARD_SIM_RUNTIME_API cudaError_t cudaProfilerStart(void) { return cudaSuccess; }
OOMGUARD_SIM_RUNTIME_API cudaError_t cudaProfilerStop(void) { return cudaSuccess; }

// A value, not a call on the device: returned by value, so it cannot be one
// of the int-returning unsupported stubs.
OOMGUARD_SIM_RUNTIME_API cudaChannelFormatDesc cudaCreateChannelDesc(int x, int y, int z, int w,
                                                                     cudaChannelFormatKind kind) {
  return cudaChannelFormatDesc{x, y, z, w, kind};
}
