"""(c) A save that would cross the budget completes through host copies and
the file loads back identical. In a fresh process each, since the cpu
budget is fixed when oomguard installs.

The model's matrices are stored transposed (non-contiguous views, as after
a ``.t()`` or an unpacked quantised weight), so save_pretrained and
safetensors' save_model make a contiguous copy of each on the device,
all alive at once: twice the weights. The budget admits the weights and one
matrix more, not all the copies."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

HERE = os.path.dirname(__file__)

SCRIPT = """
import json, os, sys
import torch
import oomguard
sys.path.insert(0, {here!r})
from models import tiny_llama

with torch.device("meta"):
    weights = sum(p.numel() * p.element_size() for p in tiny_llama(layers=2, hidden=128, vocab=2000).parameters())
oomguard.install(mode="cpu", budget=int(weights * 1.5))
torch.manual_seed(0)
model = tiny_llama(layers=2, hidden=128, vocab=2000)
for p in model.parameters():
    if p.dim() == 2:
        p.data = p.data.t().contiguous().t()  # same values, transposed storage
assert not all(p.is_contiguous() for p in model.parameters())

from oomguard.actions import save_guard
out = {{"weights": weights}}
kind = {kind!r}
target = {target!r}

def save():
    if kind == "save_pretrained":
        model.save_pretrained(target)
        return os.path.join(target, "model.safetensors")
    import safetensors.torch
    safetensors.torch.save_model(model, target)
    return target

with save_guard.unguarded():
    try:
        save()
        out["unguarded"] = "saved"
    except torch.OutOfMemoryError as error:
        out["unguarded"] = "oom"
path = save()
out["actions"] = oomguard.actions()

from safetensors import safe_open
state = model.state_dict()
mismatched, compared = [], 0
with safe_open(path, framework="pt") as f:
    for key in f.keys():
        t = f.get_tensor(key)  # one at a time: the budget holds one more matrix
        compared += 1
        if not torch.equal(t, state[key]):
            mismatched.append(key)
        del t
out["compared"], out["mismatched"], out["keys"] = compared, mismatched, len(state)
print("RESULT " + json.dumps(out))
"""


def _run(kind: str, target: str) -> dict:
    env = dict(os.environ)
    env.pop("OOMGUARD_CONF", None)
    code = textwrap.dedent(SCRIPT.format(here=HERE, kind=kind, target=target))
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    line = [ln for ln in result.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def _check(out: dict, saver: str) -> None:
    assert out["unguarded"] == "oom", "the unguarded save should cross the budget"
    guarded = [a for a in out["actions"] if a["kind"] == "save_guard"]
    assert len(guarded) == 1 and saver in guarded[0]["detail"]
    assert guarded[0]["predicted_saving_bytes"] > 0.5 * out["weights"]
    assert out["compared"] == out["keys"] and out["mismatched"] == []


def test_save_pretrained_over_budget_goes_through_host_copies(tmp_path):
    _check(_run("save_pretrained", str(tmp_path / "model")), "save_pretrained")


def test_safetensors_save_model_over_budget_goes_through_host_copies(tmp_path):
    _check(_run("save_model", str(tmp_path / "model.safetensors")), "safetensors.save_model")


# In this process (no budget), the headroom is forced to zero instead: the
# decisions and the host path of the Trainer and PEFT saves, not the limit.

def _transpose_matrices(model, only=None):
    for name, p in model.named_parameters():
        if p.dim() == 2 and (only is None or only in name):
            p.data = p.data.t().contiguous().t()


def test_trainer_checkpoint_is_announced_before_the_write_and_loads_back(tmp_path, monkeypatch):
    import torch
    from safetensors.torch import load_file
    from transformers import Trainer, TrainingArguments

    import oomguard
    from models import tiny_llama
    from oomguard.actions import save_guard
    from test_guard_actions_micro_batch import _Tokens

    monkeypatch.setattr(save_guard, "headroom", lambda device: 0)
    model = tiny_llama(layers=2)
    _transpose_matrices(model)
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=2, save_steps=2, save_strategy="steps",
                             per_device_train_batch_size=2, learning_rate=1e-3, report_to=[], use_cpu=True,
                             disable_tqdm=True, dataloader_num_workers=0, save_only_model=True)
    before = len(oomguard.actions())
    Trainer(model=model, args=args, train_dataset=_Tokens(n=4)).train()
    new = [a for a in oomguard.actions()[before:] if a["kind"] == "save_guard"]
    assert "Trainer checkpoint at step 2" in new[0]["detail"]
    assert any("save_pretrained through host copies" in a["detail"] for a in new[1:])
    saved = load_file(str(tmp_path / "checkpoint-2" / "model.safetensors"))
    state = model.state_dict()
    assert saved.keys() <= state.keys() and len(saved) >= len(state) - 1  # lm_head may be tied
    for key, tensor in saved.items():
        assert torch.equal(tensor, state[key]), key


def test_peft_adapter_save_goes_through_host_copies(tmp_path, monkeypatch):
    import torch
    from peft import get_peft_model_state_dict
    from safetensors.torch import load_file

    import oomguard
    from models import tiny_llama, with_lora
    from oomguard.actions import save_guard

    monkeypatch.setattr(save_guard, "headroom", lambda device: 0)
    model = with_lora(tiny_llama(layers=2))
    _transpose_matrices(model, only="lora_")
    before = len(oomguard.actions())
    model.save_pretrained(str(tmp_path))
    new = [a for a in oomguard.actions()[before:] if a["kind"] == "save_guard"]
    assert len(new) == 1 and "save_pretrained through host copies" in new[0]["detail"], new
    saved = load_file(str(tmp_path / "adapter_model.safetensors"))
    expected = get_peft_model_state_dict(model)
    assert saved.keys() == expected.keys() and saved
    for key, tensor in saved.items():
        assert torch.equal(tensor, expected[key]), key
