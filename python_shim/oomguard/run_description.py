"""What the guard knows of a run before it happens, as the C++ predictor
reads it: the model's architecture (a transformers config), the method
(full or LoRA, its rank and targets), the optimizer and its trainable
tensors, and the data's longest micro-batch (scanned from the dataset,
bounded), evaluation and saving."""

from __future__ import annotations

import time

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


def run_description(hints: dict, observations: list[dict], max_seq_len: int = 0) -> dict:
    """The run as the C++ predictor reads it (see predictor_json.cpp)."""
    d: dict = {}
    model = next(iter(list(census.models)), None)
    if model is not None:
        hf_config = getattr(model, "config", None)
        if hf_config is not None and hasattr(hf_config, "to_dict"):
            d["model_config"] = hf_config.to_dict()
            d["attention"] = {"eager": "eager", "flash_attention_2": "flash"}.get(
                getattr(hf_config, "_attn_implementation", None) or "sdpa", "sdpa")
        names = [n for n, p in model.named_parameters() if p.requires_grad]
        d["method"] = "lora" if any("lora_" in n for n in names) else "full"
        peft = getattr(model, "peft_config", None)
        if peft:
            lora = next(iter(peft.values()))
            d["lora_r"] = int(getattr(lora, "r", 16))
            targets = getattr(lora, "target_modules", None) or []
            d["lora_targets"] = sorted(targets) if not isinstance(targets, str) else [targets]
        floating = [p for p in model.parameters() if p.is_floating_point()]
        if floating:
            d["dtype"] = _dtype_name(floating[0].dtype)
        checkpointing = getattr(model, "is_activation_checkpointing", None)  # transformers 5; PEFT forwards it
        if checkpointing is None:
            checkpointing = getattr(model, "is_gradient_checkpointing", False)
        d["gradient_checkpointing"] = bool(checkpointing)
    optimizer = next(iter(list(census.optimizers)), None)
    if optimizer is not None:
        kind, momentum = _optimizer_kind(optimizer)
        d["optimizer"], d["optimizer_momentum"] = kind, momentum
        trainable = [p for group in optimizer.param_groups for p in group["params"] if p.requires_grad]
        d["trainable"] = [[int(p.shape[0]) if p.dim() else 1, int(p.numel() // max(int(p.shape[0]) if p.dim() else 1, 1))]
                          for p in trainable]
        if trainable:
            d["param_bytes"] = trainable[0].element_size()
    hints = dict(hints)
    if "longest_seq" in hints and "longest_batch" not in hints and observations:
        hints["longest_batch"] = max(o["batch"] for o in observations)
    if max_seq_len and "longest_seq" not in hints:
        hints["longest_seq"] = max_seq_len
        if observations:
            hints["longest_batch"] = max(o["batch"] for o in observations)
    if hints.get("saves") and model is not None:
        largest = max((t.numel() * t.element_size() for t in model.state_dict().values()
                       if isinstance(t, torch.Tensor) and t.device.type != "cpu"), default=0)
        hints["save_copy_bytes"] = int(largest)  # a transient contiguous copy of one tensor
    d.update({k: v for k, v in hints.items() if k not in NOT_FOR_THE_PREDICTOR})
    return d
