#!/usr/bin/env bash
# Runs every test kubesim has. Needs a headless Chromium for the HTML report test
# (.ci/run installs Debian's chromium-headless-shell); live mode's containerd later.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked 2>&1 | tail -n 2
cargo test --release --locked --all-targets 2>&1
