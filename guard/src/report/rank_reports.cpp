#include "oomguard/guard/report/rank_reports.hpp"

#include "oomguard/guard/report/report_file.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "oomguard/error.hpp"
#include "oomguard/guard/report/summary.hpp"
#include "oomguard/guard/report/timeline.hpp"

namespace oomguard::guard::report {
namespace {

namespace fs = std::filesystem;

bool holds_report(const fs::path& dir) {
  std::error_code ec;
  return fs::exists(dir / "summary.json", ec) || fs::exists(dir / "timeline.csv", ec);
}

// Whatever of one process's files can be read; what cannot is said in
// `problems`, never thrown, so that one bad rank does not stop the page.
RankReport load_one(const fs::path& dir, std::string label) {
  RankReport r;
  r.label = std::move(label);
  std::error_code ec;
  const fs::path summary_path = dir / "summary.json";
  if (!fs::exists(summary_path, ec)) {
    r.problems.push_back(
        fs::exists(dir / "preload-summary.json", ec)
            ? "no summary.json: the process ran under the LD_PRELOAD library alone, whose reports are timeline.csv "
              "and preload-summary.json"
            : "no summary.json: the process ended before it wrote its report (SIGKILL, the host's out-of-memory "
              "killer or a crash); what follows is read from timeline.csv");
  } else {
    try {
      std::ifstream in(summary_path);
      if (!in) throw error(fmt::format("cannot open \"{}\"", summary_path.string()));
      nlohmann::json doc;
      try {
        doc = nlohmann::json::parse(in);
      } catch (const nlohmann::json::parse_error& e) {
        throw error(fmt::format("\"{}\" is not valid JSON (a disk that filled while it was written?): {}",
                                summary_path.string(), e.what()));
      }
      check_summary(doc, summary_path.string());
      r.summary = std::move(doc);
    } catch (const std::exception& e) {
      r.problems.push_back(e.what());
    }
  }
  const fs::path timeline = dir / "timeline.csv";
  if (fs::exists(timeline, ec)) {
    try {
      r.timeline = read_timeline(timeline.string());
      if (r.timeline.skipped_lines > 0)
        r.problems.push_back(fmt::format("timeline.csv: {} {} not a row and skipped (first, {})",
                                         r.timeline.skipped_lines, r.timeline.skipped_lines == 1 ? "line is" : "lines are",
                                         r.timeline.first_skipped));
    } catch (const std::exception& e) {
      r.problems.push_back(fmt::format("timeline.csv: {}", e.what()));
    }
  } else if (r.summary.is_null()) {
    r.problems.push_back("no timeline.csv either: nothing of this process can be shown");
  }
  return r;
}

// rank2 < rank10: by the number after "rank", then by name.
long rank_number(const std::string& name) {
  try {
    return std::stol(name.substr(4));
  } catch (const std::exception&) {
    return -1;
  }
}

}  // namespace

std::vector<RankReport> load_rank_reports(const std::string& dir) {
  const fs::path root(dir);
  if (!fs::is_directory(root)) throw error(fmt::format("\"{}\" is not a directory", dir));
  if (holds_report(root)) return {load_one(root, root.filename().string())};
  std::vector<fs::path> found;
  for (const auto& entry : fs::directory_iterator(root)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_directory() || name.rfind("rank", 0) != 0) continue;
    bool any = holds_report(entry.path());
    if (any) found.push_back(entry.path());
    for (const auto& sub : fs::directory_iterator(entry.path()))
      if (sub.is_directory() && holds_report(sub.path())) {
        found.push_back(sub.path());
        any = true;
      }
    if (!any) found.push_back(entry.path());  // listed, with why there is nothing
  }
  if (found.empty())
    throw error(fmt::format("no reports under \"{}\": expected {}/summary.json or {}/rank<N>/summary.json "
                            "(written by a process that ran with oomguard installed)", dir, dir, dir));
  auto rank_of = [&](const fs::path& p) { return rank_number(fs::relative(p, root).begin()->string()); };
  std::sort(found.begin(), found.end(), [&](const fs::path& a, const fs::path& b) {
    const long ra = rank_of(a), rb = rank_of(b);
    return ra != rb ? ra < rb : a < b;
  });
  std::vector<RankReport> out;
  for (const auto& p : found) out.push_back(load_one(p, fs::relative(p, root).string()));
  return out;
}

RebuiltReport rebuild_report(const std::string& dir, const std::string& output) {
  RebuiltReport result;
  const auto ranks = load_rank_reports(dir);
  result.path = output.empty() ? (fs::path(dir) / "report.html").string() : output;
  for (const auto& r : ranks) {
    for (const auto& problem : r.problems) result.problems.push_back(r.label + ": " + problem);
    if (!r.summary.is_null() || !r.timeline.rows.empty()) ++result.ranks_shown;
  }
  const std::string html =
      render_html(ranks, fmt::format("oomguard report: {} ({} {})", dir, ranks.size(), ranks.size() == 1 ? "rank" : "ranks"));
  if (const std::string failure = write_report_file(result.path, html); !failure.empty()) throw error(failure);
  return result;
}

}  // namespace oomguard::guard::report
