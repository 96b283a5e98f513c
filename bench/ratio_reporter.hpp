// A console reporter that also keeps each run's time, so that one run can
// print ratios against its own baseline (timings from one run only).
#pragma once

#include <benchmark/benchmark.h>

#include <map>
#include <string>

namespace oomguard::bench {

class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override;
  // Nanoseconds per iteration of a run, by its full name; 0 if absent.
  double ns(const std::string& name) const;
  void print_ratios(const std::map<std::string, std::pair<std::string, double>>& rows,
                    const std::string& baseline) const;

 private:
  std::map<std::string, double> ns_;
};

}  // namespace oomguard::bench
