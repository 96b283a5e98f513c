"""The guard's actuators: what it can change in a running job to make the
predicted peak fit.

The policy (oomguard.guard) decides; the actuators act. Each one is
``apply(context, decision) -> ActionResult`` and is looked up by kind in
``ACTIONS``. ``run(kind, context, decision)`` applies one and records it in
the C++ run state, so ``oomguard.actions()`` and the reports list it. An
actuator that cannot act returns ``ActionResult(acted=False, ...)`` with the
reason in ``detail``; nothing is recorded then, and the policy moves on.
"""

from __future__ import annotations

import sys
import types
import json
from typing import Callable

from .. import _C
from . import checkpoint, micro_batch, save_guard
from .base import ActionContext, ActionResult, Decision, record

__all__ = ["ACTIONS", "ActionContext", "ActionResult", "Decision", "actions", "record", "run"]

ACTIONS: dict[str, Callable[[ActionContext, Decision], ActionResult]] = {
    "checkpoint": checkpoint.apply,
    "micro_batch": micro_batch.apply,
    "save_guard": save_guard.apply,
}


def run(kind: str, context: ActionContext, decision: Decision | None = None) -> ActionResult:
    """Apply the actuator `kind` and record what it did."""
    if kind not in ACTIONS:
        raise ValueError(f"oomguard: unknown action '{kind}'; accepted: {', '.join(sorted(ACTIONS))}")
    result = ACTIONS[kind](context, decision or Decision(kind))
    record(result, context.step)
    return result


def actions() -> list[dict]:
    """The guard's actions so far (oomguard.actions())."""
    return json.loads(_C.guard_actions())


class _CallableModule(types.ModuleType):
    """Note [oomguard.actions is both]
    Importing this package sets ``oomguard.actions`` to it, hiding the
    function ``oomguard.actions()`` of the same name; calling the package
    does what the function does, so both spellings keep working."""

    def __call__(self) -> list[dict]:
        return actions()


sys.modules[__name__].__class__ = _CallableModule
