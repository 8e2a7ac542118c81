#!/usr/bin/env bash
# Records the AdmissionReviews a real kube-apiserver sends to a mutating webhook, into this directory
# (one file per scenario, the body byte for byte), and checks that the API server accepts what
# kibaship-admission answers: every request is answered by `cargo run --example answer` of
# crates/admission (parse_review + respond), which pins each tag to a digest (a base64 JSONPatch with
# `test` + `replace` operations), sends a warning with an escape character in it, and denies images whose
# name contains `deny`. The API server must apply the patches (v1 and v1beta1 answers), show the warning
# escaped, and refuse the denied Pod with our message.
#
#   testdata/admission/recorded/record.sh          (needs `make peers` for kube-apiserver, Debian's etcd)
#   RECORD_DIR=/tmp/x testdata/admission/recorded/record.sh   (checks the answers, writes the reviews there)
#
# etcd and kube-apiserver run on loopback as in scripts/peers/smoke-kube-apiserver.sh.
SMOKE_NAME=record-admission
# shellcheck source=scripts/peers/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../../scripts/peers/lib.sh"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${RECORD_DIR:-$here}"
mkdir -p "$out"

apiserver="$(peer_bin kube-apiserver)"
kubectl="$(peer_bin kube-apiserver kubectl)"
etcd="$(command -v etcd || true)"
[ -n "$etcd" ] || fail "etcd is not installed (Debian package etcd-server; run \`make deps\`)"
run build-answer cargo build --manifest-path "$PEERS_REPO_ROOT/Cargo.toml" -p kibaship-admission --example answer
answer="${CARGO_TARGET_DIR:-$PEERS_REPO_ROOT/target}/debug/examples/answer"
[ -x "$answer" ] || fail "no $answer after the build"
cd "$SMOKE_WORK" || fail "cannot enter $SMOKE_WORK"

# PKI: one CA for the API server's and the webhook's serving certificates; a service-account key.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj "/CN=kibaship record CA" \
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
printf '%s,kibaship-record,kibaship-record,"system:masters"\n' "$token" >tokens.csv

etcd_port="$(free_port)"
etcd_peer_port="$(free_port)"
start_bg etcd "$etcd" --name record --data-dir "$SMOKE_WORK/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
  --initial-cluster "record=http://127.0.0.1:$etcd_peer_port"
wait_http "http://127.0.0.1:$etcd_port/health" etcd

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
[ "$(curl -sS --cacert ca.pem -H "Authorization: Bearer $token" "$server/readyz" 2>/dev/null)" = ok ] ||
  fail "kube-apiserver was not ready at $server/readyz within 60 s"
kube() { "$kubectl" --server "$server" --token "$token" --certificate-authority "$SMOKE_WORK/ca.pem" "$@"; }

webhook_port="$(free_port)"
start_bg recorder python3 "$here/recorder.py" --port "$webhook_port" --cert "$SMOKE_WORK/webhook.pem" \
  --key "$SMOKE_WORK/webhook.key" --out "$SMOKE_WORK/reviews" -- "$answer"
for _ in $(seq 1 50); do
  curl -sS --cacert ca.pem "https://127.0.0.1:$webhook_port/" >/dev/null 2>&1 && break
  assert_running recorder
  sleep 0.2
done

run namespaces kube create namespace rec
run namespace-beta kube create namespace rec-beta
run label kube label namespace rec kibaship.test/review=v1
run label-beta kube label namespace rec-beta kibaship.test/review=v1beta1

webhook() { # name, review version, namespace label value
  cat <<EOF
  - name: $1
    admissionReviewVersions: ["$2"]
    sideEffects: None
    failurePolicy: Fail
    reinvocationPolicy: Never
    timeoutSeconds: 10
    clientConfig:
      url: https://127.0.0.1:$webhook_port/admit
      caBundle: $(base64 -w0 ca.pem)
    namespaceSelector:
      matchLabels:
        kibaship.test/review: "$3"
    rules:
      - apiGroups: [""]
        apiVersions: ["v1"]
        operations: ["CREATE", "UPDATE", "DELETE"]
        resources: ["pods", "pods/ephemeralcontainers", "replicationcontrollers"]
      - apiGroups: ["apps"]
        apiVersions: ["v1"]
        operations: ["CREATE", "UPDATE", "DELETE"]
        resources: ["deployments", "statefulsets", "daemonsets", "replicasets"]
      - apiGroups: ["batch"]
        apiVersions: ["v1"]
        operations: ["CREATE", "UPDATE", "DELETE"]
        resources: ["jobs", "cronjobs"]
EOF
}
{
  printf 'apiVersion: admissionregistration.k8s.io/v1\nkind: MutatingWebhookConfiguration\n'
  printf 'metadata:\n  name: kibaship-record\nwebhooks:\n'
  webhook v1.record.kibaship.test v1 v1
  webhook v1beta1.record.kibaship.test v1beta1 v1beta1
} >webhook.yaml
run apply-webhook kube apply -f webhook.yaml

# The configuration takes effect asynchronously: create a probe pod until the endpoint sees it.
probe='{"apiVersion":"v1","kind":"Pod","metadata":{"name":"probe","namespace":"rec"},"spec":{"containers":[{"name":"c","image":"registry.example/probe:1"}]}}'
seen=0
for _ in $(seq 1 60); do
  kube create -f - <<<"$probe" >probe.log 2>&1 || true
  if ls reviews/review-*.json >/dev/null 2>&1; then seen=1; break; fi
  kube delete pod -n rec probe --wait=false >/dev/null 2>&1 || true
  sleep 0.5
done
[ "$seen" = 1 ] || fail "the webhook never received an AdmissionReview"
kube delete pod -n rec probe --wait=false >/dev/null 2>&1 || true
sleep 1
rm -f reviews/review-*

taken=0
# take NAME [any]: the one review received since the last take becomes NAME.json here (with `any`: the
# first of one or more; deleting a Pod that no kubelet runs calls the webhook more than once).
take() {
  local files f
  mapfile -t files < <(find reviews -name 'review-*.json' | sort)
  [ "${#files[@]}" -ge 1 ] || fail "expected an AdmissionReview for $1, got none"
  [ "${2:-}" = any ] || [ "${#files[@]}" = 1 ] ||
    fail "expected one new AdmissionReview for $1, got ${#files[@]}: ${files[*]}"
  cp "${files[0]}" "$out/$1.json"
  mv "${files[0]}" "taken-$1.json"
  [ ! -f "${files[0]}.answer" ] || mv "${files[0]}.answer" "taken-$1.answer.json"
  for f in "${files[@]:1}"; do rm -f "$f" "$f.answer"; done
  taken=$((taken + 1))
}
pinned() { printf '%s@sha256:%s' "$1" "$(printf 'a%.0s' $(seq 1 64))"; }
expect_image() { # what, jsonpath, expected
  local got
  got="$(kube "${@:4}" -o "jsonpath=$2")"
  [ "$got" = "$3" ] || fail "$1: image is '$got', expected '$3' (the answer's patch was not applied)"
}

cat >pod.yaml <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: rec
  labels: {app: web}
spec:
  serviceAccountName: builder
  imagePullSecrets: [{name: regcred}, {name: mirror}]
  initContainers:
    - {name: migrate, image: "registry.example/team/migrate:1.4"}
  containers:
    - {name: app, image: "registry.example/team/app:2.1"}
    - name: sidecar
      image: "registry.example/team/proxy@sha256:5f481572d088dc4023afb35fced9530ced3d9b03bf7299c6f492163cb9f0452e"
  volumes:
    - name: models
      image: {reference: "registry.example/team/models:7", pullPolicy: IfNotPresent}
EOF
run create-pod kube create -f pod.yaml
grep -qF 'Warning: test rule\u{1b}[1m: registry.example/team/migrate:1.4 pinned' create-pod.log ||
  fail "kubectl did not print the escaped warning: $(cat create-pod.log)"
take v1-pod-create
expect_image "pod init container" '{.spec.initContainers[0].image}' "$(pinned registry.example/team/migrate:1.4)" get pod -n rec web
expect_image "pod container" '{.spec.containers[0].image}' "$(pinned registry.example/team/app:2.1)" get pod -n rec web
expect_image "pod image volume" '{.spec.volumes[0].image.reference}' "$(pinned registry.example/team/models:7)" get pod -n rec web

run debug-pod kube debug -n rec web --image=registry.example/team/debug:1 --container=debugger
take v1-pod-ephemeralcontainers-update
expect_image "ephemeral container" '{.spec.ephemeralContainers[0].image}' "$(pinned registry.example/team/debug:1)" get pod -n rec web

sed -e 's/^  name: web$/  generateName: web-/' pod.yaml >pod-generate.yaml
run create-pod-dry-run kube create --dry-run=server -f pod-generate.yaml
take v1-pod-create-dry-run

run delete-pod kube delete pod -n rec web --wait=false
take v1-pod-delete any

template='{"metadata":{"labels":{"app":"w"}},"spec":{"initContainers":[{"name":"init","image":"registry.example/team/init:1"}],"containers":[{"name":"app","image":"registry.example/team/app:2.1"}]}}'
workload() { # apiVersion, kind, spec JSON (without the template)
  printf '{"apiVersion":"%s","kind":"%s","metadata":{"name":"w","namespace":"%s"},"spec":%s}' "$1" "$2" "${ns:-rec}" "$3"
}
selector='"selector":{"matchLabels":{"app":"w"}}'
ns=rec
for kind in Deployment StatefulSet DaemonSet ReplicaSet; do
  lower="$(tr '[:upper:]' '[:lower:]' <<<"$kind")"
  run "create-$lower" kube create -f - <<<"$(workload apps/v1 "$kind" "{$selector,\"template\":$template}")"
  take "v1-$lower-create"
  expect_image "$kind" '{.spec.template.spec.containers[0].image}' "$(pinned registry.example/team/app:2.1)" get "$lower" -n rec w
done
run create-rc kube create -f - <<<"$(workload v1 ReplicationController "{\"selector\":{\"app\":\"w\"},\"template\":$template}")"
take v1-replicationcontroller-create
job_template="$(sed 's/"spec":{/"spec":{"restartPolicy":"Never",/' <<<"$template")"
run create-job kube create -f - <<<"$(workload batch/v1 Job "{\"template\":$job_template}")"
take v1-job-create
run create-cronjob kube create -f - <<<"$(workload batch/v1 CronJob "{\"schedule\":\"*/5 * * * *\",\"jobTemplate\":{\"spec\":{\"template\":$job_template}}}")"
take v1-cronjob-create
expect_image "CronJob" '{.spec.jobTemplate.spec.template.spec.containers[0].image}' "$(pinned registry.example/team/app:2.1)" get cronjob -n rec w

run update-deployment kube set image -n rec deployment/w app=registry.example/team/app:2.2
take v1-deployment-update
expect_image "updated Deployment" '{.spec.template.spec.containers[0].image}' "$(pinned registry.example/team/app:2.2)" get deployment -n rec w

ns=rec-beta
sed -e 's/namespace: rec$/namespace: rec-beta/' pod.yaml >pod-beta.yaml
run create-pod-beta kube create -f pod-beta.yaml
take v1beta1-pod-create
expect_image "v1beta1 pod" '{.spec.containers[0].image}' "$(pinned registry.example/team/app:2.1)" get pod -n rec-beta web
run create-deployment-beta kube create -f - <<<"$(workload apps/v1 Deployment "{$selector,\"template\":$template}")"
take v1beta1-deployment-create
expect_image "v1beta1 Deployment" '{.spec.template.spec.containers[0].image}' "$(pinned registry.example/team/app:2.1)" get deployment -n rec-beta w

sed -e 's/^  name: web$/  name: denied/' -e 's#registry.example/team/app:2.1#registry.example/deny/app:1#' pod.yaml >pod-denied.yaml
expect_rejected create-denied-pod \
  'denied the request: test-denied: image registry.example/deny/app:1 \(container app\) is denied by the test rule' \
  kube create -f pod-denied.yaml
take v1-pod-create-denied

# A review parse_review refuses after reading its uid is answered by respond_error, a denial.
python3 - >pod-many.json <<'PY'
import json
containers = [{"name": f"c{i}", "image": f"registry.example/team/app:{i}"} for i in range(1001)]
print(json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "many", "namespace": "rec"},
                  "spec": {"containers": containers}}))
PY
expect_rejected create-many-containers \
  'denied the request: too-many-images: the Pod has 1001 images .*at most 1000 are reviewed' \
  kube create -f pod-many.json
rm -f reviews/review-*

version="$(awk '$1 == "kube-apiserver" { print $2 }' "$PEERS_LIST")"
pass "kube-apiserver $version: $taken AdmissionReviews recorded into $out; every answer of kibaship-admission was accepted (patches applied in v1 and v1beta1, warning escaped, denials shown, an unreadable review refused)"
