#!/usr/bin/env bash
# Runs every test kubesim has (what CI runs). First finds or installs what the
# tests run beside kubesim (scripts/test-deps.sh: a headless Chromium for the
# HTML report test), so a fresh machine does not fail minutes into the suite.
# Last, the planted-bugs tests, which need their cargo feature.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/test-deps.sh
cargo build --release --locked 2>&1 | tail -n 2
cargo test --release --locked --all-targets 2>&1
# The planted bugs (off in every other build) are found and shrunk.
cargo test --release --locked --features planted-bugs --test planted_bugs 2>&1
