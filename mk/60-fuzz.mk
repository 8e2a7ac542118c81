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

.PHONY: fuzz fuzz-tools

fuzz-tools:
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@if ! "$(CARGO_TOOLS)/bin/cargo-fuzz" --version 2>/dev/null | grep -q " $(CARGO_FUZZ_VERSION)$$"; then \
	  echo "fuzz: installing cargo-fuzz $(CARGO_FUZZ_VERSION) into $(CARGO_TOOLS)"; \
	  CARGO_INSTALL_ROOT="$(CARGO_TOOLS)" $(CARGO) install cargo-fuzz --locked --version $(CARGO_FUZZ_VERSION); \
	fi

fuzz: deps-apt fuzz-tools
	bash fuzz/seeds.sh
	PATH="$(CARGO_TOOLS)/bin:$$PATH" FUZZ_SECONDS=$(FUZZ_SECONDS) bash fuzz/run.sh $(FUZZ_TARGETS)
