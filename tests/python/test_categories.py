"""Weights, adapters, gradients and optimizer bytes equal exactly the bytes of
the model's and optimizer's tensors, at every step boundary."""

from __future__ import annotations

import torch

import oomguard
from models import batch, expected_breakdown, tiny_llama, train_step, with_lora

TRACKED = ("weights", "adapters", "gradients", "optimizer")


def _current(stats) -> dict[str, int]:
    return {k: stats["devices"]["cpu"]["current"][k] for k in TRACKED}


def _train_and_check(model, steps: int = 3):
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    first_step = oomguard._C.step()
    for _ in range(steps):
        train_step(model, optimizer, batch())
        expected = expected_breakdown(model, optimizer)
        assert _current(oomguard.stats()) == expected
        boundary = oomguard.stats()["boundaries"][-1]
        assert {k: boundary["current"]["cpu"][k] for k in TRACKED} == expected
        optimizer.zero_grad(set_to_none=True)
        expected["gradients"] = 0
        assert _current(oomguard.stats()) == expected
    assert oomguard._C.step() == first_step + steps
    return optimizer


def test_full_finetune_categories_are_exact():
    model = tiny_llama(layers=2)
    optimizer = _train_and_check(model)
    expected = expected_breakdown(model, optimizer)
    assert expected["adapters"] == 0 and expected["weights"] > 0 and expected["optimizer"] > 0


def test_lora_categories_are_exact():
    model = with_lora(tiny_llama(layers=2))
    optimizer = _train_and_check(model)
    expected = expected_breakdown(model, optimizer)
    assert expected["adapters"] > 0 and expected["weights"] > expected["adapters"]
    # LoRA: only the adapters have gradients and optimizer state (AdamW's two
    # moments, plus its step counters).
    assert expected["optimizer"] >= 2 * expected["adapters"]


def test_each_step_has_a_peak_with_activations_and_temporaries():
    model = tiny_llama(layers=2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    step = oomguard._C.step()
    train_step(model, optimizer, batch())
    peaks = [s for s in oomguard.stats()["steps"] if s["step"] == step and s["device"] == "cpu"]
    assert len(peaks) == 1
    by_category = peaks[0]["peak_by_category"]
    assert by_category["activations"] > 0
    assert by_category["temporary"] > 0
    assert peaks[0]["peak_allocated"] >= by_category["weights"] + by_category["activations"]


def test_tag_and_category_scope():
    with oomguard.category("checkpoint"):
        staged = torch.empty(1000)
    assert oomguard._C.category_of(staged) == "checkpoint"
    scratch = torch.empty(500)
    assert oomguard.tag(scratch, "temporary")[0] == 2000
    assert oomguard._C.category_of(scratch) == "temporary"
    view = scratch[10:20]
    assert oomguard.tag([scratch, view], "non_torch") == (2000, 1, 0)


def test_gradients_are_gradients_at_the_step_peak():
    model = with_lora(tiny_llama(layers=2))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    train_step(model, optimizer, batch())
    optimizer.zero_grad(set_to_none=True)
    step = oomguard._C.step()
    model(**batch()).loss.backward()
    # Right after backward, before any step boundary, gradients are claimed.
    expected = expected_breakdown(model, optimizer)
    assert oomguard.stats(census_first=False)["devices"]["cpu"]["current"]["gradients"] == expected["gradients"]
    optimizer.step()
    (peak,) = [s for s in oomguard.stats()["steps"] if s["step"] == step and s["device"] == "cpu"]
    assert peak["peak_by_category"]["gradients"] == expected["adapters"]
