"""The guard's one collective: all_reduce(MAX) over the ranks of a
torch.distributed group, made so that it can never hang the end of a run
(Note [A collective's tensor outlives the call])."""

from __future__ import annotations

import torch

from . import _C

# Note [A collective's tensor outlives the call]
# dist.all_reduce returns once the work is complete, but the process group's
# worker thread (gloo's runLoop, NCCL's watchdog) may still hold the work,
# and with it a reference to the tensor. c10 calls into Python when a
# tensor's reference count falls from 2 to 1 and the tensor has a Python
# object (intrusive_ptr's decref_pyobject), so if the worker's reference is
# the second-to-last one, dropping it takes the GIL. If the process group is
# destroyed in that moment by a thread that holds the GIL (DDP's reducer freed
# at the end of a script: its process group's destructor joins the worker),
# both threads wait for ever. A 2-rank torchrun custom loop under a budget
# hung so in about one run of seven, always just after the guard's last
# collective. In a 1-rank gloo group the tensor was still held on return
# after 9 of 200 calls.
#
# Waiting after each call until the worker lets go was dropped: NCCL's
# watchdog looks at finished work about every 100 ms, and the guard reduces
# twice per step. Instead the guard keeps a view of each tensor: the view
# holds the tensor from C++, so the worker's drop is never the 2 -> 1 one and
# needs no GIL. A view is let go (on the main thread) at a later call, once
# its tensor has no other holder. tests/python/test_collective.py destroys a
# DDP process group right after the guard's collective, 200 times; with a
# plain tensor the same loop hangs within its first iterations.
_pinned: list[torch.Tensor] = []  # one view per collective a worker may still hold


def all_reduce_max(values: list[float], group=None) -> list[float]:
    dist = torch.distributed
    device = torch.device("cpu")
    if dist.get_backend(group) == "nccl":
        device = torch.device("cuda", torch.cuda.current_device())
    _C.push_category("temporary")  # the guard's few bytes are not the user's
    try:
        tensor = torch.tensor(values, dtype=torch.float64, device=device)
        pin = tensor.view(-1)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX, group=group)
    finally:
        _C.pop_category()
    # a tensor held only by its Python object and its view: the worker is done
    _pinned[:] = [view for view in _pinned if view._base._use_count() > 2]
    _pinned.append(pin)
    return tensor.tolist()
