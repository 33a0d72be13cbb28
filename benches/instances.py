#!/usr/bin/env python3
"""Three `roster serve` processes on one PostgreSQL: how long a change made
through one takes to show on the other two, and client_credentials spread
over the three.

    benches/instances.py                       # 200 changes of each kind
    CHANGES=50 benches/instances.py            # fewer
    ROSTER_BIN=target/release/roster PG_ADMIN_URL=postgres://... benches/instances.py

For each kind of change made through instance 1, it polls instances 2 and 3
(one thread each, back to back, no sleep) from the moment instance 1
acknowledged the change until their answers reflect it, and prints p50, p99
and max of those lags:
- a revoked access token: introspection says `active: false`;
- a disabled service: its token introspects `active: false`;
- a removed scope: introspection's `scope` drops it;
- a key rotation (`roster keys rotate`, fewer of these): the new `kid` is in
  the instance's JWKS.
Then wrk drives client_credentials on the three at once, 10 s, and the sum
is printed. Needs wrk and a release build (built when ROSTER_BIN is unset).
"""
import base64
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHANGES = int(os.environ.get("CHANGES", "200"))
ROTATIONS = int(os.environ.get("ROTATIONS", "5"))
PG_ADMIN_URL = os.environ.get("PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
BASE_PORT = int(os.environ.get("PORT", "18281"))
PEPPER = "bench-instances-pepper-0123456789abcdef"
ADMIN_PASSWORD = "bench-instances-admin-pw"


def build():
    binary = os.environ.get("ROSTER_BIN")
    if binary:
        return binary
    subprocess.run(["cargo", "build", "--release", "-q"], cwd=ROOT, check=True)
    return os.path.join(ROOT, "target", "release", "roster")


class Instance:
    """One `roster serve`, and a keep-alive connection per thread."""

    def __init__(self, binary, env, port, issuer):
        self.port = port
        self.proc = subprocess.Popen(
            [binary, "serve", "--listen", f"127.0.0.1:{port}", "--issuer", issuer],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for line in self.proc.stderr:
            if "roster listening on" in line:
                break
        else:
            sys.exit(f"instance on {port} did not start")
        threading.Thread(target=lambda: [None for _ in self.proc.stderr], daemon=True).start()
        self.local = threading.local()

    def conn(self):
        if not hasattr(self.local, "c"):
            self.local.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        return self.local.c

    def call(self, method, path, body=None, token=None, form=None, basic=None):
        headers = {}
        data = None
        if form is not None:
            data = urllib.parse.urlencode(form)
            headers["content-type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body)
            headers["content-type"] = "application/json"
        if token:
            headers["authorization"] = "Bearer " + token
        if basic:
            headers["authorization"] = "Basic " + base64.b64encode(":".join(basic).encode()).decode()
        c = self.conn()
        c.request(method, path, body=data, headers=headers)
        r = c.getresponse()
        raw = r.read()
        if r.status >= 300:
            sys.exit(f"{method} {path} on {self.port}: {r.status} {raw[:200]!r}")
        return json.loads(raw or b"null")

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def report(kind, lags):
    ms = [x * 1000 for x in lags]
    print(f"| {kind} | {len(ms)} | {percentile(ms, 50):.0f} ms | {percentile(ms, 99):.0f} ms | {max(ms):.0f} ms |", flush=True)


def until_everywhere(others, check):
    """Poll each other instance until `check(instance)` holds; the lags."""
    started = time.monotonic()
    lags = [None] * len(others)

    def poll(i, inst):
        while not check(inst):
            if time.monotonic() - started > 30:
                sys.exit(f"instance on {inst.port} never reflected the change")
        lags[i] = time.monotonic() - started

    threads = [threading.Thread(target=poll, args=(i, o)) for i, o in enumerate(others)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return lags


def main():
    binary = build()
    db = f"roster_instances_{os.getpid()}"
    subprocess.run(["psql", PG_ADMIN_URL, "-qAtc", f"CREATE DATABASE {db}"], check=True)
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + db
    env = dict(os.environ, DATABASE_URL=url, ROSTER_SECRET_PEPPER=PEPPER, ROSTER_ADMIN_PASSWORD=ADMIN_PASSWORD, RUST_LOG="warn")
    issuer = f"http://127.0.0.1:{BASE_PORT}"
    instances = []
    try:
        for i in range(3):
            instances.append(Instance(binary, env, BASE_PORT + i, issuer))
        one, others = instances[0], instances[1:]
        admin = one.call("POST", "/oauth/token", form={"grant_type": "password", "username": "admin", "password": ADMIN_PASSWORD})["access_token"]

        def service(name, scopes):
            made = one.call("POST", "/api/v1/principals", token=admin, body={"kind": "service", "name": name, "scopes": scopes})
            return made["id"], made["client_secret"]

        _, rs_secret = service("bench-rs", [])
        rs = ("bench-rs", rs_secret)

        def token(name, secret):
            return one.call("POST", "/oauth/token", form={"grant_type": "client_credentials"}, basic=(name, secret))["access_token"]

        def introspect(inst, tok):
            return inst.call("POST", "/oauth/introspect", form={"token": tok}, basic=rs)

        def warm(tok):
            # Each other instance answers this token (and caches what it needs).
            for o in others:
                for _ in range(3):
                    assert introspect(o, tok)["active"]

        print(f"three instances on one PostgreSQL, {CHANGES} changes of each kind made through the first;")
        print("lag: from the first's acknowledgement until the other two reflect it\n")
        print("| change | samples | p50 | p99 | max |")
        print("|---|---|---|---|---|")

        svc_id, svc_secret = service("bench-svc", ["a", "b"])
        lags = []
        for _ in range(CHANGES):
            tok = token("bench-svc", svc_secret)
            warm(tok)
            one.call("POST", "/oauth/revoke", form={"token": tok}, basic=("bench-svc", svc_secret))
            lags += until_everywhere(others, lambda o: not introspect(o, tok)["active"])
        report("revoked token → introspection inactive", lags)

        lags = []
        for _ in range(CHANGES):
            tok = token("bench-svc", svc_secret)
            warm(tok)
            one.call("PATCH", f"/api/v1/principals/{svc_id}", token=admin, body={"scopes": ["a"]})
            lags += until_everywhere(others, lambda o: introspect(o, tok).get("scope") == "a")
            one.call("PATCH", f"/api/v1/principals/{svc_id}", token=admin, body={"scopes": ["a", "b"]})
        report("scope removed → introspection narrowed", lags)

        lags = []
        for i in range(CHANGES):
            sid, secret = service(f"bench-d{i}", [])
            tok = token(f"bench-d{i}", secret)
            warm(tok)
            one.call("DELETE", f"/api/v1/principals/{sid}", token=admin)
            lags += until_everywhere(others, lambda o: not introspect(o, tok)["active"])
        report("service disabled → introspection inactive", lags)

        lags = []
        for _ in range(ROTATIONS):
            out = subprocess.run([binary, "keys", "rotate"], env=env, check=True, capture_output=True, text=True).stdout
            kid = json.loads(out)["kid"]
            lags += until_everywhere(others, lambda o: any(k["kid"] == kid for k in o.call("GET", "/.well-known/jwks.json")["keys"]))
        report("key rotated (CLI) → JWKS lists it", lags)

        print("\nclient_credentials on the three at once (wrk, 10 s, 3 × 21 connections):")
        script = os.path.join(ROOT, "benches", "wrk", "oauth.lua")
        wrk_env = dict(os.environ, BENCH_BODY="grant_type=client_credentials", BENCH_CLIENT_ID="bench-svc", BENCH_SECRET=svc_secret)
        procs = [
            subprocess.Popen(
                ["wrk", "-t1", "-c21", "-d10s", "-s", script, f"http://127.0.0.1:{o.port}/oauth/token"],
                env=wrk_env,
                stdout=subprocess.PIPE,
                text=True,
            )
            for o in instances
        ]
        total = 0.0
        for o, p in zip(instances, procs):
            out = p.communicate()[0]
            result = dict(kv.split("=") for kv in next(l for l in out.splitlines() if l.startswith("RESULT")).split()[1:])
            if int(result["non2xx"]):
                sys.exit(f"instance on {o.port}: {result['non2xx']} non-2xx answers")
            rps = float(result["rps"])
            total += rps
            print(f"  instance on {o.port}: {rps:,.0f} req/s, p99 {result['p99_ms']} ms")
        print(f"  sum: {total:,.0f} req/s")
    finally:
        for inst in instances:
            inst.stop()
        subprocess.run(["psql", PG_ADMIN_URL, "-qAtc", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"], check=False)


if __name__ == "__main__":
    main()
