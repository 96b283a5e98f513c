"""oomguard: device memory by category for PyTorch fine-tuning runs.

``oomguard.install()`` once, early; then ``oomguard.stats()`` /
``oomguard.summary()``. See ``oomguard.install`` for the modes.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import threading

import torch  # noqa: F401  (loads libtorch, which _C links against, first)

from . import _C, census, config, guard, modes, phases
from .guard import actions, describe, prediction
from .stats import stats, summary

__all__ = ["install", "stats", "summary", "category", "tag", "Handle", "ConfigError", "own_pool", "prediction", "actions",
           "describe"]
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
        if cfg.report_dir:
            from . import reports

            atexit.register(reports.write, cfg.report_dir)
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


def tag(tensors, category_name: str):
    """Move the storage of `tensors` (one tensor or several) to a category.

    Returns (bytes, storages, untracked)."""
    return census.tag(tensors, category_name)
