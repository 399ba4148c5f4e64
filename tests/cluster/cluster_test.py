#!/usr/bin/env python3
"""Three real userapi instances sharing one PostgreSQL and one Redis, all on 127.0.0.1 and
started here (nothing is assumed to run already), and nginx in front for the last check.

Checks, each printed with what was measured:
  seeding once when started together; unique ids from 120 concurrent creates; one email posted
  to three instances at once (one 201, two 409); a patch seen by an instance that had the user
  cached, within 100 ms, 20 of 20; a cached 404 ended by a create elsewhere; DELETE /cache
  everywhere; one client round-robin over the instances held to the capacity (+-1), also with
  30 concurrent requests; Redis stopped (answers within a second, by the fallback) and back
  (one limit again); PostgreSQL stopped (cached users 200, misses and creates 503 with
  Retry-After, /readyz 503, no exit) and back (creates succeed, no restart); an instance
  SIGKILLed behind nginx under a create load loses no acknowledged create.

usage: cluster_test.py --binary build/userapi [--only NAME ...]
Skips (77) when PostgreSQL, Redis or nginx is missing, unless CI=true.
"""
import argparse
import concurrent.futures as futures
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fleet  # noqa: E402  (also puts tests/engines and tests/ops on the path)
from engines import Postgres, Redis  # noqa: E402
from harness import Failures, call, find_tool, free_port, missing, wait_until  # noqa: E402
import nginx_test  # noqa: E402  (renders deploy/nginx/userapi.conf)

CAPACITY = 5
_clients = itertools.count(1)


def fresh_client():
    """A client address nobody used yet: its own bucket (the instances trust 127.0.0.1)."""
    n = next(_clients)
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


class Instance(fleet.Instance):
    def __init__(self, binary, pg_uri, redis_uri, name, extra=()):
        super().__init__(binary, name, [
            "--data", pg_uri, "--rate-limit-store", redis_uri,
            "--trusted-proxy", "127.0.0.1/32", "--trusted-proxy", "127.0.0.2/32",
            "--rate-limit-capacity", str(CAPACITY), "--db-latency-ms", "0", "--db-concurrency", "4",
            "--seed-users", "10", "--log-level", "warn", *extra])

    def req(self, method, path, body=None, headers=None, client=None):
        h = {"X-Forwarded-For": client or fresh_client()}
        if body is not None:
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        status, hdrs, data = call(self.port, method, path, headers=h,
                                  body=json.dumps(body) if isinstance(body, dict) else body)
        return status, hdrs, data

    def json(self, method, path, body=None, headers=None):
        status, hdrs, data = self.req(method, path, body, headers)
        return status, hdrs, (json.loads(data) if data else None)


def create(inst, tag):
    return inst.json("POST", "/users", {"name": f"Cluster {tag}", "email": f"{tag}@cluster.example"})


def check_seeded_once(f, pg, started):
    count = pg.psql("SELECT count(*) || ' ' || min(id) || ' ' || max(id) FROM users")
    f.check(count == "10 1 10", f"three instances started together against an empty database seeded once: "
                                f"count, min, max = {count}")
    f.check(all(i.alive() for i in started), "all three instances started")


def check_unique_ids(f, insts):
    def one(k):
        return create(insts[k % 3], f"uniq{k}")
    with futures.ThreadPoolExecutor(40) as pool:
        results = list(pool.map(one, range(120)))
    ids = [b["id"] for s, _, b in results if s == 201]
    f.check(len(ids) == 120 and len(set(ids)) == 120,
            f"120 concurrent creates across three instances: {len(ids)} created, {len(set(ids))} distinct ids")


def check_one_email(f, insts):
    outcomes = []
    for round_ in range(5):
        barrier = threading.Barrier(3)

        def post(i):
            barrier.wait()
            return create(insts[i], f"same{round_}")[0]
        with futures.ThreadPoolExecutor(3) as pool:
            outcomes.append(sorted(pool.map(post, range(3))))
    f.check(all(o == [201, 409, 409] for o in outcomes),
            f"one email posted to three instances at once, 5 rounds: {outcomes}")


def check_patch_seen_elsewhere(f, insts):
    a, b = insts[0], insts[1]
    lags = []
    for k in range(20):
        _, _, u = create(a, f"seen{k}")
        path = f"/users/{u['id']}"
        # B caches the user; the create's own notification may still be on its way and drop it
        # once more, so ask until B answers from its cache.
        if not wait_until(lambda: b.req("GET", path)[1].get("x-cache") == "HIT", timeout=2.0, step=0.005):
            f.check(False, f"user {u['id']} not cached on B before the patch")
        s, _, _ = a.req("PATCH", path, body=json.dumps({"name": f"Renamed {k}"}),
                        headers={"Content-Type": "application/merge-patch+json"})
        answered = time.monotonic()
        seen = None
        while time.monotonic() - answered < 1.0:
            s, _, data = b.req("GET", path)
            if json.loads(data)["name"] == f"Renamed {k}":
                seen = time.monotonic() - answered
                break
        lags.append(seen)
    within = [x for x in lags if x is not None and x <= 0.1]
    shown = sorted(round(x * 1000, 1) for x in lags if x is not None)
    f.check(len(within) == 20, f"a patch on A seen on B (which had it cached) within 100 ms: {len(within)} of 20; "
                               f"ms from A's answer to B's first new answer: median {shown[len(shown)//2] if shown else '-'}, "
                               f"max {shown[-1] if shown else '-'}")


def check_cached_404_ended(f, insts):
    a, b = insts[0], insts[1]
    _, _, u = create(a, "neg-probe")
    nxt = u["id"] + 1
    s1, h1, _ = b.req("GET", f"/users/{nxt}")
    s2, h2, _ = b.req("GET", f"/users/{nxt}")
    _, _, made = create(a, "neg-made")
    start = time.monotonic()
    ok = wait_until(lambda: b.req("GET", f"/users/{nxt}")[0] == 200, timeout=1.0, step=0.002)
    took = (time.monotonic() - start) * 1000
    f.check(s1 == 404 and s2 == 404 and h2.get("x-cache") == "HIT" and made["id"] == nxt and ok and took <= 100,
            f"a 404 cached on B ({h1.get('x-cache')}, then {h2.get('x-cache')}) ended by a create of id {made['id']} "
            f"on A: 200 on B after {took:.1f} ms")


def check_clear_everywhere(f, insts):
    for i in insts:
        for uid in (1, 2, 3):
            i.req("GET", f"/users/{uid}")
    sizes = [i.json("GET", "/cache-status")[2]["cache"]["size"] for i in insts]
    s, _, body = insts[0].json("DELETE", "/cache")
    start = time.monotonic()
    ok = wait_until(lambda: all(i.json("GET", "/cache-status")[2]["cache"]["size"] == 0 for i in insts[1:]),
                    timeout=1.0, step=0.005)
    f.check(s == 200 and ok, f"DELETE /cache on A ({body}) emptied B and C too, within "
                             f"{(time.monotonic() - start) * 1000:.1f} ms (sizes before: {sizes})")


def admitted_round_robin(insts, client, n=15):
    return sum(1 for k in range(n) if insts[k % 3].req("GET", "/users/1", client=client)[0] == 200)


def check_one_limit(f, insts):
    got = admitted_round_robin(insts, fresh_client())
    f.check(CAPACITY - 1 <= got <= CAPACITY + 1,
            f"one client round-robin over three instances, 15 quick requests: {got} admitted (capacity {CAPACITY})")
    client = fresh_client()
    barrier = threading.Barrier(30)

    def one(k):
        barrier.wait()
        return insts[k % 3].req("GET", "/users/1", client=client)[0]
    with futures.ThreadPoolExecutor(30) as pool:
        statuses = list(pool.map(one, range(30)))
    got = statuses.count(200)
    f.check(CAPACITY - 1 <= got <= CAPACITY + 1 and statuses.count(429) == 30 - got,
            f"30 concurrent requests of one client over three instances: {got} admitted, "
            f"{statuses.count(429)} refused")


def check_redis_outage(f, insts, redis):
    redis.stop()
    slowest = 0
    statuses = []
    for k in range(6):
        start = time.monotonic()
        statuses.append(insts[k % 3].req("GET", "/users/1")[0])
        slowest = max(slowest, time.monotonic() - start)
    f.check(all(s == 200 for s in statuses) and slowest < 1.0,
            f"Redis stopped: answers keep coming (fallback local): {statuses}, slowest {slowest * 1000:.0f} ms")
    errors = sum(float(re.search(r"^userapi_rate_limit_store_errors_total (\S+)$",
                                 call(i.port, "GET", "/metrics")[2].decode(), re.M).group(1)) for i in insts)
    f.check(errors >= 6, f"each fallback decision counted: userapi_rate_limit_store_errors_total = {errors:.0f}")
    f.check(not insts[0].ready(), "/readyz says unready while Redis is down")
    redis.start()
    ok = wait_until(lambda: all(i.ready() for i in insts), timeout=15)
    got = admitted_round_robin(insts, fresh_client())
    f.check(ok and CAPACITY - 1 <= got <= CAPACITY + 1,
            f"Redis back: every instance ready again and one limit holds: {got} of 15 admitted")


def check_postgres_outage(f, insts, pg):
    a = insts[0]
    a.req("GET", "/users/5")
    s, h, _ = a.req("GET", "/users/5")
    pg.stop("fast")
    time.sleep(0.3)  # let the watch notice; the checks below do not depend on it
    s_cached, h_cached, _ = a.req("GET", "/users/5")
    s_miss, h_miss, _ = a.req("GET", "/users/9")
    s_new, h_new, _ = create(a, "during-outage")
    s_ready = call(a.port, "GET", "/readyz")[0]
    f.check(s_cached == 200 and h_cached.get("x-cache") == "STALE",
            f"PostgreSQL stopped: a cached user is still served, marked stale: {s_cached} "
            f"X-Cache: {h_cached.get('x-cache')}")
    f.check(s_miss == 503 and h_miss.get("retry-after") and s_new == 503 and h_new.get("retry-after"),
            f"a miss and a create are 503 with Retry-After: {s_miss} {s_new}")
    f.check(s_ready == 503, f"/readyz is 503 while PostgreSQL is down: {s_ready}")
    f.check(all(i.alive() for i in insts), "no instance exited")
    pg.start()
    start = time.monotonic()
    ok = wait_until(lambda: create(a, f"after-{time.monotonic()}")[0] == 201, timeout=20, step=0.2)
    f.check(ok, f"PostgreSQL back: creates succeed again without a restart, after {time.monotonic() - start:.1f} s")
    wait_until(lambda: all(i.ready() for i in insts), timeout=15)


def check_sigkill_behind_nginx(f, insts, binary, workdir):
    nginx = find_tool("nginx", "/usr/sbin")
    os.makedirs(workdir, exist_ok=True)
    proc, port = nginx_test.start_nginx(nginx, workdir, [i.port for i in insts])
    acked, failed = [], []
    lock = threading.Lock()
    stop = threading.Event()

    def load(worker):
        k = 0
        while not stop.is_set() and k < 2000:
            k += 1
            try:
                s, _, data = call(port, "POST", "/users", headers={"Content-Type": "application/json",
                                                                   "X-Forwarded-For": fresh_client()},
                                  body=json.dumps({"name": "Load", "email": f"load-{worker}-{k}@cluster.example"}))
            except OSError:
                s, data = None, b""
            with lock:
                (acked if s == 201 else failed).append(json.loads(data)["id"] if s == 201 else s)

    threads = [threading.Thread(target=load, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    victim = insts[2]
    victim.stop(signal.SIGKILL)
    time.sleep(1.5)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    proc.terminate()
    proc.wait(timeout=10)
    missing_ids = [uid for uid in acked if insts[0].req("GET", f"/users/{uid}")[0] != 200]
    f.check(len(acked) > 50 and not missing_ids,
            f"SIGKILL of one instance behind nginx under a create load: {len(acked)} creates acknowledged, "
            f"{len(missing_ids)} of them missing afterwards; {len(failed)} not acknowledged "
            f"({sorted(set(map(str, failed)))})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args()
    if not Postgres.available():
        missing("PostgreSQL (postgresql-15)")
    if not Redis.available():
        missing("redis-server")
    if not find_tool("nginx", "/usr/sbin"):
        missing("nginx")
    f = Failures()
    work = tempfile.mkdtemp(prefix="userapi-cluster-")
    pg = Postgres(os.path.join(work, "pg"))
    redis = Redis(os.path.join(work, "redis"))
    insts = []
    try:
        pg.start()
        redis.start()
        with futures.ThreadPoolExecutor(3) as pool:  # three at once against an empty database
            insts = list(pool.map(lambda n: Instance(args.binary, pg.uri(), redis.uri(), n),
                                  ["api-a", "api-b", "api-c"]))
        wait_until(lambda: all(i.ready() for i in insts), timeout=15)
        checks = [
            ("seeded", lambda: check_seeded_once(f, pg, insts)),
            ("ids", lambda: check_unique_ids(f, insts)),
            ("email", lambda: check_one_email(f, insts)),
            ("patch", lambda: check_patch_seen_elsewhere(f, insts)),
            ("negative", lambda: check_cached_404_ended(f, insts)),
            ("clear", lambda: check_clear_everywhere(f, insts)),
            ("limit", lambda: check_one_limit(f, insts)),
            ("redis", lambda: check_redis_outage(f, insts, redis)),
            ("postgres", lambda: check_postgres_outage(f, insts, pg)),
            ("sigkill", lambda: check_sigkill_behind_nginx(f, insts, args.binary, os.path.join(work, "nginx"))),
        ]
        for name, run in checks:
            if not args.only or name in args.only:
                run()
        promtool = find_tool("promtool", ".tools/prometheus/usr/bin")
        if promtool and (not args.only or "metrics" in args.only):
            text = call(insts[0].port, "GET", "/metrics")[2]
            r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True)
            f.check(r.returncode == 0, f"promtool check metrics on an instance with both stores: exit {r.returncode} "
                                       f"{r.stdout.decode().strip()} {r.stderr.decode().strip()}")
    finally:
        fleet.stop_everything(pg, redis)
        shutil.rmtree(work, ignore_errors=True)
    f.exit()


if __name__ == "__main__":
    main()
