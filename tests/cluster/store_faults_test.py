#!/usr/bin/env python3
"""Stores that hang or go away (contract 8.4), against real PostgreSQL and Redis started here
on 127.0.0.1, with real userapi instances. Each check is a regression test of one finding of
issue 18 and prints what it measured:

  hang        PostgreSQL stopped (SIGSTOP of every process) for 4.5 s: cached GETs stay fast
              (HIT, or STALE once the instance is deaf), never 5xx; a GET of a user not cached
              is 503 + Retry-After within --db-read-timeout-ms; the watch notices within 2 s
              (/readyz 503) and the instance is whole again after SIGCONT.      (finding 2)
  optimeout   a write sent to a stopped server is answered within --db-operation-timeout-ms
              and its slot is free again: a read after SIGCONT is answered at once.
  terminated  B's backends terminated, A patches, B answers the new version (not STALE, not
              503), and every DB slot of B serves its next read and write.  (findings 3, 6)
  logs        backends terminated, PostgreSQL restarted and stopped: every line on stderr is
              the logger's (JSON under --log-format json, timestamped text otherwise). (finding 8)
  redis       Redis stopped (SIGSTOP) for 3 s: a cached GET costs at most
              --rate-limit-store-timeout-ms more, the fallback decides, /readyz says so, and
              Redis decides again after SIGCONT.

usage: store_faults_test.py --binary build/userapi [--only NAME ...]
Skips (77) when PostgreSQL or Redis is missing, unless CI=true.
"""
import argparse
import concurrent.futures as futures
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "engines"))
sys.path.insert(0, os.path.join(HERE, "..", "ops"))
from engines import Postgres, Redis  # noqa: E402
from harness import Failures, call, missing, wait_until  # noqa: E402

READ_TIMEOUT = 1.0  # --db-read-timeout-ms's default, in seconds
SLACK = 0.25        # scheduling on a loaded 2-core machine
ENDINGS = []        # (instance, exit status, sanitizer lines) of every instance stopped
SANITIZER = re.compile(r"Sanitizer|runtime error:")


class Instance:
    def __init__(self, binary, data, name, extra=(), log_format="text", capacity=1000000):
        self.args = [binary, "--port", "0", "--data", data, "--db-latency-ms", "0", "--seed-users", "40",
                     "--instance-name", name, "--log-format", log_format, "--rate-limit-capacity", str(capacity),
                     "--cache-ttl-ms", "600000", *extra]
        self.name = name
        self.log = tempfile.NamedTemporaryFile(prefix=f"userapi-{name}-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=self.log, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 20)
        line = self.proc.stdout.readline() if ready else ""
        m = re.match(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if not m:
            self.proc.kill()
            raise RuntimeError(f"{name} did not start: {line!r} {open(self.log.name).read()[-2000:]}")
        self.port = int(m.group(1))

    def req(self, method, path, body=None, headers=None):
        h = dict(headers or {})
        if body is not None:
            h.setdefault("Content-Type", "application/merge-patch+json" if method == "PATCH" else "application/json")
        try:
            return call(self.port, method, path, headers=h, body=json.dumps(body) if body is not None else None)
        except OSError as e:
            return None, {}, str(e).encode()

    def timed(self, method, path, body=None, headers=None):
        start = time.monotonic()
        s, h, data = self.req(method, path, body, headers)
        return s, h, data, time.monotonic() - start

    def ready(self):
        return self.req("GET", "/readyz")[0] == 200

    def cache(self, path):
        """GETs until the answer is a HIT: the user is in this instance's cache."""
        return wait_until(lambda: self.req("GET", path)[1].get("x-cache") == "HIT", timeout=5, step=0.01)

    def stderr(self):
        with open(self.log.name) as f:
            return f.read()

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        """SIGTERM (a drain), recording how it ended for the final check."""
        if not os.path.exists(self.log.name):
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        ENDINGS.append((self.name, self.proc.returncode,
                        [x for x in self.stderr().splitlines() if SANITIZER.search(x)][:3]))
        os.unlink(self.log.name)


def pg_pids(pg):
    """The postmaster and every process it started."""
    with open(os.path.join(pg.data, "postmaster.pid")) as f:
        master = int(f.readline())
    pids = [master]
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == master:
                        pids.append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return pids


class Stopped:
    """SIGSTOP of every process of an engine for the block's duration (SIGCONT however it ends)."""

    def __init__(self, pids):
        self.pids = pids

    def __enter__(self):
        for p in self.pids:
            os.kill(p, signal.SIGSTOP)
        self.at = time.monotonic()
        return self

    def __exit__(self, *exc):
        for p in self.pids:
            try:
                os.kill(p, signal.SIGCONT)
            except ProcessLookupError:
                pass


def terminate(pg, where):
    """Terminates the backends `where` selects and waits until they are gone; returns how many."""
    return int(pg.psql(f"SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity WHERE {where}"))


def stats(xs):
    xs = sorted(xs)
    if not xs:
        return "-"
    pick = lambda q: xs[min(len(xs) - 1, int(q * len(xs)))]  # noqa: E731
    return f"p50 {pick(0.5) * 1000:.1f} ms, p99 {pick(0.99) * 1000:.1f} ms, max {xs[-1] * 1000:.1f} ms"


def readiness_flip(inst, stop_event, since):
    """Polls /readyz until it is 503; returns the seconds from `since` (None if never)."""
    while not stop_event.is_set():
        if not inst.ready():
            return time.monotonic() - since
        time.sleep(0.01)
    return None


def check_hang(f, binary, pg):
    inst = Instance(binary, pg.uri(), "hang", ["--db-concurrency", "2"])
    try:
        cached = [f"/users/{i}" for i in range(1, 6)]
        for p in cached:
            inst.cache(p)
        wait_until(inst.ready, timeout=10)
        samples = []  # (seconds into the stop, latency, status, x-cache)
        done = threading.Event()
        with futures.ThreadPoolExecutor(4) as pool, Stopped(pg_pids(pg)) as stop:
            def reader(k):
                n = 0
                while not done.is_set() and n < 20000:
                    s, h, _, took = inst.timed("GET", cached[(n + k) % len(cached)])
                    samples.append((time.monotonic() - stop.at, took, s, h.get("x-cache")))
                    n += 1
            readers = [pool.submit(reader, k) for k in range(2)]
            flip = pool.submit(readiness_flip, inst, done, stop.at)
            time.sleep(0.3)
            first = inst.timed("GET", "/users/21")  # not cached: the store is asked, and hangs
            time.sleep(max(0.0, 3.0 - (time.monotonic() - stop.at)))
            later = inst.timed("GET", "/users/22")  # not cached, while the instance is deaf
            time.sleep(max(0.0, 4.5 - (time.monotonic() - stop.at)))
            done.set()
            for r in readers:
                r.result()
            flipped = flip.result()
        back = time.monotonic()
        ready_again = wait_until(inst.ready, timeout=10, step=0.01)
        ready_after = time.monotonic() - back
        after = inst.timed("GET", "/users/23")
        lat = [x[1] for x in samples]
        bad = [x for x in samples if x[2] != 200 or x[3] not in ("HIT", "STALE")]
        kinds = {k: sum(1 for x in samples if x[3] == k) for k in sorted({str(x[3]) for x in samples})}
        f.check(samples and not bad and max(lat) <= READ_TIMEOUT + SLACK,
                f"PostgreSQL stopped 4.5 s, cached GETs: {len(samples)} answers {kinds}, {stats(lat)}; "
                f"not 200 HIT/STALE: {len(bad)} {bad[:3]}")
        for what, r, bound in (("0.3 s in, before the watch noticed", first, READ_TIMEOUT + SLACK),
                               ("3 s in, the instance deaf", later, READ_TIMEOUT + SLACK)):
            f.check(r[0] == 503 and r[1].get("retry-after") and r[3] <= bound,
                    f"a GET of a user not cached {what}: {r[0]} Retry-After {r[1].get('retry-after')} "
                    f"after {r[3] * 1000:.0f} ms (bound {bound * 1000:.0f} ms)")
        f.check(flipped is not None and flipped <= 2.0 + SLACK,
                f"the watch noticed the stopped server: /readyz 503 after "
                f"{'-' if flipped is None else f'{flipped * 1000:.0f}'} ms (bound 2000 ms)")
        f.check(ready_again and after[0] == 200 and after[3] < READ_TIMEOUT,
                f"after SIGCONT: ready again after {ready_after * 1000:.0f} ms, a GET not cached {after[0]} "
                f"in {after[3] * 1000:.0f} ms")
        f.check(inst.alive(), "the instance did not exit")
    finally:
        inst.stop()


def check_optimeout(f, binary, pg):
    inst = Instance(binary, pg.uri(), "optimeout", ["--db-concurrency", "1", "--db-operation-timeout-ms", "1500"])
    try:
        inst.cache("/users/3")
        wait_until(inst.ready, timeout=10)
        with Stopped(pg_pids(pg)) as stop:
            s, h, data, took = inst.timed("PATCH", "/users/3", {"name": "Patched while stopped"})
            wait = 4.5 - (time.monotonic() - stop.at)
            time.sleep(max(0.0, wait))
        after = inst.timed("GET", "/users/24")
        f.check(s in (503, 504) and took <= 1.5 + SLACK,
                f"a PATCH sent to a stopped server (--db-operation-timeout-ms 1500): {s} after {took * 1000:.0f} ms "
                f"{data[:160]!r}")
        f.check(after[0] == 200 and after[3] < READ_TIMEOUT,
                f"its slot is free and its connection replaced: a GET after SIGCONT {after[0]} in "
                f"{after[3] * 1000:.0f} ms")
    finally:
        inst.stop()


def check_terminated(f, binary, pg):
    a = Instance(binary, pg.uri() + "?application_name=faults-a", "a", ["--db-concurrency", "2"])
    b = Instance(binary, pg.uri() + "?application_name=faults-b", "b", ["--db-concurrency", "3"])
    try:
        wait_until(lambda: a.ready() and b.ready(), timeout=10)
        seen, old_hits, fresh_fail = [], [], []
        for k in range(5):
            path = f"/users/{1 + k}"
            b.cache(path)
            _, h0, _ = b.req("GET", path)
            n = terminate(pg, "application_name = 'faults-b'")
            s, h, _ = a.req("PATCH", path, {"name": f"Renamed {k}"})
            new = h.get("etag")
            answers = [b.req("GET", path) for _ in range(20)]
            first = answers[0]
            seen.append((n, s, h0.get("etag"), new, first[0], first[1].get("etag"), first[1].get("x-cache")))
            old_hits += [x for x in answers if x[1].get("etag") != new]
            # Every slot of B on a dead connection: reads of users not cached, and a write.
            wait_until(b.ready, timeout=10)
            terminate(pg, "application_name = 'faults-b'")
            with futures.ThreadPoolExecutor(4) as pool:
                reads = list(pool.map(lambda i: b.req("GET", f"/users/{10 + 4 * k + i}"), range(3)))
                write = pool.submit(b.req, "PATCH", f"/users/{30 + k}", {"name": f"Fresh {k}"}).result()
            fresh_fail += [r[0] for r in reads + [write] if r[0] != 200]
            wait_until(b.ready, timeout=10)
        f.check(all(x[4] == 200 and x[5] == x[3] and x[6] != "STALE" for x in seen) and not old_hits,
                f"B's backends terminated, A patches, B's next answers, 5 rounds "
                f"(terminated, A's status, B's etag before, A's new etag, B's status, etag, X-Cache): {seen}; "
                f"answers with another version in 20 GETs after each: {len(old_hits)}")
        f.check(not fresh_fail, f"B's backends terminated, then 3 reads and a write on its 3 slots at once, "
                                f"5 rounds: {20 - len(fresh_fail)} of 20 answered 200 (others: {fresh_fail})")
    finally:
        a.stop()
        b.stop()


def check_logs(f, binary, pg):
    insts = [Instance(binary, pg.uri() + "?application_name=faults-logs", f"logs-{fmt}", ["--db-concurrency", "2"],
                      log_format=fmt) for fmt in ("json", "text")]
    try:
        wait_until(lambda: all(i.ready() for i in insts), timeout=10)
        for k, i in enumerate(insts):
            i.cache(f"/users/{1 + k}")
        terminate(pg, "application_name = 'faults-logs'")
        for i in insts:
            wait_until(lambda: i.req("GET", "/users/25")[0] == 200, timeout=10)
        pg.stop("fast")  # a restart: every connection hears "terminating connection"
        pg.start()
        for i in insts:
            wait_until(lambda: i.ready() and i.req("GET", "/users/26")[0] == 200, timeout=15)
        with Stopped(pg_pids(pg)):
            time.sleep(2.5)
        for i in insts:
            wait_until(i.ready, timeout=15)
            i.req("GET", "/users/27")
    finally:
        texts = []
        for i in insts:
            if i.proc.poll() is None:
                i.proc.send_signal(signal.SIGTERM)
                i.proc.wait(timeout=15)
            texts.append(i.stderr())
            i.stop()
    stamp = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} (trace|debug|info|warning|error|critical) ")
    for fmt, text in zip(("json", "text"), texts):
        lines = [x for x in text.splitlines() if x.strip()]
        if fmt == "json":
            def foreign(x):
                try:
                    return not isinstance(json.loads(x), dict)
                except ValueError:
                    return True
        else:
            def foreign(x):
                return not stamp.match(x)
        bad = [x for x in lines if foreign(x)]
        said = sum(1 for x in lines if "terminating connection" in x)
        f.check(lines and not bad and said > 0,
                f"--log-format {fmt}: {len(lines)} lines on stderr through backends terminated, a restart and a "
                f"stop, {said} of them PostgreSQL's notices; lines not from the logger: {len(bad)} {bad[:3]}")


def redis_errors(inst):
    m = re.search(r"^userapi_rate_limit_store_errors_total (\S+)$", inst.req("GET", "/metrics")[2].decode(), re.M)
    return float(m.group(1)) if m else None


def check_redis(f, binary, redis):
    inst = Instance(binary, ":memory:", "redis", ["--rate-limit-store", redis.uri()])
    try:
        inst.cache("/users/1")
        wait_until(inst.ready, timeout=10)
        base = inst.timed("GET", "/users/1")[3]
        samples = []
        done = threading.Event()
        with futures.ThreadPoolExecutor(3) as pool, Stopped([redis.proc.pid]) as stop:
            def reader():
                n = 0
                while not done.is_set() and n < 50000:
                    s, h, _, took = inst.timed("GET", "/users/1")
                    samples.append((time.monotonic() - stop.at, took, s, h.get("x-cache")))
                    n += 1
            readers = [pool.submit(reader) for _ in range(2)]
            flip = pool.submit(readiness_flip, inst, done, stop.at)
            time.sleep(3.0)
            done.set()
            for r in readers:
                r.result()
            flipped = flip.result()
            errors_during = redis_errors(inst)
        ok = wait_until(inst.ready, timeout=10, step=0.01)
        wait_until(lambda: inst.timed("GET", "/users/1")[3] < 0.05, timeout=5)
        before = redis_errors(inst)
        after = [inst.timed("GET", "/users/1") for _ in range(20)]
        lat = sorted(x[1] for x in samples)
        bad = [x for x in samples if x[2] != 200]
        slow = sum(1 for x in lat if x >= 0.040)
        # A connection waits for Redis once, until the timeout; then it knows Redis is stalled.
        f.check(samples and not bad and lat[len(lat) // 2] <= 0.025 and lat[-1] <= 0.050 + 0.075,
                f"Redis stopped 3 s (--rate-limit-store-timeout-ms 50, fallback local), cached GETs: "
                f"{len(samples)} answers, {stats(lat)}, {slow} of them 40 ms or more (before the stop "
                f"{base * 1000:.1f} ms); not 200: {len(bad)}")
        f.check(flipped is not None and flipped <= 1.0,
                f"/readyz 503 while Redis does not answer: after "
                f"{'-' if flipped is None else f'{flipped * 1000:.0f}'} ms; fallback decisions counted: {errors_during}")
        f.check(ok and all(x[0] == 200 for x in after) and redis_errors(inst) == before,
                f"after SIGCONT: ready {ok}, 20 GETs {sorted({x[0] for x in after})} decided by Redis again "
                f"(store errors {before} -> {redis_errors(inst)})")
    finally:
        inst.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args()
    if not Postgres.available():
        missing("PostgreSQL (postgresql-15)")
    if not Redis.available():
        missing("redis-server")
    f = Failures()
    work = tempfile.mkdtemp(prefix="userapi-faults-")
    pg = Postgres(os.path.join(work, "pg"))
    redis = Redis(os.path.join(work, "redis"))
    try:
        pg.start()
        redis.start()
        checks = [
            ("hang", lambda: check_hang(f, args.binary, pg)),
            ("optimeout", lambda: check_optimeout(f, args.binary, pg)),
            ("terminated", lambda: check_terminated(f, args.binary, pg)),
            ("logs", lambda: check_logs(f, args.binary, pg)),
            ("redis", lambda: check_redis(f, args.binary, redis)),
        ]
        for name, run in checks:
            if not args.only or name in args.only:
                try:
                    run()
                except Exception as e:  # one broken check must not hide the others
                    f.check(False, f"{name}: {type(e).__name__}: {e}")
    finally:
        redis.stop()
        pg.stop("immediate")
        shutil.rmtree(work, ignore_errors=True)
    bad = [e for e in ENDINGS if e[1] != 0 or e[2]]
    f.check(ENDINGS and not bad, f"every instance drained and exited 0 on SIGTERM, with no sanitizer report: "
                                 f"{len(ENDINGS) - len(bad)} of {len(ENDINGS)} ({bad})")
    f.exit()


if __name__ == "__main__":
    main()
