#include "host_memory.hpp"

#include <iterator>
#include <mutex>

namespace oomguard::sim {

bool HostMemory::add(const HostRange& range) {
  std::unique_lock lock(mutex_);
  auto next = ranges_.lower_bound(range.begin);
  if (next != ranges_.end() && next->first < range.begin + range.size) return false;
  if (next != ranges_.begin()) {
    auto previous = std::prev(next);
    if (previous->first + previous->second.size > range.begin) return false;
  }
  ranges_.emplace(range.begin, range);
  return true;
}

std::optional<HostRange> HostMemory::remove(std::uintptr_t begin, bool allocated_by_driver) {
  std::unique_lock lock(mutex_);
  auto it = ranges_.find(begin);
  if (it == ranges_.end() || it->second.allocated_by_driver != allocated_by_driver) return std::nullopt;
  HostRange range = it->second;
  ranges_.erase(it);
  return range;
}

std::optional<HostRange> HostMemory::find(std::uintptr_t address) const {
  std::shared_lock lock(mutex_);
  auto it = ranges_.upper_bound(address);
  if (it == ranges_.begin()) return std::nullopt;
  --it;
  if (address >= it->first + it->second.size) return std::nullopt;
  return it->second;
}

}  // namespace oomguard::sim
