# shellcheck shell=bash
# Shared by scripts/peers/smoke-*.sh (sourced, not run). Everything listens on 127.0.0.1 only and is torn
# down by the EXIT trap; every failure is loud: `fail` prints the FAIL line and exits 1.
set -euo pipefail

PEERS_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PEERS_LIST="$PEERS_REPO_ROOT/tools/peers.txt"
PEERS_CACHE="${KIBASHIP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kibaship}/peers"
SMOKE_NAME="${SMOKE_NAME:-$(basename "$0" .sh | sed 's/^smoke-//')}"

SMOKE_WORK="$(mktemp -d "${TMPDIR:-/tmp}/kibaship-smoke-$SMOKE_NAME-XXXXXX")"
_smoke_pids=()
declare -A _smoke_pid_of=()
_smoke_done=0

_smoke_cleanup() {
  local rc=$?
  local p
  # SIGTERM, up to 5 s to exit, then SIGKILL (kube-apiserver's graceful shutdown alone takes minutes).
  for p in "${_smoke_pids[@]}"; do
    kill "$p" 2>/dev/null || true
  done
  for _ in $(seq 1 25); do
    local alive=0
    for p in "${_smoke_pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 1 ] || break
    sleep 0.2
  done
  for p in "${_smoke_pids[@]}"; do
    kill -9 "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  if [ "$_smoke_done" = 0 ]; then
    # set -e stopped the script (or `fail` ran inside a command substitution).
    if [ -f "$SMOKE_WORK/.fail-reason" ]; then
      echo "FAIL $SMOKE_NAME: $(cat "$SMOKE_WORK/.fail-reason") (logs kept in $SMOKE_WORK)"
    else
      echo "FAIL $SMOKE_NAME: a step exited $rc at line ${BASH_LINENO[0]:-?} (logs kept in $SMOKE_WORK)"
    fi
    [ "$rc" != 0 ] || rc=1
  elif [ "${SMOKE_KEEP:-0}" != 1 ] && [ "$rc" = 0 ]; then
    rm -rf "$SMOKE_WORK"
  fi
  exit "$rc"
}
trap _smoke_cleanup EXIT
trap 'exit 130' INT TERM

# Step log: always into $SMOKE_WORK/steps.log, and on stderr with SMOKE_VERBOSE=1 (the PASS/FAIL line is the
# only stdout line; a FAIL names the failing step and keeps the logs).
step() {
  echo "  [$SMOKE_NAME] $*" >>"$SMOKE_WORK/steps.log"
  [ "${SMOKE_VERBOSE:-0}" != 1 ] || echo "  [$SMOKE_NAME] $*" >&2
}

pass() { _smoke_done=1; echo "PASS $SMOKE_NAME: $*"; exit 0; }

fail() {
  printf '%s\n' "$*" >"$SMOKE_WORK/.fail-reason"
  if [ "$BASH_SUBSHELL" -gt 0 ]; then
    # Inside $(...): the parent's EXIT trap prints the FAIL line with this reason.
    echo "  [$SMOKE_NAME] error: $*" >&2
    exit 1
  fi
  _smoke_done=1
  echo "FAIL $SMOKE_NAME: $* (logs kept in $SMOKE_WORK)"
  exit 1
}

# Runs a command, sending its output to $SMOKE_WORK/<label>.log; on failure shows the log tail and fails.
run() {
  local label="$1"; shift
  step "$label: $*"
  if ! "$@" >"$SMOKE_WORK/$label.log" 2>&1; then
    tail -n 20 "$SMOKE_WORK/$label.log" | sed 's/^/    | /' >&2
    fail "$label failed: $*"
  fi
}

# Runs a command that must FAIL, and fail for the expected reason (PATTERN, an extended regexp, in its output),
# so that an unrelated error (network, usage) cannot pass for a rejection.
expect_rejected() {
  local label="$1" pattern="$2"; shift 2
  step "$label (must fail): $*"
  if "$@" >"$SMOKE_WORK/$label.log" 2>&1; then
    fail "$label: succeeded but must fail: $*"
  fi
  grep -Eq "$pattern" "$SMOKE_WORK/$label.log" ||
    fail "$label: failed, but not with /$pattern/: $(tail -n 2 "$SMOKE_WORK/$label.log" | tr '\n' ' ')"
}

# Path of a peer's binary from tools/peers.txt + the cache; fails with "run make peers" when missing.
peer_bin() {
  local name="$1" bin="${2:-}" line version binaries dir
  line="$(awk -v n="$name" '$1 == n && $1 !~ /^#/ { print; exit }' "$PEERS_LIST")"
  [ -n "$line" ] || fail "peer '$name' is not in tools/peers.txt"
  version="$(awk '{ print $2 }' <<<"$line")"
  binaries="$(awk '{ print $3 }' <<<"$line")"
  [ -n "$bin" ] || bin="${binaries%%,*}"
  dir="$PEERS_CACHE/$name-$version"
  if [ ! -x "$dir/$bin" ] || [ ! -f "$dir/.kibaship-built" ]; then
    fail "peer $name $version is not built ($dir/$bin missing): run \`make peers\`"
  fi
  printf '%s\n' "$dir/$bin"
}

# Real `railpack prepare APP_DIR [flags...]`, offline and isolated per run (a private /tmp/railpack holding the
# `mise` peer and a seeded remote-versions cache): scripts/peers/railpack-prepare.sh, see docs/peers.md.
# Its run directory goes under $SMOKE_WORK. Returns railpack's exit status.
railpack_prepare() {
  peer_bin railpack >/dev/null
  peer_bin mise >/dev/null
  mkdir -p "$SMOKE_WORK/railpack-runs"
  TMPDIR="$SMOKE_WORK/railpack-runs" "$PEERS_REPO_ROOT/scripts/peers/railpack-prepare.sh" "$@"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Starts a background process logging to $SMOKE_WORK/<label>.log and remembers it for teardown.
start_bg() {
  local label="$1"; shift
  step "start $label: $*"
  "$@" >"$SMOKE_WORK/$label.log" 2>&1 &
  _smoke_pids+=("$!")
  _smoke_pid_of["$label"]="$!"
}

# Fails (with the end of its log) if the background process LABEL has exited.
assert_running() {
  local label="$1" pid="${_smoke_pid_of[$1]:-}"
  if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
    tail -n 20 "$SMOKE_WORK/$label.log" | sed 's/^/    | /' >&2
    fail "$label exited early; its log ends with: $(grep -v '^[[:space:]]*$' "$SMOKE_WORK/$label.log" | tail -n 1 | cut -c1-300)"
  fi
}

# Waits until URL answers with an HTTP status (any), up to ~20 s; fails with the server log otherwise.
wait_http() {
  local url="$1" label="$2"
  for _ in $(seq 1 100); do
    if curl -s -o /dev/null "$url" 2>/dev/null; then return 0; fi
    assert_running "$label"
    sleep 0.2
  done
  tail -n 20 "$SMOKE_WORK/$label.log" | sed 's/^/    | /' >&2
  fail "$label did not answer at $url within 20 s"
}

# go-containerregistry's registry with the OCI referrers API on (peer ggcr-registry: `crane registry serve`
# is the same registry but leaves that API off), in memory. Sets REFERRERS_REGISTRY=127.0.0.1:PORT.
start_referrers_registry() {
  local bin port
  bin="$(peer_bin ggcr-registry)"
  port="$(free_port)"
  start_bg ggcr-registry "$bin" --address "127.0.0.1:$port"
  REFERRERS_REGISTRY="127.0.0.1:$port"
  wait_http "http://$REFERRERS_REGISTRY/v2/" ggcr-registry
}

# `crane registry serve`, in memory. Sets CRANE_REGISTRY=127.0.0.1:PORT.
start_crane_registry() {
  local crane port
  crane="$(peer_bin crane)"
  port="$(free_port)"
  start_bg crane-registry "$crane" registry serve --address "127.0.0.1:$port"
  CRANE_REGISTRY="127.0.0.1:$port"
  wait_http "http://$CRANE_REGISTRY/v2/" crane-registry
}

# Uploads stdin as a blob to REGISTRY/REPO (POST, then monolithic PUT ?digest=). Fails unless 201.
upload_blob() {
  local registry="$1" repo="$2" digest="$3" base location sep code
  base="http://$registry"
  location="$(curl -sS -D - -o /dev/null -X POST "$base/v2/$repo/blobs/uploads/" |
    awk 'tolower($1) == "location:" { print $2 }' | tr -d '\r')"
  [ -n "$location" ] || fail "POST $base/v2/$repo/blobs/uploads/ returned no Location"
  case "$location" in /*) location="$base$location" ;; esac
  case "$location" in *\?*) sep='&' ;; *) sep='?' ;; esac
  code="$(curl -sS -o "$SMOKE_WORK/blob-put.out" -w '%{http_code}' -X PUT \
    -H 'Content-Type: application/octet-stream' --data-binary @- "$location${sep}digest=$digest")"
  [ "$code" = 201 ] || fail "blob PUT to $registry/$repo answered $code: $(cat "$SMOKE_WORK/blob-put.out")"
}

# PUTs the manifest file FILE (OCI image manifest media type) to REGISTRY/REPO by its digest; prints the digest.
put_manifest() {
  local registry="$1" repo="$2" file="$3" digest code
  digest="sha256:$(sha256sum "$file" | cut -d' ' -f1)"
  code="$(curl -sS -o "$SMOKE_WORK/manifest-put.out" -w '%{http_code}' -X PUT \
    -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary @"$file" "http://$registry/v2/$repo/manifests/$digest")"
  [ "$code" = 201 ] || fail "manifest PUT to $registry/$repo answered $code: $(cat "$SMOKE_WORK/manifest-put.out")"
  printf '%s\n' "$digest"
}

# Debian's docker-registry (distribution 2.8: no referrers API, so clients use the tag fallback).
# Sets DOCKER_REGISTRY=127.0.0.1:PORT.
start_docker_registry() {
  local port dir
  command -v docker-registry >/dev/null || fail "docker-registry is not installed (Debian package docker-registry; run \`make deps\`)"
  port="$(free_port)"
  dir="$SMOKE_WORK/docker-registry"
  mkdir -p "$dir/storage"
  cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
EOF
  start_bg docker-registry docker-registry serve "$dir/config.yml"
  DOCKER_REGISTRY="127.0.0.1:$port"
  wait_http "http://$DOCKER_REGISTRY/v2/" docker-registry
}

# Pushes a one-layer OCI image (built by crane from a tarball written here) to REGISTRY/REPO:TAG.
# Prints the manifest digest.
push_small_image() {
  local registry="$1" repo="$2" tag="$3" crane ctx
  crane="$(peer_bin crane)"
  ctx="$SMOKE_WORK/layer-${repo//\//_}-$tag"
  mkdir -p "$ctx/app"
  printf 'kibaship smoke %s %s\n' "$repo" "$tag" >"$ctx/app/hello.txt"
  tar -C "$ctx" -cf "$ctx.tar" app
  run "push-$(echo "$repo-$tag" | tr '/:' '__')" "$crane" append --insecure --oci-empty-base \
    -f "$ctx.tar" -t "$registry/$repo:$tag"
  "$crane" digest --insecure "$registry/$repo:$tag"
}

# sha256 digest of the manifest the registry serves for REF, computed from the raw bytes by skopeo.
registry_digest() {
  echo "sha256:$(skopeo inspect --raw --tls-verify=false "docker://$1" | sha256sum | cut -d' ' -f1)"
}
