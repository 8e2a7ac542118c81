# Fuzzing (not part of `make test`): fuzz/ is a cargo-fuzz project outside the workspace, one target
# per parser of untrusted input. `make fuzz` installs cargo-fuzz into the cache when missing, seeds
# fuzz/corpus/ from testdata/ (fuzz/seeds.sh, needs jq) and runs every target for FUZZ_SECONDS, one
# at a time at low priority; it fails when any target crashes, panics, times out or runs out of memory
# (inputs in fuzz/artifacts/<target>/). FUZZ_TARGETS="a b" runs only those.
APT_PACKAGES += jq

FUZZ_SECONDS ?= 30
FUZZ_TARGETS ?=
CARGO_FUZZ_VERSION := 0.13.2
CARGO_TOOLS := $(KIBASHIP_CACHE)/cargo-tools

.PHONY: fuzz fuzz-tools fuzz-check

# `make test` (so CI) checks that every fuzz target still compiles, with stable Rust and `--cfg fuzzing` as
# cargo-fuzz sets it, against fuzz/Cargo.lock (--locked: a library's new dependency must be in it too). Three
# targets once stopped compiling unseen (docs/fuzzing.md). A target directory of its own, since the flags
# differ from the workspace build's: about a minute on 2 cores in a fresh clone. Running the fuzzers is
# `make fuzz`.
TEST_EXTRA += fuzz-check
fuzz-check:
	RUSTFLAGS="--cfg fuzzing" $(CARGO) check --manifest-path fuzz/Cargo.toml --bins --locked --target-dir target/fuzz-check

fuzz-tools:
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@if ! "$(CARGO_TOOLS)/bin/cargo-fuzz" --version 2>/dev/null | grep -q " $(CARGO_FUZZ_VERSION)$$"; then \
	  echo "fuzz: installing cargo-fuzz $(CARGO_FUZZ_VERSION) into $(CARGO_TOOLS)"; \
	  CARGO_INSTALL_ROOT="$(CARGO_TOOLS)" $(CARGO) install cargo-fuzz --locked --version $(CARGO_FUZZ_VERSION); \
	fi

fuzz: deps-apt fuzz-tools
	bash fuzz/seeds.sh
	PATH="$(CARGO_TOOLS)/bin:$$PATH" FUZZ_SECONDS=$(FUZZ_SECONDS) bash fuzz/run.sh $(FUZZ_TARGETS)

# Property tests with fresh seeds (not part of `make test`, which runs them on the fixed seed of
# .cargo/config.toml so that CI is reproducible). Each round draws a new PROPTEST_RNG_SEED and prints it:
# a failure is replayed with `PROPTEST_RNG_SEED=<seed> cargo test -p <crate> --test <target>`, and tests
# that persist failures write the minimal case under proptest-regressions/, to be committed.
PROPTEST_ROUNDS ?= 5
PROPTEST_SUITES := kibaship-oci:bad_input kibaship-oci:lib kibaship-gate:bad_input kibaship-gate:glob_robustness \
  kibaship-sigstore:bad_input kibaship-sigstore:parser_robustness kibaship-sign:bad_input \
  kibaship-cosign:bad_input kibaship-step:bad_input kibaship-step:secrets_hash_shell \
  kibaship-admission:bad_input kibaship-admission:respond kibaship-policy:parse_never_panics

.PHONY: proptest-explore
proptest-explore:
	@for round in $$(seq 1 $(PROPTEST_ROUNDS)); do \
	  seed=$$(od -An -N4 -tu4 /dev/urandom | tr -d ' '); \
	  echo "proptest-explore: round $$round, PROPTEST_RNG_SEED=$$seed"; \
	  for suite in $(PROPTEST_SUITES); do \
	    pkg=$${suite%%:*}; target=$${suite#*:}; \
	    if [ "$$target" = lib ]; then sel=(--lib); else sel=(--test "$$target"); fi; \
	    PROPTEST_RNG_SEED=$$seed $(CARGO) test --locked -q -p "$$pkg" "$${sel[@]}" \
	      || { echo "proptest-explore: $$pkg $$target failed with PROPTEST_RNG_SEED=$$seed"; exit 1; }; \
	  done; \
	done
