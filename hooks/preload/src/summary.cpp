#include "summary.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>

#include "call_counters.hpp"
#include "lifecycle.hpp"
#include "oomguard/guard/report/report_file.hpp"
#include "oomguard/json.hpp"
#include "oomguard/ledger.hpp"
#include "preload_config.hpp"
#include "segment_accounting.hpp"
#include "timeline.hpp"

namespace oomguard::preload {

nlohmann::json build_summary(std::string_view reason) {
  nlohmann::json out;
  out["schema"] = "oomguard.preload-summary/1";
  out["reason"] = reason;
  out["pid"] = static_cast<int>(getpid());
  out["rank"] = config().rank.empty() ? 0 : std::stoi(config().rank);
  out["run_id"] = config().run_id;

  nlohmann::json budget = nlohmann::json::object();
  budget["spec"] = config().budget ? nlohmann::json(config().budget_text) : nlohmann::json(nullptr);
  out["budget"] = budget;

  nlohmann::json calls = nlohmann::json::object();
  const auto counts = call_counts();
  for (std::size_t i = 0; i < kNumCalls; ++i) calls[std::string(name(static_cast<Call>(i)))] = counts[i];
  out["calls"] = calls;
  out["driver_wrappers_handed_out"] = wrappers_handed_out();

  const Ledger& ledger = Ledger::segments();
  nlohmann::json devices = nlohmann::json::array();
  std::uint64_t budget_refusals = 0;
  std::uint64_t device_ooms = 0;
  for (const DeviceFigures& f : device_figures()) {
    nlohmann::json d = to_json(ledger.device_stats(f.device));
    d["segment_bytes"] = f.live_bytes;
    d["peak_segment_bytes"] = f.peak_bytes;
    d["live_segments"] = f.live_segments;
    d["budget_bytes"] = f.budget_bytes == 0 ? nlohmann::json(nullptr) : nlohmann::json(f.budget_bytes);
    d["budget_refusals"] = f.budget_refusals;
    d["device_ooms"] = f.device_ooms;
    budget_refusals += f.budget_refusals;
    device_ooms += f.device_ooms;
    devices.push_back(std::move(d));
  }
  out["devices"] = devices;

  nlohmann::json ooms = {{"budget_refusals", budget_refusals}, {"device_ooms", device_ooms},
                         {"summaries_written", out_of_memory_summaries_written()}};
  if (const auto last = last_oom()) {
    ooms["last"] = {{"device", last->device}, {"requested_bytes", last->requested},
                    {"by", last->by_budget ? "budget" : "device"}};
  }
  out["ooms"] = ooms;
  out["timeline"] = {{"rows_written", timeline_rows_written()}, {"rows_dropped", timeline_rows_dropped()}};
  return out;
}

bool write_summary(const std::string& dir, std::string_view reason) {
  const std::string text = build_summary(reason).dump(2) + "\n";
  // A temporary of its own per call: two threads may hit an out-of-memory
  // at once (Note [Report files are never followed]).
  return guard::report::write_report_file(dir + "/preload-summary.json", text).empty();
}

}  // namespace oomguard::preload
