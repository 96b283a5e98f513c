// What the reports need that only exists while the process runs: the
// timeline file, the state at the highest sampled point, the state at the
// out-of-memory. One per process.
//
// Note [The breakdown at the peak]
// The Ledger keeps the exact peak of allocated bytes and each category's own
// peak, but not the breakdown at the moment of the total peak (that would
// cost a copy of nine counters on every new peak, on the allocation path).
// The recorder samples the breakdown where the timeline gets a row (step
// boundaries, phase changes, out-of-memory) and keeps the sample with the
// most allocated bytes, with the largest live allocations at that moment.
// summary.json reports both: the exact peak and the sampled breakdown.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "oomguard/error.hpp"
#include "oomguard/guard/report/timeline.hpp"
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
  // Append a row for now; keep it if it is the highest so far. Returns it.
  TimelineRow row();
  // An allocation was refused: row, and the state kept for the report.
  void note_oom(const OomContext& context);

  std::optional<StateCapture> peak() const;
  std::optional<OomCapture> oom() const;
  std::uint64_t rows_written() const;
  double seconds_since_start() const;
  void reset();  // tests

 private:
  StateCapture capture(const TimelineRow& row) const;

  mutable std::mutex mutex_;  // rows, OOM and reports only; never per allocation
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::string dir_;
  std::string last_error_;
  TimelineWriter timeline_;
  std::optional<StateCapture> peak_;
  std::optional<OomCapture> oom_;
};

}  // namespace oomguard::guard::report
