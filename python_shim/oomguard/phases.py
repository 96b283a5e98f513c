"""Phases and steps with no change to the user's code.

Global module hooks see the outermost forward (and so discover the models);
global optimizer hooks see the step (and discover the optimizers); wrappers
on ``torch.autograd.backward`` and the save functions mark backward and save.

Note [Backward from the autograd entry point]
The backward phase starts and ends in a wrapper around
``torch.autograd.backward``, which ``Tensor.backward`` and accelerate's
``backward`` both call. A grad-fn hook on the model's outputs would start the
phase only once the gradient reaches the model (the loss's own backward would
be missed when the loss is computed outside it) and would never say where
backward ends; without an end, the next micro-batch's forward would look like
backward. Forwards that run inside backward (activation checkpointing's
recomputation) stay in backward: their tensors are backward temporaries.

Note [Process phase, not thread phase]
Autograd runs device backward on threads of its own, so phases are set
process-wide (tags.hpp's process phase) rather than as thread-local scopes.
"""

from __future__ import annotations

import functools
import threading
import weakref

import torch

from . import _C, census

_local = threading.local()
_handles: list = []
_restore: list = []  # (owner, attribute, original)
_on_step_end: list = []
_leader: "weakref.ref | None" = None
boundaries: list[dict] = []  # current bytes by category at each step boundary
MAX_BOUNDARIES = 1 << 14


def _depth() -> int:
    return getattr(_local, "depth", 0)


def _forward_pre(module, args):
    depth = _depth()
    _local.depth = depth + 1
    if depth != 0 or _C.phase() in ("backward", "save"):
        return
    census.add_model(module)
    training = torch.is_grad_enabled() and module.training
    _C.set_phase("forward" if training else "eval")


def _forward_post(module, args, output):
    depth = _depth() - 1
    _local.depth = max(depth, 0)
    if depth == 0 and _C.phase() in ("forward", "eval"):
        _C.set_phase("idle")


def _step_pre(optimizer, args, kwargs):
    global _leader
    census.add_optimizer(optimizer)
    if _leader is None or _leader() is None:
        _leader = weakref.ref(optimizer)
    _local.depth = 0  # a forward that raised left no post hook behind
    _C.set_phase("optimizer")


def _step_post(optimizer, args, kwargs):
    if _leader is not None and _leader() is not optimizer:
        return  # with several optimizers, the first one seen paces the steps
    step_boundary()


def step_boundary() -> None:
    """Close the step: census, record the boundary, open the next step."""
    census.run(full=False)
    step = _C.step()
    if len(boundaries) < MAX_BOUNDARIES:
        boundaries.append({"step": step, "current": _C.current_by_category()})
    _C.begin_step(step + 1)
    _C.set_phase("idle")
    for callback in list(_on_step_end):
        callback(step)


def in_phase(phase: str, function):
    """Wrap `function` so that it runs in `phase`, then restores the previous one."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        previous = _C.phase()
        _C.set_phase(phase)
        try:
            return function(*args, **kwargs)
        finally:
            _C.set_phase(previous)

    wrapper.__oomguard_wrapped__ = function
    return wrapper


def patch(owner, attribute: str, phase: str) -> None:
    original = getattr(owner, attribute, None)
    if original is None or hasattr(original, "__oomguard_wrapped__"):
        return
    setattr(owner, attribute, in_phase(phase, original))
    _restore.append((owner, attribute, original))


def _patch_backward() -> None:
    original = torch.autograd.backward

    @functools.wraps(original)
    def backward(*args, **kwargs):
        previous = _C.phase()
        _C.set_phase("backward")
        try:
            return original(*args, **kwargs)
        finally:
            # Non-reentrant checkpointing stops its recomputation early (by
            # raising inside the block), so forwards run in backward may leave
            # no post hook behind: the next forward must start at depth 0.
            _local.depth = 0
            _C.set_phase("idle" if previous in ("forward", "eval", "backward") else previous)

    backward.__oomguard_wrapped__ = original
    torch.autograd.backward = backward
    _restore.append((torch.autograd, "backward", original))


def _patch_optimizer_init() -> None:
    """Discover optimizers when they are built, not at their first step: the
    guard's static check runs before the first forward."""
    original = torch.optim.Optimizer.__init__

    @functools.wraps(original)
    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        census.add_optimizer(self)

    __init__.__oomguard_wrapped__ = original
    torch.optim.Optimizer.__init__ = __init__
    _restore.append((torch.optim.Optimizer, "__init__", original))


def install() -> None:
    """Register the global hooks (once)."""
    if _handles:
        return
    import torch.nn.modules.module as modules
    import torch.optim.optimizer as optim

    _handles.append(modules.register_module_forward_pre_hook(_forward_pre))
    # always_call: a forward that raises (an OOM the caller retries with a
    # smaller batch) must still close its phase and its depth.
    _handles.append(modules.register_module_forward_hook(_forward_post, always_call=True))
    _handles.append(optim.register_optimizer_step_pre_hook(_step_pre))
    _handles.append(optim.register_optimizer_step_post_hook(_step_post))
    _patch_backward()
    _patch_optimizer_init()
    from . import saving

    saving.install()


def uninstall() -> None:
    for handle in _handles:
        handle.remove()
    _handles.clear()
    while _restore:
        owner, attribute, original = _restore.pop()
        setattr(owner, attribute, original)
