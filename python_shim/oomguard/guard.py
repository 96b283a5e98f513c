"""The guard loop: observe the first optimizer steps, predict the run's peak,
decide and act.

What only Python can see lives here: the model's config, the optimizer and
its trainable tensors, the micro-batch shapes, the data loader's lengths.
The prediction, the fixes and the decision are made in C++ (guard/predictor,
guard/policy) through ``_C.guard_evaluate``; this module executes the
decision: ``warn`` and ``abort`` itself, the remediations through the
actuators' registry ``oomguard.actions.ACTIONS``.

Note [Guard steps]
Steps are counted from 1 at the first optimizer step the guard sees (the
Ledger's step 0 also holds everything done before it, such as building the
model). The prediction is made at the boundary of step ``predict_after``
(default 2) and updated at each later boundary.

Note [Budget]
``budget:`` in OOMGUARD_CONF (bytes or a fraction of the device) wins. On
CUDA the default is the device's total memory minus 5%. In cpu mode the
default is physical RAM minus 10%, used for decisions only; a given
``budget:`` is also enforced by the CPU allocator as a hard limit, so that
exceeding it fails like a GPU would.

Note [Distributed agreement]
Under torch.distributed every rank predicts from its own memory. The ranks
then all_reduce(MAX) the ratio predicted/budget, decide again with that worst
ratio, and all_reduce(MAX) one flag per action kind, so every rank takes the
union of the actions chosen for the worst rank (abort wins over the
remediations). Each rank records its own actions. The collectives run at the
same boundaries on every rank, since every rank steps its optimizer.

Note [Static bytes first]
When the census first meets a model with trainable parameters (its first
forward, or the Trainer's on_train_begin), the optimizers built so far are
known too (phases discovers them when constructed). Weights, gradients and
optimizer state are then known before any activation exists: if they alone
exceed the budget the run can never fit, and it stops there (abort) or says
so (warn) with the fixes costed in C++ (guard/static_check), instead of
running into an out-of-memory in step 0's forward.

Note [An actuator that cannot act]
The policy plans with the fixes it believes in; an actuator may still find
it cannot act (no blocks to checkpoint, no Trainer whose batches it could
split, every block checkpointed already). It says why in one line and the
kind is left out of every later decision: in one process the guard decides
again at once, which falls through to the next remediation or to abort;
under torch.distributed it decides again at the next boundary, since every
rank must run the same collectives. Checkpointing and micro-batching may act
again at a later boundary, when the steps measured since show that they did
not save enough (ESCALATING); the save guard is a switch and acts once.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings
import weakref

import torch

from . import _C, census, config, phases
from .collective import all_reduce_max
from .run_description import forget as forget_run_description
from .run_description import lengths_of, longest_batch, run_description

KEYS = ("actions", "warn_at", "predict_after", "max_seq_len")
config.register_keys(*KEYS)

ACTION_KINDS = ("warn", "checkpoint", "micro_batch", "save_guard", "abort")
# Remediations that can go further at a later boundary when the measured
# steps show the last one was not enough (more blocks, half the batch again).
ESCALATING = ("checkpoint", "micro_batch")
ABORT_EXIT_CODE = 3
ABORT_REASON = "abort"
CUDA_MARGIN = 0.05
HOST_MARGIN = 0.10
MAX_OBSERVATIONS = 64

log = logging.getLogger("oomguard")


class OOMGuardWarning(UserWarning):
    """The guard's warning: shown by default (a ResourceWarning would not be)."""


class GuardAbort(SystemExit):
    """Raised at a step boundary when nothing fits (exit code 3)."""


class _State:
    def __init__(self) -> None:
        self.enabled = False
        self.budget_text: str | None = None
        self.budget = 0
        self.warn_at = 0.9
        self.actions: list[str] = list(ACTION_KINDS)
        self.predict_after = 2
        self.max_seq_len = 0
        self.steps = 0
        self.micro = (0, 0)  # largest (batch, seq) of this step's training micro-batches
        self.observations: list[dict] = []
        self.previous_persistent: int | None = None
        self.hints: dict = {}
        self.taken: set[str] = set()
        self.cannot_act: set[str] = set()  # remediations that said they cannot act
        self.static_checked = False
        self.last: dict | None = None
        self.optimizer_hook = None
        self.train_peak = 0  # the open step's peak when its optimizer phase began


_state = _State()


# ---------------------------------------------------------------- configuration

def _device_of_models() -> torch.device:
    for model in list(census.models):
        for parameter in model.parameters():
            return parameter.device
    return torch.device("cpu")


def _ledger_device(device: torch.device) -> int:
    return _C.CPU_DEVICE if device.type == "cpu" else (device.index or 0)


def default_budget(device: torch.device, budget_text: str | None) -> int:
    """See Note [Budget]."""
    from . import modes

    if device.type == "cuda":
        total = torch.cuda.mem_get_info(device)[1]
        return _C.resolve_budget(budget_text, total) if budget_text else int(total * (1 - CUDA_MARGIN))
    total = modes.host_memory_bytes()
    return _C.resolve_budget(budget_text, total) if budget_text else int(total * (1 - HOST_MARGIN))


def parse_config(entries: dict[str, str]) -> dict:
    """The guard's OOMGUARD_CONF keys, checked (ConfigError names the key, the
    bad value and what is accepted)."""
    out: dict = {}
    if "actions" in entries:
        out["actions"] = list(_C.guard_parse_actions(entries["actions"]))
    if "warn_at" in entries:
        out["warn_at"] = _C.guard_parse_warn_at(entries["warn_at"])
    if "predict_after" in entries:
        out["predict_after"] = _C.guard_parse_predict_after(entries["predict_after"])
    if "max_seq_len" in entries:
        out["max_seq_len"] = int(_C.guard_parse_max_seq_len(entries["max_seq_len"]))
    return out


def install(cfg) -> None:
    """Called by oomguard.install(): read the guard's keys, hook the steps."""
    _state.enabled = True
    _state.budget_text = cfg.budget
    for key, value in parse_config(cfg.entries).items():
        setattr(_state, key, value)
    if _on_step_end not in phases._on_step_end:
        phases._on_step_end.append(_on_step_end)
    if _on_new_model not in census.on_new_model:
        census.on_new_model.append(_on_new_model)
        for model in list(census.models):
            _profile_blocks(model)
            _watch_embeddings(model)
    if _state.optimizer_hook is None:
        import torch.optim.optimizer as optim

        _state.optimizer_hook = optim.register_optimizer_step_pre_hook(_optimizer_pre)


def describe(dataloader=None, max_seq_len: int | None = None, eval_dataloader=None, eval_batch_size: int | None = None,
             eval_every: int | None = None, save_every: int | None = None, grad_accum: int = 1,
             trainer=None) -> dict:
    """Tell the guard what the run will see: the data loader (its dataset's
    lengths are scanned, bounded), or max_seq_len; evaluation and saving.
    The Trainer callback calls this itself. Returns the hints so far (the
    trainer, if given, is kept for the actuators only)."""
    hints = _state.hints
    if trainer is not None:
        hints["trainer"] = weakref.ref(trainer)  # for the actuators (micro_batch splits the Trainer's batches)
    if max_seq_len:
        hints["longest_seq"] = int(max_seq_len)
    if dataloader is not None:
        hints.update(longest_batch(dataloader, grad_accum))
    if eval_dataloader is not None or eval_batch_size:
        hints["eval_batch"] = int(eval_batch_size or getattr(eval_dataloader, "batch_size", 0) or 0)
        if eval_dataloader is not None:
            lengths = lengths_of(eval_dataloader.dataset)
            if lengths:
                hints["eval_seq"] = max(lengths)
        if eval_every:
            hints["eval_at_step"] = int(eval_every)
    if save_every:
        hints["saves"] = True
        hints["save_at_step"] = int(save_every)
    return dict(hints)


def describe_trainer(args, train_dataloader=None, eval_dataloader=None) -> dict:
    """describe() from a transformers.TrainingArguments and its loaders."""
    grad_accum = int(getattr(args, "gradient_accumulation_steps", 1) or 1)
    hints = _state.hints
    dataset = getattr(train_dataloader, "dataset", None)
    lengths = lengths_of(dataset) if dataset is not None else []
    batch = int(getattr(args, "per_device_train_batch_size", 0) or 0)
    if lengths and batch:
        hints.update(longest_batch=batch, longest_seq=max(lengths))
    if str(getattr(args, "eval_strategy", "no")) not in ("no", "IntervalStrategy.NO") and eval_dataloader is not None:
        describe(eval_dataloader=eval_dataloader, eval_batch_size=getattr(args, "per_device_eval_batch_size", 0),
                 eval_every=getattr(args, "eval_steps", None))
    if str(getattr(args, "save_strategy", "no")) not in ("no", "SaveStrategy.NO"):
        describe(save_every=int(getattr(args, "save_steps", 0) or 0) or None)
    return dict(hints)


# ---------------------------------------------------------------- what Python sees

def _static_check(model) -> None:
    """Before the first forward: weights + gradients + optimizer state
    against the budget (Note [Static bytes first])."""
    if _state.static_checked or not any(p.requires_grad for p in model.parameters()):
        return
    _state.static_checked = True
    device = _device_of_models()
    if not _state.budget:
        _state.budget = default_budget(device, _state.budget_text)
    current = _C.current_by_category().get(_C.device_name(_ledger_device(device)), {})
    weights = int(current.get("weights", 0) + current.get("adapters", 0))
    dist = _distributed()
    world = dist.get_world_size() if dist is not None else 1
    run = json.dumps(run_description(_state.hints, [], _state.max_seq_len))
    result = json.loads(_C.guard_static_check(run, weights, int(_state.budget), world))
    if result["fits"]:
        return
    if "abort" in _state.actions:
        _stop(result["message"], f"oomguard: aborting before the first step: {result['message']}.")
    if "warn" in _state.actions:
        _record("warn", result["message"], 0)
        _say(f"oomguard: {result['message']}")


def _on_new_model(model) -> None:
    _static_check(model)
    _profile_blocks(model)
    _watch_embeddings(model)


_EMBEDDING_WATCHED = "_oomguard_embedding_watched"


def _watch_embeddings(model) -> None:
    """A pre-hook on each token embedding of a discovered model, for the
    micro-batch shapes (a hook of their own, not a global one: Note [One
    global hook, and only at the outermost forward] in phases.py)."""
    for module in model.modules():
        if type(module) is torch.nn.Embedding and not vars(module).get(_EMBEDDING_WATCHED):
            module.register_forward_pre_hook(_embedding_pre)
            object.__setattr__(module, _EMBEDDING_WATCHED, True)  # not a buffer, not in the state dict


def _profile_blocks(model) -> None:
    """Measure what each block keeps for backward from the first training
    forward on: the checkpoint actuator's figure per block."""
    if "checkpoint" not in _state.actions:
        return
    try:
        from .actions import checkpoint
    except ImportError:
        return
    if checkpoint.find_blocks(model):
        checkpoint.profile_blocks(model)


def _embedding_pre(module, args):
    """Micro-batch shapes, from the token embedding's input (it sees the ids
    whether the model was called with positional or keyword arguments)."""
    if not module.training or not torch.is_grad_enabled():
        return
    if not args or not isinstance(args[0], torch.Tensor) or args[0].dim() != 2:
        return
    batch, seq = args[0].shape
    if batch * seq > _state.micro[0] * _state.micro[1]:
        _state.micro = (int(batch), int(seq))


def _optimizer_pre(optimizer, args, kwargs):
    """The step's forward/backward peak: the open step's peak before the
    optimizer allocates anything (the first optimizer of a step counts)."""
    if _state.train_peak == 0:
        _state.train_peak = int(_C.open_step_peak(_ledger_device(_device_of_models())))


# ---------------------------------------------------------------- the step boundary

def _observe(ledger_step: int) -> dict | None:
    device = _device_of_models()
    slot = _ledger_device(device)
    peak = _C.step_peak(ledger_step, slot)
    name = _C.device_name(slot)
    boundary = phases.boundaries[-1]["current"] if phases.boundaries else {}
    current = boundary.get(name, {})
    # what the step found live (Note [Activations that outlive their step] in guard/src/predictor.cpp)
    opening = phases.boundaries[-2]["current"].get(name, {}) if len(phases.boundaries) > 1 else {}
    if peak is None or not current:
        return None
    peak_allocated, by_category = peak
    weights = current.get("weights", 0) + current.get("adapters", 0)
    gradients = current.get("gradients", 0)
    optimizer = current.get("optimizer", 0)
    allocated = sum(current.values())
    persistent_now = allocated - gradients  # zero_grad frees the gradients before the next forward
    persistent_at_start = _state.previous_persistent
    if persistent_at_start is None:
        persistent_at_start = persistent_now - optimizer
    _state.previous_persistent = persistent_now
    _, peak_alloc_dev, _, peak_reserved = _C.device_memory(slot)
    batch, seq = _state.micro
    return {"step": _state.steps, "batch": batch, "seq": seq, "peak_allocated": int(peak_allocated),
            "train_peak": int(min(_state.train_peak, peak_allocated)),
            "activations_peak": int(by_category.get("activations", 0)),
            "activations_at_start": int(opening.get("activations", 0)),
            "persistent_at_start": int(persistent_at_start), "weights_bytes": int(weights),
            "gradient_bytes": int(gradients), "optimizer_bytes": int(optimizer),
            "fragmentation": int(max(0, peak_reserved - peak_alloc_dev)) if peak_reserved else 0,
            "reserved_peak": int(peak_reserved),
            "non_torch": int(_C.non_torch_bytes(slot))}


def _on_step_end(ledger_step: int) -> None:
    if not _state.enabled:
        return
    _state.steps += 1
    observation = _observe(ledger_step)
    _state.micro = (0, 0)
    _state.train_peak = 0
    if observation is not None:
        _state.observations.append(observation)
        del _state.observations[1:-MAX_OBSERVATIONS]  # keep the first step and the latest ones
    if _state.steps < _state.predict_after:
        return
    if not _state.observations:
        if _distributed() is not None:  # the other ranks wait for our part of the agreement
            all_reduce_max([0.0])
            all_reduce_max([0.0] * len(ACTION_KINDS))
        return
    evaluate_and_act()


def _available() -> list[str]:
    try:
        from .actions import ACTIONS
    except ImportError:
        return []
    return [kind for kind in ACTIONS if kind in ACTION_KINDS]


def _distributed():
    dist = torch.distributed
    return dist if dist.is_available() and dist.is_initialized() else None


def evaluate_and_act() -> dict:
    """Predict, decide (collectively under torch.distributed), act.

    See Note [An actuator that cannot act]."""
    if not _state.budget:
        _state.budget = default_budget(_device_of_models(), _state.budget_text)
    distributed = _distributed() is not None
    while True:
        result = _evaluate(distributed)
        _state.last = result
        if not _act(result) or distributed:
            return result


def _block_hints() -> dict:
    """The block profile of the first model, for the checkpointing fix of a
    model the predictor has no architecture for."""
    model = next(iter(list(census.models)), None)
    if model is None or "checkpoint" not in _state.actions:
        return {}
    from .actions import checkpoint

    profile = checkpoint.profile_of(model)
    per_token = profile.per_token() if profile is not None else None
    if not per_token:
        return {}
    return {"blocks": profile.blocks - profile.checkpointed(), "block_kept_per_token": per_token}


def _evaluate(distributed: bool) -> dict:
    policy = {"budget": int(_state.budget), "warn_at": _state.warn_at, "actions": _state.actions}
    _state.hints.update(_block_hints())
    run = json.dumps(run_description(_state.hints, _state.observations, _state.max_seq_len))
    steps = json.dumps(_state.observations)
    available = [kind for kind in _available() if kind not in _state.cannot_act]
    result = json.loads(_C.guard_evaluate(run, steps, json.dumps(policy), available))
    if distributed:
        worst = all_reduce_max([result["decision"]["ratio"]])[0]
        result = json.loads(_C.guard_evaluate(run, steps, json.dumps(policy), available, worst))
        chosen = {a["kind"] for a in result["decision"]["actions"]}
        flags = all_reduce_max([1.0 if kind in chosen else 0.0 for kind in ACTION_KINDS])
        agreed = [kind for kind, flag in zip(ACTION_KINDS, flags) if flag > 0]
        if "abort" in agreed:
            agreed = [k for k in agreed if k in ("warn", "abort")]
        planned = {a["kind"]: a for a in result["decision"]["actions"]}
        result["decision"]["actions"] = [planned.get(k, {"kind": k, "detail": "agreed with the other ranks",
                                                         "saves_bytes": 0}) for k in agreed]
    return result


def _act(result: dict) -> bool:
    """Carry out the decision; True when a remediation could not act (the
    caller decides again without it)."""
    decision = result["decision"]
    for action in decision["actions"]:
        kind = action["kind"]
        if kind == "warn":
            if "warn" not in _state.taken:
                _state.taken.add("warn")
                _warn(result, action)
        elif kind == "abort":
            _abort(result, action)
        elif kind in _state.taken and kind not in ESCALATING:
            continue  # a switch, on already
        elif kind not in _state.cannot_act:
            outcome = _remediate(kind, action, result)
            if not outcome.acted:
                _state.cannot_act.add(kind)
                _say(f"oomguard: {kind} cannot act: {outcome.detail}; deciding again without it")
                return True
            _state.taken.add(kind)
            _say(f"oomguard: step {_state.steps}: {kind}: {outcome.detail}")
            _after_action(kind)
    return False


def _after_action(kind: str) -> None:
    """What the prediction must know of an action that changed the run: the
    steps measured before it describe a run that no longer exists, so the
    next prediction starts from the steps after it."""
    _state.observations.clear()
    forget_run_description()
    if kind == "micro_batch" and _state.hints.get("longest_batch", 0) >= 2:
        _state.hints["longest_batch"] = (_state.hints["longest_batch"] + 1) // 2


def _say(message: str) -> None:
    """One line to the user: through logging when the program configured
    it, else on stderr (never both)."""
    if logging.getLogger().handlers or log.handlers:
        log.warning(message)
    else:
        print(message, file=sys.stderr, flush=True)


def _record(kind: str, detail: str, saves: int) -> None:
    _C.guard_add_action(_state.steps, kind, detail, int(saves))


def _warn(result: dict, action: dict) -> None:
    message = result["warn_message"]
    _record("warn", action["detail"], 0)
    if logging.getLogger().handlers or log.handlers:  # else logging's last resort would print it twice
        log.warning(message)
    warnings.warn(message, OOMGuardWarning, stacklevel=2)


def _trainer():
    ref = _state.hints.get("trainer")
    return ref() if ref is not None else None


def _remediate(kind: str, action: dict, result: dict):
    from . import actions as registry  # the actuators (another layer); absent kinds are not available

    if kind not in registry.ACTIONS:
        raise ValueError(f"oomguard: no actuator for action '{kind}'; registered: {', '.join(sorted(registry.ACTIONS))}")
    fit = result["activation_fit"]
    context = registry.ActionContext(
        models=list(census.models), optimizers=list(census.optimizers), trainer=_trainer(),
        budget=int(_state.budget), prediction={**prediction(), "activation_scale": result["activation_scale"],
                                               "activation_fit": fit, "longest_batch": result["longest_batch"],
                                               "longest_seq": result["longest_seq"]},
        step=_state.steps)
    # What must be saved: the prediction's upper band over the budget (the
    # fix's own figure is what it could save, usually more than is needed).
    high = max(int(result["decision"]["predicted"]), int(result["prediction"]["high_bytes"]))
    return registry.run(kind, context, registry.Decision(kind, bytes_to_save=max(high - int(_state.budget), 1)))


def _abort(result: dict, action: dict) -> None:
    p = result["prediction"]
    message = (f"oomguard: aborting at step {_state.steps}: {action['detail']}. Predicted peak "
               f"{p['peak_allocated_bytes'] / 2**20:.1f} MiB allocated ({p['peak_reserved_bytes'] / 2**20:.1f} MiB "
               f"reserved) in {p['phase']} ({p['reason']}), budget {_state.budget / 2**20:.1f} MiB.")
    _stop(action["detail"], message)


def _stop(detail: str, message: str) -> None:
    """Record the abort, write the post-mortem, say it once, exit with 3."""
    _record("abort", detail, 0)
    report = write_post_mortem(ABORT_REASON)
    _say(f"{message} Post-mortem: {report}")
    raise GuardAbort(ABORT_EXIT_CODE)


def write_post_mortem(reason: str) -> str:
    """The post-mortem (summary.json, report.html, snapshot.pickle) in this
    process's report directory; returns the summary's path. The exit report
    keeps `reason` (it is written again at exit, with the state then)."""
    from . import reports

    reports.exit_reason = reason
    written = reports.report(reason=reason)
    for error in written["errors"]:
        log.error("oomguard: post-mortem: %s", error)
    return os.path.join(written["dir"], "summary.json")


# ---------------------------------------------------------------- public reads

def prediction() -> dict | None:
    """The latest prediction of the run's peak: made_at_step,
    peak_allocated_bytes, peak_reserved_bytes, phase, step (None when not
    known), low_bytes, high_bytes, reason; None before the first."""
    return json.loads(_C.guard_prediction())


def actions() -> list[dict]:
    """Actions the guard took, oldest first: step, kind, detail, predicted_saving_bytes."""
    return json.loads(_C.guard_actions())


def last_evaluation() -> dict | None:
    """The full forecast of the latest evaluation (candidates, fit, decision)."""
    return _state.last


def observations() -> list[dict]:
    """The step observations the predictor works from (first step and the latest ones)."""
    return [dict(o) for o in _state.observations]
