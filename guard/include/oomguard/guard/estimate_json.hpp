// The `oomguard estimate --json` document (schema "oomguard.estimate/1",
// documented in docs/estimator.md). Keys are only ever added.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "oomguard/guard/estimator.hpp"
#include "oomguard/guard/fit_search.hpp"

namespace oomguard::guard {

inline constexpr const char* kEstimateSchema = "oomguard.estimate/1";

nlohmann::json to_json(const TrainingSetup& setup);
nlohmann::json to_json(const Estimate& estimate);
nlohmann::json to_json(const FitCandidate& candidate);

}  // namespace oomguard::guard
