"""Installed by ``oomguard run`` on PYTHONPATH: install oomguard in this
process, then run the sitecustomize this one shadows, if any."""

import importlib.machinery
import importlib.util
import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))


def _install() -> None:
    try:
        import oomguard

        oomguard.install()
    except Exception as error:  # never stop the user's program from starting
        print(f"oomguard: not installed in this process: {error}", file=sys.stderr)


def _chain() -> None:
    path = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", path)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)


if os.environ.get("OOMGUARD_DISABLE", "") in ("", "0", "false", "no", "off"):
    _install()
_chain()
