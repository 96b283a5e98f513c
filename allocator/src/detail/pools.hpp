// The free structures of one (device, stream): two best-fit pools with
// splitting and coalescing, one for small blocks (cut from 2 MiB segments)
// and one for large ones (Note [Sizes as c10 chooses them]).
#pragma once

#include <bit>
#include <array>
#include <cstdint>
#include <utility>
#include <vector>

#include "block.hpp"
#include "size_classes.hpp"

namespace oomguard::detail {

// Free blocks in segregated bins, 128 per doubling of size, each a
// contiguous array of (size, block) in the order the blocks were freed, and
// a bitmap of the bins that hold anything. A block is split when what is
// left is at least kMinRemainder: 512 B in the small pool, and in the large
// pool more than 1 MiB, since a smaller tail could serve no large request
// (PyTorch makes the same choice). kMaxBlock bounds the bins: a pool's
// blocks are never larger than its largest segment.
//
// Note [Best fit with bins]
// A request's own bin holds blocks within 0.8% of its size, some smaller
// than it; every block in any higher bin is larger. So the best fit is the
// smallest fitting block of the request's bin, else the smallest block of the
// next non-empty bin (one bit scan). The search reads a bin as contiguous
// memory, never touches a Block, and stops early at an entry of the least
// size possible (the request's, or the bin's lower edge): cached whole
// segments pile up at one size (800 of 20 MiB with 10,000 random blocks up
// to 64 MiB live, where bins hold 23 entries on average), yet a search
// reads 1.5 entries on average. Among blocks of the best size the most
// recently freed wins (the search runs from the newest entry back; erase
// keeps the order), so the pool's choices depend only on the order of
// requests.
// Measured on BM_CacheHitPair/10000, in instructions: this design takes a
// block in ~165 and gives one back in ~110. Measured and dropped:
//  * 32 bins per doubling, scanned whole: ~370 per take;
//  * sorted bins (binary search, memmove on insert and erase): take and
//    give together cost as much, and ties broken by address moved ~800
//    entries per insert in the 20 MiB bin;
//  * absl::btree_set: ~2x the instructions per pair;
//  * each block keeping its index in its bin (swap-with-last erase) wrote
//    to the moved entry's Block, a cache miss on an unrelated record.
template <std::size_t kMinRemainder, std::size_t kMaxBlock>
class BestFitPool {
 public:
  BestFitPool() = default;
  BestFitPool(const BestFitPool&) = delete;
  BestFitPool& operator=(const BestFitPool&) = delete;
  ~BestFitPool() {
    for (Block* b : spare_) delete b;
  }

  // Best fit: the smallest free block that holds `size`, split when the rest
  // is worth keeping. nullptr when none fits.
  Block* take(std::size_t size);
  // Return a block, merging it with free neighbours of its segment.
  void give(Block* b);
  // A new segment: its one block is split to `size` and returned.
  Block* adopt_segment(Segment& segment, std::size_t size);
  // Remove a fully free segment's block from the free lists.
  void drop_segment(Segment& segment);
  std::size_t largest_free() const;

  static constexpr std::size_t kSubBinBits = 7;
  static constexpr std::size_t kSubBins = std::size_t{1} << kSubBinBits;
  static constexpr std::size_t kBins = (std::bit_width(kMaxBlock) - 9) * kSubBins;
  static constexpr std::size_t bin_of(std::size_t size) {
    if (size < kMinBlock) return 0;
    const std::size_t k = std::bit_width(size) - 1;  // floor(log2), >= 9
    return (k - 9) * kSubBins + ((size >> (k - kSubBinBits)) & (kSubBins - 1));
  }
  // The least size that falls in `bin`.
  static constexpr std::size_t bin_floor(std::size_t bin) {
    const std::size_t k = bin / kSubBins + 9;
    return (std::size_t{1} << k) + (bin % kSubBins) * (std::size_t{1} << (k - kSubBinBits));
  }

 private:
  struct Entry {
    std::size_t size;
    Block* block;
  };

  Block* split(Block* b, std::size_t size);
  void insert_free(Block* b);
  void erase_free(Block* b);
  void erase_entry(std::size_t bin, typename std::vector<Entry>::iterator it);
  // The smallest entry of `bin` of at least `size`, newest first among
  // equals; end() if none.
  typename std::vector<Entry>::iterator best_fit(std::size_t bin, std::size_t size);
  std::size_t next_nonempty(std::size_t bin) const;  // kBins if none
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

  std::array<std::vector<Entry>, kBins> bins_;
  std::array<std::uint64_t, (kBins + 63) / 64> nonempty_{};
  std::vector<Block*> spare_;
};

// Small blocks are at most a small segment; large ones any size.
using SmallPool = BestFitPool<kMinBlock, kSmallSegment>;
using LargePool = BestFitPool<kSmallLimit + kMinBlock, ~std::size_t{0}>;
extern template class BestFitPool<kMinBlock, kSmallSegment>;
extern template class BestFitPool<kSmallLimit + kMinBlock, ~std::size_t{0}>;

static_assert(LargePool::bin_of(LargePool::bin_floor(700)) == 700);
static_assert(LargePool::bin_of(LargePool::bin_floor(700) - 1) == 699);
static_assert(LargePool::bin_floor(LargePool::bin_of(std::size_t{20} << 20)) == std::size_t{20} << 20);
static_assert(SmallPool::bin_of(kSmallSegment) == SmallPool::kBins - LargePool::kSubBins);
static_assert(LargePool::kBins == (64 - 9) * LargePool::kSubBins);

struct StreamPools {
  const void* owner = nullptr;  // the CachingAllocator
  std::uintptr_t stream = 0;
  SmallPool small;
  LargePool large;
};

}  // namespace oomguard::detail
