"""The census: at step boundaries, tell the Ledger what each storage is.

Hooks see phases, not purposes: a ``.grad`` is allocated in backward (and
first counted as temporary), optimizer state in the optimizer step, and
parameters wherever the model was built. The census walks the discovered
models and optimizers and moves each distinct storage to its category, so the
weights, adapters, gradients and optimizer bytes are exact at every boundary
and whenever ``stats()`` is read. It costs one pass over the parameters and
the optimizer state, in C++ per category.
"""

from __future__ import annotations

import functools
import weakref

import torch

from . import _C

# Discovered by the hooks; weak, so that oomguard keeps nothing alive.
models: "weakref.WeakSet[torch.nn.Module]" = weakref.WeakSet()
optimizers: "weakref.WeakSet[torch.optim.Optimizer]" = weakref.WeakSet()

ADAPTER_MARKERS = ("lora_",)
# Called with each model the census starts tracking (the guard profiles its
# blocks from the first forward on).
on_new_model: list = []


def is_adapter(name: str, parameter: torch.Tensor) -> bool:
    """A trainable PEFT adapter parameter (LoRA A/B, embeddings, magnitudes)."""
    return parameter.requires_grad and any(marker in name for marker in ADAPTER_MARKERS)


def add_model(module: torch.nn.Module) -> bool:
    """Track `module` unless it or a tracked model already contains it.

    A wrapper seen after the model it wraps (DDP, accelerate, PEFT) replaces
    it: the outermost module is the one the actuators must change."""
    if module in models:
        return False
    for known in list(models):
        if any(m is module for m in known.modules()):
            return False
    inner = {id(m) for m in module.modules()}
    for known in list(models):
        if id(known) in inner:
            models.discard(known)
    models.add(module)
    claim_parameters(module)
    _watch_gradients(module)
    for callback in list(on_new_model):
        callback(module)
    return True


def _claim_gradient(parameter: torch.Tensor) -> None:
    _C.claim([parameter.grad], "gradients")


def _watch_gradients(model: torch.nn.Module) -> None:
    """Claim each .grad as soon as backward has accumulated it.

    Without this a gradient counts as a backward temporary until the step
    boundary, and the step's peak (usually at the end of backward or in the
    optimizer step) would show gradients as temporaries. One hook call per
    trainable parameter per backward.
    """
    for parameter in model.parameters():
        if parameter.requires_grad and id(parameter) not in _watched:
            parameter.register_post_accumulate_grad_hook(_claim_gradient)
            _watched[id(parameter)] = weakref.ref(parameter, functools.partial(_unwatch, id(parameter)))


# By id, each entry removed when its parameter dies (so an id is never
# reused while listed). Not a WeakSet: that compares two references to one
# tensor with Tensor.__eq__ (a model seen again through a DDP or accelerate
# wrapper), which raises for tensors of more than one element.
_watched: dict[int, weakref.ref] = {}


def _unwatch(key: int, _ref) -> None:
    _watched.pop(key, None)


def add_optimizer(optimizer: torch.optim.Optimizer) -> bool:
    if optimizer in optimizers:
        return False
    optimizers.add(optimizer)
    return True


def claim_parameters(model: torch.nn.Module) -> None:
    weights, adapters = [], []
    for name, parameter in model.named_parameters():
        (adapters if is_adapter(name, parameter) else weights).append(parameter)
    _C.claim(weights, "weights")
    _C.claim(adapters, "adapters")


def _gradients(parameters):
    return [p.grad for p in parameters if p.grad is not None]


def _optimizer_state(optimizer: torch.optim.Optimizer):
    tensors = []
    for state in optimizer.state.values():
        for value in state.values():
            if isinstance(value, torch.Tensor):
                tensors.append(value)
    return tensors


def run(full: bool = True) -> None:
    """Retag what the discovered models and optimizers hold.

    At a step boundary (full=False) only what a step creates is claimed: the
    gradients and state of the optimized parameters. Parameters were claimed
    when their model was discovered, and walking every frozen base parameter
    each step would cost more than the rest of the census; stats() runs the
    full census, which also catches parameters replaced since.
    """
    if full:
        for model in list(models):
            claim_parameters(model)
            _C.claim(_gradients(model.parameters()), "gradients")
    for optimizer in list(optimizers):
        parameters = [p for group in optimizer.param_groups for p in group["params"]]
        _C.claim(_gradients(parameters), "gradients")
        _C.claim(_optimizer_state(optimizer), "optimizer")


def tag(tensors, category: str):
    """Move the storages of a tensor (or tensors) to `category`."""
    if isinstance(tensors, torch.Tensor):
        tensors = [tensors]
    return _C.claim(list(tensors), category)


def reset() -> None:
    models.clear()
    optimizers.clear()
