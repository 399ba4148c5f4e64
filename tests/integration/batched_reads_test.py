#!/usr/bin/env python3
"""Batched reads (--db-batch-reads, issue 20) over real sockets, on SQLite and on a PostgreSQL
of its own (--db-concurrency 2): distinct cold ids read by one operation, each answered with its
own user or its 404 (remembered), a write between reads splitting the batch (a read of the
written id queued after the write sees it), and version order for a batch racing a PATCH.

    batched_reads_test.py --binary build/userapi [--stores sqlite,postgresql]

Exit 0 when every check passed; 77 when PostgreSQL is missing (not under CI=true) and SQLite
passed; else 1. Talks only to 127.0.0.1; every wait is bounded; every server it starts it stops.
"""
import argparse
import http.client
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "engines"))
from engines import Postgres  # noqa: E402

LATENCY_MS = 1000  # long enough that every request of a check is in before a batch's latency ends
MERGE = {"Content-Type": "application/merge-patch+json"}


class Server:
    def __init__(self, binary, args, workdir):
        self.out = tempfile.NamedTemporaryFile(dir=workdir, prefix="userapi-", suffix=".log", delete=False)
        self.proc = subprocess.Popen([binary, "--port", "0"] + args, stdout=subprocess.PIPE, stderr=self.out,
                                     stdin=subprocess.DEVNULL, text=True, cwd=workdir)
        ready, _, _ = select.select([self.proc.stdout], [], [], 30)
        line = self.proc.stdout.readline() if ready else ""
        m = re.match(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if not m:
            self.stop()
            raise RuntimeError("userapi did not start: %r %s" % (line, open(self.out.name).read()[-2000:]))
        self.port = int(m.group(1))
        # Ready: on PostgreSQL, the watch listens (a cache reset when it first hears would
        # empty what the checks cached).
        deadline = time.monotonic() + 30
        while call(self.port, "GET", "/readyz")[0] != 200:
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("userapi was not ready within 30 s")
            time.sleep(0.05)

    def status(self):
        return json.loads(call(self.port, "GET", "/cache-status")[2])

    def stop(self):
        """Stops it; returns what went wrong: an exit other than 0 on SIGTERM, a sanitizer's report."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        log = open(self.out.name, errors="replace").read()
        bad = ["exit status %s on SIGTERM" % self.proc.returncode] if self.proc.returncode != 0 else []
        bad += [line for line in log.splitlines() if "Sanitizer" in line or "runtime error:" in line][:3]
        return bad


def call(port, method, path, body=None, headers=None, conn=None, timeout=30):
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=json.dumps(body) if isinstance(body, dict) else body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        c.close()


def version_of(headers):
    etag = headers.get("etag", "")
    return int(etag.strip('"').split("-")[1]) if "-" in etag else None


class Background:
    """One request on its own thread; result() waits for it, done_at is when it was answered."""

    def __init__(self, port, method, path, body=None, headers=None):
        self.value, self.done_at = None, None
        self.thread = threading.Thread(target=self._run, args=(port, method, path, body, headers), daemon=True)
        self.thread.start()

    def _run(self, *a):
        try:
            self.value = call(*a)
        except Exception as e:  # reported as a failed call
            self.value = (0, {}, repr(e).encode())
        self.done_at = time.monotonic()

    def result(self):
        self.thread.join(30)
        return self.value or (0, {}, b"no answer within 30 s")


def wait_for(server, what, pred, seconds=10):
    """Polls /cache-status until pred(status) holds; False when it did not within `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if pred(server.status()):
            return True
        time.sleep(0.01)
    return False


def distinct_ids(s, bad):
    """22 concurrent cold GETs (20 users, 2 unknown ids) cost one database operation."""
    before = s.status()["db"]
    ids = list(range(1, 21)) + [900, 901]
    conns = [http.client.HTTPConnection("127.0.0.1", s.port, timeout=30) for _ in ids]
    for c in conns:
        c.connect()  # connected before the gate: the requests leave together
    gate = threading.Barrier(len(ids))
    results = [None] * len(ids)

    def run(i):
        gate.wait(10)
        try:
            results[i] = call(s.port, "GET", "/users/%d" % ids[i], conn=conns[i])
        except Exception as e:
            results[i] = (0, {}, repr(e).encode())
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(ids))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for i, r in zip(ids, results):
        st, h, body = r
        if i < 900:
            if st != 200 or json.loads(body).get("id") != i or h.get("x-cache") != "MISS":
                bad.append("GET /users/%d: %d %s %r" % (i, st, h.get("x-cache"), body[:120]))
        elif st != 404:
            bad.append("GET /users/%d (no such user): %d %r" % (i, st, body[:120]))
    after = s.status()["db"]
    if after["reads"] - before["reads"] != 1 or after["batched_ids"] - before["batched_ids"] != len(ids):
        bad.append("22 cold GETs cost %d reads of %d ids (one read of 22 expected)" % (
            after["reads"] - before["reads"], after["batched_ids"] - before["batched_ids"]))
    st, h, _ = call(s.port, "GET", "/users/900")
    if st != 404 or h.get("x-cache") != "HIT":
        bad.append("the 404 of a batch was not remembered: %d %s" % (st, h.get("x-cache")))


def write_splits(s, bad):
    """GET 21 opens a batch; PATCH 23 is queued; GET 23 and 24 come after it: GET 23 does not
    join the open batch (it would read 23 before the PATCH) and sees version 2."""
    first = Background(s.port, "GET", "/users/21")
    if not wait_for(s, "the read of 21 in flight", lambda st: st["coalescing"]["inflight"] == 1):
        bad.append("the read of 21 never showed as in flight")
    patch = Background(s.port, "PATCH", "/users/23", {"name": "Patched"}, MERGE)
    if not wait_for(s, "the PATCH queued", lambda st: st["db"]["queue_depth"] == 2):
        bad.append("the PATCH never showed in the queue")
    late = [Background(s.port, "GET", "/users/%d" % i) for i in (23, 24)]
    st, h, body = late[0].result()
    if st != 200 or version_of(h) != 2 or json.loads(body).get("name") != "Patched":
        bad.append("GET 23 queued after PATCH 23 got %d %s %r: it overtook the write" % (st, h.get("etag"), body[:120]))
    pst = patch.result()[0]
    if pst != 200:
        bad.append("PATCH answered %d" % pst)
    if first.result()[0] != 200 or late[1].result()[0] != 200:
        bad.append("GET 21 / 24 not 200: %d / %d" % (first.result()[0], late[1].result()[0]))
    if first.done_at and late[0].done_at and first.done_at > late[0].done_at:
        bad.append("GET 21 (before the write) was answered after GET 23 (after it)")


def batch_races_patch(s, bad, rounds=3):
    """A batch of two ids and a PATCH of one of them (on PostgreSQL the PATCH runs on the other
    connection, racing the batch): once the PATCH is answered, no GET of it is older."""
    for k in range(rounds):
        a, b = 26 + 2 * k, 27 + 2 * k
        reads = [Background(s.port, "GET", "/users/%d" % i) for i in (a, b)]
        wait_for(s, "the batch in flight", lambda st: st["coalescing"]["inflight"] >= 2)
        st, h, _ = call(s.port, "PATCH", "/users/%d" % b, {"name": "Race %d" % k}, MERGE)
        if st != 200:
            bad.append("round %d: PATCH answered %d" % (k, st))
            continue
        written = version_of(h)
        for r in reads:
            r.result()
        for _ in range(3):
            st, h, _ = call(s.port, "GET", "/users/%d" % b)
            if st != 200 or version_of(h) != written:
                bad.append("round %d: GET after the PATCH's answer (v%s) got %d %s %s" % (
                    k, written, st, h.get("etag"), h.get("x-cache")))


CHECKS = [distinct_ids, write_splits, batch_races_patch]


def run_store(args, label, extra, workdir):
    s = Server(args.binary, ["--db-batch-reads", "64", "--db-latency-ms", str(LATENCY_MS), "--seed-users", "40",
                             "--no-rate-limit", "--cache-stale-ms", "0"] + extra, workdir)
    failed = 0
    try:
        for check in CHECKS:
            bad, started = [], time.monotonic()
            check(s, bad)
            took = time.monotonic() - started
            if bad:
                failed += 1
                print("FAIL  %s: %s (%.1fs)\n    %s" % (label, check.__name__, took, "\n    ".join(bad)))
            else:
                print("PASS  %s: %s (%.1fs)" % (label, check.__name__, took))
    finally:
        stopped = s.stop()
    if stopped:
        failed += 1
        print("FAIL  %s: the server\n    %s" % (label, "\n    ".join(stopped)))
    return failed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--stores", default="sqlite,postgresql")
    args = ap.parse_args()
    args.binary = os.path.abspath(args.binary)
    stores = args.stores.split(",")
    workdir = tempfile.mkdtemp(prefix="userapi-batched-")
    failed, skipped, pg = 0, False, None
    try:
        if "sqlite" in stores:
            failed += run_store(args, "sqlite", ["--data", os.path.join(workdir, "users.db")], workdir)
        if "postgresql" in stores:
            if Postgres.available():
                pg = Postgres(os.path.join(workdir, "pg")).start()
                failed += run_store(args, "postgresql --db-concurrency 2",
                                    ["--data", pg.uri(), "--db-concurrency", "2"], workdir)
            elif os.environ.get("CI") == "true":
                print("FAIL: PostgreSQL is missing under CI (scripts/deps --test-tools installs it)")
                failed += 1
            else:
                print("SKIP: PostgreSQL is not installed")
                skipped = True
    finally:
        if pg:
            pg.stop("immediate")
        shutil.rmtree(workdir, ignore_errors=True)
    sys.exit(1 if failed else 77 if skipped else 0)


if __name__ == "__main__":
    main()
