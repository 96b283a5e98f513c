#include "oomguard/simulated_device.hpp"

#include <fmt/format.h>

#include <cstdlib>

#include "oomguard/error.hpp"

namespace oomguard {

SimulatedDevice::SimulatedDevice(SimulatedDeviceOptions options)
    : options_(options),
      used_(static_cast<std::size_t>(options.devices)),
      // A high, page-aligned range that no host allocation uses.
      next_virtual_(std::uintptr_t{1} << 46) {
  if (options_.devices < 1) throw config_error("simulated device: devices must be at least 1");
  if (options_.alignment == 0 || (options_.alignment & (options_.alignment - 1)) != 0) {
    throw config_error(fmt::format("simulated device: alignment {} is not a power of two", options_.alignment));
  }
}

SimulatedDevice::~SimulatedDevice() = default;

void SimulatedDevice::check_device(int device) const {
  if (device < 0 || device >= options_.devices) {
    throw upstream_error(
        fmt::format("simulated device: no device {} (this simulation has devices 0..{})", device, options_.devices - 1));
  }
}

void* SimulatedDevice::allocate(std::size_t bytes, int device) {
  check_device(device);
  const std::uint64_t call = allocate_calls_.fetch_add(1) + 1;
  std::uint64_t target = fail_at_call_.load();
  if (target != 0 && fail_after_.load() && call >= target) return nullptr;
  if (target != 0 && call == target && fail_at_call_.compare_exchange_strong(target, 0)) return nullptr;
  if (bytes > fail_above_.load()) return nullptr;
  auto& used = used_[static_cast<std::size_t>(device)];
  std::uint64_t seen = used.load();
  do {
    if (bytes > options_.capacity_bytes - std::min(seen, options_.capacity_bytes)) return nullptr;
  } while (!used.compare_exchange_weak(seen, seen + bytes));

  void* ptr = nullptr;
  const std::size_t rounded = (bytes + options_.alignment - 1) / options_.alignment * options_.alignment;
  if (options_.backing == SimulatedDeviceOptions::Backing::host) {
    ptr = std::aligned_alloc(options_.alignment, std::max(rounded, options_.alignment));
  } else {
    ptr = reinterpret_cast<void*>(next_virtual_.fetch_add(std::max(rounded, options_.alignment)));
  }
  if (ptr == nullptr) {
    used.fetch_sub(bytes);
    return nullptr;
  }
  outstanding_.fetch_add(1);
  return ptr;
}

void SimulatedDevice::deallocate(void* ptr, std::size_t bytes, int device) noexcept {
  deallocate_calls_.fetch_add(1);
  if (ptr == nullptr || device < 0 || device >= options_.devices) return;
  used_[static_cast<std::size_t>(device)].fetch_sub(bytes);
  outstanding_.fetch_sub(1);
  if (options_.backing == SimulatedDeviceOptions::Backing::host) std::free(ptr);
}

DeviceMemoryInfo SimulatedDevice::memory_info(int device) {
  check_device(device);
  const std::uint64_t used = used_[static_cast<std::size_t>(device)].load();
  return {options_.capacity_bytes - std::min(used, options_.capacity_bytes), options_.capacity_bytes};
}

void SimulatedDevice::fail_call(std::uint64_t n, bool and_after) {
  fail_after_.store(and_after);
  fail_at_call_.store(allocate_calls_.load() + n);
}
void SimulatedDevice::fail_above(std::uint64_t bytes) { fail_above_.store(bytes); }
void SimulatedDevice::clear_faults() {
  fail_at_call_.store(0);
  fail_after_.store(false);
  fail_above_.store(UINT64_MAX);
}
std::uint64_t SimulatedDevice::used_bytes(int device) const {
  check_device(device);
  return used_[static_cast<std::size_t>(device)].load();
}

}  // namespace oomguard
