#!/usr/bin/python3
"""The chaos suite's seeded schedule: which Jobs are submitted where and
when, and which faults are injected where and when.

The same seed and arguments always give the same schedule, so a failing
run is replayed with `make chaos SEED=N`. Output, one event a line,
sorted by time (ms from the run's start):

  OFF job ID MEMBER GPUS DURATION_S
  OFF fault KIND MEMBER FOR_MS [ARG]
  OFF restore WHAT MEMBER          (after hub-kill / agent-kill: restart)

Reclaims: besides the stream of Jobs skewed to east (which overflow to
west and north), --waves bursts of the lenders' own Jobs arrive, each in
one lender (west or north), at a seeded time in the middle of the window,
within 2 s, with at least --wave-gpus GPUs in all: enough to need back
the quota that copies borrowed there, so that reclaims happen (wave jobs
are named rWNN). The waves come from their own random stream, drawn after
the jobs' and the faults': --waves 0 gives the schedule of a run without
them, line for line.

A clock-drift fault is `OFF fault clock-drift MEMBER 0 PROCESS=PPM`: from
then on PROCESS (hub, hub-a or hub-b for a replica, or agent for
MEMBER's agent) runs with its monotonic clock at (1 + PPM/1e6) times real
time, PPM uniform within +-rho (--rho-ppm, the policy's clockDrift). It
lasts (0: no end): the process is restarted with the rate, and so is
every later start of it.

The fault list (FAULTS) names every kind the suite knows, with a weight
and what it needs: kinds whose processes do not exist yet (agents, a
second hub replica, a clock hook) are left out of the draw until the
driver says they are available, so adding them later changes no
schedule of a run without them. Python 3, standard library only.
"""

import argparse
import random
import sys

MEMBERS = ["east", "west", "north"]
# Weight, and what a kind needs ("" = today's hub).
FAULTS = [
    # hub <-> member partition: the hub's connections fall silent.
    ("partition", 3.0, ""),
    # member <-> its agent partition (the agent cannot read the heartbeat).
    ("agent-partition", 2.0, "agent"),
    # API server restart: connections cut, watch caches lost.
    ("restart", 1.5, ""),
    ("latency", 1.0, ""),
    ("5xx", 1.5, ""),
    ("429", 0.5, ""),
    ("reset", 1.0, ""),
    ("watch-drop", 1.0, ""),
    ("kueue-frozen", 1.0, ""),
    # SIGKILL of the hub (the leader with two replicas), restarted later.
    ("hub-kill", 1.5, ""),
    ("agent-kill", 1.0, "agent"),
    # Clock-rate drift within rho: a hub replica or an agent restarted
    # with GPUFED_CLOCK_RATE_PPM (gpufed's clock hook).
    ("clock-drift", 1.0, "clock-hook"),
]


def build(a):
    rng = random.Random(a.seed)
    # Separate streams: the jobs stay the same whatever the fault list.
    jr = random.Random(rng.random())
    fr = random.Random(rng.random())
    out = []
    window_ms = int(a.window * 1000)
    for i in range(a.jobs):
        off = int(jr.uniform(0, window_ms))
        m = MEMBERS[0] if jr.random() < a.skew else jr.choice(MEMBERS[1:])
        gpus = jr.choice([1, 2, 2, 4, 4, 4, 8])
        dur = jr.randint(a.min_duration, a.max_duration)
        out.append((off, "job j%03d %s %d %d" % (i, m, gpus, dur)))
    have = set(x for x in a.have.split(",") if x) | {""}
    kinds = [(k, w) for k, w, need in FAULTS if need in have]
    total = sum(w for _, w in kinds)
    # Processes killed stay down until restored; one kill of each at a
    # time, so that the restore always finds what it restarts.
    down_until = {}
    for _ in range(a.events):
        off = int(fr.uniform(1000, window_ms))
        x = fr.uniform(0, total)
        for k, w in kinds:
            x -= w
            if x <= 0:
                break
        m = fr.choice(MEMBERS)
        if k == "partition" or k == "agent-partition":
            out.append((off, "fault %s %s %d" % (k, m, fr.randint(1000, 8000))))
        elif k == "restart":
            down = fr.choice([0, 0, 500, 2000])
            out.append((off, "fault restart %s %d" % (m, down)))
        elif k == "latency":
            out.append((off, "fault latency %s %d %dms" % (
                m, fr.randint(2000, 6000), fr.choice([100, 300, 800]))))
        elif k == "5xx":
            out.append((off, "fault 5xx %s 4000 %d" % (
                m, fr.choice([3, 10, 30]))))
        elif k == "429":
            out.append((off, "fault 429 %s 4000 %d" % (m, fr.choice([3, 10]))))
        elif k in ("reset", "watch-drop"):
            out.append((off, "fault %s %s %d" % (k, m, fr.randint(200, 2000))))
        elif k == "kueue-frozen":
            out.append((off, "fault kueue-frozen %s %d" % (
                m, fr.randint(1000, 5000))))
        elif k in ("hub-kill", "agent-kill"):
            key = k if k == "hub-kill" else k + "/" + m
            down = fr.randint(200, 3000)
            if down_until.get(key, -1) >= off:
                off = down_until[key] + 100
            down_until[key] = off + down
            out.append((off, "fault %s %s %d" % (k, m, down)))
            what = "hub" if k == "hub-kill" else "agent"
            out.append((off + down, "restore %s %s" % (what, m)))
        elif k == "clock-drift":
            procs = ["hub-a", "hub-b"] if "ha" in have else ["hub"]
            if "agent" in have:
                procs.append("agent")
            p = fr.choice(procs)
            ppm = fr.randint(-a.rho_ppm, a.rho_ppm)
            out.append((off, "fault clock-drift %s 0 %s=%d" % (m, p, ppm)))
    if "agent" in have and a.a3_guard_ms >= 0:
        out = keep_a3(out, a.a3_guard_ms)
    out.extend(waves(a, random.Random(rng.random()), window_ms))
    out.sort(key=lambda x: x[0])
    return ["%d %s" % x for x in out]


# Faults that cut or slow the hub's requests to a member: each may stop its
# heartbeat renewals landing there, and so lead the hub to its fencing time.
HUB_SIDE = ("partition", "latency", "5xx", "429", "reset", "restart")


def keep_a3(out, guard_ms):
    """Moves each agent-partition off the hub-side faults of its member.

    The fencing argument (docs/failure-semantics.md) rests on A3, that the
    agent reaches its own API server: when the hub may fence a member, its
    agent must be able to fence first (deactivate the copies, revert the
    loans' grants). An agent cut off from its API server while the hub is
    cut off from the same member breaks that assumption, and the protocol
    promises nothing then (a copy may run twice; a grant may outlive the
    hold it was raised on): the double fault is outside the model, and a
    violation it causes says nothing about the code. So an agent-partition
    never overlaps a hub-side fault of its member, widened by guard_ms
    after its end (the hub may still fence until a probe and the relists
    have healed the member). The pass draws nothing: it moves such a cut
    to another member that leaves it room, else later, past the clashing
    windows; every other line stays as drawn. A negative guard_ms (only
    for tests) turns the pass off."""
    busy = {}
    for off, line in out:
        f = line.split()
        if f[0] == "fault" and f[1] in HUB_SIDE:
            busy.setdefault(f[2], []).append(
                (off, off + int(f[3]) + guard_ms))

    def clash(m, lo, hi):
        return [w for w in busy.get(m, []) if lo < w[1] and hi > w[0]]

    res = []
    for off, line in out:
        f = line.split()
        if f[0] != "fault" or f[1] != "agent-partition":
            res.append((off, line))
            continue
        m, dur = f[2], int(f[3])
        order = [m] + [x for x in MEMBERS if x != m]
        free = [x for x in order if not clash(x, off, off + dur)]
        if free:
            m = free[0]
        else:
            while clash(m, off, off + dur):
                off = max(w[1] for w in clash(m, off, off + dur))
        res.append((off, "fault agent-partition %s %d" % (m, dur)))
    return res


def waves(a, wr, window_ms):
    """The lenders' own Jobs, in bursts that reclaim borrowed quota."""
    out = []
    for w in range(a.waves):
        off = int(wr.uniform(0.3 * window_ms, 0.7 * window_ms))
        m = wr.choice(MEMBERS[1:])
        total, i = 0, 0
        while total < a.wave_gpus:
            gpus = wr.choice([2, 4, 4, 8])
            dur = wr.randint(a.min_duration, a.max_duration)
            at = off + int(wr.uniform(0, 2000))
            out.append((at, "job r%d%02d %s %d %d" % (w, i, m, gpus, dur)))
            total += gpus
            i += 1
    return out


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--events", type=int, required=True,
                    help="fault events to inject")
    ap.add_argument("--jobs", type=int, required=True)
    ap.add_argument("--window", type=float, required=True,
                    help="seconds over which jobs and faults are spread")
    ap.add_argument("--skew", type=float, default=0.7,
                    help="share of the jobs submitted to east")
    ap.add_argument("--min-duration", type=int, default=60,
                    help="simulated seconds")
    ap.add_argument("--max-duration", type=int, default=180)
    ap.add_argument("--waves", type=int, default=0,
                    help="bursts of lenders' own Jobs (reclaims)")
    ap.add_argument("--wave-gpus", type=int, default=16,
                    help="GPUs of one burst, at least")
    ap.add_argument("--have", default="",
                    help="what is available: agent, ha, clock-hook")
    ap.add_argument("--rho-ppm", type=int, default=10000,
                    help="clock-drift rates are drawn within +-this")
    ap.add_argument("--a3-guard-ms", type=int, default=3000,
                    help="an agent-partition keeps off the hub-side faults "
                    "of its member and this long after them (A3); "
                    "negative: off")
    a = ap.parse_args(argv)
    for line in build(a):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
