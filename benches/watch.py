"""Precise blocking queries under load: WATCHERS long polls spread over the
seeded services (GET /api/v1/services/svc-NNN?index=I&wait=60s), then one
change to svc-000 and a burst of heartbeats that change nothing. Prints how
many watchers each answered and how long the watchers of svc-000 waited.

Usage: python3 benches/watch.py URL ADMIN_PASSWORD SERVICES WATCHERS METRICS_URL
It starts once the server's roster_long_polls_waiting{feed="registry"} gauge
(at METRICS_URL) counts every watcher. Exits non-zero if a watcher of another
service was answered (the registry is then not precise), or a watcher of
svc-000 was not.
"""

import json
import sys
import threading
import time
import urllib.parse
import urllib.request

base, admin_password, services, watchers = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
metrics_url = sys.argv[5]


def call(method, path, body=None, token=None, form=None, timeout=10):
    data, headers = None, {}
    if body is not None:
        data, headers["content-type"] = json.dumps(body).encode(), "application/json"
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
    if token:
        headers["authorization"] = f"Bearer {token}"
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.headers, json.loads(r.read() or b"null")


admin = call("POST", "/oauth/token", form={"grant_type": "password", "username": "admin", "password": admin_password})[1][
    "access_token"
]
index = int(call("GET", "/api/v1/services", token=admin)[0]["X-Roster-Index"])
answered = {}  # watcher -> seconds since the change
lock = threading.Lock()
changed_at = [None]


def watch(k):
    name = f"svc-{k % services:03}"
    try:
        call("GET", f"/api/v1/services/{name}?index={index}&wait=60s", token=admin, timeout=70)
    except Exception:  # noqa: BLE001 - a watcher cut off at exit
        return
    with lock:
        answered[k] = time.monotonic() - (changed_at[0] or time.monotonic())


threads = [threading.Thread(target=watch, args=(k,), daemon=True) for k in range(watchers)]
for t in threads:
    t.start()


def waiting():
    """Long polls the server holds now, by its own gauge (read on its 1 s tick)."""
    with urllib.request.urlopen(metrics_url, timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith('roster_long_polls_waiting{feed="registry"}'):
                return int(float(line.split()[-1]))
    return 0


deadline = time.monotonic() + 30
while waiting() < watchers:
    if time.monotonic() > deadline:
        sys.exit(f"only {waiting()} of {watchers} long polls reached the server within 30 s")
    time.sleep(0.05)  # polling the gauge, a condition with a deadline

# Heartbeats that change nothing: no watcher may be answered.
for i in range(1, min(services, 20)):
    call("POST", f"/api/v1/services/svc-{i:03}/heartbeat", token=admin)
time.sleep(1)
after_heartbeats = len(answered)

# One change to svc-000: a new replica.
changed_at[0] = time.monotonic()
call("PUT", "/api/v1/services/svc-000/instances/bench-2", {"base_url": "http://127.0.0.1:9/", "ttl_seconds": 86400}, token=admin)
own = [k for k in range(watchers) if k % services == 0]
deadline = time.monotonic() + 10
while time.monotonic() < deadline:
    with lock:
        if all(k in answered for k in own):
            break
    time.sleep(0.005)
time.sleep(1)
with lock:
    waits = sorted(answered[k] * 1000 for k in own if k in answered)
    others = [k for k in answered if k % services != 0]
p50 = waits[len(waits) // 2] if waits else float("nan")
print(
    f"blocking queries: {watchers} watchers over {services} services; {min(services, 20) - 1} heartbeats that change nothing "
    f"answered {after_heartbeats}; one change to svc-000 answered its {len(waits)} of {len(own)} watchers "
    f"(p50 {p50:.1f} ms, max {max(waits) if waits else float('nan'):.1f} ms) and {len(others)} of the other {watchers - len(own)}"
)
sys.exit(0 if after_heartbeats == 0 and not others and len(waits) == len(own) else 1)
