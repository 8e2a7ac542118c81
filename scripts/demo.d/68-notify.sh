#!/usr/bin/env bash
# Demo step 68: the platform is told how the build ended. `kibaship-step notify-receiver` (a small receiver in
# kibaship-step, docs/tekton.md "Checking it") listens on loopback over HTTPS (a certificate from a CA made here
# with openssl; the sender is given the CA, and refuses the receiver without it); `kibaship-step notify`, the kibaship-notify
# Task's step, POSTs the outcome of step 50's real build (its image and digest, the attestation manifest BuildKit
# wrote, and the signature and SLSA attestation step 60 wrote, each checked to exist in the registry) signed
# with HMAC-SHA256 over timestamp + body. The receiver checks the signature and the timestamp and prints the
# verified event. Then what it must refuse: the sender with a wrong key (401, notify exits 77), and requests
# written with curl and signed with openssl (the contract implemented by another tool): a tampered body and a
# stale timestamp (401 each), and the same openssl-signed body untampered, accepted as a retry already recorded.
# Needs KIBASHIP_REGISTRY (scripts/demo.sh) and the results of steps 50 and 60.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${KIBASHIP_REGISTRY:?run through scripts/demo.sh, which starts the registry}"
REG="$KIBASHIP_REGISTRY"
STEP="$(realpath "${KIBASHIP_STEP:-target/release/kibaship-step}")"
KIBAVERIFY="$(realpath "${KIBAVERIFY:-target/release/kibaverify}")"
DEMO_DIR="$(realpath -m "${KIBASHIP_DEMO_DIR:-.demo}")"
WORK="$DEMO_DIR/68-notify"
BUILT="$DEMO_DIR/50-build/results"
UID_="$(cat /proc/sys/kernel/random/uuid)"

fail() {
  printf 'demo 68-notify: FAILED: %s\n' "$*" >&2
  [ -f "$WORK/receiver.err" ] && { echo "--- receiver stderr:" >&2; cat "$WORK/receiver.err" >&2; }
  exit 1
}
indent() { sed 's/^/   /' "$@"; }
[ -x "$STEP" ] || fail "$STEP is missing; run \`make demo\` (it builds it first)"
for r in image digest sbomRef; do
  [ -s "$BUILT/$r" ] || fail "step 50's $r result is missing ($BUILT/$r); run the demo from the start"
done
rm -rf "$WORK" && mkdir -p "$WORK/results"
image="$(cat "$BUILT/image")"
digest="$(cat "$BUILT/digest")"
sbom_ref="$(cat "$BUILT/sbomRef")"
repo="${image%:*}"
sig_ref="$repo:${digest/:/-}.sig"
att_ref="$repo:${digest/:/-}.att"

echo "1. the build's outcome: step 50's image and digest, BuildKit's attestation manifest, step 60's signature and attestation"
# resolve REF: the digest the registry serves for REF (kibaverify digest prints REF@DIGEST).
resolve() {
  local out
  out="$("$KIBAVERIFY" digest --insecure-registry "$REG" "$1" 2>"$WORK/digest.err")" ||
    fail "$1 is not in the registry: $(cat "$WORK/digest.err")"
  echo "${out##*@}"
}
for ref in "$image" "$sbom_ref" "$sig_ref" "$att_ref"; do
  printf '   %s\n     -> %s\n' "$ref" "$(resolve "$ref")"
done
[ "$(resolve "$image")" = "$digest" ] || fail "the image's tag no longer points at step 50's digest"
# A scan step of the built image, when the demo has one, leaves its verdict result here.
verdict=""
for f in "$DEMO_DIR"/*/results/verdict; do [ -s "$f" ] && verdict="$(cat "$f")"; done
echo "   scan verdict: ${verdict:-(none: no step of this demo scans the built image)}"

echo "2. the receiver: kibaship-step notify-receiver on https://127.0.0.1 with the HMAC key (a fresh random key, never printed)"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/hmac-key"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/wrong-key"
# The platform's CA and the receiver's certificate for 127.0.0.1 (P-256, one day).
bash scripts/tls-cert.sh "$WORK" "kibaship demo platform CA" notify-receiver "IP:127.0.0.1"
"$STEP" notify-receiver --hmac-key-file "$WORK/hmac-key" --address-file "$WORK/address" \
  --tls-cert "$WORK/tls.crt" --tls-key "$WORK/tls.key" \
  --events-file "$WORK/events.jsonl" >"$WORK/receiver.out" 2>"$WORK/receiver.err" &
receiver=$!
trap 'kill "$receiver" 2>/dev/null || true' EXIT
for _ in $(seq 200); do
  [ -s "$WORK/address" ] && break
  kill -0 "$receiver" 2>/dev/null || fail "the receiver exited"
  sleep 0.1
done
[ -s "$WORK/address" ] || fail "the receiver did not start listening"
addr="$(cat "$WORK/address")"
indent "$WORK/receiver.err"

# notify KEYFILE [CA]: kibaship-step notify as the Task runs it, for a succeeded PipelineRun with this outcome (the
# scan task `None` and the aggregate `Completed` when no step scanned the built image), trusting CA (default: the
# platform's; "none": the system roots only).
notify() {
  rm -f "$WORK/results/"*
  local ca="${2:-$WORK/ca.pem}"
  [ "$ca" = none ] && ca=""
  args=(--url "https://$addr/builds" --hmac-key-file "$1" --ca-file "$ca"
    --pipeline-run-name hello-run-1 --pipeline-run-namespace builds --pipeline-run-uid "$UID_"
    --aggregate-status "$([ -n "$verdict" ] && echo Succeeded || echo Completed)"
    --task-status clone=Succeeded prepare=Succeeded build=Succeeded scan="$([ -n "$verdict" ] && echo Succeeded || echo None)"
    sign=Succeeded attest=Succeeded
    --image "$image" --digest "$digest" --scan-verdict "$verdict"
    --attestation "$sbom_ref" "$att_ref" --signature "$sig_ref"
    --max-attempts 1
    --delivered-result "$WORK/results/delivered" --attempts-result "$WORK/results/attempts"
    --response-status-result "$WORK/results/responseStatus")
  "$STEP" notify "${args[@]}" >"$WORK/notify.out" 2>"$WORK/notify.err"
}
# receiver_said N: the receiver's output from line N on (what it printed for the last request).
receiver_said() { tail -n +"$1" "$WORK/receiver.out"; }

echo "3. kibaship-step notify -> the receiver verifies the signature and timestamp and prints the event"
before=$(($(wc -l <"$WORK/receiver.out") + 1))
notify "$WORK/hmac-key" || fail "notify exited $?: $(cat "$WORK/notify.err")"
indent "$WORK/notify.err" "$WORK/notify.out"
echo "   the receiver:"
receiver_said "$before" | indent
receiver_said "$before" | grep -q '^accepted (HTTP 204) .*signature and timestamp verified' || fail "not accepted"
receiver_said "$before" | grep -qxF "  digest: $digest" || fail "the receiver did not get the digest"
receiver_said "$before" | grep -qxF "  signature: $sig_ref" || fail "the receiver did not get the signature"
[ "$(jq -r .digest "$WORK/events.jsonl")" = "$digest" ] || fail "the recorded event's digest"
[ "$(cat "$WORK/results/delivered")" = true ] || fail "the delivered result"

echo "4. the sender without the platform's CA: the receiver's certificate is refused, nothing is sent, no retry (exit 77)"
before=$(($(wc -l <"$WORK/receiver.out") + 1))
code=0
notify "$WORK/hmac-key" none || code=$?
[ "$code" -eq 77 ] || fail "notify without the CA exited $code, want 77"
indent "$WORK/notify.err"
receiver_said "$before" | indent
grep -q 'invalid peer certificate' "$WORK/notify.err" || fail "the sender did not say the certificate was refused"
receiver_said "$before" | grep -q 'TLS handshake failed' || fail "the receiver did not report the failed handshake"

echo "5. the same outcome with a wrong key: 401, no retry, notify exits 77 (its Task step continues; results say why)"
before=$(($(wc -l <"$WORK/receiver.out") + 1))
code=0
notify "$WORK/wrong-key" || code=$?
[ "$code" -eq 77 ] || fail "notify with a wrong key exited $code, want 77"
indent "$WORK/notify.err"
receiver_said "$before" | indent
echo "   results: delivered=$(cat "$WORK/results/delivered") attempts=$(cat "$WORK/results/attempts") responseStatus=$(cat "$WORK/results/responseStatus")"
[ "$(cat "$WORK/results/responseStatus")" = 401 ] || fail "responseStatus is not 401"

# post TS BODY SIGNED_BODY: curl POSTs BODY with TS and openssl's HMAC of TS.SIGNED_BODY; prints the status.
post() {
  local sig
  sig="sha256=$(printf '%s.%s' "$1" "$3" | openssl dgst -sha256 -hmac "$(cat "$WORK/hmac-key")" | awk '{print $NF}')"
  curl -sS --cacert "$WORK/ca.pem" -o /dev/null -w '%{http_code}' -X POST "https://$addr/builds" \
    -H 'Content-Type: application/json' \
    -H "X-Kibaship-Timestamp: $1" -H "X-Kibaship-Signature: $sig" -H "Idempotency-Key: $UID_" --data-binary "$2"
}
body="$(head -1 "$WORK/events.jsonl")"
now="$(date +%s)"

echo "6. curl + openssl: the recorded body with its scan verdict and digest altered after signing -> 401"
tampered="$(jq -c '.verdicts.scan = "pass" | .digest = "sha256:'"$(printf '0%.0s' $(seq 64))"'"' <<<"$body")"
before=$(($(wc -l <"$WORK/receiver.out") + 1))
status="$(post "$now" "$tampered" "$body")"
receiver_said "$before" | indent
[ "$status" = 401 ] || fail "a tampered body got HTTP $status"

echo "7. curl + openssl: correctly signed, but 10 minutes old (a replay) -> 401"
before=$(($(wc -l <"$WORK/receiver.out") + 1))
status="$(post "$((now - 600))" "$body" "$body")"
receiver_said "$before" | indent
[ "$status" = 401 ] || fail "a stale timestamp got HTTP $status"

echo "8. curl + openssl: the untouched body, signed now -> 204, a retry already recorded (openssl's MAC = ours)"
before=$(($(wc -l <"$WORK/receiver.out") + 1))
status="$(post "$now" "$body" "$body")"
receiver_said "$before" | indent
[ "$status" = 204 ] || fail "an openssl-signed body got HTTP $status"
receiver_said "$before" | grep -q 'already recorded' || fail "the retry was not recognised"
[ "$(wc -l <"$WORK/events.jsonl")" -eq 1 ] || fail "the receiver recorded more than one event"

kill "$receiver" 2>/dev/null || true
trap - EXIT
if grep -rqF -f "$WORK/hmac-key" "$WORK"/*.out "$WORK"/*.err "$WORK/events.jsonl" "$WORK/results"; then
  fail "the HMAC key appeared in an output"
fi
echo "   one event recorded; the HMAC key appears in no output"
