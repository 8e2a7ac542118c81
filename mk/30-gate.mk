# Vulnerability gate (issue 3): crates/gate, `kibaverify gate`.
# The Rust tests (crates/gate/tests/corpus.rs) shell out to jq (independent counts), python3
# (JUnit XML parsing) and check-jsonschema (SARIF 2.1.0 schema validation): they fail, never
# skip, when one is missing. make bench-gate measures peak memory with /usr/bin/time (apt: time).
APT_PACKAGES += jq python3 time
PY_TOOLS += check-jsonschema==0.39.0
TEST_EXTRA += test-gate-cli
BENCH_TARGETS += bench-gate

.PHONY: test-gate-cli bench-gate

# The CLI's exit codes over real reports and bad input (0 pass, 1 fail, 2 bad input).
# The binary is the one `cargo test --workspace` builds for kibaverify's integration tests: after test-rust
# this is a no-op, where `cargo build -p kibaverify` would unify features differently and compile ~10 crates again.
test-gate-cli:
	$(CARGO) test --workspace --locked --no-run --quiet
	KIBAVERIFY=target/debug/kibaverify bash scripts/demo.d/30-gate.sh --check-bad-input

bench-gate: deps
	$(CARGO) build --release --locked -p kibaverify
	bash scripts/bench-gate.sh
