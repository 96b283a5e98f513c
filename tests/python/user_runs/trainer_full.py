"""A full fine-tune with the transformers Trainer, as a user writes it:
gradient accumulation, evaluation and checkpoint saving every few steps.
Runs alone or under torchrun (DDP). No oomguard in it."""

import argparse

import torch
from transformers import Trainer, TrainingArguments

from _tiny import Tokens, lengths, optimizer_state, pad_collate, storage_bytes, tiny_llama, write_facts


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--facts")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--longest", type=int, default=96)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    model = tiny_llama()
    train = Tokens(lengths(args.steps * 2 * args.batch * 2, 16, 24, long=args.longest))
    evaluation = Tokens(lengths(8, 16, 48), seed=1)
    training = TrainingArguments(
        output_dir=args.output_dir, max_steps=args.steps, per_device_train_batch_size=args.batch,
        gradient_accumulation_steps=2, per_device_eval_batch_size=4, eval_strategy="steps", eval_steps=3,
        save_strategy="steps", save_steps=3, logging_steps=1, learning_rate=1e-3, report_to=[], use_cpu=True,
        disable_tqdm=True, dataloader_num_workers=0, seed=args.seed)
    trainer = Trainer(model=model, args=training, train_dataset=train, eval_dataset=evaluation,
                      data_collator=pad_collate)
    trainer.train()
    write_facts(args.facts, weights=storage_bytes(model.parameters()),
                optimizer=storage_bytes(optimizer_state(trainer.optimizer)),
                log_history=trainer.state.log_history)


if __name__ == "__main__":
    main()
