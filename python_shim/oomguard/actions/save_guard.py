"""The save guard: a save never fails for lack of device memory when host
memory suffices.

Before a save, the guard estimates the device bytes the save itself will
copy and compares them with the headroom on that device (budget, or free
memory, minus what is allocated). When short, it copies the tensors to host
one at a time (each device temporary is freed before the next) and saves
from host; the file is the same.

Note [What each save copies on the device]
- ``torch.save`` stages storages to host one by one itself: no device copy,
  the guard never acts.
- ``safetensors.torch.save_file`` moves each tensor to host itself and
  refuses non-contiguous tensors: no device copy.
- ``safetensors.torch.save_model(force_contiguous=True)`` makes a
  contiguous copy of every non-contiguous tensor, all alive at once.
- ``PreTrainedModel.save_pretrained`` (and PEFT's, the Trainer's
  checkpoints) makes ``tensor.contiguous()`` of every tensor of a shard
  before writing it, and may gather sharded weights.
So the estimate is the bytes of the non-contiguous tensors on the device
(plus nothing for the gathered ones, which this guard cannot see).

Note [No device temporary]
Copying a non-contiguous CUDA tensor to host (``host.copy_(t)``) first makes
a contiguous copy of it on the device: with less room than the largest such
tensor (a 4 MiB matrix takes a fresh 20 MiB segment from torch's allocator)
the guarded save itself would run out of memory. So the guard copies the
tensor's whole storage, which is contiguous, straight to host and takes the
strided view there. The storage may be larger than the view (a slice): more
host bytes, never device bytes.

Note [Host in cpu mode]
In cpu mode the "device" is the CPU under a hard budget; host copies are
then made in numpy-owned memory, which the budget does not count, the way
a GPU's host copies do not count against the GPU.
"""

from __future__ import annotations

import contextlib
import functools
import json
import threading

import numpy as np
import torch

from .. import _C
from .base import ActionContext, ActionResult, Decision, record

_state = threading.local()
enabled = True  # tests turn it off to show the unguarded save failing


def _inside() -> bool:
    return getattr(_state, "depth", 0) > 0


@contextlib.contextmanager
def _guarding():
    _state.depth = getattr(_state, "depth", 0) + 1
    try:
        yield
    finally:
        _state.depth -= 1


@contextlib.contextmanager
def unguarded():
    """Saves inside run unguarded (for tests and benchmarks)."""
    global enabled
    previous, enabled = enabled, False
    try:
        yield
    finally:
        enabled = previous


def device_copy_bytes(tensors) -> dict[str, int]:
    """Bytes the save will copy on each device: the contiguous copies of
    non-contiguous tensors (Note [What each save copies on the device])."""
    out: dict[str, int] = {}
    seen = set()
    for t in tensors:
        if not isinstance(t, torch.Tensor) or t.is_contiguous() or t.device.type == "meta":
            continue
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.stride())
        if key in seen:
            continue
        seen.add(key)
        out[str(t.device)] = out.get(str(t.device), 0) + t.numel() * t.element_size()
    return out


def headroom(device: str) -> int | None:
    """Bytes that can still be allocated on `device`; None when unbounded."""
    if device == "cpu":
        budget = json.loads(_C.stats_json()).get("cpu_budget", {})
        limit = budget.get("limit", 0)
        return None if not limit else max(limit - budget.get("used", 0), 0)
    if device.startswith("cuda"):
        from .. import installed
        from ..device_memory import cuda_memory

        # oomguard's figures in own mode, where torch.cuda.memory_reserved()
        # raises (Note [Whose figures], device_memory.py).
        memory = cuda_memory(torch.device(device).index or 0)
        room = memory.free + memory.reserved - memory.allocated
        handle = installed()
        if handle is not None and handle.config.budget:
            limit = _C.resolve_budget(handle.config.budget, memory.total)
            room = min(room, max(limit - memory.allocated, 0))
        return room
    return None


def short_devices(tensors) -> dict[str, tuple[int, int]]:
    """{device: (bytes the save copies, headroom)} where the copies do not fit."""
    out = {}
    for device, need in device_copy_bytes(tensors).items():
        room = headroom(device)
        if room is not None and need > room:
            out[device] = (need, room)
    return out


def _host_empty(t: torch.Tensor) -> torch.Tensor:
    if t.device.type == "cpu":  # cpu mode: memory the budget does not count
        buffer = np.empty(max(t.numel() * t.element_size(), 1), dtype=np.uint8)
        flat = torch.from_numpy(buffer)[: t.numel() * t.element_size()]
        return flat.view(t.dtype).view(t.shape)
    return torch.empty(t.shape, dtype=t.dtype, device="cpu")


def _host_copy_of_strided(t: torch.Tensor) -> torch.Tensor:
    """A contiguous host copy of a non-contiguous device tensor, with no
    device memory at all (Note [No device temporary])."""
    storage = t.untyped_storage()
    raw = torch.empty(0, dtype=torch.uint8, device=t.device).set_(storage)  # the storage as contiguous bytes
    host_bytes = _host_empty(raw)
    host_bytes.copy_(raw)
    view = host_bytes.view(t.dtype).as_strided(t.shape, t.stride(), t.storage_offset())
    return view.contiguous()


def to_host(state: dict) -> dict:
    """Contiguous host copies of `state`'s tensors, made one at a time.
    Tensors sharing a view share the copy (tied weights stay tied)."""
    copies: dict = {}
    out = {}
    for name, t in state.items():
        if not isinstance(t, torch.Tensor) or t.device.type == "meta":
            out[name] = t
            continue
        key = (t.untyped_storage().data_ptr(), t.device, t.storage_offset(), tuple(t.shape), t.stride(), t.dtype)
        host = copies.get(key)
        if host is None:
            t = t.detach()
            if t.device.type != "cpu" and not t.is_contiguous():
                host = _host_copy_of_strided(t)
            else:
                host = _host_empty(t)
                host.copy_(t)
            copies[key] = host
        out[name] = host
    return out


class _StateDictOf:
    """What safetensors.save_model needs of a module: its state_dict()."""

    def __init__(self, state: dict):
        self._state = state

    def state_dict(self):
        return dict(self._state)


def _record(kind: str, short: dict) -> None:
    detail = "; ".join(f"{device}: the save copies {need} bytes, {room} free" for device, (need, room) in short.items())
    record(ActionResult("save_guard", f"{kind} through host copies one tensor at a time ({detail})",
                        sum(need for need, _ in short.values())))


def guard_save_model(original):
    @functools.wraps(original)
    def save_model(model, filename, metadata=None, force_contiguous=True):
        if enabled and not _inside() and force_contiguous:
            state = model.state_dict()
            short = short_devices(state.values())
            if short:
                with _guarding():
                    _record("safetensors.save_model", short)
                    return original(_StateDictOf(to_host(state)), filename, metadata, force_contiguous)
        with _guarding():
            return original(model, filename, metadata, force_contiguous)

    save_model.__oomguard_guarded__ = original
    return save_model


def guard_save_pretrained(original):
    @functools.wraps(original)
    def save_pretrained(self, save_directory, *args, **kwargs):
        if enabled and not _inside():
            state = kwargs.get("state_dict")
            if state is None:
                state = self.state_dict()
            short = short_devices(state.values())
            if short:
                with _guarding():
                    _record(f"{type(self).__name__}.save_pretrained", short)
                    kwargs["state_dict"] = to_host(state)
                    return original(self, save_directory, *args, **kwargs)
        with _guarding():
            return original(self, save_directory, *args, **kwargs)

    save_pretrained.__oomguard_guarded__ = original
    return save_pretrained


def guard(owner, attribute: str, wrapper) -> None:
    original = getattr(owner, attribute, None)
    if original is None or hasattr(original, "__oomguard_guarded__"):
        return
    setattr(owner, attribute, wrapper(original))


def check_model(model) -> dict:
    """The shortfall a save of `model` would meet now ({} when it fits):
    the Trainer callback asks before a checkpoint is written."""
    return short_devices(model.state_dict().values()) if model is not None else {}


def apply(context: ActionContext, decision: Decision) -> ActionResult:
    """Policy entry: make sure the guard is on (it is by default) and report
    what the next save of the first model would need."""
    global enabled
    enabled = True
    model = context.models[0] if context.models else None
    short = check_model(model)
    if not short:
        return ActionResult("save_guard", "saves fit on the device; the guard stays armed", 0, acted=False)
    detail = "; ".join(f"{d}: a save copies {need} bytes, {room} free" for d, (need, room) in short.items())
    return ActionResult("save_guard", f"next save goes through host copies ({detail})",
                        sum(need for need, _ in short.values()))


def before_trainer_save(model, step: int) -> None:
    """Trainer checkpoint ahead (on_step_end with control.should_save): say
    now, before the write, that it will go through host copies."""
    if not enabled or model is None:
        return
    short = check_model(model)
    if short:
        detail = "; ".join(f"{d}: the save copies {need} bytes, {room} free" for d, (need, room) in short.items())
        record(ActionResult("save_guard", f"Trainer checkpoint at step {step} will go through host copies ({detail})",
                            sum(need for need, _ in short.values())))
