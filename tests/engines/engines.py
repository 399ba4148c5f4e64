#!/usr/bin/env python3
"""PostgreSQL and Redis for the tests: started in a throwaway folder on free loopback ports,
stopped by the same script. Nothing here assumes a service already runs.

    engines.py start STATE_DIR      # writes STATE_DIR/engines.env (USERAPI_TEST_PG, USERAPI_TEST_REDIS)
    engines.py stop STATE_DIR

Also a library: `Postgres(dir).start()/stop()`, `Redis(dir).start()/stop()`, used by the
cluster tests, which stop and restart engines on purpose.

PostgreSQL refuses to run as root: when root, it runs as the `postgres` user (the Debian
package creates it), with the folder handed to that user. A missing engine is reported on
stderr and skipped (exit 77 from `start`), unless CI=true, where it is an error (exit 1).
"""
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time

HOST = "127.0.0.1"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_port(port, limit=15.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def pg_bin(name):
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


class Postgres:
    """A PostgreSQL server of its own: initdb into `folder`, trust auth on 127.0.0.1 only."""

    def __init__(self, folder, port=None, durable=False):
        self.folder = os.path.abspath(folder)
        self.data = os.path.join(self.folder, "pgdata")
        self.port = port or free_port()
        self.as_root = os.geteuid() == 0
        self.durable = durable  # fsync on: benchmarks compare it with SQLite's synchronous=FULL

    @staticmethod
    def available():
        return bool(pg_bin("initdb") and pg_bin("pg_ctl"))

    def uri(self, db="userapi"):
        return f"postgresql://userapi@{HOST}:{self.port}/{db}"

    def _run(self, args, **kw):
        if self.as_root:
            args = ["runuser", "-u", "postgres", "--"] + args
        return subprocess.run(args, capture_output=True, text=True, timeout=60, **kw)

    def _own(self):
        if self.as_root:
            # The postgres user must be able to reach the folder: let it through every
            # ancestor (a mkdtemp folder is 0700).
            d = os.path.dirname(self.folder)
            while d not in ("/", ""):
                mode = os.stat(d).st_mode
                if not mode & 0o001:
                    os.chmod(d, mode | 0o001)
                d = os.path.dirname(d)
            pw = pwd.getpwnam("postgres")
            for root, dirs, files in os.walk(self.folder):
                for n in dirs + files:
                    os.chown(os.path.join(root, n), pw.pw_uid, pw.pw_gid)
            os.chown(self.folder, pw.pw_uid, pw.pw_gid)

    def init(self):
        os.makedirs(self.folder, exist_ok=True)
        self._own()
        if not os.path.exists(os.path.join(self.data, "PG_VERSION")):
            r = self._run([pg_bin("initdb"), "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                           "--no-sync", "--locale=C"])
            if r.returncode:
                raise RuntimeError("initdb failed: " + r.stderr)
        return self

    def start(self):
        self.init()
        opts = (f"-p {self.port} -k {self.folder} -c listen_addresses={HOST} -c fsync={'on' if self.durable else 'off'} "
                f"-c max_connections=200 -c shared_buffers=32MB")
        r = self._run([pg_bin("pg_ctl"), "-D", self.data, "-o", opts, "-l", os.path.join(self.folder, "pg.log"),
                       "-w", "-t", "30", "start"])
        if r.returncode:
            raise RuntimeError("pg_ctl start failed: " + r.stderr + r.stdout)
        if not wait_port(self.port):
            raise RuntimeError("PostgreSQL did not listen on %d" % self.port)
        psql = pg_bin("psql")
        for sql in ("CREATE ROLE userapi LOGIN", "CREATE DATABASE userapi OWNER userapi"):
            self._run([psql, "-h", HOST, "-p", str(self.port), "-U", "postgres", "-d", "postgres", "-c", sql])
        return self

    def stop(self, mode="fast"):
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            self._run([pg_bin("pg_ctl"), "-D", self.data, "-m", mode, "-w", "-t", "30", "stop"])

    def psql(self, sql, db="userapi"):
        r = self._run([pg_bin("psql"), "-h", HOST, "-p", str(self.port), "-U", "postgres", "-d", db, "-At",
                       "-c", sql])
        if r.returncode:
            raise RuntimeError(r.stderr)
        return r.stdout.strip()


class Redis:
    """A redis-server of its own: no persistence, 127.0.0.1 only, a child of this process."""

    def __init__(self, folder, port=None):
        self.folder = os.path.abspath(folder)
        self.port = port or free_port()
        self.proc = None

    @staticmethod
    def available():
        return bool(shutil.which("redis-server"))

    def uri(self):
        return f"redis://{HOST}:{self.port}"

    def start(self, detach=False):
        os.makedirs(self.folder, exist_ok=True)
        args = [shutil.which("redis-server"), "--port", str(self.port), "--bind", HOST, "--save", "",
                "--appendonly", "no", "--dir", self.folder, "--protected-mode", "yes",
                "--logfile", os.path.join(self.folder, "redis.log"),
                "--pidfile", os.path.join(self.folder, "redis.pid")]
        if detach:
            args += ["--daemonize", "yes"]
            subprocess.run(args, check=True, timeout=30)
        else:
            self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_port(self.port):
            raise RuntimeError("redis-server did not listen on %d" % self.port)
        return self

    def stop(self):
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None
            return
        pidfile = os.path.join(self.folder, "redis.pid")
        if os.path.exists(pidfile):
            try:
                pid = int(open(pidfile).read().strip())
                os.kill(pid, signal.SIGTERM)
                for _ in range(200):
                    os.kill(pid, 0)
                    time.sleep(0.05)
            except (OSError, ValueError):
                pass


def missing(what):
    """A missing engine: skip (77), or fail under CI."""
    print(f"engines: {what} is not installed (scripts/deps --test-tools installs it)", file=sys.stderr)
    sys.exit(1 if os.environ.get("CI") == "true" else 77)


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("start", "stop"):
        print(__doc__, file=sys.stderr)
        return 2
    state = os.path.abspath(sys.argv[2])
    env_file = os.path.join(state, "engines.env")
    if sys.argv[1] == "start":
        if os.path.exists(state):
            main_stop(state)
            shutil.rmtree(state, ignore_errors=True)
        os.makedirs(state)
        if not Postgres.available():
            missing("PostgreSQL")
        if not Redis.available():
            missing("redis-server")
        pg = Postgres(os.path.join(state, "pg")).start()
        redis = Redis(os.path.join(state, "redis")).start(detach=True)
        with open(env_file, "w") as f:
            f.write(f"USERAPI_TEST_PG={pg.uri()}\nUSERAPI_TEST_PG_PORT={pg.port}\n"
                    f"USERAPI_TEST_REDIS={redis.uri()}\nUSERAPI_TEST_REDIS_PORT={redis.port}\n")
        print(f"engines: PostgreSQL on {pg.port}, Redis on {redis.port} ({env_file})")
        return 0
    main_stop(state)
    return 0


def main_stop(state):
    env_file = os.path.join(state, "engines.env")
    values = {}
    if os.path.exists(env_file):
        for line in open(env_file):
            k, _, v = line.strip().partition("=")
            values[k] = v
    if values.get("USERAPI_TEST_PG_PORT"):
        Postgres(os.path.join(state, "pg"), int(values["USERAPI_TEST_PG_PORT"])).stop("immediate")
    Redis(os.path.join(state, "redis")).stop()
    if os.path.exists(env_file):
        os.remove(env_file)


if __name__ == "__main__":
    sys.exit(main())
