#!/usr/bin/env python3
"""The numbers behind `make demo` (e2e/demo.sh).

demo.sh drives the clusters with kubesim and kubectl; this file does the
arithmetic it would be unwise to do in bash:

  trace    the seeded, skewed stream of GPU Jobs (one line per Job), so
           that the run with gpufed and the run without it submit exactly
           the same work at the same offsets;
  lender   the member with the most running copies, to be cut off from
           the hub (nothing while no copy runs);
  frame    one live frame: each member's GPU quota from its ClusterQueues'
           status, its heartbeat and agent, the partition, the
           QuotaLeases, the hub's and the agents' latest decisions with
           their reasons, and progress from the execution log;
  done     whether the run is over: every Job finished, and the
           partition healed and the hub converged;
  summary  per run, where every Job ran and its queue wait, the partition
           (when, how long, what was suspected, fenced and run again, how
           fast), and the checks the demo's exit status rests on: every
           Job finished exactly once and no Job ran in two places at
           overlapping times.

Every input is JSON (kubectl -o json, kubesim's execution log), the
Prometheus text of /metrics, or the hub's and agents' logfmt lines; the
standard library parses them.
"""

import argparse
import datetime
import glob
import json
import os
import random
import re
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


def plural(n, one, many):
    """'1 copy', '2 copies'."""
    return "%d %s" % (n, one if n == 1 else many)


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


def log_lines(path, needles):
    """The logfmt lines of a log that contain one of needles, parsed."""
    out = []
    try:
        with open(path, errors="replace") as f:
            for line in f:
                if any(x in line for x in needles):
                    out.append(logfmt(line))
    except FileNotFoundError:
        pass
    return out


def ts_ms(ts):
    """A log line's ts (RFC 3339, milliseconds, Z) in ms since the epoch;
    None if it is not one."""
    try:
        t = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ")
    except (TypeError, ValueError):
        return None
    return int(t.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)


# Lease phases that end a lease normally or start it: not news.
QUIET = {("Active", ""), ("Released", "Completed"), ("Pending", "")}


def hub_decisions(path, n, agent_logs=()):
    """The hub's decisions, as its log states them: every redirect with
    its reason; every lease that ends other than by its copy finishing
    (preempted, withdrawn, refused, suspected, fenced, superseded...)
    with the rule that moved it, and a Suspect lease back to Active; a
    member turning suspect or healthy again; a Job that ran to its end
    twice. With the agents' logs, their fences and heals too. Returns
    (redirects, the last n as display lines)."""
    lines = []
    redirects = 0
    last = {}
    for d in log_lines(path, ('msg="redirect decided"', 'msg="loan decided"',
                              'msg="lease phase"',
                              'msg="member suspect"',
                              'msg="member healthy again"',
                              'msg="job ran to its end twice"')):
        ts = d.get("ts", "")
        msg = d.get("msg", "")
        if msg == "redirect decided":
            redirects += 1
            lines.append((ts, "%s redirect %s -> %s/%s, %s GPUs: %s" % (
                ts[11:19], d.get("origin", ""), d.get("lender", ""),
                d.get("cq", ""), d.get("gpus", ""), d.get("why", ""))))
        elif msg == "loan decided":
            lines.append((ts, "%s loan %s <- %s/%s, %s GPUs: %s" % (
                ts[11:19], d.get("origin", ""), d.get("lender", ""),
                d.get("cq", ""), d.get("gpus", ""), d.get("why", ""))))
        elif msg == "lease phase":
            key = d.get("key", "")
            ph, why = d.get("phase", ""), d.get("reason", "")
            was = last.get(key)
            last[key] = ph
            if (ph, why) in QUIET and not (ph == "Active" and
                                           was == "Suspect"):
                continue
            lines.append((ts, "%s lease %s %s: %s" % (
                ts[11:19], key, ph + (" " + why if why else ""),
                d.get("rule", ""))))
        elif msg == "member suspect":
            lines.append((ts, "%s member %s SUSPECT: %s" % (
                ts[11:19], d.get("cluster", ""), d.get("why", ""))))
        elif msg == "member healthy again":
            lines.append((ts, "%s member %s healthy again" % (
                ts[11:19], d.get("cluster", ""))))
        else:
            lines.append((ts, "%s JOB RAN TO ITS END TWICE: %s (%s)" % (
                ts[11:19], d.get("origin", ""), d.get("why", ""))))
    for path_a in agent_logs:
        for d in log_lines(path_a, ('msg=fencing', 'msg="copy fenced"',
                                    'msg="heartbeat moved again"')):
            ts = d.get("ts", "")
            msg = d.get("msg", "")
            who = d.get("member") or d.get("cluster", "")
            if msg == "fencing":
                lines.append((ts, "%s agent %s FENCING %s: %s" % (
                    ts[11:19], who,
                    plural(int(d.get("copies", 0)), "copy", "copies"),
                    d.get("why", ""))))
            elif msg == "copy fenced":
                lines.append((ts, "%s agent %s fenced copy %s" % (
                    ts[11:19], who, d.get("job", ""))))
            else:
                lines.append((ts, "%s agent %s: heartbeat moved again after "
                              "%.1fs fenced" % (
                                  ts[11:19], who,
                                  int(d.get("fenced_for_ms", 0)) / 1000.0)))
    lines.sort(key=lambda x: x[0])
    return redirects, [x[1] for x in lines[-n:]]


def metrics(path):
    """Prometheus text as {series: value}, the series exactly as written
    (name with its labels)."""
    out = {}
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("#"):
                    continue
                k, _, v = line.rstrip("\n").rpartition(" ")
                try:
                    out[k] = float(v)
                except ValueError:
                    pass
    except FileNotFoundError:
        pass
    return out


def read_partition(path):
    """(lender, start_ms, duration_ms) from the demo's partition file, or
    None before the partition."""
    try:
        with open(path) as f:
            parts = f.read().split()
    except (FileNotFoundError, TypeError):
        return None
    if len(parts) != 3:
        return None
    return parts[0], int(parts[1]), int(parts[2])


def running_copies(jobs, runs):
    """Per member, the copies running there now (runs of Jobs submitted
    to another member that have not stopped), as (job id, start_ms)."""
    out = {}
    for jid, rs in runs.items():
        home = jobs.get(jid, {}).get("member")
        for r in rs:
            if r[2] is None and home is not None and r[0] != home:
                out.setdefault(r[0], []).append((jid, r[1]))
    return out


def cmd_lender(a):
    """The member with the most running copies, among those where none is
    due to end within avoid_ms (it would end in the blind window)."""
    jobs = read_trace(a.trace)
    copies = running_copies(jobs, runs_of(read_exec(a.exec_log)))
    ok = {}
    for m, cs in copies.items():
        ends = [t + jobs[j]["duration"] * 1000.0 / a.scale for j, t in cs]
        if min(ends) - a.now_ms > a.avoid_ms:
            ok[m] = len(cs)
    if ok:
        print(max(sorted(ok), key=lambda m: ok[m]))


LIVE = ("Pending", "Active", "Releasing", "Reclaiming", "Suspect")


def age(now_ms, ts):
    """Seconds since an RFC 3339 timestamp, as kubectl prints ages."""
    try:
        t = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ")
    except (TypeError, ValueError):
        return "?"
    t = t.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000
    s = max(0, int((now_ms - t) / 1000))
    return "%ds" % s if s < 120 else "%dm%ds" % (s // 60, s % 60)


def series(ms, name, member=None):
    """The value of metric name (for member, if given) or None."""
    for k, v in ms.items():
        if k == name or k.startswith(name + "{"):
            if member is None or ('member="%s"' % member) in k:
                return v
    return None


def failure_rows(a):
    """The failure detector, per member: the age of the heartbeat the hub
    renews there, whether the hub holds the member suspect, its agent's
    state, and the partition while it lasts (and a while after)."""
    hub = metrics(a.hub_metrics)
    agents = dict(x.split("=", 1) for x in a.agent)
    part = read_partition(a.partition)
    out = []
    if part:
        lender, start, dur = part
        el = a.now_ms - start
        if el < dur:
            out.append("PARTITION: %s cut off from the hub at +%.1fs for "
                       "%ds, %ds in" % (lender, (start - a.t0_ms) / 1000.0,
                                        dur // 1000, el // 1000))
        else:
            out.append("partition: %s was cut off from the hub at +%.1fs "
                       "for %ds, healed %ds ago" % (
                           lender, (start - a.t0_ms) / 1000.0, dur // 1000,
                           (el - dur) // 1000))
    out.append("%-8s %9s  %-9s %-28s %s" % (
        "MEMBER", "HEARTBEAT", "HUB SEES", "AGENT (fencing)", ""))
    for spec in a.member:
        name = spec.split("=", 1)[0]
        hb = series(hub, "gpufed_member_heartbeat_age_seconds", name)
        sus = series(hub, "gpufed_member_suspect", name)
        am = metrics(agents.get(name, ""))
        fenced = series(am, "gpufed_agent_fenced")
        n = series(am, "gpufed_agent_copies_fenced_total") or 0
        aage = series(am, "gpufed_agent_heartbeat_age_seconds")
        if fenced is None:
            agent = "(no answer)"
        elif fenced:
            agent = "FENCED, %s fenced" % plural(n, "copy", "copies")
        else:
            agent = "watching, heartbeat %s old" % (
                "?" if aage is None else "%.1fs" % aage)
            if n:
                agent = "watching (%d fenced)" % n
        mark = ""
        if part and part[0] == name:
            el = a.now_ms - part[1]
            mark = ("PARTITIONED (hub cut off) %ds" % (el // 1000)
                    if el < part[2] else "healed")
        out.append("%-8s %9s  %-9s %-28s %s" % (
            name, "-" if hb is None else "%.1fs" % hb,
            "-" if sus is None else ("SUSPECT" if sus else "healthy"),
            agent, mark))
    return out


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
        out.extend(failure_rows(a))
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
        total, last = hub_decisions(
            a.hub_log, a.rows + 2,
            [os.path.join(os.path.dirname(a.hub_log), "agent-%s.log" % m)
             for m in (x.split("=", 1)[0] for x in a.agent)])
        out.append("decisions (the hub's and the agents' logs): %d redirects"
                   % total)
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


JOB_ID = re.compile(r"-(j[0-9]+)-")


class Partition:
    """What the partition of one run did, from the demo's partition file,
    the hub's and the lender's agent's logs and the run's execution
    log."""

    def __init__(self, label, d, run):
        self.label = label
        self.part = read_partition(os.path.join(d, "partition"))
        self.errors = []
        self.lines = []
        if self.part is None:
            self.lines.append("%s: no partition (no copy ran in another "
                              "member while the demo looked for one)" % label)
            return
        try:
            with open(os.path.join(d, "t0")) as f:
                t0 = int(f.read())
        except (FileNotFoundError, ValueError):
            t0 = self.part[1]
        lender, start, dur = self.part
        heal = start + dur
        hub_log = os.path.join(d, "hub.log")
        suspect, fenced, superseded, twice = set(), set(), set(), []
        t_fenced = None
        for x in log_lines(hub_log, ('msg="lease phase"',
                                     'msg="job ran to its end twice"')):
            t = ts_ms(x.get("ts"))
            if t is None or t < start:
                continue
            if x.get("msg") != "lease phase":
                twice.append(x.get("origin", "?"))
                continue
            key, ph = x.get("key", ""), x.get("phase", "")
            if ph == "Suspect":
                suspect.add(key)
            elif ph == "Fenced":
                fenced.add(key)
                t_fenced = t if t_fenced is None else min(t_fenced, t)
            elif x.get("reason") == "Superseded":
                superseded.add(key)
        t_agent = None
        for x in log_lines(os.path.join(d, "agent-%s.log" % lender),
                           ("msg=fencing",)):
            t = ts_ms(x.get("ts"))
            if t is not None and t >= start and t_agent is None:
                t_agent = t
        conv = converged_ms(self.part, hub_log)

        def sec(t):
            return "never" if t is None else "%.1fs" % ((t - start) / 1000.0)

        el = (start - t0) / 1000.0
        self.lines.append(
            "%s: %s cut off from the hub (blackhole for gpufed-hub) at "
            "+%.1fs (simulated %dm%02ds) for %ds" % (
                label, lender, el, int(el * run.scale) // 60,
                int(el * run.scale) % 60, dur // 1000))
        self.lines.append(
            "  leases: %d Suspect, %d Fenced; the agent in %s fenced after "
            "%s, the hub counted them fenced after %s" % (
                len(suspect), len(fenced), lender, sec(t_agent),
                sec(t_fenced)))
        jids = sorted({m.group(1) for m in map(JOB_ID.search, fenced) if m})
        where = ", ".join("%s in %s" % (j, run.where.get(j, "nowhere"))
                          for j in jids)
        self.lines.append("  run again after the fence: %s%s" % (
            plural(len(jids), "Job", "Jobs"),
            (" (finished: %s)" % where) if where else ""))
        if superseded:
            self.lines.append(
                "  blind window: %s finished unseen before the fence; on "
                "the heal the first outcome stood and the second run was "
                "withdrawn (Superseded)" % plural(len(superseded), "copy",
                                                  "copies"))
        if conv is None:
            self.errors.append("the hub had not converged after the heal")
        else:
            self.lines.append(
                "  heal to convergence (%s healthy again, no lease Suspect "
                "or Fenced): %.1fs" % (lender, (conv - heal) / 1000.0))
        ran_twice = sorted(set(
            j for j, rs in run.runs.items()
            if len([r for r in rs if r[3] == "Succeeded"]) > 1))
        for j in ran_twice:
            self.errors.append(
                "S3 VIOLATED: %s ran to its end twice (the blind window: "
                "its copy in %s finished unseen before the fence, and its "
                "second run finished before the hub saw the heal)" % (
                    j, lender))
        for o in twice:
            self.errors.append("S3 VIOLATED: the hub saw %s run to its "
                               "end twice" % o)
        if not fenced:
            self.errors.append("no lease was fenced in the partition")


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
    parts = {}
    for spec in a.partition:
        label, d = spec.split("|", 1)
        run = next((r for r in runs if r.label == label), None)
        if run is not None:
            parts[label] = Partition(label, d, run)
    out.append("the partition (a lender cut off from the hub, then healed):")
    for r in runs:
        if r.label in parts:
            out.extend("  " + x for x in parts[r.label].lines)
        else:
            out.append("  %s: no partition (no gpufed: nothing to cut off "
                       "from)" % r.label)
    for spec in a.loans:
        label, hub_log, exec_log = spec.split("|")
        out.append("loans (%s):" % label)
        out.extend("  " + x for x in loan_lines(hub_log, exec_log,
                                                 a.loan_quota))
    out.append("")
    ok = True
    for p in parts.values():
        if p.errors:
            ok = False
            out.append("%s: FAILED partition checks:" % p.label)
            out.extend("  " + e for e in p.errors)
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


def loan_lines(hub_log, exec_log, quotas):
    """What loans did in one run: the Jobs whose loan was granted
    (a loan lease of theirs turned Active in the hub's log), and for each
    queue given as MEMBER/NAMESPACE=GPUS the peak GPUs its Jobs used at
    once against that nominal quota (a sweep over the execution log; in a
    cohort, borrowing from the other teams counts too)."""
    jobs = set()
    for d in log_lines(hub_log, ('comp=loan',)):
        if d.get("msg") == "lease phase" and d.get("phase") == "Active":
            m = JOB_ID.search(d.get("key", ""))
            if m:
                jobs.add(m.group(1))
    out = ["%s ran at home on quota lent by another member" %
           plural(len(jobs), "Job", "Jobs")]
    evs = read_exec(exec_log)
    for spec in quotas:
        queue, g = spec.split("=")
        member, ns = queue.split("/")
        used = peak = 0
        for e in sorted((e for e in evs if e["cluster"] == member and
                         e["namespace"] == ns),
                        key=lambda e: (e["ts_ms"], e["event"] == "start")):
            used += e.get("gpus", 0) * (1 if e["event"] == "start" else -1)
            peak = max(peak, used)
        out.append("peak GPUs in use in %s: %d, %d over its own quota of %s"
                   % (queue, peak, max(0, peak - int(g)), g))
    return out


def origin_of(key):
    """A lease's name without its epoch: the same for every lease of one
    origin Workload."""
    return key.rsplit("-", 1)[0]


def converged_ms(part, hub_log):
    """When the hub had converged after the partition's heal, from the
    hub's log: the lender healthy again, none of the leases the
    partition touched still Suspect or Fenced, the change that settled
    each of them (back to Active, or Released) made after the heal, and
    so the withdrawal of a second run of their origins (Superseded).
    None while it has not, or before the heal.

    A lease that is Active again has converged: what it does later is
    its ordinary life. A loan's Job runs at home, untouched by a cut-off
    lender, so its lease goes Suspect and back to Active on the heal,
    and its release when the Job ends, maybe minutes later, is not the
    heal's doing."""
    lender, start, dur = part
    heal = start + dur
    healthy = None
    phase = {}
    unsettled = set()
    changes = []
    for d in log_lines(hub_log, ('msg="member healthy again"',
                                 'msg="lease phase"')):
        t = ts_ms(d.get("ts"))
        if t is None or t < start:
            continue
        if d.get("msg") == "member healthy again":
            if d.get("cluster") == lender and t >= heal:
                healthy = t
        else:
            key = d.get("key", "")
            ph = d.get("phase", "")
            if ph in ("Suspect", "Fenced"):
                unsettled.add(key)
            if key in unsettled:
                phase[key] = ph
                changes.append((key, t))
                if ph in ("Active", "Released"):
                    unsettled.discard(key)
            elif d.get("reason") == "Superseded":
                changes.append((key, t))
    if healthy is None:
        return None
    if any(ph in ("Suspect", "Fenced") for ph in phase.values()):
        return None
    touched = {origin_of(k) for k in phase}
    return max([healthy] + [t for k, t in changes
                            if origin_of(k) in touched and t >= heal])


def cmd_done(a):
    """Exit 0 when every Job of the trace has finished once and, with a
    partition, it has healed and the hub has converged."""
    jobs = read_trace(a.trace)
    runs = runs_of(read_exec(a.exec_log))
    done = sum(1 for jid in jobs
               if any(r[3] == "Succeeded" for r in runs.get(jid, [])))
    if done != len(jobs):
        return 1
    if a.partition:
        part = read_partition(a.partition)
        # Every Job finished and no partition: no copy ran while the demo
        # looked for one, and none will now.
        if part is not None and converged_ms(part, a.hub_log) is None:
            return 1
    return 0


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
    f.add_argument("--hub-metrics", default="",
                   help="the hub's /metrics, as text")
    f.add_argument("--agent", action="append", default=[],
                   help="MEMBER=FILE with its agent's /metrics")
    f.add_argument("--partition", default="",
                   help="the demo's partition file")
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
    s.add_argument("--partition", action="append", default=[],
                   help="LABEL|DIR: the run's partition, from DIR's "
                   "partition file, hub.log and agent-MEMBER.log")
    s.add_argument("--loans", action="append", default=[],
                   help="LABEL|HUB_LOG|EXEC_LOG: the run's loans")
    s.add_argument("--loan-quota", action="append", default=[],
                   help="MEMBER/NAMESPACE=GPUS: a borrowing queue's own "
                   "nominal quota, for the peak over it")

    d = sub.add_parser("done")
    d.add_argument("--trace", required=True)
    d.add_argument("--exec-log", required=True)
    d.add_argument("--partition", default="")
    d.add_argument("--hub-log", default="")

    n = sub.add_parser("lender")
    n.add_argument("--trace", required=True)
    n.add_argument("--exec-log", required=True)
    n.add_argument("--now-ms", type=int, required=True)
    n.add_argument("--scale", type=float, required=True)
    n.add_argument("--avoid-ms", type=int, required=True,
                   help="skip a member whose copy ends within this")

    a = p.parse_args()
    if a.cmd == "trace":
        cmd_trace(a)
        return 0
    if a.cmd == "frame":
        cmd_frame(a)
        return 0
    if a.cmd == "summary":
        return cmd_summary(a)
    if a.cmd == "lender":
        cmd_lender(a)
        return 0
    return cmd_done(a)


if __name__ == "__main__":
    sys.exit(main())
