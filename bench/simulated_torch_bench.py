"""Allocator cost from Python on the simulated GPU, four configurations in one run.

Configurations, each in its own process (the allocator is fixed once CUDA
initialises):

* ``native``: torch's CUDA caching allocator alone;
* ``observe``: the same with oomguard installed in observe mode (its trace
  tracker runs on every allocation and free, under torch's allocator lock);
* ``own``: oomguard installed in own mode (the core allocator serves CUDA
  through ``CUDAPluggableAllocator``);
* ``history``: torch's ``torch.cuda.memory._record_memory_history()``;
* ``noop`` (only when asked for, ``--configs native,noop,observe``): a c10
  trace tracker that does nothing, built here with torch.utils.cpp_extension
  (about 30 s the first time). Once any tracker is attached, c10 builds a
  TraceEntry for every ALLOC, FREE_REQUESTED and FREE_COMPLETED: this is the
  floor under observe mode's cost that oomguard's own code cannot remove.

Workloads, timed in rounds that visit the processes in a rotating order
(ABCD, BCDA, ...), so drift of a shared machine hits every configuration:

* ``alloc``: ``torch.empty(n, dtype=uint8, device="cuda")`` dropped at once,
  per size (a small-pool and a large-pool size by default), in ns per pair;
* ``step``: one training step (forward, backward, AdamW, zero_grad) of a
  Llama-shaped model built on the device in bf16; kernels do not run on the
  simulated device, so a step costs host-side dispatch and allocation only.

Figures: per configuration the median over rounds of each round's median;
ratios: the median over rounds of (configuration / native) within a round.
Reserved peaks come from the warm-up (model build and the first steps):
torch's ``max_memory_reserved`` where the native allocator serves, the core
allocator's peak reserved in own mode.

These are simulated-device figures (host-side costs of the CUDA paths), never
GPU figures. Examples::

    python bench/simulated_torch_bench.py                         # 1B model, A100-80GB
    python bench/simulated_torch_bench.py --model 4layer --rounds 5 --json out.json
    python bench/simulated_torch_bench.py --configs native,own --workloads alloc

The stand-ins come from ``tests/python/simulated.py`` (``OOMGUARD_SIM_LIB_DIR``,
the installed package, or the main build tree); ``--inherit-env`` runs the
workers in this process's environment instead (a real GPU, or a simulated
environment set up by hand; the table then says so).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "python"))

CONFIGS = ("native", "observe", "own", "history")
OPTIONAL_CONFIGS = ("noop",)

NOOP_TRACKER_SOURCE = r"""
#include <torch/extension.h>
#include <c10/cuda/CUDACachingAllocator.h>
namespace cca = c10::cuda::CUDACachingAllocator;
static void noop(const cca::TraceEntry&) {}
void attach() { cca::get()->attachAllocatorTraceTracker(&noop); }
PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("attach", &attach); }
"""
NOOP_TRACKER = "oomguard_noop_tracker"

# The Llama models: transformers' LlamaConfig arguments, dtype, batch, sequence.
MODELS = {
    # 1.1B parameters (TinyLlama's shape), bf16 as a fine-tune would run it.
    "1b": (dict(vocab_size=32000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                num_attention_heads=32, num_key_value_heads=4), "bfloat16", 1, 1024),
    # The 4-layer Llama of tests/gpu/test_torch_gpu.py (fp32, 4 x 256), where
    # issue 10 saw own mode reserve 320.9 MB against native's 260.0 MB.
    "4layer": (dict(vocab_size=4096, hidden_size=512, intermediate_size=1376, num_hidden_layers=4,
                    num_attention_heads=8, num_key_value_heads=4), "float32", 4, 256),
}

WORKER = r"""
import json, sys, time
config, model_name, shape_json, dtype_name = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
batch, seq, warmup = int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
import torch
torch.set_num_threads(1)
if config == "observe":
    import oomguard
    assert oomguard.install(mode="observe").mode == "observe"
elif config == "own":
    import oomguard
    assert oomguard.install(mode="own").mode == "own"
device = torch.device("cuda")
torch.empty(1, device=device)  # CUDA initialises here, after the mode is chosen
if config == "history":
    torch.cuda.memory._record_memory_history()
elif config == "noop":
    import os
    sys.path.insert(0, os.environ["OOMGUARD_NOOP_TRACKER_DIR"])
    import oomguard_noop_tracker
    oomguard_noop_tracker.attach()

def reserved():
    # (current, peak) reserved bytes of device 0 as the serving allocator counts them.
    if config == "own":
        from oomguard import _C
        d = json.loads(_C.stats_json())["devices"]["cuda:0"]
        return d["reserved"], d["peak_reserved"]
    return torch.cuda.memory_reserved(), torch.cuda.max_memory_reserved()

step = None
if model_name != "none":
    from transformers import LlamaConfig, LlamaForCausalLM
    cfg = LlamaConfig(max_position_embeddings=max(2048, seq), attn_implementation="sdpa", **json.loads(shape_json))
    torch.manual_seed(0)
    # Built on the device: the init kernels do not run, so this is quick.
    with device:
        previous = torch.get_default_dtype()
        torch.set_default_dtype(getattr(torch, dtype_name))
        model = LlamaForCausalLM(cfg)
        torch.set_default_dtype(previous)
    params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, foreach=True)
    ids = torch.randint(0, cfg.vocab_size, (batch, seq), device=device)

    def step():
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        torch.cuda.synchronize()

    for _ in range(warmup):
        step()
else:
    params = 0
current, peak = reserved()
print(json.dumps({"ready": True, "params": params, "reserved": current, "peak_reserved": peak,
                  "max_allocated": torch.cuda.max_memory_allocated() if config != "own" else None}), flush=True)

for line in sys.stdin:
    words = line.split()
    if words[0] == "alloc":
        size, count = int(words[1]), int(words[2])
        empty, u8 = torch.empty, torch.uint8
        empty(size, dtype=u8, device=device)
        t0 = time.perf_counter_ns()
        for _ in range(count):
            empty(size, dtype=u8, device=device)
        print(json.dumps((time.perf_counter_ns() - t0) / count), flush=True)
    elif words[0] == "step":
        times = []
        for _ in range(int(words[1])):
            t0 = time.perf_counter_ns()
            step()
            times.append(time.perf_counter_ns() - t0)
        print(json.dumps(sorted(times)[len(times) // 2]), flush=True)
    elif words[0] == "reserved":
        print(json.dumps(reserved()), flush=True)
"""


def parse_sizes(text: str) -> list[int]:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    sizes = []
    for word in text.split(","):
        word = word.strip().lower().removesuffix("ib").removesuffix("b")
        scale = units.get(word[-1:], 1)
        sizes.append(int(float(word[:-1] if scale != 1 else word) * scale))
    return sizes


def human(n: float) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:g} {unit}"
    return f"{n:g} B"


class Worker:
    def __init__(self, config: str, args, env: dict):
        shape, dtype, _, _ = MODELS[args.model]
        self.config = config
        self.process = subprocess.Popen(
            [sys.executable, "-c", WORKER, config, args.model if "step" in args.workloads else "none",
             json.dumps(shape), dtype, str(args.batch), str(args.seq), str(args.warmup)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"worker '{config}' exited before it was ready (rc {self.process.wait()})")
        self.ready = json.loads(line)

    def ask(self, command: str):
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"worker '{self.config}' died on '{command}' (rc {self.process.wait()})")
        return json.loads(line)

    def close(self):
        self.process.stdin.close()
        self.process.wait()


def build_noop_tracker() -> str:
    """Builds the do-nothing trace tracker once; returns its directory."""
    import tempfile

    from torch.utils.cpp_extension import load_inline

    directory = os.path.join(tempfile.gettempdir(), "oomguard-noop-tracker")
    os.makedirs(directory, exist_ok=True)
    os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "9.0")  # no GPU to ask; the extension has no kernels
    load_inline(NOOP_TRACKER, NOOP_TRACKER_SOURCE, build_directory=directory, with_cuda=True, verbose=False)
    return directory


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", default="A100-80GB", help="simulated devices (OOMGUARD_SIMULATE), default A100-80GB")
    parser.add_argument("--inherit-env", action="store_true",
                        help="run the workers in this environment, not on the simulated device")
    parser.add_argument("--configs", default=",".join(CONFIGS),
                        help=f"comma list of {', '.join(CONFIGS + OPTIONAL_CONFIGS)} (default: {', '.join(CONFIGS)})")
    parser.add_argument("--workloads", default="alloc,step", help="comma list of alloc, step")
    parser.add_argument("--model", choices=sorted(MODELS), default="1b")
    parser.add_argument("--batch", type=int, help="default: the model's (1b: 1, 4layer: 4)")
    parser.add_argument("--seq", type=int, help="default: the model's (1b: 1024, 4layer: 256)")
    parser.add_argument("--warmup", type=int, default=3, help="training steps before timing (and the reserved peak)")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--pairs", type=int, default=20000, help="torch.empty pairs per size per round")
    parser.add_argument("--steps", type=int, default=3, help="training steps per round")
    parser.add_argument("--sizes", default="4KiB,4MiB", help="torch.empty sizes (bytes; KiB/MiB suffixes)")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    args.workloads = args.workloads.split(",")
    args.batch = args.batch or MODELS[args.model][2]
    args.seq = args.seq or MODELS[args.model][3]
    configs = args.configs.split(",")
    for c in configs:
        if c not in CONFIGS + OPTIONAL_CONFIGS:
            parser.error(f"--configs: '{c}' is not accepted; accepted: {', '.join(CONFIGS + OPTIONAL_CONFIGS)}")
    for w in args.workloads:
        if w not in ("alloc", "step"):
            parser.error(f"--workloads: '{w}' is not accepted; accepted: alloc, step")
    sizes = parse_sizes(args.sizes)

    if args.inherit_env:
        env, where = dict(os.environ), "the inherited environment (not the simulated device unless set up so)"
    else:
        import simulated

        env, where = simulated.environment(args.spec), f"simulated device {args.spec}"
    env["OOMGUARD_SIM_LOG"] = env.get("OOMGUARD_SIM_LOG", "1")
    if "noop" in configs:
        env["OOMGUARD_NOOP_TRACKER_DIR"] = build_noop_tracker()

    workers = {}
    try:
        for c in configs:  # one at a time: building a model is the heaviest part
            workers[c] = Worker(c, args, env)
        measures = [("alloc", s) for s in sizes] if "alloc" in args.workloads else []
        if "step" in args.workloads:
            measures.append(("step", None))
        figures = {m: {c: [] for c in configs} for m in measures}
        started = time.time()
        for r in range(args.rounds):
            order = configs[r % len(configs):] + configs[:r % len(configs)]
            if r % 2:
                order.reverse()
            for kind, size in measures:
                for c in order:
                    command = f"alloc {size} {args.pairs}" if kind == "alloc" else f"step {args.steps}"
                    figures[(kind, size)][c].append(workers[c].ask(command))
        elapsed = time.time() - started
        final = {c: workers[c].ask("reserved") for c in configs}
    finally:
        for w in workers.values():
            w.close()

    base = "native" if "native" in configs else configs[0]
    print(f"oomguard allocator benchmark on {where}; figures are host-side costs, NOT GPU figures")
    if "step" in args.workloads:
        params = workers[configs[0]].ready["params"]
        print(f"model: Llama '{args.model}' ({params / 1e9:.3f}B parameters, {MODELS[args.model][1]}), "
              f"batch {args.batch} x {args.seq}, "
              f"AdamW foreach; {args.warmup} warm-up steps")
    print(f"{args.rounds} rounds in {elapsed:.0f} s, rotating order; medians over rounds, ratios to '{base}' "
          f"paired within each round (quartiles in brackets)")
    header = f"{'measure':<26}" + "".join(f"{c:>14}" for c in configs) + "".join(
        f"{c + '/' + base:>24}" for c in configs if c != base)
    print(header)
    out = {"where": where, "model": args.model, "batch": args.batch, "seq": args.seq, "rounds": args.rounds,
           "pairs": args.pairs, "measures": {}, "reserved": {}}
    for (kind, size), per_config in figures.items():
        name = f"alloc+free {human(size)} (ns)" if kind == "alloc" else "training step (ms)"
        scale = 1.0 if kind == "alloc" else 1e-6
        row = f"{name:<26}" + "".join(f"{statistics.median(per_config[c]) * scale:>14.1f}" for c in configs)
        entry = {c: {"median": statistics.median(per_config[c]) * scale} for c in configs}
        for c in configs:
            if c == base:
                continue
            ratios = [a / b for a, b in zip(per_config[c], per_config[base])]
            q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
            row += f"{statistics.median(ratios):>10.3f} [{q[0]:.3f}..{q[2]:.3f}]"
            entry[c]["ratio"] = statistics.median(ratios)
            entry[c]["quartiles"] = [q[0], q[2]]
        print(row)
        out["measures"][name] = entry
    if "step" in args.workloads:
        row = f"{'reserved peak (MiB)':<26}"
        for c in configs:
            peak = workers[c].ready["peak_reserved"]
            out["reserved"][c] = {"after_warmup_peak": peak, "end_current": final[c][0], "end_peak": final[c][1]}
            row += f"{peak / 2**20:>14.1f}"
        for c in configs:
            if c != base:
                row += f"{workers[c].ready['peak_reserved'] / workers[base].ready['peak_reserved']:>24.3f}"
        print(row)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
