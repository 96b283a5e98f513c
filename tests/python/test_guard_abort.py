"""(d) Nothing fits: the guard stops the run at step 2, with a post-mortem and
exit code 3, instead of failing when the longest batch arrives.

The budget is a hard limit of the CPU allocator (it fails like a GPU would),
set between what the first steps need and what the longest batch will need,
both measured by an unguarded run of the same script."""

from __future__ import annotations

import glob
import json

import pytest

from guard_runs import train


@pytest.fixture(scope="module")
def needs(tmp_path_factory):
    """(bytes the first two steps need, bytes the whole run needs)."""
    tmp = tmp_path_factory.mktemp("calibrate")
    proc, result = train(tmp, "mode:cpu,budget:4GiB,predict_after:2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    first = result["prediction_at_check"]  # made from steps 1 and 2: their measured peaks bound it below
    steps = result["evaluation"]["candidates"]
    assert steps
    return first, result["peak_allocated"]


def test_without_the_guard_the_run_fails_late(tmp_path, needs):
    # The budget really is too small for the run: with the guard off
    # (no abort configured) the hard limit raises when the long batch comes.
    _, whole = needs
    proc, _ = train(tmp_path, f"mode:cpu,budget:{int(whole * 0.9)},actions:warn")
    assert proc.returncode != 0
    assert "OutOfMemoryError" in proc.stderr or "out of memory" in proc.stderr.lower()


def test_nothing_fits_aborts_at_step_2_with_a_post_mortem(tmp_path, needs):
    _, whole = needs
    budget = int(whole * 0.9)
    reports = tmp_path / "reports"
    proc, result = train(tmp_path, f"mode:cpu,budget:{budget},actions:warn+abort,report_dir:{reports}")
    assert proc.returncode == 3, proc.stderr[-3000:]
    kinds = [a["kind"] for a in result["actions"]]
    assert kinds == ["warn", "abort"]
    assert all(a["step"] == 2 for a in result["actions"])
    assert "aborting at step 2" in proc.stdout
    assert "budget" in proc.stdout
    (report,) = glob.glob(str(reports / "*"))
    with open(report) as f:
        post_mortem = json.load(f) if report.endswith(".json") else {"text": f.read()}
    assert post_mortem  # the report names the prediction and the budget
    text = json.dumps(post_mortem)
    assert "abort" in text and str(budget) in text
