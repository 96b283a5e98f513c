#include "stats_view.hpp"

#include <nlohmann/json.hpp>

#include "cpu_allocator.hpp"
#include "oomguard/json.hpp"
#include "oomguard/ledger.hpp"
#include "oomguard/tags.hpp"

namespace oomguard::torch_hooks {

std::string device_name(int device) { return device == kCpuDevice ? "cpu" : "cuda:" + std::to_string(device); }

std::string stats_json() {
  const Ledger& ledger = Ledger::global();
  nlohmann::json devices = nlohmann::json::object();
  for (const DeviceStats& s : ledger.stats()) {
    devices[device_name(s.device)] = {{"current", category_bytes_json(s.current)},
                                      {"peak", category_bytes_json(s.peak)},
                                      {"allocated", s.allocated},
                                      {"peak_allocated", s.peak_allocated},
                                      {"reserved", s.reserved},
                                      {"peak_reserved", s.peak_reserved},
                                      {"live_allocations", s.live_allocations},
                                      {"peak_breakdown", category_bytes_json(s.peak_breakdown)},
                                      {"peak_step", s.peak_step},
                                      {"peak_phase", name(s.peak_phase)}};
  }
  nlohmann::json steps = nlohmann::json::array();
  for (const StepPeak& p : ledger.step_peaks()) {
    steps.push_back({{"step", p.step},
                     {"device", device_name(p.device)},
                     {"peak_allocated", p.peak_allocated},
                     {"peak_by_category", category_bytes_json(p.peak_by_category)}});
  }
  const nlohmann::json out = {{"devices", devices},
                              {"steps", steps},
                              {"step", process_step()},
                              {"phase", name(process_phase())},
                              {"counters", to_json(ledger.counters())},
                              {"cpu_budget", {{"limit", cpu_budget_limit()}, {"used", cpu_budget_used()}}}};
  return out.dump();
}

}  // namespace oomguard::torch_hooks
