// One typed suite, instantiated over every allocator configuration.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <limits>
#include <random>
#include <thread>
#include <vector>

#include "allocator_fixtures.hpp"
#include "oomguard/error.hpp"

using namespace oomguard;
using namespace oomguard::test;

template <typename Config>
class AllocatorSuite : public ::testing::Test {
 protected:
  AllocatorUnderTest<Config> under_test;
  SimulatedDevice& device() { return *under_test.device; }
  Ledger& ledger() { return under_test.ledger; }
  CachingAllocator& allocator() { return *under_test.allocator; }

  // Everything returned, the cache emptied: nothing may be left anywhere.
  void expect_clean() {
    allocator().release_cached();
    for (int d = 0; d < 2; ++d) {
      const auto s = allocator().stats(d);
      EXPECT_EQ(s.allocated_bytes, 0u);
      EXPECT_EQ(s.requested_bytes, 0u);
      EXPECT_EQ(s.reserved_bytes, 0u);
      EXPECT_EQ(s.live_allocations, 0u);
      EXPECT_EQ(device().used_bytes(d), 0u);
      const auto l = ledger().device_stats(d);
      EXPECT_EQ(l.allocated, 0);
      EXPECT_EQ(l.reserved, 0);
      EXPECT_EQ(l.live_allocations, 0);
    }
    EXPECT_EQ(device().outstanding(), 0u);
    EXPECT_TRUE(ledger().live_allocations().empty());
  }
};
TYPED_TEST_SUITE_P(AllocatorSuite);

TYPED_TEST_P(AllocatorSuite, AllocatesAlignedDistinctBlocksOfManySizes) {
  std::vector<std::pair<void*, std::size_t>> blocks;
  for (std::size_t size : {1ul, 511ul, 512ul, 4097ul, 65536ul, 1ul << 20, (1ul << 20) + 1, 3ul << 20, 25ul << 20}) {
    void* p = this->allocator().allocate(size, 0, 0);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % 512, 0u);
    if constexpr (TypeParam::kWritable) std::memset(p, 0xab, size);
    blocks.emplace_back(p, size);
  }
  std::sort(blocks.begin(), blocks.end());
  for (std::size_t i = 1; i < blocks.size(); ++i) {
    EXPECT_GE(reinterpret_cast<std::uintptr_t>(blocks[i].first),
              reinterpret_cast<std::uintptr_t>(blocks[i - 1].first) + blocks[i - 1].second);
  }
  for (auto [p, size] : blocks) this->allocator().deallocate(p, size, 0, 0);
  this->expect_clean();
}

TYPED_TEST_P(AllocatorSuite, FreedBlocksAreServedFromTheCache) {
  void* a = this->allocator().allocate(3000, 0, 0);
  void* big = this->allocator().allocate(30 << 20, 0, 0);
  const auto before = this->allocator().stats(0);
  this->allocator().deallocate(a, 3000, 0, 0);
  this->allocator().deallocate(big, 30 << 20, 0, 0);
  void* again = this->allocator().allocate(2900, 0, 0);
  void* big_again = this->allocator().allocate(29 << 20, 0, 0);
  const auto after = this->allocator().stats(0);
  EXPECT_EQ(after.upstream_allocs, before.upstream_allocs);
  EXPECT_EQ(after.cache_hits, before.cache_hits + 2);
  EXPECT_EQ(again, a);
  EXPECT_EQ(big_again, big);
  this->allocator().deallocate(again, 2900, 0, 0);
  this->allocator().deallocate(big_again, 29 << 20, 0, 0);
  this->expect_clean();
}

TYPED_TEST_P(AllocatorSuite, SplitBlocksCoalesceBackIntoTheirSegment) {
  // Three medium blocks share one 20 MiB segment; freed in any order they
  // merge back, and one 20 MiB request is then a hit.
  void* a = this->allocator().allocate(5 << 20, 0, 0);
  void* b = this->allocator().allocate(5 << 20, 0, 0);
  void* c = this->allocator().allocate(5 << 20, 0, 0);
  EXPECT_EQ(this->allocator().stats(0).segments, 1u);
  this->allocator().deallocate(b, 5 << 20, 0, 0);
  this->allocator().deallocate(a, 5 << 20, 0, 0);
  this->allocator().deallocate(c, 5 << 20, 0, 0);
  const auto s = this->allocator().stats(0);
  EXPECT_EQ(s.largest_free_block, 20u << 20);
  EXPECT_DOUBLE_EQ(s.fragmentation, 0.0);
  void* whole = this->allocator().allocate(20 << 20, 0, 0);
  EXPECT_EQ(whole, a);
  EXPECT_EQ(this->allocator().stats(0).upstream_allocs, s.upstream_allocs);
  this->allocator().deallocate(whole, 20 << 20, 0, 0);
  this->expect_clean();
}

TYPED_TEST_P(AllocatorSuite, BestFitPicksTheSmallestFreeBlockThatHolds) {
  // Each request of 10 MiB or more gets a segment of its own, so these three
  // free blocks cannot coalesce.
  void* b30 = this->allocator().allocate(30 << 20, 0, 0);
  void* b22 = this->allocator().allocate(22 << 20, 0, 0);
  void* b26 = this->allocator().allocate(26 << 20, 0, 0);
  void* b23 = this->allocator().allocate((22 << 20) + 4096, 0, 0);  // same bin as 22 MiB, larger
  this->allocator().deallocate(b30, 30 << 20, 0, 0);
  this->allocator().deallocate(b26, 26 << 20, 0, 0);
  this->allocator().deallocate(b23, (22 << 20) + 4096, 0, 0);
  this->allocator().deallocate(b22, 22 << 20, 0, 0);
  void* got21 = this->allocator().allocate(21 << 20, 0, 0);
  EXPECT_EQ(got21, b22);
  void* got25 = this->allocator().allocate(25 << 20, 0, 0);
  EXPECT_EQ(got25, b26);
  void* got22 = this->allocator().allocate((22 << 20) + 1, 0, 0);
  EXPECT_EQ(got22, b23);
  this->allocator().deallocate(got21, 21 << 20, 0, 0);
  this->allocator().deallocate(got25, 25 << 20, 0, 0);
  this->allocator().deallocate(got22, (22 << 20) + 1, 0, 0);
  this->expect_clean();
}

// Note [Best fit with bins]: among free blocks of the best size the most
// recently freed is taken, whatever the order of their addresses, and a
// size in between takes the smallest block that holds it, many equal
// blocks or not.
TYPED_TEST_P(AllocatorSuite, BestFitAmongEqualSizesTakesTheMostRecentlyFreed) {
  constexpr std::size_t kSize = 12 << 20;  // a segment of its own each
  std::vector<void*> blocks;
  std::vector<std::size_t> sizes(30, kSize);
  for (int i = 0; i < 30; ++i) blocks.push_back(this->allocator().allocate(kSize, 0, 0));
  void* larger = this->allocator().allocate(kSize + (4 << 20), 0, 0);
  this->allocator().deallocate(larger, kSize + (4 << 20), 0, 0);
  for (int i : {7, 21, 2, 19, 28, 0, 25}) this->allocator().deallocate(blocks[i], kSize, 0, 0);
  for (int i : {25, 0, 28, 19, 2, 21, 7}) {
    void* got = this->allocator().allocate(kSize - 4096, 0, 0);
    EXPECT_EQ(got, blocks[i]);
    blocks[i] = got;
    sizes[i] = kSize - 4096;
  }
  // Only the larger block is free now: a request above the common size gets it.
  void* got = this->allocator().allocate(kSize + 1, 0, 0);
  EXPECT_EQ(got, larger);
  this->allocator().deallocate(got, kSize + 1, 0, 0);
  for (std::size_t i = 0; i < blocks.size(); ++i) this->allocator().deallocate(blocks[i], sizes[i], 0, 0);
  this->expect_clean();
}

TYPED_TEST_P(AllocatorSuite, StatsAreConsistent) {
  std::vector<void*> blocks;
  for (int i = 0; i < 50; ++i) blocks.push_back(this->allocator().allocate(1000 + i * 70000, 0, 0));
  for (int i = 0; i < 50; i += 2) this->allocator().deallocate(blocks[i], 1000 + i * 70000, 0, 0);
  const auto s = this->allocator().stats(0);
  EXPECT_LE(s.allocated_bytes, s.reserved_bytes);
  EXPECT_LE(s.requested_bytes, s.allocated_bytes);
  EXPECT_LE(s.largest_free_block, s.reserved_bytes - s.allocated_bytes);
  EXPECT_GE(s.fragmentation, 0.0);
  EXPECT_LE(s.fragmentation, 1.0);
  EXPECT_EQ(s.live_allocations, 25u);
  EXPECT_EQ(s.reserved_bytes, this->device().used_bytes(0));
  EXPECT_EQ(this->ledger().device_stats(0).reserved, static_cast<std::int64_t>(s.reserved_bytes));
  EXPECT_EQ(this->ledger().device_stats(0).allocated, static_cast<std::int64_t>(s.requested_bytes));
  for (int i = 1; i < 50; i += 2) this->allocator().deallocate(blocks[i], 1000 + i * 70000, 0, 0);
  this->expect_clean();
}

TYPED_TEST_P(AllocatorSuite, StreamsHaveTheirOwnPoolsWhenConfigured) {
  void* a = this->allocator().allocate(4096, 0, /*stream=*/1);
  this->allocator().deallocate(a, 4096, 0, 1);
  void* b = this->allocator().allocate(4096, 0, /*stream=*/2);
  if (TypeParam::options().per_stream_pools) {
    EXPECT_NE(a, b);  // a block freed on stream 1 is not reused on stream 2
    EXPECT_EQ(this->allocator().stats(0).segments, 2u);
  } else {
    EXPECT_EQ(a, b);
  }
  this->allocator().deallocate(b, 4096, 0, 2);
  this->expect_clean();
}

TYPED_TEST_P(AllocatorSuite, AllocationsFeedTheLedgerWithTheirTags) {
  set_process_phase(Phase::forward);
  void* act = this->allocator().allocate(1000, 0, 0);
  void* w = nullptr;
  {
    CategoryScope scope(Category::weights);
    w = this->allocator().allocate(2000, 1, 0);
  }
  set_process_phase(Phase::idle);
  EXPECT_EQ(this->ledger().find(reinterpret_cast<std::uintptr_t>(act))->category, Category::activations);
  EXPECT_EQ(this->ledger().device_stats(1).current[index(Category::weights)], 2000);
  this->allocator().deallocate(act, 1000, 0, 0);
  this->allocator().deallocate(w, 2000, 1, 0);
  this->expect_clean();
}

// Note [Category limits across retags]: the charge stays with the category
// charged, whatever the census retags the block to before it is freed.
TYPED_TEST_P(AllocatorSuite, CategoryLimitsStayExactAcrossRetags) {
  CachingAllocatorOptions options = TypeParam::options();
  options.category_limits[index(Category::activations)] = 4ull << 20;
  options.category_limits[index(Category::weights)] = 4ull << 20;
  CachingAllocator limited(this->under_test.device, options, &this->ledger());
  const auto activations = [&](std::size_t bytes) {
    CategoryScope scope(Category::activations);
    return limited.allocate(bytes, 0, 0);
  };
  void* a = activations(3ull << 20);
  ASSERT_TRUE(this->ledger().retag(reinterpret_cast<std::uintptr_t>(a), Category::weights));
  EXPECT_THROW((void)activations(2ull << 20), out_of_memory);  // still charged while live
  limited.deallocate(a, 3ull << 20, 0, 0);
  void* b = activations(3ull << 20);  // the charge went with the free
  void* c = activations(1ull << 20);
  EXPECT_THROW((void)activations(1), out_of_memory);  // 4 MiB charged: the limit is exact
  {
    CategoryScope scope(Category::weights);  // the weights limit was never charged nor released
    void* w = limited.allocate(4ull << 20, 0, 0);
    limited.deallocate(w, 4ull << 20, 0, 0);
  }
  limited.deallocate(b, 3ull << 20, 0, 0);
  limited.deallocate(c, 1ull << 20, 0, 0);
  limited.release_cached();
  EXPECT_EQ(this->ledger().device_stats(0).allocated, 0);
  this->expect_clean();
}

TYPED_TEST_P(AllocatorSuite, BadInputsGiveClearErrorsAndChangeNothing) {
  EXPECT_THROW((void)this->allocator().allocate(0, 0, 0), invalid_request);
  EXPECT_THROW((void)this->allocator().allocate(8, 5, 0), invalid_request);
  void* p = this->allocator().allocate(1234, 0, 0);
  const auto before = this->allocator().stats(0);
  const auto ledger_before = this->ledger().device_stats(0);
  auto expect_refused = [&](auto&& call, const char* needle) {
    try {
      call();
      ADD_FAILURE() << "no error for " << needle;
    } catch (const invalid_free& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("nothing was freed"), std::string::npos) << e.what();
    }
  };
  int local = 0;
  expect_refused([&] { this->allocator().deallocate(&local, 4, 0, 0); }, "foreign pointer");
  expect_refused([&] { this->allocator().deallocate(p, 1234, 1, 0); }, "allocated on device 0");
  expect_refused([&] { this->allocator().deallocate(p, 999, 0, 0); }, "allocated with size 1234");
  expect_refused([&] { this->allocator().deallocate(static_cast<char*>(p) + 512, 4, 0, 0); }, "not a live");
  EXPECT_THROW(this->allocator().deallocate(p, 1234, 9, 0), invalid_free);
  const auto after = this->allocator().stats(0);
  EXPECT_EQ(after.allocated_bytes, before.allocated_bytes);
  EXPECT_EQ(after.live_allocations, before.live_allocations);
  EXPECT_EQ(after.invalid_frees, before.invalid_frees + 3);  // the wrong-device free counts on device 1
  EXPECT_EQ(this->allocator().stats(1).invalid_frees, 1u);
  EXPECT_EQ(this->ledger().device_stats(0).allocated, ledger_before.allocated);

  this->allocator().deallocate(p, 1234, 0, 0);
  expect_refused([&] { this->allocator().deallocate(p, 1234, 0, 0); }, "double free");
  // Still fully usable.
  void* q = this->allocator().allocate(1234, 0, 0);
  this->allocator().deallocate(q, 1234, 0, 0);
  this->expect_clean();
}

// Every upstream call is made to fail in turn, once and for good: each run
// either completes or ends in a clean out_of_memory, and nothing leaks.
TYPED_TEST_P(AllocatorSuite, FaultAtEveryUpstreamCallIsClean) {
  const std::vector<std::size_t> sizes = {100, 3 << 20, 700000, 40 << 20, 512, 12 << 20, 2000, 64 << 20};
  auto workload = [&]() -> bool {
    std::vector<std::pair<void*, std::size_t>> held;
    bool ok = true;
    try {
      for (int round = 0; round < 3; ++round) {
        for (std::size_t s : sizes) held.emplace_back(this->allocator().allocate(s + round, 0, 0), s + round);
        for (std::size_t i = 0; i < held.size(); i += 2) this->allocator().deallocate(held[i].first, held[i].second, 0, 0);
        std::erase_if(held, [&, i = std::size_t{0}](const auto&) mutable { return (i++ % 2) == 0; });
      }
    } catch (const out_of_memory& e) {
      ok = false;
      EXPECT_GT(e.context().requested_bytes, 0u);
      EXPECT_FALSE(e.context().reason.empty());
    }
    for (auto [p, s] : held) this->allocator().deallocate(p, s, 0, 0);
    return ok;
  };
  ASSERT_TRUE(workload());
  this->expect_clean();
  const std::uint64_t calls = this->device().allocate_calls();
  ASSERT_GT(calls, 3u);
  int failures = 0;
  for (std::uint64_t n = 1; n <= calls; ++n) {
    for (bool persistent : {false, true}) {
      this->device().fail_call(n, persistent);
      failures += workload() ? 0 : 1;
      this->device().clear_faults();
      this->expect_clean();
    }
  }
  EXPECT_GT(failures, 0);  // the persistent faults must surface
}

TYPED_TEST_P(AllocatorSuite, ConcurrentUseKeepsExactAccounts) {
  constexpr int kThreads = 4;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t + 100);
      std::vector<std::pair<void*, std::size_t>> held;
      for (int i = 0; i < 3000; ++i) {
        if (rng() % 2 == 0 || held.empty()) {
          const std::size_t size = rng() % 8 == 0 ? (1 << 20) + rng() % (8 << 20) : 1 + rng() % 200000;
          void* p = this->allocator().allocate(size, t % 2, static_cast<std::uintptr_t>(rng() % 2));
          if constexpr (TypeParam::kWritable) static_cast<char*>(p)[size - 1] = 1;
          held.emplace_back(p, size);
        } else {
          const auto k = rng() % held.size();
          this->allocator().deallocate(held[k].first, held[k].second, t % 2, 0);
          held.erase(held.begin() + static_cast<long>(k));
        }
      }
      for (auto [p, s] : held) this->allocator().deallocate(p, s, t % 2, 0);
    });
  }
  for (auto& th : threads) th.join();
  this->expect_clean();
}

// Sizes near SIZE_MAX once wrapped in the rounding and came back as a
// 512-byte block; each is an out-of-memory now, with nothing charged.
TYPED_TEST_P(AllocatorSuite, RequestsNearSizeMaxAreOutOfMemoryAndChangeNothing) {
  void* p = this->allocator().allocate(1234, 0, 0);
  const auto before = this->allocator().stats(0);
  const auto ledger_before = this->ledger().device_stats(0);
  const std::size_t max = std::numeric_limits<std::size_t>::max();
  for (std::size_t size : {max, max - 511, max - (std::size_t{1} << 20), (std::size_t{1} << 56) + 1}) {
    try {
      (void)this->allocator().allocate(size, 0, 0);
      ADD_FAILURE() << "a pointer for " << size << " bytes";
    } catch (const out_of_memory& e) {
      EXPECT_EQ(e.context().requested_bytes, size);
      EXPECT_NE(std::string(e.what()).find("larger than the most one request may ask"), std::string::npos)
          << e.what();
    }
  }
  const auto after = this->allocator().stats(0);
  EXPECT_EQ(after.allocated_bytes, before.allocated_bytes);
  EXPECT_EQ(after.reserved_bytes, before.reserved_bytes);
  EXPECT_EQ(after.upstream_allocs, before.upstream_allocs);
  EXPECT_EQ(this->ledger().device_stats(0).allocated, ledger_before.allocated);
  void* q = this->allocator().allocate(4096, 0, 0);  // still usable
  this->allocator().deallocate(q, 4096, 0, 0);
  this->allocator().deallocate(p, 1234, 0, 0);
  this->expect_clean();
}

REGISTER_TYPED_TEST_SUITE_P(AllocatorSuite, AllocatesAlignedDistinctBlocksOfManySizes,
                            FreedBlocksAreServedFromTheCache, SplitBlocksCoalesceBackIntoTheirSegment,
                            BestFitPicksTheSmallestFreeBlockThatHolds,
                            BestFitAmongEqualSizesTakesTheMostRecentlyFreed,
                            StatsAreConsistent, StreamsHaveTheirOwnPoolsWhenConfigured,
                            AllocationsFeedTheLedgerWithTheirTags, CategoryLimitsStayExactAcrossRetags,
                            BadInputsGiveClearErrorsAndChangeNothing,
                            RequestsNearSizeMaxAreOutOfMemoryAndChangeNothing, FaultAtEveryUpstreamCallIsClean, ConcurrentUseKeepsExactAccounts);

INSTANTIATE_TYPED_TEST_SUITE_P(Default, AllocatorSuite, DefaultConfig);
INSTANTIATE_TYPED_TEST_SUITE_P(Budgeted, AllocatorSuite, BudgetedConfig);
INSTANTIATE_TYPED_TEST_SUITE_P(SharedStreamPool, AllocatorSuite, SharedStreamPoolConfig);
INSTANTIATE_TYPED_TEST_SUITE_P(CategoryLimited, AllocatorSuite, CategoryLimitedConfig);
INSTANTIATE_TYPED_TEST_SUITE_P(VirtualAddresses, AllocatorSuite, VirtualAddressConfig);

// Note [Reserved never counts a freed segment]: eight threads churning
// segments on a device too small for all of them (each out-of-memory
// releases the cache and retries) never see the Ledger's reserved, or its
// peak, above the device's capacity. The Ledger once counted a freed
// segment until after the device had handed its memory to another thread.
namespace {

// The device, with a pause after each free has returned: what a busy
// driver does to the thread that freed, and the window the race needs.
class PausingFreeUpstream final : public Upstream {
 public:
  explicit PausingFreeUpstream(std::shared_ptr<SimulatedDevice> device) : device_(std::move(device)) {}
  void* allocate(std::size_t bytes, int device) override { return device_->allocate(bytes, device); }
  void deallocate(void* ptr, std::size_t bytes, int device) noexcept override {
    device_->deallocate(ptr, bytes, device);
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  DeviceMemoryInfo memory_info(int device) override { return device_->memory_info(device); }
  int device_count() override { return device_->device_count(); }
  std::string name() const override { return "pausing-free(" + device_->name() + ")"; }

 private:
  std::shared_ptr<SimulatedDevice> device_;
};

}  // namespace

TEST(LedgerUnderChurn, PeakReservedNeverExceedsTheDevice) {
  constexpr std::uint64_t kCapacity = 64ull << 20;
  auto device = std::make_shared<SimulatedDevice>(SimulatedDeviceOptions{
      .capacity_bytes = kCapacity, .devices = 1, .backing = SimulatedDeviceOptions::Backing::virtual_addresses});
  Ledger ledger;
  CachingAllocator allocator(std::make_shared<PausingFreeUpstream>(device), {}, &ledger);
  std::atomic<std::uint64_t> refusals{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t + 7);
      std::vector<std::pair<void*, std::size_t>> held;
      for (int i = 0; i < 2000; ++i) {
        if (held.size() < 3 && rng() % 3 != 0) {
          const std::size_t size = (1 + rng() % 6) << 20;  // large blocks: a segment each
          try {
            held.emplace_back(allocator.allocate(size, 0, 0), size);
          } catch (const out_of_memory&) {
            refusals.fetch_add(1, std::memory_order_relaxed);
          }
        } else if (!held.empty()) {
          const auto k = rng() % held.size();
          allocator.deallocate(held[k].first, held[k].second, 0, 0);
          held.erase(held.begin() + static_cast<long>(k));
          if (rng() % 4 == 0) allocator.release_cached();  // segments back to the device
        }
      }
      for (auto [p, size] : held) allocator.deallocate(p, size, 0, 0);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_GT(refusals.load(), 0u);  // the device was full at times: the race had its chance
  EXPECT_LE(ledger.device_stats(0).peak_reserved, static_cast<std::int64_t>(kCapacity));
  allocator.release_cached();
  EXPECT_EQ(ledger.device_stats(0).reserved, 0);
}
