"""The GPU-only scripts that need no real hardware, run on the simulated
device in CI (issue 10: each either runs here or says at its top why it
needs a GPU): tests/gpu/test_torch_gpu.py and bench/gpu_cache_hit.py.
tests/gpu/preload_torch_check.py and preload_only_program.cu are run by
test_simulated_preload.py, test_gpu_allocator.cu by CTest."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import oomguard
import simulated

REPO = simulated.REPO


def test_the_gpu_torch_suite_passes_on_the_simulated_device():
    env = dict(os.environ)
    env.pop("OOMGUARD_CONF", None)
    env["OOMGUARD_SIM_LIB_DIR"] = simulated.lib_dir()
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             os.path.join(REPO, "tests", "gpu", "test_torch_gpu.py")],
                            env=env, capture_output=True, text=True, timeout=900, cwd=REPO)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    # Every test ran; none was skipped for want of a GPU.
    assert re.search(r"\b4 passed\b", result.stdout), result.stdout[-2000:]
    assert "skipped" not in result.stdout


def test_the_cache_hit_benchmark_runs_and_says_simulated_device():
    core = os.path.join(os.path.dirname(oomguard.__file__), "liboomguard_core.so")
    result = simulated.run_python([os.path.join(REPO, "bench", "gpu_cache_hit.py"), "--core-lib", core,
                                   "--outstanding", "50", "--pairs", "400"], timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("simulated device (A100-80GB), not GPU figures: NVIDIA A100-SXM4-80GB")
    ratios = {line.split()[0]: float(line.rsplit(None, 1)[-1]) for line in lines[1:]}
    assert set(ratios) == {"oomguard", "torch", "cudaMalloc/cudaFree"}
    assert ratios["torch"] == 1.0 and all(r > 0 for r in ratios.values())
