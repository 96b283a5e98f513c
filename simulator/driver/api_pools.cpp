// Stream-ordered allocation (Note [Pools]).
#include <mutex>

#include "api.hpp"

using namespace oomguard::sim;

namespace {

CUresult allocate_from(Driver& driver, MemoryPool& pool, std::size_t size, CUdeviceptr* pointer, CUstream stream) {
  if (!pointer || size == 0) return CUDA_ERROR_INVALID_VALUE;
  bool captured = false;
  GraphNode* node = nullptr;
  if (CUresult r = stream_operation(driver, stream, CU_GRAPH_NODE_TYPE_MEM_ALLOC, captured, nullptr, &node);
      r != CUDA_SUCCESS) {
    return r;
  }
  std::uintptr_t address = 0;
  if (CUresult r = pool.allocate(size, address); r != CUDA_SUCCESS) return r;
  Device& device = pool.device();
  {
    std::lock_guard lock(device.mutex);
    device.regions.emplace(address, Region{size, MemoryPool::block_size(size), RegionKind::pool_block, &pool});
  }
  if (node) {
    node->address = address;
    node->bytes = size;
  }
  *pointer = address;
  return CUDA_SUCCESS;
}

}  // namespace

OOMGUARD_SIM_DRIVER_API CUresult cuMemAllocAsync(CUdeviceptr* pointer, size_t size, CUstream stream_handle) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  Stream* stream = nullptr;
  if (CUresult r = resolve_stream(*driver, stream_handle, stream); r != CUDA_SUCCESS) return r;
  MemoryPool* pool = nullptr;
  {
    std::lock_guard lock(stream->device->mutex);
    pool = stream->device->current_pool;
  }
  return allocate_from(*driver, *pool, size, pointer, stream_handle);
}

OOMGUARD_SIM_DRIVER_API CUresult cuMemAllocFromPoolAsync(CUdeviceptr* pointer, size_t size, CUmemoryPool handle,
                                                         CUstream stream) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  MemoryPool* pool = driver->pools.find(handle);
  if (!pool) return CUDA_ERROR_INVALID_VALUE;
  return allocate_from(*driver, *pool, size, pointer, stream);
}

OOMGUARD_SIM_DRIVER_API CUresult cuMemFreeAsync(CUdeviceptr pointer, CUstream stream) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (pointer == 0) return CUDA_SUCCESS;
  Device* device = driver->device_of(pointer);
  if (!device) return CUDA_ERROR_INVALID_VALUE;
  bool captured = false;
  if (CUresult r = stream_operation(*driver, stream, CU_GRAPH_NODE_TYPE_MEM_FREE, captured); r != CUDA_SUCCESS) {
    return r;
  }
  // Stream-ordered in CUDA; freed now here (a cuMemAlloc'd pointer too).
  return device->free_allocation(pointer, "cuMemFreeAsync");
}

OOMGUARD_SIM_DRIVER_API CUresult cuDeviceGetDefaultMemPool(CUmemoryPool* handle, CUdevice ordinal) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!handle) return CUDA_ERROR_INVALID_VALUE;
  Device* device = driver->device(ordinal);
  if (!device) return CUDA_ERROR_INVALID_DEVICE;
  std::lock_guard lock(device->mutex);
  *handle = reinterpret_cast<CUmemoryPool>(device->pools.front());
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuDeviceGetMemPool(CUmemoryPool* handle, CUdevice ordinal) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!handle) return CUDA_ERROR_INVALID_VALUE;
  Device* device = driver->device(ordinal);
  if (!device) return CUDA_ERROR_INVALID_DEVICE;
  std::lock_guard lock(device->mutex);
  *handle = reinterpret_cast<CUmemoryPool>(device->current_pool);
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuDeviceSetMemPool(CUdevice ordinal, CUmemoryPool handle) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  Device* device = driver->device(ordinal);
  if (!device) return CUDA_ERROR_INVALID_DEVICE;
  MemoryPool* pool = driver->pools.find(handle);
  if (!pool || &pool->device() != device) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard lock(device->mutex);
  device->current_pool = pool;
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuMemPoolCreate(CUmemoryPool* handle, const CUmemPoolProps* props) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!handle || !props || props->location.type != CU_MEM_LOCATION_TYPE_DEVICE ||
      props->allocType != CU_MEM_ALLOCATION_TYPE_PINNED) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  Device* device = driver->device(props->location.id);
  if (!device) return CUDA_ERROR_INVALID_DEVICE;
  auto* pool = new MemoryPool(*device, *props);
  {
    std::lock_guard lock(device->mutex);
    device->pools.push_back(pool);
  }
  driver->pools.add(pool);
  *handle = reinterpret_cast<CUmemoryPool>(pool);
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuMemPoolDestroy(CUmemoryPool handle) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  MemoryPool* pool = driver->pools.find(handle);
  if (!pool) return CUDA_ERROR_INVALID_VALUE;
  Device& device = pool->device();
  {
    std::lock_guard lock(device.mutex);
    if (pool == device.pools.front()) return CUDA_ERROR_INVALID_VALUE;  // the default pool stays
    if (device.current_pool == pool) device.current_pool = device.pools.front();
    std::erase(device.pools, pool);
  }
  driver->pools.remove(pool);
  // Its free chunks go back now; blocks still allocated keep theirs (a GPU
  // frees them when the last is freed; the pool object is kept for that).
  pool->trim_to(0);
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuMemPoolTrimTo(CUmemoryPool handle, size_t keep) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  MemoryPool* pool = driver->pools.find(handle);
  if (!pool) return CUDA_ERROR_INVALID_VALUE;
  pool->trim_to(keep);
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuMemPoolGetAttribute(CUmemoryPool handle, CUmemPool_attribute attribute,
                                                       void* value) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  MemoryPool* pool = driver->pools.find(handle);
  if (!pool) return CUDA_ERROR_INVALID_VALUE;
  return pool->get_attribute(attribute, value);
}

OOMGUARD_SIM_DRIVER_API CUresult cuMemPoolSetAttribute(CUmemoryPool handle, CUmemPool_attribute attribute,
                                                       void* value) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  MemoryPool* pool = driver->pools.find(handle);
  if (!pool) return CUDA_ERROR_INVALID_VALUE;
  return pool->set_attribute(attribute, value);
}

OOMGUARD_SIM_DRIVER_API CUresult cuMemPoolSetAccess(CUmemoryPool handle, const CUmemAccessDesc* descriptors,
                                                    size_t count) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!driver->pools.find(handle) || (count != 0 && !descriptors)) return CUDA_ERROR_INVALID_VALUE;
  for (std::size_t i = 0; i < count; ++i) {
    if (!driver->device(descriptors[i].location.id)) return CUDA_ERROR_INVALID_DEVICE;
  }
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuMemPoolGetAccess(CUmemAccess_flags* flags, CUmemoryPool handle,
                                                    CUmemLocation* location) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!flags || !location || !driver->pools.find(handle)) return CUDA_ERROR_INVALID_VALUE;
  *flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_ALIAS(cuMemAllocAsync_ptsz, cuMemAllocAsync)
OOMGUARD_SIM_ALIAS(cuMemAllocFromPoolAsync_ptsz, cuMemAllocFromPoolAsync)
OOMGUARD_SIM_ALIAS(cuMemFreeAsync_ptsz, cuMemFreeAsync)
