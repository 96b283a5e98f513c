"""A tiny CPU fine-tuning run for the report tests.

usage: report_run.py MODE REPORT_DIR
  exit   train 3 steps and exit normally
  oom    train with growing sequences under a budget until it runs out; the
         report must already be on disk when Python sees the error, so the
         script checks it and leaves with os._exit (no atexit report)
  kill   print "ready" after 2 steps, then train until killed
  abort  train 2 steps, then _C.write_report(<rank dir>, "abort: test") and
         os._exit, as the guard's abort action does
"""

from __future__ import annotations

import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import oomguard  # noqa: E402
from oomguard import _C  # noqa: E402
from models import tiny_llama  # noqa: E402


def step(model, optimizer, seq: int, batch: int = 2) -> None:
    ids = torch.randint(0, 1000, (batch, seq))
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def main() -> None:
    mode, report_dir = sys.argv[1], sys.argv[2]
    budget = "48MiB" if mode == "oom" else None
    oomguard.install(mode="cpu", budget=budget, report_dir=report_dir)
    torch.manual_seed(0)
    model = tiny_llama()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    if mode == "exit":
        for _ in range(3):
            step(model, optimizer, 32)
        return
    if mode == "kill":
        for i in range(1_000_000):
            step(model, optimizer, 16)
            if i == 1:
                print("ready", flush=True)
    if mode == "abort":
        for _ in range(2):
            step(model, optimizer, 32)
        result = _C.write_report(_C.report_dir(), "abort: test")
        print(json.dumps(result), flush=True)
        os._exit(0)
    if mode == "oom":
        seq = 32
        try:
            while True:
                step(model, optimizer, seq, batch=4)
                seq *= 2
        except torch.OutOfMemoryError as error:
            summary_path = os.path.join(_C.report_dir(), "summary.json")
            with open(summary_path) as f:
                summary = json.load(f)
            print(json.dumps({"error": str(error), "seq": seq, "summary_oom": summary["oom"]}), flush=True)
            sys.stdout.flush()
            os._exit(0)
        raise SystemExit("no out-of-memory under the budget")
    raise SystemExit(f"unknown mode {mode!r}; accepted: exit, oom, kill, abort")


if __name__ == "__main__":
    main()
