"""(e) Two gloo ranks with different budgets take the same action: the worst
rank's. Rank 0 has room to spare, rank 1 cannot fit the longest batch; both
abort at step 2 and each keeps its own record."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from guard_runs import SCENARIO, SCRIPT, env, train


def test_ranks_agree_on_the_worst_ranks_action(tmp_path):
    calibrate, result = train(tmp_path, "mode:cpu,budget:4GiB", name="calibrate")
    assert calibrate.returncode == 0, calibrate.stderr[-3000:]
    tight = int(result["peak_allocated"] * 0.9)
    out = tmp_path / "dist"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", SCRIPT, *SCENARIO,
         "--out", str(out)],
        env=env("", GUARD_CONF_RANK0=f"mode:cpu,budget:4GiB,actions:warn+abort,report_dir:{tmp_path}",
                GUARD_CONF_RANK1=f"mode:cpu,budget:{tight},actions:warn+abort,report_dir:{tmp_path}",
                OMP_NUM_THREADS="1"),
        capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0  # the ranks aborted
    records = {}
    for rank in (0, 1):
        path = f"{out}.rank{rank}"
        assert os.path.exists(path), proc.stderr[-3000:]
        with open(path) as f:
            records[rank] = json.load(f)
    kinds = {rank: [a["kind"] for a in r["actions"]] for rank, r in records.items()}
    assert kinds[0] == kinds[1] == ["warn", "abort"], kinds
    # Each rank decided on its own prediction against its own budget: rank 0
    # alone would have fitted.
    assert records[0]["prediction"]["peak_allocated_bytes"] < 4 * 2**30
    assert proc.stderr.count("aborting at step 2") == 2  # one line per rank, on stderr
