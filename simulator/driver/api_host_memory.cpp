// Page-locked host memory and pointer attributes.
#include <sys/mman.h>

#include <cstdlib>
#include <cstring>

#include "api.hpp"

using namespace oomguard::sim;

namespace {

CUresult host_alloc(void** pointer, std::size_t size, unsigned flags) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!pointer) return CUDA_ERROR_INVALID_VALUE;
  constexpr unsigned kKnown = CU_MEMHOSTALLOC_PORTABLE | CU_MEMHOSTALLOC_DEVICEMAP | CU_MEMHOSTALLOC_WRITECOMBINED;
  if ((flags & ~kKnown) != 0) return CUDA_ERROR_INVALID_VALUE;
  Device* device = nullptr;
  if (CUresult r = current_device(device); r != CUDA_SUCCESS) return r;
  void* memory = nullptr;
  if (::posix_memalign(&memory, 4096, size == 0 ? 1 : size) != 0) return CUDA_ERROR_OUT_OF_MEMORY;
  driver->host_memory.add({reinterpret_cast<std::uintptr_t>(memory), size == 0 ? 1 : size, true, flags, device->ordinal});
  *pointer = memory;
  return CUDA_SUCCESS;
}

}  // namespace

OOMGUARD_SIM_DRIVER_API CUresult cuMemHostAlloc(void** pointer, size_t size, unsigned int flags) {
  return host_alloc(pointer, size, flags);
}

OOMGUARD_SIM_DRIVER_API CUresult cuMemAllocHost_v2(void** pointer, size_t size) { return host_alloc(pointer, size, 0); }

OOMGUARD_SIM_DRIVER_API CUresult cuMemFreeHost(void* pointer) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!pointer) return CUDA_SUCCESS;
  if (CUresult r = check_capture_safe(*driver); r != CUDA_SUCCESS) return r;
  if (!driver->host_memory.remove(reinterpret_cast<std::uintptr_t>(pointer), true)) return CUDA_ERROR_INVALID_VALUE;
  std::free(pointer);
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuMemHostRegister_v2(void* pointer, size_t size, unsigned int flags) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!pointer || size == 0) return CUDA_ERROR_INVALID_VALUE;
  constexpr unsigned kKnown = CU_MEMHOSTREGISTER_PORTABLE | CU_MEMHOSTREGISTER_DEVICEMAP | CU_MEMHOSTREGISTER_IOMEMORY |
                              CU_MEMHOSTREGISTER_READ_ONLY;
  if ((flags & ~kKnown) != 0) return CUDA_ERROR_INVALID_VALUE;
  Device* device = nullptr;
  if (CUresult r = current_device(device); r != CUDA_SUCCESS) return r;
  if (driver->device_of(reinterpret_cast<std::uintptr_t>(pointer))) return CUDA_ERROR_INVALID_VALUE;
  if (!driver->host_memory.add({reinterpret_cast<std::uintptr_t>(pointer), size, false, flags, device->ordinal})) {
    return CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED;
  }
  return CUDA_SUCCESS;
}
#undef cuMemHostRegister
OOMGUARD_SIM_ALIAS(cuMemHostRegister, cuMemHostRegister_v2)

OOMGUARD_SIM_DRIVER_API CUresult cuMemHostUnregister(void* pointer) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!pointer) return CUDA_ERROR_INVALID_VALUE;
  if (!driver->host_memory.remove(reinterpret_cast<std::uintptr_t>(pointer), false)) {
    return CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED;
  }
  return CUDA_SUCCESS;
}

// With unified addressing a mapped host buffer's device address is its host
// address, as on every 64-bit GPU system.
OOMGUARD_SIM_DRIVER_API CUresult cuMemHostGetDevicePointer_v2(CUdeviceptr* device_pointer, void* pointer,
                                                              unsigned int flags) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!device_pointer || !pointer || flags != 0) return CUDA_ERROR_INVALID_VALUE;
  if (!driver->host_memory.find(reinterpret_cast<std::uintptr_t>(pointer))) return CUDA_ERROR_INVALID_VALUE;
  *device_pointer = reinterpret_cast<CUdeviceptr>(pointer);
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuMemHostGetFlags(unsigned int* flags, void* pointer) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!flags) return CUDA_ERROR_INVALID_VALUE;
  auto range = driver->host_memory.find(reinterpret_cast<std::uintptr_t>(pointer));
  if (!range || !range->allocated_by_driver) return CUDA_ERROR_INVALID_VALUE;
  *flags = range->flags;
  return CUDA_SUCCESS;
}

namespace {

// What a pointer is, for the attribute queries.
struct PointerFacts {
  CUmemorytype type = static_cast<CUmemorytype>(0);  // 0: not known to CUDA
  int device_ordinal = -1;
  std::uintptr_t range_begin = 0;
  std::size_t range_size = 0;
  bool mapped = false;
  Context* context = nullptr;
};

PointerFacts facts_of(Driver& driver, CUdeviceptr pointer) {
  PointerFacts facts;
  if (Device* device = driver.device_of(pointer)) {
    facts.type = CU_MEMORYTYPE_DEVICE;
    facts.device_ordinal = device->ordinal;
    facts.context = &device->primary_context;
    std::lock_guard lock(device->mutex);
    auto mapping = device->mappings.upper_bound(pointer);
    if (mapping != device->mappings.begin() && pointer < std::prev(mapping)->first + std::prev(mapping)->second.size) {
      --mapping;
      facts.range_begin = mapping->first;
      facts.range_size = mapping->second.size;
      facts.mapped = true;
      return facts;
    }
    auto region = device->region_containing(pointer);
    if (region != device->regions.end() && region->second.kind != RegionKind::reservation) {
      facts.range_begin = region->first;
      facts.range_size = region->second.size;
      facts.mapped = true;
      return facts;
    }
    // Inside the device's addresses but not allocated (freed, or a symbol).
    return facts;
  }
  if (auto range = driver.host_memory.find(pointer)) {
    facts.type = CU_MEMORYTYPE_HOST;
    facts.device_ordinal = range->device_ordinal;
    facts.range_begin = range->begin;
    facts.range_size = range->size;
    facts.mapped = true;
    if (Device* device = driver.device(range->device_ordinal)) facts.context = &device->primary_context;
  }
  return facts;
}

CUresult attribute_of(const PointerFacts& facts, CUpointer_attribute attribute, void* data, CUdeviceptr pointer) {
  if (facts.type == 0 && attribute != CU_POINTER_ATTRIBUTE_MEMORY_TYPE) return CUDA_ERROR_INVALID_VALUE;
  switch (attribute) {
    case CU_POINTER_ATTRIBUTE_CONTEXT: *static_cast<CUcontext*>(data) = reinterpret_cast<CUcontext>(facts.context); break;
    case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
      if (facts.type == 0) return CUDA_ERROR_INVALID_VALUE;
      *static_cast<unsigned*>(data) = facts.type;
      break;
    case CU_POINTER_ATTRIBUTE_DEVICE_POINTER: *static_cast<CUdeviceptr*>(data) = pointer; break;
    case CU_POINTER_ATTRIBUTE_HOST_POINTER:
      if (facts.type != CU_MEMORYTYPE_HOST) return CUDA_ERROR_INVALID_VALUE;
      *static_cast<void**>(data) = reinterpret_cast<void*>(pointer);
      break;
    case CU_POINTER_ATTRIBUTE_SYNC_MEMOPS: *static_cast<int*>(data) = 1; break;
    case CU_POINTER_ATTRIBUTE_BUFFER_ID: *static_cast<unsigned long long*>(data) = facts.range_begin; break;
    case CU_POINTER_ATTRIBUTE_IS_MANAGED: *static_cast<int*>(data) = 0; break;
    case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL: *static_cast<int*>(data) = facts.device_ordinal; break;
    case CU_POINTER_ATTRIBUTE_IS_LEGACY_CUDA_IPC_CAPABLE: *static_cast<int*>(data) = 0; break;
    case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR: *static_cast<CUdeviceptr*>(data) = facts.range_begin; break;
    case CU_POINTER_ATTRIBUTE_RANGE_SIZE: *static_cast<size_t*>(data) = facts.range_size; break;
    case CU_POINTER_ATTRIBUTE_MAPPED: *static_cast<int*>(data) = facts.mapped ? 1 : 0; break;
    case CU_POINTER_ATTRIBUTE_ALLOWED_HANDLE_TYPES: *static_cast<unsigned long long*>(data) = 0; break;
    case CU_POINTER_ATTRIBUTE_IS_GPU_DIRECT_RDMA_CAPABLE: *static_cast<int*>(data) = 0; break;
    case CU_POINTER_ATTRIBUTE_ACCESS_FLAGS:
      *static_cast<int*>(data) = CU_POINTER_ATTRIBUTE_ACCESS_FLAG_READWRITE;
      break;
    case CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE: *static_cast<CUmemoryPool*>(data) = nullptr; break;
    case CU_POINTER_ATTRIBUTE_MAPPING_SIZE: *static_cast<size_t*>(data) = facts.range_size; break;
    case CU_POINTER_ATTRIBUTE_MAPPING_BASE_ADDR: *static_cast<void**>(data) = reinterpret_cast<void*>(facts.range_begin); break;
    case CU_POINTER_ATTRIBUTE_MEMORY_BLOCK_ID: *static_cast<unsigned long long*>(data) = facts.range_begin; break;
    default: return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}

}  // namespace

OOMGUARD_SIM_DRIVER_API CUresult cuPointerGetAttribute(void* data, CUpointer_attribute attribute, CUdeviceptr pointer) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!data) return CUDA_ERROR_INVALID_VALUE;
  return attribute_of(facts_of(*driver, pointer), attribute, data, pointer);
}

// Unlike the singular query, this one succeeds for memory CUDA does not
// know: its memory type reads 0 and the other answers are zeroed, which is
// how cudaPointerGetAttributes reports cudaMemoryTypeUnregistered.
OOMGUARD_SIM_DRIVER_API CUresult cuPointerGetAttributes(unsigned int count, CUpointer_attribute* attributes,
                                                        void** data, CUdeviceptr pointer) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!attributes || !data) return CUDA_ERROR_INVALID_VALUE;
  const PointerFacts facts = facts_of(*driver, pointer);
  for (unsigned i = 0; i < count; ++i) {
    if (!data[i]) continue;
    if (facts.type == 0) {
      switch (attributes[i]) {
        case CU_POINTER_ATTRIBUTE_MEMORY_TYPE: *static_cast<unsigned*>(data[i]) = 0; break;
        case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL: *static_cast<int*>(data[i]) = -2; break;
        case CU_POINTER_ATTRIBUTE_CONTEXT: *static_cast<CUcontext*>(data[i]) = nullptr; break;
        case CU_POINTER_ATTRIBUTE_DEVICE_POINTER:
        case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR: *static_cast<CUdeviceptr*>(data[i]) = 0; break;
        case CU_POINTER_ATTRIBUTE_HOST_POINTER: *static_cast<void**>(data[i]) = nullptr; break;
        case CU_POINTER_ATTRIBUTE_RANGE_SIZE: *static_cast<size_t*>(data[i]) = 0; break;
        default: *static_cast<int*>(data[i]) = 0; break;
      }
      continue;
    }
    const CUresult r = attribute_of(facts, attributes[i], data[i], pointer);
    if (r != CUDA_SUCCESS && attributes[i] == CU_POINTER_ATTRIBUTE_HOST_POINTER) {
      *static_cast<void**>(data[i]) = nullptr;  // device memory has no host address
    } else if (r != CUDA_SUCCESS) {
      return r;
    }
  }
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuPointerSetAttribute(const void* value, CUpointer_attribute attribute,
                                                       CUdeviceptr pointer) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!value || attribute != CU_POINTER_ATTRIBUTE_SYNC_MEMOPS) return CUDA_ERROR_INVALID_VALUE;
  return driver->device_of(pointer) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}
