"""oomguard's torch modes on the simulated GPU (docs/simulator.md): observe
and own mode on a small transformers Llama training loop, the out-of-memory
post-mortem on a real torch.OutOfMemoryError, own mode's budget and category
limits, expandable segments, the cudaMallocAsync backend, MemPool and the
save guard on a CUDA model.

Each process runs one mode (fixed once CUDA initialises) through
tests/python/scripts/simulated_torch.py, which prints what it measured; this
process (cpu mode) never loads the stand-ins. The figures are the simulated
device's, not a GPU's; the allocation sequence is torch's own.

Note [Allocated bytes: requested, not rounded]
c10's trace tracker reports each ALLOC with the bytes the tensor asked for
(``orig_size``), and that is what the Ledger counts; torch's
``memory_allocated()`` counts the block, rounded up to 512 bytes (and larger
when a cached block is not split). So in observe mode oomguard's allocated
and peak equal torch's ``requested_bytes.all.current`` and ``.peak`` to the
byte, and ``memory_allocated()`` exceeds them by exactly that rounding (a
few hundred bytes here: the loss, the step counters' scalars). Reserved
bytes are segments, the same in both, to the byte.
"""

from __future__ import annotations

import json
import os
import re

import pytest

import simulated

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts", "simulated_torch.py")
MIB = 1 << 20
CATEGORIES = ("weights", "gradients", "optimizer")


def _run(case: str, tmp_path_factory, **env: str) -> dict:
    directory = tmp_path_factory.mktemp(case)
    base = {k: v for k, v in os.environ.items() if k not in ("OOMGUARD_CONF", "PYTORCH_CUDA_ALLOC_CONF")}
    result = simulated.run_python([SCRIPT, case, str(directory)], env=base, timeout=300, **env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, result.stdout[-2000:] + result.stderr[-4000:]
    out = json.loads(lines[-1][len("RESULT "):])
    out["stderr"] = result.stderr
    return out


@pytest.fixture(scope="module")
def observe(tmp_path_factory):
    # A 2 GiB device: the save and the out-of-memory at the end fill it fast.
    return _run("observe", tmp_path_factory, OOMGUARD_SIM_MEMORY="2GiB")


@pytest.fixture(scope="module")
def own(tmp_path_factory):
    return _run("own", tmp_path_factory)


@pytest.fixture(scope="module")
def expandable(tmp_path_factory):
    return _run("train", tmp_path_factory, PYTORCH_CUDA_ALLOC_CONF="expandable_segments:True",
                OOMGUARD_SIM_MEMORY="8GiB")


def _assert_categories_exact(checks):
    assert len(checks) == 3
    for check in checks:
        expected = check["expected"]
        assert expected["weights"] > 0 and expected["optimizer"] == expected["optimizer_on_device"] > 0
        assert {k: check["ours"][k] for k in CATEGORIES} == {k: expected[k] for k in CATEGORIES}, check


def _assert_matches_torch(checks):
    """Note [Allocated bytes: requested, not rounded]."""
    for check in checks:
        ours, theirs = check["ours"], check["torch"]
        assert ours["allocated"] == theirs["requested"], check
        assert 0 <= theirs["allocated"] - ours["allocated"] < 4096, check  # c10's 512-byte rounding
        assert ours["reserved"] == theirs["reserved"], check
        # torch's peak was reset at the previous boundary: the step's peak.
        assert check["step_peak"] == theirs["peak_requested"], check
    first = checks[0]
    assert first["ours"]["peak_allocated"] == first["torch"]["peak_requested"]
    assert first["ours"]["peak_reserved"] == first["torch"]["peak_reserved"]


# ---------------------------------------------------------------- observe mode


def test_observe_categories_are_exact_at_every_boundary(observe):
    assert observe["mode"] == "observe" and observe["backend"] == "native"
    _assert_categories_exact(observe["checks"])


def test_observe_allocated_reserved_and_peak_equal_torch_to_the_byte(observe):
    _assert_matches_torch(observe["checks"])


def test_observe_guard_predicts_the_measured_peak(observe):
    prediction = observe["prediction"]
    assert prediction is not None and prediction["made_at_step"] == 3
    assert prediction["peak_allocated_bytes"] == observe["checks"][-1]["step_peak"]


def test_native_mem_pool_is_observed(observe):
    pool = observe["native_pool"]
    for stage in ("before", "inside", "after_free", "after"):
        ours, theirs = pool[stage]
        assert ours["allocated"] == theirs["requested"] and ours["reserved"] == theirs["reserved"], stage
    before, inside = pool["before"][0], pool["inside"][0]
    assert inside["allocated"] - before["allocated"] == pool["requested"]
    assert inside["reserved"] - before["reserved"] == pool["pool_segments"] > 0
    assert pool["after"][0]["allocated"] == before["allocated"]
    assert pool["after"][0]["reserved"] == pool["after"][1]["reserved"] < inside["reserved"]


def test_own_pool_routes_a_phase_through_the_core_allocator(observe):
    pool = observe["own_pool"]
    (before, _, core_before), (inside, inside_torch, core_inside) = pool["before"], pool["inside"]
    # The core allocator served the pool's segment, and the tensor lies in it.
    assert core_before["reserved_bytes"] == 0
    [[segment, size]] = pool["segments"]
    assert core_inside["allocated_bytes"] == size and core_inside["upstream_allocs"] == 1
    assert segment <= pool["pointer"] < segment + size
    # The process's figures see the pool as torch does: the tensor once, the
    # segment once (Note [The pool allocator's own Ledger]).
    assert inside["allocated"] - before["allocated"] == pool["requested"]
    for stage in ("before", "inside", "freed", "end"):
        ours, theirs, _ = pool[stage]
        assert ours["allocated"] == theirs["requested"] and ours["reserved"] == theirs["reserved"], stage
    # torch's free of the segment reached the core, which gave it back.
    core_end = pool["end"][2]
    assert core_end["allocated_bytes"] == 0 and core_end["reserved_bytes"] == 0
    assert core_end["invalid_frees"] == 0 and core_end["upstream_frees"] == 1
    assert "not a live allocation" not in observe["stderr"]
    assert inside_torch["reserved"] - pool["end"][1]["reserved"] == size


def test_observe_save_guard_saves_a_cuda_model_through_host(observe):
    save = observe["save"]
    assert save["room"] < save["need"] == 13107200  # every matrix of the model, non-contiguous
    [action] = save["actions"]
    assert action["kind"] == "save_guard" and "host copies" in action["detail"]
    assert save["written"] == save["shapes"]
    # The same save without the guard does not fit on the device.
    assert save["unguarded"].startswith("CUDA out of memory")


def _requested(message: str) -> int:
    amount, unit = re.search(r"[Tt]ried to allocate ([\d.]+) (MiB|GiB)", message).groups()
    return int(float(amount) * (MIB if unit == "MiB" else 1 << 30))


def _assert_post_mortem(oom: dict, weights: int):
    assert oom["raised"] == "OutOfMemoryError"
    report = oom["report"]
    assert {"summary.json", "report.html", "snapshot.pickle", "timeline.csv"} <= set(report["files"])
    assert all(report["sizes"][name] > 0 for name in ("summary.json", "report.html", "snapshot.pickle"))
    summary = report["summary"]
    assert summary["reason"] == "out_of_memory"
    assert summary["oom"]["requested_bytes"] == _requested(oom["message"])
    assert summary["oom"]["by_category"]["weights"] == weights


def test_observe_out_of_memory_writes_the_post_mortem_before_torch_raises(observe):
    oom = observe["oom"]
    assert oom["message"].startswith("CUDA out of memory")
    _assert_post_mortem(oom, observe["checks"][-1]["expected"]["weights"])
    assert oom["report"]["summary"]["oom"]["phase"] in ("forward", "backward")


# ---------------------------------------------------------------- own mode


def test_own_mode_trains_with_exact_categories(own):
    assert own["mode"] == "own"
    _assert_categories_exact(own["checks"])


def test_own_mode_figures_are_torchs_allocation_sequence(own, observe):
    # torch cannot report under a pluggable allocator (it raises); what it
    # reports for the same run on its own allocator is the reference.
    assert "does not yet support getDeviceStats" in own["torch_stats"]
    for mine, native in zip(own["checks"], observe["checks"]):
        assert mine["ours"]["allocated"] == native["torch"]["requested"]
        assert mine["step_peak"] == native["torch"]["peak_requested"]
        assert mine["ours"]["reserved"] >= mine["ours"]["allocated"]
    assert own["prediction"]["peak_allocated_bytes"] == own["checks"][-1]["step_peak"]


def test_own_mode_budget_is_a_hard_limit_with_oomguards_message(own):
    oom = own["budget_oom"]
    assert oom["message"].startswith("oomguard: out of memory on device 0: tried to allocate 128.00 MiB")
    assert "budget of 1.00 GiB reached" in oom["message"]
    _assert_post_mortem(oom, own["checks"][-1]["expected"]["weights"])
    assert own["after_budget"]["reserved"] <= own["budget"]
    assert own["after_budget"]["allocated"] == own["after_limit"]["allocated"]  # nothing leaked


def test_own_mode_category_limit_refuses_activations(own):
    oom = own["limit_oom"]
    assert oom["raised"] == "OutOfMemoryError"
    assert "(category limit: activations at 256.00 MiB)" in oom["message"]
    assert oom["report"]["summary"]["reason"] == "out_of_memory"
    # The failed forward's activations were all given back.
    assert own["after_limit"]["allocated"] == own["save_baseline"]["allocated"]


def test_own_mode_save_guard_reads_oomguards_figures(own):
    save = own["save"]
    # headroom() no longer calls torch.cuda.memory_reserved(), which raises here.
    assert 0 < save["room"] < save["need"]
    [action] = save["actions"]
    assert action["kind"] == "save_guard"
    assert save["written"] == save["shapes"]
    assert save["unguarded"].startswith("oomguard: out of memory") and "budget" in save["unguarded"]


def test_own_pool_in_own_mode_says_why_not(own):
    assert "every CUDA allocation is served by oomguard already" in own["own_pool"]


# ---------------------------------------------------------------- backends


def test_expandable_segments_categories_and_peak(expandable):
    assert expandable["alloc_conf"] == "expandable_segments:True"
    assert expandable["segments"] == ["large:True", "small:True"]
    _assert_categories_exact(expandable["checks"])
    _assert_matches_torch(expandable["checks"])
    pool = expandable["native_pool"]
    for stage in ("before", "inside", "after_free", "after"):
        ours, theirs = pool[stage]
        assert ours["allocated"] == theirs["requested"] and ours["reserved"] == theirs["reserved"], stage


def test_observe_refuses_the_cuda_malloc_async_backend(tmp_path_factory):
    out = _run("refused", tmp_path_factory, PYTORCH_CUDA_ALLOC_CONF="backend:cudaMallocAsync")
    assert "'cudaMallocAsync' backend" in out["refused"] and "mode 'own'" in out["refused"]
    # The program goes on, on its backend, untracked: nothing half-recorded.
    assert out["backend"] == "cudaMallocAsync" and out["devices"] == []
    assert all(c["torch"]["allocated"] > 0 for c in out["checks"])
    assert "DeferredCudaCallError" not in out["stderr"]


def test_own_mode_replaces_the_cuda_malloc_async_backend_and_says_so(tmp_path_factory):
    out = _run("refused", tmp_path_factory, PYTORCH_CUDA_ALLOC_CONF="backend:cudaMallocAsync", CASE_MODE="own")
    assert out["mode"] == "own" and out["backend"] == "pluggable"
    assert any("replaces torch's 'cudaMallocAsync'" in w for w in out["warnings"])
    _assert_categories_exact(out["checks"])


def test_observe_attached_after_cuda_init_misses_only_the_early_tensor(tmp_path_factory):
    out = _run("observe_late", tmp_path_factory, OOMGUARD_SIM_MEMORY="8GiB")
    assert out["mode"] == "observe"
    _assert_categories_exact(out["checks"])
    for check in out["checks"]:
        assert check["torch"]["requested"] - check["ours"]["allocated"] == out["early"] == 512
        assert check["torch"]["reserved"] - check["ours"]["reserved"] == 2 * MIB  # its small segment
