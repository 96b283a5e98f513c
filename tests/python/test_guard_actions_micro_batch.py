"""(f) The micro-batch action on a Trainer keeps the effective batch, the
samples of every optimizer step and the loss curve of the unguarded run."""

from __future__ import annotations

import torch

import oomguard
from models import tiny_llama
from oomguard.actions import ActionContext, Decision, micro_batch, run

BATCH, STEPS, ACT_AT = 4, 6, 2


class _Tokens(torch.utils.data.Dataset):
    def __init__(self, n: int = 24, seq_len: int = 32, vocab: int = 1000):
        generator = torch.Generator().manual_seed(1)
        self.ids = torch.randint(0, vocab, (n, seq_len), generator=generator)

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


def _train(tmp_path, act: bool):
    from transformers import Trainer, TrainerCallback, TrainingArguments

    torch.manual_seed(0)
    model = tiny_llama(layers=2)
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=STEPS, per_device_train_batch_size=BATCH,
                             gradient_accumulation_steps=1, learning_rate=1e-3, save_strategy="no", report_to=[],
                             use_cpu=True, logging_steps=1, disable_tqdm=True, dataloader_num_workers=0, seed=0)
    trainer = Trainer(model=model, args=args, train_dataset=_Tokens())
    seen = {"rows": [], "forward_batches": []}  # rows per optimizer step, forward batch sizes

    def count_forward(module, forward_args, kwargs):
        ids = kwargs.get("input_ids")
        if ids is not None:
            seen["forward_batches"].append(ids.shape[0])
            seen["rows"][-1].extend(tuple(r.tolist()) for r in ids)

    class Steps(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            seen["rows"].append([])

        def on_step_end(self, args, state, control, **kwargs):
            if act and state.global_step == ACT_AT:
                result = run("micro_batch", ActionContext(models=[model], trainer=trainer, step=state.global_step),
                             Decision("micro_batch", 1))
                assert result.acted, result.detail

    trainer.add_callback(Steps())
    handle = model.register_forward_pre_hook(count_forward, with_kwargs=True)
    trainer.train()
    handle.remove()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return losses, seen


def test_micro_batch_keeps_the_effective_batch_and_the_loss_curve(tmp_path):
    plain_losses, plain = _train(tmp_path / "plain", act=False)
    guarded_losses, guarded = _train(tmp_path / "guarded", act=True)

    assert plain["forward_batches"] == [BATCH] * STEPS
    assert guarded["forward_batches"] == [BATCH] * ACT_AT + [BATCH // 2] * (2 * (STEPS - ACT_AT))
    # Same samples in every optimizer step, in the same order: nothing dropped.
    assert guarded["rows"] == plain["rows"]
    assert all(len(rows) == BATCH for rows in guarded["rows"])
    recorded = [a for a in oomguard.actions() if a["kind"] == "micro_batch"]
    assert recorded and recorded[-1]["step"] == ACT_AT and "gradient accumulation 1 -> 2" in recorded[-1]["detail"]

    # The Trainer normalises the loss by the batch's token count, so the two
    # halves' gradients add up to the whole batch's up to float summation
    # order (~1e-7 relative); Adam can amplify that where a gradient is near
    # zero, so over a few steps the losses agree to 1e-4 relative, far below
    # the step-to-step change of the loss (checked below to be larger).
    assert len(plain_losses) == len(guarded_losses) == STEPS
    for a, b in zip(plain_losses, guarded_losses):
        assert abs(a - b) <= 1e-4 * abs(a), (plain_losses, guarded_losses)
    assert max(plain_losses) - min(plain_losses) > 1e-2


def test_split_shares_rows_evenly_and_keeps_other_values():
    inputs = {"input_ids": torch.arange(10).view(5, 2), "labels": torch.arange(10).view(5, 2), "flag": 3}
    parts = micro_batch.split(inputs, 2)
    assert [p["input_ids"].shape[0] for p in parts] == [2, 3] or [p["input_ids"].shape[0] for p in parts] == [3, 2]
    assert torch.equal(torch.cat([p["input_ids"] for p in parts]), inputs["input_ids"])
    assert all(p["flag"] == 3 for p in parts)
    assert len(micro_batch.split({"input_ids": torch.zeros(1, 4)}, 2)) == 1
