#!/usr/bin/env python3
"""Create the Keystone objects the test suite needs, through Keystone's v3 API.

Called by up.sh once Keystone answers. Standard library only. Inputs come from the
environment (passwords from files, never from the command line); the ids it creates are
printed on stdout as KEY=value lines, nothing else is printed there. Passwords are never
printed.

Creates:
  service glance (type image) + public and internal endpoints -> the keystone-flavor Glance
  projects alpha, beta, gamma, service (domain default)
  user alliance (domain default): member + reader on alpha and beta, nothing on gamma,
    service on project service (to validate its callers' tokens, as keystonemiddleware does)
  user glance (domain default): service on project service (for keystonemiddleware)

With OS_LAYOUT=devstack (scripts/openstack/up.sh --layout devstack), as DevStack's
create_glance_accounts and create_keystone_accounts do: the image service's public
endpoint only; glance also gets admin on service (create_service_user glance admin); and
DevStack's own projects and users: demo (demo: member; demo_reader: reader), alt_demo
(alt_demo_member: member; alt_demo_reader: reader), invisible_to_admin (demo: member),
with the admin's password, as DevStack gives them.
"""

import os
import sys

from keystone_api import Api, ApiError

API = Api(os.environ["OS_KEYSTONE_URL"], excerpt=500)  # .../v3
call = API.call
REGION = os.environ.get("OS_REGION", "RegionOne")
GLANCE_URL = os.environ["OS_GLANCE_KEYSTONE_URL"].rstrip("/")
DEVSTACK = os.environ.get("OS_LAYOUT") == "devstack"


def read_secret(var):
    with open(os.environ[var], encoding="utf-8") as f:
        return f.read().strip()


def main():
    admin_user = os.environ.get("OS_ADMIN_USER", "admin")
    admin_password = read_secret("OS_ADMIN_PASSWORD_FILE")
    alliance_password = read_secret("OS_SERVICE_PASSWORD_FILE")
    glance_password = read_secret("OS_GLANCE_SERVICE_PASSWORD_FILE")

    tok = API.admin_token(admin_user, admin_password)

    _, roles = call("GET", "/roles", token=tok)
    role_id = {r["name"]: r["id"] for r in roles["roles"]}
    for needed in ("member", "reader", "service", "admin"):
        if needed not in role_id:
            raise ApiError(f"role {needed!r} missing after bootstrap (have {sorted(role_id)})")

    _, svc = call(
        "POST",
        "/services",
        {"service": {"name": "glance", "type": "image",
                     "description": "Glance Image Service", "enabled": True}},
        token=tok,
        expect=(201,),
    )
    service_id = svc["service"]["id"]
    for interface in ("public",) if DEVSTACK else ("public", "internal"):
        call(
            "POST",
            "/endpoints",
            {"endpoint": {"service_id": service_id, "interface": interface,
                          "region_id": REGION, "url": GLANCE_URL, "enabled": True}},
            token=tok,
            expect=(201,),
        )

    projects = {}
    names = ["alpha", "beta", "gamma", "service"]
    if DEVSTACK:
        names += ["demo", "alt_demo", "invisible_to_admin"]
    for name in names:
        _, p = call(
            "POST",
            "/projects",
            {"project": {"name": name, "domain_id": "default", "enabled": True,
                         "description": f"alliance-glance test project {name}"}},
            token=tok,
            expect=(201,),
        )
        projects[name] = p["project"]["id"]

    def create_user(name, password):
        _, u = call(
            "POST",
            "/users",
            {"user": {"name": name, "domain_id": "default", "password": password,
                      "enabled": True}},
            token=tok,
            expect=(201,),
        )
        return u["user"]["id"]

    def grant(project, user_id, role):
        call("PUT", f"/projects/{projects[project]}/users/{user_id}/roles/{role_id[role]}",
             token=tok, expect=(204,))

    alliance_id = create_user("alliance", alliance_password)
    for project in ("alpha", "beta"):
        grant(project, alliance_id, "member")
        grant(project, alliance_id, "reader")
    # The facade validates the tokens of its keystone_token callers with a
    # token scoped here (its service_project_id), as keystonemiddleware does.
    grant("service", alliance_id, "service")

    glance_id = create_user("glance", glance_password)
    grant("service", glance_id, "service")

    devstack_ids = {}
    if DEVSTACK:
        grant("service", glance_id, "admin")
        users = {}
        for user, grants in (
            ("demo", (("demo", "member"), ("invisible_to_admin", "member"))),
            ("demo_reader", (("demo", "reader"),)),
            ("alt_demo_member", (("alt_demo", "member"),)),
            ("alt_demo_reader", (("alt_demo", "reader"),)),
        ):
            users[user] = create_user(user, admin_password)
            for project, role in grants:
                grant(project, users[user], role)
        devstack_ids = {
            "OS_DEMO_PROJECT": projects["demo"],
            "OS_ALT_DEMO_PROJECT": projects["alt_demo"],
            "OS_INVISIBLE_TO_ADMIN_PROJECT": projects["invisible_to_admin"],
            "OS_DEMO_USER_ID": users["demo"],
            "OS_ALT_DEMO_MEMBER_USER_ID": users["alt_demo_member"],
            "OS_DEMO_READER_USER_ID": users["demo_reader"],
        }

    # The admin token is not needed any more: revoke it.
    API.revoke(tok)

    out = {
        "OS_SERVICE_USER_ID": alliance_id,
        "OS_PROJECT_ALPHA": projects["alpha"],
        "OS_PROJECT_BETA": projects["beta"],
        "OS_PROJECT_GAMMA": projects["gamma"],
        "OS_PROJECT_SERVICE": projects["service"],
        "OS_GLANCE_SERVICE_USER_ID": glance_id,
        "OS_IMAGE_SERVICE_ID": service_id,
        "OS_ROLE_MEMBER_ID": role_id["member"],
        "OS_ROLE_READER_ID": role_id["reader"],
        **devstack_ids,
    }
    for k, v in out.items():
        print(f"{k}={v}")


if __name__ == "__main__":
    try:
        main()
    except (ApiError, OSError, KeyError, ValueError) as e:
        print(f"provision.py: {e}", file=sys.stderr)
        sys.exit(1)
