#!/usr/bin/env python3
"""The checker of the fault test catches what each rule forbids, and only that: small
hand-written histories, one violation (or one excuse) each."""
import io
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fault_check  # noqa: E402

A, B, C = 0, 1, 2


def req(op, inst, uid, t0, t1, status, version=None, cache=None, written="", opid="", nocache=False,
        replayed=False, name=None):
    if op == "PATCH" and status == 200 and name is None:
        name = opid
    return [op, inst, uid, t0, t1, status, version, cache, written, opid, nocache, replayed, name]


def patch(inst, t0, t1, status, version=None, opid="p", uid=1, **kw):
    return req("PATCH", inst, uid, t0, t1, status, version, opid=opid, **kw)


def get(inst, t0, status, version=None, cache="HIT", uid=1, name=None, t1=None):
    return req("GET", inst, uid, t0, t0 + 0.001 if t1 is None else t1, status, version, cache, name=name)


def history(requests, final, windows=(), converge=None, alive=(True, True, True), extras=(), exits=(0, 0, 0)):
    users = [1]
    if converge is None:  # every instance answers the stored version at the end
        converge = [(i, u, m, 200 if final.get(u) else 404, final.get(u)) for i in range(3)
                    for u in users + list(extras) for m in ("plain", "no-cache")]
    return {"instances": ["a", "b", "c"], "users": users, "extras": list(extras), "windows": list(windows),
            "requests": requests, "converge": converge, "alive": list(alive), "exit": list(exits),
            "final": {str(u): final.get(u) for u in users + list(extras)},
            "final_names": {}}


def verdict(h):
    """{rule: count} of the violations found."""
    v = fault_check.Verdicts()
    out = io.StringIO()
    fault_check.check(h, out=out, verdicts=v)
    return {rule: n for rule, n in v.count.items() if n}


class SameInstance(unittest.TestCase):
    # (a) an older version after an acknowledged write on the same instance
    def test_older_version_after_ack_is_a_violation(self):
        h = history([patch(A, 0.9, 1.0, 200, 2, "p1"), get(A, 1.01, 200, 1)], {1: 2})
        self.assertEqual(verdict(h), {"a": 1})

    def test_stale_answer_is_excused(self):
        h = history([patch(A, 0.9, 1.0, 200, 2, "p1"), get(A, 1.01, 200, 1, cache="STALE")], {1: 2})
        self.assertEqual(verdict(h), {})

    def test_get_that_started_before_the_ack_may_be_old(self):
        h = history([patch(A, 0.9, 1.0, 200, 2, "p1"), get(A, 0.95, 200, 1, t1=1.02)], {1: 2})
        self.assertEqual(verdict(h), {})

    def test_404_for_a_user_never_deleted_is_a_violation(self):
        h = history([get(A, 1.0, 404, cache="MISS")], {1: 1})
        self.assertEqual(verdict(h), {"a": 1})


class OtherInstances(unittest.TestCase):
    # (b) 100 ms after an acknowledgement elsewhere, outside faults
    def test_old_version_within_100_ms_is_allowed(self):
        h = history([patch(A, 0.9, 1.0, 200, 2, "p1"), get(B, 1.05, 200, 1)], {1: 2})
        self.assertEqual(verdict(h), {})

    def test_old_version_after_100_ms_is_a_violation(self):
        h = history([patch(A, 0.9, 1.0, 200, 2, "p1"), get(B, 1.2, 200, 1)], {1: 2})
        self.assertEqual(verdict(h), {"b": 1})

    def test_a_history_may_allow_a_longer_lag(self):
        h = history([patch(A, 0.9, 1.0, 200, 2, "p1"), get(B, 1.2, 200, 1)], {1: 2})
        h["coherence"] = 0.5
        self.assertEqual(verdict(h), {})

    def test_old_version_inside_a_fault_and_its_margin_is_excused(self):
        h = history([patch(A, 0.9, 1.0, 200, 2, "p1"), get(B, 2.5, 200, 1)], {1: 2},
                    windows=[("restart", 0.5, 1.0)])
        self.assertEqual(verdict(h), {})
        h = history([patch(A, 0.9, 1.0, 200, 2, "p1"), get(B, 3.5, 200, 1)], {1: 2},
                    windows=[("restart", 0.5, 1.0)])
        self.assertEqual(verdict(h), {"b": 1})


class Deletes(unittest.TestCase):
    # (c) no 200 after an acknowledged DELETE
    def delete(self, inst=A, t1=1.0):
        return req("DELETE", inst, 9, t1 - 0.01, t1, 204, opid="d9")

    def test_same_instance_200_after_delete_is_a_violation_even_stale(self):
        h = history([self.delete(), get(A, 1.01, 200, 1, cache="STALE", uid=9)], {1: 1}, extras=[9])
        self.assertEqual(verdict(h), {"c": 1})

    def test_other_instance_within_100_ms_is_allowed_later_not(self):
        h = history([self.delete(), get(B, 1.05, 200, 1, uid=9)], {1: 1}, extras=[9])
        self.assertEqual(verdict(h), {})
        h = history([self.delete(), get(B, 1.2, 200, 1, uid=9)], {1: 1}, extras=[9])
        self.assertEqual(verdict(h), {"c": 1})

    def test_patch_200_after_delete_and_a_row_left_are_violations(self):
        h = history([self.delete(), patch(C, 1.1, 1.2, 200, 2, "late", uid=9)], {1: 1}, extras=[9])
        self.assertEqual(verdict(h), {"c": 1})
        h = history([self.delete()], {1: 1, 9: 1}, extras=[9])
        self.assertEqual(verdict(h), {"c": 1})


class Writes(unittest.TestCase):
    # (d) stored version = 1 + PATCHes answered 200
    def test_exact_count_passes(self):
        h = history([patch(A, 0, 1, 200, 2, "p1"), patch(B, 1, 2, 200, 3, "p2"), patch(C, 2, 3, 503, opid="p3")],
                    {1: 3})
        self.assertEqual(verdict(h), {})

    def test_a_504_that_committed_is_named(self):
        h = history([patch(A, 0, 1, 200, 2, "p1"), patch(B, 1, 3, 504, written="false", opid="p2"),
                     patch(C, 3, 4, 200, 4, "p3")], {1: 4})
        v = fault_check.Verdicts()
        fault_check.check(h, out=io.StringIO(), verdicts=v)
        self.assertEqual(v.count["d"], 1)
        _, text, involved = v.first["d"]
        self.assertIn("v3 was acknowledged to nobody", text)
        self.assertEqual([r.opid for r in involved], ["p2"])

    def test_a_refused_write_seen_by_a_read_is_a_violation(self):
        h = history([patch(A, 0, 1, 504, written="false", opid="p1"), get(B, 2, 200, 2, name="p1")], {1: 2})
        self.assertEqual(verdict(h), {"d": 2})  # its name seen, and the count

    def test_a_lost_write_is_a_violation(self):
        h = history([patch(A, 0, 1, 200, 2, "p1"), patch(B, 0, 1, 200, 2, "p2")], {1: 2})
        self.assertEqual(verdict(h), {"d": 3})  # v2 with two names, two acks of v2, and the count

    def test_unknown_outcomes_widen_the_range_by_their_number(self):
        reqs = [patch(A, 0, 1, 200, 2, "p1"), patch(B, 1, 2, 503, written="null", opid="p2")]
        self.assertEqual(verdict(history(reqs, {1: 2})), {})
        self.assertEqual(verdict(history(reqs, {1: 3})), {})
        self.assertEqual(verdict(history(reqs, {1: 4})), {"d": 1})

    def test_a_keyed_retry_that_replays_counts_once(self):
        reqs = [patch(A, 0, 1, 503, written="null", opid="k1"), patch(B, 1.1, 1.2, 200, 2, "k1", replayed=True)]
        self.assertEqual(verdict(history(reqs, {1: 2})), {})
        self.assertEqual(verdict(history(reqs, {1: 3})), {"d": 1})


class Ending(unittest.TestCase):
    def test_an_instance_left_behind_is_a_violation(self):
        converge = [(i, 1, m, 200, 2 if i else 1) for i in range(3) for m in ("plain", "no-cache")]
        h = history([patch(A, 0, 1, 200, 2, "p1")], {1: 2}, converge=converge)
        self.assertEqual(verdict(h), {"e": 2})

    def test_an_instance_that_exited_or_failed_its_exit_is_a_violation(self):
        self.assertEqual(verdict(history([], {1: 1}, alive=(True, False, True))), {"f": 1})
        self.assertEqual(verdict(history([], {1: 1}, exits=(0, 0, -6))), {"f": 1})


class StoreUp(unittest.TestCase):
    # (g) terminated backends cost no read a 503 or STALE; a stopped store may
    def test_503_around_a_termination_is_a_violation(self):
        h = history([get(A, 1.5, 503, cache=None)], {1: 1}, windows=[("terminate", 1.0, 1.05)])
        self.assertEqual(verdict(h), {"g": 1})

    def test_503_or_stale_while_the_store_is_stopped_is_allowed(self):
        h = history([get(A, 1.5, 503, cache=None), get(B, 1.6, 200, 1, cache="STALE")], {1: 1},
                    windows=[("pause", 1.0, 4.0)])
        self.assertEqual(verdict(h), {})


class ZonesTest(unittest.TestCase):
    def test_a_request_touching_a_window_or_its_margin_is_in_it(self):
        z = fault_check.Zones([("pause", 10, 12), ("redis", 20, 21)], margin=2)
        self.assertIsNone(z.kind(9, 9.9))
        self.assertEqual(z.kind(9, 10), "pause")
        self.assertEqual(z.kind(13.9, 15), "pause")
        self.assertIsNone(z.kind(14.1, 19.9))
        self.assertEqual(z.kind(13, 20.5), "pause")  # the first it touches
        self.assertEqual(z.kind(22.9, 23), "redis")
        self.assertIsNone(z.kind(23.1, 30))


if __name__ == "__main__":
    unittest.main(verbosity=2)
