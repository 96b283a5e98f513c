// The simulator's stderr log ("[oomguard-sim] ..."), at the level of
// OOMGUARD_SIM_LOG; see sim_api.h.
#pragma once

#include <atomic>

namespace oomguard::sim {

// 1 until the configuration is read, then OOMGUARD_SIM_LOG.
extern std::atomic<int> g_log_level;

inline bool logging(int level) { return level <= g_log_level.load(std::memory_order_relaxed); }

// Always printed, whatever the level: why the simulator refuses to start.
void log_error(const char* format, ...) __attribute__((format(printf, 1, 2)));

}  // namespace oomguard::sim
