// Error codes: the CUresult -> cudaError_t translation, the per-thread
// last error (Note [Last error]) and the names and descriptions of every
// code.
#include <cstddef>

#include "unsupported.hpp"

#include "runtime.hpp"

namespace oomguard::sim::runtime {
namespace {

// Note [Error numbering]
// Since CUDA 10.1 every CUresult that has a runtime counterpart carries the
// same number as that cudaError_t (CUDA_ERROR_OUT_OF_MEMORY and
// cudaErrorMemoryAllocation are both 2, CUDA_ERROR_INVALID_HANDLE and
// cudaErrorInvalidResourceHandle both 400). The translation is therefore
// the identity for every number the runtime knows, and cudaErrorUnknown for
// a driver code it has no name for. The assertions below pin the pairs a
// program acts on, so a header that broke the rule would stop the build.
#define OOMGUARD_SIM_SAME_CODE(driver, runtime_code) \
  static_assert(static_cast<int>(driver) == static_cast<int>(runtime_code), #driver " must equal " #runtime_code)
OOMGUARD_SIM_SAME_CODE(CUDA_ERROR_INVALID_VALUE, cudaErrorInvalidValue);
OOMGUARD_SIM_SAME_CODE(CUDA_ERROR_OUT_OF_MEMORY, cudaErrorMemoryAllocation);
OOMGUARD_SIM_SAME_CODE(CUDA_ERROR_NOT_INITIALIZED, cudaErrorInitializationError);
OOMGUARD_SIM_SAME_CODE(CUDA_ERROR_DEINITIALIZED, cudaErrorCudartUnloading);
OOMGUARD_SIM_SAME_CODE(CUDA_ERROR_NO_DEVICE, cudaErrorNoDevice);
OOMGUARD_SIM_SAME_CODE(CUDA_ERROR_INVALID_DEVICE, cudaErrorInvalidDevice);
OOMGUARD_SIM_SAME_CODE(CUDA_ERROR_INVALID_IMAGE, cudaErrorInvalidKernelImage);
OOMGUARD_SIM_SAME_CODE(CUDA_ERROR_INVALID_CONTEXT, cudaErrorDeviceUninitialized);
OOMGUARD_SIM_SAME_CODE(CUDA_ERROR_NO_BINARY_FOR_GPU, cudaErrorNoKernelImageForDevice);
OOMGUARD_SIM_SAME_CODE(CUDA_ERROR_INVALID_HANDLE, cudaErrorInvalidResourceHandle);
OOMGUARD_SIM_SAME_CODE(CUDA_ERROR_ILLEGAL_STATE, cudaErrorIllegalState);
OOMGUARD_SIM_SAME_CODE(CUDA_ERROR_NOT_FOUND, cudaErrorSymbolNotFound);
OOMGUARD_SIM_SAME_CODE(CUDA_ERROR_NOT_READY, cudaErrorNotReady);
OOMGUARD_SIM_SAME_CODE(CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES, cudaErrorLaunchOutOfResources);
OOMGUARD_SIM_SAME_CODE(CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED, cudaErrorPeerAccessAlreadyEnabled);
OOMGUARD_SIM_SAME_CODE(CUDA_ERROR_PEER_ACCESS_NOT_ENABLED, cudaErrorPeerAccessNotEnabled);
OOMGUARD_SIM_SAME_CODE(CUDA_ERROR_PRIMARY_CONTEXT_ACTIVE, cudaErrorSetOnActiveProcess);
OOMGUARD_SIM_SAME_CODE(CUDA_ERROR_CONTEXT_IS_DESTROYED, cudaErrorContextIsDestroyed);
OOMGUARD_SIM_SAME_CODE(CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED, cudaErrorHostMemoryAlreadyRegistered);
OOMGUARD_SIM_SAME_CODE(CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED, cudaErrorHostMemoryNotRegistered);
OOMGUARD_SIM_SAME_CODE(CUDA_ERROR_NOT_PERMITTED, cudaErrorNotPermitted);
OOMGUARD_SIM_SAME_CODE(CUDA_ERROR_NOT_SUPPORTED, cudaErrorNotSupported);
OOMGUARD_SIM_SAME_CODE(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, cudaErrorStreamCaptureUnsupported);
OOMGUARD_SIM_SAME_CODE(CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, cudaErrorStreamCaptureInvalidated);
OOMGUARD_SIM_SAME_CODE(CUDA_ERROR_STREAM_CAPTURE_UNMATCHED, cudaErrorStreamCaptureUnmatched);
OOMGUARD_SIM_SAME_CODE(CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD, cudaErrorStreamCaptureWrongThread);
OOMGUARD_SIM_SAME_CODE(CUDA_ERROR_STREAM_CAPTURE_IMPLICIT, cudaErrorStreamCaptureImplicit);
OOMGUARD_SIM_SAME_CODE(CUDA_ERROR_CAPTURED_EVENT, cudaErrorCapturedEvent);
OOMGUARD_SIM_SAME_CODE(CUDA_ERROR_UNKNOWN, cudaErrorUnknown);
#undef OOMGUARD_SIM_SAME_CODE

struct ErrorText {
  cudaError_t code;
  const char* name;
  const char* description;
};

constexpr ErrorText kErrors[] = {
#define OOMGUARD_SIM_RUNTIME_ERROR(code, description) {code, #code, description},
#include "runtime_errors.def"
#undef OOMGUARD_SIM_RUNTIME_ERROR
};

const ErrorText* find(int code) {
  for (const ErrorText& error : kErrors) {
    if (static_cast<int>(error.code) == code) return &error;
  }
  return nullptr;
}

thread_local cudaError_t t_last_error = cudaSuccess;

}  // namespace

cudaError_t to_runtime_error(CUresult result) {
  const ErrorText* known = find(static_cast<int>(result));
  return known ? known->code : cudaErrorUnknown;
}

cudaError_t fail(cudaError_t error) {
  if (error != cudaSuccess) t_last_error = error;
  return error;
}

}  // namespace oomguard::sim::runtime

using namespace oomguard::sim::runtime;

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaGetLastError(void) {
  const cudaError_t error = t_last_error;
  t_last_error = cudaSuccess;
  return error;
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaPeekAtLastError(void) { return t_last_error; }

// As the real runtime: an unknown code is named "cudaErrorUnknown" and
// described as "unknown error" rather than returning NULL, which callers
// would print.
OOMGUARD_SIM_RUNTIME_API const char* cudaGetErrorName(cudaError_t error) {
  const ErrorText* known = find(static_cast<int>(error));
  return known ? known->name : "cudaErrorUnknown";
}

OOMGUARD_SIM_RUNTIME_API const char* cudaGetErrorString(cudaError_t error) {
  const ErrorText* known = find(static_cast<int>(error));
  return known ? known->description : "unknown error";
}

namespace oomguard::sim::runtime {

int record_unsupported(int code) { return static_cast<int>(fail(static_cast<cudaError_t>(code))); }

}  // namespace oomguard::sim::runtime
