// Inline SVG charts for report.html, generated here so that the page needs no
// script, no network and no plotting library at view time.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "oomguard/category.hpp"
#include "oomguard/guard/report/timeline.hpp"

namespace oomguard::guard::report {

// One colour per category (Tableau 10), in category order.
std::string_view category_colour(std::size_t category);

// Text safe inside HTML and SVG.
std::string escape_html(std::string_view text);

struct TimelineChartLines {
  std::uint64_t budget = 0;          // 0: none
  std::uint64_t predicted_peak = 0;  // 0: none (rows may carry their own)
  std::optional<double> oom_time_s;
};

inline constexpr std::size_t kMaxChartPoints = 1500;

// Bytes by category stacked over the rows' time, with the reserved bytes,
// the budget and the predicted peak drawn as lines. More than
// kMaxChartPoints rows are drawn through keep_peaks().
std::string timeline_svg(const std::vector<TimelineRow>& rows, const TimelineChartLines& lines);

// One horizontal bar split by category.
std::string breakdown_svg(const CategoryBytes& bytes);

}  // namespace oomguard::guard::report
