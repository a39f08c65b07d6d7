#!/usr/bin/env bash
# Install (cached) and start real OpenStack Keystone and Glance of one release on 127.0.0.1
# for the alliance-glance test suite. See scripts/openstack/README.md.
#
#   scripts/openstack/up.sh [--release N] [--layout L]
#       N: 33 (default), 31 or 28 (releases/N/)
#       L: gunicorn (default): Keystone and each Glance on a port of its own, under gunicorn;
#          devstack: Keystone and the keystone-flavor Glance under uwsgi behind Apache at
#          /identity and /image of one port, as DevStack lays them out (needs uwsgi pinned in
#          releases/N/requirements.txt - 33 has it - and Debian's apache2 and
#          libapache2-mod-proxy-uwsgi)
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
LAYOUT=gunicorn
while (($#)); do
    case $1 in
    --release) RELEASE="${2:?--release needs a value}"; shift 2 ;;
    --release=*) RELEASE="${1#--release=}"; shift ;;
    --layout) LAYOUT="${2:?--layout needs a value}"; shift 2 ;;
    --layout=*) LAYOUT="${1#--layout=}"; shift ;;
    *) printf 'up.sh: unknown argument %s (usage: up.sh [--release N] [--layout gunicorn|devstack])\n' "$1" >&2; exit 2 ;;
    esac
done
case $LAYOUT in
gunicorn | devstack) ;;
*) printf 'up.sh: ERROR: unknown layout %s (gunicorn or devstack)\n' "$LAYOUT" >&2; exit 2 ;;
esac
RELEASE_DIR="$HERE/releases/$RELEASE"
if [[ ! -f $RELEASE_DIR/release.env ]]; then
    printf 'up.sh: ERROR: no release %s (known: %s)\n' "$RELEASE" "$(cd "$HERE/releases" && echo *)" >&2
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
    tried="$(printf '%s, ' "${seen[@]}")"
    die "Python >= 3.11 is required (glance 33.0.0 and keystone 30.0.0 need it; one interpreter serves every release); tried: ${tried%, }. Install one, or set OS_PYTHON=/path/to/python3.11."
fi
"$PY" -c 'import venv, ensurepip' 2>/dev/null ||
    die "$PY lacks the venv/ensurepip modules (on Debian: apt-get install python3-venv)"
PY_VERSION="$("$PY" -c 'import sys; print(sys.version.split()[0])')"
for tool in curl qemu-img setsid flock awk sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' is required but not found (qemu-img: apt-get install qemu-utils)"
done

# The devstack layout: Debian's apache2 (run by this script with a configuration folder of
# its own under the run folder; the system's Apache configuration is never read or touched,
# only its module files are loaded), mod_proxy_uwsgi, and uwsgi from the release's venv.
APACHE_BIN="${OS_APACHE_BIN:-/usr/sbin/apache2}"
APACHE_MODS_AVAILABLE="${OS_APACHE_MODS_AVAILABLE:-/etc/apache2/mods-available}"
APACHE_AS=()
APACHE_USER="$(id -un)"
if [[ $LAYOUT == devstack ]]; then
    grep -q '^pyuwsgi==' "$REQUIREMENTS" ||
        die "layout devstack serves Keystone and Glance with uwsgi, which $REQUIREMENTS does not pin (release 33 does)"
    [[ -x $APACHE_BIN ]] ||
        die "layout devstack needs Apache at $APACHE_BIN (apt-get install apache2 libapache2-mod-proxy-uwsgi; or set OS_APACHE_BIN)"
    for mod in mpm_event authz_core env proxy proxy_http proxy_uwsgi; do
        [[ -f $APACHE_MODS_AVAILABLE/$mod.load ]] ||
            die "layout devstack needs Apache's $mod module ($APACHE_MODS_AVAILABLE/$mod.load; apt-get install apache2 libapache2-mod-proxy-uwsgi)"
    done
    # Apache runs unprivileged: as root, as nobody (setpriv, util-linux); else as the user.
    if ((EUID == 0)); then
        command -v setpriv >/dev/null 2>&1 || die "'setpriv' (util-linux) is required to run Apache as nobody"
        APACHE_USER=nobody
        APACHE_AS=(setpriv --reuid=nobody --regid="$(id -gn nobody)" --clear-groups)
    fi
fi

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
if [[ $LAYOUT == devstack && ! -x $VENV/bin/uwsgi ]]; then
    die "layout devstack: $VENV/bin/uwsgi is missing (pyuwsgi is pinned in $REQUIREMENTS; pip log: $CACHE/pip-install.log)"
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
if [[ $LAYOUT == devstack ]]; then
    # DevStack's layout: one Apache port (KS_PORT) proxies /identity to Keystone's uwsgi
    # (a unix socket, mod_proxy_uwsgi) and /image to Glance's uwsgi (http-socket on GK_PORT,
    # mod_proxy_http): lib/keystone's write_uwsgi_config and lib/glance's
    # write_local_uwsgi_http_config. The catalog holds DevStack's KEYSTONE_SERVICE_URI
    # (.../identity) and GLANCE_URL (.../image).
    APACHE_URL="http://127.0.0.1:$KS_PORT"
    KS_BASE="$APACHE_URL/identity"
    GK_URL="$APACHE_URL/image"
    UWSGI_SOCKET_DIR="$RUN/uwsgi"
    KS_SOCKET="$UWSGI_SOCKET_DIR/keystone-api.socket"
    # A unix socket's path holds at most 107 bytes.
    ((${#KS_SOCKET} <= 100)) || die "the checkout's path is too long for a unix socket under it ($KS_SOCKET)"
else
    KS_BASE="http://127.0.0.1:$KS_PORT"
    GK_URL="http://127.0.0.1:$GK_PORT"
fi
KEYSTONE_URL="$KS_BASE/v3"
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
    "NO_PROXY=127.0.0.1,localhost" "no_proxy=127.0.0.1,localhost")

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

# write_uwsgi_ini FILE MODULE KIND ADDRESS: a uwsgi configuration with the options, in the
# order, DevStack's lib/apache writes them. KIND socket (write_uwsgi_config: uwsgi's own
# protocol on a unix socket, for Apache's mod_proxy_uwsgi, as Keystone is served) or
# http-socket (write_local_uwsgi_http_config: HTTP on a local port, for mod_proxy_http, as
# Glance is served: uwsgi's protocol drops chunked request bodies). Workers: DevStack's
# API_WORKERS, max(2, cores / 4).
write_uwsgi_ini() {
    local file=$1 module=$2 kind=$3 address=$4
    {
        printf '# Generated by scripts/openstack/up.sh as DevStack'"'"'s lib/apache writes it.\n'
        printf '[uwsgi]\n'
        printf 'module = %s\n' "$module"
        if [[ $kind == http-socket ]]; then printf 'http-socket = %s\n' "$address"; fi
        printf 'processes = %s\n' "$API_WORKERS"
        printf 'master = true\ndie-on-term = true\nexit-on-reload = false\n'
        printf 'worker-reload-mercy = %s\n' "$WORKER_TIMEOUT"
        printf 'enable-threads = true\n'
        # uwsgi from pip (pyuwsgi) has both built in: it says it cannot load them, as
        # the uwsgi DevStack installs with pip on other distributions does, and goes on.
        printf 'plugins = http,python3\n'
        printf 'thunder-lock = true\n'
        printf 'hook-master-start = unix_signal:15 gracefully_kill_them_all\n'
        printf 'buffer-size = 65535\n'
        printf 'add-header = Connection: close\n'
        printf 'lazy-apps = true\n'
        if [[ $kind == http-socket ]]; then
            printf 'chmod-socket = 666\nhttp-raw-body = true\nhttp-chunked-input = true\n'
            printf 'http-auto-chunked = true\nhttp-keepalive = false\nsocket-timeout = 30\n'
        fi
        printf 'start-time = %%t\n'
        if [[ $kind == socket ]]; then printf 'socket = %s\nchmod-socket = 666\n' "$address"; fi
    } >"$file"
}
API_WORKERS=$(($(nproc) / 4 < 2 ? 2 : $(nproc) / 4))
WORKER_TIMEOUT=80

# The keystone-flavor Glance as DevStack's lib/glance configures it (configure_glance,
# configure_keystone_authtoken_middleware), served by uwsgi on a local port behind Apache's
# /image. What differs from DevStack, and why: SQLite instead of MySQL; no memcached and no
# message queue (DevStack runs both; nothing here reads Glance's notifications); token_cache_time
# = -1 (a revoked token refused at once, as the scenarios need); web-download filtered to the
# local image server (DevStack leaves Glance's default: ports 80 and 443 of any host); the
# import staging area in the instance's folder (DevStack leaves /tmp/staging/); no unified
# limits (DevStack's GLANCE_ENABLE_QUOTAS).
write_glance_devstack() { # NAME UWSGI_PORT
    local name=$1 port=$2 dir="$RUN/$1"
    mkdir -p "$dir/images" "$dir/staging" "$dir/cache" "$dir/locks"
    # DevStack copies the paste file Glance ships ($GLANCE_DIR/etc/glance-api-paste.ini).
    cp "$VENV/etc/glance/glance-api-paste.ini" "$dir/glance-api-paste.ini"
    (
        umask 077
        cat >"$dir/glance-api.conf" <<EOF
# Generated by scripts/openstack/up.sh (layout devstack) for $name, Glance $GLANCE_VERSION.
[DEFAULT]
debug = false
use_syslog = false
image_cache_dir = $dir/cache/
image_cache_driver = centralized_db
show_image_direct_url = false
show_multiple_locations = false
public_endpoint = $GK_URL
worker_self_reference_url = http://127.0.0.1:$port
enforce_secure_rbac = true
node_staging_uri = file://$dir/staging

[database]
connection = sqlite:///$dir/glance.sqlite?timeout=30

[oslo_concurrency]
lock_path = $dir/locks

[paste_deploy]
flavor = keystone+cachemanagement
config_file = $dir/glance-api-paste.ini

[keystone_authtoken]
auth_type = password
interface = public
auth_url = $KS_BASE
username = glance
password = $GLANCE_PASSWORD
user_domain_name = Default
project_name = service
project_domain_name = Default
www_authenticate_uri = $KS_BASE
token_cache_time = -1

[glance_store]
filesystem_store_datadir = $dir/images/

[image_format]
require_image_format_match = true

[cors]
allowed_origin = $APACHE_URL

[wsgi]
python_interpreter = $VENV/bin/python

[oslo_policy]
enforce_new_defaults = true

[import_filtering_opts]
# Brackets required: without them every web-download answers 400 "does not pass filtering".
allowed_schemes = [http, https]
allowed_hosts = [127.0.0.1]
allowed_ports = [80, 443, $HTTP_PORT]
EOF
    )
    write_uwsgi_ini "$dir/glance-uwsgi.ini" "$GLANCE_WSGI_APP" http-socket "127.0.0.1:$port"
}

if [[ $LAYOUT == devstack ]]; then
    write_glance_devstack glance-keystone "$GK_PORT"
    GK_SERVE=("$VENV/bin/uwsgi" --procname-prefix glance-api --ini "$RUN/glance-keystone/glance-uwsgi.ini")
else
    write_glance glance-keystone "$GK_PORT" keystone
    GK_SERVE=("$VENV/bin/gunicorn")
fi
write_glance glance-trusted "$GT_PORT" trusted

# Each Glance runs as one recorded process: glance-manage db_sync (2-3 s), the SQLite
# file switched to WAL, then the same process execs gunicorn (no arguments; it reads
# ./gunicorn.conf.py), in the background while Keystone is being set up. WAL because
# with SQLite's default journal an image-data upload that ran while an import task
# wrote failed at once with "database is locked" (Glance answered 500; seen once in CI).
# PYTHONPATH: glance-sqlite/sitecustomize.py makes Glance's SQLite transactions queue for
# the write lock instead of failing with "database is locked" (see the file).
for g in glance-keystone glance-trusted; do
    serve=("$VENV/bin/gunicorn")
    [[ $g == glance-keystone ]] && serve=("${GK_SERVE[@]}")
    # shellcheck disable=SC2016 # expanded by the inner bash, from its arguments
    start "$g" "$RUN/$g" "$RUN/$g/glance.log" \
        env "OS_GLANCE_CONFIG_DIR=$RUN/$g" "PYTHONPATH=$HERE/glance-sqlite" bash -c \
        'nice -n 19 "$1" --config-file "$2" db_sync \
            && "$3" -c "import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute(\"PRAGMA journal_mode=WAL\")" "$4" \
            && exec "${@:5}"' glance-db-sync-then-serve \
        "$VENV/bin/glance-manage" "$RUN/$g/glance-api.conf" \
        "$VENV/bin/python" "$RUN/$g/glance.sqlite" "${serve[@]}"
    case $g in
    glance-keystone) GK_PID=$LAST_PID ;;
    glance-trusted) GT_PID=$LAST_PID ;;
    esac
done

# ---------------------------------------------------------------------------------------
# 5b. Layout devstack: Apache in front of Keystone and Glance on one port, with a
#     configuration folder of its own laid out as Debian's /etc/apache2 (mods-enabled,
#     sites-available, sites-enabled), holding the sites DevStack's lib/apache writes:
#     keystone-api.conf (write_uwsgi_config) and glance-api.conf
#     (write_local_uwsgi_http_config), enabled as a2ensite enables them.
# ---------------------------------------------------------------------------------------
APACHE_PID=""
if [[ $LAYOUT == devstack ]]; then
    APACHE_DIR="$RUN/apache"
    mkdir -p "$APACHE_DIR/mods-enabled" "$APACHE_DIR/sites-available" "$APACHE_DIR/sites-enabled" \
        "$APACHE_DIR/logs" "$APACHE_DIR/run" "$UWSGI_SOCKET_DIR"
    # Debian's default modules that these sites use, and those DevStack enables for them
    # (a2enmod proxy proxy_uwsgi proxy_http): links to the packaged .load files.
    for mod in mpm_event authz_core env proxy proxy_http proxy_uwsgi; do
        ln -s "$APACHE_MODS_AVAILABLE/$mod.load" "$APACHE_DIR/mods-enabled/$mod.load"
    done
    cat >"$APACHE_DIR/apache2.conf" <<EOF
# Generated by scripts/openstack/up.sh (layout devstack): Debian's apache2.conf, reduced
# to what these sites need, with every path in this folder.
ServerRoot "$APACHE_DIR"
DefaultRuntimeDir "$APACHE_DIR/run"
PidFile "$APACHE_DIR/run/apache2.pid"
ServerName 127.0.0.1
Listen 127.0.0.1:$KS_PORT
Timeout 300
KeepAlive On
MaxKeepAliveRequests 100
KeepAliveTimeout 5
HostnameLookups Off
ErrorLog "$APACHE_DIR/logs/error.log"
LogLevel warn
IncludeOptional "$APACHE_DIR/mods-enabled/*.load"
LogFormat "%h %l %u %t \"%r\" %>s %O \"%{Referer}i\" \"%{User-Agent}i\" %D" combined_us
CustomLog "$APACHE_DIR/logs/access.log" combined_us
<Directory />
    Options FollowSymLinks
    AllowOverride None
    Require all denied
</Directory>
IncludeOptional "$APACHE_DIR/sites-enabled/*.conf"
EOF
    # Byte for byte what DevStack's functions write (the trailing space included).
    printf 'ProxyPass "/identity" "unix:%s|uwsgi://uwsgi-uds-keystone-api" retry=0 acquire=1 \n' \
        "$KS_SOCKET" >"$APACHE_DIR/sites-available/keystone-api.conf"
    printf 'KeepAlive Off\nSetEnv proxy-sendchunked 1\nProxyPass "/image" "http://127.0.0.1:%s" retry=0 acquire=1 \n' \
        "$GK_PORT" >"$APACHE_DIR/sites-available/glance-api.conf"
    for site in keystone-api glance-api; do
        ln -s "../sites-available/$site.conf" "$APACHE_DIR/sites-enabled/$site.conf"
    done
    if ((EUID == 0)); then
        chown "$APACHE_USER" "$APACHE_DIR/logs" "$APACHE_DIR/run"
    fi
    "${APACHE_AS[@]}" test -x "$UWSGI_SOCKET_DIR" ||
        die "Apache runs as $APACHE_USER, who cannot reach $UWSGI_SOCKET_DIR (a folder on the way is not searchable by others)"
    if ! "${APACHE_AS[@]}" "$APACHE_BIN" -f "$APACHE_DIR/apache2.conf" -t >"$APACHE_DIR/logs/configtest.log" 2>&1; then
        tail_log "$APACHE_DIR/logs/configtest.log"
        die "Apache refuses its configuration ($APACHE_DIR/apache2.conf)"
    fi
    start apache "$APACHE_DIR" "$APACHE_DIR/logs/apache2.out" \
        "${APACHE_AS[@]}" "$APACHE_BIN" -f "$APACHE_DIR/apache2.conf" -DFOREGROUND
    APACHE_PID=$LAST_PID
fi

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
if [[ $LAYOUT == devstack ]]; then
    # What DevStack's configure_keystone adds. Left out, and why: memcached caching (no
    # memcached here), [security_compliance] lockout after 2 failed logins (the differential
    # test sends wrong passwords on purpose and would lock its user out), the message queue.
    cat >>"$KS_DIR/keystone.conf" <<EOF

# DevStack's configure_keystone (layout devstack):
[DEFAULT]
public_endpoint = $KS_BASE
max_token_size = 16384

[identity]
password_hash_rounds = 4

[api]
response_validation = error

[oslo_policy]
policy_file = policy.yaml
enforce_new_defaults = true
EOF
    mkdir -p "$UWSGI_SOCKET_DIR"
    write_uwsgi_ini "$KS_DIR/keystone-uwsgi-public.ini" "$KEYSTONE_WSGI_APP" socket "$KS_SOCKET"
fi
[[ $LAYOUT == devstack ]] || cat >"$KS_DIR/gunicorn.conf.py" <<EOF
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
# The devstack layout registers what DevStack's bootstrap_keystone does: the public
# endpoint only, KEYSTONE_SERVICE_URI (.../identity, no version). (keystone-manage skips
# an interface whose variable is empty.)
BOOTSTRAP_PUBLIC="$KEYSTONE_URL" BOOTSTRAP_OTHERS="$KEYSTONE_URL"
[[ $LAYOUT == devstack ]] && BOOTSTRAP_PUBLIC="$KS_BASE" BOOTSTRAP_OTHERS=""
# shellcheck disable=SC2016 # expanded by the inner bash, from its arguments and environment
OS_BOOTSTRAP_PASSWORD="$ADMIN_PASSWORD" OS_BOOTSTRAP_USERNAME="$ADMIN_USER" \
    OS_BOOTSTRAP_PROJECT_NAME=admin OS_BOOTSTRAP_ROLE_NAME=admin \
    OS_BOOTSTRAP_SERVICE_NAME=keystone OS_BOOTSTRAP_REGION_ID="$REGION" \
    OS_BOOTSTRAP_ADMIN_URL="$BOOTSTRAP_OTHERS" OS_BOOTSTRAP_PUBLIC_URL="$BOOTSTRAP_PUBLIC" \
    OS_BOOTSTRAP_INTERNAL_URL="$BOOTSTRAP_OTHERS" \
    start keystone-db-sync-bootstrap "$KS_DIR" "$KS_DIR/manage-db.log" \
    bash -c '"$@" db_sync && "$@" bootstrap && "$VENV_PYTHON" -c "$WAL" "$KS_DB"' \
    keystone-db-sync-bootstrap "${KM[@]}"
KS_SETUP_PIDS=("$LAST_PID")
KS_SETUP_LOGS=("$KS_DIR/manage-db.log")
# shellcheck disable=SC2016 # expanded by the inner bash, from its arguments and environment
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
if [[ $LAYOUT == devstack ]]; then
    # As DevStack's start_keystone runs it (behind Apache's /identity, started above).
    start keystone "$KS_DIR" "$KS_DIR/keystone.log" \
        env "OS_KEYSTONE_CONFIG_DIR=$KS_DIR" "$VENV/bin/uwsgi" --procname-prefix keystone \
        --ini "$KS_DIR/keystone-uwsgi-public.ini"
else
    # Keystone: gunicorn with no arguments, from the folder holding gunicorn.conf.py.
    start keystone "$KS_DIR" "$KS_DIR/keystone.log" \
        env "OS_KEYSTONE_CONFIG_DIR=$KS_DIR" "$VENV/bin/gunicorn"
fi
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
if [[ $LAYOUT == devstack ]]; then
    # Apache serves no document: 403 for / once it listens (<Directory /> denies all).
    wait_http apache "$APACHE_URL/" 403 "$APACHE_PID" "$APACHE_DIR/logs/error.log"
fi
wait_http keystone "$KEYSTONE_URL" 200 "$KS_PID" "$KS_DIR/keystone.log"
phase "keystone-up"

PROVISION_OUT="$RUN/provision.out"
if ! "${SVC_ENV[@]}" OS_KEYSTONE_URL="$KEYSTONE_URL" OS_GLANCE_KEYSTONE_URL="$GK_URL" \
    OS_REGION="$REGION" OS_ADMIN_USER="$ADMIN_USER" OS_LAYOUT="$LAYOUT" \
    OS_ADMIN_PASSWORD_FILE="$SECRET_DIR/admin.password" \
    OS_SERVICE_PASSWORD_FILE="$SECRET_DIR/alliance.password" \
    OS_GLANCE_SERVICE_PASSWORD_FILE="$SECRET_DIR/glance.password" \
    "$PY" -B "$HERE/provision.py" >"$PROVISION_OUT" 2>"$RUN/provision.err"; then
    redact <"$RUN/provision.err" >&2
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
    envline OS_LAYOUT "$LAYOUT"
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
    if [[ $LAYOUT == devstack ]]; then
        envline OS_APACHE_URL "$APACHE_URL"
        envline OS_APACHE_DIR "$APACHE_DIR"
        envline OS_APACHE_PID_FILE "$APACHE_DIR/run/apache2.pid"
        envline OS_APACHE_USER "$APACHE_USER"
        envline OS_APACHE_MODS_AVAILABLE "$APACHE_MODS_AVAILABLE"
        envline OS_VENV "$VENV"
        # DevStack's own accounts (create_keystone_accounts); their password is the admin's.
        for k in OS_DEMO_PROJECT OS_ALT_DEMO_PROJECT OS_INVISIBLE_TO_ADMIN_PROJECT \
            OS_DEMO_USER_ID OS_ALT_DEMO_MEMBER_USER_ID OS_DEMO_READER_USER_ID; do
            envline "$k" "${P[$k]}"
        done
        envline OS_DEMO_PASSWORD_FILE "$SECRET_DIR/admin.password"
    fi
) >"$TMP_ENV"
mv "$TMP_ENV" "$ENV_FILE"

UP_OK=1
T_END=$EPOCHREALTIME
say "Keystone $KEYSTONE_VERSION and Glance $GLANCE_VERSION ($SERIES), layout $LAYOUT"
[[ -n $APACHE_PID ]] && say "Apache          $APACHE_URL (pid $APACHE_PID, as $APACHE_USER; /identity, /image)"
say "Keystone        $KEYSTONE_URL (pid $KS_PID)"
say "Glance keystone $GK_URL (pid $GK_PID)"
say "Glance trusted  $GT_URL (pid $GT_PID)"
say "image server    $HTTP_URL (pid $HTTP_PID, serving $IMG_DIR)"
say "env file        $ENV_FILE   (logs under $RUN)"
say "start-up phases: ${PHASES[*]} warm-up-done +$(elapsed "$T_INSTALL1" "$T_END")s"
say "timing: install $(elapsed "$T_INSTALL0" "$T_INSTALL1") s ($INSTALL_NOTE), start-up $(elapsed "$T_INSTALL1" "$T_END") s, total $(elapsed "$T0" "$T_END") s"
