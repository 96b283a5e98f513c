"""Device memory outside PyTorch reaches the guard: a cudaMalloc made
outside torch (through the runtime, as a CUDA library would) is seen by the
preload library, and the guard's step observations and the summary carry it
as non_torch. Run under `oomguard run --simulate ... --mode observe`."""

import ctypes
import json
import sys

import torch

import oomguard

OUTSIDE = 64 << 20


def main(out_path):
    torch.cuda.init()
    runtime = ctypes.CDLL("libcudart.so.13", mode=ctypes.RTLD_GLOBAL)
    pointer = ctypes.c_void_p()
    assert runtime.cudaMalloc(ctypes.byref(pointer), ctypes.c_size_t(OUTSIDE)) == 0
    model = torch.nn.Sequential(torch.nn.Linear(256, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256)).cuda()
    optimizer = torch.optim.AdamW(model.parameters())
    for _ in range(3):
        model(torch.randn(32, 256, device="cuda")).sum().backward()
        optimizer.step()
        optimizer.zero_grad()
    observations = oomguard.guard.observations()
    with open(out_path, "w") as f:
        json.dump({"non_torch_now": oomguard._C.non_torch_bytes(0),
                   "observed": [o["non_torch"] for o in observations],
                   "torch_reserved": torch.cuda.memory_reserved()}, f)


if __name__ == "__main__":
    main(sys.argv[1])
