// What the reports need that only exists while the process runs: the
// timeline file, the state at the highest sampled point, the state at the
// out-of-memory. One per process.
//
// The breakdown at the peak is the Ledger's (Note [The breakdown at the
// peak] in ledger.hpp): exact, copied when the peak is reached. What the
// Ledger cannot copy on the allocation path is the list of live allocations
// at that moment, so the recorder keeps it from a sample: where the timeline
// gets a row (step boundaries, phase changes, out-of-memory) it keeps the
// row with the most allocated bytes and the largest live allocations then.
// summary.json takes `largest_allocations` and `sampled_allocated_bytes`
// (how close that sample came to the peak) from here, nothing else.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "oomguard/error.hpp"
#include "oomguard/guard/report/timeline.hpp"
#include "oomguard/guard/report/timeline_thinning.hpp"
#include "oomguard/ledger.hpp"

namespace oomguard::guard::report {

inline constexpr std::size_t kLargestAllocations = 20;

struct StateCapture {
  TimelineRow row;
  std::vector<AllocationRecord> largest;  // by size, largest first
};

struct OomCapture {
  OomContext context;
  StateCapture state;
  std::uint64_t count = 0;  // out-of-memory errors so far (this one included)
};

class Recorder {
 public:
  static Recorder& global();

  // Create `dir` and open its timeline (re-opening if it changed). False
  // (with the reason in last_error()) if the directory cannot be created.
  bool set_dir(const std::string& dir);
  std::string dir() const;
  std::string last_error() const;

  // The totals now, across the devices that have seen traffic.
  TimelineRow sample() const;
  // A row for now, to the timeline through TimelineThinning (Note [A
  // timeline of bounded length]); kept if it is the highest so far. `final`:
  // the row a report is written with, after the rows held back. Returns it.
  TimelineRow row(bool final = false);
  // An allocation was refused: row, and the state kept for the report.
  void note_oom(const OomContext& context);

  std::optional<StateCapture> peak() const;
  std::optional<OomCapture> oom() const;
  std::uint64_t rows_written() const;
  std::uint64_t rows_refused() const;  // by a full disk
  double seconds_since_start() const;
  // A steady-clock stamp (the Ledger's time_ns) in seconds since the start.
  double seconds_at(std::int64_t steady_ns) const;
  void reset();  // tests
  // In the child of fork(): drop the parent's timeline descriptor and
  // folder without writing (Note [A forked child writes nothing of its
  // parent's]). Takes no lock: a parent thread may have held it at the fork.
  void forget_after_fork() noexcept;

 private:
  StateCapture capture(const TimelineRow& row) const;
  void write(const TimelineThinning::Rows& rows);

  mutable std::mutex mutex_;  // rows, OOM and reports only; never per allocation
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::string dir_;
  std::string last_error_;
  TimelineWriter timeline_;
  TimelineThinning thinning_;
  std::optional<StateCapture> peak_;
  std::optional<OomCapture> oom_;
};

}  // namespace oomguard::guard::report
