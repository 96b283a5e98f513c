"""What the guard knows of a run before it happens, as the C++ predictor
reads it: the model's architecture (a transformers config), the method
(full or LoRA, its rank and targets), the optimizer and its trainable
tensors, and the data's longest micro-batch (scanned from the dataset,
bounded), evaluation and saving."""

from __future__ import annotations

import time
import weakref

import torch

from . import census

LENGTH_SCAN_LIMIT = 100_000
LENGTH_SCAN_SECONDS = 2.0
# A "trainer" hint is for the actuators, not the predictor.
NOT_FOR_THE_PREDICTOR = ("trainer",)


def lengths_of(dataset) -> list[int]:
    """Sequence lengths of a dataset, when it exposes them: a ``lengths``
    attribute, or items (dicts) holding ``input_ids``. Bounded in items and
    time; an empty list when neither works."""
    lengths = getattr(dataset, "lengths", None)
    if lengths is not None:
        return [int(x) for x in list(lengths)[:LENGTH_SCAN_LIMIT]]
    try:
        n = len(dataset)
    except TypeError:
        return []
    out: list[int] = []
    deadline = time.monotonic() + LENGTH_SCAN_SECONDS
    for i in range(min(n, LENGTH_SCAN_LIMIT)):
        try:
            item = dataset[i]
        except Exception:  # noqa: BLE001  (not indexable: no lengths)
            return []
        ids = item.get("input_ids") if isinstance(item, dict) else None
        if ids is None:
            return []
        out.append(len(ids))
        if time.monotonic() > deadline:
            break
    return out


def longest_batch(dataloader, grad_accum: int) -> dict:
    batch = getattr(dataloader, "batch_size", None) or 0
    lengths = lengths_of(getattr(dataloader, "dataset", None))
    if not lengths or not batch:
        return {}
    longest = max(lengths)
    out = {"longest_batch": int(batch), "longest_seq": int(longest)}
    if isinstance(getattr(dataloader, "sampler", None), torch.utils.data.SequentialSampler):
        out["longest_at_step"] = lengths.index(longest) // (batch * max(grad_accum, 1)) + 1
    return out


def _dtype_name(dtype: torch.dtype) -> str:
    return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, "fp32")


def _optimizer_kind(optimizer) -> tuple[str | None, bool]:
    name = type(optimizer).__name__.lower()
    if "8bit" in name:
        return ("paged-adamw-8bit" if "paged" in name else "adamw-8bit"), True
    if "adafactor" in name:
        return "adafactor", True
    if name.startswith("adam"):
        return "adamw", True
    if name == "sgd":
        return "sgd", bool(optimizer.defaults.get("momentum", 0))
    return None, True


def _optimizer_impl(optimizer) -> str:
    """How torch's AdamW steps (Note [The optimizer step's temporaries] in
    guard/src/optimizer_state.cpp): as asked, else as torch would choose."""
    defaults = getattr(optimizer, "defaults", {})
    if defaults.get("fused"):
        return "fused"
    if defaults.get("foreach") is not None:
        return "foreach" if defaults["foreach"] else "for-loop"
    params = [p for group in optimizer.param_groups for p in group["params"]]
    try:
        _, foreach = torch.optim.optimizer._default_to_fused_or_foreach(params, differentiable=False, use_fused=False)
    except Exception:  # a torch without the helper: its documented default on CUDA
        foreach = bool(params) and all(p.is_cuda for p in params)
    return "foreach" if foreach else "for-loop"


# Note [The static description is kept]
# The guard describes the run at every step boundary. What a model and an
# optimizer are (architecture, method, LoRA targets, trainable shapes, the
# largest tensor a save copies) does not change between steps, and walking
# the parameters, the modules and the state dict for it cost 11 ms of a 1.1B
# Llama's 80 ms simulated step (profiled). It is kept per (model, optimizer)
# pair and rebuilt when either is replaced, when the optimizer's parameter
# groups grow, or when forget() is called (after an action changed the run:
# the checkpoint actuator switches gradient checkpointing on). Whether
# gradient checkpointing is on is part of it: transformers enables it before
# the first step, and reading it walks every module. The hints are read each
# time.
_static: dict = {"key": None, "description": {}, "save_copy_bytes": None}


def _weak(thing):
    return weakref.ref(thing) if thing is not None else (lambda: None)


def forget() -> None:
    """Describe the run afresh at the next call (an action changed it)."""
    _static["key"] = None


def _describe_model(model) -> dict:
    d: dict = {}
    hf_config = getattr(model, "config", None)
    if hf_config is not None and hasattr(hf_config, "to_dict"):
        d["model_config"] = hf_config.to_dict()
        d["attention"] = {"eager": "eager", "flash_attention_2": "flash"}.get(
            getattr(hf_config, "_attn_implementation", None) or "sdpa", "sdpa")
    d["method"] = "lora" if any("lora_" in n for n, p in model.named_parameters() if p.requires_grad) else "full"
    peft = getattr(model, "peft_config", None)
    if peft:
        lora = next(iter(peft.values()))
        d["lora_r"] = int(getattr(lora, "r", 16))
        targets = getattr(lora, "target_modules", None) or []
        d["lora_targets"] = sorted(targets) if not isinstance(targets, str) else [targets]
    floating = next((p for p in model.parameters() if p.is_floating_point()), None)
    if floating is not None:
        d["dtype"] = _dtype_name(floating.dtype)
        if floating.is_cuda:  # which kernel SDPA runs (Note [Which kernel SDPA runs])
            major, minor = torch.cuda.get_device_capability(floating.device)
            d["compute_capability"] = major * 10 + minor
    # transformers 5's property walks every module (3 ms on a 1.1B Llama);
    # PEFT forwards it.
    checkpointing = getattr(model, "is_activation_checkpointing", None)
    if checkpointing is None:
        checkpointing = getattr(model, "is_gradient_checkpointing", False)
    d["gradient_checkpointing"] = bool(checkpointing)
    return d


def _describe_optimizer(optimizer) -> dict:
    d: dict = {}
    kind, momentum = _optimizer_kind(optimizer)
    d["optimizer"], d["optimizer_momentum"] = kind, momentum
    d["optimizer_impl"] = _optimizer_impl(optimizer) if kind == "adamw" else None
    trainable = [p for group in optimizer.param_groups for p in group["params"] if p.requires_grad]
    d["trainable"] = [[int(p.shape[0]) if p.dim() else 1, int(p.numel() // max(int(p.shape[0]) if p.dim() else 1, 1))]
                      for p in trainable]
    if trainable:
        d["param_bytes"] = trainable[0].element_size()
    return d


def _save_copy_bytes(model) -> int:
    """A save makes a transient contiguous copy of one tensor at a time: the largest."""
    if _static["save_copy_bytes"] is None:
        _static["save_copy_bytes"] = int(max((t.numel() * t.element_size() for t in model.state_dict().values()
                                              if isinstance(t, torch.Tensor) and t.device.type != "cpu"), default=0))
    return _static["save_copy_bytes"]


def run_description(hints: dict, observations: list[dict], max_seq_len: int = 0) -> dict:
    """The run as the C++ predictor reads it (see predictor_json.cpp)."""
    model = next(iter(list(census.models)), None)
    optimizer = next(iter(list(census.optimizers)), None)
    groups = sum(len(g["params"]) for g in optimizer.param_groups) if optimizer is not None else 0
    # Weak references, compared by identity: an id could be reused by a new
    # model once the old one died.
    key = _static["key"]
    if key is None or key[0]() is not model or key[1]() is not optimizer or key[2] != groups:
        description = {}
        if model is not None:
            description.update(_describe_model(model))
        if optimizer is not None:
            description.update(_describe_optimizer(optimizer))
        _static.update(key=(_weak(model), _weak(optimizer), groups), description=description, save_copy_bytes=None)
    d = dict(_static["description"])
    hints = dict(hints)
    if "longest_seq" in hints and "longest_batch" not in hints and observations:
        hints["longest_batch"] = max(o["batch"] for o in observations)
    if max_seq_len and "longest_seq" not in hints:
        hints["longest_seq"] = max_seq_len
        if observations:
            hints["longest_batch"] = max(o["batch"] for o in observations)
    if hints.get("saves") and model is not None:
        hints["save_copy_bytes"] = _save_copy_bytes(model)
    d.update({k: v for k, v in hints.items() if k not in NOT_FOR_THE_PREDICTOR})
    return d
