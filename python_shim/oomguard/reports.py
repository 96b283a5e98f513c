"""The end-of-process stats file written to report_dir."""

from __future__ import annotations

import json
import os

from .stats import stats


def write(report_dir: str) -> str:
    os.makedirs(report_dir, exist_ok=True)
    path = os.path.join(report_dir, f"oomguard-stats-{os.getpid()}.json")
    with open(path, "w") as f:
        json.dump(stats(), f, indent=1)
    return path
