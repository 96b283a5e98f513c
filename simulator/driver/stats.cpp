// OOMGUARD_SIM_STATS: at exit, a JSON file with per device the peak and
// current bytes charged and the counts of allocations, frees and refusals;
// launches per kernel name; calls per library function (sim_api
// count_call); and the unsupported calls met.
#include <algorithm>
#include <cstdio>
#include <mutex>
#include <string>
#include <unistd.h>

#include "driver.hpp"
#include "log.hpp"

namespace oomguard::sim {
namespace {

std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
          out += escaped;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

void write_counts(std::FILE* file, const char* key, std::vector<std::pair<std::string, std::uint64_t>> counts,
                  bool last) {
  std::sort(counts.begin(), counts.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  std::fprintf(file, "  \"%s\": {", key);
  for (std::size_t i = 0; i < counts.size(); ++i) {
    std::fprintf(file, "%s\n    %s: %llu", i == 0 ? "" : ",", json_string(counts[i].first).c_str(),
                 static_cast<unsigned long long>(counts[i].second));
  }
  std::fprintf(file, "%s}%s\n", counts.empty() ? "" : "\n  ", last ? "" : ",");
}

}  // namespace

void write_exit_statistics() {
  Driver* driver = Driver::load();
  if (!driver || driver->config.stats_path.empty()) return;
  std::FILE* file = std::fopen(driver->config.stats_path.c_str(), "w");
  if (!file) {
    log_error("OOMGUARD_SIM_STATS='%s': cannot write the statistics file", driver->config.stats_path.c_str());
    return;
  }
  std::fprintf(file, "{\n  \"simulated\": true,\n  \"pid\": %d,\n  \"devices\": [", static_cast<int>(::getpid()));
  for (std::size_t i = 0; i < driver->devices.size(); ++i) {
    const Device& device = *driver->devices[i];
    std::lock_guard lock(device.mutex);
    std::fprintf(file,
                 "%s\n    {\"ordinal\": %d, \"physical_index\": %d, \"name\": %s, \"table_name\": %s, "
                 "\"total_bytes\": %llu, \"peak_bytes\": %llu, \"current_bytes\": %llu, \"allocations\": %llu, "
                 "\"frees\": %llu, \"refusals\": %llu}",
                 i == 0 ? "" : ",", device.ordinal, device.physical_index,
                 json_string(device.model.device_name).c_str(), json_string(device.model.table_name).c_str(),
                 static_cast<unsigned long long>(device.total_bytes), static_cast<unsigned long long>(device.peak),
                 static_cast<unsigned long long>(device.charged),
                 static_cast<unsigned long long>(device.counters.allocations),
                 static_cast<unsigned long long>(device.counters.frees),
                 static_cast<unsigned long long>(device.counters.refusals));
  }
  std::fprintf(file, "%s],\n", driver->devices.empty() ? "" : "\n  ");
  write_counts(file, "kernel_launches", driver->kernels.launch_counts(), false);
  write_counts(file, "library_calls", driver->library_calls.counts(), false);
  write_counts(file, "unsupported_calls", driver->unsupported_calls.counts(), true);
  std::fprintf(file, "}\n");
  std::fclose(file);
}

}  // namespace oomguard::sim
