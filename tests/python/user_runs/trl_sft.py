"""Supervised fine-tuning with TRL's SFTTrainer on a text dataset, as a user
writes it (a local tokenizer; nothing downloaded). No oomguard in it."""

import argparse

from datasets import Dataset
from trl import SFTConfig, SFTTrainer

from _tiny import VOCAB, lengths, optimizer_state, storage_bytes, tiny_llama, tokenizer, write_facts


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--facts")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    sizes = lengths(args.steps * 4, 12, 20, long=120)
    texts = [" ".join(f"w{4 + (i * 7 + j) % (VOCAB - 4)}" for j in range(n)) for i, n in enumerate(sizes)]
    model = tiny_llama()
    config = SFTConfig(output_dir=args.output_dir, max_steps=args.steps, per_device_train_batch_size=4,
                       max_length=128, logging_steps=1, learning_rate=1e-3, report_to=[], use_cpu=True,
                       disable_tqdm=True, save_strategy="no", seed=args.seed, dataloader_num_workers=0)
    trainer = SFTTrainer(model=model, args=config, train_dataset=Dataset.from_dict({"text": texts}),
                         processing_class=tokenizer())
    trainer.train()
    write_facts(args.facts, weights=storage_bytes(model.parameters()),
                optimizer=storage_bytes(optimizer_state(trainer.optimizer)), log_history=trainer.state.log_history)


if __name__ == "__main__":
    main()
