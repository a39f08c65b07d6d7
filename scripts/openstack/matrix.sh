#!/usr/bin/env bash
# The real-service scenario suite against every release of the matrix, one after the other:
#
#   scripts/openstack/matrix.sh          # every release under releases/ (33, 31, 28)
#   scripts/openstack/matrix.sh 31       # some of them
#
# For each: up.sh --release N (installing its venv the first time; the default layout), the
# scenario suite against it (cargo test --test scenarios -- --ignored, but for the scenarios
# against the DevStack plugin's facade, which devstack/tests/plugin-test.sh runs), down.sh
# --release N. Prints one line per release and exits non-zero if any failed. Logs:
# .cache/openstack/N/{up,scenarios}.log. (The test command, scripts/test.sh, runs the newest
# release, laid out as DevStack lays it out, and the oldest.)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
cd "$REPO"
if (($#)); then
    releases=("$@")
else
    mapfile -t releases < <(cd "$HERE/releases" && printf '%s\n' * | sort -rn)
fi

cargo test --locked --test scenarios --no-run
results=()
status=0
for release in "${releases[@]}"; do
    cache=".cache/openstack/$release"
    mkdir -p "$cache"
    # shellcheck source=/dev/null
    . "$HERE/releases/$release/release.env"
    name="Glance $GLANCE_VERSION / Keystone $KEYSTONE_VERSION ($SERIES)"
    echo "== matrix.sh: $name"
    outcome="failed to start (see $cache/up.log)"
    if "$HERE/up.sh" --release "$release" >"$cache/up.log" 2>&1; then
        if ALLIANCE_OPENSTACK_ENV="$REPO/$cache/env" cargo test --locked --test scenarios -- --ignored \
            --skip external_keystone:: >"$cache/scenarios.log" 2>&1; then
            outcome="$(grep -o 'test result: .*passed[^;]*;[^;]*failed' "$cache/scenarios.log" | tail -1)"
        else
            outcome="FAILED (see $cache/scenarios.log)"
        fi
    fi
    "$HERE/down.sh" --release "$release" >/dev/null 2>&1 || true
    [[ $outcome == "test result: ok"* ]] || status=1
    results+=("$release  $name: $outcome")
done
echo
printf '%s\n' "${results[@]}"
exit "$status"
