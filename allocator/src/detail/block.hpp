// Blocks and segments of the caching allocator. All fields are guarded by the
// owning device's mutex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

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
  bool small = false;  // its segment is a small slab
};
static_assert(sizeof(Block) == 64);

// A segment owns its blocks: a small slab holds them in `slab`, a large
// segment owns the address-ordered chain that starts at `first`.
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
  bool small = false;
  bool releasing = false;  // being returned to the upstream
  std::size_t size_class = 0;  // small slabs only
  std::size_t free_blocks = 0;  // small slabs only
  std::vector<Block> slab;      // small slabs: the fixed blocks
  Block* first = nullptr;       // large segments: the block at base
};

}  // namespace oomguard::detail
