#!/usr/bin/env python3
"""Moving 1,000,000 users (contract section 10): export, import into SQLite, import into
PostgreSQL, migrate SQLite -> PostgreSQL, and for comparison the export of PostgreSQL and the
backup of the SQLite file. Each step is one run of the binary, timed (wall clock) with its peak
resident set (/usr/bin/time's %M). PostgreSQL (fsync on) is started here on a
free loopback port, as the tests start theirs.

The source store is made fast and directly: `userapi import` of an empty export creates the
schema (the server's own code), then Python's sqlite3 inserts the users in one transaction,
with names from every script (astral plane, combining marks, right-to-left) and some ids
deleted (gaps, and a next id above the last id).

usage: bench/data_moves.py [--binary build/userapi] [--users 1000000] [--keep DIR]
Prints a Markdown table and whether each target holds (RSS under 64 MB; 50,000 users/s into
SQLite, 20,000/s into PostgreSQL); exit 1 when one does not.
"""
import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "engines"))
from engines import Postgres  # noqa: E402

TIME = "/usr/bin/time"  # Debian's time package
NAMES = ["Zoë O'Brien", "日本語の名前", "emoji 😀 𝄞", "e\u0301le\u0300ve", "שלום עולם", "back\\slash \"q\"", "Plain Name"]


def make_source(binary, path, n):
    """n users with gaps: every 50th id is skipped, and the next id is 7 above the last one."""
    empty = path + ".empty.ndjson"
    with open(empty, "w") as f:
        f.write('{"userapi_export":1,"next_id":1,"users":0}\n')
    subprocess.run([binary, "import", "--data", path, "--in", empty], check=True, stderr=subprocess.DEVNULL)
    os.remove(empty)
    con = sqlite3.connect(path)
    last = n + n // 50  # every 50th id skipped

    def rows():
        uid = 0
        for i in range(n):
            uid += 2 if i % 50 == 49 else 1
            yield uid, "%s %d" % (NAMES[i % len(NAMES)], i), "bench-%d@example.org" % uid, 1 + i % 5
    with con:
        con.executemany("INSERT INTO users (id, name, email, version) VALUES (?, ?, ?, ?)", rows())
        con.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = 'users'", (last + 6,))
    con.close()
    return last + 7


def measure(name, cmd):
    """Runs cmd under /usr/bin/time; (wall seconds, peak RSS in MiB, its stderr's last line).
    /usr/bin/time rather than this process's wait4(): a child forked from Python starts with
    Python's resident set, and the kernel counts it in the child's peak."""
    err = tempfile.TemporaryFile()
    with tempfile.NamedTemporaryFile("r") as out:
        start = time.monotonic()
        p = subprocess.run([TIME, "-o", out.name, "-f", "%M"] + cmd, stdout=subprocess.DEVNULL, stderr=err)
        wall = time.monotonic() - start
        peak_kib = int(out.read().split()[-1])
    err.seek(0)
    lines = err.read().decode("utf-8", "replace").strip().splitlines()
    if p.returncode != 0:
        raise SystemExit("%s failed (%d): %s" % (name, p.returncode, "\n".join(lines[-5:])))
    return wall, peak_kib / 1024.0, lines[-1] if lines else ""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "userapi"))
    ap.add_argument("--users", type=int, default=1000000)
    ap.add_argument("--keep", help="work in this folder and keep it")
    args = ap.parse_args()
    if not os.access(TIME, os.X_OK):
        raise SystemExit("bench/data_moves.py needs /usr/bin/time: scripts/deps time")
    binary = os.path.abspath(args.binary)
    work = args.keep or tempfile.mkdtemp(prefix="userapi-moves-bench-")
    os.makedirs(work, exist_ok=True)
    pg = Postgres(os.path.join(work, "pg"), durable=True)
    try:
        src = os.path.join(work, "src.db")
        t = time.monotonic()
        next_id = make_source(binary, src, args.users)
        print("source: %d users, next id %d, %.1f MB, made in %.1f s" % (
            args.users, next_id, os.path.getsize(src) / 1e6, time.monotonic() - t), flush=True)
        pg.start()
        for db in ("imported", "migrated"):
            pg.psql("CREATE DATABASE %s OWNER userapi" % db, db="postgres")
        export = os.path.join(work, "export.ndjson")
        steps = [
            ("export SQLite", [binary, "export", "--data", src, "--out", export], None),
            ("import into SQLite", [binary, "import", "--data", os.path.join(work, "dst.db"), "--in", export], 50000),
            ("import into PostgreSQL", [binary, "import", "--data", pg.uri("imported"), "--in", export], 20000),
            ("migrate SQLite -> PostgreSQL", [binary, "migrate", "--from", src, "--to", pg.uri("migrated")], 20000),
            ("export PostgreSQL", [binary, "export", "--data", pg.uri("imported"), "--out",
                                   os.path.join(work, "pg.ndjson")], None),
            ("backup SQLite", [binary, "backup", "--data", src, "--to", os.path.join(work, "copy.db")], None),
        ]
        print("\n| step | wall time | users/s | peak RSS | target |\n|---|---|---|---|---|")
        missed = []
        for name, cmd, rate_target in steps:
            wall, rss, _ = measure(name, cmd)
            rate = args.users / wall
            verdict = []
            if rss >= 64:
                verdict.append("RSS over 64 MB")
            if rate_target and rate < rate_target:
                verdict.append("below %d/s" % rate_target)
            missed += ["%s: %s" % (name, v) for v in verdict]
            target = ("%s/s, " % "{:,}".format(rate_target) if rate_target else "") + "RSS < 64 MB"
            print("| %s | %.2f s | %s | %.1f MB | %s: %s |" % (
                name, wall, "{:,.0f}".format(rate), rss, target, "; ".join(verdict) or "met"), flush=True)
        with open(export, "rb") as f:
            same = f.read() == open(os.path.join(work, "pg.ndjson"), "rb").read()
        print("\nthe PostgreSQL export is byte-identical to the SQLite one: %s" % same)
        if not same:
            missed.append("exports differ")
        if missed:
            print("missed: " + "; ".join(missed))
            return 1
        return 0
    finally:
        pg.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
