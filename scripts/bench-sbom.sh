#!/usr/bin/env bash
# make bench-sbom: `kibaverify sbom attach` (schema validation + push as an OCI 1.1 referrer) of a ~50 MB
# CycloneDX 1.6 document beside `oras attach` of the same file to the same image on the same registry, in one
# run, on two registries one after the other: go-containerregistry's (with the referrers API) and Debian's
# docker-registry (distribution 2.8, without it: both tools write the fallback tag). Prints, for each, the best
# of BENCH_SBOM_RUNS runs of each tool, the ratio (target <= 2x oras) and kibaverify's peak memory against the
# file's size (target <= 4x).
# Expects target/release/{kibaverify,kibaship-harness} (the make target builds them).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/peers/lib.sh
. scripts/peers/lib.sh

KIBAVERIFY=target/release/kibaverify
HARNESS=target/release/kibaship-harness
MB="${BENCH_SBOM_MB:-50}"
RUNS="${BENCH_SBOM_RUNS:-3}"
for tool in "$KIBAVERIFY" "$HARNESS"; do
  [ -x "$tool" ] || { echo "bench-sbom: $tool is missing (run \`make bench-sbom\`)" >&2; exit 2; }
done
ORAS="$(peer_bin oras)" || { echo "bench-sbom: the oras peer is missing (make peers)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench-sbom: /usr/bin/time is missing (apt-get install time)" >&2; exit 2; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/kibaship-bench-sbom.XXXXXX")"
# (This trap replaces lib.sh's, so its work directory is removed here too.)
cleanup() {
  for mode in referrers plain; do
    "$HARNESS" registry stop --state-dir "$WORK/registry-$mode" >/dev/null 2>&1 || true
  done
  rm -rf "$WORK" "$SMOKE_WORK"
}
trap cleanup EXIT

# One document per attach: each push then uploads its blob (a registry skips a blob it already has). They
# differ only in serialNumber; each is valid CycloneDX 1.6 (kibaverify validates every one before pushing).
python3 - "$WORK" "$MB" "$RUNS" <<'PY'
import json, sys, uuid, hashlib
work, mb, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
components, size, n = [], 0, 0
while size < mb * 1_000_000:
    name = f"bench-package-{n}"
    c = {
        "type": "library",
        "bom-ref": f"pkg:npm/{name}@1.{n % 100}.{n}",
        "name": name,
        "version": f"1.{n % 100}.{n}",
        "purl": f"pkg:npm/{name}@1.{n % 100}.{n}",
        "description": "A package of the kibaship SBOM benchmark, repeated until the document is large enough.",
        "licenses": [{"license": {"id": "MIT"}}],
        "hashes": [{"alg": "SHA-256", "content": hashlib.sha256(name.encode()).hexdigest()}],
    }
    components.append(c)
    size += len(json.dumps(c)) + 2
    n += 1
for i in range(2 * runs):
    doc = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": f"urn:uuid:{uuid.UUID(int=i + 1)}",
        "version": 1,
        "metadata": {"timestamp": "2026-12-05T00:00:00Z", "component": {"type": "application", "name": "bench"}},
        "components": components,
    }
    with open(f"{work}/sbom-{i}.cdx.json", "w") as f:
        json.dump(doc, f)
print(f"bench-sbom: {2 * runs} CycloneDX 1.6 documents of {n} components each", file=sys.stderr)
PY
SIZE=$(stat -c %s "$WORK/sbom-0.cdx.json")

echo "oras: $("$ORAS" version | head -1)"
cat "$WORK"/sbom-*.cdx.json > /dev/null # page cache
now() { date +%s.%N; }

# One registry of MODE ("referrers" or "plain"), started empty: the same documents are new to it.
bench_on() {
  local mode=$1 name=$2
  eval "$("$HARNESS" registry start --mode "$mode" --state-dir "$WORK/registry-$mode")"
  REG="$KIBASHIP_REGISTRY"
  IMAGE="$("$HARNESS" fixtures push --registry "$REG" | grep '/fixtures/app:' | head -1)"
  [ -n "$IMAGE" ] || { echo "bench-sbom: no fixture image pushed" >&2; exit 2; }
  echo
  echo "registry: $name on $REG; image $IMAGE"
  ours_times=(); oras_times=(); rss=()
  for run in $(seq 0 $((RUNS - 1))); do
    ours="$WORK/sbom-$((2 * run)).cdx.json"
    theirs="$WORK/sbom-$((2 * run + 1)).cdx.json"
    t0=$(now)
    /usr/bin/time -f %M -o "$WORK/rss" "$KIBAVERIFY" sbom attach --insecure-registry "$REG" --file "$ours" "$IMAGE" \
      > "$WORK/ours.out" 2> "$WORK/ours.err" || { cat "$WORK/ours.err" >&2; exit 1; }
    t1=$(now)
    (cd "$WORK" && "$ORAS" attach --plain-http --artifact-type application/vnd.cyclonedx+json "$IMAGE" \
      "$(basename "$theirs"):application/vnd.cyclonedx+json" > oras.out 2>&1) || { cat "$WORK/oras.out" >&2; exit 1; }
    t2=$(now)
    ours_times+=("$(python3 -c "print($t1 - $t0)")"); oras_times+=("$(python3 -c "print($t2 - $t1)")")
    rss+=("$(tail -1 "$WORK/rss")")
  done
  # Both tools' referrers are there: 2 x RUNS SBOMs of that artifact type.
  listed=$("$ORAS" discover --plain-http --format json --artifact-type application/vnd.cyclonedx+json "$IMAGE" |
    python3 -c "import json,sys; d=json.load(sys.stdin); print(len(d.get('referrers') or d.get('manifests') or []))")

  python3 - "$SIZE" "$RUNS" "$listed" "${ours_times[*]}" "${oras_times[*]}" "${rss[*]}" <<'PY'
import sys
size, runs, listed = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
ours = [float(x) for x in sys.argv[4].split()]
oras = [float(x) for x in sys.argv[5].split()]
rss = [int(x) * 1024 for x in sys.argv[6].split()]
o, t, peak = min(ours), min(oras), max(rss)
ratio, mem = o / t, peak / size
print(f"machine: {open('/proc/loadavg').read().split()[:3]} load average at the end; runs: {runs} each, interleaved, best shown")
print(f"{'figure':<62}{'measured':>12}{'target':>12}  verdict")
print(f"{'kibaverify sbom attach (validate + push), %.1f MB' % (size / 1e6):<62}{o:>10.3f} s")
print(f"{'oras attach, same size':<62}{t:>10.3f} s")
print(f"{'ratio kibaverify / oras':<62}{ratio:>11.2f}x{'<= 2x':>12}  {'PASS' if ratio <= 2 else 'MISS'}")
print(f"{'kibaverify peak memory (max RSS over runs) / file size':<62}{mem:>11.2f}x{'<= 4x':>12}  {'PASS' if mem <= 4 else 'MISS'}")
print(f"{'kibaverify peak memory':<62}{peak / 1e6:>9.0f} MB")
print(f"{'SBOM referrers oras discover lists afterwards':<62}{listed:>12}{2 * runs:>12}  {'PASS' if listed == 2 * runs else 'MISS'}")
med = lambda xs: sorted(xs)[len(xs) // 2]
print(f"{'medians (not the verdict): kibaverify / oras, ratio':<62}{med(ours):.3f} / {med(oras):.3f} s, {med(ours) / med(oras):.2f}x")
print("all runs, s: kibaverify " + " ".join(f"{x:.3f}" for x in ours) + " | oras " + " ".join(f"{x:.3f}" for x in oras))
PY
  "$HARNESS" registry stop --state-dir "$WORK/registry-$mode" >/dev/null 2>&1 || true
}

bench_on referrers "ggcr-registry $(awk '$1 == "ggcr-registry" { print $2 }' tools/peers.txt) (referrers API)"
bench_on plain "docker-registry $(dpkg-query -W -f '${Version}' docker-registry 2>/dev/null || echo '?') (fallback tag)"
