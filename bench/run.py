#!/usr/bin/env python3
"""userapi benchmark harness: every scenario against userapi and, where it applies, against
nginx answering the same JSON from memory, in the same run, alternating A B A B.

usage: bench/run.py --build build-bench [--pairs 3] [--duration 10] [--only 1,2,...]
(bench/run installs wrk and nginx-light, builds, and calls this.)

Prints a markdown table: requests/s (median of the runs), p50/p99 latency (median), the ratio
userapi/nginx of each pair, and server CPU time per request: utime+stime from /proc over the run
divided by the requests wrk completed (nginx: master and workers summed). Then the Google
Benchmark microbenchmarks and the memory figures.
Only 127.0.0.1 is contacted; every run is bounded by --duration.
"""
import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
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
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


class Userapi:
    def __init__(self, build, args, workdir):
        self.port = free_port()
        cmd = [os.path.join(build, "userapi"), "--port", str(self.port)] + ([] if "--log-level" in args else ["--log-level", "warn"]) + args
        if "--data" not in args:
            cmd += ["--data", os.path.join(workdir, "bench-%d.db" % self.port)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = self.proc.stdout.readline().decode()
        if "listening on" not in line:
            raise RuntimeError("userapi did not start: %r" % line)

    def pids(self):
        return [self.proc.pid]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(15)


class Nginx:
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


def wrk(server, path, duration, connections=50, script=None):
    cmd = ["wrk", "-t1", "-c%d" % connections, "-d%ds" % duration, "--latency"]
    if script:
        cmd += ["-s", script]
    cmd.append("http://127.0.0.1:%d%s" % (server.port, path))
    cpu0 = cpu_seconds(server.pids())
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60).stdout
    cpu = cpu_seconds(server.pids()) - cpu0
    if "requests in" not in out:
        raise RuntimeError("wrk failed: %s" % out)
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": parse_ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)),
        "p99": parse_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)),
        "cpu_us": cpu / max(reqs, 1) * 1e6,
        "non2xx": int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0,
        "requests": reqs,
    }


def med(runs, key):
    return statistics.median(r[key] for r in runs)


def row(name, server, threads, runs, ratios=None):
    ratio = " / ".join("%.2f" % r for r in ratios) if ratios else ""
    return "| %s | %s | %s | %s | %.2f ms | %.2f ms | %.1f µs | %s |" % (
        name, server, threads, "{:,.0f}".format(med(runs, "rps")), med(runs, "p50"), med(runs, "p99"),
        med(runs, "cpu_us"), ratio)


def ab(name, threads, a_args, path, args, workdir, rows, script=None, prime=None, connections=50):
    """A B A B ...: userapi then nginx, `pairs` times; one row each plus the ratios."""
    ua, ng = [], []
    api = Userapi(args.build, a_args, workdir)
    nginx = Nginx(threads, workdir)
    try:
        if prime:
            prime(api)
        for _ in range(args.pairs):
            ua.append(wrk(api, path, args.duration, connections=connections, script=script))
            ng.append(wrk(nginx, path, args.duration, connections=connections, script=script))
    finally:
        api.stop()
        nginx.stop()
    ratios = [a["rps"] / b["rps"] for a, b in zip(ua, ng)]
    rows.append(row(name, "userapi", threads, ua, ratios))
    rows.append(row(name, "nginx", threads, ng))
    return ua, ng


def prime_all(api, n=10000):
    """Loads users 1..n into the cache over one keep-alive connection."""
    with socket.create_connection(("127.0.0.1", api.port), timeout=30) as s:
        buf = b""
        for i in range(1, n + 1):
            s.sendall(b"GET /users/%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
            while True:
                if b"\r\n\r\n" in buf:
                    head, rest = buf.split(b"\r\n\r\n", 1)
                    length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
                    if len(rest) >= length:
                        buf = rest[length:]
                        break
                buf += s.recv(65536)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build-bench"))
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--only", default="1,2,3,4,5,6,7,log,micro,memory,stores")
    args = ap.parse_args()
    only = set(args.only.split(","))
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
                hot[t] = ab("1 hot user", t, base + ["--threads", str(t)], "/users/1", args, workdir, rows,
                            prime=lambda api: http_get(api.port, "/users/1"))
        if "2" in only:
            ua, _ = ab("2 10,000 users", 2, base + ["--threads", "2"], "/", args, workdir, rows,
                       script=os.path.join(HERE, "uniform_users.lua"), prime=prime_all)
            if 2 in hot:
                notes.append("scenario 2 / scenario 1 (2 threads): throughput %.2f, CPU per request %.2f"
                             % (med(ua, "rps") / med(hot[2][0], "rps"), med(ua, "cpu_us") / med(hot[2][0], "cpu_us")))
        if "6" in only:
            ab("6 hot user, 1,000 connections", 1, base + ["--threads", "1"], "/users/1", args, workdir, rows,
               prime=lambda api: http_get(api.port, "/users/1"), connections=1000)
        if "7" in only:
            # The limiter on, 1,000 clients (X-Forwarded-For from a trusted 127.0.0.1), every
            # request admitted: what keeping and charging the buckets costs.
            limited = [a for a in base if a != "--no-rate-limit"] + [
                "--threads", "1", "--trusted-proxy", "127.0.0.1/32", "--rate-limit-capacity", "1000000000",
                "--rate-limit-refill-per-minute", "1000000000"]
            ab("7 hot user, 1,000 connections, limiter on", 1, limited, "/users/1", args, workdir, rows,
               script=os.path.join(HERE, "distinct_clients.lua"), prime=lambda api: http_get(api.port, "/users/1"),
               connections=1000)
        if "log" in only:
            # The access log's cost: the same server with and without it, alternated.
            quiet, logged = [], []
            for _ in range(args.pairs):
                for level, runs in (("warn", quiet), ("info", logged)):
                    api = Userapi(args.build, base + ["--threads", "1", "--log-level", level], workdir)
                    try:
                        http_get(api.port, "/users/1")
                        runs.append(wrk(api, "/users/1", args.duration))
                    finally:
                        api.stop()
            rows.append(row("1 hot user, access log off", "userapi", 1, quiet))
            rows.append(row("1 hot user, access log on", "userapi", 1, logged))
            notes.append("access log: %.1f %% fewer requests/s with it on (medians, alternated)"
                         % (100 * (1 - med(logged, "rps") / med(quiet, "rps"))))
        if "3" in only:
            api = Userapi(args.build, ["--no-rate-limit", "--seed-users", "100", "--max-connections-per-client", "4096"],
                          workdir)
            try:
                out = subprocess.run([sys.executable, os.path.join(HERE, "coalesce.py"), "--port", str(api.port),
                                      "--connections", "1000", "--runs", "3", "--id", "10"],
                                     capture_output=True, text=True, timeout=300).stdout
            finally:
                api.stop()
            notes.append("scenario 3, 1,000 connections on one cold id (DB latency 200 ms):\n" + out.strip())
        if "4" in only:
            runs = []
            api = Userapi(args.build, ["--seed-users", "10"], workdir)
            try:
                http_get(api.port, "/users/1")
                for _ in range(args.pairs):
                    runs.append(wrk(api, "/users/1", args.duration))
            finally:
                api.stop()
            rows.append(row("4 429 refusals", "userapi", 2, runs))
            notes.append("scenario 4: %s of %s responses were not 2xx (the 429s)"
                         % ("{:,}".format(sum(r["non2xx"] for r in runs)), "{:,}".format(sum(r["requests"] for r in runs))))
        if "5" in only:
            runs = []
            api = Userapi(args.build, ["--no-rate-limit", "--db-latency-ms", "0"], workdir)
            try:
                for _ in range(args.pairs):
                    cmd_runs = wrk(api, "/users", args.duration, connections=10,
                                   script=os.path.join(HERE, "post_users.lua"))
                    runs.append(cmd_runs)
            finally:
                api.stop()
            rows.append(row("5 POST /users, DB latency 0", "userapi", 2, runs))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("\n".join(rows))
    for n in notes:
        print("\n" + n)
    if "micro" in only and os.path.exists(os.path.join(args.build, "micro_bench")):
        print("\nMicrobenchmarks (Google Benchmark, median of 3 repetitions):\n")
        out = subprocess.run([os.path.join(args.build, "micro_bench"), "--benchmark_repetitions=3",
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
