"""The seed scenario: a full fine-tune of Mistral-7B, as a user writes it.

Random-initialised Mistral-7B-v0.1 shapes (transformers' MistralConfig
defaults), bf16 weights built on the GPU, AdamW, batch 1 x 1024 tokens,
3 steps. Nothing of oomguard in it: run it under `oomguard run`. On a
machine without a GPU, the simulated A100 80GB (docs/simulator.md) runs it
in seconds, with kernels counted but never run:

    oomguard run --simulate A100-80GB --mode observe --report-dir reports -- \\
        python3 examples/mistral_7b_full_finetune.py

--layers N builds fewer decoder layers (the tests' smaller version); --out
writes what torch saw (peaks, parameter bytes) as JSON for checking.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from transformers import AutoModelForCausalLM, MistralConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=None, help="decoder layers (default: Mistral-7B's 32)")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--seq", type=int, default=1024)
    parser.add_argument("--out", help="write torch's figures here (JSON)")
    args = parser.parse_args()

    started = time.perf_counter()
    torch.manual_seed(0)
    config = MistralConfig()  # the defaults are Mistral-7B-v0.1's shapes
    if args.layers is not None:
        config.num_hidden_layers = args.layers
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    input_ids = torch.randint(0, config.vocab_size, (args.batch, args.seq), device="cuda")

    for step in range(args.steps):
        loss = model(input_ids=input_ids, labels=input_ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        print(f"step {step}: max allocated {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB", flush=True)
    torch.cuda.synchronize()

    parameters = list(model.parameters())
    state = [t for s in optimizer.state.values() for t in s.values() if torch.is_tensor(t) and t.is_cuda]
    figures = {
        "device": torch.cuda.get_device_name(),
        "parameters": sum(p.numel() for p in parameters),
        "parameter_bytes": sum(p.numel() * p.element_size() for p in parameters),
        "optimizer_state_bytes": sum(t.numel() * t.element_size() for t in state),
        "optimizer_state_dtypes": sorted({str(t.dtype) for t in state}),
        "max_allocated": torch.cuda.max_memory_allocated(),
        # What tensors asked for, before the 512-byte rounding of blocks.
        "max_requested": torch.cuda.memory_stats()["requested_bytes.all.peak"],
        "max_reserved": torch.cuda.max_memory_reserved(),
        "allocated": torch.cuda.memory_allocated(),
        "seconds": time.perf_counter() - started,
    }
    print(f"{figures['parameters'] / 1e9:.2f}B parameters; peak allocated {figures['max_allocated'] / 2**30:.2f} GiB, "
          f"reserved {figures['max_reserved'] / 2**30:.2f} GiB on {figures['device']}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(figures, f, indent=1)


if __name__ == "__main__":
    main()
