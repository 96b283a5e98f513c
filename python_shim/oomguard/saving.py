"""The save phase: torch.save, safetensors and save_pretrained.

Copies made while serialising (contiguous copies, CPU staging of device
tensors) are checkpoint memory, which is what users need to budget for when
a save spikes memory at the end of an epoch. The saves that copy on the
device also go through the save guard (actions/save_guard.py), inside the
save phase, so its host staging is seen as part of the save.
"""

from __future__ import annotations

import torch

from . import phases
from ._imports import when_imported


def _patch_safetensors(module) -> None:
    from .actions import save_guard

    save_guard.guard(module, "save_model", save_guard.guard_save_model)
    phases.patch(module, "save_file", "save")
    phases.patch(module, "save_model", "save")


def _patch_transformers(module) -> None:
    from .actions import save_guard

    save_guard.guard(module.PreTrainedModel, "save_pretrained", save_guard.guard_save_pretrained)
    phases.patch(module.PreTrainedModel, "save_pretrained", "save")


def _patch_peft(module) -> None:
    from .actions import save_guard

    save_guard.guard(module.PeftModel, "save_pretrained", save_guard.guard_save_pretrained)
    phases.patch(module.PeftModel, "save_pretrained", "save")


def install() -> None:
    phases.patch(torch, "save", "save")
    when_imported("safetensors.torch", _patch_safetensors)
    when_imported("transformers.modeling_utils", _patch_transformers)
    when_imported("peft.peft_model", _patch_peft)
