#!/usr/bin/env bash
# kube-apiserver + etcd on loopback, no kubelet: etcd (Debian's etcd-server), kube-apiserver with a
# self-signed serving certificate and a static token (group system:masters), and kubectl (built with the
# API server) creating a namespace, a ValidatingWebhookConfiguration pointing at an HTTPS endpoint
# (scripts/peers/admission_recorder.py) and a Pod. The Pod stays Pending (nothing schedules it); the
# endpoint must have received its AdmissionReview (v1, CREATE, the Pod's image), and a Pod the endpoint
# denies must be refused with the endpoint's message.
# shellcheck source=scripts/peers/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

apiserver="$(peer_bin kube-apiserver)"
kubectl="$(peer_bin kube-apiserver kubectl)"
etcd="$(command -v etcd || true)"
[ -n "$etcd" ] || fail "etcd is not installed (Debian package etcd-server; run \`make deps\`)"
cd "$SMOKE_WORK" || fail "cannot enter $SMOKE_WORK"

# PKI: one CA signing the API server's and the webhook's serving certificates (both for IP 127.0.0.1),
# and a service-account signing key.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj "/CN=kibaship smoke CA" \
  -keyout ca.key -out ca.pem 2>/dev/null || fail "could not create the test CA"
for name in apiserver webhook; do
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$name" \
    -keyout "$name.key" -out "$name.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile "$name.ext" \
    -out "$name.pem" 2>/dev/null || fail "could not sign the $name certificate"
done
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
openssl pkey -in sa.key -pubout -out sa.pub 2>/dev/null
token="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf '%s,kibaship-smoke,kibaship-smoke,"system:masters"\n' "$token" >tokens.csv

# etcd.
etcd_port="$(free_port)"
etcd_peer_port="$(free_port)"
start_bg etcd "$etcd" --name smoke --data-dir "$SMOKE_WORK/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
  --initial-cluster "smoke=http://127.0.0.1:$etcd_peer_port"
wait_http "http://127.0.0.1:$etcd_port/health" etcd

# kube-apiserver. ServiceAccount admission is off: without a controller manager no `default` service
# account would ever exist, and every Pod would be refused for that. The `kubernetes` Service endpoint
# reconciler is off: it refuses a loopback advertise address.
api_port="$(free_port)"
start_bg kube-apiserver "$apiserver" --etcd-servers "http://127.0.0.1:$etcd_port" \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
  --tls-cert-file "$SMOKE_WORK/apiserver.pem" --tls-private-key-file "$SMOKE_WORK/apiserver.key" \
  --client-ca-file "$SMOKE_WORK/ca.pem" --token-auth-file "$SMOKE_WORK/tokens.csv" \
  --authorization-mode RBAC --disable-admission-plugins ServiceAccount --endpoint-reconciler-type none \
  --service-account-issuer https://kubernetes.default.svc --service-account-key-file "$SMOKE_WORK/sa.pub" \
  --service-account-signing-key-file "$SMOKE_WORK/sa.key" --service-cluster-ip-range 10.96.0.0/24 \
  --cert-dir "$SMOKE_WORK/apiserver-certs"
server="https://127.0.0.1:$api_port"
for _ in $(seq 1 150); do
  [ "$(curl -sS --cacert ca.pem -H "Authorization: Bearer $token" "$server/readyz" 2>/dev/null)" = ok ] && break
  assert_running kube-apiserver
  sleep 0.4
done
[ "$(curl -sS --cacert ca.pem -H "Authorization: Bearer $token" "$server/readyz" 2>/dev/null)" = ok ] || {
  tail -n 25 "$SMOKE_WORK/kube-apiserver.log" | sed 's/^/    | /' >&2
  fail "kube-apiserver was not ready at $server/readyz within 60 s"
}
kube() { "$kubectl" --server "$server" --token "$token" --certificate-authority "$SMOKE_WORK/ca.pem" "$@"; }

# The webhook endpoint.
webhook_port="$(free_port)"
start_bg admission-recorder python3 "$PEERS_REPO_ROOT/scripts/peers/admission_recorder.py" --port "$webhook_port" \
  --cert "$SMOKE_WORK/webhook.pem" --key "$SMOKE_WORK/webhook.key" --out "$SMOKE_WORK/reviews"
for _ in $(seq 1 50); do
  curl -sS --cacert ca.pem "https://127.0.0.1:$webhook_port/" >/dev/null 2>&1 && break
  assert_running admission-recorder
  sleep 0.2
done

run create-namespace kube create namespace smoke
run label-namespace kube label namespace smoke kibaship.test/webhook=on
cat >webhook.yaml <<EOF
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: kibaship-smoke
webhooks:
  - name: smoke.kibaship.test
    admissionReviewVersions: ["v1"]
    sideEffects: None
    failurePolicy: Fail
    timeoutSeconds: 10
    clientConfig:
      url: https://127.0.0.1:$webhook_port/validate
      caBundle: $(base64 -w0 ca.pem)
    rules:
      - apiGroups: [""]
        apiVersions: ["v1"]
        operations: ["CREATE"]
        resources: ["pods"]
    namespaceSelector:
      matchLabels:
        kibaship.test/webhook: "on"
EOF
run apply-webhook kube apply -f webhook.yaml

image="127.0.0.1:5000/smoke/app@sha256:$(printf app | sha256sum | cut -d' ' -f1)"
cat >pod.yaml <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: smoke-allowed
  namespace: smoke
spec:
  containers:
    - name: app
      image: $image
EOF
# The webhook configuration takes effect asynchronously: retry until the endpoint has seen the request.
created=0
for _ in $(seq 1 30); do
  if kube create -f pod.yaml >create-pod.log 2>&1; then created=1; fi
  if ls reviews/review-*.json >/dev/null 2>&1; then break; fi
  [ "$created" = 1 ] && kube delete pod -n smoke smoke-allowed --wait=false >/dev/null 2>&1 && created=0
  sleep 0.5
done
ls reviews/review-*.json >/dev/null 2>&1 || fail "the webhook endpoint never received an AdmissionReview"
[ "$created" = 1 ] || kube create -f pod.yaml >create-pod.log 2>&1 || fail "creating the pod failed: $(cat create-pod.log)"
review="$(find reviews -name 'review-*.json' -printf '%T@ %p\n' | sort -n | tail -n 1 | cut -d' ' -f2)"
jq -e --arg img "$image" '.apiVersion == "admission.k8s.io/v1" and .kind == "AdmissionReview"
   and .request.operation == "CREATE" and .request.kind.kind == "Pod" and .request.namespace == "smoke"
   and .request.object.spec.containers[0].image == $img and (.request.uid | length > 0)' "$review" >/dev/null ||
  fail "the AdmissionReview is not the pod's CREATE: $(head -c 600 "$review")"
phase="$(kube get pod -n smoke smoke-allowed -o jsonpath='{.status.phase}')"
[ "$phase" = Pending ] || fail "pod phase is '$phase', expected Pending (no kubelet)"

# A pod the endpoint denies.
sed -e 's/name: smoke-allowed/name: smoke-denied/' -e 's/^  namespace: smoke$/  namespace: smoke\n  labels:\n    kibaship.test\/deny: "true"/' \
  pod.yaml >pod-denied.yaml
expect_rejected create-denied-pod "kibaship smoke webhook denies pod smoke-denied" kube create -f pod-denied.yaml

version="$(awk '$1 == "kube-apiserver" { print $2 }' "$PEERS_LIST")" # the binary says v0.0.0-master
pass "kube-apiserver $version + etcd $("$etcd" --version | awk '/^etcd Version/ { print $3 }'): namespace + Pod (Pending) created by kubectl; the ValidatingWebhookConfiguration's HTTPS endpoint received the AdmissionReview and its denial was enforced"
