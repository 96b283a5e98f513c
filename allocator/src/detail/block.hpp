// Blocks and segments of the caching allocator. All fields are guarded by the
// owning device's mutex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "oomguard/category.hpp"

namespace oomguard::detail {

struct Segment;
struct StreamPools;

// One cache line: a free touches its block and no other record of the
// allocator (the pools of its stream are hot), so the block carries copies
// of what the free path needs from its segment.
struct alignas(64) Block {
  std::uintptr_t address = 0;
  std::size_t size = 0;       // capacity of the block
  std::size_t requested = 0;  // what the live allocation asked for
  Segment* segment = nullptr;
  Block* prev = nullptr;  // address-ordered neighbours in a large segment
  Block* next = nullptr;
  StreamPools* pools = nullptr;  // its segment's pools
  Category category = Category::unknown;  // charged category while live
  bool allocated = false;
  bool small = false;  // its segment is in the small pool
};
static_assert(sizeof(Block) == 64);

// A segment owns the address-ordered chain of its blocks that starts at
// `first`.
struct Segment {
  Segment() = default;
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;
  ~Segment() {
    for (Block* b = first; b != nullptr;) {
      Block* next = b->next;
      delete b;
      b = next;
    }
  }

  std::uintptr_t base = 0;
  std::size_t size = 0;
  StreamPools* pools = nullptr;
  bool small = false;  // cut into small blocks (Note [Sizes as c10 chooses them])
  Block* first = nullptr;  // the block at base

  bool fully_free() const { return !first->allocated && first->size == size; }
};

}  // namespace oomguard::detail
