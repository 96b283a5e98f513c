"""Test (b): the longest batch (4x the first batches' length) arrives at
step 20. Usage: longest_batch.py calibrate|unguarded|guarded BUDGET_BYTES
(or train(mode, budget) from a process where oomguard is installed).

calibrate (no budget): the peaks of a short step, of the long step plain and
of the long step with every block checkpointed, for the test to pick a
budget between them. unguarded: no action, the long step must fail.
guarded: at step 2 the peak at the longest batch is predicted from the
activations measured at steps 0-1 (linear in tokens), found over budget
(the warning), and the checkpoint actuator is applied with the bytes to
save; the run must complete.
"""

import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import oomguard  # noqa: E402
from models import tiny_llama  # noqa: E402

from oomguard.actions import ActionContext, ActionResult, Decision, checkpoint, record, run  # noqa: E402

LAYERS, SHORT, SCALE, LONG_AT, STEPS, BATCH, VOCAB = 6, 32, 4, 20, 24, 2, 512


def allocated() -> int:
    return oomguard.stats(census_first=False)["devices"].get("cpu", {}).get("allocated", 0)


def step_peaks(step: int) -> tuple[int, int]:
    entries = [s for s in oomguard.stats(census_first=False)["steps"] if s["step"] == step and s["device"] == "cpu"]
    return max(s["peak_allocated"] for s in entries), max(s["peak_by_category"]["activations"] for s in entries)


def train(mode: str, budget: int) -> dict:
    """One run; calibrate needs no budget and also runs inside the test process."""
    torch.manual_seed(0)
    tiny_llama(layers=1, hidden=64, vocab=VOCAB)  # transformers' import-time tensors, outside the baseline
    baseline = allocated()  # peaks are reported from here: the test process holds more than a fresh one
    model = tiny_llama(layers=LAYERS, hidden=64, vocab=VOCAB)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(1)
    profile = checkpoint.profile_blocks(model)
    out = {"mode": mode, "completed_steps": 0}
    first = oomguard._C.step()
    out["first_step"] = first
    for i in range(STEPS):
        if mode == "guarded" and i == 2:
            # The prediction: activations grow with the tokens of a batch.
            peaks = [step_peaks(first + s) for s in (0, 1)]
            predicted = max(total + (SCALE - 1) * activations for total, activations in peaks)
            out["predicted_peak"] = predicted
            if predicted > budget:
                record(ActionResult("warn", f"predicted peak {predicted} bytes at step {LONG_AT} (batch {SCALE}x "
                                    f"longer) exceeds the budget of {budget} bytes", 0), first + i)
                margin = budget // 20
                context = ActionContext(models=[model], optimizers=[optimizer], budget=budget,
                                        prediction={"peak_allocated_bytes": predicted, "activation_scale": SCALE},
                                        step=first + i)
                result = run("checkpoint", context, Decision("checkpoint", predicted - budget + margin))
                out["checkpointed"] = checkpoint.checkpointed_blocks(model)
                out["result"] = result.detail
        if mode == "calibrate" and i == LONG_AT + 1:
            checkpoint.enable(model, LAYERS)  # the long batch again, every block checkpointed
        long = i == LONG_AT or (mode == "calibrate" and i == LONG_AT + 1)
        seq = SHORT * SCALE if long else SHORT
        ids = torch.randint(0, VOCAB, (BATCH, seq), generator=generator)
        try:
            loss = model(input_ids=ids, labels=ids).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        except torch.OutOfMemoryError as error:
            out["oom_at_step"] = i
            out["oom"] = str(error)[:200]
            break
        out["completed_steps"] = i + 1
        out["last_loss"] = loss.item()
    if mode == "calibrate":
        out["short_peak"] = step_peaks(first + 1)[0] - baseline
        out["long_peak"] = step_peaks(first + LONG_AT)[0] - baseline
        out["long_peak_all_checkpointed"] = step_peaks(first + LONG_AT + 1)[0] - baseline
    out["baseline"] = baseline
    out["blocks"] = LAYERS
    out["actions"] = [a for a in oomguard.actions() if a["step"] >= first]
    checkpoint.disable(model)
    profile.remove()
    return out


if __name__ == "__main__":
    mode, budget = sys.argv[1], int(sys.argv[2])
    oomguard.install(mode="cpu", budget=budget or None)
    print("RESULT " + json.dumps(train(mode, budget)))
