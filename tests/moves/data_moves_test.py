#!/usr/bin/env python3
"""The data-moving subcommands as a user runs them (contract section 10): the real binary on real
stores, SQLite files and the engines fixture's PostgreSQL, with servers running beside them.

  round trips in every direction (SQLite -> PostgreSQL -> SQLite -> SQLite -> PostgreSQL) keep
  ids, versions (ETags), names of any script, emails and the next id after deletes, on any
  instance; a non-empty target is refused with nothing written; every kind of bad line is
  refused naming its line, with nothing committed; an import killed midway leaves nothing; an
  export, and a backup, while a server writes are each one state the store really had (the
  state after some prefix of the writer's acknowledged writes); instances running on an empty
  PostgreSQL target forget their "not found" entries at the commit; migrate prints a checksum
  that an independent computation over the export agrees with; progress is a bar on a terminal,
  lines otherwise; the options and exit statuses.

usage: data_moves_test.py --binary build/userapi --engines build/engines/engines.env [-k PATTERN]
PostgreSQL cases skip without the engines file, unless CI=true (then they fail).
"""
import argparse
import http.client
import json
import os
import pty
import re
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "engines"))
from engines import Postgres  # noqa: E402

BINARY = None
PG = None  # engines.Postgres of the fixture, or None
WORK = None
TIMEOUT = 120
NAMES = ["Zoë \"Quote\" O'Brien", "emoji 😀 𝄞", "e\u0301le\u0300ve", "שלום עולם", "مرحبا", "back\\slash",
         "日本語の名前", "Plain Name"]
MERGE = {"Content-Type": "application/merge-patch+json"}
_dbs = [0]


# -- processes and stores --------------------------------------------------------------------

def cli(args, stdin=None, timeout=TIMEOUT, env=None):
    """(exit status, stdout bytes, stderr text) of the binary run to completion."""
    kw = {"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}
    p = subprocess.run([BINARY] + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, env=env, **kw)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def sqlite_store():
    _dbs[0] += 1
    return os.path.join(WORK, "s%d.db" % _dbs[0])


def pg_store():
    """A new, empty database on the fixture's PostgreSQL: its URI."""
    _dbs[0] += 1
    name = "moves_%d_%d" % (os.getpid(), _dbs[0])
    PG.psql("CREATE DATABASE %s OWNER userapi" % name, db="postgres")
    return PG.uri(name)


def stores(case):
    """The engines a case runs on: SQLite always, PostgreSQL when the fixture has one."""
    out = [("sqlite", sqlite_store)]
    if PG:
        out.append(("postgresql", pg_store))
    elif os.environ.get("CI") == "true":
        case.fail("PostgreSQL is missing under CI")
    return out


class Server:
    """userapi on a free port of 127.0.0.1, no rate limit, no simulated latency."""

    def __init__(self, data, seed=0, extra=()):
        self.log = tempfile.TemporaryFile(dir=WORK)
        self.proc = subprocess.Popen([BINARY, "--port", "0", "--data", data, "--seed-users", str(seed),
                                      "--db-latency-ms", "0", "--no-rate-limit", "--log-level", "warn", *extra],
                                     stdout=subprocess.PIPE, stderr=self.log, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 60)
        line = self.proc.stdout.readline() if ready else ""
        m = re.match(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if not m:
            self.proc.kill()
            self.log.seek(0)
            raise AssertionError("server did not start: %r %s" % (line, self.log.read()[-500:]))
        self.port = int(m.group(1))
        self.local = threading.local()

    def call(self, method, path, body=None, headers=None):
        """(status, headers, parsed JSON body or None); one keep-alive connection per thread."""
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        h = dict(headers or {})
        if body is not None and "Content-Type" not in h:
            h["Content-Type"] = "application/json"
        if body is not None and not isinstance(body, str):
            body = json.dumps(body)
        try:
            conn.request(method, path, body=body.encode() if body is not None else None, headers=h)
            r = conn.getresponse()
            data = r.read()
        except (OSError, http.client.HTTPException):
            self.local.conn = None
            raise
        return r.status, {k.lower(): v for k, v in r.getheaders()}, json.loads(data) if data else None

    def stop(self):
        """Stops the server; it must drain and exit 0, with no sanitizer report on its stderr."""
        killed = False
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                killed = True
        self.proc.stdout.close()
        self.log.seek(0)
        err = self.log.read().decode("utf-8", "replace")
        self.log.close()
        if killed or self.proc.returncode != 0 or "Sanitizer" in err:
            raise AssertionError("the server did not exit cleanly (status %s%s): %s" %
                                 (self.proc.returncode, ", killed after 15 s" if killed else "", err[-1500:]))


def parse_export(data):
    """(header, users) of an export, its format checked."""
    text = data.decode("utf-8")
    assert "\r" not in text
    lines = text.split("\n")
    assert lines[-1] == "", "the export ends with a line end"
    rows = [json.loads(l) for l in lines[:-1]]
    header, users = rows[0], rows[1:]
    assert header["userapi_export"] == 1 and header["users"] == len(users), header
    ids = [u["id"] for u in users]
    assert ids == sorted(set(ids)), "ids strictly increasing"
    assert not ids or header["next_id"] > ids[-1]
    return header, users


def export(data):
    rc, out, err = cli(["export", "--data", data])
    assert rc == 0, err
    return out


def user_lines(data):
    return export(data).split(b"\n", 1)[1]


def ndjson(users, next_id=None, count=None):
    nid = next_id if next_id is not None else (users[-1]["id"] + 1 if users else 1)
    head = {"userapi_export": 1, "next_id": nid, "users": len(users) if count is None else count}
    return ("\n".join([json.dumps(head)] + [json.dumps(u, ensure_ascii=False) for u in users]) + "\n").encode()


def gen_users(n):
    return [{"id": i, "name": "%s %d" % (NAMES[i % len(NAMES)], i), "email": "gen-%d@example.org" % i,
             "version": 1 + i % 4} for i in range(1, n + 1)]


def fnv1a64(users):
    """The migrate check's checksum, computed here from the export's fields."""
    h = 0xcbf29ce484222325
    for u in users:
        name, email = u["name"].encode(), u["email"].encode()
        for chunk in (u["id"].to_bytes(8, "little"), u["version"].to_bytes(8, "little"),
                      len(name).to_bytes(8, "little"), name, len(email).to_bytes(8, "little"), email):
            for b in chunk:
                h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


class Case(unittest.TestCase):
    def ok(self, args, stdin=None):
        rc, out, err = cli(args, stdin)
        self.assertEqual(rc, 0, "%s: exit %s: %s" % (" ".join(map(str, args)), rc, err[-1500:]))
        return out, err

    def refused(self, args, stdin=None):
        """Exit 2 with one line saying why, the last on stderr (progress may come before it)."""
        rc, out, err = cli(args, stdin)
        self.assertEqual(rc, 2, "%s: expected 2, got %s: %s" % (" ".join(map(str, args)), rc, err[-1500:]))
        reasons = [l for l in err.splitlines() if l.startswith("userapi ")]
        self.assertEqual(len(reasons), 1, "one line saying why: %r" % err[-1500:])
        self.assertEqual(err.strip().splitlines()[-1], reasons[0])
        return reasons[0]

    def assertEmptyStore(self, data):
        """No user and no id assigned; or not even created (refused before the store was opened)."""
        rc, out, err = cli(["export", "--data", data])
        if rc == 2 and ("no such file" in err or "not a userapi store" in err):
            return
        self.assertEqual(rc, 0, err)
        header, users = parse_export(out)
        self.assertEqual((header["users"], header["next_id"]), (0, 1), "the refused import left something")


# -- the cases ---------------------------------------------------------------------------------

class RoundTrips(Case):
    def make_source(self):
        """A SQLite store shaped by a server: names of every script, PATCHes, the second user and
        the last one deleted. ({id: (body, ETag)}, next id)."""
        src = sqlite_store()
        s = Server(src, seed=2)
        try:
            made = []
            for i, name in enumerate(NAMES):
                st, _, body = s.call("POST", "/users", {"name": name, "email": "moves-%d@Example.org" % i})
                self.assertEqual(st, 201)
                made.append(body["id"])
            for uid, patch in ((1, {"name": "Renamed ✓"}), (made[0], {"email": "zoe@example.org"}),
                               (made[0], {"name": "Zoë twice"})):
                self.assertEqual(s.call("PATCH", "/users/%d" % uid, json.dumps(patch), MERGE)[0], 200)
            for uid in (2, made[-1]):
                self.assertEqual(s.call("DELETE", "/users/%d" % uid)[0], 204)
            kept = {}
            for uid in [1] + made[:-1]:
                st, h, body = s.call("GET", "/users/%d" % uid)
                kept[uid] = (body, h["etag"])
            return src, kept, made[-1] + 1
        finally:
            s.stop()

    def check_served(self, data, kept, next_id, deleted):
        s = Server(data)
        try:
            for uid, (body, etag) in kept.items():
                st, h, got = s.call("GET", "/users/%d" % uid)
                self.assertEqual((st, got, h.get("etag")), (200, body, etag), "user %d on %s" % (uid, data))
            for uid in deleted:
                self.assertEqual(s.call("GET", "/users/%d" % uid)[0], 404)
            st, _, made = s.call("POST", "/users", {"name": "After", "email": "after@example.org"})
            self.assertEqual((st, made["id"]), (201, next_id), "the next POST gets next_id on %s" % data)
        finally:
            s.stop()

    def test_every_direction_keeps_everything(self):
        if not stores(self)[1:]:
            self.skipTest("PostgreSQL is not available")
        src, kept, next_id = self.make_source()
        original = user_lines(src)
        header, users = parse_export(export(src))
        self.assertEqual(header["next_id"], next_id)
        self.assertIn({"id": 1, "name": "Renamed ✓", "email": "user1@example.com", "version": 2}, users)
        pg1, s2, s3, pg2 = pg_store(), sqlite_store(), sqlite_store(), pg_store()
        self.ok(["import", "--data", pg1], stdin=export(src))                     # SQLite -> PostgreSQL
        self.ok(["migrate", "--from", pg1, "--to", s2])                           # PostgreSQL -> SQLite
        self.ok(["migrate", "--from", s2, "--to", s3])                            # SQLite -> SQLite
        path = os.path.join(WORK, "s3.ndjson")
        self.ok(["export", "--data", s3, "--out", path])
        self.ok(["import", "--data", pg2, "--in", path])                          # SQLite -> PostgreSQL again
        for data in (pg1, s2, s3, pg2):
            self.assertEqual(user_lines(data), original, "%s differs from the source" % data)
            self.assertEqual(parse_export(export(data))[0]["next_id"], next_id)
        for data in (s2, pg2):
            self.check_served(data, kept, next_id, deleted=(2, next_id - 1))

    def test_postgres_next_id_on_every_instance_and_caches_forget_not_found(self):
        if not stores(self)[1:]:
            self.skipTest("PostgreSQL is not available")
        target = pg_store()
        users = gen_users(50)
        # Two instances already run on the empty target; one remembers that user 7 does not exist.
        a, b = Server(target), Server(target)
        try:
            self.assertEqual(a.call("GET", "/users/7")[0], 404)
            self.ok(["import", "--data", target], stdin=ndjson(users, next_id=90))
            deadline = time.monotonic() + 2
            while a.call("GET", "/users/7")[0] != 200 and time.monotonic() < deadline:
                time.sleep(0.01)
            st, _, body = a.call("GET", "/users/7")
            self.assertEqual((st, body["name"]), (200, users[6]["name"]), "a remembered 404 outlived the import")
            ids = sorted(s.call("POST", "/users", {"name": "N", "email": "n%d@example.org" % i})[2]["id"]
                         for i, s in enumerate((a, b)))
            self.assertEqual(ids, [90, 91], "every instance continues after next_id")
        finally:
            a.stop()
            b.stop()

    def test_an_older_sqlite_schema_exports_as_the_server_migrates_it(self):
        old = sqlite_store()
        shutil.copy(os.path.join(HERE, "..", "fixtures", "userapi-v1.db"), old)
        header, users = parse_export(export(old))
        self.assertEqual((header["users"], header["next_id"]), (4, 5))
        self.assertEqual([u["version"] for u in users], [1, 1, 1, 1])
        self.assertEqual(users[3]["email"], "ada@example.org")


class Refusals(Case):
    def test_a_store_with_users_or_assigned_ids_is_refused_untouched(self):
        for engine, new in stores(self):
            with self.subTest(engine):
                target = new()
                s = Server(target, seed=3)
                s.call("PATCH", "/users/1", json.dumps({"name": "Already Here"}), MERGE)
                s.stop()
                before = export(target)
                good = ndjson(gen_users(5))
                err = self.refused(["import", "--data", target], stdin=good)
                self.assertIn("empty", err)
                self.assertEqual(export(target), before)
                s = Server(target)
                self.assertEqual(s.call("POST", "/users", {"name": "X", "email": "x@example.org"})[2]["id"], 4,
                                 "the refused import moved the next id")
                for uid in (1, 2, 3, 4):
                    s.call("DELETE", "/users/%d" % uid)
                s.stop()
                err = self.refused(["import", "--data", target], stdin=good)
                self.assertIn("assigned", err, "an emptied store would reuse ids")

    def bad_files(self):
        """(what, file bytes, line named, word named)."""
        users = gen_users(8)

        def edit(i, **fields):
            u = [dict(x) for x in users]
            u[i].update(fields)
            return ndjson(u)

        lines = ndjson(users).split(b"\n")

        def replace_line(n, text):
            l = list(lines)
            l[n - 1] = text.encode() if isinstance(text, str) else text
            return b"\n".join(l)
        dup_id = [dict(x) for x in users]
        dup_id[3]["id"] = dup_id[2]["id"]
        order = [dict(x) for x in users]
        order[3]["id"], order[4]["id"] = order[4]["id"], order[3]["id"]
        big = gen_users(12005)
        big[12000]["email"] = big[3]["email"].upper()  # past the first batch of either engine
        return [
            ("not JSON", replace_line(3, '{"id": 2, "name": "Cut'), 3, None),
            ("name too long", edit(3, name="n" * 101), 5, "name"),
            ("name with a bidi control", edit(1, name="a\u202eb"), 3, "name"),
            ("email invalid", edit(2, email="not-an-email"), 4, "email"),
            ("unknown member", edit(4, admin=True), 6, "admin"),
            ("version missing", replace_line(2, '{"id":1,"name":"A","email":"a@example.org"}'), 2, "version"),
            ("version zero", edit(0, version=0), 2, "version"),
            ("duplicate id", ndjson(dup_id), 5, "id"),
            ("ids out of order", ndjson(order), 6, "id"),
            ("email repeated in another case", edit(5, email=users[1]["email"].upper()), 7, "email"),
            ("email repeated past the first batch", ndjson(big), 12002, "email"),
            ("more lines than the header counts", ndjson(users, count=7), 9, "users"),
            ("fewer lines than the header counts", ndjson(users, count=9), 1, "users"),
            ("next_id not above the largest id", ndjson(users, next_id=8), 9, "next_id"),
            ("format version 2", ndjson(users).replace(b'"userapi_export": 1', b'"userapi_export": 2', 1), 1,
             "format"),
            ("empty input", b"", 1, "empty"),
            ("a line too long", replace_line(3, '{"id":2,"name":"' + "x" * 70000 + '"}'), 3, "long"),
            ("an empty line", replace_line(4, ""), 4, "empty"),
            ("invalid UTF-8", replace_line(3, b'{"id":2,"name":"\xff","email":"a@b.cd","version":1}'), 3, "utf-8"),
        ]

    def test_each_bad_line_is_named_and_nothing_is_committed(self):
        good = ndjson(gen_users(8))
        for engine, new in stores(self):
            for what, text, line, word in self.bad_files():
                with self.subTest("%s: %s" % (engine, what)):
                    target = new()
                    err = self.refused(["import", "--data", target], stdin=text)
                    self.assertRegex(err, r"line %d\b" % line)
                    if word:
                        self.assertIn(word, err.lower())
                    self.assertEmptyStore(target)
                    self.ok(["import", "--data", target], stdin=good)
                    self.assertEqual(parse_export(export(target))[1], gen_users(8))

    def test_an_import_killed_midway_leaves_nothing(self):
        users = gen_users(300000)
        path = os.path.join(WORK, "big.ndjson")
        with open(path, "wb") as f:
            f.write(ndjson(users))
        for engine, new in stores(self):
            with self.subTest(engine):
                target = new()
                p = subprocess.Popen([BINARY, "import", "--data", target, "--in", path], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
                seen, deadline = "", time.monotonic() + 60
                while time.monotonic() < deadline:
                    line = p.stderr.readline()
                    seen += line
                    if not line or re.search(r": [3-9]0 %", line):
                        break
                p.kill()
                p.wait()
                self.assertRegex(seen, r": [3-9]0 %", "killed before it was midway: %r" % seen)
                self.assertNotRegex(seen, r"users in", "it finished before it was killed")
                self.assertEmptyStore(target)
                self.ok(["import", "--data", target], stdin=ndjson(users[:10]))
                self.assertEqual(parse_export(export(target))[0]["users"], 10)


class WhileAServerWrites(Case):
    SEED = 20000

    def write_until(self, s, done, log, alive, first):
        """One writer, one write at a time, each logged after its answer: its order is the
        store's commit order. Of every six writes three rename one of 40 users spread over the
        whole id range (so pages read at different times would disagree), two create a user and
        one deletes the oldest created one still there."""
        for i in range(first, first + 200000):
            if done.is_set() and i > first + 20:
                return
            kind = i % 6
            if kind in (0, 1, 3):
                uid = 1 + (i * 7919) % 40 * (self.SEED // 40)
                name = "W%d" % i
                st, h, body = s.call("PATCH", "/users/%d" % uid, json.dumps({"name": name}), MERGE)
                self.assertEqual(st, 200)
                log.append(("set", uid, (name, body["email"], int(h["etag"].strip('"').split("-")[1]))))
            elif kind in (2, 4):
                email = "w%d@example.org" % i
                st, h, body = s.call("POST", "/users", {"name": "New %d" % i, "email": email})
                self.assertEqual(st, 201)
                log.append(("set", body["id"], ("New %d" % i, email, 1)))
                alive.append(body["id"])
            else:
                uid = alive.pop(0)
                self.assertEqual(s.call("DELETE", "/users/%d" % uid)[0], 204)
                log.append(("del", uid, None))

    def assertOneState(self, exported, log, exact_next_id):
        """The export equals the store after some prefix of `log`."""
        header, users = parse_export(exported)
        got = {u["id"]: (u["name"], u["email"], u["version"]) for u in users}
        touched = {e[1] for e in log}
        for uid in range(1, self.SEED + 1):
            if uid not in touched:
                self.assertEqual(got.get(uid), ("User %d" % uid, "user%d@example.com" % uid, 1))
        state = {uid: ("User %d" % uid, "user%d@example.com" % uid, 1) for uid in touched if uid <= self.SEED}
        extra = set(got) - set(range(1, self.SEED + 1)) - touched
        self.assertFalse(extra, "users nobody created: %s" % sorted(extra)[:5])

        def differs(uid):
            return state.get(uid) != got.get(uid)
        wrong = {uid for uid in touched if differs(uid)}
        largest, matches = self.SEED, []
        for k in range(len(log) + 1):
            if not wrong:
                matches.append((k, largest))
            if k == len(log):
                break
            op, uid, value = log[k]
            if op == "set":
                state[uid] = value
                largest = max(largest, uid)
            else:
                state.pop(uid, None)
            (wrong.add if differs(uid) else wrong.discard)(uid)
        self.assertTrue(matches, "the export is no state the store had (%d writes logged)" % len(log))
        if exact_next_id:
            self.assertIn(header["next_id"], [m[1] + 1 for m in matches])
        else:
            self.assertGreaterEqual(header["next_id"], min(m[1] for m in matches) + 1)
        return header, matches

    def run_with_writer(self, data, action):
        """Runs `action` while a server on `data` (SEED users, imported) writes; the writer's log.
        Up to three tries, until the work overlapped at least one acknowledged write."""
        seeded = [{"id": i, "name": "User %d" % i, "email": "user%d@example.com" % i, "version": 1}
                  for i in range(1, self.SEED + 1)]
        self.ok(["import", "--data", data], stdin=ndjson(seeded))
        s = Server(data)
        log, alive = [], []  # one log across the tries: it starts from the imported state
        try:
            for attempt in range(3):
                if self.writing(s, action, log, alive, first=attempt * 1000000):
                    return log
        finally:
            s.stop()
        self.fail("no write happened during the work, three times")

    def writing(self, s, action, log, alive, first):
        """True when a write was acknowledged while `action` ran."""
        done, errors = threading.Event(), []

        def writer():
            try:
                self.write_until(s, done, log, alive, first)
            except Exception as e:  # noqa: BLE001  (reported below)
                errors.append(e)
        t = threading.Thread(target=writer)
        t.start()
        try:
            before = len(log)
            while len(log) < before + 40 and t.is_alive():
                time.sleep(0.005)
            at_start = len(log)
            action()
            at_end = len(log)
        finally:
            done.set()
            t.join(60)
        self.assertFalse(errors, errors)
        return at_end > at_start

    def test_export_is_one_state(self):
        for engine, new in stores(self):
            with self.subTest(engine):
                data = new()
                out = os.path.join(WORK, "live-%s.ndjson" % engine)
                log = self.run_with_writer(data, lambda: self.ok(["export", "--data", data, "--out", out]))
                with open(out, "rb") as f:
                    self.assertOneState(f.read(), log, exact_next_id=engine == "sqlite")

    def test_backup_is_one_state_and_a_working_store(self):
        data, copies = sqlite_store(), []

        def backup():  # a few pages a step: the copy takes many steps while the server commits
            copies.append(sqlite_store())
            self.ok(["backup", "--data", data, "--to", copies[-1], "--pages-per-step", "5"])
        log = self.run_with_writer(data, backup)
        copy = copies[-1]
        con = sqlite3.connect(copy)
        self.assertEqual(con.execute("PRAGMA integrity_check").fetchone()[0], "ok")
        con.close()
        header, _ = self.assertOneState(export(copy), log, exact_next_id=True)
        s = Server(copy)
        try:
            self.assertEqual(s.call("POST", "/users", {"name": "B", "email": "b@example.org"})[2]["id"],
                             header["next_id"])
        finally:
            s.stop()


class CommandLine(Case):
    def test_migrate_prints_a_checksum_anyone_can_recompute(self):
        for engine, new in stores(self):
            with self.subTest(engine):
                src, dst = sqlite_store(), new()
                users = gen_users(3000)
                self.ok(["import", "--data", src], stdin=ndjson(users, next_id=4000))
                out, err = self.ok(["migrate", "--from", src, "--to", dst])
                m = re.search(r"checked: (\d+) users in both stores, checksum fnv1a-64 ([0-9a-f]{16}), next id (\d+)",
                              out.decode())
                self.assertTrue(m, out)
                self.assertEqual((int(m.group(1)), m.group(2), int(m.group(3))), (3000, fnv1a64(users), 4000))
                self.assertRegex(err.strip().splitlines()[-1], r"^migrate: 3000 users in [0-9.]+ s \(\d+ users/s\)$")
                self.refused(["migrate", "--from", src, "--to", dst])

    def test_progress_is_a_bar_on_a_terminal_and_lines_otherwise(self):
        text = ndjson(gen_users(20000))
        rc, _, err = cli(["import", "--data", sqlite_store()], stdin=text)
        self.assertEqual(rc, 0)
        lines = err.strip().split("\n")
        self.assertLessEqual(len(lines), 11)
        self.assertNotRegex(err, "[\r\x1b]")
        self.assertRegex(lines[-1], r"^import: 20000 users in [0-9.]+ s \(\d+ users/s\)$")
        path = os.path.join(WORK, "tty.ndjson")
        with open(path, "wb") as f:
            f.write(text)
        master, slave = pty.openpty()
        p = subprocess.Popen([BINARY, "import", "--data", sqlite_store(), "--in", path], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=slave)
        os.close(slave)
        seen = b""
        while True:
            r, _, _ = select.select([master], [], [], 30)
            try:
                chunk = os.read(master, 65536) if r else b""
            except OSError:
                chunk = b""
            if not chunk:
                break
            seen += chunk
        p.wait(30)
        os.close(master)
        self.assertEqual(p.returncode, 0)
        self.assertIn(b"\r", seen)
        self.assertRegex(seen.decode(), r"import \[#+\] 100 % 20000/20000 users")
        self.assertRegex(seen.decode(), r"import: 20000 users in [0-9.]+ s")

    def test_help_options_and_exit_statuses(self):
        rc, out, _ = cli(["--help"])
        self.assertEqual(rc, 0)
        self.assertIn(b"export|import|migrate|backup", out)
        for cmd, opts in (("export", ["--data", "--out"]), ("import", ["--data", "--in"]),
                          ("migrate", ["--from", "--to"]), ("backup", ["--data", "--to", "pg_dump"])):
            rc, out, _ = cli([cmd, "--help"])
            self.assertEqual(rc, 0)
            for o in opts:
                self.assertIn(o.encode(), out, cmd)
        src = sqlite_store()
        self.ok(["import", "--data", src], stdin=ndjson(gen_users(3)))
        self.assertIn("--bogus", self.refused(["export", "--data", src, "--bogus"]))
        self.assertIn("--to", self.refused(["migrate", "--from", src]))
        self.assertIn("--data", self.refused(["export", "--data", os.path.join(WORK, "none.db")]))
        self.assertIn("--in", self.refused(["import", "--data", sqlite_store(), "--in", os.path.join(WORK, "none")]))
        self.assertIn("pg_dump", self.refused(["backup", "--data", "postgresql://u@127.0.0.1:1/db", "--to", "x"]))
        self.assertRegex(self.refused(["backup", "--data", src, "--to", src]), r"--to \S+ already exists")
        self.assertIn("--data", self.refused(["backup", "--data", os.path.join(WORK, "none.db"), "--to",
                                              os.path.join(WORK, "none-copy.db")]))
        self.assertIn("the store itself", self.refused(["export", "--data", src, "--out", src]))
        self.assertEqual(parse_export(export(src))[0]["users"], 3, "the store survived")
        self.assertIn("--db-connect-timeout-ms", self.refused(["export", "--data", src, "--db-connect-timeout-ms", "x"]))
        rc, _, err = cli(["export", "--data", src, "--out", "/dev/full"])
        self.assertEqual(rc, 1, "a failure at run time: %s" % err)
        unreachable = "postgresql://userapi:hunter2@127.0.0.1:1/userapi"
        err = self.refused(["export", "--data", unreachable, "--db-connect-timeout-ms", "300"])
        self.assertNotIn("hunter2", err)
        self.assertIn("--data", err)
        err = self.refused(["export", "--data", "postgresql://userapi:hunter2@[::1/userapi"])  # libpq quotes it
        self.assertNotIn("hunter2", err)
        self.assertIn("--data", err)


def main():
    global BINARY, PG, WORK
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", required=True)
    ap.add_argument("--engines", help="engines.env of the CTest fixture")
    ap.add_argument("-k", action="append", default=[], help="only tests matching")
    args = ap.parse_args()
    BINARY = os.path.abspath(args.binary)
    if args.engines and os.path.exists(args.engines):
        env = dict(l.strip().split("=", 1) for l in open(args.engines) if "=" in l)
        PG = Postgres(os.path.join(os.path.dirname(args.engines), "pg"), int(env["USERAPI_TEST_PG_PORT"]))
    WORK = tempfile.mkdtemp(prefix="userapi-moves-test-")
    try:
        argv = [sys.argv[0], "-v"] + sum([["-k", k] for k in args.k], [])
        result = unittest.main(argv=argv, exit=False).result
        return 0 if result.wasSuccessful() else 1
    finally:
        shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
