"""Processes of the cluster tests: userapi instances, and faults done to the engines.

Shared by cluster_test.py and fault_test.py. Every process started here is remembered (in
`LIVE`, or by the engine objects of tests/engines/engines.py) so that a test can stop all of
them however it ends: `stop_everything()` runs each step even when the one before failed, with
SIGINT and SIGTERM held off so a second Ctrl-C cannot leave PostgreSQL running.
"""
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "engines"))
sys.path.insert(0, os.path.join(HERE, "..", "ops"))
from harness import call  # noqa: E402

LIVE = []  # every Instance started and not yet stopped, in start order


class Instance:
    """One userapi on 127.0.0.1 and the port it picked (--port 0); its stderr in a file."""

    def __init__(self, binary, name, args, log_dir=None, start_timeout=20):
        self.name = name
        self.args = [binary, "--port", "0", "--instance-name", name, *args]
        if log_dir:
            self.log_path = os.path.join(log_dir, f"userapi-{name}.log")
            log = open(self.log_path, "w")
        else:
            log = tempfile.NamedTemporaryFile(prefix=f"userapi-{name}-", suffix=".log", delete=False)
            self.log_path = log.name
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=log, text=True)
        log.close()
        LIVE.append(self)
        ready, _, _ = select.select([self.proc.stdout], [], [], start_timeout)
        line = self.proc.stdout.readline() if ready else ""
        m = re.match(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if not m:
            self.stop(signal.SIGKILL)
            raise RuntimeError(f"{name} did not start: {line!r} {self.log_tail(2000)}")
        self.port = int(m.group(1))

    def ready(self):
        try:
            return call(self.port, "GET", "/readyz")[0] == 200
        except OSError:
            return False

    def alive(self):
        return self.proc.poll() is None

    def log_tail(self, chars=1500):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-chars:]
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self in LIVE:
            LIVE.remove(self)
        return self.proc.returncode


def options(binary):
    """The options the binary's --help lists, so a test passes new ones only where they exist."""
    r = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=10)
    return set(re.findall(r"^\s+(--[a-z0-9-]+)", r.stdout + r.stderr, re.M))


# ---- faults done to PostgreSQL (a tests/engines Postgres object) ----

def postmaster_pid(pg):
    try:
        with open(os.path.join(pg.data, "postmaster.pid")) as f:
            return int(f.readline())
    except (OSError, ValueError):
        return None


def postgres_children(top):
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == top:
                kids.append(int(entry))
    return kids


def signal_postgres(pg, sig):
    """SIGSTOP/SIGCONT the whole server: the postmaster first (stopped, it forks no new
    backend), then every child it has by then. Returns how many processes got it."""
    top = postmaster_pid(pg)
    if top is None:
        return 0
    n = 0
    for pid in [top] + postgres_children(top):
        try:
            os.kill(pid, sig)
            n += 1
        except ProcessLookupError:
            pass
    return n


def terminate_backends(pg, user="userapi"):
    """pg_terminate_backend of every connection of `user`; returns how many were cut."""
    out = pg.psql(f"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = '{user}'")
    return int(out or 0)


def postgres_of(pg):
    """Pids of any postgres still running on this test's data folder (its command line names
    it), for the last step of a cleanup when pg_ctl could not stop it."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmd = f.read().split(b"\0")
            except OSError:
                continue
            if pg.data.encode() in cmd and os.path.basename(cmd[0]) in (b"postgres", b"postmaster"):
                found.append(int(entry))
    return found


# ---- stopping everything ----

def step(what, action):
    try:
        action()
    except Exception as e:  # noqa: BLE001  (report and go on: the rest must still stop)
        print(f"cleanup: {what}: {e}", file=sys.stderr, flush=True)


def stop_everything(pg=None, redis=None, extra_steps=()):
    """Stops every instance in LIVE, then Redis, then PostgreSQL (resumed first, in case a
    SIGSTOP was in force), then anything still running on the test's data folder."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for what, action in extra_steps:
        step(what, action)
    for inst in list(LIVE):
        step(f"stopping {inst.name}", lambda: inst.proc.poll() is None and inst.proc.send_signal(signal.SIGTERM))
    for inst in list(LIVE):
        step(f"waiting for {inst.name}", inst.stop)
    if redis is not None:
        step("stopping Redis", redis.stop)
    if pg is not None:
        step("resuming PostgreSQL", lambda: signal_postgres(pg, signal.SIGCONT))
        step("stopping PostgreSQL", lambda: pg.stop("immediate"))

        def leftovers():
            # A postmaster pg_ctl could not stop (one being started when the test was
            # interrupted): immediate shutdown, then SIGKILL; its children follow it.
            for sig in (signal.SIGQUIT, signal.SIGKILL):
                pids = postgres_of(pg)
                for pid in pids:
                    os.kill(pid, sig)
                for _ in range(50):
                    if not postgres_of(pg):
                        return
                    time.sleep(0.1)
        step("stopping PostgreSQL leftovers", leftovers)


def remove_tree(path):
    """rm -rf that also wins against a child still tidying up inside (an initdb interrupted
    with the test cleans its own folder as it exits)."""
    for _ in range(25):
        shutil.rmtree(path, ignore_errors=True)
        if not os.path.exists(path):
            return
        time.sleep(0.2)
    print(f"cleanup: could not remove {path}", file=sys.stderr, flush=True)


def raise_on_sigterm():
    """SIGTERM (CTest's or a user's kill) unwinds like Ctrl-C, through the test's cleanup."""
    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, handler)
