#!/usr/bin/env python3
"""Soak test (on demand, not in CI): a mixed load against a fresh userapi for a set time, then
checks: no unexpected 5xx, no connection errors for honest clients, RSS at the end within 10 %
of RSS after warm-up.

usage: tests/soak/soak.py --binary build/userapi [--duration 600] [--warmup 30]

Load, all on 127.0.0.1: cache hits on keep-alive connections, cold misses, coalesced bursts,
POSTs, one abusive client collecting 429s, cache clears, and malformed requests. Honest clients
are told apart by X-Forwarded-For (the server trusts 127.0.0.1 as a proxy) and stay far below
their rate limit. Every loop ends at the deadline; every socket has a timeout.
"""
import argparse
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter

HOST = "127.0.0.1"
TOKEN = "soak-token"


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = Counter()      # kind -> count
        self.statuses = Counter()      # (kind, status) -> count
        self.errors = Counter()        # (kind, error) -> count

    def add(self, kind, status=None, error=None):
        with self.lock:
            self.requests[kind] += 1
            if status is not None:
                self.statuses[(kind, status)] += 1
            if error is not None:
                self.errors[(kind, error)] += 1


def read_response(sock, buf):
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    head, buf = buf.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    while len(buf) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed mid-body")
        buf += chunk
    return status, buf[length:]


def req(method, path, xff, body=None, extra=""):
    h = "%s %s HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: %s\r\n%s" % (method, path, xff, extra)
    if body is not None:
        h += "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
    return (h + "\r\n").encode() + (body.encode() if body else b"")


def keepalive_worker(port, kind, xff, paths, deadline, stats, pace, allowed, extra=""):
    """Requests on one keep-alive connection (reconnecting if the server closes it)."""
    sock, buf = None, b""
    while time.monotonic() < deadline:
        try:
            if sock is None:
                sock = socket.create_connection((HOST, port), timeout=10)
                buf = b""
            method, path, body = paths()
            sock.sendall(req(method, path, xff, body, extra))
            status, buf = read_response(sock, buf)
            stats.add(kind, status=status)
            if status not in allowed:
                stats.add(kind + "-unexpected", status=status)
        except (OSError, ConnectionError, ValueError, IndexError) as e:
            stats.add(kind, error=type(e).__name__)
            if sock:
                sock.close()
            sock = None
        time.sleep(pace)
    if sock:
        sock.close()


def burst_worker(port, deadline, stats, first_id):
    """Every 2 s, 30 connections ask one cold id at once: a coalesced read."""
    uid = first_id
    while time.monotonic() < deadline:
        conns = []
        try:
            conns = [socket.create_connection((HOST, port), timeout=10) for _ in range(30)]
            for i, c in enumerate(conns):
                c.sendall(req("GET", "/users/%d" % uid, "10.2.%d.%d" % (uid % 250, i)))
            for c in conns:
                status, _ = read_response(c, b"")
                stats.add("burst", status=status)
                if status not in (200, 404):
                    stats.add("burst-unexpected", status=status)
        except (OSError, ConnectionError) as e:
            stats.add("burst", error=type(e).__name__)
        finally:
            for c in conns:
                c.close()
        uid += 1
        time.sleep(2)


MALFORMED = [
    b"\x16\x03\x01\x02\x00 garbage\r\n\r\n",
    b"GET /users/1 HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 10000 + b"\r\n\r\n",
    b"POST /users HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST /users HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 3\r\n\r\n{{{",
    b"GET /users/%00 HTTP/1.1\r\n\r\n",
]


def malformed_worker(port, deadline, stats):
    while time.monotonic() < deadline:
        data = random.choice(MALFORMED)
        try:
            with socket.create_connection((HOST, port), timeout=10) as s:
                s.sendall(data)
                status, _ = read_response(s, b"")
                stats.add("malformed", status=status)
                if status >= 500:
                    stats.add("malformed-unexpected", status=status)
        except (OSError, ConnectionError) as e:
            stats.add("malformed", error=type(e).__name__)   # a close is an acceptable answer
        time.sleep(0.02)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--duration", type=float, default=600)
    ap.add_argument("--warmup", type=float, default=30)
    a = ap.parse_args()

    workdir = tempfile.mkdtemp(prefix="userapi-soak-")
    with socket.socket() as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([a.binary, "--port", str(port), "--data", os.path.join(workdir, "soak.db"),
                             "--seed-users", "5000", "--db-latency-ms", "5", "--trusted-proxy", "127.0.0.1/32",
                             "--rate-limit-capacity", "50", "--rate-limit-refill-per-minute", "30000",
                             "--admin-token", TOKEN, "--log-level", "warn"],
                            stdout=subprocess.PIPE, stderr=open(os.path.join(workdir, "server.log"), "w"))
    line = proc.stdout.readline().decode()
    if "listening on" not in line:
        print("server did not start: %r" % line)
        return 2
    stats = Stats()
    start = time.monotonic()
    deadline = start + a.warmup + a.duration
    posts = iter(range(10 ** 9))
    kinds = [
        # (kind, xff, request maker, pace seconds, allowed statuses)
        ("hits", "10.1.0.%d", lambda: ("GET", "/users/%d" % random.randint(1, 50), None), 0.004, {200}),
        ("cold", "10.1.1.%d", lambda: ("GET", "/users/%d" % random.randint(51, 3300), None), 0.01, {200, 404}),
        ("posts", "10.1.2.%d", lambda: ("POST", "/users", '{"name":"Soak","email":"s%d@example.org"}' % next(posts)),
         0.02, {201}),
        ("abuser", "10.9.9.9", lambda: ("GET", "/users/1", None), 0.0005, {200, 429}),
        ("clears", "10.1.3.%d", lambda: ("DELETE", "/cache", None), 5.0, {200}),
    ]
    threads = []
    for kind, xff, maker, pace, allowed in kinds:
        extra = "Authorization: Bearer %s\r\n" % TOKEN if kind == "clears" else ""
        for i in range(4 if kind == "hits" else 1):
            addr = xff % (i + 1) if "%d" in xff else xff
            threads.append(threading.Thread(target=keepalive_worker, daemon=True,
                                            args=(port, kind, addr, maker, deadline, stats, pace, allowed, extra)))
    threads.append(threading.Thread(target=burst_worker, args=(port, deadline, stats, 3301), daemon=True))
    threads.append(threading.Thread(target=malformed_worker, args=(port, deadline, stats), daemon=True))
    for t in threads:
        t.start()
    time.sleep(a.warmup)
    rss_start = rss_kib(proc.pid)
    while time.monotonic() < deadline:
        time.sleep(min(10, max(0.1, deadline - time.monotonic())))
    for t in threads:
        t.join(30)
    rss_end = rss_kib(proc.pid)
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = "killed"

    total = sum(v for k, v in stats.requests.items() if not k.endswith("-unexpected"))
    print("duration %.0f s (+%.0f s warm-up), %d requests, %.0f/s" % (a.duration, a.warmup, total,
                                                                     total / (a.duration + a.warmup)))
    for (kind, status), n in sorted(stats.statuses.items()):
        print("  %-22s %3d  %d" % (kind, status, n))
    for (kind, err), n in sorted(stats.errors.items()):
        print("  %-22s %s  %d" % (kind, err, n))
    print("RSS after warm-up %d KiB, at end %d KiB (%+.1f %%)" % (rss_start, rss_end,
                                                                100.0 * (rss_end - rss_start) / max(rss_start, 1)))
    print("exit status after SIGTERM: %s" % rc)
    unexpected = sum(n for (k, s), n in stats.statuses.items() if k.endswith("-unexpected"))
    honest_errors = sum(n for (k, e), n in stats.errors.items() if k not in ("malformed", "abuser"))
    ok = unexpected == 0 and honest_errors == 0 and rss_end <= rss_start * 1.10 and rc == 0
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
