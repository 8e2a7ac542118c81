#!/usr/bin/env bash
# cosign v3: generate-key-pair, then `cosign sign --key` without any transparency log (no signing config:
# --use-signing-config=false --tlog-upload=false) and `cosign verify --key --insecure-ignore-tlog`, in both
# layouts: legacy (`--new-bundle-format=false`: a `sha256-<digest>.sig` tag) and bundle (v3's default: a
# Sigstore bundle attached as an OCI referrer). Against Debian's docker-registry (no referrers API: cosign
# uses the `sha256-<digest>` tag fallback) and ggcr-registry (the referrers API). Verification with another
# key must fail, and the legacy verifier must not accept an image that only has a bundle.
# shellcheck source=scripts/peers/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cosign="$(peer_bin cosign)"
export COSIGN_PASSWORD="smoke-only-password"
export COSIGN_YES=true
export HOME="$SMOKE_WORK/home" # cosign caches TUF data under $HOME/.sigstore: keep it out of the real home
mkdir -p "$HOME"

cd "$SMOKE_WORK" || fail "cannot enter $SMOKE_WORK"
run generate-key-pair "$cosign" generate-key-pair
mkdir other
(cd other && "$cosign" generate-key-pair >/dev/null 2>&1) || fail "second generate-key-pair failed"
if [ ! -s cosign.key ] || [ ! -s cosign.pub ]; then fail "generate-key-pair did not write cosign.key and cosign.pub"; fi
grep -q "ENCRYPTED SIGSTORE PRIVATE KEY" cosign.key || fail "cosign.key is not an encrypted Sigstore private key"

sign_flags=(--key cosign.key --use-signing-config=false --tlog-upload=false --allow-http-registry)
verify_flags=(--key cosign.pub --insecure-ignore-tlog --allow-http-registry)

start_docker_registry
start_referrers_registry

checks=0
for registry in "$DOCKER_REGISTRY" "$REFERRERS_REGISTRY"; do
  if [ "$registry" = "$DOCKER_REGISTRY" ]; then kind=docker-registry; else kind=ggcr-registry; fi

  # Legacy layout: signature image under the `.sig` tag.
  legacy_digest="$(push_small_image "$registry" smoke/legacy v1)"
  legacy_ref="$registry/smoke/legacy@$legacy_digest"
  run "sign-legacy-$kind" "$cosign" sign "${sign_flags[@]}" --new-bundle-format=false "$legacy_ref"
  sig_tag="${legacy_digest/:/-}.sig"
  curl -sS -f "http://$registry/v2/smoke/legacy/tags/list" | jq -e --arg t "$sig_tag" '.tags | index($t)' >/dev/null ||
    fail "$kind: legacy signing did not create tag $sig_tag"
  run "verify-legacy-$kind" "$cosign" verify "${verify_flags[@]}" --new-bundle-format=false "$legacy_ref"
  grep -q "\"docker-manifest-digest\":\"$legacy_digest\"" "$SMOKE_WORK/verify-legacy-$kind.log" ||
    fail "$kind: legacy verify output does not name $legacy_digest"
  expect_rejected "verify-legacy-wrongkey-$kind" "no matching signatures" \
    "$cosign" verify --key other/cosign.pub --insecure-ignore-tlog --allow-http-registry \
    --new-bundle-format=false "$legacy_ref"

  # Bundle layout: Sigstore bundle as an OCI 1.1 referrer (the tag fallback on docker-registry).
  bundle_digest="$(push_small_image "$registry" smoke/bundle v1)"
  bundle_ref="$registry/smoke/bundle@$bundle_digest"
  run "sign-bundle-$kind" "$cosign" sign "${sign_flags[@]}" "$bundle_ref"
  if [ "$kind" = docker-registry ]; then
    index_tag="${bundle_digest/:/-}"
    curl -sS -f -H 'Accept: application/vnd.oci.image.index.v1+json' \
      "http://$registry/v2/smoke/bundle/manifests/$index_tag" >"$SMOKE_WORK/fallback-index.json" ||
      fail "$kind: bundle signing did not create the referrers tag $index_tag"
    jq -e '.manifests | length >= 1' "$SMOKE_WORK/fallback-index.json" >/dev/null ||
      fail "$kind: referrers tag $index_tag lists nothing"
    referrer="$(jq -r '.manifests[0].digest' "$SMOKE_WORK/fallback-index.json")"
  else
    curl -sS -f "http://$registry/v2/smoke/bundle/referrers/$bundle_digest" >"$SMOKE_WORK/referrers.json" ||
      fail "$kind: GET referrers of $bundle_digest failed"
    jq -e '.manifests | length >= 1' "$SMOKE_WORK/referrers.json" >/dev/null ||
      fail "$kind: the referrers API lists nothing for $bundle_digest"
    referrer="$(jq -r '.manifests[0].digest' "$SMOKE_WORK/referrers.json")"
  fi
  curl -sS -f -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://$registry/v2/smoke/bundle/manifests/$referrer" >"$SMOKE_WORK/bundle-manifest-$kind.json"
  jq -e --arg d "$bundle_digest" '.subject.digest == $d
      and (.artifactType | startswith("application/vnd.dev.sigstore.bundle"))' \
    "$SMOKE_WORK/bundle-manifest-$kind.json" >/dev/null ||
    fail "$kind: the referrer is not a Sigstore bundle whose subject is $bundle_digest: $(cat "$SMOKE_WORK/bundle-manifest-$kind.json")"
  run "verify-bundle-$kind" "$cosign" verify "${verify_flags[@]}" "$bundle_ref"
  grep -q "$bundle_digest" "$SMOKE_WORK/verify-bundle-$kind.log" ||
    fail "$kind: bundle verify output does not name $bundle_digest"
  expect_rejected "verify-bundle-wrongkey-$kind" "no matching attestations|failed to verify signature" \
    "$cosign" verify --key other/cosign.pub --insecure-ignore-tlog --allow-http-registry "$bundle_ref"
  expect_rejected "verify-bundle-as-legacy-$kind" "no signatures found" \
    "$cosign" verify "${verify_flags[@]}" --new-bundle-format=false "$bundle_ref"
  checks=$((checks + 1))
done

version="$("$cosign" version 2>&1 | awk '/^GitVersion/ { print $2 }')"
pass "cosign ${version:-?}: key sign + verify in legacy and bundle layouts on docker-registry (tag fallback) and ggcr-registry (referrers API); wrong key rejected ($checks registries)"
