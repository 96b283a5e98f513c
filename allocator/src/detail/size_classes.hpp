// Size classes of the small pool: 512-byte steps up to 4 KiB, then four
// classes per doubling up to kSmallLimit, so rounding wastes at most 25%
// (at most 511 bytes below 4 KiB).
#pragma once

#include <array>
#include <bit>
#include <cstddef>

namespace oomguard::detail {

inline constexpr std::size_t kMinBlock = 512;
inline constexpr std::size_t kSmallLimit = std::size_t{1} << 20;  // requests up to 1 MiB are small
inline constexpr std::size_t kSlabSize = std::size_t{2} << 20;     // small blocks come from 2 MiB slabs
inline constexpr std::size_t kLinearClasses = 8;                   // 512 .. 4096
inline constexpr std::size_t kClassesPerDoubling = 4;
inline constexpr std::size_t kNumSmallClasses = kLinearClasses + kClassesPerDoubling * 8;  // 4 KiB -> 1 MiB

constexpr std::size_t small_class_of(std::size_t bytes) {
  if (bytes <= kLinearClasses * kMinBlock) return bytes == 0 ? 0 : (bytes - 1) / kMinBlock;
  // bytes in (2^k, 2^(k+1)], k >= 12: four classes of 2^(k-2) each.
  const std::size_t k = std::bit_width(bytes - 1) - 1;
  const std::size_t step = std::size_t{1} << (k - 2);
  const std::size_t sub = (bytes - 1 - (std::size_t{1} << k)) / step;
  return kLinearClasses + (k - 12) * kClassesPerDoubling + sub;
}

constexpr std::size_t small_class_size(std::size_t cls) {
  if (cls < kLinearClasses) return (cls + 1) * kMinBlock;
  const std::size_t k = 12 + (cls - kLinearClasses) / kClassesPerDoubling;
  const std::size_t sub = (cls - kLinearClasses) % kClassesPerDoubling;
  return (std::size_t{1} << k) + (sub + 1) * (std::size_t{1} << (k - 2));
}

static_assert(small_class_size(small_class_of(1)) == 512);
static_assert(small_class_size(small_class_of(4096)) == 4096);
static_assert(small_class_size(small_class_of(4097)) == 5120);
static_assert(small_class_size(small_class_of(kSmallLimit)) == kSmallLimit);
static_assert(small_class_of(kSmallLimit) == kNumSmallClasses - 1);

constexpr std::size_t round_up(std::size_t bytes, std::size_t to) { return (bytes + to - 1) / to * to; }

// The size of a segment fetched from the upstream for a large request,
// following PyTorch's choices: medium requests share 20 MiB segments, big
// ones get their own, rounded to 2 MiB.
constexpr std::size_t large_segment_size(std::size_t rounded) {
  constexpr std::size_t kMediumLimit = std::size_t{10} << 20;
  constexpr std::size_t kMediumSegment = std::size_t{20} << 20;
  if (rounded < kMediumLimit) return kMediumSegment;
  return round_up(rounded, std::size_t{2} << 20);
}

}  // namespace oomguard::detail
