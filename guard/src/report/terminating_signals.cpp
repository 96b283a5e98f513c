#include "oomguard/guard/report/terminating_signals.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <mutex>
#include <system_error>
#include <thread>

namespace oomguard::guard::report {
namespace {

constexpr int kSignalReportTimeoutMs = 2000;
constexpr int kHandledSignals[] = {SIGTERM, SIGINT, SIGHUP};
constexpr std::size_t kMaxReports = 4;  // the preload library and the torch extension

std::mutex g_register_mutex;  // registration only; never taken in a handler
std::array<std::atomic<SignalReport>, kMaxReports> g_reports{};
std::atomic<bool> g_handlers_installed{false};
// Watcher pipes: the request carries the signal number, the ack comes back.
std::atomic<int> g_request_write{-1};
std::atomic<int> g_ack_read{-1};
struct sigaction g_previous[NSIG];

const char* reason_for(int sig) {
  switch (sig) {
    case SIGTERM: return "signal:SIGTERM";
    case SIGINT: return "signal:SIGINT";
    case SIGHUP: return "signal:SIGHUP";
    default: return "signal";
  }
}

void watch(int request_read, int ack_write) {
  for (;;) {
    unsigned char sig = 0;
    const ssize_t n = ::read(request_read, &sig, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    for (const auto& slot : g_reports)
      if (const SignalReport report = slot.load(std::memory_order_acquire)) report(reason_for(sig));
    const unsigned char ack = 1;
    (void)!::write(ack_write, &ack, 1);
  }
}

bool start_watcher() {
  int request[2];
  int ack[2];
  if (::pipe2(request, O_CLOEXEC) != 0) return false;
  if (::pipe2(ack, O_CLOEXEC) != 0) {
    ::close(request[0]);
    ::close(request[1]);
    return false;
  }
  // The watcher must never run a handler itself: it would wait for itself.
  sigset_t all;
  sigset_t previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  bool started = true;
  try {
    std::thread(watch, request[0], ack[1]).detach();
    g_ack_read.store(ack[0], std::memory_order_relaxed);
    g_request_write.store(request[1], std::memory_order_release);
  } catch (const std::system_error&) {
    for (int fd : {request[0], request[1], ack[0], ack[1]}) ::close(fd);
    started = false;
  }
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  return started;
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
    // The default action: restore it and re-raise; the signal is blocked
    // while this handler runs, so it is delivered (and ends us) on return.
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
    if (::write(request, &byte, 1) == 1) {
      pollfd p{ack, POLLIN, 0};
      if (::poll(&p, 1, kSignalReportTimeoutMs) == 1) {
        unsigned char done = 0;
        (void)!::read(ack, &done, 1);
      }
    }
  }
  errno = saved_errno;
  chain(sig, info, context);
}

void install_handlers() {
  if (g_handlers_installed.exchange(true)) return;  // inherited by a forked child
  for (int sig : kHandledSignals) {
    struct sigaction current{};
    sigaction(sig, nullptr, &current);
    if ((current.sa_flags & SA_SIGINFO) == 0 && current.sa_handler == SIG_IGN) continue;  // nohup: stays ignored
    struct sigaction action{};
    action.sa_sigaction = &on_signal;
    action.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&action.sa_mask);
    sigaction(sig, &action, &g_previous[sig]);
  }
}

}  // namespace

bool report_at_terminating_signals(SignalReport report) noexcept {
  std::lock_guard lock(g_register_mutex);
  bool listed = false;
  for (auto& slot : g_reports) {
    const SignalReport present = slot.load(std::memory_order_relaxed);
    if (present == report) listed = true;
    if (present == nullptr && !listed) {
      slot.store(report, std::memory_order_release);
      listed = true;
    }
  }
  if (!listed) return false;
  if (g_request_write.load(std::memory_order_acquire) < 0 && !start_watcher()) return false;
  install_handlers();
  return true;
}

void forget_signal_watcher_after_fork() noexcept {
  const int request = g_request_write.exchange(-1);
  const int ack = g_ack_read.exchange(-1);
  if (request >= 0) ::close(request);
  if (ack >= 0) ::close(ack);
}

}  // namespace oomguard::guard::report
