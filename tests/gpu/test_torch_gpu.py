"""The torch layer on a real GPU, or on the simulated one where there is
none (tests/python/test_simulated_gpu_scripts.py runs this file in CI):
observe mode matches torch's own counters, own mode trains to the same loss
(on the simulated device every loss reads back as 0.0, so there it checks
only that both run).

Each case runs in a fresh process: the mode is fixed once CUDA initialises.
The step-time overhead on a >= 1B-parameter model is measured by
``bench/torch_step_overhead.py --device cuda --size 1b`` (no timed assertions
in tests).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import simulated  # noqa: E402  (tests/python/simulated.py)

MIB = 1 << 20

TRAIN = """
import json, sys, torch
from transformers import LlamaConfig, LlamaForCausalLM
torch.manual_seed(0)
config = LlamaConfig(vocab_size=4096, hidden_size=512, intermediate_size=1376, num_hidden_layers=4,
                     num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=1024)
model = LlamaForCausalLM(config).cuda()
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
generator = torch.Generator().manual_seed(0)
losses, checks = [], []
for step in range(5):
    ids = torch.randint(0, 4096, (4, 256), generator=generator).cuda()
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
    checks.append(check())
    optimizer.zero_grad(set_to_none=True)
print(json.dumps({"losses": losses, "checks": checks}))
"""


def _run(prelude: str) -> dict:
    env = dict(os.environ)
    env.pop("OOMGUARD_CONF", None)
    if not torch.cuda.is_available():
        env = simulated.environment("A100-80GB", env)
    code = textwrap.dedent(prelude) + TRAIN
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_observe_matches_torch_allocated_and_reserved_at_every_boundary():
    out = _run("""
        import torch, oomguard
        assert oomguard.install(mode="observe").mode == "observe"
        def check():
            d = oomguard.stats()["devices"]["cuda:0"]
            return {"ours": [d["allocated"], d["reserved"]],
                    "torch": [torch.cuda.memory_stats()["requested_bytes.all.current"], torch.cuda.memory_reserved()],
                    "weights": d["current"]["weights"], "optimizer": d["current"]["optimizer"]}
    """)
    # Allocated: the bytes tensors asked for, as c10's trace tracker reports
    # them (torch's requested_bytes); memory_allocated() counts 512-byte blocks.
    for check in out["checks"]:
        (ours_allocated, ours_reserved), (torch_allocated, torch_reserved) = check["ours"], check["torch"]
        assert abs(ours_allocated - torch_allocated) <= MIB, check
        assert abs(ours_reserved - torch_reserved) <= MIB, check
        assert check["weights"] > 0 and check["optimizer"] > 0


def test_observe_attaches_when_cuda_was_initialised_before_install():
    out = _run("""
        import torch
        torch.zeros(1, device="cuda")
        import oomguard
        assert oomguard.install(mode="observe").mode == "observe"
        def check():
            d = oomguard.stats()["devices"]["cuda:0"]
            return {"ours": [d["allocated"], d["reserved"]],
                    "torch": [torch.cuda.memory_stats()["requested_bytes.all.current"], torch.cuda.memory_reserved()]}
    """)
    # The 4 bytes of the early tensor are the only ones the tracker missed;
    # the segment it lives in was reserved before attach.
    last = out["checks"][-1]
    assert abs(last["ours"][0] - last["torch"][0]) <= MIB
    assert last["ours"][1] <= last["torch"][1]


def test_own_mode_trains_to_the_same_loss():
    native = _run("""
        def check():
            return None
    """)
    own = _run("""
        import warnings, torch, oomguard
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert oomguard.install(mode="own").mode == "own"
        def check():
            d = oomguard.stats()["devices"]["cuda:0"]
            return {"allocated": d["allocated"], "weights": d["current"]["weights"]}
    """)
    assert own["losses"] == pytest.approx(native["losses"], rel=1e-3)
    for check in own["checks"]:
        assert check["allocated"] > 0 and check["weights"] > 0


def test_own_mode_after_cuda_init_says_so_and_observes():
    out = _run("""
        import warnings, torch
        torch.zeros(1, device="cuda")
        import oomguard
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            mode = oomguard.install(mode="own").mode
        assert mode == "observe", mode
        assert any("before CUDA initialises" in str(w.message) for w in caught)
        def check():
            return oomguard.stats()["devices"]["cuda:0"]["allocated"]
    """)
    assert all(allocated > 0 for allocated in out["checks"])
