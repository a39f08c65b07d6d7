"""Keystone's v3 API as provision.py and devstack/tests/keystone.py call it: one request
with an expected status, the admin's password login, and the revocation of its token.

Standard library only; reads no environment (each caller says where Keystone is, who the
admin is and how much of an error's body it shows).
"""

import json
import urllib.error
import urllib.request

# Loopback only: never go through a proxy that the environment may name.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ApiError(Exception):
    pass


class Api:
    def __init__(self, url, excerpt):
        """url: Keystone's .../v3; excerpt: how many bytes of an error's body an ApiError shows."""
        self.url = url.rstrip("/")
        self.excerpt = excerpt

    def call(self, method, path, body=None, token=None, extra=None, expect=(200,)):
        """(headers, parsed JSON body or None); ApiError unless the status is in expect."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("X-Auth-Token", token)
        for name, value in (extra or {}).items():
            request.add_header(name, value)
        try:
            with OPENER.open(request, timeout=30) as response:
                status, headers, raw = response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            status, headers, raw = error.code, error.headers, error.read()
        if status not in expect:
            # The body of an error never holds a password (Keystone does not echo it).
            raise ApiError(f"{method} {path}: HTTP {status}: {raw[:self.excerpt]!r}")
        return headers, (json.loads(raw) if raw else None)

    def admin_token(self, user, password):
        """A token of user (domain default) scoped to project admin, by password."""
        headers, _ = self.call(
            "POST",
            "/auth/tokens?nocatalog",
            {
                "auth": {
                    "identity": {
                        "methods": ["password"],
                        "password": {
                            "user": {
                                "name": user,
                                "domain": {"id": "default"},
                                "password": password,
                            }
                        },
                    },
                    "scope": {"project": {"name": "admin", "domain": {"id": "default"}}},
                }
            },
            expect=(201,),
        )
        return headers["X-Subject-Token"]

    def revoke(self, token):
        """Revokes token with itself."""
        self.call("DELETE", "/auth/tokens", token=token, extra={"X-Subject-Token": token}, expect=(204,))
