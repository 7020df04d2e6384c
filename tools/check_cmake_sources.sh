#!/usr/bin/env bash
# Fails when a C++ source that Bazel compiles is missing from the CMake build
# (the GPU machine's build), so that a new or renamed file cannot break it
# silently. Configures CMake here (CPU LibTorch, no CUDA), reads the files it
# compiles from compile_commands.json, and compares them with the .cc/.cpp
# sources of every Bazel target. CUDA sources (kernels/*/cuda/) are checked
# against CMakeLists.txt's CUDA glob instead, since only a CUDA LibTorch
# configures them.
#
#   tools/check_cmake_sources.sh        # run by .ci/run
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Compiled by Bazel only, on purpose (with the reason).
BAZEL_ONLY=(
  experiments/common/main_probe.cc  # a test helper common_test runs; CMake skips that case
)

build="$(mktemp -d)"
trap 'rm -rf "$build"' EXIT
if ! cmake -S . -B "$build" -DINDEXGRAD_CUDA=OFF -DCMAKE_EXPORT_COMPILE_COMMANDS=ON \
    >"$build/configure.log" 2>&1; then
  cat "$build/configure.log" >&2
  echo "check_cmake_sources: cmake configure failed" >&2
  exit 1
fi
for part in "IndexGrad layers, operators, experiments: ON"; do
  grep -q "$part" "$build/configure.log" || {
    echo "check_cmake_sources: CMake did not configure '$part' (missing Abseil, stb, ...)" >&2
    exit 1
  }
done

cmake_sources="$(grep -o '"file": "[^"]*"' "$build/compile_commands.json" |
  sed -e 's/"file": "//' -e 's/"$//' -e "s|^$PWD/||" | sort -u)"
bazel_sources="$(bazel query --output=label 'kind("source file", deps(//...) except //third_party/...)' 2>/dev/null |
  grep -E '^//[^@]*\.(cc|cpp|cu)$' | sed -e 's|^//||' -e 's|:|/|' -e 's|^/||' | sort -u)"

missing=()
while IFS= read -r src; do
  [[ -z "$src" ]] && continue
  for skip in "${BAZEL_ONLY[@]}"; do [[ "$src" == "$skip" ]] && continue 2; done
  if [[ "$src" == kernels/*/cuda/* ]]; then
    # CMakeLists.txt: file(GLOB ... kernels/*/cuda/*.cu kernels/*/cuda/*.cpp)
    [[ "$src" =~ ^kernels/[^/]+/cuda/[^/]+\.(cu|cpp)$ ]] || missing+=("$src")
    continue
  fi
  grep -qxF "$src" <<<"$cmake_sources" || missing+=("$src")
done <<<"$bazel_sources"

count=$(wc -l <<<"$bazel_sources")
if ((${#missing[@]} > 0)); then
  echo "check_cmake_sources: compiled by Bazel but not by CMakeLists.txt:" >&2
  printf '  %s\n' "${missing[@]}" >&2
  exit 1
fi
echo "check_cmake_sources: all $count Bazel C++/CUDA sources are in the CMake build"
