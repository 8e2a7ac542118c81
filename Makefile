# kibaship — the two commands that matter are `make demo` and `make test`.
#
# Each area keeps its own rules in mk/*.mk and adds to the lists below:
#   APT_PACKAGES  Debian packages it needs (installed by `make deps`)
#   PY_TOOLS      pinned PyPI tools (name==version), installed into $(KIBASHIP_CACHE)/venv
#   NPM_TOOLS     pinned npm tools (name@version), installed into $(KIBASHIP_CACHE)/npm
#   TEST_EXTRA    make targets run by `make test` after the Rust tests (linters, peer smoke tests)
#   BENCH_TARGETS make targets run by `make bench`
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

export KIBASHIP_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/kibaship
VENV := $(KIBASHIP_CACHE)/venv
NPM_PREFIX := $(KIBASHIP_CACHE)/npm
export PATH := $(VENV)/bin:$(NPM_PREFIX)/node_modules/.bin:$(PATH)

APT_PACKAGES := jq ca-certificates openssl
PY_TOOLS :=
NPM_TOOLS :=
TEST_EXTRA :=
BENCH_TARGETS :=

include $(sort $(wildcard mk/*.mk))

CARGO ?= cargo
NEXTEST := $(shell $(CARGO) nextest --version >/dev/null 2>&1 && echo yes)

.PHONY: help deps deps-apt deps-py deps-npm build lint test test-rust demo bench clean

help:
	@echo "make demo   - run the whole job end to end on this machine"
	@echo "make test   - lint and run every test (what CI runs)"
	@echo "make bench  - benchmarks beside their peers"
	@echo "make peers  - build the pinned Go peers into $(KIBASHIP_CACHE)/peers"
	@echo "make fuzz / make proptest-explore - exploration with fresh inputs and seeds (not in make test)"

deps: deps-apt deps-py deps-npm

# Installs only what is missing; `apt-get update` runs once, and only when needed.
deps-apt:
	@missing=""; for p in $(sort $(APT_PACKAGES)); do \
	  dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

deps-py:
	@if [ -n "$(strip $(PY_TOOLS))" ]; then \
	  stamp="$(VENV)/.kibaship-$$(echo '$(sort $(PY_TOOLS))' | sha256sum | cut -c1-16)"; \
	  if [ ! -f "$$stamp" ]; then \
	    echo "deps: installing Python tools $(PY_TOOLS)"; \
	    [ -x "$(VENV)/bin/python" ] || python3 -m venv "$(VENV)"; \
	    "$(VENV)/bin/pip" install -q --disable-pip-version-check $(PY_TOOLS) && touch "$$stamp"; \
	  fi; \
	fi

deps-npm:
	@if [ -n "$(strip $(NPM_TOOLS))" ]; then \
	  stamp="$(NPM_PREFIX)/.kibaship-$$(echo '$(sort $(NPM_TOOLS))' | sha256sum | cut -c1-16)"; \
	  if [ ! -f "$$stamp" ]; then \
	    echo "deps: installing npm tools $(NPM_TOOLS)"; \
	    mkdir -p "$(NPM_PREFIX)" && npm install --silent --no-audit --no-fund --prefix "$(NPM_PREFIX)" $(NPM_TOOLS) && touch "$$stamp"; \
	  fi; \
	fi

build:
	$(CARGO) build --workspace --all-targets --locked

lint:
	$(CARGO) fmt --all -- --check
	bash scripts/check-crypto-stack.sh
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

test-rust:
ifeq ($(NEXTEST),yes)
	$(CARGO) nextest run --workspace --locked --no-fail-fast
else
	$(CARGO) test --workspace --locked --no-fail-fast
endif

test: deps lint test-rust $(TEST_EXTRA)

demo: deps
	$(CARGO) build --release --locked -p kibaverify -p kibaship-step -p kibaship-webhook
	bash scripts/demo.sh

bench: deps $(BENCH_TARGETS)

clean:
	$(CARGO) clean
