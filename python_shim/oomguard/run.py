"""``oomguard run [options] -- command ...``: an unmodified program, tracked.

Every Python process the command starts (python, torchrun's workers,
accelerate launch's) imports ``_boot/sitecustomize.py`` from PYTHONPATH,
which installs oomguard from OOMGUARD_CONF and then runs any sitecustomize
that was there before. The options are OOMGUARD_CONF keys; the child's exit
code is ours.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys

from . import config

BOOT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_boot")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="oomguard run", description="Run a command with oomguard installed in every Python process it starts.",
        usage="oomguard run [--budget B] [--report-dir D] [--mode M] [--conf key:value,...] -- command ...")
    parser.add_argument("--budget", help="bytes ('20GiB') or a fraction of the device ('90%%')")
    parser.add_argument("--report-dir", help="directory for the stats written when each process exits")
    parser.add_argument("--mode", choices=config.MODES, help="allocation source (default: auto)")
    parser.add_argument("--conf", default=None, help="more OOMGUARD_CONF entries, key:value,key:value")
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


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        _parser().error("no command given: oomguard run [options] -- command ...")
    try:
        env = child_environment(args, dict(os.environ))
    except ValueError as error:
        print(f"oomguard run: {error}", file=sys.stderr)
        return 2
    try:
        child = subprocess.Popen(command, env=env)
    except FileNotFoundError:
        print(f"oomguard run: command not found: {command[0]}", file=sys.stderr)
        return 127
    # The child gets Ctrl-C from the terminal itself; we wait for its verdict.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        code = child.wait()
    finally:
        signal.signal(signal.SIGINT, previous)
    return 128 - code if code < 0 else code  # killed by signal N: 128+N, as shells report it


def console_main() -> None:
    sys.exit(main(sys.argv[1:]))
