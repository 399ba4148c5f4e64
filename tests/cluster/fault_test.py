#!/usr/bin/env python3
"""Fault injection for the whole cluster, in the style of Jepsen and etcd's tests/robustness:
clients record every request and its answer with times, a nemesis breaks the engines, and
fault_check.py judges the recorded history against the contract's model (read it for the
rules (a)-(f)) and prints the first violation of each.

Set-up, all on 127.0.0.1 and started here: one PostgreSQL and one Redis of their own, three
userapi instances with --db-concurrency 4 sharing them (--rate-limit-store with a limit too
high to refuse anything, a short --db-latency-ms so the run has many operations,
--cache-stale-ms so STALE answers appear, and the timeouts of section 8.4 where the binary's
--help lists them).

Clients: writers PATCH users 1-5 (and the extra users until they are deleted), every PATCH
setting the name to a token of its own, so it always makes a new version and the token names
the write; half of them send an Idempotency-Key (when the binary supports it) and retry with it
after a 503/504/409 or no answer. Readers GET every user on every instance, one in ten with
Cache-Control: no-cache. A deleter DELETEs the extra users one by one during the run.

Nemesis, cycling for --duration seconds (at least 60 by default) with quiet gaps: every
userapi backend terminated (pg_terminate_backend), PostgreSQL stopped with SIGSTOP for a few
seconds, PostgreSQL restarted, Redis stopped and started. Then the clients stop, the cluster
settles, the stored versions are read with psql, and every instance is asked once more.

usage: fault_test.py --binary build/userapi [--duration 64] [--seed N] [--history FILE] [--keep]
                     [--coherence-ms 100]
Skips (77) when PostgreSQL or Redis is missing, unless CI=true. Exit 1 on any violation.
Bounded: the run stops itself (SIGALRM) --duration + 150 s after it started; Ctrl-C or SIGTERM
stop every process it started.
"""
import argparse
import concurrent.futures as futures
import http.client
import json
import os
import random
import signal
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fleet  # noqa: E402  (also puts tests/engines and tests/ops on the path)
import fault_check  # noqa: E402
from engines import Postgres, Redis, missing  # noqa: E402
from harness import wait_until  # noqa: E402

USERS = [1, 2, 3, 4, 5]  # seeded (--seed-users 5), patched all along, never deleted
EXTRAS = 6  # created before the run, deleted during it
WRITERS, KEYED_WRITERS, READERS = 4, 2, 6  # readers wait on misses most of the time
NOCACHE_SHARE = 0.1
CLIENT_TIMEOUT = 10.0  # longer than any answer the instances may take (--request-timeout-ms 2000)
RETRY_FOR = 10.0  # how long a keyed writer retries one operation
LEAD, QUIET = 3.0, 5.0  # seconds before the first fault and between faults (> the checker's margin)
PAUSE, REDIS_DOWN, PG_DOWN = 4.0, 2.0, 0.5  # a pause longer than the 3 s the heartbeat waits today
SETTLE = 1.0  # after the clients stop, before the last reads: ten times 7.3's 100 ms


def instance_args(binary, pg, redis):
    args = ["--data", pg.uri(), "--db-concurrency", "4", "--db-latency-ms", "10", "--seed-users", str(len(USERS)),
            "--rate-limit-store", redis.uri(), "--rate-limit-capacity", "1000000000",
            "--rate-limit-refill-per-minute", "1000000000",
            "--cache-ttl-ms", "10000", "--cache-stale-ms", "5000", "--request-timeout-ms", "2000",
            "--log-level", "warn"]
    known = fleet.options(binary)
    # The read timeout is the default's: a read whose connection was cut reconnects first (a
    # backend's fork and the prepares), which on a loaded 2-core machine took over 300 ms.
    for option, value in (("--db-operation-timeout-ms", "1500"), ("--db-read-timeout-ms", "1000")):
        if option in known:
            args += [option, value]
    return args, "--idempotency-ttl-s" in known, known


class Run:
    """What the threads share: the clock, the stop flags, and each thread's own request list
    (appended by that thread only, read by the main thread once the thread has ended)."""

    def __init__(self, ports, keys, seed):
        self.t0 = time.monotonic()
        self.ports = ports
        self.keys = keys
        self.seed = seed
        self.stop = threading.Event()  # the clients finish their operation and end
        self.halt = threading.Event()  # they end now (interrupted): no more retries
        self.logs = []
        self.windows = []
        self.errors = []
        self.deleted = set()  # extras whose DELETE was acknowledged (added by the deleter only)
        self.extras = []

    def now(self):
        return time.monotonic() - self.t0

    def log(self):
        mine = []
        self.logs.append(mine)
        return mine


class Client:
    """One keep-alive HTTP/1.1 connection per instance, for one thread; each request recorded."""

    def __init__(self, run):
        self.run = run
        self.conns = {}
        self.log = run.log()

    def send(self, op, inst, uid, headers=None, body=None, opid="", nocache=False):
        conn = self.conns.get(inst)
        if conn is None:
            conn = self.conns[inst] = http.client.HTTPConnection("127.0.0.1", self.run.ports[inst],
                                                                 timeout=CLIENT_TIMEOUT)
        path = "/users" if op == "POST" else f"/users/{uid}"
        t0 = self.run.now()
        try:
            conn.request(op, path, body=body, headers=headers or {})
            r = conn.getresponse()
            data = r.read()
            status, hdrs = r.status, r.headers
        except (OSError, http.client.HTTPException):
            conn.close()
            del self.conns[inst]
            status, hdrs, data = None, {}, b""
        t1 = self.run.now()
        version = cache = name = None
        written, replayed = "", False
        if status is not None:
            etag = hdrs.get("ETag") or ""
            if "-" in etag:
                try:
                    version = int(etag.strip('W/"').rsplit("-", 1)[1])
                except ValueError:
                    pass
            cache = hdrs.get("X-Cache")
            replayed = (hdrs.get("Idempotent-Replayed") or "").strip().lower() == "true"
            doc = None
            if data and (status >= 500 or status in (200, 201)):
                try:
                    doc = json.loads(data)
                except ValueError:
                    doc = None
            if isinstance(doc, dict):
                if status >= 500 and "written" in doc:
                    written = json.dumps(doc["written"])  # "true", "false" or "null"
                if status in (200, 201):
                    name = doc.get("name")
                    if op == "POST":
                        uid = doc.get("id")
        self.log.append((op, inst, uid, t0, t1, status, version, cache, written, opid, nocache, replayed, name))
        return status, written

    def close(self):
        for c in self.conns.values():
            c.close()


def guarded(run, what, body):
    """A client thread's body; an exception in it fails the test instead of vanishing."""
    def target():
        try:
            body()
        except Exception as e:  # noqa: BLE001
            run.errors.append(f"{what}: {type(e).__name__}: {e}")
            run.halt.set()
    t = threading.Thread(target=target, name=what, daemon=True)
    t.start()
    return t


def retried(run, client, rng, op, uid, headers, body, opid, keyed, done):
    """One write: sent once, or (with a key) again until an answer that is not 5xx/409/none."""
    deadline = run.now() + RETRY_FOR
    while True:
        status, _ = client.send(op, rng.randrange(len(run.ports)), uid, headers, body, opid)
        pace(run, status)
        if status in done or not keyed or run.halt.is_set() or run.now() > deadline:
            return status
        if status not in (None, 409, 503, 504):
            return status
        run.halt.wait(0.1)


def pace(run, status):
    """An instance that does not answer at all (refused, reset): do not spin on it."""
    if status is None:
        run.halt.wait(0.01)


def writer(run, wid, keyed):
    rng = random.Random(run.seed * 1000 + wid)
    client = Client(run)
    seq = 0
    while not run.stop.is_set() and not run.halt.is_set():
        seq += 1
        live = [u for u in run.extras if u not in run.deleted]
        uid = rng.choice(live) if live and rng.random() < 0.2 else rng.choice(USERS)
        token = f"w{wid}n{seq}"
        headers = {"Content-Type": "application/merge-patch+json"}
        if keyed:
            headers["Idempotency-Key"] = f"fault-{token}"
        retried(run, client, rng, "PATCH", uid, headers, json.dumps({"name": token}), token, keyed, (200, 404))
    client.close()


def reader(run, rid):
    rng = random.Random(run.seed * 1000 + 100 + rid)
    client = Client(run)
    ids = USERS + run.extras
    while not run.stop.is_set() and not run.halt.is_set():
        nocache = rng.random() < NOCACHE_SHARE
        status, _ = client.send("GET", rng.randrange(len(run.ports)), rng.choice(ids),
                                {"Cache-Control": "no-cache"} if nocache else None, nocache=nocache)
        pace(run, status)
    client.close()


def deleter(run, span):
    """DELETEs each extra user at its time in the run (some land in faults, some not), retried
    until acknowledged (a DELETE is idempotent; with a key it also replays)."""
    rng = random.Random(run.seed * 1000 + 200)
    client = Client(run)
    for k, uid in enumerate(run.extras):
        at = LEAD + (k + 0.5) * span / len(run.extras)
        if run.stop.wait(max(0.0, at - run.now())) or run.halt.is_set():
            break
        headers = {"Idempotency-Key": f"fault-delete-{uid}"} if run.keys else {}
        deadline = run.now() + RETRY_FOR
        while not run.halt.is_set() and run.now() < deadline:
            status, _ = client.send("DELETE", rng.randrange(len(run.ports)), uid, headers, opid=f"d{uid}")
            if status in (204, 404):
                run.deleted.add(uid)
                break
            run.halt.wait(0.1)
    client.close()


# ---- the nemesis ----

def fault_terminate(pg):
    # Once: rule (g) expects every read to succeed on its one retry on a fresh connection.
    return f"{fleet.terminate_backends(pg)} backends terminated"


def fault_pause(pg):
    n = fleet.signal_postgres(pg, signal.SIGSTOP)
    try:
        time.sleep(PAUSE)
    finally:
        fleet.signal_postgres(pg, signal.SIGCONT)
    return f"{n} processes stopped for {PAUSE:.0f} s"


def fault_restart(pg, mode):
    pg.stop(mode)
    time.sleep(PG_DOWN)
    pg.start()
    return f"stopped ({mode}) and started"


def fault_redis(redis):
    redis.stop()
    time.sleep(REDIS_DOWN)
    redis.start()
    return f"down {REDIS_DOWN:.0f} s"


def quiet(run, insts, seconds):
    """Waits `seconds`; False (and the run ends early) when an instance has exited."""
    end = run.now() + seconds
    while run.now() < end and not run.halt.is_set():
        if not all(i.alive() for i in insts):
            print(f"  {run.now():6.1f} s  an instance exited: the run ends here", flush=True)
            return False
        run.halt.wait(min(0.2, max(0.0, end - run.now())))
    return not run.halt.is_set()


def nemesis(run, insts, pg, redis, duration):
    """Cycles through the faults until `duration` has passed, a quiet gap after each."""
    faults = [("terminate", lambda k: fault_terminate(pg)), ("pause", lambda k: fault_pause(pg)),
              ("restart", lambda k: fault_restart(pg, ("fast", "immediate")[k % 2])),
              ("redis", lambda k: fault_redis(redis))]
    if not quiet(run, insts, LEAD):
        return
    k = 0
    while run.now() < duration - QUIET:
        kind, act = faults[k % len(faults)]
        start = run.now()
        try:
            what = act(k // len(faults))
        finally:
            run.windows.append((kind, start, run.now()))
        print(f"  {start:6.1f} s  {kind}: {what} ({run.now() - start:.1f} s)", flush=True)
        k += 1
        if not quiet(run, insts, QUIET):
            return
    quiet(run, insts, duration - run.now())  # the run lasts `duration` at least


# ---- the end of the run ----

def stored(pg):
    """{id: (version, name)} read straight from the table."""
    rows = {}
    for line in pg.psql("SELECT id, version, name FROM users ORDER BY id").splitlines():
        uid, version, name = line.split("|", 2)
        rows[int(uid)] = (int(version), name)
    return rows


def last_reads(run, n_instances):
    client = Client(run)
    out = []
    for inst in range(n_instances):
        for uid in USERS + run.extras:
            for mode, headers in (("plain", None), ("no-cache", {"Cache-Control": "no-cache"})):
                client.send("GET", inst, uid, headers, nocache=headers is not None)
                r = client.log[-1]
                out.append((inst, uid, mode, r[5], r[6]))
    client.close()
    return out, client.log


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", required=True)
    ap.add_argument("--duration", type=float, default=64.0, help="seconds of faults (default 64)")
    ap.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    ap.add_argument("--history", help="write the recorded history (JSON) here, for fault_check.py")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (engine and instance logs)")
    ap.add_argument("--coherence-ms", type=float, default=fault_check.COHERENCE * 1000,
                    help="the lag allowed across instances (default 100, 7.3); longer for sanitizer builds")
    args = ap.parse_args()
    if not Postgres.available():
        missing("PostgreSQL (postgresql-15)")
    if not Redis.available():
        missing("redis-server")

    def out_of_time(signum, frame):
        raise TimeoutError(f"the fault test ran out of its {limit} s")
    limit = int(args.duration + 150)
    fleet.raise_on_sigterm()
    signal.signal(signal.SIGALRM, out_of_time)
    signal.alarm(limit)

    work = tempfile.mkdtemp(prefix="userapi-fault-")
    pg, redis = Postgres(os.path.join(work, "pg")), Redis(os.path.join(work, "redis"))
    run, threads, insts, rc = None, [], [], 1
    try:
        pg.start()
        redis.start()
        iargs, keys, known = instance_args(args.binary, pg, redis)
        names = ["api-a", "api-b", "api-c"]
        with futures.ThreadPoolExecutor(3) as pool:
            insts = list(pool.map(lambda n: fleet.Instance(args.binary, n, iargs, log_dir=work), names))
        if not wait_until(lambda: all(i.ready() for i in insts), timeout=20):
            raise RuntimeError("the instances did not become ready")
        print(f"fault test: seed {args.seed}; {len(insts)} instances {' '.join(iargs[2:])}; "
              f"Idempotency-Key {'sent' if keys else 'not supported by this binary'}; "
              f"8.4 timeouts {'set' if '--db-read-timeout-ms' in known else 'not supported by this binary'}",
              flush=True)
        run = Run([i.port for i in insts], keys, args.seed)
        setup = Client(run)
        for k in range(EXTRAS):
            body = json.dumps({"name": f"extra {k}", "email": f"extra{k}-{args.seed}@fault.example"})
            status, _ = setup.send("POST", 0, None, {"Content-Type": "application/json"}, body)
            if status != 201:
                raise RuntimeError(f"creating the extra users: {status}")
            run.extras.append(setup.log[-1][2])
        threads = ([guarded(run, f"writer {w}", lambda w=w: writer(run, w, keys and w < KEYED_WRITERS))
                    for w in range(WRITERS)] +
                   [guarded(run, f"reader {r}", lambda r=r: reader(run, r)) for r in range(READERS)] +
                   [guarded(run, "deleter", lambda: deleter(run, args.duration - LEAD - QUIET))])
        nemesis(run, insts, pg, redis, args.duration)
        run.stop.set()
        for t in threads:
            t.join(timeout=RETRY_FOR + 2 * CLIENT_TIMEOUT)
        if any(t.is_alive() for t in threads):
            raise RuntimeError("a client thread did not end")
        if run.errors:
            raise RuntimeError("; ".join(run.errors))
        settled = wait_until(lambda: all(i.ready() for i in insts), timeout=20)
        time.sleep(SETTLE)
        rows = stored(pg)
        converge, extra = last_reads(run, len(insts))
        alive = [i.alive() for i in insts]
        exits = [i.stop() for i in insts]  # 0 unless the drain failed or a sanitizer reported
        requests = [r for log in run.logs if log is not extra for r in log]
        h = {"instances": names, "users": USERS, "extras": run.extras, "windows": run.windows,
             "margin": fault_check.MARGIN, "coherence": args.coherence_ms / 1000,
             "requests": requests, "converge": converge,
             "final": {str(u): rows[u][0] if u in rows else None for u in USERS + run.extras},
             "final_names": {str(u): rows[u][1] if u in rows else None for u in USERS + run.extras},
             "alive": alive, "exit": exits, "seed": args.seed}
        if args.history:
            with open(args.history, "w") as f:
                json.dump(h, f)
        if not settled:
            print("not every instance was ready again 20 s after the last fault", flush=True)
        verdicts = fault_check.check(h)
        if verdicts.count["f"]:
            for i in insts:  # stopped by now: their logs are complete
                tail = i.log_tail(3000).strip().splitlines()[-10:]
                print(f"{i.name} log, last lines:" + "".join(f"\n    {line[:300]}" for line in tail))
        rc = 1 if sum(verdicts.count.values()) else 0
    except KeyboardInterrupt as e:
        print(f"fault test: interrupted ({str(e) or 'Ctrl-C'}); stopping everything", flush=True)
        rc = 130
    finally:
        signal.alarm(0)
        if run:
            run.stop.set()
            run.halt.set()
        fleet.stop_everything(pg, redis)
        for t in threads:
            t.join(timeout=CLIENT_TIMEOUT)
        left = [i.name for i in insts if i.alive()] + (["postgres"] if fleet.postgres_of(pg) else []) + \
            (["redis"] if redis.proc and redis.proc.poll() is None else [])
        if left:
            print(f"cleanup: still running: {left}", flush=True)
            rc = rc or 1
        else:
            print("cleanup: every process this test started has stopped", flush=True)
        if args.keep:
            print(f"work folder kept: {work}")
        else:
            fleet.remove_tree(work)
    sys.exit(rc)


if __name__ == "__main__":
    main()
