#include "pools.hpp"

#include <algorithm>

namespace oomguard::detail {

template <std::size_t kMinRemainder, std::size_t kMaxBlock>
Block* BestFitPool<kMinRemainder, kMaxBlock>::split(Block* b, std::size_t size) {
  if (b->size - size < kMinRemainder) return b;
  Block* rest = make_block();
  rest->address = b->address + size;
  rest->size = b->size - size;
  rest->segment = b->segment;
  rest->pools = b->pools;
  rest->small = b->small;
  rest->prev = b;
  rest->next = b->next;
  if (b->next != nullptr) b->next->prev = rest;
  b->next = rest;
  b->size = size;
  insert_free(rest);
  return b;
}

template <std::size_t kMinRemainder, std::size_t kMaxBlock>
void BestFitPool<kMinRemainder, kMaxBlock>::insert_free(Block* b) {
  const std::size_t bin = bin_of(b->size);
  bins_[bin].push_back(Entry{b->size, b});
  nonempty_[bin / 64] |= std::uint64_t{1} << (bin % 64);
}

template <std::size_t kMinRemainder, std::size_t kMaxBlock>
void BestFitPool<kMinRemainder, kMaxBlock>::erase_free(Block* b) {
  const std::size_t bin = bin_of(b->size);
  auto& entries = bins_[bin];
  auto it = entries.begin();
  while (it->block != b) ++it;
  erase_entry(bin, it);
}

template <std::size_t kMinRemainder, std::size_t kMaxBlock>
void BestFitPool<kMinRemainder, kMaxBlock>::erase_entry(std::size_t bin, typename std::vector<Entry>::iterator it) {
  auto& entries = bins_[bin];
  entries.erase(it);  // keeps the order of the rest: Note [Best fit with bins]
  if (entries.empty()) nonempty_[bin / 64] &= ~(std::uint64_t{1} << (bin % 64));
}

template <std::size_t kMinRemainder, std::size_t kMaxBlock>
auto BestFitPool<kMinRemainder, kMaxBlock>::best_fit(std::size_t bin, std::size_t size) -> typename std::vector<Entry>::iterator {
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

template <std::size_t kMinRemainder, std::size_t kMaxBlock>
std::size_t BestFitPool<kMinRemainder, kMaxBlock>::next_nonempty(std::size_t bin) const {
  std::size_t word = bin / 64;
  std::uint64_t bits = bin % 64 == 63 ? 0 : nonempty_[word] & (~std::uint64_t{0} << (bin % 64 + 1));
  while (bits == 0) {
    if (++word == nonempty_.size()) return kBins;
    bits = nonempty_[word];
  }
  return word * 64 + static_cast<std::size_t>(std::countr_zero(bits));
}

template <std::size_t kMinRemainder, std::size_t kMaxBlock>
std::size_t BestFitPool<kMinRemainder, kMaxBlock>::largest_free() const {
  for (std::size_t word = nonempty_.size(); word-- > 0;) {
    if (nonempty_[word] == 0) continue;
    const std::size_t bin = word * 64 + 63 - static_cast<std::size_t>(std::countl_zero(nonempty_[word]));
    std::size_t largest = 0;
    for (const Entry& e : bins_[bin]) largest = std::max(largest, e.size);
    return largest;
  }
  return 0;
}

template <std::size_t kMinRemainder, std::size_t kMaxBlock>
Block* BestFitPool<kMinRemainder, kMaxBlock>::take(std::size_t size) {
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

template <std::size_t kMinRemainder, std::size_t kMaxBlock>
void BestFitPool<kMinRemainder, kMaxBlock>::give(Block* b) {
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

template <std::size_t kMinRemainder, std::size_t kMaxBlock>
Block* BestFitPool<kMinRemainder, kMaxBlock>::adopt_segment(Segment& segment, std::size_t size) {
  Block* b = make_block();
  b->address = segment.base;
  b->size = segment.size;
  b->segment = &segment;
  b->pools = segment.pools;
  b->small = segment.small;
  segment.first = b;
  return split(b, size);
}

template <std::size_t kMinRemainder, std::size_t kMaxBlock>
void BestFitPool<kMinRemainder, kMaxBlock>::drop_segment(Segment& segment) {
  erase_free(segment.first);
}

template class BestFitPool<kMinBlock, kSmallSegment>;
template class BestFitPool<kSmallLimit + kMinBlock, ~std::size_t{0}>;

}  // namespace oomguard::detail
