"""Running a command on the simulated GPU (docs/simulator.md) from a test.

The test process itself never loads the stand-ins (it runs oomguard in cpu
mode); every simulated run is a subprocess with ``environment()``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The stand-ins torch must load instead of the real libraries: by soname, so
# they go on LD_PRELOAD. libcuda.so.1 and libnvidia-ml.so.1 are found through
# LD_LIBRARY_PATH (torch dlopens them).
PRELOADED = ("libcudart.so.13", "libcublas.so.13", "libcublasLt.so.13", "libnccl.so.2")


def lib_dir() -> str:
    """Where the stand-ins are: OOMGUARD_SIM_LIB_DIR, else the installed
    package's, else the main build tree's."""
    given = os.environ.get("OOMGUARD_SIM_LIB_DIR")
    if given:
        return os.path.abspath(given)
    try:
        import oomguard

        installed = os.path.join(os.path.dirname(oomguard.__file__), "simulator")
        if os.path.exists(os.path.join(installed, "libcuda.so.1")):
            return installed
    except ImportError:
        pass
    return os.path.join(REPO, "build", "simulator", "lib")


# oomguard's own LD_PRELOAD library, which must come before the stand-ins
# (guard/cli/run_command.cpp, Note [The simulated environment is built here]).
OOMGUARD_PRELOAD = "liboomguard_preload.so"


def oomguard_cli() -> str:
    """The C++ ``oomguard`` executable: OOMGUARD_CLI, else the one on PATH
    (the package installs it), else the main build tree's."""
    given = os.environ.get("OOMGUARD_CLI")
    if given:
        return given
    return shutil.which("oomguard") or os.path.join(REPO, "build", "guard", "cli", "oomguard")


def environment(spec: str = "A100-80GB", base: dict | None = None, **overrides: str) -> dict:
    """The environment of a process that runs on simulated ``spec`` devices
    (``"A100-80GB"``, ``"2xH100-80GB"``); ``overrides`` are more variables
    (``OOMGUARD_SIM_MEMORY="8GiB"``). A liboomguard_preload.so already on
    LD_PRELOAD stays in front of the stand-ins, so it still interposes."""
    env = dict(os.environ if base is None else base)
    directory = lib_dir()
    preload = [os.path.join(directory, name) for name in PRELOADED]
    missing = [p for p in preload + [os.path.join(directory, "libcuda.so.1")] if not os.path.exists(p)]
    if missing:
        raise FileNotFoundError(f"simulated GPU libraries not built: {', '.join(missing)}")
    env["OOMGUARD_SIMULATE"] = spec
    before = [p for p in env.get("LD_PRELOAD", "").split(":") if p]
    first = [p for p in before if os.path.basename(p) == OOMGUARD_PRELOAD]
    rest = [p for p in before if p not in first and os.path.basename(p) not in PRELOADED]
    env["LD_PRELOAD"] = ":".join(first + preload + rest)
    env["LD_LIBRARY_PATH"] = ":".join([directory] + ([env["LD_LIBRARY_PATH"]] if env.get("LD_LIBRARY_PATH") else []))
    env.setdefault("OOMGUARD_SIM_LOG", "1")
    env.update(overrides)
    return env


def run_python(code_or_args, spec: str = "A100-80GB", timeout: float = 300, env: dict | None = None,
               **overrides: str) -> subprocess.CompletedProcess:
    """Runs Python code (a string) or a script with arguments (a list) on the
    simulated device; returns the completed process with text output."""
    args = ["-c", code_or_args] if isinstance(code_or_args, str) else list(code_or_args)
    return subprocess.run([sys.executable, *args], env=environment(spec, env, **overrides), capture_output=True,
                          text=True, timeout=timeout, cwd=REPO)
