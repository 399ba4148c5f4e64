"""The peers users would deploy instead of userapi, started on loopback ports for bench/run.py:
nginx proxy_cache and Varnish, each in front of its own bench/origin.py (a 200 ms origin that
counts its requests, as userapi's database has a 200 ms latency and counts its reads).

Both are configured as an operator who knows them would: answers kept 60 s (userapi's
--cache-ttl-ms default) unless the scenario asks otherwise, concurrent misses of one key
collapsed into one origin request, keep-alive to the origin and to the clients, logs off, and
enough connections and threads for the 1,000-connection scenarios. Every process they start is
stopped by stop(); every address is 127.0.0.1.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

import run

HERE = os.path.dirname(os.path.abspath(__file__))


def descendants(pid):
    """pid and every process under it (nginx's workers and cache manager, Varnish's child)."""
    out, todo = [], [pid]
    while todo and len(out) < 10000:
        p = todo.pop()
        out.append(p)
        todo += run.children(p)
    return out


def wait_ready(port, proc, what, path="/ready", seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited with %s" % (what, proc.returncode))
        try:
            if b" 200 " in run.http_get(port, path).split(b"\r\n", 1)[0]:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("%s did not answer %s within %d s" % (what, path, seconds))


def stop(proc, seconds=15):
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(seconds)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(seconds)


class Origin:
    """bench/origin.py on a free port; requests() is how many /users requests reached it."""

    def __init__(self, latency_ms=200):
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "origin.py"), "--latency-ms", str(latency_ms)],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            line = self.proc.stdout.readline().decode()
            if "listening on" not in line:
                raise RuntimeError("origin did not start: %r" % line)
        except BaseException:  # also Ctrl-C while it starts: it must not outlive the bench
            stop(self.proc)
            raise
        self.port = int(line.rsplit(":", 1)[1])

    def requests(self):
        return run.json_get(self.port, "/count")["requests"]

    def stop(self):
        stop(self.proc)


class NginxCache:
    """nginx proxy_cache with proxy_cache_lock, worker_processes = threads."""

    label = "nginx proxy_cache"

    def __init__(self, threads, workdir, latency_ms=200, ttl_s=60):
        self.origin = Origin(latency_ms)
        self.proc = None
        try:
            self.start(threads, workdir, ttl_s)
        except BaseException:
            self.stop()
            raise

    def start(self, threads, workdir, ttl_s):
        origin = self.origin
        self.port = run.free_port()
        self.prefix = tempfile.mkdtemp(prefix="nginx-cache-", dir=workdir)
        os.chmod(workdir, 0o755)  # nginx's workers run as an unprivileged user and write the cache here
        os.chmod(self.prefix, 0o755)
        conf = os.path.join(self.prefix, "nginx.conf")
        with open(conf, "w") as f:
            f.write("""worker_processes %(threads)d;
worker_rlimit_nofile 65536;
daemon off;
pid %(prefix)s/nginx.pid;
error_log %(prefix)s/error.log warn;
events { worker_connections 16384; }
http {
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 60s;
  # Cache files on disk (the page cache keeps them in memory); 10 MB of keys hold ~80,000 ids,
  # more than any scenario reads; use_temp_path=off writes each answer in place.
  proxy_cache_path %(prefix)s/cache levels=1:2 keys_zone=users:10m max_size=1g inactive=2h use_temp_path=off;
  upstream origin {
    server 127.0.0.1:%(origin)d;
    keepalive 256;  # idle upstream connections kept: more than the misses in flight at -c50
  }
  server {
    listen 127.0.0.1:%(port)d backlog=4096;  # the 1,000-connection burst arrives at once
    location = /ready { return 200 'ready'; }
    location /users/ {
      proxy_pass http://origin;
      proxy_http_version 1.1;          # keep-alive to the origin needs HTTP/1.1 ...
      proxy_set_header Connection "";  # ... and no "Connection: close"
      proxy_cache users;
      proxy_cache_valid 200 %(ttl)ds;  # userapi's TTL; the origin sends no Cache-Control
      proxy_cache_lock on;             # one origin request per cold key, the others wait
      proxy_cache_lock_timeout 10s;    # longer than a miss can take here, so no waiter gives up
      proxy_cache_lock_age 10s;        # and goes to the origin itself
      add_header X-Cache $upstream_cache_status;
    }
  }
}
""" % {"threads": threads, "prefix": self.prefix, "origin": origin.port, "port": self.port, "ttl": ttl_s})
        self.proc = subprocess.Popen(["nginx", "-p", self.prefix, "-c", conf, "-e", self.prefix + "/error.log"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_ready(self.port, self.proc, "nginx proxy_cache")

    def pids(self):
        return descendants(self.proc.pid)

    def reads(self):
        return self.origin.requests()

    def stop(self):
        try:
            stop(self.proc)
        finally:
            self.origin.stop()


class Varnish:
    """varnishd in the foreground with its own working directory (no systemd, no /var/lib)."""

    label = "Varnish"

    def __init__(self, threads, workdir, latency_ms=200, ttl_s=60):
        # threads is not used: Varnish takes a thread per request in flight from its pools, where
        # nginx and userapi run an event loop per thread.
        self.origin = Origin(latency_ms)
        self.proc = None
        self.dir = None
        try:
            self.start(workdir, ttl_s)
        except BaseException:
            self.stop()
            raise

    def start(self, workdir, ttl_s):
        origin = self.origin
        self.port = run.free_port()
        self.dir = tempfile.mkdtemp(prefix="varnish-", dir=workdir)
        os.chmod(workdir, 0o755)  # varnishd drops to its own users, which must reach its files
        os.chmod(self.dir, 0o755)
        vcl = os.path.join(self.dir, "bench.vcl")
        with open(vcl, "w") as f:
            f.write("""vcl 4.1;
backend origin {
  .host = "127.0.0.1";
  .port = "%(origin)d";
  .first_byte_timeout = 30s;  # a queued miss may wait; never give up before the origin answers
}
sub vcl_recv {
  if (req.url == "/ready") { return (synth(200, "ready")); }
}
sub vcl_backend_response {
  set beresp.ttl = %(ttl)ds;  # userapi's TTL; the origin sends no Cache-Control
  set beresp.grace = 0s;      # userapi serves nothing stale by default (--cache-stale-ms 0)
}
sub vcl_deliver {
  if (obj.hits > 0) { set resp.http.X-Cache = "HIT"; } else { set resp.http.X-Cache = "MISS"; }
}
""" % {"origin": origin.port, "ttl": ttl_s})
        cmd = ["varnishd", "-F", "-n", os.path.join(self.dir, "work"), "-a", "127.0.0.1:%d" % self.port,
               "-T", "none",  # no management port: nothing else to secure or to collide with
               "-f", vcl,
               "-s", "malloc,256m",  # in memory, like userapi's cache; far more than the ids read
               # Two pools (the default) of at least 500 threads: a thread per request in flight, so
               # the 1,000-connection burst is served without creating threads during it.
               "-p", "thread_pools=2", "-p", "thread_pool_min=500", "-p", "thread_pool_max=5000"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_ready(self.port, self.proc, "varnishd", seconds=60)  # it compiles the VCL with cc

    def pids(self):
        return descendants(self.proc.pid)

    def reads(self):
        return self.origin.requests()

    def stop(self):
        try:
            stop(self.proc)
        finally:
            self.origin.stop()
            if self.dir:
                shutil.rmtree(self.dir, ignore_errors=True)
