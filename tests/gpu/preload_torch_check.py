"""Run under liboomguard_preload.so on a GPU (see run_preload_gpu.sh), or on
the simulated device (tests/python/test_simulated_preload.py).

Does a few training steps, then writes what PyTorch saw to argv[1] (JSON):
max reserved bytes, the context measured as device-used-before-any-tensor,
and the step time. With --cublas it also creates a cuBLAS handle through
ctypes, outside PyTorch's allocator, whose workspace must show up as extra
segment bytes.
"""
import ctypes
import glob
import json
import os
import sys
import time

import torch


def train_steps(steps):
    model = torch.nn.Sequential(torch.nn.Linear(4096, 4096), torch.nn.ReLU(), torch.nn.Linear(4096, 4096)).cuda()
    opt = torch.optim.AdamW(model.parameters())
    x = torch.randn(256, 4096, device="cuda")
    times = []
    for _ in range(steps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        loss = model(x).square().mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def cublas_handle_outside_torch():
    # The cuBLAS torch loaded, by soname: the real one on a GPU, the stand-in
    # on the simulated device (opening the real one by path there would load
    # a second cuBLAS that cannot run on a simulated driver).
    try:
        lib = ctypes.CDLL("libcublas.so.13", mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
    except OSError:
        libs = glob.glob(os.path.join(os.path.dirname(torch.__file__), "..", "nvidia", "**", "libcublas.so.*"),
                         recursive=True)
        lib = ctypes.CDLL(libs[0] if libs else "libcublas.so")
    handle = ctypes.c_void_p()
    status = lib.cublasCreate_v2(ctypes.byref(handle))
    assert status == 0, f"cublasCreate_v2 returned {status}"
    return handle


def main():
    out_path = sys.argv[1]
    steps = int(os.environ.get("STEPS", "50"))
    torch.cuda.init()
    torch.cuda.synchronize()
    free, total = torch.cuda.mem_get_info()
    context = total - free  # before any tensor: the context and driver reservations
    step_s = train_steps(steps)
    result = {"max_reserved": torch.cuda.max_memory_reserved(), "reserved": torch.cuda.memory_reserved(),
              "context": context, "median_step_s": step_s}
    if "--cublas" in sys.argv:
        cublas_handle_outside_torch()
        torch.cuda.synchronize()
    with open(out_path, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
