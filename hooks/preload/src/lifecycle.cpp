#include "lifecycle.hpp"

#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "call_counters.hpp"
#include "oomguard/guard/report/terminating_signals.hpp"
#include "preload_config.hpp"
#include "report_dir.hpp"
#include "segment_accounting.hpp"
#include "summary.hpp"
#include "timeline.hpp"

// Signals: Note [Reports at a terminating signal] in
// guard/include/oomguard/guard/report/terminating_signals.hpp.

namespace oomguard::preload {
namespace {

enum State : int { kIdle = 0, kStarting = 1, kStarted = 2 };
std::atomic<int> g_state{kIdle};
std::string g_report_dir;  // written once while starting, read after kStarted
std::atomic<bool> g_atexit_registered{false};

// Note [Out-of-memory summaries are rate limited]
// A program that retries a refused allocation in a loop (a caching
// allocator freeing and retrying, a script probing the largest batch) made
// every refusal rewrite preload-summary.json and force a timeline row:
// 30,000 budget refusals took 8.1 s against 1.3 s without reports. And a
// SIGTERM among them raced the writers: the signal's summary could be
// renamed over by a refusal's, which then said `out_of_memory`, and the
// process died with that writer's temporary half written. So:
// - the first out-of-memory writes its summary and row at once; later ones
//   write a summary at most once per kOomSummaryIntervalNs and their rows
//   go through the timeline's rate limit (a new peak still writes at once).
//   The counts stay exact: the exit or signal summary has them all;
// - one summary is written at a time (g_summary_writer). An out-of-memory
//   summary that finds another in flight, or a signal's written, is
//   skipped; the signal's and the exit's wait for the one in flight to be
//   renamed into place. After the signal's no out-of-memory summary starts,
//   so none is cut by the death that follows; after the exit's none at all.
// An atomic, not a mutex: a child of fork() resets it without a lock that a
// parent thread may have held at the fork.
constexpr std::int64_t kOomSummaryIntervalNs = 1'000'000'000;
enum SummaryWriter : int { kNoWriter = 0, kWriting = 1, kSignalled = 2, kFinal = 3 };
std::atomic<int> g_summary_writer{kNoWriter};
std::atomic<bool> g_oom_seen{false};
std::atomic<std::int64_t> g_last_oom_summary_ns{0};
std::atomic<std::uint64_t> g_oom_summaries{0};

std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool reports_ready() {
  return g_state.load(std::memory_order_acquire) == kStarted && !g_report_dir.empty();
}

// The signal's or the exit's summary, after the one in flight. A signal's
// blocks the out-of-memory summaries after it (the process is about to die
// by it, and a writer cut by that death would leave its temporary); the
// exit's is the last of all. A program whose own handler survives the
// signal still gets its exit summary.
void write_closing_summary(const char* reason, SummaryWriter after) noexcept {
  for (int seen = g_summary_writer.load(std::memory_order_acquire);;) {
    if (seen == kFinal) return;  // the exit summary is written
    if (seen == kWriting) {
      std::this_thread::yield();
      seen = g_summary_writer.load(std::memory_order_acquire);
      continue;
    }
    if (g_summary_writer.compare_exchange_weak(seen, kWriting, std::memory_order_acq_rel)) break;
  }
  try {
    write_timeline_row(0, /*force=*/true);
    write_summary(g_report_dir, reason);
  } catch (...) {
    // Nothing can be said from here; the timeline has its rows.
  }
  g_summary_writer.store(after, std::memory_order_release);
}

void report_at_signal(const char* reason) noexcept {
  if (reports_ready()) write_closing_summary(reason, kSignalled);
}

void on_exit() {
  if (reports_ready()) write_closing_summary("exit", kFinal);
}

void start() {
  load_config_or_exit();
  g_report_dir = claim_report_dir(requested_report_dir(config()));
  if (!g_report_dir.empty() && !open_timeline(g_report_dir)) {
    std::fprintf(stderr, "oomguard preload: cannot open '%s/timeline.csv' (%s)\n", g_report_dir.c_str(),
                 std::strerror(errno));
  }
  guard::report::report_at_terminating_signals(&report_at_signal);
  if (!g_atexit_registered.exchange(true)) std::atexit(&on_exit);
}

// Note [Fork]
// The child of fork() has one thread, the parent's descriptors and a copy of
// the parent's bookkeeping, but none of its device memory (CUDA does not
// survive fork). So the child drops the timeline descriptor and the watcher
// pipes without touching them, zeroes the segment figures and call counts,
// and starts over at its own first allocation, claiming its own directory
// (Note [One writer per report directory]). The core's Ledger is left as
// copied: resetting it would take locks that a parent thread may have held at
// the fork.
void on_fork_child() {
  forget_timeline_after_fork();
  guard::report::forget_signal_watcher_after_fork();
  reset_accounting();
  reset_call_counts();
  g_report_dir.clear();
  g_summary_writer.store(kNoWriter, std::memory_order_relaxed);
  g_oom_seen.store(false, std::memory_order_relaxed);
  g_last_oom_summary_ns.store(0, std::memory_order_relaxed);
  g_oom_summaries.store(0, std::memory_order_relaxed);
  g_state.store(kIdle, std::memory_order_release);
}

__attribute__((constructor)) void on_load() {
  load_config_or_exit();
  pthread_atfork(nullptr, nullptr, &on_fork_child);
}

}  // namespace

void ensure_started() noexcept {
  if (g_state.load(std::memory_order_acquire) == kStarted) return;
  int expected = kIdle;
  if (g_state.compare_exchange_strong(expected, kStarting, std::memory_order_acq_rel)) {
    try {
      start();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "oomguard preload: reports disabled: %s\n", e.what());
    }
    g_state.store(kStarted, std::memory_order_release);
    return;
  }
  while (g_state.load(std::memory_order_acquire) != kStarted) std::this_thread::yield();
}

void report_segment_change(int device) noexcept { write_timeline_row(device, /*force=*/false); }

void report_out_of_memory(int device) noexcept {
  // Note [Out-of-memory summaries are rate limited]
  const bool first = !g_oom_seen.exchange(true, std::memory_order_acq_rel);
  write_timeline_row(device, /*force=*/first);
  if (!reports_ready()) return;
  const std::int64_t now = steady_ns();
  std::int64_t last = g_last_oom_summary_ns.load(std::memory_order_relaxed);
  if (!first && now - last < kOomSummaryIntervalNs) return;
  if (!g_last_oom_summary_ns.compare_exchange_strong(last, now, std::memory_order_relaxed) && !first) return;
  int expected = kNoWriter;
  if (!g_summary_writer.compare_exchange_strong(expected, kWriting, std::memory_order_acq_rel)) return;
  try {
    g_oom_summaries.fetch_add(1, std::memory_order_relaxed);
    write_summary(g_report_dir, "out_of_memory");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "oomguard preload: cannot write the out-of-memory summary: %s\n", e.what());
  }
  g_summary_writer.store(kNoWriter, std::memory_order_release);
}

std::uint64_t out_of_memory_summaries_written() noexcept { return g_oom_summaries.load(std::memory_order_relaxed); }

}  // namespace oomguard::preload
