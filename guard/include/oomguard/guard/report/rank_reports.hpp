// Reading a report directory back: one process's directory, or a run's
// directory of rank*/ subdirectories, for `oomguard report <dir>`.
#pragma once

#include <string>
#include <vector>

#include "oomguard/guard/report/html_report.hpp"

namespace oomguard::guard::report {

// The reports under `dir`: `dir` itself if it holds a summary.json or a
// timeline.csv, else each rank*/ (and rank*/pid*/) subdirectory, in rank
// order. A file that is missing or does not parse is named in that rank's
// `problems` and the rest of the rank is still read; a rank*/ folder with
// nothing in it is listed with why. Throws oomguard::error only when `dir`
// holds no report and no rank folder at all.
std::vector<RankReport> load_rank_reports(const std::string& dir);

struct RebuiltReport {
  std::string path;                   // the page written
  std::vector<std::string> problems;  // "rank1: ..." for each file not read whole
  std::size_t ranks_shown = 0;        // ranks with a summary or a timeline
};

// Rebuild `output` (default <dir>/report.html) from the reports under `dir`.
RebuiltReport rebuild_report(const std::string& dir, const std::string& output = "");

}  // namespace oomguard::guard::report
