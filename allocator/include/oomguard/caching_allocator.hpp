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
