// The timeline under faults and on long runs: rows whole when the disk
// fills (Note [A row is whole or absent]), a bounded file (Note [A timeline
// of bounded length]), a bounded chart, and `oomguard report` over ranks
// whose files are damaged or missing.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "oomguard/guard/report/html_report.hpp"
#include "oomguard/guard/report/rank_reports.hpp"
#include "oomguard/guard/report/recorder.hpp"
#include "oomguard/guard/report/report.hpp"
#include "oomguard/guard/report/svg_chart.hpp"
#include "oomguard/guard/report/timeline.hpp"
#include "oomguard/guard/report/timeline_thinning.hpp"
#include "oomguard/guard/run_state.hpp"
#include "oomguard/ledger.hpp"
#include "oomguard/tags.hpp"

#include "report_files.hpp"

namespace fs = std::filesystem;
using namespace oomguard;
using namespace oomguard::guard::report;
using oomguard::testing::slurp;
using oomguard::testing::TempDir;

namespace {


TimelineRow row_at(std::int64_t step, Phase phase, double time_s, std::int64_t allocated) {
  TimelineRow row;
  row.step = step;
  row.phase = phase;
  row.time_s = time_s;
  row.by_category[index(Category::activations)] = allocated;
  row.allocated = allocated;
  row.reserved = allocated * 2;
  return row;
}

// RLIMIT_FSIZE stands in for a full disk: past the limit write(2) takes what
// fits and refuses the rest, the short write a full disk gives.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    getrlimit(RLIMIT_FSIZE, &saved_);
    old_handler_ = std::signal(SIGXFSZ, SIG_IGN);
    rlimit limit = saved_;
    limit.rlim_cur = bytes;
    setrlimit(RLIMIT_FSIZE, &limit);
  }
  ~FileSizeLimit() {
    setrlimit(RLIMIT_FSIZE, &saved_);
    std::signal(SIGXFSZ, old_handler_);
  }

 private:
  rlimit saved_{};
  void (*old_handler_)(int) = nullptr;
};

}  // namespace

TEST(TimelineFaults, ADiskThatFillsMidRowLeavesOnlyWholeRows) {
  TempDir dir;
  TimelineWriter writer;
  ASSERT_TRUE(writer.open(dir.path.string()));
  ASSERT_TRUE(writer.append(row_at(0, Phase::forward, 0.1, 1000)));
  const auto size = fs::file_size(dir.path / "timeline.csv");
  {
    // Room for one row and part of the next: the second is torn by the kernel.
    FileSizeLimit limit(size + 60);
    for (int i = 1; i <= 4; ++i) writer.append(row_at(i, Phase::backward, 0.1 * i, 1000 + i));
  }
  EXPECT_GE(writer.rows_refused(), 3u);
  // The disk has room again: the next row starts a line of its own.
  ASSERT_TRUE(writer.append(row_at(5, Phase::optimizer, 0.6, 2000)));
  const std::string text = slurp(dir.path / "timeline.csv");
  EXPECT_EQ(text.back(), '\n');
  const Timeline back = parse_timeline(text, "t");
  EXPECT_EQ(back.skipped_lines, 0u) << back.first_skipped;
  EXPECT_EQ(back.rows.size(), writer.rows_written());
  EXPECT_EQ(back.rows.back().allocated, 2000);
}

TEST(TimelineFaults, ATornTailIsCutAtOpenAndTheNextRowIsWhole) {
  TempDir dir;
  const fs::path path = dir.path / "timeline.csv";
  char buffer[kMaxTimelineRowBytes];
  const std::size_t n = format_timeline_row(row_at(1, Phase::forward, 0.5, 4096), buffer, sizeof(buffer));
  // A process killed in the middle of its row (or a truncation that failed).
  { std::ofstream(path, std::ios::binary) << timeline_header() << std::string(buffer, n) << "2,backward,0.7,12"; }
  const int fd = open_timeline_file(path.string());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(append_timeline_row(fd, buffer, n));
  ::close(fd);
  const Timeline back = read_timeline(path.string());
  EXPECT_EQ(back.skipped_lines, 0u) << back.first_skipped;
  ASSERT_EQ(back.rows.size(), 2u);
  EXPECT_EQ(back.rows[1].allocated, 4096);
  // A file that never had a newline near its end (not this writer's) is
  // ended, not cut: one line is lost to the reader, nothing else.
  { std::ofstream(path, std::ios::binary) << timeline_header() << std::string(70000, '7'); }
  const int again = open_timeline_file(path.string());
  ASSERT_GE(again, 0);
  ASSERT_TRUE(append_timeline_row(again, buffer, n));
  ::close(again);
  const Timeline kept = read_timeline(path.string());
  EXPECT_EQ(kept.rows.size(), 1u);
  EXPECT_EQ(kept.skipped_lines, 1u);
  EXPECT_EQ(fs::file_size(path), timeline_header().size() + 70000 + 1 + n);
}

TEST(TimelineFaults, AReaderSkipsAJoinedLineAndCountsIt) {
  char a[kMaxTimelineRowBytes], b[kMaxTimelineRowBytes];
  const std::size_t na = format_timeline_row(row_at(1, Phase::forward, 0.5, 10), a, sizeof(a));
  const std::size_t nb = format_timeline_row(row_at(2, Phase::forward, 0.6, 20), b, sizeof(b));
  // The former writer's failure: part of a row, then the next row on its line.
  const std::string text = timeline_header() + std::string(a, na) + std::string(a, 20) + std::string(b, nb) +
                           std::string(b, nb);
  const Timeline t = parse_timeline(text, "t");
  EXPECT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.skipped_lines, 1u);
  EXPECT_NE(t.first_skipped.find("line 3: "), std::string::npos) << t.first_skipped;
  EXPECT_NE(t.first_skipped.find("expected 16"), std::string::npos) << t.first_skipped;
}

TEST(TimelineThinning, WindowsDoubleEveryLevel) {
  using W = TimelineThinning::Window;
  auto eq = [](W a, W b) { return a.first == b.first && a.stride == b.stride; };
  EXPECT_TRUE(eq(TimelineThinning::window_of(0), W{0, 1}));
  EXPECT_TRUE(eq(TimelineThinning::window_of(kDenseSteps - 1), W{kDenseSteps - 1, 1}));
  EXPECT_TRUE(eq(TimelineThinning::window_of(kDenseSteps), W{kDenseSteps, 1}));
  const std::int64_t level1 = kDenseSteps + kWindowsPerLevel;  // stride 2 from here
  EXPECT_TRUE(eq(TimelineThinning::window_of(level1 - 1), W{level1 - 1, 1}));
  EXPECT_TRUE(eq(TimelineThinning::window_of(level1), W{level1, 2}));
  EXPECT_TRUE(eq(TimelineThinning::window_of(level1 + 3), W{level1 + 2, 2}));
  const std::int64_t level2 = level1 + 2 * kWindowsPerLevel;
  EXPECT_TRUE(eq(TimelineThinning::window_of(level2 + 5), W{level2 + 4, 4}));
  // Windows tile the steps: each starts where the one before ended.
  for (std::int64_t step = kDenseSteps; step < 200000;) {
    const W w = TimelineThinning::window_of(step);
    ASSERT_EQ(w.first, step);
    step += w.stride;
  }
}

// A million steps of five phase rows: the file keeps the run's shape and
// peaks in rows that grow with the logarithm of the length.
TEST(TimelineThinning, AMillionStepsKeepEveryPeakInFewRows) {
  TimelineThinning thinning;
  constexpr std::int64_t kSteps = 1'000'000;
  constexpr std::int64_t kSpikeStep = 700'123;
  std::vector<TimelineRow> written;
  auto take = [&](const TimelineThinning::Rows& rows) {
    for (std::size_t i = 0; i < rows.count; ++i) written.push_back(rows.rows[i]);
  };
  double t = 0;
  const Phase phases[] = {Phase::forward, Phase::backward, Phase::optimizer, Phase::idle, Phase::eval};
  std::map<std::int64_t, std::int64_t> eval_high_by_window;
  for (std::int64_t step = 0; step < kSteps; ++step) {
    for (Phase phase : phases) {
      if (phase == Phase::eval && step % 5000 != 0) continue;
      std::int64_t allocated = 1000 + static_cast<std::int64_t>(index(phase)) * 100 + step % 7;
      if (step == kSpikeStep && phase == Phase::backward) allocated = 9000;
      const std::size_t before = written.size();
      take(thinning.admit(row_at(step, phase, t += 0.001, allocated), false));
      if (step == kSpikeStep && phase == Phase::backward) {
        // Out at once: a SIGKILL after this row still leaves the peak.
        ASSERT_GT(written.size(), before);
        EXPECT_EQ(written.back().allocated, 9000);
      }
    }
  }
  take(thinning.flush());
  EXPECT_LT(written.size(), 27000u);  // 5,000,000 rows before
  EXPECT_GT(written.size(), 5u * kDenseSteps);
  // Every row of the first kDenseSteps steps, in order.
  std::int64_t dense = 0;
  for (const auto& r : written) dense += r.step < kDenseSteps;
  EXPECT_EQ(dense, 4 * kDenseSteps + kDenseSteps / 5000 + 1);
  // Time order throughout, and every evaluation's peak kept.
  for (std::size_t i = 1; i < written.size(); ++i) ASSERT_LE(written[i - 1].time_s, written[i].time_s) << i;
  std::int64_t evals = 0;
  for (const auto& r : written) evals += r.phase == Phase::eval;
  EXPECT_EQ(evals, kSteps / 5000);
  std::int64_t highest = 0;
  for (const auto& r : written) highest = std::max(highest, r.allocated);
  EXPECT_EQ(highest, 9000);
}

TEST(TimelineThinning, TheRecorderWritesThroughItAndAReportFlushesIt) {
  TempDir dir;
  Ledger::global().reset();
  guard::RunState::global().reset();
  Recorder::global().reset();
  ASSERT_TRUE(Recorder::global().set_dir(dir.path.string()));
  Ledger::global().record(0x1000, 512, kCpuDevice, 0, Tag{Category::weights, Phase::idle, 0});
  for (std::int64_t step = 0; step < kDenseSteps + 300; ++step) {
    set_process_step(step);
    Recorder::global().row();
    Recorder::global().row();
  }
  // Two rows a step while dense, one (the phase's highest) a step after; the
  // window in flight is held until the report.
  EXPECT_EQ(Recorder::global().rows_written(), 2u * kDenseSteps + 299);
  const ReportResult r = write_report("", "exit");
  EXPECT_TRUE(r.errors.empty()) << r.errors.front();
  EXPECT_EQ(read_timeline((dir.path / "timeline.csv").string()).rows.size(), 2u * kDenseSteps + 301);
  set_process_step(0);
  Recorder::global().reset();
  Ledger::global().reset();
}

TEST(TimelineChart, AHalfMillionRowTimelineDrawsInUnderAMegabyteAndKeepsItsPeak) {
  std::vector<TimelineRow> rows;
  for (std::int64_t i = 0; i < 500'000; ++i) rows.push_back(row_at(i / 5, Phase::forward, static_cast<double>(i) * 0.001, 1000 + i % 13));
  rows[345'678].allocated = 777777;
  const auto kept = keep_peaks(rows, kMaxChartPoints);
  EXPECT_LE(kept.size(), kMaxChartPoints);
  bool peak = false;
  for (const auto& r : kept) peak |= r.allocated == 777777;
  EXPECT_TRUE(peak);
  RankReport rank;
  rank.label = "rank0";
  rank.timeline.rows = std::move(rows);
  const std::string html = render_html({rank}, "t");
  EXPECT_LT(html.size(), 1u << 20);
  EXPECT_NE(html.find("<svg class=\"timeline\""), std::string::npos);
}

// Four ranks as a crashed run leaves them: one whole, one whose summary.json
// a full disk cut short, one killed by SIGKILL (a timeline only), one that
// died before its first row. The page shows the three that have something
// and says why for each file it could not read.
TEST(RankReportsUnderFaults, ReadableRanksRenderAndTheRestAreListedWithWhy) {
  TempDir run;
  Ledger::global().reset();
  guard::RunState::global().reset();
  for (const char* rank : {"rank0", "rank1"}) {
    Recorder::global().reset();
    ASSERT_TRUE(Recorder::global().set_dir((run.path / rank).string()));
    Ledger::global().record(0x1000, 4096, kCpuDevice, 0, Tag{Category::weights, Phase::idle, 0});
    Recorder::global().row();
    ASSERT_TRUE(write_report("", "exit").errors.empty());
    Ledger::global().reset();
  }
  Recorder::global().reset();
  const std::string whole = slurp(run.path / "rank1" / "summary.json");
  { std::ofstream(run.path / "rank1" / "summary.json", std::ios::trunc) << whole.substr(0, whole.size() / 2); }
  fs::create_directories(run.path / "rank2");
  {
    std::ofstream out(run.path / "rank2" / "timeline.csv");
    out << timeline_header();
    char buffer[kMaxTimelineRowBytes];
    for (int i = 0; i < 4; ++i) out << std::string(buffer, format_timeline_row(row_at(i, Phase::forward, i, 1000 * (i + 1)), buffer, sizeof(buffer)));
    out << "4,backward,4.0,1";  // the row the kill cut
  }
  fs::create_directories(run.path / "rank3");

  const auto ranks = load_rank_reports(run.path.string());
  ASSERT_EQ(ranks.size(), 4u);
  EXPECT_TRUE(ranks[0].problems.empty());
  EXPECT_FALSE(ranks[0].summary.is_null());
  ASSERT_FALSE(ranks[1].problems.empty());
  EXPECT_NE(ranks[1].problems[0].find("is not valid JSON"), std::string::npos) << ranks[1].problems[0];
  EXPECT_EQ(ranks[1].timeline.rows.size(), 2u);  // its timeline is still read
  EXPECT_TRUE(ranks[2].summary.is_null());
  EXPECT_EQ(ranks[2].timeline.rows.size(), 4u);
  EXPECT_EQ(ranks[2].timeline.skipped_lines, 1u);
  EXPECT_EQ(ranks[3].timeline.rows.size(), 0u);

  const std::string cmd = std::string(OOMGUARD_CLI_PATH) + " report " + run.path.string() + " >/dev/null 2>" +
                          (run.path / "err.txt").string();
  EXPECT_EQ(WEXITSTATUS(std::system(cmd.c_str())), 0);
  const std::string err = slurp(run.path / "err.txt");
  EXPECT_NE(err.find("rank1: "), std::string::npos) << err;
  EXPECT_NE(err.find("rank2: no summary.json"), std::string::npos) << err;
  EXPECT_NE(err.find("rank3: no summary.json"), std::string::npos) << err;
  EXPECT_EQ(err.find("rank0: "), std::string::npos) << err;
  const std::string html = slurp(run.path / "report.html");
  for (const char* id : {"id=\"rank0\"", "id=\"rank1\"", "id=\"rank2\"", "id=\"rank3\""})
    EXPECT_NE(html.find(id), std::string::npos) << id;
  EXPECT_NE(html.find("at least 3.91 KiB"), std::string::npos);  // rank2's highest row, 4000 B
  EXPECT_NE(html.find("Highest sampled point (step 3, forward)"), std::string::npos);
  EXPECT_NE(html.find("1 line is not a row and skipped"), std::string::npos);

  // Nothing readable anywhere: the page lists why, and the command fails.
  fs::remove_all(run.path / "rank0");
  fs::remove_all(run.path / "rank1");
  fs::remove_all(run.path / "rank2");
  EXPECT_EQ(WEXITSTATUS(std::system(cmd.c_str())), 1);
  EXPECT_NE(slurp(run.path / "err.txt").find("no rank under"), std::string::npos);
}
