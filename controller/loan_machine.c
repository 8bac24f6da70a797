/*
 * loan_machine: one function per phase, each a short list of rules read
 * top to bottom; the first that matches gives the step. The order of the
 * rules is the protocol: S2's order first (no raise before the hold is
 * reserved, no hold deleted while a grant it backs may stand; unknown is
 * not absent), then progress.
 */
#include "controller/loan_machine.h"

#include <errno.h>
#include <string.h>

static const char *const reason_names[GF_LN_R_COUNT] = {
    [GF_LN_R_NONE] = "",
    [GF_LN_R_NOT_ADMITTED] = "NotAdmitted",
    [GF_LN_R_COMPLETED] = "Completed",
    [GF_LN_R_CANCELLED] = "Cancelled",
    [GF_LN_R_ORIGIN_ADMITTED] = "OriginAdmitted",
    [GF_LN_R_UNUSED] = "Unused",
    [GF_LN_R_HOLD_LOST] = "HoldLost",
    [GF_LN_R_NAME_TAKEN] = "NameTaken",
    [GF_LN_R_CREATE_REFUSED] = "CreateRefused",
    [GF_LN_R_REVERTED] = "Reverted",
    [GF_LN_R_FENCED] = "Fenced",
    [GF_LN_R_RECLAIMED] = "Reclaimed",
    [GF_LN_R_DRAINED] = "Drained",
};

const char *gf_ln_reason_name(enum gf_ln_reason r)
{
    return (unsigned)r < GF_LN_R_COUNT ? reason_names[r] : "";
}

int gf_ln_reason_parse(const char *s, enum gf_ln_reason *out)
{
    for (int r = 0; r < GF_LN_R_COUNT; r++) {
        if (strcmp(s, reason_names[r]) == 0) {
            *out = (enum gf_ln_reason)r;
            return 0;
        }
    }
    return -EINVAL;
}

const char *gf_ln_write_name(enum gf_ln_write w)
{
    switch (w) {
    case GF_LN_WAIT:
        return "wait";
    case GF_LN_SET_PHASE:
        return "set-phase";
    case GF_LN_CREATE_HOLD:
        return "create-hold";
    case GF_LN_DELETE_HOLD:
        return "delete-hold";
    case GF_LN_CONFIRM_HOLD_GONE:
        return "confirm-hold-gone";
    case GF_LN_RAISE_GRANT:
        return "raise-grant";
    case GF_LN_LOWER_GRANT:
        return "lower-grant";
    case GF_LN_MARK_DEADLINE:
        return "mark-deadline";
    case GF_LN_DEACTIVATE_ORIGIN:
        return "deactivate-origin";
    case GF_LN_REACTIVATE_ORIGIN:
        return "reactivate-origin";
    case GF_LN_MARK_ORIGIN:
        return "mark-origin";
    case GF_LN_UNMARK_ORIGIN:
        return "unmark-origin";
    case GF_LN_REACTIVATE_FENCED:
        return "reactivate-fenced";
    case GF_LN_REACTIVATE_OTHER:
        return "reactivate-other";
    }
    return "?";
}

static struct gf_ln_step wait(const char *rule)
{
    return (struct gf_ln_step){.write = GF_LN_WAIT, .rule = rule};
}

static struct gf_ln_step write(enum gf_ln_write w, const char *event,
                               const char *rule)
{
    return (struct gf_ln_step){.write = w, .event = event, .rule = rule};
}

/* status.granted is recorded with every phase change, from what the
 * grant shows (or, while A is unknown, what was recorded last). */
static struct gf_ln_step set_phase(const struct gf_ln_view *v,
                                   enum gf_lease_phase p, enum gf_ln_reason r,
                                   const char *event, const char *rule)
{
    bool granted =
        v->grant.cq == GF_LM_UNKNOWN ? v->grant.granted : v->grant.share_in;
    return (struct gf_ln_step){.write = GF_LN_SET_PHASE,
                               .phase = p,
                               .reason = r,
                               .granted = granted,
                               .event = event,
                               .rule = rule};
}

static bool hold_ours(const struct gf_ln_hold *h)
{
    return h->wl == GF_LM_PRESENT && h->ours;
}

/* The hold still reserves the lender's quota behind the grant. */
static bool hold_backs(const struct gf_ln_hold *h)
{
    return hold_ours(h) && h->reserved && !h->deleting;
}

/* W's Job or W itself was deleted: nothing is left to run the loan. */
static bool origin_gone(const struct gf_ln_origin *o)
{
    return o->job == GF_LM_ABSENT || o->wl == GF_LM_ABSENT;
}

static bool origin_unknown(const struct gf_ln_origin *o)
{
    return o->job == GF_LM_UNKNOWN || o->wl == GF_LM_UNKNOWN;
}

/* The borrower's agent deactivated W for this loan: observed, present. */
static bool origin_fenced(const struct gf_ln_origin *o)
{
    return !origin_unknown(o) && !origin_gone(o) && o->fenced && !o->finished;
}

static struct gf_ln_step release(const struct gf_ln_view *v,
                                 enum gf_ln_reason r, const char *event,
                                 const char *rule)
{
    return set_phase(v, GF_LEASE_RELEASING, r, event, rule);
}

/*
 * What ends a loan whatever its phase, once the borrower is observed: W
 * finished or gone. Returns true with *st set.
 */
static bool origin_done(const struct gf_ln_view *v, struct gf_ln_step *st)
{
    const struct gf_ln_origin *o = &v->origin;
    if (origin_unknown(o))
        return false;
    if (origin_gone(o))
        *st = release(v, GF_LN_R_CANCELLED, NULL, "origin deleted");
    else if (o->finished)
        *st = release(v, GF_LN_R_COMPLETED, NULL, "origin finished");
    else
        return false;
    return true;
}

/*
 * Pending: recorded; create the hold, wait until B reserves it, raise the
 * grant, and turn Active once the raise is seen in A.
 */
static struct gf_ln_step pending(const struct gf_ln_view *v)
{
    const struct gf_ln_hold *h = &v->hold;
    const struct gf_ln_grant *g = &v->grant;
    struct gf_ln_step st;
    /* Raised already (a crash after the raise, before the phase): it is
     * the Active phase's to look after, whatever else holds. */
    if (g->cq != GF_LM_UNKNOWN && g->share_in)
        return set_phase(v, GF_LEASE_ACTIVE, GF_LN_R_NONE, "LoanGranted",
                         "grant raised");
    if (v->cmd == GF_LN_CMD_SUSPECT)
        return set_phase(v, GF_LEASE_SUSPECT, GF_LN_R_NONE, NULL,
                         "member unreachable");
    if (v->cmd == GF_LN_CMD_RELEASE)
        return release(v, v->cmd_reason, NULL, "release asked");
    if (v->cmd == GF_LN_CMD_WITHDRAW)
        return release(v, GF_LN_R_NOT_ADMITTED, "Withdrawn",
                       "admitTimeout passed");
    /* The grant too: after a raise whose answer was lost, W may hold
     * quota through this very loan, which only the grant can tell. */
    if (origin_unknown(&v->origin) || g->cq == GF_LM_UNKNOWN)
        return wait("borrower not observed");
    if (origin_done(v, &st))
        return st;
    if (origin_fenced(&v->origin))
        return release(v, GF_LN_R_FENCED, NULL,
                       "origin fenced by the borrower's agent");
    if (v->origin.reserved)
        return release(v, GF_LN_R_ORIGIN_ADMITTED, NULL,
                       "origin admitted at home without the loan");
    if (h->create_refused)
        return release(v, GF_LN_R_CREATE_REFUSED, NULL,
                       "lender refused the hold");
    switch (h->wl) {
    case GF_LM_UNKNOWN:
        return wait("lender not observed");
    case GF_LM_ABSENT:
        return write(GF_LN_CREATE_HOLD, NULL, "create the hold");
    case GF_LM_PRESENT:
        break;
    }
    if (!h->ours)
        return release(v, GF_LN_R_NAME_TAKEN, NULL,
                       "hold name taken by another object");
    if (h->deleting)
        return release(v, GF_LN_R_HOLD_LOST, NULL, "hold being deleted");
    if (h->evicted && !h->reserved)
        return release(v, GF_LN_R_HOLD_LOST, NULL,
                       "lender's Kueue evicted the hold");
    if (!h->reserved)
        return wait("hold waiting for the lender's Kueue");
    /* The mark first: once the grant stands, the borrower's agent must be
     * able to find what it serves without the hub. */
    if (!v->origin.marked)
        return write(GF_LN_MARK_ORIGIN, NULL,
                     "hold reserved: mark the origin before the raise");
    /* S2: the raise comes only now, with the hold reserved in B. */
    return write(GF_LN_RAISE_GRANT, NULL, "hold reserved: raise the grant");
}

/*
 * Active (and Reclaiming's twin for loans is a release: see gf_ln_next):
 * W runs at home under the loan until it ends or the loan must go.
 */
static struct gf_ln_step active(const struct gf_ln_view *v)
{
    const struct gf_ln_hold *h = &v->hold;
    const struct gf_ln_grant *g = &v->grant;
    struct gf_ln_step st;
    if (origin_done(v, &st))
        return st;
    if (v->cmd == GF_LN_CMD_RELEASE)
        return release(v, v->cmd_reason, NULL, "release asked");
    if (v->cmd == GF_LN_CMD_SUSPECT)
        return set_phase(v, GF_LEASE_SUSPECT, GF_LN_R_NONE, NULL,
                         "member unreachable");
    /* Before the reverted rule: the agent that fenced W reverted the
     * grant as well, and the loan ends for the fence. */
    if (origin_fenced(&v->origin))
        return release(v, GF_LN_R_FENCED, "LoanFenced",
                       "origin fenced by the borrower's agent");
    if (g->cq != GF_LM_UNKNOWN && !g->share_in)
        return release(v, GF_LN_R_REVERTED, "LoanReverted",
                       "grant lowered by someone else");
    if (h->wl == GF_LM_ABSENT || (h->wl == GF_LM_PRESENT && !h->ours) ||
        (hold_ours(h) && (h->deleting || (h->evicted && !h->reserved))))
        return release(v, GF_LN_R_HOLD_LOST, "LoanLost",
                       "the hold in the lender is gone");
    /* decide renews a loan only while W holds quota: an unused loan runs
     * out within one term. A term that ran out while W holds quota is a
     * renewal missed (a member was silent, the hub was down), not an
     * unused loan: decide renews it on its next pass. */
    if (v->expires_ms > 0 && v->now_ms >= v->expires_ms &&
        !origin_unknown(&v->origin) && !v->origin.reserved)
        return release(v, GF_LN_R_UNUSED, NULL, "term ran out unrenewed");
    return wait("origin runs under the loan");
}

/* The phase a release ends in: a hold never created is a failure. */
static enum gf_lease_phase final_phase(enum gf_ln_reason r)
{
    return r == GF_LN_R_CREATE_REFUSED || r == GF_LN_R_NAME_TAKEN
               ? GF_LEASE_FAILED
               : GF_LEASE_RELEASED;
}

/*
 * The grant's way down: lower it and see it lowered. True, with *st set,
 * while this lease's share may still be in A's nominal.
 */
static bool grant_not_lowered(const struct gf_ln_grant *g,
                              struct gf_ln_step *st)
{
    if (g->cq == GF_LM_UNKNOWN)
        *st = wait("borrower not observed: grant not known lowered");
    else if (g->share_in)
        *st = write(GF_LN_LOWER_GRANT, NULL, "lower the grant first");
    else
        return false;
    return true;
}

/*
 * With the grant lowered, the borrowing it backed must stop before the
 * hold goes: if A's cohort is now over its quota of F' and W still holds
 * quota, W is deactivated (after the grace period, announced on W as a
 * reclaim's is), and the hold waits until W holds none.
 *
 * Kueue pools a cohort's quota: the grant raised for W may have admitted
 * other Workloads of A's cohort ahead of W, which then never held quota.
 * A cohort still over its quota without W is that borrowing, and deleting
 * the hold would hand B's quota back while A still uses it (S2): the hold
 * stays until A's cohort fits within its quota again.
 */
static bool origin_still_borrows(const struct gf_ln_view *v,
                                 struct gf_ln_step *st)
{
    const struct gf_ln_origin *o = &v->origin;
    if (origin_unknown(o)) {
        *st = wait("origin not observed");
        return true;
    }
    /* Unknown is not zero: a usage Kueue wrote before it saw the lowered
     * grant says nothing about whether the cohort fits without it. */
    if (v->cohort_stale && hold_ours(&v->hold)) {
        *st = wait("cohort's usage not yet written since the lowering");
        return true;
    }
    if (origin_gone(o) || o->finished || !o->reserved) {
        if (!v->cohort_over || !hold_ours(&v->hold))
            return false;
        *st = wait("cohort over quota without the origin: others borrow");
        return true;
    }
    if (o->revoked || o->fenced)
        *st = wait("deactivated origin still holds quota");
    else if (!v->cohort_over)
        return false;
    else if (v->hold.wl != GF_LM_UNKNOWN && !hold_backs(&v->hold))
        /* The lender has its quota back already (its Kueue preempted or
         * evicted the hold, or it is gone): every moment W runs on above
         * the cohort's quota is S2 broken, so no grace period. */
        *st = write(GF_LN_DEACTIVATE_ORIGIN, "LoanRevoked",
                    "hold lost and cohort over quota: deactivate the origin "
                    "at once");
    else if (o->deadline_ms == 0)
        *st = write(GF_LN_MARK_DEADLINE, "LoanRevoking",
                    "cohort over quota: announce the deadline");
    else if (v->now_ms < o->deadline_ms)
        *st = wait("grace period before deactivating the origin");
    else
        *st = write(GF_LN_DEACTIVATE_ORIGIN, "LoanRevoked",
                    "cohort over quota: deactivate the origin");
    return true;
}

/*
 * The hold's way out: delete it, wait until it has gone, and have B's API
 * server confirm it. An object of another owner under the name is never
 * touched (this lease never made a hold there).
 */
static bool hold_not_gone(const struct gf_ln_hold *h, struct gf_ln_step *st)
{
    if (h->wl == GF_LM_UNKNOWN)
        *st = wait("lender not observed: hold not known gone");
    else if (hold_ours(h))
        *st = h->deleting ? wait("hold being deleted")
                          : write(GF_LN_DELETE_HOLD, NULL, "delete the hold");
    else if (h->wl == GF_LM_ABSENT && !h->confirmed_gone)
        *st = write(GF_LN_CONFIRM_HOLD_GONE, NULL,
                    "lender must confirm the hold is gone");
    else
        return false;
    return true;
}

/*
 * What the agent's fence and the mark left on the borrower's Workloads,
 * cleared once the grant is lowered and the hold gone: W fenced runs
 * again at home (once: it was stopped, and queues like any Workload),
 * the cohort's other Workloads fenced for this loan likewise, and the
 * mark goes last. True, with *st set, while something is left.
 */
static bool origin_notes(const struct gf_ln_view *v, struct gf_ln_step *st)
{
    const struct gf_ln_origin *o = &v->origin;
    if (origin_fenced(o))
        *st = write(GF_LN_REACTIVATE_FENCED, "Requeued",
                    "fenced origin queues at home again");
    else if (v->others_fenced)
        *st = write(GF_LN_REACTIVATE_OTHER, NULL,
                    "a Workload fenced for this loan queues again");
    else if (!origin_unknown(o) && !origin_gone(o) && o->marked)
        *st = write(GF_LN_UNMARK_ORIGIN, NULL, "loan ends: unmark the origin");
    else
        return false;
    return true;
}

/*
 * Releasing (and Reclaiming, for a loan): lower, stop W's borrowing if the
 * cohort is over, delete the hold, let W queue again, then Released.
 */
static struct gf_ln_step releasing(const struct gf_ln_view *v,
                                   enum gf_ln_reason r)
{
    const struct gf_ln_origin *o = &v->origin;
    struct gf_ln_step st;
    if (grant_not_lowered(&v->grant, &st) || origin_still_borrows(v, &st) ||
        hold_not_gone(&v->hold, &st))
        return st;
    /* A revoked W waits for quota at home again like any Workload; the
     * test op leaves a W that someone else has changed alone. */
    if (!origin_gone(o) && o->revoked && !o->finished)
        return write(GF_LN_REACTIVATE_ORIGIN, "Requeued",
                     "origin queues at home again");
    if (origin_notes(v, &st))
        return st;
    return set_phase(v, final_phase(r), r, NULL, "released");
}

/*
 * Fenced: the borrower's agent has set every loan's grant to 0 (that is
 * what its fencing instant guarantees), so the hold may go while the
 * borrower is unreachable. The lease ends once the borrower is seen again
 * and its grant is known lowered.
 */
static struct gf_ln_step fenced(const struct gf_ln_view *v)
{
    const struct gf_ln_grant *g = &v->grant;
    struct gf_ln_step st;
    /* A grant seen still raised (an agent that did not revert) is lowered
     * before anything else, as in any release. */
    if (g->cq != GF_LM_UNKNOWN && g->share_in)
        return write(GF_LN_LOWER_GRANT, NULL, "lower the grant first");
    if (hold_not_gone(&v->hold, &st))
        return st;
    if (g->cq == GF_LM_UNKNOWN || origin_unknown(&v->origin))
        return wait("borrower not observed");
    return releasing(v, GF_LN_R_FENCED);
}

/*
 * Suspect and Expired: a member cannot be observed, so nothing is written
 * there; the hold and the grant both stay (unknown is not zero).
 * Observation decides what the loan was when both are back.
 */
static struct gf_ln_step suspect(const struct gf_ln_view *v)
{
    const struct gf_ln_hold *h = &v->hold;
    const struct gf_ln_grant *g = &v->grant;
    if (v->cmd == GF_LN_CMD_FENCE)
        return set_phase(v, GF_LEASE_FENCED, GF_LN_R_FENCED, NULL,
                         "borrower's fencing time passed");
    if (v->cmd == GF_LN_CMD_SUSPECT || h->wl == GF_LM_UNKNOWN ||
        g->cq == GF_LM_UNKNOWN || origin_unknown(&v->origin))
        return wait("member unreachable");
    if (origin_fenced(&v->origin))
        return release(v, GF_LN_R_FENCED, "LoanFenced",
                       "members back: origin fenced by the agent");
    if (g->share_in)
        return set_phase(v, GF_LEASE_ACTIVE, GF_LN_R_NONE, NULL,
                         "members back: loan granted");
    if (hold_ours(h) && !h->deleting)
        return set_phase(v, GF_LEASE_PENDING, GF_LN_R_NONE, NULL,
                         "members back: hold not granted yet");
    return release(v, GF_LN_R_HOLD_LOST, "LoanLost", "members back: no hold");
}

/*
 * Final phases: nothing should be left. A share or a hold found anyway (a
 * create that landed after its lease ended) is removed in S2's order.
 */
static struct gf_ln_step final(const struct gf_ln_view *v)
{
    if (v->grant.cq == GF_LM_PRESENT && v->grant.share_in)
        return write(GF_LN_LOWER_GRANT, NULL, "stray share after the end");
    if (v->grant.cq != GF_LM_UNKNOWN && hold_ours(&v->hold) &&
        !v->hold.deleting)
        return write(GF_LN_DELETE_HOLD, NULL, "stray hold after the end");
    /* A mark or a fence that landed after the end (a write in flight
     * when the lease ended): with the grant and the hold gone, cleared. */
    struct gf_ln_step st;
    if (v->grant.cq != GF_LM_UNKNOWN && !v->grant.share_in &&
        v->hold.wl != GF_LM_UNKNOWN && !hold_ours(&v->hold) &&
        origin_notes(v, &st))
        return st;
    return wait("final");
}

struct gf_ln_step gf_ln_next(const struct gf_ln_view *v)
{
    switch (v->phase) {
    case GF_LEASE_PENDING:
        return pending(v);
    case GF_LEASE_ACTIVE:
        return active(v);
    case GF_LEASE_RELEASING:
        return releasing(v, v->reason);
    case GF_LEASE_RECLAIMING:
        /* A reclaim of a loan is its release: the lender gets its quota
         * back when the hold goes, in S2's order. */
        return releasing(v, GF_LN_R_RECLAIMED);
    case GF_LEASE_FENCED:
        return fenced(v);
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
