// The random_allocations pattern shared by oomguard_bench and
// oomguard_pairs: random sizes in [1 B, 64 MiB], as RMM's benchmark, and the
// replacements of a run drawn before it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace oomguard::bench {

inline constexpr std::size_t kMaxSize = std::size_t{64} << 20;

// Random sizes in [1 B, 64 MiB], as RMM's random_allocations benchmark.
inline std::vector<std::size_t> random_sizes(std::size_t count, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::size_t> dist(1, kMaxSize);
  std::vector<std::size_t> sizes(count);
  for (auto& s : sizes) s = dist(rng);
  return sizes;
}

// The replacements of a run, drawn before it: which live block to free and
// what size to allocate in its place. Drawing them inside the timed loop
// (a Mersenne Twister step and two 64-bit divisions per pair) cost ~20 ns
// of every pair, charged to the allocator under test.
class ReplacementPlan {
 public:
  explicit ReplacementPlan(std::size_t outstanding) {
    const auto sizes = random_sizes(outstanding * 8, 1);
    std::mt19937_64 rng(2);
    steps_.reserve(sizes.size());
    for (std::size_t size : sizes) steps_.push_back({static_cast<std::size_t>(rng() % outstanding), size});
  }
  struct Step {
    std::size_t victim;
    std::size_t size;
  };
  const Step& next() noexcept {
    const Step& step = steps_[next_];
    if (++next_ == steps_.size()) next_ = 0;
    return step;
  }

 private:
  std::vector<Step> steps_;
  std::size_t next_ = 0;
};

}  // namespace oomguard::bench
