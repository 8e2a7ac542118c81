# Sigstore bundle verification (issue 9): crates/sigstore, `kibaverify verify-bundle`.
#   make bench-verify   verifications/s of kibaship beside sigstore-python, sigstore-rs 0.15 and the
#                       aws-lc-rs lower bound, on the happy-path conformance bundles. See docs/verify.md.

# sigstore-python is the peer measured in the benchmark (05-peers.mk pins the same version).
PY_TOOLS := $(filter-out sigstore==4.5.1,$(PY_TOOLS)) sigstore==4.5.1
BENCH_TARGETS += bench-verify

BENCH_VERIFY_SECONDS ?= 3
BENCH_VERIFY_CASES := happy-path-v0.1 happy-path-v0.3-new-mediaType happy-path-intoto-in-dsse-v3 rekor2-happy-path
BENCH_VERIFY_ARGS = testdata/sigstore/conformance testdata/sigstore/trusted-roots/production-trusted_root.json \
	$(BENCH_VERIFY_SECONDS) $(BENCH_VERIFY_CASES)
BENCH_VERIFY_OUT := $(KIBASHIP_CACHE)/bench-verify

.PHONY: bench-verify
bench-verify: deps-py
	@mkdir -p $(BENCH_VERIFY_OUT)
	$(CARGO) build --release --locked -p kibaship-sigstore --example bench_verify
	CARGO_TARGET_DIR=$(KIBASHIP_CACHE)/bench-target/sigstore-rs $(CARGO) build --release --locked \
	  --manifest-path bench/sigstore-verify/sigstore-rs/Cargo.toml
	$(CARGO) run -q --release --locked -p kibaship-sigstore --example bench_verify -- $(BENCH_VERIFY_ARGS) \
	  > $(BENCH_VERIFY_OUT)/kibaship.jsonl
	CARGO_TARGET_DIR=$(KIBASHIP_CACHE)/bench-target/sigstore-rs $(CARGO) run -q --release --locked \
	  --manifest-path bench/sigstore-verify/sigstore-rs/Cargo.toml -- $(BENCH_VERIFY_ARGS) \
	  > $(BENCH_VERIFY_OUT)/sigstore-rs.jsonl
	$(VENV)/bin/python bench/sigstore-verify/sigstore_python_bench.py $(BENCH_VERIFY_ARGS) \
	  > $(BENCH_VERIFY_OUT)/sigstore-python.jsonl
	@python3 bench/sigstore-verify/report.py $(BENCH_VERIFY_OUT)/kibaship.jsonl \
	  $(BENCH_VERIFY_OUT)/sigstore-python.jsonl $(BENCH_VERIFY_OUT)/sigstore-rs.jsonl
