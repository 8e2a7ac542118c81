#!/usr/bin/env bash
# make bench-pipeline (issue 16, "Speed"): prints in one run, release binaries, against the issue's targets:
#  (a) our overhead per build around the BuildKit solve: `kibaship-step prepare` minus the `railpack prepare` it
#      runs, `kibaship-step secrets-hash`, and `kibaship-step build` minus the `buildctl` it runs (the dedupe key,
#      the registry lookups, the digest confirmation, the results): target <= 1 s; and a dedupe hit (identical
#      inputs: `kibaship-step build` end to end, buildctl not run): target <= 1 s;
#  (b) post-build on the built image: `kibaship-step scan` (trivy + gate + the vuln attestation signed with a key)
#      + `kibaverify sign --key` + `kibaverify attest --key` (SLSA provenance), against `trivy image` +
#      `cosign sign --key` + `cosign attest --key` of the same image and predicate (no transparency log for either):
#      target ours <= 1.5x theirs.
# The tool times inside (a) come from wrappers that time railpack and buildctl as kibaship-step runs them. Each
# figure is the median of BENCH_PIPELINE_RUNS runs (default 5). The start-up pieces are the demo's: the registry
# and buildkitd by kibaship-harness (scripts/demo.sh, scripts/demo.d/50-build.sh), the shell app of step 50, the
# trivy DB built by the trivy-db peer from testdata/trivy/vuln-list (as crates/step/tests/scan_driver.rs).
# Needs root (rootful buildkitd) and the peers buildkit, railpack, mise, trivy, trivy-db and cosign.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
RUNS="${BENCH_PIPELINE_RUNS:-5}"
CACHE="${KIBASHIP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kibaship}"
WORK="$ROOT/.demo/bench-pipeline"
STEP="$ROOT/target/release/kibaship-step"
KIBAVERIFY="$ROOT/target/release/kibaverify"
HARNESS="$ROOT/target/release/kibaship-harness"
REG_STATE="$WORK/registry"
BK_STATE="$WORK/buildkit"
REPOSITORY=kibaship/bench/hello

fail() { printf 'bench-pipeline: %s\n' "$*" >&2; exit 1; }
# peer NAME BINARY: the peer's binary in the cache (tools/peers.txt pins the version).
peer() {
  local path
  path="$CACHE/peers/$1-$(awk -v n="$1" '$1==n{print $2}' tools/peers.txt)/$2"
  [ -x "$path" ] || fail "the $1 peer is missing at $path (make peers)"
  echo "$path"
}
[ "$(id -u)" -eq 0 ] || fail "needs root (rootful buildkitd on runc, as make demo)"
peer buildkit buildctl >/dev/null
# trivy is also BuildKit's SBOM scanner in (a) (kibaship-harness buildkit start pushes it).
TRIVY="$(peer trivy trivy)"

echo "building release binaries (kibaship-step, kibaverify, kibaship-harness)"
"${CARGO:-cargo}" build --release --locked --quiet -p kibaship-step -p kibaverify
"${CARGO:-cargo}" build --release --locked --quiet -p kibaship-testsupport --bin kibaship-harness

"$HARNESS" buildkit stop --state-dir "$BK_STATE" >/dev/null 2>&1 || true
"$HARNESS" registry stop --state-dir "$REG_STATE" >/dev/null 2>&1 || true
rm -rf "$WORK" && mkdir -p "$WORK/ws/repo/apps" "$WORK/secrets" "$WORK/results" "$WORK/times"
cleanup() {
  "$HARNESS" buildkit stop --state-dir "$BK_STATE" >/dev/null 2>&1 || true
  "$HARNESS" registry stop --state-dir "$REG_STATE" >/dev/null 2>&1 || true
}
trap cleanup EXIT
eval "$("$HARNESS" registry start --mode plain --state-dir "$REG_STATE")"
REG="$KIBASHIP_REGISTRY"
eval "$("$HARNESS" buildkit start --registry "$REG" --state-dir "$BK_STATE")"
cp -r testdata/railpack/apps/shell "$WORK/ws/repo/apps/hello"
printf 'bench-npm-token-%s\n' "$RANDOM" >"$WORK/secrets/NPM_TOKEN"

# timed NAME REAL: a wrapper for REAL that appends its wall time (ns) to $WORK/times/NAME.
timed() {
  cat >"$WORK/$1-timed" <<EOF
#!/usr/bin/env bash
start=\$(date +%s%N)
status=0
"$2" "\$@" || status=\$?
echo \$((\$(date +%s%N) - start)) >>"$WORK/times/$1"
exit \$status
EOF
  chmod +x "$WORK/$1-timed"
  echo "$WORK/$1-timed"
}
RAILPACK_TIMED="$(timed railpack "$ROOT/scripts/peers/railpack-prepare.sh")"
BUILDCTL_TIMED="$(timed buildctl "$KIBASHIP_BUILDCTL")"
now_ns() { date +%s%N; }
# median FILE: the median of the numbers in FILE (ns), in ms with one decimal.
median() { sort -n "$1" | awk '{v[NR]=$1} END {m = (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2; printf "%.1f", m / 1e6}'; }
# run_timed NAME command...: runs it (output to $WORK/NAME.log), appends its wall time to $WORK/times/NAME.
run_timed() {
  local name=$1 start status=0
  shift
  start=$(now_ns)
  "$@" >"$WORK/$name.log" 2>&1 || status=$?
  echo $(($(now_ns) - start)) >>"$WORK/times/$name"
  [ "$status" -eq 0 ] || { tail -20 "$WORK/$name.log" >&2; fail "$name exited $status"; }
}

prepare() {
  "$STEP" prepare --source-dir "$WORK/ws/repo" --context-path apps/hello --railpack "$RAILPACK_TIMED" \
    --out-dir "$WORK/ws/railpack" --plan-path-result "$WORK/results/planPath" \
    --info-path-result "$WORK/results/infoPath" --build-secrets NPM_TOKEN
}
# build REVISION: kibaship-step build of the shell app at REVISION (a new revision is a new build).
build() {
  "$STEP" build --source-dir "$WORK/ws/repo" --context-path apps/hello \
    --plan "$(cat "$WORK/results/planPath")" --info "$(cat "$WORK/results/infoPath")" \
    --image-registry "$REG" --image-repository "$REPOSITORY" --revision "$1" \
    --source-url https://github.com/kibaship/kibaship --railpack-version "$KIBASHIP_RAILPACK_VERSION" \
    --cache-key tenant-bench --secrets-dir "$WORK/secrets" \
    --buildctl "$BUILDCTL_TIMED" --buildkit-host "$BUILDKIT_HOST" --insecure-registry \
    --metadata-file "$WORK/buildctl-metadata.json" \
    --image-result "$WORK/results/image" --digest-result "$WORK/results/digest" \
    --sbom-ref-result "$WORK/results/sbomRef" --build-duration-result "$WORK/results/buildDuration" \
    --build-secrets NPM_TOKEN
}

echo "(a) $RUNS builds of new revisions (BuildKit's cache warm after a first unmeasured one), then $RUNS dedupe hits"
prepare >"$WORK/warmup.log" 2>&1 || { tail -20 "$WORK/warmup.log" >&2; fail "warm-up prepare"; }
build 0000000000000000000000000000000000000000 >>"$WORK/warmup.log" 2>&1 || { tail -20 "$WORK/warmup.log" >&2; fail "warm-up build"; }
rm -f "$WORK/times/"*
for i in $(seq "$RUNS"); do
  run_timed prepare prepare
  run_timed secrets-hash "$STEP" secrets-hash --secrets-dir "$WORK/secrets"
  revision="$(printf '%040x' "$((0xbe0c000 + i))")"
  run_timed build build "$revision"
  grep -q '^outcome=built$' "$WORK/build.log" || fail "build $i did not build: $(cat "$WORK/build.log")"
done
last_revision="$revision"
for _ in $(seq "$RUNS"); do
  run_timed dedupe build "$last_revision"
  grep -q '^outcome=reused$' "$WORK/dedupe.log" || fail "the dedupe run built: $(cat "$WORK/dedupe.log")"
done
[ "$(wc -l <"$WORK/times/buildctl")" -eq "$RUNS" ] || fail "buildctl ran on a dedupe hit"
[ "$(wc -l <"$WORK/times/railpack")" -eq "$RUNS" ] || fail "railpack ran $(wc -l <"$WORK/times/railpack") times"
paste "$WORK/times/prepare" "$WORK/times/railpack" | awk '{print $1 - $2}' >"$WORK/times/prepare-overhead"
paste "$WORK/times/build" "$WORK/times/buildctl" | awk '{print $1 - $2}' >"$WORK/times/build-overhead"
paste "$WORK/times/prepare-overhead" "$WORK/times/secrets-hash" "$WORK/times/build-overhead" |
  awk '{print $1 + $2 + $3}' >"$WORK/times/overhead"

# verdict VALUE_MS TARGET_MS: ok or OVER.
verdict() { awk -v v="$1" -v t="$2" 'BEGIN { print (v <= t) ? "ok" : "OVER" }'; }
overhead="$(median "$WORK/times/overhead")"
dedupe="$(median "$WORK/times/dedupe")"
echo
echo "bench-pipeline: medians of $RUNS runs, ms ($(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg))"
printf '%-62s %10s\n' "(a) per build" ms
printf '  %-60s %10s\n' "kibaship-step prepare (wall)" "$(median "$WORK/times/prepare")" \
  "  of which railpack prepare (scripts/peers/railpack-prepare.sh)" "$(median "$WORK/times/railpack")" \
  "  prepare overhead" "$(median "$WORK/times/prepare-overhead")" \
  "kibaship-step secrets-hash" "$(median "$WORK/times/secrets-hash")" \
  "kibaship-step build (wall)" "$(median "$WORK/times/build")" \
  "  of which buildctl (the BuildKit solve and push)" "$(median "$WORK/times/buildctl")" \
  "  build overhead (key, lookups, digest confirmation, results)" "$(median "$WORK/times/build-overhead")"
printf '  %-60s %10s  target 1000: %s\n' "overhead per build (prepare + secrets-hash + build)" "$overhead" \
  "$(verdict "$overhead" 1000)" "dedupe hit, end to end (buildctl not run)" "$dedupe" "$(verdict "$dedupe" 1000)"
echo

image="$(cat "$WORK/results/image")"
digest="$(cat "$WORK/results/digest")"
target="${image%:*}@$digest"

echo "(b) post-build on $target: $RUNS runs each, ours and theirs alternating"
TRIVY_DB="$(peer trivy-db trivy-db)"
COSIGN="$(peer cosign cosign)"
mkdir -p "$WORK/trivy/vuln-list/cocoapods-specs/Specs" "$WORK/keys"
cp -r testdata/trivy/vuln-list/ghsa "$WORK/trivy/vuln-list/"
"$TRIVY_DB" build --only-update ghsa --cache-dir "$WORK/trivy/vuln-list" --output-dir "$WORK/trivy/cache/db" \
  --update-interval 87600h >"$WORK/trivy-db.log" 2>&1 || { tail "$WORK/trivy-db.log" >&2; fail "trivy-db build"; }
COSIGN_PASSWORD="bench-$RANDOM$RANDOM"
export COSIGN_PASSWORD
(cd "$WORK/keys" && "$KIBAVERIFY" generate-key-pair --output-key-prefix bench >/dev/null 2>&1) || fail "generate-key-pair"
KEY="$WORK/keys/bench.key"
printf 'version: 1\nfail-on-severity: high\n' >"$WORK/policy.yaml"
cat >"$WORK/provenance.json" <<JSON
{"buildDefinition": {"buildType": "https://kibaship.dev/bench/v1", "externalParameters": {"image": "$image"},
  "resolvedDependencies": []},
 "runDetails": {"builder": {"id": "https://kibaship.dev/bench"}, "metadata": {"invocationId": "bench-pipeline"}}}
JSON
ours() {
  run_timed ours-scan "$STEP" scan --image "$image" --digest "$digest" --policy "$WORK/policy.yaml" \
    --trivy "$TRIVY" --cache-dir "$WORK/trivy/cache" --offline true --insecure-registry true \
    --report-file "$WORK/report.json" --mode key --layout legacy --key-file "$KEY" \
    --verdict-result "$WORK/results/verdict"
  run_timed ours-sign "$KIBAVERIFY" sign --insecure-registry "$REG" --key "$KEY" "$target"
  run_timed ours-attest "$KIBAVERIFY" attest --insecure-registry "$REG" --key "$KEY" \
    --predicate "$WORK/provenance.json" --type slsaprovenance1 "$target"
}
COSIGN_FLAGS=(--key "$KEY" --tlog-upload=false --use-signing-config=false --new-bundle-format=false
  --allow-http-registry --yes)
theirs() {
  run_timed theirs-scan "$TRIVY" image --image-src remote --scanners vuln --format json --quiet \
    --disable-telemetry --output "$WORK/trivy-report.json" --cache-dir "$WORK/trivy/cache" --insecure \
    --skip-db-update --skip-java-db-update --offline-scan --skip-check-update --skip-version-check "$target"
  run_timed theirs-sign "$COSIGN" sign "${COSIGN_FLAGS[@]}" "$target"
  run_timed theirs-attest "$COSIGN" attest "${COSIGN_FLAGS[@]}" --predicate "$WORK/provenance.json" \
    --type slsaprovenance1 "$target"
}
for _ in $(seq "$RUNS"); do
  ours
  theirs
done
[ "$(cat "$WORK/results/verdict")" = pass ] || fail "the gate did not pass the built image"
for side in ours theirs; do
  paste "$WORK/times/$side-scan" "$WORK/times/$side-sign" "$WORK/times/$side-attest" |
    awk '{print $1 + $2 + $3}' >"$WORK/times/$side"
done

ours_ms="$(median "$WORK/times/ours")"
theirs_ms="$(median "$WORK/times/theirs")"
ratio="$(awk -v a="$ours_ms" -v b="$theirs_ms" 'BEGIN { printf "%.2f", a / b }')"
echo
echo "bench-pipeline: medians of $RUNS runs, ms ($(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg))"
printf '%-62s %10s %10s\n' "(b) post-build, one image" ours theirs
for part in scan sign attest; do
  printf '  %-60s %10s %10s\n' "$part" "$(median "$WORK/times/ours-$part")" "$(median "$WORK/times/theirs-$part")"
done
printf '  %-60s %10s %10s\n' "total (medians of the per-run totals)" "$ours_ms" "$theirs_ms"
printf '  %-60s %10s  target 1.50: %s\n' "ours / theirs" "$ratio" "$(verdict "$ratio" 1.5)"
echo "  ours: kibaship-step scan (trivy, gate, vuln attestation) + kibaverify sign + kibaverify attest"
echo "  theirs: trivy image + cosign sign + cosign attest ($("$COSIGN" version 2>/dev/null | awk '/GitVersion/{print $2}'), trivy $("$TRIVY" --version 2>/dev/null | awk 'NR==1{print $2}'))"
