// Events: the driver's (cudaEvent_t is CUevent, the flags share their
// bits). Nothing is ever pending, so a recorded event is complete.
#include "runtime.hpp"

using namespace oomguard::sim::runtime;

static_assert(cudaEventDisableTiming == CU_EVENT_DISABLE_TIMING);
static_assert(cudaEventInterprocess == CU_EVENT_INTERPROCESS);
static_assert(cudaEventRecordExternal == CU_EVENT_RECORD_EXTERNAL);

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags) {
  if (!event) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  return check(cuEventCreate(event, flags));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaEventCreate(cudaEvent_t* event) {
  return cudaEventCreateWithFlags(event, cudaEventDefault);
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaEventDestroy(cudaEvent_t event) {
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  return check(cuEventDestroy(event));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  return check(cuEventRecord(event, stream));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaEventRecordWithFlags(cudaEvent_t event, cudaStream_t stream,
                                                              unsigned int flags) {
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  return check(cuEventRecordWithFlags(event, stream, flags));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaEventQuery(cudaEvent_t event) {
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  const CUresult result = cuEventQuery(event);
  return result == CUDA_ERROR_NOT_READY ? cudaErrorNotReady : check(result);  // an answer, not a failure
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  return check(cuEventSynchronize(event));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaEventElapsedTime(float* milliseconds, cudaEvent_t start, cudaEvent_t end) {
  if (!milliseconds) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  return check(cuEventElapsedTime(milliseconds, start, end));
}
