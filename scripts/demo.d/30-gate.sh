#!/usr/bin/env bash
# Demo step: gate a real trivy report (testdata/trivy/alpine-310.json.golden). It fails on two
# MEDIUM OpenSSL vulnerabilities (exit 1), then passes once a .trivyignore.yaml accepts them
# (exit 0). The step itself fails if an exit code is not the expected one.
# With --check-bad-input (make test-gate-cli) it also checks that bad input exits 2.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${KIBAVERIFY:-target/release/kibaverify}
REPORT=testdata/trivy/alpine-310.json.golden
POLICY=policies/gate/demo.yaml
IGNORE=testdata/trivy/demo.trivyignore.yaml
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

expect_exit() { # expect_exit CODE DESCRIPTION -- command...
  local want=$1 what=$2; shift 3
  local got=0
  "$@" >"$WORK/out" 2>"$WORK/err" || got=$?
  if [ "$got" -ne "$want" ]; then
    echo "gate demo: $what: exit $got, expected $want" >&2
    cat "$WORK/out" "$WORK/err" >&2
    exit 1
  fi
}

echo "-- kibaverify gate --report $REPORT --policy $POLICY"
expect_exit 1 "gate without exceptions" -- "$BIN" gate --report "$REPORT" --policy "$POLICY" --colour never
cat "$WORK/out"
echo "   exit 1: the gate failed, as expected"
echo
echo "-- kibaverify gate ... --ignorefile $IGNORE"
expect_exit 0 "gate with the ignore file" -- "$BIN" gate --report "$REPORT" --policy "$POLICY" \
  --ignorefile "$IGNORE" --colour never --junit-out "$WORK/gate.xml" --sarif-out "$WORK/gate.sarif" \
  --image "registry.local/demo/app@sha256:$(printf 'demo' | sha256sum | cut -c1-64)" \
  --attestation-out "$WORK/vuln.intoto.json"
cat "$WORK/out"
echo "   exit 0: the gate passed with the exceptions applied"
jq -e '.predicateType == "https://cosign.sigstore.dev/attestation/vuln/v1"' "$WORK/vuln.intoto.json" >/dev/null
jq -e '.runs[0].results | length == 4' "$WORK/gate.sarif" >/dev/null
python3 -c 'import sys, xml.etree.ElementTree as E; r = E.parse(sys.argv[1]).getroot(); assert r.tag == "testsuites"' "$WORK/gate.xml"
echo "   wrote JUnit, SARIF and an in-toto vuln attestation"

[ "${1:-}" = "--check-bad-input" ] || exit 0

echo "-- bad input exits 2"
head -c 3000 "$REPORT" > "$WORK/truncated.json"
expect_exit 2 "truncated report" -- "$BIN" gate --report "$WORK/truncated.json" --policy "$POLICY"
grep -q "truncated" "$WORK/err"
echo '{"SchemaVersion":1,"Results":[]}' > "$WORK/v1.json"
expect_exit 2 "SchemaVersion 1" -- "$BIN" gate --report "$WORK/v1.json" --policy "$POLICY"
grep -q "SchemaVersion: 1" "$WORK/err"
echo '{"SchemaVersion":2,"Results":[{"Target":"x","Vulnerabilities":[{"VulnerabilityID":"CVE-1","Severity":4}]}]}' > "$WORK/types.json"
expect_exit 2 "wrong types" -- "$BIN" gate --report "$WORK/types.json" --policy "$POLICY"
grep -q "invalid type" "$WORK/err"
printf 'version: 1\nfail-on-severity: high\nignore-unfxed: true\n' > "$WORK/unknown.yaml"
expect_exit 2 "policy with an unknown key" -- "$BIN" gate --report "$REPORT" --policy "$WORK/unknown.yaml"
grep -q "unknown field \`ignore-unfxed\`" "$WORK/err" && grep -q "line 3" "$WORK/err"
printf 'CVE-2019-1549\n' > "$WORK/.trivyignore"
expect_exit 2 "exception without expiry" -- "$BIN" gate --report "$REPORT" --policy "$POLICY" --ignorefile "$WORK/.trivyignore"
grep -q "has no expiry date" "$WORK/err"
printf 'version: 1\nfail-on-severity: medium\nexpired-exceptions: error\n' > "$WORK/expired.yaml"
printf 'CVE-2019-1549 exp:2020-01-01\n' > "$WORK/expired.trivyignore"
expect_exit 2 "expired exception refused" -- "$BIN" gate --report "$REPORT" --policy "$WORK/expired.yaml" --ignorefile "$WORK/expired.trivyignore"
grep -q "expired on 2020-01-01" "$WORK/err"
expect_exit 2 "attestation without a digest" -- "$BIN" gate --report "$REPORT" --policy "$POLICY" --image alpine:3.10 --attestation-out "$WORK/x.json"
expect_exit 2 "missing report" -- "$BIN" gate --report "$WORK/none.json" --policy "$POLICY"
echo "   all bad input exited 2 with a clear message"
