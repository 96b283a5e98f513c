"""The runs users launch, each an unmodified script under `oomguard run`
(tests/python/user_runs/): the HF Trainer (accumulation, evaluation,
checkpoints), PEFT LoRA with save_pretrained, TRL's SFTTrainer, a plain loop
over a model of its own, torchrun with DDP on gloo and `accelerate launch`,
each without a budget (exact categories, reports written by the real ranks)
and with one below its peak (it fits by checkpointing the fewest blocks or
halving the micro-batch, or stops early with exit code 3).

Budgets are set from an unguarded run of the same script, measured in the
test: between the peak of the early steps (which any guard must survive to
predict) and the run's peak (a long batch that comes later)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = os.path.join(HERE, "user_runs")
ABORT_EXIT_CODE = 3

# script -> its arguments (seeds that put the long batch after step 2)
RUNS = {
    "trainer_full": ["--seed", "1"],
    "peft_lora": ["--seed", "4"],
    "trl_sft": ["--seed", "3"],
    "custom_loop": [],
}
# A plain loop's batches come from its own generator: the guard is told the
# longest sequence, as a user of such a loop would tell it.
OPTIONS = {"custom_loop": ["--conf", "max_seq_len:128"]}


def _env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OOMGUARD_")}
    env["PYTHONPATH"] = SCRIPTS + os.pathsep + env.get("PYTHONPATH", "")
    env.update(OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1")
    env.update(extra)
    return env


class Run:
    def __init__(self, tmp_path, name: str, proc: subprocess.CompletedProcess):
        self.dir, self.name, self.proc = tmp_path, name, proc
        self.output = proc.stdout + proc.stderr

    def summary(self, rank: int = 0) -> dict:
        with open(self.dir / "reports" / f"rank{rank}" / "summary.json") as f:
            return json.load(f)

    def facts(self, rank: int | None = None) -> dict:
        suffix = "" if rank is None else f".rank{rank}"
        with open(f"{self.dir / 'facts.json'}{suffix}") as f:
            return json.load(f)

    def ranks(self) -> list[str]:
        return sorted(os.listdir(self.dir / "reports"))


def _one_conf(options: list[str]) -> list[str]:
    """The options with their --conf entries joined into one."""
    out, conf = [], []
    items = iter(options)
    for option in items:
        if option == "--conf":
            conf.append(next(items))
        else:
            out.append(option)
    return out + (["--conf", ",".join(conf)] if conf else [])


def launch(tmp_path, script: str, *options: str, launcher: list[str] | None = None, args: list[str] | None = None,
           name: str = "run", timeout: int = 300) -> Run:
    """`oomguard run --mode cpu [options] -- [launcher] python script.py ...`."""
    directory = tmp_path / name
    directory.mkdir()
    program = [*(launcher or [sys.executable]), os.path.join(SCRIPTS, f"{script}.py"),
               "--output-dir", str(directory / "out"), "--facts", str(directory / "facts.json"),
               *(RUNS.get(script, []) if args is None else args)]
    options = _one_conf([*OPTIONS.get(script, []), *options])
    command = ["oomguard", "run", "--mode", "cpu", "--report-dir", str(directory / "reports"), *options, "--", *program]
    proc = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=timeout, cwd=directory)
    return Run(directory, name, proc)


TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]


def step_peaks(summary: dict) -> list[int]:
    return [s["peak_allocated_bytes"] for s in summary["steps"]]


def between(summary: dict, fraction: float) -> int:
    """A budget above the first steps' peaks (Ledger steps 0 and 1, before
    the guard's first prediction) and below the run's."""
    early = max(step_peaks(summary)[:3])
    peak = summary["peak"]["allocated_bytes"]
    assert peak > 1.5 * early, (early, peak)  # the scenario: a long batch comes later
    return int(early + fraction * (peak - early))


def assert_exact_categories(run: Run, summary: dict, facts: dict) -> None:
    at_peak = summary["peak"]["by_category"]
    assert sum(at_peak.values()) == summary["peak"]["allocated_bytes"]
    assert at_peak["weights"] == facts["weights"]
    assert at_peak["adapters"] == facts.get("adapters", 0)
    assert at_peak["optimizer"] == facts["optimizer"]


@pytest.fixture(scope="module")
def unguarded(tmp_path_factory):
    """Each script once without a budget (shared by the tests below)."""
    out = {}
    for script in RUNS:
        out[script] = launch(tmp_path_factory.mktemp(script), script)
    return out


@pytest.mark.parametrize("script", list(RUNS))
def test_without_a_budget_it_completes_with_exact_categories(unguarded, script):
    run = unguarded[script]
    assert run.proc.returncode == 0, run.output[-4000:]
    summary, facts = run.summary(), run.facts()
    assert summary["reason"] == "exit"
    assert run.ranks() == ["rank0"]
    assert_exact_categories(run, summary, facts)
    # The one line at the end: peak by category and the report's path.
    lines = [line for line in run.output.splitlines() if line.startswith("oomguard: rank 0 peak")]
    assert len(lines) == 1, run.output[-3000:]
    assert str(run.dir / "reports" / "rank0" / "report.html") in lines[0]
    # The first prediction, made at step 2, foresaw the long batch it had not seen.
    first = summary["predictions"][0]
    assert first["made_at_step"] == 2
    versus = summary["predicted_vs_actual"]
    assert versus["complete"] is True
    assert abs(versus["error_fraction"]) < 0.25, versus
    if script != "custom_loop":  # the Trainer's logs carry the figures
        logged = [h for h in facts["log_history"] if "oomguard/cpu/peak_allocated_mib" in h]
        assert len(logged) >= 6


@pytest.mark.parametrize("script", list(RUNS))
def test_with_a_budget_below_its_peak_a_remediation_makes_it_fit(tmp_path, unguarded, script):
    reference = unguarded[script].summary()
    budget = between(reference, 0.5)
    run = launch(tmp_path, script, "--budget", str(budget))
    assert run.proc.returncode == 0, run.output[-4000:]
    summary = run.summary()
    assert summary["peak"]["allocated_bytes"] <= budget
    kinds = [a["kind"] for a in summary["actions"]]
    assert kinds[0] == "warn" and kinds[1] in ("checkpoint", "micro_batch"), summary["actions"]
    assert set(kinds[1:]) <= {"checkpoint", "micro_batch"}
    for kind in set(kinds[1:]):  # each action said once, when taken
        taken = [line for line in run.output.splitlines() if f": {kind}: " in line]
        assert len(taken) == kinds.count(kind), run.output[-3000:]


def test_a_budget_close_to_the_peak_checkpoints_fewer_blocks(tmp_path, unguarded):
    reference = unguarded["custom_loop"].summary()
    budget = between(reference, 0.9)
    run = launch(tmp_path, "custom_loop", "--budget", str(budget))
    assert run.proc.returncode == 0, run.output[-4000:]
    summary = run.summary()
    assert summary["peak"]["allocated_bytes"] <= budget
    (first,) = [a for a in summary["actions"] if a["kind"] == "checkpoint"][:1]
    assert first["detail"].startswith(("1 of 4", "2 of 4", "3 of 4")), first["detail"]


def test_micro_batch_halves_the_batch_and_keeps_the_effective_batch(tmp_path, unguarded):
    reference = unguarded["trainer_full"]
    budget = between(reference.summary(), 0.7)
    run = launch(tmp_path, "trainer_full", "--budget", str(budget), "--conf", "actions:warn+micro_batch+abort")
    assert run.proc.returncode == 0, run.output[-4000:]
    summary = run.summary()
    assert summary["peak"]["allocated_bytes"] <= budget
    (action,) = [a for a in summary["actions"] if a["kind"] == "micro_batch"][:1]
    assert "per-device micro-batch 4 -> 2, gradient accumulation 2 -> 4" in action["detail"]
    # The same samples per optimizer step: the losses logged are those of the unguarded run.
    losses = [h["loss"] for h in run.facts()["log_history"] if "loss" in h]
    expected = [h["loss"] for h in reference.facts()["log_history"] if "loss" in h]
    assert losses == pytest.approx(expected, rel=1e-3)


def test_a_remediation_that_cannot_act_falls_through_to_abort(tmp_path, unguarded):
    # A plain loop has no Trainer whose batches micro_batch could split.
    budget = between(unguarded["custom_loop"].summary(), 0.5)
    run = launch(tmp_path, "custom_loop", "--budget", str(budget), "--conf", "actions:warn+micro_batch+abort")
    assert run.proc.returncode == ABORT_EXIT_CODE, run.output[-4000:]
    assert run.output.count("micro_batch cannot act: micro-batching needs a transformers Trainer") == 1
    assert run.output.count("oomguard: aborting at step 2") == 1
    summary = run.summary()
    assert summary["reason"] == "abort"
    assert [a["kind"] for a in summary["actions"]] == ["warn", "abort"]
    assert summary["predicted_vs_actual"]["complete"] is False
    assert summary["predicted_vs_actual"]["error_fraction"] is None
    html = (run.dir / "reports" / "rank0" / "report.html").read_text()
    assert "Stopped by oomguard" in html


def test_a_budget_below_the_static_bytes_stops_before_the_first_forward(tmp_path, unguarded):
    facts = unguarded["trainer_full"].facts()
    static = 2 * facts["weights"] + facts["optimizer"]  # weights + gradients + AdamW state
    run = launch(tmp_path, "trainer_full", "--budget", str(int(static * 0.8)))
    assert run.proc.returncode == ABORT_EXIT_CODE, run.output[-4000:]
    assert "OutOfMemoryError" not in run.output
    assert run.output.count("oomguard: aborting before the first step") == 1
    summary = run.summary()
    assert summary["reason"] == "abort"
    assert summary["steps"][-1]["step"] == 0
    kinds = {s["kind"] for s in summary["suggestions"]}
    assert {"lora", "bf16", "shard"} <= kinds


def test_torchrun_ranks_write_their_own_reports(tmp_path):
    run = launch(tmp_path, "trainer_full", launcher=TORCHRUN, args=["--seed", "1"])
    assert run.proc.returncode == 0, run.output[-4000:]
    assert run.ranks() == ["rank0", "rank1"]
    pids = set()
    for rank in (0, 1):
        summary, facts = run.summary(rank), run.facts(rank)
        assert summary["rank"] == rank
        assert summary["peak"]["allocated_bytes"] > 0
        assert_exact_categories(run, summary, facts)
        pids.add(summary["pid"])
        rows = (run.dir / "reports" / f"rank{rank}" / "timeline.csv").read_text().splitlines()
        assert len(rows) > 10
    assert len(pids) == 2


def test_torchrun_custom_loop_with_a_budget(tmp_path, unguarded):
    budget = between(unguarded["custom_loop"].summary(), 0.5)
    run = launch(tmp_path, "custom_loop", "--budget", str(budget), launcher=TORCHRUN)
    assert run.proc.returncode == 0, run.output[-4000:]
    for rank in (0, 1):
        summary = run.summary(rank)
        assert summary["peak"]["allocated_bytes"] <= budget
        assert "checkpoint" in [a["kind"] for a in summary["actions"]]


# `--cpu` would start one process (accelerate's simple launcher);
# `--multi_gpu` starts the ranks through torchrun's agent, and the script's
# Accelerator(cpu=True) makes them gloo ranks on the CPU.
def accelerate_launch() -> list[str]:
    """accelerate's launcher on a free port (its default, 29500, may be held
    by another run on the machine)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
            "--num_machines", "1", "--main_process_port", str(port), "--mixed_precision", "no",
            "--dynamo_backend", "no"]


def test_accelerate_launch_with_a_budget_checkpoints_on_every_rank(tmp_path, unguarded):
    budget = between(unguarded["custom_loop"].summary(), 0.5)
    run = launch(tmp_path, "custom_loop", "--budget", str(budget), launcher=accelerate_launch(),
                 args=["--accelerate"])
    assert run.proc.returncode == 0, run.output[-4000:]
    for rank in (0, 1):
        summary = run.summary(rank)
        assert summary["peak"]["allocated_bytes"] <= budget
        assert [a["kind"] for a in summary["actions"]][:2] == ["warn", "checkpoint"]


def test_accelerate_launch_ranks_write_their_own_reports(tmp_path):
    run = launch(tmp_path, "custom_loop", launcher=accelerate_launch(), args=["--accelerate"])
    assert run.proc.returncode == 0, run.output[-4000:]
    assert run.ranks() == ["rank0", "rank1"]
    pids = set()
    for rank in (0, 1):
        summary, facts = run.summary(rank), run.facts(rank)
        assert summary["rank"] == rank
        assert_exact_categories(run, summary, facts)
        pids.add(summary["pid"])
    assert len(pids) == 2


def test_torchrun_trainer_with_a_budget_fits_on_every_rank(tmp_path, unguarded):
    budget = between(unguarded["trainer_full"].summary(), 0.5)
    run = launch(tmp_path, "trainer_full", "--budget", str(budget), launcher=TORCHRUN, args=["--seed", "1"])
    assert run.proc.returncode == 0, run.output[-4000:]
    kinds = []
    for rank in (0, 1):
        summary = run.summary(rank)
        assert summary["rank"] == rank
        assert summary["peak"]["allocated_bytes"] <= budget, (rank, summary["peak"], budget)
        kinds.append([a["kind"] for a in summary["actions"]])
    assert kinds[0] == kinds[1] and kinds[0][:2] == ["warn", "checkpoint"], kinds
