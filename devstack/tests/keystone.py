#!/usr/bin/env python3
"""What DevStack's Keystone functions do, done through Keystone's v3 API, for the plugin test.

DevStack's functions-common runs `openstack ... --or-show` (get_or_create_user, _project,
_service, _endpoint, get_or_add_user_project_role); the test's stand-ins for them call this
script, which does the same against the Keystone that scripts/openstack/up.sh started, as its
admin. Standard library only. Inputs from the environment: OS_KEYSTONE_URL (.../v3),
OS_ADMIN_USER, OS_ADMIN_PASSWORD_FILE, and a password to set in KS_PASSWORD (never on a
command line). What DevStack's function prints (an id) is printed on stdout, nothing else.

  keystone.py user NAME DOMAIN                          get_or_create_user (password: $KS_PASSWORD)
  keystone.py project NAME DOMAIN                       get_or_create_project
  keystone.py role-add ROLE USER PROJECT UDOMAIN PDOMAIN get_or_add_user_project_role
  keystone.py service NAME TYPE DESCRIPTION             get_or_create_service
  keystone.py endpoint TYPE INTERFACE URL REGION        _get_or_create_endpoint_with_interface
and, for the test's own checks and clean-up:
  keystone.py user-id NAME DOMAIN                       the user's id
  keystone.py assignments USER_ID                       "ROLE PROJECT" lines, sorted
  keystone.py endpoints TYPE                            "INTERFACE REGION URL" lines, sorted
  keystone.py delete USER_NAME DOMAIN SERVICE_TYPE      the user, the service and its endpoints
"""

import json
import os
import sys
import urllib.parse

# The Keystone calls it shares with scripts/openstack/provision.py.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "openstack"))
from keystone_api import Api, ApiError  # noqa: E402

API = Api(os.environ["OS_KEYSTONE_URL"], excerpt=300)
call = API.call


def admin_token():
    with open(os.environ["OS_ADMIN_PASSWORD_FILE"], encoding="utf-8") as f:
        password = f.read().strip()
    return API.admin_token(os.environ.get("OS_ADMIN_USER", "admin"), password)


def query(params):
    return "?" + urllib.parse.urlencode(params)


def one(items, what):
    if len(items) != 1:
        raise ApiError(f"{len(items)} {what}")
    return items[0]


class Keystone:
    def __init__(self):
        self.token = admin_token()

    def get(self, path):
        return call("GET", path, token=self.token)[1]

    def domain_id(self, name_or_id):
        """The openstack CLI takes a domain's name or id."""
        found = self.get("/domains" + query({"name": name_or_id}))["domains"]
        if found:
            return found[0]["id"]
        return self.get(f"/domains/{urllib.parse.quote(name_or_id)}")["domain"]["id"]

    def user_id(self, name, domain):
        users = self.get("/users" + query({"name": name, "domain_id": self.domain_id(domain)}))["users"]
        return users[0]["id"] if users else None

    def project_id(self, name, domain):
        projects = self.get("/projects" + query({"name": name, "domain_id": self.domain_id(domain)}))
        return projects["projects"][0]["id"] if projects["projects"] else None

    def role_id(self, name):
        return one(self.get("/roles" + query({"name": name}))["roles"], f"roles named {name}")["id"]

    def user(self, name, domain):
        found = self.user_id(name, domain)
        if found:
            return found  # --or-show: the password of an existing user is left alone
        body = {"user": {"name": name, "domain_id": self.domain_id(domain),
                         "password": os.environ["KS_PASSWORD"], "enabled": True}}
        return call("POST", "/users", body, token=self.token, expect=(201,))[1]["user"]["id"]

    def project(self, name, domain):
        found = self.project_id(name, domain)
        if found:
            return found
        body = {"project": {"name": name, "domain_id": self.domain_id(domain), "enabled": True}}
        return call("POST", "/projects", body, token=self.token, expect=(201,))[1]["project"]["id"]

    def role_add(self, role, user, project, user_domain, project_domain):
        user_id = self.user_id(user, user_domain) or user
        project_id = self.project_id(project, project_domain)
        if project_id is None:
            raise ApiError(f"no project {project} in domain {project_domain}")
        role_id = self.role_id(role)
        call("PUT", f"/projects/{project_id}/users/{user_id}/roles/{role_id}",
             token=self.token, expect=(204,))
        return role_id

    def service(self, name, kind, description):
        found = self.get("/services" + query({"type": kind}))["services"]
        if found:
            return found[0]["id"]
        body = {"service": {"name": name, "type": kind, "description": description, "enabled": True}}
        return call("POST", "/services", body, token=self.token, expect=(201,))[1]["service"]["id"]

    def service_id(self, kind):
        return one(self.get("/services" + query({"type": kind}))["services"], f"services of type {kind}")["id"]

    def endpoint(self, kind, interface, url, region):
        service_id = self.service_id(kind)
        found = self.get("/endpoints" + query({"service_id": service_id, "interface": interface,
                                               "region_id": region}))["endpoints"]
        if found:
            return found[0]["id"]
        body = {"endpoint": {"service_id": service_id, "interface": interface, "url": url,
                             "region_id": region, "enabled": True}}
        return call("POST", "/endpoints", body, token=self.token, expect=(201,))[1]["endpoint"]["id"]

    def assignments(self, user_id):
        found = self.get("/role_assignments" + query({"user.id": user_id, "include_names": "true"}))
        lines = []
        for assignment in found["role_assignments"]:
            scope = assignment["scope"]
            where = scope["project"]["name"] if "project" in scope else json.dumps(scope, sort_keys=True)
            lines.append(f"{assignment['role']['name']} {where}")
        return sorted(lines)

    def endpoints(self, kind):
        services = self.get("/services" + query({"type": kind}))["services"]
        lines = []
        for service in services:
            for endpoint in self.get("/endpoints" + query({"service_id": service["id"]}))["endpoints"]:
                lines.append(f"{endpoint['interface']} {endpoint['region_id']} {endpoint['url']}")
        return sorted(lines)

    def delete(self, user, domain, kind):
        user_id = self.user_id(user, domain)
        if user_id:
            call("DELETE", f"/users/{user_id}", token=self.token, expect=(204,))
        for service in self.get("/services" + query({"type": kind}))["services"]:
            for endpoint in self.get("/endpoints" + query({"service_id": service["id"]}))["endpoints"]:
                call("DELETE", f"/endpoints/{endpoint['id']}", token=self.token, expect=(204,))
            call("DELETE", f"/services/{service['id']}", token=self.token, expect=(204,))

    def revoke_own_token(self):
        API.revoke(self.token)


def main(argv):
    command, args = argv[0], argv[1:]
    keystone = Keystone()
    try:
        if command == "user":
            print(keystone.user(*args))
        elif command == "project":
            print(keystone.project(*args))
        elif command == "role-add":
            print(keystone.role_add(*args))
        elif command == "service":
            print(keystone.service(*args))
        elif command == "endpoint":
            print(keystone.endpoint(*args))
        elif command == "user-id":
            print(keystone.user_id(*args) or "")
        elif command == "assignments":
            print("\n".join(keystone.assignments(*args)))
        elif command == "endpoints":
            print("\n".join(keystone.endpoints(*args)))
        elif command == "delete":
            keystone.delete(*args)
        else:
            raise ApiError(f"unknown command {command}")
    finally:
        keystone.revoke_own_token()


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except (ApiError, OSError, KeyError, TypeError, ValueError) as error:
        print(f"keystone.py: {error}", file=sys.stderr)
        sys.exit(1)
