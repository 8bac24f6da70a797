#!/usr/bin/env python3
"""The numbers behind `make demo` (e2e/demo.sh).

demo.sh drives the clusters with kubesim and kubectl; this file does the
arithmetic it would be unwise to do in bash:

  trace    the seeded, skewed stream of GPU Jobs (one line per Job), so
           that the run with gpufed and the run without it submit exactly
           the same work at the same offsets;
  frame    one live frame: each member's GPU quota from its ClusterQueues'
           status, the QuotaLeases, the hub's latest decisions with their
           reasons, and progress from the execution log;
  summary  per run, where every Job ran and its queue wait, and the checks
           the demo's exit status rests on: every Job finished exactly
           once and no Job ran in two places at overlapping times.

Every input is JSON (kubectl -o json, kubesim's execution log) or the
hub's logfmt lines; the standard library parses them.
"""

import argparse
import json
import random
import shlex
import sys

JOB_LABEL = "demo.gpufed.io/job"
MANAGED_BY = "app.kubernetes.io/managed-by"
GPU = "nvidia.com/gpu"


# --- quantities -----------------------------------------------------------

def quantity(s):
    """A Kubernetes quantity as a float (only what the demo's GPU and CPU
    counts use: plain numbers and milli-units)."""
    if isinstance(s, (int, float)):
        return float(s)
    s = str(s)
    if s.endswith("m"):
        return float(s[:-1]) / 1000.0
    return float(s)


def percentile(xs, p):
    """Nearest-rank percentile of a non-empty list."""
    ys = sorted(xs)
    k = max(0, min(len(ys) - 1, int(round(p / 100.0 * len(ys) + 0.5)) - 1))
    return ys[k]


# --- trace ----------------------------------------------------------------

def cmd_trace(a):
    """Jobs as `offset_ms member team gpus duration_s id`, sorted by
    offset. Most go to the first member, whose queues overflow; the others
    get a trickle of their own, so they have idle quota to lend."""
    rng = random.Random(a.seed)
    members = a.members.split(",")
    teams = a.teams.split(",")
    lines = []
    for i in range(a.jobs):
        off = int(rng.uniform(0, a.window) * 1000)
        member = members[0] if rng.random() < a.skew else rng.choice(
            members[1:])
        team = rng.choice(teams)
        gpus = rng.choice([1, 2, 2, 4, 4, 8])
        dur = rng.randrange(a.min_duration, a.max_duration + 1, 10)
        lines.append((off, member, team, gpus, dur))
    lines.sort()
    for n, (off, member, team, gpus, dur) in enumerate(lines, 1):
        print("%d %s %s %d %d j%03d" % (off, member, team, gpus, dur, n))


def read_trace(path):
    jobs = {}
    with open(path) as f:
        for line in f:
            off, member, team, gpus, dur, jid = line.split()
            jobs[jid] = {"member": member, "team": team, "gpus": int(gpus),
                         "duration": int(dur)}
    return jobs


def read_submits(path):
    """`id submit_ms` lines written by the submitter."""
    out = {}
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2:
                    out[parts[0]] = int(parts[1])
    except FileNotFoundError:
        pass
    return out


# --- the execution log ----------------------------------------------------

def read_exec(path):
    """The execution log's events of the demo's Jobs, in order. A line
    being written when the log is read is skipped (kubesim writes each
    line with one write(2), so only the last can be partial)."""
    evs = []
    try:
        with open(path) as f:
            for line in f:
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                jid = (e.get("labels") or {}).get(JOB_LABEL)
                if jid:
                    e["id"] = jid
                    evs.append(e)
    except FileNotFoundError:
        pass
    return evs


def runs_of(evs):
    """Per Job id, its Pods' runs: [cluster, start_ms, stop_ms or None,
    stop reason or None]."""
    open_runs = {}
    runs = {}
    for e in evs:
        key = (e["cluster"], e["namespace"], e["pod"])
        if e["event"] == "start":
            r = [e["cluster"], e["ts_ms"], None, None, e.get("gpus", 0)]
            open_runs[key] = r
            runs.setdefault(e["id"], []).append(r)
        else:
            r = open_runs.pop(key, None)
            if r is not None:
                r[2] = e["ts_ms"]
                r[3] = e["reason"]
    return runs


def progress(jobs, submits, runs):
    done = running = 0
    for jid in submits:
        rs = runs.get(jid, [])
        if any(r[3] == "Succeeded" for r in rs):
            done += 1
        elif any(r[2] is None for r in rs):
            running += 1
    return done, running, len(submits) - done - running


# --- frame ----------------------------------------------------------------

def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        return None


def cq_figures(doc):
    """(nominal, used, lent, pending) GPUs of one member from its
    ClusterQueues: nominal and pending of the teams' own queues; used over
    every queue (flavorsUsage); lent is what gpufed's own overflow queues
    use, i.e. copies of other members' Jobs running on idle quota here."""
    nominal = used = lent = pending = 0.0
    for cq in (doc or {}).get("items", []):
        mine = (cq["metadata"].get("labels") or {}).get(MANAGED_BY) == "gpufed"
        st = cq.get("status") or {}
        u = 0.0
        for fl in st.get("flavorsUsage") or []:
            for r in fl.get("resources") or []:
                if r.get("name") == GPU:
                    u += quantity(r.get("total", 0))
        used += u
        if mine:
            lent += u
            continue
        pending += st.get("pendingWorkloads", 0)
        for rg in cq["spec"].get("resourceGroups") or []:
            for fl in rg.get("flavors") or []:
                for r in fl.get("resources") or []:
                    if r.get("name") == GPU:
                        nominal += quantity(r.get("nominalQuota", 0))
    return nominal, used, lent, pending


def logfmt(line):
    """One logfmt line as a dict; values may be quoted with escapes."""
    out = {}
    try:
        toks = shlex.split(line)
    except ValueError:
        return out
    for t in toks:
        k, sep, v = t.partition("=")
        if sep:
            out[k] = v
    return out


def hub_decisions(path, n):
    """The hub's decisions, as its log states them: every redirect with
    its reason, and every lease that ends other than by its copy
    finishing (preempted, withdrawn, refused...), with the rule that
    moved it. Returns (redirects, the last n as display lines)."""
    lines = []
    redirects = 0
    try:
        with open(path, errors="replace") as f:
            for line in f:
                if 'msg="redirect decided"' in line:
                    d = logfmt(line)
                    redirects += 1
                    lines.append("%s redirect %s -> %s/%s, %s GPUs: %s" % (
                        d.get("ts", "")[11:19], d.get("origin", ""),
                        d.get("lender", ""), d.get("cq", ""),
                        d.get("gpus", ""), d.get("why", "")))
                elif 'msg="lease phase"' in line:
                    d = logfmt(line)
                    if d.get("phase") in ("Active", "Released"):
                        continue
                    lines.append("%s lease %s %s %s: %s" % (
                        d.get("ts", "")[11:19], d.get("key", ""),
                        d.get("phase", ""), d.get("reason", ""),
                        d.get("rule", "")))
    except FileNotFoundError:
        pass
    return redirects, lines[-n:]


LIVE = ("Pending", "Active", "Releasing", "Reclaiming", "Suspect")


def age(now_ms, ts):
    """Seconds since an RFC 3339 timestamp, as kubectl prints ages."""
    import datetime
    try:
        t = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ")
    except (TypeError, ValueError):
        return "?"
    t = t.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000
    s = max(0, int((now_ms - t) / 1000))
    return "%ds" % s if s < 120 else "%dm%ds" % (s // 60, s % 60)


def cmd_frame(a):
    jobs = read_trace(a.trace)
    submits = read_submits(a.submits)
    runs = runs_of(read_exec(a.exec_log))
    done, running, waiting = progress(jobs, submits, runs)
    el = (a.now_ms - a.t0_ms) / 1000.0
    bold = ("\033[1m", "\033[0m") if a.tty else ("", "")
    out = []
    out.append("%sgpufed demo: %s%s   %5.1fs (simulated %dm%02ds)" % (
        bold[0], a.title, bold[1], el, int(el * a.scale) // 60,
        int(el * a.scale) % 60))
    out.append("jobs: %d/%d submitted, %d waiting, %d running, %d done" % (
        len(submits), len(jobs), waiting, running, done))
    out.append("")

    leases = (load_json(a.leases) or {}).get("items", [])
    borrowed = {}
    for ql in leases:
        ph = (ql.get("status") or {}).get("phase", "")
        if ph in ("Pending", "Active", "Suspect"):
            o = ql["spec"]["origin"]["member"]
            borrowed[o] = borrowed.get(o, 0) + ql["spec"].get("gpus", 0)

    out.append("%-8s %8s %6s %6s %9s %9s   (nvidia.com/gpu)" % (
        "MEMBER", "NOMINAL", "USED", "LENT", "BORROWED", "WAITING"))
    for spec in a.member:
        name, path = spec.split("=", 1)
        doc = load_json(path)
        if doc is None:
            out.append("%-8s %s" % (name, "(no answer)"))
            continue
        nominal, used, lent, pending = cq_figures(doc)
        bar_n = int(nominal)
        bar_u = min(bar_n, int(used - lent))
        bar = "#" * bar_u + "+" * int(lent) + "." * max(
            0, bar_n - bar_u - int(lent))
        out.append("%-8s %8d %6d %6d %9d %9d   %s" % (
            name, nominal, used, lent, borrowed.get(name, 0), pending, bar))
    out.append("%-8s %s" % ("", "# own jobs  + lent to another member  . idle"))
    out.append("")

    if a.hub_log:
        phases = {}
        for ql in leases:
            ph = (ql.get("status") or {}).get("phase", "?")
            phases[ph] = phases.get(ph, 0) + 1
        out.append("leases (kubectl get ql -A): %d %s" % (
            len(leases), " ".join("%s=%d" % kv for kv in sorted(
                phases.items()))))
        # The last rows: every live lease, after the most recently
        # created of those that have ended.
        leases.sort(key=lambda q: (
            (q.get("status") or {}).get("phase") in LIVE,
            q["metadata"].get("creationTimestamp", "")))
        shown = leases[-a.rows:]
        if shown:
            out.append("  %-34s %-9s %-10s %-6s %-18s %-6s %4s %6s" % (
                "NAME", "PHASE", "REASON", "ORIGIN", "JOB", "LENDER", "GPUS",
                "AGE"))
        for ql in shown:
            sp = ql["spec"]
            st = ql.get("status") or {}
            out.append("  %-34s %-9s %-10s %-6s %-18s %-6s %4d %6s" % (
                ql["metadata"]["name"][:34], st.get("phase", ""),
                st.get("reason", "")[:10], sp["origin"]["member"],
                (sp["origin"].get("jobName") or sp["origin"]["name"])[:18],
                sp["lender"]["member"], sp.get("gpus", 0),
                age(a.now_ms, ql["metadata"].get("creationTimestamp"))))
        out.append("")
        total, last = hub_decisions(a.hub_log, a.rows)
        out.append("decisions (the hub's log): %d redirects" % total)
        out.extend("  " + x for x in last)
    else:
        out.append("no gpufed in this run: each member's Kueue on its own")
    print("\n".join(out))


# --- summary --------------------------------------------------------------

class Run:
    def __init__(self, label, trace, submits, exec_log, scale):
        self.label = label
        self.jobs = read_trace(trace)
        self.submits = read_submits(submits)
        self.runs = runs_of(read_exec(exec_log))
        self.scale = scale
        self.errors = []
        self.where = {}
        self.waits = []
        self.check()

    def check(self):
        for jid, job in sorted(self.jobs.items()):
            if jid not in self.submits:
                self.errors.append("%s was never submitted" % jid)
                continue
            rs = sorted(self.runs.get(jid, []), key=lambda r: r[1])
            ok = [r for r in rs if r[3] == "Succeeded"]
            if len(ok) != 1:
                self.errors.append("%s finished %d times" % (jid, len(ok)))
            for r in rs:
                if r[2] is None:
                    self.errors.append("%s still running in %s" % (jid, r[0]))
            for prev, nxt in zip(rs, rs[1:]):
                if prev[2] is None or nxt[1] < prev[2]:
                    self.errors.append(
                        "%s ran in %s and %s at overlapping times" % (
                            jid, prev[0], nxt[0]))
            if ok:
                self.where[jid] = ok[0][0]
            if rs:
                self.waits.append(
                    (rs[0][1] - self.submits[jid]) / 1000.0 * self.scale)

    def finished_once(self):
        return sum(1 for jid in self.jobs
                   if len([r for r in self.runs.get(jid, [])
                           if r[3] == "Succeeded"]) == 1)

    def redirected(self):
        return sum(1 for jid, c in self.where.items()
                   if c != self.jobs[jid]["member"])

    def span(self):
        """First submit to last finish, in simulated seconds."""
        ends = [r[2] for rs in self.runs.values() for r in rs if r[2]]
        if not ends or not self.submits:
            return 0.0
        return (max(ends) - min(self.submits.values())) / 1000.0 * self.scale

    def idle_while_waiting(self, capacity):
        """GPU-seconds (simulated) of nominal quota left idle while at
        least one Job waited: a sweep over submits, starts and stops."""
        evs = []
        for jid, t in self.submits.items():
            evs.append((t, 0, +1, 0))
        for jid, rs in self.runs.items():
            for n, r in enumerate(sorted(rs, key=lambda r: r[1])):
                # The first start ends the wait; a restart after an
                # eviction waits again from the stop.
                evs.append((r[1], 1, -1, r[4]))
                if r[2] is not None:
                    evs.append((r[2], 2, +1 if r[3] != "Succeeded" else 0,
                                -r[4]))
        evs.sort()
        waiting = used = 0
        idle = 0.0
        last = None
        for t, _, dw, du in evs:
            if last is not None and waiting > 0:
                idle += max(0, capacity - used) * (t - last) / 1000.0
            waiting += dw
            used += du
            last = t
        return idle * self.scale

    def line(self, width):
        return "%-*s %3d/%-3d %9d %7.0f %7.0f %7.0f %9.0f" % (
            width, self.label, self.finished_once(), len(self.jobs),
            self.redirected(), sum(self.waits) / max(1, len(self.waits)),
            percentile(self.waits, 50) if self.waits else 0,
            percentile(self.waits, 95) if self.waits else 0,
            self.span())


def cmd_summary(a):
    runs = []
    for spec in a.run:
        label, submits, exec_log = spec.split("|")
        runs.append(Run(label, a.trace, submits, exec_log, a.scale))
    members = a.members.split(",")
    out = ["", "== summary (times in simulated seconds, x%g real)" % a.scale,
           ""]
    w = max(len(r.label) for r in runs)
    out.append("%-*s %7s %9s %7s %7s %7s %9s" % (
        w, "", "done", "elsewhere", "wait", "p50", "p95", "makespan"))
    for r in runs:
        out.append(r.line(w))
    out.append("")
    for r in runs:
        out.append("%s: where the Jobs ran (rows: submitted to, columns: "
                   "ran in)" % r.label)
        out.append("  %-8s" % "" + "".join("%8s" % m for m in members))
        for src in members:
            row = "  %-8s" % src
            for dst in members:
                row += "%8d" % sum(
                    1 for jid, c in r.where.items()
                    if c == dst and r.jobs[jid]["member"] == src)
            out.append(row)
        out.append("  idle GPU-seconds while a Job waited: %.0f"
                   % r.idle_while_waiting(a.capacity))
        out.append("")
    ok = True
    for r in runs:
        if r.errors:
            ok = False
            out.append("%s: FAILED checks:" % r.label)
            out.extend("  " + e for e in r.errors[:20])
        else:
            out.append("%s: %d/%d jobs finished exactly once, %d ran in "
                       "another member; no Job ran twice at overlapping "
                       "times" % (r.label, r.finished_once(), len(r.jobs),
                                  r.redirected()))
    print("\n".join(out))
    return 0 if ok else 1


def cmd_done(a):
    """Exit 0 when every Job of the trace has finished once."""
    jobs = read_trace(a.trace)
    runs = runs_of(read_exec(a.exec_log))
    done = sum(1 for jid in jobs
               if any(r[3] == "Succeeded" for r in runs.get(jid, [])))
    return 0 if done == len(jobs) else 1


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    t = sub.add_parser("trace")
    t.add_argument("--seed", type=int, required=True)
    t.add_argument("--jobs", type=int, required=True)
    t.add_argument("--window", type=float, required=True,
                   help="submission window, real seconds")
    t.add_argument("--members", required=True)
    t.add_argument("--teams", required=True)
    t.add_argument("--skew", type=float, default=0.8)
    t.add_argument("--min-duration", type=int, required=True)
    t.add_argument("--max-duration", type=int, required=True)

    f = sub.add_parser("frame")
    f.add_argument("--title", required=True)
    f.add_argument("--trace", required=True)
    f.add_argument("--submits", required=True)
    f.add_argument("--exec-log", required=True)
    f.add_argument("--member", action="append", default=[],
                   help="NAME=FILE with its ClusterQueues as JSON")
    f.add_argument("--leases", default="")
    f.add_argument("--hub-log", default="")
    f.add_argument("--t0-ms", type=int, required=True)
    f.add_argument("--now-ms", type=int, required=True)
    f.add_argument("--scale", type=float, required=True)
    f.add_argument("--rows", type=int, default=6)
    f.add_argument("--tty", action="store_true")

    s = sub.add_parser("summary")
    s.add_argument("--trace", required=True)
    s.add_argument("--run", action="append", required=True,
                   help="LABEL|SUBMITS|EXEC_LOG")
    s.add_argument("--members", required=True)
    s.add_argument("--capacity", type=float, required=True,
                   help="nominal GPUs of every member together")
    s.add_argument("--scale", type=float, required=True)

    d = sub.add_parser("done")
    d.add_argument("--trace", required=True)
    d.add_argument("--exec-log", required=True)

    a = p.parse_args()
    if a.cmd == "trace":
        cmd_trace(a)
        return 0
    if a.cmd == "frame":
        cmd_frame(a)
        return 0
    if a.cmd == "summary":
        return cmd_summary(a)
    return cmd_done(a)


if __name__ == "__main__":
    sys.exit(main())
