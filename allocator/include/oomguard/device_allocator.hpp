// The interface every oomguard allocator offers: what the C ABI, the typed
// test suite and the benchmarks are written against.
#pragma once

#include <cstddef>
#include <cstdint>

namespace oomguard {

struct AllocatorStats {
  int device = 0;
  std::uint64_t allocated_bytes = 0;  // handed out, after rounding
  std::uint64_t requested_bytes = 0;  // as asked for
  std::uint64_t reserved_bytes = 0;   // obtained from the upstream
  std::uint64_t peak_allocated_bytes = 0;
  std::uint64_t peak_reserved_bytes = 0;
  std::uint64_t largest_free_block = 0;  // the largest request served without the upstream
  // External fragmentation of the cache: 1 - largest_free_block / (reserved - allocated).
  double fragmentation = 0.0;
  std::uint64_t live_allocations = 0;
  std::uint64_t segments = 0;
  std::uint64_t cache_hits = 0;
  std::uint64_t cache_misses = 0;
  std::uint64_t upstream_allocs = 0;
  std::uint64_t upstream_frees = 0;
  std::uint64_t upstream_failures = 0;
  std::uint64_t retries = 0;  // allocations that succeeded after releasing the cache
  std::uint64_t ooms = 0;
  std::uint64_t invalid_frees = 0;
  std::uint64_t budget_bytes = 0;  // 0: none
};

class DeviceAllocator {
 public:
  virtual ~DeviceAllocator() = default;
  // Throws out_of_memory when the budget, a category limit or the device
  // refuses; invalid_request for a zero size or bad device.
  [[nodiscard]] virtual void* allocate(std::size_t bytes, int device, std::uintptr_t stream) = 0;
  // Throws invalid_free (and changes nothing) for a pointer that is not live,
  // a wrong device, or a size other than the one allocated.
  virtual void deallocate(void* ptr, std::size_t bytes, int device, std::uintptr_t stream) = 0;
  virtual AllocatorStats stats(int device) const = 0;
  // Return every fully free cached segment to the upstream.
  virtual void release_cached() = 0;
};

}  // namespace oomguard
