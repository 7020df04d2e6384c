#!/usr/bin/env bash
# The GPU check: build everything CMake builds against the CUDA LibTorch of
# the machine's Python torch wheel, run every test (the CUDA ones included)
# and record what ran, with the device's name.
#
#   tools/gpu_check.sh stage       here (CPU machine): copies Debian's
#                                  GoogleTest sources into .gpu/ and unpacks
#                                  Debian's Abseil and stb headers there
#                                  (.gpu/sysroot; ignored by git; name .gpu
#                                  in the device tool's carry)
#   tools/gpu_check.sh run DIR     on the GPU machine: build in build-gpu/,
#                                  ctest, the CUDA tests and benchmarks, logs
#                                  into DIR (e.g. "$OUT")
#
# Through the device tool (docs/development.md, CUDA): run with carry [".gpu"] and the
# command `bash tools/gpu_check.sh run "$OUT"`.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
  stage)
    src=/usr/src/googletest
    [[ -f $src/CMakeLists.txt ]] || { echo "gpu_check: $src missing (apt install googletest)" >&2; exit 1; }
    rm -rf .gpu && mkdir -p .gpu/debs .gpu/sysroot && cp -r "$src" .gpu/googletest
    # Abseil (headers, CMake config, shared libraries: needs glibc >= 2.34
    # there) and stb_image's header, for the layers and experiments; Google
    # Benchmark for the benchmarks.
    (cd .gpu/debs && apt-get download libabsl-dev libabsl20220623 libstb-dev \
      libbenchmark-dev libbenchmark1debian 2>&1 \
      | grep -v "unsandboxed" || true)
    for deb in .gpu/debs/*.deb; do dpkg-deb -x "$deb" .gpu/sysroot; done
    rm -rf .gpu/debs
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
      -DINDEXGRAD_GTEST_SOURCE="$PWD/.gpu/googletest" \
      -Dabsl_DIR="$PWD/.gpu/sysroot/usr/lib/x86_64-linux-gnu/cmake/absl" \
      -DINDEXGRAD_STB_INCLUDE="$PWD/.gpu/sysroot/usr/include" \
      -Dbenchmark_DIR="$PWD/.gpu/sysroot/usr/lib/x86_64-linux-gnu/cmake/benchmark" \
      > "$out/cmake.log" 2>&1 \
      || { tail -40 "$out/cmake.log"; exit 1; }
    grep -E "IndexGrad|GoogleTest" "$out/cmake.log" || true
    cmake --build build-gpu -j "$(nproc)" > "$out/build.log" 2>&1 || { tail -60 "$out/build.log"; exit 1; }
    status=0
    ctest --test-dir build-gpu --output-on-failure -j 4 > "$out/ctest.log" 2>&1 || status=$?
    tail -25 "$out/ctest.log"
    # The CUDA tests alone, each binary's lines (SKIPPED would mean no device).
    for t in build-gpu/*_test; do
      "$t" --gtest_filter='*Cuda*' 2>&1 | grep -E "^\[ +(OK|FAILED|SKIPPED) +\]" || true
    done | tee "$out/cuda_tests.log"
    # The CUDA benchmarks, with the card's memory bandwidth for of_peak.
    case "$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)" in
      *H200*) export INDEXGRAD_PEAK_GBPS=4800 ;;
      *H100*) export INDEXGRAD_PEAK_GBPS=3350 ;;
    esac
    for b in build-gpu/*_benchmark; do
      [[ -x $b ]] || continue
      echo "== $b"
      timeout 300 "$b" --benchmark_filter=Cuda --benchmark_min_time=0.2 2>&1 || true
    done > "$out/cuda_benchmarks.txt"
    grep -E "Cuda" "$out/cuda_benchmarks.txt" | head -40 || true
    exit $status
    ;;
  *)
    echo "usage: tools/gpu_check.sh stage | run OUTPUT_DIR" >&2
    exit 2
    ;;
esac
