#!/usr/bin/env bash
# BuildKit: buildkitd (rootful, OCI worker with Debian's runc, native snapshotter, unix socket in a temp dir)
# and `buildctl build --frontend dockerfile.v0` of a `FROM scratch` + `COPY` Dockerfile (no base image
# needed), pushed to Debian's docker-registry with --metadata-file and --opt attest:provenance=mode=max.
# The metadata file's containerimage.digest must equal the digest of the bytes the registry serves, and the
# pushed index must carry the in-toto SLSA provenance attestation manifest for the image.
# shellcheck source=scripts/peers/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

buildkitd="$(peer_bin buildkit buildkitd)"
buildctl="$(peer_bin buildkit buildctl)"
runc="$(command -v runc || true)"
[ -n "$runc" ] || fail "runc is not installed (Debian package runc; run \`make deps\`)"
[ "$(id -u)" = 0 ] || fail "buildkitd runs rootful here and needs root (uid is $(id -u))"

start_docker_registry
sock="$SMOKE_WORK/buildkitd.sock"
cat >"$SMOKE_WORK/buildkitd.toml" <<EOF
[worker.oci]
  enabled = true
  snapshotter = "native"
  binary = "$runc"
  gc = false
[worker.containerd]
  enabled = false
[registry."$DOCKER_REGISTRY"]
  http = true
  insecure = true
EOF
start_bg buildkitd "$buildkitd" --config "$SMOKE_WORK/buildkitd.toml" --root "$SMOKE_WORK/buildkit-root" \
  --addr "unix://$sock"
for _ in $(seq 1 100); do
  "$buildctl" --addr "unix://$sock" debug workers >"$SMOKE_WORK/workers.txt" 2>/dev/null && break
  sleep 0.2
done
grep -q linux/amd64 "$SMOKE_WORK/workers.txt" 2>/dev/null || {
  tail -n 20 "$SMOKE_WORK/buildkitd.log" | sed 's/^/    | /' >&2
  fail "buildkitd did not come up with an OCI worker on $sock"
}

ctx="$SMOKE_WORK/context"
mkdir -p "$ctx"
printf 'built by buildkit in the kibaship smoke test\n' >"$ctx/hello.txt"
printf 'FROM scratch\nCOPY hello.txt /hello.txt\n' >"$ctx/Dockerfile"
image="$DOCKER_REGISTRY/smoke/buildkit:v1"
run buildctl-build "$buildctl" --addr "unix://$sock" build --frontend dockerfile.v0 \
  --local context="$ctx" --local dockerfile="$ctx" \
  --opt attest:provenance=mode=max \
  --output "type=image,name=$image,push=true,registry.insecure=true" \
  --metadata-file "$SMOKE_WORK/metadata.json"

meta_digest="$(jq -r '."containerimage.digest" // empty' "$SMOKE_WORK/metadata.json")"
[[ "$meta_digest" == sha256:* ]] || fail "metadata file has no containerimage.digest: $(cat "$SMOKE_WORK/metadata.json")"
registry_index_digest="$(registry_digest "$image")"
[ "$meta_digest" = "$registry_index_digest" ] ||
  fail "metadata containerimage.digest $meta_digest != registry digest $registry_index_digest"

# The pushed index: the image for linux/amd64 + an attestation manifest pointing at it.
skopeo inspect --raw --tls-verify=false "docker://$image" >"$SMOKE_WORK/index.json"
image_digest="$(jq -r '.manifests[] | select(.platform.os == "linux") | .digest' "$SMOKE_WORK/index.json")"
att_digest="$(jq -r --arg d "$image_digest" '.manifests[]
  | select(.annotations."vnd.docker.reference.type" == "attestation-manifest"
           and .annotations."vnd.docker.reference.digest" == $d) | .digest' "$SMOKE_WORK/index.json")"
if [ -z "$image_digest" ] || [ "$(wc -w <<<"$att_digest")" != 1 ]; then
  fail "the pushed index lacks the image or its one attestation manifest: $(cat "$SMOKE_WORK/index.json")"
fi
skopeo inspect --raw --tls-verify=false "docker://$DOCKER_REGISTRY/smoke/buildkit@$att_digest" >"$SMOKE_WORK/attestation.json"
predicate="$(jq -r '.layers[] | select(.mediaType == "application/vnd.in-toto+json")
  | .annotations."in-toto.io/predicate-type"' "$SMOKE_WORK/attestation.json")"
[[ "$predicate" == https://slsa.dev/provenance/* ]] ||
  fail "attestation manifest has no SLSA provenance layer: $(cat "$SMOKE_WORK/attestation.json")"

# The image's single layer holds exactly the copied file.
skopeo inspect --raw --tls-verify=false "docker://$DOCKER_REGISTRY/smoke/buildkit@$image_digest" >"$SMOKE_WORK/image.json"
layer="$(jq -r '.layers[0].digest' "$SMOKE_WORK/image.json")"
curl -sS -f "http://$DOCKER_REGISTRY/v2/smoke/buildkit/blobs/$layer" | tar -xzO hello.txt >"$SMOKE_WORK/hello.out" ||
  fail "could not read hello.txt from layer $layer"
cmp -s "$ctx/hello.txt" "$SMOKE_WORK/hello.out" || fail "the image layer's hello.txt differs from the build context"

pass "buildkit v0.34.2: buildctl build (dockerfile.v0, FROM scratch + COPY) pushed $meta_digest = registry digest, with $predicate attestation"
