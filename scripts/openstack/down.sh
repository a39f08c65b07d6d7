#!/usr/bin/env bash
# Stop exactly what scripts/openstack/up.sh started, as recorded in .cache/openstack/N/pids:
#
#   scripts/openstack/down.sh              # every release that runs
#   scripts/openstack/down.sh --release 28 # one
#
# The pids file holds a "# boot_id ID" line, then one "NAME PID STARTTIME RUN_ID" line per
# process up.sh started. up.sh starts each one with setsid, so it leads its own process
# group (pgid = PID); gunicorn workers stay in their master's group. STARTTIME is field 22
# of /proc/PID/stat (clock ticks after boot): a PID whose start time differs, or a pids file
# from another boot, is someone else's process and is never signalled. (The environment
# cannot serve as a marker: gunicorn's setproctitle overwrites /proc/PID/environ.)
#
# SIGTERM to each recorded group, wait up to OS_STOP_TIMEOUT seconds (default 15), then
# SIGKILL to whatever of those groups is left. Safe to run twice, or when nothing runs.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
STOP_TIMEOUT="${OS_STOP_TIMEOUT:-15}"

case ${1:-} in
--release) RELEASE="${2:?--release needs a value}" ;;
--release=*) RELEASE="${1#--release=}" ;;
"")
    # Every release with a pids file, one after the other.
    status=0
    found=0
    for pids in "$REPO"/.cache/openstack/*/pids; do
        [[ -f $pids ]] || continue
        found=1
        release="$(basename "$(dirname "$pids")")"
        "$0" --release "$release" || status=1
    done
    ((found)) || printf 'down.sh: nothing to stop\n'
    exit "$status"
    ;;
*) printf 'down.sh: unknown argument %s (usage: down.sh [--release N])\n' "$1" >&2; exit 2 ;;
esac
CACHE="$REPO/.cache/openstack/$RELEASE"
PIDS_FILE="$CACHE/pids"
ENV_FILE="$CACHE/env"
PORTS_FILE="$CACHE/ports"

say() { printf 'down.sh[%s]: %s\n' "$RELEASE" "$*"; }

if [[ ! -s $PIDS_FILE ]]; then
    rm -f "$PIDS_FILE" "$ENV_FILE" "$PORTS_FILE"
    say "nothing to stop"
    exit 0
fi

BOOT_ID="$(cat /proc/sys/kernel/random/boot_id)"
file_boot=""
declare -A START=() # recorded pid -> start time
declare -A NAME=()  # recorded pid -> name
while read -r a b c _; do
    if [[ $a == "#" && $b == boot_id ]]; then
        file_boot=$c
        continue
    fi
    [[ $a == \#* ]] && continue
    [[ $b =~ ^[0-9]+$ && $c =~ ^[0-9]+$ ]] || continue
    START[$b]=$c
    NAME[$b]=$a
done <"$PIDS_FILE"

if [[ $file_boot != "$BOOT_ID" ]]; then
    say "pids file is from another boot: nothing of it can be running"
    rm -f "$PIDS_FILE" "$ENV_FILE" "$PORTS_FILE"
    exit 0
fi

# stat_of PID: sets ST_STATE, ST_PGID, ST_START from /proc/PID/stat (false if gone).
stat_of() {
    local line rest f
    read -r line 2>/dev/null <"/proc/$1/stat" || return 1
    rest="${line##*) }" # the fields after "pid (comm) ": state ppid pgrp session ...
    read -r -a f <<<"$rest"
    ST_STATE=${f[0]}
    ST_PGID=${f[2]}
    ST_START=${f[19]}
}
# leader_alive PID: the recorded process itself still runs (same start time, not a zombie).
leader_alive() {
    stat_of "$1" || return 1
    [[ $ST_START == "${START[$1]}" && $ST_STATE != Z ]]
}
# ours: live processes that are a recorded process or in a recorded process group (and
# started no earlier than that group's leader, so a recycled group id never matches).
ours() {
    local f p
    for f in /proc/[0-9]*/stat; do
        p="${f#/proc/}"
        p="${p%/stat}"
        stat_of "$p" || continue
        [[ $ST_STATE == Z ]] && continue
        if [[ -n ${START[$p]:-} ]]; then
            [[ $ST_START == "${START[$p]}" ]] && printf '%s\n' "$p"
        elif [[ -n ${START[$ST_PGID]:-} ]] && ((ST_START >= START[$ST_PGID])); then
            printf '%s\n' "$p"
        fi
    done
    return 0
}

# 1. SIGTERM: to the whole group of each live recorded process (gunicorn master and worker
#    alike), and individually to group members whose leader is gone.
for pid in "${!START[@]}"; do
    leader_alive "$pid" || continue
    if [[ $ST_PGID == "$pid" ]]; then
        kill -TERM -- "-$pid" 2>/dev/null || true
    else
        kill -TERM "$pid" 2>/dev/null || true
    fi
    say "SIGTERM ${NAME[$pid]} (pid $pid)"
done
for p in $(ours); do
    stat_of "$p" || continue
    if [[ -n ${START[$ST_PGID]:-} ]] && ! leader_alive "$ST_PGID"; then
        kill -TERM "$p" 2>/dev/null || true
        say "SIGTERM pid $p (group of ${NAME[$ST_PGID]:-?}, leader gone)"
    fi
done

# 2. Wait, then SIGKILL what is left.
deadline=$((SECONDS + STOP_TIMEOUT))
left="$(ours)"
while [[ -n $left ]] && ((SECONDS < deadline)); do
    sleep 0.2
    left="$(ours)"
done
if [[ -n $left ]]; then
    say "still running after ${STOP_TIMEOUT}s, SIGKILL: ${left//$'\n'/ }"
    for p in $left; do kill -KILL "$p" 2>/dev/null || true; done
    deadline=$((SECONDS + 5))
    left="$(ours)"
    while [[ -n $left ]] && ((SECONDS < deadline)); do
        sleep 0.2
        left="$(ours)"
    done
fi
if [[ -n $left ]]; then
    say "ERROR: could not stop: ${left//$'\n'/ }" >&2
    exit 1
fi

# 3. Best effort, bounded: let the exited processes be reaped by their new parent (init here
#    reaps every few seconds), so that ps shows nothing of them afterwards. Zombies whose
#    parent is our caller (down.sh run by a failing up.sh, their parent) go away when the
#    caller exits, so they are not waited for.
unreaped() {
    local path p line rest
    local -a f
    for path in /proc/[0-9]*/stat; do
        read -r line 2>/dev/null <"$path" || continue
        [[ ${line##*) } == Z* ]] || continue
        p="${path#/proc/}"
        p="${p%/stat}"
        rest="${line##*) }"
        read -r -a f <<<"$rest" # state ppid pgrp ... starttime at [19]
        [[ ${f[1]} == "$PPID" ]] && continue
        if [[ -n ${START[$p]:-} ]]; then
            [[ ${f[19]} == "${START[$p]}" ]] && printf '%s\n' "$p"
        elif [[ -n ${START[${f[2]}]:-} ]] && ((f[19] >= START[${f[2]}])); then
            printf '%s\n' "$p"
        fi
    done
    return 0
}
deadline=$((SECONDS + 10))
while [[ -n "$(unreaped)" ]] && ((SECONDS < deadline)); do
    sleep 0.2
done

rm -f "$PIDS_FILE" "$ENV_FILE" "$PORTS_FILE"
say "stopped"
