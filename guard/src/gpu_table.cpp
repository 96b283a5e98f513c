#include "oomguard/guard/gpu_table.hpp"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "oomguard/error.hpp"

namespace oomguard::guard {
namespace {
constexpr std::uint64_t MiB = 1024ull * 1024ull;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}
}  // namespace

// Note [GPU memory figures]
// The sizes are the "total" nvidia-smi prints for each board (MiB), which is
// what cudaMemGetInfo reports up to the few hundred MiB the driver keeps for
// itself; marketing sizes ("80GB") are larger or smaller depending on the
// unit. Use --gpu-memory for an exact figure from your own device.
const std::vector<GpuSpec>& builtin_gpus() {
  static const std::vector<GpuSpec> gpus = {
      {"T4", 15360 * MiB, 65},
      {"V100-16GB", 16384 * MiB, 125},
      {"V100-32GB", 32768 * MiB, 125},
      {"A10G", 23028 * MiB, 125},
      {"L4", 23034 * MiB, 121},
      {"RTX-3090", 24576 * MiB, 71},
      {"RTX-4090", 24564 * MiB, 165},
      {"A100-40GB", 40960 * MiB, 312},
      {"A100-80GB", 81920 * MiB, 312},
      {"L40S", 46068 * MiB, 362},
      {"A6000", 49140 * MiB, 155},
      {"H100-80GB", 81559 * MiB, 989},
      {"H200", 143771 * MiB, 989},
      {"B200", 183359 * MiB, 2250},
  };
  return gpus;
}

const GpuSpec& find_gpu(std::string_view name) {
  for (const auto& gpu : builtin_gpus())
    if (iequals(gpu.name, name)) return gpu;
  std::vector<std::string> names;
  for (const auto& gpu : builtin_gpus()) names.push_back(gpu.name);
  throw config_error(fmt::format("unknown GPU \"{}\"; known: {} (or give --gpu-memory, e.g. 24GiB)", name,
                                 fmt::join(names, ", ")));
}

}  // namespace oomguard::guard
