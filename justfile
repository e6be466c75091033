# Handover — tasks. `just run` serves it with demo data; `just test` runs every test.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Tools that .ci/run installs (just, nats-server, python blake3) live here.
export PATH := justfile_directory() + "/.tools/venv/bin:" + env_var("PATH")

default:
    @just --list

# Serve the ledger and its HTTP API on 127.0.0.1:8080, with demo data in ./data (first run
# only) and, the first time, a printed admin token.
run:
    cargo build --release -p handover
    ./target/release/handover serve --data data --demo

# Install the test tools (just, nats-server, python blake3) into .tools/ when missing.
tools:
    .ci/install-tools

# Build, then run every test (unit, integration, end-to-end against the real binary).
test: tools
    cargo build -p handover
    if cargo nextest --version >/dev/null 2>&1; then cargo nextest run --workspace --no-fail-fast; else cargo test --workspace --no-fail-fast; fi
    cargo test --workspace --doc

# Benchmarks: prints tables and writes target/bench/*.json (log, ingest, query, replay,
# detection); starts its own nats-server from .tools/.
bench: tools
    cargo build --release -p handover
    ./target/release/handover bench --out target/bench/log.json

fmt:
    cargo fmt --all

lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
