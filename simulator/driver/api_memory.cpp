// Linear device memory: cuMemAlloc and friends (Note [Device memory]).
#include <mutex>

#include "api.hpp"
#include "log.hpp"

using namespace oomguard::sim;

namespace {

CUresult allocate_linear(Device& device, std::size_t size, CUdeviceptr* pointer) {
  const std::uint64_t charge = round_up(size, kGranularity);
  std::lock_guard lock(device.mutex);
  if (!device.try_charge(charge)) {
    oomguard_sim_log(1, "driver: cuMemAlloc(%zu) on device %d refused: %llu of %llu bytes in use", size,
                     device.ordinal, static_cast<unsigned long long>(device.charged),
                     static_cast<unsigned long long>(device.total_bytes));
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  const auto address = device.take_addresses(charge, kGranularity);
  if (!address) {
    device.uncharge(charge);
    ++device.counters.refusals;
    oomguard_sim_log(1, "driver: cuMemAlloc(%zu) on device %d: simulated address space exhausted", size,
                     device.ordinal);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  device.regions.emplace(*address, Region{size, charge, RegionKind::linear, nullptr});
  ++device.counters.allocations;
  oomguard_sim_log(2, "driver: cuMemAlloc(%zu) on device %d -> 0x%llx (%llu bytes charged)", size, device.ordinal,
                   static_cast<unsigned long long>(*address), static_cast<unsigned long long>(device.charged));
  *pointer = *address;
  return CUDA_SUCCESS;
}

}  // namespace

OOMGUARD_SIM_DRIVER_API CUresult cuMemAlloc_v2(CUdeviceptr* pointer, size_t size) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!pointer || size == 0) return CUDA_ERROR_INVALID_VALUE;
  Device* device = nullptr;
  if (CUresult r = current_device(device); r != CUDA_SUCCESS) return r;
  if (CUresult r = check_capture_safe(*driver); r != CUDA_SUCCESS) return r;
  return allocate_linear(*device, size, pointer);
}

OOMGUARD_SIM_DRIVER_API CUresult cuMemAllocPitch_v2(CUdeviceptr* pointer, size_t* pitch, size_t width, size_t height,
                                                    unsigned int element_size) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (!pointer || !pitch || width == 0 || height == 0) return CUDA_ERROR_INVALID_VALUE;
  if (element_size != 4 && element_size != 8 && element_size != 16) return CUDA_ERROR_INVALID_VALUE;
  Device* device = nullptr;
  if (CUresult r = current_device(device); r != CUDA_SUCCESS) return r;
  if (CUresult r = check_capture_safe(*driver); r != CUDA_SUCCESS) return r;
  *pitch = round_up(width, 512);  // the texture pitch alignment of every GPU since Volta
  return allocate_linear(*device, *pitch * height, pointer);
}

OOMGUARD_SIM_DRIVER_API CUresult cuMemFree_v2(CUdeviceptr pointer) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  if (pointer == 0) return CUDA_SUCCESS;
  if (CUresult r = check_capture_safe(*driver); r != CUDA_SUCCESS) return r;
  Device* device = driver->device_of(pointer);
  if (!device) return CUDA_ERROR_INVALID_VALUE;
  return device->free_allocation(pointer, "cuMemFree");
}

OOMGUARD_SIM_DRIVER_API CUresult cuMemGetInfo_v2(size_t* free, size_t* total) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  Device* device = nullptr;
  if (CUresult r = current_device(device); r != CUDA_SUCCESS) return r;
  std::lock_guard lock(device->mutex);
  if (free) *free = device->total_bytes - device->charged;
  if (total) *total = device->total_bytes;
  return CUDA_SUCCESS;
}

OOMGUARD_SIM_DRIVER_API CUresult cuMemGetAddressRange_v2(CUdeviceptr* base, size_t* size, CUdeviceptr pointer) {
  OOMGUARD_SIM_REQUIRE_DRIVER(driver);
  Device* device = driver->device_of(pointer);
  if (!device) return CUDA_ERROR_NOT_FOUND;
  std::lock_guard lock(device->mutex);
  auto mapping = device->mappings.upper_bound(pointer);
  if (mapping != device->mappings.begin()) {
    --mapping;
    if (pointer < mapping->first + mapping->second.size) {
      if (base) *base = mapping->first;
      if (size) *size = mapping->second.size;
      return CUDA_SUCCESS;
    }
  }
  auto it = device->region_containing(pointer);
  if (it == device->regions.end() || it->second.kind == RegionKind::reservation) return CUDA_ERROR_NOT_FOUND;
  if (base) *base = it->first;
  if (size) *size = it->second.size;
  return CUDA_SUCCESS;
}
