"""(d) Nothing fits: the guard stops the run at step 2, with a post-mortem and
exit code 3, instead of failing when the longest batch arrives.

The budget is a hard limit of the CPU allocator (it fails like a GPU would),
set between what the first steps need and what the longest batch will need,
both measured by an unguarded run of the same script."""

from __future__ import annotations

import json
import re

import pytest

from guard_runs import train


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """The bytes the whole run needs, measured without a limit."""
    proc, result = train(tmp_path_factory.mktemp("calibrate"), "mode:cpu,budget:4GiB")
    assert proc.returncode == 0, proc.stderr[-3000:]
    first_steps = max(o["peak_allocated"] for o in result["observations"][:2])
    assert first_steps < 0.8 * result["peak_allocated"]  # the scenario's premise: the first steps fit
    return result["peak_allocated"]


def test_without_the_guard_the_run_fails_late(tmp_path, whole):
    # The budget really is too small for the run: with warn only, the hard
    # limit raises when the long batch comes, after step 2.
    proc, result = train(tmp_path, f"mode:cpu,budget:{int(whole * 0.9)},actions:warn")
    assert proc.returncode != 0
    assert [a["kind"] for a in result["actions"]] == ["warn"]
    assert "Cheapest fixes" in proc.stderr
    assert "OutOfMemoryError" in proc.stderr or "out of memory" in proc.stderr.lower()


def test_nothing_fits_aborts_at_step_2_with_a_post_mortem(tmp_path, whole):
    budget = int(whole * 0.9)
    reports = tmp_path / "reports"
    proc, result = train(tmp_path, f"mode:cpu,budget:{budget},actions:warn+abort,report_dir:{reports}")
    assert proc.returncode == 3, proc.stderr[-3000:]
    kinds = [a["kind"] for a in result["actions"]]
    assert kinds == ["warn", "abort"]
    assert all(a["step"] == 2 for a in result["actions"])
    assert proc.stderr.count("aborting at step 2") == 1  # one line, on stderr
    assert "budget" in proc.stderr
    report = re.search(r"Post-mortem: (\S+)", proc.stderr).group(1)
    assert report.startswith(str(reports))
    with open(report) as f:
        text = f.read()
    assert "abort" in text and "peak_allocated_bytes" in text
    post_mortem = json.loads(text)
    assert post_mortem["schema"] == "oomguard.summary/2"
    assert post_mortem["budget_bytes"] == budget
    assert post_mortem["prediction"]["peak_allocated_bytes"] > budget
    assert [a["kind"] for a in post_mortem["actions"]] == ["warn", "abort"]
