#!/usr/bin/env bash
# ggcr-registry (go-containerregistry's registry, referrers API on): the referrers answer follows the
# distribution spec — artifactType is the manifest's artifactType, else its config.mediaType; the
# ?artifactType= filter is applied and announced with OCI-Filters-Applied — while --raw-referrers serves
# go-containerregistry's own answer (artifactType = config.mediaType, no filter), kept for robustness tests.
# shellcheck source=scripts/peers/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bin="$(peer_bin ggcr-registry)"
repo="smoke/refs"
empty_digest="sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
a_type="application/vnd.kibaship.smoke.a.v1+json"
b_config="application/vnd.kibaship.smoke.b.config.v1+json"

# Pushes a subject and two referrers (A: artifactType + empty config; B: typed by config) to REGISTRY.
# Sets SUBJECT, A_DIGEST, B_DIGEST.
push_referrers() {
  local registry="$1" size mt
  SUBJECT="$(push_small_image "$registry" "$repo" v1)"
  curl -sS -f -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://$registry/v2/$repo/manifests/$SUBJECT" >"$SMOKE_WORK/subject.json"
  size="$(wc -c <"$SMOKE_WORK/subject.json")"
  mt="$(jq -r .mediaType "$SMOKE_WORK/subject.json")"
  printf '{}' | upload_blob "$registry" "$repo" "$empty_digest"
  for which in a b; do
    jq -n --arg d "$SUBJECT" --argjson s "$size" --arg t "$mt" --arg e "$empty_digest" \
      --arg which "$which" --arg at "$a_type" --arg bc "$b_config" '{
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: { mediaType: (if $which == "a" then "application/vnd.oci.empty.v1+json" else $bc end),
                  digest: $e, size: 2 },
        layers: [ { mediaType: "application/vnd.oci.empty.v1+json", digest: $e, size: 2 } ],
        subject: { mediaType: $t, digest: $d, size: $s }
      } + (if $which == "a" then { artifactType: $at } else {} end)' >"$SMOKE_WORK/ref-$which.json"
  done
  A_DIGEST="$(put_manifest "$registry" "$repo" "$SMOKE_WORK/ref-a.json")"
  B_DIGEST="$(put_manifest "$registry" "$repo" "$SMOKE_WORK/ref-b.json")"
}

# GET referrers with an optional query; body to $SMOKE_WORK/<label>.json, headers to <label>.headers.
get_referrers() {
  local registry="$1" query="$2" label="$3"
  curl -sS -f -D "$SMOKE_WORK/$label.headers" -o "$SMOKE_WORK/$label.json" \
    "http://$registry/v2/$repo/referrers/$SUBJECT$query" || fail "GET referrers$query on $registry failed"
  grep -qi '^content-type: application/vnd.oci.image.index.v1+json' "$SMOKE_WORK/$label.headers" ||
    fail "$label: Content-Type is not the OCI index type"
}

# 1. Default (spec) mode.
start_referrers_registry
push_referrers "$REFERRERS_REGISTRY"
get_referrers "$REFERRERS_REGISTRY" "" all
jq -e --arg a "$A_DIGEST" --arg b "$B_DIGEST" --arg at "$a_type" --arg bc "$b_config" \
  '(.manifests | length == 2)
   and ([.manifests[] | select(.digest == $a and .artifactType == $at)] | length == 1)
   and ([.manifests[] | select(.digest == $b and .artifactType == $bc)] | length == 1)' \
  "$SMOKE_WORK/all.json" >/dev/null || fail "spec mode: wrong artifactTypes: $(cat "$SMOKE_WORK/all.json")"
get_referrers "$REFERRERS_REGISTRY" "?artifactType=${a_type//+/%2B}" filtered
jq -e --arg a "$A_DIGEST" '[.manifests[].digest] == [$a]' "$SMOKE_WORK/filtered.json" >/dev/null ||
  fail "spec mode: filter on $a_type did not select only $A_DIGEST: $(cat "$SMOKE_WORK/filtered.json")"
grep -qi '^oci-filters-applied: artifactType' "$SMOKE_WORK/filtered.headers" ||
  fail "spec mode: filtered answer lacks OCI-Filters-Applied: artifactType"
if grep -qi '^oci-filters-applied' "$SMOKE_WORK/all.headers"; then
  fail "spec mode: unfiltered answer claims OCI-Filters-Applied"
fi

# 2. --raw-referrers: go-containerregistry's own answer.
port="$(free_port)"
start_bg ggcr-registry-raw "$bin" --raw-referrers --address "127.0.0.1:$port"
raw="127.0.0.1:$port"
wait_http "http://$raw/v2/" ggcr-registry-raw
push_referrers "$raw"
get_referrers "$raw" "?artifactType=${a_type//+/%2B}" raw
jq -e --arg a "$A_DIGEST" '(.manifests | length == 2)
   and ([.manifests[] | select(.digest == $a and .artifactType == "application/vnd.oci.empty.v1+json")] | length == 1)' \
  "$SMOKE_WORK/raw.json" >/dev/null ||
  fail "raw mode no longer shows upstream's config.mediaType artifactType / no filtering (upstream fixed? drop the shim): $(cat "$SMOKE_WORK/raw.json")"
if grep -qi '^oci-filters-applied' "$SMOKE_WORK/raw.headers"; then fail "raw mode claims OCI-Filters-Applied"; fi

pass "ggcr-registry: spec artifactType + artifactType filter (OCI-Filters-Applied); --raw-referrers keeps go-containerregistry's answer"
