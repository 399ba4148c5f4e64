"""Scenario 8, the mixed load: 90 % of requests read one of 1,000 warm ids (cached before the
run), 10 % a cold id that no request asked before (bench/mixed.lua), wrk -t1 -c50, database /
origin latency 200 ms. Against userapi with --db-batch-reads 1 and 64 when its --help lists the
option (with its defaults, labelled so, when not), nginx proxy_cache and Varnish, in one
rotation. Every server keeps answers for an hour here, not 60 s: priming 1,000 ids through
userapi's one-at-a-time queue takes 1,000 x 200 ms, longer than a minute, and the warm ids must
stay hits for the whole scenario on every server alike.
"""
import os
import subprocess

import peers
import run

HERE = os.path.dirname(os.path.abspath(__file__))
WARM = 1000
TTL_S = 3600
NAME = "8 mixed: 90 % warm hits, 10 % cold"


def batch_option(build):
    """Whether this userapi build has --db-batch-reads (another branch adds it)."""
    out = subprocess.run([os.path.join(build, "userapi"), "--help"], capture_output=True, text=True, timeout=30).stdout
    return "--db-batch-reads" in out


def run_all(args, workdir, rec):
    # A cold request waits at least the 200 ms latency on one of 50 connections, so a run asks
    # for at most 250 cold ids a second: each run gets a range of ids with room to spare, and
    # userapi is seeded with every id any run can ask for (a cold id must be a user, not a 404).
    span = 300 * args.duration + 1000
    seeds = WARM + span * args.pairs
    base = ["--no-rate-limit", "--threads", "1", "--seed-users", str(seeds), "--cache-capacity", str(seeds + WARM),
            "--cache-ttl-ms", str(TTL_S * 1000), "--db-latency-ms", "200", "--max-connections-per-client", "4096"]
    if batch_option(args.build):
        configs = [("userapi --db-batch-reads 1", ["--db-batch-reads", "1"]),
                   ("userapi --db-batch-reads 64", ["--db-batch-reads", "64"])]
    else:
        configs = [("userapi, defaults (no --db-batch-reads in this build)", [])]
    starters = [lambda label=label, extra=extra: run.Userapi(args.build, base + extra, workdir, label=label)
                for label, extra in configs]
    starters += [lambda: peers.NginxCache(1, workdir, ttl_s=TTL_S), lambda: peers.Varnish(1, workdir, ttl_s=TTL_S)]
    runs = run.rotate(NAME, 1, starters, "/", args, rec, count_reads=True,
                      prime=lambda servers: run.prime_parallel(servers, range(1, WARM + 1)),
                      script=os.path.join(HERE, "mixed.lua"), script_args=lambda k: (WARM + 1 + k * span, WARM),
                      timeout_s=60)
    nginx, varnish = peers.NginxCache.label, peers.Varnish.label
    rows, notes = [], []
    for label, rs in runs.items():
        ratios = [a["rps"] / b["rps"] for a, b in zip(rs, runs[nginx])] if label.startswith("userapi") else None
        rows.append(run.row(NAME, label, 1, rs, ratios))
    table = ["| server | requests/s | p50 | p99 | cold ids asked per run | database / origin reads per run | "
             "non-2xx, socket errors, timeouts |", "|---|---|---|---|---|---|---|"]
    for label, rs in runs.items():
        table.append("| %s | %s | %.1f ms | %.1f ms | %s | %s | %d |" % (
            label, "{:,.0f}".format(run.med(rs, "rps")), run.med(rs, "p50"), run.med(rs, "p99"),
            " / ".join(str(r.get("cold_ids", "?")) for r in rs), " / ".join(str(r["reads"]) for r in rs),
            sum(r["non2xx"] + r["socket_errors"] + r["timeouts"] for r in rs)))
    lines = []
    for label, _ in configs:
        for peer in (nginx, varnish):
            lines.append("%s / %s: throughput %.2f, p99 %.2f (ratios of the medians)" % (
                label, peer, run.med(runs[label], "rps") / run.med(runs[peer], "rps"),
                run.med(runs[label], "p99") / run.med(runs[peer], "p99")))
    overflow = [label for label, rs in runs.items() if any((r.get("cold_ids") or 0) > span for r in rs)]
    if overflow:
        lines.append("WARNING: a run asked for more than %d cold ids (%s): later runs repeated some" % (span, overflow))
    notes.append("scenario 8, mixed load (wrk -t1 -c50 -d%ds, --timeout 60s, database / origin latency 200 ms, "
                 "%d warm ids primed, medians of %d runs; on userapi's rows of the main table, the ratios are "
                 "userapi/nginx proxy_cache per pair):\n\n%s\n\n%s" % (
                     args.duration, WARM, args.pairs, "\n".join(table), "\n".join(lines)))
    return rows, notes
