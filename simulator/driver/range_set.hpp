// A set of disjoint address ranges that coalesces neighbours: the free
// address space of one simulated device, or the free space inside a
// memory pool's chunks. Not thread-safe; its owner holds the lock.
//
// Note [Best fit]
// take() picks the smallest free range that holds the request, so a long
// run of mixed sizes leaves large ranges whole, as the real driver's VA
// allocator does closely enough for torch: its caching allocator keeps
// blocks, and expandable segments reserve once per segment, so the driver
// sees few calls. Ranges are kept by address (to coalesce on insert) and
// by (size, address) (to find the best fit in O(log n)).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <utility>

namespace oomguard::sim {

class RangeSet {
 public:
  // Adds [begin, begin + size), merging it with free neighbours. The range
  // must not overlap a free one.
  void insert(std::uintptr_t begin, std::size_t size);

  // Removes and returns the start of a best-fit range of `size` bytes whose
  // start is a multiple of `alignment` (a power of two); nullopt if none.
  std::optional<std::uintptr_t> take(std::size_t size, std::size_t alignment);

  // Removes exactly [begin, begin + size) if all of it is free.
  bool take_at(std::uintptr_t begin, std::size_t size);

  // Whether all of [begin, begin + size) is free.
  bool contains(std::uintptr_t begin, std::size_t size) const;

  std::size_t free_bytes() const noexcept { return free_bytes_; }
  std::size_t range_count() const noexcept { return by_address_.size(); }
  bool empty() const noexcept { return by_address_.empty(); }

 private:
  void add(std::uintptr_t begin, std::size_t size);
  void remove(std::map<std::uintptr_t, std::size_t>::iterator it);
  void carve(std::map<std::uintptr_t, std::size_t>::iterator it, std::uintptr_t begin, std::size_t size);

  std::map<std::uintptr_t, std::size_t> by_address_;
  std::set<std::pair<std::size_t, std::uintptr_t>> by_size_;
  std::size_t free_bytes_ = 0;
};

}  // namespace oomguard::sim
