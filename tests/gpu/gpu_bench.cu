// Needs real hardware: it measures GPU time, which the simulated device does not have (docs/simulator.md).
// On a GPU: a cache-hit alloc+free pair of oomguard's caching allocator over
// the CUDA driver, against cudaMalloc+cudaFree of the same sizes, in one run.
// (PyTorch's native caching allocator is compared in bench/gpu_cache_hit.py.)
#include <benchmark/benchmark.h>
#include <cuda_runtime.h>

#include <random>
#include <vector>

#include "oomguard/caching_allocator.hpp"
#include "oomguard/cuda_driver_upstream.hpp"

namespace {

using namespace oomguard;

std::vector<std::size_t> sizes(std::size_t n) {
  std::mt19937_64 rng(1);
  std::uniform_int_distribution<std::size_t> dist(1, 64 << 20);
  std::vector<std::size_t> out(n);
  for (auto& s : out) s = dist(rng);
  return out;
}

void BM_GpuCacheHitPair(benchmark::State& state) {
  const auto outstanding = static_cast<std::size_t>(state.range(0));
  Ledger ledger;
  CachingAllocator allocator(std::make_shared<CudaDriverUpstream>(), {}, &ledger);
  const auto s = sizes(outstanding * 8);
  std::vector<std::pair<void*, std::size_t>> live(outstanding);
  std::size_t next = 0;
  for (auto& slot : live) slot = {allocator.allocate(s[next], 0, 0), s[next]}, ++next;
  std::mt19937_64 rng(2);
  auto step = [&] {
    const std::size_t i = rng() % outstanding;
    allocator.deallocate(live[i].first, live[i].second, 0, 0);
    const std::size_t size = s[next++ % s.size()];
    live[i] = {allocator.allocate(size, 0, 0), size};
  };
  for (std::size_t i = 0; i < outstanding * 4; ++i) step();
  const auto before = allocator.stats(0);
  for (auto _ : state) step();
  state.counters["hit_rate"] =
      static_cast<double>(allocator.stats(0).cache_hits - before.cache_hits) / static_cast<double>(state.iterations());
  for (auto& [p, size] : live) allocator.deallocate(p, size, 0, 0);
  allocator.release_cached();
}
BENCHMARK(BM_GpuCacheHitPair)->Arg(100)->Arg(1000)->UseRealTime();

void BM_CudaMallocFreePair(benchmark::State& state) {
  const auto outstanding = static_cast<std::size_t>(state.range(0));
  const auto s = sizes(outstanding * 8);
  std::vector<std::pair<void*, std::size_t>> live(outstanding);
  std::size_t next = 0;
  for (auto& slot : live) {
    cudaMalloc(&slot.first, s[next]);
    slot.second = s[next++];
  }
  std::mt19937_64 rng(2);
  for (auto _ : state) {
    const std::size_t i = rng() % outstanding;
    cudaFree(live[i].first);
    const std::size_t size = s[next++ % s.size()];
    cudaMalloc(&live[i].first, size);
    live[i].second = size;
  }
  for (auto& [p, size] : live) cudaFree(p);
}
BENCHMARK(BM_CudaMallocFreePair)->Arg(100)->Arg(1000)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
