#!/usr/bin/env bash
# Runs every test kubesim has. Installs nothing beyond the Rust toolchain today;
# live mode's containerd will be installed here when it lands.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked 2>&1 | tail -n 2
cargo test --release --locked --all-targets 2>&1
