#!/usr/bin/env python3
"""Benchmarks of several instances: the Redis rate limiter against the local one, how far
notifications lag between instances, and creates on PostgreSQL against SQLite. Every figure
comes from one run on this machine, alternating the things compared (A B A B ...), medians of
--rounds runs. PostgreSQL and Redis are started here, on free loopback ports.

usage: bench/stores.py --build build-bench [--rounds 3] [--duration 5] [--writes 1000] [--only redis,refusals,lag,post]
(bench/run installs what it needs; `bench/run --only stores` runs this.)
"""
import argparse
import http.client
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "engines"))
import run  # noqa: E402
from engines import Postgres, Redis  # noqa: E402


def table(title, results):
    print(f"\n{title}\n\n| setup | requests/s | p50 | p99 | CPU/request | of the first |\n|---|---|---|---|---|---|")
    base = run.med(next(iter(results.values())), "rps")
    for name, runs in results.items():
        print("| %s | %s | %.2f ms | %.2f ms | %.1f µs | %.2f |" % (
            name, "{:,.0f}".format(run.med(runs, "rps")), run.med(runs, "p50"), run.med(runs, "p99"),
            run.med(runs, "cpu_us"), run.med(runs, "rps") / base))


def alternate(setups, path, args, workdir, connections=50, script=None, prime=True):
    """Starts each setup's server once, then runs wrk on each in turn, --rounds times."""
    servers = {name: run.Userapi(args.build, a, workdir) for name, a in setups.items()}
    results = {name: [] for name in setups}
    try:
        if prime:
            for s in servers.values():
                run.http_get(s.port, "/users/1")
        for _ in range(args.rounds):
            for name, s in servers.items():
                results[name].append(run.wrk(s, path, args.duration, connections=connections, script=script))
    finally:
        for s in servers.values():
            s.stop()
    return results


def bench_redis(args, workdir, redis):
    many = ["--threads", "1", "--rate-limit-capacity", "1000000000", "--rate-limit-refill-per-minute", "1000000000",
            "--db-latency-ms", "0"]
    results = alternate({
        "local buckets": many,
        "Redis, pipelined": many + ["--rate-limit-store", redis.uri()],
        "Redis, one command in flight (no pipelining)": many + ["--rate-limit-store", redis.uri(), "--no-rate-limit-store-pipelining"],
    }, "/users/1", args, workdir)
    table("Cache hits on one I/O thread, every request a rate-limit decision (admitted), wrk -t1 -c50:", results)


def bench_refusals(args, workdir, redis):
    few = ["--threads", "1", "--db-latency-ms", "0"]
    results = alternate({
        "local buckets": few,
        "Redis, denials remembered": few + ["--rate-limit-store", redis.uri()],
        "Redis, every refusal asks": few + ["--rate-limit-store", redis.uri(), "--no-rate-limit-denial-cache"],
    }, "/users/1", args, workdir)
    table("One client past its burst: every request refused (429) but the first 5, wrk -t1 -c50:", results)


def bench_lag(args, workdir, pg):
    a = run.Userapi(args.build, ["--data", pg.uri(), "--no-rate-limit", "--db-latency-ms", "0"], workdir)
    b = run.Userapi(args.build, ["--data", pg.uri(), "--no-rate-limit", "--db-latency-ms", "0"], workdir)
    lags = []
    try:
        ca = http.client.HTTPConnection("127.0.0.1", a.port, timeout=10)
        cb = http.client.HTTPConnection("127.0.0.1", b.port, timeout=10)

        def call(c, method, path, body=None, headers=None):
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, r.getheader("X-Cache"), r.read()
        for k in range(args.writes):
            uid = 1 + k % 3
            call(cb, "GET", f"/users/{uid}")  # B has it cached
            name = f"Lag {k}"
            call(ca, "PATCH", f"/users/{uid}", json.dumps({"name": name}),
                 {"Content-Type": "application/merge-patch+json"})
            answered = time.perf_counter()
            while time.perf_counter() - answered < 2:
                _, _, data = call(cb, "GET", f"/users/{uid}")
                if json.loads(data)["name"] == name:
                    lags.append((time.perf_counter() - answered) * 1000)
                    break
        metrics = run.http_get(b.port, "/metrics").decode()
    finally:
        a.stop()
        b.stop()
    lags.sort()
    p99 = lags[int(len(lags) * 0.99) - 1] if lags else float("nan")
    print(f"\nCoherence lag, {args.writes} PATCHes on instance A of users B had cached: from A's answer to "
          f"B's first answer with the new name (B polled on a keep-alive connection):\n"
          f"{len(lags)} seen, median {statistics.median(lags):.2f} ms, p99 {p99:.2f} ms, max {lags[-1]:.2f} ms")
    hist = [line for line in metrics.splitlines() if line.startswith("userapi_coherence_lag_seconds")]
    print("B's own histogram (commit to notification arrival):\n" + "\n".join("    " + h for h in hist))


def bench_post(args, workdir, pg):
    base = ["--no-rate-limit", "--db-latency-ms", "0", "--threads", "2"]
    results = alternate({
        "SQLite": base,
        "PostgreSQL, --db-concurrency 1": base + ["--data", pg.uri("userapi")],
        "PostgreSQL, --db-concurrency 8": base + ["--data", pg.uri("userapi"), "--db-concurrency", "8"],
    }, "/users", args, workdir, connections=16, script=os.path.join(HERE, "post_users.lua"), prime=False)
    table("POST /users, database latency 0, wrk -t1 -c16 (every create a committed transaction):", results)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(os.path.dirname(HERE), "build-bench"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--writes", type=int, default=1000)
    ap.add_argument("--only", default="redis,refusals,lag,post")
    args = ap.parse_args()
    only = set(args.only.split(","))
    workdir = tempfile.mkdtemp(prefix="userapi-bench-stores-")
    # fsync on: a create is durable on PostgreSQL as it is on SQLite (synchronous=FULL).
    pg, redis = Postgres(os.path.join(workdir, "pg"), durable=True), Redis(os.path.join(workdir, "redis"))
    try:
        pg.start()
        redis.start()
        if "redis" in only:
            bench_redis(args, workdir, redis)
        if "refusals" in only:
            bench_refusals(args, workdir, redis)
        if "lag" in only:
            bench_lag(args, workdir, pg)
        if "post" in only:
            bench_post(args, workdir, pg)
    finally:
        try:
            redis.stop()
            pg.stop("immediate")
        finally:
            shutil.rmtree(workdir, ignore_errors=True)  # PostgreSQL's data folder: 40 MB a run


if __name__ == "__main__":
    main()
