"""(b) The longest batch (4x the first batches' length) arrives at step 20
and would exceed the budget: the guard's warning comes by step 2,
checkpointing makes it fit, and the run completes. The budget is a hard
limit of the CPU allocator, so crossing it fails as a GPU would; the whole
loop is the real one (predictor from the data loader's lengths, policy,
checkpoint actuator)."""

from __future__ import annotations

import re

import pytest

from guard_runs import train

LATE_LONG_BATCH = ["--method", "full", "--batch", "2", "--layers", "4", "--hidden", "64",
                   "--lengths", "late:32:128:20", "--steps", "24"]


@pytest.fixture(scope="module")
def peaks(tmp_path_factory):
    """The run's peak without a limit, with and without checkpointing."""
    where = tmp_path_factory.mktemp("calibrate")
    proc, plain = train(where, "mode:cpu,budget:4GiB,actions:warn", LATE_LONG_BATCH, name="plain")
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc, checkpointed = train(where, "mode:cpu,budget:4GiB,actions:warn", LATE_LONG_BATCH + ["--checkpointing"],
                               name="checkpointed")
    assert proc.returncode == 0, proc.stderr[-3000:]
    # The premise: the first steps fit easily, the late long batch does not.
    first_steps = max(o["peak_allocated"] for o in plain["observations"][:2])
    assert first_steps < 0.6 * plain["peak_allocated"]
    assert checkpointed["peak_allocated"] < plain["peak_allocated"]
    return plain["peak_allocated"], checkpointed["peak_allocated"]


def budget_between(peaks) -> int:
    plain, checkpointed = peaks
    return checkpointed + int(0.4 * (plain - checkpointed))


def test_without_checkpointing_the_long_batch_fails_at_step_20(tmp_path, peaks):
    proc, result = train(tmp_path, f"mode:cpu,budget:{budget_between(peaks)},actions:warn", LATE_LONG_BATCH)
    assert proc.returncode != 0
    assert result["completed_steps"] == 19
    assert [a["kind"] for a in result["actions"]] == ["warn"]
    assert result["actions"][0]["step"] <= 2


def test_checkpointing_makes_the_long_batch_fit(tmp_path, peaks):
    budget = budget_between(peaks)
    proc, result = train(tmp_path, f"mode:cpu,budget:{budget},actions:warn+checkpoint", LATE_LONG_BATCH)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert result["completed_steps"] == 24
    kinds = [(a["kind"], a["step"]) for a in result["actions"]]
    assert [k for k, _ in kinds][:2] == ["warn", "checkpoint"], kinds
    assert all(step <= 2 for _, step in kinds[:2]), kinds
    assert result["prediction_at_check"]["peak_allocated_bytes"] > budget
    assert result["peak_allocated"] <= budget


def test_a_fix_that_saves_too_little_is_extended_at_a_later_boundary(tmp_path, peaks):
    # The actuator's bytes per block are overstated 4x, so its first pick
    # checkpoints too few blocks; the steps after it still predict the long
    # batch over the budget and the guard checkpoints more blocks (the
    # checkpoint kind escalates), before the long batch comes at step 20.
    plain, checkpointed = peaks
    budget = checkpointed + int(0.15 * (plain - checkpointed))
    proc, result = train(tmp_path, f"mode:cpu,budget:{budget},actions:warn+checkpoint",
                         LATE_LONG_BATCH + ["--overstate-block-bytes", "4"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert result["completed_steps"] == 24
    fixes = [a for a in result["actions"] if a["kind"] == "checkpoint"]
    assert len(fixes) >= 2, result["actions"]
    counts = [int(re.match(r"(?:all )?(\d+) ", a["detail"]).group(1)) for a in fixes]  # "k of n blocks", "all n blocks"
    assert counts == sorted(counts) and counts[0] < counts[-1], counts
    steps = [a["step"] for a in fixes]
    assert steps == sorted(set(steps)) and steps[-1] < 20, steps
    assert result["peak_allocated"] <= budget
