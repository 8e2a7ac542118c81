#!/usr/bin/env bash
# Demo step 50: the railpack-prepare and railpack-build step driver (kibaship-step) against the demo registry.
# railpack and buildctl are replaced by the recording stand-ins in crates/step/tests/ (railpack needs mise from
# GitHub, Railpack's BuildKit frontend needs base images from the internet); everything else is real: the plan
# checks, the secrets-hash, the buildctl argv, the push, the digest read from the metadata file and confirmed on
# the registry, the results files, the dedupe tag. Needs KIBASHIP_REGISTRY (started by scripts/demo.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${KIBASHIP_REGISTRY:?run through scripts/demo.sh, which starts the registry}"
REG="$KIBASHIP_REGISTRY"
STEP="${KIBASHIP_STEP:-target/release/kibaship-step}"
WORK="$(realpath -m "${KIBASHIP_DEMO_DIR:-.demo}/50-build")"
COMMIT=960ef4fb6190de6aa8b394bf2f0d552ee67675c3
SECRET_VALUE="demo-npm-token-$RANDOM$RANDOM"

fail() { printf 'demo 50-build: FAILED: %s\n' "$*" >&2; exit 1; }
[ -x "$STEP" ] || fail "$STEP is missing; run \`make demo\` (it builds it first)"
rm -rf "$WORK" && mkdir -p "$WORK/ws/repo/apps/hello" "$WORK/secrets" "$WORK/results"
printf '#!/bin/sh\necho hello\n' >"$WORK/ws/repo/apps/hello/start.sh"
printf '%s\n' "$SECRET_VALUE" >"$WORK/secrets/NPM_TOKEN"
export BUILDCTL_STANDIN_RECORD="$WORK/buildctl-record.jsonl"
export RAILPACK_STANDIN_PLAN="$PWD/testdata/railpack/shell-script_1.snap.json"

echo "1. prepare: railpack plan with the build secret's name (never its value)"
"$STEP" prepare --source-dir "$WORK/ws/repo" --context-path apps/hello \
  --railpack crates/step/tests/railpack-standin --out-dir "$WORK/ws/railpack" \
  --plan-path-result "$WORK/results/planPath" --info-path-result "$WORK/results/infoPath" \
  --build-secrets NPM_TOKEN >"$WORK/prepare.out" 2>"$WORK/prepare.err" || {
  code=$?
  cat "$WORK/prepare.err" >&2
  fail "prepare exited $code"
}
sed 's/^/   /' "$WORK/prepare.out"

echo "2. secrets-hash: kibaship-step and the design's shell recipe agree"
ours="$("$STEP" secrets-hash --secrets-dir "$WORK/secrets")"
dir="$WORK/secrets" # the design's recipe, verbatim but for the directory
theirs="$( (for f in "$dir"/*; do n=$(basename "$f"); printf "%s=%s\n" "$n" "$(cat "$f")"; done) |
  LC_ALL=C sort | sha256sum | awk '{print $1}')"
if [ -z "$ours" ] || [ "$ours" != "$theirs" ]; then
  fail "secrets-hash: kibaship-step says '$ours', the shell says '$theirs'"
fi
echo "   $ours"

build() {
  "$STEP" build --source-dir "$WORK/ws/repo" --context-path apps/hello \
    --plan "$(cat "$WORK/results/planPath")" --info "$(cat "$WORK/results/infoPath")" \
    --image-registry "$REG" --image-repository kibaship/demo/hello --revision "$COMMIT" \
    --source-url https://github.com/railwayapp/railpack --railpack-version v0.15.0 --cache-key tenant-demo \
    --secrets-dir "$WORK/secrets" --buildctl crates/step/tests/buildctl-standin --insecure-registry \
    --metadata-file "$WORK/buildctl-metadata.json" \
    --image-result "$WORK/results/image" --digest-result "$WORK/results/digest" \
    --sbom-ref-result "$WORK/results/sbomRef" --build-duration-result "$WORK/results/buildDuration" \
    --build-secrets NPM_TOKEN "$@"
}

echo "3. build: buildctl (stand-in) builds and pushes; digest from its metadata file, confirmed on the registry"
build >"$WORK/build1.out" 2>"$WORK/build1.err" || {
  code=$?
  cat "$WORK/build1.err" >&2
  fail "first build exited $code"
}
grep -q '^outcome=built$' "$WORK/build1.out" || fail "first build did not build: $(cat "$WORK/build1.out")"
echo "   buildctl argv:"
jq -r '.argv[]' "$BUILDCTL_STANDIN_RECORD" |
  awk '/^--/ { if (line != "") print "     " line; line = $0; next } { line = line " " $0 } END { print "     " line }'
echo "   Tekton results:"
for r in planPath infoPath image digest sbomRef buildDuration; do
  printf '     %-14s %s\n' "$r" "$(cat "$WORK/results/$r")"
done
digest="$(cat "$WORK/results/digest")"
image="$(cat "$WORK/results/image")"
served="sha256:$(skopeo inspect --raw --tls-verify=false "docker://$image" | sha256sum | awk '{print $1}')"
[ "$digest" = "$served" ] || fail "digest result $digest, but skopeo reads bytes hashing to $served"
echo "   skopeo agrees: $image@$served"

echo "4. the same build again: the registry already has it (dedupe tag), buildctl does not run"
rm -f "$WORK/results/"{image,digest,sbomRef,buildDuration}
build >"$WORK/build2.out" 2>"$WORK/build2.err" || {
  code=$?
  cat "$WORK/build2.err" >&2
  fail "second build exited $code"
}
grep -q '^outcome=reused$' "$WORK/build2.out" || fail "second build was not skipped: $(cat "$WORK/build2.out")"
grep 'dedupe: skip build' "$WORK/build2.err" | sed 's/^/   /'
[ "$(wc -l <"$BUILDCTL_STANDIN_RECORD")" -eq 1 ] || fail "buildctl ran again on a dedupe hit"
[ "$(cat "$WORK/results/digest")" = "$digest" ] || fail "the reused digest differs from the first build's"
printf '   digest %s, buildDuration %s\n' "$(cat "$WORK/results/digest")" "$(cat "$WORK/results/buildDuration")"
echo "   tags: $(skopeo list-tags --tls-verify=false "docker://$REG/kibaship/demo/hello" | jq -c .Tags)"

echo "5. failure kinds are exit codes: a bad secret name is 'bad parameters' (64)"
set +e
build --build-secrets NPM-TOKEN >/dev/null 2>"$WORK/bad.err"
code=$?
set -e
[ "$code" -eq 64 ] || fail "bad secret name exited $code, want 64"
sed 's/^/   /' "$WORK/bad.err"

echo "6. no secret value in any output"
if grep -rqF "$SECRET_VALUE" "$WORK"/*.out "$WORK"/*.err "$WORK/results" "$BUILDCTL_STANDIN_RECORD" \
  "$WORK/buildctl-metadata.json"; then
  fail "the secret value appears in the output"
fi
echo "   none"
