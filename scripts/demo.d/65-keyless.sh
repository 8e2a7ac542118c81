#!/usr/bin/env bash
# Demo step 65: keyless signing against a private Sigstore on loopback, built from the real Go services (an OIDC
# issuer of ours, Fulcio, TesseraCT, timestamp-authority, Rekor v2 / rekor-tiles, and Rekor v1 on Trillian +
# MariaDB): kibaverify signs the image step 50 built with a short-lived Fulcio certificate in both layouts (cosign v3's bundle
# referrer logged in Rekor v2, and the legacy `.sig` tag with a Rekor v1 SET, which cluster verifiers still read),
# then kibaverify and the real cosign verify both by identity; a wrong identity is refused with exit 1. The step
# fails if any exit code is not the expected one.
# Needs KIBASHIP_REGISTRY (started by scripts/demo.sh) and the peers (make peers).
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${KIBASHIP_REGISTRY:?run through scripts/demo.sh, which starts the registry}"
ROOT="$PWD"
KIBAVERIFY="$(realpath "${KIBAVERIFY:-target/release/kibaverify}")"
HARNESS="$(realpath "${KIBASHIP_HARNESS:-target/release/kibaship-harness}")"
fail() { printf 'demo 65-keyless: FAILED: %s\n' "$*" >&2; exit 1; }

if [ "${1:-}" != --inside ]; then
  # The harness starts the stack, runs this script again inside it, and stops the stack afterwards.
  echo "starting a private Sigstore (OIDC issuer, Fulcio, CT log, TSA, Rekor v2, Rekor v1) on 127.0.0.1 ..."
  exec "$HARNESS" sigstore run --rekor-v1 --identity demo@kibaship.test -- bash "$0" --inside
fi

REG="$KIBASHIP_REGISTRY"
WORK="${KIBASHIP_DEMO_DIR:-.demo}/65-keyless"
rm -rf "$WORK" && mkdir -p "$WORK"
WORK="$(realpath "$WORK")"
CACHE="${KIBASHIP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kibaship}"
COSIGN="$CACHE/peers/cosign-$(awk '$1=="cosign"{print $2}' "$ROOT/tools/peers.txt")/cosign"
[ -x "$COSIGN" ] || fail "the cosign peer is missing at $COSIGN (make peers builds it)"
TRUSTED_ROOT="$KIBASHIP_SIGSTORE_TRUSTED_ROOT"
ISSUER="$KIBASHIP_SIGSTORE_ISSUER"
IDENTITY="$KIBASHIP_SIGSTORE_IDENTITY"

expect_exit() {
  local want=$1 what=$2; shift 3
  local got=0
  "$@" >"$WORK/out" 2>"$WORK/err" </dev/null || got=$?
  sed 's/^/   /' "$WORK/out" "$WORK/err"
  [ "$got" -eq "$want" ] || fail "$what: exit $got, expected $want"
  echo "   -> exit $got, as expected"
}

# The image step 50 built with BuildKit and Railpack (an OCI index with its attestation manifest).
BUILT="$(realpath -m "${KIBASHIP_DEMO_DIR:-.demo}/50-build/results/image")"
[ -s "$BUILT" ] || fail "step 50's built image is missing ($BUILT); run the demo from the start"
IMAGE="$(cat "$BUILT")"
export HOME="$WORK" # cosign keeps its caches here, not in the real home

echo "1. sign $IMAGE keyless as $IDENTITY in both layouts (ID token from a file, as a Tekton projected token)"
expect_exit 0 "kibaverify sign --keyless" -- "$KIBAVERIFY" sign --insecure-registry "$REG" --keyless --layout both \
  --signing-config "$KIBASHIP_SIGSTORE_SIGNING_CONFIG" --identity-token-file "$KIBASHIP_SIGSTORE_TOKEN_FILE" \
  --trusted-root "$TRUSTED_ROOT" "$IMAGE"

echo "2. verify by identity with kibaverify (chain, SCT; Rekor v2 inclusion proof + TSA time; Rekor v1 SET)"
expect_exit 0 "kibaverify verify" -- "$KIBAVERIFY" verify --insecure-registry "$REG" \
  --certificate-identity "$IDENTITY" --certificate-oidc-issuer "$ISSUER" --trusted-root "$TRUSTED_ROOT" "$IMAGE"

echo "3. verify by identity with the real cosign: the bundle referrer, then the legacy .sig tag (Rekor v1 SET)"
expect_exit 0 "cosign verify" -- "$COSIGN" verify --allow-http-registry --trusted-root "$TRUSTED_ROOT" \
  --certificate-identity "$IDENTITY" --certificate-oidc-issuer "$ISSUER" "$IMAGE"
expect_exit 0 "cosign verify (legacy layout)" -- "$COSIGN" verify --new-bundle-format=false --allow-http-registry \
  --trusted-root "$TRUSTED_ROOT" --certificate-identity "$IDENTITY" --certificate-oidc-issuer "$ISSUER" "$IMAGE"

echo "4. another identity is refused"
expect_exit 1 "kibaverify verify (wrong identity)" -- "$KIBAVERIFY" verify --insecure-registry "$REG" \
  --certificate-identity "mallory@kibaship.test" --certificate-oidc-issuer "$ISSUER" \
  --trusted-root "$TRUSTED_ROOT" "$IMAGE"
echo "keyless: signed in both layouts and verified by identity with kibaverify and cosign; a wrong identity was refused"
