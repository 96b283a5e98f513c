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

import collections
import functools
import threading
import weakref

import torch

from . import _C, census

_handles: list = []
_restore: list = []  # (owner, attribute, original)
_on_step_end: list = []
_leader: "weakref.ref | None" = None
MAX_BOUNDARIES = 1 << 14
# current bytes by category at each step boundary, the latest MAX_BOUNDARIES
boundaries: "collections.deque[dict]" = collections.deque(maxlen=MAX_BOUNDARIES)


# Note [One global hook, and only at the outermost forward]
# Every module call pays for a global module hook, and a 1.1B Llama makes
# about 290 of them per forward. Depth counting (a global pre and post hook
# on every module) and the guard's own global hook for the embedding's input
# cost about 15% of a simulated training step's host time (bench/
# simulated_torch_bench.py), so only one global pre-hook is left, and it
# returns at once unless no forward is open: then this module is the
# outermost one. It opens the phase and gets a post hook of its own (once;
# always_call, so a forward that raises still closes it), which closes the
# phase only if its module opened it (a module first called on its own and
# later inside a bigger model must not close the bigger model's forward).
# The open forward is a thread-local, read without a call into C++.
_local = threading.local()


def _forward_pre(module, args):
    if getattr(_local, "opener", None) is not None:
        return
    if _C.phase() in ("backward", "save"):
        return
    _local.opener = module
    census.add_model(module)
    if module not in _closers:
        _closers[module] = module.register_forward_hook(_forward_post, always_call=True)
    training = torch.is_grad_enabled() and module.training
    _C.set_phase("forward" if training else "eval")


def _forward_post(module, args, output):
    if getattr(_local, "opener", None) is not module:
        return
    _local.opener = None
    if _C.phase() in ("forward", "eval"):
        _C.set_phase("idle")


# The modules whose forwards opened a phase, each with its closing hook.
_closers: "weakref.WeakKeyDictionary[torch.nn.Module, object]" = weakref.WeakKeyDictionary()


def _step_pre(optimizer, args, kwargs):
    global _leader
    census.add_optimizer(optimizer)
    if _leader is None or _leader() is None:
        _leader = weakref.ref(optimizer)
    _local.opener = None  # whatever forward was open, the step has begun
    _C.set_phase("optimizer")


def _step_post(optimizer, args, kwargs):
    if _leader is not None and _leader() is not optimizer:
        return  # with several optimizers, the first one seen paces the steps
    step_boundary()


def step_boundary() -> None:
    """Close the step: census, record the boundary, open the next step."""
    census.run(full=False)
    step = _C.step()
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
            # Whatever forward was open (a loss computed inside the model's
            # forward and backward from there), the next one is outermost.
            _local.opener = None
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
    for handle in list(_closers.values()):
        handle.remove()
    _closers.clear()
    _local.opener = None
    while _restore:
        owner, attribute, original = _restore.pop()
        setattr(owner, attribute, original)
