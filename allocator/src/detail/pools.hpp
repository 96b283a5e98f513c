// The free structures of one (device, stream): size-class free lists for
// small blocks, a best-fit tree with splitting and coalescing for large ones.
#pragma once

#include <absl/container/btree_map.h>

#include <array>
#include <cstdint>
#include <utility>
#include <vector>

#include "block.hpp"
#include "size_classes.hpp"

namespace oomguard::detail {

// Small blocks: each 2 MiB slab serves one size class, carved into equal
// blocks. Allocation and free are a vector pop and push.
class SmallPool {
 public:
  Block* take(std::size_t cls) {
    auto& list = free_[cls];
    if (list.empty()) return nullptr;
    Block* b = list.back();
    list.pop_back();
    --b->segment->free_blocks;
    return b;
  }
  void give(Block* b) {
    ++b->segment->free_blocks;
    free_[b->segment->size_class].push_back(b);
  }
  // Carve a fresh slab: all blocks but the first go to the free list.
  Block* adopt_slab(Segment& slab);
  // Forget the free blocks of slabs that are being released.
  void drop_released(const std::vector<Segment*>& released);
  std::size_t largest_free() const;

 private:
  std::array<std::vector<Block*>, kNumSmallClasses> free_;
};

class LargePool {
 public:
  LargePool() = default;
  LargePool(const LargePool&) = delete;
  LargePool& operator=(const LargePool&) = delete;
  ~LargePool() {
    for (Block* b : spare_) delete b;
  }

  // Best fit: the smallest free block that holds `size`, split when the rest
  // is worth keeping. nullptr when none fits.
  Block* take(std::size_t size);
  // Return a block, merging it with free neighbours of its segment.
  void give(Block* b);
  // A new segment: its one block is split to `size` and returned.
  Block* adopt_segment(Segment& segment, std::size_t size);
  // Remove a fully free segment's block from the free tree.
  void drop_segment(Segment& segment);
  std::size_t largest_free() const { return free_.empty() ? 0 : free_.rbegin()->first.first; }

 private:
  // Keys are values, so a search compares in the node without chasing a
  // pointer to each Block.
  using Key = std::pair<std::size_t, std::uintptr_t>;  // (size, address): best fit, then lowest address
  static Key key_of(const Block* b) { return {b->size, b->address}; }
  void insert_free(Block* b) { free_.emplace(key_of(b), b); }
  void erase_free(const Block* b) { free_.erase(key_of(b)); }
  Block* split(Block* b, std::size_t size);
  // Block records are recycled: a split and a merge per alloc/free pair
  // would otherwise cost a new and a delete.
  Block* make_block() {
    if (spare_.empty()) return new Block;
    Block* b = spare_.back();
    spare_.pop_back();
    *b = Block{};
    return b;
  }
  void recycle(Block* b) { spare_.push_back(b); }
  absl::btree_map<Key, Block*> free_;
  std::vector<Block*> spare_;
};

struct StreamPools {
  std::uintptr_t stream = 0;
  SmallPool small;
  LargePool large;
};

}  // namespace oomguard::detail
