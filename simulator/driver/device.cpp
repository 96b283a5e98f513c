#include "device.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cstring>

#include "log.hpp"
#include "memory_pool.hpp"
#include "oomguard_sim/sim_api.h"

namespace oomguard::sim {

// Distinct per device: FNV-1a of the table name and the physical index,
// shaped as an RFC 4122 version 4 UUID.
CUuuid device_uuid(const GpuModel& model, int physical_index) {
  std::uint64_t h1 = 1469598103934665603ull;
  std::uint64_t h2 = 1099511628211ull * 31;
  auto mix = [&](unsigned char c) {
    h1 = (h1 ^ c) * 1099511628211ull;
    h2 = (h2 ^ c) * 0x100000001b3ull + 0x9e3779b97f4a7c15ull;
  };
  for (char c : std::string_view("oomguard-simulated-device")) mix(static_cast<unsigned char>(c));
  for (char c : model.table_name) mix(static_cast<unsigned char>(c));
  mix(static_cast<unsigned char>(physical_index));
  mix(static_cast<unsigned char>(physical_index >> 8));
  CUuuid uuid{};
  std::memcpy(uuid.bytes, &h1, 8);
  std::memcpy(uuid.bytes + 8, &h2, 8);
  uuid.bytes[6] = static_cast<char>((uuid.bytes[6] & 0x0f) | 0x40);
  uuid.bytes[8] = static_cast<char>((uuid.bytes[8] & 0x3f) | 0x80);
  return uuid;
}

int device_pci_bus(int physical_index) { return 0x07 + 0x0c * physical_index; }

Device::Device(int ordinal_, int physical_index_, const GpuModel& model_, std::uint64_t total_bytes_)
    : ordinal(ordinal_),
      physical_index(physical_index_),
      model(model_),
      limits(architecture_limits(model_)),
      total_bytes(total_bytes_),
      context_bytes(model_.context_mib << 20),
      uuid(device_uuid(model_, physical_index_)),
      pci_bus(device_pci_bus(physical_index_)) {
  primary_context.device = this;
  primary_context.primary = true;
}

bool Device::reserve_address_space() {
  // Note [Device memory]: 16x capacity, halving while the host refuses.
  for (std::uint64_t factor = 16; factor >= 1; factor /= 2) {
    const std::uint64_t size = round_up(std::max<std::uint64_t>(total_bytes * factor, 64ull << 30), kGranularity);
    void* base = ::mmap(nullptr, size + kGranularity, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) continue;
    va_begin_ = round_up(reinterpret_cast<std::uintptr_t>(base), kGranularity);
    va_end_ = va_begin_ + size;
    free_addresses_.insert(va_begin_, size);
    return true;
  }
  log_error("cannot reserve host address space for simulated device %d (%s, %llu bytes): mmap refused", ordinal,
            std::string(model.table_name).c_str(), static_cast<unsigned long long>(total_bytes));
  return false;
}

bool Device::try_charge(std::uint64_t bytes) {
  if (bytes > total_bytes - charged) {
    ++counters.refusals;
    return false;
  }
  charged += bytes;
  peak = std::max(peak, charged);
  return true;
}

void Device::uncharge(std::uint64_t bytes) { charged -= std::min(bytes, charged); }

std::optional<std::uintptr_t> Device::take_addresses(std::size_t size, std::size_t alignment, std::uintptr_t hint) {
  alignment = std::max<std::size_t>(alignment, kGranularity);
  if (hint != 0 && hint % alignment == 0 && free_addresses_.take_at(hint, size)) return hint;
  return free_addresses_.take(size, alignment);
}

void Device::return_addresses(std::uintptr_t begin, std::size_t size) { free_addresses_.insert(begin, size); }

std::map<std::uintptr_t, Region>::iterator Device::region_containing(std::uintptr_t address) {
  auto it = regions.upper_bound(address);
  if (it == regions.begin()) return regions.end();
  --it;
  return address < it->first + it->second.size ? it : regions.end();
}

CUresult Device::free_allocation(std::uintptr_t pointer, const char* caller) {
  MemoryPool* pool = nullptr;
  std::size_t block = 0;
  {
    std::lock_guard lock(mutex);
    auto it = regions.find(pointer);
    if (it == regions.end() || it->second.kind == RegionKind::reservation) return CUDA_ERROR_INVALID_VALUE;
    if (it->second.kind == RegionKind::linear) {
      uncharge(it->second.charged);
      return_addresses(pointer, it->second.charged);
      ++counters.frees;
      oomguard_sim_log(2, "driver: %s(0x%llx) on device %d (%zu bytes)", caller,
                       static_cast<unsigned long long>(pointer), ordinal, it->second.size);
      regions.erase(it);
      return CUDA_SUCCESS;
    }
    // A pool block is freed at once, by cuMemFree as by cuMemFreeAsync.
    pool = it->second.pool;
    block = it->second.charged;
    regions.erase(it);
  }
  pool->release_block(pointer, block);
  return CUDA_SUCCESS;
}

}  // namespace oomguard::sim
