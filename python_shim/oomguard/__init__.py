"""oomguard: device memory by category for PyTorch fine-tuning runs.

``oomguard.install()`` once, early; then ``oomguard.stats()`` /
``oomguard.summary()``. See ``oomguard.install`` for the modes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import threading

import torch  # noqa: F401  (loads libtorch, which _C links against, first)

from . import _C, census, config, guard, modes, phases
from .guard import actions, describe, prediction
from .stats import stats, summary

__all__ = ["install", "stats", "summary", "category", "tag", "report", "prediction", "actions", "describe",
           "Handle", "ConfigError", "own_pool"]
__version__ = "0.1.0"

ConfigError = _C.ConfigError
own_pool = modes.own_pool


@dataclasses.dataclass(frozen=True)
class Handle:
    """What install() set up. ``enabled`` is False under OOMGUARD_DISABLE=1."""

    enabled: bool
    mode: str | None
    config: config.Config


_lock = threading.Lock()
_handle: Handle | None = None


def install(budget: str | int | None = None, mode: str | None = None, report_dir: str | None = None,
            conf: str | None = None) -> Handle:
    """Start tracking; idempotent (later calls return the first handle).

    mode: "auto" (observe on CUDA, cpu otherwise), "observe" (native CUDA
    allocator + trace tracker), "own" (the oomguard allocator serves CUDA; only
    before CUDA initialises, else it warns and observes), "cpu" (wrap torch's
    CPU allocator). budget: bytes ("20GiB", 1<<30) or a fraction ("90%"); in
    cpu mode crossing it raises torch.OutOfMemoryError. Unset arguments come
    from OOMGUARD_CONF (``mode:cpu,budget:2GiB,report_dir:out``);
    OOMGUARD_DISABLE=1 turns everything off.
    """
    global _handle
    with _lock:
        if _handle is not None:
            return _handle
        cfg = config.load(mode=mode, budget=budget, report_dir=report_dir, conf=conf)
        if cfg.disabled:
            _handle = Handle(False, None, cfg)
            return _handle
        started = modes.start(cfg.mode, cfg.budget, cfg.allocator_conf)
        phases.install()
        guard.install(cfg)
        from .integrations import transformers as _hf

        _hf.install()
        from . import reports

        reports.start(cfg.report_dir)
        _handle = Handle(True, started, cfg)
        return _handle


def installed() -> Handle | None:
    return _handle


@contextlib.contextmanager
def category(name: str):
    """Allocations made on this thread inside the block get category `name`."""
    _C.push_category(name)
    try:
        yield
    finally:
        _C.pop_category()


def report(path: str | None = None) -> dict:
    """Write the post-mortem now: summary.json, report.html and
    snapshot.pickle into `path` (default: this process's report directory,
    ``<report_dir>/rank<N>``). Returns ``{"dir", "files", "errors", "seconds"}``."""
    from . import reports

    return reports.report(path)


def tag(tensors, category_name: str):
    """Move the storage of `tensors` (one tensor or several) to a category.

    Returns (bytes, storages, untracked)."""
    return census.tag(tensors, category_name)


def _finish_boot() -> None:
    """`oomguard run`'s boot waits for torch; when torch was imported by this
    package's own import, the boot leaves the install to us."""
    boot = sys.modules.get("sitecustomize")
    if getattr(boot, "OOMGUARD_PENDING", False):
        boot.OOMGUARD_PENDING = False
        try:
            install()
        except Exception as error:  # as the boot does: never stop the program
            print(f"oomguard: not installed in this process: {error}", file=sys.stderr)


_finish_boot()
