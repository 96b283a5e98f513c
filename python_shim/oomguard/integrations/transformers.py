"""Hugging Face Trainer: OOMGuardCallback, attached automatically.

The global hooks already see the Trainer's forward, backward and optimizer
step; the callback adds what only the Trainer knows: the model and optimizer
before the first step (so the census covers them from step 0), per-step
stats for the logs, and the report at the end of training.
"""

from __future__ import annotations

import weakref

from .._imports import when_imported

_callback_class = None


def _callback_base():
    from transformers import TrainerCallback  # imported only when a Trainer is in play

    return TrainerCallback


def _make_callback_class():
    global _callback_class
    if _callback_class is not None:
        return _callback_class

    class OOMGuardCallback(_callback_base()):
        """Per-step memory by category for a transformers.Trainer run.

        ``history`` holds, for each optimizer step, the current bytes by
        category per device right after the step (the census has run);
        ``stats`` the last full oomguard.stats().
        """

        def __init__(self, log_categories: bool = True, trainer=None):
            self.history: list[dict] = []
            self.stats: dict | None = None
            self.log_categories = log_categories
            # Weak: the Trainer holds its callbacks. The guard's micro_batch
            # actuator needs it (callbacks are not given the Trainer).
            self._trainer = weakref.ref(trainer) if trainer is not None else None

        def on_train_begin(self, args, state, control, model=None, optimizer=None, **kwargs):
            import oomguard
            from .. import census

            oomguard.install()
            if model is not None:
                census.add_model(model)
            if optimizer is not None:
                census.add_optimizer(getattr(optimizer, "optimizer", optimizer))
            from .. import guard

            trainer = self._trainer() if self._trainer is not None else None
            if trainer is not None:
                guard.describe(trainer=trainer)
            guard.describe_trainer(args, kwargs.get("train_dataloader"), kwargs.get("eval_dataloader"))

        def on_step_end(self, args, state, control, model=None, **kwargs):
            import oomguard

            if getattr(control, "should_save", False):
                # The checkpoint is written after this callback: check its
                # headroom before the write (the save itself is guarded too).
                from ..actions import save_guard

                save_guard.before_trainer_save(model, state.global_step)
            # The optimizer step's boundary census has just run.
            self.stats = oomguard.stats(census_first=False)
            self.history.append({"global_step": state.global_step,
                                 "current": {d: v["current"] for d, v in self.stats["devices"].items()}})

        def on_log(self, args, state, control, logs=None, **kwargs):
            # Note [The callback logs first]: this callback comes before the
            # loggers in the Trainer's list, so they (TensorBoard, W&B, ...)
            # see these keys in `logs`; log_history took its copy of
            # `logs` before the callbacks ran, so the keys go there too.
            if not self.log_categories or logs is None or self.stats is None:
                return
            figures = {f"oomguard/{device}/peak_allocated_mib": round(values["peak_allocated"] / 2**20, 2)
                       for device, values in self.stats["devices"].items()}
            logs.update(figures)
            history = state.log_history
            if history and history[-1].get("step") == state.global_step:
                history[-1].update(figures)

        def on_train_end(self, args, state, control, **kwargs):
            import oomguard

            self.stats = oomguard.stats()

    OOMGuardCallback.__module__ = __name__
    _callback_class = OOMGuardCallback
    return OOMGuardCallback


def __getattr__(name):
    # The class derives from transformers.TrainerCallback, so it is built on
    # first use: importing oomguard must not import transformers.
    if name == "OOMGuardCallback":
        return _make_callback_class()
    raise AttributeError(name)


def _first_logger_index(callbacks) -> int:
    """Note [The callback logs first]: right after the Trainer's flow
    callback (which decides at on_step_end whether this step saves, and the
    save guard must see that), before every logger and the user's callbacks."""
    from transformers.trainer_callback import DefaultFlowCallback

    flow = [i for i, c in enumerate(callbacks) if isinstance(c, DefaultFlowCallback)]
    return flow[-1] + 1 if flow else 0


def _attach_to_trainer(module) -> None:
    trainer_class = module.Trainer
    original = trainer_class.__init__
    if getattr(original, "__oomguard_wrapped__", False):
        return

    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        callbacks = self.callback_handler.callbacks
        callback_class = _make_callback_class()
        if not any(isinstance(c, callback_class) for c in callbacks):
            callbacks.insert(_first_logger_index(callbacks), callback_class(trainer=self))

    __init__.__oomguard_wrapped__ = True
    __init__.__wrapped__ = original
    trainer_class.__init__ = __init__


def install() -> None:
    """Attach OOMGuardCallback to every Trainer built from now on."""
    when_imported("transformers.trainer", _attach_to_trainer)
