"""An ordinary LoRA training script (no oomguard unless --install): writes
the bytes its tensors hold at the last optimizer-step boundary."""

import json
import sys

import torch

if "--install" in sys.argv:
    import oomguard

    oomguard.install(mode="cpu")

from models import batch, expected_breakdown, tiny_llama, with_lora  # noqa: E402

STEPS = 3


def main(out_path):
    torch.manual_seed(0)
    model = with_lora(tiny_llama(layers=2))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    for _ in range(STEPS):
        model(**batch()).loss.backward()
        optimizer.step()
        expected = expected_breakdown(model, optimizer)
        optimizer.zero_grad(set_to_none=True)
    out = {"expected": expected, "steps": STEPS}
    if "--install" in sys.argv:
        out["boundary"] = oomguard.stats(census_first=False)["boundaries"][-1]["current"]
    with open(out_path, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main(sys.argv[1])
