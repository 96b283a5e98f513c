#include "kernels.hpp"

#include <cstdio>
#include <mutex>

namespace oomguard::sim {

KernelRecord* KernelRegistry::intern(const void* key, std::string_view name) {
  std::unique_lock lock(mutex_);
  auto& slot = by_name_[std::string(name)];
  if (!slot) {
    slot = std::make_unique<KernelRecord>();
    slot->name = std::string(name);
  }
  if (key) by_key_[key] = slot.get();
  return slot.get();
}

KernelRecord* KernelRegistry::find(const void* key) const {
  std::shared_lock lock(mutex_);
  auto it = by_key_.find(key);
  return it == by_key_.end() ? nullptr : it->second;
}

KernelRecord* KernelRegistry::find_or_unnamed(const void* key) {
  if (KernelRecord* record = find(key)) return record;
  char name[64];
  std::snprintf(name, sizeof name, "<unregistered kernel %p>", key);
  return intern(key, name);
}

std::vector<std::pair<std::string, std::uint64_t>> KernelRegistry::launch_counts() const {
  std::shared_lock lock(mutex_);
  std::vector<std::pair<std::string, std::uint64_t>> counts;
  for (const auto& [name, record] : by_name_) {
    const std::uint64_t n = record->launches.load(std::memory_order_relaxed);
    if (n != 0) counts.emplace_back(name, n);
  }
  return counts;
}

std::uint64_t KernelRegistry::launches_of(std::string_view name) const {
  std::shared_lock lock(mutex_);
  auto it = by_name_.find(std::string(name));
  return it == by_name_.end() ? 0 : it->second->launches.load(std::memory_order_relaxed);
}

bool CallCounter::count_first(std::string_view library, std::string_view function) {
  std::string key;
  key.reserve(library.size() + function.size() + 1);
  key.append(library).append(":").append(function);
  {
    std::shared_lock lock(mutex_);
    auto it = counts_.find(key);
    if (it != counts_.end()) {
      it->second->fetch_add(1, std::memory_order_relaxed);
      return false;
    }
  }
  std::unique_lock lock(mutex_);
  auto& slot = counts_[key];
  const bool first = !slot;
  if (first) slot = std::make_unique<std::atomic<std::uint64_t>>(0);
  slot->fetch_add(1, std::memory_order_relaxed);
  return first;
}

void CallCounter::count(std::string_view library, std::string_view function) { count_first(library, function); }

std::vector<std::pair<std::string, std::uint64_t>> CallCounter::counts() const {
  std::shared_lock lock(mutex_);
  std::vector<std::pair<std::string, std::uint64_t>> out;
  for (const auto& [key, n] : counts_) out.emplace_back(key, n->load(std::memory_order_relaxed));
  return out;
}

}  // namespace oomguard::sim
