#!/usr/bin/env python3
"""Draws a bench/run results folder's CSV as SVG charts with gnuplot:

  throughput.svg  requests/s per scenario, a bar per server (median; whiskers: slowest and
                  fastest run), for every scenario that ran on more than one server
  cpu.svg         server CPU time per request, the same way
  burst.svg       scenario 3: every answer's latency by percentile, a line per server
  mixed.svg       scenario 8: requests/s and p99 latency per server

usage: bench/charts.py RESULTS_FOLDER [--out DIR ...]   (default: into the folder itself)
bench/run.py calls render() at the end of a run. With --out docs/charts the CSV and run.txt are
copied beside the charts, so the committed charts keep the data they were drawn from.
"""
import argparse
import csv
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

COLORS = {"userapi": 0x1F5FAF, "nginx": 0x8C8C8C, "nginx proxy_cache": 0x2E9E3E, "Varnish": 0xC8372D}
SHORT = {"nginx proxy_cache": "nginx cache", "userapi --db-batch-reads 1": "userapi batch 1",
         "userapi --db-batch-reads 64": "userapi batch 64"}


def color(server):
    if server in COLORS:
        return COLORS[server]
    return 0x6A9AD8 if "64" in server else COLORS["userapi"]  # the variants of userapi: blues


def short(server):
    return SHORT.get(server, "userapi, defaults" if server.startswith("userapi,") else server)


def read(folder, name):
    path = os.path.join(folder, name)
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def groups(rows, key):
    """{panel title: {server: [values]}} in the order the runs were taken."""
    out = {}
    for r in rows:
        threads = int(r["threads"])
        title = "%s, %d thread%s" % (r["scenario"], threads, "s" if threads > 1 else "")
        out.setdefault(title, {}).setdefault(r["server"], []).append(float(r[key]))
    return out


def human(v, unit):
    if unit == "req/s":
        return "{:,.0f}".format(v)
    if unit == "ms":
        return "%.2f s" % (v / 1000) if v >= 1000 else "%.0f ms" % v
    return "%.1f µs" % v


def panel(lines, servers, unit, tmp, i, title):
    """One bar panel: a bar per server at its median, whiskers to its lowest and highest run,
    the median written above."""
    dat = os.path.join(tmp, "panel%d.dat" % i)
    top = 0
    with open(dat, "w") as f:
        for server, values in servers.items():
            m = statistics.median(values)
            top = max(top, max(values))
            f.write('"%s" %g %g %g %d "%s"\n' % (short(server), m, min(values), max(values), color(server), human(m, unit)))
    lines += ['set title "%s" font ",11"' % title.replace('"', "'"), 'set xrange [-0.6:%g]' % (len(servers) - 0.4),
              'set yrange [0:%g]' % (top * 1.25 or 1),
              'plot "%s" using 0:2:(0.6):5:xtic(1) with boxes lc rgb variable, '
              '"" using 0:3:(0):($4-$3) with vectors nohead lc rgb "black" lw 1.2, '
              '"" using 0:4:6 with labels offset 0,0.8 font ",10"' % dat]


BAR_STYLE = ['set style fill solid 0.85 border -1', 'set boxwidth 0.6', 'set grid ytics', 'unset key',
             'set xtics scale 0 font ",10"']


def bars(panels, unit, ylabel, path, tmp, title):
    """A multiplot of bar panels, two a row."""
    panels = {t: s for t, s in panels.items() if len(s) > 1}
    if not panels:
        return False
    n = len(panels)
    cols = 2 if n > 1 else 1
    rows = math.ceil(n / cols)
    lines = ['set terminal svg size %d,%d dynamic noenhanced font "Helvetica,12" background "white"' % (
        520 * cols, 300 * rows + 40), 'set encoding utf8', 'set output "%s"' % path,
        'set multiplot layout %d,%d title "%s"' % (rows, cols, title), 'set ylabel "%s"' % ylabel] + BAR_STYLE
    for i, (name, servers) in enumerate(panels.items()):
        panel(lines, servers, unit, tmp, i, name)
    lines.append("unset multiplot")
    return gnuplot(lines, tmp)


def burst(rows, path, tmp, counts):
    by = {}
    for r in rows:
        by.setdefault(r["server"], {}).setdefault(float(r["percentile"]), []).append(float(r["ms"]))
    if not by:
        return False
    lines = ['set terminal svg size 900,480 dynamic noenhanced font "Helvetica,12" background "white"', 'set encoding utf8',
             'set output "%s"' % path,
             'set title "Scenario 3: 1,000 connections ask one cold id at once (latency 200 ms); median of the runs"',
             'set xlabel "answers (percentile)"', 'set ylabel "latency (ms)"', 'set grid', 'set key outside below horizontal',
             'set xrange [0:100]', 'set yrange [0:*]']
    plots = []
    for i, (server, pct) in enumerate(by.items()):
        dat = os.path.join(tmp, "burst%d.dat" % i)
        with open(dat, "w") as f:
            for p in sorted(pct):
                f.write("%g %g\n" % (p, statistics.median(pct[p])))
        plots.append('"%s" using 1:2 with lines lw 2.5 lc rgb "#%06x" title "%s%s"' % (
            dat, color(server), server, counts.get(server, "")))
    lines.append("plot " + ", ".join(plots))
    return gnuplot(lines, tmp)


def gnuplot(lines, tmp):
    script = os.path.join(tmp, "chart.gp")
    with open(script, "w") as f:
        f.write("\n".join(lines) + "\n")
    r = subprocess.run(["gnuplot", script], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("gnuplot failed: %s" % r.stderr)
    return True


def render(folder, outs):
    """Draws the charts of `folder` into each of `outs`; returns the files drawn."""
    if not shutil.which("gnuplot"):
        print("charts: gnuplot is not installed (scripts/deps gnuplot-nox), none drawn", file=sys.stderr)
        return []
    wrk = read(folder, "wrk.csv")
    mixed = [r for r in wrk if r["scenario"].startswith("8 ")]
    reads = {}
    for r in read(folder, "burst.csv"):
        reads.setdefault(r["server"], []).append(r["reads"])
    counts = {s: " (%s per burst)" % ("%s read" % v[0] if len(set(v)) == 1 else "/".join(v) + " reads")
              + ("s" if len(set(v)) == 1 and v[0] != "1" else "") for s, v in reads.items()}
    drawn = []
    with tempfile.TemporaryDirectory() as tmp:
        first = outs[0]
        os.makedirs(first, exist_ok=True)
        made = {
            "throughput.svg": bars(groups(wrk, "rps"), "req/s", "requests/s", os.path.join(first, "throughput.svg"), tmp,
                                   "Requests per second (median; whiskers: slowest and fastest run)"),
            "cpu.svg": bars(groups(wrk, "cpu_us"), "us", "server CPU per request (µs)", os.path.join(first, "cpu.svg"), tmp,
                            "Server CPU time per request (median; whiskers: lowest and highest run)"),
            "burst.svg": burst(read(folder, "burst_latency.csv"), os.path.join(first, "burst.svg"), tmp, counts),
        }
        if mixed:
            panels = {"requests/s": {}, "p99 latency": {}}
            for r in mixed:
                panels["requests/s"].setdefault(r["server"], []).append(float(r["rps"]))
                panels["p99 latency"].setdefault(r["server"], []).append(float(r["p99_ms"]))
            made["mixed.svg"] = mixed_chart(panels, os.path.join(first, "mixed.svg"), tmp)
        drawn = [name for name, ok in made.items() if ok]
        for out in outs[1:]:
            os.makedirs(out, exist_ok=True)
            for name in drawn:
                shutil.copy(os.path.join(first, name), out)
            for name in ("wrk.csv", "burst.csv", "burst_latency.csv", "run.txt", "table.md"):
                if os.path.exists(os.path.join(folder, name)):
                    shutil.copy(os.path.join(folder, name), out)
    for out in outs:
        print("charts: %s in %s" % (", ".join(drawn) or "none", out))
    return drawn


def mixed_chart(panels, path, tmp):
    """Scenario 8's two panels side by side: throughput (higher is better) and p99 (lower)."""
    lines = ['set terminal svg size 1040,380 dynamic noenhanced font "Helvetica,12" background "white"', 'set encoding utf8',
             'set output "%s"' % path,
             'set multiplot layout 1,2 title "Scenario 8: 90 % warm hits, 10 % cold ids, wrk -t1 -c50, latency 200 ms '
             '(median; whiskers: lowest and highest run)"'] + BAR_STYLE
    for i, (name, servers) in enumerate(panels.items()):
        unit = "req/s" if name == "requests/s" else "ms"
        lines.append('set ylabel "%s"' % ("requests/s" if unit == "req/s" else "ms"))
        panel(lines, servers, unit, tmp, i, name + (" (higher is better)" if unit == "req/s" else " (lower is better)"))
    lines.append("unset multiplot")
    return gnuplot(lines, tmp)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--out", action="append", default=[])
    a = ap.parse_args()
    render(a.folder, [a.folder] + a.out)


if __name__ == "__main__":
    main()
