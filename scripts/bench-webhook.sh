#!/usr/bin/env bash
# make bench-webhook (issue 15): the admission webhook over TLS, as a release process of its own, loaded by
# another process (crates/webhook/examples/admission_load.rs), beside `cosign verify` run once per image, all in
# one run against go-containerregistry's registry (the ggcr-registry peer, referrers API on) on 127.0.0.1.
#
#   warm       facts cached: closed loop (BENCH_WARM_CONCURRENCY senders) for the throughput ceiling, then an
#              open loop at BENCH_WARM_RATE reviews/s for the p99 at that rate, and one at a tenth of it as a
#              control (a tail that does not shrink with the load is the machine's, not the webhook's work)
#   cold       BENCH_COLD_IMAGES distinct digests never seen, all at once; then BENCH_ONE_REQUESTS reviews of
#              one new digest at once, with the reads naming that digest (manifest, referrers, `.sig` tag)
#              counted in the registry's own request log (one line per request; each must happen once). That digest is reached through a proxy pausing each
#              response BENCH_ONE_PAUSE_MS (examples/registry_latency.rs), so that its verification is still
#              running when the last review arrives
#   per image  BENCH_SEQ_IMAGES new digests one after another (a review each), beside the same images checked
#              by `cosign verify --key` (one process per image: what a decision costs when it shells out)
#
# Prints the figures beside the targets, PASS or MISS each: a benchmark reports, it does not fail on a miss.
# BENCH_KEEP=1 keeps the work directory (logs, reviews, JSON of each run); BENCH_PERF=1 also records
# `perf record` of the webhook and the registry during each phase into it (options: BENCH_PERF_ARGS, default
# `-F 999 -g`; BENCH_WEBHOOK=path runs another build of the webhook, e.g. one with symbols; BENCH_WEBHOOK_ARGS
# adds options to its command line, e.g. `--registry-max-requests 8`). The webhook logs at `info` (a JSON line
# per decision) into a file of the work directory; BENCH_RUST_LOG sets another filter.
# Expects target/release/{kibaship-webhook,kibaship-harness,examples/admission_load} and the cosign, crane and
# ggcr-registry peers (`make bench-webhook` builds them all). See docs/webhook.md, "Speed".
set -euo pipefail
cd "$(dirname "$0")/.."

COLD_IMAGES="${BENCH_COLD_IMAGES:-100}"
ONE_REQUESTS="${BENCH_ONE_REQUESTS:-100}"
SEQ_IMAGES="${BENCH_SEQ_IMAGES:-20}"
WARM_SECONDS="${BENCH_WARM_SECONDS:-10}"
WARM_CONCURRENCY="${BENCH_WARM_CONCURRENCY:-32}"
WARM_RATE="${BENCH_WARM_RATE:-5000}"
CONNECTIONS="${BENCH_CONNECTIONS:-4}"
ONE_PAUSE_MS="${BENCH_ONE_PAUSE_MS:-5}"

WEBHOOK="${BENCH_WEBHOOK:-target/release/kibaship-webhook}"
HARNESS=target/release/kibaship-harness
LOAD=target/release/examples/admission_load
LATENCY=target/release/examples/registry_latency
TRUSTED_ROOT=testdata/sigstore/trusted-roots/production-trusted_root.json
PEERS_CACHE="${KIBASHIP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kibaship}/peers"

say() { echo "bench-webhook: $*" >&2; }
die() { say "$*"; exit 1; }

for tool in "$WEBHOOK" "$HARNESS" "$LOAD" "$LATENCY"; do
  [ -x "$tool" ] || die "$tool is missing (run \`make bench-webhook\`)"
done
for tool in openssl jq curl sha256sum; do
  command -v "$tool" >/dev/null || die "$tool is not installed (run \`make deps\`)"
done

# A peer binary built by `make peers` (tools/peers.txt: name, version, binaries; built into PEERS_CACHE/name-version).
peer() {
  local version dir
  version="$(awk -v n="$1" '$1 == n { print $2; exit }' tools/peers.txt)"
  dir="$PEERS_CACHE/$1-$version"
  if [ -z "$version" ] || [ ! -x "$dir/$1" ] || [ ! -f "$dir/.kibaship-built" ]; then
    die "peer $1 is not built (run \`make peers\`)"
  fi
  printf '%s\n' "$dir/$1"
}
COSIGN="$(peer cosign)"
CRANE="$(peer crane)"
peer ggcr-registry >/dev/null

WORK="$(mktemp -d "${TMPDIR:-/tmp}/kibaship-bench-webhook.XXXXXX")"
WEBHOOK_PID=""
LATENCY_PID=""
PERF_PID=""
[ "${BENCH_PERF:-0}" != 1 ] || BENCH_KEEP=1
cleanup() {
  [ -z "$PERF_PID" ] || kill -INT "$PERF_PID" 2>/dev/null || true
  if [ -n "$WEBHOOK_PID" ]; then
    kill "$WEBHOOK_PID" 2>/dev/null || true
    wait "$WEBHOOK_PID" 2>/dev/null || true
  fi
  [ -z "$LATENCY_PID" ] || kill "$LATENCY_PID" 2>/dev/null || true
  "$HARNESS" registry stop --state-dir "$WORK/registry" >/dev/null 2>&1 || true
  if [ "${BENCH_KEEP:-0}" = 1 ]; then say "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
# cosign and crane with a home, docker config and TUF cache of this run only.
mkdir -p "$WORK/home"
peer_env() {
  env -u SIGSTORE_ID_TOKEN -u COSIGN_REPOSITORY HOME="$WORK/home" DOCKER_CONFIG="$WORK/home/no-docker-config" \
    COSIGN_PASSWORD="bench-only-password" COSIGN_YES=true "$@"
}
cosign() { peer_env "$COSIGN" "$@"; }
crane() { peer_env "$CRANE" "$@"; }

# --- The machine, before anything of ours runs -------------------------------------------------------------------
CPU_MODEL="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
MACHINE="$(nproc) cores ($CPU_MODEL), load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
BUSY="$(ps -eo pcpu=,comm= --sort=-pcpu | awk '$1 >= 10 { printf "%s%s %s%%", sep, $2, $1; sep = ", " }')"
say "machine: $MACHINE; busy processes: ${BUSY:-none}"

# --- Registry, images, signatures --------------------------------------------------------------------------------
eval "$("$HARNESS" registry start --mode referrers --state-dir "$WORK/registry")"
REG="$KIBASHIP_REGISTRY"
REGLOG="$WORK/registry/registry.log"
REG_PID="$(cat "$WORK/registry/registry.pid")"
[ -f "$REGLOG" ] || die "no request log at $REGLOG"
say "registry: ggcr-registry on $REG"

# Distinct images, one repository each (bench/NAME:v1): the fixture app's manifest with one annotation more each,
# its config and layer blobs mounted from bench/base. One repository per image because ggcr-registry lists
# referrers by parsing every manifest of the repository: with all the images in one, its cost per lookup would
# grow with the number of images this benchmark pushes. push_variant prints `bench/NAME@DIGEST`, after checking
# that the digest the registry answered is the hash of what was sent.
"$HARNESS" fixtures push --registry "$REG" >/dev/null
crane copy --insecure "$REG/fixtures/app:v1" "$REG/bench/base:v1" >/dev/null 2>&1
curl -sS -f -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
  "http://$REG/v2/bench/base/manifests/v1" >"$WORK/base.json"
MEDIA_TYPE="$(jq -r '.mediaType // "application/vnd.oci.image.manifest.v1+json"' "$WORK/base.json")"
mapfile -t BASE_BLOBS < <(jq -r '.config.digest, .layers[].digest' "$WORK/base.json")
push_variant() {
  local repo="bench/$1" file="$WORK/manifests/$1.json" blob sent answered
  for blob in "${BASE_BLOBS[@]}"; do
    curl -sS -f -X POST -o /dev/null "http://$REG/v2/$repo/blobs/uploads/?mount=$blob&from=bench/base"
    curl -sS -f -I -o /dev/null "http://$REG/v2/$repo/blobs/$blob" || die "blob $blob is not in $repo"
  done
  jq -c --arg n "$1" '.annotations = ((.annotations // {}) + {"io.kibaship.bench.image": $n})' \
    "$WORK/base.json" >"$file"
  sent="sha256:$(sha256sum "$file" | cut -d' ' -f1)"
  answered="$(curl -sS -f -X PUT -H "Content-Type: $MEDIA_TYPE" --data-binary "@$file" -D - -o /dev/null \
    "http://$REG/v2/$repo/manifests/v1" | awk 'tolower($1) == "docker-content-digest:" { print $2 }' | tr -d '\r')"
  [ "$answered" = "$sent" ] || die "pushed $repo: registry answered digest '$answered', sent $sent"
  printf '%s@%s\n' "$repo" "$sent"
}
mkdir -p "$WORK/manifests"
: >"$WORK/cold.refs"
: >"$WORK/seq.refs"
for i in $(seq -w 1 "$COLD_IMAGES"); do push_variant "cold-$i" >>"$WORK/cold.refs"; done
for i in $(seq -w 1 "$SEQ_IMAGES"); do push_variant "seq-$i" >>"$WORK/seq.refs"; done
ONE_REF="$(push_variant one)"
echo "$ONE_REF" >"$WORK/one.refs"
cat "$WORK/cold.refs" "$WORK/seq.refs" "$WORK/one.refs" >"$WORK/all.refs"
[ "$(cut -d@ -f2 "$WORK/all.refs" | sort -u | wc -l)" -eq "$((COLD_IMAGES + SEQ_IMAGES + 1))" ] ||
  die "the pushed images do not have distinct digests"
say "pushed $((COLD_IMAGES + SEQ_IMAGES + 1)) distinct images to $REG/bench/*"

# Signed by the real cosign with a key, no transparency log, Sigstore bundle as an OCI referrer (cosign v3's
# default layout); one cosign process signs them all.
(cd "$WORK" && cosign generate-key-pair >/dev/null 2>&1) || die "cosign generate-key-pair failed"
mapfile -t ALL_REFS < <(sed "s|^|$REG/|" "$WORK/all.refs")
t0="$(now)"
(cd "$WORK" && cosign sign --key cosign.key --tlog-upload=false --use-signing-config=false \
  --allow-http-registry "${ALL_REFS[@]}" >"$WORK/cosign-sign.log" 2>&1) ||
  die "cosign sign failed: $(tail -5 "$WORK/cosign-sign.log")"
t1="$(now)"
say "signed ${#ALL_REFS[@]} images with cosign in $(awk -v s="$t0" -v e="$t1" 'BEGIN { printf "%.1f", e - s }') s"

# The same registry farther away, for the one-digest phase.
"$LATENCY" "$REG" "$ONE_PAUSE_MS" >"$WORK/latency.out" 2>&1 &
LATENCY_PID=$!
for _ in $(seq 1 100); do grep -q '^host ' "$WORK/latency.out" && break; sleep 0.05; done
FAR="$(awk '$1 == "host" { print $2 }' "$WORK/latency.out")"
[ -n "$FAR" ] || die "the latency proxy did not start: $(cat "$WORK/latency.out")"

# --- Webhook: serving certificate (openssl), policy, process -----------------------------------------------------
bash scripts/tls-cert.sh "$WORK" "kibaship bench CA" kibaship-webhook "IP:127.0.0.1,DNS:localhost"

{
  printf '%s\n' "apiVersion: kibaship.io/v1alpha1" "kind: AdmissionPolicy" "policies:" \
    "  - name: bench-signed" "    mode: enforce" "    images: [\"$REG/bench/**\", \"$FAR/bench/**\"]" \
    "    transparencyLog: optional" "    authorities:" "      - name: bench-key" "        key: |"
  sed 's/^/          /' "$WORK/cosign.pub"
} >"$WORK/policy.yaml"

RUST_LOG="${BENCH_RUST_LOG:-info}" "$WEBHOOK" serve --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --tls-cert "$WORK/tls.crt" \
  --tls-key "$WORK/tls.key" --policy "$WORK/policy.yaml" --trusted-root "$TRUSTED_ROOT" \
  --insecure-registry "$REG" --insecure-registry "$FAR" --no-kube-api --shutdown-delay 0s ${BENCH_WEBHOOK_ARGS:-} \
  >"$WORK/webhook.log" 2>&1 &
WEBHOOK_PID=$!
for _ in $(seq 1 200); do
  grep -q '"message":"serving"' "$WORK/webhook.log" 2>/dev/null && break
  kill -0 "$WEBHOOK_PID" 2>/dev/null || die "the webhook exited: $(tail -5 "$WORK/webhook.log")"
  sleep 0.05
done
SERVING="$(grep -m1 '"message":"serving"' "$WORK/webhook.log")" || die "the webhook did not start: $(tail -5 "$WORK/webhook.log")"
ADDR="$(jq -r '.fields.addr' <<<"$SERVING")"
METRICS="$(jq -r '.fields.metrics | ltrimstr("Some(") | rtrimstr(")")' <<<"$SERVING")"
curl -sS -f "http://$METRICS/readyz" >/dev/null || die "the webhook is not ready: $(tail -5 "$WORK/webhook.log")"
# One HTTPS request through another TLS client (curl) first: it checks the certificate, and the process's first
# handshake (aws-lc seeds its random generator then, ~20 ms of CPU once) is not charged to the cold burst below.
curl -sS -f --cacert "$WORK/ca.pem" "https://$ADDR/healthz" >/dev/null ||
  die "HTTPS to the webhook failed"
URL="https://$ADDR/validate"
say "webhook: pid $WEBHOOK_PID on $ADDR (metrics on $METRICS)"

# --- Helpers -----------------------------------------------------------------------------------------------------
# AdmissionReviews, one per line: a Pod of one container per image reference read from stdin; uids prefix-N.
reviews() {
  jq -R -c --arg prefix "$1" -n '[inputs] | to_entries[] | {
    apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview",
    request: {
      uid: "\($prefix)-\(.key)",
      kind: {group: "", version: "v1", kind: "Pod"}, resource: {group: "", version: "v1", resource: "pods"},
      requestKind: {group: "", version: "v1", kind: "Pod"}, requestResource: {group: "", version: "v1", resource: "pods"},
      name: "bench-\(.key)", namespace: "bench", operation: "CREATE", userInfo: {username: "bench"},
      object: {apiVersion: "v1", kind: "Pod", metadata: {name: "bench-\(.key)", namespace: "bench"},
               spec: {containers: [{name: "app", image: .value}]}},
      oldObject: null, dryRun: false, options: {apiVersion: "meta.k8s.io/v1", kind: "CreateOptions"}
    }}'
}
load() { "$LOAD" --url "$URL" --ca "$WORK/ca.pem" --connections "$CONNECTIONS" "$@"; }
metric() { # metric NAME: the sample's value now (0 when absent)
  curl -sS -f "http://$METRICS/metrics" | awk -v m="$1" '$1 == m { v = $2 } END { print v + 0 }'
}
log_size() { stat -c %s "$REGLOG"; }
log_since() { tail -c +"$(($1 + 1))" "$REGLOG"; }
# CPU time of a process in ms: the sum over its threads of the scheduler's run time (/proc/PID/task/*/schedstat, ns);
# wait_ms: the time its threads waited on a run queue while runnable (the second field).
cpu_ms() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ t += $1 } END { printf "%.0f", t / 1e6 }'; }
wait_ms() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ t += $2 } END { printf "%.0f", t / 1e6 }'; }
# Minor page faults of a process so far (/proc/PID/stat, field 10, counted after the command name's parenthesis):
# each first touch of a page the process had not used; a growing heap pays one per page (a 2 MB huge page is
# zeroed by the kernel at its fault).
faults() { sed 's/^.*) //' /proc/"$1"/stat 2>/dev/null | awk '{ print $8 + 0 }'; }
field() { jq -r "$2" "$WORK/$1.json"; }
perf_start() { # perf_start NAME: with BENCH_PERF=1, profile the webhook and the registry until perf_stop
  [ "${BENCH_PERF:-0}" = 1 ] || return 0
  # shellcheck disable=SC2086 # BENCH_PERF_ARGS is a list of perf options
  perf record -q ${BENCH_PERF_ARGS:--F 999 -g} -p "$WEBHOOK_PID,$REG_PID" -o "$WORK/perf-$1.data" >"$WORK/perf-$1.log" 2>&1 &
  PERF_PID=$!
  sleep 1
}
perf_stop() {
  [ -n "$PERF_PID" ] || return 0
  kill -INT "$PERF_PID" 2>/dev/null || true
  wait "$PERF_PID" || true
  PERF_PID=""
}
# Busy CPU of the whole machine in ms (/proc/stat: user, nice, system, irq, softirq, steal) and the time in ms
# some runnable task waited for a CPU (/proc/pressure/cpu, 0 without PSI).
busy_ms() { awk -v hz="$(getconf CLK_TCK)" '$1 == "cpu" { printf "%.0f", ($2 + $3 + $4 + $7 + $8 + $9) * 1000 / hz }' /proc/stat; }
stall_ms() { awk -F'total=' '/^some/ { printf "%.0f", $2 / 1000 }' /proc/pressure/cpu 2>/dev/null || echo 0; }
# phase NAME LOAD-ARGS...: one run of the load generator into $WORK/NAME.json, with what it cost into $WORK/NAME.cpu
# (ms): wall; CPU of the webhook, the registry, the load generator and everything else on the machine; CPU
# pressure (%); how long the webhook's and the load generator's threads waited for a CPU while runnable; and the
# minor page faults of the webhook and of the registry.
phase() {
  local name="$1" t0 t1 w0 w1 q0 q1 r0 r1 b0 b1 p0 p1 f0 f1 g0 g1
  shift
  perf_start "$name"
  t0="$(now)" w0="$(cpu_ms "$WEBHOOK_PID")" q0="$(wait_ms "$WEBHOOK_PID")" r0="$(cpu_ms "$REG_PID")" b0="$(busy_ms)" p0="$(stall_ms)"
  f0="$(faults "$WEBHOOK_PID")" g0="$(faults "$REG_PID")"
  load "$@" --label "$name" >"$WORK/$name.json"
  t1="$(now)" w1="$(cpu_ms "$WEBHOOK_PID")" q1="$(wait_ms "$WEBHOOK_PID")" r1="$(cpu_ms "$REG_PID")" b1="$(busy_ms)" p1="$(stall_ms)"
  f1="$(faults "$WEBHOOK_PID")" g1="$(faults "$REG_PID")"
  perf_stop
  awk -v t0="$t0" -v t1="$t1" -v w="$((w1 - w0))" -v q="$((q1 - q0))" -v r="$((r1 - r0))" -v b="$((b1 - b0))" \
    -v p="$((p1 - p0))" -v c="$(field "$name" '.client_cpu_ms // 0')" -v cq="$(field "$name" '.client_wait_ms // 0')" \
    -v fw="$((f1 - f0))" -v fr="$((g1 - g0))" 'BEGIN {
      wall = (t1 - t0) * 1000; other = b - w - r - c; if (other < 0) other = 0
      printf "%.0f %d %d %.0f %.0f %.0f %d %.0f %d %d\n", wall, w, r, c, other, 100 * p / wall, q, cq, fw, fr }' >"$WORK/$name.cpu"
}

sed "s|^|$REG/|" "$WORK/cold.refs" | reviews cold >"$WORK/cold.jsonl"
for _ in $(seq 1 "$ONE_REQUESTS"); do echo "$FAR/$ONE_REF"; done | reviews one >"$WORK/one.jsonl"
sed "s|^|$REG/|" "$WORK/seq.refs" | reviews seq >"$WORK/seq.jsonl"
sed "s|^|$REG/|" "$WORK/all.refs" | reviews warm >"$WORK/warm.jsonl"
# The reads that name the digest of IMAGE (path@digest) in the registry's request log on stdin, one "METHOD PATH"
# line each: its manifest, its referrers listing, its legacy `.sig` tag. A verification makes each once (the
# manifest only when no signature satisfies the policy); two verifications of the digest would repeat them.
digest_reads() {
  local repo="${1%@*}" digest="${1#*@}"
  grep -oE " (GET|HEAD) /v2/$repo/(manifests|referrers)/($digest|${digest/:/-}\.sig)( |$)" | sed 's/^ //; s/ $//' || true
}
# "N, each once" for those reads when none repeats, else "N, M repeated".
reads_summary() {
  local reads n repeated
  reads="$(digest_reads "$1")"
  n="$(grep -c . <<<"$reads" || true)"
  repeated="$(sort <<<"$reads" | uniq -d | grep -c . || true)"
  if [ "$repeated" -eq 0 ]; then echo "$n, each once"; else echo "$n, $repeated repeated"; fi
}

# --- Cold: distinct new digests at once --------------------------------------------------------------------------
off="$(log_size)"
v0="$(metric kibaship_webhook_verifications_total)"
phase cold --burst --reviews "$WORK/cold.jsonl"
sleep 0.3
v1="$(metric kibaship_webhook_verifications_total)"
log_since "$off" >"$WORK/cold.reglog"
COLD_REG_REQUESTS="$(wc -l <"$WORK/cold.reglog")"
COLD_ONE_FETCH="$(while read -r ref; do reads_summary "$ref" <"$WORK/cold.reglog"; done <"$WORK/cold.refs" |
  awk '$1 > 0 && /each once/ { n++ } END { print n + 0 }')"
COLD_VERIFICATIONS=$((v1 - v0))
say "cold, $COLD_IMAGES distinct digests at once: $(jq -c '{requests, errors, first_error, latency_ms}' "$WORK/cold.json")"

# --- Cold: one new digest, many requests at once -----------------------------------------------------------------
off="$(log_size)"
v0="$(metric kibaship_webhook_verifications_total)"
m0="$(metric 'kibaship_webhook_cache_lookups_total{result="miss"}')"
c0="$(metric 'kibaship_webhook_cache_lookups_total{result="coalesced"}')"
h0="$(metric 'kibaship_webhook_cache_lookups_total{result="hit"}')"
phase one --burst --reviews "$WORK/one.jsonl"
sleep 0.3
ONE_VERIFICATIONS=$(($(metric kibaship_webhook_verifications_total) - v0))
ONE_MISS=$(($(metric 'kibaship_webhook_cache_lookups_total{result="miss"}') - m0))
ONE_COALESCED=$(($(metric 'kibaship_webhook_cache_lookups_total{result="coalesced"}') - c0))
ONE_HIT=$(($(metric 'kibaship_webhook_cache_lookups_total{result="hit"}') - h0))
log_since "$off" >"$WORK/one.reglog"
ONE_READS="$(reads_summary "$ONE_REF" <"$WORK/one.reglog")"
ONE_REG_REQUESTS="$(wc -l <"$WORK/one.reglog")"
say "cold, one digest x $ONE_REQUESTS: $(jq -c '{requests, errors, first_error, latency_ms}' "$WORK/one.json")"
say "  registry log: reads naming the digest of $ONE_REF: $ONE_READS; $ONE_REG_REQUESTS requests in all:"
sed 's/^/    /' "$WORK/one.reglog" >&2

# --- Per image: new digests one at a time, then cosign verify on the same images ---------------------------------
: >"$WORK/seq.samples"
i=0
while IFS= read -r line; do
  i=$((i + 1))
  printf '%s\n' "$line" >"$WORK/seq-one.jsonl"
  "$LOAD" --url "$URL" --ca "$WORK/ca.pem" --connections 1 --burst --reviews "$WORK/seq-one.jsonl" \
    --label "seq-$i" >"$WORK/seq-one.json"
  [ "$(field seq-one .errors)" = 0 ] || die "per-image review $i: $(field seq-one .first_error)"
  field seq-one .latency_ms.max >>"$WORK/seq.samples"
done <"$WORK/seq.jsonl"
SEQ_MS="$(sort -n "$WORK/seq.samples" | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')"

mapfile -t SEQ_REFS < <(sed "s|^|$REG/|" "$WORK/seq.refs")
cosign verify --key "$WORK/cosign.pub" --insecure-ignore-tlog --allow-http-registry "${SEQ_REFS[0]}" \
  >"$WORK/cosign-verify.log" 2>&1 || die "cosign verify failed: $(tail -5 "$WORK/cosign-verify.log")"
: >"$WORK/cosign.samples"
for ref in "${SEQ_REFS[@]}"; do
  s="$(now)"
  cosign verify --key "$WORK/cosign.pub" --insecure-ignore-tlog --allow-http-registry "$ref" \
    >"$WORK/cosign-verify.log" 2>&1 || die "cosign verify $ref failed: $(tail -5 "$WORK/cosign-verify.log")"
  e="$(now)"
  awk -v s="$s" -v e="$e" 'BEGIN { printf "%.3f\n", (e - s) * 1000 }' >>"$WORK/cosign.samples"
done
COSIGN_MS="$(sort -n "$WORK/cosign.samples" | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')"

# --- Warm: every image above is cached now (bench/one by its registry's own address is verified here) -------------
phase warm-check --burst --reviews "$WORK/warm.jsonl"
[ "$(field warm-check .errors)" = 0 ] || die "warm check: $(field warm-check .first_error)"
off="$(log_size)"
VERIFIED='kibaship_webhook_decisions_total{endpoint="validate",result="allowed",code="verified"}'
n0="$(metric "$VERIFIED")"
phase warm-closed --concurrency "$WARM_CONCURRENCY" --duration "$WARM_SECONDS" --warmup 2 --reviews "$WORK/warm.jsonl"
n1="$(metric "$VERIFIED")"
phase warm-open --rate "$WARM_RATE" --duration "$WARM_SECONDS" --warmup 2 --reviews "$WORK/warm.jsonl"
LOW_RATE=$((WARM_RATE / 10))
phase warm-low --rate "$LOW_RATE" --duration "$WARM_SECONDS" --warmup 2 --reviews "$WORK/warm.jsonl"
WARM_REG_REQUESTS="$(log_since "$off" | wc -l)"
# CPU of the webhook process over the reviews it answered in the closed loop, warm-up included.
WARM_CPU_US="$(awk -v t="$(cut -d' ' -f2 "$WORK/warm-closed.cpu")" -v n="$((n1 - n0))" 'BEGIN { printf "%.0f", t * 1000 / n }')"
say "warm, closed loop: $(jq -c '{requests, errors, first_error, throughput, latency_ms}' "$WORK/warm-closed.json")"
say "warm, open loop: $(jq -c '{requests, errors, skipped, first_error, throughput, latency_ms}' "$WORK/warm-open.json")"
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"

# --- Report --------------------------------------------------------------------------------------------------------
verdict() { awk -v x="$1" -v op="$2" -v t="$3" 'BEGIN { ok = (op == "<=" ? x <= t : (op == ">=" ? x >= t : x == t)); print (ok ? "PASS" : "MISS") }'; }
WARM_TPUT="$(field warm-closed .throughput)"
WARM_OPEN_P99="$(field warm-open .latency_ms.p99)"
WARM_OPEN_TPUT="$(field warm-open .throughput)"
COLD_P99="$(field cold .latency_ms.p99)"
COLD_ERRORS="$(field cold .errors)"
ONE_ERRORS="$(field one .errors)"

echo
echo "kibaship-webhook $("$WEBHOOK" --version | awk '{ print $2 }'), TLS (HTTP/2, $CONNECTIONS connections), load from a second process;"
echo "registry: ggcr-registry $(awk '$1 == "ggcr-registry" { print $2 }' tools/peers.txt) on 127.0.0.1; cosign $(cosign version 2>&1 | awk '/^GitVersion/ { print $2 }')"
echo "machine: $MACHINE; ${LOAD_AFTER} at the end; busy at start: ${BUSY:-none}"
echo
printf '%-58s %16s %14s  %s\n' "figure" "measured" "target" "verdict"
printf '%-58s %16s %14s  %s\n' "warm: throughput, closed loop ($WARM_CONCURRENCY senders)" "$WARM_TPUT/s" ">= 5000/s" \
  "$(verdict "$WARM_TPUT" '>=' 5000)"
printf '%-58s %16s %14s  %s\n' "warm: p99 at $WARM_RATE/s offered (open loop; achieved ${WARM_OPEN_TPUT}/s)" \
  "$WARM_OPEN_P99 ms" "<= 1 ms" "$(awk -v p="$WARM_OPEN_P99" -v a="$WARM_OPEN_TPUT" -v r="$WARM_RATE" \
    -v e="$(field warm-open .errors)" 'BEGIN { print (p <= 1 && a >= 0.99 * r && e == 0 ? "PASS" : "MISS") }')"
printf '%-58s %16s %14s  %s\n' "cold: p99, $COLD_IMAGES new digests at once ($COLD_ERRORS errors)" "$COLD_P99 ms" "<= 25 ms" \
  "$(awk -v p="$COLD_P99" -v e="$COLD_ERRORS" 'BEGIN { print (p <= 25 && e == 0 ? "PASS" : "MISS") }')"
printf '%-58s %16s %14s  %s\n' "cold: registry reads naming the digest, 1 digest x $ONE_REQUESTS" "$ONE_READS" "each once" \
  "$(awk -v f="$ONE_READS" -v e="$ONE_ERRORS" -v v="$ONE_VERIFICATIONS" \
    'BEGIN { print (f ~ /^[1-9][0-9]*, each once$/ && v == 1 && e == 0 ? "PASS" : "MISS") }')"
echo
printf '%-58s %16s\n' "warm: p50 / p99 / max, closed loop" \
  "$(field warm-closed '"\(.latency_ms.p50) / \(.latency_ms.p99) / \(.latency_ms.max) ms"')"
printf '%-58s %16s\n' "warm: p50 / p99.9 / max at $WARM_RATE/s" \
  "$(field warm-open '"\(.latency_ms.p50) / \(.latency_ms.p999) / \(.latency_ms.max) ms"')"
printf '%-58s %16s\n' "warm: load generator's 1 ms timer woke late by p99 / max" \
  "$(field warm-open '"\(.tick_lag_ms.p99) / \(.tick_lag_ms.max) ms"')"
printf '%-58s %16s\n' "warm, control at $LOW_RATE/s: p50 / p99 / p99.9" \
  "$(field warm-low '"\(.latency_ms.p50) / \(.latency_ms.p99) / \(.latency_ms.p999) ms"')"
printf '%-58s %16s\n' "warm: webhook CPU per review (closed loop)" "$WARM_CPU_US us"
printf '%-58s %16s\n' "warm: registry requests during the warm runs" "$WARM_REG_REQUESTS"
printf '%-58s %16s\n' "cold: p50 / max, $COLD_IMAGES new digests at once" "$(field cold '"\(.latency_ms.p50) / \(.latency_ms.max) ms"')"
printf '%-58s %16s\n' "cold: digests whose reads each happened once / requests" "$COLD_ONE_FETCH / $COLD_REG_REQUESTS"
printf '%-58s %16s\n' "cold: verifications started (webhook metric)" "$COLD_VERIFICATIONS"
printf '%-58s %16s\n' "cold, 1 digest x $ONE_REQUESTS (registry pauses ${ONE_PAUSE_MS} ms): p99 / max" \
  "$(field one '"\(.latency_ms.p99) / \(.latency_ms.max) ms"')"
printf '%-58s %16s\n' "cold, 1 digest x $ONE_REQUESTS: verifications, cache miss/coalesced/hit" \
  "$ONE_VERIFICATIONS, $ONE_MISS/$ONE_COALESCED/$ONE_HIT"
echo
printf '%-58s %16s\n' "per image, median of $SEQ_IMAGES new digests one at a time:" ""
printf '%-58s %16s\n' "  kibaship-webhook: one review, new digest (verify + answer)" "$SEQ_MS ms"
printf '%-58s %16s\n' "  cosign verify --key: one process per image" "$COSIGN_MS ms"
printf '%-58s %16s\n' "  kibaship-webhook: one review, cached (p50 at $WARM_RATE/s)" "$(field warm-open .latency_ms.p50) ms"
awk -v c="$COSIGN_MS" -v s="$SEQ_MS" 'BEGIN { printf "%-58s %15.0fx\n", "  cosign verify / webhook new digest", c / s }'
echo
echo "CPU by phase, ms: run time of each process (others: everything else on the machine); CPU pressure: share of"
echo "the wall time in which some runnable task waited for a CPU (/proc/pressure/cpu); waited: time the webhook's"
echo "and the load generator's threads were runnable but not running (/proc/PID/task/*/schedstat); faults: minor"
echo "page faults of the webhook and of the registry in the phase (/proc/PID/stat)"
printf '%-26s %7s %8s %9s %7s %8s %9s %15s %15s\n' "phase" "wall" "webhook" "registry" "load" "others" "pressure" \
  "waited wh/load" "faults wh/reg"
for name in cold one warm-closed warm-open warm-low; do
  read -r wall w r c o p q cq fw fr <"$WORK/$name.cpu"
  printf '%-26s %7s %8s %9s %7s %8s %8s%% %15s %15s\n' "$name ($(field "$name" .mode))" "$wall" "$w" "$r" "$c" "$o" "$p" \
    "$q / $cq" "$fw / $fr"
done
printf '%-58s %16s\n' "webhook memory at the end: resident / peak resident" \
  "$(awk '$1 == "VmRSS:" { r = $2 } $1 == "VmHWM:" { h = $2 } END { printf "%.0f / %.0f MB", r / 1024, h / 1024 }' /proc/"$WEBHOOK_PID"/status)"
