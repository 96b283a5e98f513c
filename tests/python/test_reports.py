"""Post-mortem reports: files on exit, on out-of-memory and on abort, the
memory_viz pickle, the HTML in headless Chromium, and a timeline that
survives SIGKILL."""

from __future__ import annotations

import csv
import glob
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time

import pytest

import oomguard
from oomguard import _C

HERE = os.path.dirname(__file__)
SCRIPT = os.path.join(HERE, "scripts", "report_run.py")
FILES = ("summary.json", "report.html", "snapshot.pickle", "timeline.csv")
HEADER = (["step", "phase", "time_s"] + list(_C.CATEGORIES)
          + ["allocated", "reserved", "predicted_peak", "budget"])


def _env():
    env = dict(os.environ)
    env.pop("OOMGUARD_CONF", None)
    env.pop("RANK", None)
    return env


def _run(mode, tmp_path, timeout=240):
    return subprocess.run([sys.executable, SCRIPT, mode, str(tmp_path / "run")], env=_env(), capture_output=True,
                          text=True, timeout=timeout)


def _timeline(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == HEADER
    return [dict(zip(HEADER, r)) for r in rows[1:]]


def _check_pickle(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data[0] == 0x80 and data[1] <= 4  # memory_viz reads protocols 2 to 4
    snapshot = pickle.loads(data)
    assert isinstance(snapshot["segments"], list) and isinstance(snapshot["device_traces"], list)
    entries = [e for trace in snapshot["device_traces"] for e in trace]
    assert entries
    for e in entries:
        assert {"action", "addr", "size", "stream", "frames", "category"} <= e.keys()
        assert e["category"] in _C.CATEGORIES
    assert any(e["category"] == "unknown" for e in entries)
    assert any(e["action"] == "alloc" and e["category"] == "weights" for e in entries)
    for seg in snapshot["segments"]:
        assert {"device", "address", "total_size", "blocks", "stream", "segment_type"} <= seg.keys()
        assert seg["blocks"] and seg["blocks"][0]["state"] == "active_allocated"
    return snapshot


def test_normal_exit_writes_all_files(tmp_path):
    result = _run("exit", tmp_path)
    assert result.returncode == 0, result.stderr
    rank = tmp_path / "run" / "rank0"
    for name in FILES:
        assert (rank / name).exists(), name
    summary = json.loads((rank / "summary.json").read_text())
    assert summary["schema"] == "oomguard.summary/2" and summary["reason"] == "exit"
    assert summary["oom"] is None and summary["device"] == "cpu"
    peak = summary["peak"]
    assert peak["allocated_bytes"] > 0 and peak["by_category"]["weights"] > 0
    assert peak["by_category"]["optimizer"] > 0  # the peak comes after the first optimizer step
    assert summary["largest_allocations"] and all(a["size_bytes"] > 0 for a in summary["largest_allocations"])
    rows = _timeline(rank / "timeline.csv")
    phases = {r["phase"] for r in rows}
    assert {"forward", "backward", "optimizer"} <= phases
    assert max(int(r["step"]) for r in rows) >= 2
    _check_pickle(rank / "snapshot.pickle")


def test_out_of_memory_report_is_written_before_python_sees_the_error(tmp_path):
    result = _run("oom", tmp_path)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    oom = seen["summary_oom"]
    assert oom is not None  # read back inside the except block, before any atexit
    assert oom["requested_bytes"] > 0 and oom["budget_bytes"] == 48 << 20
    assert oom["reason"] == "budget"
    assert oom["allocated_bytes"] + oom["requested_bytes"] > oom["budget_bytes"]
    assert sum(oom["by_category"].values()) == oom["allocated_bytes"]
    assert oom["by_category"]["weights"] > 0
    assert oom["largest_allocations"]
    rank = tmp_path / "run" / "rank0"
    for name in FILES:
        assert (rank / name).exists(), name
    summary = json.loads((rank / "summary.json").read_text())
    assert summary["reason"] == "out_of_memory" and summary["budget_bytes"] == 48 << 20
    assert "OOM" in (rank / "report.html").read_text()
    _check_pickle(rank / "snapshot.pickle")


def test_abort_report_through_write_report(tmp_path):
    result = _run("abort", tmp_path)
    assert result.returncode == 0, result.stderr
    written = json.loads(result.stdout.strip().splitlines()[-1])
    assert written["errors"] == []
    assert sorted(os.path.basename(f) for f in written["files"]) == ["report.html", "snapshot.pickle", "summary.json"]
    summary = json.loads((tmp_path / "run" / "rank0" / "summary.json").read_text())
    assert summary["reason"] == "abort: test"


def test_sigkill_leaves_a_parseable_timeline(tmp_path):
    proc = subprocess.Popen([sys.executable, SCRIPT, "kill", str(tmp_path / "run")], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    rows = _timeline(tmp_path / "run" / "rank0" / "timeline.csv")
    assert len(rows) >= 6  # forward, backward, optimizer rows of two steps at least
    for r in rows:
        assert int(r["allocated"]) == sum(int(r[c]) for c in _C.CATEGORIES)
    assert not (tmp_path / "run" / "rank0" / "summary.json").exists()  # no exit report: it was killed
    # `oomguard report` still draws the killed rank, from its timeline alone.
    out = subprocess.run([_oomguard_cli(), "report", str(tmp_path / "run")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "rank0: no summary.json" in out.stderr
    html = (tmp_path / "run" / "report.html").read_text()
    assert 'id="rank0"' in html and "no readable summary" in html and "Highest sampled point" in html


def test_a_report_folder_that_became_unwritable_ends_the_run_cleanly(tmp_path):
    """The folder is replaced by a file while the run goes on (a cleaned-up
    scratch space, a remounted volume), or a name in it cannot take a file:
    the exit report names what it could not write, the last line never
    points at a page that is not there, and there is no traceback."""
    setup = {
        "folder_is_a_file": "shutil.rmtree(d); open(d, 'w').write('not a folder')",
        "page_is_a_folder": "os.makedirs(os.path.join(d, 'report.html', 'inside'))",
    }
    stderr = {}
    for case, damage in setup.items():
        reports = tmp_path / case
        code = ("import os, shutil, torch, oomguard; oomguard.install(mode='cpu', report_dir=os.environ['REPORTS']); "
                f"kept = torch.ones(4096); d = os.path.join(os.environ['REPORTS'], 'rank0'); {damage}")
        env = _env()
        env["REPORTS"] = str(reports)
        result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, (case, result.stderr)
        assert "Traceback" not in result.stderr, (case, result.stderr)
        assert "oomguard: report: " in result.stderr, (case, result.stderr)
        assert "report: " + str(reports / "rank0" / "report.html") not in result.stderr, (case, result.stderr)
        stderr[case] = result.stderr
    assert (tmp_path / "folder_is_a_file" / "rank0").read_text() == "not a folder"  # nothing written over it
    # The other files are there; the page is not, and the last line says so.
    page_case = tmp_path / "page_is_a_folder" / "rank0"
    assert json.loads((page_case / "summary.json").read_text())["reason"] == "exit"
    assert (page_case / "report.html").is_dir()
    assert "report.html not written (see the errors above)" in stderr["page_is_a_folder"]


def test_on_demand_report_in_process(tmp_path):
    import torch

    with oomguard.category("weights"):
        kept = torch.zeros(4096)
    result = oomguard.report(str(tmp_path / "now"))
    del kept
    assert result["errors"] == []
    summary = json.loads((tmp_path / "now" / "summary.json").read_text())
    assert summary["reason"] == "on_demand"
    _check_pickle(tmp_path / "now" / "snapshot.pickle")
    # The timeline is copied, so the directory stands on its own.
    assert _timeline(tmp_path / "now" / "timeline.csv")


def _oomguard_cli():
    found = shutil.which("oomguard")
    if found is None:
        pytest.fail("the oomguard executable is not on PATH (pip install the package)")
    return found


def test_cli_rebuilds_and_merges_ranks(tmp_path):
    result = _run("exit", tmp_path)
    assert result.returncode == 0, result.stderr
    shutil.copytree(tmp_path / "run" / "rank0", tmp_path / "run" / "rank1")
    out = subprocess.run([_oomguard_cli(), "report", str(tmp_path / "run")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    html = (tmp_path / "run" / "report.html").read_text()
    assert 'id="rank0"' in html and 'id="rank1"' in html
    empty = subprocess.run([_oomguard_cli(), "report", str(tmp_path)], capture_output=True, text=True)
    assert empty.returncode != 0 and "no reports under" in empty.stderr


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.fail("headless Chromium is needed for the report screenshot test (apt-get install chromium)")


def test_html_renders_in_headless_chromium(tmp_path):
    result = _run("exit", tmp_path)
    assert result.returncode == 0, result.stderr
    page = tmp_path / "run" / "rank0" / "report.html"
    chromium = _chromium()
    common = [chromium, "--headless", "--disable-gpu", "--no-sandbox", f"--user-data-dir={tmp_path / 'profile'}",
              "--window-size=1200,2000"]
    dom = subprocess.run(common + ["--enable-logging=stderr", "--v=0", "--dump-dom", f"file://{page}"],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert '<svg class="timeline"' in dom.stdout and "<polygon" in dom.stdout
    assert "Uncaught" not in dom.stderr and "SyntaxError" not in dom.stderr
    shot = tmp_path / "shot.png"
    subprocess.run(common + [f"--screenshot={shot}", f"file://{page}"], capture_output=True, timeout=120, check=True)
    from PIL import Image

    image = Image.open(shot).convert("RGB")
    colours = set(image.get_flattened_data() if hasattr(image, "get_flattened_data") else image.getdata())
    assert len(colours) > 20  # not a blank page
    # The stacked areas are drawn with the category colours (weights #4e79a7,
    # optimizer #e15759) at 0.85 opacity over white.
    def blended(hex_colour):
        rgb = [int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)]
        return tuple(round(0.85 * c + 0.15 * 255) for c in rgb)

    for colour in ("#4e79a7", "#e15759"):
        target = blended(colour)
        assert any(all(abs(p[i] - target[i]) <= 6 for i in range(3)) for p in colours), colour
