#!/usr/bin/env bash
# Demo step 50: the real build, offline, through the Tekton step driver (kibaship-step) against the demo registry.
#   buildkitd  the `buildkit` peer, rootful on runc, started by `kibaship-harness buildkit start`, which first pushes
#              Railpack's frontend (the `railpack` peer), the runtime/builder base stand-ins (busybox-static) and a
#              trivy SBOM scanner to the demo registry under their upstream names; buildkitd mirrors ghcr.io and
#              docker.io to it (docs/build.md)
#   prepare    the real `railpack prepare` v0.15.0 (scripts/peers/railpack-prepare.sh: mise peer, offline)
#   build      the real `buildctl` with Railpack's BuildKit frontend; provenance and SBOM attestations by BuildKit
# on testdata/railpack/apps/shell (the shell provider: the stand-in base images cannot install toolchains). Checked
# with other clients (skopeo, curl, umoci, runc): the digest is the registry's, the attestation manifest holds
# SLSA provenance v1 and an SPDX SBOM, the image runs and prints the app's line, the second build is skipped.
# Leaves the built image in $KIBASHIP_DEMO_DIR/50-build/results/{image,digest} for steps 60, 65 and 70.
# Needs KIBASHIP_REGISTRY (started by scripts/demo.sh), root, and the buildkit, railpack, mise and trivy peers.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${KIBASHIP_REGISTRY:?run through scripts/demo.sh, which starts the registry}"
REG="$KIBASHIP_REGISTRY"
STEP="${KIBASHIP_STEP:-target/release/kibaship-step}"
HARNESS="${KIBASHIP_HARNESS:-target/release/kibaship-harness}"
DEMO_DIR="$(realpath -m "${KIBASHIP_DEMO_DIR:-.demo}")"
WORK="$DEMO_DIR/50-build"
BK_STATE="$DEMO_DIR/buildkit"
REPOSITORY=kibaship/demo/hello
COMMIT=960ef4fb6190de6aa8b394bf2f0d552ee67675c3
APP_PRINTS="hello from the kibaship shell fixture"
SECRET_VALUE="demo-npm-token-$RANDOM$RANDOM"

fail() {
  printf 'demo 50-build: FAILED: %s\n' "$*" >&2
  [ -f "${KIBASHIP_BUILDKIT_LOG:-}" ] && { echo "--- buildkitd log (last lines):" >&2; tail -15 "$KIBASHIP_BUILDKIT_LOG" >&2; }
  exit 1
}
[ -x "$STEP" ] || fail "$STEP is missing; run \`make demo\` (it builds it first)"
[ -x "$HARNESS" ] || fail "$HARNESS is missing; run through scripts/demo.sh (it builds it)"
[ "$(id -u)" -eq 0 ] || fail "the real build needs root (rootful buildkitd on runc)"
rm -rf "$WORK" && mkdir -p "$WORK/ws/repo/apps" "$WORK/secrets" "$WORK/results"
cp -r testdata/railpack/apps/shell "$WORK/ws/repo/apps/hello"
printf '%s\n' "$SECRET_VALUE" >"$WORK/secrets/NPM_TOKEN"

# indent FILE...: shows files (or stdin) under the step's numbered lines.
indent() { sed 's/^/   /' "$@"; }
# registry_blob DIGEST: a blob of the demo repository, checked against its digest.
registry_blob() {
  curl -sSf "http://$REG/v2/$REPOSITORY/blobs/$1" -o "$WORK/blob"
  [ "sha256:$(sha256sum "$WORK/blob" | awk '{print $1}')" = "$1" ] || fail "blob $1 does not hash to its digest"
  cat "$WORK/blob"
}

echo "1. buildkitd: kibaship-harness buildkit start (Railpack's images pushed to the demo registry, its mirror)"
"$HARNESS" buildkit stop --state-dir "$BK_STATE" >/dev/null 2>&1 || true
exports="$("$HARNESS" buildkit start --registry "$REG" --state-dir "$BK_STATE")" ||
  fail "buildkit start failed; its log is $BK_STATE/harness.log"
eval "$exports"
trap '"$HARNESS" buildkit stop --state-dir "$BK_STATE" >/dev/null 2>&1 || true' EXIT
printf '   BUILDKIT_HOST=%s\n   frontend %s, buildctl %s\n' "$BUILDKIT_HOST" "$KIBASHIP_RAILPACK_FRONTEND" \
  "$("$KIBASHIP_BUILDCTL" --version | awk '{print $3}')"
"$KIBASHIP_BUILDCTL" --addr "$BUILDKIT_HOST" debug workers | indent
for repo in railwayapp/railpack-frontend railwayapp/railpack-runtime railwayapp/railpack-builder \
  docker/buildkit-syft-scanner; do
  printf '   on the mirror: %s/%s %s\n' "$REG" "$repo" \
    "$(skopeo list-tags --tls-verify=false "docker://$REG/$repo" | jq -c .Tags)"
done

echo "2. prepare: the real railpack prepare (offline) on the shell app, told the build secret's name (not its value)"
"$STEP" prepare --source-dir "$WORK/ws/repo" --context-path apps/hello \
  --railpack scripts/peers/railpack-prepare.sh --out-dir "$WORK/ws/railpack" \
  --plan-path-result "$WORK/results/planPath" --info-path-result "$WORK/results/infoPath" \
  --build-secrets NPM_TOKEN >"$WORK/prepare.out" 2>"$WORK/prepare.err" || {
  code=$?
  cat "$WORK/prepare.err" >&2
  fail "prepare exited $code"
}
indent "$WORK/prepare.out"
plan="$(cat "$WORK/results/planPath")"
jq -r '"   plan: start command \(.deploy.startCommand), base \(.deploy.base.image), secrets \(.secrets | tojson)"' "$plan"
jq -r '"   info: providers \(.detectedProviders | tojson), railpack \(.railpackVersion)"' \
  "$(cat "$WORK/results/infoPath")"
[ "$(jq -r .deploy.startCommand "$plan")" = "sh start.sh" ] || fail "railpack planned another start command"

echo "3. secrets-hash: kibaship-step and the design's shell recipe agree"
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
    --image-registry "$REG" --image-repository "$REPOSITORY" --revision "$COMMIT" \
    --source-url https://github.com/kibaship/kibaship --railpack-version "$KIBASHIP_RAILPACK_VERSION" \
    --cache-key tenant-demo --secrets-dir "$WORK/secrets" \
    --buildctl "$KIBASHIP_BUILDCTL" --buildkit-host "$BUILDKIT_HOST" --insecure-registry \
    --metadata-file "$WORK/buildctl-metadata.json" \
    --image-result "$WORK/results/image" --digest-result "$WORK/results/digest" \
    --sbom-ref-result "$WORK/results/sbomRef" --build-duration-result "$WORK/results/buildDuration" \
    --build-secrets NPM_TOKEN "$@"
}

echo "4. build: kibaship-step runs buildctl; BuildKit builds with Railpack's frontend, attests and pushes"
build >"$WORK/build1.out" 2>"$WORK/build1.err" || {
  code=$?
  tail -40 "$WORK/build1.err" >&2
  fail "first build exited $code"
}
grep -q '^outcome=built$' "$WORK/build1.out" || fail "first build did not build: $(cat "$WORK/build1.out")"
grep '^kibaship-step: plan .* running' "$WORK/build1.err" | sed 's/ --/\n     --/g; s/^/   /'
echo "   BuildKit's steps (the build log is $WORK/build1.err):"
grep -E '^#[0-9]+ \[|^#[0-9]+ (exporting|pushing|generating|resolving provenance)' "$WORK/build1.err" |
  awk '!seen[$0]++' | head -20 | indent
echo "   Tekton results:"
for r in planPath infoPath image digest sbomRef buildDuration; do
  printf '     %-14s %s\n' "$r" "$(cat "$WORK/results/$r")"
done

echo "5. the digest: buildctl's metadata file = the result = the registry's HEAD = sha256 of the bytes skopeo reads"
digest="$(cat "$WORK/results/digest")"
image="$(cat "$WORK/results/image")"
[ "$image" = "$REG/$REPOSITORY:$COMMIT" ] || fail "image result $image"
meta="$(jq -r '."containerimage.digest"' "$WORK/buildctl-metadata.json")"
head_digest="$(curl -sSf -I -H 'Accept: application/vnd.oci.image.index.v1+json' \
  "http://$REG/v2/$REPOSITORY/manifests/$COMMIT" | tr -d '\r' |
  awk -F': ' 'tolower($1) == "docker-content-digest" { print $2 }')"
skopeo inspect --raw --tls-verify=false "docker://$image" >"$WORK/index.json"
served="sha256:$(sha256sum "$WORK/index.json" | awk '{print $1}')"
printf '   metadata %s\n   result   %s\n   HEAD     %s\n   bytes    %s\n' "$meta" "$digest" "$head_digest" "$served"
for d in "$meta" "$head_digest" "$served"; do
  [ "$d" = "$digest" ] || fail "digests differ: result $digest, metadata $meta, HEAD $head_digest, bytes $served"
done
echo "   -> all four agree"

echo "6. what BuildKit pushed: the index, its image and the attestation manifest (skopeo, curl, jq)"
jq -r '.manifests[] | "   \(.digest)  \(.platform.os // "-")/\(.platform.architecture // "-")  \(.annotations["vnd.docker.reference.type"] // "image")"' \
  "$WORK/index.json"
image_digest="$(jq -r '.manifests[] | select(.platform.os == "linux" and .platform.architecture == "amd64") | .digest' "$WORK/index.json")"
att_digest="$(jq -r --arg d "$image_digest" '.manifests[] | select(.annotations["vnd.docker.reference.type"] == "attestation-manifest" and .annotations["vnd.docker.reference.digest"] == $d) | .digest' "$WORK/index.json")"
if [ -z "$image_digest" ] || [ "$(wc -w <<<"$att_digest")" -ne 1 ]; then
  fail "want one linux/amd64 image and one attestation manifest for it"
fi
[ "$(cat "$WORK/results/sbomRef")" = "$REG/$REPOSITORY@$att_digest" ] || fail "sbomRef is not the attestation manifest"
skopeo inspect --raw --tls-verify=false "docker://$REG/$REPOSITORY@$att_digest" >"$WORK/attestation.json"
echo "   attestation manifest $att_digest:"
jq -r '.layers[] | "     \(.mediaType)  predicate \(.annotations["in-toto.io/predicate-type"])"' "$WORK/attestation.json"
layer() { jq -r --arg p "$1" '.layers[] | select(.annotations["in-toto.io/predicate-type"] == $p) | .digest' "$WORK/attestation.json"; }
registry_blob "$(layer https://slsa.dev/provenance/v1)" >"$WORK/provenance.json"
registry_blob "$(layer https://spdx.dev/Document)" >"$WORK/sbom.json"
jq -r '"   provenance: \(.predicateType), subject sha256:\(.subject[0].digest.sha256)",
  "     buildType \(.predicate.buildDefinition.buildType)",
  "     frontend \(.predicate.buildDefinition.externalParameters.request.frontend), source \(.predicate.buildDefinition.externalParameters.request.args.source)"' \
  "$WORK/provenance.json"
jq -r '[.predicate.buildDefinition.resolvedDependencies[]?.uri | select(test("railpack-runtime|railpack-frontend"))] | .[] | "     resolved \(.)"' \
  "$WORK/provenance.json"
[ "$(jq -r .subject[0].digest.sha256 "$WORK/provenance.json")" = "${image_digest#sha256:}" ] ||
  fail "the provenance's subject is not the built image"
jq -r '"   SBOM: \(.predicateType), \(.predicate.spdxVersion) by \(.predicate.creationInfo.creators | map(select(startswith("Tool"))) | join(", "))",
  "     packages: \([.predicate.packages[].name] | join(", "))"' "$WORK/sbom.json"
jq -e '.predicate.spdxVersion == "SPDX-2.3" and any(.predicate.packages[]; .name == "busybox-static")' \
  "$WORK/sbom.json" >/dev/null || fail "the SBOM does not list the base image's busybox-static"

echo "7. the image runs: skopeo copy to an OCI layout, umoci unpack, runc run"
skopeo copy --quiet --src-tls-verify=false "docker://$REG/$REPOSITORY@$image_digest" "oci:$WORK/layout:app"
umoci unpack --image "$WORK/layout:app" "$WORK/bundle" >/dev/null
jq '.process.terminal = false' "$WORK/bundle/config.json" >"$WORK/config.json" && mv "$WORK/config.json" "$WORK/bundle/config.json"
printed="$(timeout 120 runc --root "$WORK/runc-state" run --bundle "$WORK/bundle" "kibaship-demo-$$" </dev/null)" ||
  fail "runc run of the built image failed"
echo "   $(jq -r '.process.args | join(" ")' "$WORK/bundle/config.json") -> $printed"
[ "$printed" = "$APP_PRINTS" ] || fail "the image printed '$printed', want '$APP_PRINTS'"
rm -rf "$WORK/layout" "$WORK/bundle" "$WORK/runc-state"

echo "8. the same build again: the registry already has it (dedupe tag), buildctl does not run"
rm -f "$WORK/results/"{image,digest,sbomRef,buildDuration}
build >"$WORK/build2.out" 2>"$WORK/build2.err" || {
  code=$?
  cat "$WORK/build2.err" >&2
  fail "second build exited $code"
}
grep -q '^outcome=reused$' "$WORK/build2.out" || fail "second build was not skipped: $(cat "$WORK/build2.out")"
grep 'dedupe: skip build' "$WORK/build2.err" | indent
if grep -q 'running .*buildctl' "$WORK/build2.err"; then fail "buildctl ran again on a dedupe hit"; fi
[ "$(cat "$WORK/results/digest")" = "$digest" ] || fail "the reused digest differs from the first build's"
printf '   digest %s, buildDuration %s\n' "$(cat "$WORK/results/digest")" "$(cat "$WORK/results/buildDuration")"
echo "   tags: $(skopeo list-tags --tls-verify=false "docker://$REG/$REPOSITORY" | jq -c .Tags)"

echo "9. failure kinds are exit codes: a bad secret name is 'bad parameters' (64)"
set +e
build --build-secrets NPM-TOKEN >/dev/null 2>"$WORK/bad.err"
code=$?
set -e
[ "$code" -eq 64 ] || fail "bad secret name exited $code, want 64"
indent "$WORK/bad.err"

echo "10. no secret value in any output, result, plan or attestation"
if grep -rqF "$SECRET_VALUE" "$WORK"/*.out "$WORK"/*.err "$WORK/results" "$WORK/ws/railpack" \
  "$WORK/buildctl-metadata.json" "$WORK/provenance.json" "$WORK/sbom.json"; then
  fail "the secret value appears in the output"
fi
echo "   none"

echo "11. stop buildkitd: kibaship-harness buildkit stop (its processes, mounts and root removed)"
trap - EXIT
"$HARNESS" buildkit stop --state-dir "$BK_STATE" 2>&1 | indent
echo "   built and verified: $image@$digest"
