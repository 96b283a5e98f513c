#include "pools.hpp"

#include <algorithm>

namespace oomguard::detail {

namespace {
// Splitting leaves a remainder only when it can serve a large request;
// smaller tails stay inside the block (PyTorch makes the same choice).
constexpr std::size_t kMinSplitRemainder = kSmallLimit;
}  // namespace

Block* SmallPool::adopt_slab(Segment& slab) {
  const std::size_t block_size = small_class_size(slab.size_class);
  const std::size_t count = slab.size / block_size;
  slab.slab.resize(count);
  for (std::size_t i = 0; i < count; ++i) {
    Block& b = slab.slab[i];
    b.address = slab.base + i * block_size;
    b.size = block_size;
    b.segment = &slab;
    b.pools = slab.pools;
    b.small = true;
  }
  auto& list = free_[slab.size_class];
  for (std::size_t i = count; i-- > 1;) list.push_back(&slab.slab[i]);
  slab.free_blocks = count - 1;
  return &slab.slab[0];
}

void SmallPool::drop_released(const std::vector<Segment*>& released) {
  std::array<bool, kNumSmallClasses> touched{};
  for (const Segment* s : released) {
    if (s->small) touched[s->size_class] = true;
  }
  for (std::size_t cls = 0; cls < kNumSmallClasses; ++cls) {
    if (touched[cls]) std::erase_if(free_[cls], [](const Block* b) { return b->segment->releasing; });
  }
}

std::size_t SmallPool::largest_free() const {
  for (std::size_t cls = kNumSmallClasses; cls-- > 0;) {
    if (!free_[cls].empty()) return small_class_size(cls);
  }
  return 0;
}

Block* LargePool::split(Block* b, std::size_t size) {
  if (b->size - size < kMinSplitRemainder) return b;
  Block* rest = make_block();
  rest->address = b->address + size;
  rest->size = b->size - size;
  rest->segment = b->segment;
  rest->pools = b->pools;
  rest->prev = b;
  rest->next = b->next;
  if (b->next != nullptr) b->next->prev = rest;
  b->next = rest;
  b->size = size;
  insert_free(rest);
  return b;
}

void LargePool::insert_free(Block* b) {
  const std::size_t bin = bin_of(b->size);
  bins_[bin].push_back(Entry{b->size, b});
  nonempty_[bin / 64] |= std::uint64_t{1} << (bin % 64);
}

void LargePool::erase_free(Block* b) {
  const std::size_t bin = bin_of(b->size);
  auto& entries = bins_[bin];
  auto it = entries.begin();
  while (it->block != b) ++it;
  erase_entry(bin, it);
}

void LargePool::erase_entry(std::size_t bin, std::vector<Entry>::iterator it) {
  auto& entries = bins_[bin];
  entries.erase(it);  // keeps the order of the rest: Note [Best fit with bins]
  if (entries.empty()) nonempty_[bin / 64] &= ~(std::uint64_t{1} << (bin % 64));
}

std::vector<LargePool::Entry>::iterator LargePool::best_fit(std::size_t bin, std::size_t size) {
  // From the newest entry back; `size` is the least any entry can be (the
  // request, or the lower edge of a higher bin), so an entry of exactly that
  // size ends the search.
  auto& entries = bins_[bin];
  auto best = entries.end();
  for (auto it = entries.end(); it != entries.begin();) {
    --it;
    if (it->size < size || (best != entries.end() && it->size >= best->size)) continue;
    best = it;
    if (it->size == size) break;
  }
  return best;
}

std::size_t LargePool::next_nonempty(std::size_t bin) const {
  std::size_t word = bin / 64;
  std::uint64_t bits = bin % 64 == 63 ? 0 : nonempty_[word] & (~std::uint64_t{0} << (bin % 64 + 1));
  while (bits == 0) {
    if (++word == nonempty_.size()) return kBins;
    bits = nonempty_[word];
  }
  return word * 64 + static_cast<std::size_t>(std::countr_zero(bits));
}

std::size_t LargePool::largest_free() const {
  for (std::size_t word = nonempty_.size(); word-- > 0;) {
    if (nonempty_[word] == 0) continue;
    const std::size_t bin = word * 64 + 63 - static_cast<std::size_t>(std::countl_zero(nonempty_[word]));
    std::size_t largest = 0;
    for (const Entry& e : bins_[bin]) largest = std::max(largest, e.size);
    return largest;
  }
  return 0;
}

Block* LargePool::take(std::size_t size) {
  std::size_t bin = bin_of(size);
  auto fit = best_fit(bin, size);
  if (fit == bins_[bin].end()) {
    bin = next_nonempty(bin);
    if (bin == kBins) return nullptr;
    fit = best_fit(bin, bin_floor(bin));
  }
  Block* b = fit->block;
  erase_entry(bin, fit);
  return split(b, size);
}

void LargePool::give(Block* b) {
  if (Block* prev = b->prev; prev != nullptr && !prev->allocated) {
    erase_free(prev);
    prev->size += b->size;
    prev->next = b->next;
    if (b->next != nullptr) b->next->prev = prev;
    recycle(b);
    b = prev;
  }
  if (Block* next = b->next; next != nullptr && !next->allocated) {
    erase_free(next);
    b->size += next->size;
    b->next = next->next;
    if (next->next != nullptr) next->next->prev = b;
    recycle(next);
  }
  insert_free(b);
}

Block* LargePool::adopt_segment(Segment& segment, std::size_t size) {
  Block* b = make_block();
  b->address = segment.base;
  b->size = segment.size;
  b->segment = &segment;
  b->pools = segment.pools;
  segment.first = b;
  return split(b, size);
}

void LargePool::drop_segment(Segment& segment) {
  erase_free(segment.first);
}

}  // namespace oomguard::detail
