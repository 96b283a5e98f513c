// The policy: given the prediction, the budget and the configured actions,
// what the guard does now. The Python side executes the decision (it alone
// can change the model or the data loader); this file only decides.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "oomguard/config.hpp"
#include "oomguard/guard/predictor.hpp"
#include "oomguard/guard/run_state.hpp"

namespace oomguard::guard {

// The actions, in the order of their severity (distributed agreement takes
// the most severe one any rank chose).
inline constexpr std::string_view kActionNames[] = {"warn", "checkpoint", "micro_batch", "save_guard", "abort"};
bool is_remediation(std::string_view action);  // checkpoint, micro_batch, save_guard

struct PolicyConfig {
  std::uint64_t budget = 0;  // bytes; 0: no budget, no decision
  double warn_at = 0.9;      // fraction of the budget that triggers warn
  std::vector<std::string> actions = {"warn", "checkpoint", "micro_batch", "save_guard", "abort"};
  std::int64_t predict_after = 2;  // optimizer steps observed before the first prediction
};

// "warn+checkpoint+abort" -> its actions. Throws config_error naming the bad
// action and the accepted ones, or a repeated one.
std::vector<std::string> parse_actions(std::string_view text);
// warn_at in (0, 1]; predict_after a whole number of steps in [1, 10^6];
// max_seq_len a whole number of tokens in [1, 2^31 - 1]. Throw config_error
// otherwise, naming the key, the value and what is accepted.
double parse_warn_at(std::string_view text);
std::int64_t parse_predict_after(std::string_view text);
std::int64_t parse_max_seq_len(std::string_view text);

// Check the guard's OOMGUARD_CONF values (actions, warn_at, predict_after,
// max_seq_len, budget) before a run starts: a bad one would otherwise leave
// every process it starts unguarded. Other keys are left to their layers.
void check_guard_conf(std::span<const ConfEntry> entries);

// The fixes the user could apply, with the bytes each saves at the predicted
// peak, largest saving first. Only fixes that apply to this run are listed.
std::vector<Suggestion> rank_fixes(const RunDescription& run, const Forecast& forecast);

struct PlannedAction {
  std::string kind;
  std::string detail;
  std::uint64_t saves_bytes = 0;
};

struct Decision {
  double ratio = 0;          // predicted peak / budget
  std::uint64_t predicted = 0;
  std::uint64_t after_actions = 0;  // predicted minus what the remediations save
  std::vector<PlannedAction> actions;  // in the order to execute
  std::string summary;
  bool takes(std::string_view kind) const;
};

// Decide. `available` lists the remediations an actuator is registered for;
// the others are skipped. Remediations are taken in the configured order,
// each only if it saves bytes, until the predicted peak fits; if none is
// enough and abort is configured, the decision is abort alone (changing the
// run then stopping it would help nobody). warn accompanies any action.
Decision decide(const Prediction& prediction, const std::vector<Suggestion>& fixes, const PolicyConfig& config,
                const std::vector<std::string>& available);

// Decide with the worst rank's ratio instead of ours: every rank then takes
// the same kinds of actions (the union over ranks is agreed by the caller).
Decision decide_with_ratio(double worst_ratio, const Prediction& prediction, const std::vector<Suggestion>& fixes,
                           const PolicyConfig& config, const std::vector<std::string>& available);

// The warn message: predicted peak, where and when, the budget, and the
// ranked fixes with their savings.
std::string warn_message(const Prediction& prediction, std::uint64_t budget, const std::vector<Suggestion>& fixes);

nlohmann::json to_json(const Decision& d);
nlohmann::json to_json(const Suggestion& s);

}  // namespace oomguard::guard
