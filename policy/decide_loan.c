/*
 * decide_loan: decide's rules for loans (DESIGN.md §2 "Loan"), apart from
 * decide.c's redirect and reclaim rules so that each reads on its own.
 *
 * A loan moves quota, not a Job: the lender reserves g GPUs with a hold
 * (a pod-less Workload its Kueue admits against idle quota) and the
 * origin's cohort gains a ClusterQueue whose nominal quota is those g
 * GPUs, which the origin Workload borrows through the cohort. So a lender
 * cell may back a loan only if
 * - its flavor is budget-like for the group (budgetFlavors): quota that is
 *   a budget, which the origin's own nodes can back (rule notBudget);
 * - the origin ClusterQueue is in a cohort, since the grant reaches its
 *   Workloads only by borrowing (rule noCohort);
 * - the origin ClusterQueue may borrow the Workload's GPUs of the
 *   equivalent flavor under its borrowingLimit (rule borrowingLimit),
 *   counting besides what it borrows already every live loan of it whose
 *   Workload does not hold quota yet: a loan granted or recorded is
 *   borrowing to come, and without it a burst of decisions raised one
 *   grant past the limit;
 * and the same S2 caps as a redirect hold (decide.c's cell_room). The
 * lender's namespace opt-in does not apply: nothing runs in the lender.
 * Whether the origin's nodes have room is left to its Kueue and
 * scheduler: the ledger does not know node capacity, and a loan that W
 * does not use is released within one lease term.
 *
 * Upkeep differs from a redirect's in whose silence counts: the hold is
 * inert, so a silent lender only makes the loan Suspect, while a silent
 * borrower (whose agent reverts its grants when it fences) is the one
 * whose fencing instant lets the hub delete the hold.
 *
 * Pure code: no I/O, no clock; loop thread only.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "policy/internal.h"

static void why_put(struct gf_why *w, const char *rule, int64_t have,
                    int64_t need, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void why_put(struct gf_why *w, const char *rule, int64_t have,
                    int64_t need, const char *fmt, ...)
{
    va_list ap;
    w->rule = rule;
    w->have = have;
    w->need = need;
    va_start(ap, fmt);
    vsnprintf(w->text, sizeof(w->text), fmt, ap);
    va_end(ap);
}

/* The origin ClusterQueue's cell equivalent to lender flavor class cls. */
static const struct gf_ledger_cell *origin_cell(const struct gf_ledger *l,
                                                const struct gf_policy *p,
                                                const struct gf_ledger_wl *w,
                                                const char *cls)
{
    const struct gf_ledger_cq *q = w->cq;
    for (size_t i = 0; i < q->n_cells; i++) {
        const struct gf_ledger_cell *c = q->cells[i];
        if (c->in_spec && strcmp(c->resource, gf_ledger_resource(l)) == 0 &&
            strcmp(gf_policy_flavor_class(p, w->member, c->flavor), cls) == 0)
            return c;
    }
    return NULL;
}

/* The origin Workload holds quota at home: the loan is in use. */
static bool in_use(const struct gf_ledger *l, const struct gf_lease *ls)
{
    const struct gf_ledger_wl *w = gf_ledger_workload(
        l, ls->origin_member, ls->origin_namespace, ls->origin_name);
    return w != NULL &&
           (w->state == GF_WL_RESERVED || w->state == GF_WL_ADMITTED);
}

/*
 * GPUs of flavor class cls that live loans of w's ClusterQueue will let it
 * borrow but it does not yet (their Workload holds no quota). A loan in use
 * is in the cell's borrowed quota already; counting it here too would
 * count it twice.
 */
static int64_t loans_to_come(const struct gf_ledger *l,
                             const struct gf_policy *p,
                             const struct gf_ledger_wl *w, const char *cls)
{
    size_t n = gf_ledger_leases(l, NULL, 0);
    if (n == 0)
        return 0;
    const struct gf_ledger_lease **all = gf_malloc(n * sizeof(*all));
    n = gf_ledger_leases(l, all, n);
    int64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        const struct gf_lease *ls = &all[i]->l;
        if (ls->mode != GF_LEASE_LOAN || ls->phase == GF_LEASE_RELEASED ||
            ls->phase == GF_LEASE_FAILED || ls->origin_cq == NULL ||
            strcmp(ls->origin_member, w->member) != 0 ||
            strcmp(ls->origin_cq, w->cq->name) != 0 || in_use(l, ls))
            continue;
        const char *lc =
            gf_policy_flavor_class(p, ls->lender_member, ls->lender_flavor);
        if (lc != NULL && strcmp(lc, cls) == 0)
            sum += ls->gpus;
    }
    gf_free(all);
    return sum;
}

bool gf__loan_cell_ok(const struct gf_ledger *l, const struct gf_policy *p,
                      const struct gf_policy_group *g,
                      const struct gf_ledger_wl *w, const char *lender,
                      const struct gf_ledger_cell *c, struct gf_why *why)
{
    struct gf_why scratch = {0};
    struct gf_why *out = why->rule == NULL ? why : &scratch;
    if (!gf_policy_budget_flavor(p, g, lender, c->flavor)) {
        why_put(out, "notBudget", 0, 0,
                "no loan: flavor %s of %s/%s is not in group %s's "
                "budgetFlavors (a loan moves only budget quota)",
                c->flavor, lender, c->cq->name, g->name);
        return false;
    }
    if (w->cq->cohort == NULL) {
        why_put(out, "noCohort", 0, 0,
                "no loan: ClusterQueue %s/%s is in no cohort, and a loan "
                "reaches its Workloads only by borrowing through one",
                w->member, w->cq->name);
        return false;
    }
    const char *cls = gf_policy_flavor_class(p, lender, c->flavor);
    const struct gf_ledger_cell *oc = origin_cell(l, p, w, cls);
    int64_t head = oc != NULL ? gf_ledger_cell_borrow_headroom(oc) : 0;
    head -= loans_to_come(l, p, w, cls);
    if (head < 0)
        head = 0;
    if (head < w->gpus) {
        why_put(out, "borrowingLimit", head, w->gpus,
                "no loan: ClusterQueue %s/%s may borrow %lld more GPUs of "
                "flavor class %s under its borrowingLimit, %lld needed",
                w->member, w->cq->name, (long long)head, cls,
                (long long)w->gpus);
        return false;
    }
    return true;
}

void gf__loan_start_why(const struct gf_ledger_wl *w,
                        const struct gf_ledger_cell *c, const char *lender,
                        int64_t room, int64_t now_ms, struct gf_why *why)
{
    why_put(why, "loan", room, w->gpus,
            "mode loan: pending %lldms >= overflowAfter; %s/%s lends %lld "
            "GPUs of budget flavor %s (room for %lld, the most idle that "
            "fits) into cohort %s, where %s/%s borrows them and the Job runs "
            "at home",
            (long long)(now_ms - w->pending_since_ms), lender, c->cq->name,
            (long long)w->gpus, c->flavor, (long long)room, w->cq->cohort,
            w->member, w->cq->name);
}

/* The member whose silence makes a loan Suspect: the lender, else the
 * borrower; NULL when both are synced. */
static const struct gf_ledger_member *silent(const struct gf_ledger_lease *ll)
{
    if (ll->lender->fresh != GF_FRESH_SYNCED)
        return ll->lender;
    if (ll->origin != NULL && ll->origin->fresh != GF_FRESH_SYNCED)
        return ll->origin;
    return NULL;
}

/* Suspect: FENCE once the borrower (with an agent) has been silent past
 * its fencing instant; its agent has reverted the grant by then. */
static bool upkeep_suspect(const struct gf_policy *p, int64_t now,
                           const struct gf_ledger_lease *ll,
                           enum gf_action_kind *kind, struct gf_why *why)
{
    const struct gf_ledger_member *m = ll->origin;
    if (m == NULL || m->fresh == GF_FRESH_SYNCED)
        return false; /* a silent lender's hold stays: unknown is not zero */
    int pm = gf_policy_member_index(p, m->name);
    if (pm < 0 || p->members[pm].fencing != GF_FENCING_AGENT)
        return false;
    int64_t at = gf__fence_time(p, m);
    if (now < at)
        return false;
    *kind = GF_ACT_FENCE;
    why_put(why, "fenceAfter", now - m->last_heartbeat_ms,
            at - m->last_heartbeat_ms,
            "borrower %s silent for %lldms >= D*(1+rho)+margin = %lldms: its "
            "agent has reverted the loan's grant, so the hold may go",
            m->name, (long long)(now - m->last_heartbeat_ms),
            (long long)(at - m->last_heartbeat_ms));
    return true;
}

bool gf__loan_upkeep(const struct gf_ledger *l, const struct gf_policy *p,
                     int64_t now, const struct gf_ledger_lease *ll,
                     enum gf_action_kind *kind, int64_t *until_ms,
                     struct gf_why *why)
{
    const struct gf_lease *ls = &ll->l;
    const struct gf_policy_timing *t = &p->timing;
    bool live = ls->phase == GF_LEASE_PENDING || ls->phase == GF_LEASE_ACTIVE ||
                ls->phase == GF_LEASE_RECLAIMING;
    const struct gf_ledger_member *m = silent(ll);
    if (live && m != NULL) {
        *kind = GF_ACT_SUSPECT;
        why_put(why, m == ll->lender ? "lenderFreshness" : "borrowerFreshness",
                0, 0,
                "%s %s is %s: the hold and the grant both stay (unknown is "
                "not zero)",
                m == ll->lender ? "lender" : "borrower", m->name,
                gf_freshness_name(m->fresh));
        return true;
    }
    if (ls->phase == GF_LEASE_SUSPECT)
        return upkeep_suspect(p, now, ll, kind, why);
    if (ls->phase == GF_LEASE_PENDING &&
        now - ls->created_ms >= t->admit_timeout_ms) {
        *kind = GF_ACT_WITHDRAW;
        why_put(why, "admitTimeout", now - ls->created_ms, t->admit_timeout_ms,
                "the hold was not reserved in %s within admitTimeout "
                "(%lldms)",
                ls->lender_member, (long long)t->admit_timeout_ms);
        return true;
    }
    int64_t d = t->lease_duration_ms;
    if (ls->phase != GF_LEASE_ACTIVE || ls->expires_ms - now >= 2 * d / 3)
        return false;
    /* A loan nothing uses is not renewed: it runs out within one term. */
    if (!in_use(l, ls))
        return false;
    *kind = GF_ACT_RENEW;
    *until_ms = now + d;
    why_put(why, "leaseDuration", ls->expires_ms - now, 2 * d / 3,
            "less than 2D/3 of the term left and the origin holds quota "
            "under the loan: renewed to now + D");
    return true;
}
