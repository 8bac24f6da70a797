#!/usr/bin/python3
"""Tests of the invariant checker (check.py) on small hand-made runs.

Each test writes a run directory as the driver would (world.json,
exec.log, submits.jsonl, faults.jsonl, final/) and asserts which
invariants the checker reports as violated. Run by e2e/test_chaos_check.sh
in `make test`.
"""

import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check  # noqa: E402
import schedule  # noqa: E402

T0 = 1_800_000_000_000
MEMBERS = ["east", "west"]


def ms(s):
    return T0 + int(s * 1000)


class World:
    """A run directory under construction."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="chaos-check-")
        self.exec, self.submits, self.faults = [], [], []
        self.jobs = {m: [] for m in MEMBERS}
        self.wls = {m: [] for m in MEMBERS}
        self.leases = []
        self.metrics = ""
        self.cq_used = {"east": 0, "west": 0}
        self.extra_cq = {}
        self.converged_ms = 120
        self.capacity = 8
        self.s2 = []
        self.agents = False
        self.timing = {}

    def submit(self, jid, member="east", gpus=4, at=0.0):
        uid = "uid-" + jid
        self.submits.append({"id": jid, "member": member, "namespace": "ml",
                             "name": jid, "uid": uid, "gpus": gpus,
                             "ts_ms": ms(at)})
        self.jobs[member].append({
            "metadata": {"name": jid, "namespace": "ml", "uid": uid,
                         "annotations": {}},
            "status": {"conditions": []}})
        return uid

    def complete(self, member, jid, outcome=True):
        for j in self.jobs[member]:
            if j["metadata"]["name"] == jid:
                if outcome:
                    j["metadata"]["annotations"]["gpufed.io/outcome"] = \
                        "Succeeded"
                else:
                    j["status"]["conditions"].append(
                        {"type": "Complete", "status": "True"})

    def copy(self, lender, jid, lease, epoch=1):
        uid = "copy-%s-%d" % (jid, epoch)
        self.jobs[lender].append({
            "metadata": {"name": "%s-c-%d" % (jid, epoch), "namespace": "ml",
                         "uid": uid,
                         "labels": {"gpufed.io/lease": lease,
                                    "gpufed.io/origin-uid": "uid-" + jid,
                                    "gpufed.io/epoch": str(epoch)}},
            "status": {"conditions": [{"type": "Complete",
                                       "status": "True"}]}})
        return uid

    def lease(self, name, jid, origin, lender, phase="Released",
              transitions=()):
        self.leases.append({
            "metadata": {"name": name,
                         "creationTimestamp": "2027-01-15T08:00:00Z"},
            "spec": {"gpus": 4, "origin": {"member": origin,
                                           "namespace": "ml",
                                           "name": "job-" + jid,
                                           "jobName": jid},
                     "lender": {"member": lender}},
            "status": {"phase": phase, "transitions": list(transitions)}})

    def loan(self, name, jid, origin, lender, gpus, start, end):
        """A loan's QuotaLease: recorded at start, Released at end (times
        written to the second, as the hub writes them)."""
        def iso(s):
            import datetime
            t = datetime.datetime.fromtimestamp(ms(s) // 1000,
                                                datetime.timezone.utc)
            return t.strftime("%Y-%m-%dT%H:%M:%SZ")
        self.leases.append({
            "metadata": {"name": name, "creationTimestamp": iso(start)},
            "spec": {"gpus": gpus, "mode": "Loan",
                     "origin": {"member": origin, "namespace": "ml",
                                "name": "job-" + jid, "jobName": jid},
                     "lender": {"member": lender}},
            "status": {"phase": "Released", "reason": "Completed",
                       "transitions": [
                           {"phase": "Active", "time": iso(start)},
                           {"phase": "Released", "reason": "Completed",
                            "time": iso(end)}]}})

    def run(self, cluster, jid, job_uid, start, stop, gpus=4,
            reason="Succeeded", pod=None, label=None):
        # A copy's Pods carry its origin's template label.
        base = {"cluster": cluster, "namespace": "ml", "job": jid,
                "job_uid": job_uid, "pod": pod or (jid + "-" + cluster),
                "gpus": gpus, "labels": {check.JOB_LABEL: label or jid}}
        self.exec.append(dict(base, event="start", ts_ms=ms(start),
                              reason="Started"))
        if stop is not None:
            self.exec.append(dict(base, event="stop", ts_ms=ms(stop),
                                  reason=reason))

    def write(self):
        d = self.dir
        world = {"members": MEMBERS, "t0_ms": T0, "end_ms": ms(100),
                 "converged_ms": self.converged_ms, "agents": self.agents,
                 "member": {m: {"capacity": self.capacity,
                                "cohort_nominal": 8}
                            for m in MEMBERS},
                 "timing": {"overflow_after_ms": 2000, "period_ms": 1000,
                            "lease_duration_ms": 3000, "poll_ms": 1000,
                            "slack_ms": 2000, "heal_ms": 2000}}
        world["timing"].update(self.timing)
        with open(os.path.join(d, "world.json"), "w") as f:
            json.dump(world, f)
        for name, rows in (("exec.log", self.exec),
                           ("submits.jsonl", self.submits),
                           ("faults.jsonl", self.faults),
                           ("s2.jsonl", self.s2)):
            with open(os.path.join(d, name), "w") as f:
                for r in rows:
                    f.write(json.dumps(r) + "\n")
        fin = os.path.join(d, "final")
        os.makedirs(fin, exist_ok=True)
        for m in MEMBERS:
            for name, items in (("jobs", self.jobs[m]),
                                ("workloads", self.wls[m])):
                with open(os.path.join(fin, "%s-%s.json" % (name, m)),
                          "w") as f:
                    json.dump({"items": items}, f)
            cq = {"metadata": {"name": "ml-gpu"}, "status": {
                "flavorsUsage": [{"name": "a100", "resources": [
                    {"name": "nvidia.com/gpu",
                     "total": str(self.cq_used[m])}]}]}}
            items = [cq]
            if m in self.extra_cq:
                name, used = self.extra_cq[m]
                items.append({"metadata": {"name": name, "labels": {
                    "app.kubernetes.io/managed-by": "gpufed"}}, "status": {
                    "flavorsUsage": [{"name": "a100", "resources": [
                        {"name": "nvidia.com/gpu", "total": str(used)}]}]}})
            with open(os.path.join(fin, "cq-%s.json" % m), "w") as f:
                json.dump({"items": items}, f)
        with open(os.path.join(fin, "leases.json"), "w") as f:
            json.dump({"items": self.leases}, f)
        with open(os.path.join(fin, "metrics.txt"), "w") as f:
            f.write(self.metrics or "".join(
                'gpufed_quota{member="%s",cluster_queue="ml-gpu",'
                'flavor="a100",resource="nvidia.com/gpu",kind="used"} %d\n'
                % (m, self.cq_used[m]) for m in MEMBERS))

    def check(self):
        self.write()
        _, rep = check.check(self.dir)
        return sorted({v[0] for v in rep.violations}), rep

    def main(self):
        """The command line's exit status and output."""
        self.write()
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            rc = check.main(["run", self.dir])
        return rc, out.getvalue()


class CheckerTest(unittest.TestCase):
    def setUp(self):
        self.w = World()

    def tearDown(self):
        shutil.rmtree(self.w.dir)

    def clean(self):
        """Two jobs: one at home, one redirected east -> west."""
        w = self.w
        u1 = w.submit("a", at=0)
        w.run("east", "a", u1, 1, 10)
        w.complete("east", "a", outcome=False)
        w.submit("b", at=1)
        cu = w.copy("west", "b", "lease-b")
        w.lease("lease-b", "b", "east", "west")
        w.run("west", "b-c-1", cu, 4, 12, label="b")
        w.complete("east", "b")

    def test_clean_run_passes(self):
        self.clean()
        bad, _ = self.w.check()
        self.assertEqual(bad, [])
        rc, out = self.w.main()
        self.assertEqual(rc, 0, out)
        self.assertIn("finished exactly once: 2", out)
        self.assertIn("S4 bounded reclaim: vacuous", out)

    def test_overlap_in_two_clusters_fails_s1(self):
        self.clean()
        # b starts at home while its copy still runs in west.
        self.w.run("east", "b", "uid-b", 8, 9, reason="Suspended")
        rc, out = self.w.main()
        self.assertEqual(rc, 1)
        self.assertIn("VIOLATION S1: job b runs at overlapping times in "
                      "clusters west and east", out)
        # The minimal trace names both runs.
        self.assertIn("exec  +8.000s start east/b", out)
        self.assertIn("exec  +4.000s start west/b-c-1", out)

    def test_not_enforced_is_printed_and_passes(self):
        self.clean()
        self.w.converged_ms = 14000
        self.w.write()
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            rc = check.main(["run", self.w.dir, "--enforce", "S1,S2,S3"])
        self.assertEqual(rc, 0)
        self.assertIn("VIOLATION (not enforced in this run) L2:",
                      out.getvalue())
        self.assertIn("violated but not enforced: L2", out.getvalue())
        with contextlib.redirect_stdout(io.StringIO()):
            rc = check.main(["run", self.w.dir, "--enforce", "L2"])
        self.assertEqual(rc, 1)

    def test_back_to_back_runs_pass_s1(self):
        self.clean()
        # The home run of a stopped at 10 s exactly when a retry starts:
        # a handover, not an overlap (still one success).
        self.w.run("east", "a", "uid-a", 10, 11, reason="Failed",
                   pod="a-east-2")
        bad, _ = self.w.check()
        self.assertNotIn("S1", bad)

    def test_copy_known_only_by_its_job_labels(self):
        # A Pod without the driver's template label is mapped through the
        # copy Job's gpufed.io/origin-uid.
        self.clean()
        self.w.exec.append({"event": "start", "cluster": "west",
                            "job": "b-c-2", "job_uid": "copy-b-2",
                            "pod": "p2", "gpus": 4, "ts_ms": ms(5),
                            "labels": {}})
        self.w.copy("west", "b", "lease-b", epoch=2)
        bad, _ = self.w.check()
        self.assertIn("S1", bad)

    def test_double_completion_fails_s3(self):
        self.clean()
        self.w.run("east", "b", "uid-b", 20, 30)
        bad, rep = self.w.check()
        self.assertIn("S3", bad)
        self.assertTrue(any("finished 2 times" in v[1]
                            for v in rep.violations))
        self.assertNotIn("S1", bad)

    def test_lost_job_fails_s3(self):
        self.clean()
        self.w.submit("c", at=2)
        bad, rep = self.w.check()
        # It also waited while west was idle (L1).
        self.assertEqual(bad, ["L1", "S3"])
        self.assertTrue(any(v[0] == "S3" and "job c" in v[1] and
                            "never finished" in v[1]
                            for v in rep.violations))

    def test_origin_without_outcome_fails_s3(self):
        self.clean()
        for j in self.w.jobs["east"]:
            if j["metadata"]["name"] == "b":
                j["metadata"]["annotations"] = {}
        bad, _ = self.w.check()
        self.assertEqual(bad, ["S3"])

    def test_orphans_fail_s3(self):
        self.clean()
        self.w.copy("west", "a", "no-such-lease")
        self.w.lease("lease-x", "x", "east", "west", phase="Suspect")
        self.w.wls["east"].append({
            "metadata": {"name": "job-z", "namespace": "ml",
                         "ownerReferences": [{"uid": "uid-z"}]},
            "spec": {"active": False}})
        self.w.jobs["east"].append({
            "metadata": {"name": "z", "namespace": "ml", "uid": "uid-z"}})
        _, rep = self.w.check()
        msgs = " | ".join(v[1] for v in rep.violations)
        self.assertIn("orphan copy west/ml/a-c-1: lease no-such-lease", msgs)
        self.assertIn("lease lease-x left in Suspect", msgs)
        self.assertIn("origin east/ml/z held", msgs)

    def test_over_capacity_fails_s2(self):
        self.clean()
        u = self.w.submit("d", member="west", gpus=6, at=0)
        # 4 GPUs of b's copy run in west from 4 s to 12 s; 6 more is 10.
        self.w.run("west", "d", u, 5, 6, gpus=6)
        self.w.complete("west", "d", outcome=False)
        bad, rep = self.w.check()
        self.assertEqual(bad, ["S2"])
        self.assertIn("member west", rep.violations[0][1])
        self.assertIn("10 GPUs running at +5.000s, limit 8",
                      rep.violations[0][1])

    def loan_sample(self, at, grant, holds):
        self.w.s2.append({"ts_ms": ms(at), "members": {
            "east": {"grant": grant, "holds": []},
            "west": {"grant": 0, "holds": holds}}})

    def test_loan_within_its_hold_passes_s2(self):
        # East (16 GPUs of nodes, nominal 8) runs 12 at once while west's
        # hold reserves 4 and east's grant is 4.
        self.clean()
        self.w.capacity = 16
        u = self.w.submit("e", member="east", gpus=8, at=0)
        self.w.run("east", "e", u, 5, 6, gpus=8)
        self.w.complete("east", "e", outcome=False)
        self.loan_sample(4, 0, [["hold-e", 4]])
        self.loan_sample(5, 4, [["hold-e", 4], ["hold-e", 4]])
        self.loan_sample(7, 0, [])
        self.w.loan("loan-e", "e", "east", "west", 4, 4, 6)
        bad, rep = self.w.check()
        self.assertEqual(bad, [])
        self.assertIn("S2: 3 loan samples, largest grant east 4, west 0",
                      rep.notes)
        # Without the loan, the same 12 GPUs are over east's nominal.
        self.w.leases.pop()
        bad, rep = self.w.check()
        self.assertEqual(bad, ["S2"])
        self.assertIn("member east", rep.violations[0][1])

    def test_loan_the_sampler_missed_passes_s2(self):
        # A sample takes a second or more under load: a short loan may
        # never be sampled. Its QuotaLease still says it was in force (the
        # old check, on the largest grant sampled, failed seeds 1 and 8).
        self.clean()
        self.w.capacity = 16
        u = self.w.submit("e", member="east", gpus=8, at=0)
        self.w.run("east", "e", u, 5, 6, gpus=8)
        self.w.complete("east", "e", outcome=False)
        self.loan_sample(3, 0, [])
        self.loan_sample(8, 0, [])
        self.w.loan("loan-e", "e", "east", "west", 4, 5, 6)
        bad, _ = self.w.check()
        self.assertEqual(bad, [])

    def test_running_past_the_loan_fails_s2(self):
        # The loan ends at +6 s (its hold may go at once): the 12 GPUs that
        # still run in east at +7.5 s are over its nominal. The largest
        # grant sampled (the old allowance) would have hidden it.
        self.clean()
        self.w.capacity = 16
        u = self.w.submit("e", member="east", gpus=8, at=0)
        self.w.run("east", "e", u, 5, 9, gpus=8)
        self.w.complete("east", "e", outcome=False)
        self.loan_sample(5, 4, [["hold-e", 4]])
        self.w.loan("loan-e", "e", "east", "west", 4, 4, 6)
        bad, rep = self.w.check()
        self.assertEqual(bad, ["S2"])
        self.assertIn("member east", rep.violations[0][1])
        self.assertIn("12 GPUs running at +7.000s, limit 8",
                      rep.violations[0][1])

    def test_grant_beyond_holds_fails_s2(self):
        self.clean()
        # A hold read twice counts once: 4 reserved, 8 granted.
        self.loan_sample(6, 8, [["hold-e", 4], ["hold-e", 4]])
        self.loan_sample(7, 4, [])
        bad, rep = self.w.check()
        self.assertEqual(bad, ["S2"])
        msgs = [v[1] for v in rep.violations]
        self.assertEqual(len(msgs), 2)
        self.assertIn("at +6.000s: loan grants 8 GPUs, reserved holds 4: "
                      "quota usable across members 20, sum of budgets 16",
                      msgs[0])
        self.assertIn("at +7.000s: loan grants 4 GPUs, reserved holds 0",
                      msgs[1])

    def test_ledger_mismatch_fails_l2(self):
        self.clean()
        self.w.cq_used["west"] = 4
        self.w.metrics = (
            'gpufed_quota{member="west",cluster_queue="ml-gpu",'
            'flavor="a100",resource="nvidia.com/gpu",kind="used"} 0\n')
        bad, rep = self.w.check()
        self.assertEqual(bad, ["L2"])
        self.assertIn("west/ml-gpu/a100 ledger used 0, ClusterQueue 4",
                      rep.violations[0][1])

    def test_slow_convergence_fails_l2(self):
        self.clean()
        self.w.converged_ms = 14000
        bad, rep = self.w.check()
        self.assertEqual(bad, ["L2"])
        self.assertIn("14000 ms after the final heal; the bound is two "
                      "heartbeat periods + the poll interval = 3000 ms",
                      rep.violations[0][1])

    def test_overflow_queues_count_as_lent(self):
        # Copies hold 4 GPUs in west's overflow queue: the ledger leaves
        # them out of that queue and counts them as lent by ml-gpu.
        self.clean()
        self.w.extra_cq["west"] = ("gpufed-ml-gpu", 4)
        self.w.metrics = "".join(
            'gpufed_quota{member="%s",cluster_queue="%s",flavor="a100",'
            'resource="nvidia.com/gpu",kind="%s"} %d\n' % row for row in (
                ("east", "ml-gpu", "used", 0), ("west", "ml-gpu", "used", 0),
                ("west", "gpufed-ml-gpu", "used", 0),
                ("west", "ml-gpu", "lent", 4)))
        bad, _ = self.w.check()
        self.assertEqual(bad, [])
        # Nothing lent in the ledger while copies hold quota: a mismatch.
        self.w.metrics = self.w.metrics.replace('kind="lent"} 4',
                                                'kind="lent"} 0')
        bad, rep = self.w.check()
        self.assertEqual(bad, ["L2"])
        self.assertIn("west: copies hold 4 GPUs in gpufed's overflow queues, "
                      "the ledger counts 0 lent", rep.violations[0][1])

    def reclaimed(self, stop, deadline=10, termination=None):
        """b redirected east -> west is reclaimed: Reclaiming at 6 s with
        its deadline; its copy's Pod stops at `stop`; b runs again at home
        and finishes there."""
        w = self.w
        u1 = w.submit("a", at=0)
        w.run("east", "a", u1, 1, 3)
        w.complete("east", "a", outcome=False)
        w.submit("b", at=1)
        if termination is not None:
            for j in w.jobs["east"]:
                if j["metadata"]["name"] == "b":
                    j["spec"] = {"template": {"spec": {
                        "terminationGracePeriodSeconds": termination}}}
        w.lease("lease-b", "b", "east", "west", transitions=[
            {"phase": "Active", "time": "2027-01-15T08:00:04Z"},
            {"phase": "Reclaiming", "time": "2027-01-15T08:00:06Z"},
            {"phase": "Releasing", "reason": "Reclaimed",
             "time": "2027-01-15T08:00:11Z"},
            {"phase": "Released", "reason": "Reclaimed",
             "time": "2027-01-15T08:00:12Z"}])
        le = w.leases[-1]
        le["spec"]["epoch"] = 1
        # spec.origin.uid is the origin Workload's uid, not the Job's
        le["spec"]["origin"]["uid"] = "wl-uid-b"
        le["status"]["reason"] = "Reclaimed"
        le["status"]["reclaimStarted"] = "2027-01-15T08:00:06.250Z"
        le["status"]["reclaimDeadline"] = "2027-01-15T08:00:%02d.250Z" % \
            deadline
        # The copy Job is gone (deleted on release): its Pods are found by
        # the deterministic name, NAME-HASH-EPOCH.
        w.run("west", "b-0a1b2c3d-1", "copy-b-1", 4, stop, label="b",
              reason="Evicted")
        w.run("east", "b", "uid-b", 25, 35)
        w.complete("east", "b", outcome=False)

    def test_clean_reclaim_passes_s4(self):
        self.reclaimed(stop=10.5)
        bad, _ = self.w.check()
        self.assertEqual(bad, [])
        rc, out = self.w.main()
        self.assertEqual(rc, 0, out)
        # deadline 10.25 s after t0's 8:00:00; the figure is stop - start
        self.assertIn("S4 bounded reclaim: 1 lease(s) went Reclaiming; copy "
                      "stopped after the reclaim started: n=1 median 4250 ms "
                      "max 4250 ms; bounds extended: none", out)

    def test_stop_within_termination_passes_s4(self):
        # The Pod's own terminationGracePeriodSeconds (5 s) is allowed.
        self.reclaimed(stop=16.5, termination=5)
        bad, _ = self.w.check()
        self.assertEqual(bad, [])

    def test_late_reclaim_fails_s4(self):
        # Stopped 10 s after the deadline with a termination allowance of
        # 5 s and 2 s of slack: 3 s late, named with its figures.
        self.reclaimed(stop=20.25, termination=5)
        rc, out = self.w.main()
        self.assertEqual(rc, 1)
        self.assertIn("VIOLATION S4: lease lease-b (lender west): copy pod "
                      "west/b-0a1b2c3d-1 stopped at ", out)
        self.assertIn("termination 5000 ms + slack 2000 ms", out)
        self.assertIn("(3000 ms late)", out)
        self.assertIn("checker: FAIL (S4)\n", out)

    def test_copy_still_running_fails_s4(self):
        self.reclaimed(stop=None, termination=0)
        # b also ran at home meanwhile: S1 too; S4 names the running copy.
        bad, rep = self.w.check()
        self.assertIn("S4", bad)
        self.assertTrue(any(v[0] == "S4" and "still running at the end"
                            in v[1] for v in rep.violations))

    def test_deadline_past_grace_fails_s4(self):
        self.reclaimed(stop=10.5, deadline=30)
        self.w.write()
        with open(os.path.join(self.w.dir, "world.json")) as f:
            world = json.load(f)
        world["timing"]["grace_period_ms"] = 4000
        with open(os.path.join(self.w.dir, "world.json"), "w") as f:
            json.dump(world, f)
        _, rep = check.check(self.w.dir)
        msgs = [v[1] for v in rep.violations if v[0] == "S4"]
        self.assertEqual(len(msgs), 1, msgs)
        self.assertIn("reclaimDeadline +30.250s is 24000 ms after "
                      "reclaimStarted +6.250s; gracePeriod is 4000 ms",
                      msgs[0])

    def test_reclaiming_without_deadline_fails_s4(self):
        self.reclaimed(stop=10.5)
        del self.w.leases[-1]["status"]["reclaimDeadline"]
        bad, rep = self.w.check()
        self.assertEqual(bad, ["S4"])
        self.assertIn("carries no status.reclaimDeadline",
                      rep.violations[0][1])

    # S4 under faults: the reclaim starts at +6.25 s, its deadline is
    # +10.25 s, the Pods' grace 1 s and the slack 2 s, so the bound
    # without a fault is +13.25 s. Each fault the protocol says delays
    # the stop extends it to its own bound, and no further.

    def s4(self, stop, *faults, agents=False):
        self.w.faults = []
        self.w.agents = agents
        self.w.timing = {"grace_period_ms": 4000, "lease_duration_ms": 3000}
        self.w.exec, self.w.submits, self.w.leases = [], [], []
        self.w.jobs = {m: [] for m in MEMBERS}
        self.reclaimed(stop=stop, termination=1)
        for kind, member, at, dur, extra in faults:
            f = {"kind": kind, "member": member, "ts_ms": ms(at),
                 "for_ms": int(dur * 1000)}
            f.update(extra)
            self.w.faults.append(f)
        bad, rep = self.w.check()
        return "S4" in bad, [v[1] for v in rep.violations if v[0] == "S4"]

    def test_s4_late_without_a_fault_fails(self):
        self.assertFalse(self.s4(13.2)[0])
        late, msgs = self.s4(13.5)
        self.assertTrue(late)
        self.assertIn("no fault extends it", msgs[0])
        self.assertIn("(250 ms late)", msgs[0])
        # A fault that does not delay the stop extends nothing: the
        # lender's agent cut off, a partition of the origin, a hub killed
        # before the reclaim began.
        self.assertTrue(self.s4(13.5, ("blackhole", "west", 7, 8, {
            "identity": "member-agent"}))[0])
        self.assertTrue(self.s4(13.5, ("blackhole", "east", 7, 8, {
            "identity": "gpufed-hub"}))[0])
        self.assertTrue(self.s4(13.5, ("hub-kill", "", 5, 1, {}))[0])
        self.assertTrue(self.s4(13.5, ("agent-kill", "west", 7, 1, {}))[0])

    def test_s4_hub_failover_extends_by_the_leader_lease(self):
        # Seed 3's case: the leader killed 55 ms after the reclaim began,
        # the copy stopped 8.07 s after it: within 6.305 + 15 + 2 + 3.
        kill = ("hub-kill", "", 6.305, 1.2, {"replica": "a"})
        self.assertFalse(self.s4(14.32, kill)[0])
        self.assertFalse(self.s4(26.2, kill)[0])
        late, msgs = self.s4(26.5, kill)
        self.assertTrue(late)
        self.assertIn("extended by hub failover (hub-kill at +6.305s: + "
                      "leader lease 15000 ms + retry 2000 ms)", msgs[0])
        # A hub replica restarted with another clock rate is a failover.
        drift = ("clock-drift", "", 8, 0, {"process": "hub-b", "ppm": 900})
        self.assertFalse(self.s4(27.9, drift)[0])
        self.assertTrue(self.s4(28.1, drift)[0])

    def test_s4_partition_ends_at_the_agents_fence_or_the_heal(self):
        cut = ("blackhole", "west", 7, 8, {"identity": "gpufed-hub"})
        # With agents: the fence at 7 + Tw 0.5 + D(1+rho) 3.03 + poll 0.5
        # = 11.03 s, sooner than the heal (15 s) + 2 s.
        self.assertFalse(self.s4(14.0, cut, agents=True)[0])
        late, msgs = self.s4(14.1, cut, agents=True)
        self.assertTrue(late)
        self.assertIn("hub<->lender partition (+7.000s-+15.000s: the agent "
                      "fences 4030 ms in)", msgs[0])
        # Without agents the hub stops it two heartbeat periods after the
        # heal: 15 + 2 + 3.
        self.assertFalse(self.s4(19.9, cut)[0])
        late, msgs = self.s4(20.1, cut)
        self.assertTrue(late)
        self.assertIn("the hub stops it 2000 ms after the heal", msgs[0])
        # A short cut healed before the agent's fence: the heal bounds it.
        short = ("blackhole", "west", 7, 1, {"identity": "gpufed-hub"})
        self.assertFalse(self.s4(12.9, short, agents=True)[0])
        self.assertTrue(self.s4(13.5, short, agents=True)[0])

    def test_s4_frozen_kueue_extends_to_its_end(self):
        frozen = ("kueue-frozen", "west", 9, 7, {})
        self.assertFalse(self.s4(18.9, frozen)[0])
        late, msgs = self.s4(19.1, frozen)
        self.assertTrue(late)
        self.assertIn("frozen Kueue in the lender (+9.000s-+16.000s: until "
                      "its end)", msgs[0])
        # In the origin, it does not delay the lender's quota.
        self.assertTrue(self.s4(13.5, ("kueue-frozen", "east", 9, 7, {}))[0])

    def test_s4_api_server_faults_extend_by_the_retry(self):
        # A restart refusing connections for 2 s: its end + max(two
        # heartbeat periods, the key's backoff 2 s + 5 ms) + 3 s.
        restart = ("restart", "west", 9, 2, {})
        self.assertFalse(self.s4(15.9, restart)[0])
        late, msgs = self.s4(16.1, restart)
        self.assertTrue(late)
        self.assertIn("restart on the lender (+9.000s-+11.000s: its end + "
                      "2005 ms)", msgs[0])
        # 30 answers 503 over 4 s: the backoff bound, 4005 ms, wins.
        burst = ("5xx", "west", 8, 4, {"identity": "gpufed-hub",
                                        "count": 30})
        self.assertFalse(self.s4(18.9, burst)[0])
        self.assertTrue(self.s4(19.1, burst)[0])
        # The same burst on the origin's API server delays nothing here.
        self.assertTrue(self.s4(13.5, ("5xx", "east", 8, 4, {
            "identity": "gpufed-hub", "count": 30}))[0])

    def test_s4_a_reclaim_marked_again_counts_from_its_first_mark(self):
        # Reclaiming at +6 s, dropped and marked again at +12 s (status
        # overwritten: started +12.25 s, deadline +16.25 s). The lender
        # has waited since +6 s: the first deadline was at most +11 s
        # (the transition's second + gracePeriod), the bound +14 s.
        self.s4(16.5)
        le = self.w.leases[-1]
        le["status"]["transitions"][2:2] = [
            {"phase": "Suspect", "time": "2027-01-15T08:00:07Z"},
            {"phase": "Active", "time": "2027-01-15T08:00:09Z"},
            {"phase": "Reclaiming", "time": "2027-01-15T08:00:12Z"}]
        le["status"]["reclaimStarted"] = "2027-01-15T08:00:12.250Z"
        le["status"]["reclaimDeadline"] = "2027-01-15T08:00:16.250Z"
        bad, rep = self.w.check()
        msgs = [v[1] for v in rep.violations if v[0] == "S4"]
        self.assertEqual(len(msgs), 1, msgs)
        self.assertIn("reclaim started +6.000s (marked again at +12.250s), "
                      "deadline +11.000s", msgs[0])

    def remarked_after_its_deadline(self, stop, deadline):
        # Reclaiming at +6 s (deadline +10.25 s), the lender Suspect at
        # +7 s and back at +9 s, marked again at +11 s: the hub resumes
        # the first mark, whose deadline has passed, so it writes the
        # re-mark's instant as the deadline (stop now; seed 12 of the
        # chaos suite: 6.2 s after reclaimStarted, grace 4 s).
        self.s4(stop)
        le = self.w.leases[-1]
        le["status"]["transitions"][2:2] = [
            {"phase": "Suspect", "time": "2027-01-15T08:00:07Z"},
            {"phase": "Active", "time": "2027-01-15T08:00:09Z"},
            {"phase": "Reclaiming", "time": "2027-01-15T08:00:11Z"}]
        le["status"]["reclaimDeadline"] = "2027-01-15T08:00:%s" % deadline
        bad, rep = self.w.check()
        return bad, [v[1] for v in rep.violations if v[0] == "S4"]

    def test_s4_a_resumed_mark_past_its_deadline_stops_now(self):
        bad, msgs = self.remarked_after_its_deadline(12.0, "11.300Z")
        self.assertEqual(msgs, [])
        self.assertEqual(bad, [])

    def test_s4_a_resumed_mark_is_held_to_the_first_deadline(self):
        # Stopped at +13.8 s: within the written deadline + 3 s, but past
        # the first mark's (+10.25 s + 1 s + 2 s).
        bad, msgs = self.remarked_after_its_deadline(13.8, "11.300Z")
        self.assertEqual(len(msgs), 1, msgs)
        self.assertIn("deadline +10.250s", msgs[0])

    def test_s4_a_resumed_mark_granting_time_fails(self):
        # Marked again at +11 s with a deadline of +15.3 s: more than the
        # grace period after the first mark, and not "stop now".
        bad, msgs = self.remarked_after_its_deadline(12.0, "15.300Z")
        self.assertTrue(any("reclaimDeadline +15.300s is 9050 ms after "
                            "reclaimStarted +6.250s" in m for m in msgs),
                        msgs)

    def test_idle_lender_unused_fails_l1(self):
        # c waits in east from 0 s to 20 s while west is idle.
        w = self.w
        u = w.submit("c", at=0)
        w.run("east", "c", u, 20, 30)
        w.complete("east", "c", outcome=False)
        bad, rep = w.check()
        self.assertEqual(bad, ["L1"])
        self.assertIn("west had 8 idle GPUs", rep.violations[0][1])

    def test_lender_holding_a_loan_is_not_idle_l1(self):
        # West runs nothing, but a loan's hold reserves all its 8 GPUs
        # (pod-less) while c waits: nothing idle to redirect c to.
        w = self.w
        u = w.submit("c", at=0)
        w.run("east", "c", u, 20, 30)
        w.complete("east", "c", outcome=False)
        w.loan("loan-x", "x", "east", "west", 8, 0, 25)
        bad, _ = w.check()
        self.assertNotIn("L1", bad)
        # A hold of 4 leaves 4 idle, enough for c's 4 GPUs.
        w.leases[-1]["spec"]["gpus"] = 4
        bad, rep = w.check()
        self.assertIn("L1", bad)
        self.assertIn("west had 4 idle GPUs",
                      [v for v in rep.violations if v[0] == "L1"][0][1])

    def test_a_granted_loan_ends_the_wait_l1(self):
        # c's loan is granted at +2 s; Kueue in east admits others on it
        # first and c starts only at +20 s, while west is idle: gpufed did
        # its part (the loan), the rest is Kueue's order in east.
        w = self.w
        u = w.submit("c", at=0)
        w.run("east", "c", u, 20, 30)
        w.complete("east", "c", outcome=False)
        w.loan("loan-c", "c", "east", "north", 4, 2, 30)
        bad, _ = w.check()
        self.assertNotIn("L1", bad)

    def test_ledger_between_two_reads_matches(self):
        # A Job finishes between the poll's two reads of the ClusterQueues
        # (4, then 0): the ledger read in between may show either.
        def cqs(n):
            return {"west": [{"metadata": {"name": "ml-gpu"}, "status": {
                "flavorsUsage": [{"name": "a100", "resources": [
                    {"name": "nvidia.com/gpu", "total": str(n)}]}]}}]}
        metrics = ('gpufed_quota{member="west",cluster_queue="ml-gpu",'
                   'flavor="a100",resource="nvidia.com/gpu",kind="used"} %d\n')
        for led in (4, 0):
            self.assertEqual(check.ledger_diffs(
                metrics % led, cqs(0), ["west"], cqs(4)), [])
        self.assertEqual(check.ledger_diffs(metrics % 8, cqs(0), ["west"],
                                            cqs(4)),
                         ["west/ml-gpu/a100 ledger used 8, ClusterQueue 4 "
                          "then 0"])
        # One read (or two that agree) must match exactly.
        self.assertEqual(check.ledger_diffs(metrics % 4, cqs(0), ["west"]),
                         ["west/ml-gpu/a100 ledger used 4, ClusterQueue 0"])

    def test_idle_lender_behind_a_fault_is_skipped(self):
        w = self.w
        u = w.submit("c", at=0)
        w.run("east", "c", u, 20, 30)
        w.complete("east", "c", outcome=False)
        w.faults.append({"kind": "blackhole", "member": "west",
                         "identity": "gpufed-hub", "ts_ms": ms(1),
                         "for_ms": 18000})
        bad, _ = w.check()
        self.assertEqual(bad, [])

    def test_hub_clock_drift_restart_is_a_hub_outage(self):
        # The replica restarted with a skewed clock from 1 s to 16 s: the
        # hub could not act, so c's wait is not an L1 violation.
        w = self.w
        u = w.submit("c", at=0)
        w.run("east", "c", u, 20, 30)
        w.complete("east", "c", outcome=False)
        w.faults.append({"kind": "clock-drift", "member": "",
                         "process": "hub-a", "ppm": -8000,
                         "ts_ms": ms(1), "restart_ts_ms": ms(16),
                         "for_ms": 0})
        bad, _ = w.check()
        self.assertEqual(bad, [])

    def test_agent_clock_drift_is_no_hub_outage(self):
        # An agent restarted with a skewed clock does not stop the hub:
        # c's wait stays an L1 violation.
        w = self.w
        u = w.submit("c", at=0)
        w.run("east", "c", u, 20, 30)
        w.complete("east", "c", outcome=False)
        w.faults.append({"kind": "clock-drift", "member": "west",
                         "process": "agent", "ppm": 9000,
                         "ts_ms": ms(1), "restart_ts_ms": ms(16),
                         "for_ms": 0})
        bad, _ = w.check()
        self.assertEqual(bad, ["L1"])
        run, _ = check.check(w.dir)
        self.assertIn("clock rates at the end: agent/west +9000 ppm",
                      check.figures(run))

    def test_time_to_fence_from_the_cut_to_the_agents_fence(self):
        # A cut of the hub from west longer than D: the figure is the
        # agent's first fence after the cut began; a fence outside the cut
        # (and D after it) and a cut shorter than D count for nothing.
        import datetime
        w = self.w
        u = w.submit("c", at=0)
        w.run("east", "c", u, 1, 2)
        w.complete("east", "c")
        w.faults.append({"kind": "blackhole", "member": "west",
                         "identity": "gpufed-hub", "ts_ms": ms(10),
                         "for_ms": 8000})
        w.faults.append({"kind": "blackhole", "member": "west",
                         "identity": "gpufed-hub", "ts_ms": ms(40),
                         "for_ms": 1000})

        def line(t):
            ts = datetime.datetime.fromtimestamp(
                t / 1000, datetime.timezone.utc).strftime(
                    "%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            return ("ts=%s level=warn comp=agent cluster=west msg=fencing "
                    "member=west heartbeat_age_ms=3000\n" % ts)
        w.write()
        with open(os.path.join(w.dir, "agent-west.log"), "w") as f:
            f.write(line(ms(5)) + line(ms(12.5)) + line(ms(14))
                    + line(ms(40.5)))
        run, _ = check.check(w.dir)
        self.assertIn("time to fence (a hub<->member cut longer than D to "
                      "its agent's first fence): n=1 median 2500 ms max "
                      "2500 ms", check.figures(run))

class ScheduleTest(unittest.TestCase):
    """The lenders' waves of schedule.py: seeded, and additive."""

    def draw(self, *extra):
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import schedule
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            schedule.main(["--seed", "7", "--events", "12", "--jobs", "20",
                           "--window", "30"] + list(extra))
        return out.getvalue().splitlines()

    def test_waves_reclaim_and_change_nothing_else(self):
        base = self.draw()
        with_waves = self.draw("--waves", "2", "--wave-gpus", "16")
        self.assertEqual(with_waves, self.draw("--waves", "2"))
        waves = [x for x in with_waves if " job r" in x]
        # Everything else is the schedule without waves, in its order.
        self.assertEqual([x for x in with_waves if x not in waves], base)
        per = {}
        for x in waves:
            off, _, jid, member, gpus, _ = x.split()
            self.assertIn(member, ("west", "north"))
            self.assertTrue(9000 <= int(off) <= 23000, x)
            per.setdefault(jid[1], set()).add(member)
            per.setdefault((jid[1], "gpus"), 0)
            per[(jid[1], "gpus")] += int(gpus)
        for w in ("0", "1"):
            self.assertEqual(len(per[w]), 1)  # one lender per wave
            self.assertGreaterEqual(per[(w, "gpus")], 16)

    HUB_SIDE = ("partition", "latency", "5xx", "429", "reset", "restart")

    def windows(self, lines, guard):
        hub, cuts = [], []
        for x in lines:
            f = x.split()
            if f[1] != "fault":
                continue
            lo, hi = int(f[0]), int(f[0]) + int(f[4])
            if f[2] in self.HUB_SIDE:
                hub.append((f[3], lo, hi + guard, x))
            elif f[2] == "agent-partition":
                cuts.append((f[3], lo, hi, x))
        return hub, cuts

    def test_agent_partitions_keep_off_the_hubs_faults(self):
        # Seed 15 drew east's agent cut off from its API server (7.5 s)
        # while the hub was cut off from east: A3 broken, the hub fenced
        # east's loans and deleted their holds while the agent could not
        # revert the grants. Such a cut must never overlap a hub-side
        # fault of its member, widened by the guard after its end.
        agents = ["--have", "agent,ha,clock-hook", "--waves", "2"]
        for seed in range(1, 21):
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                schedule.main(["--seed", str(seed), "--events", "50",
                               "--jobs", "50", "--window", "75"] + agents)
            lines = out.getvalue().splitlines()
            hub, cuts = self.windows(lines, 3000)
            self.assertTrue(cuts, "seed %d drew no agent-partition" % seed)
            for m, lo, hi, x in cuts:
                for hm, hlo, hhi, y in hub:
                    self.assertFalse(m == hm and lo < hhi and hi > hlo,
                                     "seed %d: %s overlaps %s" % (seed, x, y))

    def test_agent_partitions_are_moved_not_dropped(self):
        # Only agent-partition lines change: every other line is as drawn,
        # and the cuts keep their number and durations.
        args = ["--events", "50", "--jobs", "50", "--window", "75"]
        for seed in (1, 15):
            lines = self.draw_seed(seed, args + ["--have", "agent"])
            raw = self.draw_seed(seed, args + ["--have", "agent",
                                               "--a3-guard-ms", "-1"])
            cut = [x for x in lines if " agent-partition " in x]
            cut_raw = [x for x in raw if " agent-partition " in x]
            self.assertEqual([x for x in lines if x not in cut],
                             [x for x in raw if x not in cut_raw])
            self.assertEqual(sorted(x.split()[-1] for x in cut),
                             sorted(x.split()[-1] for x in cut_raw))
            self.assertNotEqual(cut, cut_raw)  # seed 1 and 15 had clashes

    def draw_seed(self, seed, args):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            schedule.main(["--seed", str(seed)] + args)
        return out.getvalue().splitlines()


if __name__ == "__main__":
    unittest.main()
