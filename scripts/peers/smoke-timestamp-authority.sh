#!/usr/bin/env bash
# timestamp-authority: Sigstore's RFC 3161 TSA (timestamp-server) with its in-memory signer on loopback. The binary is
# our build (scripts/peers/timestamp-authority) of upstream's v2.1.5 library: the REST API only, none of the :2112
# metrics listener upstream's serve command always opens on all interfaces; checked below with ss.
# Fetch its certificate chain, ask for a timestamp over a file with `openssl ts -query`, and verify the reply
# with `openssl ts -verify` against that chain (root as the only trust anchor). A reply for other data must
# not verify.
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

tsa="$(peer_bin timestamp-authority)"
port="$(free_port)"
start_bg timestamp-server "$tsa" serve --host 127.0.0.1 --port "$port" --timestamp-signer memory \
  --disable-ntp-monitoring
base="http://127.0.0.1:$port"
wait_http "$base/ping" timestamp-server
assert_loopback_only timestamp-server
cd "$SMOKE_WORK" || fail "cannot enter $SMOKE_WORK"

curl -sS -f -o chain.pem "$base/api/v1/timestamp/certchain" || fail "GET /api/v1/timestamp/certchain failed"
certs="$(grep -c 'BEGIN CERTIFICATE' chain.pem || true)"
[ "$certs" -ge 2 ] || fail "certificate chain has $certs certificate(s), expected leaf + root at least"
# Split the chain: the last certificate is the root (trust anchor), the rest are untrusted intermediates.
awk -v n="$certs" '/BEGIN CERTIFICATE/ { i++ } { if (i == n) print > "root.pem"; else print > "untrusted.pem" }' chain.pem
openssl x509 -in root.pem -noout -subject >root.subject || fail "root certificate does not parse"

printf 'kibaship timestamp smoke payload\n' >payload.txt
openssl ts -query -data payload.txt -sha256 -cert -out request.tsq 2>/dev/null || fail "openssl ts -query failed"
code="$(curl -sS -o response.tsr -w '%{http_code}' -H 'Content-Type: application/timestamp-query' \
  --data-binary @request.tsq "$base/api/v1/timestamp")"
[ "$code" = 200 ] || [ "$code" = 201 ] || fail "POST /api/v1/timestamp answered $code: $(head -c 300 response.tsr)"
openssl ts -reply -in response.tsr -text >response.txt 2>&1 || fail "the reply is not an RFC 3161 response"
grep -q 'Status: Granted' response.txt || fail "the TSA did not grant the timestamp: $(head -n 5 response.txt)"
run verify openssl ts -verify -data payload.txt -in response.tsr -CAfile root.pem -untrusted untrusted.pem

printf 'some other payload\n' >other.txt
expect_rejected verify-other-data "message imprint mismatch|[Vv]erification: FAILED" \
  openssl ts -verify -data other.txt -in response.tsr -CAfile root.pem -untrusted untrusted.pem

pass "timestamp-authority v2.1.5: RFC 3161 timestamp granted and verified by openssl against the TSA's chain; other data rejected"
