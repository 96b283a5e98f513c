// timeline.csv: the columns, one row's text, and reading a file back.
//
// Note [A timeline that survives SIGKILL]
// A row is formatted into a stack buffer and handed to the kernel with one
// write(2) on an O_APPEND descriptor, so the file holds only whole rows at
// any moment the process can die (the host's OOM killer included): nothing
// waits in a user-space buffer. Rows are written at step boundaries, phase
// changes and out-of-memory only, so the cost is bounded by the number of
// those events, never by the number of allocations; on long runs
// TimelineThinning (timeline_thinning.hpp) bounds the events too.
//
// Note [A row is whole or absent]
// One write(2) is not atomic against a full disk or RLIMIT_FSIZE: the kernel
// may take part of a row and refuse the rest. Left there, the torn row
// joined the next one into a 21-column line and `oomguard report` refused
// the whole folder. Three layers keep that from mattering:
// - append_timeline_row() truncates a short write back off the file, so the
//   next row starts on a line of its own (a row of another thread that
//   raced into the same full disk may be cut too; it was not whole either);
// - open_timeline_file() cuts a torn tail (a process killed mid-row, or a
//   truncation that itself failed) back to the last newline before it
//   appends, or ends it with a newline when no newline is near;
// - parse_timeline() skips a line that is not a row and counts it, so one
//   bad line costs one row, never the file.
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

// A timeline read back: its whole rows, and the lines that were not rows.
struct Timeline {
  std::vector<TimelineRow> rows;
  std::size_t skipped_lines = 0;
  std::string first_skipped;  // "line 7: 21 columns, expected 16"; empty when none
};

// Parse a timeline.csv's text. Throws oomguard::error when the first line is
// not the header (this is not a timeline); a later line that is not a row
// is skipped and counted (Note [A row is whole or absent]).
Timeline parse_timeline(const std::string& text, const std::string& what);
Timeline read_timeline(const std::string& path);

// At most `points` rows for a chart: the time span cut into `points` equal
// parts (rows, when all share one time), each drawn as its row with the most
// allocated bytes, carrying the part's most reserved bytes and highest
// prediction. The run's peak row is always kept, so a chart of a 2M-row
// timeline still tops out where the run did (Note [A timeline of bounded
// length] in timeline_thinning.hpp).
std::vector<TimelineRow> keep_peaks(const std::vector<TimelineRow>& rows, std::size_t points);

// One write(2) of a formatted row; a short write is cut back off the file
// (Note [A row is whole or absent]). False when the row is not on disk.
bool append_timeline_row(int fd, const char* text, std::size_t size) noexcept;

// The append-only file of one process.
// Open `path` for appending rows (Note [Report files are never followed]),
// writing the header into a new or empty file and cutting a torn last row
// (Note [A row is whole or absent]); -1 when it cannot.
int open_timeline_file(const std::string& path) noexcept;

class TimelineWriter {
 public:
  // Open (creating, with the header once) `dir`/timeline.csv. False if it cannot.
  bool open(const std::string& dir) noexcept;
  bool is_open() const noexcept { return fd_ >= 0; }
  void close() noexcept;
  // One write(2). Rows of a process that lost the file, or that a full disk
  // refused, are dropped and counted.
  bool append(const TimelineRow& row) noexcept;
  std::uint64_t rows_written() const noexcept { return rows_; }
  std::uint64_t rows_refused() const noexcept { return refused_; }

 private:
  int fd_ = -1;
  std::uint64_t rows_ = 0;
  std::uint64_t refused_ = 0;
};

}  // namespace oomguard::guard::report
