// `oomguard run --preload-only` on a program that is not Python: the preload
// is found, the budget enforced, reports land under --report-dir/rank0, and
// the program's exit code (or signal) comes back.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace {

namespace fs = std::filesystem;

struct Result {
  int code = -1;
  std::string output;
};

Result run(const std::string& command) {
  Result r;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  char buffer[4096];
  while (pipe != nullptr && fgets(buffer, sizeof buffer, pipe) != nullptr) r.output += buffer;
  const int status = pipe != nullptr ? pclose(pipe) : -1;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

class RunCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("oomguard-cli-" + std::to_string(getpid()) + "-" +
                                             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }
  std::string cli() const { return std::string("env -u OOMGUARD_CONF -u LD_PRELOAD ") + OOMGUARD_CLI; }
  fs::path dir_;
};

TEST_F(RunCommand, PreloadOnlyEnforcesTheBudgetAndWritesReportsUnderTheReportDir) {
  const Result r = run(cli() + " run --preload-only --budget 10MiB --report-dir " + dir_.string() + " -- " +
                       OOMGUARD_FAKE_APP + " until-refused");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("granted=10"), std::string::npos) << r.output;
  std::ifstream in(dir_ / "rank0" / "preload-summary.json");
  ASSERT_TRUE(in.good()) << r.output;
  const auto summary = nlohmann::json::parse(in);
  EXPECT_EQ(summary.at("devices").at(0).at("budget_bytes"), 10 << 20);
  EXPECT_TRUE(fs::exists(dir_ / "rank0" / "timeline.csv"));
}

TEST_F(RunCommand, TheProgramsExitCodeComesBack) {
  EXPECT_EQ(run(cli() + " run --preload-only -- sh -c 'exit 7'").code, 7);
  EXPECT_EQ(run(cli() + " run --no-preload --preload-only -- true").code, 2);
  const Result missing = run(cli() + " run --preload-only -- no-such-program-anywhere");
  EXPECT_EQ(missing.code, 127);
  EXPECT_NE(missing.output.find("no-such-program-anywhere"), std::string::npos);
  // Killed by a signal: 128 + the signal, as shells report it.
  EXPECT_EQ(run(cli() + " run --preload-only -- sh -c 'kill -9 $$'").code, 128 + 9);
}

TEST_F(RunCommand, BadOptionsAreNamed) {
  const Result r = run(cli() + " run --preload-only --budget lots -- true");
  // The preload library rejects the budget when the program starts.
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("lots"), std::string::npos) << r.output;
  const Result none = run(cli() + " run --preload-only");
  EXPECT_NE(none.code, 0);
}

// Note [A value may hold a comma]: an option cannot set a second key, a bad
// value stops the run before the command starts (exit code 2, naming the
// key, the value and what is accepted), and a folder with a comma works.
TEST_F(RunCommand, OptionsCannotInjectKeysAndBadValuesStopTheRunFirst) {
  const std::string marker = (dir_ / "ran").string();
  const std::string command = " -- sh -c 'touch " + marker + "'";
  const Result injected = run(cli() + " run --preload-only --budget '1GiB,report_dir:/etc'" + command);
  EXPECT_EQ(injected.code, 2) << injected.output;
  EXPECT_NE(injected.output.find("1GiB,report_dir:/etc"), std::string::npos) << injected.output;
  for (const char* bad : {"warn_at:2", "predict_after:0", "predict_after:inf", "actions:warn+nuke",
                          "max_seq_len:-1", "max_seq_len:1GiB"}) {
    const Result r = run(cli() + " run --preload-only --conf " + bad + command);
    EXPECT_EQ(r.code, 2) << bad << ": " << r.output;
    const std::string key(bad, std::string_view(bad).find(':'));
    EXPECT_NE(r.output.find("'" + key + "'"), std::string::npos) << bad << ": " << r.output;
  }
  const Result mode = run(cli() + " run --preload-only --mode fast" + command);
  EXPECT_NE(mode.code, 0);
  EXPECT_NE(mode.output.find("fast"), std::string::npos) << mode.output;
  EXPECT_FALSE(fs::exists(marker)) << "a command ran with a bad configuration";

  const fs::path comma = dir_ / "runs,with:odd\\chars";
  const Result r = run(cli() + " run --preload-only --budget 10MiB --report-dir '" + comma.string() + "' -- " +
                       OOMGUARD_FAKE_APP + " until-refused");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(fs::exists(comma / "rank0" / "preload-summary.json")) << r.output;
}

}  // namespace
