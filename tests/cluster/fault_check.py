#!/usr/bin/env python3
"""The checker of fault_test.py: judges a recorded history of the cluster, and only that.

The model. Each user is a register. Its versions 1, 2, 3, ... are written by PATCHes, one
version per PATCH that commits (every PATCH of the test changes the name to a token of its own,
so the token names the write); a DELETE ends it for good. An answer is *acknowledged* when the
client got it: a 200 to a PATCH (a replay included), a 204 or 404 to a DELETE. Times are the
client's: `t0` before the request was sent, `t1` after its answer arrived, so "A finished before
B started" (A.t1 < B.t0) holds in real time too.

The rules (API.md sections 7.3 and 8), each reported with its first violation:
  (a) same instance: a GET started after a PATCH's acknowledgement on that instance never gets
      an older version, unless its X-Cache is STALE;
  (b) other instances: no older version once 100 ms have passed since the acknowledgement,
      outside the fault windows (each window plus MARGIN after it);
  (c) no 200 for a user after an acknowledged DELETE of it (on the deleting instance at once,
      STALE or not; on the others after 100 ms outside the windows; no PATCH 200 anywhere), and
      its row is gone;
  (d) the stored version is 1 + the PATCHes answered 200 (an Idempotency-Key's attempts count
      once), exactly when no outcome is unknown; unknown outcomes (no answer, or 503
      "written": null not resolved by a retry with the same key) widen it by their number only.
      A write answered 5xx as not written ("written": false, or no member) whose token is seen
      later committed; two tokens for one version, or two PATCHes acknowledged with one
      version, is a lost write;
  (e) after the faults and a settle time every instance answers the stored version (a plain GET
      and one with Cache-Control: no-cache), or 404 for a deleted user;
  (f) no instance exited during the run, and each exits 0 on SIGTERM at the end;
  (g) a store that stayed up costs a read nothing: around a termination of every backend
      (window + MARGIN) no GET is answered 503, 504 or STALE (8.4: a read that lost its
      connection is retried once on a fresh one).

usage: fault_check.py HISTORY.json    (fault_test.py --history FILE writes one)
"""
import bisect
import collections
import json
import sys

# 7.3: another instance reflects a committed write within 100 ms. A history may name a longer
# lag ("coherence"): the sanitizer builds run the instances several times slower.
COHERENCE = 0.1

# A fault window is the time from the first action of a fault to the moment it was undone
# (SIGCONT sent, PostgreSQL or Redis started again and listening). After it, an instance may
# still be in the state the fault left it in for a while without breaking the contract: 8.4
# lets a heartbeat take up to 2 s to find that a silent store answers again, and 7.1's
# reconnect backoff (100 ms, doubling) tries again within 1.6 s of the end of the ~1 s that a
# restart here keeps PostgreSQL down. So rules (b) and (c) look at what happens outside
# [start, end + 2 s]; rule (a) and the same-instance part of (c) hold during faults too.
MARGIN = 2.0

FIELDS = ("op", "inst", "uid", "t0", "t1", "status", "version", "cache", "written", "opid", "nocache",
          "replayed", "name")
Req = collections.namedtuple("Req", FIELDS)


class Zones:
    """The fault windows, each extended by MARGIN, merged, for 'does [t0, t1] touch a fault?'."""

    def __init__(self, windows, margin=MARGIN):
        spans = sorted((s, e + margin, kind) for kind, s, e in windows)
        self.starts, self.ends, self.kinds = [], [], []
        for s, e, kind in spans:
            if self.ends and s <= self.ends[-1]:
                self.ends[-1] = max(self.ends[-1], e)
                continue
            self.starts.append(s)
            self.ends.append(e)
            self.kinds.append(kind)

    def kind(self, t0, t1):
        """The fault whose zone [t0, t1] overlaps (the first such), or None."""
        i = bisect.bisect_right(self.starts, t1) - 1
        if i < 0 or self.ends[i] < t0:
            return None
        while i > 0 and self.ends[i - 1] >= t0:
            i -= 1
        return self.kinds[i]


def show(r, names):
    """One request, as the report prints it."""
    at = f"[{r.t0:.3f}-{r.t1:.3f}]"
    status = "no answer" if r.status is None else str(r.status)
    parts = [r.op, names[r.inst], f"user {r.uid}", at, status]
    if r.version is not None:
        parts.append(f"v{r.version}")
    if r.cache:
        parts.append(r.cache)
    if r.nocache:
        parts.append("(no-cache)")
    if r.written:
        parts.append(f"written:{r.written}")
    if r.replayed:
        parts.append("replayed")
    if r.opid:
        parts.append(f"op {r.opid}")
    return " ".join(parts)


class Verdicts:
    """The violations of each rule: their count and the first one (earliest) with its requests."""

    RULES = {
        "a": "same instance: no version older than one acknowledged there (unless STALE)",
        "b": "other instances: no older version {lag} ms after the acknowledgement, outside faults (+{margin} s)",
        "c": "no 200 for a user after an acknowledged DELETE; its row gone",
        "d": "stored version = 1 + PATCHes answered 200 (no lost write, no 5xx that committed)",
        "e": "every instance converges on the stored version (plain and no-cache GET)",
        "f": "no instance exited, each exits 0 on SIGTERM at the end",
        "g": "backends terminated, store up: no GET answered 503, 504 or STALE",
    }

    def __init__(self):
        self.count = collections.Counter()
        self.first = {}
        self.lag, self.margin = COHERENCE, MARGIN

    def add(self, rule, when, text, reqs=()):
        self.count[rule] += 1
        if rule not in self.first or when < self.first[rule][0]:
            self.first[rule] = (when, text, list(reqs))

    def report(self, names, out):
        for rule, what in self.RULES.items():
            what = what.format(lag=f"{self.lag * 1000:.0f}", margin=f"{self.margin:g}")
            if not self.count[rule]:
                print(f"ok   ({rule}) {what}", file=out)
                continue
            _, text, reqs = self.first[rule]
            print(f"FAIL ({rule}) {what}: {self.count[rule]} violation(s); first: {text}", file=out)
            for r in reqs:
                print(f"       {show(r, names)}", file=out)
        broken = [rule for rule in self.RULES if self.count[rule]]
        print(f"violated: rule(s) {', '.join(broken)}" if broken else "every rule holds", file=out)


def acked_version(r):
    return r.op == "PATCH" and r.status == 200 and r.version is not None


def check_reads(h, reqs, zones, v, lag):
    """Rules (a) and (b), one sweep per user and reading instance over the acknowledgements
    sorted by end time."""
    users = set(h["users"])
    by_uid = collections.defaultdict(list)
    for r in reqs:
        by_uid[r.uid].append(r)
    for uid, rs in by_uid.items():
        acks = sorted((r for r in rs if acked_version(r)), key=lambda r: r.t1)
        for inst in range(len(h["instances"])):
            gets = sorted((r for r in rs if r.op == "GET" and r.inst == inst and
                           (r.status == 200 and r.version is not None or r.status == 404 and uid in users)),
                          key=lambda r: r.t0)
            same = [a for a in acks if a.inst == inst]
            other = [a for a in acks if a.inst != inst]
            i = j = 0
            best_same = best_other = None
            for g in gets:
                while i < len(same) and same[i].t1 < g.t0:
                    if best_same is None or same[i].version > best_same.version:
                        best_same = same[i]
                    i += 1
                while j < len(other) and other[j].t1 + lag < g.t0:
                    if best_other is None or other[j].version > best_other.version:
                        best_other = other[j]
                    j += 1
                if g.status == 404:  # users[] exist from the start and are never deleted
                    v.add("a", g.t0, f"{h['instances'][inst]} answered 404 for user {uid}, never deleted", [g])
                    continue
                got, what = g.version, f"v{g.version}"
                if best_same and got < best_same.version and g.cache != "STALE":
                    v.add("a", g.t0, f"{h['instances'][inst]} answered {what} for user {uid} "
                                     f"after it acknowledged v{best_same.version}", [best_same, g])
                if best_other and got < best_other.version and zones.kind(g.t0, g.t1) is None:
                    v.add("b", g.t0, f"{h['instances'][inst]} answered {what} for user {uid} "
                                     f"{(g.t0 - best_other.t1) * 1000:.0f} ms after "
                                     f"{h['instances'][best_other.inst]} acknowledged v{best_other.version}",
                          [best_other, g])


def check_deletes(h, reqs, zones, v, lag):
    """Rule (c)."""
    gone_at = {}  # uid -> {inst: the first DELETE acknowledged there}
    for r in reqs:
        if r.op == "DELETE" and r.status in (204, 404):
            first = gone_at.setdefault(r.uid, {})
            if r.inst not in first or r.t1 < first[r.inst].t1:
                first[r.inst] = r
    for uid, per_inst in gone_at.items():
        earliest = min(per_inst.values(), key=lambda r: r.t1)
        for r in reqs:
            if r.uid != uid or r.status != 200:
                continue
            if r.op == "PATCH" and r.t0 > earliest.t1:
                v.add("c", r.t0, f"a PATCH of user {uid} answered 200 after its DELETE was acknowledged",
                      [earliest, r])
            elif r.op == "GET":
                mine = per_inst.get(r.inst)
                if mine and r.t0 > mine.t1:
                    v.add("c", r.t0, f"{h['instances'][r.inst]} answered 200 for user {uid} after it acknowledged "
                                     f"its DELETE", [mine, r])
                elif r.t0 > earliest.t1 + lag and zones.kind(r.t0, r.t1) is None:
                    v.add("c", r.t0, f"{h['instances'][r.inst]} answered 200 for user {uid} "
                                     f"{(r.t0 - earliest.t1) * 1000:.0f} ms after "
                                     f"{h['instances'][earliest.inst]} acknowledged its DELETE", [earliest, r])
        if h["final"].get(str(uid)) is not None:
            v.add("c", float("inf"), f"user {uid} is still stored (v{h['final'][str(uid)]}) after an acknowledged "
                                     f"DELETE", [earliest])


def outcome(attempts):
    """acked (some attempt answered 200), refused (every attempt says it was not performed:
    a 4xx, or a 5xx with "written": false or without the member) or unknown."""
    if any(a.status == 200 for a in attempts):
        return "acked"
    if all(a.status is not None and (a.status < 500 and a.status != 409 or
                                     a.status >= 500 and a.written in ("false", "")) for a in attempts):
        return "refused"
    return "unknown"


def check_writes(h, reqs, v, figures):
    """Rule (d), for the users never deleted."""
    seen = collections.defaultdict(dict)  # uid -> version -> (name, the request that showed it)
    for r in reqs:
        if r.status == 200 and r.version is not None and r.name is not None and r.op in ("GET", "PATCH"):
            known = seen[r.uid].get(r.version)
            if known is None:
                seen[r.uid][r.version] = (r.name, r)
            elif known[0] != r.name:
                v.add("d", r.t0, f"user {r.uid} v{r.version} answered with two contents "
                                 f"({known[0]!r} and {r.name!r}): one write lost", [known[1], r])
    for uid_s, name in h.get("final_names", {}).items():
        ver = h["final"].get(uid_s)
        if name is not None and ver is not None:
            seen[int(uid_s)].setdefault(ver, (name, None))
    ops = collections.defaultdict(list)
    for r in reqs:
        if r.op == "PATCH":
            ops[(r.uid, r.opid)].append(r)
    for uid in h["users"]:
        mine = {opid: sorted(a, key=lambda r: r.t0) for (u, opid), a in ops.items() if u == uid}
        kinds = {opid: outcome(a) for opid, a in mine.items()}
        n = collections.Counter(kinds.values())
        figures["ops"] += n
        lo, hi = 1 + n["acked"], 1 + n["acked"] + n["unknown"]
        final = h["final"].get(str(uid))
        by_version = {}
        for opid, attempts in mine.items():
            for a in attempts:
                if a.status == 200 and a.name is not None and a.name != opid:
                    v.add("d", a.t0, f"a PATCH of user {uid} was answered with another write's body "
                                     f"({a.name!r})", [a])
                if a.status == 200 and a.version is not None:
                    other = by_version.setdefault(a.version, a)
                    if other.opid != opid:
                        v.add("d", a.t1, f"two PATCHes of user {uid} acknowledged with the same version "
                                         f"v{a.version}: one write lost", [other, a])
        for ver, (name, shown) in sorted(seen[uid].items()):
            if name in kinds and kinds[name] == "refused":
                last = mine[name][-1]
                where = f"by {shown.op} {h['instances'][shown.inst]}" if shown else "in the table"
                v.add("d", last.t1, f"a PATCH of user {uid} answered {last.status} as not written committed: "
                                    f"its name is v{ver}, seen {where}", mine[name] + ([shown] if shown else []))
        expected = f"exactly {lo}" if lo == hi else f"{lo} to {hi} ({n['unknown']} outcomes unknown)"
        if final is None or not lo <= final <= hi:
            text = (f"user {uid}: stored version {final}, expected {expected}: 1 + {n['acked']} PATCHes "
                    f"answered 200 ({n['refused']} refused)")
            involved = []
            if final is not None and final > hi:
                text, involved = unacknowledged(text, uid, final, by_version, mine, kinds)
            v.add("d", float("inf"), text, involved)
        ok = final is not None and lo <= final <= hi
        figures["final"].append(f"user {uid} v{final}" + (" ok" if ok else f" (expected {expected})"))


def unacknowledged(text, uid, final, by_version, ops, kinds):
    """More versions stored than acknowledged: name the first version nobody was told of, and
    the PATCHes not answered 200 that may have written it. Its commit came after the commit of
    the acknowledged version below it (so after that request started) and before the one above
    it (so before that answer arrived)."""
    for ver in range(2, final + 1):
        if ver in by_version:
            continue
        below = max((w for w in by_version if w < ver), default=None)
        above = min((w for w in by_version if w > ver), default=None)
        lo = by_version[below].t0 if below else float("-inf")
        hi = by_version[above].t1 if above else float("inf")
        suspects = [a for opid, attempts in ops.items() if kinds[opid] != "acked" for a in attempts
                    if a.t1 >= lo and a.t0 <= hi and a.status != 200]
        return (f"{text}; v{ver} was acknowledged to nobody: committed between {lo:.3f} and {hi:.3f} s "
                f"by one of these {len(suspects)} PATCH(es) answered otherwise", suspects[:4])
    return text, []


def check_store_up(h, reqs, zones, v):
    """Rule (g)."""
    for r in reqs:
        if r.op == "GET" and (r.status in (503, 504) or r.cache == "STALE") and zones.kind(r.t0, r.t1) == "terminate":
            answer = " ".join(str(x) for x in (r.status, r.cache) if x)
            v.add("g", r.t0, f"{h['instances'][r.inst]} answered a GET {answer} while only its connections "
                             f"had been cut", [r])


def check_converged(h, v):
    """Rules (e) and (f)."""
    for inst, uid, mode, status, version in h["converge"]:
        want = h["final"].get(str(uid))
        ok = status == 404 if want is None else (status == 200 and version == want)
        if not ok:
            got = "no answer" if status is None else f"{status} v{version}" if version is not None else str(status)
            v.add("e", float("inf"), f"after the settle time {h['instances'][inst]} answers {got} for user {uid} "
                                     f"({mode}); stored: {'none' if want is None else f'v{want}'}")
    for inst, alive in enumerate(h["alive"]):
        if not alive:
            v.add("f", float("inf"), f"{h['instances'][inst]} exited during the run")
    for inst, code in enumerate(h.get("exit", [])):
        if h["alive"][inst] and code != 0:
            v.add("f", float("inf"), f"{h['instances'][inst]} exited {code} on SIGTERM at the end "
                                     f"(a sanitizer's report, a crash in the drain?)")


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(round(p / 100 * (len(sorted_values) - 1))))]


def print_figures(h, reqs, zones, figures, out):
    reads = [r for r in reqs if r.op == "GET"]
    writes = [r for r in reqs if r.op in ("PATCH", "DELETE", "POST")]
    print(f"run: {max((r.t1 for r in reqs), default=0):.1f} s; {len(h['instances'])} instances; "
          f"users {h['users']} patched, {h['extras']} deleted during the run", file=out)
    caches = collections.Counter(r.cache or str(r.status) for r in reads)
    print(f"reads: {len(reads)} ({len(reads) / max(1e-9, max((r.t1 for r in reqs), default=1)):.0f}/s; "
          f"{sum(r.nocache for r in reads)} with no-cache): "
          + ", ".join(f"{k} {n}" for k, n in caches.most_common()), file=out)
    statuses = collections.Counter((r.op, r.status) for r in writes)
    print(f"writes: {len(writes)} requests: "
          + ", ".join(f"{op} {s if s is not None else 'no answer'} {n}" for (op, s), n in sorted(
              statuses.items(), key=lambda x: (x[0][0], x[0][1] or 0))), file=out)
    ops = figures["ops"]
    print(f"PATCH operations: {sum(ops.values())} ({ops['acked']} acknowledged, {ops['refused']} refused, "
          f"{ops['unknown']} unknown outcome); {sum(r.replayed for r in writes)} replays; "
          f"{sum(1 for r in writes if r.written == 'null')} answers written:null", file=out)
    kinds = collections.defaultdict(list)
    for kind, s, e in h["windows"]:
        kinds[kind].append(e - s)
    print("faults: " + ", ".join(f"{k} x{len(d)} ({sum(d):.1f} s)" for k, d in kinds.items()), file=out)
    errors = collections.defaultdict(collections.Counter)
    for r in reqs:
        if r.status is None or r.status >= 500:
            errors[zones.kind(r.t0, r.t1) or "outside faults"][
                f"{'GET' if r.op == 'GET' else 'write'} {r.status or 'no answer'}"] += 1
    print("5xx and no answers, by fault (window + margin): " + ("; ".join(
        f"{k}: " + ", ".join(f"{w} {n}" for w, n in sorted(c.items())) for k, c in errors.items()) or "none"),
        file=out)
    during = collections.defaultdict(list)
    for r in reads:
        if r.status is not None:
            during[zones.kind(r.t0, r.t1) or "outside faults"].append((r.t1 - r.t0) * 1000)
    print("GET latency by fault (window + margin): " + "; ".join(
        f"{k}: p99 {percentile(sorted(d), 99):.0f} ms, max {max(d):.0f} ms" for k, d in during.items()), file=out)
    stale = [r for r in reads if r.cache == "STALE"]
    print(f"STALE answers: {len(stale)} ({sum(1 for r in stale if zones.kind(r.t0, r.t1) is None)} "
          f"outside faults)", file=out)
    hits = sorted((r.t1 - r.t0) * 1000 for r in reads
                  if r.cache == "HIT" and r.status == 200 and zones.kind(r.t0, r.t1) is None)
    print(f"cached GETs (HIT) outside faults: {len(hits)}, p50 {percentile(hits, 50):.2f} ms, "
          f"p99 {percentile(hits, 99):.2f} ms, max {max(hits, default=float('nan')):.1f} ms "
          f"(client side, Python)", file=out)
    print("final: " + "; ".join(figures["final"]), file=out)


def check(h, out=sys.stdout, verdicts=None):
    """Prints the figures and the verdict of each rule; returns the Verdicts."""
    reqs = [Req(*r) for r in h["requests"]]
    v = verdicts if verdicts is not None else Verdicts()
    v.lag, v.margin = h.get("coherence", COHERENCE), h.get("margin", MARGIN)
    zones = Zones(h["windows"], v.margin)
    figures = {"ops": collections.Counter(), "final": []}
    check_reads(h, reqs, zones, v, v.lag)
    check_deletes(h, reqs, zones, v, v.lag)
    check_writes(h, reqs, v, figures)
    check_converged(h, v)
    check_store_up(h, reqs, zones, v)
    print_figures(h, reqs, zones, figures, out)
    v.report(h["instances"], out)
    return v


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        h = json.load(f)
    sys.exit(1 if sum(check(h).count.values()) else 0)


if __name__ == "__main__":
    main()
