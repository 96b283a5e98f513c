#include "ratio_reporter.hpp"

#include <cstdio>

namespace oomguard::bench {

void RatioReporter::ReportRuns(const std::vector<Run>& runs) {
  for (const Run& run : runs) {
    if (run.error_occurred) continue;
    // With --benchmark_repetitions the median stands for the benchmark;
    // otherwise its one iteration run does.
    const bool median = run.run_type == Run::RT_Aggregate && run.aggregate_name == "median";
    if (run.run_type != Run::RT_Iteration && !median) continue;
    const double to_ns = 1e9 / benchmark::GetTimeUnitMultiplier(run.time_unit);
    ns_[run.run_name.str()] = run.GetAdjustedRealTime() * to_ns;
  }
  ConsoleReporter::ReportRuns(runs);
}

double RatioReporter::ns(const std::string& name) const {
  auto it = ns_.find(name);
  return it == ns_.end() ? 0.0 : it->second;
}

void RatioReporter::print_ratios(const std::map<std::string, std::pair<std::string, double>>& rows,
                                 const std::string& baseline) const {
  const double base = ns(baseline);
  std::printf("\n%-48s %12s %12s %10s\n", "measure", "ns", "target ns", "x malloc");
  for (const auto& [label, entry] : rows) {
    const double value = ns(entry.first);
    std::printf("%-48s %12.1f %12.0f %10.3f\n", label.c_str(), value, entry.second, base > 0 ? value / base : 0.0);
  }
  std::printf("baseline: %s = %.1f ns per pair\n", baseline.c_str(), base);
}

}  // namespace oomguard::bench
