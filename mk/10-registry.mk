# Registry harness (issue 7): Debian's docker-registry (CNCF distribution 2.8) started by
# crates/testsupport (Rust tests) and by target/release/kibaship-harness (scripts), umoci-built fixtures
# pushed with skopeo, htpasswd for the basic-auth mode, hey for the registry's own ceiling in bench-digest.
# See docs/registry-harness.md.
APT_PACKAGES += docker-registry skopeo umoci apache2-utils openssl hey jq
BENCH_TARGETS += bench-digest

.PHONY: bench-digest

# kibaverify digest over 1,000 distinct tags beside skopeo inspect and the registry's HEAD ceiling (hey).
bench-digest:
	$(CARGO) build --release --locked -p kibaverify -p kibaship-testsupport
	bash scripts/bench-digest.sh
