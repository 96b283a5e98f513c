"""``oomguard run [options] -- command ...``: an unmodified program, tracked.

Every Python process the command starts (python, torchrun's workers,
accelerate launch's) imports ``_boot/sitecustomize.py`` from PYTHONPATH,
which installs oomguard from OOMGUARD_CONF and then runs any sitecustomize
that was there before. The options are OOMGUARD_CONF keys; the child's exit
code is ours.

``--simulate SPEC`` (or OOMGUARD_SIMULATE) runs the command on the simulated
GPU (docs/simulator.md). The environment for it is built in one place, the
C++ ``oomguard run`` (guard/cli/run_command.cpp, Note [The simulated
environment is built here]), which checks the spec against the GPU table and
then starts this launcher with the stand-ins in place. Started directly with
``--simulate`` and no simulated environment, this launcher hands its whole
command line to that executable instead of building a second copy of it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading

from . import config

BOOT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_boot")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="oomguard run", description="Run a command with oomguard installed in every Python process it starts.",
        usage="oomguard run [--budget B] [--report-dir D] [--mode M] [--conf key:value,...] [--simulate SPEC] "
              "-- command ...")
    parser.add_argument("--budget", help="bytes ('20GiB') or a fraction of the device ('90%%')")
    parser.add_argument("--report-dir", help="directory for the stats written when each process exits")
    parser.add_argument("--mode", choices=config.MODES, help="allocation source (default: auto)")
    parser.add_argument("--conf", default=None, help="more OOMGUARD_CONF entries, key:value,key:value")
    parser.add_argument("--simulate", metavar="SPEC", default=None,
                        help="run on simulated GPUs (docs/simulator.md): a GPU table name (A100-80GB), N x NAME "
                             "(4xH100-80GB) or a comma list (A100-80GB,L4); also taken from OOMGUARD_SIMULATE")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    return parser


def child_environment(args: argparse.Namespace, environ: dict[str, str]) -> dict[str, str]:
    entries = dict(config._C.parse_conf(environ.get("OOMGUARD_CONF", ""), "OOMGUARD_CONF"))
    if args.conf:
        entries.update(config._C.parse_conf(args.conf, "--conf"))
    if args.budget is not None:
        entries["budget"] = args.budget
    if args.report_dir is not None:
        entries["report_dir"] = os.path.abspath(args.report_dir)
    if args.mode is not None:
        entries["mode"] = args.mode
    conf = config.to_conf_string(entries)
    config.load(conf=conf)  # a bad option fails here, naming it, not in every child
    env = dict(environ)
    env["OOMGUARD_CONF"] = conf
    env["PYTHONPATH"] = os.pathsep.join(p for p in (BOOT_DIR, environ.get("PYTHONPATH", "")) if p)
    return env


# The stand-ins `oomguard run --simulate` puts on LD_PRELOAD; the driver
# stand-in lies beside them.
_SIMULATED_RUNTIME = "libcudart.so.13"
_SIMULATED_DRIVER = "libcuda.so.1"
# Set while this launcher hands a simulated run to the C++ one, so a launcher
# that finds it set and still no simulated environment stops instead of
# handing it over again.
_HANDED_OVER = "OOMGUARD_RUN_SIMULATE_HANDED_OVER"


def simulated_environment_in_place(spec: str, environ: dict[str, str]) -> bool:
    """True when ``environ`` runs on the simulated ``spec`` already: the
    spec is OOMGUARD_SIMULATE and the simulated runtime, with its driver
    beside it, is on LD_PRELOAD."""
    if environ.get("OOMGUARD_SIMULATE", "").strip() != spec.strip():
        return False
    for entry in environ.get("LD_PRELOAD", "").split(":"):
        if os.path.basename(entry) == _SIMULATED_RUNTIME and \
                os.path.exists(os.path.join(os.path.dirname(entry), _SIMULATED_DRIVER)):
            return True
    return False


def oomguard_executable(environ: dict[str, str]) -> str | None:
    """The C++ ``oomguard``: OOMGUARD_CLI, the one the package installed
    beside this interpreter's scripts, or the first on PATH."""
    given = environ.get("OOMGUARD_CLI")
    if given:
        return given
    installed = os.path.join(sysconfig.get_path("scripts"), "oomguard")
    if os.access(installed, os.X_OK):
        return installed
    return shutil.which("oomguard", path=environ.get("PATH"))


def _hand_over_simulated_run(argv: list[str], spec_source: str) -> int:
    """Runs ``oomguard run <argv>`` (the C++ launcher), which builds the
    simulated environment and starts this launcher again inside it."""
    environ = dict(os.environ)
    if environ.get(_HANDED_OVER):
        print(f"oomguard run: {spec_source} was handed to the oomguard executable, which did not put the simulated "
              f"GPU's libraries on LD_PRELOAD (LD_PRELOAD={environ.get('LD_PRELOAD', '')!r})", file=sys.stderr)
        return 2
    cli = oomguard_executable(environ)
    if cli is None:
        print(f"oomguard run: {spec_source} needs the oomguard executable, which builds the simulated environment; "
              "it is installed with the package (pip install .) or set OOMGUARD_CLI to its path", file=sys.stderr)
        return 2
    environ[_HANDED_OVER] = "1"
    environ.setdefault("OOMGUARD_PYTHON", sys.executable)
    try:
        child = subprocess.Popen([cli, "run", *argv], env=environ)
    except OSError as error:
        print(f"oomguard run: cannot run {cli}: {error}", file=sys.stderr)
        return 2
    return _wait(child)


_PR_SET_PDEATHSIG = 1  # <sys/prctl.h>


def _die_with_the_launcher() -> None:
    """In the command, before exec: SIGTERM when this launcher dies, even by
    SIGKILL (Note [The launcher and its command live and die together] in
    guard/cli/run_command.cpp)."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_SI_USER = 0  # <signal.h>: si_code of a signal sent by kill(2); the kernel's (a terminal's Ctrl-C) are > 0


def _wait(child: subprocess.Popen) -> int:
    """Wait for the command, forwarding signals as the C++ launcher does
    (Note [The launcher and its command live and die together] in
    guard/cli/run_command.cpp): SIGTERM and SIGHUP, which a scheduler or a
    closed session sends to this process, and a SIGINT another process sent
    (kill -INT). A Ctrl-C from the terminal reaches the command itself (it is
    in the same foreground group), so that one is not sent twice. A Python
    handler cannot tell the two SIGINTs apart (it gets no siginfo), so the
    signals are blocked here and taken with sigwaitinfo on a thread of
    their own."""
    previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _FORWARDED)

    def forward():
        while True:
            info = signal.sigwaitinfo(_FORWARDED)
            if info.si_signo == signal.SIGINT and info.si_code > _SI_USER:
                continue  # from the terminal: the command has it
            try:
                child.send_signal(info.si_signo)
            except ProcessLookupError:
                return

    # Started after the mask is set, so it inherits it: no thread takes these
    # signals the default way.
    threading.Thread(target=forward, name="oomguard-forward-signals", daemon=True).start()
    try:
        code = child.wait()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)
    return 128 - code if code < 0 else code  # killed by signal N: 128+N, as shells report it


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        _parser().error("no command given: oomguard run [options] -- command ...")
    # --simulate is never ignored: either the environment is in place for it,
    # or the C++ launcher builds it (Note [The simulated environment is built
    # here]).
    spec, spec_source = args.simulate, "--simulate"
    if spec is None and "OOMGUARD_SIMULATE" in os.environ:
        spec, spec_source = os.environ["OOMGUARD_SIMULATE"], "OOMGUARD_SIMULATE"
    if spec is not None:
        if not simulated_environment_in_place(spec, dict(os.environ)):
            return _hand_over_simulated_run(argv if args.simulate is not None else ["--simulate", spec, *argv],
                                            f"{spec_source} {spec!r}")
        os.environ.pop(_HANDED_OVER, None)
    try:
        env = child_environment(args, dict(os.environ))
    except ValueError as error:
        print(f"oomguard run: {error}", file=sys.stderr)
        return 2
    try:
        child = subprocess.Popen(command, env=env, preexec_fn=_die_with_the_launcher)
    except FileNotFoundError:
        print(f"oomguard run: command not found: {command[0]}", file=sys.stderr)
        return 127
    return _wait(child)


def console_main() -> None:
    sys.exit(main(sys.argv[1:]))
