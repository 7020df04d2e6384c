#!/usr/bin/env bash
# The README's quick start learns I, and README.md quotes it verbatim.
set -euo pipefail
examples/quick_start
# The ```cpp block of README.md that follows the "<!-- quick_start.cc -->" line.
quoted="$(awk '/<!-- examples\/quick_start.cc -->/ {on = 1; next}
              on && /^```cpp/ {inside = 1; next}
              inside && /^```/ {exit}
              inside {print}' README.md)"
if [[ "$quoted" != "$(cat examples/quick_start.cc)" ]]; then
  echo "README.md's quick start differs from examples/quick_start.cc:" >&2
  diff <(printf '%s\n' "$quoted") examples/quick_start.cc >&2 || true
  exit 1
fi
echo "README quotes examples/quick_start.cc"
