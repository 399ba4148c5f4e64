#!/usr/bin/env python3
"""Heap allocations per request of a running userapi, counted by bench/alloc_count.c (an
LD_PRELOAD that counts malloc/calloc/realloc/aligned allocations and reports on SIGUSR2).

It starts the server with the counter, warms one keep-alive connection up, then sends
--requests more on it (pipelined in groups of 100), reading the counter before and after.

usage: bench/allocs.py --binary build/userapi [--requests 20000] [--path /users/1]
                      [--max-per-request X] [--api-key] [--header 'Name: value'] [-- server args]
--api-key makes a key with the binary's new-api-key, serves it from a key file and sends it as
a bearer on every request (the authenticated cached hit).
With --max-per-request it fails (exit 1) when the figure is higher or an answer is not 200:
CTest runs it that way, so an allocation that creeps back onto the hot path fails the tests.
"""
import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def build_counter(out):
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", out, os.path.join(HERE, "alloc_count.c")], check=True)


def read_counts(proc, path):
    before = len(open(path).read().splitlines()) if os.path.exists(path) else 0
    proc.send_signal(signal.SIGUSR2)
    for _ in range(200):
        lines = open(path).read().splitlines() if os.path.exists(path) else []
        if len(lines) > before:
            m = re.match(r"allocs (\d+) frees (\d+)", lines[-1])
            return int(m.group(1)), int(m.group(2))
        time.sleep(0.01)
    raise RuntimeError("the counter did not answer")


def drive(port, path, n, extra_headers=""):
    """n requests on one keep-alive connection, pipelined 100 at a time; returns the statuses."""
    req = f"GET {path} HTTP/1.1\r\nHost: x\r\n{extra_headers}\r\n".encode()
    statuses = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        buf = b""
        done = 0
        while done < n:
            k = min(100, n - done)
            s.sendall(req * k)
            got = 0
            while got < k:
                while b"\r\n\r\n" not in buf:
                    buf += s.recv(65536)
                head, rest = buf.split(b"\r\n\r\n", 1)
                length = int(m.group(1)) if (m := re.search(rb"Content-Length: (\d+)", head)) else 0
                while len(rest) < length:
                    rest += s.recv(65536)
                statuses.append(int(head.split(b" ", 2)[1]))
                buf = rest[length:]
                got += 1
            done += k
    return statuses


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--path", default="/users/1")
    ap.add_argument("--max-per-request", type=float)
    ap.add_argument("--api-key", action="store_true")
    ap.add_argument("--header", action="append", default=[])
    ap.add_argument("server_args", nargs="*")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="userapi-allocs-")
    lib = os.path.join(work, "alloc_count.so")
    build_counter(lib)
    counts = os.path.join(work, "counts")
    env = dict(os.environ, LD_PRELOAD=lib, ALLOC_COUNT_FILE=counts)
    headers = "".join(h + "\r\n" for h in args.header)
    server_args = list(args.server_args)
    if args.api_key:
        key, entry = subprocess.run([args.binary, "new-api-key", "allocs", "users:read"], capture_output=True,
                                    text=True, check=True).stdout.splitlines()[:2]
        with open(os.path.join(work, "keys.json"), "w") as f:
            f.write('{"keys": [%s]}' % entry)
        server_args += ["--api-keys", os.path.join(work, "keys.json")]
        headers += "Authorization: Bearer %s\r\n" % key
    proc = subprocess.Popen([args.binary, "--port", "0", "--data", ":memory:", "--threads", "1", "--db-latency-ms", "0",
                             *server_args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    try:
        port = int(re.search(r":(\d+)$", proc.stdout.readline().strip()).group(1))
        drive(port, args.path, 2000, headers)  # warm up: the cache, the connection, every recycled block
        a0, f0 = read_counts(proc, counts)
        statuses = drive(port, args.path, args.requests, headers)
        a1, f1 = read_counts(proc, counts)
        print(f"{args.requests} requests of GET {args.path} on one keep-alive connection "
              f"(statuses {sorted(set(statuses))}): {a1 - a0} allocations, {f1 - f0} frees: "
              f"{(a1 - a0) / args.requests:.3f} allocations per request")
        if args.max_per_request is not None:
            if set(statuses) != {200}:
                print(f"FAIL: expected only 200s, got {sorted(set(statuses))}")
                return 1
            if (a1 - a0) / args.requests > args.max_per_request:
                print(f"FAIL: more than {args.max_per_request} allocations per request")
                return 1
        return 0
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
