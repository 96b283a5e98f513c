#!/usr/bin/env bash
# Needs real hardware for CUPTI and the overhead ratios (check 4 times the GPU); checks 1-3 run on the simulated GPU in CI (tests/python/test_simulated_preload.py).
# GPU checks for the preload and CUPTI hooks. Needs a GPU, the CUDA toolkit,
# torch with CUDA, and a configured build: run from the repository root as
#   tests/gpu/run_preload_gpu.sh [BUILD_DIR]
# Prints one PASS/FAIL line per check and the overhead ratios; exits non-zero
# if any check fails.
set -euo pipefail
BUILD=${1:-build}
ROOT=$(pwd)
cmake --build "$BUILD" -j2 --target oomguard_preload oomguard_cupti
PRELOAD=$(realpath "$BUILD/hooks/preload/liboomguard_preload.so")
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
failures=0
check() { if python3 -c "import sys; sys.exit(0 if ($2) else 1)"; then echo "PASS $1"; else echo "FAIL $1: $2"; failures=$((failures+1)); fi; }
summary() { python3 -c "import json,sys; s=json.load(open('$1')); print(sum(d['$2'] for d in s['devices']))"; }

# 1. PyTorch under preload: segment peak == max_memory_reserved within 1 MiB + context.
LD_PRELOAD=$PRELOAD OOMGUARD_REPORT_DIR=$WORK/torch python3 tests/gpu/preload_torch_check.py "$WORK/torch.json"
seg=$(summary "$WORK/torch/preload-summary.json" peak_segment_bytes)
read -r reserved context base_step < <(python3 -c "import json; r=json.load(open('$WORK/torch.json')); print(r['max_reserved'], r['context'], r['median_step_s'])")
echo "peak segments=$seg torch max_reserved=$reserved context=$context"
check "segment peak matches torch.cuda.max_memory_reserved" "abs($seg - $reserved) <= (1 << 20) + $context"

# 2. A cuBLAS workspace made outside PyTorch's allocator shows up as non_torch beyond PyTorch's segments.
LD_PRELOAD=$PRELOAD OOMGUARD_REPORT_DIR=$WORK/cublas python3 tests/gpu/preload_torch_check.py "$WORK/cublas.json" --cublas
live=$(summary "$WORK/cublas/preload-summary.json" segment_bytes)
non_torch=$(python3 -c "import json; s=json.load(open('$WORK/cublas/preload-summary.json')); print(sum(d['current_by_category']['non_torch'] for d in s['devices']))")
reserved_now=$(python3 -c "import json; print(json.load(open('$WORK/cublas.json'))['reserved'])")
check "cuBLAS workspace visible as non_torch" "$non_torch == $live and $live > $reserved_now"

# 3. A C++ program (not Python) guarded with the preload only, with a budget.
nvcc -O2 -cudart shared -DWITH_CUPTI -I"$ROOT/hooks/cupti/include" -I"$ROOT/allocator/include" \
  tests/gpu/preload_only_program.cu -o "$WORK/program" \
  -L"$BUILD/hooks/cupti" -loomguard_cupti -L"$BUILD/allocator" -loomguard_core \
  -Xlinker -rpath -Xlinker "$(realpath "$BUILD/hooks/cupti"):$(realpath "$BUILD/allocator")"
if command -v oomguard >/dev/null && oomguard run --help 2>&1 | grep -q -- --preload-only; then
  OOMGUARD_REPORT_DIR=$WORK/cpp OOMGUARD_CONF=budget:128MiB oomguard run --preload-only -- "$WORK/program" 20 > "$WORK/cpp.out"
else  # the environment contract of docs/hooks.md, set by hand
  LD_PRELOAD=$PRELOAD OOMGUARD_REPORT_DIR=$WORK/cpp OOMGUARD_CONF=budget:128MiB "$WORK/program" 20 > "$WORK/cpp.out"
fi
refused=$(sed -n 's/^refused=//p' "$WORK/cpp.out")
mallocs=$(python3 -c "import json; print(json.load(open('$WORK/cpp/preload-summary.json'))['calls']['cudaMalloc'])")
check "C++ program: every 256 MiB cudaMalloc refused by a 128 MiB budget" "$refused == 20 and $mallocs == 20"

# 4. Overhead as ratios (median step time / time per iteration).
STEPS=100 python3 tests/gpu/preload_torch_check.py "$WORK/plain.json"
STEPS=100 LD_PRELOAD=$PRELOAD OOMGUARD_REPORT_DIR=$WORK/ovh python3 tests/gpu/preload_torch_check.py "$WORK/pre.json"
python3 -c "import json; a=json.load(open('$WORK/plain.json'))['median_step_s']; b=json.load(open('$WORK/pre.json'))['median_step_s']; print(f'training step overhead, preload/plain: {b/a:.4f}')"
plain=$("$WORK/program" 200 | sed -n 's/^seconds_per_iteration=//p')
cupti=$("$WORK/program" 200 cupti | sed -n 's/^seconds_per_iteration=//p')
pre=$(LD_PRELOAD=$PRELOAD OOMGUARD_REPORT_DIR=$WORK/ovh2 "$WORK/program" 200 | sed -n 's/^seconds_per_iteration=//p')
python3 -c "print(f'alloc+kernel loop overhead, preload/plain: {$pre/$plain:.4f}, cupti/plain: {$cupti/$plain:.4f}')"

[ "$failures" -eq 0 ]
