// The caching allocator: segments from an upstream, cut into blocks and kept
// for reuse, under a hard budget; every allocation feeds a Ledger.
//
// Note [Locks and the driver]
// Each device has one non-recursive mutex over its pools and its
// pointer->block map; there is no process-wide lock. The tag (category,
// phase, step) is read before the lock. The upstream is never called with the
// mutex held: a miss unlocks, reserves budget, asks the upstream, then relocks
// to carve the new segment. Releasing the cache detaches fully free segments
// under the lock and returns them to the upstream after it. The Ledger is
// the only address -> block map (Note [One pointer map]): a record goes to it
// after the device lock is dropped, a release before the device lock is
// taken, so the two locks never nest.
//
// Note [Category limits across retags]
// A category limit (limit_activations:4GiB) is charged with the category of
// the allocation's tag. The census later retags blocks in the Ledger
// (activations that are gradients, temporaries that are optimizer state),
// and the Ledger calls out to nothing, so the allocator does not see it.
// The rule: the charge stays with the category it was charged to, until the
// block is freed. The block remembers it (Block::category, set when it is
// handed out, on the block's own cache line, which the free touches anyway)
// and the free releases that category, never the Ledger's current one.
// Releasing the current one would take bytes off a counter that was never
// charged for them (wrapping a limit's unsigned count) and leave the charged
// one full for good: allocate 3 MiB of activations under a 4 MiB limit,
// retag them as weights, free them, and the next 3 MiB of activations would
// be refused with nothing allocated. The other rule, limits that follow
// retags, would need the Ledger to call the allocator, and could only
// overshoot a limit (the bytes already exist); a limit bounds what is
// allocated under a tag, which is what a limit can refuse.
#pragma once

#include <array>
#include <cstdint>
#include <memory>

#include "oomguard/budget.hpp"
#include "oomguard/device_allocator.hpp"
#include "oomguard/ledger.hpp"
#include "oomguard/upstream.hpp"

namespace oomguard {

struct CachingAllocatorOptions {
  std::uint64_t budget_bytes = 0;  // per device, on reserved bytes; 0: none
  CategoryLimits::Limits category_limits{};  // per category, on allocated bytes; 0: none
  bool per_stream_pools = true;  // false: one pool per device whatever the stream
};

class CachingAllocator final : public DeviceAllocator {
 public:
  CachingAllocator(std::shared_ptr<Upstream> upstream, CachingAllocatorOptions options = {},
                   Ledger* ledger = &Ledger::global());
  ~CachingAllocator() override;
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  void* allocate(std::size_t bytes, int device, std::uintptr_t stream) override;
  void deallocate(void* ptr, std::size_t bytes, int device, std::uintptr_t stream) override;
  AllocatorStats stats(int device) const override;
  void release_cached() override;

  Upstream& upstream() const { return *upstream_; }
  Ledger& ledger() const { return *ledger_; }
  const CachingAllocatorOptions& options() const { return options_; }

 private:
  struct DeviceCache;
  DeviceCache& cache_for(int device) const;
  void* allocate_tagged(std::size_t bytes, int device, std::uintptr_t stream, Tag tag);
  [[noreturn]] void throw_oom(int device, std::size_t bytes, std::string reason);
  [[noreturn]] void refuse_free(void* ptr, std::size_t bytes, int device, const Ledger::CheckedRelease& result);
  std::size_t release_cached(int device);

  std::shared_ptr<Upstream> upstream_;
  CachingAllocatorOptions options_;
  Ledger* ledger_;
  CategoryLimits limits_;
  int devices_;
  std::unique_ptr<DeviceCache[]> caches_;
};

}  // namespace oomguard
