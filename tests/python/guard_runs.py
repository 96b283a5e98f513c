"""Running scripts/guard_train.py in a fresh process for the guard tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "scripts", "guard_train.py")
# Short micro-batches first, the longest (4x) later: the prediction at step 2
# must extrapolate to it.
SCENARIO = ["--method", "full", "--batch", "2", "--lengths", "grow:32:128", "--steps", "8"]


def env(conf: str, **extra: str) -> dict:
    out = dict(os.environ)
    out["OOMGUARD_CONF"] = conf
    out["PYTHONPATH"] = HERE + os.pathsep + out.get("PYTHONPATH", "")
    out.update(extra)
    return out


def train(tmp_path, conf: str, args=SCENARIO, name: str = "run", timeout: int = 240):
    """(completed process, result dict) of one run."""
    out = tmp_path / f"{name}.json"
    proc = subprocess.run([sys.executable, SCRIPT, *args, "--out", str(out)], env=env(conf), capture_output=True,
                          text=True, timeout=timeout)
    result = json.loads(out.read_text()) if out.exists() else None
    return proc, result
