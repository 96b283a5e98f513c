"""The guard's collective cannot hang a run's end (Note [A collective's
tensor outlives the call] in python_shim/oomguard/collective.py): a DDP
process group destroyed right after it, with the GIL held, 200 times."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import os, sys
    import torch, torch.distributed as dist
    from oomguard.collective import all_reduce_max

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=sys.argv[1])
    dist.init_process_group("gloo", rank=0, world_size=1)
    layer = torch.nn.Linear(2, 2)
    for _ in range(200):
        group = dist.new_group(backend="gloo")
        model = torch.nn.parallel.DistributedDataParallel(layer, process_group=group)
        assert all_reduce_max([1.0, 3.0], group=group) == [1.0, 3.0]
        dist.destroy_process_group(group)
        del group
        del model  # the reducer held the group's last reference: its destructor joins the worker
    print("done")
""")


def test_a_process_group_destroyed_right_after_the_guards_collective_does_not_hang():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(port)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "done"
