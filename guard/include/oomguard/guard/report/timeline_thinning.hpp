// Which timeline rows of a long run reach the file.
//
// Note [A timeline of bounded length]
// A row per phase change is about 5 rows and 525 bytes per step: 32,000
// tiny steps made a 17 MB timeline.csv, and a 2M-row timeline a 451 MB
// report.html (15 s, 1.6 GB of memory to render). What the reports read
// from the timeline is the shape of the run and its peaks, so a long run
// keeps those and lets the detail of its middle go:
// - every row of the first kDenseSteps steps (where the guard predicts and
//   acts, and where a short run ends);
// - after that, the steps are cut into windows of `stride` steps, and a
//   window writes, at its end, the row with the most allocated bytes of
//   each phase it saw (its forward, backward, optimizer, evaluation and
//   save peaks), in time order. The stride starts at 1 and doubles every
//   kWindowsPerLevel windows, so the file grows with the logarithm of the
//   run's length: about kWindowsPerLevel * 5 rows per doubling;
// - a row that raises the run's highest allocated bytes, an out-of-memory
//   row and the row a report is written with go to the file at once (after
//   the rows the window holds, which are older), so a SIGKILL leaves a
//   timeline that still holds the run's peak. What it loses is the window
//   in flight: at most one row per phase.
// A step that goes backwards (a second Trainer in the same process) is
// kept in the window in flight. Counted (TimelineThinning.AMillionSteps...
// in tests/reports/timeline_faults_test.cpp): 1,000,000 steps of four phase
// rows and an evaluation every 5,000 steps leave 26,124 rows (about 3 MB at
// the 120 bytes a row of a real run takes); they were 4,000,200 rows.
// Dropped: thinning by time (a row per second). Steps of a fine-tune vary
// from milliseconds to minutes; a per-second rule keeps every row of a slow
// run and still grows without bound. Also dropped: rewriting old rows into
// coarser ones. It needs the file rewritten in place, which a SIGKILL in the
// middle of it would tear.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "oomguard/category.hpp"
#include "oomguard/guard/report/timeline.hpp"

namespace oomguard::guard::report {

inline constexpr std::int64_t kDenseSteps = 1000;
inline constexpr std::int64_t kWindowsPerLevel = 500;

class TimelineThinning {
 public:
  // The rows to write now, in time order: at most one per phase of the
  // window that just ended, and the row offered if it goes out at once.
  struct Rows {
    std::array<TimelineRow, kNumPhases + 1> rows{};
    std::size_t count = 0;
    void push(const TimelineRow& row) noexcept { rows[count++] = row; }
  };

  TimelineThinning() noexcept;

  // Offer a row. `at_once`: an out-of-memory or report row, written now.
  Rows admit(const TimelineRow& row, bool at_once) noexcept;
  // The held rows of the window in flight (a report is being written).
  Rows flush() noexcept;

  // The window that holds `step` (Note [A timeline of bounded length]):
  // its first step and its length. Steps before kDenseSteps are windows of
  // one step that hold nothing back.
  struct Window {
    std::int64_t first = 0;
    std::int64_t stride = 1;
  };
  static Window window_of(std::int64_t step) noexcept;

 private:
  void hold(const TimelineRow& row) noexcept;

  Window window_{};
  bool in_window_ = false;
  std::int64_t highest_written_ = -1;
  std::array<std::optional<TimelineRow>, kNumPhases> held_{};
  // The most allocated bytes written or held per phase in this window.
  std::array<std::int64_t, kNumPhases> window_high_{};
};

}  // namespace oomguard::guard::report
