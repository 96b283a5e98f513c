"""Accuracy of the runtime predictor: predicted (at step 2) vs measured peak.

    python3 bench/accuracy.py            # writes docs/accuracy.md

Each scenario is a real CPU training run of a tiny Llama in its own process
(tests/python/scripts/guard_train.py, oomguard in cpu mode): full fine-tune
and LoRA, with and without gradient checkpointing, several maximum lengths
and batch sizes. Sequence lengths grow from a quarter of the maximum to the
maximum, so the prediction made at step 2 has to extrapolate to a micro-batch
it has not seen (the data loader's lengths tell it which).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "tests", "python")
SCRIPT = os.path.join(TESTS, "scripts", "guard_train.py")
COMMAND = "python3 bench/accuracy.py"


def run(method: str, checkpointing: bool, seq: int, batch: int, steps: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "result.json")
        args = [sys.executable, SCRIPT, "--method", method, "--batch", str(batch), "--lengths",
                f"grow:{seq // 4}:{seq}", "--steps", str(steps), "--layers", "4", "--hidden", "128", "--out", out]
        if checkpointing:
            args.append("--checkpointing")
        env = dict(os.environ, OOMGUARD_CONF="mode:cpu", PYTHONPATH=TESTS, OMP_NUM_THREADS="2")
        started = time.monotonic()
        proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"scenario {method} ckpt={checkpointing} seq={seq} batch={batch} failed:\n"
                               f"{proc.stderr[-3000:]}")
        with open(out) as f:
            result = json.load(f)
        result["seconds"] = time.monotonic() - started
        return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "accuracy.md"))
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--seqs", default="64,128,256")
    parser.add_argument("--batches", default="2,4")
    a = parser.parse_args()

    rows = []
    for method, ckpt, seq, batch in itertools.product(("full", "lora"), (False, True),
                                                      [int(x) for x in a.seqs.split(",")],
                                                      [int(x) for x in a.batches.split(",")]):
        r = run(method, ckpt, seq, batch, a.steps)
        p = r["prediction_at_check"]
        measured = r["peak_allocated"]
        error = 100.0 * (p["peak_allocated_bytes"] - measured) / measured
        inside = p["low_bytes"] <= measured <= p["high_bytes"]
        fit = r["evaluation"]["activation_fit"]["method"] if r.get("evaluation") else "?"
        rows.append((method, "on" if ckpt else "off", seq, batch, p["peak_allocated_bytes"], measured, error, inside,
                     p["phase"], fit))
        print(f"{method:4} ckpt={'on' if ckpt else 'off':3} seq={seq:4} batch={batch}: predicted "
              f"{p['peak_allocated_bytes'] / 2**20:7.2f} MiB, measured {measured / 2**20:7.2f} MiB, "
              f"error {error:+6.2f}%", flush=True)

    worst = max(rows, key=lambda row: abs(row[6]))
    lines = [
        "# Runtime predictor accuracy",
        "",
        f"Regenerate with `{COMMAND}` (CPU only, a few minutes).",
        "",
        "Predicted: the peak allocated bytes `oomguard.prediction()` gives after 2 optimizer steps. Measured: the",
        "peak allocated bytes of the whole run (the Ledger's device peak), in cpu mode. Each run is a tiny Llama",
        f"(4 layers, hidden 128, vocab 1000, fp32, AdamW) trained for {a.steps} steps on sequences growing from a",
        "quarter of the maximum length to the maximum (padded to the longest of each micro-batch), so the",
        "prediction extrapolates from the short first steps to the longest micro-batch, which the guard learns",
        "from the data loader's lengths. Band: whether the measured peak lies in [low, high].",
        "",
        f"Worst error: {worst[6]:+.2f}% ({worst[0]}, checkpointing {worst[1]}, max length {worst[2]}, batch {worst[3]}).",
        "",
        "| method | checkpointing | max length | batch | predicted MiB | measured MiB | error | in band | phase | fit |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for method, ckpt, seq, batch, predicted, measured, error, inside, phase, fit in rows:
        lines.append(f"| {method} | {ckpt} | {seq} | {batch} | {predicted / 2**20:.2f} | {measured / 2**20:.2f} | "
                     f"{error:+.2f}% | {'yes' if inside else 'no'} | {phase} | {fit} |")
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"worst error {worst[6]:+.2f}%; wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
