# Blobs (issue 20 item 1): `kibaverify sign-blob` / `verify-blob`.
# make bench-blob: sign-blob and verify-blob of a 1 GB file beside sha256sum and `cosign sign-blob`, with peak memory.
APT_PACKAGES += time coreutils
BENCH_TARGETS += bench-blob

.PHONY: bench-blob

bench-blob: deps peers
	$(CARGO) build --release --locked -p kibaverify --bin kibaverify
	bash scripts/bench-blob.sh
