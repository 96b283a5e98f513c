// The guard crosses into Python as JSON text: the run description and the
// observations are small, built once per step, and JSON keeps one schema
// (checked in C++, unknown keys rejected) for Python, the reports and tests.
#include "guard_bindings.hpp"

#include <pybind11/stl.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "oomguard/error.hpp"
#include "oomguard/guard/policy.hpp"
#include "oomguard/guard/predictor.hpp"
#include "oomguard/guard/run_state.hpp"
#include "oomguard/guard/static_check.hpp"
#include "oomguard/ledger.hpp"

namespace py = pybind11;

namespace oomguard::torch_hooks {
namespace {

using guard::RunState;

nlohmann::json parse(const std::string& text, const char* what) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw config_error(std::string("oomguard guard: ") + what + " is not valid JSON: " + e.what());
  }
}

guard::PolicyConfig policy_from(const nlohmann::json& j) {
  guard::PolicyConfig c;
  if (j.contains("budget")) c.budget = j["budget"].get<std::uint64_t>();
  if (j.contains("warn_at")) c.warn_at = j["warn_at"].get<double>();
  if (j.contains("actions")) c.actions = j["actions"].get<std::vector<std::string>>();
  return c;
}

// Evaluate: predict, rank the fixes, decide; store the prediction and fixes
// in the run state. `worst_ratio` < 0 decides on our own ratio.
std::string evaluate(const std::string& run_text, const std::string& steps_text, const std::string& policy_text,
                     const std::vector<std::string>& available, double worst_ratio) {
  const guard::RunDescription run = guard::run_description_from_json(parse(run_text, "run description"));
  std::vector<guard::StepObservation> steps;
  for (const auto& s : parse(steps_text, "step observations")) steps.push_back(guard::step_observation_from_json(s));
  const guard::PolicyConfig policy = policy_from(parse(policy_text, "policy"));
  const guard::Forecast forecast = guard::predict(run, steps);
  const std::vector<guard::Suggestion> fixes = guard::rank_fixes(run, forecast);
  const guard::Decision decision =
      worst_ratio < 0 ? guard::decide(forecast.prediction, fixes, policy, available)
                      : guard::decide_with_ratio(worst_ratio, forecast.prediction, fixes, policy, available);
  RunState::global().set_budget(policy.budget);
  RunState::global().set_prediction(forecast.prediction);
  RunState::global().set_suggestions(fixes);
  nlohmann::json out = guard::to_json(forecast);
  out["decision"] = guard::to_json(decision);
  auto suggestions = nlohmann::json::array();
  for (const auto& s : fixes) suggestions.push_back(guard::to_json(s));
  out["suggestions"] = suggestions;
  out["warn_message"] = guard::warn_message(forecast.prediction, policy.budget, fixes);
  return out.dump();
}

std::string actions_json() {
  auto out = nlohmann::json::array();
  for (const auto& a : RunState::global().actions()) out.push_back(guard::to_json(a));
  return out.dump();
}

std::string predictions_json() {
  auto out = nlohmann::json::array();
  for (const auto& p : RunState::global().predictions()) out.push_back(guard::to_json(p));
  return out.dump();
}

// The static check (guard/static_check); its fixes become the suggestions
// the reports list when the run is stopped before its first step.
std::string static_check(const std::string& run_text, std::uint64_t weights_bytes, std::uint64_t budget,
                         int world_size) {
  const auto run = guard::run_description_from_json(parse(run_text, "run description"));
  const guard::StaticFootprint f = guard::static_footprint(run, weights_bytes, budget, world_size);
  if (!f.fits()) {
    std::vector<guard::Suggestion> suggestions;
    for (const auto& fix : f.fixes)
      suggestions.push_back({fix.kind, fix.description, f.total() > fix.static_bytes ? f.total() - fix.static_bytes : 0});
    RunState::global().set_suggestions(std::move(suggestions));
  }
  return guard::to_json(f).dump();
}

}  // namespace

void bind_guard(py::module_& m) {
  m.def("guard_static_check", &static_check, py::arg("run"), py::arg("weights_bytes"), py::arg("budget"),
        py::arg("world_size") = 1,
        "Weights + gradients + optimizer state against the budget, before the first forward (JSON out); "
        "when they do not fit, the fixes become the run's suggestions.");
  m.def("guard_evaluate", &evaluate, py::arg("run"), py::arg("steps"), py::arg("policy"), py::arg("available"),
        py::arg("worst_ratio") = -1.0,
        "Predict the run's peak, rank the fixes and decide the actions (JSON in, JSON out).");
  m.def("guard_prediction", [] {
    const auto p = RunState::global().prediction();
    return p ? guard::to_json(*p).dump() : std::string("null");
  });
  m.def("guard_predictions", &predictions_json,
        "The first prediction and each revision, oldest first, as JSON (Note [Prediction history]).");
  m.def("guard_add_action", [](std::int64_t step, const std::string& kind, const std::string& detail,
                               std::uint64_t saving) {
    RunState::global().add_action({step, kind, detail, saving});
  }, py::arg("step"), py::arg("kind"), py::arg("detail"), py::arg("predicted_saving_bytes") = 0);
  m.def("guard_actions", &actions_json);
  m.def("guard_budget", [] { return RunState::global().budget(); });
  m.def("guard_reset", [] { RunState::global().reset(); });
  m.def("guard_parse_actions", [](const std::string& text) { return guard::parse_actions(text); });
  m.def("guard_parse_warn_at", [](const std::string& text) { return guard::parse_warn_at(text); });
  m.def("guard_parse_predict_after", [](const std::string& text) { return guard::parse_predict_after(text); });
  m.def("guard_parse_max_seq_len", [](const std::string& text) { return guard::parse_max_seq_len(text); });
  m.def("guard_check_conf", [](const std::vector<std::pair<std::string, std::string>>& pairs) {
    std::vector<ConfEntry> entries;
    for (const auto& [key, value] : pairs) entries.push_back({key, value});
    guard::check_guard_conf(entries);
  });
  m.def("step_peak", [](std::int64_t step, int device) -> py::object {
    const std::optional<StepPeak> s = Ledger::global().step_peak(step, device);
    if (!s) return py::none();
    py::dict categories;
    for (std::size_t c = 0; c < kNumCategories; ++c)
      categories[py::str(std::string(kCategoryNames[c]))] = s->peak_by_category[c];
    return py::make_tuple(s->peak_allocated, categories);
  }, py::arg("step"), py::arg("device"), "(peak_allocated, peak by category) of a step on a device, or None.");
  m.def("open_step_peak", [](int device) -> std::int64_t {
    const std::optional<StepPeak> s = Ledger::global().open_step_peak(device);
    return s ? s->peak_allocated : 0;
  }, py::arg("device"), "The peak allocated bytes of the open step so far on a device.");
  m.def("non_torch_bytes", &Ledger::non_torch_bytes, py::arg("device"),
        "Device memory outside PyTorch now (driver segments seen by LD_PRELOAD or CUPTI beyond PyTorch's).");
  m.def("device_memory", [](int device) {
    const DeviceStats s = Ledger::global().device_stats(device);
    return py::make_tuple(s.allocated, s.peak_allocated, s.reserved, s.peak_reserved);
  }, py::arg("device"), "(allocated, peak_allocated, reserved, peak_reserved) of a device.");
}

}  // namespace oomguard::torch_hooks
