// Streams and host callbacks: the driver's streams under the runtime's
// names (cudaStream_t is CUstream; cudaStreamLegacy and
// cudaStreamPerThread are CU_STREAM_LEGACY and CU_STREAM_PER_THREAD).
#include <new>

#include "runtime.hpp"

using namespace oomguard::sim::runtime;

static_assert(cudaStreamNonBlocking == CU_STREAM_NON_BLOCKING);

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaStreamCreateWithPriority(cudaStream_t* stream, unsigned int flags,
                                                                  int priority) {
  if (!stream) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  return check(cuStreamCreateWithPriority(stream, flags, priority));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags) {
  return cudaStreamCreateWithPriority(stream, flags, 0);
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaStreamCreate(cudaStream_t* stream) {
  return cudaStreamCreateWithPriority(stream, cudaStreamDefault, 0);
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  return check(cuStreamDestroy(stream));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaStreamQuery(cudaStream_t stream) {
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  // cudaErrorNotReady is an answer, not a failure: it does not become the
  // last error on a GPU either.
  const CUresult result = cuStreamQuery(stream);
  return result == CUDA_ERROR_NOT_READY ? cudaErrorNotReady : check(result);
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  return check(cuStreamSynchronize(stream));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags) {
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  return check(cuStreamWaitEvent(stream, event, flags));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaStreamGetPriority(cudaStream_t stream, int* priority) {
  if (!priority) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  return check(cuStreamGetPriority(stream, priority));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaStreamGetFlags(cudaStream_t stream, unsigned int* flags) {
  if (!flags) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  return check(cuStreamGetFlags(stream, flags));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaStreamGetId(cudaStream_t stream, unsigned long long* id) {
  if (!id) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  return check(cuStreamGetId(stream, id));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaStreamGetDevice(cudaStream_t stream, int* device) {
  if (!device) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  CUdevice driver_device = 0;
  const cudaError_t error = check(cuStreamGetDevice(stream, &driver_device));
  if (error == cudaSuccess) *device = driver_device;
  return error;
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaStreamGetAttribute(cudaStream_t stream, cudaStreamAttrID attribute,
                                                            cudaStreamAttrValue* value) {
  if (!value) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  return check(cuStreamGetAttribute(stream, static_cast<CUstreamAttrID>(attribute),
                                    reinterpret_cast<CUstreamAttrValue*>(value)));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaStreamSetAttribute(cudaStream_t stream, cudaStreamAttrID attribute,
                                                            const cudaStreamAttrValue* value) {
  if (!value) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  return check(cuStreamSetAttribute(stream, static_cast<CUstreamAttrID>(attribute),
                                    reinterpret_cast<const CUstreamAttrValue*>(value)));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaLaunchHostFunc(cudaStream_t stream, cudaHostFn_t function, void* user_data) {
  if (!function) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  return check(cuLaunchHostFunc(stream, function, user_data));
}

namespace {

// A runtime callback takes a cudaError_t where the driver's takes a
// CUresult: the driver calls this trampoline, which translates.
struct RuntimeCallback {
  cudaStreamCallback_t callback;
  void* user_data;
};

void CUDA_CB run_runtime_callback(CUstream stream, CUresult status, void* data) {
  auto* pending = static_cast<RuntimeCallback*>(data);
  pending->callback(stream, status == CUDA_SUCCESS ? cudaSuccess : to_runtime_error(status), pending->user_data);
  delete pending;
}

}  // namespace

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaStreamAddCallback(cudaStream_t stream, cudaStreamCallback_t callback,
                                                           void* user_data, unsigned int flags) {
  if (!callback || flags != 0) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  auto* pending = new (std::nothrow) RuntimeCallback{callback, user_data};
  if (!pending) return fail(cudaErrorMemoryAllocation);
  const CUresult result = cuStreamAddCallback(stream, run_runtime_callback, pending, 0);
  if (result != CUDA_SUCCESS) delete pending;  // never queued, never run
  return check(result);
}
