// oomguard_bench: the Ledger's cost per event, a cache-hit alloc+free pair of
// the caching allocator, and glibc malloc+free of the same sizes as the
// baseline in the same run.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <memory>
#include <vector>

#include "oomguard/caching_allocator.hpp"
#include "oomguard/ledger.hpp"
#include "oomguard/simulated_device.hpp"
#include "ratio_reporter.hpp"
#include "replacement_plan.hpp"

namespace {

using namespace oomguard;
using oomguard::bench::random_sizes;
using oomguard::bench::ReplacementPlan;

// Record plus release of one allocation: two Ledger events per iteration.
void BM_LedgerEvent(benchmark::State& state) {
  static Ledger ledger;  // shared by the threads of a run, as in a process
  const Tag tag{Category::activations, Phase::forward, 0};
  std::uintptr_t address = (std::uintptr_t{1} << 40) * static_cast<std::uintptr_t>(state.thread_index() + 1);
  for (auto _ : state) {
    address += 512;
    ledger.record(address, 4096, 0, 0, tag);
    benchmark::DoNotOptimize(ledger.release(address));
  }
  state.SetItemsProcessed(state.iterations() * 2);
}
BENCHMARK(BM_LedgerEvent)->Threads(1)->Threads(2)->UseRealTime();

// Alloc plus free with `outstanding` random blocks live: each iteration frees
// a random live block and allocates a new random size in its place. The
// simulated device hands out unbacked addresses, so the pool can hold
// terabytes; after warm-up nearly every request is served by the cache (the
// hit rate is reported).
void BM_CacheHitPair(benchmark::State& state) {
  const auto outstanding = static_cast<std::size_t>(state.range(0));
  auto device = std::make_shared<SimulatedDevice>(SimulatedDeviceOptions{
      .capacity_bytes = std::uint64_t{1} << 50, .backing = SimulatedDeviceOptions::Backing::virtual_addresses});
  Ledger ledger;
  CachingAllocator allocator(device, {}, &ledger);
  const auto sizes = random_sizes(outstanding, 3);
  std::vector<std::pair<void*, std::size_t>> live(outstanding);
  for (std::size_t i = 0; i < outstanding; ++i) live[i] = {allocator.allocate(sizes[i], 0, 0), sizes[i]};
  ReplacementPlan plan(outstanding);
  auto step = [&] {
    const auto& [i, size] = plan.next();
    allocator.deallocate(live[i].first, live[i].second, 0, 0);
    live[i] = {allocator.allocate(size, 0, 0), size};
  };
  for (std::size_t i = 0; i < outstanding * 4; ++i) step();  // warm the cache
  const auto before = allocator.stats(0);
  for (auto _ : state) step();
  const auto after = allocator.stats(0);
  const double pairs = static_cast<double>(state.iterations());
  state.counters["hit_rate"] = static_cast<double>(after.cache_hits - before.cache_hits) / pairs;
  state.counters["reserved_GiB"] = static_cast<double>(after.reserved_bytes) / (1 << 30);
  for (auto& [p, s] : live) allocator.deallocate(p, s, 0, 0);
}
BENCHMARK(BM_CacheHitPair)->Arg(1000)->Arg(10000)->UseRealTime();

// The same pattern with glibc malloc and free: the in-run baseline.
void BM_SystemMallocFreePair(benchmark::State& state) {
  const auto outstanding = static_cast<std::size_t>(state.range(0));
  // Unbacked virtual memory would be free for malloc too; keep glibc honest
  // by never touching the pages (the same as the simulated device).
  const auto sizes = random_sizes(outstanding, 3);
  std::vector<std::pair<void*, std::size_t>> live(outstanding);
  for (std::size_t i = 0; i < outstanding; ++i) live[i] = {std::malloc(sizes[i]), sizes[i]};
  ReplacementPlan plan(outstanding);
  auto step = [&] {
    const auto& [i, size] = plan.next();
    std::free(live[i].first);
    live[i] = {std::malloc(size), size};
    benchmark::DoNotOptimize(live[i].first);
  };
  for (std::size_t i = 0; i < outstanding * 4; ++i) step();
  for (auto _ : state) step();
  for (auto& [p, s] : live) std::free(p);
}
BENCHMARK(BM_SystemMallocFreePair)->Arg(1000)->Arg(10000)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  oomguard::bench::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  // A Ledger event is half of a record+release pair.
  const std::string base = "BM_SystemMallocFreePair/1000/real_time";
  reporter.print_ratios(
      {
          {"Ledger record+release pair, 1 thread", {"BM_LedgerEvent/real_time/threads:1", 100.0}},
          {"Ledger record+release pair, 2 threads", {"BM_LedgerEvent/real_time/threads:2", 100.0}},
          {"cache-hit pair, 1,000 outstanding", {"BM_CacheHitPair/1000/real_time", 300.0}},
          {"cache-hit pair, 10,000 outstanding", {"BM_CacheHitPair/10000/real_time", 300.0}},
          {"malloc+free pair, 10,000 outstanding", {"BM_SystemMallocFreePair/10000/real_time", 0.0}},
      },
      base);
  std::printf("(the Ledger target of 50 ns per event is 100 ns per record+release pair)\n");
  benchmark::Shutdown();
  return 0;
}
