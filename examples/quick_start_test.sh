#!/usr/bin/env bash
# The README's quick start learns I, and README.md quotes it verbatim.
set -euo pipefail
examples/quick_start
quoted="$(examples/readme_block.sh '<!-- examples/quick_start.cc -->' cpp)"
if [[ "$quoted" != "$(cat examples/quick_start.cc)" ]]; then
  echo "README.md's quick start differs from examples/quick_start.cc:" >&2
  diff <(printf '%s\n' "$quoted") examples/quick_start.cc >&2 || true
  exit 1
fi
echo "README quotes examples/quick_start.cc"
