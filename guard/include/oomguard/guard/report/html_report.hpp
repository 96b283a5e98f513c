// report.html: one self-contained page (inline CSS and SVG, no script, no
// network) from summary.json documents and their timelines. The process
// writes it for itself; `oomguard report <dir>` rebuilds it from the files,
// one section per rank.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "oomguard/guard/report/timeline.hpp"

namespace oomguard::guard::report {

// One process's files as read back. A rank killed by SIGKILL has a
// timeline and no summary; a disk that filled mid-write leaves a summary
// that does not parse. The page shows what there is and says what is not.
struct RankReport {
  std::string label;       // "rank0"
  nlohmann::json summary;  // null when there is none or it is unreadable
  Timeline timeline;
  std::vector<std::string> problems;  // why a file is missing or unreadable
};

std::string render_html(const std::vector<RankReport>& ranks, const std::string& title);

}  // namespace oomguard::guard::report
