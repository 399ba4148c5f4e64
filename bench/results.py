"""The results folder of one bench/run: every measurement as a CSV row, written as it is taken
(an interrupted run keeps what it measured), then the printed table (table.md) and the charts
bench/charts.py draws from the CSV.

  wrk.csv        one row per wrk run: scenario, server, threads, pair, requests/s, p50, p99,
                 CPU per request, requests, non-2xx, socket errors, timeouts, database or origin
                 reads during the run, cold ids requested (scenario 8)
  burst.csv      one row per coalescing burst (scenario 3): server, run, id, reads, answers,
                 answers not 200, X-Cache counts, fastest, median, p99, slowest
  burst_latency.csv  the burst's latency at each percentile (0, 1, ..., 99, 99.9, 100)
  run.txt        the command line, the commit, the machine and its load average before and after
"""
import csv
import math
import os
import platform
import subprocess
import sys

WRK = ["scenario", "server", "threads", "pair", "rps", "p50_ms", "p99_ms", "cpu_us", "requests", "non2xx",
       "socket_errors", "timeouts", "reads", "cold_ids"]
BURST = ["server", "run", "id", "reads", "answers", "non200", "x_cache", "fastest_ms", "p50_ms", "p99_ms", "slowest_ms"]
PERCENTILES = list(range(0, 100)) + [99.9, 100]


def percentile(sorted_values, p):
    """Nearest-rank percentile of an ascending list (p 0 = the smallest)."""
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values), max(1, math.ceil(p / 100 * len(sorted_values)))) - 1]


def load():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"


class Results:
    def __init__(self, folder, args):
        self.folder = os.path.abspath(folder)
        os.makedirs(self.folder, exist_ok=True)
        self.files = {}
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        commit = subprocess.run(["git", "-C", root, "describe", "--always", "--dirty"], capture_output=True,
                                text=True).stdout.strip()
        about = "command: %s\ncommit: %s\nmachine: %s, %d cores, Python %s\narguments: %s\n" % (
            " ".join(sys.argv), commit or "unknown", platform.platform(), os.cpu_count(),
            platform.python_version(), vars(args))
        self.text("run.txt", about + "load average at the start: %s\n" % load())

    def writer(self, name, header):
        if name not in self.files:
            f = open(os.path.join(self.folder, name), "w", newline="")
            w = csv.writer(f)
            w.writerow(header)
            self.files[name] = (f, w)
        return self.files[name]

    def add(self, name, header, values):
        f, w = self.writer(name, header)
        w.writerow(values)
        f.flush()

    def wrk(self, scenario, server, threads, pair, r):
        self.add("wrk.csv", WRK, [scenario, server, threads, pair, "%.1f" % r["rps"], "%.3f" % r["p50"],
                                  "%.3f" % r["p99"], "%.2f" % r["cpu_us"], r["requests"], r["non2xx"],
                                  r.get("socket_errors", 0), r.get("timeouts", 0), r.get("reads", ""),
                                  r.get("cold_ids", "")])

    def burst(self, server, run, uid, reads, times, counts, statuses):
        """times: every answer's latency in ms, ascending."""
        x_cache = " ".join("%s=%d" % (k or "none", v) for k, v in sorted(counts.items(), key=lambda kv: str(kv[0])))
        self.add("burst.csv", BURST, [server, run, uid, reads, len(times), sum(v for k, v in statuses.items() if k != "200"),
                                      x_cache, "%.1f" % times[0], "%.1f" % percentile(times, 50),
                                      "%.1f" % percentile(times, 99), "%.1f" % times[-1]])
        for p in PERCENTILES:
            self.add("burst_latency.csv", ["server", "run", "percentile", "ms"],
                     [server, run, p, "%.1f" % percentile(times, p)])

    def text(self, name, content):
        with open(os.path.join(self.folder, name), "w") as f:
            f.write(content)

    def close(self):
        # Other work on the machine shows in every figure: say how busy it was.
        with open(os.path.join(self.folder, "run.txt"), "a") as f:
            f.write("load average at the end: %s\n" % load())
        for f, _ in self.files.values():
            f.close()
        self.files = {}
