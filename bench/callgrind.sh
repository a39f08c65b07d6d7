#!/usr/bin/env bash
# Instructions per `GET /images/{id}` (bench part 1's request), counted by
# callgrind: repeatable for the same binary and inputs, whatever else the
# machine does. The recipe of bench/README.md ("Profiling") as one command:
#
#   bench/callgrind.sh [--runs N] [--requests N] [--binary PATH] [--extra-config FILE] [--change]
#
# Builds the profiling binary (release with symbols) and the benchmark
# driver, serves part 1's static upstream (`--serve-upstream`), starts the
# facade under callgrind in front of it (trusted mode, shows not shared),
# sends 200 requests to warm it up, zeroes the counters, sends N more
# (default 2,000) on one keep-alive connection, dumps the counters and
# prints the total divided by N. `--extra-config` appends a file to the
# facade's configuration (e.g. a [shared_cache] table). `--change` sends
# `DELETE /images/{id}` instead: a change (the image read, then the DELETE,
# which the static upstream answers 404, as the facade then does), for what
# changes cost (an [audit] table's events). Needs valgrind.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=1
requests=2000
binary=""
extra=""
method=GET
expect=200
while (($#)); do
    case $1 in
    --runs) runs=$2; shift 2 ;;
    --requests) requests=$2; shift 2 ;;
    --binary) binary=$2; shift 2 ;;
    --extra-config) extra=$2; shift 2 ;;
    --change) method=DELETE; expect=404; shift ;;
    *) echo "callgrind.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind is required (apt-get install valgrind)" >&2; exit 1; }

target_dir=${CARGO_TARGET_DIR:-target}
if [[ -z $binary ]]; then
    cargo build --profile profiling --locked --bin alliance-glance >&2
    binary=$target_dir/profiling/alliance-glance
fi
driver=$(cargo bench --bench facade --no-run --locked --message-format=json |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
[[ -x $driver ]] || { echo "callgrind.sh: the benchmark driver was not built" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

"$driver" --serve-upstream >"$work/upstream.out" 2>"$work/upstream.err" &
pids+=($!)
for _ in $(seq 300); do
    grep -q '^upstream ' "$work/upstream.out" 2>/dev/null && break
    sleep 0.1
done
read -r _ upstream _ image _ environment <"$work/upstream.out" ||
    { echo "callgrind.sh: the driver's upstream did not start in 30 s: $(cat "$work/upstream.err")" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Requests on one keep-alive connection; fails on any answer but the expected one.
send() {
    python3 - "$1" "$2" "$image" "$environment" "$method" "$expect" <<'EOF'
import http.client, sys
port, count, image, environment = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
method, expect = sys.argv[5], int(sys.argv[6])
connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
headers = {"X-Target-Ns": "ccsr1", "X-Environment-Id": environment}
for _ in range(count):
    connection.request(method, "/images/" + image, headers=headers)
    answer = connection.getresponse()
    answer.read()
    if answer.status != expect:
        sys.exit("status %d" % answer.status)
EOF
}

for run in $(seq "$runs"); do
    port=$(free_port)
    admin=$(free_port)
    cat >"$work/facade.toml" <<EOF
listen = "127.0.0.1:$port"
[admin]
listen = "127.0.0.1:$admin"
[namespaces.ccsr1]
glance_url = "$upstream"
auth = { type = "trusted", user_id = "bench" }
[namespaces.ccsr1.limits]
coalesce_window_ms = 0
EOF
    [[ -n $extra ]] && cat "$extra" >>"$work/facade.toml"
    out="$work/callgrind.$run.out"
    RUST_LOG=info valgrind --tool=callgrind --callgrind-out-file="$out" \
        "$binary" serve --config "$work/facade.toml" 2>"$work/facade.$run.log" &
    facade=$!
    pids+=("$facade")
    for _ in $(seq 600); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
    send "$port" 200
    callgrind_control -z "$facade" >/dev/null
    send "$port" "$requests"
    callgrind_control -d "$facade" >/dev/null
    kill -INT "$facade"
    wait "$facade" 2>/dev/null || true
    # The dump after zeroing: the file with the highest part number.
    dump=$(printf '%s\n' "$out".* | sort -V | tail -1)
    total=$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }')
    awk -v run="$run" -v t="$total" -v n="$requests" -v m="$method" 'BEGIN { printf "run %d: %.2fk instructions per %s /images/{id} (%d requests)\n", run, t / n / 1000, m, n }'
done
