// A map from a live allocation's address to its record, for one Ledger shard.
//
// Note [Address map]
// The Ledger looks an address up on every event. absl::flat_hash_map spent
// ~140 of the instructions of a record+release pair (hashing, group
// matching, control bytes, the insert slow path). Addresses need less:
//  * the hash is one multiply (allocations are 16-byte aligned and spread);
//  * keys live in their own array, eight to a cache line, probed linearly,
//    so a miss or an insert reads one line of keys, then touches one value;
//  * the load stays at most 1/2, so probe runs stay short and most keys sit
//    in their home slot: a lookup prefetches the home slot's value while it
//    reads the key, so the two cache misses overlap instead of queueing;
//  * erase shifts the rest of the run back instead of leaving a tombstone,
//    so a long run of allocate/free churn never needs a rehash;
//  * the table halves when the load falls below 1/8 (to at most 1/4), so a
//    spike of live allocations (a data loader's host tensors) does not keep
//    its memory for the rest of the run; between 1/8 and 1/2 nothing moves.
// Key 0 marks an empty slot; address 0 itself (a simulated device may hand
// it out) is kept in a slot of its own.
#pragma once

#include <bit>
#include <cstdint>
#include <memory>
#include <new>
#include <utility>

namespace oomguard::detail {

template <typename Value>
class AddressMap {
 public:
  std::size_t size() const noexcept { return size_ + (has_zero_ ? 1 : 0); }
  std::size_t capacity() const noexcept { return keys_ ? mask_ + 1 : 0; }

  Value* find(std::uintptr_t key) noexcept {
    if (key == 0) return has_zero_ ? &zero_value_ : nullptr;
    if (size_ == 0) return nullptr;
    const std::size_t start = home(key);
    __builtin_prefetch(&values_[start]);  // Note [Address map]
    for (std::size_t i = start;; i = (i + 1) & mask_) {
      if (keys_[i] == key) return &values_[i];
      if (keys_[i] == 0) return nullptr;
    }
  }

  // The value at `key` and true if it was inserted, or the live value and false.
  std::pair<Value*, bool> try_emplace(std::uintptr_t key, const Value& value) {
    if (key == 0) {
      if (has_zero_) return {&zero_value_, false};
      has_zero_ = true;
      zero_value_ = value;
      return {&zero_value_, true};
    }
    if (2 * (size_ + 1) > capacity()) grow();
    std::size_t i = home(key);
    __builtin_prefetch(&values_[i], 1);  // Note [Address map]
    for (; keys_[i] != 0; i = (i + 1) & mask_) {
      if (keys_[i] == key) return {&values_[i], false};
    }
    keys_[i] = key;
    values_[i] = value;
    ++size_;
    return {&values_[i], true};
  }

  // Erase the entry whose value `value` points at (from find or try_emplace).
  // Pointers to other values are invalidated.
  void erase(Value* value) noexcept {
    if (value == &zero_value_) {
      has_zero_ = false;
      return;
    }
    std::size_t hole = static_cast<std::size_t>(value - values_.get());
    // Backward shift: an entry further along the run moves into the hole
    // unless the hole lies before its home (it would then be unreachable).
    for (std::size_t j = (hole + 1) & mask_; keys_[j] != 0; j = (j + 1) & mask_) {
      if (((j - home(keys_[j])) & mask_) >= ((j - hole) & mask_)) {
        keys_[hole] = keys_[j];
        values_[hole] = std::move(values_[j]);
        hole = j;
      }
    }
    keys_[hole] = 0;
    --size_;
    if (8 * size_ < capacity() && capacity() > kMinCapacity) {
      try {
        rehash(capacity() / 2);
      } catch (const std::bad_alloc&) {
        // Keep the larger table: shrinking is an economy, not a duty.
      }
    }
  }

  template <typename Fn>
  void for_each(Fn&& fn) const {
    if (has_zero_) fn(std::uintptr_t{0}, zero_value_);
    for (std::size_t i = 0; i < capacity(); ++i) {
      if (keys_[i] != 0) fn(keys_[i], values_[i]);
    }
  }

  void clear() noexcept {
    for (std::size_t i = 0; i < capacity(); ++i) keys_[i] = 0;
    size_ = 0;
    has_zero_ = false;
  }

 private:
  static constexpr std::size_t kMinCapacity = 16;

  std::size_t home(std::uintptr_t key) const noexcept {
    return static_cast<std::size_t>(((static_cast<std::uint64_t>(key) >> 4) * 0xD6E8FEB86659FD93ull) >> shift_);
  }

  void grow() { rehash(std::max(kMinCapacity, 2 * capacity())); }

  // Both arrays are allocated before anything moves: if either allocation
  // throws, the map is as it was.
  void rehash(std::size_t new_capacity) {
    auto keys = std::make_unique<std::uintptr_t[]>(new_capacity);  // zeroed: all empty
    auto values = std::make_unique<Value[]>(new_capacity);
    const std::size_t old_capacity = capacity();
    keys.swap(keys_);
    values.swap(values_);
    mask_ = new_capacity - 1;
    shift_ = 64 - static_cast<unsigned>(std::countr_zero(new_capacity));
    for (std::size_t i = 0; i < old_capacity; ++i) {
      if (keys[i] == 0) continue;
      std::size_t j = home(keys[i]);
      while (keys_[j] != 0) j = (j + 1) & mask_;
      keys_[j] = keys[i];
      values_[j] = std::move(values[i]);
    }
  }

  std::unique_ptr<std::uintptr_t[]> keys_;
  std::unique_ptr<Value[]> values_;
  std::size_t mask_ = 0;
  unsigned shift_ = 64;
  std::size_t size_ = 0;  // entries in keys_, not counting address 0
  bool has_zero_ = false;
  Value zero_value_{};
};

}  // namespace oomguard::detail
