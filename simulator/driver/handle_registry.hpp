// The live objects of one kind (contexts, streams, events, pools, graphs,
// modules...), so every entry point can check a handle before it touches
// it: a stale or made-up handle gives CUDA_ERROR_INVALID_HANDLE, never a
// crash. Lookups take a shared lock, so threads checking handles (every
// launch and event record checks its stream) do not queue behind each other.
#pragma once

#include <mutex>
#include <shared_mutex>
#include <unordered_set>
#include <vector>

namespace oomguard::sim {

template <typename T>
class HandleRegistry {
 public:
  void add(T* object) {
    std::unique_lock lock(mutex_);
    live_.insert(object);
  }
  // False if `object` was not live (a double destroy).
  bool remove(T* object) {
    std::unique_lock lock(mutex_);
    return live_.erase(object) != 0;
  }
  // The object behind `handle`, or nullptr if it is not a live one.
  T* find(const void* handle) const {
    std::shared_lock lock(mutex_);
    auto it = live_.find(static_cast<T*>(const_cast<void*>(handle)));
    return it == live_.end() ? nullptr : *it;
  }
  std::vector<T*> snapshot() const {
    std::shared_lock lock(mutex_);
    return {live_.begin(), live_.end()};
  }

 private:
  mutable std::shared_mutex mutex_;
  std::unordered_set<T*> live_;
};

}  // namespace oomguard::sim
