"""Scenario 3, the coalescing burst: 1,000 connections ask for one cold id at the same instant
(bench/coalesce.py's burst), against userapi (database latency 200 ms) and, in the same
rotation, nginx proxy_cache with proxy_cache_lock and Varnish, each before a 200 ms origin.
Reported per server: the reads the burst cost (userapi's database reads, the origin's requests),
the answers' X-Cache, and the fastest, median, p99 and slowest answer, medians over --pairs runs.
"""
import statistics

import coalesce
import peers
import run
from results import percentile

CONNECTIONS = 1000


def run_all(args, workdir, rec, peers_too=True):
    coalesce.raise_fd_limit()
    starters = [lambda: run.Userapi(args.build, ["--no-rate-limit", "--seed-users", "100",
                                                 "--max-connections-per-client", "4096"], workdir)]
    if peers_too:
        # Two workers, as userapi runs two I/O threads by default on this 2-core machine.
        starters += [lambda: peers.NginxCache(2, workdir), lambda: peers.Varnish(2, workdir)]
    servers, results, lines = [], {}, []
    try:
        for start in starters:
            servers.append(start())
        for k in range(args.pairs):
            uid = 10 + k  # a new id each round: cold on every server
            for s in servers:
                before = s.reads()
                times, counts, statuses = coalesce.burst(s.port, uid, CONNECTIONS)
                reads = s.reads() - before
                rec.burst(s.label, k + 1, uid, reads, times, counts, statuses)
                results.setdefault(s.label, []).append((reads, times, counts, statuses))
                bad = "" if statuses == {"200": CONNECTIONS} else ", NOT ALL 200: %s" % statuses
                lines.append("run %d, %s: id %d, %s, reads %d, fastest %.1f ms, median %.1f ms, slowest %.1f ms%s"
                             % (k + 1, s.label, uid, counts, reads, times[0], statistics.median(times), times[-1], bad))
    finally:
        run.stop_all(servers)
    table = ["| server | reads per burst | answers | fastest | median | p99 | slowest |", "|---|---|---|---|---|---|---|"]
    for label, rs in results.items():
        table.append("| %s | %s | %s | %.1f ms | %.1f ms | %.1f ms | %.1f ms |" % (
            label, " / ".join(str(r[0]) for r in rs), " / ".join(str(len(r[1])) for r in rs),
            statistics.median(r[1][0] for r in rs), statistics.median(percentile(r[1], 50) for r in rs),
            statistics.median(percentile(r[1], 99) for r in rs), statistics.median(r[1][-1] for r in rs)))
    head = "scenario 3, %s connections on one cold id (database / origin latency 200 ms), latencies the medians of %d runs:" % (
        "{:,}".format(CONNECTIONS), args.pairs)
    return "%s\n\n%s\n\n%s" % (head, "\n".join(table), "\n".join(lines))
