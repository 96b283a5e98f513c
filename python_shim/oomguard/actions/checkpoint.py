"""Gradient checkpointing on the fewest transformer blocks that make the
predicted peak fit.

A checkpointed block keeps only its input for backward and recomputes its
activations there, so checkpointing k of n blocks saves about k times what
one block keeps beyond its output. The actuator finds the blocks (the
decoder layers), picks k from the bytes to save and the bytes one block
keeps, and wraps the first k blocks' forward in non-reentrant
``torch.utils.checkpoint``. When every block is needed and the model has
``gradient_checkpointing_enable``, the model's own switch is used instead.

Note [Non-reentrant checkpointing, never a compile memory budget]
Non-reentrant checkpointing recomputes with the same RNG state and needs no
input that requires grad (a frozen embedding under LoRA is fine), so the
gradients are those of the plain model. torch.compile's
``activation_memory_budget`` below 1 is never used: with dropout it gives
wrong gradients (pytorch#190758).

Note [Which blocks]
At the end of forward every block's activations are alive at once, so the
peak falls by the same amount whichever k blocks are checkpointed; the first
k are taken. Per-block bytes come, in order, from the decision (the
predictor's figure at the peak's shape), from a block profile measured by
``profile_blocks`` (the growth of the activations category across each
block's forward, less its output) times the prediction's
``activation_scale``, or lastly from the step's activation peak divided by
the number of blocks, which overstates a block's share (the logits and loss
count there too) and so understates k. A pick that saves too little is not
confirmed here: the guard predicts again from the steps after it and, the
checkpoint kind escalating, applies it again for what is still missing
(tests/python/test_guard_longest_batch.py).
"""

from __future__ import annotations

import functools
import math
import weakref

import torch
import torch.utils.checkpoint

from .. import _C
from .base import ActionContext, ActionResult, Decision

_MARK = "__oomguard_checkpointed__"
_OWN_SWITCH = "_oomguard_own_checkpointing"


def find_blocks(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The transformer blocks of `model` (PEFT-wrapped too): the largest
    ModuleList whose members are all of one type."""
    best: list[torch.nn.Module] = []
    for module in model.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) > len(best):
            kinds = {type(m) for m in module}
            if len(kinds) == 1:
                best = list(module)
    return best


def checkpointed_blocks(model: torch.nn.Module) -> int:
    return sum(1 for b in find_blocks(model) if getattr(b, _MARK, False))


def _wrap(block: torch.nn.Module) -> None:
    original = block.forward

    @functools.wraps(original)
    def forward(*args, **kwargs):
        if not (block.training and torch.is_grad_enabled()):
            return original(*args, **kwargs)
        return torch.utils.checkpoint.checkpoint(original, *args, use_reentrant=False, **kwargs)

    block.forward = forward
    setattr(block, _MARK, True)


def _unwrap(block: torch.nn.Module) -> None:
    if getattr(block, _MARK, False):
        del block.forward  # the instance attribute; the class's forward shows again
        delattr(block, _MARK)


def _own_switch(model: torch.nn.Module):
    for candidate in (model, getattr(model, "get_base_model", lambda: None)()):
        if candidate is not None and (hasattr(candidate, "activation_checkpointing_enable")
                                      or hasattr(candidate, "gradient_checkpointing_enable")):
            return candidate
    return None


def enable(model: torch.nn.Module, k: int) -> str:
    """Checkpoint the first k blocks; returns how ("model API" or "k of n")."""
    blocks = find_blocks(model)
    if not blocks:
        raise ValueError("oomguard: no transformer blocks found (a ModuleList of one block type)")
    k = min(k, len(blocks))
    owner = _own_switch(model)
    if k == len(blocks) and owner is not None:
        for block in blocks:
            _unwrap(block)
        # transformers 5 renamed the switch; the old name warns it will go.
        if hasattr(owner, "activation_checkpointing_enable"):
            owner.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            name = "activation_checkpointing_enable"
        else:
            owner.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            name = "gradient_checkpointing_enable"
        # Not through Module.__setattr__: the owner is a Module (often the
        # model itself), which would become its own submodule and make
        # model.train() recurse forever.
        object.__setattr__(model, _OWN_SWITCH, owner)
        return f"all {k} blocks through the model's {name}(use_reentrant=False)"
    for block in blocks[:k]:
        if not getattr(block, _MARK, False):
            _wrap(block)
    return f"{k} of {len(blocks)} blocks wrapped in torch.utils.checkpoint(use_reentrant=False)"


def disable(model: torch.nn.Module) -> None:
    """Undo enable(): the blocks run as before."""
    for block in find_blocks(model):
        _unwrap(block)
    owner = vars(model).get(_OWN_SWITCH)
    if owner is not None:
        if hasattr(owner, "activation_checkpointing_disable"):
            owner.activation_checkpointing_disable()
        else:
            owner.gradient_checkpointing_disable()
        object.__delattr__(model, _OWN_SWITCH)


class BlockProfile:
    """Bytes each block adds to the activations category in one training
    forward, less its output: what checkpointing it would save. Kept per
    token of the block's input (batch x sequence), so that the figure scales
    to the predicted peak's shape."""

    def __init__(self, model: torch.nn.Module):
        # Only the blocks' hooks refer to the profile, and the model to it:
        # it lives and dies with the model.
        self._model = weakref.ref(model)
        self.kept: dict[int, int] = {}
        self.kept_per_token: dict[int, float] = {}
        self.blocks = 0
        self._start: dict[int, tuple[int, int]] = {}
        self._handles = []
        self._blocks: list[weakref.ref] = []  # weak: the profile keeps no block alive
        for i, block in enumerate(find_blocks(model)):
            self.blocks += 1
            self._blocks.append(weakref.ref(block))
            self._handles.append(block.register_forward_pre_hook(functools.partial(self._pre, i), with_kwargs=True))
            self._handles.append(block.register_forward_hook(functools.partial(self._post, i), with_kwargs=True))

    @staticmethod
    def _activations() -> int:
        return sum(d.get("activations", 0) for d in _C.current_by_category().values())

    @staticmethod
    def _tokens(args, kwargs) -> int:
        first = args[0] if args else next(iter(kwargs.values()), None) if kwargs else None
        if isinstance(first, torch.Tensor) and first.dim() >= 2:
            return int(first.shape[0] * first.shape[1])
        return 0

    def _pre(self, i, module, args, kwargs):
        # Not in backward: a recomputed block's tensors are backward temporaries.
        if (module.training and torch.is_grad_enabled() and not getattr(module, _MARK, False)
                and _C.phase() == "forward"):
            self._start[i] = (self._activations(), self._tokens(args, kwargs))

    def _post(self, i, module, args, kwargs, output):
        start = self._start.pop(i, None)
        if start is None:
            return
        first = output[0] if isinstance(output, (tuple, list)) else output
        out_bytes = first.untyped_storage().nbytes() if isinstance(first, torch.Tensor) else 0
        kept = max(self._activations() - start[0] - out_bytes, 0)
        self.kept[i] = kept
        if start[1]:
            self.kept_per_token[i] = kept / start[1]

    def checkpointed(self) -> int:
        """How many of the profiled blocks are checkpointed: checkpointed_blocks()
        without walking the model's modules, which the guard would do every step."""
        return sum(1 for ref in self._blocks if getattr(ref(), _MARK, False))

    def per_block_bytes(self) -> int | None:
        return max(self.kept.values()) if self.kept else None

    def per_token(self) -> float | None:
        """The most one block keeps per input token (None before a training forward)."""
        return max(self.kept_per_token.values()) if self.kept_per_token else None

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self.kept.clear()
        self.kept_per_token.clear()
        model = self._model()
        if model is not None and getattr(model, _PROFILE, None) is self:
            object.__delattr__(model, _PROFILE)


_PROFILE = "_oomguard_block_profile"


def profile_of(model: torch.nn.Module) -> BlockProfile | None:
    return vars(model).get(_PROFILE)


def profile_blocks(model: torch.nn.Module) -> BlockProfile:
    """Measure per-block activation bytes on the next training forwards (the
    guard calls this when it discovers the model; cheap: two reads per block)."""
    profile = profile_of(model)
    if profile is None:
        # A wrapper (DDP, accelerate) seen after the model it wraps shares the
        # inner model's profile: its blocks are the same, and a second set of
        # hooks would measure each block twice.
        inner = (profile_of(m) for m in model.modules() if m is not model)
        profile = next((p for p in inner if p is not None), None) or BlockProfile(model)
        object.__setattr__(model, _PROFILE, profile)  # not a submodule, not in the state dict
    return profile


def _activation_peak(stats: dict) -> int:
    steps = stats.get("steps") or []
    if not steps:
        return max(d["peak"].get("activations", 0) for d in stats["devices"].values())
    last = max(s["step"] for s in steps)
    return max(s["peak_by_category"].get("activations", 0) for s in steps if s["step"] == last)


def per_block_bytes(context: ActionContext, decision: Decision, model: torch.nn.Module) -> tuple[int, str]:
    """Bytes one block keeps at the predicted peak's shape, and where the figure came from."""
    if decision.per_block_bytes:
        return int(decision.per_block_bytes), "decision"
    if context.prediction.get("activation_bytes_per_block"):
        return int(context.prediction["activation_bytes_per_block"]), "prediction"
    profile = profile_of(model)
    per_token = profile.per_token() if profile is not None else None
    tokens = int(context.prediction.get("longest_batch", 0)) * int(context.prediction.get("longest_seq", 0))
    if per_token and tokens:
        return int(per_token * tokens), "block profile"
    scale = float(context.prediction.get("activation_scale", 1.0))
    measured = profile.per_block_bytes() if profile is not None else None
    if measured:
        return int(measured * scale), "block profile, scaled"
    n = max(len(find_blocks(model)), 1)
    return int(_activation_peak(context.stats()) * scale / n), "activation peak / blocks"


def blocks_needed(bytes_to_save: int, per_block: int, n_blocks: int) -> int:
    if bytes_to_save <= 0:
        return 0
    if per_block <= 0:
        return n_blocks
    return min(math.ceil(bytes_to_save / per_block), n_blocks)


def apply(context: ActionContext, decision: Decision) -> ActionResult:
    if not context.models:
        return ActionResult("checkpoint", "no model known to the guard", 0, acted=False)
    model = context.models[0]
    blocks = find_blocks(model)
    if not blocks:
        return ActionResult("checkpoint", "no transformer blocks found (a ModuleList of one block type)", 0,
                            acted=False)
    already = checkpointed_blocks(model)
    if already == len(blocks) or vars(model).get(_OWN_SWITCH) is not None:
        return ActionResult("checkpoint", "every block is checkpointed already", 0, acted=False)
    per_block, source = per_block_bytes(context, decision, model)
    k = min(already + max(blocks_needed(decision.bytes_to_save, per_block, len(blocks)), 1), len(blocks))
    how = enable(model, k)
    saving = per_block * (k - already)
    return ActionResult("checkpoint", f"{how}; {per_block} bytes per block ({source}), "
                        f"{decision.bytes_to_save} bytes to save", saving)
