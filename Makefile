# The two commands README.md documents: `make demo` (the main job) and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := charm
TARGET := x86_64-unknown-linux-musl
CHARM := build/parse-server_amd64.charm
export CC_x86_64_unknown_linux_musl := musl-gcc
# Where the end-to-end tests, the demo and the benchmarks find what they drive.
export PARSE_SERVER_CHARM := $(CURDIR)/$(CHARM)
export JUJUSIM := $(CURDIR)/target/debug/jujusim
export EGRESS_PROXY := $(CURDIR)/target/debug/egress-proxy

.PHONY: charm prereqs sim demo test lint unit e2e bench clean

prereqs:
	@bash scripts/prereqs.sh

# The packed charm: a zip whose `dispatch` is the static charm binary (exec bit kept).
charm: prereqs
	@bash scripts/build-charm.sh

# The simulator (Juju's side) and the egress proxy: their own crate.
sim:
	cargo build --quiet -p jujusim

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

# Everything that needs no root, no Node, no database: both crates' unit tests, the charm's
# file-consistency tests and its state-transition tests, the simulator's multi-unit model tests.
unit: lint
	cargo test --workspace --lib --bins --test charm_files --test state --test multiunit

# The end-to-end tests: the packed charm on simulated units (booted machines: the host's own
# systemd as PID 1 of each unit's namespaces) with the real workload (root). scripts/e2e.sh
# fails the target if the host changed during the run and prints the measured figures.
e2e: prereqs charm sim
	@bash scripts/e2e.sh

test: prereqs charm sim unit e2e

demo: prereqs charm sim
	@bash scripts/demo.sh $(CURDIR)/$(CHARM)

bench: prereqs charm sim
	cargo bench --bench charm

clean:
	rm -rf build target/e2e .demo
