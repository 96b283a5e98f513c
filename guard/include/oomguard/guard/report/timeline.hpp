// timeline.csv: the columns, one row's text, and reading a file back.
//
// Note [A timeline that survives SIGKILL]
// A row is formatted into a stack buffer and handed to the kernel with one
// write(2) on an O_APPEND descriptor, so the file holds only whole rows at
// any moment the process can die (the host's OOM killer included): nothing
// waits in a user-space buffer. Rows are written at step boundaries, phase
// changes and out-of-memory only, so the cost is bounded by the number of
// those events, never by the number of allocations.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "oomguard/category.hpp"
#include "oomguard/ledger.hpp"

namespace oomguard::guard::report {

struct TimelineRow {
  std::int64_t step = 0;
  Phase phase = Phase::idle;
  double time_s = 0;  // since the writer opened the file
  CategoryBytes by_category{};
  std::int64_t allocated = 0;
  std::int64_t reserved = 0;
  std::uint64_t predicted_peak = 0;  // 0: no prediction (empty cell)
  std::uint64_t budget = 0;          // 0: no budget (empty cell)
};

// step,phase,time_s,<the categories>,allocated,reserved,predicted_peak,budget
std::string timeline_header();

inline constexpr std::size_t kMaxTimelineRowBytes = 512;
// Format `row` (with its newline) into `buffer`; returns the length. No allocation.
std::size_t format_timeline_row(const TimelineRow& row, char* buffer, std::size_t size) noexcept;

// Parse a timeline.csv's text. Throws oomguard::error naming the line when
// the header or a row is not the format above.
std::vector<TimelineRow> parse_timeline(const std::string& text, const std::string& what);
std::vector<TimelineRow> read_timeline(const std::string& path);

// The append-only file of one process.
// Open `path` for appending rows (Note [Report files are never followed]),
// writing the header into a new or empty file; -1 when it cannot.
int open_timeline_file(const std::string& path) noexcept;

class TimelineWriter {
 public:
  // Open (creating, with the header once) `dir`/timeline.csv. False if it cannot.
  bool open(const std::string& dir) noexcept;
  bool is_open() const noexcept { return fd_ >= 0; }
  void close() noexcept;
  // One write(2). Rows of a process that lost the file are dropped.
  bool append(const TimelineRow& row) noexcept;
  std::uint64_t rows_written() const noexcept { return rows_; }

 private:
  int fd_ = -1;
  std::uint64_t rows_ = 0;
};

}  // namespace oomguard::guard::report
