"""Reading the Ledger: stats() and summary()."""

from __future__ import annotations

import json

from . import _C, census, phases


def stats(census_first: bool = True) -> dict:
    """Current and peak bytes by category per device, and per-step peaks.

    ``{"devices": {"cpu" | "cuda:N": {"current": {category: bytes}, "peak":
    {...}, "allocated", "peak_allocated", "reserved", "peak_reserved",
    "live_allocations"}}, "steps": [{"step", "device", "peak_allocated",
    "peak_by_category"}], "boundaries": [{"step", "current"}], ...}``.
    The census runs first, so gradients and optimizer state are exact even
    between step boundaries.
    """
    if census_first:
        census.run()
    out = json.loads(_C.stats_json())
    out["boundaries"] = list(phases.boundaries)
    return out


def _mib(n: int) -> str:
    return f"{n / 2**20:10.2f}"


def summary(file=None) -> str:
    """Print (and return) a table of current and peak MiB by category."""
    data = stats()
    lines = []
    for device, d in data["devices"].items():
        lines.append(f"oomguard {device}: step {data['step']}, allocated {d['allocated'] / 2**20:.2f} MiB "
                     f"(peak {d['peak_allocated'] / 2**20:.2f} MiB), reserved {d['reserved'] / 2**20:.2f} MiB")
        lines.append(f"  {'category':<12} {'current MiB':>12} {'peak MiB':>12}")
        for category in _C.CATEGORIES:
            current, peak = d["current"][category], d["peak"][category]
            if current or peak:
                lines.append(f"  {category:<12} {_mib(current):>12} {_mib(peak):>12}")
    text = "\n".join(lines) if lines else "oomguard: no allocations seen"
    print(text, file=file)
    return text
