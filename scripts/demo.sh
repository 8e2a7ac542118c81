#!/usr/bin/env bash
# make demo: placeholder until the registry harness lands; runs each step in scripts/demo.d in order.
set -euo pipefail
cd "$(dirname "$0")/.."
for step in scripts/demo.d/*.sh; do
  [ -e "$step" ] || continue
  echo "== $(basename "$step")"
  bash "$step"
done
