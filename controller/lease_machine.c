/*
 * lease_machine: one function per phase, each a short list of rules read
 * top to bottom; the first that matches gives the step. The order of the
 * rules is the protocol: safety checks first (unknown is not absent, the
 * origin must hold no quota before a copy exists), then progress.
 */
#include "controller/lease_machine.h"

#include <errno.h>
#include <string.h>

static const char *const reason_names[GF_LM_R_COUNT] = {
    [GF_LM_R_NONE] = "",
    [GF_LM_R_ORIGIN_ADMITTED] = "OriginAdmitted",
    [GF_LM_R_NOT_ADMITTED] = "NotAdmitted",
    [GF_LM_R_COMPLETED] = "Completed",
    [GF_LM_R_CANCELLED] = "Cancelled",
    [GF_LM_R_COPY_LOST] = "CopyLost",
    [GF_LM_R_PREEMPTED] = "Preempted",
    [GF_LM_R_ORIGIN_CHANGED] = "OriginChanged",
    [GF_LM_R_NAME_TAKEN] = "NameTaken",
    [GF_LM_R_CREATE_REFUSED] = "CreateRefused",
    [GF_LM_R_FENCED] = "Fenced",
    [GF_LM_R_SUPERSEDED] = "Superseded",
    [GF_LM_R_RECLAIMED] = "Reclaimed",
};

const char *gf_lm_reason_name(enum gf_lm_reason r)
{
    return (unsigned)r < GF_LM_R_COUNT ? reason_names[r] : "";
}

int gf_lm_reason_parse(const char *s, enum gf_lm_reason *out)
{
    for (int r = 0; r < GF_LM_R_COUNT; r++) {
        if (strcmp(s, reason_names[r]) == 0) {
            *out = (enum gf_lm_reason)r;
            return 0;
        }
    }
    return -EINVAL;
}

const char *gf_lm_write_name(enum gf_lm_write w)
{
    switch (w) {
    case GF_LM_WAIT:
        return "wait";
    case GF_LM_SET_PHASE:
        return "set-phase";
    case GF_LM_HOLD_ORIGIN:
        return "hold-origin";
    case GF_LM_CREATE_COPY:
        return "create-copy";
    case GF_LM_DELETE_COPY:
        return "delete-copy";
    case GF_LM_CONFIRM_GONE:
        return "confirm-gone";
    case GF_LM_REACTIVATE_ORIGIN:
        return "reactivate-origin";
    case GF_LM_MARK_OUTCOME:
        return "mark-outcome";
    case GF_LM_MARK_RECLAIM:
        return "mark-reclaim";
    case GF_LM_DEACTIVATE_COPY:
        return "deactivate-copy";
    }
    return "?";
}

static struct gf_lm_step wait(const char *rule)
{
    return (struct gf_lm_step){.write = GF_LM_WAIT, .rule = rule};
}

static struct gf_lm_step write(enum gf_lm_write w, const char *event,
                               const char *rule)
{
    return (struct gf_lm_step){.write = w, .event = event, .rule = rule};
}

static struct gf_lm_step set_phase(enum gf_lease_phase p, enum gf_lm_reason r,
                                   const char *event, const char *rule)
{
    return (struct gf_lm_step){.write = GF_LM_SET_PHASE,
                               .phase = p,
                               .reason = r,
                               .event = event,
                               .rule = rule};
}

static bool origin_gone(const struct gf_lm_origin *o)
{
    return o->job == GF_LM_ABSENT;
}

/*
 * The blind window's heal rule, seen from a later epoch: the origin
 * carries an outcome while this lease's copy has none, so an earlier
 * epoch's copy had finished (the hub saw it only on a heal, after it had
 * fenced that lease and dispatched the origin again). This run is
 * withdrawn; the earlier outcome stands.
 */
static bool superseded(const struct gf_lm_view *v)
{
    return v->origin.job == GF_LM_PRESENT && v->origin.outcome_marked &&
           v->copy.outcome == GF_LM_RUNNING;
}

/* A copy this lease made and may remove. Another object that happens to
 * carry the name is never touched. */
static bool copy_ours(const struct gf_lm_copy *c)
{
    return c->job == GF_LM_PRESENT && c->ours;
}

/*
 * Pending: recorded; hold the origin, create the copy, bind on admission.
 */
static struct gf_lm_step pending(const struct gf_lm_view *v)
{
    const struct gf_lm_origin *o = &v->origin;
    const struct gf_lm_copy *c = &v->copy;
    /* Seen finished (maybe just before a partition): it was admitted, and
     * what is left is mirroring, which needs only the origin. */
    if (c->outcome != GF_LM_RUNNING)
        return set_phase(GF_LEASE_ACTIVE, GF_LM_R_NONE, "CopyAdmitted",
                         "copy seen finished");
    if (superseded(v))
        return set_phase(GF_LEASE_RELEASING, GF_LM_R_SUPERSEDED, "Withdrawn",
                         "an earlier epoch's outcome stands");
    if (v->cmd == GF_LM_CMD_SUSPECT)
        return set_phase(GF_LEASE_SUSPECT, GF_LM_R_NONE, NULL,
                         "lender unreachable");
    if (v->cmd == GF_LM_CMD_WITHDRAW)
        return set_phase(GF_LEASE_RELEASING, GF_LM_R_NOT_ADMITTED, "Withdrawn",
                         "admitTimeout passed");
    if (o->job == GF_LM_UNKNOWN || o->wl == GF_LM_UNKNOWN)
        return wait("origin not observed");
    if (origin_gone(o))
        return set_phase(GF_LEASE_RELEASING, GF_LM_R_CANCELLED, NULL,
                         "origin Job deleted");
    if (o->wl == GF_LM_ABSENT)
        return wait("origin Workload not created yet");
    if (!o->held_by_us) {
        /* Kueue admitted it at home before the hold landed (the hold's
         * resourceVersion precondition failed): it runs there. */
        if (o->reserved || o->finished)
            return set_phase(GF_LEASE_RELEASING, GF_LM_R_ORIGIN_ADMITTED, NULL,
                             "origin admitted at home");
        /* The hold was there and someone took it off after the copy was
         * made: the copy must go before the origin can run. (When the
         * lender is unknown, holding again is safe either way.) */
        if (copy_ours(c))
            return set_phase(GF_LEASE_RELEASING, GF_LM_R_ORIGIN_CHANGED, NULL,
                             "origin reactivated by someone else");
        return write(GF_LM_HOLD_ORIGIN, NULL, "hold the origin");
    }
    /* Held, but Kueue has not evicted it yet: a copy now could overlap. */
    if (o->reserved)
        return wait("origin still holds quota at home");
    if (c->create_refused)
        return set_phase(GF_LEASE_RELEASING, GF_LM_R_CREATE_REFUSED, NULL,
                         "lender refused the copy");
    switch (c->job) {
    case GF_LM_UNKNOWN:
        return wait("lender not observed");
    case GF_LM_ABSENT:
        return write(GF_LM_CREATE_COPY, "Redirected", "create the copy");
    case GF_LM_PRESENT:
        break;
    }
    if (!c->ours)
        return set_phase(GF_LEASE_RELEASING, GF_LM_R_NAME_TAKEN, NULL,
                         "copy name taken by another object");
    if (c->deleting)
        return wait("copy being deleted");
    if (c->deactivated)
        return set_phase(GF_LEASE_RELEASING, GF_LM_R_FENCED, NULL,
                         "lender's agent fenced the copy");
    if (c->reserved || c->outcome != GF_LM_RUNNING)
        return set_phase(GF_LEASE_ACTIVE, GF_LM_R_NONE, "CopyAdmitted",
                         "copy admitted in lender");
    return wait("copy waiting for the lender's Kueue");
}

/*
 * Active: mirror the copy until it ends, or notice that it cannot; a
 * victim of a reclaim turns Reclaiming. The rules before the reclaim's
 * own hold for Reclaiming too (reclaiming() runs them first): a copy
 * that ends in its grace period (it checkpointed and finished) is a
 * success like any other.
 */
static bool active_common(const struct gf_lm_view *v, struct gf_lm_step *st)
{
    const struct gf_lm_origin *o = &v->origin;
    const struct gf_lm_copy *c = &v->copy;
    /* A finished outcome is final knowledge: mirror it even while the
     * lender cannot be reached. */
    if (c->outcome != GF_LM_RUNNING) {
        bool ok = c->outcome == GF_LM_SUCCEEDED;
        if (o->job == GF_LM_UNKNOWN)
            *st = wait("origin not observed");
        else if (!origin_gone(o) && !o->outcome_marked)
            *st = write(GF_LM_MARK_OUTCOME, ok ? "CopySucceeded" : "CopyFailed",
                        "mirror the copy's outcome");
        else
            *st = set_phase(GF_LEASE_RELEASED, GF_LM_R_COMPLETED, NULL,
                            "copy finished");
    } else if (superseded(v)) {
        *st = set_phase(GF_LEASE_RELEASING, GF_LM_R_SUPERSEDED, "Withdrawn",
                        "an earlier epoch's outcome stands");
    } else if (v->cmd == GF_LM_CMD_SUSPECT) {
        *st = set_phase(GF_LEASE_SUSPECT, GF_LM_R_NONE, NULL,
                        "lender unreachable");
    } else if (o->job == GF_LM_UNKNOWN || c->job == GF_LM_UNKNOWN) {
        *st = wait("origin or lender not observed");
    } else if (origin_gone(o)) {
        *st = set_phase(GF_LEASE_RELEASING, GF_LM_R_CANCELLED, NULL,
                        "origin Job deleted");
    } else if (c->job == GF_LM_ABSENT || !c->ours) {
        *st = set_phase(GF_LEASE_RELEASING, GF_LM_R_COPY_LOST, "CopyLost",
                        "copy vanished without an outcome");
    } else if (c->deleting) {
        *st = wait("copy being deleted");
    } else if (c->deactivated && !c->reclaim_deactivated) {
        /* Fenced by the lender's agent in a partition the hub did not
         * notice (or healed before the hub acted): it will not run
         * again. */
        *st = set_phase(GF_LEASE_RELEASING, GF_LM_R_FENCED, NULL,
                        "lender's agent fenced the copy");
    } else if (c->evicted && !c->reserved && !c->deactivated) {
        /* The lender's Kueue took the quota back first (its own
         * reclaimWithinCohort): the same release, Kueue's reason. */
        *st = set_phase(GF_LEASE_RELEASING, GF_LM_R_PREEMPTED, "Preempted",
                        "lender's Kueue evicted the copy");
    } else {
        return false;
    }
    return true;
}

static struct gf_lm_step active(const struct gf_lm_view *v)
{
    struct gf_lm_step st;
    if (active_common(v, &st))
        return st;
    /* A copy we deactivated for a reclaim whose lease came back to
     * Active (through Suspect): the reclaim finishes. */
    if (v->copy.reclaim_deactivated)
        return set_phase(GF_LEASE_RECLAIMING, GF_LM_R_NONE, NULL,
                         "copy already stopped for a reclaim");
    if (v->cmd == GF_LM_CMD_RECLAIM)
        return set_phase(GF_LEASE_RECLAIMING, GF_LM_R_NONE, "Reclaiming",
                         "the lender reclaims its quota");
    return wait("copy running in lender");
}

/*
 * Reclaiming: tell the copy when it stops (the checkpoint hint), wait
 * for the deadline, stop it (spec.active=false: the lender's Kueue
 * evicts it and its pods), and release once its quota is free. The
 * release then removes the copy and requeues the origin at home, which
 * keeps its creation time and priority (nothing is recreated).
 */
static struct gf_lm_step reclaiming(const struct gf_lm_view *v)
{
    const struct gf_lm_copy *c = &v->copy;
    struct gf_lm_step st;
    if (v->origin.job == GF_LM_UNKNOWN && v->cmd != GF_LM_CMD_SUSPECT &&
        c->outcome == GF_LM_RUNNING) {
        /* The lender's quota does not wait on the origin: with the
         * origin's member cut off, the copy is still marked and stopped
         * at its deadline (only the lender is written; stopping a copy
         * can never make a job run twice). Anything else waits for the
         * origin, as in Active. */
        if (!copy_ours(c) || c->deleting ||
            (c->deactivated && !c->reclaim_deactivated) ||
            (c->evicted && !c->reserved && !c->deactivated))
            return wait("origin not observed");
    } else if (active_common(v, &st)) {
        return st;
    }
    if (v->reclaim_deadline_ms == 0) {
        /* No deadline to honour (a status written by hand): the grace
         * period is not cut short; decide marks it again. */
        return set_phase(GF_LEASE_ACTIVE, GF_LM_R_NONE, NULL,
                         "reclaim without a deadline");
    }
    if (c->deactivated)
        return c->reserved ? wait("stopped copy still holds quota")
                           : set_phase(GF_LEASE_RELEASING, GF_LM_R_RECLAIMED,
                                       NULL, "copy stopped, quota free");
    if (!c->reclaim_marked)
        return write(GF_LM_MARK_RECLAIM, NULL,
                     "tell the copy its reclaim deadline");
    if (v->now_ms < v->reclaim_deadline_ms) {
        st = wait("grace period");
        st.wake_ms = v->reclaim_deadline_ms;
        return st;
    }
    return write(GF_LM_DEACTIVATE_COPY, NULL, "reclaim deadline passed");
}

/* The phase a release ends in. */
static enum gf_lease_phase final_phase(enum gf_lm_reason r)
{
    return r == GF_LM_R_CREATE_REFUSED || r == GF_LM_R_NAME_TAKEN
               ? GF_LEASE_FAILED
               : GF_LEASE_RELEASED;
}

/*
 * The copy's way out: delete it, wait until it has gone, and have the
 * lender's API server confirm it. True, with *st set, while it is not yet
 * known gone; a copy we did not make (the name taken) is never touched.
 */
static bool copy_not_gone(const struct gf_lm_copy *c, struct gf_lm_step *st)
{
    if (c->job == GF_LM_UNKNOWN)
        *st = wait("lender not observed: copy not known gone");
    else if (copy_ours(c))
        *st = c->deleting ? wait("copy being deleted")
                          : write(GF_LM_DELETE_COPY, NULL, "remove the copy");
    else if (c->job == GF_LM_ABSENT && !c->confirmed_gone)
        *st = write(GF_LM_CONFIRM_GONE, NULL,
                    "lender must confirm the copy is gone");
    else
        return false;
    return true;
}

/*
 * Releasing (and Fenced, which is a release the agent has already begun):
 * the copy goes first, confirmed gone; only then may the origin run again.
 * Fenced: the agent has deactivated the copy (that is what the fencing
 * time guarantees), so the origin may run again before the lender is
 * reachable, and the copy is removed once it is.
 */
/*
 * A release (or a fence) of a copy that is known to have finished: seen
 * when the lender came back after the hub had fenced the lease (the
 * blind window: it finished before the agent's fence, unseen), or seen
 * while a withdrawal was under way. Its outcome stands: mirror it on the
 * origin, and stop a second run the origin may have begun at home since
 * (hold it again; a later epoch's lease sees the outcome and withdraws).
 * If the origin has finished at home too, nothing can undo it: it is
 * logged and counted.
 */
static struct gf_lm_step copy_finished(const struct gf_lm_view *v)
{
    const struct gf_lm_origin *o = &v->origin;
    bool ok = v->copy.outcome == GF_LM_SUCCEEDED;
    if (o->job == GF_LM_UNKNOWN || o->wl == GF_LM_UNKNOWN)
        return wait("origin not observed");
    if (!origin_gone(o) && !o->outcome_marked)
        return write(GF_LM_MARK_OUTCOME, ok ? "CopySucceeded" : "CopyFailed",
                     "released copy had finished: mirror its outcome");
    if (!origin_gone(o) && o->wl == GF_LM_PRESENT && o->active && !o->finished)
        return write(GF_LM_HOLD_ORIGIN, NULL,
                     "released copy had finished: stop the second run");
    struct gf_lm_step st = set_phase(GF_LEASE_RELEASED, GF_LM_R_COMPLETED, NULL,
                                     "released copy had finished");
    st.ran_twice = !origin_gone(o) && o->finished;
    return st;
}

static struct gf_lm_step releasing(const struct gf_lm_view *v)
{
    const struct gf_lm_origin *o = &v->origin;
    bool fenced = v->phase == GF_LEASE_FENCED;
    enum gf_lm_reason r = fenced ? GF_LM_R_FENCED : v->reason;
    struct gf_lm_step st;
    if (v->copy.outcome != GF_LM_RUNNING)
        return copy_finished(v);
    if (!fenced && copy_not_gone(&v->copy, &st))
        return st;
    if (o->job == GF_LM_UNKNOWN || o->wl == GF_LM_UNKNOWN)
        return wait("origin not observed");
    /* Even a cached "not held" needs the server's word: the cache may not
     * show our hold yet. The patch's test op makes this a no-op on an
     * origin that is not ours. An origin that carries an outcome has run
     * to its end somewhere (an earlier epoch's copy): it never runs
     * again. */
    if (!o->confirmed_free && !origin_gone(o) && !o->outcome_marked)
        return write(GF_LM_REACTIVATE_ORIGIN,
                     !o->held_by_us           ? NULL
                     : r == GF_LM_R_RECLAIMED ? "Reclaimed"
                                              : "Requeued",
                     "origin runs at home again");
    if (fenced && copy_not_gone(&v->copy, &st))
        return st;
    return set_phase(final_phase(r), r, NULL, "released");
}

/*
 * Suspect and Expired: the lender cannot be observed, so nothing is
 * written there and the lease keeps counting (unknown is not zero).
 * Observation decides what it was when the lender comes back.
 */
static struct gf_lm_step suspect(const struct gf_lm_view *v)
{
    const struct gf_lm_copy *c = &v->copy;
    if (v->cmd == GF_LM_CMD_FENCE)
        return set_phase(GF_LEASE_FENCED, GF_LM_R_FENCED, NULL,
                         "fencing time passed");
    if (c->job == GF_LM_UNKNOWN || v->cmd == GF_LM_CMD_SUSPECT)
        return wait("lender unreachable");
    /* A reclaim that had stopped the copy before the lender went quiet
     * finishes; one that had not yet is dropped (back to Active), and
     * decide marks the victim again with a new deadline. */
    if (copy_ours(c) && c->reclaim_deactivated)
        return set_phase(GF_LEASE_RECLAIMING, GF_LM_R_NONE, NULL,
                         "lender back: copy stopped for a reclaim");
    if (copy_ours(c) && (c->reserved || c->outcome != GF_LM_RUNNING))
        return set_phase(GF_LEASE_ACTIVE, GF_LM_R_NONE, NULL,
                         "lender back: copy admitted");
    if (copy_ours(c))
        return set_phase(GF_LEASE_PENDING, GF_LM_R_NONE, NULL,
                         "lender back: copy waiting");
    return set_phase(GF_LEASE_RELEASING, GF_LM_R_COPY_LOST, "CopyLost",
                     "lender back: no copy");
}

/* Final phases: only the garbage collection of a finished copy is left. */
static struct gf_lm_step final(const struct gf_lm_view *v)
{
    const struct gf_lm_copy *c = &v->copy;
    if (v->phase == GF_LEASE_RELEASED && v->reason == GF_LM_R_COMPLETED &&
        copy_ours(c) && !c->deleting && c->outcome != GF_LM_RUNNING &&
        v->now_ms - c->finished_ms >= v->copy_ttl_ms)
        return write(GF_LM_DELETE_COPY, NULL, "finished copy past its TTL");
    return wait("final");
}

struct gf_lm_step gf_lm_next(const struct gf_lm_view *v)
{
    switch (v->phase) {
    case GF_LEASE_PENDING:
        return pending(v);
    case GF_LEASE_ACTIVE:
        return active(v);
    case GF_LEASE_RECLAIMING:
        return reclaiming(v);
    case GF_LEASE_RELEASING:
    case GF_LEASE_FENCED:
        return releasing(v);
    case GF_LEASE_SUSPECT:
    case GF_LEASE_EXPIRED:
        return suspect(v);
    case GF_LEASE_RELEASED:
    case GF_LEASE_FAILED:
        return final(v);
    case GF_LEASE_PHASE_COUNT:
        break;
    }
    return wait("unknown phase");
}
