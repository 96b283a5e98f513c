#include "oomguard/guard/report/timeline_thinning.hpp"

#include <algorithm>

namespace oomguard::guard::report {
namespace {

constexpr int kMaxLevel = 40;  // a stride of 2^40 steps: past any run

}  // namespace

TimelineThinning::TimelineThinning() noexcept { window_high_.fill(-1); }

TimelineThinning::Window TimelineThinning::window_of(std::int64_t step) noexcept {
  if (step < kDenseSteps) return {step, 1};
  const std::int64_t offset = step - kDenseSteps;
  // Level L holds kWindowsPerLevel windows of 2^L steps, from offset
  // kWindowsPerLevel * (2^L - 1).
  int level = 0;
  while (level < kMaxLevel && offset >= kWindowsPerLevel * ((std::int64_t{2} << level) - 1)) ++level;
  const std::int64_t stride = std::int64_t{1} << level;
  const std::int64_t level_start = kWindowsPerLevel * (stride - 1);
  return {kDenseSteps + level_start + (offset - level_start) / stride * stride, stride};
}

TimelineThinning::Rows TimelineThinning::admit(const TimelineRow& row, bool at_once) noexcept {
  Rows out;
  const bool dense = !in_window_ && row.step < kDenseSteps;
  if (!dense && (!in_window_ || row.step >= window_.first + window_.stride)) {
    out = flush();
    window_ = window_of(std::max(row.step, kDenseSteps));
    in_window_ = true;
  }
  if (dense || at_once || row.allocated > highest_written_) {
    highest_written_ = std::max(highest_written_, row.allocated);
    if (!dense) {
      // The rows held are earlier: they go first, so the file stays in time order.
      const Rows held = flush();
      for (std::size_t i = 0; i < held.count; ++i) out.push(held.rows[i]);
      window_high_[index(row.phase)] = row.allocated;
    }
    out.push(row);
    return out;
  }
  hold(row);
  return out;
}

void TimelineThinning::hold(const TimelineRow& row) noexcept {
  const std::size_t p = index(row.phase);
  if (row.allocated <= window_high_[p]) return;
  window_high_[p] = row.allocated;
  held_[p] = row;
}

TimelineThinning::Rows TimelineThinning::flush() noexcept {
  Rows out;
  for (auto& held : held_) {
    if (held) out.push(*held);
    held.reset();
  }
  window_high_.fill(-1);
  // At most one row per phase: an insertion sort (std::sort over the
  // array's used part trips GCC 12's -Warray-bounds).
  for (std::size_t i = 1; i < out.count; ++i)
    for (std::size_t j = i; j > 0 && out.rows[j].time_s < out.rows[j - 1].time_s; --j) std::swap(out.rows[j], out.rows[j - 1]);
  return out;
}

}  // namespace oomguard::guard::report
