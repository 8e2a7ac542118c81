#!/usr/bin/env bash
# make bench-gate: time `kibaverify gate` (release) and jq computing the same per-severity counts
# over one real-data trivy report of >= 200 MB, in the same run. Prints both, MB/s and the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${KIBAVERIFY:-target/release/kibaverify}
CACHE=${KIBASHIP_CACHE:-$HOME/.cache/kibaship}
DIR="$CACHE/bench-gate"
BIG="$DIR/trivy-big.json"
MIN_MB=${BENCH_GATE_MB:-200}
mkdir -p "$DIR"
[ -x "$BIN" ] || { echo "bench-gate: $BIN missing (cargo build --release -p kibaverify)" >&2; exit 2; }
command -v jq >/dev/null || { echo "bench-gate: jq is required (make deps)" >&2; exit 2; }

# Replicate the Results of every real trivy report in testdata/trivy into one valid report.
if [ ! -s "$BIG" ] || [ "$(stat -c %s "$BIG")" -lt $((MIN_MB * 1000000)) ]; then
  python3 - "$BIG" "$MIN_MB" testdata/trivy/*.json.golden <<'PY'
import json, sys
out, min_mb, inputs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
results = []
for path in inputs:
    with open(path) as f:
        results.extend(json.load(f).get("Results") or [])
chunk = ",".join(json.dumps(r, indent=2) for r in results)
head = '{\n  "SchemaVersion": 2,\n  "ArtifactName": "bench/replicated",\n  "ArtifactType": "container_image",\n  "Results": [\n'
with open(out, "w") as f:
    f.write(head)
    written, first = len(head), True
    while written < min_mb * 1000000:
        if not first:
            f.write(",\n")
        f.write(chunk)
        written += len(chunk) + 2
        first = False
    f.write("\n  ]\n}\n")
PY
fi
SIZE=$(stat -c %s "$BIG")
MB=$(python3 -c "print(f'{$SIZE/1e6:.1f}')")
POLICY="$DIR/policy.yaml"
printf 'version: 1\nignore-unfixed: false\nmax-counts: {critical: 1000000000}\n' > "$POLICY"

now() { date +%s.%N; }
# Warm the page cache once so both tools read from memory; each tool runs RUNS times, best kept.
cat "$BIG" > /dev/null
RUNS=${BENCH_GATE_RUNS:-3}
best() { python3 -c "import sys; print(min(float(x) for x in sys.argv[1:]))" "$@"; }
ours_times=(); jq_times=()
for _ in $(seq "$RUNS"); do
  t0=$(now)
  "$BIN" gate --report "$BIG" --policy "$POLICY" --format json > "$DIR/ours.json" || [ $? -eq 1 ]
  t1=$(now)
  jq -c '[.Results[]?.Vulnerabilities[]?.Severity] | reduce .[] as $s ({critical:0,high:0,medium:0,low:0,unknown:0}; .[($s // "UNKNOWN" | if . == "" then "UNKNOWN" else . end | ascii_downcase)] += 1)' "$BIG" > "$DIR/jq.json"
  t2=$(now)
  ours_times+=("$(python3 -c "print($t1 - $t0)")"); jq_times+=("$(python3 -c "print($t2 - $t1)")")
done
t_ours=$(best "${ours_times[@]}"); t_jq=$(best "${jq_times[@]}")
echo "runs: $RUNS each, interleaved; best shown (load average: $(cut -d' ' -f1-3 /proc/loadavg))"

# Peak memory (max RSS, /usr/bin/time): streaming, and with --attestation-out (the report held
# once and embedded in the statement).
rss_mb() {
  /usr/bin/time -f %M -o "$DIR/rss" "$@" > /dev/null 2>&1 || true
  python3 -c "import sys; print(f'{int(open(sys.argv[1]).read().split()[-1]) / 1000:.0f}')" "$DIR/rss"
}
if [ -x /usr/bin/time ]; then
  rss_stream=$(rss_mb "$BIN" gate --report "$BIG" --policy "$POLICY" --format json)
  rss_attest=$(rss_mb "$BIN" gate --report "$BIG" --policy "$POLICY" --format json \
    --image "bench/replicated@sha256:$(printf '%064d' 0)" --attestation-out "$DIR/attestation.json")
  rm -f "$DIR/attestation.json"
else
  echo "bench-gate: /usr/bin/time missing (apt-get install time): no memory figures" >&2
  rss_stream=""; rss_attest=""
fi

ours_counts=$(jq -c '.counts.reported' "$DIR/ours.json")
jq_counts=$(jq -c '.' "$DIR/jq.json")
python3 - "$SIZE" "$t_ours" "$t_jq" "$ours_counts" "$jq_counts" "$rss_stream" "$rss_attest" <<'PY'
import json, sys
size, ours_s, jq_s = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
ours, theirs = json.loads(sys.argv[4]), json.loads(sys.argv[5])
rss_stream, rss_attest = sys.argv[6], sys.argv[7]
mb = size / 1e6
print(f"report: {mb:.1f} MB (real trivy results replicated)")
print(f"kibaverify gate: {ours_s:7.3f} s  {mb/ours_s:8.1f} MB/s  counts {ours}")
print(f"jq (counts)    : {jq_s:7.3f} s  {mb/jq_s:8.1f} MB/s  counts {theirs}")
print(f"ratio jq/kibaverify: {jq_s/ours_s:.1f}x")
if rss_stream and rss_attest:
    print(f"peak RSS: streaming {rss_stream} MB; with --attestation-out {rss_attest} MB "
          f"({int(rss_attest) / mb:.2f}x the report)")
if ours != theirs:
    print("bench-gate: counts differ between kibaverify and jq", file=sys.stderr)
    sys.exit(1)
PY
