#!/usr/bin/env bash
# End-to-end check of the services started by scripts/openstack/up.sh, with curl.
# Exits non-zero on any mismatch. Never prints passwords or tokens.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
RELEASE=33
case ${1:-} in
--release) RELEASE="${2:?--release needs a value}" ;;
--release=*) RELEASE="${1#--release=}" ;;
"") ;;
*) echo "smoke.sh: usage: smoke.sh [--release N]" >&2; exit 2 ;;
esac
ENV_FILE="$REPO/.cache/openstack/$RELEASE/env"
PY="$REPO/.cache/openstack/$RELEASE/venv/bin/python"

if [[ ! -f $ENV_FILE ]]; then
    echo "smoke.sh: no $ENV_FILE: run scripts/openstack/up.sh --release $RELEASE first" >&2
    exit 1
fi
set -a
# shellcheck disable=SC1090
. "$ENV_FILE"
set +a

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
chmod 700 "$TMP"

PASSED=0
FAILED=0
ok() { PASSED=$((PASSED + 1)); printf 'ok    %s\n' "$*"; }
bad() { FAILED=$((FAILED + 1)); printf 'FAIL  %s\n' "$*"; }
expect() { # DESCRIPTION WANT GOT
    if [[ $3 == "$2" ]]; then ok "$1 ($3)"; else bad "$1: expected $2, got $3"; fi
}

# req METHOD URL [curl args...]: body in $TMP/body, headers in $TMP/headers, prints status.
req() {
    local method=$1 url=$2
    shift 2
    curl -sS --noproxy '*' --max-time 30 -X "$method" -o "$TMP/body" -D "$TMP/headers" \
        -w '%{http_code}' "$@" "$url" || echo "curl-error"
}
header() { # NAME: value of a response header from the last req
    awk -v n="$(printf '%s' "$1" | tr '[:upper:]' '[:lower:]')" -F': ' \
        'tolower($1) == n { sub(/\r$/, "", $2); print $2; exit }' "$TMP/headers"
}

# token_request USER PASSWORD_FILE PROJECT_ID|admin: writes the JSON body (mode 600, so the
# password never appears on a command line) and requests a token; prints the status and
# leaves the token (if any) in $TMP/token.
token_request() {
    local user=$1 pwfile=$2 project=$3 status
    (
        umask 077
        "$PY" - "$user" "$pwfile" "$project" >"$TMP/auth.json" <<'EOF'
import json, sys
user, pwfile, project = sys.argv[1:]
password = open(pwfile, encoding="utf-8").read().strip()
scope = ({"project": {"name": "admin", "domain": {"id": "default"}}} if project == "admin"
         else {"project": {"id": project}})
print(json.dumps({"auth": {"identity": {"methods": ["password"], "password": {"user": {
    "name": user, "domain": {"id": "default"}, "password": password}}}, "scope": scope}}))
EOF
    )
    status="$(req POST "$OS_KEYSTONE_URL/auth/tokens" -H 'Content-Type: application/json' \
        -H 'Accept: application/json' --data-binary @"$TMP/auth.json")"
    rm -f "$TMP/auth.json"
    (umask 077; header X-Subject-Token >"$TMP/token")
    printf '%s' "$status"
}

TRUSTED_HDRS=(-H 'X-Identity-Status: Confirmed' -H "X-Project-Id: $OS_PROJECT_ALPHA"
    -H "X-User-Id: $OS_SERVICE_USER_ID" -H 'X-Roles: member,reader')

# 1. Password token scoped to alpha: 201, X-Subject-Token, catalog has an image endpoint.
st="$(token_request "$OS_SERVICE_USER" "$OS_SERVICE_PASSWORD_FILE" "$OS_PROJECT_ALPHA")"
expect "keystone: password token scoped to alpha" 201 "$st"
ALPHA_TOKEN="$(cat "$TMP/token")"
if [[ -n $ALPHA_TOKEN ]]; then ok "keystone: X-Subject-Token present"; else bad "keystone: no X-Subject-Token"; fi
catalog="$("$PY" - "$TMP/body" <<'EOF' 2>&1 || true
import json, sys
tok = json.load(open(sys.argv[1]))["token"]
def urls(kind):
    found = sorted({(e["interface"], e["url"]) for s in tok.get("catalog", []) if s["type"] == kind
                    for e in s["endpoints"]})
    return " ".join(f"{i}={u}" for i, u in found)
print(urls("image"), "project=" + tok["project"]["id"],
      "roles=" + ",".join(sorted(r["name"] for r in tok["roles"])), "identity:", urls("identity"))
EOF
)"
if [[ ${OS_LAYOUT:-gunicorn} == devstack ]]; then
    # As DevStack registers them: public endpoints only, Keystone's without a version.
    want="public=$OS_GLANCE_KEYSTONE_URL project=$OS_PROJECT_ALPHA roles=member,reader"
    want+=" identity: public=${OS_KEYSTONE_URL%/v3}"
else
    want="internal=$OS_GLANCE_KEYSTONE_URL public=$OS_GLANCE_KEYSTONE_URL project=$OS_PROJECT_ALPHA roles=member,reader"
    want+=" identity: admin=$OS_KEYSTONE_URL internal=$OS_KEYSTONE_URL public=$OS_KEYSTONE_URL"
fi
expect "keystone: catalog image and identity endpoints, project, roles" "$want" "$catalog"

# 2. Glance (keystone flavor) list with that token.
st="$(req GET "$OS_GLANCE_KEYSTONE_URL/v2/images" -H "X-Auth-Token: $ALPHA_TOKEN" -H 'Accept: application/json')"
expect "glance-keystone: GET /v2/images with the alpha token" 200 "$st"
st="$(req GET "$OS_GLANCE_KEYSTONE_URL/v2/images" -H 'Accept: application/json')"
expect "glance-keystone: GET /v2/images without a token" 401 "$st"

# 3. Glance (trusted flavor) list with identity headers.
st="$(req GET "$OS_GLANCE_TRUSTED_URL/v2/images" "${TRUSTED_HDRS[@]}" -H 'Accept: application/json')"
expect "glance-trusted: GET /v2/images with identity headers" 200 "$st"
st="$(req GET "$OS_GLANCE_TRUSTED_URL/v2/images" -H 'Accept: application/json')"
expect "glance-trusted: GET /v2/images without identity headers" 401 "$st"

# 4. A token for gamma (no role there) is refused.
st="$(token_request "$OS_SERVICE_USER" "$OS_SERVICE_PASSWORD_FILE" "$OS_PROJECT_GAMMA")"
expect "keystone: token scoped to gamma (no role)" 401 "$st"

# 5. web-download import on the trusted Glance from the local HTTP server reaches active.
st="$(req POST "$OS_GLANCE_TRUSTED_URL/v2/images" "${TRUSTED_HDRS[@]}" \
    -H 'Content-Type: application/json' \
    --data '{"name":"smoke-web-download","disk_format":"qcow2","container_format":"bare"}')"
expect "glance-trusted: create image" 201 "$st"
IMAGE_ID="$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$TMP/body" 2>/dev/null || true)"
st="$(req POST "$OS_GLANCE_TRUSTED_URL/v2/images/$IMAGE_ID/import" "${TRUSTED_HDRS[@]}" \
    -H 'Content-Type: application/json' \
    --data "{\"method\":{\"name\":\"web-download\",\"uri\":\"$OS_IMAGE_SERVER_URL/image.qcow2\"}}")"
expect "glance-trusted: web-download import accepted" 202 "$st"
status=""
for _ in $(seq 1 150); do
    st="$(req GET "$OS_GLANCE_TRUSTED_URL/v2/images/$IMAGE_ID" "${TRUSTED_HDRS[@]}")"
    # A failed import leaves the image in queued with the import lock (the
    # os_glance_import_task property) released: report it as import-failed.
    status="$("$PY" -c '
import json, sys
img = json.load(open(sys.argv[1]))
failed = img["status"] == "queued" and not img.get("os_glance_import_task")
print("import-failed" if failed else img["status"])' "$TMP/body" 2>/dev/null || echo "http-$st")"
    [[ $status == active || $status == killed || $status == import-failed ]] && break
    sleep 0.2
done
expect "glance-trusted: imported image status" active "$status"
want_size="$(stat -c %s "$OS_IMAGE_SERVER_DIR/image.qcow2")"
got_size="$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1])).get("size"))' "$TMP/body" 2>/dev/null || true)"
expect "glance-trusted: imported image size" "$want_size" "$got_size"
st="$(req DELETE "$OS_GLANCE_TRUSTED_URL/v2/images/$IMAGE_ID" "${TRUSTED_HDRS[@]}")"
expect "glance-trusted: delete imported image" 204 "$st"

# 6. Revocation: an admin revokes a fresh token; Glance refuses it at once.
st="$(token_request "$OS_SERVICE_USER" "$OS_SERVICE_PASSWORD_FILE" "$OS_PROJECT_ALPHA")"
expect "keystone: second alpha token" 201 "$st"
VICTIM="$(cat "$TMP/token")"
st="$(token_request "$OS_ADMIN_USER" "$OS_ADMIN_PASSWORD_FILE" admin)"
expect "keystone: admin token" 201 "$st"
ADMIN_TOKEN="$(cat "$TMP/token")"
st="$(req GET "$OS_GLANCE_KEYSTONE_URL/v2/images" -H "X-Auth-Token: $VICTIM")"
expect "glance-keystone: list with the token before revocation" 200 "$st"
st="$(req DELETE "$OS_KEYSTONE_URL/auth/tokens" -H "X-Auth-Token: $ADMIN_TOKEN" -H "X-Subject-Token: $VICTIM")"
expect "keystone: admin revokes the token" 204 "$st"
st="$(req GET "$OS_GLANCE_KEYSTONE_URL/v2/images" -H "X-Auth-Token: $VICTIM")"
expect "glance-keystone: list with the revoked token, at once" 401 "$st"
st="$(req GET "$OS_GLANCE_KEYSTONE_URL/v2/images" -H "X-Auth-Token: $ALPHA_TOKEN")"
expect "glance-keystone: the other alpha token still works" 200 "$st"

printf '%s passed, %s failed\n' "$PASSED" "$FAILED"
((FAILED == 0))
