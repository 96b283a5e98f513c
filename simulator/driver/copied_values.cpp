#include "copied_values.hpp"

#include <algorithm>
#include <cstring>

namespace oomguard::sim {

void CopiedValues::forget_locked(std::uintptr_t begin, std::uintptr_t end) {
  auto it = kept_.upper_bound(begin);
  if (it != kept_.begin()) --it;
  while (it != kept_.end() && it->first < end) {
    const std::uintptr_t start = it->first;
    const std::uintptr_t stop = start + it->second.size();
    if (stop <= begin) {
      ++it;
      continue;
    }
    std::vector<unsigned char> bytes = std::move(it->second);
    it = kept_.erase(it);
    // Keep the parts outside [begin, end).
    if (start < begin) kept_.emplace(start, std::vector<unsigned char>(bytes.begin(), bytes.begin() + (begin - start)));
    if (stop > end) it = kept_.emplace(end, std::vector<unsigned char>(bytes.begin() + (end - start), bytes.end())).first;
  }
}

void CopiedValues::keep_locked(std::uintptr_t device, const unsigned char* bytes, std::size_t size) {
  forget_locked(device, device + size);
  if (kept_.size() >= kMaxKept) kept_.erase(kept_.begin());
  kept_.emplace(device, std::vector<unsigned char>(bytes, bytes + size));
  empty_.store(false, std::memory_order_release);
}

void CopiedValues::copy_in(std::uintptr_t device, const void* host, std::size_t bytes) {
  if (bytes > kMaxBytes) {
    forget(device, bytes);
    return;
  }
  std::lock_guard lock(mutex_);
  keep_locked(device, static_cast<const unsigned char*>(host), bytes);
}

void CopiedValues::copy_out(void* host, std::uintptr_t device, std::size_t bytes) const {
  if (empty_.load(std::memory_order_acquire)) return;
  std::lock_guard lock(mutex_);
  const std::uintptr_t end = device + bytes;
  auto it = kept_.upper_bound(device);
  if (it != kept_.begin()) --it;
  for (; it != kept_.end() && it->first < end; ++it) {
    const std::uintptr_t from = std::max(device, it->first);
    const std::uintptr_t to = std::min(end, it->first + it->second.size());
    if (from >= to) continue;
    std::memcpy(static_cast<unsigned char*>(host) + (from - device), it->second.data() + (from - it->first), to - from);
  }
}

void CopiedValues::copy_within(std::uintptr_t destination, std::uintptr_t source, std::size_t bytes) {
  if (empty_.load(std::memory_order_acquire)) return;
  std::lock_guard lock(mutex_);
  // What the source range holds, as (offset, bytes) pieces, read before the
  // destination is forgotten (the ranges may overlap).
  std::vector<std::pair<std::size_t, std::vector<unsigned char>>> pieces;
  const std::uintptr_t end = source + bytes;
  auto it = kept_.upper_bound(source);
  if (it != kept_.begin()) --it;
  for (; it != kept_.end() && it->first < end; ++it) {
    const std::uintptr_t from = std::max(source, it->first);
    const std::uintptr_t to = std::min(end, it->first + it->second.size());
    if (from >= to) continue;
    const auto* first = it->second.data() + (from - it->first);
    pieces.emplace_back(from - source, std::vector<unsigned char>(first, first + (to - from)));
  }
  forget_locked(destination, destination + bytes);
  for (const auto& [offset, piece] : pieces) keep_locked(destination + offset, piece.data(), piece.size());
  if (kept_.empty()) empty_.store(true, std::memory_order_release);
}

void CopiedValues::forget(std::uintptr_t device, std::size_t bytes) {
  if (empty_.load(std::memory_order_acquire)) return;
  std::lock_guard lock(mutex_);
  forget_locked(device, device + bytes);
  if (kept_.empty()) empty_.store(true, std::memory_order_release);
}

}  // namespace oomguard::sim
