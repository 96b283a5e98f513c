#include "oomguard/caching_allocator.hpp"

#include <absl/container/flat_hash_map.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <vector>

#include "detail/pools.hpp"
#include "detail/spin_lock.hpp"
#include "oomguard/error.hpp"

namespace oomguard {

using detail::Block;
using detail::Segment;
using detail::StreamPools;

struct CachingAllocator::DeviceCache {
  mutable detail::SpinLock mutex;  // held for pool bookkeeping only, never across the upstream
  const void* owner = nullptr;     // the CachingAllocator, stamped on its pools
  absl::flat_hash_map<std::uintptr_t, std::unique_ptr<StreamPools>> pools;
  StreamPools* last_pools = nullptr;  // most runs use one stream per device
  absl::flat_hash_map<std::uintptr_t, std::unique_ptr<Segment>> segments;  // by base
  Budget budget;
  AllocatorStats stats;  // counters, under mutex

  StreamPools& pools_for(std::uintptr_t stream) {
    if (last_pools != nullptr && last_pools->stream == stream) return *last_pools;
    auto& slot = pools[stream];
    if (!slot) {
      slot = std::make_unique<StreamPools>();
      slot->stream = stream;
      slot->owner = owner;
    }
    last_pools = slot.get();
    return *slot;
  }

  void hand_out(Block* b, std::size_t requested, Category category) {
    b->allocated = true;
    b->requested = requested;
    b->category = category;
    stats.allocated_bytes += b->size;
    stats.requested_bytes += requested;
    stats.peak_allocated_bytes = std::max(stats.peak_allocated_bytes, stats.allocated_bytes);
    ++stats.live_allocations;
  }

  static Block* take(StreamPools& p, bool small, std::size_t size) {
    return small ? p.small.take(size) : p.large.take(size);
  }
};

CachingAllocator::CachingAllocator(std::shared_ptr<Upstream> upstream, CachingAllocatorOptions options, Ledger* ledger)
    : upstream_(std::move(upstream)),
      options_(options),
      ledger_(ledger),
      limits_(options.category_limits),
      devices_(upstream_->device_count()),
      caches_(new DeviceCache[static_cast<std::size_t>(std::max(devices_, 1))]) {
  for (int d = 0; d < devices_; ++d) {
    caches_[static_cast<std::size_t>(d)].owner = this;
    caches_[static_cast<std::size_t>(d)].budget.set_limit(options_.budget_bytes);
    caches_[static_cast<std::size_t>(d)].stats.device = d;
    caches_[static_cast<std::size_t>(d)].stats.budget_bytes = options_.budget_bytes;
  }
}

namespace {
// Calls fn(block) for every live block of a segment.
template <typename Fn>
void for_each_live_block(const Segment& segment, Fn&& fn) {
  for (const Block* b = segment.first; b != nullptr; b = b->next) {
    if (b->allocated) fn(*b);
  }
}

bool owned_by(std::uintptr_t owner, const void* allocator) noexcept {
  return owner != 0 && reinterpret_cast<const Block*>(owner)->pools->owner == allocator;
}
}  // namespace

CachingAllocator::~CachingAllocator() {
  for (int d = 0; d < devices_; ++d) {
    DeviceCache& cache = caches_[static_cast<std::size_t>(d)];
    if (cache.stats.live_allocations != 0) {
      std::fprintf(stderr, "oomguard: allocator destroyed with %llu live allocations on device %d\n",
                   static_cast<unsigned long long>(cache.stats.live_allocations), d);
    }
    for (const auto& [base, segment] : cache.segments) {
      for_each_live_block(*segment, [&](const Block& b) { ledger_->release(b.address); });
      ledger_->segment_free(d, segment->size, base);  // before: Note [Reserved never counts a freed segment]
      upstream_->deallocate(reinterpret_cast<void*>(base), segment->size, d);
    }
  }
}

CachingAllocator::DeviceCache& CachingAllocator::cache_for(int device) const {
  return caches_[static_cast<std::size_t>(device)];
}

void* CachingAllocator::allocate(std::size_t bytes, int device, std::uintptr_t stream) {
  return allocate_tagged(bytes, device, stream, current_tag());
}

void* CachingAllocator::allocate_tagged(std::size_t bytes, int device, std::uintptr_t stream, Tag tag) {
  if (bytes == 0) throw invalid_request("oomguard: zero-byte allocation requested; sizes must be at least 1 byte");
  if (device < 0 || device >= devices_) {
    throw invalid_request(fmt::format("oomguard: allocation on device {}, but the {} upstream has devices 0..{}",
                                      device, upstream_->name(), devices_ - 1));
  }
  if (bytes > detail::kMaxRequest) {
    throw_oom(device, bytes, fmt::format("larger than the most one request may ask, {}",
                                         format_bytes(static_cast<std::int64_t>(detail::kMaxRequest))));
  }
  if (!options_.per_stream_pools) stream = 0;
  if (!limits_.try_charge(tag.category, bytes)) {
    throw_oom(device, bytes, fmt::format("category limit: {} at {}", name(tag.category),
                                         format_bytes(static_cast<std::int64_t>(limits_.limit(tag.category)))));
  }
  const std::size_t size = detail::block_size(bytes);
  const bool small = size <= detail::kSmallLimit;
  DeviceCache& cache = cache_for(device);

  Block* b = nullptr;
  {
    std::lock_guard lock(cache.mutex);
    b = DeviceCache::take(cache.pools_for(stream), small, size);
    if (b != nullptr) {
      cache.hand_out(b, bytes, tag.category);
      ++cache.stats.cache_hits;
    }
  }

  // Note [Miss path]: budget first (atomic, rolled back on failure), then the
  // upstream with no lock held. Either refusal releases the device's cached
  // segments and tries once more before giving up.
  const std::size_t segment_size = detail::segment_size(size);
  for (int attempt = 0; b == nullptr; ++attempt) {
    std::string refusal;
    void* base = nullptr;
    if (!cache.budget.try_reserve(segment_size)) {
      refusal = fmt::format("budget of {} reached", format_bytes(static_cast<std::int64_t>(options_.budget_bytes)));
    } else {
      try {
        base = upstream_->allocate(segment_size, device);
      } catch (...) {
        cache.budget.release(segment_size);
        limits_.release(tag.category, bytes);
        throw;
      }
      if (base == nullptr) {
        cache.budget.release(segment_size);
        refusal = fmt::format("the {} device refused {}", upstream_->name(),
                              format_bytes(static_cast<std::int64_t>(segment_size)));
        std::lock_guard lock(cache.mutex);
        ++cache.stats.upstream_failures;
      }
    }
    if (base == nullptr) {
      if (attempt == 0 && release_cached(device) > 0) continue;
      limits_.release(tag.category, bytes);
      throw_oom(device, bytes, refusal);
    }
    {
      std::lock_guard lock(cache.mutex);
      StreamPools& pools = cache.pools_for(stream);
      auto segment = std::make_unique<Segment>();
      segment->base = reinterpret_cast<std::uintptr_t>(base);
      segment->size = segment_size;
      segment->pools = &pools;
      segment->small = small;
      b = small ? pools.small.adopt_segment(*segment, size) : pools.large.adopt_segment(*segment, size);
      cache.segments.emplace(segment->base, std::move(segment));
      cache.stats.reserved_bytes += segment_size;
      cache.stats.peak_reserved_bytes = std::max(cache.stats.peak_reserved_bytes, cache.stats.reserved_bytes);
      ++cache.stats.segments;
      ++cache.stats.upstream_allocs;
      ++cache.stats.cache_misses;
      if (attempt > 0) ++cache.stats.retries;
      cache.hand_out(b, bytes, tag.category);
    }
    ledger_->segment_alloc(device, segment_size, reinterpret_cast<std::uintptr_t>(base));
  }
  ledger_->record(b->address, bytes, device, stream, tag, reinterpret_cast<std::uintptr_t>(b));
  return reinterpret_cast<void*>(b->address);
}

void CachingAllocator::deallocate(void* ptr, std::size_t bytes, int device, std::uintptr_t /*stream*/) {
  const auto address = reinterpret_cast<std::uintptr_t>(ptr);
  if (device < 0 || device >= devices_) {
    throw invalid_free(fmt::format("oomguard: free of {} on device {}, but the {} upstream has devices 0..{}", ptr,
                                   device, upstream_->name(), devices_ - 1));
  }
  // Note [One pointer map]: the Ledger's record of a block carries the block
  // (its owner), so the Ledger is the only address -> allocation map. The
  // release checks the free under the Ledger's shard lock and forgets the
  // record before the block returns to a pool, so no other thread can be
  // handed the address while its old record is still live.
  const Ledger::CheckedRelease result = ledger_->release_checked(address, device, bytes, &owned_by, this);
  DeviceCache& cache = cache_for(device);
  if (result.status != Ledger::ReleaseStatus::released) {
    refuse_free(ptr, bytes, device, result);
  }
  auto* b = reinterpret_cast<Block*>(result.released.owner);
  Category charged;  // Note [Category limits across retags]: not result.released.category
  {
    std::lock_guard lock(cache.mutex);
    charged = b->category;
    b->allocated = false;
    cache.stats.allocated_bytes -= b->size;
    cache.stats.requested_bytes -= b->requested;
    --cache.stats.live_allocations;
    StreamPools& pools = *b->pools;
    if (b->small) {
      pools.small.give(b);
    } else {
      pools.large.give(b);
    }
  }
  limits_.release(charged, result.released.size);
}

void CachingAllocator::refuse_free(void* ptr, std::size_t bytes, int device, const Ledger::CheckedRelease& result) {
  DeviceCache& cache = cache_for(device);
  bool inside = false;
  {
    std::lock_guard lock(cache.mutex);
    ++cache.stats.invalid_frees;
    const auto address = reinterpret_cast<std::uintptr_t>(ptr);
    inside = std::any_of(cache.segments.begin(), cache.segments.end(), [&](const auto& entry) {
      return address >= entry.first && address < entry.first + entry.second->size;
    });
  }
  switch (result.status) {
    case Ledger::ReleaseStatus::wrong_device:
      throw invalid_free(fmt::format(
          "oomguard: free of {} on device {}, but it was allocated on device {}; nothing was freed", ptr, device,
          result.released.device));
    case Ledger::ReleaseStatus::wrong_size:
      throw invalid_free(fmt::format(
          "oomguard: free of {} with size {}, but it was allocated with size {}; nothing was freed", ptr, bytes,
          result.released.size));
    case Ledger::ReleaseStatus::not_live:
    case Ledger::ReleaseStatus::foreign:
    case Ledger::ReleaseStatus::released:
      break;
  }
  throw invalid_free(fmt::format(
      "oomguard: free of {} on device {}: {}; nothing was freed", ptr, device,
      inside ? "it is not a live allocation (double free, or a pointer into a block)"
             : "this allocator never returned it (foreign pointer)"));
}

std::size_t CachingAllocator::release_cached(int device) {
  DeviceCache& cache = cache_for(device);
  std::vector<std::unique_ptr<Segment>> released;
  {
    std::lock_guard lock(cache.mutex);
    for (auto it = cache.segments.begin(); it != cache.segments.end();) {
      Segment& s = *it->second;
      if (!s.fully_free()) {
        ++it;
        continue;
      }
      if (s.small) {
        s.pools->small.drop_segment(s);
      } else {
        s.pools->large.drop_segment(s);
      }
      cache.stats.reserved_bytes -= s.size;
      --cache.stats.segments;
      ++cache.stats.upstream_frees;
      released.push_back(std::move(it->second));
      cache.segments.erase(it++);
    }
    if (released.empty()) return 0;
  }
  std::size_t bytes = 0;
  for (const auto& s : released) {
    // Note [Reserved never counts a freed segment]
    // The Ledger stops counting a segment before the device takes it back,
    // and starts counting one after the device handed it out (segment_alloc
    // follows the upstream's allocate). Freed after, another thread's new
    // segment could be counted while the old one still was: under 8-thread
    // churn on a 315 MB simulated device the Ledger's peak reserved read
    // 323 MB. In this order the Ledger's reserved is never above what the
    // device has given out at any moment.
    ledger_->segment_free(device, s->size, s->base);
    upstream_->deallocate(reinterpret_cast<void*>(s->base), s->size, device);
    cache.budget.release(s->size);
    bytes += s->size;
  }
  return bytes;
}

void CachingAllocator::release_cached() {
  for (int d = 0; d < devices_; ++d) release_cached(d);
}

AllocatorStats CachingAllocator::stats(int device) const {
  if (device < 0 || device >= devices_) {
    throw invalid_request(fmt::format("oomguard: no device {} (devices 0..{})", device, devices_ - 1));
  }
  DeviceCache& cache = cache_for(device);
  std::lock_guard lock(cache.mutex);
  AllocatorStats out = cache.stats;
  for (const auto& [stream, pools] : cache.pools) {
    out.largest_free_block = std::max({out.largest_free_block, pools->small.largest_free(), pools->large.largest_free()});
  }
  const std::uint64_t inactive = out.reserved_bytes - out.allocated_bytes;
  out.fragmentation = inactive == 0 ? 0.0
                                    : 1.0 - static_cast<double>(out.largest_free_block) / static_cast<double>(inactive);
  return out;
}

void CachingAllocator::throw_oom(int device, std::size_t bytes, std::string reason) {
  OomContext context;
  context.requested_bytes = bytes;
  context.device = device;
  context.budget_bytes = options_.budget_bytes;
  context.reason = std::move(reason);
  {
    DeviceCache& cache = cache_for(device);
    std::lock_guard lock(cache.mutex);
    ++cache.stats.ooms;
  }
  const AllocatorStats s = stats(device);
  context.allocated_bytes = s.allocated_bytes;
  context.reserved_bytes = s.reserved_bytes;
  context.largest_free_block = s.largest_free_block;
  context.by_category = ledger_->device_stats(device).current;
  ledger_->note_oom(device, bytes);
  notify_out_of_memory(context);
  throw out_of_memory(std::move(context));
}

}  // namespace oomguard
