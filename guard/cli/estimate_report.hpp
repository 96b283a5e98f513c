// The human-readable form of an estimate: a table per category, the peak
// and whether it fits.
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "oomguard/guard/estimator.hpp"
#include "oomguard/guard/fit_search.hpp"

namespace oomguard::cli {

struct ReportContext {
  std::string model_name;
  const guard::ModelSpec* spec = nullptr;
  const guard::EstimateOptions* options = nullptr;
  bool show_naive = false;  // the b*s*h*L*2 comparison of the reference case
};

void print_estimate(std::ostream& out, const guard::Estimate& e, const ReportContext& context);
void print_fit(std::ostream& out, const std::vector<guard::FitCandidate>& fits, const ReportContext& context);

}  // namespace oomguard::cli
