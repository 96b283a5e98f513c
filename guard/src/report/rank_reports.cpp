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

RankReport load_one(const fs::path& dir, std::string label) {
  const fs::path summary_path = dir / "summary.json";
  std::ifstream in(summary_path);
  if (!in) throw error(fmt::format("cannot open \"{}\"", summary_path.string()));
  RankReport r;
  r.label = std::move(label);
  try {
    r.summary = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    throw error(fmt::format("\"{}\" is not valid JSON: {}", summary_path.string(), e.what()));
  }
  check_summary(r.summary, summary_path.string());
  const fs::path timeline = dir / "timeline.csv";
  if (fs::exists(timeline)) r.timeline = read_timeline(timeline.string());
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
  if (fs::exists(root / "summary.json")) return {load_one(root, root.filename().string())};
  std::vector<fs::path> found;
  for (const auto& entry : fs::directory_iterator(root)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_directory() || name.rfind("rank", 0) != 0) continue;
    if (fs::exists(entry.path() / "summary.json")) found.push_back(entry.path());
    for (const auto& sub : fs::directory_iterator(entry.path()))
      if (sub.is_directory() && fs::exists(sub.path() / "summary.json")) found.push_back(sub.path());
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
  for (const auto& p : found) {
    const fs::path rel = fs::relative(p, root);
    out.push_back(load_one(p, rel.string()));
  }
  return out;
}

std::string rebuild_report(const std::string& dir, const std::string& output) {
  const auto ranks = load_rank_reports(dir);
  const std::string path = output.empty() ? (fs::path(dir) / "report.html").string() : output;
  const std::string html =
      render_html(ranks, fmt::format("oomguard report: {} ({} {})", dir, ranks.size(), ranks.size() == 1 ? "rank" : "ranks"));
  if (const std::string failure = write_report_file(path, html); !failure.empty()) throw error(failure);
  return path;
}

}  // namespace oomguard::guard::report
