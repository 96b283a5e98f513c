#include "call_counters.hpp"

#include <atomic>

namespace oomguard::preload {
namespace {

constexpr std::array<std::string_view, kNumCalls> kCallNames = {
    "cudaMalloc",   "cudaFree",     "cudaMallocAsync",         "cudaFreeAsync",
    "cudaMallocManaged", "cuMemAlloc_v2", "cuMemFree_v2",      "cuMemCreate",
    "cuMemRelease", "cuMemMap",     "cuMemUnmap",              "cudaGetDriverEntryPoint",
    "cudaGetDriverEntryPointByVersion", "cuGetProcAddress",   "cuGetProcAddress_v2"};

std::array<std::atomic<std::uint64_t>, kNumCalls> g_counts{};
std::atomic<std::uint64_t> g_wrappers{0};

}  // namespace

std::string_view name(Call call) { return kCallNames[static_cast<std::size_t>(call)]; }

void count(Call call) noexcept { g_counts[static_cast<std::size_t>(call)].fetch_add(1, std::memory_order_relaxed); }

std::array<std::uint64_t, kNumCalls> call_counts() noexcept {
  std::array<std::uint64_t, kNumCalls> out{};
  for (std::size_t i = 0; i < kNumCalls; ++i) out[i] = g_counts[i].load(std::memory_order_relaxed);
  return out;
}

void count_wrapper_handed_out() noexcept { g_wrappers.fetch_add(1, std::memory_order_relaxed); }
std::uint64_t wrappers_handed_out() noexcept { return g_wrappers.load(std::memory_order_relaxed); }

void reset_call_counts() noexcept {
  for (auto& c : g_counts) c.store(0, std::memory_order_relaxed);
  g_wrappers.store(0, std::memory_order_relaxed);
}

}  // namespace oomguard::preload
