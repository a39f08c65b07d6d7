#!/usr/bin/env bash
# The whole test suite, as README names it:
#   1. formatting and lints;
#   2. every cargo test: unit tests, contract tests against the mock Glance and
#      Keystone, the demo test, the mock's own tests, and the scenario suite
#      against the mocks;
#   3. the same scenario suite against real Glance 33.0.0 and Keystone 30.0.0,
#      installed and started by scripts/openstack/up.sh (Python >= 3.11 is
#      required: without it up.sh fails and so does this script - nothing is
#      skipped silently), and stopped again at the end;
#   4. the benchmark harness in smoke mode (it must run; no figure is judged).
#      The first run builds oha from crates.io (about ten minutes, cached in
#      .cache/bench/).
set -euo pipefail
cd "$(dirname "$0")/.."

started=$(date +%s)
phase() { printf '\n== test.sh: %s (+%ss)\n' "$1" "$(( $(date +%s) - started ))"; }

phase "format and lints"
cargo fmt --check
cargo clippy --workspace --all-targets --locked -- -D warnings

phase "build the tests"
cargo test --workspace --locked --no-run

phase "start real Keystone and Glance"
trap 'scripts/openstack/down.sh' EXIT
scripts/openstack/up.sh

phase "run every test, real-service scenarios included"
cargo test --workspace --locked -- --include-ignored

phase "benchmark harness, smoke mode"
scripts/bench-smoke.sh

phase "done"
echo "test.sh: whole suite passed in $(( $(date +%s) - started )) s"
