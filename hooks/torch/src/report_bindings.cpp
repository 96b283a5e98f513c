// oomguard._C's report functions: the report directory, timeline rows and
// writing the post-mortem (guard/report). Kept out of module.cpp, which is
// the one translation unit that pays for torch/extension.h.
#include "report_bindings.hpp"

#include <pybind11/stl.h>

#include <pthread.h>

#include <atomic>

#include "oomguard/error.hpp"
#include "oomguard/guard/report/recorder.hpp"
#include "oomguard/guard/report/report.hpp"
#include "oomguard/guard/report/terminating_signals.hpp"
#include "oomguard/guard/run_state.hpp"

namespace py = pybind11;

namespace oomguard::torch_hooks {

void timeline_row_if_open() {
  auto& recorder = guard::report::Recorder::global();
  if (!recorder.dir().empty()) recorder.row();
}

namespace {

// At SIGTERM, SIGHUP or SIGINT, on the watcher thread (Note [Reports at a
// terminating signal]): the report as it stands, without the census, which
// needs Python. A SIGINT that becomes KeyboardInterrupt is written again at
// exit, census first, with the same reason (python_shim/oomguard/reports.py).
// A run the guard stopped has its report already: a signal that comes while
// it exits (torchrun ends the other ranks with SIGTERM once one stops) must
// not write over "abort".
std::atomic<bool> g_stopped{false};

void report_at_signal(const char* reason) noexcept {
  if (!g_stopped.load(std::memory_order_acquire)) (void)guard::report::write_report("", reason);
}

// Note [A forked child writes nothing of its parent's]
// A child of fork() (a DataLoader worker, os.fork, multiprocessing) copies
// the parent's report folder, its timeline descriptor and its signal
// watcher's pipes (not the watcher thread). Exiting through sys.exit it
// wrote its rows into the parent's timeline and its summary, report and
// snapshot over the parent's; a signal to it woke the parent's watcher. So
// the child forgets all three at the fork, and writes no reports (the
// Python side skips its atexit report too): its allocations are the
// parent's data loading, not a run of its own.
void forget_reports_in_the_child() noexcept {
  guard::report::Recorder::global().forget_after_fork();
  guard::report::forget_signal_watcher_after_fork();
  g_stopped.store(true, std::memory_order_relaxed);  // no signal report from the child
}

}  // namespace

void bind_reports(py::module_& m) {
  using guard::report::Recorder;
  m.def("set_report_dir", [](const std::string& dir) {
    if (!Recorder::global().set_dir(dir)) throw error("oomguard: " + Recorder::global().last_error());
    guard::report::report_at_terminating_signals(&report_at_signal);
    static const bool fork_handler = pthread_atfork(nullptr, nullptr, &forget_reports_in_the_child) == 0;
    (void)fork_handler;
    return Recorder::global().dir();
  }, py::arg("dir"), "Create `dir`, open its timeline.csv and write reports there from now on (and at SIGTERM, "
                     "SIGHUP and SIGINT).");
  m.def("report_dir", [] { return Recorder::global().dir(); });
  m.def("default_report_dir", &guard::report::default_report_dir, py::arg("run_dir") = "",
        "<run_dir or oomguard-reports/<OOMGUARD_RUN_ID or time-pid>>/rank<RANK or 0>");
  m.def("timeline_row", [] {
    const auto row = Recorder::global().row();
    return row.allocated;
  }, "Append a timeline row for now (step boundaries and phase changes); returns the allocated bytes.");
  m.def("set_budget", [](std::uint64_t bytes) { guard::RunState::global().set_budget(bytes); }, py::arg("bytes"));
  m.def("write_report", [](const std::string& dir, const std::string& reason) {
    if (reason.rfind("abort", 0) == 0) g_stopped.store(true, std::memory_order_release);
    guard::report::ReportResult r;
    {
      py::gil_scoped_release no_gil;  // pure C++; other threads may run
      r = guard::report::write_report(dir, reason);
    }
    py::dict out;
    out["dir"] = r.dir;
    out["files"] = r.files;
    out["errors"] = r.errors;
    out["seconds"] = r.seconds;
    out["headline"] = r.headline;
    return out;
  }, py::arg("dir") = "", py::arg("reason") = "on_demand",
     "Write summary.json, report.html and snapshot.pickle into `dir` (default: the report directory). "
     "Returns {dir, files, errors, seconds, headline}. The guard's abort action calls it with reason 'abort: ...'.");
}

}  // namespace oomguard::torch_hooks
