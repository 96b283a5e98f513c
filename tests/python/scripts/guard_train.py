"""A small real training run under the guard, for the guard tests and
bench/accuracy.py. Run in its own process: the budget is a hard limit of the
process's CPU allocator, and an abort ends the process.

OOMGUARD_CONF configures oomguard (mode cpu, budget, actions...); under
torchrun, GUARD_CONF_RANK<r> replaces it for rank r. Writes a JSON result
(--out, per rank: <out>.rank<r>) with the prediction made at --check-step,
the last prediction, the actions and the measured peak of the whole run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def lengths_for(spec: str, n: int, batch: int = 1) -> list[int]:
    """"grow:16:128": short first, the longest last but one; "fixed:64";
    "late:32:128:20": 32 tokens, then 128 from optimizer step 20 on."""
    kind, *values = spec.split(":")
    if kind == "fixed":
        return [int(values[0])] * n
    if kind == "late":
        short, long, from_step = int(values[0]), int(values[1]), int(values[2])
        return [short if i // batch + 1 < from_step else long for i in range(n)]
    if kind == "grow":
        low, high = int(values[0]), int(values[1])
        out = [low + (high - low) * i // max(n - 1, 1) for i in range(n)]
        out[-1], out[-2] = out[-2], out[-1]  # the longest is not the last batch
        return out
    raise SystemExit(f"--lengths {spec!r}: accepted 'fixed:N', 'grow:LOW:HIGH' or 'late:SHORT:LONG:STEP'")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--method", choices=("full", "lora"), default="full")
    parser.add_argument("--checkpointing", action="store_true")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--lengths", default="grow:16:128")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--vocab", type=int, default=1000)
    parser.add_argument("--check-step", type=int, default=2)
    parser.add_argument("--no-describe", action="store_true", help="do not pass the data loader to the guard")
    parser.add_argument("--overstate-block-bytes", type=float, default=1.0,
                        help="multiply the checkpoint actuator's bytes per block (a figure that is off)")
    parser.add_argument("--out", required=True)
    a = parser.parse_args()

    rank = int(os.environ.get("RANK", "0"))
    if "GUARD_CONF_RANK%d" % rank in os.environ:
        os.environ["OOMGUARD_CONF"] = os.environ["GUARD_CONF_RANK%d" % rank]
    out_path = a.out if "RANK" not in os.environ else f"{a.out}.rank{rank}"

    import oomguard
    from oomguard import _C

    oomguard.install()
    if a.overstate_block_bytes != 1.0:
        from oomguard.actions import checkpoint

        measured = checkpoint.per_block_bytes

        def overstated(context, decision, model):
            per_block, source = measured(context, decision, model)
            return int(per_block * a.overstate_block_bytes), f"{source}, x{a.overstate_block_bytes:g} by the test"

        checkpoint.per_block_bytes = overstated
    if "RANK" in os.environ:
        torch.distributed.init_process_group("gloo")

    from models import tiny_llama, with_lora

    torch.manual_seed(0)
    model = tiny_llama(layers=a.layers, hidden=a.hidden, vocab=a.vocab)
    if a.checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if a.method == "lora":
        if a.checkpointing:
            model.enable_input_require_grads()
        model = with_lora(model)
    model.train()

    lengths = lengths_for(a.lengths, a.steps * a.batch, a.batch)
    generator = torch.Generator().manual_seed(1)
    dataset = [{"input_ids": torch.randint(0, a.vocab, (n,), generator=generator).tolist()} for n in lengths]

    def collate(items):
        longest = max(len(i["input_ids"]) for i in items)
        ids = torch.tensor([i["input_ids"] + [0] * (longest - len(i["input_ids"])) for i in items])
        return {"input_ids": ids, "labels": ids.clone()}

    loader = torch.utils.data.DataLoader(dataset, batch_size=a.batch, shuffle=False, collate_fn=collate)
    if not a.no_describe:
        oomguard.describe(dataloader=loader)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    result = {"rank": rank, "prediction_at_check": None, "step_peaks": [], "completed_steps": 0}

    def save_result():
        result.update(prediction=oomguard.prediction(), actions=oomguard.actions(),
                      peak_allocated=_C.device_memory(_C.CPU_DEVICE)[1],
                      evaluation=oomguard.guard.last_evaluation(), observations=oomguard.guard.observations())
        with open(out_path, "w") as f:
            json.dump(result, f, indent=1)

    try:
        for step, inputs in enumerate(loader, start=1):
            loss = model(**inputs).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if step == a.check_step:
                result["prediction_at_check"] = oomguard.prediction()
            result["completed_steps"] = step
    finally:
        save_result()
    return 0


if __name__ == "__main__":
    sys.exit(main())
