#!/usr/bin/python3
"""The chaos suite's invariant checker (DESIGN.md section 4).

It reads what a chaos run left in its run directory and checks the
invariants on what was observed, never on what gpufed says about itself
(except L2, which is precisely the comparison of the two):

  world.json      members, node capacity, nominal quota, timing, t0
  exec.log        kubesim's execution log: one JSON line per Pod start/stop
  submits.jsonl   the Jobs the driver submitted (id, member, name, uid,
                  gpus, ts_ms)
  faults.jsonl    every fault event (t_ms from the run's start, ts_ms,
                  kind, member, for_ms, identity)
  s2.jsonl        loans sampled all along (ts_ms; per member the loan
                  grants' nominal quota, and its reserved holds read
                  before and after the grants, as [name, gpus] pairs)
  final/          after the final heal: jobs-M.json, workloads-M.json and
                  cq-M.json per member (kubectl -o json), leases.json (the
                  hub's QuotaLeases), metrics.txt (the hub's /metrics)

A run's Job is known by its logical id: the pod label gpufed.io/origin-uid
when the Pod carries it, else the pod template label chaos.gpufed.io/job
that the driver sets (copies keep their origin's template), else the
origin uid a copy Job carries in its labels, else the Job's own uid.

Python 3 with the standard library only: the checker reads JSON lines and
kubectl's JSON, which needs no Kubernetes client, and a test world tool is
easier to read and to change in Python than in C (as demo_report.py).

Exit status: 0 when every invariant holds, 1 on any violation, 2 on bad
input. Each violation is printed with the job, clusters and times and a
minimal trace: the execution-log lines of that job and the fault events
around it.
"""

import argparse
import json
import os
import re
import sys

JOB_LABEL = "chaos.gpufed.io/job"
ORIGIN_UID = "gpufed.io/origin-uid"
LEASE_LABEL = "gpufed.io/lease"
OUTCOME = "gpufed.io/outcome"
MANAGED_BY = "app.kubernetes.io/managed-by"
GPU = "nvidia.com/gpu"
FINAL_PHASES = ("Released", "Failed")
# Faults that make a member unreachable to the hub, or slow, for L1.
HUB_FAULTS = ("blackhole", "restart", "5xx", "latency", "reset", "429",
              "watch-drop", "kueue-frozen")
# How much trace to show around a violation.
TRACE_MS = 5000
INF = float("inf")


def die(msg):
    print("check: " + msg, file=sys.stderr)
    sys.exit(2)


def read_json(path, default=None):
    if not os.path.exists(path):
        if default is not None:
            return default
        die("missing " + path)
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_lines(path):
    out = []
    if not os.path.exists(path):
        return out
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except ValueError:
                die("%s:%d: not JSON" % (path, n))
    return out


def parse_time_ms(s):
    """RFC 3339 (as the API server writes it) to epoch milliseconds."""
    import datetime
    if not s:
        return None
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z$", s)
    if not m:
        return None
    t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")
    t = t.replace(tzinfo=datetime.timezone.utc)
    frac = float(m.group(2)) if m.group(2) else 0.0
    return int(t.timestamp() * 1000 + frac * 1000)


def gpus_of(quantity):
    try:
        return int(str(quantity))
    except ValueError:
        return 0


class Run:
    """Everything the checker reads, indexed."""

    def __init__(self, d):
        self.dir = d
        self.world = read_json(os.path.join(d, "world.json"))
        self.members = self.world["members"]
        self.t0 = self.world.get("t0_ms", 0)
        self.exec = read_lines(os.path.join(d, "exec.log"))
        self.submits = read_lines(os.path.join(d, "submits.jsonl"))
        self.faults = read_lines(os.path.join(d, "faults.jsonl"))
        self.s2 = read_lines(os.path.join(d, "s2.jsonl"))
        fin = os.path.join(d, "final")
        self.jobs, self.wls, self.cqs = {}, {}, {}
        for m in self.members:
            self.jobs[m] = read_json(os.path.join(fin, "jobs-%s.json" % m),
                                     {"items": []})["items"]
            self.wls[m] = read_json(
                os.path.join(fin, "workloads-%s.json" % m),
                {"items": []})["items"]
            self.cqs[m] = read_json(os.path.join(fin, "cq-%s.json" % m),
                                    {"items": []})["items"]
        self.leases = read_json(os.path.join(fin, "leases.json"),
                                {"items": []})["items"]
        mp = os.path.join(fin, "metrics.txt")
        self.metrics = None
        if os.path.exists(mp):
            with open(mp, encoding="utf-8") as f:
                self.metrics = f.read()
        self.end_ms = max([e.get("ts_ms", 0) for e in self.exec] +
                          [self.world.get("end_ms", 0)])
        self._index()

    def _index(self):
        # job uid -> logical id, from the copies' labels and the submits.
        self.uid_to_id = {}
        for s in self.submits:
            self.uid_to_id[s["uid"]] = s["id"]
        for m in self.members:
            for j in self.jobs[m]:
                md = j.get("metadata", {})
                ou = md.get("labels", {}).get(ORIGIN_UID)
                if ou and ou in self.uid_to_id:
                    self.uid_to_id[md.get("uid")] = self.uid_to_id[ou]
        # Pods: one interval per (cluster, pod, job_uid).
        self.pods = []
        open_ = {}
        for e in sorted(self.exec, key=lambda e: e.get("ts_ms", 0)):
            key = (e.get("cluster"), e.get("pod"), e.get("job_uid"))
            if e.get("event") == "start":
                p = {"key": key, "id": self.logical_id(e),
                     "cluster": e.get("cluster"), "job": e.get("job"),
                     "gpus": int(e.get("gpus", 0)),
                     "start": e["ts_ms"], "stop": INF, "reason": None}
                open_[key] = p
                self.pods.append(p)
            elif e.get("event") == "stop" and key in open_:
                p = open_.pop(key)
                p["stop"] = e["ts_ms"]
                p["reason"] = e.get("reason")

    def lease_job_id(self, le):
        """The logical id of a lease's job. spec.origin.uid is the origin
        Workload's uid, not the Job's: the Job is found by its member,
        namespace and name among the submits."""
        o = le["spec"]["origin"]
        for s in self.submits:
            if (s["member"], s.get("namespace"), s["name"]) == (
                    o.get("member"), o.get("namespace"), o.get("jobName")):
                return s["id"]
        return self.uid_to_id.get(o.get("uid"), o.get("uid"))

    def logical_id(self, e):
        labels = e.get("labels") or {}
        if ORIGIN_UID in labels:
            u = labels[ORIGIN_UID]
            return self.uid_to_id.get(u, u)
        if JOB_LABEL in labels:
            return labels[JOB_LABEL]
        u = e.get("job_uid")
        return self.uid_to_id.get(u, u)

    def rel(self, ts):
        if ts == INF:
            return "end"
        return "%+.3fs" % ((ts - self.t0) / 1000.0)

    def trace(self, ids, lo, hi):
        """The execution-log lines of the jobs and the faults around."""
        out = []
        for e in self.exec:
            if self.logical_id(e) in ids:
                out.append((e["ts_ms"], "exec  %s %-5s %s/%s pod=%s gpus=%s %s"
                            % (self.rel(e["ts_ms"]), e.get("event"),
                               e.get("cluster"), e.get("job"), e.get("pod"),
                               e.get("gpus"), e.get("reason", ""))))
        lo, hi = lo - TRACE_MS, (hi if hi != INF else self.end_ms) + TRACE_MS
        for f in self.faults:
            ts = f.get("ts_ms", 0)
            if lo <= ts <= hi:
                out.append((ts, "fault %s %s %s%s%s%s" % (
                    self.rel(ts), f.get("kind"), f.get("member", "-"),
                    " for=%dms" % f["for_ms"] if f.get("for_ms") else "",
                    " identity=" + f["identity"] if f.get("identity")
                    else "",
                    " process=%s ppm=%+d%s" % (
                        f["process"], f.get("ppm", 0),
                        " (beyond rho)" if f.get("beyond_rho") else "")
                    if f.get("process") else "")))
        names = {(s["member"], s["name"]) for s in self.submits
                 if s["id"] in ids}
        for le in self.leases:
            o = le["spec"]["origin"]
            if (o["member"], o.get("jobName")) not in names:
                continue
            ts = parse_time_ms(le["metadata"].get("creationTimestamp"))
            if ts is not None:
                out.append((ts, "lease %s %s recorded lender=%s" % (
                    self.rel(ts), le["metadata"]["name"],
                    le["spec"]["lender"]["member"])))
            for t in le.get("status", {}).get("transitions", []) or []:
                ts = parse_time_ms(t.get("time"))
                if ts is not None:
                    out.append((ts, "lease %s %s %s %s lender=%s" % (
                        self.rel(ts), le["metadata"]["name"], t.get("phase"),
                        t.get("reason", ""), le["spec"]["lender"]["member"])))
        out.sort(key=lambda x: x[0])
        return ["    " + line for _, line in out]


class Report:
    def __init__(self):
        self.violations = []
        self.notes = []

    def violation(self, inv, msg, trace=()):
        self.violations.append((inv, msg, list(trace)))

    def note(self, msg):
        self.notes.append(msg)


# --- S1 ---------------------------------------------------------------------

def check_s1(run, rep):
    """At most once: no two runs of one job overlap in time, anywhere."""
    by_id = {}
    for p in run.pods:
        by_id.setdefault(p["id"], []).append(p)
    for jid, ps in sorted(by_id.items(), key=lambda kv: str(kv[0])):
        ps.sort(key=lambda p: p["start"])
        for i, a in enumerate(ps):
            for b in ps[i + 1:]:
                if b["start"] >= a["stop"]:
                    continue
                where = "clusters %s and %s" % (a["cluster"], b["cluster"]) \
                    if a["cluster"] != b["cluster"] else \
                    "cluster %s, twice" % a["cluster"]
                rep.violation(
                    "S1", "job %s runs at overlapping times in %s: %s/%s "
                    "[%s, %s) and %s/%s [%s, %s)" % (
                        jid, where, a["cluster"], a["job"],
                        run.rel(a["start"]), run.rel(a["stop"]),
                        b["cluster"], b["job"], run.rel(b["start"]),
                        run.rel(b["stop"])),
                    run.trace({jid}, a["start"], max(a["stop"], b["stop"])))


# --- S2 ---------------------------------------------------------------------

def sweep(pods, limit, label, run, rep, extra=()):
    """Reports each stretch of time where the running GPUs exceed the
    limit: limit plus the GPUs of the extra windows ((lo, hi, gpus), the
    loans a borrower runs on) open at that instant."""
    ev = []
    for p in pods:
        if p["gpus"] <= 0:
            continue
        ev.append((p["start"], 2, p))
        if p["stop"] != INF:
            ev.append((p["stop"], 0, p))
    for lo, hi, g in extra:
        ev.append((lo, 1, g))
        if hi != INF:
            ev.append((hi, 3, -g))
    # At one instant: stops, then loans raised, then starts, then loans
    # ended. A slot handed over is not an overlap, and a loan's window is
    # already as wide as its lease's times allow.
    ev.sort(key=lambda e: (e[0], e[1]))
    used, allowed, over_since, live = 0, limit, None, set()
    for ts, kind, p in ev:
        if kind == 0:
            used -= p["gpus"]
            live.discard(id(p))
        elif kind == 2:
            used += p["gpus"]
            live.add(id(p))
        else:
            allowed += p
        if used <= allowed:
            over_since = None
        elif over_since is None:
            over_since = ts
            ids = {q["id"] for q in pods if id(q) in live}
            rep.violation(
                "S2", "%s: %d GPUs running at %s, limit %d" % (
                    label, used, run.rel(ts), allowed),
                run.trace(ids, ts, ts))


def check_s2_samples(run, rep):
    """S2 on quota, at every sample: the loans' grants never exceed the
    holds reserved for them (the raise comes after the hold is reserved,
    the hold goes after the grant is lowered), so the quota usable across
    members (each member's nominal, less what its holds reserve, plus its
    grants) never exceeds the sum of budgets. The holds read before and
    after the grants both count: a read is not a snapshot. Returns the
    largest grant seen per member."""
    budgets = sum(run.world["member"][m]["cohort_nominal"]
                  for m in run.members)
    most = {m: 0 for m in run.members}
    for smp in run.s2:
        per = smp.get("members", {})
        granted = reserved = 0
        for m, v in per.items():
            g = int(v.get("grant", 0))
            most[m] = max(most.get(m, 0), g)
            granted += g
            reserved += sum(int(h[1]) for h in
                            {h[0]: h for h in v.get("holds", [])}.values())
        usable = budgets - reserved + granted
        if granted > reserved or usable > budgets:
            rep.violation(
                "S2", "at %s: loan grants %d GPUs, reserved holds %d: quota "
                "usable across members %d, sum of budgets %d (%s)" % (
                    run.rel(smp.get("ts_ms", 0)), granted, reserved, usable,
                    budgets, json.dumps(per, sort_keys=True)))
    if run.s2:
        rep.note("S2: %d loan samples, largest grant %s" % (
            len(run.s2), ", ".join("%s %d" % (m, most[m])
                                   for m in run.members)))
    return most


def loan_windows(run, side):
    """{member: [(lo, hi, gpus)]}: when each loan may have been in force,
    per borrower (side "origin") or lender (side "lender"), from its
    QuotaLease: from its creation (the write-ahead record comes before the
    hold and the grant) to its final transition (written after the grant
    is lowered and the hold deleted) plus 1 s, since lease times are
    written to the second; never ended, to the end of the run."""
    out = {}
    for le in run.leases:
        sp = le.get("spec", {})
        if sp.get("mode") != "Loan":
            continue
        lo = parse_time_ms(le["metadata"].get("creationTimestamp"))
        if lo is None:
            continue
        hi = INF
        for t in le.get("status", {}).get("transitions", []) or []:
            ts = parse_time_ms(t.get("time"))
            if t.get("phase") in FINAL_PHASES and ts is not None:
                hi = ts + 1000
        m = sp.get(side, {}).get("member")
        out.setdefault(m, []).append((lo, hi, int(sp.get("gpus", 0))))
    return out


def check_s2(run, rep):
    """Conservation, in the simple form docs/chaos.md describes. A member
    that borrows through loans may run up to its nominal plus the loans in
    force at that instant, from the QuotaLeases (the sampler reads grants
    only every second or more, and misses short loans)."""
    most = check_s2_samples(run, rep)
    loans = loan_windows(run, "origin")
    total = 0
    for m in run.members:
        w = run.world["member"][m]
        cap, nominal = w["capacity"], w["cohort_nominal"]
        total += nominal
        pods = [p for p in run.pods if p["cluster"] == m]
        mine = loans.get(m, [])
        sweep(pods, nominal, "member %s (capacity %d, cohort nominal %d, "
              "%d loan(s) to it, largest grant sampled %d)" % (
                  m, cap, nominal, len(mine), most.get(m, 0)),
              run, rep, mine)
        sweep(pods, cap, "member %s (node capacity %d)" % (m, cap), run, rep)
    sweep([p for p in run.pods if p["cluster"] in run.members], total,
          "group across members (sum of nominal %d)" % total, run, rep)


# --- S3 ---------------------------------------------------------------------

def cond_true(obj, kind):
    for c in obj.get("status", {}).get("conditions", []) or []:
        if c.get("type") == kind and c.get("status") == "True":
            return True
    return False


def job_finished(j):
    return cond_true(j, "Complete") or cond_true(j, "Failed")


def check_s3(run, rep):
    """Nothing lost: each submitted Job finished exactly once, no orphans."""
    succeeded = {}
    for p in run.pods:
        if p["reason"] == "Succeeded":
            succeeded.setdefault(p["id"], []).append(p)
    jobs_by_uid = {}
    for m in run.members:
        for j in run.jobs[m]:
            jobs_by_uid[j["metadata"].get("uid")] = (m, j)
    run.exactly_once = 0
    for s in run.submits:
        done = succeeded.get(s["id"], [])
        where = ", ".join("%s at %s" % (p["cluster"], run.rel(p["stop"]))
                          for p in done)
        if len(done) == 0:
            rep.violation("S3", "job %s (%s/%s/%s, submitted %s) never "
                          "finished" % (s["id"], s["member"],
                                        s["namespace"], s["name"],
                                        run.rel(s["ts_ms"])),
                          run.trace({s["id"]}, s["ts_ms"], run.end_ms))
            continue
        if len(done) > 1:
            rep.violation("S3", "job %s (%s/%s) finished %d times: %s" % (
                s["id"], s["member"], s["name"], len(done), where),
                run.trace({s["id"]}, s["ts_ms"], done[-1]["stop"]))
            continue
        run.exactly_once += 1
        mj = jobs_by_uid.get(s["uid"])
        if mj is None:
            rep.violation("S3", "job %s: the origin Job %s/%s is gone" % (
                s["id"], s["member"], s["name"]))
            continue
        j = mj[1]
        ann = j["metadata"].get("annotations", {}) or {}
        if not (cond_true(j, "Complete") or ann.get(OUTCOME) == "Succeeded"):
            rep.violation("S3", "job %s ran once (%s) but its origin %s/%s "
                          "shows neither Complete nor outcome Succeeded" % (
                              s["id"], where, s["member"], s["name"]),
                          run.trace({s["id"]}, s["ts_ms"], run.end_ms))
    leases = {le["metadata"]["name"]: le for le in run.leases}
    live = {n: le for n, le in leases.items()
            if le.get("status", {}).get("phase", "Pending")
            not in FINAL_PHASES}
    for n, le in sorted(live.items()):
        st = le.get("status", {})
        rep.violation("S3", "lease %s left in %s (%s): origin %s/%s, "
                      "lender %s" % (
                          n, st.get("phase", "Pending"), st.get("reason", ""),
                          le["spec"]["origin"]["member"],
                          le["spec"]["origin"].get("jobName"),
                          le["spec"]["lender"]["member"]))
    for m in run.members:
        for j in run.jobs[m]:
            md = j["metadata"]
            ln = (md.get("labels") or {}).get(LEASE_LABEL)
            if ln is None:
                continue
            if ln not in leases:
                rep.violation("S3", "orphan copy %s/%s/%s: lease %s does "
                              "not exist" % (m, md.get("namespace"),
                                             md["name"], ln))
            elif ln not in live and not job_finished(j) and \
                    not md.get("deletionTimestamp"):
                rep.violation("S3", "orphan copy %s/%s/%s: its lease %s is "
                              "final but the copy has not finished" % (
                                  m, md.get("namespace"), md["name"], ln))
    held_by = {(le["spec"]["origin"]["member"],
                le["spec"]["origin"]["namespace"],
                le["spec"]["origin"]["name"]) for le in live.values()}
    for m in run.members:
        owners = {}
        for j in run.jobs[m]:
            owners[j["metadata"].get("uid")] = j
        for w in run.wls[m]:
            md = w["metadata"]
            if w.get("spec", {}).get("active", True) is not False:
                continue
            job = None
            for o in md.get("ownerReferences", []) or []:
                job = owners.get(o.get("uid")) or job
            if job is None or job_finished(job) or \
                    (job["metadata"].get("annotations") or {}).get(OUTCOME):
                continue
            if (m, md.get("namespace"), md["name"]) not in held_by:
                rep.violation("S3", "origin %s/%s/%s held (Workload %s "
                              "inactive) with no live lease" % (
                                  m, md.get("namespace"),
                                  job["metadata"]["name"], md["name"]))


# --- S4 ---------------------------------------------------------------------

# Kubernetes' default terminationGracePeriodSeconds.
DEFAULT_TERMINATION_S = 30
# One observation: the hub sees the deadline pass and writes the
# deactivation, Kueue evicts, the runner stops the Pods.
S4_SLACK_MS = 2000
# Lease times the hub writes may be cut to whole seconds (transitions'
# times are; reclaimStarted and reclaimDeadline carry milliseconds).
LEASE_TIME_RES_MS = 1000
# gpufed hub's --leader-lease default, and client-go's retry period: a
# standby takes over at most one lease duration after the leader's last
# renewal, seen at its next retry.
LEADER_LEASE_MS = 15000
LEADER_RETRY_MS = 2000
# The workqueue's per-key backoff starts at 5 ms and doubles.
WQ_BASE_MS = 5
# Faults on the lender's API server that fail or delay the hub's
# requests: the stop is written again after them.
S4_REQUEST_FAULTS = ("restart", "5xx", "429", "reset", "watch-drop",
                     "latency")


def termination_s(run, le):
    """The copy's termination allowance: the pod template's
    terminationGracePeriodSeconds (the copy keeps its origin's template),
    from the copy Job when it is still there, else the origin Job."""
    name = le["metadata"]["name"]
    o = le["spec"]["origin"]
    cands = [j for j in run.jobs.get(le["spec"]["lender"]["member"], [])
             if (j["metadata"].get("labels") or {}).get(LEASE_LABEL) == name]
    cands += [j for j in run.jobs.get(o["member"], [])
              if (j["metadata"].get("namespace"), j["metadata"].get("name"))
              == (o.get("namespace"), o.get("jobName"))]
    for j in cands:
        v = (((j.get("spec") or {}).get("template") or {}).get("spec")
             or {}).get("terminationGracePeriodSeconds")
        if isinstance(v, int) and v >= 0:
            return v
    return DEFAULT_TERMINATION_S


def copy_pods(run, le):
    """The Pods of a lease's copy, from the execution log: in the lender,
    of the origin's job (the copy keeps its template labels), and of the
    copy Job of this epoch (by uid when the copy Job is still there, else
    by its deterministic name, which ends in -HASH-EPOCH)."""
    spec = le["spec"]
    lender = spec["lender"]["member"]
    o = spec["origin"]
    jid = run.lease_job_id(le)
    uids = {j["metadata"].get("uid") for j in run.jobs.get(lender, [])
            if (j["metadata"].get("labels") or {}).get(LEASE_LABEL) ==
            le["metadata"]["name"]}
    rx = re.compile(r"^(.*)-[0-9a-f]{8}-%d$" % int(spec.get("epoch", 0)))
    out = []
    for p in run.pods:
        if p["cluster"] != lender or p["id"] != jid:
            continue
        m = rx.match(p["job"] or "")
        if p["key"][2] in uids or (
                m and (o.get("jobName") or "").startswith(m.group(1))):
            out.append(p)
    return out


def s4_timing(run):
    """The protocol's figures S4's extensions are derived from."""
    t = run.world.get("timing") or {}
    d = t.get("lease_duration_ms", 3000)
    margin = t.get("fence_margin_ms", 2000)
    agents = run.world.get("fencing", "agent" if run.world.get("agents")
                           else "none") == "agent"
    return {
        "grace": t.get("grace_period_ms"),
        "d": d,
        "rho": t.get("clock_drift", 0.01),
        # A2: a renewal lands within Tw = min(D/6, M/2) or never.
        "tw": min(d / 6.0, margin / 2.0),
        # The agent reads the heartbeat every D/6.
        "poll": d / 6.0,
        # L2: a member is healthy again, and its leases reconciled,
        # within two heartbeat periods of a heal.
        "heal": 2 * d / 3.0,
        "leader": t.get("leader_lease_ms", LEADER_LEASE_MS),
        "agents": agents,
    }


def s4_fault_stop(run, f, lender, tm):
    """(rule, instant) when fault f, if it overlaps a reclaim in lender,
    lets the protocol stop the copy as late as instant (before
    termination and slack), or None when f does not delay that stop.
    Each rule is derived in docs/failure-semantics.md, "S4 under faults".
    Returns (rule, lo, hi, instant): the fault's window [lo, hi)."""
    kind, ts = f.get("kind"), f.get("ts_ms", 0)
    if kind == "hub-kill" or (kind == "clock-drift" and
                              (f.get("process") or "").startswith("hub")):
        # The leader is gone: a standby (or the replica restarted under
        # the same id) leads within one leader lease and a retry period;
        # it then resumes the reclaim from the lease's status.
        return ("hub failover (%s at %s: + leader lease %d ms + retry "
                "%d ms)" % (kind, run.rel(ts), tm["leader"],
                            LEADER_RETRY_MS),
                ts, ts + 1, ts + tm["leader"] + LEADER_RETRY_MS)
    if f.get("member") != lender:
        return None
    end = ts + (f.get("for_ms") or 0)
    if kind == "blackhole" and f.get("identity") == "gpufed-hub":
        # The hub cannot write there. The lender's agent fences at most
        # Tw + D(1+rho) + its poll after the last renewal that landed
        # (sent before the cut); the hub stops the copy once the lender
        # is healthy again, within two heartbeat periods of the heal.
        healed = end + tm["heal"]
        if tm["agents"]:
            fence = ts + tm["tw"] + tm["d"] * (1 + tm["rho"]) + tm["poll"]
            if fence < healed:
                return ("hub<->lender partition (%s-%s: the agent fences "
                        "%d ms in)" % (run.rel(ts), run.rel(end),
                                       fence - ts), ts, end, fence)
        return ("hub<->lender partition (%s-%s: the hub stops it %d ms "
                "after the heal)" % (run.rel(ts), run.rel(end), tm["heal"]),
                ts, end, healed)
    if kind == "kueue-frozen":
        # The deactivation is written, but the quota is free only when
        # Kueue evicts: at the freeze's end.
        return ("frozen Kueue in the lender (%s-%s: until its end)" % (
            run.rel(ts), run.rel(end)), ts, end, end)
    if kind in S4_REQUEST_FAULTS and f.get("identity") in (None,
                                                          "gpufed-hub"):
        # The stop's write fails or waits. It is retried by the earlier
        # of the member turning healthy (two heartbeat periods) and the
        # key's backoff, which doubles from 5 ms: a key that failed
        # throughout [ts, end) waits at most end - ts + 5 ms more.
        wait = max(tm["heal"], end - ts + WQ_BASE_MS)
        return ("%s on the lender (%s-%s: its end + %d ms)" % (
            kind, run.rel(ts), run.rel(end), wait),
                ts, max(end, ts + 1), end + wait)
    return None


def s4_bound(run, lender, started, stop, base, extra, tm):
    """The latest instant the copy may stop: base (deadline + termination
    + slack), extended by each fault that overlaps the reclaim's window
    [started, min(bound, stop)) to its own bound + extra (termination +
    slack). The window grows with each extension, so a fault during an
    extension counts too; a fault after the copy stopped cannot have
    delayed it. Returns (bound, [rules applied])."""
    bound, applied = base, []
    faults = sorted(run.faults, key=lambda f: f.get("ts_ms", 0))
    used = set()
    changed = True
    while changed:
        changed = False
        for i, f in enumerate(faults):
            if i in used:
                continue
            r = s4_fault_stop(run, f, lender, tm)
            if r is None:
                continue
            rule, lo, hi, latest = r
            if not (lo < min(bound, stop) and hi > started):
                continue
            used.add(i)
            if latest + extra > bound:
                bound = latest + extra
                applied.append(rule)
                changed = True
    return bound, applied


def s4_started(le):
    """(first start, deadline of that first mark, re-marked?): a reclaim
    dropped and marked again (a status overwritten by a later mark) is
    measured from its first Reclaiming transition, whose deadline was at
    most gracePeriod later (the transition's time is cut to the second)."""
    st = le.get("status", {}) or {}
    marked = [parse_time_ms(t.get("time"))
              for t in st.get("transitions", []) or []
              if t.get("phase") == "Reclaiming"]
    marked = [t for t in marked if t is not None]
    started = parse_time_ms(st.get("reclaimStarted"))
    deadline = parse_time_ms(st.get("reclaimDeadline"))
    if started is None:
        return (marked[0] if marked else None), deadline, False
    if marked and started >= marked[0] + LEASE_TIME_RES_MS:
        return marked[0], None, True
    return started, deadline, False


def stop_now(trs, deadline):
    """Whether a deadline is the instant of a mark that resumed a reclaim
    (a Reclaiming after another phase that followed a Reclaiming): the hub
    writes max(the first deadline, now) then, so a first deadline that
    passed while the lender was away becomes "stop now", later than
    reclaimStarted + gracePeriod but granting nothing."""
    seen, after = False, False
    for t in trs:
        ts = parse_time_ms(t.get("time"))
        if t.get("phase") == "Reclaiming":
            if seen and after and ts is not None and \
                    abs(deadline - ts) < LEASE_TIME_RES_MS:
                return True
            seen, after = True, False
        elif seen:
            after = True
    return False


def check_s4(run, rep):
    """Bounded reclaim: for every lease that went Reclaiming, the copy's
    Pods stopped no later than its reclaimDeadline + the Pods'
    termination allowance + one observation (S4_SLACK_MS), extended only
    by the faults that the protocol says delay the stop, each to its own
    bound (s4_fault_stop); the deadline is no later than reclaimStarted
    + gracePeriod. Measured from the first Reclaiming: a reclaim marked
    again is the lender's one wait."""
    tm = s4_timing(run)
    grace = tm["grace"]
    lags, n, why = [], 0, {}
    for le in sorted(run.leases, key=lambda x: x["metadata"]["name"]):
        st = le.get("status", {}) or {}
        trs = st.get("transitions", []) or []
        if not any(t.get("phase") == "Reclaiming" for t in trs) and \
                not st.get("reclaimStarted"):
            continue
        n += 1
        name = le["metadata"]["name"]
        lender = le["spec"]["lender"]["member"]
        started, deadline, remarked = s4_started(le)
        last_deadline = parse_time_ms(st.get("reclaimDeadline"))
        if started is None or last_deadline is None:
            rep.violation("S4", "lease %s went Reclaiming but carries no "
                          "%s: the bound cannot be placed" % (
                              name, "status.reclaimDeadline"
                              if last_deadline is None else
                              "status.reclaimStarted"))
            continue
        ids = {run.lease_job_id(le)}
        last_started = parse_time_ms(st.get("reclaimStarted")) or started
        cap = None if grace is None else \
            last_started + grace + LEASE_TIME_RES_MS
        if cap is not None and last_deadline > cap and \
                stop_now(trs, last_deadline):
            # A resumed mark whose first deadline passed while the lender
            # was Suspect: "stop now", no time granted. The stop is held
            # to the first mark's deadline: at most gracePeriod after
            # reclaimStarted (written to the millisecond).
            if deadline is not None:
                deadline = min(deadline, last_started + grace)
        elif cap is not None and last_deadline > cap:
            rep.violation("S4", "lease %s (lender %s): reclaimDeadline %s is "
                          "%d ms after reclaimStarted %s; gracePeriod is %d "
                          "ms" % (name, lender, run.rel(last_deadline),
                                  last_deadline - last_started,
                                  run.rel(last_started), grace),
                          run.trace(ids, last_started, last_deadline))
        if deadline is None:
            # Marked again: the first mark's deadline is not kept; it was
            # at most gracePeriod after the first Reclaiming.
            deadline = started + LEASE_TIME_RES_MS + (grace or 0)
        term_ms = termination_s(run, le) * 1000
        extra = term_ms + S4_SLACK_MS
        # An earlier run of the copy, done before, does not count.
        pods = [p for p in copy_pods(run, le) if p["stop"] > started]
        latest = max([min(p["stop"], run.end_ms) for p in pods] or [started])
        bound, applied = s4_bound(run, lender, started, latest,
                                  deadline + extra, extra, tm)
        last = None
        for p in pods:
            stop = p["stop"] if p["stop"] != INF else None
            if stop is None and run.end_ms <= bound:
                continue  # the run ended before the bound: not decided
            if stop is None or stop > bound:
                rep.violation(
                    "S4", "lease %s (lender %s): copy pod %s/%s %s, "
                    "reclaim started %s%s, deadline %s + termination %d ms "
                    "+ slack %d ms%s = %s (%s ms late)" % (
                        name, lender, p["cluster"], p["job"],
                        "still running at the end" if stop is None else
                        "stopped at %s" % run.rel(stop),
                        run.rel(started),
                        " (marked again at %s)" % run.rel(last_started)
                        if remarked else "",
                        run.rel(deadline), term_ms, S4_SLACK_MS,
                        ", extended by " + "; ".join(applied)
                        if applied else ", no fault extends it",
                        run.rel(bound),
                        "%d" % ((stop if stop is not None else run.end_ms)
                                - bound)),
                    run.trace(ids, started, stop if stop else run.end_ms))
            if stop is not None and (last is None or stop > last):
                last = stop
        # Name only the extensions this stop needed.
        if last is None or last <= deadline + extra:
            applied = []
        if last is not None:
            lags.append(last - started)
            if applied or remarked:
                rep.note("S4 %s: copy stopped %d ms after the reclaim "
                         "started (deadline + %d ms)%s%s" % (
                             name, last - started, last - deadline,
                             "; marked again" if remarked else "",
                             "; extended by " + "; ".join(applied)
                             if applied else ""))
            for r in applied:
                k = r.split(" (")[0]
                why[k] = why.get(k, 0) + 1
    if n == 0:
        rep.note("S4 bounded reclaim: vacuous (no lease was reclaimed)")
        return
    lags.sort()
    rep.note("S4 bounded reclaim: %d lease(s) went Reclaiming; copy stopped "
             "after the reclaim started: %s; bounds extended: %s" % (
                 n, "n=%d median %d ms max %d ms" % (
                     len(lags), lags[len(lags) // 2], lags[-1])
                 if lags else "no copy was running",
                 ", ".join("%s x%d" % kv for kv in sorted(why.items()))
                 or "none"))


# --- L1, L2 -----------------------------------------------------------------

def parse_quota_metrics(text):
    """{(member, cq, flavor, kind): value} for nvidia.com/gpu, from the
    hub's gpufed_quota gauge."""
    out = {}
    rx = re.compile(r'^gpufed_quota\{member="([^"]*)",cluster_queue="([^"]*)"'
                    r',flavor="([^"]*)",resource="([^"]*)",kind="([^"]*)"\} '
                    r'(\S+)$')
    for line in text.splitlines():
        m = rx.match(line)
        if m and m.group(4) == GPU:
            out[(m.group(1), m.group(2), m.group(3), m.group(5))] = \
                int(float(m.group(6)))
    return out


def managed_by_gpufed(cq):
    labels = cq.get("metadata", {}).get("labels") or {}
    return labels.get(MANAGED_BY) == "gpufed"


def observed_usage(cqs_by_member, members):
    """{(member, cq, flavor): GPUs in use} from the ClusterQueues'
    status.flavorsUsage, and {member: GPUs in use} in gpufed's overflow
    queues (labelled app.kubernetes.io/managed-by=gpufed)."""
    out, overflow = {}, {}
    for m in members:
        for cq in cqs_by_member.get(m, []):
            for fu in cq.get("status", {}).get("flavorsUsage", []) or []:
                for r in fu.get("resources", []) or []:
                    if r.get("name") != GPU:
                        continue
                    n = gpus_of(r.get("total", 0))
                    if managed_by_gpufed(cq):
                        overflow[m] = overflow.get(m, 0) + n
                    else:
                        out[(m, cq["metadata"]["name"], fu.get("name"))] = n
    return out, overflow


def ledger_diffs(metrics_text, cqs_by_member, members, cqs_before=None):
    """Where the hub's ledger and the ClusterQueues disagree.

    A member's own queues: the ledger's used (admitted + reserved) must
    equal Kueue's usage. gpufed's overflow queues: the ledger leaves the
    copies' Workloads out of them on purpose (a copy is counted once, as
    quota lent by the lender's queue through its lease), so what the
    copies hold there must not exceed what the ledger counts as lent by
    that member (a lease counts from the moment it is recorded, before its
    copy is admitted, so lent may be larger)."""
    q = parse_quota_metrics(metrics_text)
    obs, overflow = observed_usage(cqs_by_member, members)
    # While Jobs run, the ClusterQueues change between the reads: with a
    # read before /metrics too, a ledger value between the two reads is
    # what the ClusterQueue showed at some instant in between.
    obs0, overflow0 = obs, overflow
    if cqs_before is not None:
        obs0, overflow0 = observed_usage(cqs_before, members)
    led = {k[:3]: v for k, v in q.items() if k[3] == "used"}
    lent = {}
    for k, v in q.items():
        if k[3] == "lent":
            lent[k[0]] = lent.get(k[0], 0) + v
    diffs = []
    for k in sorted(set(led) & set(obs)):
        lo, hi = sorted((obs0.get(k, obs[k]), obs[k]))
        if not lo <= led[k] <= hi:
            diffs.append("%s/%s/%s ledger used %d, ClusterQueue %s" % (
                k[0], k[1], k[2], led[k],
                obs[k] if lo == hi else "%d then %d" % (
                    obs0.get(k, obs[k]), obs[k])))
    names = {k[1] for k in led}
    for k in sorted(set(obs) - set(led)):
        if k[1] in names and obs[k] != 0:
            diffs.append("%s/%s/%s missing from the ledger (ClusterQueue "
                         "%d)" % (k[0], k[1], k[2], obs[k]))
    for m in sorted(overflow):
        held_ = min(overflow[m], overflow0.get(m, overflow[m]))
        if held_ > lent.get(m, 0):
            diffs.append("%s: copies hold %d GPUs in gpufed's overflow "
                         "queues, the ledger counts %d lent" % (
                             m, held_, lent.get(m, 0)))
    return diffs


def check_l2(run, rep):
    if run.metrics is None:
        rep.violation("L2", "no /metrics snapshot after the heal")
        return
    conv = run.world.get("converged_ms")
    t = run.world["timing"]
    # Two heartbeat periods (D/3 each), plus the driver's poll interval.
    bound = 2 * t["lease_duration_ms"] // 3 + t.get("poll_ms", 1000)
    diffs = ledger_diffs(run.metrics, run.cqs, run.members)
    if diffs:
        rep.violation("L2", "the ledger does not match the ClusterQueues "
                      "at the end of the run (two heartbeat periods after "
                      "every Job finished): " + "; ".join(diffs))
    if conv is None:
        rep.violation("L2", "the ledger never matched the ClusterQueues "
                      "after the final heal (see heal/ledger-diffs.log)")
    elif conv > bound:
        rep.violation("L2", "the ledger matched the ClusterQueues %d ms "
                      "after the final heal; the bound is two heartbeat "
                      "periods + the poll interval = %d ms (see "
                      "heal/ledger-diffs.log)" % (conv, bound))
    else:
        rep.note("L2 convergence: ledger matched the ClusterQueues %d ms "
                 "after the heal (bound %d ms)" % (conv, bound))


def fault_windows(run, heal_ms):
    """Per member (and '*' for the hub): [lo, hi) where the hub could not
    see it or act on it, extended by heal_ms for resync."""
    w = {}
    for f in run.faults:
        kind = f.get("kind")
        ts = f.get("ts_ms", 0)
        if kind == "hub-kill":
            hi = f.get("restart_ts_ms") or ts + f.get("for_ms", 0)
            w.setdefault("*", []).append((ts, hi + heal_ms))
        elif kind == "clock-drift" and f.get("process", "").startswith("hub"):
            # The replica was stopped and started again with the new rate:
            # as a hub-kill for as long as that took (the leader takes its
            # Lease back at once under the same id).
            hi = f.get("restart_ts_ms") or ts
            w.setdefault("*", []).append((ts, hi + heal_ms))
        elif kind in HUB_FAULTS:
            dur = f.get("for_ms") or 1000
            w.setdefault(f.get("member"), []).append((ts, ts + dur + heal_ms))
    return w


def touched(windows, member, lo, hi):
    for key in (member, "*"):
        for a, b in windows.get(key, []):
            if a < hi and lo < b:
                return True
    return False


def check_l1(run, rep):
    """Idle quota used within one decision period after overflowAfter, in
    the simple form docs/chaos.md states (an approximation)."""
    t = run.world["timing"]
    ov, period, slack = t["overflow_after_ms"], t["period_ms"], t["slack_ms"]
    win = fault_windows(run, t.get("heal_ms", 2 * period))
    first_start = {}
    for p in run.pods:
        if p["id"] not in first_start or p["start"] < first_start[p["id"]]:
            first_start[p["id"]] = p["start"]
    # A loan granted to a job ends its wait for gpufed: the grant is
    # quota in its home cohort, and which of the cohort's Workloads Kueue
    # admits on it first is Kueue's order (it may admit others ahead).
    for le in run.leases:
        if le.get("spec", {}).get("mode") != "Loan":
            continue
        jid = run.lease_job_id(le)
        for tr in le.get("status", {}).get("transitions", []) or []:
            ts = parse_time_ms(tr.get("time"))
            if tr.get("phase") == "Active" and ts is not None:
                first_start[jid] = min(first_start.get(jid, INF), ts)
    waits = []
    for s in run.submits:
        end = first_start.get(s["id"], run.end_ms)
        waits.append((s, s["ts_ms"], end))
    for s, lo, end in waits:
        if end <= lo + ov + period + slack:
            continue
        for lender in run.members:
            if lender == s["member"]:
                continue
            found = idle_window(run, win, waits, s, lender, lo + ov, end,
                                period + slack)
            if found is not None:
                a, b, idle = found
                rep.violation(
                    "L1", "job %s (%d GPUs, %s) waited %s..%s while "
                    "%s had %d idle GPUs from %s to %s" % (
                        s["id"], s["gpus"], s["member"], run.rel(lo),
                        run.rel(end), lender, idle, run.rel(a), run.rel(b)),
                    run.trace({s["id"]}, lo, end))
                break
    rep.note("L1 liveness (approximate): a wait ends at the job's first "
             "Pod or its loan's grant; idle = cohort nominal minus running "
             "GPUs from the execution log and loans' holds in the lender; "
             "admitted-but-not-started copies "
             "and the lender's policy reserves are not modelled; windows "
             "with a fault on the origin, the lender or the hub (plus "
             "heal time) are skipped")


def idle_window(run, win, waits, s, lender, lo, end, span):
    """A stretch [a, a + span) inside [lo, end) where lender had s's GPUs
    idle, no job of its own waiting, and neither it, the origin nor the
    hub had a fault; (a, b, idle) or None. Candidate starts are lo and
    every instant a Pod stopped in lender."""
    lw = run.world["member"][lender]
    limit = min(lw["capacity"], lw["cohort_nominal"])
    holds = loan_windows(run, "lender")
    pts = sorted({lo} | {p["stop"] for p in run.pods
                         if p["cluster"] == lender and lo < p["stop"] < end})
    for a in pts:
        b = a + span
        if b > end:
            break
        if touched(win, lender, a, b) or touched(win, s["member"], a, b):
            continue
        idle = limit - max_running(run, lender, a, b) - \
            held(holds.get(lender, []), a, b)
        own_wait = any(o["member"] == lender and ol < b and a < oe
                       for o, ol, oe in waits)
        if idle >= s["gpus"] and not own_wait:
            return a, b, idle
    return None


def held(windows, a, b):
    """The GPUs of the loans' holds in force at some instant of [a, b):
    a hold reserves the lender's quota with no Pod, so it is not idle."""
    return sum(g for lo, hi, g in windows if lo < b and a < hi)


def max_running(run, member, a, b):
    """The most GPUs running in member at any instant of [a, b)."""
    ev = []
    for p in run.pods:
        if p["cluster"] != member or p["stop"] <= a or p["start"] >= b:
            continue
        ev.append((max(p["start"], a), 1, p["gpus"]))
        if p["stop"] < b:
            ev.append((p["stop"], 0, p["gpus"]))
    ev.sort(key=lambda e: (e[0], e[1]))
    used = top = 0
    for _, is_start, g in ev:
        used += g if is_start else -g
        top = max(top, used)
    return top


# --- figures ----------------------------------------------------------------

def agent_fences(run, member):
    """The instants (epoch ms) the member's agent logged a fence."""
    out = []
    try:
        with open(os.path.join(run.dir, "agent-%s.log" % member)) as f:
            for line in f:
                if " msg=fencing " not in line:
                    continue
                m = re.match(r"^ts=(\S+) ", line)
                t = parse_time_ms(m.group(1)) if m else None
                if t is not None:
                    out.append(t)
    except OSError:
        pass
    return out


def agent_fence_lags(run):
    """For each cut of the hub from a member (blackhole for gpufed-hub)
    longer than D, from the cut to the member's agent's first fence in it
    (up to D after its end): what a partition costs before the copies
    stop. The heartbeat's last renewal came up to D/3 before the cut."""
    d_ms = run.world.get("timing", {}).get("lease_duration_ms", 3000)
    lags = []
    for f in run.faults:
        if f.get("kind") != "blackhole" or f.get("identity") != "gpufed-hub" \
                or f.get("for_ms", 0) <= d_ms:
            continue
        start = f["ts_ms"]
        end = start + f["for_ms"] + d_ms
        hits = [t for t in agent_fences(run, f["member"])
                if start <= t <= end]
        if hits:
            lags.append(min(hits) - start)
    return lags


def figures(run):
    out = []
    out.append("jobs submitted: %d, finished exactly once: %d" % (
        len(run.submits), getattr(run, "exactly_once", 0)))
    kinds = {}
    for f in run.faults:
        kinds[f.get("kind")] = kinds.get(f.get("kind"), 0) + 1
    out.append("faults injected: %d (%s)" % (
        len(run.faults), ", ".join("%s=%d" % kv for kv in sorted(
            kinds.items())) or "none"))
    # Clock rates: the last one each process was started with.
    rates = {}
    for f in run.faults:
        if f.get("kind") == "clock-drift" and f.get("process"):
            who = f["process"]
            if who == "agent":
                who += "/" + f.get("member", "?")
            rates[who] = "%+d ppm%s" % (
                f.get("ppm", 0), " (beyond rho)" if f.get("beyond_rho")
                else "")
    if rates:
        out.append("clock rates at the end: " + ", ".join(
            "%s %s" % kv for kv in sorted(rates.items())))
    # GPU-seconds held by Suspect leases, from the transition history.
    held = 0.0
    for le in run.leases:
        tr = le.get("status", {}).get("transitions", []) or []
        g = le["spec"].get("gpus", 0)
        for i, t in enumerate(tr):
            if t.get("phase") != "Suspect":
                continue
            a = parse_time_ms(t.get("time"))
            b = parse_time_ms(tr[i + 1].get("time")) if i + 1 < len(tr) \
                else run.end_ms
            if a is not None and b is not None and b > a:
                held += g * (b - a) / 1000.0
    out.append("GPU-seconds held by Suspect leases: %.1f" % held)
    # Re-dispatch after a partition: from the end of each hub<->member
    # blackhole to the next lease recorded with that member as lender.
    created = sorted((parse_time_ms(le["metadata"].get("creationTimestamp")),
                      le["spec"]["lender"]["member"]) for le in run.leases)
    lags = []
    for f in run.faults:
        if f.get("kind") != "blackhole" or f.get("identity") != "gpufed-hub":
            continue
        heal = f["ts_ms"] + f.get("for_ms", 0)
        nxt = [c for c, m in created if c is not None and m == f["member"]
               and c >= heal]
        if nxt:
            lags.append(nxt[0] - heal)
    # Re-dispatch after a partition: from a lease's Fenced transition to
    # the next epoch's lease of the same origin.
    redis = []
    by_origin = {}
    for le in run.leases:
        o = le["spec"]["origin"]
        by_origin.setdefault((o["member"], o["name"]), []).append(le)
    for les in by_origin.values():
        for le in les:
            for t in le.get("status", {}).get("transitions", []) or []:
                if t.get("phase") != "Fenced":
                    continue
                a = parse_time_ms(t.get("time"))
                nxt = [parse_time_ms(x["metadata"].get("creationTimestamp"))
                       for x in les
                       if x["spec"]["epoch"] > le["spec"]["epoch"]]
                nxt = [x for x in nxt if x is not None and a is not None]
                if nxt:
                    redis.append(min(nxt) - a)
    if redis:
        redis.sort()
        out.append("re-dispatch after fencing (Fenced -> next epoch's "
                   "lease): n=%d median %d ms max %d ms" % (
                       len(redis), redis[len(redis) // 2], redis[-1]))
    else:
        out.append("re-dispatch after fencing: none (no lease was fenced%s)"
                   % ("" if run.world.get("agents") else
                      "; fencing: none without agents"))
    if lags:
        lags.sort()
        out.append("first lease to a member after its partition healed "
                   "(depends on demand): n=%d median %d ms max %d ms "
                   "(lease times have 1 s resolution)" % (
                       len(lags), lags[len(lags) // 2], lags[-1]))
    fences = agent_fence_lags(run)
    if fences:
        fences.sort()
        out.append("time to fence (a hub<->member cut longer than D to its "
                   "agent's first fence): n=%d median %d ms max %d ms" % (
                       len(fences), fences[len(fences) // 2], fences[-1]))
    else:
        out.append("time to fence: no hub<->member cut longer than D with "
                   "an agent")
    conv = run.world.get("converged_ms")
    out.append("ledger convergence after the final heal: %s" % (
        "%d ms" % conv if conv is not None else "not reached"))
    return out


def check(d, only=None):
    run = Run(d)
    rep = Report()
    checks = [("S1", check_s1), ("S2", check_s2), ("S3", check_s3),
              ("S4", check_s4), ("L1", check_l1), ("L2", check_l2)]
    for name, fn in checks:
        if only and name not in only:
            continue
        fn(run, rep)
    return run, rep


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd")
    c = sub.add_parser("run", help="check a run directory")
    c.add_argument("dir")
    c.add_argument("--only", default="", help="S1,S2,... (default: all)")
    c.add_argument("--enforce", default="",
                   help="S1,S2,...: only these fail the run; the others "
                   "are checked and printed as not enforced (default: all)")
    lg = sub.add_parser("ledger", help="exit 0 when /metrics matches the "
                        "ClusterQueues")
    lg.add_argument("--metrics", required=True)
    lg.add_argument("--cq", action="append", default=[],
                    metavar="MEMBER=FILE")
    lg.add_argument("--cq-before", action="append", default=[],
                    metavar="MEMBER=FILE",
                    help="the ClusterQueues read before /metrics")
    dn = sub.add_parser("done", help="exit 0 when every submitted job has "
                        "succeeded once in the execution log; prints how "
                        "many have")
    dn.add_argument("dir")
    a = ap.parse_args(argv)
    if a.cmd == "done":
        subs = read_lines(os.path.join(a.dir, "submits.jsonl"))
        ok = set()
        for e in read_lines(os.path.join(a.dir, "exec.log")):
            if e.get("event") == "stop" and e.get("reason") == "Succeeded":
                ok.add((e.get("labels") or {}).get(JOB_LABEL))
        n = sum(1 for s in subs if s["id"] in ok)
        print("%d/%d" % (n, len(subs)))
        return 0 if n == len(subs) else 1
    if a.cmd == "ledger":
        cqs = {}
        for spec in a.cq:
            m, _, f = spec.partition("=")
            cqs[m] = read_json(f)["items"]
        before = None
        for spec in a.cq_before:
            m, _, f = spec.partition("=")
            before = before or {}
            before[m] = read_json(f)["items"]
        with open(a.metrics, encoding="utf-8") as f:
            diffs = ledger_diffs(f.read(), cqs, list(cqs), before)
        for x in diffs:
            print(x)
        return 1 if diffs else 0
    if a.cmd != "run":
        ap.print_help()
        return 2
    only = {x for x in a.only.split(",") if x}
    enforce = {x for x in a.enforce.split(",") if x}
    run, rep = check(a.dir, only)
    failing = [v for v in rep.violations if not enforce or v[0] in enforce]
    for inv, msg, tr in rep.violations:
        if enforce and inv not in enforce:
            print("VIOLATION (not enforced in this run) %s: %s" % (inv, msg))
        else:
            print("VIOLATION %s: %s" % (inv, msg))
        if tr:
            print("  trace:")
            for line in tr[:40]:
                print(line)
            if len(tr) > 40:
                print("    ... %d more lines" % (len(tr) - 40))
    for n in rep.notes:
        print("note: " + n)
    for f in figures(run):
        print("figure: " + f)
    bad = sorted({v[0] for v in failing})
    loose = sorted({v[0] for v in rep.violations} - set(bad))
    if enforce:
        print("checker: enforcing %s" % ",".join(sorted(enforce)))
    print("checker: %s%s" % (
        "FAIL (" + ", ".join(bad) + ")" if bad else "enforced invariants hold",
        "; violated but not enforced: " + ", ".join(loose) if loose else ""))
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
