// Report writers: pickle bytes, timeline rows, summary keys, the files
// write_report leaves, and `oomguard report` merging ranks.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "oomguard/error.hpp"
#include "oomguard/guard/report/headline.hpp"
#include "oomguard/guard/report/pickle_writer.hpp"
#include "oomguard/guard/report/rank_reports.hpp"
#include "oomguard/guard/report/recorder.hpp"
#include "oomguard/guard/report/report.hpp"
#include "oomguard/guard/report/report_file.hpp"
#include "oomguard/guard/report/summary.hpp"
#include "oomguard/guard/report/timeline.hpp"
#include "oomguard/guard/run_state.hpp"
#include "oomguard/ledger.hpp"
#include "oomguard/tags.hpp"

#include "report_files.hpp"

namespace fs = std::filesystem;
using namespace oomguard;
using namespace oomguard::guard::report;
using oomguard::testing::slurp;
using oomguard::testing::TempDir;
using nlohmann::json;

namespace {


class Reports : public ::testing::Test {
 protected:
  void SetUp() override {
    Ledger::global().reset();
    guard::RunState::global().reset();
    Recorder::global().reset();
  }
  void TearDown() override { SetUp(); }
};

}  // namespace

TEST(Pickle, ProtocolFourOpcodes) {
  using namespace std::string_literals;
  EXPECT_EQ(to_pickle(json::object({{"a", 1}})), "\x80\x04}(\x8c\x01" "aJ\x01\x00\x00\x00u."s);
  EXPECT_EQ(to_pickle(json::array({true, false, nullptr})), "\x80\x04](\x88\x89N" "e."s);
  EXPECT_EQ(to_pickle(json::array()), "\x80\x04](e."s);  // an empty MARK ... APPENDS
  // 2^40 needs LONG1 with six bytes (the top byte keeps the sign positive).
  EXPECT_EQ(to_pickle(json(std::int64_t{1} << 40)), "\x80\x04\x8a\x06\x00\x00\x00\x00\x00\x01."s);
  EXPECT_EQ(to_pickle(json(-1)), "\x80\x04J\xff\xff\xff\xff."s);
  // 0.5 as a big-endian IEEE double.
  EXPECT_EQ(to_pickle(json(0.5)), "\x80\x04G\x3f\xe0\x00\x00\x00\x00\x00\x00."s);
  const std::string long_text(300, 'x');
  const std::string p = to_pickle(json(long_text));
  EXPECT_EQ(p.substr(2, 5), "X\x2c\x01\x00\x00"s);
}

TEST(Timeline, RowsRoundTripThroughTheText) {
  TimelineRow row;
  row.step = 3;
  row.phase = Phase::backward;
  row.time_s = 1.25;
  row.by_category[index(Category::weights)] = 1000;
  row.by_category[index(Category::activations)] = 24;
  row.allocated = 1024;
  row.reserved = 2048;
  row.budget = 4096;
  char buffer[kMaxTimelineRowBytes];
  const std::size_t n = format_timeline_row(row, buffer, sizeof(buffer));
  const std::string text = timeline_header() + std::string(buffer, n);
  EXPECT_EQ(std::string(buffer, n), "3,backward,1.250000,1000,0,0,24,0,0,0,0,0,1024,2048,,4096\n");
  const auto rows = parse_timeline(text, "t").rows;
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].step, 3);
  EXPECT_EQ(rows[0].phase, Phase::backward);
  EXPECT_EQ(rows[0].by_category, row.by_category);
  EXPECT_EQ(rows[0].predicted_peak, 0u);
  EXPECT_EQ(rows[0].budget, 4096u);
  EXPECT_THROW(parse_timeline("step,phase\n", "t"), oomguard::error);
  // A line that is not a row costs that line, never the file.
  const Timeline damaged = parse_timeline(timeline_header() + "1,sideways,0" + std::string(13, ',') + "\n" + text.substr(timeline_header().size()), "t");
  EXPECT_EQ(damaged.rows.size(), 1u);
  EXPECT_EQ(damaged.skipped_lines, 1u);
  EXPECT_EQ(damaged.first_skipped, "line 2: \"sideways\" is not a phase");
}

TEST_F(Reports, TimelineGetsOneRowPerCallAndAppendsAcrossOpens) {
  TempDir dir;
  ASSERT_TRUE(Recorder::global().set_dir(dir.path.string()));
  Ledger::global().record(0x1000, 512, kCpuDevice, 0, Tag{Category::weights, Phase::idle, 0});
  Recorder::global().row();
  Recorder::global().row();
  Recorder::global().reset();
  ASSERT_TRUE(Recorder::global().set_dir(dir.path.string()));
  Recorder::global().row();
  const auto rows = read_timeline((dir.path / "timeline.csv").string()).rows;
  ASSERT_EQ(rows.size(), 3u);  // one header, three rows
  EXPECT_EQ(rows[0].by_category[index(Category::weights)], 512);
  EXPECT_EQ(rows[0].allocated, 512);
}

TEST_F(Reports, WriteReportLeavesTheThreeFilesWithTheSummaryKeys) {
  TempDir dir;
  guard::RunState::global().set_budget(1 << 20);
  guard::RunState::global().set_suggestions({{"micro_batch", "halve the micro-batch", 100},
                                             {"checkpointing", "gradient checkpointing", 900}});
  ASSERT_TRUE(Recorder::global().set_dir(dir.path.string()));
  Ledger::global().record(0x1000, 4096, kCpuDevice, 0, Tag{Category::weights, Phase::idle, 0});
  Ledger::global().record(0x9000, 8192, kCpuDevice, 0, Tag{Category::activations, Phase::forward, 0});
  Recorder::global().row();  // the peak
  Ledger::global().release(0x9000);
  const ReportResult r = write_report("", "exit");
  EXPECT_TRUE(r.errors.empty()) << r.errors.front();
  for (const char* f : {"summary.json", "report.html", "snapshot.pickle", "timeline.csv"})
    EXPECT_TRUE(fs::exists(dir.path / f)) << f;
  const json s = json::parse(slurp(dir.path / "summary.json"));
  EXPECT_NO_THROW(check_summary(s, "summary"));
  EXPECT_EQ(s["schema"], "oomguard.summary/2");
  json older = s;
  older["schema"] = "oomguard.summary/1";  // predicted_vs_actual meant something else then
  try {
    check_summary(older, "summary");
    ADD_FAILURE() << "a /1 summary was accepted";
  } catch (const oomguard::error& e) {
    EXPECT_NE(std::string(e.what()).find("is not the accepted \"oomguard.summary/2\""), std::string::npos) << e.what();
  }
  EXPECT_NE(slurp(dir.path / "report.html").find("summary schema oomguard.summary/2"), std::string::npos);
  EXPECT_EQ(s["device"], "cpu");
  EXPECT_EQ(s["budget_bytes"], 1 << 20);
  EXPECT_EQ(s["peak"]["allocated_bytes"], 4096 + 8192);
  EXPECT_EQ(s["peak"]["by_category"]["activations"], 8192);
  EXPECT_TRUE(s["oom"].is_null());
  EXPECT_TRUE(s["prediction"].is_null());
  ASSERT_EQ(s["largest_allocations"].size(), 2u);
  EXPECT_EQ(s["largest_allocations"][0]["size_bytes"], 8192);
  ASSERT_EQ(s["suggestions"].size(), 2u);
  EXPECT_EQ(s["suggestions"][0]["kind"], "checkpointing");  // ranked by bytes saved
  const std::string html = slurp(dir.path / "report.html");
  EXPECT_NE(html.find("<svg class=\"timeline\""), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(slurp(dir.path / "snapshot.pickle").substr(0, 2), std::string("\x80\x04"));
}

// Note [Report files are never followed]: a shared report folder where
// someone planted a symlink at every name oomguard writes (the final names,
// and the predictable temporaries of the former writer) keeps the links'
// targets untouched, and the reports are whole regular files.
TEST_F(Reports, SymlinksPlantedAtEveryNameAreReplacedNeverFollowed) {
  TempDir dir;
  TempDir outside("-outside");  // stands for another user's files
  const fs::path victim = outside.path / "victim";
  { std::ofstream(victim) << "precious"; }
  const std::string pid = std::to_string(::getpid());
  for (const char* name : {"summary.json", "report.html", "snapshot.pickle", "timeline.csv"}) {
    fs::create_symlink(victim, dir.path / name);
    fs::create_symlink(victim, dir.path / (std::string(name) + ".tmp" + pid));
  }
  ASSERT_TRUE(Recorder::global().set_dir(dir.path.string()));
  Ledger::global().record(0x1000, 4096, kCpuDevice, 0, Tag{Category::weights, Phase::idle, 0});
  Recorder::global().row();
  const ReportResult r = write_report("", "exit");
  EXPECT_TRUE(r.errors.empty()) << r.errors.front();
  EXPECT_EQ(slurp(victim), "precious");
  for (const char* name : {"summary.json", "report.html", "snapshot.pickle", "timeline.csv"}) {
    EXPECT_TRUE(fs::is_regular_file(fs::symlink_status(dir.path / name))) << name;
    EXPECT_FALSE(slurp(dir.path / name).empty()) << name;
  }
  EXPECT_EQ(read_timeline((dir.path / "timeline.csv").string()).rows.size(), 2u);  // the row above and the report's
  // `oomguard report`'s page, too.
  fs::remove(dir.path / "report.html");
  fs::create_symlink(victim, dir.path / "report.html");
  rebuild_report(dir.path.string(), "");
  EXPECT_EQ(slurp(victim), "precious");
  EXPECT_TRUE(fs::is_regular_file(fs::symlink_status(dir.path / "report.html")));
  // Nothing but the reports and the planted temporaries is left behind.
  for (const auto& entry : fs::directory_iterator(dir.path))
    EXPECT_EQ(entry.path().filename().string().find(".tmp."), std::string::npos) << entry.path();
}

TEST(ReportFile, AWriteThatFailsLeavesNoTemporaryAndNamesThePath) {
  TempDir dir;
  fs::create_directories(dir.path / "summary.json");  // a folder where the file should go: rename fails
  const std::string error = write_report_file((dir.path / "summary.json").string(), "{}");
  EXPECT_NE(error.find("summary.json"), std::string::npos) << error;
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir.path)) ++entries;
  EXPECT_EQ(entries, 1u);  // the folder only
}

TEST(ReportFile, AppendReplacesAFifoAndKeepsARegularFile) {
  TempDir dir;
  const fs::path path = dir.path / "timeline.csv";
  ASSERT_EQ(::mkfifo(path.c_str(), 0644), 0);  // would block a writer for ever
  int fd = open_report_for_append(path.string());
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, "a\n", 2), 2);
  ::close(fd);
  EXPECT_TRUE(fs::is_regular_file(fs::symlink_status(path)));
  fd = open_report_for_append(path.string());
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, "b\n", 2), 2);
  ::close(fd);
  EXPECT_EQ(slurp(path), "a\nb\n");  // an existing regular file is appended to
}

TEST(ReportFile, AReportFolderThatIsNotAFolderIsRefusedByName) {
  TempDir dir;
  { std::ofstream(dir.path / "file") << "x"; }
  const std::string why = prepare_report_dir((dir.path / "file").string());
  EXPECT_NE(why.find((dir.path / "file").string() + "\""), std::string::npos) << why;  // names it
  EXPECT_EQ(prepare_report_dir((dir.path / "a" / "b").string()), "");
  EXPECT_TRUE(fs::is_directory(dir.path / "a" / "b"));
}

// Note [The breakdown at the peak]: the Ledger's composition at the exact
// peak, not the recorder's highest sample (taken here before the peak).
TEST_F(Reports, PeakBreakdownIsTheLedgersAtThePeakNotTheSample) {
  Ledger& ledger = Ledger::global();
  ledger.record(0x1000, 8192, kCpuDevice, 0, Tag{Category::activations, Phase::forward, 1});  // A
  Recorder::global().row();                                                                  // samples 8192
  ledger.record(0x9000, 4096, kCpuDevice, 0, Tag{Category::weights, Phase::backward, 2});     // B: 12288
  ledger.release(0x1000);
  ledger.record(0x5000, 2048, kCpuDevice, 0, Tag{Category::temporary, Phase::optimizer, 3});  // C
  Recorder::global().row();                                                                  // samples 6144
  const json s = build_summary("exit");
  EXPECT_NO_THROW(check_summary(s, "summary"));
  const json& peak = s["peak"];
  EXPECT_EQ(peak["allocated_bytes"], 8192 + 4096);
  std::int64_t sum = 0;
  for (const auto& [key, bytes] : peak["by_category"].items()) sum += bytes.get<std::int64_t>();
  EXPECT_EQ(sum, peak["allocated_bytes"].get<std::int64_t>());
  EXPECT_EQ(peak["by_category"]["activations"], 8192);
  EXPECT_EQ(peak["by_category"]["weights"], 4096);
  EXPECT_EQ(peak["by_category"]["temporary"], 0);
  EXPECT_EQ(peak["step"], 2);
  EXPECT_EQ(peak["phase"], "backward");
  EXPECT_EQ(peak["sampled_allocated_bytes"], 8192);
  // The largest allocations are still the sample's: A was live then.
  ASSERT_EQ(s["largest_allocations"].size(), 1u);
  EXPECT_EQ(s["largest_allocations"][0]["size_bytes"], 8192);
}

namespace {
guard::Prediction predicted(std::int64_t at_step, std::uint64_t peak, const std::string& reason = "training step") {
  guard::Prediction p;
  p.made_at_step = at_step;
  p.peak_allocated_bytes = peak;
  p.phase = Phase::backward;
  p.step = at_step;
  p.reason = reason;
  return p;
}
}  // namespace

// Note [Prediction history]: the first and each revision, bounded, the
// first always kept.
TEST_F(Reports, PredictionHistoryKeepsTheFirstAndEachRevision) {
  guard::RunState& run = guard::RunState::global();
  run.set_prediction(predicted(1, 1000));
  run.set_prediction(predicted(2, 1000));  // the same forecast again: not kept
  run.set_prediction(predicted(3, 1200));
  run.set_prediction(predicted(4, 1200, "evaluation"));
  auto kept = run.predictions();
  ASSERT_EQ(kept.size(), 3u);
  EXPECT_EQ(kept[0].made_at_step, 1);
  EXPECT_EQ(kept[1].made_at_step, 3);
  EXPECT_EQ(kept[2].reason, "evaluation");
  EXPECT_EQ(run.prediction()->made_at_step, 4);
  EXPECT_EQ(run.predictions_made(), 4u);
  for (std::int64_t i = 0; i < static_cast<std::int64_t>(guard::RunState::kPredictionHistory); ++i)
    run.set_prediction(predicted(10 + i, 2000 + static_cast<std::uint64_t>(i)));
  kept = run.predictions();
  ASSERT_EQ(kept.size(), guard::RunState::kPredictionHistory);
  EXPECT_EQ(kept.front().made_at_step, 1);  // the first survives
  EXPECT_EQ(kept[1].peak_allocated_bytes, 2001u);  // the three oldest revisions went
  EXPECT_EQ(kept.back().made_at_step, 10 + static_cast<std::int64_t>(guard::RunState::kPredictionHistory) - 1);
  run.reset();
  EXPECT_TRUE(run.predictions().empty());
}

// The first prediction is judged, not the latest (made at the last step).
TEST_F(Reports, PredictedVersusActualJudgesTheFirstPrediction) {
  guard::RunState& run = guard::RunState::global();
  Ledger::global().record(0x1000, 1000, kCpuDevice, 0, Tag{Category::activations, Phase::forward, 1});
  run.set_prediction(predicted(1, 800));
  run.set_prediction(predicted(2, 1000));
  json s = build_summary("exit");
  EXPECT_NO_THROW(check_summary(s, "summary"));
  json v = s["predicted_vs_actual"];
  EXPECT_EQ(v["first_predicted_peak_bytes"], 800);
  EXPECT_EQ(v["first_made_at_step"], 1);
  EXPECT_EQ(v["latest_predicted_peak_bytes"], 1000);
  EXPECT_EQ(v["actual_peak_bytes"], 1000);
  EXPECT_DOUBLE_EQ(v["error_fraction"].get<double>(), -0.2);
  EXPECT_EQ(v["complete"], true);
  EXPECT_TRUE(v["error_fraction_after_actions"].is_null());
  ASSERT_EQ(s["predictions"].size(), 2u);
  EXPECT_EQ(s["predictions"][1]["peak_allocated_bytes"], 1000);
  EXPECT_EQ(s["prediction"]["made_at_step"], 2);

  // A warning changes nothing; a checkpointing action does: the first
  // prediction after it is judged too.
  run.add_action({2, "warn", "over 90% of the budget", 0});
  EXPECT_TRUE(build_summary("exit")["predicted_vs_actual"]["error_fraction_after_actions"].is_null());
  run.add_action({2, "checkpoint", "gradient checkpointing on", 300});
  EXPECT_EQ(run.actions().back().predictions_before, 2u);
  EXPECT_TRUE(build_summary("exit")["predicted_vs_actual"]["error_fraction_after_actions"].is_null());
  run.set_prediction(predicted(3, 1100));
  run.set_prediction(predicted(4, 1100));  // not a revision, not the first after the action
  run.set_prediction(predicted(5, 1300));
  v = build_summary("exit")["predicted_vs_actual"];
  EXPECT_DOUBLE_EQ(v["error_fraction_after_actions"].get<double>(), 0.1);
  EXPECT_EQ(v["latest_predicted_peak_bytes"], 1300);
  EXPECT_DOUBLE_EQ(v["error_fraction"].get<double>(), -0.2);

  // Note [A truncated run's peak]: no error for a run that stopped early.
  for (const char* reason : {"abort: predicted peak over the budget", "out_of_memory", "signal 15"}) {
    s = build_summary(reason);
    EXPECT_NO_THROW(check_summary(s, "summary"));
    EXPECT_EQ(s["predicted_vs_actual"]["complete"], false) << reason;
    EXPECT_TRUE(s["predicted_vs_actual"]["error_fraction"].is_null()) << reason;
    EXPECT_TRUE(s["predicted_vs_actual"]["error_fraction_after_actions"].is_null()) << reason;
  }
  run.add_action({5, "abort", "predicted peak over the budget", 0});  // the exit report after the guard's abort
  EXPECT_EQ(build_summary("exit")["predicted_vs_actual"]["complete"], false);

  s["predicted_vs_actual"]["error_fraction"] = 0.5;  // an error for an incomplete run is refused
  EXPECT_THROW(check_summary(s, "summary"), oomguard::error);
  s.erase("predictions");
  EXPECT_THROW(check_summary(s, "summary"), oomguard::error);
}

TEST_F(Reports, OutOfMemoryIsKeptForTheExitReport) {
  TempDir dir;
  ASSERT_TRUE(Recorder::global().set_dir(dir.path.string()));
  Ledger::global().record(0x1000, 4096, kCpuDevice, 0, Tag{Category::optimizer, Phase::optimizer, 2});
  OomContext c;
  c.requested_bytes = 12345;
  c.device = kCpuDevice;
  c.budget_bytes = 8192;
  c.allocated_bytes = 4096;
  c.reason = "budget";
  report_out_of_memory(c);
  const json at_oom = json::parse(slurp(dir.path / "summary.json"));
  EXPECT_EQ(at_oom["reason"], "out_of_memory");
  EXPECT_EQ(at_oom["oom"]["requested_bytes"], 12345);
  EXPECT_EQ(at_oom["oom"]["by_category"]["optimizer"], 4096);
  write_report("", "exit");
  const json at_exit = json::parse(slurp(dir.path / "summary.json"));
  EXPECT_EQ(at_exit["reason"], "out_of_memory");  // the process that ran out says so at exit too
  EXPECT_EQ(at_exit["oom"]["requested_bytes"], 12345);
}

TEST_F(Reports, CliMergesRanksAndNamesAnEmptyDirectory) {
  TempDir run;
  for (const char* rank : {"rank0", "rank1"}) {
    Recorder::global().reset();
    ASSERT_TRUE(Recorder::global().set_dir((run.path / rank).string()));
    Recorder::global().row();
    EXPECT_TRUE(write_report("", "exit").errors.empty());
  }
  const std::string cmd = std::string(OOMGUARD_CLI_PATH) + " report " + run.path.string() + " > /dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const std::string html = slurp(run.path / "report.html");
  EXPECT_NE(html.find("id=\"rank0\""), std::string::npos);
  EXPECT_NE(html.find("id=\"rank1\""), std::string::npos);
  EXPECT_EQ(load_rank_reports(run.path.string()).size(), 2u);

  TempDir empty;
  const std::string bad = std::string(OOMGUARD_CLI_PATH) + " report " + empty.path.string() + " 2>" +
                          (empty.path / "err.txt").string();
  const int status = std::system(bad.c_str());
  EXPECT_NE(WEXITSTATUS(status), 0);
  EXPECT_NE(slurp(empty.path / "err.txt").find("no reports under"), std::string::npos);
}

TEST(Headline, PeakByCategoryLargestFirstAndTheReportPath) {
  const nlohmann::json summary = {
      {"rank", 1},
      {"device", "cuda:1"},
      {"oom", nullptr},
      {"peak",
       {{"allocated_bytes", 100 << 20},
        {"step", 5},
        {"phase", "backward"},
        {"by_category", {{"weights", 30 << 20}, {"activations", 69 << 20}, {"temporary", 1 << 19}, {"unknown", 0}}}}}};
  EXPECT_EQ(oomguard::guard::report::headline(summary, "out/rank1/report.html"),
            "oomguard: rank 1 peak 100.00 MiB on cuda:1 at step 5 (backward): activations 69.00 MiB, weights 30.00 MiB; "
            "report: out/rank1/report.html");
}

TEST(Headline, AnOutOfMemoryNamesTheRefusal) {
  const nlohmann::json summary = {
      {"rank", 0},
      {"oom", {{"step", 3}, {"phase", "forward"}, {"requested_bytes", 2 << 20}, {"allocated_bytes", 10 << 20}}},
      {"peak", {{"allocated_bytes", 10 << 20}, {"by_category", nlohmann::json::object()}}}};
  EXPECT_EQ(oomguard::guard::report::headline(summary, "d/report.html"),
            "oomguard: rank 0 ran out of memory at step 3 (forward): 2.00 MiB refused with 10.00 MiB allocated; "
            "report: d/report.html");
  // A folder that refused the page: the line does not name one.
  EXPECT_EQ(oomguard::guard::report::headline(summary, ""),
            "oomguard: rank 0 ran out of memory at step 3 (forward): 2.00 MiB refused with 10.00 MiB allocated; "
            "report.html not written (see the errors above)");
}

TEST(Headline, NothingAllocatedSaysNothing) {
  const nlohmann::json summary = {{"oom", nullptr}, {"peak", {{"allocated_bytes", 0}, {"by_category", {}}}}};
  EXPECT_EQ(oomguard::guard::report::headline(summary, "d"), "");
}
