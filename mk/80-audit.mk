# kibaverify audit (issue 18): crates/audit, `kibaverify audit`, docs/audit.md.
# Its test renders the HTML report in headless Chromium (crates/kibaverify/tests/audit.rs).
# make bench-audit: 1,000 workloads using 200 distinct signed images (both layouts) on the local registry, against
# 2 x (200 x one warm `kibaverify verify`) / cores, beside a shell loop of `cosign verify` over the same images.
APT_PACKAGES += chromium python3
BENCH_TARGETS += bench-audit

.PHONY: bench-audit

bench-audit: deps peers
	$(CARGO) build --release --locked -p kibaverify -p kibaship-testsupport --bin kibaverify --bin kibaship-harness
	bash scripts/bench-audit.sh
