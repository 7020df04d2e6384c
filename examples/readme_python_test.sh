#!/usr/bin/env bash
# Runs README.md's Python snippet (the ```python block after the
# "<!-- python quick start -->" line) under Debian's /usr/bin/python3 against
# the built ops library (argv[1]), in place of bazel-bin/kernels/.
set -euo pipefail
lib="$1"
snippet="$(examples/readme_block.sh '<!-- python quick start -->' python)"
[[ -n "$snippet" ]] || { echo "README.md has no python quick start block" >&2; exit 1; }
grep -q 'bazel-bin/kernels/libindexgrad.so' <<<"$snippet" ||
  { echo "the snippet no longer loads bazel-bin/kernels/libindexgrad.so" >&2; exit 1; }
/usr/bin/python3 - <<PY
${snippet//bazel-bin\/kernels\/libindexgrad.so/$lib}
assert y.shape == (5, 4), y.shape
assert torch.allclose(y[:, 0], 2 * x[:, 2]) and torch.allclose(y[:, 3], -x[:, 0])
assert values.grad.shape == (1, 2)
print("README's Python snippet runs: y", tuple(y.shape), "values.grad", values.grad.tolist())
PY
