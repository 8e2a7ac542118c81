#!/usr/bin/env bash
# Demo step 10: fixture images built without a Docker engine, their digests resolved by kibaverify and
# cross-checked byte for byte with skopeo, and an artifact attached as a referrer and listed back.
# Needs KIBASHIP_REGISTRY (a plain-HTTP registry started by scripts/demo.sh). Any failure fails the demo.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${KIBASHIP_REGISTRY:?run through scripts/demo.sh, which starts the registry}"
REG="$KIBASHIP_REGISTRY"
KIBAVERIFY="${KIBAVERIFY:-target/release/kibaverify}"
HARNESS="${KIBASHIP_HARNESS:-target/release/kibaship-harness}"
WORK="${KIBASHIP_DEMO_DIR:-.demo}/10-registry"
rm -rf "$WORK" && mkdir -p "$WORK"

fail() { printf 'demo 10-registry: FAILED: %s\n' "$*" >&2; exit 1; }
skopeo_raw() { skopeo inspect --raw --tls-verify=false "docker://$1" </dev/null; }
sha256_of_raw() { skopeo_raw "$1" | sha256sum | awk '{print "sha256:" $1}'; }

echo "1. build fixture images with umoci (no Docker engine) and push them with skopeo"
"$HARNESS" fixtures push --long --registry "$REG" >"$WORK/fixtures.tsv" || fail "pushing the fixtures"
cut -f1 "$WORK/fixtures.tsv" >"$WORK/refs.txt"
sed 's/^/   /' "$WORK/refs.txt"

echo "2. resolve every digest with kibaverify (one concurrent run)"
"$KIBAVERIFY" digest --insecure-registry "$REG" --file "$WORK/refs.txt" >"$WORK/digests.txt" ||
  fail "kibaverify digest exited $? (see its message above)"
[ "$(wc -l <"$WORK/digests.txt")" -eq "$(wc -l <"$WORK/refs.txt")" ] ||
  fail "kibaverify printed $(wc -l <"$WORK/digests.txt") digests for $(wc -l <"$WORK/refs.txt") references"

echo "3. cross-check every digest with skopeo (sha256 of the manifest bytes skopeo reads)"
declare -A OURS
while IFS= read -r line; do
  ref="${line%@*}"; digest="${line##*@}"
  OURS["$ref"]="$digest"
done <"$WORK/digests.txt"
rows=()
checked=0
while IFS=$'\t' read -r ref media_type kind; do
  ours="${OURS[$ref]:-}"
  [ -n "$ours" ] || fail "kibaverify printed no digest for $ref"
  theirs="$(sha256_of_raw "$ref")" || fail "skopeo could not read $ref"
  [ "$ours" = "$theirs" ] || fail "$ref: kibaverify says $ours, skopeo's bytes hash to $theirs"
  checked=$((checked + 1))
  rows+=("$ref|$media_type|$ours|same")
  if [ "$kind" = index ]; then
    # The platform manifest: kibaverify --platform vs the index entry skopeo reads, and that entry's bytes.
    plat="$("$KIBAVERIFY" digest --insecure-registry "$REG" --platform linux/arm64 "$ref" </dev/null)" ||
      fail "kibaverify digest --platform linux/arm64 $ref"
    plat_ours="${plat##*@}"
    plat_index="$(skopeo_raw "$ref" | jq -r '.manifests[] | select(.platform.os=="linux" and .platform.architecture=="arm64") | .digest')"
    repo="${ref%:*}"
    plat_bytes="$(sha256_of_raw "$repo@$plat_index")" || fail "skopeo could not read $repo@$plat_index"
    if [ "$plat_ours" != "$plat_index" ] || [ "$plat_index" != "$plat_bytes" ]; then
      fail "$ref linux/arm64: kibaverify says $plat_ours, the index lists $plat_index, its bytes hash to $plat_bytes"
    fi
    checked=$((checked + 1))
    rows+=("$ref (linux/arm64)|platform manifest|$plat_ours|same")
  fi
done <"$WORK/fixtures.tsv"
echo "   $checked digests checked, all equal"

echo "4. attach an artifact to fixtures/app with kibaverify and list it back"
APP="$REG/fixtures/app:v1"
APP_DIGEST="${OURS[$APP]}"
printf '{"demo":"kibaship","subject":"%s"}\n' "$APP_DIGEST" >"$WORK/demo-note.json"
ARTIFACT_TYPE="application/vnd.kibaship.demo.note+json"
artifact="$("$KIBAVERIFY" attach --insecure-registry "$REG" --artifact-type "$ARTIFACT_TYPE" \
  --media-type application/json --file "$WORK/demo-note.json" "$APP")" || fail "kibaverify attach"
"$KIBAVERIFY" referrers --insecure-registry "$REG" "$APP" >"$WORK/referrers.txt" || fail "kibaverify referrers"
sed 's/^/   /' "$WORK/referrers.txt"
grep -q "^$artifact"$'\t'"$ARTIFACT_TYPE" "$WORK/referrers.txt" ||
  fail "kibaverify referrers does not list the attached artifact $artifact ($ARTIFACT_TYPE)"
# skopeo reads what kibaverify wrote: the artifact's subject, and the fallback index (no referrers API here).
subject="$(skopeo_raw "$REG/fixtures/app@$artifact" | jq -r '.subject.digest')" || fail "skopeo could not read the artifact"
[ "$subject" = "$APP_DIGEST" ] || fail "the artifact's subject is $subject, expected $APP_DIGEST"
fallback="$REG/fixtures/app:${APP_DIGEST/:/-}"
skopeo_raw "$fallback" | jq -e --arg a "$artifact" '[.manifests[].digest] | index($a) != null' >/dev/null ||
  fail "the fallback index $fallback does not list $artifact"
rows+=("$REG/fixtures/app@${artifact:0:19}...|$ARTIFACT_TYPE (referrer)|$artifact|subject ok")

echo
echo "Summary (digests resolved by kibaverify, checked against skopeo)"
fmt='  %-44s %-44s %-21s %s\n'
# shellcheck disable=SC2059
printf "$fmt" REFERENCE "MEDIA TYPE" DIGEST SKOPEO
for row in "${rows[@]}"; do
  IFS='|' read -r ref mt digest check <<<"$row"
  # shellcheck disable=SC2059
  printf "$fmt" "${ref#"$REG/"}" "${mt#application/vnd.}" "${digest:0:19}..." "$check"
done
