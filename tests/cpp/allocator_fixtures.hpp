// The allocator configurations the typed suite runs over, in RMM's style:
// one fixture per configuration, one suite for all.
#pragma once

#include <memory>

#include "oomguard/caching_allocator.hpp"
#include "oomguard/simulated_device.hpp"

namespace oomguard::test {

struct DefaultConfig {
  static constexpr bool kWritable = true;
  static SimulatedDeviceOptions device() { return {.capacity_bytes = 1ull << 30, .devices = 2}; }
  static CachingAllocatorOptions options() { return {}; }
};

struct BudgetedConfig {
  static constexpr bool kWritable = true;
  static SimulatedDeviceOptions device() { return {.capacity_bytes = 1ull << 30, .devices = 2}; }
  static CachingAllocatorOptions options() { return {.budget_bytes = 512ull << 20}; }
};

struct SharedStreamPoolConfig {
  static constexpr bool kWritable = true;
  static SimulatedDeviceOptions device() { return {.capacity_bytes = 1ull << 30, .devices = 2}; }
  static CachingAllocatorOptions options() { return {.per_stream_pools = false}; }
};

struct CategoryLimitedConfig {
  static constexpr bool kWritable = true;
  static SimulatedDeviceOptions device() { return {.capacity_bytes = 1ull << 30, .devices = 2}; }
  static CachingAllocatorOptions options() {
    CachingAllocatorOptions o;
    o.category_limits[index(Category::activations)] = 768ull << 20;
    return o;
  }
};

struct VirtualAddressConfig {
  static constexpr bool kWritable = false;  // addresses are never backed
  static SimulatedDeviceOptions device() {
    return {.capacity_bytes = 1ull << 40, .devices = 2, .backing = SimulatedDeviceOptions::Backing::virtual_addresses};
  }
  static CachingAllocatorOptions options() { return {}; }
};

template <typename Config>
struct AllocatorUnderTest {
  std::shared_ptr<SimulatedDevice> device = std::make_shared<SimulatedDevice>(Config::device());
  Ledger ledger;
  std::unique_ptr<CachingAllocator> allocator =
      std::make_unique<CachingAllocator>(device, Config::options(), &ledger);
};

}  // namespace oomguard::test
