// How many times each interposed call was made by the program (outermost
// calls only, see Note [Re-entry]). Relaxed atomics: counts, not ordering.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace oomguard::preload {

// Enumerators are k-prefixed: cuda.h defines some of the call names as macros.
enum class Call : std::uint8_t {
  kCudaMalloc,
  kCudaFree,
  kCudaMallocAsync,
  kCudaFreeAsync,
  kCudaMallocManaged,
  kCuMemAllocV2,
  kCuMemFreeV2,
  kCuMemCreate,
  kCuMemRelease,
  kCuMemMap,
  kCuMemUnmap,
  kCudaGetDriverEntryPoint,
  kCudaGetDriverEntryPointByVersion,
  kCuGetProcAddress,
  kCuGetProcAddressV2,
};
inline constexpr std::size_t kNumCalls = 15;

std::string_view name(Call call);
void count(Call call) noexcept;
std::array<std::uint64_t, kNumCalls> call_counts() noexcept;
// Driver wrappers handed out through an entry-point query.
void count_wrapper_handed_out() noexcept;
std::uint64_t wrappers_handed_out() noexcept;
void reset_call_counts() noexcept;  // forked child

}  // namespace oomguard::preload
