#include "gpu_models.hpp"

#include <algorithm>
#include <cctype>

namespace oomguard::sim {
namespace {

constexpr GpuModel kModels[] = {
#define OOMGUARD_GPU(table, name, mib, tflops, major, minor, sms, context_mib) \
  {table, name, mib, tflops, major, minor, sms, context_mib},
#include "gpus.def"
#undef OOMGUARD_GPU
};

bool equal_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

constexpr int KiB = 1024;
constexpr int MiB = 1024 * 1024;

}  // namespace

std::span<const GpuModel> gpu_models() { return kModels; }

const GpuModel* find_gpu_model(std::string_view name) {
  for (const GpuModel& model : kModels) {
    if (equal_ignoring_case(model.table_name, name)) return &model;
  }
  return nullptr;
}

// Note [Architecture limits]
// The figures are those the CUDA Programming Guide's "Compute Capabilities"
// table gives per compute capability (shared memory per SM and per block
// with opt-in, resident threads and blocks per SM), and the boards' data
// sheets for L2, bus width and clocks. Only plausibility matters: torch
// reads them to pick kernel configurations it then never runs, and
// Triton's and the caching allocator's decisions depend on none of them.
ArchitectureLimits architecture_limits(const GpuModel& model) {
  const int cc = model.compute_major * 10 + model.compute_minor;
  ArchitectureLimits limits{};
  switch (cc) {
    case 70:  // V100
      limits = {96 * KiB, 96 * KiB, 2048, 32, 6 * MiB, 4096, 1530000, 877000};
      break;
    case 75:  // T4
      limits = {64 * KiB, 64 * KiB, 1024, 16, 4 * MiB, 256, 1590000, 5001000};
      break;
    case 80:  // A100
      limits = {164 * KiB, 163 * KiB, 2048, 32, 40 * MiB, 5120, 1410000, 1593000};
      break;
    case 86:  // A10G, RTX 3090, RTX A6000
      limits = {100 * KiB, 99 * KiB, 1536, 16, 6 * MiB, 384, 1695000, 9751000};
      break;
    case 89:  // L4, RTX 4090, L40S
      limits = {100 * KiB, 99 * KiB, 1536, 24, 48 * MiB, 384, 2520000, 10501000};
      break;
    case 90:  // H100, H200
      limits = {228 * KiB, 227 * KiB, 2048, 32, 50 * MiB, 5120, 1980000, 2619000};
      break;
    default:  // Blackwell and later: Hopper's limits, the board's L2
      limits = {228 * KiB, 227 * KiB, 2048, 32, 126 * MiB, 8192, 1965000, 3996000};
      break;
  }
  // The boards of one architecture that differ from its first board.
  if (model.table_name == "A100-40GB") limits.memory_clock_khz = 1215000;
  if (model.table_name == "L4") limits.memory_bus_width_bits = 192;
  if (model.table_name == "RTX-4090") limits.l2_cache_bytes = 72 * MiB;
  if (model.table_name == "L40S") limits.l2_cache_bytes = 96 * MiB;
  if (model.table_name == "H200") limits.memory_bus_width_bits = 6144;
  return limits;
}

}  // namespace oomguard::sim
