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


# Note [Launchers are not ranks]
# torchrun (torch.distributed.run / launch) and accelerate launch are Python
# processes that import torch, so this file would install oomguard in them
# too. They touch no GPU; their children are the ranks. Installed, the
# launcher (which has no RANK) would write an empty rank0 report over the
# real rank 0's and share its timeline. So a launcher is recognised by its
# command line (sys.orig_argv: at torch's import, runpy has not yet put the
# module's path in sys.argv) and left alone.
_LAUNCHER_MODULES = ("torch.distributed.run", "torch.distributed.launch", "accelerate.commands.launch",
                     "accelerate.commands.accelerate_cli", "deepspeed.launcher.runner")


def is_launcher(argv: list[str]) -> bool:
    """Whether the interpreter command line ``argv`` (``sys.orig_argv``) runs
    a multi-process launcher rather than a program."""
    args = list(argv[1:])
    if "-m" in args:
        i = args.index("-m")
        module = args[i + 1] if i + 1 < len(args) else ""
        if module in _LAUNCHER_MODULES:
            return module != "accelerate.commands.accelerate_cli" or "launch" in args[i + 2:i + 3]
        return False
    script = next((a for a in args if not a.startswith("-")), "")
    name = os.path.basename(script)
    rest = args[args.index(script) + 1:] if script else []
    return name in ("torchrun", "deepspeed") or (name == "accelerate" and rest[:1] == ["launch"])


# Note [cuDNN on the simulated device]
# cuDNN links the CUDA runtime statically and cannot run on the simulated
# device (Note [Export tables] in simulator/driver/entry_points.cpp). On
# compute capability 9.0 and later torch's scaled_dot_product_attention
# prefers cuDNN's kernel for bf16/fp16, so every transformers model failed
# its first forward on a simulated H100 with CUDNN_STATUS_NOT_INITIALIZED.
# Here torch is told not to use cuDNN; attention then takes the flash
# kernel, which saves the same tensors for backward (q, k, v, the output and
# an fp32 log-sum-exp per head and token), and convolutions take torch's
# native kernels. What differs from the GPU is cuDNN's workspace, which is
# not simulated (docs/simulator.md, "What differs from a GPU").
def _simulated_device_setup(torch) -> None:
    if not os.environ.get("OOMGUARD_SIMULATE"):
        return
    try:
        torch.backends.cuda.enable_cudnn_sdp(False)
        torch.backends.cudnn.enabled = False
    except Exception as error:  # an older torch without the switch: say so, go on
        print(f"oomguard: could not turn cuDNN off on the simulated device: {error}", file=sys.stderr)


def _install() -> None:
    global OOMGUARD_PENDING
    _simulated_device_setup(sys.modules["torch"])
    if is_launcher(list(getattr(sys, "orig_argv", sys.argv))):
        return
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

    # Note [Find is not import]
    # Libraries ask whether torch is installed with importlib.util.find_spec
    # ("torch") before anything imports it (transformers and peft do, at
    # their import). That call reaches this finder too, and the spec it gets
    # is never executed: the later `import torch` asks again. So the finder
    # stays in place and hands out a patched spec each time; it leaves when
    # one of them is executed.

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "torch":
            return None
        spec = None
        for other in [f for f in sys.meta_path if f is not self and hasattr(f, "find_spec")]:
            spec = other.find_spec(fullname, path, target)
            if spec is not None:
                break
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        original = spec.loader.exec_module
        finder = self

        def exec_module(module):
            if finder in sys.meta_path:
                sys.meta_path.remove(finder)
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
