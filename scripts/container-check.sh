#!/usr/bin/env bash
# Builds both images and runs the compose stack the way a user would, then
# checks what README says about them:
#   1. the production image (`docker build -t alliance-glance .`) and the
#      demo image (`--target demo -t alliance-glance-demo`) build from the
#      Dockerfile, run as uid 10001, and the production one has no demo
#      code (`demo` and `mock-glance` refused, no mock strings in the binary;
#      the demo binary, checked the same way, has them);
#   2. docker-compose.yml starts (mock Glance, copy_from source, facade), the
#      three health checks pass, and the facade's fails while the mock Glance
#      is frozen (compose pause);
#   3. README's curl lines for the stack, as printed: create with copy_from
#      (polled until `active`: the bytes come from the copy_from source inside
#      the compose network), show, list, update, delete; a copy_from to any
#      other host of that network is refused by the guard;
#   4. SIGHUP (`compose kill -s HUP alliance-glance`, as README says) applies a
#      new namespace, refuses a broken TOML file and keeps the running
#      configuration, and applies the original file again;
#   5. every container runs as the non-root user;
# then stops and removes what it started (containers, network, the temporary
# configuration); the images stay (a second run reuses their layers).
#
# Not part of scripts/test.sh (it takes minutes). Run it after any change to
# the Dockerfile, .dockerignore, docker-compose.yml, config/docker-compose.toml
# or the dependencies (Cargo.toml, Cargo.lock).
#
# Engines: docker (with `docker compose`) when a docker engine answers, else
# podman with podman-compose 1.6.0 (installed from PyPI into
# .cache/container-check/venv: Debian's 1.0.3 breaks list-form health checks
# and has no `kill`). Podman gets what the machine needs through
# CONTAINERS_CONF (or CONTAINERS_CONF_OVERRIDE) and flags, never by editing
# /etc/containers or ~/.config/containers; the script says what it set.
# podman-compose skips `depends_on: condition: service_healthy` with podman
# 4.3, and podman without systemd never runs health checks by itself: the
# script waits for health and runs the checks itself (`podman healthcheck
# run`).
#
# Base images: the Dockerfile's official images, used when present or
# pullable. When no registry answers, it makes STAND-INS from Debian packages
# and says so loudly: debian:bookworm-slim from debootstrap (minbase, slimmed
# as the official image is), rust:X.Y-slim-bookworm from that plus exactly the
# official image's packages (ca-certificates gcc libc6-dev) and the local
# rustup toolchain X.Y (rustc, cargo, rust-std: the official minimal profile)
# at the official paths (/usr/local/rustup, /usr/local/cargo), plus the CA
# certificates the host trusts beyond its distribution's own (networks that
# intercept TLS: the build fetches crates from crates.io). Their root file
# systems are cached in .cache/container-check/ (delete them to make new
# ones); stand-ins need root, debootstrap and a Debian mirror
# (DEBIAN_MIRROR, default http://deb.debian.org/debian).
#
# Missing tools (podman, runc, debootstrap, python3-venv) are installed with
# apt-get when running as root on Debian; otherwise the script names them.
set -euo pipefail
# One brace group, read whole before it runs: editing this file while it
# runs changes nothing.
{
cd "$(dirname "$0")/.."

CACHE=.cache/container-check
PROJECT=alliance-glance-check
PRODUCTION_IMAGE=alliance-glance
DEMO_IMAGE=alliance-glance-demo
STANDIN_PREFIX=localhost/alliance-glance-standin
PODMAN_COMPOSE_VERSION=1.6.0
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
API=http://127.0.0.1:8080
# Uid and user of both images (Dockerfile).
IMAGE_UID=10001

started=$(date +%s)
elapsed() { echo "$(($(date +%s) - started))"; }
phase() { printf '\n== container-check: %s (+%ss)\n' "$1" "$(elapsed)"; }
say() { printf 'container-check: %s\n' "$*"; }
failure_said=0
fail() {
    printf '\ncontainer-check: FAILED: %s\n' "$*" >&2
    failure_said=1
    exit 1
}
checks=()
pass() {
    checks+=("$1")
    say "ok: $1"
}
notes=()
note() {
    notes+=("$1")
    say "note: $1"
}
loud() {
    printf '\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n'
    printf '!!! %s\n' "$@"
    printf '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\n'
}

mkdir -p "$CACHE"
work=$(mktemp -d /tmp/container-check.XXXXXX)
stack_up=0
child=
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
    local status=$?
    set +e
    if ((status != 0 && !failure_said)); then
        printf '\ncontainer-check: FAILED (exit status %s): see the lines above\n' "$status" >&2
    fi
    # A debootstrap or chroot still running: its namespaces, and every
    # process and mount in them, end with it.
    if [[ -n $child ]]; then
        kill "$child" 2>/dev/null
        wait "$child" 2>/dev/null
    fi
    if ((stack_up)); then
        if ((status != 0)); then
            say "the stack's logs (the check failed):"
            "${COMPOSE[@]}" -p "$PROJECT" logs --tail 40 2>&1 | sed 's/^/    /'
        fi
        say "stopping and removing the compose stack"
        "${COMPOSE[@]}" -p "$PROJECT" down -v --remove-orphans >"$CACHE/compose-down.log" 2>&1 ||
            cat "$CACHE/compose-down.log"
    fi
    for container in "${scratch_containers[@]}"; do
        "$ENGINE" rm -f "$container" >/dev/null 2>&1
    done
    # Root file systems were made in mount namespaces of their own: nothing
    # is mounted under $work (--one-file-system, should that ever change).
    rm -rf --one-file-system "$work"
    exit "$status"
}
scratch_containers=()
ENGINE=
COMPOSE=()
trap cleanup EXIT
# A command that fails where no fail() explains it: say which.
trap 'say "failed at line $LINENO: $BASH_COMMAND" >&2' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

# --- Tools -------------------------------------------------------------------

# Installs Debian packages when allowed (root, apt-get), else names them.
install_packages() {
    if ((EUID != 0)) || ! command -v apt-get >/dev/null; then
        fail "missing: $*; install them (Debian: apt-get install $*) and run again"
    fi
    say "installing Debian packages: $*"
    if ! { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"; } \
        >"$CACHE/apt.log" 2>&1; then
        tail -n 20 "$CACHE/apt.log"
        fail "apt-get install $* failed (log: $CACHE/apt.log)"
    fi
}

# Bit CAP of the effective capabilities.
has_capability() {
    local effective
    effective=$(awk '/^CapEff:/ { print $2 }' /proc/self/status)
    (((0x$effective >> $1) & 1))
}

# The hard limit of ulimit option $1, "unlimited" read as $2.
hard_limit() {
    local value
    value=$(ulimit -H "$1")
    [[ $value == unlimited ]] && value=$2
    echo "$value"
}

version_at_least() { # VERSION MINIMUM, dotted numbers
    [[ $(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n 1) == "$2" ]]
}

phase "container engine"
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    ENGINE=docker
    if docker compose version >/dev/null 2>&1; then
        COMPOSE=(docker compose)
    elif command -v docker-compose >/dev/null; then
        COMPOSE=(docker-compose)
    else
        fail "docker answers but has no compose (install the docker compose plugin)"
    fi
    say "docker engine: $(docker version --format '{{.Server.Version}}'), ${COMPOSE[*]}"
else
    command -v docker >/dev/null && say "a docker CLI is here but no docker engine answers: podman it is"
    ENGINE=podman
    missing=()
    # netavark (with aardvark-dns, its recommendation) names the services
    # inside the compose network; it publishes ports with iptables.
    command -v podman >/dev/null || missing+=(podman netavark iptables)
    python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
    ((${#missing[@]} == 0)) || install_packages "${missing[@]}"

    # What this machine needs from podman, in a configuration file of our
    # own: the machine's files stay as they are.
    engine_settings=()
    container_settings=()
    if [[ ! -d /run/systemd/system ]]; then
        engine_settings+=('cgroup_manager = "cgroupfs"' 'events_logger = "file"')
        note "no systemd: podman uses cgroupfs and a file for events, and schedules no health checks (this script runs them)"
    fi
    if ((EUID == 0)) && ! has_capability 24; then
        # Rootful podman raises the containers' open-file and process limits
        # (1048576), which needs CAP_SYS_RESOURCE; without it (a sandbox)
        # every container fails ("setrlimit RLIMIT_NOFILE: Operation not
        # permitted"). Podman itself runs with at most pid_max processes.
        nofile=$(hard_limit -n "$(cat /proc/sys/fs/nr_open)")
        pid_max=$(cat /proc/sys/kernel/pid_max)
        nproc=$(hard_limit -u "$pid_max")
        ((nproc <= pid_max)) || nproc=$pid_max
        container_settings+=("default_ulimits = [\"nofile=$nofile:$nofile\", \"nproc=$nproc:$nproc\"]")
        note "root without CAP_SYS_RESOURCE: containers keep this machine's limits (nofile $nofile, nproc $nproc)"
    fi
    if [[ $(stat -fc %T /sys/fs/cgroup) != cgroup2fs && -n $(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null) ]] &&
        [[ $(podman info --format '{{.Host.OCIRuntime.Name}}' 2>/dev/null) == crun ]]; then
        # crun refuses hybrid cgroups with controllers on the v2 side
        # ("cgroups in hybrid mode not supported"); runc runs there.
        command -v runc >/dev/null || install_packages runc
        engine_settings+=('runtime = "runc"')
        note "hybrid cgroups with v2 controllers ($(paste -sd ' ' /sys/fs/cgroup/unified/cgroup.controllers)): podman runs runc, not crun"
    fi
    if ((${#engine_settings[@]} + ${#container_settings[@]})); then
        conf="$work/containers.conf"
        {
            echo "# Written by scripts/container-check.sh for this run only."
            echo "[containers]"
            printf '%s\n' "${container_settings[@]}"
            echo "[engine]"
            printf '%s\n' "${engine_settings[@]}"
        } >"$conf"
        podman_version=$(podman version --format '{{.Client.Version}}')
        if version_at_least "$podman_version" 4.5; then
            export CONTAINERS_CONF_OVERRIDE="$conf"
            say "CONTAINERS_CONF_OVERRIDE=$conf (on top of the machine's configuration):"
        else
            # Before 4.5 the only way: this file instead of containers.conf.
            export CONTAINERS_CONF="$conf"
            say "CONTAINERS_CONF=$conf (podman $podman_version reads it instead of the machine's containers.conf):"
        fi
        sed 's/^/    /' "$conf"
    fi

    venv="$CACHE/venv"
    if [[ $("$venv/bin/podman-compose" --version 2>/dev/null | head -n 1) != *" $PODMAN_COMPOSE_VERSION" ]]; then
        say "installing podman-compose $PODMAN_COMPOSE_VERSION from PyPI into $venv"
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q "podman-compose==$PODMAN_COMPOSE_VERSION" >"$CACHE/pip.log" 2>&1 ||
            { cat "$CACHE/pip.log"; fail "pip install podman-compose==$PODMAN_COMPOSE_VERSION failed"; }
    fi
    COMPOSE=("$venv/bin/podman-compose")
    say "podman $(podman version --format '{{.Client.Version}}') ($(podman info --format '{{.Host.OCIRuntime.Name}}'), $(podman info --format '{{.Store.GraphDriverName}}') storage), podman-compose $PODMAN_COMPOSE_VERSION"
fi

# --- Base images -------------------------------------------------------------

arg_default() { sed -n "s/^ARG $1=//p" Dockerfile | head -n 1; }
RUST_BASE=$(arg_default RUST_IMAGE)
RUNTIME_BASE=$(arg_default RUNTIME_IMAGE)
[[ $RUNTIME_BASE =~ ^docker\.io/library/debian:([a-z]+)-slim$ ]] ||
    fail "the Dockerfile's RUNTIME_IMAGE is $RUNTIME_BASE; this script knows docker.io/library/debian:SUITE-slim"
SUITE=${BASH_REMATCH[1]}
[[ $RUST_BASE =~ ^docker\.io/library/rust:([0-9]+\.[0-9]+)-slim-$SUITE$ ]] ||
    fail "the Dockerfile's RUST_IMAGE is $RUST_BASE; this script knows docker.io/library/rust:X.Y-slim-$SUITE"
RUST_MINOR=${BASH_REMATCH[1]}

image_exists() { "$ENGINE" image inspect "$1" >/dev/null 2>&1; }
image_label() { "$ENGINE" image inspect --format "{{index .Config.Labels \"$2\"}}" "$1" 2>/dev/null; }

# The official image if it is here or can be pulled; else nothing.
official() {
    if image_exists "$1"; then
        return 0
    fi
    say "pulling $1"
    if timeout 600 "$ENGINE" pull "$1" >"$work/pull.log" 2>&1; then
        return 0
    fi
    say "cannot pull $1: $(tail -n 1 "$work/pull.log")"
    return 1
}

# Runs a command in mount and PID namespaces of its own: what it mounts
# (debootstrap mounts /proc and /sys in the new root) is never seen outside,
# and when this script ends early, killing it ends every process it started.
isolated() {
    unshare --mount --pid --fork --kill-child "$@" &
    child=$!
    local status=0
    wait "$child" || status=$?
    child=
    return "$status"
}

# Runs a command in a root file system, with /proc mounted.
in_root() {
    local root=$1
    shift
    # shellcheck disable=SC2016 # expanded by that sh
    isolated sh -c 'mount -t proc proc "$1/proc" && shift && exec chroot "$@"' sh "$root" "$root" "$@"
}

# A debian:SUITE-slim stand-in: debootstrap's minbase (the official image's
# package set), then what debuerreotype does to the official slim image.
make_debian_rootfs() {
    local tarball=$1 root="$work/debian-root"
    command -v debootstrap >/dev/null || install_packages debootstrap
    say "debootstrap --variant=minbase $SUITE from $DEBIAN_MIRROR (log: $CACHE/debootstrap.log)"
    isolated debootstrap --variant=minbase "$SUITE" "$root" "$DEBIAN_MIRROR" >"$CACHE/debootstrap.log" 2>&1 ||
        { tail -n 20 "$CACHE/debootstrap.log"; fail "debootstrap failed"; }
    # The slim variant: no documentation, manual pages or translations, now
    # and for packages installed later.
    cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
# This is the "slim" variant of the Debian base image (made by
# scripts/container-check.sh as a stand-in for the official one).
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
EOF
    find "$root/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
    find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
    local dir
    for dir in groff info linda lintian/overrides locale man; do
        [[ -d $root/usr/share/$dir ]] && find "$root/usr/share/$dir" -mindepth 1 -delete
    done
    # The official images' apt and dpkg settings for containers.
    echo 'force-unsafe-io' >"$root/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"
    echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$root/etc/apt/apt.conf.d/docker-autoremove-suggests"
    cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    echo 'Acquire::GzipIndexes "true";' >"$root/etc/apt/apt.conf.d/docker-gzip-indexes"
    echo 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/docker-no-languages"
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
    chmod 0755 "$root/usr/sbin/policy-rc.d"
    rm -f "$root/etc/apt/sources.list"
    cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: http://deb.debian.org/debian
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    # The engine provides these; debootstrap copied the host's.
    rm -f "$root/etc/resolv.conf" "$root/etc/hostname"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin "$root"/var/lib/apt/lists/*
    find "$root/var/log" -type f -delete
    tar --numeric-owner -C "$root" -cf "$tarball.part" . && mv "$tarball.part" "$tarball"
    rm -rf --one-file-system "$root"
}

# The local rustup toolchain RUST_MINOR.*: its directory, full version and host.
find_toolchain() {
    local dir version
    for dir in "${RUSTUP_HOME:-$HOME/.rustup}"/toolchains/*/; do
        dir=$(readlink -f "$dir")
        version=$("$dir/bin/rustc" --version 2>/dev/null) || continue
        if [[ $version =~ ^rustc\ ($RUST_MINOR\.[0-9]+)\  ]]; then
            echo "$dir ${BASH_REMATCH[1]} $("$dir/bin/rustc" -vV | sed -n 's/^host: //p')"
            return 0
        fi
    done
    return 1
}

# The CA certificates the host trusts beyond its distribution's own set
# (added locally: a network that intercepts TLS) and beyond the stand-in's
# bundle $1, written as host-ca-N.crt into directory $2; prints how many.
# (The difference with the stand-in's bundle alone would also bring roots
# that Debian has withdrawn since the host's ca-certificates.)
extra_certificates() {
    local host_bundle='' candidate
    for candidate in "${SSL_CERT_FILE:-}" /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt /etc/ssl/cert.pem; do
        if [[ -n $candidate && -r $candidate ]]; then
            host_bundle=$candidate
            break
        fi
    done
    if [[ -z $host_bundle ]]; then
        echo 0
        return
    fi
    python3 - "$host_bundle" "$1" "$2" <<'EOF'
import glob, re, sys
pem = re.compile(r"-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----")
def certificates(path):
    with open(path, errors="replace") as bundle:
        return pem.findall(bundle.read())
def key(certificate):
    return "".join(certificate.split())
known = {key(c) for c in certificates(sys.argv[2])}
# The distribution's own roots (Debian, Ubuntu: the ca-certificates package).
for path in glob.glob("/usr/share/ca-certificates/**/*.crt", recursive=True):
    known.update(key(c) for c in certificates(path))
count = 0
for certificate in certificates(sys.argv[1]):
    if key(certificate) not in known:
        known.add(key(certificate))
        count += 1
        with open(f"{sys.argv[3]}/host-ca-{count}.crt", "w") as out:
            out.write(certificate + "\n")
print(count)
EOF
}

# A rust:RUST_MINOR-slim-SUITE stand-in: the debian stand-in, the official
# image's packages, the host's extra CAs, the local toolchain as rustup-init
# would have installed it (minimal profile) at the official paths.
make_rust_rootfs() {
    local tarball=$1 debian_tarball=$2 toolchain=$3 version=$4 host=$5 root="$work/rust-root"
    mkdir -p "$root"
    tar -C "$root" -xf "$debian_tarball"
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    say "installing ca-certificates gcc libc6-dev into the rust stand-in (log: $CACHE/rust-standin.log)"
    in_root "$root" sh -c 'apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ca-certificates gcc libc6-dev' \
        >"$CACHE/rust-standin.log" 2>&1 || { tail -n 20 "$CACHE/rust-standin.log"; fail "apt-get install in the rust stand-in failed"; }
    local extra certificate
    extra=$(extra_certificates "$root/etc/ssl/certs/ca-certificates.crt" "$root/usr/local/share/ca-certificates")
    : >"$tarball.cas"
    if ((extra)); then
        in_root "$root" update-ca-certificates >>"$CACHE/rust-standin.log" 2>&1
        for certificate in "$root"/usr/local/share/ca-certificates/host-ca-*.crt; do
            in_root "$root" openssl x509 -noout -subject -in "${certificate#"$root"}" >>"$tarball.cas"
        done
        say "CAs the host trusts added to the rust stand-in: $(paste -sd ';' "$tarball.cas")"
    fi
    rm -f "$root/etc/resolv.conf"
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
    find "$root/var/log" -type f -delete

    # rustc, cargo and rust-std: the files their rustup manifests list.
    local name="$version-$host"
    local dest="$root/usr/local/rustup/toolchains/$name" component
    mkdir -p "$dest/lib/rustlib"
    for component in rustc cargo rust-std; do
        local manifest="lib/rustlib/manifest-$component-$host"
        [[ -f $toolchain/$manifest ]] || fail "$toolchain has no $component component ($manifest)"
        (cd "$toolchain" && sed -n 's/^file://p; s/^dir://p' "$manifest" | xargs cp -a --parents -t "$dest" &&
            cp -a --parents "$manifest" "$dest")
    done
    cp -a "$toolchain/lib/rustlib/rust-installer-version" "$toolchain/lib/rustlib/multirust-channel-manifest.toml" \
        "$dest/lib/rustlib/"
    printf '%s\n' "rustc-$host" "cargo-$host" "rust-std-$host" >"$dest/lib/rustlib/components"
    {
        echo 'config_version = "1"'
        for component in rustc cargo rust-std; do
            printf '\n[[components]]\npkg = "%s"\ntarget = "%s"\nis_extension = false\n' "$component" "$host"
        done
    } >"$dest/lib/rustlib/multirust-config.toml"
    printf 'version = "12"\ndefault_toolchain = "%s"\nprofile = "minimal"\n' "$name" >"$root/usr/local/rustup/settings.toml"
    local rustup proxy
    rustup=$(readlink -f "${CARGO_HOME:-$HOME/.cargo}/bin/rustup")
    [[ -x $rustup ]] || fail "no rustup binary at ${CARGO_HOME:-$HOME/.cargo}/bin/rustup"
    mkdir -p "$root/usr/local/cargo/bin"
    cp "$rustup" "$root/usr/local/cargo/bin/rustup"
    for proxy in cargo cargo-clippy cargo-fmt cargo-miri clippy-driver rls rust-analyzer rust-gdb rust-gdbgui \
        rust-lldb rustc rustdoc rustfmt; do
        ln "$root/usr/local/cargo/bin/rustup" "$root/usr/local/cargo/bin/$proxy"
    done
    chmod -R a+w "$root/usr/local/rustup" "$root/usr/local/cargo"
    tar --numeric-owner -C "$root" -cf "$tarball.part" . && mv "$tarball.part" "$tarball"
    rm -rf --one-file-system "$root"
}

# Imports root file system $1 as image $2 with label $3 and more --change.
import_rootfs() {
    local tarball=$1 image=$2 key=$3
    shift 3
    local changes=(--change "LABEL org.alliance-glance.stand-in=$key" --change 'CMD ["bash"]')
    local change
    for change in "$@"; do
        changes+=(--change "$change")
    done
    "$ENGINE" image rm -f "$image" >/dev/null 2>&1 || true
    "$ENGINE" import --quiet "${changes[@]}" "$tarball" "$image" >/dev/null
}

phase "base images"
build_args=()
standins=()
if official "$RUNTIME_BASE" && official "$RUST_BASE"; then
    say "official base images: $RUNTIME_BASE, $RUST_BASE"
else
    ((EUID == 0)) || fail "no registry gives the base images, and making stand-ins needs root (debootstrap, chroot)"
    read -r toolchain rust_version rust_host < <(find_toolchain) ||
        fail "no local rustup toolchain $RUST_MINOR.* for the $RUST_BASE stand-in (rustup toolchain install $RUST_MINOR)"
    # Tarballs and images are remade when their recipe (these functions)
    # changes; delete the tarballs to remake them anyway (newer packages).
    debian_recipe=$(declare -f make_debian_rootfs | sha256sum | cut -c 1-12)
    rust_recipe=$(declare -f make_rust_rootfs extra_certificates | sha256sum | cut -c 1-12)
    debian_tarball="$CACHE/standin-debian-$SUITE-slim.tar"
    debian_image="$STANDIN_PREFIX/debian:$SUITE-slim"
    if [[ ! -f $debian_tarball || $(cat "$debian_tarball.key" 2>/dev/null) != "recipe $debian_recipe" ]]; then
        make_debian_rootfs "$debian_tarball"
        echo "recipe $debian_recipe" >"$debian_tarball.key"
    else
        say "reusing $debian_tarball"
    fi
    debian_key="debootstrap $SUITE minbase slim $(stat -c %Y "$debian_tarball"), recipe $debian_recipe"
    if [[ $(image_label "$debian_image" org.alliance-glance.stand-in) != "$debian_key" ]]; then
        import_rootfs "$debian_tarball" "$debian_image" "$debian_key" \
            'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
    fi

    # The stand-in is remade when the toolchain, the debian stand-in or the
    # CAs the host trusts change.
    host_cas=$(for bundle in "${SSL_CERT_FILE:-}" /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt \
        /etc/ssl/cert.pem; do if [[ -r $bundle ]]; then cat "$bundle"; fi; done | sha256sum | cut -c 1-16)
    rust_key="rust $rust_version $("$toolchain/bin/rustc" -vV | sed -n 's/^commit-hash: //p' | cut -c 1-12) on $(stat -c %Y "$debian_tarball"), host CAs $host_cas, recipe $rust_recipe"
    rust_tarball="$CACHE/standin-rust-$RUST_MINOR-slim-$SUITE.tar"
    rust_image="$STANDIN_PREFIX/rust:$RUST_MINOR-slim-$SUITE"
    if [[ ! -f $rust_tarball || $(cat "$rust_tarball.key" 2>/dev/null) != "$rust_key" ]]; then
        say "making the rust stand-in from $toolchain ($rust_version, $rust_host)"
        make_rust_rootfs "$rust_tarball" "$debian_tarball" "$toolchain" "$rust_version" "$rust_host"
        echo "$rust_key" >"$rust_tarball.key"
    else
        say "reusing $rust_tarball"
    fi
    if [[ $(image_label "$rust_image" org.alliance-glance.stand-in) != "$rust_key" ]]; then
        import_rootfs "$rust_tarball" "$rust_image" "$rust_key" \
            'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            'ENV RUSTUP_HOME=/usr/local/rustup' 'ENV CARGO_HOME=/usr/local/cargo' "ENV RUST_VERSION=$rust_version"
    fi
    # The stand-in must work as the official one does, and lack make as it does.
    # shellcheck disable=SC2016 # expanded in the container
    "$ENGINE" run --rm "$rust_image" bash -c \
        'rustc --version && cargo --version && ! command -v make >/dev/null && test "$(rustup show active-toolchain | cut -d" " -f1)" = "$(rustc -vV | sed -n "s/^release: //p")-$(rustc -vV | sed -n "s/^host: //p")"' \
        >"$work/standin-probe.log" 2>&1 || { cat "$work/standin-probe.log"; fail "the rust stand-in does not work"; }
    build_args+=(--build-arg "RUNTIME_IMAGE=$debian_image" --build-arg "RUST_IMAGE=$rust_image")
    standins=("$debian_image for $RUNTIME_BASE (debootstrap minbase, slimmed)"
        "$rust_image for $RUST_BASE (+ ca-certificates gcc libc6-dev, the local rust $rust_version at /usr/local/{rustup,cargo}, $(wc -l <"$rust_tarball.cas") extra CA(s) the host trusts)")
    if [[ -s $rust_tarball.cas ]]; then
        while read -r subject; do
            standins+=("  extra CA: $subject")
        done <"$rust_tarball.cas"
    fi
    loud "NO REGISTRY GAVE THE OFFICIAL BASE IMAGES: building on STAND-INS made from Debian packages," \
        "NOT on the official images:" "${standins[@]/#/  }"
fi

# --- Images ------------------------------------------------------------------

phase "build the production and demo images (logs: $CACHE/build-*.log)"
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
build_args+=(--build-arg "ALLIANCE_GLANCE_COMMIT=$commit")
pull_args=()
[[ $ENGINE == podman ]] && pull_args=(--pull=never) # present: pulled or made above
build() { # LOG, then build arguments
    local log=$1 begun
    shift
    begun=$(date +%s)
    if ! "$ENGINE" build "${pull_args[@]}" "${build_args[@]}" "$@" . >"$log" 2>&1; then
        tail -n 40 "$log"
        fail "$ENGINE build $* failed (log: $log)"
    fi
    say "$ENGINE build $* ($(($(date +%s) - begun)) s)"
}
build "$CACHE/build-production.log" -t "$PRODUCTION_IMAGE"
build "$CACHE/build-demo.log" --target demo -t "$DEMO_IMAGE"
image_size() { "$ENGINE" image inspect --format '{{.Size}}' "$1" | awk '{ printf "%.1f MB", $1 / 1e6 }'; }
pass "both images built ($PRODUCTION_IMAGE $(image_size "$PRODUCTION_IMAGE"), $DEMO_IMAGE $(image_size "$DEMO_IMAGE"))"

phase "the images"
for image in "$PRODUCTION_IMAGE" "$DEMO_IMAGE"; do
    user=$("$ENGINE" image inspect --format '{{.Config.User}}' "$image")
    [[ $user == "$IMAGE_UID:$IMAGE_UID" ]] || fail "$image runs as '$user', not $IMAGE_UID:$IMAGE_UID"
    uid=$("$ENGINE" run --rm --entrypoint id "$image" -u)
    [[ $uid == "$IMAGE_UID" ]] || fail "$image runs as uid $uid"
done
pass "both images run as uid $IMAGE_UID (USER $IMAGE_UID:$IMAGE_UID, id -u in a container)"
version=$("$ENGINE" run --rm "$PRODUCTION_IMAGE" --version)
[[ $version == *"(commit $commit)" ]] || fail "--version says '$version', not commit $commit"
pass "--version names the commit: $version"

# Subcommand $2 of image $1: refused (clap's unrecognised subcommand) or not.
refuses() {
    local output status=0
    output=$("$ENGINE" run --rm "$1" "$2" --help 2>&1) || status=$?
    ((status != 0)) && [[ $output == *"unrecognized subcommand '$2'"* ]]
}
for subcommand in demo mock-glance; do
    refuses "$PRODUCTION_IMAGE" "$subcommand" || fail "$PRODUCTION_IMAGE does not refuse '$subcommand'"
    ! refuses "$DEMO_IMAGE" "$subcommand" || fail "$DEMO_IMAGE refuses '$subcommand'"
done
pass "production image refuses 'demo' and 'mock-glance' (the demo image has both)"

# The demo image as README runs it: no arguments, its default command
# serves the API on port 8080 beyond the container's loopback.
demo_container=alliance-glance-demo-check-$$
scratch_containers+=("$demo_container")
"$ENGINE" run -d --name "$demo_container" -p 127.0.0.1::8080 "$DEMO_IMAGE" >/dev/null
demo_port=$("$ENGINE" port "$demo_container" 8080/tcp | sed -n 's/.*:\([0-9]*\)$/\1/p' | head -n 1)
[[ -n $demo_port ]] || fail "the demo container publishes no port for 8080"
deadline=$(($(date +%s) + 30))
until demo_list=$(curl -sf "http://127.0.0.1:$demo_port/images" \
    -H 'X-Target-Ns: ccsr1' -H 'X-Environment-Id: 54915a05b0bb43dcbb218525c426b6a5'); do
    (($(date +%s) < deadline)) || fail "the demo image's default command serves nothing on 8080: $("$ENGINE" logs "$demo_container" 2>&1 | tail -n 5)"
    sleep 0.5
done
[[ $demo_list == *'"images"'* ]] || fail "the demo image's list answered: $demo_list"
"$ENGINE" rm -f "$demo_container" >/dev/null
pass "the demo image's default command serves the API on 8080 (published as 127.0.0.1:$demo_port, list answered)"

# The binaries themselves: the mock crate's source paths and the demo's
# texts are in the demo binary and must not be in the production one.
binary_of() { # IMAGE FILE
    local container
    container=$("$ENGINE" create "$1")
    scratch_containers+=("$container")
    "$ENGINE" cp "$container:/usr/local/bin/alliance-glance" "$2"
}
binary_of "$PRODUCTION_IMAGE" "$work/production-binary"
binary_of "$DEMO_IMAGE" "$work/demo-binary"
markers=(mock/src/glance "alliance-glance demo:" mock-glance)
for marker in "${markers[@]}"; do
    grep -qaF -- "$marker" "$work/demo-binary" || fail "the demo binary lacks '$marker' (a marker that tells nothing)"
    ! grep -qaF -- "$marker" "$work/production-binary" || fail "the production binary contains '$marker'"
done
if command -v readelf >/dev/null; then
    for binary in production-binary demo-binary; do
        ! readelf -S "$work/$binary" | grep -q '\.symtab' || fail "$binary is not stripped"
    done
    stripped=", both stripped"
else
    stripped=""
fi
pass "no mock code in the production binary: no '${markers[*]}' (all in the demo binary)$stripped; $(stat -c %s "$work/production-binary") and $(stat -c %s "$work/demo-binary") bytes"

# --- The compose stack ------------------------------------------------------

phase "start the compose stack"
if (exec 3<>/dev/tcp/127.0.0.1/8080) 2>/dev/null; then
    fail "127.0.0.1:8080 is in use (is the compose stack already running? docker compose down)"
fi
# The stack reads a copy of config/ (the reload checks edit it).
config_dir="$work/config"
cp -r config "$config_dir"
chmod 0755 "$work" "$config_dir"
chmod 0644 "$config_dir"/*
export ALLIANCE_GLANCE_CONFIG_DIR="$config_dir"
config_file="$config_dir/docker-compose.toml"
cp "$config_file" "$work/docker-compose.toml.original"
stack_up=1
"${COMPOSE[@]}" -p "$PROJECT" up -d --no-build >"$CACHE/compose-up.log" 2>&1 ||
    { cat "$CACHE/compose-up.log"; fail "${COMPOSE[*]} up failed"; }

container_of() {
    local id
    id=$("$ENGINE" ps -q --filter "label=com.docker.compose.project=$PROJECT" \
        --filter "label=com.docker.compose.service=$1")
    [[ -n $id && $id != *$'\n'* ]] || fail "no (single) running container for service $1"
    echo "$id"
}

# Runs service $1's health check command once, as its engine does.
run_healthcheck() {
    local id
    id=$(container_of "$1")
    if [[ $ENGINE == podman ]]; then
        podman healthcheck run "$id" >/dev/null 2>&1
    else
        local test
        test=$(docker inspect --format '{{json .Config.Healthcheck.Test}}' "$id")
        local -a command
        mapfile -t command < <(python3 -c 'import json, sys
test = json.loads(sys.argv[1])
assert test[0] == "CMD", test
print("\n".join(test[1:]))' "$test")
        docker exec "$id" "${command[@]}" >/dev/null 2>&1
    fi
}

# Waits until service $1 is healthy (podman: its check passes when run).
wait_healthy() {
    local deadline=$(($(date +%s) + $2))
    while (($(date +%s) < deadline)); do
        if [[ $ENGINE == docker ]]; then
            [[ $(docker inspect --format '{{.State.Health.Status}}' "$(container_of "$1")") == healthy ]] && return 0
        else
            run_healthcheck "$1" && return 0
        fi
        sleep 1
    done
    return 1
}

services=(copy-from-source glance-mock alliance-glance)
for service in "${services[@]}"; do
    wait_healthy "$service" 120 || fail "$service never became healthy"
done
pass "the three services healthy: ${services[*]} (their compose health checks)"

# --- README's curl lines ----------------------------------------------------

phase "README's curl lines against the stack"
mapfile -t readme_curls < <(sed -n '/<!-- container-check: begin -->/,/<!-- container-check: end -->/p' README.md |
    sed -n 's/^ *\(curl .*\)$/\1/p')
((${#readme_curls[@]} == 5)) || fail "README's container block has ${#readme_curls[@]} curl lines, not 5 (create, show, list, update, delete)"
readme_line() { # the line whose text matches $1
    local line
    for line in "${readme_curls[@]}"; do
        # shellcheck disable=SC2053 # $1 is a pattern
        [[ $line == $1 ]] && { echo "$line"; return 0; }
    done
    fail "no README curl line like '$1'"
}
create_line=$(readme_line "curl -s -X POST $API/images *copy_from*")
show_line=$(readme_line "curl -s $API/images/cirrosimage *")
list_line=$(readme_line "curl -s $API/images -H*")
update_line=$(readme_line "curl -s -X PUT $API/images/cirrosimage *")
delete_line=$(readme_line "curl -s -X DELETE $API/images/ubuntu_image *")
run_line() { bash -c "$1"; }
# Checks JSON $1 with Python expression $2 (the value is `v`).
json_check() {
    python3 -c 'import json, sys
v = json.loads(sys.argv[1])
if not eval(sys.argv[2]):
    sys.exit(1)' "$1" "$2" 2>/dev/null
}
copy_from_url=$(sed -n 's/.*"copy_from": "\([^"]*\)".*/\1/p' <<<"$create_line")

created=$(run_line "$create_line")
json_check "$created" "v['name'] == 'cirrosimage' and v['status'] == 'queued' and v['copy_from'] == '$copy_from_url'" ||
    fail "create answered: $created"
pass "create with copy_from $copy_from_url: queued"
deadline=$(($(date +%s) + 60))
while :; do
    shown=$(run_line "$show_line")
    json_check "$shown" "v['status'] == 'active'" && break
    json_check "$shown" "v['status'] in ('queued', 'importing', 'saving')" || fail "show answered: $shown"
    (($(date +%s) < deadline)) || fail "the image never became active: $shown"
    sleep 1
done
json_check "$shown" "v['size'] == 1024 and v['virtual_size'] == 1 << 30 and v['checksum']" ||
    fail "the active image lacks the source's size, virtual_size or checksum: $shown"
"$ENGINE" logs "$(container_of copy-from-source)" 2>&1 | grep -q "GET /cirros.qcow2 200" ||
    fail "the copy_from source logged no download"
pass "show until active: 1024 bytes fetched from the copy_from source in the compose network, virtual_size 1 GiB"
listed=$(run_line "$list_line")
json_check "$listed" "[i['name'] for i in v[0]['images']] == ['cirrosimage']" || fail "list answered: $listed"
pass "list: [{\"images\": [cirrosimage]}]"
updated=$(run_line "$update_line")
json_check "$updated" "v['name'] == 'ubuntu_image' and v['min_ram'] == 512" || fail "update answered: $updated"
pass "update: renamed ubuntu_image, min_ram 512"
deleted=$(run_line "$delete_line")
[[ $deleted == 200 ]] || fail "delete answered: $deleted"
headers=(-H 'X-Target-Ns: ccsr1' -H 'X-Environment-Id: 54915a05b0bb43dcbb218525c426b6a5' -H 'Content-Type: application/json')
gone=$(curl -s -o /dev/null -w '%{http_code}' "$API/images/ubuntu_image" "${headers[@]}")
[[ $gone == 404 ]] || fail "the deleted image is still shown ($gone)"
pass "delete: 200, then 404"

# The guard allows the copy_from source by name, and nothing else of the
# compose network (a private network).
refused=$(curl -s -w '\n%{http_code}' -X POST "$API/images" "${headers[@]}" \
    -d '{"image": {"name": "other", "disk_format": "qcow2", "container_format": "bare", "copy_from": "http://glance-mock/cirros.qcow2"}}')
[[ ${refused##*$'\n'} == 403 && $refused == *"copy_from is refused"* ]] ||
    fail "a copy_from to glance-mock was not refused: $refused"
pass "copy_from to another host of the compose network refused (403: ${refused%%$'\n'*})"

# --- Health checks ----------------------------------------------------------

phase "health checks"
# The mock Glance frozen (compose pause: the same container, address and
# name) rather than stopped: with podman 4.3 a restarted container gets a
# new address, and once the facade's readiness then kept timing out for 30 s
# (its name still led to the old address, it seems): a property of the
# engine's network, not of the health check.
compose_do() { # COMMAND SERVICE
    "${COMPOSE[@]}" -p "$PROJECT" "$1" "$2" >"$work/compose-$1.log" 2>&1 ||
        { cat "$work/compose-$1.log"; fail "${COMPOSE[*]} $1 $2 failed"; }
}
run_healthcheck alliance-glance || fail "the facade's health check fails"
run_healthcheck glance-mock || fail "the mock Glance's health check fails"
# Waits up to 30 s for the facade's health check to be as asked.
await_facade_health() { # passes|fails FAILURE-MESSAGE
    local deadline=$(($(date +%s) + 30)) now
    while true; do
        if run_healthcheck alliance-glance; then now=passes; else now=fails; fi
        [[ $now == "$1" ]] && return 0
        (($(date +%s) < deadline)) || fail "$2"
        sleep 1
    done
}
compose_do pause glance-mock
# /readyz answers are reused for 5 s; a check waits 2 s for Glance.
await_facade_health fails "the facade's health check still passes with its Glance frozen"
compose_do unpause glance-mock
await_facade_health passes "the facade's health check did not pass again"
run_healthcheck glance-mock || fail "the mock Glance's health check fails after the pause"
pass "health checks: facade (/readyz) and mock Glance pass; the facade's fails while its Glance is frozen (compose pause), passes again after"

# --- Reload -----------------------------------------------------------------

phase "SIGHUP reload"
facade=$(container_of alliance-glance)
metric_reloads() { # OUTCOME
    "$ENGINE" exec "$facade" bash -c 'exec 3<>/dev/tcp/127.0.0.1/9180 && printf "GET /metrics HTTP/1.0\r\n\r\n" >&3 && cat <&3' |
        sed -n "s/^alliance_glance_config_reloads_total{outcome=\"$1\"} \([0-9]*\).*/\1/p"
}
namespace_status() { # NAMESPACE: the list call's status
    curl -s -o /dev/null -w '%{http_code}' "$API/images" -H "X-Target-Ns: $1" \
        -H 'X-Environment-Id: 54915a05b0bb43dcbb218525c426b6a5'
}
# README's reload command, then wait for the metric.
reload() { # OUTCOME EXPECTED_COUNT
    "${COMPOSE[@]}" -p "$PROJECT" kill -s HUP alliance-glance >"$work/compose-kill.log" 2>&1 ||
        { cat "$work/compose-kill.log"; fail "compose kill -s HUP alliance-glance failed"; }
    local deadline=$(($(date +%s) + 15))
    until [[ $(metric_reloads "$1") == "$2" ]]; do
        (($(date +%s) < deadline)) || fail "no reload with outcome $1 counted (expected $2, metric $(metric_reloads "$1"))"
        sleep 0.5
    done
}
applied=$(metric_reloads applied)
refused=$(metric_reloads refused)
[[ -n $applied && -n $refused ]] || fail "no alliance_glance_config_reloads_total in /metrics"
[[ $(namespace_status ccsr2) == 400 ]] || fail "namespace ccsr2 answers before it is configured"
# Appended in place here; sed -i below writes a new file (a new inode, as
# editors do), which the mounted directory shows too.
cat >>"$config_file" <<'EOF'

[namespaces.ccsr2]
glance_url = "http://glance-mock:9292/image"
auth = { type = "trusted", user_id = "alliance-glance" }
EOF
reload applied $((applied + 1))
[[ $(namespace_status ccsr2) == 200 ]] || fail "namespace ccsr2 does not answer after the reload"
pass "SIGHUP applied a new namespace (ccsr2: 400 before, 200 after)"
sed -i 's/^listen = "0.0.0.0:8080"$/listen = "0.0.0.0:8080/' "$config_file"
grep -q '^listen = "0.0.0.0:8080$' "$config_file" || fail "could not break the configuration copy"
reload refused $((refused + 1))
"$ENGINE" logs "$facade" 2>&1 | grep 'ERROR' | grep -q '/etc/alliance-glance/docker-compose.toml' ||
    fail "no error line naming the configuration file after the broken reload"
[[ $(namespace_status ccsr2) == 200 && $(namespace_status ccsr1) == 200 ]] ||
    fail "the running configuration was not kept after the broken reload"
pass "SIGHUP with a broken TOML file: refused, logged with the file's name, the running configuration kept"
cat "$work/docker-compose.toml.original" >"$config_file"
reload applied $((applied + 2))
[[ $(namespace_status ccsr2) == 400 && $(namespace_status ccsr1) == 200 ]] ||
    fail "the original configuration is not back after the last reload"
pass "SIGHUP with the original file: applied (ccsr2 gone again)"

# --- Users ------------------------------------------------------------------

phase "users"
for service in "${services[@]}"; do
    # shellcheck disable=SC2016 # awk's $2
    uid=$("$ENGINE" exec "$(container_of "$service")" awk '/^Uid:/ { print $2 }' /proc/1/status)
    [[ $uid == "$IMAGE_UID" ]] || fail "$service's process runs as uid $uid"
done
pass "every service's process runs as uid $IMAGE_UID: ${services[*]}"

# --- Stop -------------------------------------------------------------------

phase "stop the compose stack"
"${COMPOSE[@]}" -p "$PROJECT" down -v --remove-orphans >"$CACHE/compose-down.log" 2>&1 ||
    { cat "$CACHE/compose-down.log"; fail "${COMPOSE[*]} down failed"; }
stack_up=0
left=$("$ENGINE" ps -a -q --filter "label=com.docker.compose.project=$PROJECT")
[[ -z $left ]] || fail "containers left after down: $left"
pass "stack stopped and removed"

phase "summary"
say "engine: $ENGINE (${COMPOSE[*]})"
if ((${#standins[@]})); then
    loud "BUILT ON STAND-INS, NOT ON THE OFFICIAL BASE IMAGES:" "${standins[@]/#/  }"
else
    say "base images: $RUNTIME_BASE, $RUST_BASE (official)"
fi
for line in "${notes[@]}"; do
    say "note: $line"
done
"$ENGINE" images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E "/?($PRODUCTION_IMAGE|$DEMO_IMAGE):latest " |
    sed 's/^/container-check: image /'
for line in "${checks[@]}"; do
    say "passed: $line"
done
say "all checks passed in $(elapsed) s"
exit 0
}
