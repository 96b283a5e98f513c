#!/usr/bin/env bash
# Installs everything oomguard needs on a fresh Debian 12 machine with the
# CUDA 13 toolkit and Python 3.11, then builds it. Safe to run again: it only
# installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

debian_packages=(cmake g++ make libfmt-dev nlohmann-json3-dev libcli11-dev libabsl-dev
                 libgtest-dev libgmock-dev libbenchmark-dev chromium)
missing=()
for p in "${debian_packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "oomguard: installing Debian packages: ${missing[*]}"
  sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH="/usr/local/cuda/bin:$PATH"
fi
command -v nvcc >/dev/null 2>&1 || { echo "oomguard: the CUDA 13 toolkit (nvcc) is required to compile the CUDA paths" >&2; exit 1; }

python3 -m pip install -q --disable-pip-version-check -r requirements.txt

# The C++ build: libraries, CLI, tests, benchmarks.
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOOMGUARD_WERROR=ON >/dev/null
cmake --build build -j"$(nproc)"

# The Python package (builds the torch extension against the installed torch).
if [ -f pyproject.toml ]; then
  python3 -m pip install -q --disable-pip-version-check --no-build-isolation .
fi
echo "oomguard: installed"
