"""Phases with no code change: forward, eval, backward, optimizer, save."""

from __future__ import annotations

import io

import torch

import oomguard
from oomguard import _C


class _PhaseProbe(torch.nn.Module):
    """Records the phase its forward and its backward run in, and allocates
    a tensor there whose category the test reads back."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(8, 8)
        self.seen = []
        self.kept = []

    def forward(self, x):
        self.seen.append(_C.phase())
        self.kept.append(torch.empty(64))
        y = self.linear(x)
        if y.requires_grad:
            y.register_hook(self._in_backward)
        return y

    def _in_backward(self, grad):
        self.seen.append(_C.phase())
        self.kept.append(torch.empty(64))
        return grad


class _SavedInSavePhase:
    """Pickled by torch.save: allocates while being serialised."""

    def __init__(self, sink):
        self.sink = sink

    def __reduce__(self):
        self.sink.append((_C.phase(), torch.empty(64)))
        return (int, (0,))


def test_training_step_phases_and_their_default_categories():
    probe = _PhaseProbe()
    optimizer = torch.optim.SGD(probe.parameters(), lr=0.1)
    probe(torch.randn(2, 8)).sum().backward()
    optimizer.step()
    assert probe.seen == ["forward", "backward"]
    assert [_C.category_of(t) for t in probe.kept] == ["activations", "temporary"]
    assert _C.phase() == "idle"


def test_eval_is_a_no_grad_forward_or_an_eval_module():
    probe = _PhaseProbe()
    with torch.no_grad():
        probe(torch.randn(2, 8))
    probe.eval()
    probe(torch.randn(2, 8))
    assert probe.seen == ["eval", "eval"]
    assert _C.phase() == "idle"


def test_save_phase_covers_torch_save_and_safetensors():
    sink = []
    torch.save({"probe": _SavedInSavePhase(sink)}, io.BytesIO())
    assert [phase for phase, _ in sink] == ["save"]
    assert _C.category_of(sink[0][1]) == "checkpoint"
    assert _C.phase() == "idle"

    from safetensors import torch as safetensors_torch

    assert hasattr(safetensors_torch.save_file, "__oomguard_wrapped__")
    assert hasattr(safetensors_torch.save_model, "__oomguard_wrapped__")


def test_save_pretrained_runs_in_the_save_phase(tmp_path):
    from models import tiny_llama

    model = tiny_llama(layers=2)
    seen = []

    def state_dict(*args, **kwargs):
        seen.append(_C.phase())
        return type(model).state_dict(model, *args, **kwargs)

    model.state_dict = state_dict
    model.save_pretrained(tmp_path)
    assert seen and set(seen) == {"save"}
    assert (tmp_path / "model.safetensors").exists()
    assert _C.phase() == "idle"


def test_summary_prints_a_table(capsys):
    keep = torch.empty(1 << 20)
    oomguard.tag(keep, "non_torch")
    text = oomguard.summary()
    assert "category" in text and "non_torch" in text
    assert text in capsys.readouterr().out


class _Raises(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = torch.nn.Linear(4, 4)

    def forward(self, x):
        self.inner(x)
        raise RuntimeError("out of memory, say")


def test_a_forward_that_raises_closes_its_phase():
    failing = _Raises()
    try:
        failing(torch.randn(2, 4))
    except RuntimeError:
        pass
    assert _C.phase() == "idle"
    probe = _PhaseProbe()
    with torch.no_grad():
        probe(torch.randn(2, 8))
    assert probe.seen == ["eval"]
