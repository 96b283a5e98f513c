"""A plain PyTorch loop over a model of its own (not transformers): an
embedding, a ModuleList of residual MLP blocks, a head; AdamW; a checkpoint
saved with torch.save. Runs alone, under torchrun (DDP on gloo) or under
`accelerate launch`. No oomguard in it."""

import argparse
import os

import torch
import torch.nn.functional as F

from _tiny import VOCAB, lengths, optimizer_state, storage_bytes, write_facts


class Block(torch.nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.norm = torch.nn.LayerNorm(width)
        self.up = torch.nn.Linear(width, 4 * width)
        self.down = torch.nn.Linear(4 * width, width)

    def forward(self, x):
        return x + self.down(F.gelu(self.up(self.norm(x))))


class TinyLM(torch.nn.Module):
    def __init__(self, width: int = 64, depth: int = 4):
        super().__init__()
        self.embed = torch.nn.Embedding(VOCAB, width)
        self.blocks = torch.nn.ModuleList(Block(width) for _ in range(depth))
        self.head = torch.nn.Linear(width, VOCAB)

    def forward(self, ids):
        x = self.embed(ids)
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def batches(steps: int, batch: int, long_at: int, long: int, generator):
    for step, n in enumerate(lengths(steps, 16, 24)):
        yield torch.randint(0, VOCAB, (batch, long if step == long_at else n), generator=generator)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--facts")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--accelerate", action="store_true", help="through accelerate.Accelerator")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    torch.manual_seed(0)
    device = torch.device(args.device)
    if device.type == "cuda" and "LOCAL_RANK" in os.environ:
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    model = TinyLM().to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    accelerator = None
    if args.accelerate:
        from accelerate import Accelerator

        accelerator = Accelerator(cpu=True)
        model, optimizer = accelerator.prepare(model, optimizer)
    elif "RANK" in os.environ:
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
        model = torch.nn.parallel.DistributedDataParallel(model)
    generator = torch.Generator().manual_seed(1)
    for ids in batches(args.steps, 8, args.steps - 2, 128, generator):
        ids = ids.to(device)
        logits = model(ids[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), ids[:, 1:].reshape(-1))
        if accelerator is not None:
            accelerator.backward(loss)
        else:
            loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    inner = getattr(model, "module", model)
    if int(os.environ.get("RANK", "0")) == 0:
        os.makedirs(args.output_dir, exist_ok=True)
        torch.save(inner.state_dict(), os.path.join(args.output_dir, "model.pt"))
    write_facts(args.facts, weights=storage_bytes(inner.parameters()),
                optimizer=storage_bytes(optimizer_state(optimizer)))
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
