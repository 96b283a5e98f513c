// How a request is rounded and how big a segment it draws from the upstream:
// PyTorch's CUDACachingAllocator policy (Note [Sizes as c10 chooses them]).
#pragma once

#include <cstddef>

namespace oomguard::detail {

inline constexpr std::size_t kMinBlock = 512;                        // every block is a multiple of this
inline constexpr std::size_t kSmallLimit = std::size_t{1} << 20;     // requests up to 1 MiB are small
inline constexpr std::size_t kSmallSegment = std::size_t{2} << 20;   // small blocks come from 2 MiB segments
inline constexpr std::size_t kMediumLimit = std::size_t{10} << 20;   // below this, large requests share...
inline constexpr std::size_t kMediumSegment = std::size_t{20} << 20;  // ...20 MiB segments
inline constexpr std::size_t kLargeRounding = std::size_t{2} << 20;  // bigger ones get their own, in 2 MiB steps

// The largest request any allocator here serves: 2^56 bytes (64 PiB), far
// beyond any device, and low enough that no rounding below can overflow.
// Larger requests are refused as out of memory before any size is computed
// (SIZE_MAX once came back as a 512-byte block).
inline constexpr std::size_t kMaxRequest = std::size_t{1} << 56;

constexpr std::size_t round_up(std::size_t bytes, std::size_t to) { return (bytes + to - 1) / to * to; }

// The capacity of the block that serves `bytes`.
constexpr std::size_t block_size(std::size_t bytes) { return round_up(bytes, kMinBlock); }

// Note [Sizes as c10 chooses them]
// Own mode must reserve no more than torch's native allocator on the same
// run (a user switching modes should not lose headroom), so its sizing is
// c10's: blocks in 512-byte steps; requests up to 1 MiB are cut, any size
// mixed with any other, from shared 2 MiB segments; larger ones below
// 10 MiB from shared 20 MiB segments; from 10 MiB on a segment of its own
// rounded to 2 MiB (the driver's granularity, so nothing finer would
// reserve less).
// Measured and dropped (simulated A100, bench/simulated_torch_bench.py, a
// 4-layer and a 1.1B Llama, bf16, AdamW): the previous small pool, 44 size
// classes (25% rounding above 4 KiB) each in 2 MiB slabs of its own, was a
// pop and a push per pair but held a 2 MiB slab per class in use (docs/
// performance.md has the figures); an allocation of a small block is now a
// best-fit search with splitting, as for large ones (Note [Best fit with
// bins]), which costs tens of nanoseconds against the several microseconds
// of torch.empty from Python.
constexpr std::size_t segment_size(std::size_t block) {
  if (block <= kSmallLimit) return kSmallSegment;
  if (block < kMediumLimit) return kMediumSegment;
  return round_up(block, kLargeRounding);
}

static_assert(block_size(1) == 512 && block_size(512) == 512 && block_size(513) == 1024);
static_assert(segment_size(kSmallLimit) == kSmallSegment && segment_size(kSmallLimit + kMinBlock) == kMediumSegment);
static_assert(segment_size(kMediumLimit) == kMediumLimit && segment_size(kMediumLimit + 1) == 12u << 20);
static_assert(segment_size(block_size(kMaxRequest)) == kMaxRequest);

}  // namespace oomguard::detail
