# The two commands README.md documents: `make demo` (the main job) and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := charm
TARGET := x86_64-unknown-linux-musl
CHARM := build/parse-server_amd64.charm
export CC_x86_64_unknown_linux_musl := musl-gcc

.PHONY: charm prereqs demo test lint unit e2e bench clean

prereqs:
	@bash scripts/prereqs.sh

# The packed charm: a zip whose `dispatch` is the static charm binary (exec bit kept).
charm: prereqs
	@bash scripts/build-charm.sh

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

# Unit tests, simulator tests, then the end-to-end tests against the packed charm. (Not
# --all-targets: that would run the benchmark's main as a test.)
test: prereqs charm lint
	PARSE_SERVER_CHARM=$(CURDIR)/$(CHARM) cargo test --lib --bins --tests -- --test-threads=2

demo: prereqs charm
	@bash scripts/demo.sh $(CURDIR)/$(CHARM)

bench: prereqs charm
	PARSE_SERVER_CHARM=$(CURDIR)/$(CHARM) cargo bench --bench charm

clean:
	rm -rf build target/e2e .demo
