#include "range_set.hpp"

#include <iterator>

namespace oomguard::sim {

void RangeSet::add(std::uintptr_t begin, std::size_t size) {
  by_address_.emplace(begin, size);
  by_size_.emplace(size, begin);
  free_bytes_ += size;
}

void RangeSet::remove(std::map<std::uintptr_t, std::size_t>::iterator it) {
  by_size_.erase({it->second, it->first});
  free_bytes_ -= it->second;
  by_address_.erase(it);
}

void RangeSet::insert(std::uintptr_t begin, std::size_t size) {
  if (size == 0) return;
  std::uintptr_t merged_begin = begin;
  std::size_t merged_size = size;
  auto next = by_address_.lower_bound(begin);
  if (next != by_address_.begin()) {
    auto previous = std::prev(next);
    if (previous->first + previous->second == begin) {
      merged_begin = previous->first;
      merged_size += previous->second;
      remove(previous);
    }
  }
  next = by_address_.lower_bound(begin);
  if (next != by_address_.end() && next->first == begin + size) {
    merged_size += next->second;
    remove(next);
  }
  add(merged_begin, merged_size);
}

// Removes [begin, begin + size) from the free range at `it`, which holds it,
// putting back what lies on either side.
void RangeSet::carve(std::map<std::uintptr_t, std::size_t>::iterator it, std::uintptr_t begin, std::size_t size) {
  const std::uintptr_t range_begin = it->first;
  const std::uintptr_t range_end = it->first + it->second;
  remove(it);
  if (begin > range_begin) add(range_begin, begin - range_begin);
  if (begin + size < range_end) add(begin + size, range_end - (begin + size));
}

std::optional<std::uintptr_t> RangeSet::take(std::size_t size, std::size_t alignment) {
  if (size == 0) return std::nullopt;
  for (auto candidate = by_size_.lower_bound({size, 0}); candidate != by_size_.end(); ++candidate) {
    const std::uintptr_t begin = candidate->second;
    const std::uintptr_t aligned = (begin + alignment - 1) & ~(static_cast<std::uintptr_t>(alignment) - 1);
    if (aligned - begin + size <= candidate->first) {
      carve(by_address_.find(begin), aligned, size);
      return aligned;
    }
  }
  return std::nullopt;
}

bool RangeSet::take_at(std::uintptr_t begin, std::size_t size) {
  auto it = by_address_.upper_bound(begin);
  if (it == by_address_.begin()) return false;
  --it;
  if (begin < it->first || begin + size > it->first + it->second) return false;
  carve(it, begin, size);
  return true;
}

bool RangeSet::contains(std::uintptr_t begin, std::size_t size) const {
  auto it = by_address_.upper_bound(begin);
  if (it == by_address_.begin()) return false;
  --it;
  return begin >= it->first && begin + size <= it->first + it->second;
}

}  // namespace oomguard::sim
