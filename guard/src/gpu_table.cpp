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

// The rows and their sources are in guard/data/gpus.def (Note [GPU table
// sources]), shared with the simulated device.
const std::vector<GpuSpec>& builtin_gpus() {
  static const std::vector<GpuSpec> gpus = {
#define OOMGUARD_GPU(name, device_name, memory_mib, tflops, major, minor, sms, context_mib) \
  {name, device_name, (memory_mib)*MiB, tflops, major, minor, sms, (context_mib)*MiB},
#include "gpus.def"
#undef OOMGUARD_GPU
  };
  return gpus;
}

const GpuSpec* lookup_gpu(std::string_view name) {
  for (const auto& gpu : builtin_gpus())
    if (iequals(gpu.name, name)) return &gpu;
  return nullptr;
}

const GpuSpec& find_gpu(std::string_view name) {
  if (const GpuSpec* gpu = lookup_gpu(name)) return *gpu;
  std::vector<std::string> names;
  for (const auto& gpu : builtin_gpus()) names.push_back(gpu.name);
  throw config_error(fmt::format("unknown GPU \"{}\"; known: {} (or give --gpu-memory, e.g. 24GiB)", name,
                                 fmt::join(names, ", ")));
}

}  // namespace oomguard::guard
