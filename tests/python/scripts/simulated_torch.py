"""oomguard's torch modes on the simulated GPU (docs/simulator.md): one
process per mode, since the mode is fixed once CUDA initialises.

usage: simulated_torch.py CASE REPORT_DIR
  observe         install observe mode, train a small Llama, check every
                  boundary against torch's own counters; then a native
                  MemPool, oomguard.own_pool(), a guarded save and, last, a
                  real torch.OutOfMemoryError (the post-mortem is checked
                  while the error is handled)
  train           install observe mode and train, checking every boundary
                  (run with PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True);
                  then a native MemPool
  observe_late    CUDA initialised before install(): observe attaches late
  own             install own mode with a budget and an activations limit,
                  train, save through the guard, then cross the limit and
                  the budget
  refused         observe mode under a backend it cannot attach to
                  (PYTORCH_CUDA_ALLOC_CONF=backend:cudaMallocAsync)

Prints one line ``RESULT <json>`` with what was measured; the assertions are
the test's (tests/python/test_simulated_torch.py). Run it under
``simulated.environment()``: it needs the simulated device.
"""

from __future__ import annotations

import json
import os
import sys
import warnings

import torch

import oomguard
from oomguard import _C

STEPS = 3
VOCAB = 4096
# Every storage of this model, its gradients and AdamW's moments is a
# multiple of 512 bytes (c10's block size), so allocated bytes equal tensor
# bytes with no rounding in either allocator.
CONFIG = dict(vocab_size=VOCAB, hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, max_position_embeddings=512)


def build_model():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(**CONFIG)).cuda()


def storage_bytes(tensors) -> int:
    seen = {}
    for t in tensors:
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
    return sum(seen.values())


def expected(model, optimizer) -> dict:
    """What the categories must hold: tensor bytes, counted by hand."""
    parameters = list(model.parameters())
    moments = [s[k] for s in optimizer.state.values() for k in ("exp_avg", "exp_avg_sq") if k in s]
    on_device = [v for s in optimizer.state.values() for v in s.values()
                 if isinstance(v, torch.Tensor) and v.is_cuda]
    return {"weights": storage_bytes(parameters),
            "gradients": storage_bytes(p.grad for p in parameters if p.grad is not None),
            "optimizer": storage_bytes(moments), "optimizer_on_device": storage_bytes(on_device)}


def ours() -> dict:
    d = oomguard.stats()["devices"]["cuda:0"]
    return {"weights": d["current"]["weights"], "gradients": d["current"]["gradients"],
            "optimizer": d["current"]["optimizer"], "allocated": d["allocated"], "reserved": d["reserved"],
            "peak_allocated": d["peak_allocated"], "peak_reserved": d["peak_reserved"]}


def theirs() -> dict:
    stats = torch.cuda.memory_stats()
    return {"allocated": torch.cuda.memory_allocated(), "reserved": torch.cuda.memory_reserved(),
            "peak_allocated": torch.cuda.max_memory_allocated(), "peak_reserved": torch.cuda.max_memory_reserved(),
            "requested": stats["requested_bytes.all.current"], "peak_requested": stats["requested_bytes.all.peak"]}


def step_peak(step: int) -> int | None:
    for s in oomguard.stats(census_first=False)["steps"]:
        if s["step"] == step and s["device"] == "cuda:0":
            return s["peak_allocated"]
    return None


def train(model, optimizer, native: bool, tracked: bool = True, batch: int = 2, seq: int = 128) -> list[dict]:
    """STEPS steps; at each boundary (after the optimizer step, before
    zero_grad) what oomguard says (when `tracked`), what torch says (when
    `native`), what the tensors hold."""
    generator = torch.Generator().manual_seed(0)
    checks = []
    for _ in range(STEPS):
        step = _C.step()
        ids = torch.randint(0, VOCAB, (batch, seq), generator=generator).cuda()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        check = {"step": step, "expected": expected(model, optimizer)}
        if tracked:
            check.update(ours=ours(), step_peak=step_peak(step))
        if native:
            check["torch"] = theirs()
            torch.cuda.reset_peak_memory_stats()  # torch's peak from here is the next step's
        checks.append(check)
        optimizer.zero_grad(set_to_none=True)
    return checks


def device_use() -> dict:
    free, total = torch.cuda.mem_get_info()
    return {"free": free, "total": total}


# ---------------------------------------------------------------- pieces


def native_mem_pool() -> dict:
    """torch's own MemPool, observed: its blocks and segments reach the Ledger."""
    before_ours, before_torch = ours(), theirs()
    pool = torch.cuda.MemPool()
    with torch.cuda.use_mem_pool(pool):
        tensors = [torch.empty(n, dtype=torch.uint8, device="cuda") for n in (1 << 20, 3 << 20, 5 << 20)]
    inside_ours, inside_torch = ours(), theirs()
    pool_segments = sum(s["total_size"] for s in pool.snapshot())
    del tensors
    after_free_ours, after_free_torch = ours(), theirs()
    del pool
    torch.cuda.empty_cache()
    after_ours, after_torch = ours(), theirs()
    return {"before": [before_ours, before_torch], "inside": [inside_ours, inside_torch],
            "pool_segments": pool_segments, "after_free": [after_free_ours, after_free_torch],
            "after": [after_ours, after_torch], "requested": (1 + 3 + 5) << 20}


def pool_allocator() -> dict:
    return json.loads(_C.pool_allocator_stats_json(0))


def own_pool_phase() -> dict:
    """oomguard.own_pool() beside the native allocator: one phase's segments
    come from the core allocator, its blocks are observed like any pool's."""
    pool = oomguard.own_pool()
    before = [ours(), theirs(), pool_allocator()]
    with torch.cuda.use_mem_pool(pool):
        tensor = torch.empty(6 << 20, dtype=torch.uint8, device="cuda")
    inside = [ours(), theirs(), pool_allocator()]
    segments = [[s["address"], s["total_size"]] for s in pool.snapshot()]
    pointer = tensor.data_ptr()
    del tensor
    freed = [ours(), theirs(), pool_allocator()]
    del pool
    torch.cuda.empty_cache()
    end = [ours(), theirs(), pool_allocator()]
    return {"before": before, "inside": inside, "freed": freed, "end": end, "segments": segments,
            "pointer": pointer, "requested": 6 << 20}


def fill_until(room, target: int) -> list:
    """Allocate device filler until ``room()`` is below ``target`` bytes, or
    nothing more fits: requests halve after each refusal, so the cached
    fragments of both of torch's pools fill up too."""
    filler, chunk = [], 256 << 20
    while room() > target and chunk >= 512:
        chunk = min(chunk, max(room() - target, 512))
        try:
            filler.append(torch.empty(chunk, dtype=torch.uint8, device="cuda"))
        except torch.OutOfMemoryError:
            chunk //= 2
    return filler


def guarded_save(model, target: str) -> dict:
    """save_pretrained of a CUDA model whose matrices are non-contiguous (so
    it copies each on the device) when the device, or the budget, has no
    room left for those copies: the save guard stages through host; the same
    save unguarded runs out of memory."""
    from oomguard.actions import save_guard

    for p in model.parameters():
        if p.dim() == 2:
            p.data = p.data.t().contiguous().t()
    oomguard.stats()  # the census claims the new storages as weights
    state = model.state_dict()
    shapes = {k: [list(v.shape), str(v.dtype)] for k, v in state.items()}
    need = save_guard.device_copy_bytes(state.values())["cuda:0"]
    torch.cuda.empty_cache()
    filler = fill_until(lambda: save_guard.headroom("cuda:0"), need // 2)
    room = save_guard.headroom("cuda:0")
    actions_before = len(oomguard.actions())
    model.save_pretrained(target)
    actions = oomguard.actions()[actions_before:]
    from safetensors import safe_open

    written = {}
    with safe_open(os.path.join(target, "model.safetensors"), framework="pt") as f:
        for key in f.keys():
            t = f.get_tensor(key)
            written[key] = [list(t.shape), str(t.dtype)]
    try:
        with save_guard.unguarded():
            model.save_pretrained(target + "-unguarded")
        unguarded = "saved"
    except torch.OutOfMemoryError as error:
        unguarded = str(error)
    del filler
    torch.cuda.empty_cache()
    return {"need": need, "room": room, "shapes": shapes, "written": written, "actions": actions,
            "unguarded": unguarded}


def report_files(directory: str) -> dict:
    files = sorted(os.listdir(directory)) if os.path.isdir(directory) else []
    summary = {}
    if "summary.json" in files:
        with open(os.path.join(directory, "summary.json")) as f:
            summary = json.load(f)
    sizes = {name: os.path.getsize(os.path.join(directory, name)) for name in files}
    return {"files": files, "sizes": sizes, "summary": summary}


def out_of_memory(make, report_dir: str) -> dict:
    """Run `make` until torch.OutOfMemoryError; read the post-mortem while
    the error is being handled (it was written before torch raised)."""
    try:
        make()
    except torch.OutOfMemoryError as error:
        return {"raised": type(error).__name__, "message": str(error), "report": report_files(report_dir)}
    return {"raised": None}


# ---------------------------------------------------------------- cases


def case_observe(report_dir: str) -> dict:
    handle = oomguard.install(mode="observe", report_dir=report_dir, budget=None)
    model = build_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    out = {"mode": handle.mode, "backend": torch.cuda.get_allocator_backend(),
           "checks": train(model, optimizer, native=True)}
    out["prediction"] = oomguard.prediction()
    out["native_pool"] = native_mem_pool()
    out["own_pool"] = own_pool_phase()
    out["device"] = device_use()
    out["save"] = guarded_save(model, os.path.join(report_dir, "saved"))

    def too_long():
        seq = 256
        while True:  # a real training step that no longer fits
            ids = torch.randint(0, VOCAB, (64, seq)).cuda()
            model(input_ids=ids, labels=ids).loss.backward()
            optimizer.zero_grad(set_to_none=True)
            seq *= 2

    out["oom"] = out_of_memory(too_long, os.path.join(report_dir, "rank0"))
    return out


def case_train(report_dir: str) -> dict:
    handle = oomguard.install(mode="observe", report_dir=report_dir)
    model = build_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    out = {"mode": handle.mode, "alloc_conf": os.environ.get("PYTORCH_CUDA_ALLOC_CONF"),
           "checks": train(model, optimizer, native=True)}
    out["segments"] = sorted({s["segment_type"] + ":" + str(s.get("is_expandable", False))
                              for s in torch.cuda.memory_snapshot()})
    out["native_pool"] = native_mem_pool()
    return out


def case_observe_late(report_dir: str) -> dict:
    early = torch.zeros(128, device="cuda")  # 512 bytes in a 2 MiB segment, before oomguard
    handle = oomguard.install(mode="observe", report_dir=report_dir)
    model = build_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    out = {"mode": handle.mode, "early": early.untyped_storage().nbytes(),
           "checks": train(model, optimizer, native=True)}
    return out


def case_own(report_dir: str) -> dict:
    budget, limit = 1 << 30, 256 << 20
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # own mode must not fall back here
        handle = oomguard.install(mode="own", report_dir=report_dir, budget=str(budget),
                                  conf=f"limit_activations:{limit}")
    model = build_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    out = {"mode": handle.mode, "budget": budget, "limit": limit, "checks": train(model, optimizer, native=False)}
    out["prediction"] = oomguard.prediction()
    out["device"] = device_use()
    try:
        torch.cuda.memory_allocated()
        out["torch_stats"] = "available"
    except RuntimeError as error:
        out["torch_stats"] = str(error)
    try:
        oomguard.own_pool()
        out["own_pool"] = "created"
    except RuntimeError as error:
        out["own_pool"] = str(error)
    out["save"] = guarded_save(model, os.path.join(report_dir, "saved"))

    out["save_baseline"] = ours()

    def activations():
        ids = torch.randint(0, VOCAB, (32, 512)).cuda()  # logits alone: 32*512*4096*4 bytes
        model(input_ids=ids, labels=ids)

    out["limit_oom"] = out_of_memory(activations, os.path.join(report_dir, "rank0"))
    out["after_limit"] = ours()

    def beyond_budget():
        kept = []
        while True:
            kept.append(torch.empty(128 << 20, dtype=torch.uint8, device="cuda"))

    out["budget_oom"] = out_of_memory(beyond_budget, os.path.join(report_dir, "rank0"))
    out["after_budget"] = ours()
    return out


def case_refused(report_dir: str) -> dict:
    out = {"backend_env": os.environ.get("PYTORCH_CUDA_ALLOC_CONF")}
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            handle = oomguard.install(mode=os.environ.get("CASE_MODE", "observe"), report_dir=report_dir)
        out["mode"] = handle.mode
        out["warnings"] = [str(w.message) for w in caught]
    except RuntimeError as error:
        out["refused"] = str(error)
    # The program itself must go on working on its backend.
    model = build_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    out["checks"] = train(model, optimizer, native="refused" in out, tracked="refused" not in out)
    out["backend"] = torch.cuda.get_allocator_backend()
    out["devices"] = sorted(oomguard.stats(census_first=False)["devices"])
    return out


CASES = {"observe": case_observe, "train": case_train, "observe_late": case_observe_late, "own": case_own, "refused": case_refused}


def main() -> None:
    case, report_dir = sys.argv[1], sys.argv[2]
    out = CASES[case](report_dir)
    print("RESULT " + json.dumps(out), flush=True)
    if "oom" in out or "budget_oom" in out:
        os._exit(0)  # the post-mortem on disk is the out-of-memory one; no exit report over it


if __name__ == "__main__":
    main()
