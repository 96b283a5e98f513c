// Common GPUs (guard/data/gpus.def), so `--gpu A100-80GB` needs no device.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace oomguard::guard {

struct GpuSpec {
  std::string name;                // the table's name: "A100-80GB"
  std::string device_name;         // as the driver reports it: "NVIDIA A100-SXM4-80GB"
  std::uint64_t memory_bytes = 0;  // total device memory as the driver reports it
  double bf16_tflops = 0.0;        // dense, for the relative speed of --fit
  int compute_major = 0;
  int compute_minor = 0;
  int sm_count = 0;
  std::uint64_t context_bytes = 0;  // taken by the CUDA context (Note [GPU table sources])
};

const std::vector<GpuSpec>& builtin_gpus();

// Case-insensitive lookup ("a100-80gb", "H100-80GB"). Throws config_error
// listing the known names and suggesting --gpu-memory.
const GpuSpec& find_gpu(std::string_view name);
// The same lookup; nullptr when `name` is not in the table.
const GpuSpec* lookup_gpu(std::string_view name);

}  // namespace oomguard::guard
