// The boards the simulator can be: the rows of guard/data/gpus.def (shared
// with `oomguard estimate`), plus what each board's architecture decides
// beyond the row (shared memory, L2, clocks), which torch reads through
// cudaGetDeviceProperties and the device attributes.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace oomguard::sim {

struct GpuModel {
  std::string_view table_name;   // "A100-80GB"
  std::string_view device_name;  // "NVIDIA A100-SXM4-80GB"
  std::uint64_t total_mib;
  int bf16_tflops;
  int compute_major;
  int compute_minor;
  int sm_count;
  std::uint64_t context_mib;
};

std::span<const GpuModel> gpu_models();

// The row whose table name is `name`, compared without regard to case;
// nullptr if there is none.
const GpuModel* find_gpu_model(std::string_view name);

// Per-architecture limits, with the few per-board figures (L2, bus width,
// clocks) that differ inside one architecture.
struct ArchitectureLimits {
  int shared_memory_per_sm;
  int shared_memory_per_block_optin;
  int max_threads_per_sm;
  int max_blocks_per_sm;
  int l2_cache_bytes;
  int memory_bus_width_bits;
  int clock_khz;
  int memory_clock_khz;
};

ArchitectureLimits architecture_limits(const GpuModel& model);

}  // namespace oomguard::sim
