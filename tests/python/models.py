"""Tiny Llama models built from configs (nothing downloaded) and the bytes
their tensors really hold, which oomguard's categories must equal."""

from __future__ import annotations

import torch


def tiny_llama(layers: int = 2, hidden: int = 64, vocab: int = 1000, max_positions: int = 1024):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=max_positions, attn_implementation="sdpa")
    return LlamaForCausalLM(config)


def with_lora(model):
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "v_proj"])
    return get_peft_model(model, config)


def storage_bytes(tensors) -> int:
    """Bytes of the distinct storages behind `tensors`."""
    seen = {}
    for t in tensors:
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
    return sum(seen.values())


def expected_breakdown(model, optimizer) -> dict[str, int]:
    adapters = [p for n, p in model.named_parameters() if p.requires_grad and "lora_" in n]
    adapter_ids = {id(p) for p in adapters}
    weights = [p for p in model.parameters() if id(p) not in adapter_ids]
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    state = [v for s in optimizer.state.values() for v in s.values() if isinstance(v, torch.Tensor)]
    return {"weights": storage_bytes(weights), "adapters": storage_bytes(adapters),
            "gradients": storage_bytes(grads), "optimizer": storage_bytes(state)}


def batch(batch_size: int = 2, seq_len: int = 32, vocab: int = 1000):
    ids = torch.randint(0, vocab, (batch_size, seq_len))
    return {"input_ids": ids, "labels": ids.clone()}


def train_step(model, optimizer, inputs) -> float:
    loss = model(**inputs).loss
    loss.backward()
    optimizer.step()
    return loss.item()
