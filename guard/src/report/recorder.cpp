#include "oomguard/guard/report/recorder.hpp"

#include <algorithm>
#include <utility>

#include "oomguard/guard/report/report_file.hpp"
#include "oomguard/guard/run_state.hpp"
#include "oomguard/tags.hpp"

namespace oomguard::guard::report {

Recorder& Recorder::global() {
  static Recorder* recorder = new Recorder();  // used at exit and on OOM: never destroyed
  return *recorder;
}

bool Recorder::set_dir(const std::string& dir) {
  std::lock_guard lock(mutex_);
  if (dir == dir_ && timeline_.is_open()) return true;
  // The same folder check as every report writer (Note [Report files are never followed]).
  if (std::string refused = prepare_report_dir(dir); !refused.empty()) {
    last_error_ = std::move(refused);
    return false;
  }
  if (!timeline_.open(dir)) {
    last_error_ = "cannot open \"" + dir + "/timeline.csv\" for appending";
    return false;
  }
  dir_ = dir;
  return true;
}

std::string Recorder::dir() const {
  std::lock_guard lock(mutex_);
  return dir_;
}

std::string Recorder::last_error() const {
  std::lock_guard lock(mutex_);
  return last_error_;
}

double Recorder::seconds_since_start() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

double Recorder::seconds_at(std::int64_t steady_ns) const {
  const std::chrono::steady_clock::time_point at{std::chrono::nanoseconds(steady_ns)};
  return std::chrono::duration<double>(at - start_).count();
}

TimelineRow Recorder::sample() const {
  TimelineRow row;
  row.step = process_step();
  row.phase = process_phase();
  row.time_s = seconds_since_start();
  for (const DeviceStats& s : Ledger::global().stats()) {
    for (std::size_t c = 0; c < kNumCategories; ++c) row.by_category[c] += s.current[c];
    row.allocated += s.allocated;
    row.reserved += s.reserved;
  }
  const RunState& run = RunState::global();
  row.budget = run.budget();
  if (const auto p = run.prediction()) row.predicted_peak = p->peak_allocated_bytes;
  return row;
}

StateCapture Recorder::capture(const TimelineRow& row) const {
  StateCapture out{row, Ledger::global().live_allocations()};
  const std::size_t keep = std::min(kLargestAllocations, out.largest.size());
  std::partial_sort(out.largest.begin(), out.largest.begin() + static_cast<std::ptrdiff_t>(keep), out.largest.end(),
                    [](const AllocationRecord& a, const AllocationRecord& b) { return a.size > b.size; });
  out.largest.resize(keep);
  return out;
}

void Recorder::write(const TimelineThinning::Rows& rows) {
  for (std::size_t i = 0; i < rows.count; ++i) timeline_.append(rows.rows[i]);
}

TimelineRow Recorder::row(bool final) {
  const TimelineRow now = sample();
  std::lock_guard lock(mutex_);
  if (final) write(thinning_.flush());
  write(thinning_.admit(now, final));
  if (!peak_ || now.allocated > peak_->row.allocated) peak_ = capture(now);
  return now;
}

void Recorder::note_oom(const OomContext& context) {
  const TimelineRow now = sample();
  std::lock_guard lock(mutex_);
  write(thinning_.flush());  // the rows held back come before it
  write(thinning_.admit(now, /*at_once=*/true));
  const std::uint64_t count = oom_ ? oom_->count + 1 : 1;
  oom_ = OomCapture{context, capture(now), count};
  if (!peak_ || now.allocated > peak_->row.allocated) peak_ = oom_->state;
}

std::optional<StateCapture> Recorder::peak() const {
  std::lock_guard lock(mutex_);
  return peak_;
}

std::optional<OomCapture> Recorder::oom() const {
  std::lock_guard lock(mutex_);
  return oom_;
}

std::uint64_t Recorder::rows_written() const {
  std::lock_guard lock(mutex_);
  return timeline_.rows_written();
}

std::uint64_t Recorder::rows_refused() const {
  std::lock_guard lock(mutex_);
  return timeline_.rows_refused();
}

void Recorder::forget_after_fork() noexcept {
  timeline_.close();
  dir_.clear();
}

void Recorder::reset() {
  std::lock_guard lock(mutex_);
  timeline_.close();
  dir_.clear();
  last_error_.clear();
  thinning_ = TimelineThinning();
  peak_.reset();
  oom_.reset();
  start_ = std::chrono::steady_clock::now();
}

}  // namespace oomguard::guard::report
