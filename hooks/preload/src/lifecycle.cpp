#include "lifecycle.hpp"

#include <pthread.h>
#include <unistd.h>

#include <atomic>
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

void report_at_signal(const char* reason) noexcept {
  if (g_state.load(std::memory_order_acquire) != kStarted || g_report_dir.empty()) return;
  try {
    write_timeline_row(0, /*force=*/true);
    write_summary(g_report_dir, reason);
  } catch (...) {
    // Nothing can be said from here; the timeline has its rows.
  }
}

void on_exit() {
  if (g_state.load(std::memory_order_acquire) != kStarted || g_report_dir.empty()) return;
  write_timeline_row(0, /*force=*/true);
  write_summary(g_report_dir, "exit");
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
  write_timeline_row(device, /*force=*/true);
  if (g_state.load(std::memory_order_acquire) != kStarted || g_report_dir.empty()) return;
  try {
    write_summary(g_report_dir, "out_of_memory");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "oomguard preload: cannot write the out-of-memory summary: %s\n", e.what());
  }
}

}  // namespace oomguard::preload
