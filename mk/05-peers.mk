# Real peers built from their Go modules (issue 10). The pinned list is tools/peers.txt; builds go to
# $(KIBASHIP_CACHE)/peers/<name>-<version>/ (outside the clone), one at a time under `nice`.
#   make peers        build what is missing, print the table (peer, version, status, seconds, reason)
#   make peers-smoke  one smoke test per peer that runs here (scripts/peers/smoke-<name>.sh), on 127.0.0.1
# See docs/peers.md.

# docker-registry: the tag-fallback registry; skopeo: registry digests; runc: BuildKit's OCI worker;
# etcd-server: kube-apiserver's store; mariadb-server: Trillian's store (Rekor v1); curl/jq/python3/openssl: the smoke scripts;
# iproute2: ss, with which the TSA and Rekor v1 smoke tests check that nothing listens beyond loopback.
# The Go toolchain itself (>= 1.26; Debian 12's golang-go is too old) must already be on the machine.
APT_PACKAGES += docker-registry skopeo runc etcd-server curl jq python3 openssl mariadb-server iproute2
# util-linux: unshare and flock, with which scripts/peers/railpack-prepare.sh gives each `railpack prepare` its
# own /tmp/railpack. (The `mise` peer comes from npm through `npm pack`: npm must be on the machine, as for
# NPM_TOOLS.)
APT_PACKAGES += util-linux
# The one-node cluster (crates/testsupport/src/cluster.rs, docs/cluster.md): the CNI plugins (bridge, host-local,
# loopback, portmap), iptables for kube-proxy and CNI, busybox-static and a C compiler for its images (a static
# pause program), umoci for building them.
APT_PACKAGES += containernetworking-plugins iptables busybox-static gcc libc6-dev umoci
# Rootless BuildKit in a Pod (crates/step/tests/tekton_pipeline.rs): rootlesskit and the setuid newuidmap/newgidmap
# helpers in the buildkitd image, as moby/buildkit's rootless image has them.
APT_PACKAGES += rootlesskit uidmap
# The real Go build (crates/step/tests/real_build.rs): Railpack's Debian base images, made from Debian's minimal root
# filesystem (debootstrap, once, into $KIBASHIP_CACHE/images; the Go toolchain comes from the Go module proxy).
APT_PACKAGES += debootstrap
# sigstore-python: the independent verifier of the keyless smoke test's bundle.
PY_TOOLS += sigstore==4.5.1
TEST_EXTRA += peers-smoke

# The peers `make demo` uses (registries, cosign, the private Sigstore of demo step 65; buildkit, railpack, mise
# and trivy for the real build of step 50); a subset, so a fresh machine's first demo does not wait for
# kube-apiserver, the node daemons and Tekton.
DEMO_PEERS := crane ggcr-registry cosign oras timestamp-authority fulcio tesseract rekor-tiles trillian rekor \
  buildkit railpack mise trivy

.PHONY: peers peers-smoke peers-demo

# Fails only if a peer marked here=yes cannot be built; here=no peers are tried and reported with the reason.
peers:
	@bash scripts/peers/build.sh

peers-smoke: peers
	@bash scripts/peers/smoke.sh

peers-demo:
	@bash scripts/peers/build.sh $(DEMO_PEERS)

# Rust tests (the registry harness's Referrers mode, cosign interop) and the demo use the peers: build them
# first on a fresh machine (seconds when cached).
test-rust: peers
demo: peers-demo
