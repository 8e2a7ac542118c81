#!/usr/bin/env bash
# Demo step 60: sign the image step 50 built (BuildKit + Railpack) with a cosign-format key (kibaverify generate-key-pair + sign, cosign's legacy
# `.sig` layout), verify it with kibaverify and with the real cosign, then show a tampered tag (image A's `.sig`
# copied to a fixture image B's signature tag) rejected with exit 1, then attest A with SLSA provenance and verify that with both
# tools. The step fails if any exit code is not the expected one.
# Needs KIBASHIP_REGISTRY (a plain-HTTP registry started by scripts/demo.sh) and the cosign peer (make peers-demo).
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${KIBASHIP_REGISTRY:?run through scripts/demo.sh, which starts the registry}"
REG="$KIBASHIP_REGISTRY"
ROOT="$PWD"
KIBAVERIFY="$(realpath "${KIBAVERIFY:-target/release/kibaverify}")"
HARNESS="$(realpath "${KIBASHIP_HARNESS:-target/release/kibaship-harness}")"
WORK="${KIBASHIP_DEMO_DIR:-.demo}/60-sign"
rm -rf "$WORK" && mkdir -p "$WORK"
WORK="$(realpath "$WORK")"
CACHE="${KIBASHIP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kibaship}"
COSIGN="$CACHE/peers/cosign-$(awk '$1=="cosign"{print $2}' "$ROOT/tools/peers.txt")/cosign"

fail() { printf 'demo 60-sign: FAILED: %s\n' "$*" >&2; exit 1; }
[ -x "$COSIGN" ] || fail "the cosign peer is missing at $COSIGN (make peers-demo builds it)"

# expect_exit CODE|nonzero WHAT -- command...: runs it, shows its output indented (and keeps it in the transcript),
# fails the demo on another exit code.
expect_exit() {
  local want=$1 what=$2; shift 3
  local got=0
  "$@" >"$WORK/out" 2>"$WORK/err" </dev/null || got=$?
  sed 's/^/   /' "$WORK/out" "$WORK/err"
  cat "$WORK/out" "$WORK/err" >>"$WORK/transcript"
  if [ "$want" = nonzero ]; then
    [ "$got" -ne 0 ] || fail "$what: exit 0, expected a failure"
  else
    [ "$got" -eq "$want" ] || fail "$what: exit $got, expected $want"
  fi
  echo "   -> exit $got, as expected"
}

# A throwaway password for the demo key, in the variable cosign and kibaverify both read.
COSIGN_PASSWORD="demo-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export COSIGN_PASSWORD
cd "$WORK"

# A: the image step 50 built with BuildKit and Railpack; B: a fixture image, the target of the tampering below.
BUILT="$(realpath -m "${KIBASHIP_DEMO_DIR:-.demo}/50-build/results/image")"
[ -s "$BUILT" ] || fail "step 50's built image is missing ($BUILT); run the demo from the start"
A="$(cat "$BUILT")"
B="$REG/fixtures/docker-app:v1"
if ! "$KIBAVERIFY" digest --insecure-registry "$REG" "$B" >/dev/null 2>&1; then
  "$HARNESS" fixtures push --registry "$REG" >/dev/null || fail "pushing the fixtures"
fi

echo "1. generate a cosign-format key pair (encrypted with COSIGN_PASSWORD)"
expect_exit 0 "generate-key-pair" -- "$KIBAVERIFY" generate-key-pair --output-key-prefix demo
head -1 demo.key | sed 's/^/   /'

echo "2. sign $A (the tag is resolved; the digest is signed; no Rekor entry, as cosign --tlog-upload=false)"
expect_exit 0 "kibaverify sign A" -- "$KIBAVERIFY" sign --insecure-registry "$REG" --key demo.key -a demo=kibaship "$A"
expect_exit 0 "kibaverify sign B" -- "$KIBAVERIFY" sign --insecure-registry "$REG" --key demo.key "$B"

echo "3. verify with kibaverify"
expect_exit 0 "kibaverify verify A" -- "$KIBAVERIFY" verify --insecure-registry "$REG" --key demo.pub --insecure-ignore-tlog "$A"

echo "4. verify with the real cosign ($("$COSIGN" version 2>/dev/null | awk '/GitVersion/{print $2}'))"
expect_exit 0 "cosign verify A" -- "$COSIGN" verify --key demo.pub --insecure-ignore-tlog --allow-http-registry "$A"

echo "5. without --insecure-ignore-tlog the missing transparency-log entry is refused"
expect_exit 1 "kibaverify verify A without --insecure-ignore-tlog" -- "$KIBAVERIFY" verify --insecure-registry "$REG" --key demo.pub "$A"

echo "6. tamper: copy A's signature tag over B's (skopeo, byte for byte), then verify B"
digest() { "$KIBAVERIFY" digest --insecure-registry "$REG" "$1" </dev/null | sed 's/.*@//'; }
A_DIGEST="$(digest "$A")"
B_DIGEST="$(digest "$B")"
skopeo copy --quiet --preserve-digests --src-tls-verify=false --dest-tls-verify=false \
  "docker://${A%:*}:${A_DIGEST/:/-}.sig" "docker://$REG/fixtures/docker-app:${B_DIGEST/:/-}.sig" </dev/null ||
  fail "skopeo could not copy the signature tag"
expect_exit 1 "kibaverify verify B (tampered)" -- "$KIBAVERIFY" verify --insecure-registry "$REG" --key demo.pub --insecure-ignore-tlog "$B"
grep -q "signature for another image" "$WORK/err" || fail "the rejection does not say the signature is for another image"
# cosign exits 12 for "no matching signatures".
expect_exit nonzero "cosign verify B (tampered)" -- "$COSIGN" verify --key demo.pub --insecure-ignore-tlog --allow-http-registry "$B"

echo "7. a different key does not verify A"
COSIGN_PASSWORD=other "$KIBAVERIFY" generate-key-pair --output-key-prefix other >/dev/null
expect_exit 1 "kibaverify verify A with another key" -- "$KIBAVERIFY" verify --insecure-registry "$REG" --key other.pub --insecure-ignore-tlog "$A"

echo "8. attest A with SLSA v1 provenance (kibaverify attest, cosign's .att layout), verify it with both tools"
cat >provenance.json <<JSON
{
  "buildDefinition": {
    "buildType": "https://kibaship.dev/demo/fixture/v1",
    "externalParameters": {"image": "$A"},
    "resolvedDependencies": []
  },
  "runDetails": {
    "builder": {"id": "https://kibaship.dev/demo"},
    "metadata": {"invocationId": "demo-60-sign"}
  }
}
JSON
expect_exit 0 "kibaverify attest A" -- "$KIBAVERIFY" attest --insecure-registry "$REG" --key demo.key \
  --predicate provenance.json --type slsaprovenance1 "$A"
expect_exit 0 "kibaverify verify-attestation A" -- "$KIBAVERIFY" verify-attestation --insecure-registry "$REG" \
  --key demo.pub --insecure-ignore-tlog --type slsaprovenance1 "$A"
expect_exit 0 "cosign verify-attestation A" -- "$COSIGN" verify-attestation --key demo.pub --insecure-ignore-tlog \
  --allow-http-registry --type slsaprovenance1 "$A"
# cosign prints the DSSE envelope it verified: its payload is our statement.
jq -r .payload "$WORK/out" | base64 -d | jq -e '.predicate.buildDefinition.buildType == "https://kibaship.dev/demo/fixture/v1"' \
  >/dev/null || fail "cosign did not print our provenance statement back"
expect_exit 1 "kibaverify verify-attestation A --type cyclonedx (none of that type)" -- "$KIBAVERIFY" \
  verify-attestation --insecure-registry "$REG" --key demo.pub --insecure-ignore-tlog --type cyclonedx "$A"

# The key password never shows in anything printed above.
if grep -qF -- "$COSIGN_PASSWORD" "$WORK/transcript"; then fail "the key password appeared in an output"; fi
echo "sign -> verify (kibaverify and cosign) -> tamper -> reject -> attest -> verify-attestation: done"
