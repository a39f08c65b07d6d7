#!/usr/bin/env bash
# Benchmark harness of alliance-glance: builds the binaries, installs what
# the measurement needs (cached under .cache/bench/), runs the Rust driver
# (benches/facade/) and prints one table.
#
#   bench/run.sh            full run (about 5 minutes once installed; the first
#                           run builds oha and the release binaries, ~10 minutes)
#   bench/run.sh --smoke    every part with tiny durations (CI: checks only that it
#                           runs): the test profile's binaries, the driver's own load
#                           generator - nothing to compile beyond what the tests built
#   bench/run.sh --record   full run, and write the table to bench/RESULTS.md
#   bench/run.sh -- ARGS    extra driver arguments, e.g. -- --only show,list --rate 3000
#
# Everything listens on 127.0.0.1. nginx runs from a temporary prefix
# (as nobody when run as root) and is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

mode=full
record=0
driver_args=()
while (($#)); do
    case "$1" in
        --smoke) mode=smoke ;;
        --record) record=1 ;;
        --) shift; driver_args+=("$@"); break ;;
        *) echo "run.sh: unknown argument $1 (see the head of this file)" >&2; exit 2 ;;
    esac
    shift
done

cache="$root/.cache/bench"
mkdir -p "$cache"
started=$(date +%s)
phase() { printf '== bench: %s (+%ss)\n' "$1" "$(( $(date +%s) - started ))" >&2; }

# --- tools -----------------------------------------------------------------
OHA_VERSION=1.16.0
oha="$cache/tools/bin/oha"
if [[ $mode == full ]] && { [[ ! -x "$oha" ]] || ! "$oha" --version 2>/dev/null | grep -q "$OHA_VERSION"; }; then
    phase "installing oha $OHA_VERSION from crates.io (first run only, a few minutes)"
    # native-tls links the system OpenSSL (libssl-dev, pkg-config); building
    # oha without any TLS feature fails, and rustls would build aws-lc.
    cargo install oha --version "$OHA_VERSION" --locked --no-default-features \
        --features native-tls --root "$cache/tools" >"$cache/oha-install.log" 2>&1 || {
        tail -30 "$cache/oha-install.log" >&2
        echo "run.sh: cargo install oha failed (log: $cache/oha-install.log)" >&2
        exit 1
    }
fi

# nginx: Debian's package, unpacked into the cache rather than installed, so
# that no system service is started (the package's postinst would start one
# on port 80). A system nginx is used if there is one.
nginx=""
if command -v nginx >/dev/null 2>&1; then
    nginx=$(command -v nginx)
elif [[ -x /usr/sbin/nginx ]]; then
    nginx=/usr/sbin/nginx
elif [[ -x "$cache/nginx/usr/sbin/nginx" ]]; then
    nginx="$cache/nginx/usr/sbin/nginx"
else
    phase "fetching Debian's nginx package"
    mkdir -p "$cache/nginx-deb"
    (
        cd "$cache/nginx-deb"
        rm -f nginx_*.deb
        apt-get download nginx >/dev/null 2>&1 || {
            apt-get update -q >/dev/null && apt-get download nginx >/dev/null
        }
        dpkg-deb -x nginx_*.deb "$cache/nginx"
    ) || { echo "run.sh: cannot fetch nginx (apt-get download nginx)" >&2; exit 1; }
    nginx="$cache/nginx/usr/sbin/nginx"
fi
"$nginx" -v >/dev/null 2>&1 || { echo "run.sh: $nginx does not run" >&2; exit 1; }

# 1,000 client connections, their upstream twins and oha's: raise the
# open-file limit as far as allowed.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# --- build -----------------------------------------------------------------
# The full run measures release binaries; the smoke only proves the harness
# runs, on the test profile's binaries (which the test command has built).
if [[ $mode == full ]]; then
    phase "building release binaries"
    cargo build --release --locked --bin alliance-glance >&2
    facade_bin="$root/target/release/alliance-glance"
    driver=(cargo bench --locked --bench facade --)
    load=(--oha "$oha")
else
    phase "building test-profile binaries"
    cargo build --locked --bin alliance-glance >&2
    facade_bin="$root/target/debug/alliance-glance"
    driver=(cargo test --locked --bench facade --)
    load=(--builtin-load)
fi
"${driver[@]:0:5}" --no-run >&2 2>"$cache/bench-build.log" || {
    cat "$cache/bench-build.log" >&2
    exit 1
}

# --- real Glance and Keystone (parts 7 and 9) -------------------------------
# The test command's services when they run (its smoke run uses them);
# otherwise scripts/openstack/up.sh starts them here and they are stopped
# at the end.
openstack_env="$root/.cache/openstack/33/env"
started_openstack=0
work=""
# shellcheck disable=SC2317 # called by the trap
cleanup() {
    # nginx is stopped by the driver; this only covers a driver that died.
    if [[ -n "$work" && -f "$work/nginx/nginx.pid" ]]; then
        kill -TERM "$(cat "$work/nginx/nginx.pid")" 2>/dev/null || true
    fi
    [[ -z "$work" ]] || rm -rf "$work"
    if ((started_openstack)); then
        scripts/openstack/down.sh --release 33 >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT
openstack_alive() {
    [[ -f "$openstack_env" ]] || return 1
    local glance
    glance=$(sed -n 's/^OS_GLANCE_TRUSTED_URL=//p' "$openstack_env")
    [[ -n "$glance" ]] && curl -sf -o /dev/null --max-time 5 "$glance/healthcheck"
}
if ! openstack_alive; then
    phase "starting real Keystone and Glance (scripts/openstack/up.sh)"
    started_openstack=1
    scripts/openstack/up.sh >"$cache/openstack-up.log" 2>&1 || {
        tail -30 "$cache/openstack-up.log" >&2
        echo "run.sh: scripts/openstack/up.sh failed (log: $cache/openstack-up.log)" >&2
        exit 1
    }
fi

# --- run -------------------------------------------------------------------
work=$(mktemp -d /tmp/alliance-bench.XXXXXX)
chmod 755 "$work"
# nginx runs as nobody when this runs as root: give it a copy it can reach
# whatever the permissions of the checkout's directories.
cp "$nginx" "$work/nginx-bin"
chmod 755 "$work/nginx-bin"
nginx_run="$work/nginx-bin"

phase "measuring ($mode)"
args=("${load[@]}" --nginx "$nginx_run" --facade-bin "$facade_bin" --work-dir "$work" --out "$cache/table.md"
      --openstack-env "$openstack_env")
[[ $mode == smoke ]] && args+=(--smoke)
status=0
"${driver[@]}" "${args[@]}" "${driver_args[@]}" || status=$?

machine() {
    echo "- nproc: $(nproc)"
    echo "- CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    echo "- memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
    echo "- kernel: $(uname -sr)"
    echo "- rustc: $(rustc --version)"
    echo "- oha: $("$oha" --version | head -1); nginx: $("$nginx" -v 2>&1 | sed 's/^nginx version: //')"
}

if [[ $mode == full && -f "$cache/table.md" ]]; then
    {
        echo "# Benchmark results"
        echo
        echo "The last full run of \`bench/run.sh\` ($(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown))."
        echo "See bench/README.md for what each line means. The machine is a shared 2-core VM:"
        echo "absolute figures drift between runs (by 20% and more); compare the ratios within one run."
        echo
        echo "## Machine"
        echo
        machine
        echo
        echo "## Table"
        echo
        cat "$cache/table.md"
    } >"$cache/RESULTS.md"
    if ((record)); then
        cp "$cache/RESULTS.md" bench/RESULTS.md
        phase "wrote bench/RESULTS.md"
    else
        phase "results with the machine: $cache/RESULTS.md (--record writes bench/RESULTS.md)"
    fi
fi
phase "done (exit $status)"
exit "$status"
