"""Per-step cost and file sizes over a long run, in one process.

A plain loop over a tiny model (two Linear layers, batch 8) in cpu mode, so
that oomguard's per-step work (phase hooks, timeline rows, the guard's
observation) is most of the step. The figure is the median step time of the
last quarter of the run over that of the first, measured in the same run:
1.00 is constant overhead; the issue that asked for this saw 1.55 (1.9 ms
growing to 2.95 ms over 32,000 steps). Also printed: timeline.csv and
report.html sizes, which Note [A timeline of bounded length]
(guard/include/oomguard/guard/report/timeline_thinning.hpp) keeps bounded.

    python bench/long_run_overhead.py [--steps 30000] [--eval-every 1000]

CPU figures: they say whether the cost grows, not what a GPU step costs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30000)
    parser.add_argument("--eval-every", type=int, default=1000, help="an evaluation pass every N steps (0: none)")
    parser.add_argument("--baseline", action="store_true", help="run without oomguard (for the absolute step time)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    report_dir = tempfile.mkdtemp(prefix="oomguard-long-run-")
    if not args.baseline:
        import oomguard

        oomguard.install(mode="cpu", report_dir=report_dir)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 8))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x, y = torch.randn(8, 64), torch.randn(8, 8)
    times = []
    for step in range(args.steps):
        t0 = time.perf_counter()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
        if args.eval_every and step % args.eval_every == args.eval_every - 1:
            model.eval()
            with torch.no_grad():
                model(x)
            model.train()
    quarter = len(times) // 4
    first, last = statistics.median(times[:quarter]), statistics.median(times[-quarter:])
    print(f"steps: {args.steps}, {'without' if args.baseline else 'with'} oomguard (cpu mode), CPU")
    print(f"median step, first quarter: {first * 1e3:.3f} ms")
    print(f"median step, last quarter:  {last * 1e3:.3f} ms")
    print(f"last / first: {last / first:.3f}")
    if args.baseline:
        return 0
    result = oomguard.report()
    rank_dir = result["dir"]
    timeline = os.path.join(rank_dir, "timeline.csv")
    with open(timeline) as f:
        rows = sum(1 for _ in f) - 1
    print(f"timeline.csv: {rows} rows, {os.path.getsize(timeline) / 1e6:.2f} MB "
          f"({os.path.getsize(timeline) / args.steps:.1f} B per step)")
    print(f"report.html: {os.path.getsize(os.path.join(rank_dir, 'report.html')) / 1e6:.2f} MB, "
          f"written in {result['seconds']:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
