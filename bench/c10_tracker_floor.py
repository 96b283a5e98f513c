"""What c10 itself charges for any allocator trace tracker, on the simulated GPU.

Observe mode listens to torch's native caching allocator through
``attachAllocatorTraceTracker``. Once any tracker is attached, c10 builds a
TraceEntry (two strings, a context pointer, a clock read) for every ALLOC,
FREE_REQUESTED and FREE_COMPLETED and calls each tracker under its lock. This
script measures that floor: ``torch.empty(4096)`` then drop, from Python, with
no tracker (native), with a tracker that does nothing (noop, built here with
torch.utils.cpp_extension, about 30 s the first time), and with oomguard's
observe mode. Each configuration runs in its own process, rounds alternate.

Simulated-device figures (host-side costs), never GPU figures::

    python bench/c10_tracker_floor.py --rounds 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "python"))

NOOP_SOURCE = r"""
#include <torch/extension.h>
#include <c10/cuda/CUDACachingAllocator.h>
namespace cca = c10::cuda::CUDACachingAllocator;
static void noop(const cca::TraceEntry&) {}
void attach() { cca::get()->attachAllocatorTraceTracker(&noop); }
PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("attach", &attach); }
"""

WORKER = r"""
import sys, time, torch
config, build, size, pairs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if config == "observe":
    import oomguard
    assert oomguard.install(mode="observe").mode == "observe"
device = torch.device("cuda")
torch.empty(1, device=device)
if config == "noop":
    sys.path.insert(0, build)
    import oomguard_noop_tracker
    oomguard_noop_tracker.attach()
empty, u8 = torch.empty, torch.uint8
times = []
for _ in range(7):
    t0 = time.perf_counter_ns()
    for _ in range(pairs):
        empty(size, dtype=u8, device=device)
    times.append((time.perf_counter_ns() - t0) / pairs)
print(sorted(times)[3])
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--pairs", type=int, default=20000)
    args = parser.parse_args()
    import simulated

    build = os.path.join(tempfile.gettempdir(), "oomguard-noop-tracker")
    os.makedirs(build, exist_ok=True)
    env = simulated.environment("A100-80GB", OOMGUARD_SIM_LOG="0")
    os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "9.0")  # no GPU to ask; the extension has no kernels
    from torch.utils.cpp_extension import load_inline

    load_inline("oomguard_noop_tracker", NOOP_SOURCE, build_directory=build, with_cuda=True, verbose=False)
    results: dict[str, list[float]] = {"native": [], "noop": [], "observe": []}
    for round_index in range(args.rounds):
        order = list(results)[round_index % 3:] + list(results)[:round_index % 3]
        for config in order:
            out = subprocess.run([sys.executable, "-c", WORKER, config, build, str(args.size), str(args.pairs)],
                                 env=env, capture_output=True, text=True, check=True)
            results[config].append(float(out.stdout.strip().splitlines()[-1]))
    native = statistics.median(results["native"])
    print(f"alloc+free {args.size} B on simulated A100-80GB; host-side costs, NOT GPU figures; "
          f"median of {args.rounds} rounds")
    for config, values in results.items():
        value = statistics.median(values)
        print(f"{config:8s} {value:8.0f} ns  {value / native:.3f}x native")
    return 0


if __name__ == "__main__":
    sys.exit(main())
