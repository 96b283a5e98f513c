#!/usr/bin/env bash
# The main job on its embedded default: the pre-flight estimate of the
# reference case (Mistral-7B-v0.1, batch 1, 1,024 tokens, AdamW, A100 80GB),
# then a real fine-tune (a small Llama with LoRA, by the Trainer, on CPU)
# under `oomguard run`, with its memory by category and its reports, then the
# reference case itself (a full fine-tune of a random-initialised Mistral-7B)
# on a simulated A100 80GB (docs/simulator.md): PyTorch's real CUDA code with
# kernels counted, not run, so its peak is a simulated-device figure.
set -euo pipefail
cd "$(dirname "$0")/.."
oomguard=$(command -v oomguard || echo build/guard/cli/oomguard)

echo "== oomguard estimate: the reference case, before any GPU is touched"
"$oomguard" estimate --model mistral-7b-v0.1 --gpu A100-80GB

echo
echo "== oomguard run: a LoRA fine-tune on CPU, tracked by category"
"$oomguard" run --mode cpu --report-dir oomguard-reports/demo -- python3 examples/finetune_tiny.py
echo
echo "== oomguard run --simulate: the reference case's full fine-tune on a simulated A100 80GB"
"$oomguard" run --simulate A100-80GB --mode observe --report-dir oomguard-reports/seed -- \
  python3 examples/mistral_7b_full_finetune.py
python3 - <<'PY'
import json
peak = json.load(open("oomguard-reports/seed/rank0/summary.json"))["peak"]
print(f"oomguard's peak on the simulated device: {peak['allocated_bytes'] / 2**30:.2f} GiB allocated")
for category, size in peak["by_category"].items():
    if size:
        print(f"  {category:<12} {size / 2**30:8.2f} GiB")
PY
echo
echo "reports: oomguard-reports/demo/, oomguard-reports/seed/ (simulated device)"
