"""Shared pieces of the operations tests: finding tools, starting userapi, plain HTTP calls.

Every test talks only to 127.0.0.0/8, and every wait is bounded.
"""
import http.client
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SKIP = 77  # CTest's SKIP_RETURN_CODE for these tests


def missing(what):
    """A tool is absent: a skip on a workstation, a failure in CI (scripts/deps installs it)."""
    if os.environ.get("CI"):
        sys.exit(f"FAIL: {what} is missing in CI; scripts/deps installs it")
    print(f"SKIP: {what} is missing; run scripts/deps")
    sys.exit(SKIP)


def find_tool(name, *extra_dirs):
    found = shutil.which(name)
    if found:
        return found
    for d in extra_dirs:
        path = os.path.join(ROOT, d, name)
        if os.access(path, os.X_OK):
            return path
    return None


def free_port(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Userapi:
    """userapi on 127.0.0.1 and a free port, stopped with SIGTERM (a graceful drain)."""

    def __init__(self, binary, *args, stderr=subprocess.DEVNULL):
        cmd = [binary, "--port", "0", "--data", ":memory:", *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 15)
        line = self.proc.stdout.readline() if ready else ""
        m = re.match(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if not m:
            self.proc.kill()
            sys.exit(f"FAIL: userapi did not start: {line!r}")
        self.port = int(m.group(1))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def metric(self, name):
        _, _, body = call(self.port, "GET", "/metrics")
        m = re.search(rf"^{re.escape(name)} (\S+)$", body.decode(), re.M)
        return float(m.group(1)) if m else None


def call(port, method, path, headers=None, body=None, source=None, conn=None):
    """One request; returns (status, headers as a lower-cased dict, body bytes).

    `source` binds the client socket to that loopback address before it connects; `conn`
    reuses a keep-alive connection.
    """
    own = conn is None
    if own:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10,
                                          source_address=(source, 0) if source else None)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        if own:
            conn.close()


class Failures:
    """Collects failed checks so one run reports all of them."""

    def __init__(self):
        self.items = []

    def check(self, ok, what):
        print(("ok   " if ok else "FAIL ") + what)
        if not ok:
            self.items.append(what)

    def exit(self):
        if self.items:
            sys.exit(f"{len(self.items)} check(s) failed")
        print("all checks passed")


def wait_until(pred, timeout=10.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()
