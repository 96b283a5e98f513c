"""(b) The longest batch arrives at step 20 and would cross the budget: the
warning comes by step 2, checkpointing the fewest blocks makes it fit, the
run completes. Budget enforced as a hard limit (cpu mode), fresh processes.

The prediction and the warning are made by the script (activations linear
in the batch's tokens, measured at steps 0-1); the action is the real
checkpoint actuator."""

from __future__ import annotations

import json
import os
import subprocess
import sys

SCRIPT = os.path.join(os.path.dirname(__file__), "scripts", "longest_batch.py")
sys.path.insert(0, os.path.dirname(SCRIPT))


def _run(mode: str, budget: int) -> dict:
    env = dict(os.environ)
    env.pop("OOMGUARD_CONF", None)
    result = subprocess.run([sys.executable, SCRIPT, mode, str(budget)], env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    line = [ln for ln in result.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def test_longest_batch_at_step_20_fits_after_checkpointing():
    import longest_batch

    calibration = longest_batch.train("calibrate", 0)  # no budget: this process will do
    plain, all_checkpointed = calibration["long_peak"], calibration["long_peak_all_checkpointed"]
    assert all_checkpointed < plain and calibration["short_peak"] < all_checkpointed
    # Between the two: some blocks, not all, must be checkpointed.
    budget = all_checkpointed + int(0.4 * (plain - all_checkpointed))

    # Peaks are measured from the bytes held before the run; a fresh process
    # holds next to nothing there, which the runs below report.
    unguarded = _run("unguarded", budget)
    assert unguarded["baseline"] < 0.05 * (plain - all_checkpointed), unguarded["baseline"]
    assert unguarded.get("oom_at_step") == 20, unguarded
    assert unguarded["completed_steps"] == 20

    guarded = _run("guarded", budget)
    assert "oom_at_step" not in guarded, guarded
    assert guarded["completed_steps"] == 24
    # The warning and the action by step 2 (steps counted from the run's first).
    kinds = [(a["kind"], a["step"] - guarded["first_step"]) for a in guarded["actions"]]
    assert kinds == [("warn", 2), ("checkpoint", 2)], kinds
    assert guarded["predicted_peak"] > budget
    assert 0 < guarded["checkpointed"] < guarded["blocks"], guarded
