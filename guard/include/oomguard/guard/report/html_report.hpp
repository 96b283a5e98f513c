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

struct RankReport {
  std::string label;  // "rank0"
  nlohmann::json summary;
  std::vector<TimelineRow> timeline;
};

std::string render_html(const std::vector<RankReport>& ranks, const std::string& title);

}  // namespace oomguard::guard::report
