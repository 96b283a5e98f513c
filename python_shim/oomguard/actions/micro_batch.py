"""Micro-batching a transformers Trainer: half the per-device batch, twice
the gradient accumulation, the same effective batch.

Unlike ``auto_find_batch_size`` (which restarts with a smaller batch and so
a smaller effective batch), each optimizer step still sees exactly the
samples it would have seen, in the same order.

Note [Splitting inside training_step]
The running Trainer (transformers 5.x) builds its dataloader once per
``train()`` and counts dataloader batches with ``args.gradient_accumulation_steps``
at every update (how many batches to prefetch, when to sync, the epoch
fraction). Changing that argument or the batch size mid-loop would desync
those counters (an optimizer step in the middle of an accumulation, or
twice the samples per step). So the dataloader is left alone and each
batch it yields is split into ``factor`` micro-batches inside
``trainer.training_step``, which runs forward and backward on each in turn:
the activation peak is that of the smaller batch, the gradients are summed
as with accumulation. The loss of each micro-batch is scaled the way the
Trainer scales micro-batches: when the model normalises by
``num_items_in_batch`` (the Trainer's default for causal LMs) the parts add
up exactly; otherwise each part is divided by the extra factor (exact when
the parts hold equally many tokens). ``trainer.args`` is left as
given (the loop reads it); the action's detail says what runs.

A plain training loop has no handle on its batches: there micro-batching
needs the Trainer, and apply() says so without acting.
"""

from __future__ import annotations

import contextlib

import torch

from .base import ActionContext, ActionResult, Decision

_ATTR = "_oomguard_micro_batch_factor"


def factor(trainer) -> int:
    return getattr(trainer, _ATTR, 1)


def _batch_size(inputs) -> int | None:
    sizes = {v.shape[0] for v in inputs.values() if isinstance(v, torch.Tensor) and v.dim() > 0}
    return sizes.pop() if len(sizes) == 1 else None


def split(inputs: dict, parts: int) -> list[dict]:
    """Split a batch along dim 0 into `parts` micro-batches (fewer when it
    holds fewer rows); values without that leading dimension are shared."""
    n = _batch_size(inputs)
    if n is None or n < 2:
        return [inputs]
    parts = min(parts, n)
    bounds = [round(i * n / parts) for i in range(parts + 1)]
    out = []
    for lo, hi in zip(bounds, bounds[1:]):
        out.append({k: v[lo:hi] if isinstance(v, torch.Tensor) and v.dim() > 0 and v.shape[0] == n else v
                    for k, v in inputs.items()})
    return out


def _install(trainer) -> None:
    if "training_step" in vars(trainer):
        return  # wrapped already; the factor is read at each call
    original = trainer.training_step

    def training_step(model, inputs, num_items_in_batch=None):
        parts = split(inputs, factor(trainer)) if isinstance(inputs, dict) else [inputs]
        if len(parts) == 1:
            return original(model, inputs, num_items_in_batch)
        saved = trainer.current_gradient_accumulation_steps
        trainer.current_gradient_accumulation_steps = saved * len(parts)
        try:
            total = None
            for i, part in enumerate(parts):
                last = i == len(parts) - 1
                # The gradient all-reduce belongs to the last part only.
                sync = contextlib.nullcontext() if last else trainer.accelerator.no_sync(model)
                with sync:
                    loss = original(model, part, num_items_in_batch)
                total = loss if total is None else total + loss
            return total
        finally:
            trainer.current_gradient_accumulation_steps = saved

    trainer.training_step = training_step


def apply(context: ActionContext, decision: Decision) -> ActionResult:
    trainer = context.trainer
    if trainer is None:
        return ActionResult("micro_batch", "micro-batching needs a transformers Trainer: a plain training loop's "
                            "batches are not the guard's to split", 0, acted=False)
    args = trainer.args
    batch = args.per_device_train_batch_size // factor(trainer)
    if batch < 2:
        return ActionResult("micro_batch", f"the per-device micro-batch is {batch} already", 0, acted=False)
    setattr(trainer, _ATTR, factor(trainer) * 2)
    _install(trainer)
    accumulation = args.gradient_accumulation_steps * factor(trainer)
    # Activations scale with the rows of a micro-batch: halving it halves them.
    saving = decision.bytes_to_save
    activations = context.prediction.get("activation_bytes")
    if activations:
        saving = int(activations) // 2
    return ActionResult("micro_batch", f"per-device micro-batch {batch} -> {batch // 2}, gradient accumulation "
                        f"{accumulation // 2} -> {accumulation} (effective batch unchanged; split inside "
                        "training_step)", saving)


def undo(trainer) -> None:
    """For tests: run whole batches again."""
    if _ATTR in vars(trainer):
        delattr(trainer, _ATTR)
    vars(trainer).pop("training_step", None)
