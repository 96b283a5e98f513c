"""Behaviour that needs a fresh process: the budget, adoption of tensors
made before install(), OOMGUARD_DISABLE."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest


def run_python(code: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("OOMGUARD_CONF", None)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True,
                          timeout=120)


def test_cpu_budget_raises_torch_out_of_memory_error():
    result = run_python("""
        import torch, oomguard
        oomguard.install(mode="cpu", budget="64MiB")
        kept = torch.empty(8 << 20, dtype=torch.uint8)
        try:
            torch.empty(64 << 20, dtype=torch.uint8)
        except torch.OutOfMemoryError as error:
            print("OOM:", error)
        del kept
        torch.empty(48 << 20, dtype=torch.uint8)  # the refusal leaked no budget
        print("after:", oomguard.stats()["cpu_budget"]["used"] < (16 << 20))
    """)
    assert result.returncode == 0, result.stderr
    assert "OOM: oomguard: CPU allocation of 64.00 MiB refused" in result.stdout
    assert "budget of 64.00 MiB" in result.stdout
    assert "after: True" in result.stdout


def test_storages_made_before_install_are_adopted():
    result = run_python("""
        import torch, oomguard
        model = torch.nn.Linear(256, 256)
        oomguard.install(mode="cpu")
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        model(torch.randn(4, 256)).sum().backward()
        optimizer.step()
        current = oomguard.stats()["devices"]["cpu"]["current"]
        params = sum(p.untyped_storage().nbytes() for p in model.parameters())
        print(current["weights"] == params, current["gradients"] == params, current["optimizer"] == params)
        del model, optimizer
        import gc; gc.collect()
        current = oomguard.stats()["devices"]["cpu"]["current"]
        print(current["weights"], current["gradients"], current["optimizer"])
    """)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "True True True"
    assert lines[1] == "0 0 0"  # the adopted storages' frees were seen


def test_disable_turns_everything_off():
    result = run_python("""
        import torch, oomguard
        handle = oomguard.install(mode="cpu")
        torch.empty(1000)
        print(handle.enabled, oomguard._C.cpu_allocator_installed(), oomguard.stats()["devices"])
    """, {"OOMGUARD_DISABLE": "1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False False {}"


@pytest.mark.parametrize("conf", ["mode:cpu,colour:blue"])
def test_bad_conf_fails_install_with_the_key_named(conf):
    result = run_python("import oomguard; oomguard.install()", {"OOMGUARD_CONF": conf})
    assert result.returncode != 0
    assert "colour" in result.stderr and "report_dir" in result.stderr


def test_a_forked_child_writes_nothing_of_its_parents(tmp_path):
    # Note [A forked child writes nothing of its parent's]: the child's 64 MiB
    # and its sys.exit once landed in the parent's timeline and over its
    # summary.json.
    reports = tmp_path / "reports"
    result = run_python(f"""
        import json, os, sys, torch, oomguard
        oomguard.install(mode="cpu", report_dir={str(reports)!r})
        kept = torch.ones(1024)
        pid = os.fork()
        if pid == 0:
            big = torch.ones(16 << 20)  # 64 MiB
            sys.exit(0)
        os.waitpid(pid, 0)
        rows = open({str(reports / "rank0" / "timeline.csv")!r}).read().splitlines()[1:]
        header = open({str(reports / "rank0" / "timeline.csv")!r}).readline().strip().split(",")
        allocated = header.index("allocated")
        print("most in the timeline:", max(int(r.split(",")[allocated]) for r in rows))
        print("summary after the child:", os.path.exists({str(reports / "rank0" / "summary.json")!r}))
    """)
    assert result.returncode == 0, result.stderr
    assert "summary after the child: False" in result.stdout, result.stdout  # the child wrote none
    most = int(result.stdout.split("most in the timeline:")[1].split()[0])
    assert most < 1 << 20, result.stdout
    summary = json.loads((reports / "rank0" / "summary.json").read_text())
    assert summary["peak"]["allocated_bytes"] < 1 << 20
