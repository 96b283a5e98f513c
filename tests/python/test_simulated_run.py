"""`oomguard run --simulate SPEC` end to end (docs/simulator.md, "Ways in"):
the spec is checked against the GPU table before anything starts, the
command sees the table's devices, the preload sits in front of the
stand-ins, and the modes and options compose with it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

import simulated

REPO = simulated.REPO
MIB = 1 << 20


def _gpu_table() -> dict[str, dict]:
    """guard/data/gpus.def, the table both the estimator and the simulator
    are compiled from."""
    rows = {}
    with open(os.path.join(REPO, "guard", "data", "gpus.def")) as f:
        for line in f:
            m = re.match(r'OOMGUARD_GPU\("([^"]+)", "([^"]+)", (\d+), [\d.]+, (\d+), (\d+), (\d+), (\d+)\)', line)
            if m:
                rows[m[1]] = {"device_name": m[2], "memory": int(m[3]) * MIB, "capability": [int(m[4]), int(m[5])],
                              "sms": int(m[6]), "context": int(m[7]) * MIB}
    assert rows, "no rows read from guard/data/gpus.def"
    return rows


def _base_env(**extra: str) -> dict:
    env = dict(os.environ)
    for name in ("OOMGUARD_CONF", "OOMGUARD_SIMULATE", "CUDA_VISIBLE_DEVICES", "RANK", "LOCAL_RANK", "WORLD_SIZE"):
        env.pop(name, None)
    # The stand-ins the run must use: the same ones the other simulated tests use.
    env["OOMGUARD_SIM_LIB_DIR"] = simulated.lib_dir()
    env["OOMGUARD_PYTHON"] = sys.executable
    env.update(extra)
    return env


def _oomguard_run(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([simulated.oomguard_cli(), "run", *args], env=env or _base_env(), capture_output=True,
                          text=True, timeout=timeout, cwd=REPO)


DEVICES = """
import json, sys, torch
props = [torch.cuda.get_device_properties(i) for i in range(torch.cuda.device_count())]
print(json.dumps([{"name": p.name, "memory": p.total_memory, "capability": [p.major, p.minor],
                   "sms": p.multi_processor_count} for p in props]))
"""


def _devices(result: subprocess.CompletedProcess) -> list[dict]:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_script_runs_on_the_simulated_a100_with_its_report(tmp_path):
    script = tmp_path / "train.py"
    script.write_text("""
import json, sys, torch
model = torch.nn.Sequential(torch.nn.Linear(1024, 4096), torch.nn.ReLU(), torch.nn.Linear(4096, 1024)).cuda()
optimizer = torch.optim.AdamW(model.parameters())
x = torch.randn(64, 1024, device="cuda")
for _ in range(3):
    model(x).square().mean().backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
json.dump({"name": torch.cuda.get_device_name(), "max_allocated": torch.cuda.max_memory_allocated(),
           "max_requested": torch.cuda.memory_stats()["requested_bytes.all.peak"]}, open(sys.argv[1], "w"))
""")
    out = tmp_path / "torch.json"
    result = _oomguard_run("--simulate", "A100-80GB", "--mode", "observe", "--report-dir", str(tmp_path / "reports"),
                           "--", sys.executable, str(script), str(out))
    assert result.returncode == 0, result.stderr
    seen = json.loads(out.read_text())
    assert seen["name"] == _gpu_table()["A100-80GB"]["device_name"]
    summary = json.loads((tmp_path / "reports" / "rank0" / "summary.json").read_text())
    assert summary["reason"] == "exit"
    # The bytes tensors asked for (docs/hooks.md): torch's max_memory_allocated
    # counts 512-byte blocks, so it may be a few hundred bytes more.
    assert summary["peak"]["allocated_bytes"] == seen["max_requested"]
    assert 0 <= seen["max_allocated"] - seen["max_requested"] < 64 * 1024
    # Unless --no-preload, the preload ran in front of the stand-ins and saw
    # the segments too.
    preload = json.loads((tmp_path / "reports" / "rank0" / "preload-summary.json").read_text())
    assert preload["calls"]["cudaMalloc"] > 0


ATTENTION = """
import json, torch
q = torch.randn(1, 8, 256, 64, device="cuda", dtype=torch.bfloat16, requires_grad=True)
out = torch.nn.functional.scaled_dot_product_attention(q, q, q, is_causal=True)
out.sum().backward()
conv = torch.nn.Conv2d(3, 8, 3).cuda()(torch.randn(1, 3, 32, 32, device="cuda"))
print(json.dumps({"attention": out.grad_fn.name(), "conv": list(conv.shape)}))
"""


@pytest.mark.parametrize("gpu", ["H100-80GB", "B200"])
def test_bf16_attention_and_convolutions_run_on_a_simulated_hopper_or_blackwell(gpu):
    # Note [cuDNN on the simulated device]: torch prefers cuDNN's attention
    # from compute capability 9.0, and cuDNN cannot run on the simulator.
    result = _oomguard_run("--simulate", gpu, "--mode", "observe", "--", sys.executable, "-c", ATTENTION)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen == {"attention": "ScaledDotProductFlashAttentionBackward0", "conv": [1, 8, 30, 30]}


def test_an_unknown_gpu_exits_2_naming_the_accepted_ones_before_starting(tmp_path):
    marker = tmp_path / "started"
    for args, env in ((["--simulate", "Z100-80GB"], _base_env()),
                      (["--simulate", "0xL4"], _base_env()),
                      ([], _base_env(OOMGUARD_SIMULATE="A100-80GB,Z100"))):
        result = _oomguard_run(*args, "--", "touch", str(marker), env=env)
        assert result.returncode == 2, (args, result.stderr)
        assert "A100-80GB" in result.stderr and "H100-80GB" in result.stderr and "4xH100-80GB" in result.stderr
        assert not marker.exists()
    named = _oomguard_run("--simulate", "Z100-80GB", "--", "true")
    assert "--simulate 'Z100-80GB'" in named.stderr and "'Z100-80GB' is not a GPU of the table" in named.stderr


def test_2xl4_shows_two_l4s_and_cuda_visible_devices_one():
    l4 = _gpu_table()["L4"]
    expected = {"name": l4["device_name"], "memory": l4["memory"], "capability": l4["capability"], "sms": l4["sms"]}
    both = _devices(_oomguard_run("--simulate", "2xL4", "--", sys.executable, "-c", DEVICES))
    assert both == [expected, expected]
    assert expected["name"] == "NVIDIA L4"
    one = _devices(_oomguard_run("--simulate", "2xL4", "--", sys.executable, "-c", DEVICES,
                                 env=_base_env(CUDA_VISIBLE_DEVICES="1")))
    assert one == [expected]


def test_a_mixed_list_and_the_environment_form():
    table = _gpu_table()
    mixed = _devices(_oomguard_run("--simulate", "A100-80GB,L4", "--", sys.executable, "-c", DEVICES))
    assert [d["name"] for d in mixed] == [table["A100-80GB"]["device_name"], table["L4"]["device_name"]]
    # OOMGUARD_SIMULATE in oomguard run's environment means --simulate.
    from_env = _devices(_oomguard_run("--", sys.executable, "-c", DEVICES, env=_base_env(OOMGUARD_SIMULATE="H100-80GB")))
    assert [d["name"] for d in from_env] == [table["H100-80GB"]["device_name"]]


PRELOAD_ORDER = "import json, os; print(json.dumps([os.environ['OOMGUARD_SIMULATE'], os.environ['LD_PRELOAD']]))"


def test_the_preload_comes_before_the_stand_ins_and_no_preload_leaves_it_out():
    names = [os.path.basename(p) for p in ("liboomguard_preload.so", *simulated.PRELOADED)]
    # A stand-in already on LD_PRELOAD (the environment form set by hand) is
    # not repeated, and the order still holds.
    env = _base_env(LD_PRELOAD=os.path.join(simulated.lib_dir(), "libcudart.so.13"))
    for extra in (["--preload-only"], []):
        result = _oomguard_run("--simulate", "L4", *extra, "--", sys.executable, "-c", PRELOAD_ORDER, env=env)
        assert result.returncode == 0, result.stderr
        spec, preload = json.loads(result.stdout.strip().splitlines()[-1])
        assert spec == "L4"
        assert [os.path.basename(p) for p in preload.split(":")] == names
        assert os.path.dirname(preload.split(":")[1]) == os.path.realpath(simulated.lib_dir())
    result = _oomguard_run("--simulate", "L4", "--no-preload", "--", sys.executable, "-c", PRELOAD_ORDER)
    assert result.returncode == 0, result.stderr
    _, preload = json.loads(result.stdout.strip().splitlines()[-1])
    assert [os.path.basename(p) for p in preload.split(":")] == names[1:]


def test_the_python_launcher_hands_simulate_to_the_cli():
    # `python -m oomguard run --simulate` builds no environment of its own: it
    # hands the command line to the C++ launcher, which checks the spec too.
    env = _base_env(OOMGUARD_CLI=simulated.oomguard_cli())
    ran = subprocess.run([sys.executable, "-m", "oomguard", "run", "--simulate", "2xL4", "--", sys.executable, "-c",
                          DEVICES], env=env, capture_output=True, text=True, timeout=300)
    assert [d["name"] for d in _devices(ran)] == ["NVIDIA L4", "NVIDIA L4"]
    bad = subprocess.run([sys.executable, "-m", "oomguard", "run", "--simulate", "Z100", "--", "true"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "'Z100' is not a GPU of the table" in bad.stderr


def test_own_mode_and_a_budget_compose_with_simulate():
    code = """
import torch, oomguard
h = oomguard.installed()
assert h is not None and h.mode == "own", h and h.mode
small = torch.empty(256 << 20, dtype=torch.uint8, device="cuda")
try:
    torch.empty(2 << 30, dtype=torch.uint8, device="cuda")
except torch.OutOfMemoryError:
    print("refused")
"""
    result = _oomguard_run("--simulate", "A100-80GB", "--mode", "own", "--budget", "1GiB", "--", sys.executable, "-c",
                           code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "refused"


@pytest.mark.parametrize("spec", ["4xH100-80GB", " 2 x L4 , A100-80GB"])
def test_specs_the_driver_accepts_are_accepted(spec):
    result = _oomguard_run("--simulate", spec, "--no-preload", "--", sys.executable, "-c",
                           "import torch; print(torch.cuda.device_count())")
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip().splitlines()[-1]) == (4 if spec.startswith("4x") else 3)


SEED = os.path.join(REPO, "examples", "mistral_7b_full_finetune.py")


def test_the_seed_scenario_smaller_has_exact_categories_and_torchs_peak(tmp_path):
    # examples/mistral_7b_full_finetune.py with 2 of its 32 layers: Mistral-7B's
    # widths, bf16 weights, AdamW, 3 steps, under observe mode.
    out = tmp_path / "seed.json"
    reports = tmp_path / "reports"
    result = _oomguard_run("--simulate", "A100-80GB", "--mode", "observe", "--report-dir", str(reports), "--",
                           sys.executable, SEED, "--layers", "2", "--seq", "512", "--out", str(out), timeout=600)
    assert result.returncode == 0, result.stderr
    seen = json.loads(out.read_text())
    parameters = seen["parameter_bytes"]
    assert seen["device"] == _gpu_table()["A100-80GB"]["device_name"]
    # AdamW keeps exp_avg and exp_avg_sq in the parameters' dtype (bf16).
    assert seen["optimizer_state_dtypes"] == ["torch.bfloat16"]
    assert seen["optimizer_state_bytes"] == 2 * parameters

    summary = json.loads((reports / "rank0" / "summary.json").read_text())
    peak = summary["peak"]
    # The bytes tensors asked for, to the byte (Note [Allocated bytes:
    # requested, not rounded] in test_simulated_torch.py); torch's
    # max_memory_allocated counts blocks, a few hundred bytes more here.
    assert peak["allocated_bytes"] == seen["max_requested"]
    assert 0 <= seen["max_allocated"] - peak["allocated_bytes"] < 64 * 1024
    assert peak["by_category"]["weights"] == parameters
    assert peak["by_category"]["optimizer"] == 2 * parameters
    # At the last step boundary: the weights and the optimizer state, exactly.
    closed = [s for s in summary["steps"] if s["device"] == "cuda:0"][:-1]  # the open step last
    last = closed[-1]["at_end"]
    assert last["weights"] == parameters and last["optimizer"] == 2 * parameters


DDP = """
import json, os, sys, torch, torch.distributed as dist
dist.init_process_group("nccl")
rank = dist.get_rank()
torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
model = torch.nn.Sequential(torch.nn.Linear(512, 2048), torch.nn.ReLU(), torch.nn.Linear(2048, 512)).cuda()
ddp = torch.nn.parallel.DistributedDataParallel(model)
optimizer = torch.optim.AdamW(ddp.parameters())
x = torch.randn(32 * (rank + 1), 512, device="cuda")  # rank 1's batch is twice rank 0's
for _ in range(3):
    ddp(x).square().mean().backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
dist.all_reduce(torch.ones(8, device="cuda"))
dist.barrier()
json.dump({"rank": rank, "device": torch.cuda.current_device(), "world": dist.get_world_size(),
           "max_allocated": torch.cuda.max_memory_allocated(),
           "max_requested": torch.cuda.memory_stats()["requested_bytes.all.peak"]}, open(sys.argv[1] + f".{rank}", "w"))
dist.destroy_process_group()
"""


def test_torchrun_two_ranks_on_nccl_write_one_report_per_rank(tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(DDP)
    out = tmp_path / "torch.json"
    reports = tmp_path / "reports"
    result = _oomguard_run("--simulate", "2xA100-80GB", "--mode", "observe", "--report-dir", str(reports), "--",
                           sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc-per-node", "2", str(script), str(out), timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    for rank in (0, 1):
        seen = json.loads((tmp_path / f"torch.json.{rank}").read_text())
        assert seen["world"] == 2 and seen["device"] == rank
        summary = json.loads((reports / f"rank{rank}" / "summary.json").read_text())
        # Each rank's own report: its peak is that rank's torch peak of
        # requested bytes, to the byte (the launcher, which touches no GPU,
        # does not write over rank 0's); max_allocated counts 512-byte
        # blocks, more when small tensors are live at the peak.
        assert summary["peak"]["allocated_bytes"] == seen["max_requested"], (rank, summary["peak"])
        assert 0 <= seen["max_allocated"] - seen["max_requested"] < 64 * 1024
    peaks = [json.loads((tmp_path / f"torch.json.{r}").read_text())["max_allocated"] for r in (0, 1)]
    assert peaks[1] > peaks[0]


def _custom_loop_on_two_ranks(tmp_path, name: str, *options: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
    """tests/python/user_runs/custom_loop.py, a plain DDP loop, under torchrun
    with 2 ranks on the nccl backend, one simulated A100 each."""
    env = _base_env()
    env["PYTHONPATH"] = os.path.join(REPO, "tests", "python", "user_runs") + os.pathsep + env.get("PYTHONPATH", "")
    reports = tmp_path / name
    result = _oomguard_run("--simulate", "2xA100-80GB", "--mode", "observe", "--report-dir", str(reports),
                           "--conf", "max_seq_len:128", *options, "--", sys.executable, "-m", "torch.distributed.run",
                           "--standalone", "--nproc-per-node", "2",
                           os.path.join(REPO, "tests", "python", "user_runs", "custom_loop.py"), "--device", "cuda",
                           "--output-dir", str(tmp_path / f"{name}-out"), env=env, timeout=300)
    summaries = []
    for rank in (0, 1):
        path = reports / f"rank{rank}" / "summary.json"
        summaries.append(json.loads(path.read_text()) if path.exists() else None)
    return result, summaries


def test_a_plain_ddp_loop_on_nccl_with_a_budget_below_its_peak_fits_or_stops_early(tmp_path):
    free, reference = _custom_loop_on_two_ranks(tmp_path, "free")
    assert free.returncode == 0, free.stderr[-4000:]
    for rank, summary in enumerate(reference):
        assert summary["rank"] == rank and summary["device"] == f"cuda:{rank}"
        assert summary["reason"] == "exit" and summary["actions"] == []
    early = max(s["peak_allocated_bytes"] for s in reference[0]["steps"][:3])
    peak = reference[0]["peak"]["allocated_bytes"]
    assert peak > 1.5 * early
    budget = (early + peak) // 2
    guarded, summaries = _custom_loop_on_two_ranks(tmp_path, "guarded", "--budget", str(budget))
    # Both ranks fit by checkpointing, or both stop at the same boundary
    # before the long batch. The simulated NCCL moves no values between
    # ranks (docs/simulator.md), so here they agree because their runs are
    # the same; the agreement itself is tested on gloo
    # (test_guard_distributed.py; Note [Distributed agreement] in guard.py).
    # On this run checkpointing all 4 blocks brings the predicted allocated
    # peak under the budget but not the reserved one (the cache's segments),
    # so the guard stops at the next boundary; with actions warn+checkpoint
    # alone the same run ends in an out-of-memory in the long step.
    kinds = [[a["kind"] for a in s["actions"]] for s in summaries]
    assert kinds[0] == kinds[1], kinds
    if guarded.returncode == 0:
        assert "checkpoint" in kinds[0]
        for summary in summaries:
            assert summary["peak"]["allocated_bytes"] <= budget, (summary["peak"], budget)
    else:
        assert kinds[0][0] == "warn" and kinds[0][-1] == "abort", kinds
        steps = {s["actions"][-1]["step"] for s in summaries}
        assert len(steps) == 1, steps
        (stop,) = steps
        # The guard's step N is the boundary after N steps, before the
        # Ledger's step N (counted from 0); the long batch is the reference's peak step.
        long_step = reference[0]["peak"]["step"]
        assert 2 <= stop <= long_step, (stop, long_step)
        for rank, summary in enumerate(summaries):
            assert summary["reason"] == "abort"
            assert summary["peak"]["allocated_bytes"] < budget  # stopped before the long batch
        assert guarded.stderr.count(f"oomguard: aborting at step {stop}") == 2  # one line per rank
