#include "oomguard/guard/report/html_report.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "oomguard/error.hpp"
#include "oomguard/guard/report/summary.hpp"
#include "oomguard/guard/report/svg_chart.hpp"

namespace oomguard::guard::report {
namespace {

using nlohmann::json;

constexpr const char* kStyle = R"(
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#222;max-width:1000px}
h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:28px}
h3{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse;font-size:13px;margin:6px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}th{background:#f4f4f4}
.oom{background:#fdecea;border:1px solid #d62728;padding:8px 12px;border-radius:4px}
.ok{background:#eef7ee;border:1px solid #59a14f;padding:8px 12px;border-radius:4px}
.swatch{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:middle}
.warn{background:#fff6e0;border:1px solid #e0a100;padding:8px 12px;border-radius:4px;margin:8px 0}.bad{color:#b35900}
.legend span{margin-right:14px;font-size:12px}.muted{color:#666;font-size:12px}
)";

std::string bytes_cell(const json& v) {
  if (v.is_null()) return "<td class=\"num\">n/a</td>";
  return fmt::format("<td class=\"num\" title=\"{} bytes\">{}</td>", v.dump(),
                     escape_html(format_bytes(v.get<std::int64_t>())));
}

std::string text(const json& v) { return escape_html(v.is_string() ? v.get<std::string>() : v.dump()); }

std::int64_t as_int(const json& v) { return v.is_number() ? v.get<std::int64_t>() : 0; }

CategoryBytes category_bytes(const json& object) {
  CategoryBytes out{};
  for (std::size_t c = 0; c < kNumCategories; ++c) {
    const auto key = std::string(kCategoryNames[c]);
    if (object.is_object() && object.contains(key)) out[c] = as_int(object[key]);
  }
  return out;
}

std::string legend() {
  std::string out = "<div class=\"legend\">";
  for (std::size_t c = 0; c < kNumCategories; ++c)
    out += fmt::format("<span><i class=\"swatch\" style=\"background:{}\"></i>{}</span>", category_colour(c), kCategoryNames[c]);
  return out + "<span>- - reserved</span><span style=\"color:#d62728\">&#8212; budget</span>"
               "<span style=\"color:#6a3d9a\">- - predicted peak</span></div>";
}

std::string allocations_table(const json& list) {
  if (!list.is_array() || list.empty()) return "<p class=\"muted\">No live allocations recorded.</p>";
  std::string out = "<table><tr><th>#</th><th>size</th><th>category</th><th>phase</th><th>step</th><th>device</th>"
                    "<th>address</th><th>Python stack</th></tr>";
  int i = 0;
  for (const auto& a : list) {
    std::string frames;
    for (const auto& f : a.value("frames", json::array()))
      frames += fmt::format("{}:{} {}<br>", text(f.value("filename", json(""))), as_int(f.value("line", json(0))),
                            text(f.value("name", json(""))));
    out += fmt::format("<tr><td>{}</td>{}<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>0x{:x}</td><td>{}</td></tr>", ++i,
                       bytes_cell(a["size_bytes"]), text(a["category"]), text(a["phase"]), as_int(a["step"]),
                       text(a["device"]), static_cast<std::uint64_t>(as_int(a["address"])),
                       frames.empty() ? "<span class=\"muted\">not recorded</span>" : frames);
  }
  return out + "</table>";
}

std::string problems_block(const RankReport& r) {
  if (r.problems.empty()) return {};
  std::string out = "<div class=\"warn\"><b>Not everything of this process could be read:</b><ul>";
  for (const auto& p : r.problems) out += "<li>" + escape_html(p) + "</li>";
  return out + "</ul></div>";
}

// The row of the timeline with the most allocated bytes; null when empty.
const TimelineRow* highest_row(const Timeline& t) {
  const TimelineRow* best = nullptr;
  for (const auto& row : t.rows)
    if (!best || row.allocated > best->allocated) best = &row;
  return best;
}

// A process with no readable summary.json: what its timeline shows (a
// SIGKILL leaves exactly this), and why there is no more.
std::string section_without_summary(const RankReport& r) {
  std::string out = fmt::format("<section id=\"{0}\"><h2>{0}: no readable summary</h2>", escape_html(r.label));
  out += problems_block(r);
  const TimelineRow* top = highest_row(r.timeline);
  if (!top) return out + "</section>";
  const TimelineRow& last = r.timeline.rows.back();
  out += fmt::format("<p class=\"muted\">{} timeline rows; the last at step {} ({}), {:.3g} s after the start.</p>",
                     r.timeline.rows.size(), last.step, name(last.phase), last.time_s);
  TimelineChartLines lines;
  lines.budget = last.budget;
  out += "<h3>Timeline by category</h3>" + legend() + timeline_svg(r.timeline.rows, lines);
  out += fmt::format("<h3>Highest sampled point (step {}, {})</h3>", top->step, name(top->phase));
  out += "<p class=\"muted\">From timeline.csv, whose rows are taken at phase changes: the exact peak, the live "
         "allocations and the prediction are in summary.json, which this process did not leave.</p>";
  out += breakdown_svg(top->by_category);
  out += "<table><tr><th>category</th><th>at the highest row</th></tr>";
  for (std::size_t c = 0; c < kNumCategories; ++c) {
    if (top->by_category[c] == 0) continue;
    out += fmt::format("<tr><td><i class=\"swatch\" style=\"background:{}\"></i>{}</td>{}</tr>", category_colour(c),
                       kCategoryNames[c], bytes_cell(json(top->by_category[c])));
  }
  out += fmt::format("<tr><th>allocated</th>{}</tr><tr><th>reserved</th>{}</tr></table>", bytes_cell(json(top->allocated)),
                     bytes_cell(json(top->reserved)));
  return out + "</section>";
}

std::string section(const RankReport& r) {
  if (r.summary.is_null()) return section_without_summary(r);
  const json& s = r.summary;
  const json& peak = s["peak"];
  const json& oom = s["oom"];
  std::string out = fmt::format("<section id=\"{0}\"><h2>{0}: {1}</h2>", escape_html(r.label), text(s["device"]));
  out += fmt::format("<p class=\"muted\">written at {}, pid {}, step {}, phase {}; {} timeline rows</p>",
                     text(s.value("reason", json(""))), as_int(s.value("pid", json(0))), as_int(s.value("step", json(0))),
                     text(s.value("phase", json(""))), r.timeline.rows.size());
  out += problems_block(r);
  if (oom.is_object()) {
    out += fmt::format("<div class=\"oom\"><b>Out of memory</b> at step {} ({}): a request of <b>{}</b> on {} was refused "
                       "({}) with {} allocated{}.</div>",
                       as_int(oom["step"]), text(oom["phase"]), escape_html(format_bytes(as_int(oom["requested_bytes"]))),
                       text(oom["device"]), text(oom["reason"]), escape_html(format_bytes(as_int(oom["allocated_bytes"]))),
                       oom["budget_bytes"].is_null() ? std::string()
                                                     : ", budget " + escape_html(format_bytes(as_int(oom["budget_bytes"]))));
  } else {
    out += "<div class=\"ok\">No out-of-memory in this process.</div>";
  }
  for (const json& a : s.value("actions", json::array())) {
    if (a.value("kind", std::string()) != "abort") continue;
    out += fmt::format("<div class=\"oom\"><b>Stopped by oomguard</b> at step {} before running out of memory: {}.</div>",
                       as_int(a["step"]), text(a["detail"]));
  }

  TimelineChartLines lines;
  lines.budget = s["budget_bytes"].is_number() ? s["budget_bytes"].get<std::uint64_t>() : 0;
  if (s["prediction"].is_object()) lines.predicted_peak = s["prediction"].value("peak_allocated_bytes", std::uint64_t{0});
  if (oom.is_object()) lines.oom_time_s = oom.value("time_s", 0.0);
  out += "<h3>Timeline by category</h3>" + legend() + timeline_svg(r.timeline.rows, lines);

  out += fmt::format("<h3>Breakdown at the peak (step {}, {})</h3>", as_int(peak["step"]), text(peak["phase"]));
  const CategoryBytes at_peak = category_bytes(peak["by_category"]);
  out += breakdown_svg(at_peak);
  out += "<table><tr><th>category</th><th>at the peak</th><th>own peak</th></tr>";
  for (std::size_t c = 0; c < kNumCategories; ++c) {
    const auto key = std::string(kCategoryNames[c]);
    const json own = peak.contains("category_peaks") ? peak["category_peaks"].value(key, json(0)) : json(0);
    if (at_peak[c] == 0 && as_int(own) == 0) continue;
    out += fmt::format("<tr><td><i class=\"swatch\" style=\"background:{}\"></i>{}</td>{}{}</tr>", category_colour(c), key,
                       bytes_cell(json(at_peak[c])), bytes_cell(own));
  }
  out += fmt::format("<tr><th>allocated (exact peak)</th>{}<td></td></tr><tr><th>reserved (peak)</th>{}<td></td></tr></table>",
                     bytes_cell(peak["allocated_bytes"]), bytes_cell(peak["reserved_bytes"]));

  out += "<h3>Largest live allocations at the peak</h3>" + allocations_table(s["largest_allocations"]);
  if (oom.is_object() && oom["largest_allocations"] != s["largest_allocations"])
    out += "<h3>Largest live allocations at the out-of-memory</h3>" + allocations_table(oom["largest_allocations"]);
  else if (oom.is_object())
    out += "<p class=\"muted\">The peak above is the state at the out-of-memory.</p>";

  const json& frag = s["fragmentation"];
  out += "<h3>Fragmentation</h3><table><tr><th>allocated</th><th>reserved</th><th>reserved minus allocated</th>"
         "<th>largest free block</th></tr><tr>";
  out += bytes_cell(frag.value("allocated_bytes", json(nullptr))) + bytes_cell(frag.value("reserved_bytes", json(nullptr))) +
         bytes_cell(frag.value("reserved_minus_allocated_bytes", json(nullptr))) +
         bytes_cell(frag.value("largest_free_block_bytes", json(nullptr)));
  out += fmt::format("</tr></table><p class=\"muted\">{}</p>", text(frag.value("note", json(""))));

  out += "<h3>Predicted against actual</h3>";
  if (s["predicted_vs_actual"].is_object()) {
    const json& v = s["predicted_vs_actual"];
    const auto error_cell = [&](const char* key) {
      const json e = v.value(key, json(nullptr));
      return e.is_number() ? fmt::format("<td class=\"num\">{:+.1f}%</td>", 100 * e.get<double>())
                           : std::string("<td class=\"muted\">n/a</td>");
    };
    out += "<table><tr><th>first prediction</th><th>made at step</th><th>latest prediction</th><th>actual peak</th>"
           "<th>error of the first</th><th>error after actions</th><th>why (latest)</th></tr><tr>" +
           bytes_cell(v.value("first_predicted_peak_bytes", json(nullptr))) +
           fmt::format("<td class=\"num\">{}</td>", as_int(v.value("first_made_at_step", json(0)))) +
           bytes_cell(v.value("latest_predicted_peak_bytes", json(nullptr))) + bytes_cell(v["actual_peak_bytes"]) +
           error_cell("error_fraction") + error_cell("error_fraction_after_actions") +
           fmt::format("<td>{}</td></tr></table>", text(s["prediction"].value("reason", json(""))));
    if (!v.value("complete", true))
      out += "<p class=\"muted\">The run stopped early: its actual peak is not the run's, so no error is given.</p>";
  } else {
    out += "<p class=\"muted\">No prediction was made in this run.</p>";
  }

  out += "<h3>Actions taken</h3>";
  if (s["actions"].empty()) out += "<p class=\"muted\">None.</p>";
  else {
    out += "<table><tr><th>step</th><th>action</th><th>detail</th><th>predicted saving</th></tr>";
    for (const auto& a : s["actions"])
      out += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td>{}</tr>", as_int(a["step"]), text(a["kind"]), text(a["detail"]),
                         bytes_cell(a["predicted_saving_bytes"]));
    out += "</table>";
  }

  out += "<h3>Suggestions, by bytes saved</h3>";
  if (s["suggestions"].empty()) out += "<p class=\"muted\">None.</p>";
  else {
    out += "<table><tr><th>#</th><th>fix</th><th>what to do</th><th>saves</th></tr>";
    int i = 0;
    for (const auto& g : s["suggestions"])
      out += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td>{}</tr>", ++i, text(g["kind"]), text(g["description"]),
                         bytes_cell(g["saves_bytes"]));
    out += "</table>";
  }
  return out + "</section>";
}

std::string overview(const std::vector<RankReport>& ranks) {
  std::string out = "<h2>Ranks</h2><table><tr><th>rank</th><th>device</th><th>peak allocated</th><th>peak reserved</th>"
                    "<th>budget</th><th>out of memory</th><th>files</th></tr>";
  for (const auto& r : ranks) {
    const std::string files =
        r.problems.empty() ? std::string("complete")
                           : fmt::format("<span class=\"bad\">{} {}</span>", r.problems.size(),
                                         r.problems.size() == 1 ? "problem" : "problems");
    if (r.summary.is_null()) {
      const TimelineRow* top = highest_row(r.timeline);
      out += fmt::format("<tr><td><a href=\"#{0}\">{0}</a></td><td>unknown</td>{1}{2}<td></td><td>unknown</td><td>{3}</td></tr>",
                         escape_html(r.label),
                         top ? fmt::format("<td class=\"num\">at least {}</td>", escape_html(format_bytes(top->allocated)))
                             : std::string("<td class=\"num\">n/a</td>"),
                         top ? bytes_cell(json(top->reserved)) : std::string("<td class=\"num\">n/a</td>"), files);
      continue;
    }
    const json& s = r.summary;
    out += fmt::format("<tr><td><a href=\"#{0}\">{0}</a></td><td>{1}</td>{2}{3}{4}<td>{5}</td><td>{6}</td></tr>",
                       escape_html(r.label), text(s["device"]), bytes_cell(s["peak"]["allocated_bytes"]),
                       bytes_cell(s["peak"]["reserved_bytes"]), bytes_cell(s["budget_bytes"]),
                       s["oom"].is_object() ? "yes, " + escape_html(format_bytes(as_int(s["oom"]["requested_bytes"]))) + " refused"
                                            : std::string("no"),
                       files);
  }
  return out + "</table>";
}

}  // namespace

std::string render_html(const std::vector<RankReport>& ranks, const std::string& title) {
  std::string out = "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + escape_html(title) +
                    "</title><style>" + kStyle + "</style></head><body><h1>" + escape_html(title) + "</h1>";
  const bool any_problem =
      std::any_of(ranks.begin(), ranks.end(), [](const RankReport& r) { return !r.problems.empty(); });
  if (ranks.size() > 1 || any_problem) out += overview(ranks);
  for (const auto& r : ranks) out += section(r);
  out += fmt::format(
      "<p class=\"muted\">Written by oomguard (summary schema {}). Open snapshot.pickle at "
      "pytorch.org/memory_viz.</p></body></html>\n",
      kSummarySchema);
  return out;
}

}  // namespace oomguard::guard::report
