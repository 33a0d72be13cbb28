"""Seed a running Roster for benches/bench.sh, over its HTTP API.

Creates the bench clients (bench-svc with api:read, bench-rs which
introspects, bench-act which exchanges tokens for bench-rs, and bench-jwt with private_key_jwt when BENCH_JWKS names its JWK Set), the person bench-user, and SERVICES registry services with
PAGES pages each (pushed manifests). Prints shell assignments of the secrets.

Usage: seed.py BASE_URL ADMIN_PASSWORD SERVICES PAGES
"""
import base64
import json
import os
import sys
import urllib.parse
import urllib.request

base, admin_password, services, pages = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])


def call(method, path, body=None, token=None, form=None, basic=None):
    headers = {}
    data = None
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["content-type"] = "application/x-www-form-urlencoded"
    elif body is not None:
        data = json.dumps(body).encode()
        headers["content-type"] = "application/json"
    if token:
        headers["authorization"] = "Bearer " + token
    if basic:
        headers["authorization"] = "Basic " + base64.b64encode(":".join(basic).encode()).decode()
    req = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"null")


admin = call("POST", "/oauth/token", form={"grant_type": "password", "username": "admin", "password": admin_password})["access_token"]


def service(name, scopes, categories=()):
    body = {"kind": "service", "name": name, "scopes": scopes, "categories": list(categories)}
    return call("POST", "/api/v1/principals", body, token=admin)["client_secret"]


secret = service("bench-svc", ["api:read"])
rs_secret = service("bench-rs", [])
# bench-jwt authenticates with private_key_jwt: its public keys, no secret.
if os.environ.get("BENCH_JWKS"):
    with open(os.environ["BENCH_JWKS"]) as f:
        jwks = json.load(f)
    call("POST", "/api/v1/principals", {"kind": "service", "name": "bench-jwt", "scopes": ["api:read"],
                                         "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks}, token=admin)
call("POST", "/api/v1/principals", {"kind": "human", "name": "bench-user", "password": "bench-user-password",
                                     "scopes": ["api:read"]}, token=admin)
# bench-act acts for its callers towards bench-rs (token exchange, RFC 8693).
act_secret = call("POST", "/api/v1/principals", {"kind": "service", "name": "bench-act",
                                                 "token_exchange": {"audiences": ["bench-rs"]}}, token=admin)["client_secret"]
for i in range(services):
    name = f"svc-{i:03}"
    s = service(name, [], [{"name": f"cat-{i % 5}", "priority": i}])
    token = call("POST", "/oauth/token", form={"grant_type": "client_credentials"}, basic=(name, s))["access_token"]
    call("PUT", f"/api/v1/services/{name}/registration", {"base_url": "http://127.0.0.1:9/", "ttl_seconds": 86400}, token=token)
    manifest = {
        "name": name.upper(),
        "code": name,
        "pages": [
            {"name": f"Page {p}", "code": f"p{p}", "module_link": f"/{name}/p{p}", "icon": "box", "menu_position": p}
            for p in range(pages)
        ],
    }
    call("PUT", f"/api/v1/services/{name}/modules", manifest, token=token)
print(f"SECRET={secret}")
print(f"RS_SECRET={rs_secret}")
print(f"ACT_SECRET={act_secret}")
