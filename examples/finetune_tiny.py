"""The embedded default: a small Llama-style model fine-tuned with LoRA by the
Hugging Face Trainer on CPU, on synthetic token data of varying lengths.
Nothing is downloaded. The script knows nothing of oomguard; run it under
`oomguard run` to see its memory by category:

    oomguard run --mode cpu --report-dir oomguard-reports/demo -- python3 examples/finetune_tiny.py
"""

import argparse
import sys

import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM, Trainer, TrainingArguments


class SyntheticTokens(torch.utils.data.Dataset):
    """Sequences of random tokens whose lengths vary from short to `max_len`."""

    def __init__(self, count: int, vocab: int, max_len: int, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        lengths = torch.randint(max_len // 4, max_len + 1, (count,), generator=g)
        self.items = [torch.randint(0, vocab, (int(n),), generator=g) for n in lengths]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        ids = self.items[i]
        return {"input_ids": ids, "labels": ids.clone()}


def pad(batch):
    longest = max(len(b["input_ids"]) for b in batch)
    ids = torch.zeros(len(batch), longest, dtype=torch.long)
    labels = torch.full((len(batch), longest), -100, dtype=torch.long)
    mask = torch.zeros(len(batch), longest, dtype=torch.long)
    for row, b in enumerate(batch):
        n = len(b["input_ids"])
        ids[row, :n], labels[row, :n], mask[row, :n] = b["input_ids"], b["labels"], 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--output-dir", default="oomguard-reports/demo-checkpoints")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=2048, hidden_size=256, intermediate_size=688, num_hidden_layers=4,
                         num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=args.seq_len)
    model = LlamaForCausalLM(config)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"],
                                             lora_dropout=0.0))
    data = SyntheticTokens(args.steps * args.batch_size, config.vocab_size, args.seq_len)
    training = TrainingArguments(output_dir=args.output_dir, per_device_train_batch_size=args.batch_size,
                                 max_steps=args.steps, learning_rate=1e-3, logging_steps=4, save_strategy="no",
                                 report_to=[], use_cpu=True, dataloader_num_workers=0)
    Trainer(model=model, args=training, train_dataset=data, data_collator=pad).train()

    if "oomguard" in sys.modules:  # installed by `oomguard run`: show what it saw
        sys.modules["oomguard"].summary()


if __name__ == "__main__":
    main()
