"""A CUDA device's memory in every mode: what is allocated, what the
allocator holds, what the device has left.

Note [Whose figures]
Under torch's native allocator (observe mode) ``torch.cuda.memory_allocated``
and ``memory_reserved`` are the allocator's own counters: exact, and right
even for blocks allocated before oomguard attached. Under own mode torch has
none: CUDAPluggableAllocator raises "does not yet support getDeviceStats"
from every ``torch.cuda.memory_*`` statistic. There the core allocator's are
the ones to read; they reach the Ledger, so ``_C.device_memory`` has them.
``torch.cuda.mem_get_info`` asks the driver and works under any allocator.
"""

from __future__ import annotations

import dataclasses

import torch

from . import _C


@dataclasses.dataclass(frozen=True)
class CudaMemory:
    allocated: int  # bytes of live tensors (blocks)
    reserved: int  # bytes the allocator holds from the device, cached or not
    free: int  # the device's free bytes (the driver's figure)
    total: int


def cuda_memory(index: int) -> CudaMemory:
    """See Note [Whose figures]."""
    from . import modes

    free, total = torch.cuda.mem_get_info(index)
    if not modes.is_own():
        try:
            return CudaMemory(torch.cuda.memory_allocated(index), torch.cuda.memory_reserved(index), free, total)
        except RuntimeError:  # an allocator without statistics, installed by someone else
            pass
    allocated, _, reserved, _ = _C.device_memory(index)
    return CudaMemory(int(allocated), int(reserved), int(free), int(total))
