// Note [Report folder names]: the LD_PRELOAD library and the Python side
// (_C.default_report_dir) name a process's folder with one rule.
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include "oomguard/guard/report/report.hpp"
#include "report_dir.hpp"

using namespace oomguard;
using guard::report::default_report_dir;
using guard::report::report_dir_name;

TEST(ReportFolders, TheRuleNamesRunIdRankAndTheFallback) {
  EXPECT_EQ(report_dir_name("", "", "", 4242, 1700000000), "oomguard-reports/1700000000-4242/rank0");
  EXPECT_EQ(report_dir_name("", "run-a", "3", 4242, 1700000000), "oomguard-reports/run-a/rank3");
  EXPECT_EQ(report_dir_name("runs/seed", "run-a", "2", 4242, 1700000000), "runs/seed/rank2");
}

TEST(ReportFolders, PreloadAndPythonNameTheSameFolder) {
  ::unsetenv("OOMGUARD_RUN_ID");
  ::unsetenv("RANK");
  preload::PreloadConfig config;  // what the preload library reads from the same environment
  const std::string python = default_report_dir();
  EXPECT_EQ(preload::requested_report_dir(config), python);
  EXPECT_EQ(python.rfind("oomguard-reports/", 0), 0u) << python;
  EXPECT_NE(python.find("-" + std::to_string(::getpid()) + "/rank0"), std::string::npos) << python;
  // Taken once per process: a later call, a second on, names the same folder.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_EQ(preload::requested_report_dir(config), python);
  EXPECT_EQ(default_report_dir(), python);

  ::setenv("OOMGUARD_RUN_ID", "run-b", 1);
  ::setenv("RANK", "5", 1);
  config.run_id = "run-b";
  config.rank = "5";
  EXPECT_EQ(preload::requested_report_dir(config), "oomguard-reports/run-b/rank5");
  EXPECT_EQ(default_report_dir(), "oomguard-reports/run-b/rank5");
  ::unsetenv("OOMGUARD_RUN_ID");
  ::unsetenv("RANK");
}
