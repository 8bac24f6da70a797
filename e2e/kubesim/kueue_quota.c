/*
 * kueue_quota: Kueue's quota arithmetic over Kueue-lite's index (see
 * kueue_internal.h). Pure: no store, no clock, no I/O.
 *
 * The rules, as Kueue's documentation states them:
 *   - a ClusterQueue may use its nominalQuota; in a cohort it may also
 *     borrow what other members leave unused, up to its borrowingLimit
 *     ("how much over nominal the ClusterQueue may use");
 *   - a member lends at most its lendingLimit of its nominal quota; the
 *     rest (nominal - lendingLimit) is kept for its own use;
 *   - flavors are tried in the order the ClusterQueue lists them, and the
 *     first one where every resource of the group fits is taken;
 *   - preemption: withinClusterQueue evicts lower-priority Workloads of
 *     the same ClusterQueue; reclaimWithinCohort lets a ClusterQueue that
 *     is under its nominal quota take back what others borrowed, evicting
 *     their Workloads (Any, or only LowerPriority ones). Candidates from
 *     other ClusterQueues go first, then lower priorities, then the most
 *     recently admitted; a final pass keeps every candidate that turns
 *     out not to be needed.
 */
#include "e2e/kubesim/kueue_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

struct gf_kq_cell *gf__kq_cell(const struct gf_kq_cq *cq, const char *flavor,
                               const char *res)
{
    for (size_t g = 0; g < cq->n_groups; g++) {
        const struct gf_kq_group *gr = &cq->groups[g];
        for (size_t r = 0; r < gr->n_res; r++) {
            if (strcmp(gr->res[r], res) != 0)
                continue;
            for (size_t f = 0; f < gr->n_fl; f++)
                if (strcmp(gr->fl[f].name, flavor) == 0)
                    return &gr->fl[f].cells[r];
            return NULL;
        }
    }
    return NULL;
}

const struct gf_kq_group *gf__kq_group_of(const struct gf_kq_cq *cq,
                                          const char *res)
{
    for (size_t g = 0; g < cq->n_groups; g++)
        for (size_t r = 0; r < cq->groups[g].n_res; r++)
            if (strcmp(cq->groups[g].res[r], res) == 0)
                return &cq->groups[g];
    return NULL;
}

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* The part of nominal a member keeps for itself (not lendable). */
static int64_t guaranteed(const struct gf_kq_cell *c)
{
    return c->lend == GF_KQ_UNSET ? 0 : max64(0, c->nominal - c->lend);
}

/* Free lendable quota of the cohort for [flavor, res]. */
static int64_t cohort_free(const struct gf_kq_world *w, const char *cohort,
                           const char *flavor, const char *res)
{
    int64_t pool = 0, used = 0;
    size_t pos = 0;
    void *v;
    while (gf_htab_scan(w->cqs, &pos, NULL, &v)) {
        const struct gf_kq_cq *m = v;
        if (m->cohort == NULL || strcmp(m->cohort, cohort) != 0)
            continue;
        const struct gf_kq_cell *c = gf__kq_cell(m, flavor, res);
        if (c == NULL)
            continue;
        pool += c->nominal - guaranteed(c);
        used += max64(0, c->usage - guaranteed(c));
    }
    return pool - used;
}

int64_t gf__kq_available(const struct gf_kq_world *w, const struct gf_kq_cq *cq,
                         const char *flavor, const char *res)
{
    const struct gf_kq_cell *c = gf__kq_cell(cq, flavor, res);
    if (c == NULL)
        return 0;
    if (cq->cohort == NULL)
        return c->nominal - c->usage;
    int64_t g = guaranteed(c);
    int64_t local = max64(0, g - c->usage);
    int64_t parent = cohort_free(w, cq->cohort, flavor, res);
    if (c->borrow != GF_KQ_UNSET) {
        /* What it may draw from the cohort: its lent part plus the limit. */
        int64_t in_parent = c->nominal - g - max64(0, c->usage - g);
        parent = min64(parent, in_parent + c->borrow);
    }
    return local + max64(0, parent);
}

void gf__kq_account(const struct gf_kq_world *w, const struct gf_kq_wl *wl,
                    int sign)
{
    if (wl->adm_cq == NULL)
        return;
    const struct gf_kq_cq *cq = gf_htab_get_str(w->cqs, wl->adm_cq);
    if (cq == NULL)
        return;
    for (size_t i = 0; i < wl->n_uses; i++) {
        struct gf_kq_cell *c =
            gf__kq_cell(cq, wl->uses[i].flavor, wl->uses[i].res);
        if (c != NULL)
            c->usage += sign * wl->uses[i].q;
    }
}

void gf__kq_assign_free(struct gf_kq_assign *a)
{
    GF_FREE(a->tot);
    GF_FREE(a->victims);
    a->n_tot = a->n_victims = 0;
}

void gf__kq_qty(const char *res, int64_t milli, char out[32])
{
    if (milli % 1000 != 0) {
        snprintf(out, 32, "%" PRId64 "m", milli);
        return;
    }
    int64_t v = milli / 1000;
    /* Byte quantities print in binary units, as Kueue's copies of them. */
    static const char *const suffix[] = {"", "Ki", "Mi", "Gi", "Ti", "Pi"};
    size_t s = 0;
    bool bytes = strstr(res, "memory") != NULL || strstr(res, "storage");
    while (bytes && v != 0 && v % 1024 == 0 && s + 1 < 6) {
        v /= 1024;
        s++;
    }
    snprintf(out, 32, "%" PRId64 "%s", v, suffix[s]);
}

/* ---- totals and flavor assignment -------------------------------------- */

static void add_total(struct gf_kq_assign *a, const char *res, int64_t q)
{
    for (size_t i = 0; i < a->n_tot; i++)
        if (strcmp(a->tot[i].res, res) == 0) {
            a->tot[i].q += q;
            return;
        }
    a->tot = gf_realloc(a->tot, (a->n_tot + 1) * sizeof(*a->tot));
    a->tot[a->n_tot++] = (struct gf_kq_total){.res = res, .q = q};
}

/* Fills a->tot; false (with a->msg) when a resource has no group. */
static bool totals(const struct gf_kq_cq *cq, const struct gf_kq_wl *wl,
                   struct gf_kq_assign *a)
{
    for (size_t p = 0; p < wl->n_ps; p++) {
        const struct gf_kq_podset *ps = &wl->ps[p];
        for (size_t r = 0; r < ps->n_req; r++) {
            if (ps->req[r].milli <= 0 || ps->count <= 0)
                continue;
            if (gf__kq_group_of(cq, ps->req[r].res) == NULL) {
                snprintf(a->msg, sizeof(a->msg),
                         "couldn't assign flavors to pod set %s: resource %s "
                         "unavailable in ClusterQueue",
                         ps->name, ps->req[r].res);
                return false;
            }
            add_total(a, ps->req[r].res, ps->count * ps->req[r].milli);
        }
    }
    for (size_t i = 0; i < a->n_tot; i++)
        a->tot[i].group = gf__kq_group_of(cq, a->tot[i].res);
    return true;
}

/* Whether every total of group g fits flavor f now. */
static bool fits(const struct gf_kq_world *w, const struct gf_kq_cq *cq,
                 const struct gf_kq_assign *a, const struct gf_kq_group *g,
                 const char *f, bool record, struct gf_kq_assign *why)
{
    for (size_t i = 0; i < a->n_tot; i++) {
        if (a->tot[i].group != g)
            continue;
        int64_t avail = gf__kq_available(w, cq, f, a->tot[i].res);
        if (a->tot[i].q <= avail)
            continue;
        if (record) {
            char more[32];
            gf__kq_qty(a->tot[i].res, a->tot[i].q - max64(0, avail), more);
            snprintf(why->msg, sizeof(why->msg),
                     "couldn't assign flavors to pod set %s: insufficient "
                     "unused quota for %s in flavor %s, %s more needed",
                     "main", a->tot[i].res, f, more);
        }
        return false;
    }
    return true;
}

static void set_flavor(struct gf_kq_assign *a, const struct gf_kq_group *g,
                       const char *f)
{
    for (size_t i = 0; i < a->n_tot; i++)
        if (a->tot[i].group == g)
            a->tot[i].flavor = f;
}

/* ---- preemption -------------------------------------------------------- */

static bool policy_allows(enum gf_kq_policy p, const struct gf_kq_wl *cand,
                          const struct gf_kq_wl *wl)
{
    switch (p) {
    case GF_KQ_LOWER:
        return cand->prio < wl->prio;
    case GF_KQ_LOWER_OR_NEWER_EQUAL:
        return cand->prio < wl->prio ||
               (cand->prio == wl->prio && cand->created_ms > wl->created_ms);
    case GF_KQ_ANY:
        return true;
    default:
        return false;
    }
}

/* Whether cand holds quota of flavor f for a resource of group g. */
static bool uses_group(const struct gf_kq_wl *cand, const struct gf_kq_group *g,
                       const char *f)
{
    for (size_t u = 0; u < cand->n_uses; u++) {
        if (strcmp(cand->uses[u].flavor, f) != 0)
            continue;
        for (size_t r = 0; r < g->n_res; r++)
            if (strcmp(g->res[r], cand->uses[u].res) == 0)
                return true;
    }
    return false;
}

/* Whether cq is using more than its nominal quota of a cell cand holds. */
static bool borrowing(const struct gf_kq_world *w, const struct gf_kq_wl *cand)
{
    const struct gf_kq_cq *cq = gf_htab_get_str(w->cqs, cand->adm_cq);
    for (size_t u = 0; cq != NULL && u < cand->n_uses; u++) {
        const struct gf_kq_cell *c =
            gf__kq_cell(cq, cand->uses[u].flavor, cand->uses[u].res);
        if (c != NULL && c->usage > c->nominal)
            return true;
    }
    return false;
}

struct cands {
    struct gf_kq_wl **v;
    size_t n;
    const struct gf_kq_cq *cq; /* the preempting ClusterQueue */
};

static int cand_cmp(const void *pa, const void *pb)
{
    const struct gf_kq_wl *a = *(struct gf_kq_wl *const *)pa;
    const struct gf_kq_wl *b = *(struct gf_kq_wl *const *)pb;
    /* Only adm_cq differs in "sameness"; other ClusterQueues go first. */
    if (a->prio != b->prio)
        return a->prio < b->prio ? -1 : 1;
    if (a->admitted_ms != b->admitted_ms)
        return a->admitted_ms > b->admitted_ms ? -1 : 1;
    return a->seq > b->seq ? -1 : (a->seq < b->seq ? 1 : 0);
}

/*
 * Whether, without the same-ClusterQueue candidates, wl fits in cq's
 * nominal quota: only then may it reclaim from the cohort.
 */
static bool within_nominal(const struct gf_kq_world *w,
                           const struct gf_kq_cq *cq,
                           const struct gf_kq_assign *a,
                           const struct gf_kq_group *g, const char *f,
                           const struct gf_kq_wl *wl)
{
    for (size_t i = 0; i < a->n_tot; i++) {
        if (a->tot[i].group != g)
            continue;
        const struct gf_kq_cell *c = gf__kq_cell(cq, f, a->tot[i].res);
        int64_t usage = c->usage;
        size_t pos = 0;
        void *v;
        while (gf_htab_scan(w->wls, &pos, NULL, &v)) {
            const struct gf_kq_wl *o = v;
            if (o->adm_cq == NULL || o->finished || o->victim ||
                strcmp(o->adm_cq, cq->name) != 0 ||
                !policy_allows(cq->within, o, wl))
                continue;
            for (size_t u = 0; u < o->n_uses; u++)
                if (strcmp(o->uses[u].flavor, f) == 0 &&
                    strcmp(o->uses[u].res, a->tot[i].res) == 0)
                    usage -= o->uses[u].q;
        }
        if (usage + a->tot[i].q > c->nominal)
            return false;
    }
    return true;
}

static bool is_candidate(const struct gf_kq_world *w, const struct gf_kq_cq *cq,
                         const struct gf_kq_wl *o, const struct gf_kq_wl *wl,
                         bool reclaim)
{
    if (o == wl || o->adm_cq == NULL || o->finished || o->victim)
        return false;
    if (strcmp(o->adm_cq, cq->name) == 0)
        return policy_allows(cq->within, o, wl);
    if (!reclaim)
        return false;
    const struct gf_kq_cq *ocq = gf_htab_get_str(w->cqs, o->adm_cq);
    return ocq != NULL && ocq->cohort != NULL &&
           strcmp(ocq->cohort, cq->cohort) == 0 &&
           policy_allows(cq->reclaim, o, wl);
}

static void collect(const struct gf_kq_world *w, const struct gf_kq_cq *cq,
                    const struct gf_kq_wl *wl, const struct gf_kq_group *g,
                    const char *f, bool reclaim, struct cands *c)
{
    size_t pos = 0;
    void *v;
    while (gf_htab_scan(w->wls, &pos, NULL, &v)) {
        struct gf_kq_wl *o = v;
        if (!is_candidate(w, cq, o, wl, reclaim) || !uses_group(o, g, f))
            continue;
        c->v = gf_realloc(c->v, (c->n + 1) * sizeof(*c->v));
        c->v[c->n++] = o;
    }
    if (c->n == 0)
        return;
    /* Other ClusterQueues' Workloads first, then by cand_cmp. */
    qsort(c->v, c->n, sizeof(*c->v), cand_cmp);
    size_t k = 0;
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->v[i]->adm_cq, cq->name) != 0) {
            struct gf_kq_wl *t = c->v[i];
            memmove(&c->v[k + 1], &c->v[k], (i - k) * sizeof(*c->v));
            c->v[k++] = t;
        }
}

/*
 * Removes candidates in order until wl fits flavor f of group g, then
 * gives back the ones not needed. Returns the victims (removed from the
 * cells) in *out, or false with every cell as it was.
 */
static bool preempt_on(const struct gf_kq_world *w, struct gf_kq_cq *cq,
                       const struct gf_kq_wl *wl, struct gf_kq_assign *a,
                       const struct gf_kq_group *g, const char *f)
{
    bool reclaim = cq->cohort != NULL && cq->reclaim != GF_KQ_NEVER &&
                   within_nominal(w, cq, a, g, f, wl);
    struct cands c = {.cq = cq};
    collect(w, cq, wl, g, f, reclaim, &c);
    struct gf_kq_wl **taken = gf_calloc(c.n + 1, sizeof(*taken));
    size_t n = 0;
    bool ok = fits(w, cq, a, g, f, false, NULL);
    for (size_t i = 0; i < c.n && !ok; i++) {
        struct gf_kq_wl *o = c.v[i];
        /* A lender reclaims only what the other queue is borrowing. */
        if (strcmp(o->adm_cq, cq->name) != 0 && !borrowing(w, o))
            continue;
        gf__kq_account(w, o, -1);
        taken[n++] = o;
        ok = fits(w, cq, a, g, f, false, NULL);
    }
    if (ok && n > 1) {
        /* Keep every victim but the last that turns out not needed. */
        size_t k = n - 1;
        for (size_t i = n - 1; i-- > 0;) {
            gf__kq_account(w, taken[i], 1);
            if (fits(w, cq, a, g, f, false, NULL)) {
                memmove(&taken[i], &taken[i + 1], (n - i - 1) * sizeof(*taken));
                n--;
                k--;
            } else {
                gf__kq_account(w, taken[i], -1);
            }
        }
        (void)k;
    }
    if (!ok) {
        for (size_t i = 0; i < n; i++)
            gf__kq_account(w, taken[i], 1);
        n = 0;
    }
    for (size_t i = 0; i < n; i++) {
        taken[i]->victim = true;
        a->victims =
            gf_realloc(a->victims, (a->n_victims + 1) * sizeof(*a->victims));
        a->victims[a->n_victims++] = taken[i];
    }
    gf_free(taken);
    gf_free(c.v);
    return ok;
}

static void undo_victims(const struct gf_kq_world *w, struct gf_kq_assign *a)
{
    for (size_t i = 0; i < a->n_victims; i++) {
        gf__kq_account(w, a->victims[i], 1);
        a->victims[i]->victim = false;
    }
    a->n_victims = 0;
}

/* Picks a flavor for group g; false when none fits even by preemption. */
static bool assign_group(const struct gf_kq_world *w, struct gf_kq_cq *cq,
                         const struct gf_kq_wl *wl, struct gf_kq_assign *a,
                         const struct gf_kq_group *g, bool *preempt)
{
    for (size_t f = 0; f < g->n_fl; f++)
        if (fits(w, cq, a, g, g->fl[f].name, f == 0, a)) {
            set_flavor(a, g, g->fl[f].name);
            return true;
        }
    bool can_preempt = cq->within != GF_KQ_NEVER ||
                       (cq->cohort != NULL && cq->reclaim != GF_KQ_NEVER);
    for (size_t f = 0; can_preempt && f < g->n_fl; f++)
        if (preempt_on(w, cq, wl, a, g, g->fl[f].name)) {
            set_flavor(a, g, g->fl[f].name);
            *preempt = true;
            return true;
        }
    return false;
}

void gf__kq_try(const struct gf_kq_world *w, struct gf_kq_cq *cq,
                const struct gf_kq_wl *wl, struct gf_kq_assign *a)
{
    memset(a, 0, sizeof(*a));
    if (!totals(cq, wl, a)) {
        a->fit = GF_KQ_NOFIT;
        return;
    }
    bool preempt = false;
    for (size_t i = 0; i < a->n_tot; i++) {
        if (a->tot[i].flavor != NULL)
            continue;
        if (!assign_group(w, cq, wl, a, a->tot[i].group, &preempt)) {
            undo_victims(w, a);
            a->fit = GF_KQ_NOFIT;
            return;
        }
    }
    a->fit = preempt ? GF_KQ_PREEMPT : GF_KQ_FIT;
}
