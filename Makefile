# Everyday commands. `make` runs what CI runs.
.PHONY: ci test fmt lint unit services-up services-down services-env demo bench

ci test:
	scripts/test

fmt:
	cargo fmt --all

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

# Unit tests of the pure crates only (no services needed).
unit:
	cargo test -p ledgerline-core -p ledgerline-bus -p ledgerline-proto

services-up:
	@scripts/test-services up

services-down:
	@scripts/test-services down

services-env:
	@scripts/test-services env

demo:
	scripts/demo

bench:
	cargo bench -p ledgerline-core --bench post
	cargo bench -p ledgerline-stripe-sim
	cargo bench -p ledgerline-ingester --bench ingest
	cargo run --release -p ledgerline-ledger --example bench -- 200000
	cargo bench -p ledgerline-tests --bench pipeline
