# shellcheck shell=bash
#
# Stand-ins for the DevStack functions the alliance-glance plugin calls, sourced by
# devstack/tests/plugin-test.sh before the plugin, as stack.sh, unstack.sh and clean.sh have
# DevStack's own functions defined before they source a plugin. Same names and arguments as
# DevStack's (functions-common, functions, lib/apache). Each stand-in that acts records the
# call it was asked - one line in $STANDIN_RECORD, the arguments printf %q-quoted, a password
# as <password> - and then does it for real where the facade needs it to be real:
#
#   Keystone (get_or_create_*, get_or_add_user_project_role)  through keystone.py, against the
#                                                             Keystone up.sh started
#   run_process / stop_process        start the command line as systemd would (split on
#                                     blanks, no shell, a clean environment), stop it
#   Apache (write_local_proxy_http_config, enable_apache_*,   on the Apache of up.sh --layout
#   disable_apache_site, restart_apache_server)               devstack (its own folder)
#   sudo                              runs the command (the test's folders are its own)
#
# What they need: the env file of up.sh --layout devstack exported (OS_*), STANDIN_RECORD,
# STANDIN_DIR (this folder), STANDIN_RUN_DIR (pid files, logs) and STANDIN_PY (a python3).

STANDIN_DEPTH=0

# record NAME ARGS...: the call, as asked (not when a stand-in calls another).
function record {
    ((STANDIN_DEPTH == 0)) || return 0
    local line
    printf -v line '%q ' "$@"
    printf '%s\n' "${line% }" >>"$STANDIN_RECORD"
}

# nested CMD...: a stand-in calling another, as DevStack's function does (not recorded).
function nested {
    local rc=0
    STANDIN_DEPTH=$((STANDIN_DEPTH + 1))
    "$@" || rc=$?
    STANDIN_DEPTH=$((STANDIN_DEPTH - 1))
    return "$rc"
}

function die {
    local line=$1
    shift
    printf 'die (line %s): %s\n' "$line" "$*" >&2
    exit 1
}

function echo_summary {
    printf '==> %s\n' "$*"
}

function define_plugin {
    :
}

function is_service_enabled {
    local service
    for service in "$@"; do
        [[ ,${ENABLED_SERVICES}, == *,${service},* ]] && return 0
    done
    return 1
}

function enable_service {
    local service
    for service in "$@"; do
        [[ ,${DISABLED_SERVICES:-}, == *,${service},* ]] && continue
        is_service_enabled "$service" || ENABLED_SERVICES+=",$service"
    done
}

function disable_service {
    local service
    for service in "$@"; do
        DISABLED_SERVICES+=",$service"
        ENABLED_SERVICES=",$ENABLED_SERVICES,"
        ENABLED_SERVICES=${ENABLED_SERVICES//,$service,/,}
        ENABLED_SERVICES=${ENABLED_SERVICES#,}
        ENABLED_SERVICES=${ENABLED_SERVICES%,}
    done
}

# trueorfalse DEFAULT VARNAME: DevStack's reading of a boolean setting.
function trueorfalse {
    local default=$1 value=${!2:-}
    case $value in
    1 | yes | Yes | YES | true | True | TRUE | on | On | ON) echo True ;;
    0 | no | No | NO | false | False | FALSE | off | Off | OFF) echo False ;;
    *) echo "$default" ;;
    esac
}

function sudo {
    record sudo "$@"
    "$@"
}

# --- Keystone ---------------------------------------------------------------------------

function _keystone {
    "$STANDIN_PY" -B "$STANDIN_DIR/keystone.py" "$@"
}

function get_or_create_user {
    record get_or_create_user "$1" '<password>' "${@:3}"
    KS_PASSWORD=$2 _keystone user "$1" "$3"
}

function get_or_create_project {
    record get_or_create_project "$@"
    _keystone project "$1" "$2"
}

function get_or_add_user_project_role {
    record get_or_add_user_project_role "$@"
    _keystone role-add "$1" "$2" "$3" "${4:-Default}" "${5:-Default}"
}

function get_or_create_service {
    record get_or_create_service "$@"
    _keystone service "$1" "$2" "$3"
}

# get_or_create_endpoint SERVICE REGION PUBLICURL [ADMINURL] [INTERNALURL]
function get_or_create_endpoint {
    record get_or_create_endpoint "$@"
    local public
    public=$(_keystone endpoint "$1" public "$3" "$2")
    if [[ -n ${4:-} ]]; then _keystone endpoint "$1" admin "$4" "$2" >/dev/null; fi
    if [[ -n ${5:-} ]]; then _keystone endpoint "$1" internal "$5" "$2" >/dev/null; fi
    echo "$public"
}

# --- Services under systemd ---------------------------------------------------------------

# _starttime PID: field 22 of /proc/PID/stat, to tell our process from a recycled PID.
function _starttime {
    local line
    local -a fields
    read -r line <"/proc/$1/stat" || return 1
    read -r -a fields <<<"${line##*) }"
    echo "${fields[19]}"
}

# run_process SERVICE "COMMAND" [GROUP] [USER] [ENV_VARS]: DevStack writes the unit
# devstack@SERVICE (ExecStart=COMMAND, User=USER or $STACK_USER, Environment=PATH and
# ENV_VARS) and starts it. Here: the same command line, split on blanks as systemd splits
# ExecStart (no shell), in a session of its own, with the environment systemd gives a
# User= service.
function run_process {
    record run_process "$@"
    local service=$1 command=$2 user=${4:-$STACK_USER} env_vars=${5:-}
    is_service_enabled "$service" || return 0
    [[ $command == /* ]] || die $LINENO "run_process: $command does not start with an absolute path"
    [[ $command != *sudo* ]] || die $LINENO "run_process: sudo does not work under systemd"
    [[ $user == "$(id -un)" ]] || die $LINENO "run_process: the test runs services as $(id -un) only, not $user"
    local -a argv environment
    read -r -a argv <<<"$command"
    read -r -a environment <<<"$env_vars"
    env -i "PATH=$PATH" "HOME=$HOME" "USER=$user" "LOGNAME=$user" "${environment[@]}" \
        setsid "${argv[@]}" </dev/null >>"$STANDIN_RUN_DIR/$service.log" 2>&1 &
    local pid=$!
    printf '%s %s\n' "$pid" "$(_starttime "$pid")" >"$STANDIN_RUN_DIR/$service.pid"
}

# stop_process SERVICE: systemctl stop devstack@SERVICE (SIGTERM, KillMode=process).
function stop_process {
    record stop_process "$@"
    local service=$1 pid starttime
    is_service_enabled "$service" || return 0
    [[ -f $STANDIN_RUN_DIR/$service.pid ]] || return 0
    read -r pid starttime <"$STANDIN_RUN_DIR/$service.pid"
    if [[ "$(_starttime "$pid" 2>/dev/null)" == "$starttime" ]]; then
        kill -TERM "$pid" 2>/dev/null || true
        local deadline=$((SECONDS + 20))
        while [[ "$(_starttime "$pid" 2>/dev/null)" == "$starttime" ]] && ((SECONDS < deadline)); do
            [[ "$(ps -o stat= -p "$pid" 2>/dev/null)" == Z* ]] && break
            sleep 0.1
        done
        [[ "$(_starttime "$pid" 2>/dev/null)" != "$starttime" ]] ||
            [[ "$(ps -o stat= -p "$pid" 2>/dev/null)" == Z* ]] || kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$STANDIN_RUN_DIR/$service.pid"
}

# wait_for_service TIMEOUT URL: until URL answers something else than 503 (or a refused
# connection), at most TIMEOUT seconds.
function wait_for_service {
    local deadline=$((SECONDS + $1)) code
    while ((SECONDS < deadline)); do
        code=$(curl -sS --noproxy '*' --max-time 5 -o /dev/null -w '%{http_code}' "$2" 2>/dev/null) || code=000
        [[ $code != 503 && $code != 000 ]] && return 0
        sleep 0.5
    done
    return 1
}

# --- Apache (Debian's layout, in up.sh's Apache folder) -----------------------------------

function _apache {
    if ((EUID == 0)) && [[ $OS_APACHE_USER != root ]]; then
        setpriv --reuid="$OS_APACHE_USER" --regid="$(id -gn "$OS_APACHE_USER")" --clear-groups \
            /usr/sbin/apache2 -f "$OS_APACHE_DIR/apache2.conf" "$@"
    else
        /usr/sbin/apache2 -f "$OS_APACHE_DIR/apache2.conf" "$@"
    fi
}

function apache_site_config_for {
    echo "$APACHE_CONF_DIR/$1.conf"
}

# enable_apache_mod MOD [norestart]: a2enmod's link, and a restart if it was not enabled.
function enable_apache_mod {
    record enable_apache_mod "$@"
    local mod=$1
    [[ $mod == version ]] && return 0
    if [[ ! -e $OS_APACHE_DIR/mods-enabled/$mod.load ]]; then
        ln -s "$OS_APACHE_MODS_AVAILABLE/$mod.load" "$OS_APACHE_DIR/mods-enabled/$mod.load"
        [[ ${2:-} == norestart ]] || nested restart_apache_server
    fi
}

function enable_apache_site {
    record enable_apache_site "$@"
    nested enable_apache_mod version
    ln -sfn "../sites-available/$1.conf" "$OS_APACHE_DIR/sites-enabled/$1.conf"
}

function disable_apache_site {
    record disable_apache_site "$@"
    rm -f "$OS_APACHE_DIR/sites-enabled/$1.conf"
}

# restart_apache_server: a graceful restart (the configuration checked first, as apachectl
# does), done when Apache says it resumed with the new configuration.
function restart_apache_server {
    record restart_apache_server
    local log=$OS_APACHE_DIR/logs/error.log before
    _apache -t >/dev/null 2>&1 || die $LINENO "Apache refuses its configuration: $(_apache -t 2>&1)"
    before=$(grep -c 'resuming normal operations' "$log")
    kill -USR1 "$(cat "$OS_APACHE_PID_FILE")"
    local deadline=$((SECONDS + 30))
    while (($(grep -c 'resuming normal operations' "$log") == before)); do
        ((SECONDS < deadline)) || die $LINENO "Apache did not restart"
        sleep 0.1
    done
}

# write_local_proxy_http_config NAME URL LOC: DevStack's straight-through proxy, a site of
# three lines, enabled, Apache restarted.
function write_local_proxy_http_config {
    record write_local_proxy_http_config "$@"
    local name=$1 url=$2 loc=$3 conf
    nested enable_apache_mod proxy
    nested enable_apache_mod proxy_http
    conf=$(apache_site_config_for "$name")
    printf 'KeepAlive Off\nSetEnv proxy-sendchunked 1\nProxyPass "%s" "%s" retry=0 acquire=1 \n' \
        "$loc" "$url" >"$conf"
    nested enable_apache_site "$name"
    nested restart_apache_server
}
