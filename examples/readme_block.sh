#!/usr/bin/env bash
# Prints the body of README.md's first ```LANG block after the line MARKER
# (an HTML comment that names the block), for the tests that run or compare
# README's code: readme_block.sh MARKER LANG
set -euo pipefail
awk -v marker="$1" -v fence='```'"$2" '
  $0 == marker {on = 1; next}
  on && $0 == fence {inside = 1; next}
  inside && /^```/ {exit}
  inside {print}' README.md
