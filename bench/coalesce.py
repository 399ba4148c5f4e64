#!/usr/bin/env python3
"""Coalescing burst: N connections ask for one cold id at (nearly) the same instant; prints the
X-Cache counts, the database reads the burst cost, and the fastest/median/slowest response.

usage: bench/coalesce.py --port 8080 [--connections 100] [--id 2] [--runs 5] [--origin-port P]
Start the server with --no-rate-limit and --max-connections-per-client at least N (every
connection comes from 127.0.0.1). Each run uses the next id (so it is cold). With --origin-port
the server is a proxy cache in front of bench/origin.py, and the reads are the origin's count.
Only 127.0.0.1 is contacted; every socket has a timeout.
"""
import argparse
import json
import resource
import socket
import selectors
import statistics
import time


def get_json(port, path):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path.encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return json.loads(data.split(b"\r\n\r\n", 1)[1])


def burst(port, uid, n):
    """One thread, non-blocking sockets: all N requests go out in one tight loop (a thread per
    connection would spend longer waking up than the server takes to answer), then every
    response is timestamped as it completes."""
    conns = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(n)]
    time.sleep(0.2)  # let the server accept all of them
    req = b"GET /users/%d HTTP/1.1\r\nHost: x\r\n\r\n" % uid
    sel = selectors.DefaultSelector()
    t0 = time.monotonic()
    for i, c in enumerate(conns):
        c.sendall(req)
        c.setblocking(False)
        sel.register(c, selectors.EVENT_READ, i)
    data = [b""] * n
    done = [None] * n
    xcache = [None] * n
    status = [None] * n
    left = n
    deadline = t0 + 30
    while left and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1):
            i = key.data
            chunk = conns[i].recv(4096)
            data[i] += chunk
            if b"\r\n\r\n" in data[i] or not chunk:
                done[i] = time.monotonic()
                sel.unregister(conns[i])
                left -= 1
                lines = data[i].split(b"\r\n")
                status[i] = lines[0][9:12].decode(errors="replace") if lines[0].startswith(b"HTTP/") else "none"
                for line in lines:
                    if line.lower().startswith(b"x-cache:"):
                        xcache[i] = line.split(b":", 1)[1].strip().decode()
    for c in conns:
        c.close()
    times = sorted((d - t0) * 1000 for d in done if d)
    counts = {k: xcache.count(k) for k in set(xcache)}
    statuses = {k: status.count(k) for k in set(status)}
    return times, counts, statuses


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # 1,000 sockets need more than 1,024 fds


def main():
    raise_fd_limit()
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--connections", type=int, default=100)
    ap.add_argument("--id", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--origin-port", type=int, help="count the reads at this bench/origin.py instead")
    a = ap.parse_args()

    def reads():
        if a.origin_port:
            return get_json(a.origin_port, "/count")["requests"]
        return get_json(a.port, "/cache-status")["db"]["reads"]
    slowest = []
    for run in range(a.runs):
        before = reads()
        times, counts, statuses = burst(a.port, a.id + run, a.connections)
        reads_run = reads() - before
        slowest.append(times[-1])
        if statuses != {"200": a.connections}:  # a refused connection is not a coalesced answer
            print("run %d: not every answer was 200: %s" % (run + 1, statuses))
        print("run %d: id %d, %s, db reads %d, fastest %.1f ms, median %.1f ms, slowest %.1f ms"
              % (run + 1, a.id + run, counts, reads_run, times[0], statistics.median(times), times[-1]))
    print("median of slowest over %d runs: %.1f ms" % (a.runs, statistics.median(slowest)))


if __name__ == "__main__":
    main()
