#!/usr/bin/env bash
# make bench-digest: resolve 1,000 distinct tags to digests on a local docker-registry with kibaverify, beside
# skopeo inspect and the registry's own ceiling (hey sending the same HEAD manifest request), all in this run.
# Prints the three rates (refs/s) and the ratios against the targets (>= 20x skopeo, >= 70% of the ceiling).
# Expects target/release/{kibaverify,kibaship-harness} (the make target builds them).
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT="${BENCH_TAGS:-1000}"
CONCURRENCY="${BENCH_CONCURRENCY:-32}"
SKOPEO_SAMPLE="${BENCH_SKOPEO_SAMPLE:-100}"
HEY_REQUESTS="${BENCH_HEY_REQUESTS:-10000}"
KIBAVERIFY=target/release/kibaverify
HARNESS=target/release/kibaship-harness
ACCEPT="application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json"

for tool in "$KIBAVERIFY" "$HARNESS"; do
  [ -x "$tool" ] || { echo "bench-digest: $tool is missing (run \`make bench-digest\`)" >&2; exit 1; }
done
for tool in skopeo hey docker-registry; do
  command -v "$tool" >/dev/null || { echo "bench-digest: $tool is not installed (run \`make deps\`)" >&2; exit 1; }
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/kibaship-bench-digest.XXXXXX")"
cleanup() { "$HARNESS" registry stop --state-dir "$WORK/registry" >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT

now() { date +%s.%N; }
rate() { awk -v n="$1" -v s="$2" -v e="$3" 'BEGIN { printf "%.0f", n / (e - s) }'; }

eval "$("$HARNESS" registry start --mode plain --state-dir "$WORK/registry")"
REG="$KIBASHIP_REGISTRY"
echo "registry: docker-registry $(dpkg-query -W -f='${Version}' docker-registry 2>/dev/null || echo '?') on $REG"

t0="$(now)"
"$HARNESS" tags push --registry "$REG" --repository bench/digest --count "$COUNT" >"$WORK/tags.txt"
t1="$(now)"
echo "pushed $COUNT distinct tags of one image in $(awk -v s="$t0" -v e="$t1" 'BEGIN { printf "%.1f", e - s }') s"

# Warm-up (untimed): the registry's first reads of each tag's files, and the page cache.
"$KIBAVERIFY" digest --insecure-registry "$REG" --concurrency "$CONCURRENCY" --file "$WORK/tags.txt" >/dev/null

best=""
for run in 1 2 3; do
  s="$(now)"
  "$KIBAVERIFY" digest --insecure-registry "$REG" --concurrency "$CONCURRENCY" --file "$WORK/tags.txt" >"$WORK/digests.txt"
  e="$(now)"
  r="$(rate "$COUNT" "$s" "$e")"
  echo "kibaverify digest run $run: $COUNT refs, $r refs/s"
  if [ -z "$best" ] || [ "$r" -gt "$best" ]; then best="$r"; fi
done
KV="$best"
[ "$(wc -l <"$WORK/digests.txt")" -eq "$COUNT" ] || { echo "bench-digest: kibaverify resolved $(wc -l <"$WORK/digests.txt") of $COUNT" >&2; exit 1; }
[ "$(cut -d@ -f2 "$WORK/digests.txt" | sort -u | wc -l)" -eq 1 ] || { echo "bench-digest: tags resolved to different digests" >&2; exit 1; }

# skopeo: one process per reference, sequentially (how scripts call it), over a sample; the rate is
# extrapolated to the full list.
head -n "$SKOPEO_SAMPLE" "$WORK/tags.txt" >"$WORK/sample.txt"
s="$(now)"
while IFS= read -r ref; do
  skopeo inspect --raw --tls-verify=false "docker://$ref" </dev/null | sha256sum >/dev/null
done <"$WORK/sample.txt"
e="$(now)"
SK="$(rate "$SKOPEO_SAMPLE" "$s" "$e")"
echo "skopeo inspect --raw: $SKOPEO_SAMPLE refs (sample of $COUNT, one process each, sequential), $SK refs/s"

# The registry's ceiling: the same HEAD manifest request (same Accept header) at the same concurrency, best of
# 3 like kibaverify. hey repeats one URL, so it hits one tag; kibaverify spreads over all of them.
CEIL=""
for run in 1 2 3; do
  HEY_OUT="$(hey -n "$HEY_REQUESTS" -c "$CONCURRENCY" -m HEAD -H "Accept: $ACCEPT" \
    "http://$REG/v2/bench/digest/manifests/tag-00000")"
  grep -q '\[200\]' <<<"$HEY_OUT" || { echo "bench-digest: hey got no 200 answers: $HEY_OUT" >&2; exit 1; }
  r="$(awk '/Requests\/sec/ { printf "%.0f", $2 }' <<<"$HEY_OUT")"
  codes="$(awk '/Status code distribution/ { on = 1; next } on && /\[/ { printf "%s ", $0 } on && /^$/ { on = 0 }' <<<"$HEY_OUT" | tr -s ' \t' ' ')"
  echo "hey HEAD manifest run $run: $HEY_REQUESTS requests at concurrency $CONCURRENCY, $r requests/s (status codes:${codes})"
  if [ -z "$CEIL" ] || [ "$r" -gt "$CEIL" ]; then CEIL="$r"; fi
done

echo
printf '%-44s %10s\n' "tool (concurrency $CONCURRENCY)" "refs/s"
printf '%-44s %10s\n' "kibaverify digest (best of 3, $COUNT tags)" "$KV"
printf '%-44s %10s\n' "skopeo inspect (sequential, $SKOPEO_SAMPLE-ref sample)" "$SK"
printf '%-44s %10s\n' "registry ceiling (hey HEAD, best of 3)" "$CEIL"
awk -v kv="$KV" -v sk="$SK" -v ceil="$CEIL" 'BEGIN {
  vs = kv / sk; share = 100 * kv / ceil
  printf "kibaverify vs skopeo:   %.1fx  (target >= 20x: %s)\n", vs, (vs >= 20 ? "met" : "NOT met")
  printf "kibaverify vs ceiling:  %.0f%%  (target >= 70%%: %s)\n", share, (share >= 70 ? "met" : "NOT met")
}'
