#!/usr/bin/env bash
# Tekton Pipelines' six programs, each on its own: all are static (they run as the only file of their images),
# `nop` exits 0, and `entrypoint cp` copies a binary as a TaskRun's init container does (the copy runs). Real
# Tekton on the one-node cluster, a two-task PipelineRun passing a result, is tested by
# crates/testsupport/tests/cluster.rs (`docs/cluster.md`).
# shellcheck source=scripts/peers/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for bin in controller webhook entrypoint nop workingdirinit sidecarlogresults; do
  path="$(peer_bin tekton-pipelines "$bin")"
  step "$bin is static"
  if ldd "$path" >/dev/null 2>&1; then fail "$bin is dynamically linked: $(ldd "$path" | head -n 1)"; fi
done
run nop "$(peer_bin tekton-pipelines nop)"
run entrypoint-cp "$(peer_bin tekton-pipelines entrypoint)" cp "$(peer_bin tekton-pipelines nop)" "$SMOKE_WORK/nop-copy"
run nop-copy "$SMOKE_WORK/nop-copy"
pass "six static programs; nop runs; entrypoint cp copies a runnable binary"
