#!/usr/bin/env bash
# Demo step 70: the admission webhook. Runs kibaship-webhook (release build) over TLS on 127.0.0.1 with a policy
# that requires step 60's key in namespace `prod` (enforce) and `staging` (warn), checks the policy with
# `kibaverify policy check`, then sends it AdmissionReviews as the API server would (curl): the image step 50
# built and step 60 signed is admitted and, through /mutate, pinned to its digest; the image whose signature tag step 60 tampered
# with is denied (digest-mismatch); an unsigned image is denied in prod (unsigned) and admitted with a warning in
# staging; a namespace no policy selects is admitted. The step fails if any answer differs.
# Needs KIBASHIP_REGISTRY and step 60's work directory (demo.pub, the signed and tampered images).
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${KIBASHIP_REGISTRY:?run through scripts/demo.sh, which starts the registry}"
REG="$KIBASHIP_REGISTRY"
ROOT="$PWD"
KIBAVERIFY="$(realpath "${KIBAVERIFY:-target/release/kibaverify}")"
WEBHOOK="$ROOT/target/release/kibaship-webhook"
DEMO="${KIBASHIP_DEMO_DIR:-.demo}"
SIGNED_WORK="$(realpath "$DEMO/60-sign")"
WORK="$DEMO/70-admission"
rm -rf "$WORK" && mkdir -p "$WORK"
WORK="$(realpath "$WORK")"

fail() { printf 'demo 70-admission: FAILED: %s\n' "$*" >&2; [ -f "$WORK/webhook.log" ] && tail -n 20 "$WORK/webhook.log" >&2; exit 1; }
[ -x "$WEBHOOK" ] || fail "$WEBHOOK is missing (make demo builds it)"
[ -f "$SIGNED_WORK/demo.pub" ] || fail "step 60's key is missing ($SIGNED_WORK/demo.pub)"
cd "$WORK"

echo "1. a serving certificate for 127.0.0.1 from a throwaway CA (openssl)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj "/CN=kibaship demo CA" \
  -keyout ca.key -out ca.pem 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=kibaship-webhook" \
  -keyout tls.key -out tls.csr 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >tls.ext
openssl x509 -req -in tls.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile tls.ext -out tls.crt 2>/dev/null

echo "2. the policy: step 60's key for $REG/kibaship/** and $REG/fixtures/** in prod (enforce) and staging (warn)"
key="$(sed 's/^/          /' "$SIGNED_WORK/demo.pub")"
policy() { # name mode namespace
  printf '  - name: %s\n    mode: %s\n    namespaces:\n      names: ["%s"]\n    images: ["%s/kibaship/**", "%s/fixtures/**"]\n    transparencyLog: optional\n    authorities:\n      - name: demo-key\n        key: |\n%s\n' \
    "$1" "$2" "$3" "$REG" "$REG" "$key"
}
{
  printf 'apiVersion: kibaship.io/v1alpha1\nkind: AdmissionPolicy\npolicies:\n'
  policy prod-signed enforce prod
  policy staging-signed warn staging
} >policy.yaml
"$KIBAVERIFY" policy check policy.yaml | sed 's/^/   /'

echo "3. start kibaship-webhook (HTTPS /validate and /mutate; metrics over HTTP)"
"$WEBHOOK" serve --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --tls-cert tls.crt --tls-key tls.key \
  --policy policy.yaml --trusted-root "$ROOT/testdata/sigstore/trusted-roots/production-trusted_root.json" \
  --insecure-registry "$REG" --budget 5s --shutdown-delay 0s --log-format json >webhook.log 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  grep -q '"message":"serving"' webhook.log 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || fail "kibaship-webhook exited"
  sleep 0.1
done
line="$(grep '"message":"serving"' webhook.log)" || fail "kibaship-webhook did not start"
ADDR="$(jq -r '.fields.addr' <<<"$line")"
METRICS="$(jq -r '.fields.metrics' <<<"$line")"
echo "   serving on https://$ADDR, metrics on http://$METRICS"

review() { # uid namespace image
  jq -n --arg uid "$1" --arg ns "$2" --arg image "$3" '{apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview",
    request: {uid: $uid, kind: {group: "", version: "v1", kind: "Pod"}, resource: {group: "", version: "v1", resource: "pods"},
      name: "demo", namespace: $ns, operation: "CREATE", userInfo: {username: "demo"},
      object: {apiVersion: "v1", kind: "Pod", metadata: {name: "demo", namespace: $ns},
        spec: {containers: [{name: "app", image: $image}]}}}}'
}
ask() { # endpoint uid namespace image -> the response member
  review "$2" "$3" "$4" | curl -sS --fail --cacert ca.pem -H 'Content-Type: application/json' --data-binary @- \
    "https://$ADDR/$1" | jq -c .response
}
expect() { # endpoint namespace image allowed(true|false) code-or-warning-substring
  local r
  r="$(ask "$1" "u-$RANDOM" "$2" "$3")"
  local allowed message
  allowed="$(jq -r .allowed <<<"$r")"
  message="$(jq -r '.status.message // (.warnings // [] | join("; "))' <<<"$r")"
  printf '   %-8s %-8s %-60s allowed=%s %s\n' "$1" "$2" "${3#"$REG/"}" "$allowed" "$message"
  [ "$allowed" = "$4" ] || fail "$1 $2 $3: allowed=$allowed, expected $4"
  [ -z "$5" ] || grep -q -- "$5" <<<"$message" || fail "$1 $2 $3: the answer does not say '$5'"
}

# The image step 50 built and step 60 signed.
SIGNED="$(cat "$DEMO/50-build/results/image")"
TAMPERED="$REG/fixtures/docker-app:v1"
UNSIGNED="$REG/fixtures/config-only:v1"
echo "4. the answers"
expect validate prod "$SIGNED" true ""
expect validate prod "$TAMPERED" false ": digest-mismatch: "
expect validate prod "$UNSIGNED" false ": unsigned: "
expect validate staging "$UNSIGNED" true "unsigned"
expect validate dev "$UNSIGNED" true ""
patch="$(ask mutate u-m prod "$SIGNED" | jq -r .patch | base64 -d)"
echo "   mutate   prod     ${SIGNED#"$REG/"}  patch=$patch"
jq -e --arg img "$SIGNED" '.[-1].op == "replace" and (.[-1].value | startswith($img + "@sha256:"))' <<<"$patch" >/dev/null ||
  fail "/mutate did not pin $SIGNED to its digest"

echo "5. what the metrics say"
curl -sS "http://$METRICS/metrics" | grep -E '^kibaship_webhook_(decisions_total|verifications_total|cache_lookups_total)' | sed 's/^/   /'
