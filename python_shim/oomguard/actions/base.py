"""What the policy and the actuators exchange: the decision, the context an
actuator may touch, the result, and recording it in the C++ run state."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

from .. import _C


@dataclasses.dataclass
class Decision:
    """What the policy wants: an action kind and the bytes it must save.

    ``per_block_bytes`` (checkpoint only, optional): activation bytes one
    transformer block keeps at the predicted peak's shape, when the predictor
    knows it; otherwise the actuator measures it."""

    kind: str
    bytes_to_save: int = 0
    per_block_bytes: int | None = None


@dataclasses.dataclass
class ActionResult:
    kind: str
    detail: str
    predicted_saving_bytes: int = 0
    acted: bool = True


@dataclasses.dataclass
class ActionContext:
    """What an actuator may touch.

    ``prediction``: the current prediction as a dict (oomguard.prediction()'s
    shape; keys the actuators read: ``activation_scale``, the ratio of the
    predicted peak's activations to the measured step's, and optionally
    ``activation_bytes_per_block``). ``measure``: returns oomguard.stats()
    without running anything."""

    models: list = dataclasses.field(default_factory=list)
    optimizers: list = dataclasses.field(default_factory=list)
    trainer: Any = None
    budget: int = 0
    prediction: dict = dataclasses.field(default_factory=dict)
    measure: Callable[[], dict] | None = None
    step: int | None = None

    def stats(self) -> dict:
        if self.measure is not None:
            return self.measure()
        from ..stats import stats

        return stats()


def record(result: ActionResult, step: int | None = None) -> None:
    """Add an action that acted to the C++ run state (oomguard.actions())."""
    if result.acted:
        _C.guard_add_action(_C.step() if step is None else step, result.kind, result.detail,
                      int(max(result.predicted_saving_bytes, 0)))
