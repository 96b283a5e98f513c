"""Put on PYTHONPATH by ``oomguard run``: install oomguard in this process
once it imports torch, then run the sitecustomize this one shadows, if any.

Waiting for torch keeps the Python processes of a run that never use torch
(shell helpers, pip, tokenizer servers) free of torch's import time. Torch's
import does not initialise CUDA, so own mode is still possible at that point.
"""

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
# Set when torch finished importing from inside `import oomguard`: oomguard
# then installs itself at the end of its own import.
OOMGUARD_PENDING = False


def _install() -> None:
    global OOMGUARD_PENDING
    package = sys.modules.get("oomguard")
    if package is not None and not hasattr(package, "install"):
        OOMGUARD_PENDING = True
        return
    try:
        import oomguard

        oomguard.install()
    except Exception as error:  # never stop the user's program from starting
        print(f"oomguard: not installed in this process: {error}", file=sys.stderr)


class _AfterTorch(importlib.abc.MetaPathFinder):
    """Runs _install() right after the top-level torch package is executed."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "torch":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec("torch")
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        original = spec.loader.exec_module

        def exec_module(module):
            original(module)
            _install()

        spec.loader.exec_module = exec_module
        return spec


def _chain() -> None:
    path = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", path)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)


if os.environ.get("OOMGUARD_DISABLE", "") in ("", "0", "false", "no", "off"):
    if "torch" in sys.modules:
        _install()
    else:
        sys.meta_path.insert(0, _AfterTorch())
_chain()
