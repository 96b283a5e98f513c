// Reports at SIGTERM, SIGINT and SIGHUP, from any layer of one process.
//
// Note [Reports at a terminating signal]
// Slurm, Docker and Kubernetes end a job with SIGTERM, a closed terminal
// sends SIGHUP, Ctrl-C SIGINT. A handler may interrupt a thread inside
// malloc, so it must not format JSON itself. It wakes a watcher thread
// (started with every signal blocked) through a pipe, waits at most
// kSignalReportTimeoutMs for its acknowledgement with poll(2), which is
// async-signal-safe, and then chains: to the previous handler if there was
// one (Python's SIGINT handler turns into KeyboardInterrupt and a normal
// exit), else back to the default action, so the process dies by the same
// signal once the handler returns. If the watcher is stuck (the interrupted
// thread held a lock it needs) the process still dies on time; the timeline
// is complete in any case (Note [A timeline that survives SIGKILL]).
// The preload library and the torch extension both register a report here
// (one process, one liboomguard_guard): one watcher runs them in the order
// they registered, one handler per signal.
#pragma once

namespace oomguard::guard::report {

// What a layer writes at a terminating signal; `reason` is "signal:SIGTERM",
// "signal:SIGINT" or "signal:SIGHUP". Runs on the watcher thread.
using SignalReport = void (*)(const char* reason) noexcept;

// Register `report` (once per function) and, at the first call, start the
// watcher and install the handlers. False when no watcher could be started.
bool report_at_terminating_signals(SignalReport report) noexcept;

// In the child of fork(): the watcher thread did not survive it, so its
// pipes are dropped without touching them; the next registration starts a
// new watcher. The handlers stay installed and chain straight on until then.
void forget_signal_watcher_after_fork() noexcept;

}  // namespace oomguard::guard::report
