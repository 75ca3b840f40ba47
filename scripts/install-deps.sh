#!/usr/bin/env bash
# Install the Debian 12 packages nncc needs, only those that are missing.
#   scripts/install-deps.sh          build and `nncc train` (compiler, libraries, Fashion-MNIST)
#   scripts/install-deps.sh --test   also what the test suite uses (clang, numpy, h5py, and
#                                    scikit-learn for its housing CSV, libclang for the C-hook check)
# Runs apt-get through sudo when not root.
set -euo pipefail
packages=(build-essential cmake pkg-config libyaml-dev libopenblas-dev libhdf5-dev zlib1g-dev
          dataset-fashion-mnist)
if [[ "${1:-}" == "--test" ]]; then
  packages+=(clang libclang-dev python3 python3-numpy python3-h5py python3-sklearn)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if (( ${#missing[@]} == 0 )); then
  exit 0
fi
echo "installing: ${missing[*]}"
as_root=()
[[ $(id -u) -eq 0 ]] || as_root=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
