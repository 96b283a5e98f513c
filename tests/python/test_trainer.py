"""A transformers.Trainer run gets the same breakdown through the callback,
which oomguard attaches by itself."""

from __future__ import annotations

import torch

import oomguard
from models import storage_bytes, tiny_llama, with_lora
from oomguard.integrations.transformers import OOMGuardCallback

TRACKED = ("weights", "adapters", "gradients", "optimizer")


class _Tokens(torch.utils.data.Dataset):
    def __init__(self, n: int = 8, seq_len: int = 32, vocab: int = 1000):
        self.ids = torch.randint(0, vocab, (n, seq_len))

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


def test_trainer_breakdown_through_the_auto_attached_callback(tmp_path):
    from transformers import Trainer, TrainingArguments

    model = with_lora(tiny_llama(layers=2))
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=3, per_device_train_batch_size=2,
                             learning_rate=1e-3, save_strategy="no", report_to=[], use_cpu=True,
                             logging_steps=1, disable_tqdm=True, dataloader_num_workers=0)
    trainer = Trainer(model=model, args=args, train_dataset=_Tokens())
    (callback,) = [c for c in trainer.callback_handler.callbacks if isinstance(c, OOMGuardCallback)]
    first_step = oomguard._C.step()
    trainer.train()

    optimizer = trainer.optimizer.optimizer  # accelerate wraps the torch optimizer
    adapters = [p for n, p in model.named_parameters() if p.requires_grad and "lora_" in n]
    adapter_ids = {id(p) for p in adapters}
    state = [v for s in optimizer.state.values() for v in s.values() if isinstance(v, torch.Tensor)]
    expected = {"weights": storage_bytes([p for p in model.parameters() if id(p) not in adapter_ids]),
                "adapters": storage_bytes(adapters),
                "gradients": 0,  # the Trainer zeroes gradients before on_step_end
                "optimizer": storage_bytes(state)}
    assert len(callback.history) == 3
    for entry in callback.history:
        assert {k: entry["current"]["cpu"][k] for k in TRACKED} == expected

    # At each optimizer-step boundary the gradients of the adapters were alive.
    boundaries = [b for b in oomguard.stats()["boundaries"] if b["step"] >= first_step]
    assert len(boundaries) == 3
    for boundary in boundaries:
        assert boundary["current"]["cpu"]["gradients"] == expected["adapters"]
        assert boundary["current"]["cpu"]["adapters"] == expected["adapters"]


def test_the_callbacks_figures_reach_the_loggers_and_log_history(tmp_path):
    from transformers import Trainer, TrainerCallback, TrainingArguments

    class Tracker(TrainerCallback):
        """Stands for TensorBoard / W&B: it records what on_log hands it."""

        def __init__(self):
            self.logged: list[dict] = []

        def on_log(self, args, state, control, logs=None, **kwargs):
            self.logged.append(dict(logs))

    tracker = Tracker()
    model = tiny_llama(layers=2)
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=2,
                             learning_rate=1e-3, save_strategy="no", report_to=[], use_cpu=True,
                             logging_steps=1, disable_tqdm=True, dataloader_num_workers=0)
    trainer = Trainer(model=model, args=args, train_dataset=_Tokens(), callbacks=[tracker])
    callbacks = trainer.callback_handler.callbacks
    ours = next(i for i, c in enumerate(callbacks) if isinstance(c, OOMGuardCallback))
    assert ours < callbacks.index(tracker)  # before the loggers
    trainer.train()
    key = "oomguard/cpu/peak_allocated_mib"
    training_logs = [logs for logs in tracker.logged if "loss" in logs]
    assert len(training_logs) == 2 and all(logs[key] > 0 for logs in training_logs)
    history = [h for h in trainer.state.log_history if "loss" in h]
    assert [h[key] for h in history] == [logs[key] for logs in training_logs]
