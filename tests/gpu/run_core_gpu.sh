#!/usr/bin/env bash
# Needs real hardware: it prints GPU timings and the GPU's name for docs/performance.md; its tests run on the simulated GPU in CI (tests/gpu/CMakeLists.txt).
# On a machine with a GPU: build, then run the core's GPU tests and benchmarks
# and print the figures to record in docs/performance.md (with the GPU's name).
set -euo pipefail
cd "$(dirname "$0")/../.."
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-gpu -j"$(nproc)" --target test_gpu_allocator test_cuda_driver oomguard_gpu_bench oomguard_bench
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
./build-gpu/tests/cpp/test_cuda_driver
./build-gpu/tests/gpu/test_gpu_allocator
./build-gpu/tests/gpu/oomguard_gpu_bench
if python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
  python3 bench/gpu_cache_hit.py --core-lib build-gpu/allocator/liboomguard_core.so
fi
