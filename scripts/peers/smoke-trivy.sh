#!/usr/bin/env bash
# covers: trivy-db
# trivy v0.74.0 (built from its Go module) scanning offline, with a vulnerability DB built here by trivy-db
# (the version trivy's go.mod pins) from an advisory of ours in GitHub Advisory Database (OSV) form:
# testdata/trivy/vuln-list/ghsa/... (lodash < 4.17.21: CVE-2021-23337, HIGH). Then:
#   - `trivy fs --scanners vuln` of an npm lockfile with lodash 4.17.20 finds exactly that CVE (HIGH, fixed in
#     4.17.21) and `--exit-code 1` fails; 4.17.21 finds nothing and exits 0;
#   - `--scanners secret` finds a GitHub token written into the temp dir (not kept in the repo);
#   - `--scanners misconfig` with trivy's embedded checks flags the Dockerfile that runs as root (DS-0002).
# Every run has --skip-db-update --skip-java-db-update --offline-scan --skip-check-update --skip-version-check and
# its own --cache-dir: no network, no listener.
source "$(dirname "$0")/lib.sh"

trivy="$(peer_bin trivy)"
trivydb="$(peer_bin trivy-db)"
fixtures="$PEERS_REPO_ROOT/testdata/trivy"
cache="$SMOKE_WORK/cache"

run trivy-version "$trivy" --version
grep -q '^Version: 0\.74\.0$' "$SMOKE_WORK/trivy-version.log" ||
  fail "trivy --version: $(head -n 2 "$SMOKE_WORK/trivy-version.log" | tr '\n' ' ')"

# The DB: trivy-db's own `build` over a vuln-list tree holding only our GHSA advisory (its GHSA source also walks
# cocoapods-specs/Specs, which must exist).
mkdir -p "$SMOKE_WORK/vuln-list/cocoapods-specs/Specs"
cp -r "$fixtures/vuln-list/ghsa" "$SMOKE_WORK/vuln-list/"
run trivy-db-build "$trivydb" build --only-update ghsa --cache-dir "$SMOKE_WORK/vuln-list" \
  --output-dir "$cache/db" --update-interval 87600h
[ -s "$cache/db/trivy.db" ] || fail "trivy-db build wrote no $cache/db/trivy.db"
jq -e '.Version == 2' "$cache/db/metadata.json" >/dev/null ||
  fail "trivy-db metadata.json is not schema version 2: $(cat "$cache/db/metadata.json")"

offline=(--cache-dir "$cache" --skip-db-update --skip-java-db-update --offline-scan --skip-check-update
  --skip-version-check --disable-telemetry --quiet --format json)

# A vulnerable lockfile: the one finding, and the exit code a gate relies on.
step "trivy fs --scanners vuln npm-lodash-4.17.20 (must exit 1)"
rc=0
"$trivy" fs "${offline[@]}" --scanners vuln --exit-code 1 --output "$SMOKE_WORK/vuln.json" \
  "$fixtures/apps/npm-lodash-4.17.20" >"$SMOKE_WORK/vuln.log" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "trivy fs of lodash 4.17.20 exited $rc, want 1: $(tail -n 2 "$SMOKE_WORK/vuln.log" | tr '\n' ' ')"
jq -e '[.Results[] | .Vulnerabilities[]?] as $v
  | ($v | length) == 1
    and $v[0].VulnerabilityID == "CVE-2021-23337" and $v[0].PkgName == "lodash"
    and $v[0].InstalledVersion == "4.17.20" and $v[0].FixedVersion == "4.17.21"
    and $v[0].Severity == "HIGH" and $v[0].SeveritySource == "ghsa"' "$SMOKE_WORK/vuln.json" >/dev/null ||
  fail "trivy's report of lodash 4.17.20 is not the one CVE-2021-23337 HIGH: $(jq -c '[.Results[] | .Vulnerabilities[]? | {VulnerabilityID, PkgName, InstalledVersion, FixedVersion, Severity}]' "$SMOKE_WORK/vuln.json" | cut -c1-300)"
jq -e '.Results[] | select(.Type == "npm") | .Target == "package-lock.json"' "$SMOKE_WORK/vuln.json" >/dev/null ||
  fail "trivy did not report the npm lockfile as target"

run vuln-fixed "$trivy" fs "${offline[@]}" --scanners vuln --exit-code 1 --output "$SMOKE_WORK/fixed.json" \
  "$fixtures/apps/npm-lodash-4.17.21"
jq -e '[.Results[]? | .Vulnerabilities[]?] | length == 0' "$SMOKE_WORK/fixed.json" >/dev/null ||
  fail "lodash 4.17.21 has findings: $(jq -c '[.Results[] | .Vulnerabilities[]? | .VulnerabilityID]' "$SMOKE_WORK/fixed.json")"

# A secret, made up at run time so no token-shaped string lives in the repository.
mkdir -p "$SMOKE_WORK/secret-app"
token="ghp_$(head -c 64 /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9' | cut -c1-36)"
[ "${#token}" = 40 ] || fail "could not make a token"
printf 'GITHUB_TOKEN=%s\n' "$token" >"$SMOKE_WORK/secret-app/deploy.env"
run secret "$trivy" fs "${offline[@]}" --scanners secret --output "$SMOKE_WORK/secret.json" "$SMOKE_WORK/secret-app"
jq -e '[.Results[] | .Secrets[]?] as $s | ($s | length) == 1 and $s[0].RuleID == "github-pat"
  and $s[0].Severity == "CRITICAL" and $s[0].StartLine == 1' "$SMOKE_WORK/secret.json" >/dev/null ||
  fail "trivy did not find the GitHub token: $(jq -c '[.Results[]? | .Secrets[]? | {RuleID, Severity}]' "$SMOKE_WORK/secret.json")"
grep -q "$token" "$SMOKE_WORK/secret.json" &&
  fail "trivy's report holds the secret unredacted"

# A misconfiguration, with the checks embedded in the binary (no checks bundle download).
run misconfig "$trivy" fs "${offline[@]}" --scanners misconfig --output "$SMOKE_WORK/misconfig.json" "$fixtures/apps/dockerfile-root"
jq -e '[.Results[] | .Misconfigurations[]? | select(.Status == "FAIL")] as $m
  | any($m[]; (.ID == "DS-0002" or .ID == "DS002") and .Severity == "HIGH")' "$SMOKE_WORK/misconfig.json" >/dev/null ||
  fail "trivy fs --scanners misconfig did not flag the root Dockerfile (DS-0002): $(jq -c '[.Results[]? | .Misconfigurations[]? | select(.Status == "FAIL") | .ID]' "$SMOKE_WORK/misconfig.json")"

pass "trivy 0.74.0 offline: DB built by trivy-db from our GHSA advisory; lodash 4.17.20 -> CVE-2021-23337 HIGH (exit 1), 4.17.21 clean (exit 0); GitHub token found (redacted); root Dockerfile flagged DS-0002"
