"""OOMGUARD_CONF: one ``key:value,key:value`` string for every layer.

The grammar is the core's (the one of ``PYTORCH_CUDA_ALLOC_CONF``), parsed in
C++ through ``_C`` so that Python, the C ABI and the CLI accept exactly the
same text. This module only knows which keys the Python layer owns and checks
their values; the allocator's keys are checked by the core.
"""

from __future__ import annotations

import dataclasses
import os

from . import _C

MODES = ("auto", "observe", "own", "cpu")
# Keys the Python layer reads itself; `budget` is shared with the allocator.
PYTHON_KEYS = ("mode", "report_dir", "disable")
# Keys other layers may register (the guard adds its own) before install().
_extra_keys: list[str] = []


def register_keys(*keys: str) -> None:
    """Let another layer own more OOMGUARD_CONF keys."""
    _extra_keys.extend(k for k in keys if k not in _extra_keys)


def accepted_keys() -> list[str]:
    return list(PYTHON_KEYS) + list(_C.ALLOCATOR_CONF_KEYS) + _extra_keys


@dataclasses.dataclass
class Config:
    mode: str = "auto"
    budget: str | None = None
    report_dir: str | None = None
    disabled: bool = False
    # The allocator layer's entries, re-joined, for own mode.
    allocator_conf: str = ""
    entries: dict[str, str] = dataclasses.field(default_factory=dict)


def disabled_by_env() -> bool:
    value = os.environ.get("OOMGUARD_DISABLE", "")
    return value != "" and _C.parse_bool(value, "OOMGUARD_DISABLE")


def load(mode: str | None = None, budget: str | int | None = None, report_dir: str | None = None,
         conf: str | None = None) -> Config:
    """Merge OOMGUARD_CONF (or ``conf``) with explicit arguments, which win.

    Raises ``ValueError`` (``oomguard._C.ConfigError``) naming the bad key or
    value and listing what is accepted.
    """
    source = "OOMGUARD_CONF" if conf is None else "conf"
    text = os.environ.get("OOMGUARD_CONF", "") if conf is None else conf
    pairs = _C.parse_conf(text, source)
    _C.check_conf_keys([k for k, _ in pairs], accepted_keys(), source)
    entries = dict(pairs)
    if mode is not None:
        entries["mode"] = mode
    if budget is not None:
        entries["budget"] = str(budget)
    if report_dir is not None:
        entries["report_dir"] = str(report_dir)

    chosen = entries.get("mode", "auto")
    if chosen not in MODES:
        raise _C.ConfigError(f"{source}: mode '{chosen}' is not accepted; accepted modes: {', '.join(MODES)}")
    if "budget" in entries:
        _C.parse_budget(entries["budget"])  # raises, naming the bad text
    _C.guard_check_conf(list(entries.items()))  # the guard's values too: a bad one would leave the run unguarded
    allocator_keys = set(_C.ALLOCATOR_CONF_KEYS)
    allocator_conf = to_conf_string({k: v for k, v in entries.items() if k in allocator_keys})
    _C.validate_allocator_conf(allocator_conf)
    disabled = "disable" in entries and _C.parse_bool(entries["disable"], f"{source} key 'disable'")
    return Config(mode=chosen, budget=entries.get("budget"), report_dir=entries.get("report_dir"),
                  disabled=disabled or disabled_by_env(), allocator_conf=allocator_conf, entries=entries)


def to_conf_string(entries: dict[str, str]) -> str:
    """The OOMGUARD_CONF text of ``entries``, values escaped (a report
    folder may hold a comma)."""
    return _C.join_conf(list(entries.items()))
