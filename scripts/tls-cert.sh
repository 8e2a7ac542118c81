#!/usr/bin/env bash
# scripts/tls-cert.sh DIR CA_NAME SERVER_NAME SUBJECT_ALT_NAMES: a throwaway CA and a serving certificate signed by
# it, with openssl (P-256, valid one day), for the demo's and the benchmarks' own TLS servers:
#   DIR/ca.pem, DIR/ca.key   the CA (CA:TRUE, keyCertSign), the bundle clients trust
#   DIR/tls.crt, DIR/tls.key the server's certificate (serverAuth, SUBJECT_ALT_NAMES, e.g. "IP:127.0.0.1") and key
set -euo pipefail
[ "$#" -eq 4 ] || { echo "usage: $0 DIR CA_NAME SERVER_NAME SUBJECT_ALT_NAMES" >&2; exit 64; }
dir="$1" ca_name="$2" server_name="$3" sans="$4"
mkdir -p "$dir"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/ca.key" 2>/dev/null
openssl req -x509 -new -key "$dir/ca.key" -subj "/CN=$ca_name" -days 1 -out "$dir/ca.pem" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/tls.key" 2>/dev/null
openssl req -new -key "$dir/tls.key" -subj "/CN=$server_name" -out "$dir/tls.csr" 2>/dev/null
printf '%s\n' "subjectAltName=$sans" "basicConstraints=critical,CA:FALSE" \
  "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >"$dir/tls.ext"
openssl x509 -req -in "$dir/tls.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -days 1 \
  -extfile "$dir/tls.ext" -out "$dir/tls.crt" 2>/dev/null
rm -f "$dir/tls.csr" "$dir/tls.ext"
