// oomguard_pairs: a fixed number of Ledger record+release pairs, or of
// cache-hit alloc+free pairs with some blocks live, and nothing else. Run
// under callgrind by count_instructions.sh: instruction counts do not move
// with a shared machine's load as timings do, so they compare two builds
// where oomguard_bench's nanoseconds cannot.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "oomguard/caching_allocator.hpp"
#include "oomguard/ledger.hpp"
#include "oomguard/simulated_device.hpp"
#include "replacement_plan.hpp"

namespace {

using namespace oomguard;

void ledger_pairs(long count) {
  Ledger ledger;
  const Tag tag{Category::activations, Phase::forward, 0};
  std::uintptr_t address = std::uintptr_t{1} << 40;
  for (long i = 0; i < count; ++i) {
    address += 512;
    ledger.record(address, 4096, 0, 0, tag);
    if (!ledger.release(address)) std::abort();
  }
}

// As BM_CacheHitPair: `live` random blocks, warmed by 4 * live replacements.
void cache_pairs(std::size_t live_count, long count) {
  auto device = std::make_shared<SimulatedDevice>(SimulatedDeviceOptions{
      .capacity_bytes = std::uint64_t{1} << 50, .backing = SimulatedDeviceOptions::Backing::virtual_addresses});
  Ledger ledger;
  CachingAllocator allocator(device, {}, &ledger);
  const auto sizes = bench::random_sizes(live_count, 3);
  std::vector<std::pair<void*, std::size_t>> live(live_count);
  for (std::size_t i = 0; i < live_count; ++i) live[i] = {allocator.allocate(sizes[i], 0, 0), sizes[i]};
  bench::ReplacementPlan plan(live_count);
  const long warm = static_cast<long>(4 * live_count);
  for (long n = 0; n < warm + count; ++n) {
    const auto& [i, size] = plan.next();
    allocator.deallocate(live[i].first, live[i].second, 0, 0);
    live[i] = {allocator.allocate(size, 0, 0), size};
  }
  for (auto& [p, s] : live) allocator.deallocate(p, s, 0, 0);
}

[[noreturn]] void usage() {
  std::fprintf(stderr, "usage: oomguard_pairs ledger COUNT | oomguard_pairs cache LIVE COUNT\n");
  std::exit(2);
}

long positive(const char* text) {
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || value <= 0) usage();
  return value;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string_view what = argc > 1 ? argv[1] : "";
  if (what == "ledger" && argc == 3) {
    ledger_pairs(positive(argv[2]));
  } else if (what == "cache" && argc == 4) {
    cache_pairs(static_cast<std::size_t>(positive(argv[2])), positive(argv[3]));
  } else {
    usage();
  }
  return 0;
}
