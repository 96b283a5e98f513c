// summary.json: the run's memory in one document (schema oomguard.summary/2,
// documented in docs/reports.md).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "oomguard/guard/run_state.hpp"

namespace oomguard::guard::report {

inline constexpr const char* kSummarySchema = "oomguard.summary/2";

// "cpu" for the host, "cuda:N" for a device.
std::string device_label(int device);

// The summary of this process now, from the Ledger, the RunState and the
// Recorder. `reason`: why it is written ("exit", "out_of_memory",
// "on_demand", "abort: ...").
nlohmann::json build_summary(const std::string& reason);

// Note [A truncated run's peak]
// The actual peak of a run that stopped early is the peak of the part that
// ran, not the run's: an error against it says nothing of the prediction.
// A run is taken as complete unless the summary is written for an abort, an
// out-of-memory or a signal (its reason starts with "abort",
// "out_of_memory" or "signal"), the guard recorded an abort (the exit report
// that follows the guard's post-mortem says "exit"), or an allocation was
// refused (the refused bytes never reached the peak).
bool run_complete(const std::string& reason, const std::vector<ActionRecord>& actions, bool had_oom);

// Throws oomguard::error naming the first missing or mistyped key: what
// `oomguard report` checks before it trusts a file.
void check_summary(const nlohmann::json& summary, const std::string& what);

}  // namespace oomguard::guard::report
