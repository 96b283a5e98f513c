// `oomguard report <dir>`: rebuild report.html from the files a run left,
// one section per rank.
#include <iostream>
#include <memory>

#include "command_registry.hpp"
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
    const std::string path = guard::report::rebuild_report(args->dir, args->output);
    std::cout << path << "\n";
  });
}

const RegisterCommand kRegistered{"report", setup};

}  // namespace
}  // namespace oomguard::cli
