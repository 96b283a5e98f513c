"""A run ended by a signal (Note [Reports at a terminating signal], Note
[The launcher and its command live and die together]): SIGTERM to
`oomguard run`, as Slurm, Docker and Kubernetes send it, reaches the
training process, which writes its reports with the signal as the reason
and dies by it; a launcher killed outright takes its command with it; a
Ctrl-C's report says so."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import simulated

TRAIN = """
import os, sys, time, torch
model = torch.nn.Linear(256, 256)
x = torch.randn(64, 256)
open(sys.argv[1], "w").write(str(os.getpid()))
while True:
    model(x).sum().backward()
    time.sleep(0.01)
"""


def _env() -> dict:
    env = dict(os.environ)
    for name in ("OOMGUARD_CONF", "OOMGUARD_SIMULATE", "RANK", "LOCAL_RANK", "WORLD_SIZE"):
        env.pop(name, None)
    env["OOMGUARD_PYTHON"] = sys.executable
    return env


def _start(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    ready = tmp_path / "pid"
    launcher = subprocess.Popen([simulated.oomguard_cli(), "run", "--mode", "cpu", "--report-dir",
                                 str(tmp_path / "reports"), "--", sys.executable, str(script), str(ready)],
                                env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    try:
        while not (ready.exists() and ready.read_text()):
            assert launcher.poll() is None, launcher.communicate()
            assert time.monotonic() < deadline, "the training process did not start"
            time.sleep(0.1)
    except BaseException:
        launcher.kill()  # its command follows it (PR_SET_PDEATHSIG)
        raise
    return launcher, int(ready.read_text())


def _kill_leftovers(launcher: subprocess.Popen, trainer: int) -> None:
    """A failed test must not leave a training loop spinning (only then:
    after a pass the pid may belong to another process already)."""
    for kill in (launcher.kill, lambda: os.kill(trainer, signal.SIGKILL)):
        try:
            kill()
        except (ProcessLookupError, OSError):
            pass


def _gone(pid: int, seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_sigterm_to_the_launcher_ends_the_run_with_its_reports(tmp_path):
    launcher, trainer = _start(tmp_path)
    try:
        launcher.send_signal(signal.SIGTERM)
        _, stderr = launcher.communicate(timeout=60)
        assert launcher.returncode == 128 + signal.SIGTERM, stderr  # the training process died by SIGTERM
        assert _gone(trainer)
    except BaseException:
        _kill_leftovers(launcher, trainer)
        raise
    rank = tmp_path / "reports" / "rank0"
    summary = json.loads((rank / "summary.json").read_text())
    assert summary["reason"] == "signal:SIGTERM"
    assert summary["peak"]["by_category"]["weights"] == 256 * 256 * 4 + 256 * 4
    assert (rank / "report.html").exists() and (rank / "snapshot.pickle").exists()


def test_a_sigint_another_process_sends_the_launcher_reaches_the_command(tmp_path):
    """kill -INT to the launcher alone (a wrapper script, a supervisor): not
    the terminal's Ctrl-C, which the command gets itself, so it is
    forwarded, and the command's report says SIGINT."""
    launcher, trainer = _start(tmp_path)
    try:
        launcher.send_signal(signal.SIGINT)
        _, stderr = launcher.communicate(timeout=60)
        assert launcher.returncode == 128 + signal.SIGINT, stderr  # KeyboardInterrupt, then death by SIGINT
        assert _gone(trainer)
    except BaseException:
        _kill_leftovers(launcher, trainer)
        raise
    summary = json.loads((tmp_path / "reports" / "rank0" / "summary.json").read_text())
    assert summary["reason"] == "signal:SIGINT"


def test_a_launcher_killed_outright_takes_its_command_with_it(tmp_path):
    launcher, trainer = _start(tmp_path)
    try:
        launcher.kill()  # SIGKILL: nothing can be forwarded
        launcher.communicate(timeout=60)
        assert _gone(trainer), "the training process outlived its launcher"
    except BaseException:
        _kill_leftovers(launcher, trainer)
        raise


def test_an_uncaught_ctrl_c_is_the_reports_reason(tmp_path):
    code = ("import os, signal, torch, oomguard; oomguard.install(mode='cpu', report_dir=os.environ['REPORTS']); "
            "torch.ones(1024); os.kill(os.getpid(), signal.SIGINT); import time; time.sleep(30)")
    env = _env()
    env["REPORTS"] = str(tmp_path / "reports")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "KeyboardInterrupt" in result.stderr, result.stderr
    summary = json.loads((tmp_path / "reports" / "rank0" / "summary.json").read_text())
    assert summary["reason"] == "signal:SIGINT"
