#!/usr/bin/env bash
# Install (cached) and start real OpenStack Keystone and Glance of one release on 127.0.0.1
# for the alliance-glance test suite. See scripts/openstack/README.md.
#
#   scripts/openstack/up.sh [--release N]   # N: 33 (default), 31 or 28 (releases/N/)
#   set -a; . .cache/openstack/N/env; set +a
#   scripts/openstack/smoke.sh [--release N]  # optional end-to-end check
#   scripts/openstack/down.sh [--release N]   # stops what up.sh started (all releases without N)
#
# Each release has its own cached venv and run folder under .cache/openstack/N/, so several
# releases can run at once. Knobs (environment): OS_PYTHON (python >= 3.11 to build the venv
# with), OS_UP_TIMEOUT (bound in seconds on the whole start-up after the install, default 90;
# it usually takes 15-30 s on 2 cores).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
RELEASE=33
while (($#)); do
    case $1 in
    --release) RELEASE="${2:?--release needs a value}"; shift 2 ;;
    --release=*) RELEASE="${1#--release=}"; shift ;;
    *) printf 'up.sh: unknown argument %s (usage: up.sh [--release N])\n' "$1" >&2; exit 2 ;;
    esac
done
RELEASE_DIR="$HERE/releases/$RELEASE"
if [[ ! -f $RELEASE_DIR/release.env ]]; then
    printf 'up.sh: ERROR: no release %s (known: %s)\n' "$RELEASE" "$(ls "$HERE/releases" | tr '\n' ' ')" >&2
    exit 2
fi
# SERIES, GLANCE_VERSION, KEYSTONE_VERSION, GLANCE_WSGI_APP, KEYSTONE_WSGI_APP.
# shellcheck source=/dev/null
. "$RELEASE_DIR/release.env"
CACHE="$REPO/.cache/openstack/$RELEASE"
VENV="$CACHE/venv"
RUN="$CACHE/run"
ENV_FILE="$CACHE/env"
PIDS_FILE="$CACHE/pids"
REQUIREMENTS="$RELEASE_DIR/requirements.txt"
UP_TIMEOUT="${OS_UP_TIMEOUT:-90}"
REGION="RegionOne"
ADMIN_USER="admin"
SERVICE_USER="alliance"

T0=$EPOCHREALTIME
PHASES=()
phase() { PHASES+=("$1 +$(elapsed "$T_INSTALL1" "$EPOCHREALTIME")s"); } # after install
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
say() { printf 'up.sh[%s]: %s\n' "$RELEASE" "$*"; }
die() { printf 'up.sh[%s]: ERROR: %s\n' "$RELEASE" "$*" >&2; exit 1; }

# Secrets generated below; used to mask log tails printed on failure.
SECRETS=()
redact() {
    local s args=()
    for s in "${SECRETS[@]}"; do args+=(-e "s/$s/***/g"); done
    if ((${#args[@]})); then sed "${args[@]}"; else cat; fi
}
tail_log() { # file [lines]
    if [[ -f $1 ]]; then
        printf -- '--- last %s lines of %s ---\n' "${2:-40}" "$1" >&2
        tail -n "${2:-40}" "$1" | redact >&2
        printf -- '--- end of %s ---\n' "$1" >&2
    fi
}

# On a failure after the previous run was stopped: stop whatever this run started.
UP_OK=0
STARTING=0
on_exit() {
    local rc=$?
    if ((UP_OK == 0 && STARTING == 1)); then
        printf 'up.sh[%s]: failed (exit %s); stopping what was started\n' "$RELEASE" "$rc" >&2
        "$HERE/down.sh" --release "$RELEASE" >&2 || true
    fi
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------
# 1. Python >= 3.11 (the newest release refuses older interpreters; the oldest, 2024.1,
#    supports 3.8-3.11: one interpreter serves them all).
# ---------------------------------------------------------------------------------------
PY=""
if [[ -n ${OS_PYTHON:-} ]]; then
    candidates=("$OS_PYTHON")
else
    candidates=(python3 python3.13 python3.12 python3.11)
fi
seen=()
for c in "${candidates[@]}"; do
    if ! command -v "$c" >/dev/null 2>&1; then
        seen+=("$c: not found")
        continue
    fi
    if ! v="$("$c" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null)"; then
        seen+=("$c: does not run")
        continue
    fi
    seen+=("$c: $v")
    if "$c" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
        PY="$("$c" -c 'import sys; print(sys.executable)')"
        break
    fi
done
if [[ -z $PY ]]; then
    die "Python >= 3.11 is required (glance 33.0.0 and keystone 30.0.0 need it; one interpreter serves every release); tried: $(IFS=,; echo "${seen[*]}" | sed 's/,/, /g'). Install one, or set OS_PYTHON=/path/to/python3.11."
fi
"$PY" -c 'import venv, ensurepip' 2>/dev/null ||
    die "$PY lacks the venv/ensurepip modules (on Debian: apt-get install python3-venv)"
PY_VERSION="$("$PY" -c 'import sys; print(sys.version.split()[0])')"
for tool in curl qemu-img setsid flock awk sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' is required but not found (qemu-img: apt-get install qemu-utils)"
done

mkdir -p "$CACHE"

# Stop a previous run before touching its folder.
if [[ -f $PIDS_FILE ]]; then
    say "stopping the previous run first"
    "$HERE/down.sh" --release "$RELEASE" || die "could not stop the previous run (see above)"
fi
STARTING=1

# ---------------------------------------------------------------------------------------
# 2. Virtualenv, rebuilt only when requirements.txt (or the interpreter, or its path) changed.
# ---------------------------------------------------------------------------------------
STAMP="$VENV/.alliance-requirements.sha256"
# The venv's scripts hold its absolute path in their #! lines, so the path is hashed too
# (a moved or copied checkout rebuilds).
WANT_HASH="$({ sha256sum <"$REQUIREMENTS"; "$PY" -c 'import sys; print(sys.version)'; echo "$VENV"; } | sha256sum | cut -c1-64)"
T_INSTALL0=$EPOCHREALTIME
INSTALL_NOTE="venv reused"
if [[ -x $VENV/bin/python && -f $STAMP && "$(cat "$STAMP")" == "$WANT_HASH" ]] &&
    "$VENV/bin/python" -c 'import glance, keystone, gunicorn' 2>/dev/null; then
    say "venv up to date ($VENV, Python $PY_VERSION)"
else
    say "building venv $VENV with Python $PY_VERSION from $REQUIREMENTS (30-90 s: pip downloads 130-145 packages)"
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
    PIP_LOG="$CACHE/pip-install.log"
    if ! "$VENV/bin/python" -m pip install --no-input --disable-pip-version-check \
        -r "$REQUIREMENTS" >"$PIP_LOG" 2>&1; then
        tail_log "$PIP_LOG" 30
        die "pip install failed (full log: $PIP_LOG)"
    fi
    if ! "$VENV/bin/python" -m pip check >>"$PIP_LOG" 2>&1; then
        tail_log "$PIP_LOG" 20
        die "pip check found inconsistent requirements (log: $PIP_LOG)"
    fi
    printf '%s\n' "$WANT_HASH" >"$STAMP"
    INSTALL_NOTE="venv built"
fi
T_INSTALL1=$EPOCHREALTIME

# ---------------------------------------------------------------------------------------
# 3. Fresh runtime folder, ports, secrets.
# ---------------------------------------------------------------------------------------
rm -rf "$RUN" "$ENV_FILE"
mkdir -p "$RUN"
# One bound for the whole start-up: set-up commands and waits for the services.
DEADLINE=$((${EPOCHREALTIME%.*} + UP_TIMEOUT))
RUN_ID="$(date +%s)-$$-$RANDOM"

# Free ports, picked under a lock shared by every release's up.sh, and none that another
# release recorded for its servers (between the pick and the servers' bind, nothing holds them).
read -r KS_PORT GK_PORT GT_PORT HTTP_PORT < <(
    exec 9>"$REPO/.cache/openstack/ports.lock"
    flock 9
    TAKEN="$(cat "$REPO"/.cache/openstack/*/ports 2>/dev/null | tr '\n' ' ')" "$PY" - "$CACHE/ports" <<'EOF'
import os, socket, sys
taken = set(os.environ["TAKEN"].split())
socks, ports = [], []
while len(ports) < 4:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
    port = str(s.getsockname()[1])
    if port not in taken:
        ports.append(port)
with open(sys.argv[1], "w") as recorded:
    recorded.write("\n".join(ports) + "\n")
print(" ".join(ports))
EOF
)
KS_BASE="http://127.0.0.1:$KS_PORT"
KEYSTONE_URL="$KS_BASE/v3"
GK_URL="http://127.0.0.1:$GK_PORT"
GT_URL="http://127.0.0.1:$GT_PORT"
HTTP_URL="http://127.0.0.1:$HTTP_PORT"

SECRET_DIR="$RUN/secrets"
mkdir -m 700 "$SECRET_DIR"
gen_secret() { "$PY" -c 'import secrets; print(secrets.token_urlsafe(24))'; }
(
    umask 077
    gen_secret >"$SECRET_DIR/admin.password"
    gen_secret >"$SECRET_DIR/alliance.password"
    gen_secret >"$SECRET_DIR/glance.password"
)
ADMIN_PASSWORD="$(cat "$SECRET_DIR/admin.password")"
GLANCE_PASSWORD="$(cat "$SECRET_DIR/glance.password")"
SECRETS=("$ADMIN_PASSWORD" "$GLANCE_PASSWORD" "$(cat "$SECRET_DIR/alliance.password")")

# Environment of every process started below: no proxies (everything is loopback), no
# stray gunicorn arguments or config folders.
SVC_ENV=(env -u http_proxy -u https_proxy -u HTTP_PROXY -u HTTPS_PROXY -u all_proxy
    -u ALL_PROXY -u GUNICORN_CMD_ARGS -u OS_KEYSTONE_CONFIG_DIR -u OS_GLANCE_CONFIG_DIR
    NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost)

# The pids file (read by down.sh): "# boot_id ID", then "NAME PID STARTTIME RUN_ID" lines.
# STARTTIME (field 22 of /proc/PID/stat) lets down.sh tell our PID from a recycled one.
printf '# boot_id %s\n# NAME PID STARTTIME RUN_ID\n' "$(cat /proc/sys/kernel/random/boot_id)" >"$PIDS_FILE"

# start NAME CWD LOG CMD...: run CMD in the background in its own session and process
# group (setsid; pgid = pid), record it in the pids file at once, and set LAST_PID.
start() {
    local name=$1 cwd=$2 log=$3 line starttime="-"
    local -a f
    shift 3
    (cd "$cwd" && exec setsid "${SVC_ENV[@]}" "$@") </dev/null >>"$log" 2>&1 &
    LAST_PID=$!
    # The start time is fixed at fork, so it is already the service's own.
    if read -r line 2>/dev/null <"/proc/$LAST_PID/stat"; then
        line="${line##*) }"
        read -r -a f <<<"$line"
        starttime="${f[19]}"
    fi
    printf '%s %s %s %s\n' "$name" "$LAST_PID" "$starttime" "$RUN_ID" >>"$PIDS_FILE"
}

# ---------------------------------------------------------------------------------------
# 4. Local HTTP server with images for web-download.
# ---------------------------------------------------------------------------------------
IMG_DIR="$RUN/image-server"
mkdir -p "$IMG_DIR"
qemu-img create -q -f qcow2 "$IMG_DIR/image.qcow2" 1M
head -c 1048576 /dev/urandom >"$IMG_DIR/image.raw"
head -c 65536 /dev/urandom >"$IMG_DIR/garbage.bin"
start image-server "$IMG_DIR" "$RUN/image-server.log" \
    "$PY" -m http.server --bind 127.0.0.1 --directory "$IMG_DIR" "$HTTP_PORT"
HTTP_PID=$LAST_PID

# ---------------------------------------------------------------------------------------
# 5. Glance configs (two instances) and their DBs (db_sync in the background).
# ---------------------------------------------------------------------------------------
write_glance() { # NAME PORT FLAVOR
    local name=$1 port=$2 flavor=$3 dir="$RUN/$1"
    mkdir -p "$dir/images" "$dir/staging" "$dir/tasks" "$dir/locks"
    sed "s|@RUN_DIR@|$dir|g" "$HERE/templates/glance-api-paste.ini" >"$dir/glance-api-paste.ini"
    (
        umask 077
        cat >"$dir/glance-api.conf" <<EOF
# Generated by scripts/openstack/up.sh for $name (flavor $flavor), Glance $GLANCE_VERSION.
[DEFAULT]
debug = false
enabled_backends = fs1:file
# The brackets are required (bounded list options); without them the value is wrong.
enabled_import_methods = [glance-direct, web-download]
worker_self_reference_url = http://127.0.0.1:$port

[database]
# A writer waits up to 30 s for SQLite's lock (pysqlite's default: 5 s), so a
# slow machine does not turn two meeting writes into Glance's 500 "database is
# locked" (a facade-side copy_from upload reported killed once in CI, cause
# unseen; this is the likeliest one).
connection = sqlite:///$dir/glance.sqlite?timeout=30

[glance_store]
default_backend = fs1

[fs1]
filesystem_store_datadir = $dir/images/

[os_glance_staging_store]
filesystem_store_datadir = $dir/staging/

[os_glance_tasks_store]
filesystem_store_datadir = $dir/tasks/

[import_filtering_opts]
# Brackets required: without them every web-download answers 400 "does not pass filtering".
allowed_schemes = [http, https]
allowed_hosts = [127.0.0.1]
allowed_ports = [80, 443, $HTTP_PORT]

[paste_deploy]
flavor = $flavor
config_file = $dir/glance-api-paste.ini

[oslo_concurrency]
lock_path = $dir/locks
EOF
        if [[ $flavor == keystone ]]; then
            cat >>"$dir/glance-api.conf" <<EOF

[keystone_authtoken]
www_authenticate_uri = $KS_BASE
auth_url = $KS_BASE
auth_type = password
project_domain_id = default
user_domain_id = default
project_name = service
username = glance
password = $GLANCE_PASSWORD
region_name = $REGION
# Validate every token with Keystone: a revoked token is refused at once (default 300 s).
token_cache_time = -1
EOF
        fi
    )
    cat >"$dir/gunicorn.conf.py" <<EOF
# Generated by scripts/openstack/up.sh. Read by gunicorn started with no arguments here.
wsgi_app = "$GLANCE_WSGI_APP"
bind = "127.0.0.1:$port"
workers = 1
worker_class = "gthread"
threads = 4
timeout = 120
graceful_timeout = 5
pidfile = "$dir/gunicorn.pid"
accesslog = "$dir/access.log"
control_socket_disable = True
EOF
}
write_glance glance-keystone "$GK_PORT" keystone
write_glance glance-trusted "$GT_PORT" trusted

# Each Glance runs as one recorded process: glance-manage db_sync (2-3 s), the SQLite
# file switched to WAL, then the same process execs gunicorn (no arguments; it reads
# ./gunicorn.conf.py), in the background while Keystone is being set up. WAL because
# with SQLite's default journal an image-data upload that ran while an import task
# wrote failed at once with "database is locked" (Glance answered 500; seen once in CI).
# PYTHONPATH: glance-sqlite/sitecustomize.py makes Glance's SQLite transactions queue for
# the write lock instead of failing with "database is locked" (see the file).
for g in glance-keystone glance-trusted; do
    start "$g" "$RUN/$g" "$RUN/$g/glance.log" \
        env "OS_GLANCE_CONFIG_DIR=$RUN/$g" "PYTHONPATH=$HERE/glance-sqlite" bash -c \
        'nice -n 19 "$1" --config-file "$2" db_sync \
            && "$4" -c "import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute(\"PRAGMA journal_mode=WAL\")" "$5" \
            && exec "$3"' glance-db-sync-then-serve \
        "$VENV/bin/glance-manage" "$RUN/$g/glance-api.conf" "$VENV/bin/gunicorn" \
        "$VENV/bin/python" "$RUN/$g/glance.sqlite"
    case $g in
    glance-keystone) GK_PID=$LAST_PID ;;
    glance-trusted) GT_PID=$LAST_PID ;;
    esac
done

# ---------------------------------------------------------------------------------------
# 6. Keystone: config, DB, fernet and credential keys, bootstrap, then the server.
# ---------------------------------------------------------------------------------------
KS_DIR="$RUN/keystone"
mkdir -p "$KS_DIR/locks"
mkdir -m 700 "$KS_DIR/fernet-keys" "$KS_DIR/credential-keys"
cat >"$KS_DIR/keystone.conf" <<EOF
# Generated by scripts/openstack/up.sh.
[DEFAULT]
debug = false

[database]
connection = sqlite:///$KS_DIR/keystone.sqlite?timeout=30

[token]
provider = fernet

[fernet_tokens]
key_repository = $KS_DIR/fernet-keys

[fernet_receipts]
key_repository = $KS_DIR/fernet-keys

[credential]
key_repository = $KS_DIR/credential-keys

[identity]
# bcrypt hashes at most 72 bytes.
max_password_length = 72

[oslo_concurrency]
lock_path = $KS_DIR/locks
EOF
cat >"$KS_DIR/gunicorn.conf.py" <<EOF
# Generated by scripts/openstack/up.sh. Keystone parses the process's own command line, so
# gunicorn must run with NO arguments (else every worker exits with status 2): all settings
# are here, and gunicorn is started from this folder.
wsgi_app = "$KEYSTONE_WSGI_APP"
bind = "127.0.0.1:$KS_PORT"
workers = 1
worker_class = "gthread"
threads = 4
timeout = 120
graceful_timeout = 5
pidfile = "$KS_DIR/gunicorn.pid"
accesslog = "$KS_DIR/access.log"
control_socket_disable = True
EOF
KM=("$VENV/bin/keystone-manage" --config-file "$KS_DIR/keystone.conf")
# WAL, as for Glance: with SQLite's default journal Keystone 25 (2024.1) failed a write
# during provisioning with "database is locked" (HTTP 500).
export VENV_PYTHON="$VENV/bin/python" KS_DB="$KS_DIR/keystone.sqlite"
export WAL='import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute("PRAGMA journal_mode=WAL")'

export KS_USER KS_GROUP
KS_USER="$(id -un)"
KS_GROUP="$(id -gn)"
# Two recorded background chains, awaited here: db_sync then bootstrap, and in parallel
# fernet_setup then credential_setup (these only write key files). Two at a time, as the
# machine has 2 cores; the Glance db_syncs run at nice 19 meanwhile (Keystone is the
# critical path of the start-up).
# bootstrap takes its arguments from OS_BOOTSTRAP_* variables, so the admin password is
# never on a command line (visible in ps).
OS_BOOTSTRAP_PASSWORD="$ADMIN_PASSWORD" OS_BOOTSTRAP_USERNAME="$ADMIN_USER" \
    OS_BOOTSTRAP_PROJECT_NAME=admin OS_BOOTSTRAP_ROLE_NAME=admin \
    OS_BOOTSTRAP_SERVICE_NAME=keystone OS_BOOTSTRAP_REGION_ID="$REGION" \
    OS_BOOTSTRAP_ADMIN_URL="$KEYSTONE_URL" OS_BOOTSTRAP_PUBLIC_URL="$KEYSTONE_URL" \
    OS_BOOTSTRAP_INTERNAL_URL="$KEYSTONE_URL" \
    start keystone-db-sync-bootstrap "$KS_DIR" "$KS_DIR/manage-db.log" \
    bash -c '"$@" db_sync && "$@" bootstrap && "$VENV_PYTHON" -c "$WAL" "$KS_DB"' \
    keystone-db-sync-bootstrap "${KM[@]}"
KS_SETUP_PIDS=("$LAST_PID")
KS_SETUP_LOGS=("$KS_DIR/manage-db.log")
start keystone-key-setup "$KS_DIR" "$KS_DIR/manage-keys.log" \
    bash -c '"$@" fernet_setup --keystone-user "$KS_USER" --keystone-group "$KS_GROUP" &&
             "$@" credential_setup --keystone-user "$KS_USER" --keystone-group "$KS_GROUP"' \
    keystone-key-setup "${KM[@]}"
KS_SETUP_PIDS+=("$LAST_PID")
KS_SETUP_LOGS+=("$KS_DIR/manage-keys.log")
# wait_bounded PID: wait for a background child until DEADLINE; its exit status, or 124.
wait_bounded() {
    local state
    while :; do
        state="$(ps -o stat= -p "$1" 2>/dev/null || true)"
        [[ -z $state || $state == Z* ]] && break
        ((${EPOCHREALTIME%.*} < DEADLINE)) || return 124
        sleep 0.2
    done
    wait "$1"
}
for i in "${!KS_SETUP_PIDS[@]}"; do
    rc=0
    wait_bounded "${KS_SETUP_PIDS[$i]}" || rc=$?
    if ((rc == 124)); then
        tail_log "${KS_SETUP_LOGS[$i]}"
        die "keystone-manage did not finish within ${UP_TIMEOUT}s of the start-up (log: ${KS_SETUP_LOGS[$i]})"
    elif ((rc != 0)); then
        tail_log "${KS_SETUP_LOGS[$i]}"
        die "keystone-manage failed (log: ${KS_SETUP_LOGS[$i]})"
    fi
done

phase "keystone-manage-done"
# Keystone: gunicorn with no arguments, from the folder holding gunicorn.conf.py.
start keystone "$KS_DIR" "$KS_DIR/keystone.log" \
    env "OS_KEYSTONE_CONFIG_DIR=$KS_DIR" "$VENV/bin/gunicorn"
KS_PID=$LAST_PID

# ---------------------------------------------------------------------------------------
# 7. Wait for every service (bounded), provision Keystone, warm up.
# ---------------------------------------------------------------------------------------
CURL=(curl -sS --noproxy '*' --max-time 5)
http_code() { "${CURL[@]}" -o /dev/null -w '%{http_code}' "$@" 2>/dev/null || true; }
wait_http() { # NAME URL WANT_CODE PID LOG [curl args...]
    local name=$1 url=$2 want=$3 pid=$4 log=$5 code=""
    shift 5
    while :; do
        code="$(http_code "$@" "$url")"
        [[ $code == "$want" ]] && return 0
        if ! kill -0 "$pid" 2>/dev/null || [[ "$(ps -o stat= -p "$pid" 2>/dev/null)" == Z* ]]; then
            tail_log "$log"
            die "$name (pid $pid) exited before answering $url"
        fi
        if ((${EPOCHREALTIME%.*} >= DEADLINE)); then
            tail_log "$log"
            die "$name did not answer $want at $url within ${UP_TIMEOUT}s of the start-up (last answer: ${code:-none})"
        fi
        sleep 0.2
    done
}

wait_http image-server "$HTTP_URL/image.qcow2" 200 "$HTTP_PID" "$RUN/image-server.log"
wait_http keystone "$KEYSTONE_URL" 200 "$KS_PID" "$KS_DIR/keystone.log"
phase "keystone-up"

PROVISION_OUT="$RUN/provision.out"
if ! "${SVC_ENV[@]}" OS_KEYSTONE_URL="$KEYSTONE_URL" OS_GLANCE_KEYSTONE_URL="$GK_URL" \
    OS_REGION="$REGION" OS_ADMIN_USER="$ADMIN_USER" \
    OS_ADMIN_PASSWORD_FILE="$SECRET_DIR/admin.password" \
    OS_SERVICE_PASSWORD_FILE="$SECRET_DIR/alliance.password" \
    OS_GLANCE_SERVICE_PASSWORD_FILE="$SECRET_DIR/glance.password" \
    "$PY" -B "$HERE/provision.py" >"$PROVISION_OUT" 2>"$RUN/provision.err"; then
    cat "$RUN/provision.err" | redact >&2
    tail_log "$KS_DIR/keystone.log"
    die "provisioning Keystone failed"
fi
declare -A P=()
while IFS='=' read -r k v; do [[ -n $k ]] && P[$k]=$v; done <"$PROVISION_OUT"

phase "provisioned"
wait_http glance-keystone "$GK_URL/healthcheck" 200 "$GK_PID" "$RUN/glance-keystone/glance.log"
wait_http glance-trusted "$GT_URL/healthcheck" 200 "$GT_PID" "$RUN/glance-trusted/glance.log"
# Warm-up and configuration check: a bogus token must be refused with 401 by
# keystonemiddleware (a wrong [keystone_authtoken] would give 503 instead), and the trusted
# flavor must list images with the identity headers.
phase "glance-up"
wait_http glance-keystone "$GK_URL/v2/images" 401 "$GK_PID" "$RUN/glance-keystone/glance.log" \
    -H 'X-Auth-Token: not-a-token'
wait_http glance-trusted "$GT_URL/v2/images" 200 "$GT_PID" "$RUN/glance-trusted/glance.log" \
    -H 'X-Identity-Status: Confirmed' -H "X-Project-Id: ${P[OS_PROJECT_ALPHA]}" \
    -H 'X-Roles: member,reader'

# ---------------------------------------------------------------------------------------
# 8. The env file.
# ---------------------------------------------------------------------------------------
TMP_ENV="$ENV_FILE.tmp.$$"
# KEY=value lines; a value is single-quoted only if it needs it (a checkout path with
# spaces, say): URLs, ids and generated passwords never do.
envline() {
    if [[ $2 =~ ^[A-Za-z0-9_./:@%+,=-]*$ ]]; then
        printf '%s=%s\n' "$1" "$2"
    else
        printf "%s='%s'\n" "$1" "${2//\'/\'\\\'\'}"
    fi
}
(
    umask 077
    printf '# Written by scripts/openstack/up.sh; describes the running services. Source with:\n'
    printf '#   set -a; . %s; set +a\n' "$(envline x "$ENV_FILE" | cut -d= -f2-)"
    envline OS_RELEASE "$RELEASE"
    envline OS_SERIES "$SERIES"
    envline OS_GLANCE_VERSION "$GLANCE_VERSION"
    envline OS_KEYSTONE_VERSION "$KEYSTONE_VERSION"
    envline OS_KEYSTONE_URL "$KEYSTONE_URL"
    envline OS_REGION "$REGION"
    envline OS_GLANCE_KEYSTONE_URL "$GK_URL"
    envline OS_GLANCE_TRUSTED_URL "$GT_URL"
    envline OS_ADMIN_USER "$ADMIN_USER"
    envline OS_ADMIN_USER_DOMAIN default
    envline OS_ADMIN_PROJECT admin
    envline OS_ADMIN_PASSWORD "$ADMIN_PASSWORD"
    envline OS_ADMIN_PASSWORD_FILE "$SECRET_DIR/admin.password"
    envline OS_SERVICE_USER "$SERVICE_USER"
    envline OS_SERVICE_USER_DOMAIN default
    envline OS_SERVICE_PASSWORD_FILE "$SECRET_DIR/alliance.password"
    for k in OS_SERVICE_USER_ID OS_PROJECT_ALPHA OS_PROJECT_BETA OS_PROJECT_GAMMA \
        OS_PROJECT_SERVICE OS_ROLE_MEMBER_ID OS_ROLE_READER_ID; do
        envline "$k" "${P[$k]}"
    done
    envline OS_IMAGE_SERVER_URL "$HTTP_URL"
    envline OS_IMAGE_SERVER_DIR "$IMG_DIR"
    envline OS_RUN_DIR "$RUN"
    envline OS_PIDS_FILE "$PIDS_FILE"
) >"$TMP_ENV"
mv "$TMP_ENV" "$ENV_FILE"

UP_OK=1
T_END=$EPOCHREALTIME
say "Keystone $KEYSTONE_VERSION and Glance $GLANCE_VERSION ($SERIES)"
say "Keystone        $KEYSTONE_URL (pid $KS_PID)"
say "Glance keystone $GK_URL (pid $GK_PID)"
say "Glance trusted  $GT_URL (pid $GT_PID)"
say "image server    $HTTP_URL (pid $HTTP_PID, serving $IMG_DIR)"
say "env file        $ENV_FILE   (logs under $RUN)"
say "start-up phases: ${PHASES[*]} warm-up-done +$(elapsed "$T_INSTALL1" "$T_END")s"
say "timing: install $(elapsed "$T_INSTALL0" "$T_INSTALL1") s ($INSTALL_NOTE), start-up $(elapsed "$T_INSTALL1" "$T_END") s, total $(elapsed "$T0" "$T_END") s"
