"""``python -m oomguard run [options] -- command ...``."""

import sys


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m oomguard run [--budget B] [--report-dir D] [--mode M] -- command ...")
        return 0 if argv else 2
    if argv[0] != "run":
        print(f"oomguard: unknown command '{argv[0]}'; accepted: run", file=sys.stderr)
        return 2
    from .run import main as run_main

    return run_main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
