#!/usr/bin/env bash
# crane + go-containerregistry's registry. `crane registry serve` runs here but, in crane v0.22.1, leaves the
# OCI referrers API off (its GET /v2/<name>/referrers/<digest> is a 404, checked below so an upgrade that turns
# it on is noticed). The same registry with the API on is the ggcr-registry peer: there, a manifest whose
# `subject` is a pushed image must be listed by GET /v2/<name>/referrers/<digest>; crane (the client) pushes
# the image and reads the artifact back byte for byte.
# shellcheck source=scripts/peers/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

crane="$(peer_bin crane)"
repo="smoke/app"
empty_digest="sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

# 1. `crane registry serve`: push and read back; no referrers API in this version.
start_crane_registry
plain_digest="$(push_small_image "$CRANE_REGISTRY" "$repo" v1)"
[[ "$plain_digest" == sha256:* ]] || fail "crane digest printed '$plain_digest', not a digest"
[ "$(registry_digest "$CRANE_REGISTRY/$repo:v1")" = "$plain_digest" ] ||
  fail "skopeo sees a different digest than crane for $CRANE_REGISTRY/$repo:v1"
code="$(curl -sS -o /dev/null -w '%{http_code}' "http://$CRANE_REGISTRY/v2/$repo/referrers/$plain_digest")"
[ "$code" = 404 ] ||
  fail "crane registry serve answered $code (not 404) on the referrers API: it may serve it now; use it instead of ggcr-registry"

# 2. ggcr-registry (referrers API on).
start_referrers_registry
subject_digest="$(push_small_image "$REFERRERS_REGISTRY" "$repo" v1)"
"$crane" manifest --insecure "$REFERRERS_REGISTRY/$repo@$subject_digest" >"$SMOKE_WORK/subject.json"
subject_size="$(wc -c <"$SMOKE_WORK/subject.json")"
subject_type="$(jq -r .mediaType "$SMOKE_WORK/subject.json")"
[ "$subject_type" = application/vnd.oci.image.manifest.v1+json ] ||
  fail "subject mediaType is '$subject_type', expected an OCI image manifest"

printf '{}' | upload_blob "$REFERRERS_REGISTRY" "$repo" "$empty_digest"
config_type="application/vnd.kibaship.smoke.config.v1+json"

# Two referrers: A in the OCI 1.1 artifact style (artifactType + empty config), B typed by its config.
artifact_type="application/vnd.kibaship.smoke.v1+json"
make_artifact() {
  jq -n --arg d "$subject_digest" --argjson s "$subject_size" --arg t "$subject_type" \
    --arg e "$empty_digest" --arg at "$1" --arg ct "$2" '{
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: $ct, digest: $e, size: 2 },
      layers: [ { mediaType: "application/vnd.oci.empty.v1+json", digest: $e, size: 2 } ],
      subject: { mediaType: $t, digest: $d, size: $s },
      annotations: { "org.opencontainers.image.created": "2026-01-01T00:00:00Z" }
    } + (if $at == "" then {} else { artifactType: $at } end)'
}
make_artifact "$artifact_type" application/vnd.oci.empty.v1+json >"$SMOKE_WORK/artifact-a.json"
make_artifact "" "$config_type" >"$SMOKE_WORK/artifact-b.json"
a_digest="$(put_manifest "$REFERRERS_REGISTRY" "$repo" "$SMOKE_WORK/artifact-a.json")"
b_digest="$(put_manifest "$REFERRERS_REGISTRY" "$repo" "$SMOKE_WORK/artifact-b.json")"

curl -sS -f -D "$SMOKE_WORK/referrers.headers" -o "$SMOKE_WORK/referrers.json" \
  "http://$REFERRERS_REGISTRY/v2/$repo/referrers/$subject_digest" ||
  fail "GET /v2/$repo/referrers/$subject_digest failed"
jq -e --arg a "$a_digest" --arg b "$b_digest" --arg ct "$config_type" --arg at "$artifact_type" \
  '.mediaType == "application/vnd.oci.image.index.v1+json"
   and (.manifests | length == 2)
   and ([.manifests[] | select(.digest == $a and .artifactType == $at)] | length == 1)
   and ([.manifests[] | select(.digest == $b and .artifactType == $ct)] | length == 1)' \
  "$SMOKE_WORK/referrers.json" >/dev/null ||
  fail "referrers response does not list exactly $a_digest and $b_digest: $(cat "$SMOKE_WORK/referrers.json")"

# An unrelated digest has no referrers: an empty index (or 404 for an unknown repository), never a listing.
other="sha256:$(printf other | sha256sum | cut -d' ' -f1)"
curl -sS -f -o "$SMOKE_WORK/referrers-none.json" "http://$REFERRERS_REGISTRY/v2/$repo/referrers/$other"
[ "$(jq '.manifests | length' "$SMOKE_WORK/referrers-none.json")" = 0 ] ||
  fail "referrers of an unrelated digest are not empty: $(cat "$SMOKE_WORK/referrers-none.json")"

# crane reads the artifact back byte for byte.
"$crane" manifest --insecure "$REFERRERS_REGISTRY/$repo@$a_digest" >"$SMOKE_WORK/artifact-a-back.json"
cmp -s "$SMOKE_WORK/artifact-a.json" "$SMOKE_WORK/artifact-a-back.json" ||
  fail "crane manifest returned different bytes for $a_digest"

pass "crane $("$crane" version): registry serve works (referrers API off); ggcr-registry lists both referrers of $subject_digest"
