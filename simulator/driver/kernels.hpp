// Kernels by name and their launch counts, and the counts of library calls
// and unsupported calls, for OOMGUARD_SIM_STATS.
//
// Note [Launch counting]
// A launch is the hottest call there is (tens of thousands a second). It
// finds its record under a shared lock and bumps an atomic, so launching
// threads never wait for each other; records are never freed, so a pointer
// to one stays good for the life of the process.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace oomguard::sim {

struct KernelRecord {
  std::string name;
  std::atomic<std::uint64_t> launches{0};
};

class KernelRegistry {
 public:
  // The record of `name`, created if new; binds `key` (a host stub or a
  // CUfunction) to it when `key` is not null.
  KernelRecord* intern(const void* key, std::string_view name);
  // The record bound to `key`, or nullptr.
  KernelRecord* find(const void* key) const;
  // The record of `key`, or one named after its address if it was never
  // registered (a launch of an unregistered stub is still counted).
  KernelRecord* find_or_unnamed(const void* key);
  std::vector<std::pair<std::string, std::uint64_t>> launch_counts() const;
  std::uint64_t launches_of(std::string_view name) const;

 private:
  mutable std::shared_mutex mutex_;
  std::unordered_map<const void*, KernelRecord*> by_key_;
  std::unordered_map<std::string, std::unique_ptr<KernelRecord>> by_name_;
};

// Counts per "library:function" name (library calls, unsupported calls).
class CallCounter {
 public:
  void count(std::string_view library, std::string_view function);
  // Whether this is the first count of the pair (for log-once).
  bool count_first(std::string_view library, std::string_view function);
  std::vector<std::pair<std::string, std::uint64_t>> counts() const;

 private:
  mutable std::shared_mutex mutex_;
  std::unordered_map<std::string, std::unique_ptr<std::atomic<std::uint64_t>>> counts_;
};

}  // namespace oomguard::sim
