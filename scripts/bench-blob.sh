#!/usr/bin/env bash
# make bench-blob: `kibaverify sign-blob` and `verify-blob` (key-based) of a BENCH_BLOB_MB (1024) MB file beside
# `sha256sum` and `cosign sign-blob --tlog-upload=false` of the same file with the same key. Prints the best of
# BENCH_BLOB_RUNS (3) runs of each with its peak memory, and kibaverify's hashing speed against sha256sum's
# (target >= 80 %). The file is streamed, so kibaverify's memory does not grow with it (sign-blob's includes the
# 64 MiB scrypt needs to decrypt the key). Expects target/release/kibaverify (the make target builds it).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/peers/lib.sh
. scripts/peers/lib.sh

KIBAVERIFY="${KIBAVERIFY:-target/release/kibaverify}"
MB="${BENCH_BLOB_MB:-1024}"
RUNS="${BENCH_BLOB_RUNS:-3}"
[ -x "$KIBAVERIFY" ] || { echo "bench-blob: $KIBAVERIFY is missing (run \`make bench-blob\`)" >&2; exit 2; }
COSIGN="$(peer_bin cosign)" || { echo "bench-blob: the cosign peer is missing (make peers)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench-blob: /usr/bin/time is missing (apt-get install time)" >&2; exit 2; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/kibaship-bench-blob.XXXXXX")"
# (This trap replaces lib.sh's, so its work directory is removed here too.)
cleanup() { rm -rf "$WORK" "$SMOKE_WORK"; }
trap cleanup EXIT
cd "$WORK"
export COSIGN_PASSWORD=bench
"$OLDPWD/$KIBAVERIFY" generate-key-pair --output-key-prefix bench >/dev/null
head -c "$((MB * 1024 * 1024))" /dev/urandom >blob
cat blob >/dev/null # in the page cache for every tool alike

# best_of NAME COMMAND...: runs COMMAND RUNS times, prints the fastest wall time and its peak RSS (kept in BEST).
declare -A BEST
best_of() {
  local name="$1" best="" rss="" t m
  shift
  for _ in $(seq "$RUNS"); do
    /usr/bin/time -f "%e %M" -o time.out "$@" >/dev/null 2>run.err || { cat run.err >&2; exit 1; }
    read -r t m <time.out
    if [ -z "$best" ] || awk -v a="$t" -v b="$best" 'BEGIN { exit !(a < b) }'; then best="$t" rss="$m"; fi
  done
  printf '%-34s %7.2f s  %6d MB peak\n' "$name" "$best" "$((rss / 1024))"
  BEST[$name]="$best"
}

echo "bench-blob: a $MB MB file, best of $RUNS runs"
best_of "sha256sum" sha256sum blob
best_of "kibaverify sign-blob" "$OLDPWD/$KIBAVERIFY" sign-blob blob --key bench.key --bundle ours.json
best_of "kibaverify verify-blob" "$OLDPWD/$KIBAVERIFY" verify-blob blob --bundle ours.json --key bench.pub --insecure-ignore-tlog
best_of "cosign sign-blob" "$COSIGN" sign-blob --key bench.key --bundle theirs.json --tlog-upload=false \
  --use-signing-config=false --yes blob
# verify-blob is hashing and one signature check: its speed against sha256sum's.
awk -v k="${BEST[kibaverify verify-blob]}" -v s="${BEST[sha256sum]}" -v mb="$MB" 'BEGIN {
  printf "kibaverify verify-blob hashes at %.0f MB/s, %.0f %% of sha256sum (%.0f MB/s); target >= 80 %%\n",
    mb / k, 100 * s / k, mb / s }'
