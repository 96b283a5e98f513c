#include "preload_config.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "oomguard/error.hpp"
#include "oomguard/guard/report/report.hpp"

namespace oomguard::preload {
namespace {

std::string env_or_empty(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::string() : std::string(value);
}

PreloadConfig g_config;

}  // namespace

PreloadConfig read_preload_config() {
  PreloadConfig out;
  const std::string conf = env_or_empty("OOMGUARD_CONF");
  std::string report_root;  // report_dir: holds one rank<N>/ per rank
  for (const ConfEntry& entry : parse_conf(conf, "OOMGUARD_CONF")) {
    if (entry.key == "budget") {
      out.budget = parse_budget(entry.value);
      out.budget_text = entry.value;
    } else if (entry.key == "report_dir") {
      report_root = entry.value;
    }  // other keys belong to other layers
  }
  out.run_id = env_or_empty("OOMGUARD_RUN_ID");
  out.rank = env_or_empty("RANK");
  if (!out.rank.empty() && out.rank.find_first_not_of("0123456789") != std::string::npos) {
    // RANK is the launcher's, not oomguard's: a bad one must not stop every
    // program (it used to _exit(2) before main, `ls` included). Reports are
    // named as for rank 0; a second process there gets its own folder.
    std::fprintf(stderr, "oomguard preload: RANK='%s' is not a rank (a non-negative integer); reports are named "
                 "as for rank 0\n", out.rank.c_str());
    out.rank.clear();
  }
  // OOMGUARD_REPORT_DIR names this process's directory itself.
  out.report_dir = env_or_empty("OOMGUARD_REPORT_DIR");
  if (out.report_dir.empty() && !report_root.empty()) {
    out.report_dir = guard::report::process_report_dir(report_root, out.run_id, out.rank);
  }
  return out;
}

const PreloadConfig& config() noexcept { return g_config; }

void load_config_or_exit() noexcept {
  static std::once_flag once;
  std::call_once(once, [] {
  try {
    g_config = read_preload_config();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "oomguard preload: %s\n", e.what());
    std::fflush(stderr);
    _exit(2);
  }
  });
}

}  // namespace oomguard::preload
