"""The save phase: torch.save, safetensors and save_pretrained.

Copies made while serialising (contiguous copies, CPU staging of device
tensors) are checkpoint memory, which is what users need to budget for when
a save spikes memory at the end of an epoch.
"""

from __future__ import annotations

import torch

from . import phases
from ._imports import when_imported


def _patch_safetensors(module) -> None:
    phases.patch(module, "save_file", "save")
    phases.patch(module, "save_model", "save")


def _patch_transformers(module) -> None:
    phases.patch(module.PreTrainedModel, "save_pretrained", "save")


def install() -> None:
    phases.patch(torch, "save", "save")
    when_imported("safetensors.torch", _patch_safetensors)
    when_imported("transformers.modeling_utils", _patch_transformers)
