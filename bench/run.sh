#!/usr/bin/env bash
# The benchmark harness: bench/run.sh [--smoke]
#
# Builds the release binary and the driver (benches/facade.rs), fetches the
# load tool (oha, from crates.io) and nginx (Debian's package, unpacked - not
# installed) into .cache/bench-tools once, then measures and prints a table.
# A full run rewrites bench/RESULTS.md; --smoke runs every part briefly and
# only checks that the harness still works (CI does that).
set -euo pipefail
cd "$(dirname "$0")/.."

OHA_VERSION=1.16.0
TOOLS="$PWD/.cache/bench-tools"
mode=full
[[ ${1:-} == --smoke ]] && mode=smoke
started=$(date +%s)
say() { printf 'bench: %s (+%ss)\n' "$1" "$(( $(date +%s) - started ))"; }

mkdir -p "$TOOLS"
if [[ ! -x $TOOLS/bin/oha ]]; then
    say "installing oha $OHA_VERSION from crates.io (first run only, a few minutes)"
    cargo install oha --locked --version "$OHA_VERSION" --root "$TOOLS" --quiet
fi
NGINX="$TOOLS/nginx/usr/sbin/nginx"
if [[ ! -x $NGINX ]]; then
    say "fetching Debian's nginx package (first run only)"
    download=$(mktemp -d)
    (cd "$download" && { apt-get download nginx 2>/dev/null || { apt-get update -q && apt-get download nginx; }; })
    dpkg -x "$download"/nginx_*.deb "$TOOLS/nginx"
    rm -rf "$download"
fi

say "building release binaries"
cargo build --release --locked --quiet
cargo bench --locked --bench facade --no-run --quiet 2>/dev/null

table=$(mktemp)
say "measuring ($mode)"
args=(--facade "$PWD/target/release/alliance-glance" --oha "$TOOLS/bin/oha" --nginx "$NGINX" --out "$table")
[[ $mode == smoke ]] && args+=(--smoke)
cargo bench --locked --bench facade --quiet -- "${args[@]}"

if [[ $mode == full ]]; then
    {
        echo "# Benchmark results"
        echo
        echo "Last full run of \`bench/run.sh\` on $(date -u +%Y-%m-%d)."
        echo
        echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, Linux $(uname -r), $(rustc --version), oha $OHA_VERSION, $("$NGINX" -v 2>&1 | cut -d/ -f2- | sed 's/^/nginx /'). Load tool, upstreams and facade share the machine."
        echo
        cat "$table"
    } > bench/RESULTS.md
    say "table written to bench/RESULTS.md"
fi
rm -f "$table"
say "done"
