#include "timeline.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>

#include "oomguard/guard/report/timeline.hpp"
#include "oomguard/ledger.hpp"
#include "segment_accounting.hpp"

namespace oomguard::preload {
namespace {

std::atomic<int> g_fd{-1};
std::atomic<std::int64_t> g_start_ns{0};
std::atomic<std::int64_t> g_last_row_ns{0};
std::atomic<std::int64_t> g_peak_written{-1};
std::atomic<std::uint64_t> g_rows{0};
std::atomic<std::uint64_t> g_dropped{0};

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Claim the right to write a rate-limited row: one thread per interval.
bool take_interval_slot(std::int64_t now) {
  std::int64_t last = g_last_row_ns.load(std::memory_order_relaxed);
  const std::int64_t interval = row_interval_ns(now - g_start_ns.load(std::memory_order_relaxed));
  while (now - last >= interval) {
    if (g_last_row_ns.compare_exchange_weak(last, now, std::memory_order_relaxed)) return true;
  }
  return false;
}

bool raises_peak(std::int64_t reserved) {
  std::int64_t seen = g_peak_written.load(std::memory_order_relaxed);
  while (reserved > seen) {
    if (g_peak_written.compare_exchange_weak(seen, reserved, std::memory_order_relaxed)) return true;
  }
  return false;
}

}  // namespace

std::string timeline_header() { return guard::report::timeline_header(); }

bool open_timeline(const std::string& dir) {
  const std::string path = dir + "/timeline.csv";
  const int fd = guard::report::open_timeline_file(path);
  if (fd < 0) return false;
  g_start_ns.store(now_ns(), std::memory_order_relaxed);
  g_fd.store(fd, std::memory_order_release);
  return true;
}

void write_timeline_row(int device, bool force) noexcept {
  const int fd = g_fd.load(std::memory_order_acquire);
  if (fd < 0) return;
  CategoryBytes by_category{};
  std::int64_t allocated = 0;
  std::int64_t reserved = 0;
  const Ledger& ledger = Ledger::segments();
  for (std::uint64_t mask = seen_devices(); mask != 0; mask &= mask - 1) {
    const DeviceStats s = ledger.device_stats(__builtin_ctzll(mask));
    for (std::size_t c = 0; c < kNumCategories; ++c) by_category[c] += s.current[c];
    allocated += s.allocated;
    reserved += s.reserved;
  }
  const std::int64_t now = now_ns();
  const bool peak = raises_peak(reserved);
  if (!force && !peak && !take_interval_slot(now)) {
    g_dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  // The columns and their text are the guard's (one implementation).
  guard::report::TimelineRow row;
  row.step = process_step();
  row.phase = process_phase();
  row.time_s = static_cast<double>(now - g_start_ns.load(std::memory_order_relaxed)) * 1e-9;
  row.by_category = by_category;
  row.allocated = allocated;
  row.reserved = reserved;
  row.budget = budget_bytes(device);
  char text[guard::report::kMaxTimelineRowBytes];
  const std::size_t n = guard::report::format_timeline_row(row, text, sizeof(text));
  if (guard::report::append_timeline_row(fd, text, n)) g_rows.fetch_add(1, std::memory_order_relaxed);
  else g_dropped.fetch_add(1, std::memory_order_relaxed);
}

void forget_timeline_after_fork() noexcept {
  const int fd = g_fd.exchange(-1, std::memory_order_acq_rel);
  if (fd >= 0) close(fd);
  g_last_row_ns.store(0, std::memory_order_relaxed);
  g_peak_written.store(-1, std::memory_order_relaxed);
  g_rows.store(0, std::memory_order_relaxed);
  g_dropped.store(0, std::memory_order_relaxed);
}

std::uint64_t timeline_rows_written() noexcept { return g_rows.load(std::memory_order_relaxed); }
std::uint64_t timeline_rows_dropped() noexcept { return g_dropped.load(std::memory_order_relaxed); }

}  // namespace oomguard::preload
