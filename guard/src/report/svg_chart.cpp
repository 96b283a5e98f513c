#include "oomguard/guard/report/svg_chart.hpp"

#include <algorithm>
#include <array>
#include <cmath>

#include <fmt/format.h>

#include "oomguard/error.hpp"

namespace oomguard::guard::report {
namespace {

constexpr std::array<std::string_view, kNumCategories> kColours = {
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f"};

constexpr double kWidth = 960, kHeight = 380;
constexpr double kLeft = 80, kRight = 20, kTop = 20, kBottom = 40;

// 1, 2 or 5 times a power of ten (or of 1024 for bytes) covering range/ticks.
double nice_step(double range, int ticks, double base) {
  if (range <= 0) return 1;
  const double raw = range / ticks;
  double unit = 1;
  if (base == 1024) {
    while (unit * 1024 <= raw) unit *= 1024;
  }
  const double scaled = raw / unit;
  const double power = std::pow(10.0, std::floor(std::log10(scaled)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * power >= scaled) return m * power * unit;
  return 10 * power * unit;
}

}  // namespace

std::string_view category_colour(std::size_t category) { return kColours[category % kNumCategories]; }

std::string escape_html(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string timeline_svg(const std::vector<TimelineRow>& all_rows, const TimelineChartLines& lines) {
  // A few hundred bytes of SVG per point: a page of a few hundred KB at most.
  const std::vector<TimelineRow> rows = keep_peaks(all_rows, kMaxChartPoints);
  std::string svg = fmt::format(
      R"(<svg class="timeline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} {}" width="{}" height="{}" role="img" aria-label="memory timeline by category">)",
      kWidth, kHeight, kWidth, kHeight);
  svg += fmt::format(R"(<rect x="0" y="0" width="{}" height="{}" fill="#ffffff"/>)", kWidth, kHeight);
  if (rows.empty()) {
    svg += fmt::format(R"(<text x="{}" y="{}" text-anchor="middle" fill="#555">no timeline rows</text></svg>)",
                       kWidth / 2, kHeight / 2);
    return svg;
  }
  double t0 = rows.front().time_s, t1 = rows.front().time_s, ymax = 1;
  std::uint64_t predicted_max = lines.predicted_peak;
  for (const auto& r : rows) {
    t0 = std::min(t0, r.time_s);
    t1 = std::max(t1, r.time_s);
    ymax = std::max({ymax, static_cast<double>(r.allocated), static_cast<double>(r.reserved),
                     static_cast<double>(r.predicted_peak)});
    predicted_max = std::max(predicted_max, r.predicted_peak);
  }
  if (lines.oom_time_s) t1 = std::max(t1, *lines.oom_time_s);
  ymax = std::max(ymax, static_cast<double>(predicted_max));
  // The scale follows the run. A budget far above it (a default of "the
  // machine minus a margin" on a small run) would flatten the data, so it is
  // drawn only when it is within reach, and named above the plot otherwise.
  const bool budget_on_scale = lines.budget != 0 && static_cast<double>(lines.budget) <= 4 * ymax;
  if (budget_on_scale) ymax = std::max(ymax, static_cast<double>(lines.budget));
  ymax *= 1.08;
  const bool by_index = t1 - t0 <= 0;
  const double span = by_index ? std::max<double>(1, static_cast<double>(rows.size() - 1)) : t1 - t0;
  const double pw = kWidth - kLeft - kRight, ph = kHeight - kTop - kBottom;
  auto xof = [&](std::size_t i, double t) {
    const double v = by_index ? static_cast<double>(i) : t - t0;
    return kLeft + pw * v / span;
  };
  auto yof = [&](double bytes) { return kTop + ph * (1 - bytes / ymax); };

  // Grid and axes.
  const double ystep = nice_step(ymax, 5, 1024);
  for (double y = 0; y <= ymax; y += ystep) {
    svg += fmt::format(R"(<line x1="{:.1f}" x2="{:.1f}" y1="{:.1f}" y2="{:.1f}" stroke="#e3e3e3"/>)", kLeft,
                       kWidth - kRight, yof(y), yof(y));
    svg += fmt::format(R"(<text x="{:.1f}" y="{:.1f}" font-size="11" text-anchor="end" fill="#444">{}</text>)",
                       kLeft - 6, yof(y) + 4, escape_html(format_bytes(static_cast<std::int64_t>(y))));
  }
  const double xstep = nice_step(span, 6, 10);
  for (double x = 0; x <= span + 1e-9; x += xstep) {
    const double px = kLeft + pw * x / span;
    svg += fmt::format(R"(<text x="{:.1f}" y="{:.1f}" font-size="11" text-anchor="middle" fill="#444">{}</text>)",
                       px, kHeight - kBottom + 16, by_index ? fmt::format("row {:.0f}", x) : fmt::format("{:.3g} s", x));
  }
  svg += fmt::format(R"(<text x="{:.1f}" y="{:.1f}" font-size="11" text-anchor="middle" fill="#444">{}</text>)",
                     kLeft + pw / 2, kHeight - 6, by_index ? "timeline row" : "time since start");

  // Stacked areas, bottom category first.
  std::vector<double> base(rows.size(), 0.0);
  for (std::size_t c = 0; c < kNumCategories; ++c) {
    bool any = false;
    for (const auto& r : rows) any |= r.by_category[c] != 0;
    if (!any) continue;
    std::string top, bottom;
    std::vector<double> next(base);
    for (std::size_t i = 0; i < rows.size(); ++i) {
      next[i] = base[i] + static_cast<double>(std::max<std::int64_t>(0, rows[i].by_category[c]));
      top += fmt::format("{:.1f},{:.1f} ", xof(i, rows[i].time_s), yof(next[i]));
    }
    for (std::size_t i = rows.size(); i-- > 0;) bottom += fmt::format("{:.1f},{:.1f} ", xof(i, rows[i].time_s), yof(base[i]));
    svg += fmt::format(R"(<polygon class="area" points="{}{}" fill="{}" fill-opacity="0.85" stroke="{}"><title>{}</title></polygon>)",
                       top, bottom, category_colour(c), category_colour(c), kCategoryNames[c]);
    base = std::move(next);
  }
  // Lines: reserved, predicted peak, budget, out-of-memory.
  bool any_reserved = false;
  std::string reserved;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    any_reserved |= rows[i].reserved != 0;
    reserved += fmt::format("{:.1f},{:.1f} ", xof(i, rows[i].time_s), yof(static_cast<double>(rows[i].reserved)));
  }
  if (any_reserved)
    svg += fmt::format(R"(<polyline points="{}" fill="none" stroke="#333" stroke-width="1.5" stroke-dasharray="2 3"><title>reserved</title></polyline>)", reserved);
  auto hline = [&](double bytes, const char* colour, const char* dash, const std::string& label) {
    svg += fmt::format(R"(<line x1="{:.1f}" x2="{:.1f}" y1="{:.1f}" y2="{:.1f}" stroke="{}" stroke-width="2" stroke-dasharray="{}"><title>{}</title></line>)",
                       kLeft, kWidth - kRight, yof(bytes), yof(bytes), colour, dash, escape_html(label));
    // Labels sit at the left end: the out-of-memory marker is at the right.
    svg += fmt::format(R"(<text x="{:.1f}" y="{:.1f}" font-size="11" text-anchor="start" fill="{}">{}</text>)",
                       kLeft + 4, yof(bytes) - 4, colour, escape_html(label));
  };
  if (predicted_max != 0)
    hline(static_cast<double>(predicted_max), "#6a3d9a", "8 4",
          "predicted peak " + format_bytes(static_cast<std::int64_t>(predicted_max)));
  if (budget_on_scale) {
    hline(static_cast<double>(lines.budget), "#d62728", "none", "budget " + format_bytes(static_cast<std::int64_t>(lines.budget)));
  } else if (lines.budget != 0) {
    svg += fmt::format(R"(<text x="{:.1f}" y="{:.1f}" font-size="11" text-anchor="end" fill="#d62728">budget {} (above the scale)</text>)",
                       kWidth - kRight, kTop - 4, escape_html(format_bytes(static_cast<std::int64_t>(lines.budget))));
  }
  if (lines.oom_time_s) {
    const double x = by_index ? kLeft + pw : xof(0, *lines.oom_time_s);
    svg += fmt::format(R"(<line x1="{:.1f}" x2="{:.1f}" y1="{:.1f}" y2="{:.1f}" stroke="#d62728" stroke-width="2"><title>out of memory</title></line>)",
                       x, x, kTop, kTop + ph);
    svg += fmt::format(R"(<text x="{:.1f}" y="{:.1f}" font-size="12" text-anchor="end" fill="#d62728">OOM</text>)", x - 4, kTop + 12);
  }
  svg += fmt::format(R"(<line x1="{0}" x2="{0}" y1="{1}" y2="{2}" stroke="#444"/><line x1="{0}" x2="{3}" y1="{2}" y2="{2}" stroke="#444"/>)",
                     kLeft, kTop, kTop + ph, kWidth - kRight);
  svg += "</svg>";
  return svg;
}

std::string breakdown_svg(const CategoryBytes& bytes) {
  constexpr double w = 960, h = 36;
  double total = 0;
  for (auto b : bytes) total += static_cast<double>(std::max<std::int64_t>(0, b));
  std::string svg = fmt::format(
      R"(<svg class="breakdown" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} {}" width="{}" height="{}" role="img" aria-label="breakdown at the peak">)",
      w, h, w, h);
  if (total <= 0) return svg + "</svg>";
  double x = 0;
  for (std::size_t c = 0; c < kNumCategories; ++c) {
    if (bytes[c] <= 0) continue;
    const double bw = w * static_cast<double>(bytes[c]) / total;
    svg += fmt::format(R"(<rect x="{:.1f}" y="0" width="{:.1f}" height="{}" fill="{}"><title>{} {}</title></rect>)", x, bw,
                       h, category_colour(c), kCategoryNames[c], escape_html(format_bytes(bytes[c])));
    x += bw;
  }
  return svg + "</svg>";
}

}  // namespace oomguard::guard::report
