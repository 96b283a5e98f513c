// Hard limits as atomic reservations with rollback: the cheapest guard there
// is (one fetch_add on the slow path), with no lock.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "oomguard/category.hpp"

namespace oomguard {

class Budget {
 public:
  explicit Budget(std::uint64_t limit_bytes = 0) : limit_(limit_bytes) {}
  // True and counted, or false and unchanged. A limit of 0 admits everything
  // and counts nothing: no shared atomic on the path when there is no budget
  // (used() is then 0).
  bool try_reserve(std::uint64_t bytes) noexcept {
    if (limit_ == 0) return true;
    if (bytes > limit_) return false;  // before the add: near 2^64 it would wrap and pass
    const std::uint64_t after = used_.fetch_add(bytes, std::memory_order_relaxed) + bytes;
    if (after > limit_) {
      used_.fetch_sub(bytes, std::memory_order_relaxed);
      return false;
    }
    return true;
  }
  void release(std::uint64_t bytes) noexcept {
    if (limit_ != 0) used_.fetch_sub(bytes, std::memory_order_relaxed);
  }
  // Before first use only (the limit is read without synchronisation).
  void set_limit(std::uint64_t limit_bytes) noexcept { limit_ = limit_bytes; }
  std::uint64_t used() const noexcept { return used_.load(std::memory_order_relaxed); }
  std::uint64_t limit() const noexcept { return limit_; }

 private:
  std::uint64_t limit_;
  std::atomic<std::uint64_t> used_{0};
};

// One Budget per category; a category with limit 0 is unlimited and costs
// nothing (checked before the atomic).
class CategoryLimits {
 public:
  using Limits = std::array<std::uint64_t, kNumCategories>;
  CategoryLimits() = default;
  explicit CategoryLimits(const Limits& limits) : limits_(limits) {}
  bool try_charge(Category c, std::uint64_t bytes) noexcept {
    const std::size_t i = index(c);
    if (limits_[i] == 0) return true;
    if (bytes > limits_[i]) return false;  // before the add: near 2^64 it would wrap and pass
    const std::uint64_t after = used_[i].fetch_add(bytes, std::memory_order_relaxed) + bytes;
    if (after > limits_[i]) {
      used_[i].fetch_sub(bytes, std::memory_order_relaxed);
      return false;
    }
    return true;
  }
  void release(Category c, std::uint64_t bytes) noexcept {
    const std::size_t i = index(c);
    if (limits_[i] != 0) used_[i].fetch_sub(bytes, std::memory_order_relaxed);
  }
  std::uint64_t limit(Category c) const noexcept { return limits_[index(c)]; }

 private:
  Limits limits_{};
  std::array<std::atomic<std::uint64_t>, kNumCategories> used_{};
};

}  // namespace oomguard
