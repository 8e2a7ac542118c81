#!/usr/bin/env bash
# oras: `oras attach` two artifacts of different types to a pushed image and `oras discover` them, against
# Debian's docker-registry (no referrers API: oras writes and reads the `sha256-<digest>` referrers tag) and
# ggcr-registry (the referrers API). discover must list exactly what was attached, its artifactType filter
# must select one, and `oras pull` must return the attached file byte for byte.
# shellcheck source=scripts/peers/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

oras="$(peer_bin oras)"
export HOME="$SMOKE_WORK/home" # oras keeps its credential config under $HOME: keep it out of the real home
mkdir -p "$HOME"
cd "$SMOKE_WORK" || fail "cannot enter $SMOKE_WORK"

start_docker_registry
start_referrers_registry

sbom_type="application/vnd.kibaship.smoke.sbom.v1+json"
note_type="application/vnd.kibaship.smoke.note.v1+json"
printf '{"bomFormat":"CycloneDX","specVersion":"1.5","components":[]}\n' >sbom.json
printf 'reviewed by the smoke test\n' >note.txt

for registry in "$DOCKER_REGISTRY" "$REFERRERS_REGISTRY"; do
  if [ "$registry" = "$DOCKER_REGISTRY" ]; then kind=docker-registry; else kind=ggcr-registry; fi
  digest="$(push_small_image "$registry" smoke/oras v1)"
  subject="$registry/smoke/oras@$digest"

  run "attach-sbom-$kind" "$oras" attach --plain-http --no-tty --artifact-type "$sbom_type" \
    --export-manifest "sbom-manifest-$kind.json" "$subject" sbom.json:application/json
  run "attach-note-$kind" "$oras" attach --plain-http --no-tty --artifact-type "$note_type" \
    --export-manifest "note-manifest-$kind.json" "$subject" note.txt:text/plain
  sbom_digest="sha256:$(sha256sum "sbom-manifest-$kind.json" | cut -d' ' -f1)"
  note_digest="sha256:$(sha256sum "note-manifest-$kind.json" | cut -d' ' -f1)"
  jq -e --arg d "$digest" --arg t "$sbom_type" '.subject.digest == $d and .artifactType == $t' \
    "sbom-manifest-$kind.json" >/dev/null || fail "$kind: oras attach wrote no subject/artifactType: $(cat "sbom-manifest-$kind.json")"

  # Where the referrers live on the server side.
  if [ "$kind" = docker-registry ]; then
    curl -sS -f -H 'Accept: application/vnd.oci.image.index.v1+json' \
      "http://$registry/v2/smoke/oras/manifests/${digest/:/-}" >"fallback-$kind.json" ||
      fail "$kind: no referrers tag ${digest/:/-} after oras attach"
    listed="fallback-$kind.json"
  else
    curl -sS -f "http://$registry/v2/smoke/oras/referrers/$digest" >"referrers-$kind.json" ||
      fail "$kind: GET referrers of $digest failed"
    listed="referrers-$kind.json"
  fi
  jq -e --arg a "$sbom_digest" --arg b "$note_digest" \
    '[.manifests[].digest] | sort == ([$a, $b] | sort)' "$listed" >/dev/null ||
    fail "$kind: the registry's referrers list is not exactly {$sbom_digest, $note_digest}: $(cat "$listed")"

  # discover: both, with their artifact types.
  "$oras" discover --plain-http --format json "$subject" >"discover-$kind.json" 2>"discover-$kind.err" ||
    fail "$kind: oras discover failed: $(cat "discover-$kind.err")"
  jq -e --arg a "$sbom_digest" --arg b "$note_digest" --arg ta "$sbom_type" --arg tb "$note_type" \
    '(.referrers | length == 2)
     and ([.referrers[] | select(.digest == $a and .artifactType == $ta)] | length == 1)
     and ([.referrers[] | select(.digest == $b and .artifactType == $tb)] | length == 1)' \
    "discover-$kind.json" >/dev/null ||
    fail "$kind: oras discover does not show both referrers with their types: $(cat "discover-$kind.json")"

  # discover --artifact-type selects one.
  "$oras" discover --plain-http --format json --artifact-type "$note_type" "$subject" >"discover-note-$kind.json" \
    2>"discover-note-$kind.err" || fail "$kind: oras discover --artifact-type failed: $(cat "discover-note-$kind.err")"
  jq -e --arg b "$note_digest" '[.referrers[].digest] == [$b]' "discover-note-$kind.json" >/dev/null ||
    fail "$kind: oras discover --artifact-type $note_type did not select only $note_digest: $(cat "discover-note-$kind.json")"

  # pull the SBOM back.
  mkdir -p "pulled-$kind"
  run "pull-$kind" "$oras" pull --plain-http --no-tty -o "pulled-$kind" "$registry/smoke/oras@$sbom_digest"
  cmp -s sbom.json "pulled-$kind/sbom.json" || fail "$kind: oras pull returned different SBOM bytes"
done

pass "oras $("$oras" version | awk '/^Version/ { print $2 }'): attach + discover (+ type filter, pull) via the referrers tag on docker-registry and the referrers API on ggcr-registry"
