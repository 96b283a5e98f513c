"""Runs training configurations on the simulated GPU, one JSON line each.

Read from stdin, one JSON object per line: ``id``, ``config`` (a
transformers config dict), ``method`` (full | lora), ``dtype``,
``attention``, ``gradient_checkpointing``, ``optimizer_impl`` (foreach |
fused | for-loop), ``batch_size``, ``seq_len``, ``grad_accum``, and
optionally ``amp`` (an fp32 model, each forward under torch.autocast to
``dtype``, backward outside it: the Trainer's bf16=True), ``adapter_dtype``
(null: PEFT's fp32; else the model's) and ``optimizer_in_backward`` (torchtune's
optimizer_in_bwd: one optimizer per parameter stepped from its
post-accumulate-grad hook). Prints
``{"id", "peak", "phases", "requested"}``: torch.cuda.max_memory_allocated() over the
second optimizer step (the first has no optimizer states yet), and the
peak of each phase of it (``requested``: the bytes tensors asked for,
before c10's block rounding). The loop is a plain one whose last outputs (the
logits) live until its optimizer step is done: ``oomguard estimate
--framework torch``.
"""

import gc
import json
import sys

import torch
from transformers import AutoConfig, AutoModelForCausalLM

# Note [cuDNN on the simulated device] (python_shim/oomguard/_boot/sitecustomize.py)
torch.backends.cuda.enable_cudnn_sdp(False)
torch.backends.cudnn.enabled = False

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
OPTIMIZER_IMPLS = {"foreach": {"foreach": True}, "fused": {"fused": True}, "for-loop": {"foreach": False}}


def build(c):
    config = AutoConfig.for_model(**c["config"])
    config._attn_implementation = c["attention"]
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32 if c.get("amp") else DTYPES[c["dtype"]])
    if c["method"] == "lora":
        from peft import LoraConfig, get_peft_model

        # autocast_adapter_dtype=False keeps the adapters in the model's dtype.
        model = get_peft_model(model, LoraConfig(r=c["lora_r"], target_modules=c["lora_targets"], lora_dropout=0.0),
                               autocast_adapter_dtype=c.get("adapter_dtype") is None)
    if c["gradient_checkpointing"]:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if c["method"] == "lora":
            model.enable_input_require_grads()
    model.train()
    return model, config


def requested_peak() -> int:
    return torch.cuda.memory_stats()["requested_bytes.all.peak"]


class OptimizerInBackward:
    """torchtune's optimizer_in_bwd: each parameter stepped, its gradient
    freed, by a hook as soon as backward has accumulated it. step() after
    backward has nothing left to do."""

    def __init__(self, trainable, impl):
        self.per_parameter = {p: torch.optim.AdamW([p], lr=1e-4, **impl) for p in trainable}
        self.hooks = [p.register_post_accumulate_grad_hook(self._step) for p in trainable]

    def _step(self, p):
        self.per_parameter[p].step()
        self.per_parameter[p].zero_grad(set_to_none=True)

    def step(self):
        pass

    def zero_grad(self, set_to_none=True):
        pass

    def close(self):
        # The hooks hold this object and it holds the parameters' states:
        # removed, the next configuration starts from an empty device.
        for hook in self.hooks:
            hook.remove()
        self.per_parameter.clear()


def measure(c):
    model, config = build(c)
    trainable = [p for p in model.parameters() if p.requires_grad]
    impl = OPTIMIZER_IMPLS[c["optimizer_impl"]]
    if c.get("optimizer_in_backward"):
        optimizer = OptimizerInBackward(trainable, impl)
    else:
        optimizer = torch.optim.AdamW(trainable, lr=1e-4, **impl)
    ids = torch.randint(0, config.vocab_size, (c["batch_size"], c["seq_len"]), device="cuda")

    accum = c["grad_accum"]
    for _ in range(2):
        torch.cuda.reset_peak_memory_stats()
        phases = {"forward": 0, "backward": 0}
        requested = {"forward": 0, "backward": 0}
        for micro in range(accum):
            with torch.autocast("cuda", dtype=DTYPES[c["dtype"]], enabled=bool(c.get("amp"))):
                outputs = model(input_ids=ids, labels=ids)
            loss = outputs.loss
            phases["forward"] = max(phases["forward"], torch.cuda.max_memory_allocated())
            requested["forward"] = max(requested["forward"], requested_peak())
            torch.cuda.reset_peak_memory_stats()
            (loss / accum).backward()
            del loss
            phases["backward"] = max(phases["backward"], torch.cuda.max_memory_allocated())
            requested["backward"] = max(requested["backward"], requested_peak())
            torch.cuda.reset_peak_memory_stats()
            if micro < accum - 1:
                del outputs
        optimizer.step()
        phases["optimizer_step"] = torch.cuda.max_memory_allocated()
        requested["optimizer_step"] = requested_peak()
        optimizer.zero_grad(set_to_none=True)
        del outputs  # the loop's last outputs live until the step is done
    if isinstance(optimizer, OptimizerInBackward):
        optimizer.close()
    del model, optimizer, trainable, ids
    gc.collect()
    # cuBLAS and cuBLASLt keep a workspace per handle and stream for the
    # life of the process; cleared, each configuration starts as a fresh
    # process would, whatever ran before it.
    torch._C._cuda_clearCublasWorkspaces()
    torch.cuda.empty_cache()
    return {"peak": max(phases.values()), "phases": phases, "requested": requested}


for line in sys.stdin:
    case = json.loads(line)
    try:
        result = measure(case)
    except Exception as error:  # reported per configuration; the test fails on it
        result = {"error": f"{type(error).__name__}: {error}"}
    print(json.dumps({"id": case["id"], **result}), flush=True)
