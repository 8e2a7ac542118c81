#!/usr/bin/env bash
# covers: fulcio rekor-tiles tesseract
# A private Sigstore on loopback, and cosign keyless against it:
#   - an OIDC issuer (scripts/peers/oidc_issuer.py: discovery + JWKS, RS256 ID tokens),
#   - Fulcio (ephemeral CA, that issuer in its config), logging precertificates to
#   - TesseraCT (a static-ct-api CT log, POSIX storage), so certificates carry an SCT,
#   - timestamp-authority (in-memory signer),
#   - Rekor v2 (rekor-tiles, POSIX storage in a temp dir, ECDSA P-256 checkpoint key).
# Then a trusted_root.json and a signing_config.json for them (`cosign trusted-root create` /
# `cosign signing-config create`), `cosign sign` with an ID token from the issuer, and `cosign verify
# --trusted-root` (identity + issuer); a wrong identity must be rejected. Also `cosign sign-blob` to a bundle,
# verified by `cosign verify-blob` and by sigstore-python (`sigstore verify identity --offline`).
# shellcheck source=scripts/peers/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cosign="$(peer_bin cosign)"
fulcio="$(peer_bin fulcio)"
tsa="$(peer_bin timestamp-authority)"
rekor="$(peer_bin rekor-tiles)"
export HOME="$SMOKE_WORK/home" COSIGN_YES=true # cosign's TUF cache stays in the temp dir
mkdir -p "$HOME"
cd "$SMOKE_WORK" || fail "cannot enter $SMOKE_WORK"
start_time="2020-01-01T00:00:00Z"
email="smoke@kibaship.test"

# OIDC issuer.
oidc_port="$(free_port)"
issuer="http://127.0.0.1:$oidc_port"
start_bg oidc-issuer python3 "$PEERS_REPO_ROOT/scripts/peers/oidc_issuer.py" serve --dir "$SMOKE_WORK/oidc" --port "$oidc_port"
wait_http "$issuer/.well-known/openid-configuration" oidc-issuer

# Keys of the CT log (SEC 1 PEM, as TesseraCT reads it) and Rekor (PKCS #8 PEM), ECDSA P-256.
openssl ecparam -name prime256v1 -genkey -noout -out ct-key.pem 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt -out rekor-key.pem 2>/dev/null
for k in ct rekor; do
  openssl ec -in "$k-key.pem" -pubout -out "$k.pub" 2>/dev/null || fail "could not derive the $k public key"
done

# Fulcio (its CT log is started next, once Fulcio's ephemeral root exists; Fulcio only calls it when signing).
ct_port="$(free_port)"
ct_url="http://127.0.0.1:$ct_port"
fulcio_port="$(free_port)"
jq -n --arg i "$issuer" '{ OIDCIssuers: { ($i): { IssuerURL: $i, ClientID: "sigstore", Type: "email" } } }' >fulcio-config.json
start_bg fulcio "$fulcio" serve --ca ephemeralca --config-path "$SMOKE_WORK/fulcio-config.json" \
  --host 127.0.0.1 --port "$fulcio_port" --grpc-host 127.0.0.1 --grpc-port "$(free_port)" \
  --metrics-port "$(free_port)" --legacy-unix-domain-socket "$SMOKE_WORK/fulcio-legacy.sock" \
  --ct-log-url "$ct_url" --ct-log-public-key-path "$SMOKE_WORK/ct.pub"
fulcio_url="http://127.0.0.1:$fulcio_port"
wait_http "$fulcio_url/api/v1/rootCert" fulcio
curl -sS -f -o fulcio-chain.pem "$fulcio_url/api/v1/rootCert" || fail "GET Fulcio rootCert failed"
grep -q 'BEGIN CERTIFICATE' fulcio-chain.pem || fail "Fulcio rootCert is not PEM: $(head -c 200 fulcio-chain.pem)"

# CT log (TesseraCT), accepting chains that end in Fulcio's root.
start_bg tesseract "$(peer_bin tesseract)" -http_endpoint "127.0.0.1:$ct_port" -origin "127.0.0.1" \
  -private_key "$SMOKE_WORK/ct-key.pem" -roots_pem_file "$SMOKE_WORK/fulcio-chain.pem" \
  -storage_dir "$SMOKE_WORK/ct-tiles" -checkpoint_interval 1s -batch_max_age 100ms -logtostderr
wait_http "$ct_url/checkpoint" tesseract

# Timestamp authority.
tsa_port="$(free_port)"
start_bg timestamp-server "$tsa" serve --host 127.0.0.1 --port "$tsa_port" --timestamp-signer memory --disable-ntp-monitoring
tsa_url="http://127.0.0.1:$tsa_port/api/v1/timestamp"
wait_http "http://127.0.0.1:$tsa_port/ping" timestamp-server
curl -sS -f -o tsa-chain.pem "http://127.0.0.1:$tsa_port/api/v1/timestamp/certchain" || fail "GET TSA certchain failed"

# Rekor v2 (tiles on the local filesystem).
rekor_port="$(free_port)"
# sigstore-go (cosign's verifier) checks Rekor v2 checkpoints under the name = the host of the trusted root's
# tlog baseUrl, so the log's origin (--hostname) must be that host: 127.0.0.1.
rekor_origin="127.0.0.1"
start_bg rekor "$rekor" serve --http-address 127.0.0.1 --http-port "$rekor_port" --grpc-address 127.0.0.1 \
  --grpc-port "$(free_port)" --http-metrics-port "$(free_port)" --storage-dir "$SMOKE_WORK/rekor-tiles" \
  --signer-filepath "$SMOKE_WORK/rekor-key.pem" --hostname "$rekor_origin" \
  --checkpoint-interval 1s --batch-max-age 100ms
rekor_url="http://127.0.0.1:$rekor_port"
wait_http "$rekor_url/healthz" rekor

# Trust root and signing config for these services.
run trusted-root "$cosign" trusted-root create \
  --fulcio="url=$fulcio_url,certificate-chain=$SMOKE_WORK/fulcio-chain.pem,start-time=$start_time" \
  --rekor="url=$rekor_url,public-key=$SMOKE_WORK/rekor.pub,start-time=$start_time,origin=$rekor_origin" \
  --tsa="url=$tsa_url,certificate-chain=$SMOKE_WORK/tsa-chain.pem,start-time=$start_time" \
  --ctfe="url=$ct_url,public-key=$SMOKE_WORK/ct.pub,start-time=$start_time,origin=127.0.0.1" \
  --out "$SMOKE_WORK/trusted_root.json"
run signing-config "$cosign" signing-config create \
  --fulcio="url=$fulcio_url,api-version=1,start-time=$start_time,operator=kibaship-smoke" \
  --rekor="url=$rekor_url,api-version=2,start-time=$start_time,operator=kibaship-smoke" --rekor-config=ANY \
  --tsa="url=$tsa_url,api-version=1,start-time=$start_time,operator=kibaship-smoke" --tsa-config=EXACT:1 \
  --oidc-provider="url=$issuer,api-version=1,start-time=$start_time,operator=kibaship-smoke" \
  --out "$SMOKE_WORK/signing_config.json"
jq -e '.certificateAuthorities | length == 1' trusted_root.json >/dev/null || fail "trusted_root.json has no Fulcio CA"
jq -e '.tlogs | length == 1' trusted_root.json >/dev/null || fail "trusted_root.json has no Rekor log"
jq -e '.timestampAuthorities | length == 1' trusted_root.json >/dev/null || fail "trusted_root.json has no TSA"
jq -e '.ctlogs | length == 1' trusted_root.json >/dev/null || fail "trusted_root.json has no CT log"

token="$(python3 "$PEERS_REPO_ROOT/scripts/peers/oidc_issuer.py" token --dir "$SMOKE_WORK/oidc" --issuer "$issuer" --email "$email")"
[ -n "$token" ] || fail "the OIDC issuer minted no token"
trust=(--trusted-root "$SMOKE_WORK/trusted_root.json")
identity=(--certificate-identity "$email" --certificate-oidc-issuer "$issuer")

# Keyless image signature on the registry (referrers via docker-registry's tag fallback).
start_docker_registry
digest="$(push_small_image "$DOCKER_REGISTRY" smoke/keyless v1)"
ref="$DOCKER_REGISTRY/smoke/keyless@$digest"
run sign-image "$cosign" sign --signing-config "$SMOKE_WORK/signing_config.json" "${trust[@]}" \
  --identity-token "$token" --allow-http-registry "$ref"
run verify-image "$cosign" verify "${trust[@]}" "${identity[@]}" --allow-http-registry "$ref"
grep -q "$digest" verify-image.log || fail "cosign verify output does not name $digest"
expect_rejected verify-image-wrong-identity "expected SAN value" \
  "$cosign" verify "${trust[@]}" --certificate-identity someone-else@kibaship.test \
  --certificate-oidc-issuer "$issuer" --allow-http-registry "$ref"

# Keyless blob signature to a bundle file.
printf 'kibaship keyless blob\n' >blob.txt
run sign-blob "$cosign" sign-blob --signing-config "$SMOKE_WORK/signing_config.json" "${trust[@]}" \
  --identity-token "$token" --bundle "$SMOKE_WORK/blob.sigstore.json" blob.txt
jq -e '.verificationMaterial.tlogEntries | length == 1' blob.sigstore.json >/dev/null ||
  fail "the blob bundle has no Rekor entry: $(head -c 400 blob.sigstore.json)"
jq -e '.verificationMaterial.timestampVerificationData.rfc3161Timestamps | length == 1' blob.sigstore.json >/dev/null ||
  fail "the blob bundle has no RFC 3161 timestamp"
run verify-blob "$cosign" verify-blob "${trust[@]}" "${identity[@]}" \
  --bundle "$SMOKE_WORK/blob.sigstore.json" blob.txt
printf 'tampered\n' >tampered.txt
expect_rejected verify-blob-tampered "invalid signature|failed to verify|error verifying" \
  "$cosign" verify-blob "${trust[@]}" "${identity[@]}" \
  --bundle "$SMOKE_WORK/blob.sigstore.json" tampered.txt

command -v sigstore >/dev/null ||
  fail "sigstore-python (the \`sigstore\` command, PY_TOOLS sigstore==4.5.1) is not on PATH: run \`make deps\`"
# sigstore-python 4.5.1's models require certificateAuthorities[].subject.commonName, which Fulcio's
# ephemeral CA (O=sigstore, no CN) does not give and cosign therefore leaves out: fill it with the O.
jq -n --slurpfile tr trusted_root.json --slurpfile sc signing_config.json \
  '{ mediaType: "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
     trustedRoot: ($tr[0] | .certificateAuthorities |= map(.subject.commonName //= .subject.organization)),
     signingConfig: $sc[0] }' >client_trust_config.json
run sigstore-python-verify sigstore --trust-config client_trust_config.json verify identity --offline \
  --bundle blob.sigstore.json --cert-identity "$email" --cert-oidc-issuer "$issuer" blob.txt
grep -q '^OK: blob.txt' sigstore-python-verify.log || fail "sigstore-python did not print OK for blob.txt"
expect_rejected sigstore-python-wrong-identity "SANs do not match" \
  sigstore --trust-config client_trust_config.json verify identity --offline \
  --bundle blob.sigstore.json --cert-identity someone-else@kibaship.test --cert-oidc-issuer "$issuer" blob.txt

pass "fulcio v1.8.8 + tesseract v0.1.1 (CT) + timestamp-authority v2.1.5 + rekor-tiles v2.3.0 on loopback: cosign keyless sign/verify with SCT, TSA and Rekor v2 (image + blob; wrong identity, tampered blob rejected); sigstore-python 4.5.1 verifies the blob bundle"
