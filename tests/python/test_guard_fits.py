"""(a) The run fits: no action, and the prediction made at step 2 is within
5% of the measured peak of the whole run, although the longest micro-batch
(4x the tokens of the first ones) comes only later."""

from __future__ import annotations

import pytest

from guard_runs import SCENARIO, train


@pytest.mark.parametrize("args", [SCENARIO, ["--method", "lora", "--batch", "4", "--lengths", "grow:32:128",
                                             "--steps", "6"]], ids=["full", "lora"])
def test_prediction_at_step_2_within_5_percent_and_no_action(tmp_path, args):
    proc, result = train(tmp_path, "mode:cpu,budget:4GiB", args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    predicted = result["prediction_at_check"]
    assert predicted is not None and predicted["made_at_step"] == 2
    measured = result["peak_allocated"]
    error = abs(predicted["peak_allocated_bytes"] - measured) / measured
    assert error < 0.05, (predicted, measured)
    assert predicted["low_bytes"] <= predicted["peak_allocated_bytes"] <= predicted["high_bytes"]
    assert predicted["phase"] in ("backward", "optimizer")
    assert result["actions"] == []
    # It is updated as steps come.
    assert result["prediction"]["made_at_step"] == int(args[args.index("--steps") + 1])


def test_prediction_without_the_lengths_uses_what_it_saw(tmp_path):
    # Without the data loader the guard cannot know the longest batch: the
    # step-2 prediction is the measured steady step, below the later peak.
    proc, result = train(tmp_path, "mode:cpu,budget:4GiB", [*SCENARIO, "--no-describe"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert result["prediction_at_check"]["peak_allocated_bytes"] < result["peak_allocated"]
