#!/usr/bin/env python3
"""Several userapi instances as an operator would run them, on this machine: PostgreSQL and
Redis in a throwaway folder on loopback ports, three instances sharing them, nginx in front
(deploy/nginx/userapi.conf with the three upstreams). Ctrl-C (or SIGTERM) stops everything and
removes the folder. Arguments after the options go to every instance.

With --data URI the instances use that PostgreSQL database instead (one `userapi migrate` or
`userapi import` filled, say), and it is left running and as it is when the cluster stops.

usage: scripts/cluster [--port 8080] [--instances 3] [--data postgresql://...] [-- userapi options...]
"""
import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "engines"))
sys.path.insert(0, os.path.join(ROOT, "tests", "ops"))
from engines import Postgres, Redis  # noqa: E402
from harness import call, find_tool, free_port, wait_until  # noqa: E402
import nginx_test  # noqa: E402  (renders and starts nginx from the deploy file)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=8080, help="where nginx listens (default 8080)")
    ap.add_argument("--instances", type=int, default=3)
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "userapi"))
    ap.add_argument("--data", help="an existing PostgreSQL database (postgresql://...) instead of a new one")
    ap.add_argument("extra", nargs="*", help="options for every instance")
    args = ap.parse_args()
    if args.data and not args.data.startswith(("postgresql://", "postgres://")):
        ap.error("--data takes a postgresql:// URI")

    work = tempfile.mkdtemp(prefix="userapi-cluster-")
    pg, redis, procs, nginx = Postgres(os.path.join(work, "pg")), Redis(os.path.join(work, "redis")), [], None
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    try:
        if args.data:
            pg = None
        else:
            pg.start()
        data = args.data or pg.uri()
        redis.start()
        ports = []
        for i in range(args.instances):
            port = args.port + 1 + i
            cmd = [args.binary, "--config", os.path.join(ROOT, "config", "userapi.json"), "--port", str(port),
                   "--data", data, "--rate-limit-store", redis.uri(), "--trusted-proxy", "127.0.0.2/32",
                   "--db-concurrency", "4", "--instance-name", f"userapi-{i + 1}", *args.extra]
            log = open(os.path.join(work, f"userapi-{i + 1}.log"), "w")
            procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log))
            ports.append(port)
        for port in ports:
            if not wait_until(lambda: _ready(port), timeout=20):
                raise SystemExit(f"cluster: the instance on {port} did not become ready; logs in {work}")
        nginx, _ = nginx_test.start_nginx(find_tool("nginx", "/usr/sbin"), os.path.join(work, "nginx"), ports,
                                          listen_port=args.port)
        print(f"cluster: http://127.0.0.1:{args.port} (nginx) -> userapi on {', '.join(map(str, ports))}; "
              f"PostgreSQL {redact(data)}; Redis {redis.uri()}; logs in {work}", flush=True)
        print("cluster: Ctrl-C stops everything", flush=True)
        while not stopping and all(p.poll() is None for p in procs):
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        # A second Ctrl-C (or the terminal's SIGINT reaching us twice) must not cut the cleanup
        # short and leave PostgreSQL running: from here on, signals wait, and each step runs
        # even when the one before it failed.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("cluster: stopping", flush=True)
        if nginx:
            _step(nginx.terminate)
            _step(lambda: _wait_or_kill(nginx, 10))
        for p in procs:
            _step(lambda: p.send_signal(signal.SIGTERM))
        for p in procs:
            _step(lambda: _wait_or_kill(p, 15))
        _step(redis.stop)
        if pg:
            _step(pg.stop)
        subprocess.run(["rm", "-rf", work])
        print("cluster: stopped", flush=True)


def redact(uri):
    """The URI without its password, for what the cluster prints."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", re.sub(r"(password=)[^&]*", r"\1***", uri))


def _step(action):
    try:
        action()
    except Exception as e:  # noqa: BLE001  (report and go on: the rest must still stop)
        print(f"cluster: while stopping: {e}", file=sys.stderr, flush=True)


def _wait_or_kill(proc, seconds):
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _ready(port):
    try:
        return call(port, "GET", "/readyz")[0] == 200
    except OSError:
        return False


if __name__ == "__main__":
    main()
