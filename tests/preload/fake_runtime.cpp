// libfake_cudart.so: a host-backed stand-in for the CUDA runtime with the real
// symbol names and types (see fake_driver.cpp).
//
// Unlike the real cudart (which reaches the driver through a private table),
// cudaMalloc and cudaFree here call the exported cuMemAlloc_v2/cuMemFree_v2,
// and cudaGetDriverEntryPoint calls the exported cuGetProcAddress_v2: so
// under LD_PRELOAD an interposed call runs another interposed call inside it,
// which is the re-entry the preload library must count once.
#include <cuda.h>
#include <cuda_runtime_api.h>

#include "fake_device.hpp"

extern "C" {

cudaError_t cudaMalloc(void** devPtr, size_t size) {
  if (devPtr == nullptr) return cudaErrorInvalidValue;
  if (size == 0) {
    *devPtr = nullptr;
    return cudaSuccess;
  }
  CUdeviceptr p = 0;
  const CUresult status = cuMemAlloc_v2(&p, size);
  if (status == CUDA_ERROR_OUT_OF_MEMORY) return cudaErrorMemoryAllocation;
  if (status != CUDA_SUCCESS) return cudaErrorInvalidValue;
  *devPtr = reinterpret_cast<void*>(p);
  return cudaSuccess;
}

cudaError_t cudaFree(void* devPtr) {
  return cuMemFree_v2(reinterpret_cast<CUdeviceptr>(devPtr)) == CUDA_SUCCESS ? cudaSuccess : cudaErrorInvalidValue;
}

cudaError_t cudaMallocAsync(void** devPtr, size_t size, cudaStream_t) {
  if (devPtr == nullptr || size == 0) return cudaErrorInvalidValue;
  return fake_device_alloc(devPtr, size) == 0 ? cudaSuccess : cudaErrorMemoryAllocation;
}

cudaError_t cudaFreeAsync(void* devPtr, cudaStream_t) {
  if (devPtr != nullptr) fake_device_free(devPtr);
  return cudaSuccess;
}

cudaError_t cudaMallocManaged(void** devPtr, size_t size, unsigned int) {
  if (devPtr == nullptr || size == 0) return cudaErrorInvalidValue;
  return fake_device_alloc(devPtr, size) == 0 ? cudaSuccess : cudaErrorMemoryAllocation;
}

cudaError_t cudaGetDevice(int* device) {
  if (device == nullptr) return cudaErrorInvalidValue;
  *device = fake_current_device();
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  if (device < 0 || device >= fake_device_count()) return cudaErrorInvalidDevice;
  fake_set_current_device(device);
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  if (free_bytes == nullptr || total_bytes == nullptr) return cudaErrorInvalidValue;
  *total_bytes = fake_device_total_bytes();
  *free_bytes = *total_bytes - fake_device_used_bytes(fake_current_device());
  return cudaSuccess;
}

cudaError_t cudaGetDriverEntryPointByVersion(const char* symbol, void** funcPtr, unsigned int cudaVersion,
                                             unsigned long long flags, cudaDriverEntryPointQueryResult* status) {
  CUdriverProcAddressQueryResult driver_status{};
  const CUresult result =
      cuGetProcAddress_v2(symbol, funcPtr, static_cast<int>(cudaVersion), flags, &driver_status);
  if (status != nullptr) {
    *status = result == CUDA_SUCCESS ? cudaDriverEntryPointSuccess : cudaDriverEntryPointSymbolNotFound;
  }
  return result == CUDA_SUCCESS ? cudaSuccess : cudaErrorSymbolNotFound;
}

cudaError_t cudaGetDriverEntryPoint(const char* symbol, void** funcPtr, unsigned long long flags,
                                    cudaDriverEntryPointQueryResult* status) {
  return cudaGetDriverEntryPointByVersion(symbol, funcPtr, CUDART_VERSION, flags, status);
}

}  // extern "C"
