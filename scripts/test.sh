#!/usr/bin/env bash
# The whole test suite, as README names it:
#   1. formatting and lints (rustfmt, clippy, shellcheck);
#   2. every cargo test of the workspace: unit tests, contract tests against
#      the mock Glance and Keystone, the layering check, the demo test, the
#      mock crate's own tests, and the scenario suite against the mocks;
#   3. the same scenario suite against real Glance 33.0.0 and Keystone 30.0.0
#      (2026.2, the newest release) laid out as DevStack lays them out
#      (Keystone and Glance under uwsgi behind Apache at /identity and /image:
#      scripts/openstack/up.sh --layout devstack), and the differential tests
#      of the mocks against them; then the scenario suite again against
#      Glance 28.2.0 and Keystone 25.0.0 (2024.1, the oldest supported, each
#      on a port of its own). Both releases are installed and started by
#      scripts/openstack/up.sh (Python >= 3.11 and, for the devstack layout,
#      Debian's apache2 are required: without them up.sh fails and so does
#      this script - nothing is skipped silently), side by side, while the
#      Rust code builds, and stopped again at the end.
#      scripts/openstack/matrix.sh runs the suite against every release;
#   4. the DevStack plugin (devstack/) without DevStack: its phases with
#      stand-ins for DevStack's functions, then the scenario suite against the
#      facade it started, through the Apache path it configured
#      (devstack/tests/plugin-test.sh);
#   5. docs/openapi.yaml checked by schemathesis (from the same venv) against
#      the demo and against the facade over real Glance (scripts/openapi-check.sh);
#   6. the benchmark harness in smoke mode (it must run; no figure is judged;
#      it compiles no load tool and uses the binaries the tests built).
set -euo pipefail
cd "$(dirname "$0")/.."

started=$(date +%s)
phase() { printf '\n== test.sh: %s (+%ss)\n' "$1" "$(( $(date +%s) - started ))"; }

# The newest and the oldest release of the matrix (scripts/openstack/releases/), the
# newest laid out as DevStack lays it out.
NEWEST=33
OLDEST=28
# Both start while cargo builds on the same cores: more time than up.sh's default.
export OS_UP_TIMEOUT="${OS_UP_TIMEOUT:-240}"
releases=("$NEWEST" "$OLDEST")
declare -A layout=([$NEWEST]=devstack [$OLDEST]=gunicorn)
up_pids=()
phase "start real Keystone and Glance $NEWEST (devstack layout) and $OLDEST (in the background, logs in .cache/openstack/N/up.log)"
for release in "${releases[@]}"; do
    mkdir -p ".cache/openstack/$release"
    scripts/openstack/up.sh --release "$release" --layout "${layout[$release]}" \
        >".cache/openstack/$release/up.log" 2>&1 &
    up_pids+=($!)
done
# On any exit: stop the up.sh still starting things (each then stops what it
# started), then whatever they left running.
stop_services() {
    local pid
    for pid in "${up_pids[@]}"; do
        kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    done
    scripts/openstack/down.sh
}
trap stop_services EXIT

phase "format and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
shellcheck -x devstack/plugin.sh devstack/settings devstack/lib/alliance-glance devstack/tests/*.sh \
    scripts/*.sh scripts/openstack/*.sh bench/*.sh .ci/run

phase "build the tests"
cargo test --workspace --locked --no-run

phase "wait for real Keystone and Glance"
for i in "${!releases[@]}"; do
    release="${releases[$i]}"
    if ! wait "${up_pids[$i]}"; then
        cat ".cache/openstack/$release/up.log"
        echo "test.sh: scripts/openstack/up.sh --release $release failed" >&2
        exit 1
    fi
    cat ".cache/openstack/$release/up.log"
done

# The scenarios against the DevStack plugin's facade (external_keystone) need that facade:
# step 4 runs them.
phase "run every test, real-service scenarios and differential tests (Glance $NEWEST, devstack layout) included"
ALLIANCE_OPENSTACK_ENV="$PWD/.cache/openstack/$NEWEST/env" cargo test --workspace --locked -- \
    --include-ignored --skip external_keystone::

phase "the real-service scenarios against Glance $OLDEST"
ALLIANCE_OPENSTACK_ENV="$PWD/.cache/openstack/$OLDEST/env" cargo test --locked --test scenarios -- \
    --ignored --skip external_keystone::

phase "the DevStack plugin, without DevStack, beside Glance $NEWEST"
ALLIANCE_OPENSTACK_ENV="$PWD/.cache/openstack/$NEWEST/env" devstack/tests/plugin-test.sh

phase "docs/openapi.yaml against the demo and against real Glance (schemathesis)"
scripts/openapi-check.sh

phase "benchmark harness, smoke mode"
scripts/bench-smoke.sh

phase "done"
echo "test.sh: whole suite passed in $(( $(date +%s) - started )) s"
