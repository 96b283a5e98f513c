// summary.json: the run's memory in one document (schema oomguard.summary/1,
// documented in docs/reports.md).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "oomguard/guard/run_state.hpp"

namespace oomguard::guard::report {

inline constexpr const char* kSummarySchema = "oomguard.summary/1";

// "cpu" for the host, "cuda:N" for a device.
std::string device_label(int device);

nlohmann::json to_json(const Prediction& prediction);
nlohmann::json to_json(const ActionRecord& action);
nlohmann::json to_json(const Suggestion& suggestion);

// The summary of this process now, from the Ledger, the RunState and the
// Recorder. `reason`: why it is written ("exit", "out_of_memory",
// "on_demand", "abort: ...").
nlohmann::json build_summary(const std::string& reason);

// Throws oomguard::error naming the first missing or mistyped key: what
// `oomguard report` checks before it trusts a file.
void check_summary(const nlohmann::json& summary, const std::string& what);

}  // namespace oomguard::guard::report
