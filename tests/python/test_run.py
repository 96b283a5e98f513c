"""`python -m oomguard run -- python script.py` tracks an unmodified script
exactly as install() in the script does, and keeps its exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys

SCRIPT = os.path.join(os.path.dirname(__file__), "scripts", "train_lora.py")
TRACKED = ("weights", "adapters", "gradients", "optimizer")


def _env():
    env = dict(os.environ)
    env.pop("OOMGUARD_CONF", None)
    env["PYTHONPATH"] = os.path.dirname(__file__)
    return env


def test_run_gives_the_same_breakdown_as_install(tmp_path):
    plain = tmp_path / "plain.json"
    subprocess.run([sys.executable, "-m", "oomguard", "run", "--mode", "cpu", "--report-dir", str(tmp_path / "reports"),
                    "--", sys.executable, SCRIPT, str(plain)], env=_env(), check=True, timeout=180)
    installed = tmp_path / "installed.json"
    subprocess.run([sys.executable, SCRIPT, str(installed), "--install"], env=_env(), check=True, timeout=180)

    with open(tmp_path / "reports" / "rank0" / "summary.json") as f:
        report = json.load(f)
    plain_expected = json.loads(plain.read_text())
    inside = json.loads(installed.read_text())

    # The script's own tensors at the last step boundary, oomguard run's
    # report, and install() in the script agree byte for byte.
    closed = [s for s in report["steps"] if s["device"] == "cpu"][:-1]  # the open step last
    under_run = {k: closed[-1]["at_end"][k] for k in TRACKED}
    assert under_run == plain_expected["expected"]
    assert inside["expected"] == plain_expected["expected"]
    assert {k: inside["boundary"]["cpu"][k] for k in TRACKED} == under_run
    assert len(closed) == plain_expected["steps"]


def test_run_keeps_the_exit_code_and_installs_in_the_child():
    code = "import sys, oomguard; h = oomguard.installed(); sys.exit(7 if h and h.enabled else 1)"
    result = subprocess.run([sys.executable, "-m", "oomguard", "run", "--mode", "cpu", "--", sys.executable, "-c", code],
                            env=_env(), timeout=120)
    assert result.returncode == 7


def test_run_rejects_a_bad_option_before_starting():
    result = subprocess.run([sys.executable, "-m", "oomguard", "run", "--budget", "plenty", "--", "true"],
                            env=_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "plenty" in result.stderr


def test_a_bad_guard_value_stops_the_run_before_the_command(tmp_path):
    # Once accepted here, these left every child process unguarded (exit 0).
    marker = tmp_path / "ran"
    command = [sys.executable, "-c", f"open({str(marker)!r}, 'w')"]
    for bad in ("warn_at:2", "predict_after:0", "predict_after:inf", "actions:warn+nuke", "max_seq_len:-1"):
        result = subprocess.run([sys.executable, "-m", "oomguard", "run", "--mode", "cpu", "--conf", bad, "--", *command],
                                env=_env(), capture_output=True, text=True, timeout=60)
        assert result.returncode == 2, (bad, result.stderr)
        assert f"'{bad.split(':')[0]}'" in result.stderr, (bad, result.stderr)
    assert not marker.exists()


def test_a_report_folder_with_a_comma_and_a_colon_works(tmp_path):
    reports = tmp_path / "runs,2026:a"
    code = "import torch; torch.ones(1024)"
    result = subprocess.run([sys.executable, "-m", "oomguard", "run", "--mode", "cpu", "--report-dir", str(reports),
                             "--", sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (reports / "rank0" / "summary.json").exists(), result.stderr


def test_run_chains_to_an_existing_sitecustomize(tmp_path):
    (tmp_path / "sitecustomize.py").write_text("import builtins\nbuiltins.USER_SITECUSTOMIZE_RAN = True\n")
    env = _env()
    env["PYTHONPATH"] = str(tmp_path)
    code = ("import builtins, sys, oomguard; h = oomguard.installed();"
            "sys.exit(0 if h and h.enabled and getattr(builtins, 'USER_SITECUSTOMIZE_RAN', False) else 1)")
    result = subprocess.run([sys.executable, "-m", "oomguard", "run", "--mode", "cpu", "--", sys.executable, "-c", code],
                            env=env, timeout=120)
    assert result.returncode == 0


def test_run_installs_only_in_processes_that_import_torch():
    code = ("import sys; assert 'torch' not in sys.modules and 'oomguard' not in sys.modules;"
            "import torch, oomguard; h = oomguard.installed(); sys.exit(9 if h and h.enabled else 1)")
    result = subprocess.run([sys.executable, "-m", "oomguard", "run", "--mode", "cpu", "--", sys.executable, "-c", code],
                            env=_env(), timeout=120)
    assert result.returncode == 9
