"""Mixed write load: p50/p99 per request kind, and a count of 5xx answers.

    python3 benches/mixed.py URL ADMIN_PASSWORD [CONNS] [SECONDS]

CONNS clients (32) each hold one keep-alive connection and, for SECONDS (10),
take turns at: creating a service principal (admin), refreshing a person's
token, issuing and revoking a service token, a wrong client secret, and a
client-credentials grant, while one follower long-polls the revocation feed
as roster-client does. Standard library only. Prints one line per kind, then
`5xx=N` and `unseen=N`: revocations answered 200 that the follower never saw.
The figures are the client's, Python threads included.
"""

import base64
import http.client
import json
import sys
import threading
import time
import urllib.parse
import uuid

URL, ADMIN_PW = sys.argv[1], sys.argv[2]
CONNS = int(sys.argv[3]) if len(sys.argv) > 3 else 32
SECONDS = float(sys.argv[4]) if len(sys.argv) > 4 else 10.0
HOST = urllib.parse.urlparse(URL)
RUN = uuid.uuid4().hex[:8]


class Client:
    def __init__(self):
        self.conn = http.client.HTTPConnection(HOST.hostname, HOST.port, timeout=60)

    def request(self, method, path, body=None, headers=None):
        for attempt in (0, 1):
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                r = self.conn.getresponse()
                data = r.read()
                return r.status, data
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(HOST.hostname, HOST.port, timeout=60)
                if attempt:
                    raise

    def form(self, path, fields, basic=None):
        headers = {"content-type": "application/x-www-form-urlencoded"}
        if basic:
            headers["authorization"] = "Basic " + base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
        return self.request("POST", path, urllib.parse.urlencode(fields), headers)

    def json(self, method, path, token, body):
        headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
        return self.request(method, path, json.dumps(body), headers)


def setup():
    c = Client()
    s, b = c.form("/oauth/token", {"grant_type": "password", "username": "admin", "password": ADMIN_PW})
    assert s == 200, b
    admin = json.loads(b)["access_token"]
    secrets = {}
    for name in (f"mix-svc-{RUN}", f"mix-victim-{RUN}"):
        s, b = c.json("POST", "/api/v1/principals", admin, {"kind": "service", "name": name})
        assert s == 201, b
        secrets[name] = json.loads(b)["client_secret"]
    s, b = c.json("POST", "/api/v1/principals", admin,
                  {"kind": "human", "name": f"mix-person-{RUN}", "password": "mixed-load-password"})
    assert s == 201, b
    return admin, secrets


ADMIN, SECRETS = setup()
SVC, VICTIM = f"mix-svc-{RUN}", f"mix-victim-{RUN}"
lock = threading.Lock()
acknowledged = set()
seen = set()
stop_following = threading.Event()
latencies = {}
server_errors = []
deadline = time.monotonic() + SECONDS


def timed(kind, fn):
    t = time.perf_counter()
    status, body = fn()
    ms = (time.perf_counter() - t) * 1000
    with lock:
        latencies.setdefault(kind, []).append(ms)
        if status >= 500:
            server_errors.append((kind, status, body[:200]))
    return status, body


def worker(n):
    c = Client()
    s, b = c.form("/oauth/token", {"grant_type": "password", "username": f"mix-person-{RUN}",
                                   "password": "mixed-load-password"})
    refresh = json.loads(b)["refresh_token"] if s == 200 else None
    i = n
    while time.monotonic() < deadline:
        kind = i % 5
        i += 1
        if kind == 0:
            timed("create", lambda: c.json("POST", "/api/v1/principals", ADMIN,
                                           {"kind": "service", "name": f"mix-{RUN}-{n}-{i}"}))
        elif kind == 1 and refresh:
            s, b = timed("refresh", lambda: c.form("/oauth/token",
                                                   {"grant_type": "refresh_token", "refresh_token": refresh}))
            if s == 200:
                refresh = json.loads(b)["refresh_token"]
        elif kind == 2:
            s, b = c.form("/oauth/token", {"grant_type": "client_credentials"}, (SVC, SECRETS[SVC]))
            if s == 200:
                token = json.loads(b)["access_token"]
                s, _ = timed("revoke", lambda: c.form("/oauth/revoke", {"token": token}, (SVC, SECRETS[SVC])))
                if s == 200:
                    payload = token.split(".")[1]
                    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
                    with lock:
                        acknowledged.add(claims["jti"])
        elif kind == 3:
            timed("wrong secret", lambda: c.form("/oauth/token", {"grant_type": "client_credentials"},
                                                 (VICTIM, "not-the-secret")))
        else:
            timed("client_credentials", lambda: c.form("/oauth/token", {"grant_type": "client_credentials"},
                                                       (SVC, SECRETS[SVC])))


def follower():
    c = Client()
    s, b = c.form("/oauth/token", {"grant_type": "client_credentials"}, (SVC, SECRETS[SVC]))
    token = json.loads(b)["access_token"]
    index = 0
    while True:
        finishing = stop_following.is_set()
        s, b = c.request("GET", f"/api/v1/revocations?index={index}&wait={'0s' if finishing else '2s'}",
                         headers={"authorization": f"Bearer {token}"})
        assert s == 200, b
        page = json.loads(b)
        with lock:
            seen.update(t["jti"] for t in page["tokens"])
        index = page["index"]
        if finishing and not page["more"]:
            return


following = threading.Thread(target=follower)
following.start()
threads = [threading.Thread(target=worker, args=(n,)) for n in range(CONNS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
stop_following.set()
following.join()


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


for kind in ("create", "refresh", "revoke", "wrong secret", "client_credentials"):
    xs = latencies.get(kind, [])
    if xs:
        print(f"{kind}: n={len(xs)} p50_ms={pct(xs, 0.5):.1f} p99_ms={pct(xs, 0.99):.1f}")
print(f"5xx={len(server_errors)}")
print(f"unseen={len(acknowledged - seen)} of {len(acknowledged)} acknowledged revocations")
for e in server_errors[:5]:
    print("  ", e, file=sys.stderr)
