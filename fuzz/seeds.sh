#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ from testdata/ (and a few hand-written inputs for header- and flag-shaped
# targets). Idempotent: files are named by content hash, so re-running adds nothing twice. The corpus
# directories are git-ignored; libFuzzer grows them in place.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
td="$here/../testdata"
corpus="$here/corpus"

# add <target> <file>...: copy files (missing ones are an error: seeds must not silently vanish).
add() {
  local target="$1"; shift
  mkdir -p "$corpus/$target"
  local f
  for f in "$@"; do
    [ -f "$f" ] || { echo "seeds.sh: missing seed $f" >&2; exit 1; }
    cp "$f" "$corpus/$target/$(sha256sum "$f" | cut -c1-16)"
  done
}
# text <target> <string>: one seed from a literal.
text() {
  mkdir -p "$corpus/$1"
  printf '%s' "$2" > "$corpus/$1/$(printf '%s' "$2" | sha256sum | cut -c1-16)"
}
# der <target> <json>...: every base64 `rawBytes` certificate in the JSON files, decoded to DER.
der() {
  local target="$1"; shift
  mkdir -p "$corpus/$target"
  local b64
  jq -r '.. | objects | .rawBytes? // empty' "$@" 2>/dev/null | sort -u | while read -r b64; do
    local out; out="$(mktemp)"
    if printf '%s' "$b64" | base64 -d > "$out" 2>/dev/null && [ "$(head -c1 "$out" | od -An -tx1 | tr -d ' ')" = 30 ]; then
      mv "$out" "$corpus/$target/$(sha256sum "$out" | cut -c1-16)"
    else
      rm -f "$out"
    fi
  done
}

bundles=("$td"/sigstore/conformance/*/bundle.sigstore.json "$td"/sigstore/sigstore-python/*.sigstore* \
  "$td"/sigstore/sigstore-python/tsa/*.sigstore "$td"/sigstore/sigstore-go/othername.sigstore.json \
  "$td"/cosign/bundle-referrer/oci-attestation.sigstore.json)
roots=("$td"/sigstore/trusted-roots/*.json "$td"/sigstore/conformance/*/trusted_root.json \
  "$td"/cosign/bundle-referrer/trusted_root_pgi.json "$td"/sigstore/sigstore-python/tsa/ca.json)
keys=("$td"/cosign/keys/* "$td"/cosign/import-keys/*)

add sigstore_bundle "${bundles[@]}"
add sigstore_trusted_root "${roots[@]}"
der sigstore_certificate "${bundles[@]}" "${roots[@]}"
add sigstore_pem "${keys[@]}" "$td"/cosign/simple-signing/keyless-rekor-set/certificate.pem
add sigstore_public_key "$td"/cosign/keys/*.pub "$td"/cosign/simple-signing/key-signed/*.pub

text oci_reference "docker.io/library/alpine:3.20"
text oci_reference "alpine"
text oci_reference "localhost:5000/team/app@sha256:5f481572d088dc4023afb35fced9530ced3d9b03bf7299c6f492163cb9f0452e"
text oci_reference "[::1]:5000/a/b:tag@sha256:5f481572d088dc4023afb35fced9530ced3d9b03bf7299c6f492163cb9f0452e"
text oci_reference "sha512:$(printf '%0128d' 0)"
text oci_reference "linux/arm64/v8"
for f in "$td"/slsa/gha_generic_container/*/container_workflow_dispatch/blobs/sha256/*; do
  if jq -e '.mediaType? // .manifests? // .layers?' "$f" >/dev/null 2>&1; then add oci_manifest "$f"; fi
done
for f in "$td"/slsa/gha_generic_container/*/container_workflow_dispatch/blobs/sha256/*; do
  if jq -e '.payloadType?' "$f" >/dev/null 2>&1; then add cosign_attestation_layer "$f"; fi
done
add cosign_attestation_layer "$td"/sigstore/conformance/statement.json
text oci_challenge 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"'
text oci_challenge 'Basic realm="registry"'
text oci_challenge '</v2/_catalog?n=2&last=b>; rel="next"'
text oci_challenge 'Wed, 21 Oct 2015 07:28:00 GMT'
text oci_challenge '120'
text oci_docker_config '{"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpwYXNz"},"localhost:5000":{"username":"u","password":"p"}},"credHelpers":{"ghcr.io":"gh"},"credsStore":"desktop"}'
text oci_docker_config '{"auths":{"registry.example":{"identitytoken":"tok"}}}'

add gate_report "$td"/trivy/*.json.golden
add gate_policy "$here"/../policies/gate/*.yaml
add gate_ignore_file "$td"/trivy/trivyignore.example "$td"/trivy/trivyignore.example.yaml "$td"/trivy/demo.trivyignore.yaml
text gate_identifiers "pkg:npm/%40babel/core@7.0.0?arch=x86#src/lib"
text gate_identifiers "usr/lib/**/node_modules/*/package.json"
text gate_identifiers "registry.example/app@sha256:5f481572d088dc4023afb35fced9530ced3d9b03bf7299c6f492163cb9f0452e"

# A `.sig` manifest around the 2021 keyless layer (signature, certificate and Rekor bundle annotations).
ks="$td"/cosign/simple-signing/keyless-rekor-set
sig_manifest="$(mktemp)"
jq -n --arg sig "$(tr -d '\n' < "$ks"/signature.b64)" --rawfile cert "$ks"/certificate.pem \
  --arg bundle "$(jq -c . "$ks"/bundle.json)" --arg digest "sha256:$(sha256sum "$ks"/payload.json | cut -d' ' -f1)" \
  --argjson size "$(stat -c %s "$ks"/payload.json)" '{
  schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
  config: {mediaType: "application/vnd.oci.image.config.v1+json", size: 2,
    digest: "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},
  layers: [{mediaType: "application/vnd.dev.cosign.simplesigning.v1+json", size: $size, digest: $digest,
    annotations: {"dev.cosignproject.cosign/signature": $sig, "dev.sigstore.cosign/certificate": $cert,
      "dev.sigstore.cosign/bundle": $bundle}}]}' > "$sig_manifest"
add cosign_legacy_manifest "$sig_manifest"
add cosign_signature_layer "$sig_manifest"
rm -f "$sig_manifest"
add cosign_referrer_bundle "$td"/cosign/bundle-referrer/oci-attestation.sigstore.json "$td"/sigstore/conformance/happy-path-v0.3/bundle.sigstore.json
# header.claims.signature, claims {"iss","sub","aud":"sigstore","exp","email"}
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
claims="$(printf '{"iss":"https://oauth2.sigstore.dev/auth","sub":"a@example.com","aud":"sigstore","exp":1999999999,"email":"a@example.com","email_verified":true}' | b64url)"
text cosign_identity_token "$(printf '{"alg":"RS256","typ":"JWT"}' | b64url).$claims.c2ln"
text cosign_signing_config '{"mediaType":"application/vnd.dev.sigstore.signingconfig.v0.2+json","caUrls":[{"url":"https://fulcio.example","majorApiVersion":1,"validFor":{"start":"2022-04-13T20:06:15.000Z"}}],"oidcUrls":[{"url":"https://oauth2.example/auth","majorApiVersion":1,"validFor":{"start":"2022-04-13T20:06:15.000Z"}}],"rekorTlogUrls":[{"url":"https://rekor.example","majorApiVersion":1,"validFor":{"start":"2021-01-12T11:53:27.000Z"}},{"url":"https://log2025.rekor.example","majorApiVersion":2,"validFor":{"start":"2025-01-01T00:00:00Z","end":"2030-01-01T00:00:00Z"}}],"tsaUrls":[{"url":"https://tsa.example/api/v1/timestamp","majorApiVersion":1,"validFor":{"start":"2025-01-01T00:00:00Z"}}],"rekorTlogConfig":{"selector":"ANY"},"tsaConfig":{"selector":"ANY"}}'
text cosign_fulcio_response "$(jq -n --rawfile cert "$ks"/certificate.pem '{signedCertificateEmbeddedSct: {chain: {certificates: [$cert]}}}')"
text cosign_rekor_response "$(jq -c '{"24296fb24b8ad77a": {body: .Payload.body, integratedTime: .Payload.integratedTime, logIndex: .Payload.logIndex, logID: .Payload.logID, verification: {signedEntryTimestamp: .SignedEntryTimestamp}}}' "$ks"/bundle.json)"
for b in "$td"/sigstore/conformance/rekor2-happy-path/bundle.sigstore.json; do
  text cosign_rekor_response "$(jq -c '.verificationMaterial.tlogEntries[0]' "$b")"
done

add sign_payload "$td"/cosign/simple-signing/*/payload.json "$td"/cosign/simple-signing/obsolete-payload.golden.json
add sign_key_pem "${keys[@]}"
add sign_encrypted_key "$td"/cosign/keys/*encrypted* "$td"/cosign/keys/encrypted-*.key "$td"/cosign/keys/policy-controller-example-cosign.key

add step_plan "$td"/railpack/*.json
text step_build_metadata '{"containerimage.digest":"sha256:5f481572d088dc4023afb35fced9530ced3d9b03bf7299c6f492163cb9f0452e","image.name":"registry.example:5000/team/app:v1","containerimage.descriptor":{"mediaType":"application/vnd.oci.image.index.v1+json"}}'
for f in "$td"/slsa/gha_generic_container/v2.1.0/container_workflow_dispatch/blobs/sha256/*; do
  if jq -e '.manifests? // .layers?' "$f" >/dev/null 2>&1; then add step_build_metadata "$f"; fi
done
text step_params "linux/amd64,linux/arm64/v8"
text step_params "NODE_ENV=production"
text step_params "0123456789abcdef0123456789abcdef01234567"
text step_params $'registry.example:5000\nteam/app\nv1'

# AdmissionReviews: recorded from kube-apiserver; kubewarden's requests and kubernetes/api's round-trip objects
# (every field filled) wrapped into reviews; the round-trip reviews themselves (refused: unknown operation).
add admission_review "$td"/admission/recorded/*.json "$td"/admission/k8s-api-roundtrip/admission.k8s.io.*.json
for f in "$td"/admission/kubewarden/*.json; do
  text admission_review "$(jq -c '{apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request: .}' "$f")"
done
for f in "$td"/admission/k8s-api-roundtrip/{core,apps,batch}.v1.*.json; do
  text admission_review "$(jq -c '{apiVersion: "admission.k8s.io/v1beta1", kind: "AdmissionReview", request: {uid: "u",
    kind: {group: (.apiVersion | if test("/") then split("/")[0] else "" end), version: (.apiVersion | split("/") | last),
      kind: .kind}, operation: "CREATE", object: .}}' "$f")"
done

# SBOMs: CycloneDX spec-validation cases and examples, SPDX examples (each under libFuzzer's -max_len).
while IFS= read -r f; do add sbom_validate "$f"; done < <(find "$td"/sbom -type f -name '*.json' -size -256k | sort)
# In-toto statements: the payloads of slsa-verifier's DSSE envelopes, and the Sigstore conformance statement.
for f in "$td"/slsa/gha_generic_container/*/container_workflow_dispatch/blobs/sha256/*; do
  if payload="$(jq -er 'select(.payloadType? == "application/vnd.in-toto+json") | .payload' "$f" 2>/dev/null)"; then
    text provenance_statement "$(printf '%s' "$payload" | base64 -d)"
  fi
done
add provenance_statement "$td"/sigstore/conformance/statement.json
text provenance_statement '{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"registry.example/app","digest":{"sha256":"5f481572d088dc4023afb35fced9530ced3d9b03bf7299c6f492163cb9f0452e"}}],"predicateType":"https://slsa.dev/provenance/v1","predicate":{"buildDefinition":{"buildType":"https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1","externalParameters":{"workflow":{"ref":"refs/tags/v1.0.0","repository":"https://github.com/slsa-framework/example-package","path":".github/workflows/release.yml"}},"resolvedDependencies":[{"uri":"git+https://github.com/slsa-framework/example-package@refs/tags/v1.0.0","digest":{"gitCommit":"0123456789abcdef0123456789abcdef01234567"}}]},"runDetails":{"builder":{"id":"https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2.1.0"},"metadata":{"invocationId":"https://github.com/slsa-framework/example-package/actions/runs/1/attempts/1"}}}}'
# Admission policies: the examples, and the valid and invalid cases of the policy tests.
add policy_parse "$here"/../policies/admission/*.yaml "$td"/policy/valid/*.yaml "$td"/policy/invalid/*.yaml

echo "seeds: $(find "$corpus" -type f | wc -l) files in $(ls "$corpus" | wc -l) corpora"
