#!/usr/bin/env bash
# One TLS and crypto stack: rustls on aws-lc-rs. Fails when any other stack is in the build graph of the
# workspace, for any target, with normal, build or dev dependencies.
#
# Cargo.lock still lists `ring` (through quinn-proto and rustls-webpki): cargo writes optional
# dependencies that only a weak feature (`quinn?/rustls-aws-lc-rs` in reqwest) names into the lock file
# although nothing enables them (cargo issue 10801), so the lock file is not the measure; this graph is.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
for crate in ring openssl openssl-sys native-tls boring-sys; do
  # `cargo tree -i X` prints nothing (and a warning) when X is not in the graph.
  found=$(cargo tree --workspace --locked --target all -e normal,build,dev -i "$crate" 2>/dev/null || true)
  if [ -n "$found" ]; then
    echo "check-crypto-stack: $crate is in the build graph:" >&2
    echo "$found" >&2
    status=1
  fi
done
[ "$status" -eq 0 ] && echo "check-crypto-stack: rustls on aws-lc-rs only (no ring, openssl or native-tls in the build graph)"
exit "$status"
