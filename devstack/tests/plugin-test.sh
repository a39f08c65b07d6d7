#!/usr/bin/env bash
# The alliance-glance DevStack plugin without DevStack. Needs the services of
#   scripts/openstack/up.sh --release 33 --layout devstack
# (Keystone and Glance behind Apache at /identity and /image, as DevStack serves them) and the
# test build's binary (target/debug/alliance-glance; ALLIANCE_GLANCE_TEST_BINARY to name
# another). scripts/test.sh runs it. What it does:
#
#  1. Runs the plugin's phases as stack.sh does (devstack/settings, then plugin.sh stack
#     install, post-config, extra), the settings a local.conf would give (the prebuilt binary,
#     free ports, the copy_from allowance of the local image server), with stand-ins for
#     DevStack's functions (devstack/tests/standins.sh) that record what they were asked and
#     do it: users, roles, the catalog in the real Keystone; run_process starts the command
#     line as systemd would; the Apache site in up.sh's Apache.
#  2. Asserts on the recorded calls, the Keystone state, the files written (the facade's
#     configuration, the password file's mode, the Apache site).
#  3. Checks the facade through Apache with curl, then runs the scenario suite against it
#     (cargo test --test scenarios external_keystone: through the Apache path, keystone mode,
#     each call with the token of a user of its project).
#  4. unstack, then clean (each as unstack.sh and clean.sh run them): the process is gone, then
#     the site, the configuration and the binary.
#  5. The other paths of the phases: tls-proxy (the published URL https, Keystone and Glance
#     reached over http), the cargo build, no cargo at all.
#
# It fails - never skips - when the services are not there. It leaves the cloud as it found
# it: the Keystone user and catalog entry it made are deleted at the end.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
ENV_FILE="${ALLIANCE_OPENSTACK_ENV:-$REPO/.cache/openstack/33/env}"
BINARY="${ALLIANCE_GLANCE_TEST_BINARY:-$REPO/target/debug/alliance-glance}"
WORK="$REPO/.cache/devstack-plugin-test"
T0=$SECONDS

say() { printf 'plugin-test: %s\n' "$*"; }
fail() { printf 'plugin-test: FAILED: %s\n' "$*" >&2; exit 1; }

[[ -f $ENV_FILE ]] ||
    fail "no $ENV_FILE: start the services with scripts/openstack/up.sh --release 33 --layout devstack"
set -a
# shellcheck source=/dev/null
. "$ENV_FILE"
set +a
[[ ${OS_LAYOUT:-} == devstack ]] ||
    fail "$ENV_FILE describes the ${OS_LAYOUT:-gunicorn} layout; the plugin needs up.sh --layout devstack"
[[ -x $BINARY ]] || fail "no $BINARY: build the tests first (cargo test --no-run)"
for tool in curl setsid; do
    command -v "$tool" >/dev/null 2>&1 || fail "'$tool' is required"
done

rm -rf "$WORK"
mkdir -p "$WORK"
chmod 700 "$WORK"
mkdir -p "$WORK/run" "$WORK/etc" "$WORK/bin"
export STANDIN_DIR="$HERE" STANDIN_RUN_DIR="$WORK/run" STANDIN_RECORD="$WORK/calls"
export STANDIN_PY="$OS_VENV/bin/python"
CURL=(curl -sS --noproxy '*' --max-time 30)
APACHE_URL=$OS_APACHE_URL

# --- What DevStack would have defined by the time it sources the plugin -------------------
# stackrc, lib/keystone, lib/glance, lib/apache, for a DevStack whose SERVICE_HOST is the
# Apache of up.sh (DevStack's is host:80; here a free port of 127.0.0.1).
read -r FACADE_PORT ADMIN_PORT < <("$STANDIN_PY" - <<'EOF'
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
)
(umask 077; "$STANDIN_PY" -c 'import secrets; print(secrets.token_urlsafe(24))' >"$WORK/service.password")
# shellcheck disable=SC2034 # read by the plugin and the stand-ins, sourced after it
devstack_globals() {
    STACK_USER=$(id -un)
    DEST=$WORK/opt-stack
    DATA_DIR=$DEST/data
    SERVICE_HOST=${APACHE_URL#http://}
    SERVICE_LOCAL_HOST=127.0.0.1
    SERVICE_PROTOCOL=http
    SERVICE_TIMEOUT=60
    REGION_NAME=$OS_REGION
    SERVICE_DOMAIN_NAME=Default
    SERVICE_PROJECT_NAME=service
    SERVICE_PASSWORD=$(cat "$WORK/service.password")
    KEYSTONE_SERVICE_HOST=$SERVICE_HOST
    KEYSTONE_SERVICE_URI=${OS_KEYSTONE_URL%/v3}
    GLANCE_SERVICE_HOST=$SERVICE_HOST
    GLANCE_URL=$OS_GLANCE_KEYSTONE_URL
    APACHE_CONF_DIR=$OS_APACHE_DIR/sites-available
    ENABLED_SERVICES=key,g-api
    DISABLED_SERVICES=""
    # local.conf: the plugin's settings for this test.
    ALLIANCE_GLANCE_BINARY=$BINARY
    ALLIANCE_GLANCE_BIN_DIR=$WORK/bin
    ALLIANCE_GLANCE_CONF_DIR=$WORK/etc/alliance-glance
    ALLIANCE_GLANCE_PORT=$FACADE_PORT
    ALLIANCE_GLANCE_ADMIN_PORT=$ADMIN_PORT
    ALLIANCE_GLANCE_COPY_FROM_ALLOW_CIDRS=127.0.0.1/32
}
# run_devstack MODE [PHASE...]: a fresh shell, as stack.sh / unstack.sh / clean.sh: DevStack's
# definitions (the stand-ins), local.conf (the globals above, then $LOCAL_CONF: more lines of
# it), the plugin's settings, then plugin.sh once per phase.
LOCAL_CONF=""
run_devstack() {
    local mode=$1
    shift
    (
        # shellcheck source=standins.sh
        . "$HERE/standins.sh"
        devstack_globals
        eval "$LOCAL_CONF"
        # shellcheck source=../settings
        . "$REPO/devstack/settings"
        if (($#)); then
            for phase in "$@"; do
                # shellcheck source=../plugin.sh
                . "$REPO/devstack/plugin.sh" "$mode" "$phase"
            done
        else
            # shellcheck source=../plugin.sh
            . "$REPO/devstack/plugin.sh" "$mode"
        fi
    )
}

PASSED=0
FAILED=0
check() { # DESCRIPTION WANT GOT
    if [[ $3 == "$2" ]]; then
        PASSED=$((PASSED + 1))
        printf 'ok    %s\n' "$1"
    else
        FAILED=$((FAILED + 1))
        printf 'FAIL  %s\n--- expected:\n%s\n--- got:\n%s\n---\n' "$1" "$2" "$3"
    fi
}
# q ARGS...: one recorded line, as the stand-ins write it.
q() {
    local line
    printf -v line '%q ' "$@"
    printf '%s\n' "${line% }"
}
keystone() { "$STANDIN_PY" -B "$HERE/keystone.py" "$@"; }
http_code() { "${CURL[@]}" -o /dev/null -w '%{http_code}' "$@" 2>/dev/null || echo 000; }
facade_log_tail() {
    printf -- '--- last lines of the facade log ---\n' >&2
    tail -n 30 "$WORK/run/alliance-glance.log" >&2 || true
}

# Whatever happens: the facade stopped, the site gone from up.sh's Apache, the Keystone user
# and catalog entry deleted.
cleanup() {
    local rc=$?
    if [[ -f $WORK/run/alliance-glance.pid ]]; then
        # shellcheck source=standins.sh
        (. "$HERE/standins.sh"; STANDIN_DEPTH=1 ENABLED_SERVICES=alliance-glance; stop_process alliance-glance) || true
    fi
    if [[ -e $OS_APACHE_DIR/sites-enabled/alliance-glance.conf || -e $OS_APACHE_DIR/sites-available/alliance-glance.conf ]]; then
        rm -f "$OS_APACHE_DIR/sites-enabled/alliance-glance.conf" "$OS_APACHE_DIR/sites-available/alliance-glance.conf"
        # shellcheck source=standins.sh
        (. "$HERE/standins.sh"; STANDIN_DEPTH=1; restart_apache_server) || true
    fi
    keystone delete alliance-glance Default alliance-image || rc=1
    exit "$rc"
}
trap cleanup EXIT

# --- 1. stack.sh: install, post-config, extra ---------------------------------------------
say "stack: install, post-config, extra"
: >"$STANDIN_RECORD"
if ! run_devstack stack install post-config extra >"$WORK/stack.log" 2>&1; then
    cat "$WORK/stack.log" >&2
    facade_log_tail
    fail "the plugin's stack phases failed"
fi

# --- 2. What the phases asked, and what they left ------------------------------------------
CONF_DIR=$WORK/etc/alliance-glance
CONF=$CONF_DIR/alliance-glance.toml
FACADE="http://127.0.0.1:$FACADE_PORT"
SERVICE_PROJECT_ID=$OS_PROJECT_SERVICE
want="$(
    # install
    q sudo install -d -m 0755 "$WORK/bin"
    q sudo install -m 0755 "$BINARY" "$WORK/bin/alliance-glance"
    # post-config: the service user and exactly its roles, the catalog entry, the files
    q get_or_create_user alliance-glance '<password>' Default
    q get_or_add_user_project_role service alliance-glance service Default Default
    for project in demo alt_demo; do
        for role in member reader; do
            q get_or_add_user_project_role "$role" alliance-glance "$project" Default Default
        done
    done
    q get_or_create_project service Default
    q get_or_create_service alliance-glance alliance-image 'Alliance Glance API v1 (alliance-glance)'
    q get_or_create_endpoint alliance-image "$OS_REGION" "$APACHE_URL/alliance-image"
    q sudo install -d -o "$(id -un)" -m 0755 "$CONF_DIR"
    # extra
    q run_process alliance-glance "$WORK/bin/alliance-glance serve --config $CONF"
    q write_local_proxy_http_config alliance-glance "$FACADE" /alliance-image
)"
check "stack: the calls the plugin made, in order" "$want" "$(cat "$STANDIN_RECORD")"
check "install: the binary installed is the one named" "$(sha256sum <"$BINARY")" "$(sha256sum <"$WORK/bin/alliance-glance")"

USER_ID=$(keystone user-id alliance-glance Default)
check "keystone: the service user's roles, and no other" \
    "$(printf '%s\n' 'member alt_demo' 'member demo' 'reader alt_demo' 'reader demo' 'service service')" \
    "$(keystone assignments "$USER_ID")"
check "keystone: the catalog entry" "public $OS_REGION $APACHE_URL/alliance-image" "$(keystone endpoints alliance-image)"
check "password file: mode 600, the stack user's" "600 $(id -un)" "$(stat -c '%a %U' "$CONF_DIR/service-user.password")"
check "password file: DevStack's SERVICE_PASSWORD" "$(cat "$WORK/service.password")" "$(cat "$CONF_DIR/service-user.password")"
want="$(cat <<EOF
# Written by the alliance-glance DevStack plugin (stack post-config) for this cloud;
# rewritten at every stack.sh: change the ALLIANCE_GLANCE_* settings in local.conf.
listen = "127.0.0.1:$FACADE_PORT"

[admin]
listen = "127.0.0.1:$ADMIN_PORT"

[client]
trusted_proxies = ["127.0.0.1/32"]
x_forwarded_for = true

[namespaces.devstack]

[namespaces.devstack.auth]
type = "keystone"
auth_url = "$OS_KEYSTONE_URL"
username = "alliance-glance"
user_domain_name = "Default"
password_file = "$CONF_DIR/service-user.password"
region_name = "$OS_REGION"
interface = "public"
service_project_id = "$SERVICE_PROJECT_ID"

[namespaces.devstack.copy_from]
allow_cidrs = ["127.0.0.1/32"]

[[callers]]
name = "keystone-users"
keystone_token = true
namespaces = ["devstack"]
environments = "*"
EOF
)"
check "post-config: the facade's configuration (keystone mode, Glance from the catalog)" "$want" "$(cat "$CONF")"
check "post-config: the configuration holds no password" 0 "$(grep -c -F -e "$(cat "$WORK/service.password")" "$CONF" || true)"
check "apache: the site write_local_proxy_http_config wrote" \
    "$(printf 'KeepAlive Off\nSetEnv proxy-sendchunked 1\nProxyPass "/alliance-image" "%s" retry=0 acquire=1 ' "$FACADE")" \
    "$(cat "$OS_APACHE_DIR/sites-available/alliance-glance.conf")"
check "apache: the site enabled" "../sites-available/alliance-glance.conf" "$(readlink "$OS_APACHE_DIR/sites-enabled/alliance-glance.conf")"
check "apache: proxy_http enabled" "yes" "$([[ -e $OS_APACHE_DIR/mods-enabled/proxy_http.load ]] && echo yes)"
read -r FACADE_PID _ <"$WORK/run/alliance-glance.pid"
check "run_process: the process runs the command line asked" \
    "$WORK/bin/alliance-glance serve --config $CONF" "$(tr '\0' ' ' <"/proc/$FACADE_PID/cmdline" | sed 's/ $//')"

# --- 3. Through Apache, then the scenario suite ------------------------------------------
ALLIANCE="$APACHE_URL/alliance-image"
token_of() { # USER_ID PROJECT_ID: a project-scoped token (password: the admin's, as DevStack's users)
    (
        umask 077
        "$STANDIN_PY" - "$1" "$OS_DEMO_PASSWORD_FILE" "$2" >"$WORK/auth.json" <<'EOF'
import json, sys
user, pwfile, project = sys.argv[1:]
password = open(pwfile, encoding="utf-8").read().strip()
print(json.dumps({"auth": {"identity": {"methods": ["password"], "password": {"user": {
    "id": user, "password": password}}}, "scope": {"project": {"id": project}}}}))
EOF
    )
    "${CURL[@]}" -o /dev/null -D - -H 'Content-Type: application/json' \
        --data-binary @"$WORK/auth.json" "$OS_KEYSTONE_URL/auth/tokens" |
        awk -F': ' 'tolower($1) == "x-subject-token" { sub(/\r$/, "", $2); print $2 }'
    rm -f "$WORK/auth.json"
}
DEMO_TOKEN=$(token_of "$OS_DEMO_USER_ID" "$OS_DEMO_PROJECT")
READER_TOKEN=$(token_of "$OS_DEMO_READER_USER_ID" "$OS_DEMO_PROJECT")
[[ -n $DEMO_TOKEN && -n $READER_TOKEN ]] || fail "no token for DevStack's demo users"
ns=(-H 'X-Target-Ns: devstack' -H "X-Environment-Id: $OS_DEMO_PROJECT" -H 'Content-Type: application/json')
check "admin listener: /readyz" 200 "$(http_code "http://127.0.0.1:$ADMIN_PORT/readyz")"
check "through Apache: a list without a token (401)" 401 "$(http_code "${ns[@]}" "$ALLIANCE/images")"
check "through Apache: a list with demo's token (200)" 200 "$(http_code "${ns[@]}" -H "X-Auth-Token: $DEMO_TOKEN" "$ALLIANCE/images")"
check "through Apache: a create with demo_reader's token (403, reader only)" 403 \
    "$(http_code "${ns[@]}" -H "X-Auth-Token: $READER_TOKEN" -X POST --data '{"image": {"name": "plugin-test"}}' "$ALLIANCE/images")"
check "through Apache: a list with demo's token in alt_demo (403, another project)" 403 \
    "$(http_code -H 'X-Target-Ns: devstack' -H "X-Environment-Id: $OS_ALT_DEMO_PROJECT" -H "X-Auth-Token: $DEMO_TOKEN" "$ALLIANCE/images")"

say "the scenario suite against the plugin's facade, through $ALLIANCE"
SCENARIOS=(cargo test --locked --test scenarios -- --ignored external_keystone::)
if ! ALLIANCE_OPENSTACK_ENV="$ENV_FILE" ALLIANCE_EXTERNAL_FACADE_URL="$ALLIANCE" \
    ALLIANCE_EXTERNAL_NAMESPACE=devstack ALLIANCE_EXTERNAL_SERVICE_USER_ID="$USER_ID" \
    "${SCENARIOS[@]}" >"$WORK/scenarios.log" 2>&1; then
    cat "$WORK/scenarios.log"
    facade_log_tail
    check "the scenario suite against the plugin's facade" passed failed
else
    result=$(grep -o 'test result: .*' "$WORK/scenarios.log" | tail -1)
    # Every scenario the same filter lists passed (none listed is a failure too).
    listed=$("${SCENARIOS[@]}" --list 2>/dev/null | grep -c '^external_keystone::.*: test$' || true)
    ((listed > 0)) || listed="at least one scenario listed"
    check "the scenario suite against the plugin's facade: $result" "$listed" \
        "$(grep -c '^test external_keystone::.* ok$' "$WORK/scenarios.log")"
fi

# --- 4. unstack.sh, then clean.sh -----------------------------------------------------------
say "unstack"
: >"$STANDIN_RECORD"
run_devstack unstack >"$WORK/unstack.log" 2>&1 || { cat "$WORK/unstack.log" >&2; fail "unstack failed"; }
check "unstack: the calls" "$(q stop_process alliance-glance)" "$(cat "$STANDIN_RECORD")"
check "unstack: the process is gone" "" "$(ps -o stat= -p "$FACADE_PID" | grep -v '^Z' || true)"
check "unstack: Apache's path has no back end (503)" 503 "$(http_code "${ns[@]}" "$ALLIANCE/images")"

say "clean"
: >"$STANDIN_RECORD"
run_devstack clean >"$WORK/clean.log" 2>&1 || { cat "$WORK/clean.log" >&2; fail "clean failed"; }
want="$(
    q disable_apache_site alliance-glance
    q sudo rm -f "$OS_APACHE_DIR/sites-available/alliance-glance.conf"
    q sudo rm -rf "$CONF_DIR"
    q sudo rm -f "$WORK/bin/alliance-glance"
)"
check "clean: the calls" "$want" "$(cat "$STANDIN_RECORD")"
check "clean: site, configuration and binary gone" "none" \
    "$(ls "$OS_APACHE_DIR/sites-enabled/alliance-glance.conf" "$OS_APACHE_DIR/sites-available/alliance-glance.conf" \
        "$CONF_DIR" "$WORK/bin/alliance-glance" 2>/dev/null || echo none)"
# shellcheck source=standins.sh
(. "$HERE/standins.sh"; STANDIN_DEPTH=1; restart_apache_server)
check "clean: after Apache's next restart the path is Apache's own refusal (403, HTML)" "403 text/html" \
    "$("${CURL[@]}" -o /dev/null -w '%{http_code} %{content_type}' "${ns[@]}" "$ALLIANCE/images" | cut -d';' -f1)"
check "clean: Keystone and Glance still served" "200 401" \
    "$(http_code "$OS_KEYSTONE_URL") $(http_code "$OS_GLANCE_KEYSTONE_URL/v2/images")"

# --- 5. The other paths ---------------------------------------------------------------------
say "tls-proxy: post-config again (the accounts are there: nothing is created twice)"
mkdir -p "$WORK/bin-tls"
cp "$BINARY" "$WORK/bin-tls/alliance-glance"
: >"$STANDIN_RECORD"
# shellcheck disable=SC2016 # local.conf lines, expanded where run_devstack evaluates them
LOCAL_CONF='ENABLED_SERVICES+=,tls-proxy
ALLIANCE_GLANCE_BIN_DIR=$WORK/bin-tls
ALLIANCE_GLANCE_CONF_DIR=$WORK/etc/tls'
run_devstack stack post-config >"$WORK/tls.log" 2>&1 || { cat "$WORK/tls.log" >&2; fail "post-config with tls-proxy failed"; }
check "tls-proxy: the endpoint asked is https" \
    "$(q get_or_create_endpoint alliance-image "$OS_REGION" "https://${APACHE_URL#http://}/alliance-image")" \
    "$(grep '^get_or_create_endpoint' "$STANDIN_RECORD")"
check "tls-proxy: no second endpoint" "public $OS_REGION $APACHE_URL/alliance-image" "$(keystone endpoints alliance-image)"
check "tls-proxy: Keystone and Glance reached over http on DevStack's Apache" \
    "$(printf 'glance_url = "%s"\nauth_url = "%s"' "$OS_GLANCE_KEYSTONE_URL" "$OS_KEYSTONE_URL")" \
    "$(grep -E '^(glance_url|auth_url) = ' "$WORK/etc/tls/alliance-glance.toml")"

say "install with cargo (a stand-in cargo records the build and leaves a binary where cargo would)"
mkdir -p "$WORK/src"
: >"$STANDIN_RECORD"
# shellcheck disable=SC2016 # local.conf lines, expanded where run_devstack evaluates them
LOCAL_CONF='ALLIANCE_GLANCE_BINARY=""
ALLIANCE_GLANCE_SRC_DIR=$WORK/src
ALLIANCE_GLANCE_BIN_DIR=$WORK/bin-cargo
cargo() {
    record cargo "$@" "(in $PWD)"
    mkdir -p target/release
    cp "$BINARY" target/release/alliance-glance
}'
run_devstack stack install >"$WORK/cargo.log" 2>&1 || { cat "$WORK/cargo.log" >&2; fail "install with cargo failed"; }
want="$(
    q cargo build --release --locked --no-default-features "(in $WORK/src)"
    q sudo install -d -m 0755 "$WORK/bin-cargo"
    q sudo install -m 0755 "$WORK/src/target/release/alliance-glance" "$WORK/bin-cargo/alliance-glance"
)"
check "install with cargo: the calls" "$want" "$(cat "$STANDIN_RECORD")"
check "install with cargo: the binary cargo left is installed" "$(sha256sum <"$BINARY")" "$(sha256sum <"$WORK/bin-cargo/alliance-glance")"

say "install without cargo and without a prebuilt binary"
: >"$STANDIN_RECORD"
LOCAL_CONF='ALLIANCE_GLANCE_BINARY=""
PATH=/usr/bin:/bin'
rc=0
run_devstack stack install >"$WORK/nocargo.log" 2>&1 || rc=$?
check "install without cargo: fails, saying why, installs nothing" "1 yes " \
    "$rc $(grep -q "no cargo on $(id -un)'s PATH: install Rust" "$WORK/nocargo.log" && echo yes) $(cat "$STANDIN_RECORD")"

say "$PASSED passed, $FAILED failed in $((SECONDS - T0)) s"
((FAILED == 0))
