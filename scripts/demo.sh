#!/usr/bin/env bash
# The main job on its embedded default: the pre-flight estimate of the
# reference case (Mistral-7B-v0.1, batch 1, 1,024 tokens, AdamW, A100 80GB),
# then a real fine-tune (a small Llama with LoRA, by the Trainer, on CPU)
# under `oomguard run`, with its memory by category and its reports.
set -euo pipefail
cd "$(dirname "$0")/.."
oomguard=$(command -v oomguard || echo build/guard/cli/oomguard)

echo "== oomguard estimate: the reference case, before any GPU is touched"
"$oomguard" estimate --model mistral-7b-v0.1 --gpu A100-80GB

echo
echo "== oomguard run: a LoRA fine-tune on CPU, tracked by category"
"$oomguard" run --mode cpu --report-dir oomguard-reports/demo -- python3 examples/finetune_tiny.py
echo
echo "reports: oomguard-reports/demo/"
