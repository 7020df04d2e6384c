#!/usr/bin/env bash
# The GPU check: build everything CMake builds against the CUDA LibTorch of
# the machine's Python torch wheel, run every test (the CUDA ones included)
# and record what ran, with the device's name.
#
#   tools/gpu_check.sh stage       here (CPU machine): copies Debian's
#                                  GoogleTest sources into .gpu/ (ignored by
#                                  git; name it in the device tool's carry)
#   tools/gpu_check.sh run DIR     on the GPU machine: build in build-gpu/,
#                                  ctest, logs into DIR (e.g. "$OUT")
#
# Through the device tool (README, CUDA): run with carry [".gpu"] and the
# command `bash tools/gpu_check.sh run "$OUT"`.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
  stage)
    src=/usr/src/googletest
    [[ -f $src/CMakeLists.txt ]] || { echo "gpu_check: $src missing (apt install googletest)" >&2; exit 1; }
    rm -rf .gpu/googletest && mkdir -p .gpu && cp -r "$src" .gpu/googletest
    echo "gpu_check: staged $(du -sh .gpu | cut -f1) in .gpu/"
    ;;
  run)
    out=${2:?"usage: tools/gpu_check.sh run OUTPUT_DIR"}
    mkdir -p "$out"
    [[ -f .gpu/googletest/CMakeLists.txt ]] || { echo "gpu_check: .gpu/googletest missing: run 'tools/gpu_check.sh stage' here and carry .gpu" >&2; exit 1; }
    { nvidia-smi -L || true; python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no device")'; } \
      > "$out/device.txt" 2>&1
    cat "$out/device.txt"
    prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
    cmake -S . -B build-gpu -G Ninja -DCMAKE_PREFIX_PATH="$prefix" \
      -DINDEXGRAD_GTEST_SOURCE="$PWD/.gpu/googletest" > "$out/cmake.log" 2>&1 \
      || { tail -40 "$out/cmake.log"; exit 1; }
    grep -E "IndexGrad CUDA kernels|GoogleTest" "$out/cmake.log" || true
    cmake --build build-gpu -j "$(nproc)" > "$out/build.log" 2>&1 || { tail -60 "$out/build.log"; exit 1; }
    status=0
    ctest --test-dir build-gpu --output-on-failure -j 4 > "$out/ctest.log" 2>&1 || status=$?
    tail -25 "$out/ctest.log"
    # The CUDA tests alone, each binary's lines (SKIPPED would mean no device).
    for t in build-gpu/*_test; do
      "$t" --gtest_filter='*Cuda*' 2>&1 | grep -E "^\[ +(OK|FAILED|SKIPPED) +\]" || true
    done | tee "$out/cuda_tests.log"
    exit $status
    ;;
  *)
    echo "usage: tools/gpu_check.sh stage | run OUTPUT_DIR" >&2
    exit 2
    ;;
esac
