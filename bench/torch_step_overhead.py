"""Step time of a LoRA fine-tune with and without oomguard, in one run.

The model is Llama-style: 4 layers, hidden 256, sequence 256, LoRA on q/v
(``--size small``, CPU), or 1.1B parameters (``--size 1b``, for a GPU).

Two methods, both alternating "with" and "without" in short blocks so that
drift of a shared machine hits both sides; the figure is the median over
block pairs of the ratio of their median step times:

* in-process (default): one process with oomguard installed; for the
  "without" blocks the allocation source is paused (``_C.set_cpu_tracking``)
  and the hooks are removed. What stays is one atomic load per allocation in
  the paused CPU allocator, so this slightly flatters oomguard (by a few ns
  per allocation) but is free of differences between processes.
* processes: a plain process against one with oomguard installed.

    python bench/torch_step_overhead.py [--steps 10] [--blocks 40] [--method processes]
    python bench/torch_step_overhead.py --device cuda --size 1b   # observe mode
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

WORKER = r"""
import sys, time, json, torch
side, threads, device, size = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
torch.set_num_threads(threads)
if side in ("on", "toggle"):
    import oomguard
    from oomguard import _C, phases
    oomguard.install(mode="cpu" if device == "cpu" else "observe")
def set_tracking(enabled):
    # In-process A/B: pause the allocation source and remove the hooks.
    if device == "cpu":
        _C.set_cpu_tracking(enabled)
    if enabled:
        phases.install()
    else:
        phases.uninstall()
from transformers import LlamaConfig, LlamaForCausalLM
from peft import LoraConfig, get_peft_model
torch.manual_seed(0)
if size == "small":  # 4 layers, hidden 256, sequence 256
    shape = dict(vocab_size=1000, hidden_size=256, intermediate_size=688, num_hidden_layers=4,
                 num_attention_heads=8, num_key_value_heads=4)
    batch, seq = 1, 256
else:  # "1b": 1.1B parameters
    shape = dict(vocab_size=32000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                 num_attention_heads=32, num_key_value_heads=4)
    batch, seq = 4, 1024
config = LlamaConfig(max_position_embeddings=2048, attn_implementation="sdpa", **shape)
dtype = torch.float32 if device == "cpu" else torch.bfloat16
base = LlamaForCausalLM(config).to(device=device, dtype=dtype)
model = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"]))
optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
ids = torch.randint(0, shape["vocab_size"], (batch, seq), device=device)
def sync():
    if device != "cpu":
        torch.cuda.synchronize()
def step():
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    sync()
for _ in range(3):
    step()
print("ready", flush=True)
for line in sys.stdin:
    which, n = line.split()
    n = int(n)
    if side == "toggle":
        set_tracking(which == "on")
    times = []
    for _ in range(n):
        t0 = time.perf_counter(); step(); times.append(time.perf_counter() - t0)
    print(json.dumps(times), flush=True)
"""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=10, help="steps per block")
    parser.add_argument("--blocks", type=int, default=40, help="blocks per side")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--method", choices=("in-process", "processes"), default="in-process",
                        help="in-process: one process, oomguard paused and resumed between blocks; "
                             "processes: a plain process against an installed one")
    parser.add_argument("--device", default="cpu", help="cpu (oomguard in cpu mode) or cuda (observe mode)")
    parser.add_argument("--size", choices=("small", "1b"), default="small",
                        help="small: 4 layers, hidden 256, seq 256; 1b: 1.1B parameters, seq 1024 (GPU)")
    args = parser.parse_args()

    def start(side):
        worker = subprocess.Popen([sys.executable, "-c", WORKER, side, str(args.threads), args.device, args.size],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert worker.stdout.readline().strip() == "ready"
        return worker

    if args.method == "in-process":
        toggled = start("toggle")
        workers = {"off": toggled, "on": toggled}
    else:
        workers = {"off": start("off"), "on": start("on")}
    times = {"off": [], "on": []}
    paired = []  # per block pair: ratio of the two block medians
    for block in range(args.blocks):
        # Alternate which side goes first, so neither always runs warmer.
        medians = {}
        for side in (("off", "on") if block % 2 == 0 else ("on", "off")):
            workers[side].stdin.write(f"{side} {args.steps}\n")
            workers[side].stdin.flush()
            block_times = json.loads(workers[side].stdout.readline())
            times[side] += block_times
            medians[side] = statistics.median(block_times)
        paired.append(medians["on"] / medians["off"])
    for worker in set(workers.values()):
        worker.stdin.close()
        worker.wait()
    off, on = statistics.median(times["off"]), statistics.median(times["on"])
    print(f"method {args.method}, device {args.device}, model {args.size}, steps per side: {len(times['off'])}, "
          f"torch threads: {args.threads}")
    print(f"median step without oomguard: {off * 1e3:.2f} ms")
    print(f"median step with oomguard:    {on * 1e3:.2f} ms")
    print(f"ratio of medians: {on / off:.4f} ({(on / off - 1) * 100:+.2f}%)")
    q = statistics.quantiles(paired, n=4)
    print(f"median of paired block ratios: {statistics.median(paired):.4f} "
          f"(quartiles {q[0]:.4f} .. {q[2]:.4f}, {len(paired)} pairs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
