#!/usr/bin/env bash
# docs/openapi.yaml against what the facade serves: schemathesis (pinned in
# scripts/openstack/releases/33/requirements.txt, from the venv scripts/openstack/up.sh
# builds) with all its checks - stateful links included - against
#   1. `alliance-glance demo` (the built-in mock Glance), and
#   2. the facade in front of real Glance 33 (trusted mode; up.sh must have
#      started it: the test command does).
# Any failure fails the script: a difference between the document and the
# facade is a bug in one of them.
#
#   scripts/openapi-check.sh              # both runs
#   OPENAPI_ONLY=demo scripts/openapi-check.sh
#   OPENAPI_MAX_EXAMPLES=100 OPENAPI_SEED=7 scripts/openapi-check.sh
#
# The seed is fixed (printed at the end of each run) so that the test
# command is repeatable; change it to explore. Reports: .cache/openapi/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

venv="${ALLIANCE_OPENSTACK_VENV:-$root/.cache/openstack/33/venv}"
schemathesis="$venv/bin/schemathesis"
[[ -x $schemathesis ]] || {
    echo "openapi-check: $schemathesis is missing; scripts/openstack/up.sh builds the venv" >&2
    exit 1
}
binary="${ALLIANCE_GLANCE_BIN:-$root/target/debug/alliance-glance}"
[[ -x $binary ]] || cargo build --locked --bin alliance-glance
max_examples="${OPENAPI_MAX_EXAMPLES:-25}"
seed="${OPENAPI_SEED:-1}"
only="${OPENAPI_ONLY:-}"
out="$root/.cache/openapi"
mkdir -p "$out"
work=$(mktemp -d /tmp/alliance-openapi.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { "$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

wait_for() { # url what pid
    for _ in $(seq 1 150); do
        curl -s -o /dev/null "$1" && return 0
        kill -0 "$3" 2>/dev/null || { echo "openapi-check: $2 exited" >&2; return 1; }
        sleep 0.1
    done
    echo "openapi-check: $2 is not answering at $1" >&2
    return 1
}

# run NAME URL ENVIRONMENT COPY_FROM_SOURCE [GLANCE_LOG]
run() {
    local name=$1 url=$2 environment=$3 source=$4 glance_log=${5:-} started
    started=$(date +%s)
    echo "== openapi-check: $name ($url; $max_examples examples per operation, seed $seed)"
    # Run from the report folder: schemathesis keeps a cache in its working directory.
    if ! (cd "$out" && ALLIANCE_COPY_FROM_SOURCE="$source" ALLIANCE_GLANCE_LOG="$glance_log" \
        SCHEMATHESIS_HOOKS=hooks PYTHONPATH="$root/scripts/openapi" \
        "$schemathesis" run "$root/docs/openapi.yaml" \
        --url "$url" \
        --checks all \
        --header "X-Target-Ns: ccsr1" \
        --header "X-Environment-Id: $environment" \
        --max-examples "$max_examples" \
        --seed "$seed" \
        --workers 2 \
        --request-timeout 30 \
        --report junit --report-dir "$out/$name" \
        --no-color >"$out/$name.log" 2>&1); then
        cat "$out/$name.log"
        echo "openapi-check: $name FAILED (log: $out/$name.log)" >&2
        return 1
    fi
    tail -n 22 "$out/$name.log"
    echo "openapi-check: $name passed in $(($(date +%s) - started)) s"
}

if [[ -z $only || $only == demo ]]; then
    port=$(free_port)
    "$binary" demo --listen "127.0.0.1:$port" >"$work/demo.out" 2>"$work/demo.err" &
    pids+=($!)
    wait_for "http://127.0.0.1:$port/images" "the demo" "${pids[-1]}"
    # "copy_from source http://127.0.0.1:PORT/cirros.qcow2" in the banner.
    source=$(grep -o 'copy_from source http://[^/]*' "$work/demo.out" | cut -d' ' -f3)
    run demo "http://127.0.0.1:$port" 54915a05b0bb43dcbb218525c426b6a5 "$source"
fi

if [[ -z $only || $only == real ]]; then
    env_file="${ALLIANCE_OPENSTACK_ENV:-$root/.cache/openstack/33/env}"
    [[ -f $env_file ]] || {
        echo "openapi-check: $env_file is missing; scripts/openstack/up.sh starts real Glance" >&2
        exit 1
    }
    set -a
    # shellcheck source=/dev/null
    . "$env_file"
    set +a
    port=$(free_port)
    cat >"$work/real.toml" <<EOF
listen = "127.0.0.1:$port"
[admin]
listen = "127.0.0.1:0"
[namespaces.ccsr1]
glance_url = "$OS_GLANCE_TRUSTED_URL"
auth = { type = "trusted", user_id = "alliance-openapi" }
copy_from = { allow_cidrs = ["127.0.0.1/32"] }
EOF
    "$binary" serve --config "$work/real.toml" 2>"$work/real.err" &
    pids+=($!)
    wait_for "http://127.0.0.1:$port/images" "the facade over real Glance" "${pids[-1]}"
    # A project of its own, so that the run sees only its own images.
    project=$("$venv/bin/python" -c 'import uuid; print(uuid.uuid4().hex)')
    run real "http://127.0.0.1:$port" "$project" "${OS_IMAGE_SERVER_URL%/}" "$OS_RUN_DIR/glance-trusted/glance.log"
fi
