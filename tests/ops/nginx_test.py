#!/usr/bin/env python3
"""userapi behind a real nginx, configured by deploy/nginx/userapi.conf.

nginx listens on 127.0.0.1, reaches userapi from 127.0.0.2 (proxy_bind), and userapi trusts
only 127.0.0.2/32. Clients connect to nginx from 127.0.0.3 and up. Checks: separate buckets per
client, X-Forwarded-For a client forges itself is not believed, 429 problem+json with
Retry-After through the proxy, request ids passed and echoed, upstream keep-alive reused, /metrics
not exposed on the public side, and nginx's own 502 in problem+json.

usage: nginx_test.py --binary build/userapi
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

from harness import Failures, Userapi, call, find_tool, free_port, missing, wait_until, ROOT

CONF = os.path.join(ROOT, "deploy", "nginx", "userapi.conf")


def render(upstream_port, listen_port):
    """The deploy file with only its addresses changed: one upstream port, or a list of them
    (several instances, as scripts/cluster runs them)."""
    text = open(CONF).read()
    ports = upstream_port if isinstance(upstream_port, (list, tuple)) else [upstream_port]
    servers = "\n    ".join(f"server 127.0.0.1:{p};" for p in ports)
    text, n1 = re.subn(r"server 127\.0\.0\.1:8080;", servers, text)
    text, n2 = re.subn(r"listen 80;", f"listen 127.0.0.1:{listen_port};", text)
    if (n1, n2) != (1, 1):
        sys.exit("FAIL: deploy/nginx/userapi.conf no longer has 'server 127.0.0.1:8080;' and 'listen 80;'")
    return text


def start_nginx(nginx, workdir, upstream_port, listen_port=None):
    port = listen_port or free_port()
    for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        os.makedirs(os.path.join(workdir, d), exist_ok=True)
    with open(os.path.join(workdir, "userapi.conf"), "w") as f:
        f.write(render(upstream_port, port))
    with open(os.path.join(workdir, "nginx.conf"), "w") as f:
        f.write(f"""
daemon off;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {workdir}/client_body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
    include {workdir}/userapi.conf;
}}
""")
    cmd = [nginx, "-p", workdir, "-c", f"{workdir}/nginx.conf", "-e", f"{workdir}/error.log"]
    test = subprocess.run(cmd + ["-t"], capture_output=True, text=True)
    if test.returncode != 0:
        sys.exit(f"FAIL: nginx -t rejected the config:\n{test.stderr}")
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)

    def up():
        try:
            call(port, "GET", "/healthz")
            return True
        except OSError:
            return False

    if not wait_until(up):
        proc.kill()
        sys.exit("FAIL: nginx did not start: " + open(f"{workdir}/error.log").read())
    return proc, port


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--build-dir")
    args = ap.parse_args()
    nginx = find_tool("nginx") or (os.access("/usr/sbin/nginx", os.X_OK) and "/usr/sbin/nginx")
    if not nginx:
        missing("nginx (Debian package nginx-light)")

    f = Failures()
    with tempfile.TemporaryDirectory() as workdir:
        log_path = os.path.join(workdir, "userapi.log")
        with open(log_path, "w") as log:
            api = Userapi(args.binary, "--trusted-proxy", "127.0.0.2/32", "--db-latency-ms", "5",
                          "--log-level", "info", stderr=log)
        proxy, port = start_nginx(nginx, workdir, api.port)
        try:
            run_checks(f, api, port, log_path)
        finally:
            proxy.terminate()
            proxy.wait(timeout=10)
            api.stop()
    f.exit()


def run_checks(f, api, port, log_path):
    a, b, c = "127.0.0.3", "127.0.0.4", "127.0.0.5"

    # Client A spends its burst of 5; the 6th is a 429 that arrives intact through nginx.
    statuses = [call(port, "GET", "/users/1", source=a)[0] for _ in range(5)]
    f.check(statuses == [200] * 5, f"client {a}: 5 requests within the burst are 200 (got {statuses})")
    status, headers, body = call(port, "GET", "/users/1", source=a, headers={"X-Request-Id": "nginx-test-429"})
    f.check(status == 429, f"client {a}: the 6th request is 429 (got {status})")
    f.check(headers.get("content-type") == "application/problem+json",
            f"429 keeps Content-Type application/problem+json (got {headers.get('content-type')})")
    try:
        problem = json.loads(body)
    except ValueError:
        problem = {}
    f.check(problem.get("status") == 429 and problem.get("title") and problem.get("detail"),
            f"429 body is a problem document: {body[:200]!r}")
    f.check(headers.get("retry-after", "").isdigit() and int(headers["retry-after"]) >= 1,
            f"429 keeps Retry-After (got {headers.get('retry-after')})")
    f.check(all(h in headers for h in ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset")),
            "429 keeps the RateLimit-* headers")
    f.check(headers.get("x-request-id") == "nginx-test-429", "the client's X-Request-Id is passed and echoed")

    # Client B, at another address, has its own bucket.
    status, headers, _ = call(port, "GET", "/users/1", source=b)
    f.check(status == 200, f"client {b} is not limited by {a}'s bucket (got {status})")
    f.check(re.fullmatch(r"[0-9a-f]{32}", headers.get("x-request-id", "")) is not None,
            f"a request without an id gets nginx's $request_id (got {headers.get('x-request-id')})")

    # Client C names other clients in its own X-Forwarded-For: it still has one bucket, its own.
    forged = ["127.0.0.4", "10.0.0.1", "127.0.0.2", "127.0.0.3, 127.0.0.4", "192.0.2.7", "127.0.0.2, 127.0.0.2"]
    statuses = [call(port, "GET", "/users/1", source=c, headers={"X-Forwarded-For": x})[0] for x in forged]
    f.check(statuses == [200] * 5 + [429],
            f"client {c} forging X-Forwarded-For stays in its own bucket: 5 × 200 then 429 (got {statuses})")
    statuses = [call(port, "GET", "/users/1", source=b)[0] for _ in range(4)]
    f.check(statuses == [200] * 4, f"client {b}'s bucket was not spent by {c}'s forgeries (got {statuses})")

    # The userapi access log shows the real client and nginx's bound address as the peer.
    def logged():
        text = open(log_path).read()
        return "request_id=nginx-test-429" in text and text
    text = wait_until(logged, timeout=5) and open(log_path).read()
    line = next((l for l in (text or "").splitlines() if "request_id=nginx-test-429" in l), "")
    f.check("client=127.0.0.3" in line and "peer=127.0.0.2" in line and "status=429" in line,
            f"userapi logs client {a} via peer 127.0.0.2 under the request id: {line}")

    # Upstream keep-alive: 40 client connections to nginx, a handful of connections to userapi.
    before = api.metric("userapi_connections_accepted_total")
    statuses = [call(port, "GET", "/healthz", source="127.0.0.6")[0] for _ in range(40)]
    after = api.metric("userapi_connections_accepted_total")
    # One of the accepted connections is the metrics request itself.
    upstream = after - before - 1
    f.check(statuses == [200] * 40, "40 requests through nginx answered")
    f.check(0 <= upstream <= 2, f"nginx reused its upstream connections: {upstream:.0f} new for 40 requests")

    # /metrics is for the scraper on the private side, not the public one.
    status, headers, body = call(port, "GET", "/metrics", source="127.0.0.7")
    f.check(status == 404 and headers.get("content-type") == "application/problem+json",
            f"/metrics through nginx is 404 problem+json (got {status})")

    # POST passes through with its body and Location.
    status, headers, body = call(port, "POST", "/users", source="127.0.0.7",
                                 headers={"Content-Type": "application/json"},
                                 body=json.dumps({"name": "Via Proxy", "email": "via.proxy@example.com"}))
    f.check(status == 201 and headers.get("location", "").startswith("/users/"),
            f"POST through nginx is 201 with Location (got {status} {headers.get('location')})")

    # userapi gone: nginx's own 502, in problem+json.
    f.check(api.stop() == 0, "userapi exits 0 after SIGTERM")
    status, headers, body = call(port, "GET", "/users/1", source="127.0.0.8", headers={"X-Request-Id": "gone-1"})
    f.check(status == 502 and headers.get("content-type") == "application/problem+json"
            and json.loads(body).get("status") == 502 and headers.get("x-request-id") == "gone-1",
            f"userapi down: nginx answers 502 problem+json with the request id (got {status} {body[:120]!r})")


if __name__ == "__main__":
    main()
