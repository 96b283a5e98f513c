"""Choosing and starting an allocation source: observe, own or cpu."""

from __future__ import annotations

import os
import warnings

import torch

from . import _C


def resolve(mode: str) -> str:
    if mode != "auto":
        return mode
    return "observe" if torch.cuda.is_available() else "cpu"


def host_memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def start_cpu(budget: str | None) -> str:
    limit = _C.resolve_budget(budget, host_memory_bytes()) if budget else 0
    if not _C.install_cpu_allocator(limit) and budget:
        warnings.warn("oomguard: the CPU allocator was installed before; its budget is kept, the new one ignored",
                      stacklevel=3)
    return "cpu"


def _attach_observer() -> None:
    _C.attach_cuda_observer()


def start_observe() -> str:
    if not _C.cuda_observe_supported():
        raise RuntimeError("oomguard: mode 'observe' needs a CUDA build of torch; accepted here: 'cpu'")
    # The native allocator exists per device only after CUDA's lazy init:
    # _lazy_call runs now if that already happened, otherwise right after it.
    lazy_call = getattr(torch.cuda, "_lazy_call", None)
    if lazy_call is not None:
        lazy_call(_attach_observer)
    elif torch.cuda.is_initialized():
        _attach_observer()
    else:
        _wrap_lazy_init()
    return "observe"


def _wrap_lazy_init() -> None:
    original = torch.cuda._lazy_init

    def lazy_init():
        original()
        if not _C.cuda_observer_attached():
            _attach_observer()

    torch.cuda._lazy_init = lazy_init


def start_own(allocator_conf: str) -> str:
    """Route every CUDA allocation through the core allocator, or say why not."""
    if torch.cuda.is_initialized():
        warnings.warn(
            "oomguard: mode 'own' must be chosen before CUDA initialises (install() before the first CUDA "
            "tensor, or use `oomguard run`); CUDA is already initialised, so oomguard falls back to 'observe'",
            stacklevel=3)
        return start_observe()
    _C.configure_core_allocator(allocator_conf)
    allocator = torch.cuda.memory.CUDAPluggableAllocator(_C.core_library_path(), "oomguard_malloc", "oomguard_free")
    try:
        torch.cuda.memory.change_current_allocator(allocator)
    except RuntimeError as error:
        warnings.warn(f"oomguard: mode 'own' refused by torch ({error}); falling back to 'observe'", stacklevel=3)
        return start_observe()
    return "own"


def own_pool():
    """A torch.cuda.MemPool served by the core allocator, for routing one
    phase (``with torch.cuda.use_mem_pool(oomguard.own_pool()):``) while the
    native allocator keeps the rest."""
    allocator = torch.cuda.memory.CUDAPluggableAllocator(_C.core_library_path(), "oomguard_malloc", "oomguard_free")
    return torch.cuda.MemPool(allocator.allocator())


def start(mode: str, budget: str | None, allocator_conf: str) -> str:
    mode = resolve(mode)
    if mode == "cpu":
        return start_cpu(budget)
    if mode == "observe":
        if budget:
            warnings.warn("oomguard: in mode 'observe' torch's own allocator serves CUDA, so the budget is not a "
                          "hard limit there; modes that enforce it: 'own', 'cpu'", stacklevel=3)
        return start_observe()
    return start_own(allocator_conf)
