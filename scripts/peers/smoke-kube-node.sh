#!/usr/bin/env bash
# covers: containerd
# The one-node cluster's peers, each on its own: kubelet, kube-proxy, kube-scheduler and kube-controller-manager
# report the same version as kube-apiserver (no skew), and containerd 2.x boots with a config of its own (root,
# state and socket in the temp dir, NRI off) and serves its CRI plugin on that socket. The whole cluster, Pods
# included, is tested by crates/testsupport/tests/cluster.rs (it needs root and the host-wide cluster lock).
# shellcheck source=scripts/peers/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

api_version="$("$(peer_bin kube-apiserver)" --version)"
for bin in kubelet kube-proxy kube-scheduler kube-controller-manager; do
  step "$bin --version"
  got="$("$(peer_bin kube-node "$bin")" --version 2>&1 | head -n 1)"
  [ "${got##* }" = "${api_version##* }" ] || fail "$bin says '$got', kube-apiserver says '$api_version'"
done

containerd="$(peer_bin containerd)"
peer_bin containerd containerd-shim-runc-v2 >/dev/null
c="$SMOKE_WORK/containerd"
mkdir -p "$c"
cat >"$c/config.toml" <<TOML
version = 3
root = "$c/root"
state = "$c/state"
disabled_plugins = ["io.containerd.nri.v1.nri"]
[grpc]
  address = "$c/containerd.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$c/opt"
TOML
start_bg containerd "$containerd" --config "$c/config.toml"
for _ in $(seq 1 200); do
  grep -q 'containerd successfully booted' "$SMOKE_WORK/containerd.log" && break
  assert_running containerd
  sleep 0.1
done
grep -q 'containerd successfully booted' "$SMOKE_WORK/containerd.log" ||
  fail "containerd did not boot: $(tail -n 1 "$SMOKE_WORK/containerd.log")"
[ -S "$c/containerd.sock" ] || fail "containerd booted without its socket $c/containerd.sock"
grep -q 'io.containerd.grpc.v1.cri' "$SMOKE_WORK/containerd.log" || fail "containerd loaded no CRI plugin"
pass "kubelet, kube-proxy, kube-scheduler, kube-controller-manager ${api_version##* }; $("$containerd" --version | awk '{ print $3 }') boots"
