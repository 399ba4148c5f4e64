#!/usr/bin/env python3
"""/metrics of a live userapi, after traffic that touches every route and outcome, passes
Debian's `promtool check metrics` and holds the names the dashboards rely on.

usage: metrics_test.py --binary build/userapi
"""
import argparse
import json
import re
import subprocess
import threading

import harness
from harness import Failures, Userapi, call, find_tool, missing

ROUTES = {"/users/{id}", "/users", "/cache", "/cache-status", "/healthz", "/metrics", "unmatched"}
REQUIRED = {
    "http_requests_total": "counter",
    "http_request_duration_seconds": "histogram",
    "userapi_cache_hits_total": "counter",
    "userapi_cache_misses_total": "counter",
    "userapi_cache_entries": "gauge",
    "userapi_coalesced_requests_total": "counter",
    "userapi_rate_limited_requests_total": "counter",
    "userapi_rate_limit_clients": "gauge",
    "userapi_db_queue_depth": "gauge",
    "userapi_db_reads_total": "counter",
    "userapi_db_writes_total": "counter",
    "userapi_connections_accepted_total": "counter",
    "userapi_build_info": "gauge",
    "process_cpu_seconds_total": "counter",
    "process_resident_memory_bytes": "gauge",
    "process_open_fds": "gauge",
    "process_start_time_seconds": "gauge",
}


def traffic(port):
    """Every route and outcome once or more: miss, hit, coalesced, 400, 404, 405, 409, 415, 429.

    Each request comes from its own loopback address, so only the last three share a bucket.
    """
    sources = (f"127.0.3.{n}" for n in range(1, 250))

    def call(port, method, path, headers=None, body=None, source=None):
        return harness.call(port, method, path, headers, body, source or next(sources))

    call(port, "GET", "/users/1")
    call(port, "GET", "/users/1")
    threads = [threading.Thread(target=call, args=(port, "GET", "/users/2", None, None, f"127.0.4.{i}"))
               for i in range(1, 6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    call(port, "GET", "/users/999")
    call(port, "GET", "/users/abc")
    body = json.dumps({"name": "Metric Maker", "email": "metric@example.com"})
    call(port, "POST", "/users", {"Content-Type": "application/json"}, body)
    call(port, "POST", "/users", {"Content-Type": "application/json"}, body)
    call(port, "POST", "/users", {"Content-Type": "text/plain"}, "x")
    call(port, "PUT", "/users/1")
    call(port, "GET", "/nowhere")
    call(port, "GET", "/cache-status")
    call(port, "DELETE", "/cache")
    call(port, "GET", "/healthz")
    for _ in range(3):
        call(port, "GET", "/users/3", source="127.0.0.9")  # 3 over a burst of 2: 429


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--build-dir")
    args = ap.parse_args()
    promtool = find_tool("promtool", ".tools/prometheus/usr/bin")
    if not promtool:
        missing("promtool (from Debian's prometheus package; scripts/deps unpacks it into .tools/)")

    f = Failures()
    api = Userapi(args.binary, "--db-latency-ms", "100", "--rate-limit-capacity", "2", "--log-level", "warn")
    try:
        traffic(api.port)
        status, headers, body = call(api.port, "GET", "/metrics")
    finally:
        api.stop()
    text = body.decode()
    f.check(status == 200, "GET /metrics is 200")
    f.check(headers.get("content-type", "").startswith("text/plain; version=0.0.4"),
            f"exposition Content-Type (got {headers.get('content-type')})")

    lint = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    f.check(lint.returncode == 0 and not lint.stdout.strip() and not lint.stderr.strip(),
            f"promtool check metrics: exit {lint.returncode} {lint.stdout}{lint.stderr}".strip())

    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    helps = set(re.findall(r"^# HELP (\S+) \S", text, re.M))
    for name, kind in REQUIRED.items():
        f.check(types.get(name) == kind and name in helps, f"{name} is a {kind} with HELP")
    for name, kind in types.items():
        if kind == "counter":
            f.check(name.endswith("_total"), f"counter {name} ends in _total")

    routes = set(re.findall(r'route="([^"]*)"', text))
    f.check(routes <= ROUTES and "/users/{id}" in routes, f"route labels are patterns only: {sorted(routes)}")

    def value(pattern):
        m = re.search(pattern, text, re.M)
        return float(m.group(1)) if m else 0.0

    f.check(value(r'^http_requests_total\{method="GET",route="/users/\{id\}",code="404"\} (\S+)$') >= 1,
            "the 404 for a missing user is counted under /users/{id}")
    f.check(value(r'^http_requests_total\{method="POST",route="/users",code="409"\} (\S+)$') >= 1,
            "the duplicate email is counted as POST /users 409")
    f.check(value(r"^userapi_coalesced_requests_total (\S+)$") >= 1, "concurrent misses were coalesced")
    f.check(value(r"^userapi_rate_limited_requests_total (\S+)$") >= 1, "the 429 is counted")
    f.check(value(r"^userapi_cache_hits_total (\S+)$") >= 1, "the cache hit is counted")
    f.check(value(r"^process_resident_memory_bytes (\S+)$") > 1e6, "resident memory is reported in bytes")
    count = value(r"^http_request_duration_seconds_count (\S+)$")
    inf = value(r'^http_request_duration_seconds_bucket\{le="\+Inf"\} (\S+)$')
    f.check(count >= 20 and count == inf, f"histogram count {count:.0f} equals its +Inf bucket {inf:.0f}")
    f.exit()


if __name__ == "__main__":
    main()
