# Admission webhook (issue 15): crates/webhook, `kibaship-webhook serve`. See docs/webhook.md ("Speed").
#   make bench-webhook   the release webhook over TLS, loaded from a second process (examples/admission_load.rs):
#                        warm throughput and p99, cold p99 of 100 new digests at once, the manifest fetches of
#                        100 concurrent reviews of one new digest counted in the registry's own request log (the
#                        registry reached through examples/registry_latency.rs, so the reviews overlap its
#                        verification), and `cosign verify` per image beside it; figures printed beside the
#                        targets, PASS or MISS. A benchmark: it reports, never fails on a miss, and is not in
#                        `make test`.
# openssl: the serving certificate; jq and curl: reviews, manifests, metrics. The registry harness's fixtures need
# skopeo and umoci (mk/10-registry.mk); the cosign, crane and ggcr-registry peers are built by scripts/peers/build.sh.
APT_PACKAGES += openssl jq curl
BENCH_TARGETS += bench-webhook

.PHONY: bench-webhook

bench-webhook: deps-apt
	@bash scripts/peers/build.sh cosign crane ggcr-registry
	$(CARGO) build --release --locked -p kibaship-webhook -p kibaship-testsupport \
	  --bin kibaship-webhook --bin kibaship-harness --example admission_load --example registry_latency
	bash scripts/bench-webhook.sh
