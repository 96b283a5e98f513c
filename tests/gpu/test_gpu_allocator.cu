// The caching allocator against the real CUDA driver upstream: blocks are
// usable by kernels, reused from the cache, accounted exactly, and refused
// cleanly past a budget. CTest runs it on the simulated GPU too
// (tests/gpu/CMakeLists.txt), all but BlocksAreUsableByKernelsAndReused,
// which needs real hardware: it reads back what a kernel wrote.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <random>
#include <thread>
#include <vector>

#include "oomguard/caching_allocator.hpp"
#include "oomguard/cuda_driver_upstream.hpp"
#include "oomguard/error.hpp"

using namespace oomguard;

namespace {

__global__ void fill(unsigned char* p, std::size_t n, unsigned char value) {
  for (std::size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) p[i] = value;
}

class GpuAllocator : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
    upstream = std::make_shared<CudaDriverUpstream>();
  }
  std::shared_ptr<CudaDriverUpstream> upstream;
  Ledger ledger;
};

}  // namespace

TEST_F(GpuAllocator, BlocksAreUsableByKernelsAndReused) {
  CachingAllocator allocator(upstream, {}, &ledger);
  for (std::size_t size : {512ul, 70000ul, 3ul << 20, 64ul << 20}) {
    auto* p = static_cast<unsigned char*>(allocator.allocate(size, 0, 0));
    fill<<<64, 256>>>(p, size, 7);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    unsigned char last = 0;
    ASSERT_EQ(cudaMemcpy(&last, p + size - 1, 1, cudaMemcpyDeviceToHost), cudaSuccess);
    EXPECT_EQ(last, 7);
    allocator.deallocate(p, size, 0, 0);
    void* again = allocator.allocate(size, 0, 0);
    EXPECT_EQ(again, p);
    allocator.deallocate(again, size, 0, 0);
  }
  const auto s = allocator.stats(0);
  EXPECT_EQ(s.allocated_bytes, 0u);
  EXPECT_EQ(s.cache_hits, 4u);
  allocator.release_cached();
  EXPECT_EQ(allocator.stats(0).reserved_bytes, 0u);
}

TEST_F(GpuAllocator, ReservedMatchesTheDriversFreeMemory) {
  CachingAllocator allocator(upstream, {}, &ledger);
  const auto before = upstream->memory_info(0);
  void* p = allocator.allocate(256 << 20, 0, 0);
  const auto after = upstream->memory_info(0);
  const auto reserved = allocator.stats(0).reserved_bytes;
  EXPECT_EQ(reserved, 256u << 20);
  // The driver rounds to its own granularity (2 MiB pages).
  EXPECT_NEAR(static_cast<double>(before.free_bytes - after.free_bytes), static_cast<double>(reserved), 2 << 20);
  allocator.deallocate(p, 256 << 20, 0, 0);
  allocator.release_cached();
}

TEST_F(GpuAllocator, BudgetRefusesCleanlyOnTheRealDevice) {
  CachingAllocator allocator(upstream, {.budget_bytes = 1ull << 30}, &ledger);
  void* p = allocator.allocate(768 << 20, 0, 0);
  EXPECT_THROW((void)allocator.allocate(512 << 20, 0, 0), out_of_memory);
  allocator.deallocate(p, 768 << 20, 0, 0);
  void* q = allocator.allocate(1000 << 20, 0, 0);  // fits once the cache is released
  allocator.deallocate(q, 1000 << 20, 0, 0);
  allocator.release_cached();
  EXPECT_EQ(ledger.device_stats(0).reserved, 0);
}

TEST_F(GpuAllocator, MoreThanTheDeviceIsACleanOutOfMemory) {
  CachingAllocator allocator(upstream, {}, &ledger);
  const auto info = upstream->memory_info(0);
  EXPECT_THROW((void)allocator.allocate(info.total_bytes + (1ull << 30), 0, 0), out_of_memory);
  EXPECT_EQ(allocator.stats(0).reserved_bytes, 0u);
}

TEST_F(GpuAllocator, ConcurrentThreadsKeepExactAccounts) {
  CachingAllocator allocator(upstream, {}, &ledger);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      cudaSetDevice(0);
      std::mt19937_64 rng(t);
      std::vector<std::pair<void*, std::size_t>> held;
      for (int i = 0; i < 2000; ++i) {
        if (rng() % 2 == 0 || held.empty()) {
          const std::size_t size = 1 + rng() % (4 << 20);
          held.emplace_back(allocator.allocate(size, 0, 0), size);
        } else {
          allocator.deallocate(held.back().first, held.back().second, 0, 0);
          held.pop_back();
        }
      }
      for (auto [p, s] : held) allocator.deallocate(p, s, 0, 0);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(allocator.stats(0).allocated_bytes, 0u);
  EXPECT_EQ(ledger.device_stats(0).allocated, 0);
  allocator.release_cached();
}
