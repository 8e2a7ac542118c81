#!/usr/bin/env bash
# make bench-audit (issue 18): `kibaverify audit` of BENCH_AUDIT_WORKLOADS (1,000) Deployments using
# BENCH_AUDIT_IMAGES (200) distinct images, each signed with a key in both layouts (legacy .sig and bundle
# referrer), on the local registry with the referrers API (go-containerregistry's). Target: wall time
# <= 2 x (images x one warm `kibaverify verify`) / cores, i.e. dedupe and concurrency must pay. Printed beside a
# shell loop of the real `cosign verify` over the same images, in the same run.
# Expects $BENCH_AUDIT_BIN_DIR/{kibaverify,kibaship-harness} (default target/release; the make target builds them).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/peers/lib.sh
. scripts/peers/lib.sh

BIN_DIR="$(cd "${BENCH_AUDIT_BIN_DIR:-target/release}" 2>/dev/null && pwd)" ||
  { echo "bench-audit: ${BENCH_AUDIT_BIN_DIR:-target/release} is missing (run \`make bench-audit\`)" >&2; exit 2; }
KIBAVERIFY="$BIN_DIR/kibaverify"
HARNESS="$BIN_DIR/kibaship-harness"
IMAGES="${BENCH_AUDIT_IMAGES:-200}"
WORKLOADS="${BENCH_AUDIT_WORKLOADS:-1000}"
for tool in "$KIBAVERIFY" "$HARNESS"; do
  [ -x "$tool" ] || { echo "bench-audit: $tool is missing (run \`make bench-audit\`)" >&2; exit 2; }
done
COSIGN="$(peer_bin cosign)" || { echo "bench-audit: the cosign peer is missing (make peers)" >&2; exit 2; }
CRANE="$(peer_bin crane)" || { echo "bench-audit: the crane peer is missing (make peers)" >&2; exit 2; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/kibaship-bench-audit.XXXXXX")"
# (This trap replaces lib.sh's, so its work directory is removed here too.)
cleanup() { "$HARNESS" registry stop --state-dir "$WORK/registry" >/dev/null 2>&1 || true; rm -rf "$WORK" "$SMOKE_WORK"; }
trap cleanup EXIT
export DOCKER_CONFIG="$WORK/no-docker-config" COSIGN_PASSWORD=bench-audit
unset COSIGN_REPOSITORY SIGSTORE_ID_TOKEN

eval "$("$HARNESS" registry start --mode referrers --state-dir "$WORK/registry")"
REG="$KIBASHIP_REGISTRY"
BASE="$("$HARNESS" fixtures push --registry "$REG" | grep '/fixtures/app:' | head -1)"
[ -n "$BASE" ] || { echo "bench-audit: no fixture image pushed" >&2; exit 2; }
echo "registry: ggcr-registry on $REG; $IMAGES images, $WORKLOADS workloads; cores: $(nproc)"
(cd "$WORK" && "$KIBAVERIFY" generate-key-pair --output-key-prefix bench >/dev/null)

# $IMAGES distinct images (the fixture with one label more each: a new config, a new digest), each signed in
# both layouts; their references by digest for cosign.
: > "$WORK/images.txt"
for i in $(seq 1 "$IMAGES"); do
  image="$REG/bench/app-$i:v1"
  "$CRANE" mutate --insecure --label "kibaship.bench=$i" --tag "$image" "$BASE" >/dev/null 2>"$WORK/crane.err" ||
    { cat "$WORK/crane.err" >&2; exit 1; }
  (cd "$WORK" && "$KIBAVERIFY" sign --insecure-registry "$REG" --key bench.key --layout both "$image" >/dev/null 2>"$WORK/sign.err") ||
    { cat "$WORK/sign.err" >&2; exit 1; }
  echo "$image" >> "$WORK/images.txt"
done
echo "bench-audit: $IMAGES images pushed and signed (both layouts)" >&2

# $WORKLOADS Deployments in 10 namespaces, image i used by every $IMAGES-th workload.
python3 - "$WORK" "$IMAGES" "$WORKLOADS" <<'PY'
import sys
work, images, workloads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
refs = open(f"{work}/images.txt").read().split()
with open(f"{work}/workloads.yaml", "w") as f:
    for w in range(workloads):
        f.write(f"""---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: w{w}, namespace: ns{w % 10}}}
spec:
  selector: {{matchLabels: {{app: w{w}}}}}
  template:
    metadata: {{labels: {{app: w{w}}}}}
    spec:
      containers: [{{name: main, image: "{refs[w % images]}"}}]
""")
PY

now() { date +%s.%N; }
first="$(head -1 "$WORK/images.txt")"
verify_one() {
  (cd "$WORK" && "$KIBAVERIFY" verify --insecure-registry "$REG" --key bench.pub --insecure-ignore-tlog "$1" >/dev/null)
}
verify_one "$first" # warm: page cache, registry
best_verify=""
for _ in 1 2 3; do
  t0=$(now); verify_one "$first"; t1=$(now)
  best_verify="$(python3 -c "b='$best_verify'; d=$t1-$t0; print(d if not b else min(float(b), d))")"
done

t0=$(now)
status=0
(cd "$WORK" && "$KIBAVERIFY" audit --insecure-registry "$REG" --key bench.pub --insecure-ignore-tlog \
  --manifests workloads.yaml --output json > audit.json 2> audit.err) || status=$?
t1=$(now)
[ "$status" -eq 0 ] || { echo "bench-audit: kibaverify audit exited $status" >&2; cat "$WORK/audit.err" >&2; exit 1; }
audit_time="$(python3 -c "print($t1 - $t0)")"

t0=$(now)
while read -r image; do
  HOME="$WORK" "$COSIGN" verify --key "$WORK/bench.pub" --insecure-ignore-tlog --allow-http-registry "$image" >/dev/null 2>&1 ||
    { echo "bench-audit: cosign verify $image failed" >&2; exit 1; }
done < "$WORK/images.txt"
t1=$(now)
cosign_time="$(python3 -c "print($t1 - $t0)")"

python3 - "$WORK/audit.json" "$IMAGES" "$WORKLOADS" "$best_verify" "$audit_time" "$cosign_time" "$(nproc)" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
images, workloads = int(sys.argv[2]), int(sys.argv[3])
one, audit, cosign, cores = float(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]), int(sys.argv[7])
s = report["summary"]
target = 2 * images * one / cores
print(f"machine: {open('/proc/loadavg').read().split()[:3]} load average at the end")
print(f"{'figure':<66}{'measured':>12}{'target':>12}  verdict")
print(f"{'one warm kibaverify verify (best of 3)':<66}{one:>10.3f} s")
print(f"{f'kibaverify audit: {workloads} workloads, {images} images':<66}{audit:>10.3f} s{target:>10.3f} s  {'PASS' if audit <= target else 'MISS'}")
print(f"{f'shell loop of cosign verify over the {images} images':<66}{cosign:>10.3f} s")
print(f"{'verifications the audit ran (one per digest)':<66}{s['verifications']:>12}{images:>12}  {'PASS' if s['verifications'] == images else 'MISS'}")
admitted = s["answers"].get("admit", 0)
print(f"{'workloads admitted':<66}{admitted:>12}{workloads:>12}  {'PASS' if admitted == workloads else 'MISS'}")
PY
