"""What the user-shaped scripts share and a user would write themselves: a
tiny Llama built from a config (nothing downloaded), a word-level tokenizer
built in memory, token datasets of varied lengths, and the bytes a tensor
list really holds (for the facts each script writes)."""

from __future__ import annotations

import json
import os

import torch

VOCAB = 512


def tiny_llama(layers: int = 4, hidden: int = 64):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=VOCAB, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         attn_implementation="sdpa", pad_token_id=0, bos_token_id=1, eos_token_id=2)
    torch.manual_seed(0)
    return LlamaForCausalLM(config)


def tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3}
    words.update({f"w{i}": i for i in range(4, VOCAB)})
    raw = Tokenizer(models.WordLevel(vocab=words, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=raw, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>")


def lengths(n: int, low: int, high: int, long: int | None = None, n_long: int = 2) -> list[int]:
    """Short rows of varied lengths and, when `long` is given, a long tail
    of `n_long` rows (last in the list, anywhere once shuffled): the guard
    must foresee the longest batch before it comes."""
    short = [low + (high - low) * i // max(n - n_long - 1, 1) for i in range(n - n_long)] if long else \
        [low + (high - low) * i // max(n - 1, 1) for i in range(n)]
    return short + [long] * n_long if long else short


class Tokens(torch.utils.data.Dataset):
    """Causal-LM rows of the given lengths (labels = inputs)."""

    def __init__(self, sizes: list[int], seed: int = 0):
        generator = torch.Generator().manual_seed(seed)
        self.rows = [torch.randint(4, VOCAB, (n,), generator=generator) for n in sizes]

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return {"input_ids": self.rows[i], "labels": self.rows[i].clone()}


def pad_collate(rows: list[dict]) -> dict:
    longest = max(len(r["input_ids"]) for r in rows)
    ids = torch.zeros(len(rows), longest, dtype=torch.long)
    labels = torch.full((len(rows), longest), -100, dtype=torch.long)
    mask = torch.zeros(len(rows), longest, dtype=torch.long)
    for i, r in enumerate(rows):
        n = len(r["input_ids"])
        ids[i, :n], labels[i, :n], mask[i, :n] = r["input_ids"], r["labels"], 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def storage_bytes(tensors) -> int:
    seen = {}
    for t in tensors:
        if t is not None:
            storage = t.untyped_storage()
            seen[storage.data_ptr()] = storage.nbytes()
    return sum(seen.values())


def optimizer_state(optimizer) -> list:
    optimizer = getattr(optimizer, "optimizer", optimizer)  # accelerate wraps it
    return [v for s in optimizer.state.values() for v in s.values() if isinstance(v, torch.Tensor)]


def write_facts(path: str | None, **facts) -> None:
    if not path:
        return
    rank = os.environ.get("RANK")
    if rank is not None:
        path = f"{path}.rank{rank}"
    with open(path, "w") as f:
        json.dump(facts, f)
