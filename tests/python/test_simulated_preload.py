"""liboomguard_preload.so under real torch on the simulated device: the
checks of tests/gpu/run_preload_gpu.sh (all but its timings), with the
preload put in front of the stand-ins by `oomguard run --simulate`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import simulated

REPO = simulated.REPO
MIB = 1 << 20
CHECK = os.path.join(REPO, "tests", "gpu", "preload_torch_check.py")


def _env(report_dir, **extra: str) -> dict:
    env = dict(os.environ)
    for name in ("OOMGUARD_CONF", "OOMGUARD_SIMULATE", "CUDA_VISIBLE_DEVICES", "RANK", "LOCAL_RANK"):
        env.pop(name, None)
    env["OOMGUARD_SIM_LIB_DIR"] = simulated.lib_dir()
    env["OOMGUARD_REPORT_DIR"] = str(report_dir)
    env["STEPS"] = "5"
    env.update(extra)
    return env


def _preload_run(tmp_path, name: str, *args: str, extra_env: dict | None = None) -> tuple[dict, dict]:
    """preload_torch_check.py under `oomguard run --simulate A100-80GB
    --preload-only`: what torch saw, and what the preload wrote."""
    out = tmp_path / f"{name}.json"
    result = subprocess.run([simulated.oomguard_cli(), "run", "--simulate", "A100-80GB", "--preload-only", "--",
                             sys.executable, CHECK, str(out), *args],
                            env=_env(tmp_path / name, **(extra_env or {})), capture_output=True, text=True,
                            timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / name / "preload-summary.json").read_text())
    return json.loads(out.read_text()), summary


def _total(summary: dict, key: str) -> int:
    return sum(d[key] for d in summary["devices"])


def test_segment_peak_matches_torch_max_reserved(tmp_path):
    seen, summary = _preload_run(tmp_path, "torch")
    # The preload saw torch's segments: its peak is torch's reserved peak,
    # plus at most the context and the cuBLAS workspaces made outside torch.
    assert seen["max_reserved"] > 256 * MIB
    peak = _total(summary, "peak_segment_bytes")
    assert abs(peak - seen["max_reserved"]) <= 2 * MIB + seen["context"], (peak, seen)
    assert summary["calls"]["cudaMalloc"] > 0


def test_a_cublas_workspace_outside_torch_is_non_torch(tmp_path):
    seen, summary = _preload_run(tmp_path, "cublas", "--cublas")
    live = _total(summary, "segment_bytes")
    non_torch = sum(d["current_by_category"]["non_torch"] for d in summary["devices"])
    # Under the preload alone every segment is outside PyTorch's knowledge.
    # The simulated cuBLAS allocates no workspace of its own at cublasCreate
    # (docs/simulator.md), so the segments are torch's reserved bytes.
    assert non_torch == live
    assert live == seen["reserved"], (live, seen)


def _program() -> str:
    """tests/gpu/preload_only_program.cu, built with shared cudart by the C++
    build (tests/gpu/CMakeLists.txt), or here with nvcc."""
    build = os.environ.get("OOMGUARD_BUILD_DIR", os.path.join(REPO, "build"))
    built = os.path.join(build, "tests", "gpu", "preload_only_program")
    if os.path.exists(built):
        return built
    raise AssertionError(f"{built} is not built (cmake --build {build} --target preload_only_program, "
                         "or set OOMGUARD_BUILD_DIR)")


def test_a_budget_refuses_cudamalloc_in_a_program_that_is_not_python(tmp_path):
    env = _env(tmp_path / "cpp", OOMGUARD_CONF="budget:128MiB")
    result = subprocess.run([simulated.oomguard_cli(), "run", "--simulate", "A100-80GB", "--preload-only", "--",
                             _program(), "20"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = dict(line.split("=", 1) for line in result.stdout.split() if "=" in line)
    assert lines["refused"] == "20"
    summary = json.loads((tmp_path / "cpp" / "preload-summary.json").read_text())
    assert summary["calls"]["cudaMalloc"] == 20
    # Without a budget the same program's 256 MiB blocks fit the simulated A100.
    free = subprocess.run([simulated.oomguard_cli(), "run", "--simulate", "A100-80GB", "--preload-only", "--",
                           _program(), "5"], env=_env(tmp_path / "free"), capture_output=True, text=True, timeout=120)
    assert free.returncode == 0, free.stderr
    assert "refused=0" in free.stdout.split()


def test_memory_outside_torch_reaches_the_guard_and_the_summary(tmp_path):
    out = tmp_path / "non_torch.json"
    script = os.path.join(REPO, "tests", "python", "scripts", "non_torch_check.py")
    env = _env(tmp_path, OOMGUARD_CONF=f"report_dir:{tmp_path / 'reports'}")
    result = subprocess.run([simulated.oomguard_cli(), "run", "--simulate", "A100-80GB", "--mode", "observe", "--",
                             sys.executable, script, str(out)], env=env, capture_output=True, text=True, timeout=300,
                            cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(out.read_text())
    # The simulated cuBLAS takes no workspace (docs/simulator.md): the only
    # segment outside torch is the script's own cudaMalloc.
    assert seen["non_torch_now"] == 64 * MIB, seen
    assert seen["observed"] and all(n == 64 * MIB for n in seen["observed"]), seen
    summary = json.loads((tmp_path / "reports" / "rank0" / "summary.json").read_text())
    (device,) = [d for d in summary["devices"] if d["device"] == "cuda:0"]
    assert device["non_torch_bytes"] == 64 * MIB
