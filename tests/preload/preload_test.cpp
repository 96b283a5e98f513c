// liboomguard_preload.so against the fake CUDA runtime and driver: each test
// runs fake_cuda_app as a child process and reads the reports it leaves.
#include <cuda.h>
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "oomguard/category.hpp"
#include "subprocess.hpp"

namespace oomguard::testing {
namespace {

namespace fs = std::filesystem;
constexpr std::int64_t kMiB = std::int64_t{1} << 20;

class PreloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(::testing::TempDir()) / ("oomguard-preload-" + std::to_string(getpid()) + "-" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }

  fs::path reports() const { return dir_ / "reports"; }
  Launch launch(std::vector<std::string> args) const {
    Launch l;
    l.args = std::move(args);
    l.env["OOMGUARD_REPORT_DIR"] = reports().string();
    l.working_dir = dir_.string();
    return l;
  }

  static nlohmann::json read_json(const fs::path& path) {
    std::ifstream in(path);
    EXPECT_TRUE(in.good()) << "missing " << path;
    return nlohmann::json::parse(in);
  }
  static const nlohmann::json& device0(const nlohmann::json& summary) {
    EXPECT_EQ(summary.at("devices").size(), 1u) << summary.dump(2);
    return summary.at("devices").at(0);
  }

  fs::path dir_;
};

// The rows of a timeline, each split at commas; the header is checked here.
std::vector<std::vector<std::string>> read_timeline(const fs::path& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "missing " << path;
  std::string expected_header = "step,phase,time_s";
  for (auto category : kCategoryNames) expected_header += "," + std::string(category);
  expected_header += ",allocated,reserved,predicted_peak,budget";
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, expected_header);
  std::vector<std::vector<std::string>> rows;
  while (std::getline(in, line)) {
    std::vector<std::string> fields;
    std::stringstream cells(line);
    for (std::string cell; std::getline(cells, cell, ',');) fields.push_back(cell);
    if (!line.empty() && line.back() == ',') fields.emplace_back();
    rows.push_back(fields);
  }
  return rows;
}

constexpr std::size_t kTimelineColumns = 3 + kNumCategories + 4;
constexpr std::size_t kReservedColumn = 3 + kNumCategories + 1;
constexpr std::size_t kBudgetColumn = 3 + kNumCategories + 3;

TEST_F(PreloadTest, WithoutPreloadTheProgramRunsAndNoReportAppears) {
  Launch l = launch({"basic"});
  l.preload = false;
  const Finished done = run(l);
  EXPECT_EQ(done.exit_code, 0);
  EXPECT_FALSE(fs::exists(reports()));
}

TEST_F(PreloadTest, AProgramThatNeverTouchesCudaLeavesNoTrace) {
  Launch l = launch({"no-cuda"});
  l.env.erase("OOMGUARD_REPORT_DIR");
  const Finished done = run(l);
  EXPECT_EQ(done.exit_code, 0);
  EXPECT_FALSE(fs::exists(dir_ / "oomguard-reports"));
}

TEST_F(PreloadTest, EveryInterposedCallIsCountedWithExactBytes) {
  const Finished done = run(launch({"basic"}));
  ASSERT_EQ(done.exit_code, 0) << done.output;
  const auto printed = parse_key_values(done.output);
  const nlohmann::json summary = read_json(reports() / "preload-summary.json");
  EXPECT_EQ(summary.at("reason"), "exit");
  const nlohmann::json& calls = summary.at("calls");
  EXPECT_EQ(calls.at("cudaMalloc"), 2);
  EXPECT_EQ(calls.at("cudaFree"), 1);
  EXPECT_EQ(calls.at("cudaMallocAsync"), 1);
  EXPECT_EQ(calls.at("cudaFreeAsync"), 1);
  EXPECT_EQ(calls.at("cudaMallocManaged"), 1);
  EXPECT_EQ(calls.at("cuMemCreate"), 2);  // one through an entry-point pointer
  EXPECT_EQ(calls.at("cuMemRelease"), 1);
  EXPECT_EQ(calls.at("cuMemMap"), 1);
  EXPECT_EQ(calls.at("cuMemUnmap"), 1);
  EXPECT_EQ(calls.at("cudaGetDriverEntryPointByVersion"), 3);
  EXPECT_EQ(summary.at("driver_wrappers_handed_out"), 3);

  const nlohmann::json& d = device0(summary);
  EXPECT_EQ(d.at("segment_bytes").get<std::int64_t>(), std::stoll(printed.at("live_bytes")));
  EXPECT_EQ(d.at("peak_segment_bytes").get<std::int64_t>(), std::stoll(printed.at("peak_bytes")));
  EXPECT_EQ(d.at("reserved_bytes").get<std::int64_t>(), 17 * kMiB);
  EXPECT_EQ(d.at("current_by_category").at("non_torch").get<std::int64_t>(), 17 * kMiB);
  EXPECT_EQ(d.at("live_segments"), 4);
}

TEST_F(PreloadTest, ACallMadeInsideAnInterposedCallIsCountedOnce) {
  // The fake cudaMalloc calls the exported cuMemAlloc_v2 and the fake entry
  // point calls cuGetProcAddress_v2: both run our wrappers re-entrantly.
  const Finished done = run(launch({"basic"}));
  ASSERT_EQ(done.exit_code, 0) << done.output;
  const nlohmann::json summary = read_json(reports() / "preload-summary.json");
  EXPECT_EQ(summary.at("calls").at("cuMemAlloc_v2"), 1);  // the program's own call only
  EXPECT_EQ(summary.at("calls").at("cuMemFree_v2"), 0);
  EXPECT_EQ(summary.at("calls").at("cuGetProcAddress_v2"), 0);
  EXPECT_EQ(device0(summary).at("peak_segment_bytes").get<std::int64_t>(), 23 * kMiB);  // not doubled
}

TEST_F(PreloadTest, DefaultReportDirectoryIsRunIdAndRank) {
  Launch l = launch({"child"});
  l.env.erase("OOMGUARD_REPORT_DIR");
  l.env["OOMGUARD_RUN_ID"] = "run-a";
  l.env["RANK"] = "3";
  ASSERT_EQ(run(l).exit_code, 0);
  const nlohmann::json summary = read_json(dir_ / "oomguard-reports" / "run-a" / "rank3" / "preload-summary.json");
  EXPECT_EQ(summary.at("rank"), 3);
  EXPECT_EQ(summary.at("run_id"), "run-a");
  EXPECT_EQ(device0(summary).at("segment_bytes").get<std::int64_t>(), 2 * kMiB);
}

TEST_F(PreloadTest, ABadRankIsNamedAndTheProgramStillRuns) {
  Launch l = launch({"child"});
  l.env.erase("OOMGUARD_REPORT_DIR");
  l.env["OOMGUARD_RUN_ID"] = "run-b";
  l.env["RANK"] = "abc";  // once: _exit(2) before main, in every program
  const Finished done = run(l);
  ASSERT_EQ(done.exit_code, 0) << done.output;  // and a warning on stderr, which this harness does not keep
  EXPECT_TRUE(fs::exists(dir_ / "oomguard-reports" / "run-b" / "rank0" / "preload-summary.json"));
}

TEST_F(PreloadTest, BudgetRefusesWithTheOutOfMemoryErrorOfEachApi) {
  Launch l = launch({"until-refused"});
  l.env["OOMGUARD_CONF"] = "budget:10MiB,some_other_layers_key:1";
  const Finished done = run(l);
  ASSERT_EQ(done.exit_code, 0) << done.output;
  const auto printed = parse_key_values(done.output);
  EXPECT_EQ(printed.at("granted"), "10");
  EXPECT_EQ(printed.at("huge_granted"), "0");
  EXPECT_EQ(std::stoi(printed.at("huge_error")), static_cast<int>(cudaErrorMemoryAllocation));
  EXPECT_EQ(std::stoi(printed.at("runtime_error")), static_cast<int>(cudaErrorMemoryAllocation));
  EXPECT_EQ(std::stoi(printed.at("driver_error")), static_cast<int>(CUDA_ERROR_OUT_OF_MEMORY));

  const nlohmann::json summary = read_json(reports() / "preload-summary.json");
  const nlohmann::json& d = device0(summary);
  EXPECT_EQ(d.at("segment_bytes").get<std::int64_t>(), 10 * kMiB);
  EXPECT_EQ(d.at("budget_bytes").get<std::int64_t>(), 10 * kMiB);
  EXPECT_EQ(d.at("budget_refusals"), 4);  // the two sizes near SIZE_MAX, then the 11th MiB and the driver call
  EXPECT_EQ(d.at("device_ooms"), 0);  // none reached the device
  EXPECT_EQ(summary.at("ooms").at("last").at("by"), "budget");
  EXPECT_EQ(summary.at("budget").at("spec"), "10MiB");

  const auto rows = read_timeline(reports() / "timeline.csv");
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows.back().at(kBudgetColumn), std::to_string(10 * kMiB));
}

TEST_F(PreloadTest, AFractionBudgetIsResolvedAgainstTheDeviceSize) {
  Launch l = launch({"until-refused"});
  l.env["OOMGUARD_CONF"] = "budget:50%";
  l.env["FAKE_CUDA_DEVICE_BYTES"] = std::to_string(20 * kMiB);
  const Finished done = run(l);
  ASSERT_EQ(done.exit_code, 0) << done.output;
  EXPECT_EQ(parse_key_values(done.output).at("granted"), "10");
}

TEST_F(PreloadTest, TheDevicesOwnOutOfMemoryIsNotedAndPassedThrough) {
  Launch l = launch({"until-refused"});
  l.env["FAKE_CUDA_DEVICE_BYTES"] = std::to_string(5 * kMiB);
  const Finished done = run(l);
  ASSERT_EQ(done.exit_code, 0) << done.output;
  const auto printed = parse_key_values(done.output);
  EXPECT_EQ(printed.at("granted"), "5");
  EXPECT_EQ(printed.at("huge_granted"), "0");  // without a budget the device refuses the sizes near SIZE_MAX
  const nlohmann::json summary = read_json(reports() / "preload-summary.json");
  EXPECT_EQ(device0(summary).at("device_ooms"), 4);
  EXPECT_EQ(device0(summary).at("budget_refusals"), 0);
  EXPECT_EQ(summary.at("ooms").at("last").at("by"), "device");
}

TEST_F(PreloadTest, AMalformedBudgetStopsTheProgramWithAClearMessage) {
  Launch l = launch({"basic"});
  l.env["OOMGUARD_CONF"] = "budget:lots";
  l.merge_stderr = true;
  const Finished done = run(l);
  EXPECT_EQ(done.exit_code, 2);
  EXPECT_NE(done.output.find("oomguard preload:"), std::string::npos) << done.output;
  EXPECT_NE(done.output.find("lots"), std::string::npos) << done.output;
}

TEST_F(PreloadTest, AForkedChildReportsOnlyItsOwnAllocationsInItsOwnDirectory) {
  const Finished done = run(launch({"fork"}));
  ASSERT_EQ(done.exit_code, 0) << done.output;
  const std::string child = parse_key_values(done.output).at("child_pid");
  const nlohmann::json parent = read_json(reports() / "preload-summary.json");
  EXPECT_EQ(device0(parent).at("segment_bytes").get<std::int64_t>(), 1 * kMiB);
  const nlohmann::json forked = read_json(reports() / ("pid" + child) / "preload-summary.json");
  EXPECT_EQ(forked.at("pid").get<int>(), std::stoi(child));
  EXPECT_EQ(forked.at("calls").at("cudaMalloc"), 1);
  EXPECT_EQ(device0(forked).at("segment_bytes").get<std::int64_t>(), 4 * kMiB);
  EXPECT_EQ(device0(forked).at("peak_segment_bytes").get<std::int64_t>(), 4 * kMiB);
}

TEST_F(PreloadTest, AnExecedChildInheritsThePreloadAndWritesItsReport) {
  const Finished done = run(launch({"fork-exec"}));
  ASSERT_EQ(done.exit_code, 0) << done.output;
  const std::string child = parse_key_values(done.output).at("child_pid");
  const nlohmann::json summary = read_json(reports() / ("pid" + child) / "preload-summary.json");
  EXPECT_EQ(summary.at("calls").at("cudaMalloc"), 1);
  EXPECT_EQ(device0(summary).at("segment_bytes").get<std::int64_t>(), 2 * kMiB);
  EXPECT_EQ(device0(read_json(reports() / "preload-summary.json")).at("segment_bytes").get<std::int64_t>(),
            1 * kMiB);
}

TEST_F(PreloadTest, ManyThreadsGiveExactTotals) {
  const Finished done = run(launch({"threads", "8", "2000"}));
  ASSERT_EQ(done.exit_code, 0) << done.output;
  const auto printed = parse_key_values(done.output);
  const nlohmann::json summary = read_json(reports() / "preload-summary.json");
  EXPECT_EQ(summary.at("calls").at("cudaMalloc").get<int>(), std::stoi(printed.at("mallocs")));
  EXPECT_EQ(summary.at("calls").at("cudaFree").get<int>(), std::stoi(printed.at("frees")));
  const nlohmann::json& d = device0(summary);
  const std::int64_t live = std::stoll(printed.at("live_bytes"));
  EXPECT_EQ(d.at("segment_bytes").get<std::int64_t>(), live);
  EXPECT_EQ(d.at("reserved_bytes").get<std::int64_t>(), live);
  EXPECT_EQ(d.at("current_by_category").at("non_torch").get<std::int64_t>(), live);
  EXPECT_EQ(d.at("live_segments").get<int>(), 8 * 1000);
}

TEST_F(PreloadTest, AKilledProgramLeavesAParseableTimeline) {
  Running running = start(launch({"until-killed"}));
  ASSERT_TRUE(read_until_line(running.stdout_fd, "ready"));
  kill(running.pid, SIGKILL);
  const Finished done = wait_for(running);
  EXPECT_EQ(done.term_signal, SIGKILL);

  const auto rows = read_timeline(reports() / "timeline.csv");
  ASSERT_FALSE(rows.empty());
  std::int64_t max_reserved = 0;
  for (const auto& row : rows) {
    ASSERT_EQ(row.size(), kTimelineColumns);
    std::size_t parsed = 0;
    std::stod(row[2], &parsed);
    EXPECT_EQ(parsed, row[2].size());
    max_reserved = std::max<std::int64_t>(max_reserved, std::stoll(row[kReservedColumn]));
  }
  EXPECT_GE(max_reserved, 8 * kMiB);  // every new peak is a row
}

TEST_F(PreloadTest, SigtermWritesTheSummaryAndStillEndsTheProgram) {
  Running running = start(launch({"until-killed"}));
  ASSERT_TRUE(read_until_line(running.stdout_fd, "ready"));
  kill(running.pid, SIGTERM);
  const Finished done = wait_for(running);
  EXPECT_EQ(done.term_signal, SIGTERM);
  const nlohmann::json summary = read_json(reports() / "preload-summary.json");
  EXPECT_EQ(summary.at("reason"), "signal:SIGTERM");
  EXPECT_GE(device0(summary).at("segment_bytes").get<std::int64_t>(), 8 * kMiB);
}

// Note [Out-of-memory summaries are rate limited]: 30,000 refusals in a
// loop write a handful of summaries and rows, and the exit summary counts
// them all.
TEST_F(PreloadTest, RefusalsInALoopDoNotRewriteTheSummaryEachTime) {
  Launch l = launch({"refusals", "30000"});
  l.env["OOMGUARD_CONF"] = "budget:4MiB";
  const Finished done = run(l);
  ASSERT_EQ(done.exit_code, 0) << done.output;
  EXPECT_EQ(parse_key_values(done.output).at("refused"), "30000");
  const nlohmann::json summary = read_json(reports() / "preload-summary.json");
  EXPECT_EQ(summary.at("reason"), "exit");
  EXPECT_EQ(device0(summary).at("budget_refusals"), 30000);
  const auto written = summary.at("ooms").at("summaries_written").get<std::uint64_t>();
  EXPECT_GE(written, 1u);
  EXPECT_LT(written, 100u);  // one per refusal before
  EXPECT_LT(read_timeline(reports() / "timeline.csv").size(), 5000u);  // a row a millisecond at most
}

// A SIGTERM among refusals: the signal's summary is the last one written
// and no temporary is left half written by a refusal's.
TEST_F(PreloadTest, SigtermAmongRefusalsReportsTheSignalAndLeavesNoTemporary) {
  Launch l = launch({"refusals", "0"});
  l.env["OOMGUARD_CONF"] = "budget:4MiB";
  Running running = start(l);
  ASSERT_TRUE(read_until_line(running.stdout_fd, "ready"));
  usleep(200'000);  // refusals under way
  kill(running.pid, SIGTERM);
  const Finished done = wait_for(running);
  EXPECT_EQ(done.term_signal, SIGTERM);
  const nlohmann::json summary = read_json(reports() / "preload-summary.json");
  EXPECT_EQ(summary.at("reason"), "signal:SIGTERM");
  EXPECT_GT(device0(summary).at("budget_refusals").get<std::int64_t>(), 1);
  for (const auto& entry : fs::directory_iterator(reports()))
    EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos) << entry.path();
}

}  // namespace
}  // namespace oomguard::testing
