"""On a GPU: the cost of an alloc+free pair that the cache serves, for
oomguard's caching allocator (through its C ABI), PyTorch's native caching
allocator and raw cudaMalloc/cudaFree, with the same sizes, in one run. All
three are called through Python, so the ratios compare like with like.

    python3 bench/gpu_cache_hit.py --core-lib build-gpu/allocator/liboomguard_core.so

It runs on the simulated GPU too (docs/simulator.md; CI runs it there with
few pairs, tests/python/test_simulated_gpu_scripts.py): the ratios then
compare host-side costs over a device that does no work, and are printed as
simulated-device figures, never GPU figures.
"""
import argparse
import ctypes
import os
import random
import statistics
import time

import torch


def run(alloc, free, sizes, outstanding, pairs):
    live = [(alloc(s), s) for s in sizes[:outstanding]]
    rng = random.Random(2)
    k = outstanding
    def step():
        nonlocal k
        i = rng.randrange(outstanding)
        free(*live[i])
        s = sizes[k % len(sizes)]
        k += 1
        live[i] = (alloc(s), s)
    for _ in range(outstanding * 4):
        step()
    t0 = time.perf_counter_ns()
    for _ in range(pairs):
        step()
    elapsed = (time.perf_counter_ns() - t0) / pairs
    for p, s in live:
        free(p, s)
    return elapsed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--core-lib", required=True)
    parser.add_argument("--outstanding", type=int, default=1000)
    parser.add_argument("--pairs", type=int, default=20000)
    args = parser.parse_args()
    torch.cuda.init()
    rng = random.Random(1)
    sizes = [rng.randint(1, 64 << 20) for _ in range(args.outstanding * 8)]

    lib = ctypes.CDLL(args.core_lib)
    lib.oomguard_malloc.restype = ctypes.c_void_p
    lib.oomguard_malloc.argtypes = [ctypes.c_size_t, ctypes.c_int, ctypes.c_void_p]
    lib.oomguard_free.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_void_p]
    lib.oomguard_configure.argtypes = [ctypes.c_char_p]
    assert lib.oomguard_configure(b"upstream:cuda") == 0
    ours = lambda s: lib.oomguard_malloc(s, 0, None)
    ours_free = lambda p, s: lib.oomguard_free(p, s, 0, None)

    torch_alloc = lambda s: torch.cuda.caching_allocator_alloc(s, 0)
    torch_free = lambda p, s: torch.cuda.caching_allocator_delete(p)

    cudart = ctypes.CDLL("libcudart.so.13")
    def raw_alloc(s):
        p = ctypes.c_void_p()
        assert cudart.cudaMalloc(ctypes.byref(p), ctypes.c_size_t(s)) == 0
        return p.value
    raw_free = lambda p, s: cudart.cudaFree(ctypes.c_void_p(p))

    results = {}
    for name, a, f in [("oomguard", ours, ours_free), ("torch native", torch_alloc, torch_free),
                       ("cudaMalloc/cudaFree", raw_alloc, raw_free)]:
        pairs = args.pairs if name != "cudaMalloc/cudaFree" else max(1000, args.pairs // 20)
        results[name] = statistics.median(run(a, f, sizes, args.outstanding, pairs) for _ in range(3))
    simulated = os.environ.get("OOMGUARD_SIMULATE")
    where = f"simulated device ({simulated}), not GPU figures" if simulated else "GPU"
    print(f"{where}: {torch.cuda.get_device_name(0)}; {args.outstanding} outstanding, sizes 1 B..64 MiB")
    for name, ns in results.items():
        print(f"{name:24s} {ns:10.0f} ns/pair  x torch native {ns / results['torch native']:.3f}")


if __name__ == "__main__":
    main()
