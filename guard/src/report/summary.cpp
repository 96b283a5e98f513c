#include "oomguard/guard/report/summary.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>

#include <fmt/format.h>

#include "oomguard/error.hpp"
#include "oomguard/guard/policy.hpp"
#include "oomguard/guard/predictor.hpp"
#include "oomguard/guard/report/recorder.hpp"
#include "oomguard/json.hpp"
#include "oomguard/ledger.hpp"
#include "oomguard/tags.hpp"

namespace oomguard::guard::report {
namespace {

using nlohmann::json;

json allocations_json(const std::vector<AllocationRecord>& records) {
  json out = json::array();
  for (const AllocationRecord& r : records) {
    out.push_back({{"address", r.address},
                   {"size_bytes", r.size},
                   {"device", device_label(r.device)},
                   {"category", name(r.category)},
                   {"phase", name(r.phase)},
                   {"step", r.step},
                   {"stream", r.stream},
                   // Python stacks are not recorded yet; the key is kept so
                   // that readers need not change when they are.
                   {"frames", json::array()}});
  }
  return out;
}

json row_json(const TimelineRow& row) {
  return {{"allocated_bytes", row.allocated},
          {"reserved_bytes", row.reserved},
          {"by_category", category_bytes_json(row.by_category)},
          {"step", row.step},
          {"phase", name(row.phase)},
          {"time_s", row.time_s}};
}

json oom_json(const OomCapture& oom) {
  const OomContext& c = oom.context;
  json out = row_json(oom.state.row);
  out["requested_bytes"] = c.requested_bytes;
  out["device"] = device_label(c.device);
  out["budget_bytes"] = c.budget_bytes == 0 ? json(nullptr) : json(c.budget_bytes);
  // The allocator's own view at the refusal (the row above is the Ledger's).
  out["allocator_allocated_bytes"] = c.allocated_bytes;
  out["allocator_reserved_bytes"] = c.reserved_bytes;
  out["largest_free_block_bytes"] = c.largest_free_block == 0 ? json(nullptr) : json(c.largest_free_block);
  out["allocator_by_category"] = category_bytes_json(c.by_category);
  out["reason"] = c.reason;
  out["count"] = oom.count;
  out["largest_allocations"] = allocations_json(oom.state.largest);
  return out;
}

std::string env_or(const char* key, const char* fallback) {
  const char* v = std::getenv(key);
  return v != nullptr && *v != '\0' ? v : fallback;
}

void require(const json& doc, const char* key, bool (json::*is)() const noexcept, const char* type,
             const std::string& what) {
  if (!doc.contains(key)) throw error(fmt::format("{}: key \"{}\" is missing", what, key));
  if (!(doc.at(key).*is)()) throw error(fmt::format("{}: \"{}\" is not {}", what, key, type));
}

}  // namespace

std::string device_label(int device) { return device == kCpuDevice ? "cpu" : fmt::format("cuda:{}", device); }

bool run_complete(const std::string& reason, const std::vector<ActionRecord>& actions, bool had_oom) {
  for (const char* early : {"abort", "out_of_memory", "signal"})
    if (reason.starts_with(early)) return false;
  if (had_oom) return false;
  return std::none_of(actions.begin(), actions.end(), [](const ActionRecord& a) { return a.kind == "abort"; });
}

json build_summary(const std::string& reason) {
  const Ledger& ledger = Ledger::global();
  const RunState& run = RunState::global();
  const Recorder& recorder = Recorder::global();

  json devices = json::array();
  std::int64_t peak_allocated = 0;
  std::int64_t peak_reserved = 0;
  std::int64_t allocated = 0;
  std::int64_t reserved = 0;
  CategoryBytes own_peaks{};
  std::string main_device = "none";
  std::int64_t main_peak = -1;
  DeviceStats main_stats;
  for (const DeviceStats& s : ledger.stats()) {
    devices.push_back({{"device", device_label(s.device)},
                       {"allocated_bytes", s.allocated},
                       {"peak_allocated_bytes", s.peak_allocated},
                       {"reserved_bytes", s.reserved},
                       {"peak_reserved_bytes", s.peak_reserved},
                       {"live_allocations", s.live_allocations},
                       {"current", category_bytes_json(s.current)},
                       {"peak", category_bytes_json(s.peak)},
                       {"peak_breakdown", category_bytes_json(s.peak_breakdown)},
                       {"peak_step", s.peak_step},
                       {"peak_phase", name(s.peak_phase)},
                       {"non_torch_bytes", Ledger::non_torch_bytes(s.device)}});
    // Devices peak at different moments: the sum bounds the process's peak.
    peak_allocated += s.peak_allocated;
    peak_reserved += s.peak_reserved;
    allocated += s.allocated;
    reserved += s.reserved;
    for (std::size_t c = 0; c < kNumCategories; ++c) own_peaks[c] += s.peak[c];
    if (s.peak_allocated > main_peak) {
      main_peak = s.peak_allocated;
      main_device = device_label(s.device);
      main_stats = s;
    }
  }

  // The breakdown, step, phase and time are the main device's at its peak,
  // from the Ledger (Note [The breakdown at the peak] in ledger.hpp). The
  // recorder's highest sample is kept only for what the Ledger does not copy
  // at the peak: the largest live allocations (recorder.hpp).
  const auto peak = recorder.peak();
  const TimelineRow sampled = peak ? peak->row : recorder.sample();
  json peak_json = {
      {"allocated_bytes", std::max(peak_allocated, sampled.allocated)},
      {"reserved_bytes", std::max(peak_reserved, sampled.reserved)},
      {"by_category", category_bytes_json(main_stats.peak_breakdown)},
      {"step", main_stats.peak_step},
      {"phase", name(main_stats.peak_phase)},
      {"time_s", main_stats.peak_time_ns == 0 ? 0.0 : std::max(0.0, recorder.seconds_at(main_stats.peak_time_ns))},
      {"sampled_allocated_bytes", sampled.allocated},
      {"category_peaks", category_bytes_json(own_peaks)}};

  // Serializers of the guard's records are the guard's (predictor_json.cpp,
  // policy.cpp, run_state.cpp): oomguard.prediction() and this file agree.
  const auto prediction = run.prediction();
  const std::vector<Prediction> predictions = run.predictions();
  json predictions_json = json::array();
  for (const Prediction& p : predictions) predictions_json.push_back(to_json(p));
  const std::vector<ActionRecord> actions = run.actions();
  auto suggestions = run.suggestions();
  std::stable_sort(suggestions.begin(), suggestions.end(),
                   [](const Suggestion& a, const Suggestion& b) { return a.saves_bytes > b.saves_bytes; });
  json suggestions_json = json::array();
  for (const auto& s : suggestions) suggestions_json.push_back(to_json(s));
  json actions_json = json::array();
  for (const auto& a : actions) actions_json.push_back(to_json(a));

  const auto oom = recorder.oom();
  const std::int64_t reserved_now = std::max(reserved, allocated);
  json fragmentation = {{"allocated_bytes", allocated},
                        {"reserved_bytes", reserved},
                        {"reserved_minus_allocated_bytes", reserved_now - allocated},
                        {"largest_free_block_bytes",
                         oom && oom->context.largest_free_block != 0 ? json(oom->context.largest_free_block) : json(nullptr)},
                        {"note", "the largest free block is known only when the allocator reports it at an "
                                 "out-of-memory (own mode); null otherwise"}};

  // Note [Prediction history] (run_state.hpp): the first prediction is the
  // one to judge; the latest is made at the last step. Note [A truncated
  // run's peak]: no error for a run that stopped early.
  json versus = nullptr;
  if (prediction && !predictions.empty()) {
    const auto actual = peak_json["allocated_bytes"].get<std::int64_t>();
    const bool complete = run_complete(reason, actions, oom.has_value());
    const auto error_of = [&](const Prediction& p) -> json {
      if (!complete || actual <= 0) return nullptr;
      return (static_cast<double>(p.peak_allocated_bytes) - static_cast<double>(actual)) / static_cast<double>(actual);
    };
    const bool changed_after_first = std::any_of(actions.begin(), actions.end(), [](const ActionRecord& a) {
      return a.changes_run() && a.predictions_before > 0;
    });
    const auto after_actions = run.first_prediction_after_actions();
    const Prediction& first = predictions.front();
    versus = {{"first_predicted_peak_bytes", first.peak_allocated_bytes},
              {"first_made_at_step", first.made_at_step},
              {"latest_predicted_peak_bytes", prediction->peak_allocated_bytes},
              {"actual_peak_bytes", actual},
              {"error_fraction", error_of(first)},
              {"complete", complete},
              {"error_fraction_after_actions",
               changed_after_first && after_actions ? error_of(*after_actions) : json(nullptr)}};
  }

  json steps = json::array();
  for (const StepPeak& p : ledger.step_peaks()) {
    steps.push_back({{"step", p.step},
                     {"device", device_label(p.device)},
                     {"peak_allocated_bytes", p.peak_allocated},
                     {"category_peaks", category_bytes_json(p.peak_by_category)},
                     {"at_end", category_bytes_json(p.at_end)}});
  }

  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const std::uint64_t budget = run.budget();
  return {{"schema", kSummarySchema},
          {"reason", reason},
          {"written_at_unix_s", std::chrono::duration<double>(now).count()},
          {"pid", static_cast<std::int64_t>(getpid())},
          {"run_id", env_or("OOMGUARD_RUN_ID", "")},
          {"rank", std::atoi(env_or("RANK", "0").c_str())},
          {"device", main_device},
          {"devices", devices},
          {"budget_bytes", budget == 0 ? json(nullptr) : json(budget)},
          {"step", process_step()},
          {"phase", name(process_phase())},
          {"peak", peak_json},
          {"largest_allocations", peak ? allocations_json(peak->largest) : json::array()},
          {"prediction", prediction ? to_json(*prediction) : json(nullptr)},
          {"predictions", predictions_json},
          {"predicted_vs_actual", versus},
          {"actions", actions_json},
          {"oom", oom ? oom_json(*oom) : json(nullptr)},
          {"suggestions", suggestions_json},
          {"fragmentation", fragmentation},
          {"steps", steps},
          {"counters", to_json(ledger.counters())},
          {"timeline", {{"file", "timeline.csv"}, {"rows", recorder.rows_written()}}}};
}

void check_summary(const json& doc, const std::string& what) {
  if (!doc.is_object()) throw error(fmt::format("{}: not a JSON object", what));
  require(doc, "schema", &json::is_string, "a string", what);
  if (doc["schema"] != kSummarySchema)
    throw error(fmt::format("{}: schema {} is not the accepted \"{}\"", what, doc["schema"].dump(), kSummarySchema));
  require(doc, "device", &json::is_string, "a string", what);
  require(doc, "peak", &json::is_object, "an object", what);
  require(doc["peak"], "allocated_bytes", &json::is_number_integer, "an integer", what + " peak");
  require(doc["peak"], "by_category", &json::is_object, "an object", what + " peak");
  require(doc, "actions", &json::is_array, "an array", what);
  require(doc, "suggestions", &json::is_array, "an array", what);
  require(doc, "largest_allocations", &json::is_array, "an array", what);
  if (!doc.contains("oom") || !(doc["oom"].is_null() || doc["oom"].is_object()))
    throw error(fmt::format("{}: \"oom\" must be null or an object", what));
  if (!doc.contains("prediction") || !(doc["prediction"].is_null() || doc["prediction"].is_object()))
    throw error(fmt::format("{}: \"prediction\" must be null or an object", what));
  require(doc, "predictions", &json::is_array, "an array", what);
  if (!doc.contains("predicted_vs_actual")) throw error(fmt::format("{}: key \"predicted_vs_actual\" is missing", what));
  const json& versus = doc["predicted_vs_actual"];
  if (!versus.is_null()) {
    const std::string where = what + " predicted_vs_actual";
    if (!versus.is_object()) throw error(fmt::format("{}: \"predicted_vs_actual\" must be null or an object", what));
    for (const char* key : {"first_predicted_peak_bytes", "first_made_at_step", "latest_predicted_peak_bytes",
                            "actual_peak_bytes"})
      require(versus, key, &json::is_number_integer, "an integer", where);
    require(versus, "complete", &json::is_boolean, "a boolean", where);
    for (const char* key : {"error_fraction", "error_fraction_after_actions"}) {
      if (!versus.contains(key) || !(versus[key].is_null() || versus[key].is_number()))
        throw error(fmt::format("{}: \"{}\" must be null or a number", where, key));
    }
    if (versus["complete"] == false && !versus["error_fraction"].is_null())
      throw error(fmt::format("{}: an incomplete run has no \"error_fraction\"", where));
  }
}

}  // namespace oomguard::guard::report
