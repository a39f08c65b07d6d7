#!/usr/bin/env bash
# Re-pin one release of the real-OpenStack test services:
#
#   scripts/openstack/pin.sh 28
#
# Installs the Glance, Keystone and gunicorn of releases/28/release.env into a throwaway
# venv - against releases/28/upper-constraints.txt (the series' file from
# openstack/requirements, as OpenStack's own CI installs a series) when there is one - checks
# it (`pip check`), and writes its `pip freeze` to releases/28/requirements.txt, which up.sh
# installs from. OS_PYTHON chooses the interpreter (default python3; >= 3.11).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RELEASE="${1:?usage: pin.sh RELEASE (one of: $(cd "$HERE/releases" && echo *))}"
DIR="$HERE/releases/$RELEASE"
[[ -f $DIR/release.env ]] || { echo "pin.sh: no release $RELEASE under $HERE/releases" >&2; exit 1; }
# shellcheck source=/dev/null
. "$DIR/release.env"
PY="${OS_PYTHON:-python3}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

CONSTRAINTS=()
[[ -f $DIR/upper-constraints.txt ]] && CONSTRAINTS=(-c "$DIR/upper-constraints.txt")
"$PY" -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install --no-input --disable-pip-version-check "${CONSTRAINTS[@]}" \
    "glance==$GLANCE_VERSION" "keystone==$KEYSTONE_VERSION" gunicorn
"$WORK/venv/bin/pip" check
{
    echo "# Pinned environment for the real-OpenStack test services of release $RELEASE (scripts/openstack/up.sh --release $RELEASE)."
    echo "# Produced by scripts/openstack/pin.sh $RELEASE: \`pip freeze\` after"
    if ((${#CONSTRAINTS[@]})); then
        echo "# \`pip install -c upper-constraints.txt glance==$GLANCE_VERSION keystone==$KEYSTONE_VERSION gunicorn\`"
        echo "# (the $SERIES series' upper constraints) on CPython $("$PY" -c 'import sys; print(sys.version.split()[0])')."
    else
        echo "# \`pip install glance==$GLANCE_VERSION keystone==$KEYSTONE_VERSION gunicorn\` (no upper-constraints file for"
        echo "# $SERIES: the newest dependencies of the day) on CPython $("$PY" -c 'import sys; print(sys.version.split()[0])')."
    fi
    "$WORK/venv/bin/pip" freeze
} >"$DIR/requirements.txt"
echo "pin.sh: wrote $DIR/requirements.txt ($(grep -vc '^#' "$DIR/requirements.txt") pins)"
