#include "lifecycle.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "call_counters.hpp"
#include "preload_config.hpp"
#include "report_dir.hpp"
#include "segment_accounting.hpp"
#include "summary.hpp"
#include "timeline.hpp"

// Note [Reports at a terminating signal]
// A handler may interrupt a thread inside malloc, so it must not format JSON
// itself. It wakes a watcher thread (started with every signal blocked) through
// a pipe, waits at most kSignalReportTimeoutMs for its acknowledgement with
// poll(2), which is async-signal-safe, and then chains: to the previous
// handler if there was one (Python's SIGINT handler turns into
// KeyboardInterrupt and a normal exit), else back to the default action, which
// ends the process once the handler returns. If the watcher is stuck (the
// interrupted thread held a lock it needs) the process still dies on time;
// the timeline is complete in any case (Note [A timeline that survives SIGKILL]).

namespace oomguard::preload {
namespace {

constexpr int kSignalReportTimeoutMs = 2000;
constexpr int kHandledSignals[] = {SIGTERM, SIGINT};

enum State : int { kIdle = 0, kStarting = 1, kStarted = 2 };
std::atomic<int> g_state{kIdle};
std::string g_report_dir;  // written once while starting, read after kStarted
std::atomic<bool> g_atexit_registered{false};
std::atomic<bool> g_handlers_installed{false};

// Watcher pipes: request carries the signal number, ack comes back.
std::atomic<int> g_request_write{-1};
std::atomic<int> g_ack_read{-1};
struct sigaction g_previous[NSIG];

const char* signal_name(int sig) {
  switch (sig) {
    case SIGTERM: return "signal:SIGTERM";
    case SIGINT: return "signal:SIGINT";
    default: return "signal";
  }
}

void watch(int request_read, int ack_write) {
  for (;;) {
    unsigned char sig = 0;
    const ssize_t n = read(request_read, &sig, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    if (!g_report_dir.empty()) {
      write_timeline_row(0, /*force=*/true);
      write_summary(g_report_dir, signal_name(sig));
    }
    const unsigned char ack = 1;
    (void)!write(ack_write, &ack, 1);
  }
}

void start_watcher() {
  int request[2];
  int ack[2];
  if (pipe2(request, O_CLOEXEC) != 0) return;
  if (pipe2(ack, O_CLOEXEC) != 0) {
    close(request[0]);
    close(request[1]);
    return;
  }
  // The watcher must never run a handler itself: it would wait for itself.
  sigset_t all;
  sigset_t previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  try {
    std::thread(watch, request[0], ack[1]).detach();
    g_ack_read.store(ack[0], std::memory_order_relaxed);
    g_request_write.store(request[1], std::memory_order_release);
  } catch (const std::system_error&) {
    close(request[0]);
    close(request[1]);
    close(ack[0]);
    close(ack[1]);
  }
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
}

void chain(int sig, siginfo_t* info, void* context) {
  const struct sigaction& previous = g_previous[sig];
  if ((previous.sa_flags & SA_SIGINFO) != 0 && previous.sa_sigaction != nullptr) {
    previous.sa_sigaction(sig, info, context);
  } else if (previous.sa_handler == SIG_IGN) {
    return;
  } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != nullptr) {
    previous.sa_handler(sig);
  } else {
    // Default action: restore it and re-raise; the signal is blocked while
    // this handler runs, so it is delivered (and ends us) on return.
    struct sigaction dfl{};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, nullptr);
    raise(sig);
  }
}

void on_signal(int sig, siginfo_t* info, void* context) {
  const int saved_errno = errno;
  const int request = g_request_write.load(std::memory_order_acquire);
  const int ack = g_ack_read.load(std::memory_order_relaxed);
  if (request >= 0 && ack >= 0) {
    const auto byte = static_cast<unsigned char>(sig);
    if (write(request, &byte, 1) == 1) {
      pollfd p{ack, POLLIN, 0};
      if (poll(&p, 1, kSignalReportTimeoutMs) == 1) {
        unsigned char done = 0;
        (void)!read(ack, &done, 1);
      }
    }
  }
  errno = saved_errno;
  chain(sig, info, context);
}

void install_signal_handlers() {
  if (g_handlers_installed.exchange(true)) return;  // inherited by a forked child
  for (int sig : kHandledSignals) {
    struct sigaction action{};
    action.sa_sigaction = &on_signal;
    action.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&action.sa_mask);
    sigaction(sig, &action, &g_previous[sig]);
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
  start_watcher();
  install_signal_handlers();
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
  const int request = g_request_write.exchange(-1);
  const int ack = g_ack_read.exchange(-1);
  if (request >= 0) close(request);
  if (ack >= 0) close(ack);
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
