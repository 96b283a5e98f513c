"""The checkpoint actuator: k of n blocks checkpointed save about k blocks'
activations, and the gradients are those of the plain model."""

from __future__ import annotations

import torch

import oomguard
from models import batch, tiny_llama
from oomguard.actions import ActionContext, Decision, checkpoint, run


def _grads(model, inputs):
    model.zero_grad(set_to_none=True)
    loss = model(**inputs).loss
    loss.backward()
    return loss.detach().clone(), {n: p.grad.clone() for n, p in model.named_parameters()}


def _activation_peak(model, optimizer, inputs) -> int:
    optimizer.zero_grad(set_to_none=True)
    # Close the open step first: it may hold the peaks of whatever ran in this
    # process since the last optimizer step (other tests, with none).
    optimizer.step()
    step = oomguard._C.step()
    model(**inputs).loss.backward()
    optimizer.step()  # closes the step: its peaks are in stats()["steps"]
    peaks = [s["peak_by_category"]["activations"] for s in oomguard.stats()["steps"] if s["step"] == step]
    assert peaks, "the step's peaks were not recorded"
    return max(peaks)


def test_finds_the_decoder_layers_also_under_peft():
    from models import with_lora

    model = tiny_llama(layers=3)
    assert checkpoint.find_blocks(model) == list(model.model.layers)
    peft_model = with_lora(tiny_llama(layers=3))
    assert len(checkpoint.find_blocks(peft_model)) == 3


def test_gradients_identical_with_some_and_all_blocks_checkpointed():
    model = tiny_llama(layers=4)
    model.train()
    inputs = batch(batch_size=2, seq_len=48)
    loss0, grads0 = _grads(model, inputs)
    for k in (2, 4):  # 4 of 4 goes through the model's own gradient_checkpointing_enable
        how = checkpoint.enable(model, k)
        assert ("the model's" in how) == (k == 4)
        loss, grads = _grads(model, inputs)
        assert torch.equal(loss, loss0)
        for name, g in grads0.items():
            assert torch.allclose(grads[name], g, rtol=1e-5, atol=1e-7), name
        checkpoint.disable(model)
    assert checkpoint.checkpointed_blocks(model) == 0
    assert not any(getattr(layer, "gradient_checkpointing", False) for layer in model.model.layers)


def test_activation_peak_falls_about_one_block_per_checkpointed_block():
    model = tiny_llama(layers=4, hidden=64, vocab=256)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    inputs = batch(batch_size=2, seq_len=128, vocab=256)
    profile = checkpoint.profile_blocks(model)
    peaks = [_activation_peak(model, optimizer, inputs)]
    per_block = profile.per_block_bytes()
    assert per_block and per_block > 0, (profile.kept, profile._start)
    for k in (1, 2, 3):
        checkpoint.enable(model, k)
        peaks.append(_activation_peak(model, optimizer, inputs))
    checkpoint.disable(model)
    profile.remove()
    savings = [peaks[0] - p for p in peaks[1:]]
    # Each block checkpointed saves what the profile measured for one block
    # (its activations less its output), so the saving grows linearly in k.
    for k, saving in zip((1, 2, 3), savings):
        assert abs(saving - k * per_block) <= 0.2 * k * per_block, (k, saving, per_block, peaks)


def test_apply_checkpoints_the_fewest_blocks_and_records_the_action():
    model = tiny_llama(layers=6, hidden=64, vocab=256)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    inputs = batch(batch_size=2, seq_len=64, vocab=256)
    profile = checkpoint.profile_blocks(model)
    before = _activation_peak(model, optimizer, inputs)
    per_block = profile.per_block_bytes()
    context = ActionContext(models=[model], optimizers=[optimizer], prediction={"activation_scale": 1.0})
    result = run("checkpoint", context, Decision("checkpoint", bytes_to_save=int(2.5 * per_block)))
    assert result.acted and checkpoint.checkpointed_blocks(model) == 3
    assert result.predicted_saving_bytes == 3 * per_block
    after = _activation_peak(model, optimizer, inputs)
    assert before - after >= 2.5 * per_block * 0.9
    recorded = [a for a in oomguard.actions() if a["kind"] == "checkpoint"]
    assert recorded and "3 of 6 blocks" in recorded[-1]["detail"]
    checkpoint.disable(model)
    profile.remove()


def test_plain_loop_has_no_micro_batch():
    result = run("micro_batch", ActionContext(models=[torch.nn.Linear(2, 2)]), Decision("micro_batch", 1))
    assert not result.acted and "Trainer" in result.detail
