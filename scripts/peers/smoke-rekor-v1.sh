#!/usr/bin/env bash
# covers: rekor trillian
# Rekor v1 (github.com/sigstore/rekor, the log whose entries carry a signed entry timestamp) on Trillian
# (trillian_log_server + trillian_log_signer on Debian's MariaDB, a tree made by createtree), with a private
# Fulcio (ephemeral CA, TesseraCT for SCTs) and our OIDC issuer: cosign keyless in the legacy layout
# (`cosign sign --new-bundle-format=false`: a `sha256-<digest>.sig` layer with certificate, chain and the Rekor
# bundle annotation = SET + entry), verified by `cosign verify --trusted-root` (SCT and SET checked); a wrong
# identity and a tampered SET are rejected; rekor-cli reads the entry back by log index. Also a `dsse` entry
# posted directly to `POST /api/v1/log/entries`.
# rekor-server is our build (scripts/peers/rekor) of upstream's v1.5.5 library: the REST API only, none of the
# :2112 metrics listener upstream's serve command always tries on all interfaces. Nothing here listens beyond 127.0.0.1.
# shellcheck source=scripts/peers/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Fails unless every TCP socket the background process LABEL listens on is on loopback (ss, from iproute2),
# and it listens on at least one.
assert_loopback_only() {
  local label="$1" pid="${_smoke_pid_of[$1]}" sockets outside
  command -v ss >/dev/null || fail "ss is not installed (Debian package iproute2; run \`make deps\`)"
  sockets="$(ss -Hltnp | grep -F "pid=$pid," | awk '{ print $4 }')"
  [ -n "$sockets" ] || fail "$label (pid $pid) listens on no TCP socket"
  outside="$(grep -Ev '^(127\.[0-9.]+|\[::1\]|\[::ffff:127\.[0-9.]+\]):[0-9]+$' <<<"$sockets" || true)"
  [ -z "$outside" ] || fail "$label listens outside loopback: $(tr '\n' ' ' <<<"$outside")"
  step "$label listens on loopback only: $(tr '\n' ' ' <<<"$sockets")"
}

cosign="$(peer_bin cosign)"
fulcio="$(peer_bin fulcio)"
rekor_server="$(peer_bin rekor rekor-server)"
rekor_cli="$(peer_bin rekor rekor-cli)"
tlog_server="$(peer_bin trillian trillian_log_server)"
tlog_signer="$(peer_bin trillian trillian_log_signer)"
createtree="$(peer_bin trillian createtree)"
trillian_version="$(awk '$1 == "trillian" { print $2 }' "$PEERS_LIST")"
# Trillian's MySQL schema ships in its module (downloaded by `make peers`; from the Go module proxy otherwise).
# Looked up before HOME moves to the temp dir (the module cache is under the real HOME).
trillian_dir="$(go mod download -json "github.com/google/trillian@$trillian_version" | jq -r .Dir)"
schema="$trillian_dir/storage/mysql/schema/storage.sql"
[ -f "$schema" ] || fail "Trillian's schema $schema is missing"
export HOME="$SMOKE_WORK/home" COSIGN_YES=true
mkdir -p "$HOME"
cd "$SMOKE_WORK" || fail "cannot enter $SMOKE_WORK"
start_time="2020-01-01T00:00:00Z"
email="smoke@kibaship.test"

mariadbd="$(command -v mariadbd || echo /usr/sbin/mariadbd)"
if ! [ -x "$mariadbd" ] || ! command -v mariadb-install-db >/dev/null || ! command -v mariadb >/dev/null; then
  fail "MariaDB is not installed (Debian package mariadb-server; run \`make deps\`)"
fi

# MariaDB in the temp dir, TCP on loopback only, no grant tables (nothing else can reach it).
run mariadb-install-db mariadb-install-db --no-defaults --datadir="$SMOKE_WORK/mariadb" --auth-root-authentication-method=normal --skip-test-db --user="$(id -un)"
db_port="$(free_port)"
start_bg mariadbd "$mariadbd" --no-defaults --datadir="$SMOKE_WORK/mariadb" --socket="$SMOKE_WORK/mariadb.sock" \
  --port="$db_port" --bind-address=127.0.0.1 --user="$(id -un)" --skip-grant-tables --skip-log-bin \
  --innodb-buffer-pool-size=16M --pid-file="$SMOKE_WORK/mariadb.pid"
db=(mariadb --no-defaults -h127.0.0.1 -P"$db_port" -uroot)
for _ in $(seq 1 100); do
  "${db[@]}" -e 'SELECT 1' >/dev/null 2>&1 && break
  assert_running mariadbd
  sleep 0.2
done
run create-database "${db[@]}" -e 'CREATE DATABASE trillian'
step "load $schema"
"${db[@]}" trillian <"$schema" || fail "loading Trillian's schema failed"

# Trillian: log server (gRPC for rekor and createtree), log signer (sequences leaves every 100 ms).
mysql_uri="root@tcp(127.0.0.1:$db_port)/trillian"
tlog_rpc="$(free_port)"
tlog_http="$(free_port)"
start_bg trillian_log_server "$tlog_server" --storage_system=mysql --mysql_uri="$mysql_uri" --quota_system=noop \
  --rpc_endpoint="127.0.0.1:$tlog_rpc" --http_endpoint="127.0.0.1:$tlog_http" --logtostderr
start_bg trillian_log_signer "$tlog_signer" --storage_system=mysql --mysql_uri="$mysql_uri" --quota_system=noop \
  --rpc_endpoint="127.0.0.1:$(free_port)" --http_endpoint="127.0.0.1:$(free_port)" \
  --force_master --sequencer_interval=100ms --batch_size=100 --logtostderr
wait_http "http://127.0.0.1:$tlog_http/metrics" trillian_log_server
run createtree "$createtree" --admin_server="127.0.0.1:$tlog_rpc" --tree_type=LOG
tree_id="$(grep -E '^[0-9]+$' createtree.log | tail -n 1)"
[ -n "$tree_id" ] || fail "createtree printed no tree id: $(tail -n 2 createtree.log)"

# Rekor v1, in-memory ECDSA P-256 signer; only the endpoints that need no search index (no Redis).
rekor_port="$(free_port)"
rekor_url="http://127.0.0.1:$rekor_port"
start_bg rekor-server "$rekor_server" serve --rekor_server.address=127.0.0.1 --port="$rekor_port" \
  --rekor_server.hostname=127.0.0.1 --rekor_server.signer=memory --log_type=prod \
  --trillian_log_server.address=127.0.0.1 --trillian_log_server.port="$tlog_rpc" \
  --trillian_log_server.tlog_id="$tree_id" \
  --enabled_api_endpoints=getLogInfo,getPublicKey,getLogProof,createLogEntry,getLogEntryByIndex,getLogEntryByUUID
wait_http "$rekor_url/api/v1/log" rekor-server
assert_loopback_only rekor-server
curl -sS -f -o rekor.pub "$rekor_url/api/v1/log/publicKey" || fail "GET Rekor's public key failed"
grep -q 'BEGIN PUBLIC KEY' rekor.pub || fail "Rekor's public key is not PEM: $(head -c 200 rekor.pub)"

# OIDC issuer, CT log and Fulcio, as in smoke-sigstore.sh.
oidc_port="$(free_port)"
issuer="http://127.0.0.1:$oidc_port"
start_bg oidc-issuer python3 "$PEERS_REPO_ROOT/scripts/peers/oidc_issuer.py" serve --dir "$SMOKE_WORK/oidc" --port "$oidc_port"
wait_http "$issuer/.well-known/openid-configuration" oidc-issuer
openssl ecparam -name prime256v1 -genkey -noout -out ct-key.pem 2>/dev/null
openssl ec -in ct-key.pem -pubout -out ct.pub 2>/dev/null || fail "could not derive the CT public key"
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
start_bg tesseract "$(peer_bin tesseract)" -http_endpoint "127.0.0.1:$ct_port" -origin "127.0.0.1" \
  -private_key "$SMOKE_WORK/ct-key.pem" -roots_pem_file "$SMOKE_WORK/fulcio-chain.pem" \
  -storage_dir "$SMOKE_WORK/ct-tiles" -checkpoint_interval 1s -batch_max_age 100ms -logtostderr
wait_http "$ct_url/checkpoint" tesseract

run trusted-root "$cosign" trusted-root create \
  --fulcio="url=$fulcio_url,certificate-chain=$SMOKE_WORK/fulcio-chain.pem,start-time=$start_time" \
  --rekor="url=$rekor_url,public-key=$SMOKE_WORK/rekor.pub,start-time=$start_time" \
  --ctfe="url=$ct_url,public-key=$SMOKE_WORK/ct.pub,start-time=$start_time,origin=127.0.0.1" \
  --out "$SMOKE_WORK/trusted_root.json"
# The trusted root's log ID is SHA-256 of the DER public key: the logID Rekor puts in its entries.
log_id="$(openssl pkey -pubin -in rekor.pub -outform DER | sha256sum | cut -d' ' -f1)"
root_log_id="$(jq -r '.tlogs[0].logId.keyId' trusted_root.json | base64 -d | od -An -tx1 | tr -d ' \n')"
[ "$root_log_id" = "$log_id" ] || fail "trusted root log ID $root_log_id is not SHA-256 of Rekor's key ($log_id)"

token="$(python3 "$PEERS_REPO_ROOT/scripts/peers/oidc_issuer.py" token --dir "$SMOKE_WORK/oidc" --issuer "$issuer" --email "$email")"
[ -n "$token" ] || fail "the OIDC issuer minted no token"
trust=(--trusted-root "$SMOKE_WORK/trusted_root.json")
identity=(--certificate-identity "$email" --certificate-oidc-issuer "$issuer")

start_docker_registry
digest="$(push_small_image "$DOCKER_REGISTRY" smoke/legacy v1)"
ref="$DOCKER_REGISTRY/smoke/legacy@$digest"
run sign-legacy "$cosign" sign --new-bundle-format=false --use-signing-config=false "${trust[@]}" \
  --fulcio-url "$fulcio_url" --rekor-url "$rekor_url" --identity-token "$token" --allow-http-registry "$ref"
run verify-legacy "$cosign" verify --new-bundle-format=false "${trust[@]}" "${identity[@]}" --allow-http-registry "$ref"
grep -q "$digest" verify-legacy.log || fail "cosign verify output does not name $digest"
expect_rejected verify-legacy-wrong-identity "expected SAN value|none of the expected identities" \
  "$cosign" verify --new-bundle-format=false "${trust[@]}" --certificate-identity someone-else@kibaship.test \
  --certificate-oidc-issuer "$issuer" --allow-http-registry "$ref"

# The layer cosign wrote: certificate, chain and a Rekor bundle whose SET comes from this log.
sig_tag="$DOCKER_REGISTRY/smoke/legacy:sha256-${digest#sha256:}.sig"
crane="$(peer_bin crane)"
"$crane" manifest --insecure "$sig_tag" >sig-manifest.json || fail "cannot read $sig_tag"
jq -e '.layers | length == 1' sig-manifest.json >/dev/null || fail "$sig_tag does not hold one layer"
ann() { jq -r --arg k "$1" '.layers[0].annotations[$k] // empty' sig-manifest.json; }
ann dev.sigstore.cosign/certificate | grep -q 'BEGIN CERTIFICATE' || fail "the layer has no certificate annotation"
# cosign v3.1.3 writes the chain annotation empty here (v2 wrote Fulcio's intermediates and root).
jq -e '.layers[0].annotations | has("dev.sigstore.cosign/chain")' sig-manifest.json >/dev/null ||
  fail "the layer has no chain annotation"
ann dev.sigstore.cosign/bundle >rekor-bundle.json
jq -e --arg id "$log_id" '.Payload.logID == $id and (.SignedEntryTimestamp | length > 0)' rekor-bundle.json >/dev/null ||
  fail "the Rekor bundle annotation has no SET from this log: $(head -c 300 rekor-bundle.json)"
log_index="$(jq -r .Payload.logIndex rekor-bundle.json)"
run rekor-cli-get "$rekor_cli" --rekor_server "$rekor_url" get --log-index "$log_index" --format json
jq -e --arg b "$(jq -r .Payload.body rekor-bundle.json)" '.Body | @base64 | length > 0' rekor-cli-get.log >/dev/null ||
  fail "rekor-cli get printed no entry"

# A tampered SET (one character of its base64 changed), pushed back under the .sig tag: cosign rejects it.
jq '.SignedEntryTimestamp |= (.[0:20] + (if .[20:21] == "A" then "B" else "A" end) + .[21:])' rekor-bundle.json >tampered-bundle.json
jq --arg b "$(jq -c . tampered-bundle.json)" '.layers[0].annotations["dev.sigstore.cosign/bundle"] = $b' \
  sig-manifest.json >tampered-manifest.json
code="$(curl -sS -o put.out -w '%{http_code}' -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
  --data-binary @tampered-manifest.json "http://$DOCKER_REGISTRY/v2/smoke/legacy/manifests/sha256-${digest#sha256:}.sig")"
[ "$code" = 201 ] || fail "pushing the tampered .sig manifest answered $code: $(cat put.out)"
expect_rejected verify-tampered-set "unable to verify SET" \
  "$cosign" verify --new-bundle-format=false "${trust[@]}" "${identity[@]}" --allow-http-registry "$ref"

# A dsse v0.0.1 entry (what attestations are logged as): a DSSE envelope signed with a P-256 key.
openssl ecparam -name prime256v1 -genkey -noout -out dsse-key.pem 2>/dev/null
openssl ec -in dsse-key.pem -pubout -out dsse.pub 2>/dev/null
payload_type="application/vnd.in-toto+json"
printf '{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"%s"}}],"predicateType":"https://example.test/p","predicate":{}}' \
  "${digest#sha256:}" >statement.json
{ printf 'DSSEv1 %d %s %d ' "${#payload_type}" "$payload_type" "$(wc -c <statement.json)"; cat statement.json; } >pae.bin
openssl dgst -sha256 -sign dsse-key.pem -out dsse.sig pae.bin
jq -n --arg t "$payload_type" --arg p "$(base64 -w0 statement.json)" --arg s "$(base64 -w0 dsse.sig)" \
  '{payloadType: $t, payload: $p, signatures: [{keyid: "", sig: $s}]}' >envelope.json
jq -n --arg e "$(jq -c . envelope.json)" --arg v "$(base64 -w0 dsse.pub)" \
  '{apiVersion: "0.0.1", kind: "dsse", spec: {proposedContent: {envelope: $e, verifiers: [$v]}}}' >dsse-entry.json
code="$(curl -sS -o dsse-answer.json -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
  --data-binary @dsse-entry.json "$rekor_url/api/v1/log/entries")"
[ "$code" = 201 ] || fail "POST of a dsse entry answered $code: $(head -c 300 dsse-answer.json)"
jq -e --arg id "$log_id" 'to_entries[0].value | .logID == $id and (.verification.signedEntryTimestamp | length > 0)
  and (.body | @base64d | fromjson | .kind == "dsse")' dsse-answer.json >/dev/null ||
  fail "the dsse entry answer lacks a SET or kind: $(head -c 300 dsse-answer.json)"
dsse_index="$(jq -r 'to_entries[0].value.logIndex' dsse-answer.json)"
run rekor-cli-get-dsse "$rekor_cli" --rekor_server "$rekor_url" get --log-index "$dsse_index" --format json

pass "trillian $trillian_version (MariaDB $("${db[@]}" -N -e 'SELECT VERSION()' | cut -d- -f1)) + rekor v1.5.5 on loopback: cosign keyless legacy sign/verify with SCT and Rekor v1 SET (wrong identity, tampered SET rejected); rekor-cli reads the hashedrekord and a dsse entry"
