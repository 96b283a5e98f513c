// Stream-ordered allocation (cudaMallocAsync) and memory pools: the driver
// owns the pools (Note [Pools] in the driver), the runtime passes through.
#include "runtime.hpp"

using namespace oomguard::sim::runtime;

// The runtime's pool structures are the driver's, field for field.
static_assert(sizeof(cudaMemPoolProps) == sizeof(CUmemPoolProps));
static_assert(sizeof(cudaMemAccessDesc) == sizeof(CUmemAccessDesc));
static_assert(sizeof(cudaMemLocation) == sizeof(CUmemLocation));
static_assert(static_cast<int>(cudaMemPoolAttrReleaseThreshold) == static_cast<int>(CU_MEMPOOL_ATTR_RELEASE_THRESHOLD));
static_assert(static_cast<int>(cudaMemPoolAttrUsedMemHigh) == static_cast<int>(CU_MEMPOOL_ATTR_USED_MEM_HIGH));

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaMallocAsync(void** pointer, std::size_t size, cudaStream_t stream) {
  if (!pointer) return fail(cudaErrorInvalidValue);
  *pointer = nullptr;
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  if (size == 0) return cudaSuccess;
  CUdeviceptr address = 0;
  const cudaError_t error = check(cuMemAllocAsync(&address, size, stream));
  if (error == cudaSuccess) *pointer = reinterpret_cast<void*>(address);
  return error;
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaMallocFromPoolAsync(void** pointer, std::size_t size, cudaMemPool_t pool,
                                                             cudaStream_t stream) {
  if (!pointer || !pool) return fail(cudaErrorInvalidValue);
  *pointer = nullptr;
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  if (size == 0) return cudaSuccess;
  CUdeviceptr address = 0;
  const cudaError_t error = check(cuMemAllocFromPoolAsync(&address, size, pool, stream));
  if (error == cudaSuccess) *pointer = reinterpret_cast<void*>(address);
  return error;
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaFreeAsync(void* pointer, cudaStream_t stream) {
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  if (!pointer) return cudaSuccess;
  return check(cuMemFreeAsync(device_pointer(pointer), stream));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t* pool, int device) {
  if (!pool) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = initialize(); error != cudaSuccess) return fail(error);
  if (device < 0 || device >= device_count()) return fail(cudaErrorInvalidDevice);
  return check(cuDeviceGetDefaultMemPool(pool, device));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaDeviceGetMemPool(cudaMemPool_t* pool, int device) {
  if (!pool) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = initialize(); error != cudaSuccess) return fail(error);
  if (device < 0 || device >= device_count()) return fail(cudaErrorInvalidDevice);
  return check(cuDeviceGetMemPool(pool, device));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaDeviceSetMemPool(int device, cudaMemPool_t pool) {
  if (const cudaError_t error = initialize(); error != cudaSuccess) return fail(error);
  if (device < 0 || device >= device_count()) return fail(cudaErrorInvalidDevice);
  return check(cuDeviceSetMemPool(device, pool));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaMemPoolCreate(cudaMemPool_t* pool, const cudaMemPoolProps* properties) {
  if (!pool || !properties) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  return check(cuMemPoolCreate(pool, reinterpret_cast<const CUmemPoolProps*>(properties)));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaMemPoolDestroy(cudaMemPool_t pool) {
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  return check(cuMemPoolDestroy(pool));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaMemPoolTrimTo(cudaMemPool_t pool, std::size_t keep) {
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  return check(cuMemPoolTrimTo(pool, keep));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attribute,
                                                             void* value) {
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  return check(cuMemPoolSetAttribute(pool, static_cast<CUmemPool_attribute>(attribute), value));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaMemPoolGetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attribute,
                                                             void* value) {
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  return check(cuMemPoolGetAttribute(pool, static_cast<CUmemPool_attribute>(attribute), value));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaMemPoolSetAccess(cudaMemPool_t pool, const cudaMemAccessDesc* descriptions,
                                                          std::size_t count) {
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  return check(cuMemPoolSetAccess(pool, reinterpret_cast<const CUmemAccessDesc*>(descriptions), count));
}

OOMGUARD_SIM_RUNTIME_API cudaError_t cudaMemPoolGetAccess(cudaMemAccessFlags* flags, cudaMemPool_t pool,
                                                          cudaMemLocation* location) {
  if (!flags || !location) return fail(cudaErrorInvalidValue);
  if (const cudaError_t error = require_context(); error != cudaSuccess) return error;
  CUmemAccess_flags driver_flags = CU_MEM_ACCESS_FLAGS_PROT_NONE;
  const cudaError_t error =
      check(cuMemPoolGetAccess(&driver_flags, pool, reinterpret_cast<CUmemLocation*>(location)));
  if (error == cudaSuccess) *flags = static_cast<cudaMemAccessFlags>(driver_flags);
  return error;
}
