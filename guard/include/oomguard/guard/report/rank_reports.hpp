// Reading a report directory back: one process's directory, or a run's
// directory of rank*/ subdirectories, for `oomguard report <dir>`.
#pragma once

#include <string>
#include <vector>

#include "oomguard/guard/report/html_report.hpp"

namespace oomguard::guard::report {

// The reports under `dir`: `dir` itself if it holds a summary.json, else each
// rank*/ (and rank*/pid*/) subdirectory that does, in rank order. Throws
// oomguard::error naming the directory when there are none, or naming the
// file that does not parse.
std::vector<RankReport> load_rank_reports(const std::string& dir);

// Rebuild `output` (default <dir>/report.html) from the reports under `dir`.
// Returns the path written.
std::string rebuild_report(const std::string& dir, const std::string& output = "");

}  // namespace oomguard::guard::report
