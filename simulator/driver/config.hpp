// The simulator's configuration, read once from the environment at the
// first CUDA call (docs/simulator.md, "Configuration").
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "gpu_models.hpp"

namespace oomguard::sim {

struct SimulatedDevice {
  const GpuModel* model;
  int physical_index;  // position in OOMGUARD_SIMULATE, before CUDA_VISIBLE_DEVICES
};

struct Config {
  std::vector<SimulatedDevice> devices;  // the visible ones, in ordinal order
  std::vector<const GpuModel*> physical;  // all of OOMGUARD_SIMULATE's, before CUDA_VISIBLE_DEVICES
  std::uint64_t memory_override = 0;     // OOMGUARD_SIM_MEMORY in bytes; 0: the table's
  int fill_byte = 0;
  int log_level = 1;
  std::string stats_path;
  // Why CUDA_VISIBLE_DEVICES hid devices, if it did (logged at level 1).
  std::string visibility_note;
};

struct ConfigOutcome {
  Config config;
  std::string error;  // empty on success; otherwise what was wrong and what is accepted
};

using Environment = std::function<const char*(const char*)>;

ConfigOutcome load_config(const Environment& environment);

// "8GiB", "512MiB", "1.5G", "1073741824": the project's byte syntax
// (allocator/src/config.cpp). False if `text` is not one.
bool parse_bytes(const std::string& text, std::uint64_t& bytes);

}  // namespace oomguard::sim
