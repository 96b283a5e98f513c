#!/usr/bin/env bash
# Runs every test: the C++ suites (also under AddressSanitizer with
# UndefinedBehaviorSanitizer, and under ThreadSanitizer) and the Python suites.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh

echo "== C++ tests"
(cd build && ctest --output-on-failure -j"$(nproc)")

for sanitizer in address thread; do
  echo "== C++ core tests under the ${sanitizer} sanitizer"
  cmake -S . -B "build-${sanitizer}" -DCMAKE_BUILD_TYPE=Debug -DOOMGUARD_SANITIZE="${sanitizer}" \
        -DOOMGUARD_WERROR=ON -DOOMGUARD_BUILD_BENCH=OFF >/dev/null
  cmake --build "build-${sanitizer}" -j"$(nproc)" >/dev/null
  (cd "build-${sanitizer}" && ctest -L core --output-on-failure -j"$(nproc)")
done

if compgen -G "tests/python/test_*.py" >/dev/null; then
  echo "== Python tests"
  python3 -m pytest -q tests/python
fi
