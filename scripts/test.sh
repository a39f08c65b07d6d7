#!/usr/bin/env bash
# The whole test suite, as README names it:
#   1. formatting and lints;
#   2. every cargo test of the workspace: unit tests, contract tests against
#      the mock Glance and Keystone, the layering check, the demo test, the
#      mock crate's own tests, and the scenario suite against the mocks;
#   3. the same scenario suite against real Glance 33.0.0 and Keystone 30.0.0,
#      installed and started by scripts/openstack/up.sh (Python >= 3.11 is
#      required: without it up.sh fails and so does this script - nothing is
#      skipped silently), and stopped again at the end. up.sh runs while the
#      Rust code builds;
#   4. docs/openapi.yaml checked by schemathesis (from the same venv) against
#      the demo and against the facade over real Glance (scripts/openapi-check.sh);
#   5. the benchmark harness in smoke mode (it must run; no figure is judged;
#      it compiles no load tool and uses the binaries the tests built).
set -euo pipefail
cd "$(dirname "$0")/.."

started=$(date +%s)
phase() { printf '\n== test.sh: %s (+%ss)\n' "$1" "$(( $(date +%s) - started ))"; }

phase "start real Keystone and Glance (in the background, log in .cache/openstack/up.log)"
mkdir -p .cache/openstack
scripts/openstack/up.sh >.cache/openstack/up.log 2>&1 &
up_pid=$!
# On any exit: stop up.sh if it is still starting things (it then stops
# what it started), then whatever it left running.
trap 'kill "$up_pid" 2>/dev/null && wait "$up_pid" 2>/dev/null; scripts/openstack/down.sh' EXIT

phase "format and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

phase "build the tests"
cargo test --workspace --locked --no-run

phase "wait for real Keystone and Glance"
if ! wait "$up_pid"; then
    cat .cache/openstack/up.log
    echo "test.sh: scripts/openstack/up.sh failed" >&2
    exit 1
fi
cat .cache/openstack/up.log

phase "run every test, real-service scenarios included"
cargo test --workspace --locked -- --include-ignored

phase "docs/openapi.yaml against the demo and against real Glance (schemathesis)"
scripts/openapi-check.sh

phase "benchmark harness, smoke mode"
scripts/bench-smoke.sh

phase "done"
echo "test.sh: whole suite passed in $(( $(date +%s) - started )) s"
