"""LoRA with PEFT through the transformers Trainer, adapters saved with
save_pretrained at the end, as a user writes it. No oomguard in it."""

import argparse
import os

from peft import LoraConfig, get_peft_model
from transformers import Trainer, TrainingArguments

from _tiny import Tokens, lengths, optimizer_state, pad_collate, storage_bytes, tiny_llama, write_facts


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--facts")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    model = get_peft_model(tiny_llama(), LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0,
                                                    target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
    train = Tokens(lengths(args.steps * 4 * 2, 16, 24, long=128))
    training = TrainingArguments(
        output_dir=args.output_dir, max_steps=args.steps, per_device_train_batch_size=4, gradient_accumulation_steps=2,
        save_strategy="no", logging_steps=1, learning_rate=1e-3, report_to=[], use_cpu=True, disable_tqdm=True,
        dataloader_num_workers=0, seed=args.seed)
    trainer = Trainer(model=model, args=training, train_dataset=train, data_collator=pad_collate)
    trainer.train()
    model.save_pretrained(os.path.join(args.output_dir, "adapter"))
    adapters = [p for n, p in model.named_parameters() if p.requires_grad]
    write_facts(args.facts, adapters=storage_bytes(adapters),
                weights=storage_bytes([p for p in model.parameters() if not p.requires_grad]),
                optimizer=storage_bytes(optimizer_state(trainer.optimizer)), log_history=trainer.state.log_history)


if __name__ == "__main__":
    main()
