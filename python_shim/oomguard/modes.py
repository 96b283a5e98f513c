"""Choosing and starting an allocation source: observe, own or cpu.

Note [Backends]
Observe mode attaches c10's trace tracker and out-of-memory observer to
torch's native caching allocator. torch's other CUDA backends refuse both:
``backend:cudaMallocAsync`` (PYTORCH_CUDA_ALLOC_CONF) raises "does not yet
support attachAllocatorTraceTracker", as does a CUDAPluggableAllocator
someone installed first. Queued on torch.cuda's lazy init, that error would
fail the program's first CUDA call; swallowed, oomguard would report empty
devices. So install() refuses observe mode (and auto mode on CUDA) there,
naming the backend and what works instead; torch's backend is known before
CUDA initialises (``torch.cuda.get_allocator_backend()``). Own mode replaces
any backend, with a warning that it does (docs/hooks.md, "Allocator
backends").
"""

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
    # Runs from torch.cuda's lazy-init queue, where an exception would fail
    # the program's first CUDA call (DeferredCudaCallError): an allocator that
    # refuses the tracker (replaced after install) is said, not raised.
    try:
        _C.attach_cuda_observer()
    except RuntimeError as error:
        warnings.warn(f"oomguard: observe mode could not attach to torch's CUDA allocator ({error}); CUDA "
                      "allocations are not tracked in this process", stacklevel=2)


def _observable_backend() -> None:
    """Refuse observe mode where it would record nothing (Note [Backends])."""
    backend = torch.cuda.get_allocator_backend()  # does not initialise CUDA
    if backend == "native":
        return
    if backend == "cudaMallocAsync":
        raise RuntimeError(
            "oomguard: mode 'observe' attaches to torch's native CUDA caching allocator, but this process uses the "
            "'cudaMallocAsync' backend (PYTORCH_CUDA_ALLOC_CONF=backend:cudaMallocAsync), which has no trace tracker "
            "or out-of-memory observer: oomguard would record nothing. Accepted: the native backend (drop "
            "backend:cudaMallocAsync), or mode 'own' (oomguard's allocator replaces the backend)")
    raise RuntimeError(
        f"oomguard: mode 'observe' attaches to torch's native CUDA caching allocator, but torch's CUDA allocator is "
        f"'{backend}' (another CUDAPluggableAllocator was installed before oomguard), which has no trace tracker: "
        "oomguard would record nothing. Install oomguard before changing torch's allocator, or not at all")


def start_observe() -> str:
    if not _C.cuda_observe_supported():
        raise RuntimeError("oomguard: mode 'observe' needs a CUDA build of torch; accepted here: 'cpu'")
    _observable_backend()
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
    backend = torch.cuda.get_allocator_backend()
    if backend != "native":
        warnings.warn(f"oomguard: mode 'own' replaces torch's '{backend}' CUDA allocator backend with oomguard's "
                      "allocator", stacklevel=3)
    _C.configure_core_allocator(allocator_conf)
    # oomguard._C's entry points, not the core's C ABI: torch does not check
    # a pluggable allocator's NULL (Note [A pluggable allocator must throw],
    # hooks/torch/src/pluggable.hpp).
    allocator = torch.cuda.memory.CUDAPluggableAllocator(_C.extension_library_path(), "oomguard_torch_malloc",
                                                         "oomguard_torch_free")
    try:
        torch.cuda.memory.change_current_allocator(allocator)
    except RuntimeError as error:
        warnings.warn(f"oomguard: mode 'own' refused by torch ({error}); falling back to 'observe'", stacklevel=3)
        return start_observe()
    _state["own"] = True
    return "own"


_state = {"own": False, "pool_conf": ""}


def is_own() -> bool:
    """True when oomguard's allocator serves every CUDA tensor (own mode):
    torch.cuda.memory_* then raise; read oomguard's figures instead."""
    return _state["own"]


def own_pool():
    """A torch.cuda.MemPool whose segments the core allocator serves, for
    routing one phase (``with torch.cuda.use_mem_pool(oomguard.own_pool()):``)
    through oomguard's allocator (its budget and category limits) while the
    native allocator keeps the rest; observe mode sees the pool's blocks as
    it sees any pool's. Only beside the native allocator: in own mode every
    allocation is oomguard's already, and torch has no MemPool under a
    pluggable allocator."""
    if is_own():
        raise RuntimeError("oomguard: own_pool() routes a phase through oomguard's allocator beside torch's native "
                           "one; in mode 'own' every CUDA allocation is served by oomguard already (and torch has no "
                           "MemPool under a pluggable allocator): use the allocations as they are")
    # Segments from a pool allocator with its own records (Note [The pool
    # allocator's own Ledger], hooks/torch/src/pluggable.hpp).
    _C.configure_pool_allocator(_state["pool_conf"])
    allocator = torch.cuda.memory.CUDAPluggableAllocator(_C.extension_library_path(), "oomguard_pool_malloc",
                                                         "oomguard_pool_free")
    return torch.cuda.MemPool(allocator.allocator())


def start(mode: str, budget: str | None, allocator_conf: str) -> str:
    mode = resolve(mode)
    _state["pool_conf"] = allocator_conf
    if mode == "cpu":
        return start_cpu(budget)
    if mode == "observe":
        if budget:
            warnings.warn("oomguard: in mode 'observe' torch's own allocator serves CUDA, so the budget is not a "
                          "hard limit there; modes that enforce it: 'own', 'cpu'", stacklevel=3)
        return start_observe()
    return start_own(allocator_conf)
