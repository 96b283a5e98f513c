#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "allocator_fixtures.hpp"
#include "oomguard/budget.hpp"
#include "oomguard/error.hpp"

using namespace oomguard;

namespace {
std::unique_ptr<CachingAllocator> make(std::shared_ptr<SimulatedDevice> device, CachingAllocatorOptions options,
                                       Ledger& ledger) {
  return std::make_unique<CachingAllocator>(std::move(device), options, &ledger);
}
}  // namespace

TEST(Budget, ReserveRollsBackPastTheLimit) {
  Budget budget(100);
  EXPECT_TRUE(budget.try_reserve(60));
  EXPECT_FALSE(budget.try_reserve(41));
  EXPECT_EQ(budget.used(), 60u);
  EXPECT_TRUE(budget.try_reserve(40));
  budget.release(100);
  EXPECT_EQ(budget.used(), 0u);
  Budget unlimited;
  EXPECT_TRUE(unlimited.try_reserve(1ull << 60));
  EXPECT_EQ(unlimited.used(), 0u);  // nothing counted without a limit
  unlimited.release(1ull << 60);
  EXPECT_EQ(unlimited.used(), 0u);
}

TEST(Budget, SizesNearTwoToTheSixtyFourAreRefusedNotWrapped) {
  Budget budget(100);
  EXPECT_TRUE(budget.try_reserve(60));
  for (std::uint64_t bytes : {~std::uint64_t{0}, ~std::uint64_t{0} - 59, ~std::uint64_t{0} - 511}) {
    EXPECT_FALSE(budget.try_reserve(bytes)) << bytes;
    EXPECT_EQ(budget.used(), 60u);
  }
  CategoryLimits::Limits caps{};
  caps[index(Category::activations)] = 100;
  CategoryLimits limits(caps);
  EXPECT_TRUE(limits.try_charge(Category::activations, 60));
  EXPECT_FALSE(limits.try_charge(Category::activations, ~std::uint64_t{0} - 59));
  EXPECT_TRUE(limits.try_charge(Category::activations, 40));  // 60 charged, not wrapped: 40 more fit exactly
  EXPECT_FALSE(limits.try_charge(Category::activations, 1));
}

TEST(Budget, ConcurrentReservationsNeverOvershoot) {
  Budget budget(1000);
  std::atomic<int> granted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) granted += budget.try_reserve(7) ? 1 : 0;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(granted.load(), 1000 / 7);
  EXPECT_EQ(budget.used(), static_cast<std::uint64_t>(granted.load()) * 7);
}

TEST(CachingBudget, OverBudgetThrowsOurOutOfMemoryWithABreakdown) {
  Ledger ledger;
  auto device = std::make_shared<SimulatedDevice>(SimulatedDeviceOptions{.capacity_bytes = 1ull << 30});
  auto allocator = make(device, {.budget_bytes = 100ull << 20}, ledger);
  void* w = nullptr;
  {
    CategoryScope scope(Category::weights);
    w = allocator->allocate(60 << 20, 0, 0);
  }
  try {
    CategoryScope scope(Category::activations);
    (void)allocator->allocate(50 << 20, 0, 0);
    FAIL() << "allocated past the budget";
  } catch (const out_of_memory& e) {
    const OomContext& c = e.context();
    EXPECT_EQ(c.requested_bytes, 50u << 20);
    EXPECT_EQ(c.budget_bytes, 100u << 20);
    EXPECT_EQ(c.device, 0);
    EXPECT_EQ(c.allocated_bytes, 60u << 20);
    EXPECT_EQ(c.by_category[index(Category::weights)], 60 << 20);
    const std::string what = e.what();
    EXPECT_NE(what.find("budget"), std::string::npos) << what;
    EXPECT_NE(what.find("weights=60.00 MiB"), std::string::npos) << what;
    EXPECT_NE(what.find("50.00 MiB"), std::string::npos) << what;
  }
  // The refusal left nothing behind, and is a std::bad_alloc to generic code.
  EXPECT_EQ(allocator->stats(0).reserved_bytes, 60u << 20);
  EXPECT_EQ(allocator->stats(0).ooms, 1u);
  EXPECT_THROW((void)allocator->allocate(50 << 20, 0, 0), std::bad_alloc);
  allocator->deallocate(w, 60 << 20, 0, 0);
  void* fits = allocator->allocate(90 << 20, 0, 0);  // the cache is released to make room
  EXPECT_GE(allocator->stats(0).retries, 1u);
  allocator->deallocate(fits, 90 << 20, 0, 0);
}

TEST(CachingBudget, DeviceRefusalReleasesTheCacheAndRetries) {
  Ledger ledger;
  auto device = std::make_shared<SimulatedDevice>(SimulatedDeviceOptions{.capacity_bytes = 64ull << 20});
  auto allocator = make(device, {}, ledger);
  // Fill the device with cached, free small slabs.
  std::vector<void*> small;
  for (int i = 0; i < 60; ++i) small.push_back(allocator->allocate(1 << 20, 0, 0));
  for (void* p : small) allocator->deallocate(p, 1 << 20, 0, 0);
  EXPECT_GT(device->used_bytes(0), 32ull << 20);
  void* big = allocator->allocate(40 << 20, 0, 0);
  const auto s = allocator->stats(0);
  EXPECT_EQ(s.retries, 1u);
  EXPECT_EQ(s.upstream_failures, 1u);
  allocator->deallocate(big, 40 << 20, 0, 0);
  // Larger than the device: a clean out_of_memory naming the device.
  try {
    (void)allocator->allocate(100 << 20, 0, 0);
    FAIL();
  } catch (const out_of_memory& e) {
    EXPECT_NE(std::string(e.what()).find("simulated device refused"), std::string::npos) << e.what();
  }
}

TEST(CategoryLimits, OnlyTheLimitedCategoryIsRefused) {
  Ledger ledger;
  auto device = std::make_shared<SimulatedDevice>();
  CachingAllocatorOptions options;
  options.category_limits[index(Category::activations)] = 10 << 20;
  auto allocator = make(device, options, ledger);
  std::vector<void*> acts;
  {
    CategoryScope scope(Category::activations);
    acts.push_back(allocator->allocate(6 << 20, 0, 0));
    try {
      (void)allocator->allocate(6 << 20, 0, 0);
      FAIL();
    } catch (const out_of_memory& e) {
      EXPECT_NE(std::string(e.what()).find("category limit: activations"), std::string::npos) << e.what();
    }
    acts.push_back(allocator->allocate(4 << 20, 0, 0));  // exactly at the limit
  }
  {
    CategoryScope scope(Category::weights);
    void* w = allocator->allocate(50 << 20, 0, 0);
    allocator->deallocate(w, 50 << 20, 0, 0);
  }
  allocator->deallocate(acts[0], 6 << 20, 0, 0);
  {
    CategoryScope scope(Category::activations);
    acts[0] = allocator->allocate(6 << 20, 0, 0);  // freed bytes are credited back
  }
  allocator->deallocate(acts[0], 6 << 20, 0, 0);
  allocator->deallocate(acts[1], 4 << 20, 0, 0);
}

namespace {
std::atomic<int> g_handled{0};
std::size_t g_handled_request = 0;
void count_oom(const OomContext& context) noexcept {
  g_handled_request = context.requested_bytes;
  ++g_handled;
}
}  // namespace

TEST(OutOfMemoryHandler, SeesEveryRefusalBeforeItIsThrown) {
  Ledger ledger;
  auto device = std::make_shared<SimulatedDevice>(SimulatedDeviceOptions{.capacity_bytes = 64ull << 20});
  auto allocator = make(device, {.budget_bytes = 32ull << 20}, ledger);
  set_out_of_memory_handler(&count_oom);
  EXPECT_THROW((void)allocator->allocate(40 << 20, 0, 0), out_of_memory);
  EXPECT_EQ(g_handled.load(), 1);
  EXPECT_EQ(g_handled_request, 40u << 20);
  void* fits = allocator->allocate(1 << 20, 0, 0);
  EXPECT_EQ(g_handled.load(), 1);
  set_out_of_memory_handler(nullptr);
  EXPECT_THROW((void)allocator->allocate(40 << 20, 0, 0), out_of_memory);
  EXPECT_EQ(g_handled.load(), 1);
  allocator->deallocate(fits, 1 << 20, 0, 0);
}
