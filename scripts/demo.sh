#!/usr/bin/env bash
# make demo: starts a plain registry with kibaship-harness (state in .demo/registry), exports its address as
# KIBASHIP_REGISTRY, runs each step in scripts/demo.d in name order, and stops the registry on exit (and the
# buildkitd of step 50, `kibaship-harness buildkit start`, state in .demo/buildkit, if a step left it running).
# `make demo` has already built target/release/kibaverify and kibaship-step; the harness is built here.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

export KIBASHIP_DEMO_DIR="$ROOT/.demo"
export KIBASHIP_HARNESS="$ROOT/target/release/kibaship-harness"
export KIBAVERIFY="$ROOT/target/release/kibaverify"
STATE="$KIBASHIP_DEMO_DIR/registry"
BUILDKIT_STATE="$KIBASHIP_DEMO_DIR/buildkit"

heading() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

heading "building the registry harness"
"${CARGO:-cargo}" build --release --locked --quiet -p kibaship-testsupport --bin kibaship-harness
[ -x "$KIBAVERIFY" ] || { echo "demo: $KIBAVERIFY is missing; run \`make demo\` (it builds it first)" >&2; exit 1; }

mkdir -p "$KIBASHIP_DEMO_DIR"
# A demo interrupted earlier may have left its registry or buildkitd running.
"$KIBASHIP_HARNESS" buildkit stop --state-dir "$BUILDKIT_STATE" >/dev/null 2>&1 || true
"$KIBASHIP_HARNESS" registry stop --state-dir "$STATE" >/dev/null 2>&1 || true

current_step="starting the registry"
finish() {
  status=$?
  "$KIBASHIP_HARNESS" buildkit stop --state-dir "$BUILDKIT_STATE" >/dev/null 2>&1 || true
  "$KIBASHIP_HARNESS" registry stop --state-dir "$STATE" >/dev/null 2>&1 || true
  if [ "$status" -ne 0 ]; then
    printf '\n\033[1;31mdemo FAILED\033[0m in %s (exit %s); the registry log is %s\n' \
      "$current_step" "$status" "$STATE/registry.log" >&2
    if [ -f "$BUILDKIT_STATE/buildkitd.log" ]; then
      printf 'the buildkitd log is %s\n' "$BUILDKIT_STATE/buildkitd.log" >&2
    fi
  fi
  exit "$status"
}
trap finish EXIT

heading "starting docker-registry (CNCF distribution) on 127.0.0.1"
eval "$("$KIBASHIP_HARNESS" registry start --mode plain --state-dir "$STATE")"
export KIBASHIP_REGISTRY
echo "registry: http://$KIBASHIP_REGISTRY (storage $STATE/storage)"

for step in scripts/demo.d/*.sh; do
  [ -e "$step" ] || continue
  current_step="$step"
  heading "$(basename "$step" .sh)"
  bash "$step"
done
current_step="stopping the registry"
heading "done: every step passed; stopping the registry"
