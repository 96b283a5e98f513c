"""Post-mortem reports: where they go, and writing them from Python.

The writers are C++ (guard/report, through ``_C``): the same code runs on
out-of-memory, before the error reaches Python. Python only picks the
directory, writes at exit and on demand, and runs the census first so that
gradients and optimizer state are categorised exactly.
"""

from __future__ import annotations

import atexit
import os
import sys
import warnings

from . import _C, census

_started = False
_owner_pid = 0  # the process that opened the report folder
# What the exit report says ended the run; the guard's abort sets "abort".
exit_reason = "exit"


def start(report_dir: str | None) -> str:
    """Open this process's report directory (``<report_dir>/rank<N>``, or
    ``./oomguard-reports/<run-id>/rank<N>``) and its timeline."""
    global _started, _owner_pid
    directory = os.path.abspath(_C.default_report_dir(report_dir or ""))
    try:
        _C.set_report_dir(directory)
    except RuntimeError as error:
        # Tracking goes on; reports written on demand may still name a path.
        warnings.warn(f"{error}; no timeline or automatic reports for this process", stacklevel=3)
        return directory
    _C.timeline_row()
    if not _started:
        _started = True
        _owner_pid = os.getpid()
        atexit.register(_at_exit)
        _note_interrupts()
    return directory


def _note_interrupts() -> None:
    """A run ended by Ctrl-C (SIGINT, raised as KeyboardInterrupt and not
    caught) exits normally, so its exit report would say ``exit``: the
    interpreter's last-chance hook, which runs before atexit, names it."""
    previous = sys.excepthook

    def hook(kind, value, traceback):
        global exit_reason
        if issubclass(kind, KeyboardInterrupt) and exit_reason == "exit":
            exit_reason = "signal:SIGINT"
        previous(kind, value, traceback)

    sys.excepthook = hook


def report(path: str | None = None, reason: str = "on_demand") -> dict:
    """Write summary.json, report.html and snapshot.pickle now.

    Returns ``{"dir", "files", "errors", "seconds"}``."""
    try:
        census.run()
    except Exception:  # noqa: BLE001  (a report must not fail on the census)
        pass
    return _C.write_report(os.path.abspath(path) if path else "", reason)


def _at_exit() -> None:
    if os.getpid() != _owner_pid:
        return  # a forked child (Note [A forked child writes nothing of its parent's], report_bindings.cpp)
    result = report(reason=exit_reason)
    for error in result["errors"]:
        print(f"oomguard: report: {error}", file=sys.stderr, flush=True)
    if exit_reason == "exit" and result["headline"]:  # an abort said its line already
        print(result["headline"], file=sys.stderr, flush=True)
