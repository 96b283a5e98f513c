#include "oomguard/guard/report/report.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include "oomguard/guard/report/headline.hpp"
#include "oomguard/guard/report/html_report.hpp"
#include "oomguard/guard/report/recorder.hpp"
#include "oomguard/guard/report/report_file.hpp"
#include "oomguard/guard/report/snapshot.hpp"
#include "oomguard/guard/report/summary.hpp"

namespace oomguard::guard::report {
namespace {

namespace fs = std::filesystem;

// Whole or not at all, never through a planted symlink (Note [Report files
// are never followed] in report_file.hpp).
void write_file(const std::string& dir, const std::string& name, const std::string& bytes, ReportResult& result) {
  const std::string path = dir + "/" + name;
  const std::string error = write_report_file(path, bytes);
  if (!error.empty()) {
    result.errors.push_back(error);
    return;
  }
  result.files.push_back(path);
}

std::string read_whole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open \"" + path + "\"");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string env_or(const char* key, const std::string& fallback) {
  const char* v = std::getenv(key);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

}  // namespace

std::string report_dir_name(const std::string& run_dir, const std::string& run_id, const std::string& rank,
                            std::int64_t pid, std::int64_t unix_seconds) {
  const std::string id = run_id.empty() ? std::to_string(unix_seconds) + "-" + std::to_string(pid) : run_id;
  const std::string run = run_dir.empty() ? "oomguard-reports/" + id : run_dir;
  return run + "/rank" + (rank.empty() ? std::string("0") : rank);
}

std::string process_report_dir(const std::string& run_dir, const std::string& run_id, const std::string& rank) {
  // Note [Report folder names]: once per process, shared by every layer.
  static const std::int64_t seconds =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  return report_dir_name(run_dir, run_id, rank, static_cast<std::int64_t>(getpid()), seconds);
}

std::string default_report_dir(const std::string& run_dir) {
  std::string rank = env_or("RANK", "");
  if (rank.find_first_not_of("0123456789") != std::string::npos) rank.clear();  // named as the preload names it
  return process_report_dir(run_dir, env_or("OOMGUARD_RUN_ID", ""), rank);
}

ReportResult write_report(const std::string& requested, const std::string& reason) noexcept {
  ReportResult result;
  const auto start = std::chrono::steady_clock::now();
  try {
    Recorder& recorder = Recorder::global();
    std::string dir = requested.empty() ? recorder.dir() : requested;
    if (dir.empty()) dir = default_report_dir();
    result.dir = dir;
    if (const std::string refused = prepare_report_dir(dir); !refused.empty()) {
      result.errors.push_back(refused);
      return result;
    }
    std::error_code ec;
    // The last row: the state the report describes.
    if (reason != "out_of_memory") recorder.row(/*final=*/true);
    const std::string own_timeline = recorder.dir().empty() ? std::string() : recorder.dir() + "/timeline.csv";
    const std::string timeline = dir + "/timeline.csv";
    if (!own_timeline.empty() && !fs::equivalent(fs::path(own_timeline), fs::path(timeline), ec)) {
      try {
        const std::string error = write_report_file(timeline, read_whole(own_timeline));
        if (!error.empty()) result.errors.push_back(error);
      } catch (const std::exception& e) {
        result.errors.push_back(std::string("cannot copy the timeline: ") + e.what());
      }
    }

    // The exit report of a process that ran out of memory says so.
    const bool ran_out = reason == "exit" && recorder.oom().has_value();
    const nlohmann::json summary = build_summary(ran_out ? "out_of_memory" : reason);
    write_file(dir, "summary.json", summary.dump(1), result);
    try {
      write_file(dir, "snapshot.pickle", build_snapshot_pickle(), result);
    } catch (const std::exception& e) {
      result.errors.push_back(std::string("snapshot.pickle: ") + e.what());
    }
    RankReport rank{"rank" + env_or("RANK", "0"), summary, {}, {}};
    try {
      if (fs::exists(timeline)) rank.timeline = read_timeline(timeline);
    } catch (const std::exception& e) {
      result.errors.push_back(std::string("timeline.csv: ") + e.what());
    }
    write_file(dir, "report.html", render_html({rank}, "oomguard report: " + dir), result);
    const std::string page = dir + "/report.html";
    const bool written = std::find(result.files.begin(), result.files.end(), page) != result.files.end();
    result.headline = headline(summary, written ? page : std::string());
  } catch (const std::exception& e) {
    result.errors.push_back(e.what());
  } catch (...) {
    result.errors.push_back("unknown error");
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

void report_out_of_memory(const OomContext& context) noexcept {
  try {
    Recorder& recorder = Recorder::global();
    recorder.note_oom(context);
    if (recorder.dir().empty()) return;
    const ReportResult r = write_report("", "out_of_memory");
    for (const auto& e : r.errors) std::fprintf(stderr, "oomguard: report: %s\n", e.c_str());
  } catch (...) {
    // Never turn an out-of-memory into a crash.
  }
}

}  // namespace oomguard::guard::report
