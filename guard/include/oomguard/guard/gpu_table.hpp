// Device memory of common GPUs, so `--gpu A100-80GB` needs no device.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace oomguard::guard {

struct GpuSpec {
  std::string name;
  std::uint64_t memory_bytes = 0;  // total device memory as the driver reports it
  double bf16_tflops = 0.0;        // dense, for the relative speed of --fit
};

const std::vector<GpuSpec>& builtin_gpus();

// Case-insensitive lookup ("a100-80gb", "H100-80GB"). Throws config_error
// listing the known names and suggesting --gpu-memory.
const GpuSpec& find_gpu(std::string_view name);

}  // namespace oomguard::guard
