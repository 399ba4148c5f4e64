#!/usr/bin/env python3
"""userapi benchmark harness: every scenario against userapi and, where it applies, against
nginx answering the same JSON from memory, in the same run, alternating A B A B; scenarios 1, 3
and 8 also against the peers users would deploy instead (nginx proxy_cache and Varnish in front
of a 200 ms origin, bench/peers.py), in the same rotation.

usage: bench/run.py --build build-bench [--pairs 3] [--duration 10] [--only 1,2,...]
                    [--results DIR] [--charts DIR]
(bench/run installs wrk, nginx-light, Varnish and gnuplot, builds, and calls this.)

Prints a markdown table: requests/s (median of the runs), p50/p99 latency (median), the ratio
userapi/nginx of each pair (on a peer's row: userapi/that peer), and server CPU time per request:
utime+stime from /proc over the run divided by the requests wrk completed (nginx and Varnish:
every process of theirs summed). Then the Google Benchmark microbenchmarks and the memory figures.
Every measurement also goes to CSV files in the results folder (bench/results/<time>/ unless
--results says), with the table and SVG charts drawn from the CSV by bench/charts.py.
Only 127.0.0.1 is contacted; every run is bounded by --duration; every server is stopped at the
end, also on Ctrl-C or SIGTERM.
"""
import argparse
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
USER1 = '{"id":1,"name":"User 1","email":"user1@example.com"}'
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            pass
    return total / TICK


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(d))
            except OSError:
                pass
    return out


def http_get(port, path):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        # The Host wrk sends: Varnish keys its cache by Host and URL.
        s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n" % (path, port)).encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


def json_get(port, path):
    return json.loads(http_get(port, path).split(b"\r\n\r\n", 1)[1])


class Userapi:
    label = "userapi"

    def __init__(self, build, args, workdir, label="userapi"):
        self.label = label
        self.port = free_port()
        cmd = [os.path.join(build, "userapi"), "--port", str(self.port)] + ([] if "--log-level" in args else ["--log-level", "warn"]) + args
        if "--data" not in args:
            cmd += ["--data", os.path.join(workdir, "bench-%d.db" % self.port)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            line = self.proc.stdout.readline().decode()
            if "listening on" not in line:
                raise RuntimeError("userapi did not start: %r" % line)
        except BaseException:  # also Ctrl-C while it starts: it must not outlive the bench
            self.proc.kill()
            self.proc.wait(15)
            raise

    def pids(self):
        return [self.proc.pid]

    def reads(self):
        """Database operations so far (GET /cache-status)."""
        return json_get(self.port, "/cache-status")["db"]["reads"]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(15)


class Nginx:
    label = "nginx"

    def __init__(self, workers, workdir):
        self.port = free_port()
        self.prefix = tempfile.mkdtemp(prefix="nginx-", dir=workdir)
        conf = os.path.join(self.prefix, "nginx.conf")
        with open(conf, "w") as f:
            f.write("""worker_processes %d;
daemon off;
pid %s/nginx.pid;
error_log %s/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 60s;
  server {
    listen 127.0.0.1:%d;
    location = /users/1 { default_type application/json; return 200 '%s'; }
    location ~ ^/users/[0-9]+$ { default_type application/json; return 200 '%s'; }
  }
}
""" % (workers, self.prefix, self.prefix, self.port, USER1, USER1))
        self.proc = subprocess.Popen(["nginx", "-p", self.prefix, "-c", conf, "-e", self.prefix + "/error.log"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                if b"200 OK" in http_get(self.port, "/users/1"):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("nginx did not start")

    def pids(self):
        return [self.proc.pid] + children(self.proc.pid)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(15)


def parse_ms(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    if not m:
        raise ValueError("unreadable latency %r" % text)
    v = float(m.group(1))
    return {"us": v / 1000, "ms": v, "s": v * 1000, "m": v * 60000}[m.group(2)]


def wrk(server, path, duration, connections=50, script=None, script_args=(), timeout_s=None):
    """One wrk -t1 run. timeout_s raises wrk's 2 s default: an answer slower than the timeout is
    not in wrk's latency figures at all (only counted as a timeout), so a slow server would look
    fast."""
    cmd = ["wrk", "-t1", "-c%d" % connections, "-d%ds" % duration, "--latency"]
    if timeout_s:
        cmd += ["--timeout", "%ds" % timeout_s]
    if script:
        cmd += ["-s", script]
    cmd.append("http://127.0.0.1:%d%s" % (server.port, path))
    if script_args:
        cmd += ["--"] + [str(a) for a in script_args]
    cpu0 = cpu_seconds(server.pids())
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60 + (timeout_s or 0))
    out = done.stdout
    cpu = cpu_seconds(server.pids()) - cpu0
    if done.returncode == -signal.SIGINT:
        raise KeyboardInterrupt("wrk was interrupted")
    if "requests in" not in out:
        raise RuntimeError("wrk failed: %s" % out)
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": parse_ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)),
        "p99": parse_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)),
        "cpu_us": cpu / max(reqs, 1) * 1e6,
        "non2xx": int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0,
        "socket_errors": sum(int(g) for g in errors.groups()[:3]) if errors else 0,
        "timeouts": int(errors.group(4)) if errors else 0,
        "requests": reqs,
        "cold_ids": int(m.group(1)) if (m := re.search(r"^cold ids: (\d+)", out, re.M)) else "",  # mixed.lua
        "out": out,
    }


def med(runs, key):
    return statistics.median(r[key] for r in runs)


def row(name, server, threads, runs, ratios=None):
    ratio = " / ".join("%.2f" % r for r in ratios) if ratios else ""
    return "| %s | %s | %s | %s | %.2f ms | %.2f ms | %.1f µs | %s |" % (
        name, server, threads, "{:,.0f}".format(med(runs, "rps")), med(runs, "p50"), med(runs, "p99"),
        med(runs, "cpu_us"), ratio)


def stop_all(servers):
    """Stops every server, the last started first, even when one of them fails to stop."""
    error = None
    for s in reversed(servers):
        try:
            s.stop()
        except Exception as e:  # the others must still be stopped
            error = error or e
    if error:
        raise error


def rotate(name, threads, starters, path, args, rec, prime=None, count_reads=False, **wrk_args):
    """Starts every server (starters: functions returning one), primes them, then runs wrk on
    each in turn, --pairs times (A B C A B C ...). Returns {label: [runs]} in starter order.
    wrk_args may hold script_args as a function of the pair's index."""
    servers, runs = [], {}
    script_args = wrk_args.pop("script_args", None)
    try:
        for start in starters:
            servers.append(start())
        if prime:
            prime(servers)
        for k in range(args.pairs):
            for s in servers:
                before = s.reads() if count_reads else 0
                r = wrk(s, path, args.duration, script_args=script_args(k) if script_args else (), **wrk_args)
                r["reads"] = s.reads() - before if count_reads else ""
                runs.setdefault(s.label, []).append(r)
                rec.wrk(name, s.label, threads, k + 1, r)
    finally:
        stop_all(servers)
    return runs


def ratio_note(name, base, runs, others):
    """The ratios of the medians of `base` against each of `others`, one line."""
    parts = ["%s/%s: throughput %.2f, CPU per request %.2f" % (
        base, o, med(runs[base], "rps") / med(runs[o], "rps"), med(runs[base], "cpu_us") / med(runs[o], "cpu_us"))
        for o in others]
    return "%s, ratios of the medians: %s" % (name, "; ".join(parts))


def ab(name, threads, a_args, path, args, workdir, rows, rec, script=None, prime=None, connections=50, peers=False,
       notes=None):
    """A B A B ...: userapi then nginx, `pairs` times; one row each plus the ratios. With peers,
    nginx proxy_cache and Varnish (each before its own origin) join the rotation: A B C D ..."""
    import peers as peer_servers
    starters = [lambda: Userapi(args.build, a_args, workdir), lambda: Nginx(threads, workdir)]
    if peers:
        starters += [lambda: peer_servers.NginxCache(threads, workdir), lambda: peer_servers.Varnish(threads, workdir)]
    runs = rotate(name, threads, starters, path, args, rec, prime=lambda servers: [prime(s) for s in servers] if prime else None,
                  connections=connections, script=script)
    ua, ng = runs["userapi"], runs["nginx"]
    rows.append(row(name, "userapi", threads, ua, [a["rps"] / b["rps"] for a, b in zip(ua, ng)]))
    rows.append(row(name, "nginx", threads, ng))
    others = [label for label in runs if label not in ("userapi", "nginx")]
    for label in others:
        rows.append(row(name, label, threads, runs[label], [a["rps"] / b["rps"] for a, b in zip(ua, runs[label])]))
    if others and notes is not None:
        notes.append(ratio_note("%s (%d thread%s)" % (name, threads, "s" if threads > 1 else ""), "userapi", runs,
                                ["nginx"] + others))
    return ua, ng


def get_many(port, ids):
    """GETs each id over one keep-alive connection, one after the other; returns the statuses."""
    statuses = []
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        buf = b""
        for i in ids:
            s.sendall(b"GET /users/%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % (i, port))  # wrk's Host
            while True:
                if b"\r\n\r\n" in buf:
                    head, rest = buf.split(b"\r\n\r\n", 1)
                    length = int(re.search(rb"(?i)Content-Length: (\d+)", head).group(1))
                    if len(rest) >= length:
                        statuses.append(int(head[9:12]))
                        buf = rest[length:]
                        break
                chunk = s.recv(65536)
                if not chunk:
                    raise RuntimeError("port %d closed the connection while priming" % port)
                buf += chunk
    return statuses


def prime_all(api, n=10000):
    """Loads users 1..n into the cache over one keep-alive connection."""
    get_many(api.port, range(1, n + 1))


def prime_parallel(servers, ids, connections=50):
    """Loads ids into every server's cache at once, `connections` keep-alive connections each
    (a cold id costs a database or origin latency, so one connection would take ids x 200 ms)."""
    jobs = [(s, list(ids)[c::connections]) for s in servers for c in range(connections)]
    failures = []

    def job(server, part):
        try:
            bad = [st for st in get_many(server.port, part) if st != 200]
            if bad:
                failures.append("%s: %d answers not 200 (%s)" % (server.label, len(bad), bad[0]))
        except Exception as e:
            failures.append("%s: %s" % (server.label, e))
    threads = [threading.Thread(target=job, args=j, daemon=True) for j in jobs]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 900  # 1,000 ids one at a time at 200 ms take 200 s
    for t in threads:
        t.join(max(0, deadline - time.monotonic()))
    if failures or any(t.is_alive() for t in threads):
        raise RuntimeError("priming failed: %s" % (failures or "timed out"))


def raise_on_sigterm():
    """SIGTERM unwinds like Ctrl-C, so the finally blocks stop every server."""
    def handler(signum, frame):
        raise KeyboardInterrupt("SIGTERM")
    signal.signal(signal.SIGTERM, handler)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build-bench"))
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--only", default="1,2,3,4,5,6,7,8,auth,log,micro,memory,stores")
    ap.add_argument("--results", help="folder for the CSV, the table and the charts (default bench/results/<time>)")
    ap.add_argument("--charts", help="also draw the charts into this folder (e.g. docs/charts)")
    ap.add_argument("--no-peers", action="store_true", help="scenarios 1 and 3 without nginx proxy_cache and Varnish")
    args = ap.parse_args()
    only = set(args.only.split(","))
    raise_on_sigterm()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # 1,000 sockets, and the servers inherit it
    import charts
    import herd
    import mixed
    import results
    rec = results.Results(args.results or os.path.join(HERE, "results", time.strftime("%Y-%m-%d-%H%M%S")), args)
    workdir = tempfile.mkdtemp(prefix="userapi-bench-")
    # Hits never reach the database: latency 0 only makes priming 10,000 users quick.
    base = ["--no-rate-limit", "--seed-users", "10000", "--cache-capacity", "20000", "--db-latency-ms", "0",
            "--max-connections-per-client", "4096"]  # wrk's 1,000 connections all come from 127.0.0.1
    rows = ["| scenario | server | threads | requests/s | p50 | p99 | CPU/request | userapi/nginx per pair |",
            "|---|---|---|---|---|---|---|---|"]
    notes = []
    hot = {}
    try:
        if "1" in only:
            for t in (1, 2):
                hot[t] = ab("1 hot user", t, base + ["--threads", str(t)], "/users/1", args, workdir, rows, rec,
                            prime=lambda s: (http_get(s.port, "/users/1"), http_get(s.port, "/users/1")),
                            peers=not args.no_peers, notes=notes)
        if "2" in only:
            ua, _ = ab("2 10,000 users", 2, base + ["--threads", "2"], "/", args, workdir, rows, rec,
                       script=os.path.join(HERE, "uniform_users.lua"), prime=prime_all)
            if 2 in hot:
                notes.append("scenario 2 / scenario 1 (2 threads): throughput %.2f, CPU per request %.2f"
                             % (med(ua, "rps") / med(hot[2][0], "rps"), med(ua, "cpu_us") / med(hot[2][0], "cpu_us")))
        if "6" in only:
            ab("6 hot user, 1,000 connections", 1, base + ["--threads", "1"], "/users/1", args, workdir, rows, rec,
               prime=lambda api: http_get(api.port, "/users/1"), connections=1000)
        if "7" in only:
            # The limiter on, 1,000 clients (X-Forwarded-For from a trusted 127.0.0.1), every
            # request admitted: what keeping and charging the buckets costs.
            limited = [a for a in base if a != "--no-rate-limit"] + [
                "--threads", "1", "--trusted-proxy", "127.0.0.1/32", "--rate-limit-capacity", "1000000000",
                "--rate-limit-refill-per-minute", "1000000000"]
            ab("7 hot user, 1,000 connections, limiter on", 1, limited, "/users/1", args, workdir, rows, rec,
               script=os.path.join(HERE, "distinct_clients.lua"), prime=lambda api: http_get(api.port, "/users/1"),
               connections=1000)
        if "auth" in only:
            import auth
            auth_rows, auth_notes = auth.run_all(args, workdir, rec)
            rows += auth_rows
            notes += auth_notes
        if "log" in only:
            # The access log's cost: the same server with and without it, alternated.
            quiet, logged = [], []
            for k in range(args.pairs):
                for level, runs in (("warn", quiet), ("info", logged)):
                    api = Userapi(args.build, base + ["--threads", "1", "--log-level", level], workdir)
                    try:
                        http_get(api.port, "/users/1")
                        runs.append(wrk(api, "/users/1", args.duration))
                        rec.wrk("1 hot user, access log " + ("off" if level == "warn" else "on"), "userapi", 1, k + 1,
                                runs[-1])
                    finally:
                        api.stop()
            rows.append(row("1 hot user, access log off", "userapi", 1, quiet))
            rows.append(row("1 hot user, access log on", "userapi", 1, logged))
            notes.append("access log: %.1f %% fewer requests/s with it on (medians, alternated)"
                         % (100 * (1 - med(logged, "rps") / med(quiet, "rps"))))
        if "3" in only:
            notes.append(herd.run_all(args, workdir, rec, peers_too=not args.no_peers))
        if "8" in only:
            mixed_rows, mixed_notes = mixed.run_all(args, workdir, rec)
            rows += mixed_rows
            notes += mixed_notes
        if "4" in only:
            runs = []
            api = Userapi(args.build, ["--seed-users", "10"], workdir)
            try:
                http_get(api.port, "/users/1")
                for k in range(args.pairs):
                    runs.append(wrk(api, "/users/1", args.duration))
                    rec.wrk("4 429 refusals", "userapi", 2, k + 1, runs[-1])
            finally:
                api.stop()
            rows.append(row("4 429 refusals", "userapi", 2, runs))
            notes.append("scenario 4: %s of %s responses were not 2xx (the 429s)"
                         % ("{:,}".format(sum(r["non2xx"] for r in runs)), "{:,}".format(sum(r["requests"] for r in runs))))
        if "5" in only:
            runs = []
            api = Userapi(args.build, ["--no-rate-limit", "--db-latency-ms", "0"], workdir)
            try:
                for k in range(args.pairs):
                    runs.append(wrk(api, "/users", args.duration, connections=10,
                                    script=os.path.join(HERE, "post_users.lua")))
                    rec.wrk("5 POST /users, DB latency 0", "userapi", 2, k + 1, runs[-1])
            finally:
                api.stop()
            rows.append(row("5 POST /users, DB latency 0", "userapi", 2, runs))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        rec.close()
    text = "\n\n".join((["\n".join(rows)] if len(rows) > 2 else []) + notes)
    print(text)
    rec.text("table.md", text + "\n")
    charts.render(rec.folder, [rec.folder] + ([args.charts] if args.charts else []))
    print("\nResults (CSV, table, charts): %s" % rec.folder)
    if "micro" in only and os.path.exists(os.path.join(args.build, "micro_bench")):
        print("\nMicrobenchmarks (Google Benchmark, median of 3 repetitions):\n")
        out = subprocess.run([os.path.join(args.build, "micro_bench"), "--benchmark_repetitions=3",
                              "--benchmark_report_aggregates_only=true"], capture_output=True, text=True).stdout
        print("\n".join("    " + line for line in out.splitlines() if "_median" in line or line.startswith("Benchmark")))
    if "micro" in only and os.path.exists(os.path.join(args.build, "auth_bench")):
        print("\nCredentials (Google Benchmark, median of 3 repetitions): a first verification, the memo's answer:\n")
        out = subprocess.run([os.path.join(args.build, "auth_bench"), "--benchmark_repetitions=3",
                              "--benchmark_report_aggregates_only=true"], capture_output=True, text=True).stdout
        print("\n".join("    " + line for line in out.splitlines() if "_median" in line or line.startswith("Benchmark")))
    if "stores" in only:
        subprocess.run([sys.executable, os.path.join(HERE, "stores.py"), "--build", args.build,
                        "--rounds", str(args.pairs)], timeout=3600)
    if "memory" in only and os.path.exists(os.path.join(args.build, "memory_bench")):
        print("\nMemory:\n\n| what | RSS | held |\n|---|---|---|")
        for what in ("cache", "buckets"):
            print(subprocess.run([os.path.join(args.build, "memory_bench"), what], capture_output=True,
                                 text=True).stdout.strip())


if __name__ == "__main__":
    main()
