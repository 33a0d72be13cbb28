#!/usr/bin/env python3
"""Replay the connection-holding attack on a fresh `roster serve` and print what an honest client saw.

    benches/slowloris.py [--bin target/release/roster] [--connections 10000] [--sources 40]
                         [--hold 30] [--after 30] [--smoke]

The attacker keeps CONNECTIONS sockets open from SOURCES loopback addresses (127.0.0.2, ...): half
send a chunked token request whose next chunk never comes, half send one chunk to /healthz (which
reads no body) and then nothing. Whenever the server closes one, the attacker opens another, for
HOLD seconds. Meanwhile a separate process asks for a token from 127.0.0.1 ten times a second on a
fresh connection (2 s timeout). Printed: the probe's p50/p99/max and failures, the server's open
descriptors and RSS before, at the peak, and AFTER seconds after the attack ended, and how many
connections the attacker opened. Exit status 1 if any probe failed. Needs python3 and a built
roster; raises its own open-file limit.
"""
import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

UNFINISHED = (b"POST /oauth/token HTTP/1.1\r\nHost: roster\r\nContent-Type: application/x-www-form-urlencoded\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n5\r\ngrant")
UNREAD = b"GET /healthz HTTP/1.1\r\nHost: roster\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def post(url, form, auth=None):
    data = "&".join(f"{k}={v}" for k, v in form.items()).encode()
    req = urllib.request.Request(url, data=data, method="POST")
    req.add_header("Content-Type", "application/x-www-form-urlencoded")
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def probe(port, secret, stop_at, out):
    """Token requests from 127.0.0.1 on fresh connections, 10 a second; latencies (s) or None."""
    body = b"grant_type=client_credentials"
    auth = base64.b64encode(f"probe:{secret}".encode())
    request = (b"POST /oauth/token HTTP/1.1\r\nHost: roster\r\nAuthorization: Basic " + auth +
               b"\r\nContent-Type: application/x-www-form-urlencoded\r\nConnection: close\r\n"
               b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    results = []
    while time.time() < stop_at:
        started = time.perf_counter()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(request)
                reply = b""
                while b"\r\n\r\n" not in reply:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    reply += chunk
            ok = reply.startswith(b"HTTP/1.1 200")
            results.append(time.perf_counter() - started if ok else None)
        except OSError:
            results.append(None)
        time.sleep(max(0.0, 0.1 - (time.perf_counter() - started)))
    out.put(results)


async def attacker(port, source, payload, stop_at, counts):
    while time.time() < stop_at:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
        except OSError:
            counts["connect_failed"] += 1
            await asyncio.sleep(0.05)
            continue
        counts["opened"] += 1
        try:
            writer.write(payload)
            await writer.drain()
            remaining = stop_at - time.time()
            while remaining > 0 and await asyncio.wait_for(reader.read(65536), remaining):
                remaining = stop_at - time.time()
            if remaining > 0:
                counts["closed_by_server"] += 1
        except (OSError, asyncio.TimeoutError):
            if time.time() < stop_at:
                counts["closed_by_server"] += 1
        finally:
            writer.transport.abort()


async def attack(port, connections, sources, stop_at):
    counts = {"opened": 0, "closed_by_server": 0, "connect_failed": 0}
    tasks = []
    for i in range(connections):
        source = f"127.0.0.{2 + i % sources}"
        payload = UNREAD if i % 2 else UNFINISHED
        tasks.append(asyncio.create_task(attacker(port, source, payload, stop_at, counts)))
        if i % 500 == 499:
            await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    return counts


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] if values else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release", "roster"))
    ap.add_argument("--connections", type=int, default=10_000)
    ap.add_argument("--sources", type=int, default=40)
    ap.add_argument("--hold", type=float, default=30)
    ap.add_argument("--after", type=float, default=30)
    ap.add_argument("--smoke", action="store_true", help="200 connections for 3 s, 3 s after (CI)")
    ap.add_argument("--serve-arg", action="append", default=[], help="extra roster serve argument")
    args = ap.parse_args()
    if args.smoke:
        args.connections, args.sources, args.hold, args.after = 200, 4, 3, 3
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < args.connections + 512:
        sys.exit(f"the open-file limit ({hard}) is below {args.connections} connections")

    work = tempfile.mkdtemp(prefix="roster-slowloris.")
    port = free_port()
    env = dict(os.environ, DATABASE_URL=f"sqlite://{work}/roster.db", ROSTER_KEY_FILE=f"{work}/roster.key",
               ROSTER_ADMIN_PASSWORD="bench-admin-password", RUST_LOG="warn")
    server = subprocess.Popen([args.bin, "serve", "--listen", f"127.0.0.1:{port}", *args.serve_arg], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for line in server.stderr:
            if "roster listening on" in line:
                break
        url = f"http://127.0.0.1:{port}"
        admin = post(f"{url}/oauth/token", {"grant_type": "password", "username": "admin",
                                            "password": "bench-admin-password"})["access_token"]
        req = urllib.request.Request(f"{url}/api/v1/principals", method="POST",
                                     data=json.dumps({"kind": "service", "name": "probe"}).encode())
        req.add_header("Content-Type", "application/json")
        req.add_header("Authorization", f"Bearer {admin}")
        with urllib.request.urlopen(req, timeout=10) as r:
            secret = json.load(r)["client_secret"]
        post(f"{url}/oauth/token", {"grant_type": "client_credentials"}, f"probe:{secret}")

        pid = server.pid
        base_rss, base_fds = rss_mib(pid), fds(pid)
        stop_at = time.time() + args.hold
        out = multiprocessing.Queue()
        prober = multiprocessing.Process(target=probe, args=(port, secret, stop_at, out))
        prober.start()
        peak = {"rss": base_rss, "fds": base_fds}

        async def sample():
            while time.time() < stop_at:
                peak["rss"] = max(peak["rss"], rss_mib(pid))
                peak["fds"] = max(peak["fds"], fds(pid))
                await asyncio.sleep(0.5)

        async def run():
            counts, _ = await asyncio.gather(attack(port, args.connections, args.sources, stop_at), sample())
            return counts

        counts = asyncio.run(run())
        results = out.get()
        prober.join()
        time.sleep(args.after)  # the figure asked for is RSS this long after the attack
        after_rss, after_fds = rss_mib(pid), fds(pid)
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)

    ok = [r * 1000 for r in results if r is not None]
    failed = sum(1 for r in results if r is None)
    print(f"attack: {args.connections} connections from {args.sources} addresses for {args.hold:g} s; "
          f"{counts['opened']} opened in all, {counts['closed_by_server']} closed by the server, "
          f"{counts['connect_failed']} connects failed")
    print(f"probe:  {len(results)} token requests, {failed} failed; "
          f"p50 {percentile(ok, 0.5):.1f} ms, p99 {percentile(ok, 0.99):.1f} ms, max {max(ok, default=float('nan')):.1f} ms")
    print(f"fds:    {base_fds} before, {peak['fds']} at the peak, {after_fds} {args.after:g} s after")
    print(f"RSS:    {base_rss:.1f} MiB before, {peak['rss']:.1f} MiB at the peak, "
          f"{after_rss:.1f} MiB {args.after:g} s after ({after_rss / base_rss:.2f}x)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
