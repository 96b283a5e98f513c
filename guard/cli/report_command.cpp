// `oomguard report <dir>`: rebuild report.html from the files a run left,
// one section per rank.
#include <iostream>
#include <memory>

#include "command_registry.hpp"
#include "oomguard/error.hpp"
#include "oomguard/guard/report/rank_reports.hpp"

namespace oomguard::cli {
namespace {

struct ReportArgs {
  std::string dir;
  std::string output;
};

void setup(CLI::App& app) {
  auto args = std::make_shared<ReportArgs>();
  auto* cmd = app.add_subcommand("report", "Rebuild report.html from a report directory, merging its ranks");
  cmd->add_option("dir", args->dir,
                  "A run's report directory (oomguard-reports/<run-id>, holding rank<N>/) or one rank's")
      ->required();
  cmd->add_option("-o,--output", args->output, "Where to write the page (default <dir>/report.html)");
  cmd->callback([args] {
    const auto rebuilt = guard::report::rebuild_report(args->dir, args->output);
    for (const auto& problem : rebuilt.problems) std::cerr << "oomguard report: " << problem << "\n";
    std::cout << rebuilt.path << "\n";
    // A page that shows nothing of any rank is a failure to report.
    if (rebuilt.ranks_shown == 0)
      throw error("no rank under \"" + args->dir + "\" has a readable summary.json or timeline.csv (the page lists why)");
  });
}

const RegisterCommand kRegistered{"report", setup};

}  // namespace
}  // namespace oomguard::cli
