"""The estimator against transformers: parameter counts of every built-in
model (meta device) and the activation model against one measured CPU step."""
import json
import os
import subprocess
from pathlib import Path

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM, LlamaConfig

REPO = Path(__file__).resolve().parents[2]
CLI = Path(os.environ.get("OOMGUARD_CLI", REPO / "build" / "guard" / "cli" / "oomguard"))

if not CLI.exists():
    pytest.fail(f"oomguard CLI not found at {CLI}; build it or set OOMGUARD_CLI", pytrace=False)


def cli(*args):
    done = subprocess.run([str(CLI), "estimate", *args], capture_output=True, text=True, check=True)
    return done.stdout


def builtin_models():
    return cli("--list-models").split()


def estimate(*args):
    return json.loads(cli("--json", *args))


def component(doc, name):
    return next(c["bytes"] for c in doc["components"] if c["name"] == name)


@pytest.mark.parametrize("name", builtin_models())
def test_parameter_count_matches_transformers(name):
    config = json.loads(cli("--model", name, "--dump-config"))
    model_type = config.pop("model_type")
    hf_config = AutoConfig.for_model(model_type, **config)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(hf_config)
    expected = sum(p.numel() for p in model.parameters())
    assert estimate("--model", name)["parameters"] == expected


def measure_saved_bytes(config, dtype, batch, seq):
    """Bytes of the unique storages autograd saves for backward in one step,
    parameters excluded (they are weights, not activations)."""
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).to(dtype)
    model.train()
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in params:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    ids = torch.randint(0, config.vocab_size, (batch, seq))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    return sum(saved.values())


TINY = [
    # hidden, intermediate, heads, kv heads, vocab, batch, seq
    (64, 172, 4, 4, 256, 2, 32),
    (128, 344, 4, 2, 512, 2, 64),
    (96, 256, 6, 2, 1000, 1, 128),
]


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
@pytest.mark.parametrize("shape", TINY, ids=lambda s: f"h{s[0]}-kv{s[3]}-s{s[6]}")
def test_activation_model_matches_a_measured_step(tmp_path, attention, dtype, shape):
    hidden, inter, heads, kv, vocab, batch, seq = shape
    if dtype == "fp32" and attention == "sdpa" and kv < heads:
        # Not a CPU fact: on CUDA an fp32 grouped-query SDPA runs the math
        # kernel (Note [Which kernel SDPA runs]), which the estimate follows
        # and tests/python/test_estimator_grid.py measures on the simulated
        # A100; on CPU torch's flash kernel takes it. So this CPU check uses
        # one key/value head per head there.
        kv = heads
    config = LlamaConfig(hidden_size=hidden, intermediate_size=inter, num_hidden_layers=2,
                         num_attention_heads=heads, num_key_value_heads=kv, vocab_size=vocab,
                         max_position_embeddings=seq, tie_word_embeddings=False,
                         attn_implementation=attention)
    config_path = tmp_path / "config.json"
    config_path.write_text(config.to_json_string())
    torch_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
    measured = measure_saved_bytes(config, torch_dtype, batch, seq)
    doc = estimate("--config", str(config_path), "--dtype", dtype, "--attention", attention,
                   "--batch-size", str(batch), "--seq-len", str(seq))
    predicted = component(doc, "activations_saved")
    assert predicted == pytest.approx(measured, rel=0.10), (predicted, measured)


def test_eager_grows_quadratically_and_sdpa_does_not(tmp_path):
    config = LlamaConfig(hidden_size=64, intermediate_size=172, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=4, vocab_size=256, tie_word_embeddings=False)
    growth = {}
    for attention in ("eager", "sdpa"):
        config._attn_implementation = attention
        short, long = (measure_saved_bytes(config, torch.float32, 1, s) for s in (64, 256))
        growth[attention] = long / short
    assert growth["sdpa"] == pytest.approx(4.0, rel=0.05)
    assert growth["eager"] > 5.0
