// The virtual memory management API, as torch's expandable segments use
// it: reserve a large address range once, then create, map, unmap and
// release granularity-sized physical chunks inside it.
//
// Note [VMM accounting]
// cuMemCreate charges its size at once (and refuses past capacity with
// CUDA_ERROR_OUT_OF_MEMORY, which torch turns into its OutOfMemoryError).
// The charge stays until the allocation's last reference goes: the handle
// (cuMemRelease), each mapping (cuMemUnmap), each retained handle
// (cuMemRetainAllocationHandle, paired with a cuMemRelease). An address
// reservation is charged nothing.
#include <mutex>

#include "api.hpp"
#include "log.hpp"

using namespace oomguard::sim;

namespace {

// With the device's mutex held: drops one reference; the last gives the
// bytes back.
void unreference_locked(Driver& driver, PhysicalAllocation& allocation) {
  if (--allocation.references > 0) return;
  Device& device = *allocation.device;
  device.uncharge(allocation.size);
  ++device.counters.frees;
  driver.physical_allocations.remove(&allocation);
  oomguard_sim_log(2, "driver: physical allocation of %zu bytes on device %d freed", allocation.size, device.ordinal);
  delete &allocation;
}

CUresult device_of_prop(Driver& driver, const CUmemAllocationProp* prop, Device*& device) {
  if (!prop || prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE) return CUDA_ERROR_INVALID_VALUE;
  device = driver.device(prop->location.id);
  return device ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE;
}

}  // namespace

OOMGUARD_SIM_DRIVER_API CUresult cuMemGetAllocationGranularity(size_t* granularity, const CUmemAllocationProp* prop,
                                                               CUmemAllocationGranularity_flags option) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!granularity) return CUDA_ERROR_INVALID_VALUE;
  Device* device = nullptr;
  if (CUresult r = device_of_prop(*driver, prop, device); r != CUDA_SUCCESS) return r;
  (void)option;  // the minimum and the recommended granularity are both 2 MiB on every GPU
  *granularity = kGranularity;
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuMemAddressReserve(CUdeviceptr* pointer, size_t size, size_t alignment,
                                                     CUdeviceptr hint, unsigned long long flags) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!pointer || size == 0 || size % kGranularity != 0 || flags != 0) return CUDA_ERROR_INVALID_VALUE;
  if (alignment != 0 && (alignment & (alignment - 1)) != 0) return CUDA_ERROR_INVALID_VALUE;
  // A reservation is not tied to a device; it is carved from the range of
  // the device the hint names, else the current one, else device 0.
  Device* device = hint ? driver->device_of(hint) : nullptr;
  if (!device && current_device(device) != CUDA_SUCCESS) device = driver->device(0);
  std::lock_guard lock(device->mutex);
  const auto begin = device->take_addresses(size, alignment, hint);
  if (!begin) return CUDA_ERROR_OUT_OF_MEMORY;
  device->regions.emplace(*begin, Region{size, 0, RegionKind::reservation, nullptr});
  *pointer = *begin;
  oomguard_sim_log(2, "driver: cuMemAddressReserve(%zu) -> 0x%llx", size, static_cast<unsigned long long>(*begin));
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuMemAddressFree(CUdeviceptr pointer, size_t size) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  Device* device = driver->device_of(pointer);
  if (!device) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard lock(device->mutex);
  auto it = device->regions.find(pointer);
  if (it == device->regions.end() || it->second.kind != RegionKind::reservation || it->second.size != size) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  auto mapping = device->mappings.lower_bound(pointer);
  if (mapping != device->mappings.end() && mapping->first < pointer + size) return CUDA_ERROR_INVALID_VALUE;
  device->return_addresses(pointer, size);
  device->regions.erase(it);
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuMemCreate(CUmemGenericAllocationHandle* handle, size_t size,
                                             const CUmemAllocationProp* prop, unsigned long long flags) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!handle || size == 0 || size % kGranularity != 0 || flags != 0) return CUDA_ERROR_INVALID_VALUE;
  Device* device = nullptr;
  if (CUresult r = device_of_prop(*driver, prop, device); r != CUDA_SUCCESS) return r;
  if (prop->type != CU_MEM_ALLOCATION_TYPE_PINNED) return CUDA_ERROR_INVALID_VALUE;
  auto* allocation = new PhysicalAllocation{device, size, *prop, 1};
  {
    std::lock_guard lock(device->mutex);
    if (!device->try_charge(size)) {
      oomguard_sim_log(1, "driver: cuMemCreate(%zu) on device %d refused: %llu of %llu bytes in use", size,
                       device->ordinal, static_cast<unsigned long long>(device->charged),
                       static_cast<unsigned long long>(device->total_bytes));
      delete allocation;
      return CUDA_ERROR_OUT_OF_MEMORY;
    }
    ++device->counters.allocations;
  }
  driver->physical_allocations.add(allocation);
  *handle = reinterpret_cast<CUmemGenericAllocationHandle>(allocation);
  oomguard_sim_log(2, "driver: cuMemCreate(%zu) on device %d", size, device->ordinal);
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuMemRelease(CUmemGenericAllocationHandle handle) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  PhysicalAllocation* allocation = driver->physical_allocations.find(reinterpret_cast<void*>(handle));
  if (!allocation) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard lock(allocation->device->mutex);
  unreference_locked(*driver, *allocation);
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuMemMap(CUdeviceptr pointer, size_t size, size_t offset,
                                          CUmemGenericAllocationHandle handle, unsigned long long flags) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (flags != 0 || size == 0 || size % kGranularity != 0 || offset % kGranularity != 0) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  PhysicalAllocation* allocation = driver->physical_allocations.find(reinterpret_cast<void*>(handle));
  if (!allocation || offset + size > allocation->size) return CUDA_ERROR_INVALID_VALUE;
  Device* device = driver->device_of(pointer);
  if (!device) return CUDA_ERROR_INVALID_VALUE;
  // Both locks in address order would be needed if the reservation and the
  // allocation lived on different devices; mapping another device's memory
  // into this range is peer mapping, which torch never does here.
  if (device != allocation->device) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard lock(device->mutex);
  auto reservation = device->region_containing(pointer);
  if (reservation == device->regions.end() || reservation->second.kind != RegionKind::reservation ||
      pointer + size > reservation->first + reservation->second.size) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  auto next = device->mappings.lower_bound(pointer);
  if (next != device->mappings.end() && next->first < pointer + size) return CUDA_ERROR_ALREADY_MAPPED;
  if (next != device->mappings.begin() && std::prev(next)->first + std::prev(next)->second.size > pointer) {
    return CUDA_ERROR_ALREADY_MAPPED;
  }
  device->mappings.emplace(pointer, Mapping{size, allocation});
  ++allocation->references;
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuMemUnmap(CUdeviceptr pointer, size_t size) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  Device* device = driver->device_of(pointer);
  if (!device || size == 0) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard lock(device->mutex);
  // The range must be covered by whole mappings, as on a GPU.
  auto first = device->mappings.find(pointer);
  if (first == device->mappings.end()) return CUDA_ERROR_INVALID_VALUE;
  std::uintptr_t covered = pointer;
  auto it = first;
  while (it != device->mappings.end() && it->first == covered && covered < pointer + size) {
    covered += it->second.size;
    ++it;
  }
  if (covered != pointer + size) return CUDA_ERROR_INVALID_VALUE;
  for (it = first; it != device->mappings.end() && it->first < pointer + size;) {
    PhysicalAllocation* allocation = it->second.allocation;
    it = device->mappings.erase(it);
    unreference_locked(*driver, *allocation);
  }
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuMemSetAccess(CUdeviceptr pointer, size_t size, const CUmemAccessDesc* descriptors,
                                                size_t count) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!descriptors || count == 0) return CUDA_ERROR_INVALID_VALUE;
  Device* device = driver->device_of(pointer);
  if (!device) return CUDA_ERROR_INVALID_VALUE;
  for (std::size_t i = 0; i < count; ++i) {
    if (descriptors[i].location.type != CU_MEM_LOCATION_TYPE_DEVICE || !driver->device(descriptors[i].location.id)) {
      return CUDA_ERROR_INVALID_DEVICE;
    }
  }
  std::lock_guard lock(device->mutex);
  std::uintptr_t covered = pointer;
  for (auto it = device->mappings.find(pointer); it != device->mappings.end() && it->first == covered &&
                                                 covered < pointer + size;
       ++it) {
    covered += it->second.size;
  }
  return covered >= pointer + size ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

OOMGUARD_SIM_DRIVER_API CUresult cuMemGetAccess(unsigned long long* flags, const CUmemLocation* location,
                                                CUdeviceptr pointer) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!flags || !location) return CUDA_ERROR_INVALID_VALUE;
  if (!driver->device_of(pointer)) return CUDA_ERROR_INVALID_VALUE;
  *flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuMemGetAllocationPropertiesFromHandle(CUmemAllocationProp* prop,
                                                                        CUmemGenericAllocationHandle handle) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!prop) return CUDA_ERROR_INVALID_VALUE;
  PhysicalAllocation* allocation = driver->physical_allocations.find(reinterpret_cast<void*>(handle));
  if (!allocation) return CUDA_ERROR_INVALID_VALUE;
  *prop = allocation->prop;
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuMemRetainAllocationHandle(CUmemGenericAllocationHandle* handle, void* address) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!handle) return CUDA_ERROR_INVALID_VALUE;
  const auto pointer = reinterpret_cast<std::uintptr_t>(address);
  Device* device = driver->device_of(pointer);
  if (!device) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard lock(device->mutex);
  auto it = device->mappings.upper_bound(pointer);
  if (it == device->mappings.begin()) return CUDA_ERROR_INVALID_VALUE;
  --it;
  if (pointer >= it->first + it->second.size) return CUDA_ERROR_INVALID_VALUE;
  ++it->second.allocation->references;
  *handle = reinterpret_cast<CUmemGenericAllocationHandle>(it->second.allocation);
  return CUDA_SUCCESS;
}
