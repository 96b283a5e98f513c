// timeline.csv: one row per segment change, appended as it happens.
//
// Note [A timeline that survives SIGKILL] (and the guard's timeline.hpp,
// whose columns and row text this writer uses)
// Each row is formatted on the stack and handed to the kernel with a single
// write(2) on an O_APPEND descriptor, so the file holds only whole rows at
// any moment a process can die: nothing is buffered in user space. Rows are
// totals over the devices this process has allocated on (the summary has
// them per device); `budget` is the budget of the device that changed and
// `predicted_peak` stays empty (the predictor is another layer's).
// Bounded cost: a change is written if it raises the reserved total above
// every earlier row, if it is an out-of-memory or the last row, or if at
// least kMinRowIntervalNs passed since the previous row; the rest are
// dropped, so a burst of stream-ordered allocations costs at most one
// write(2) per millisecond plus one per new peak.
// Bounded length (the guard's Note [A timeline of bounded length]): the
// interval grows with the run, max(kMinRowIntervalNs, elapsed /
// kRowsPerElapsed), so the first seconds keep a row per millisecond and
// later the file grows by about kRowsPerElapsed rows each time the run's
// age multiplies by e: a day of steady churn is about 45,000 rows, where a
// fixed millisecond made it 86 million.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace oomguard::preload {

inline constexpr std::int64_t kMinRowIntervalNs = 1'000'000;
inline constexpr std::int64_t kRowsPerElapsed = 4000;

// The rate limit at `elapsed_ns` since the timeline opened.
constexpr std::int64_t row_interval_ns(std::int64_t elapsed_ns) {
  return elapsed_ns / kRowsPerElapsed > kMinRowIntervalNs ? elapsed_ns / kRowsPerElapsed : kMinRowIntervalNs;
}

// The header: step,phase,time_s,<categories>,allocated,reserved,predicted_peak,budget
std::string timeline_header();

// Open (creating, with the header) `dir`/timeline.csv. False if it cannot.
bool open_timeline(const std::string& dir);
// Append a row for a change on `device` (subject to the rate limit unless forced).
void write_timeline_row(int device, bool force) noexcept;
// After fork: the descriptor is the parent's; let go of it without writing.
void forget_timeline_after_fork() noexcept;
std::uint64_t timeline_rows_written() noexcept;
std::uint64_t timeline_rows_dropped() noexcept;

}  // namespace oomguard::preload
