#!/usr/bin/env python3
"""The alert rules in a real Prometheus: two userapi instances share a PostgreSQL of their own;
Prometheus (Debian's, from .tools/) scrapes them every second and evaluates
deploy/prometheus/userapi-rules.yml with every `for:` cut to 2 s; PostgreSQL is stopped and
/api/v1/alerts shows UserapiCacheIncoherent (and UserapiNotReady) pending, then firing, for both
instances; PostgreSQL is started again and the alerts end. Everything listens on 127.0.0.1 and
is stopped however the test ends.

usage: prometheus_alert_test.py --binary build/userapi
Skips (77) when PostgreSQL or the prometheus binary is missing, unless CI=true.
"""
import argparse
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

from harness import ROOT, Failures, find_tool, free_port, missing, wait_until

sys.path.insert(0, os.path.join(ROOT, "tests", "engines"))
from engines import Postgres  # noqa: E402

RULES = os.path.join(ROOT, "deploy", "prometheus", "userapi-rules.yml")
WATCHED = ("UserapiCacheIncoherent", "UserapiNotReady")


def start_instance(binary, pg_uri, name, work):
    log = open(os.path.join(work, f"{name}.log"), "w")
    proc = subprocess.Popen([binary, "--port", "0", "--data", pg_uri, "--db-latency-ms", "0", "--instance-name", name,
                             "--log-level", "warn"], stdout=subprocess.PIPE, stderr=log, text=True)
    ready, _, _ = select.select([proc.stdout], [], [], 20)
    line = proc.stdout.readline() if ready else ""
    m = re.match(r"listening on http://127\.0\.0\.1:(\d+)", line)
    if not m:
        proc.kill()
        proc.wait()
        raise RuntimeError(f"{name} did not start: {line!r}")
    return proc, int(m.group(1))


def start_prometheus(prometheus, work, targets):
    """Prometheus on a free loopback port, scraping and evaluating every second, with the rules'
    `for:` durations cut to 2 s (a test copy: the thresholds and expressions are the file's)."""
    rules = re.sub(r"^(\s+for:) \S+$", r"\1 2s", open(RULES).read(), flags=re.M)
    open(os.path.join(work, "rules.yml"), "w").write(rules)
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "rule_files": ["rules.yml"],
        "scrape_configs": [{"job_name": "userapi", "static_configs": [{"targets": targets}]}],
    }
    # JSON is YAML: no YAML writer needed.
    open(os.path.join(work, "prometheus.yml"), "w").write(json.dumps(config, indent=2))
    port = free_port()
    log = open(os.path.join(work, "prometheus.log"), "w")
    proc = subprocess.Popen([prometheus, f"--config.file={work}/prometheus.yml", f"--storage.tsdb.path={work}/tsdb",
                             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                            stdout=log, stderr=subprocess.STDOUT, cwd=work)
    return proc, port


def api(port, path, **params):
    url = f"http://127.0.0.1:{port}{path}" + ("?" + urllib.parse.urlencode(params) if params else "")
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)["data"]


def alert_states(port):
    """{(alertname, instance): state} of the watched alerts Prometheus holds now."""
    try:
        alerts = api(port, "/api/v1/alerts")["alerts"]
    except OSError:
        return {}
    return {(a["labels"]["alertname"], a["labels"].get("instance")): a["state"] for a in alerts
            if a["labels"]["alertname"] in WATCHED}


def query(port, expr):
    try:
        result = api(port, "/api/v1/query", query=expr)["result"]
    except OSError:
        return {}
    return {r["metric"].get("instance"): float(r["value"][1]) for r in result}


def stop(proc, seconds=15):
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode if proc else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--build-dir")
    args = ap.parse_args()
    prometheus = find_tool("prometheus", ".tools/prometheus/usr/bin")
    if not prometheus:
        missing("prometheus (Debian's prometheus package; scripts/deps unpacks it into .tools/)")
    if not Postgres.available():
        missing("PostgreSQL (postgresql-15)")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit("FAIL: terminated"))  # the cleanup still runs
    f = Failures()
    work = tempfile.mkdtemp(prefix="userapi-prometheus-")
    pg = Postgres(os.path.join(work, "pg"))
    procs, prom = [], None
    try:
        pg.start()
        ports = []
        for name in ("api-a", "api-b"):
            proc, port = start_instance(args.binary, pg.uri(), name, work)
            procs.append(proc)
            ports.append(port)
        targets = [f"127.0.0.1:{p}" for p in ports]
        prom, prom_port = start_prometheus(prometheus, work, targets)
        started = time.monotonic()

        scraped = wait_until(lambda: query(prom_port, 'up{job="userapi"}') == {t: 1.0 for t in targets}, timeout=30,
                             step=0.25)
        f.check(scraped, f"Prometheus scrapes both instances (up == 1) after {time.monotonic() - started:.1f} s")
        got = query(prom_port, "userapi_cache_coherent")
        f.check(got == {t: 1.0 for t in targets}, f"both instances coherent before the stop: {got}")
        got = query(prom_port, "userapi_ready")
        f.check(got == {t: 1.0 for t in targets}, f"both ready before the stop: {got}")
        # A recording rule is evaluated after the scrapes it reads: allow it a few evaluations.
        wait_until(lambda: len(query(prom_port, "instance:userapi_db_queue:utilization")) == 2, timeout=10, step=0.25)
        got = query(prom_port, "instance:userapi_db_queue:utilization")
        f.check(set(got) == set(targets) and all(v == 0 for v in got.values()),
                f"the recorded DB queue utilization is there (depth / userapi_db_queue_limit): {got}")
        got = query(prom_port, "userapi_db_queue_limit")
        f.check(got == {t: 1001.0 for t in targets},
                f"userapi_db_queue_limit is db.queue_limit + db.concurrency: {got}")
        before = alert_states(prom_port)
        f.check(not before, f"no watched alert before the stop: {before}")

        pg.stop("fast")
        stopped = time.monotonic()
        seen = {}  # (alert, instance) -> {state: seconds after the stop}
        want = {(a, t) for a in WATCHED for t in targets}

        def all_firing():
            for key, state in alert_states(prom_port).items():
                seen.setdefault(key, {}).setdefault(state, round(time.monotonic() - stopped, 1))
            return all("firing" in seen.get(k, {}) for k in want)

        fired = wait_until(all_firing, timeout=60, step=0.2)
        for key in sorted(want):
            states = seen.get(key, {})
            f.check("pending" in states and "firing" in states and states["pending"] <= states["firing"],
                    f"PostgreSQL stopped: {key[0]} for {key[1]} pending, then firing "
                    f"(seconds after the stop: {seen.get(key)})")
        f.check(fired, "every watched alert fired within 60 s of the stop")
        f.check(all(p.poll() is None for p in procs), "no instance exited")

        pg.start()
        restarted = time.monotonic()
        ended = wait_until(lambda: not alert_states(prom_port), timeout=90, step=0.5)
        f.check(ended, f"PostgreSQL back: the alerts end, {time.monotonic() - restarted:.1f} s after the start "
                       f"({alert_states(prom_port)})")
        codes = [stop(p) for p in procs]
        f.check(codes == [0, 0], f"both instances drain and exit 0 on SIGTERM (a sanitizer report would not): {codes}")
    finally:
        stop(prom)
        for p in procs:
            stop(p)
        pg.stop("immediate")
        if f.items:
            for name in ("prometheus.log", "api-a.log", "api-b.log"):
                path = os.path.join(work, name)
                if os.path.exists(path):
                    print(f"--- {name}\n{open(path).read()[-2000:]}")
        shutil.rmtree(work, ignore_errors=True)
    f.exit()


if __name__ == "__main__":
    main()
