/*
 * kueue_quota: Kueue's quota arithmetic over Kueue-lite's index (see
 * kueue_internal.h). Pure: no store, no clock, no I/O.
 *
 * The rules, as Kueue's documentation states them:
 *   - a ClusterQueue may use its nominalQuota; in a cohort it may also
 *     borrow what other members (and the Cohort object's own quota)
 *     leave unused, up to its borrowingLimit ("how much over nominal the
 *     ClusterQueue may use");
 *   - a member lends at most its lendingLimit of its nominal quota; the
 *     rest (nominal - lendingLimit) is kept for its own use;
 *   - flavors are assigned per pod set, per resource group, in the order
 *     the ClusterQueue lists them, as flavorFungibility says; a flavor
 *     whose nodeLabels contradict the pod set's nodeSelector is skipped;
 *   - classic preemption: eligible only when the request is within the
 *     flavor's nominal quota or borrowWithinCohort is on; candidates of
 *     the same queue (withinClusterQueue) and of borrowing cohort
 *     members (reclaimWithinCohort, borrowWithinCohort), other queues
 *     first, then lower priorities, then the most recently admitted;
 *     taken greedily (without borrowing first when the queue is under
 *     nominal), then the unneeded ones given back, newest first.
 */
#include "e2e/kubesim/kueue_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/json.h"

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

/*
 * A Cohort object's own quota of [flavor, res]: "nominalQuota defined at
 * the Cohort level represents additional resources on top of those
 * defined by ClusterQueues within the Cohort" (cohort.md).
 */
static int64_t cohort_own(const struct gf_kq_world *w, const char *cohort,
                          const char *flavor, const char *res)
{
    const struct gf_kq_cq *co =
        w->cohorts != NULL ? gf_htab_get_str(w->cohorts, cohort) : NULL;
    const struct gf_kq_cell *c =
        co != NULL ? gf__kq_cell(co, flavor, res) : NULL;
    return c != NULL ? c->nominal : 0;
}

/* Free lendable quota of the cohort for [flavor, res]. */
static int64_t cohort_free(const struct gf_kq_world *w, const char *cohort,
                           const char *flavor, const char *res)
{
    int64_t pool = cohort_own(w, cohort, flavor, res), used = 0;
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

/*
 * The most cq could ever reserve of [flavor, res]: its whole quota if the
 * other members used nothing (Kueue's "maximum capacity").
 */
static int64_t potential(const struct gf_kq_world *w, const struct gf_kq_cq *cq,
                         const char *flavor, const char *res)
{
    const struct gf_kq_cell *c = gf__kq_cell(cq, flavor, res);
    if (c == NULL)
        return 0;
    if (cq->cohort == NULL)
        return c->nominal;
    int64_t pool = cohort_own(w, cq->cohort, flavor, res);
    size_t pos = 0;
    void *v;
    while (gf_htab_scan(w->cqs, &pos, NULL, &v)) {
        const struct gf_kq_cq *m = v;
        const struct gf_kq_cell *mc =
            m->cohort != NULL && strcmp(m->cohort, cq->cohort) == 0
                ? gf__kq_cell(m, flavor, res)
                : NULL;
        if (mc != NULL)
            pool += mc->nominal - guaranteed(mc);
    }
    int64_t g = guaranteed(c);
    if (c->borrow != GF_KQ_UNSET)
        pool = min64(pool, c->nominal - g + c->borrow);
    return g + pool;
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

/* ---- label selectors ------------------------------------------------- */

static bool in_values(const cJSON *values, const char *v)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, values)
    {
        if (cJSON_IsString(it) && v != NULL && strcmp(it->valuestring, v) == 0)
            return true;
    }
    return false;
}

bool gf__kq_label_selector_match(const cJSON *sel, const cJSON *labels)
{
    if (!cJSON_IsObject(sel))
        return false; /* null: "no namespaces eligible" */
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(sel, "matchLabels"))
    {
        /* Label keys are data (kubernetes.io/metadata.name): one key. */
        const char *v = gf_json_as_str(
            cJSON_GetObjectItemCaseSensitive(labels, it->string));
        if (v == NULL || !cJSON_IsString(it) || strcmp(v, it->valuestring) != 0)
            return false;
    }
    cJSON_ArrayForEach(
        it, cJSON_GetObjectItemCaseSensitive(sel, "matchExpressions"))
    {
        const char *key = gf_json_str(it, "key");
        const char *op = gf_json_str(it, "operator");
        if (key == NULL || op == NULL)
            return false;
        const char *v =
            gf_json_as_str(cJSON_GetObjectItemCaseSensitive(labels, key));
        const cJSON *vals = cJSON_GetObjectItemCaseSensitive(it, "values");
        bool ok;
        if (strcmp(op, "In") == 0)
            ok = in_values(vals, v);
        else if (strcmp(op, "NotIn") == 0)
            ok = !in_values(vals, v);
        else if (strcmp(op, "Exists") == 0)
            ok = v != NULL;
        else if (strcmp(op, "DoesNotExist") == 0)
            ok = v == NULL;
        else
            ok = false; /* the API server rejects other operators */
        if (!ok)
            return false;
    }
    return true;
}

/* ---- flavor assignment ------------------------------------------------ */

int gf__kq_group_idx(const struct gf_kq_cq *cq, const char *res)
{
    for (size_t g = 0; g < cq->n_groups; g++)
        for (size_t r = 0; r < cq->groups[g].n_res; r++)
            if (strcmp(cq->groups[g].res[r], res) == 0)
                return (int)g;
    return -1;
}

static int64_t tot_get(const struct gf_kq_assign *a, const char *f,
                       const char *res)
{
    for (size_t i = 0; i < a->n_tot; i++)
        if (strcmp(a->tot[i].flavor, f) == 0 && strcmp(a->tot[i].res, res) == 0)
            return a->tot[i].q;
    return 0;
}

static void tot_add(struct gf_kq_assign *a, const char *f, const char *res,
                    int64_t q)
{
    for (size_t i = 0; i < a->n_tot; i++)
        if (strcmp(a->tot[i].flavor, f) == 0 &&
            strcmp(a->tot[i].res, res) == 0) {
            a->tot[i].q += q;
            return;
        }
    a->tot = gf_realloc(a->tot, (a->n_tot + 1) * sizeof(*a->tot));
    a->tot[a->n_tot++] = (struct gf_kq_fr){.flavor = f, .res = res, .q = q};
}

/*
 * Whether a request counts: "pods" is one per pod, requested only when
 * the ClusterQueue covers it (Kueue adds it then, and only then).
 */
static bool counted(const struct gf_kq_cq *cq, const struct gf_kq_req *r)
{
    if (r->milli <= 0)
        return false;
    return strcmp(r->res, "pods") != 0 || gf__kq_group_idx(cq, "pods") >= 0;
}

/* The reasons a pod set did not fit, sorted and joined as Kueue does. */
struct reasons {
    char *v[16];
    size_t n;
};

static void reason_add(struct reasons *rs, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void reason_add(struct reasons *rs, const char *fmt, ...)
{
    if (rs == NULL || rs->n == sizeof(rs->v) / sizeof(rs->v[0]))
        return;
    char buf[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    rs->v[rs->n++] = gf_strdup(buf);
}

static int str_cmp(const void *pa, const void *pb)
{
    return strcmp(*(char *const *)pa, *(char *const *)pb);
}

/* Appends "couldn't assign flavors to pod set X: r1, r2" to a->msg. */
static void reasons_flush(struct reasons *rs, const char *ps,
                          struct gf_kq_assign *a)
{
    qsort(rs->v, rs->n, sizeof(rs->v[0]), str_cmp);
    size_t len = strlen(a->msg);
    len += (size_t)snprintf(
        a->msg + len, sizeof(a->msg) - len,
        "%scouldn't assign flavors to pod set %s: ", len > 0 ? "; " : "", ps);
    for (size_t i = 0; i < rs->n && len < sizeof(a->msg); i++)
        len += (size_t)snprintf(a->msg + len, sizeof(a->msg) - len, "%s%s",
                                i > 0 ? ", " : "", rs->v[i]);
    for (size_t i = 0; i < rs->n; i++)
        gf_free(rs->v[i]);
    rs->n = 0;
}

/*
 * Kueue's flavorSelector: of the pod's nodeSelector, only the keys the
 * flavor's nodeLabels name are compared (other keys are for the
 * scheduler, not for flavor choice).
 */
static bool flavor_matches(const cJSON *node_labels, const cJSON *node_sel)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, node_sel)
    {
        const cJSON *l =
            cJSON_GetObjectItemCaseSensitive(node_labels, it->string);
        if (l == NULL)
            continue;
        if (!cJSON_IsString(l) || !cJSON_IsString(it) ||
            strcmp(l->valuestring, it->valuestring) != 0)
            return false;
    }
    return true;
}

/* ---- preemption: Kueue's classic algorithm ----------------------------- */

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

/* What a candidate may be preempted as (Kueue's preemption variants). */
enum cand_kind {
    CAND_SAME,         /* same ClusterQueue, withinClusterQueue */
    CAND_NO_BORROW,    /* cohort: only if the preemptor will not borrow */
    CAND_WHILE_BORROW, /* cohort: even if the preemptor borrows */
};

struct cand {
    struct gf_kq_wl *wl;
    enum cand_kind kind;
};

/* The cells the preemption is for: where the Workload does not fit now. */
struct need {
    const struct gf_kq_fr *v[32];
    size_t n;
};

static bool uses_need(const struct gf_kq_wl *o, const struct need *nd)
{
    for (size_t u = 0; u < o->n_uses; u++)
        for (size_t i = 0; i < nd->n; i++)
            if (strcmp(o->uses[u].flavor, nd->v[i]->flavor) == 0 &&
                strcmp(o->uses[u].res, nd->v[i]->res) == 0 && o->uses[u].q > 0)
                return true;
    return false;
}

/* Whether q is using more than its nominal quota in one of the cells. */
static bool over_nominal(const struct gf_kq_cq *q, const struct need *nd)
{
    for (size_t i = 0; i < nd->n; i++) {
        const struct gf_kq_cell *c =
            gf__kq_cell(q, nd->v[i]->flavor, nd->v[i]->res);
        if (c != NULL && c->usage > c->nominal)
            return true;
    }
    return false;
}

static int cand_cmp(const void *pa, const void *pb)
{
    const struct cand *a = pa, *b = pb;
    bool as = a->kind == CAND_SAME, bs = b->kind == CAND_SAME;
    if (as != bs)
        return as ? 1 : -1; /* other ClusterQueues' borrowers first */
    if (a->wl->prio != b->wl->prio)
        return a->wl->prio < b->wl->prio ? -1 : 1;
    if (a->wl->admitted_ms != b->wl->admitted_ms)
        return a->wl->admitted_ms > b->wl->admitted_ms ? -1 : 1;
    return a->wl->seq > b->wl->seq ? -1 : (a->wl->seq < b->wl->seq ? 1 : 0);
}

static bool classify(const struct gf_kq_world *w, const struct gf_kq_cq *cq,
                     const struct gf_kq_wl *wl, const struct gf_kq_wl *o,
                     enum cand_kind *kind)
{
    if (o == wl || o->adm_cq == NULL || o->finished || o->victim)
        return false;
    if (strcmp(o->adm_cq, cq->name) == 0) {
        *kind = CAND_SAME;
        return policy_allows(cq->within, o, wl);
    }
    const struct gf_kq_cq *ocq = gf_htab_get_str(w->cqs, o->adm_cq);
    if (cq->cohort == NULL || ocq == NULL || ocq->cohort == NULL ||
        strcmp(ocq->cohort, cq->cohort) != 0 ||
        !policy_allows(cq->reclaim, o, wl))
        return false;
    /* borrowWithinCohort: only lower priorities, and none above the
     * threshold, may be preempted while the preemptor borrows. */
    if (cq->bwc == GF_KQ_NEVER || o->prio >= wl->prio ||
        (cq->bwc_has_max && o->prio > cq->bwc_max))
        *kind = CAND_NO_BORROW;
    else
        *kind = CAND_WHILE_BORROW;
    return true;
}

/* Whether the whole Workload fits now; without borrowing if !borrow. */
static bool wl_fits(const struct gf_kq_world *w, const struct gf_kq_cq *cq,
                    const struct gf_kq_assign *a, bool borrow)
{
    for (size_t i = 0; i < a->n_tot; i++) {
        const struct gf_kq_fr *t = &a->tot[i];
        const struct gf_kq_cell *c = gf__kq_cell(cq, t->flavor, t->res);
        if (c == NULL)
            return false;
        if (!borrow && c->usage + t->q > c->nominal)
            return false;
        if (t->q > gf__kq_available(w, cq, t->flavor, t->res))
            return false;
    }
    return true;
}

static void restore(const struct gf_kq_world *w, struct cand **taken, size_t n)
{
    for (size_t i = 0; i < n; i++)
        gf__kq_account(w, taken[i]->wl, 1);
}

/* One greedy run over the candidates, then the fill-back. */
static size_t attempt(const struct gf_kq_world *w, const struct gf_kq_cq *cq,
                      const struct gf_kq_assign *a, const struct need *nd,
                      struct cand *c, size_t nc, bool borrow,
                      struct cand **taken)
{
    size_t n = 0;
    for (size_t i = 0; i < nc; i++) {
        if (c[i].kind != CAND_SAME) {
            if (borrow && c[i].kind == CAND_NO_BORROW)
                continue;
            /* Only what other queues borrow is taken back from them. */
            const struct gf_kq_cq *ocq =
                gf_htab_get_str(w->cqs, c[i].wl->adm_cq);
            if (ocq == NULL || !over_nominal(ocq, nd))
                continue;
        }
        gf__kq_account(w, c[i].wl, -1);
        taken[n++] = &c[i];
        if (!wl_fits(w, cq, a, borrow))
            continue;
        /* Minimize: give back, newest first, what is not needed. */
        for (size_t k = n - 1; k-- > 0;) {
            gf__kq_account(w, taken[k]->wl, 1);
            if (wl_fits(w, cq, a, borrow)) {
                taken[k] = taken[n - 1];
                n--;
            } else {
                gf__kq_account(w, taken[k]->wl, -1);
            }
        }
        return n;
    }
    restore(w, taken, n);
    return 0;
}

/*
 * Finds the targets for wl's assignment in a (the Workload's quota per
 * cell is a->tot). On success their usage is removed from the cells and
 * they are marked as victims in a; otherwise nothing changes.
 */
static bool find_targets(const struct gf_kq_world *w, const struct gf_kq_cq *cq,
                         const struct gf_kq_wl *wl, struct gf_kq_assign *a)
{
    struct need nd = {.n = 0};
    bool under = true;
    for (size_t i = 0; i < a->n_tot && nd.n < 32; i++) {
        const struct gf_kq_fr *t = &a->tot[i];
        if (t->q <= gf__kq_available(w, cq, t->flavor, t->res))
            continue;
        nd.v[nd.n++] = t;
        const struct gf_kq_cell *c = gf__kq_cell(cq, t->flavor, t->res);
        if (c == NULL || c->usage >= c->nominal)
            under = false;
    }
    if (nd.n == 0)
        return false;
    struct cand *c = NULL;
    size_t nc = 0;
    bool other = false;
    size_t pos = 0;
    void *v;
    while (gf_htab_scan(w->wls, &pos, NULL, &v)) {
        struct gf_kq_wl *o = v;
        enum cand_kind kind;
        if (!classify(w, cq, wl, o, &kind) || !uses_need(o, &nd))
            continue;
        c = gf_realloc(c, (nc + 1) * sizeof(*c));
        c[nc++] = (struct cand){o, kind};
        other |= kind != CAND_SAME;
    }
    if (nc == 0)
        return false;
    qsort(c, nc, sizeof(*c), cand_cmp);
    /*
     * Which runs, in which order (classic preemption): with no candidate
     * in other queues, or when they may only be reclaimed without
     * borrowing and cq is not under nominal, borrowing is allowed; when
     * borrowWithinCohort is off, first without borrowing (reclaim), then
     * with; else with, then without.
     */
    bool runs[2];
    size_t n_runs;
    bool forbidden = cq->bwc == GF_KQ_NEVER;
    if (!other || (forbidden && !under)) {
        runs[0] = true;
        n_runs = 1;
    } else {
        runs[0] = !forbidden;
        runs[1] = forbidden;
        n_runs = 2;
    }
    struct cand **taken = gf_calloc(nc + 1, sizeof(*taken));
    size_t n = 0;
    for (size_t r = 0; r < n_runs && n == 0; r++)
        n = attempt(w, cq, a, &nd, c, nc, runs[r], taken);
    for (size_t i = 0; i < n; i++) {
        taken[i]->wl->victim = true;
        a->victims =
            gf_realloc(a->victims, (a->n_victims + 1) * sizeof(*a->victims));
        a->while_borrowing =
            gf_realloc(a->while_borrowing,
                       (a->n_victims + 1) * sizeof(*a->while_borrowing));
        a->while_borrowing[a->n_victims] = taken[i]->kind == CAND_WHILE_BORROW;
        a->victims[a->n_victims++] = taken[i]->wl;
    }
    gf_free(taken);
    gf_free(c);
    return n > 0;
}

void gf__kq_assign_undo(const struct gf_kq_world *w, struct gf_kq_assign *a)
{
    for (size_t i = 0; i < a->n_victims; i++) {
        gf__kq_account(w, a->victims[i], 1);
        a->victims[i]->victim = false;
    }
    a->n_victims = 0;
}

void gf__kq_assign_free(struct gf_kq_assign *a)
{
    GF_FREE(a->psfl);
    GF_FREE(a->tot);
    GF_FREE(a->victims);
    GF_FREE(a->while_borrowing);
    a->n_tot = a->n_victims = 0;
}

/* ---- per pod set ------------------------------------------------------ */

/* How a flavor does for a pod set: the modes of Kueue's flavor assigner. */
struct option {
    enum gf_kq_fit mode;
    bool borrow;
};

/* Rank of a feasible option, lower is better, by the preference. */
static int rank_of(const struct gf_kq_cq *cq, struct option o)
{
    if (o.mode == GF_KQ_FIT)
        return o.borrow ? (cq->pref == GF_KQ_PREEMPT_OVER_BORROW ? 2 : 1) : 0;
    if (!o.borrow)
        return cq->pref == GF_KQ_PREEMPT_OVER_BORROW ? 1 : 2;
    return 3;
}

/*
 * Whether preemption could make room for ps in flavor f (Kueue's
 * preemption oracle): the targets are looked for with the quota assigned
 * so far plus this pod set, then given back.
 */
static bool can_preempt(const struct gf_kq_world *w, const struct gf_kq_cq *cq,
                        const struct gf_kq_wl *wl, const struct gf_kq_assign *a,
                        const struct gf_kq_podset *ps, int g, const char *f)
{
    if (cq->within == GF_KQ_NEVER &&
        (cq->cohort == NULL || cq->reclaim == GF_KQ_NEVER))
        return false;
    struct gf_kq_assign sim = {.n_tot = 0};
    for (size_t i = 0; i < a->n_tot; i++)
        tot_add(&sim, a->tot[i].flavor, a->tot[i].res, a->tot[i].q);
    for (size_t r = 0; r < ps->n_req; r++)
        if (counted(cq, &ps->req[r]) &&
            gf__kq_group_idx(cq, ps->req[r].res) == g)
            tot_add(&sim, f, ps->req[r].res, ps->count * ps->req[r].milli);
    bool ok = find_targets(w, cq, wl, &sim);
    gf__kq_assign_undo(w, &sim);
    gf__kq_assign_free(&sim);
    return ok;
}

/* Whether request r of a pod set counts in resource group g. */
static bool in_group(const struct gf_kq_cq *cq, const struct gf_kq_req *r,
                     int g)
{
    return counted(cq, r) && gf__kq_group_idx(cq, r->res) == g;
}

/*
 * How one request of ps does in flavor f: GF_KQ_FIT, GF_KQ_PREEMPT (it
 * does not fit now, and may preempt) or GF_KQ_NOFIT, with the reason.
 */
static enum gf_kq_fit try_request(const struct gf_kq_world *w,
                                  const struct gf_kq_cq *cq,
                                  const struct gf_kq_assign *a,
                                  const struct gf_kq_podset *ps,
                                  const struct gf_kq_req *q, const char *f,
                                  bool *borrow, struct reasons *rs)
{
    const struct gf_kq_cell *c = gf__kq_cell(cq, f, q->res);
    int64_t before = tot_get(a, f, q->res);
    int64_t val = before + ps->count * q->milli;
    int64_t max = potential(w, cq, f, q->res);
    char s1[32], s2[32], s3[32];
    if (c == NULL || val > max) {
        gf__kq_qty(q->res, before, s1);
        gf__kq_qty(q->res, ps->count * q->milli, s2);
        gf__kq_qty(q->res, max, s3);
        reason_add(rs,
                   "insufficient quota for %s in flavor %s, previously "
                   "considered podsets requests (%s) + current podset "
                   "request (%s) > maximum capacity (%s)",
                   q->res, f, s1, s2, s3);
        return GF_KQ_NOFIT;
    }
    int64_t avail = gf__kq_available(w, cq, f, q->res);
    *borrow |= c->usage + val > c->nominal;
    if (val <= avail)
        return GF_KQ_FIT;
    gf__kq_qty(q->res, val - max64(0, avail), s1);
    reason_add(rs,
               "insufficient unused quota for %s in flavor %s, %s more "
               "needed",
               q->res, f, s1);
    /* Classic preemption: only below nominal, or borrowWithinCohort. */
    if (val > c->nominal && cq->bwc == GF_KQ_NEVER)
        return GF_KQ_NOFIT;
    return GF_KQ_PREEMPT;
}

/* Whether ps in f, after its targets are gone, uses more than nominal. */
static bool borrows_after(const struct gf_kq_cq *cq,
                          const struct gf_kq_assign *a,
                          const struct gf_kq_podset *ps, int g, const char *f)
{
    for (size_t r = 0; r < ps->n_req; r++) {
        const struct gf_kq_req *q = &ps->req[r];
        if (!in_group(cq, q, g))
            continue;
        const struct gf_kq_cell *c = gf__kq_cell(cq, f, q->res);
        if (c != NULL &&
            tot_get(a, f, q->res) + ps->count * q->milli > c->nominal)
            return true;
    }
    return false;
}

/* How ps does in flavor f of group g, with reasons when it does not fit. */
static struct option try_flavor(const struct gf_kq_world *w,
                                const struct gf_kq_cq *cq,
                                const struct gf_kq_wl *wl,
                                const struct gf_kq_assign *a,
                                const struct gf_kq_podset *ps, int g,
                                const char *f, struct reasons *rs)
{
    const struct option nofit = {GF_KQ_NOFIT, false};
    struct option o = {GF_KQ_FIT, false};
    const cJSON *labels =
        w->flavors != NULL ? gf_htab_get_str(w->flavors, f) : NULL;
    if (labels == NULL) {
        reason_add(rs, "flavor %s not found", f);
        return nofit;
    }
    if (!flavor_matches(labels, ps->node_sel)) {
        reason_add(rs, "flavor %s doesn't match node affinity", f);
        return nofit;
    }
    for (size_t r = 0; r < ps->n_req; r++) {
        if (!in_group(cq, &ps->req[r], g))
            continue;
        enum gf_kq_fit m =
            try_request(w, cq, a, ps, &ps->req[r], f, &o.borrow, rs);
        if (m == GF_KQ_NOFIT)
            return nofit;
        if (m > o.mode)
            o.mode = m;
    }
    if (o.mode != GF_KQ_PREEMPT)
        return o;
    if (!can_preempt(w, cq, wl, a, ps, g, f))
        return nofit;
    o.borrow = borrows_after(cq, a, ps, g, f);
    return o;
}

/*
 * Picks the flavor of group g for pod set ps (flavorFungibility): a
 * flavor where it fits without borrowing is taken at once; one where it
 * fits by borrowing stops the search unless whenCanBorrow is
 * TryNextFlavor; one where it needs preemption stops it only when
 * whenCanPreempt is MayStopSearch. Otherwise the best option seen wins.
 */
static enum gf_kq_fit pick_flavor(const struct gf_kq_world *w,
                                  const struct gf_kq_cq *cq,
                                  const struct gf_kq_wl *wl,
                                  struct gf_kq_assign *a,
                                  const struct gf_kq_podset *ps, int g,
                                  const char **out, struct reasons *rs)
{
    const struct gf_kq_group *gr = &cq->groups[g];
    struct option best = {GF_KQ_NOFIT, false};
    const char *best_f = NULL;
    for (size_t f = 0; f < gr->n_fl; f++) {
        const char *name = gr->fl[f].name;
        struct option o = try_flavor(w, cq, wl, a, ps, g, name, rs);
        if (o.mode == GF_KQ_NOFIT)
            continue;
        bool stop = (o.mode == GF_KQ_FIT && !o.borrow) ||
                    (o.mode == GF_KQ_FIT && !cq->borrow_try_next) ||
                    (o.mode == GF_KQ_PREEMPT && cq->preempt_stop);
        if (best_f == NULL || rank_of(cq, o) < rank_of(cq, best)) {
            best = o;
            best_f = name;
        }
        if (stop) {
            best = o;
            best_f = name;
            break;
        }
    }
    *out = best_f;
    return best.mode;
}

/*
 * Assigns the flavors of pod set p, adding its quota to a->tot; the
 * worst mode over its groups, GF_KQ_NOFIT with the reasons in a->msg.
 */
static enum gf_kq_fit assign_podset(const struct gf_kq_world *w,
                                    const struct gf_kq_cq *cq,
                                    const struct gf_kq_wl *wl,
                                    struct gf_kq_assign *a, size_t p)
{
    const struct gf_kq_podset *ps = &wl->ps[p];
    struct reasons rs = {.n = 0};
    enum gf_kq_fit worst = GF_KQ_FIT;
    for (size_t r = 0; r < ps->n_req && worst != GF_KQ_NOFIT; r++)
        if (counted(cq, &ps->req[r]) &&
            gf__kq_group_idx(cq, ps->req[r].res) < 0) {
            reason_add(&rs, "resource %s unavailable in ClusterQueue",
                       ps->req[r].res);
            worst = GF_KQ_NOFIT;
        }
    for (size_t g = 0; g < cq->n_groups && worst != GF_KQ_NOFIT; g++) {
        bool used = false;
        for (size_t r = 0; r < ps->n_req; r++)
            used |= in_group(cq, &ps->req[r], (int)g);
        if (!used)
            continue;
        const char *f = NULL;
        enum gf_kq_fit m = pick_flavor(w, cq, wl, a, ps, (int)g, &f, &rs);
        if (m > worst)
            worst = m;
        if (m == GF_KQ_NOFIT)
            break;
        a->psfl[p * cq->n_groups + g] = f;
        /* Pod sets after this one see its quota as assumed usage. */
        for (size_t r = 0; r < ps->n_req; r++)
            if (in_group(cq, &ps->req[r], (int)g))
                tot_add(a, f, ps->req[r].res, ps->count * ps->req[r].milli);
    }
    /* Kueue's message names the pod sets that did not simply fit. */
    if (worst != GF_KQ_FIT)
        reasons_flush(&rs, ps->name, a);
    for (size_t i = 0; i < rs.n; i++)
        gf_free(rs.v[i]);
    return worst;
}

void gf__kq_try(const struct gf_kq_world *w, struct gf_kq_cq *cq,
                const struct gf_kq_wl *wl, struct gf_kq_assign *a)
{
    memset(a, 0, sizeof(*a));
    a->n_groups = cq->n_groups;
    a->psfl = gf_calloc(wl->n_ps * cq->n_groups + 1, sizeof(*a->psfl));
    enum gf_kq_fit worst = GF_KQ_FIT;
    for (size_t p = 0; p < wl->n_ps; p++) {
        enum gf_kq_fit m = assign_podset(w, cq, wl, a, p);
        if (m > worst)
            worst = m;
    }
    if (worst == GF_KQ_PREEMPT && !find_targets(w, cq, wl, a))
        worst = GF_KQ_NOFIT;
    a->fit = worst;
    if (worst == GF_KQ_NOFIT)
        return;
    a->msg[0] = '\0';
    for (size_t i = 0; i < a->n_tot; i++) {
        const struct gf_kq_cell *c =
            gf__kq_cell(cq, a->tot[i].flavor, a->tot[i].res);
        if (c != NULL && c->usage + a->tot[i].q > c->nominal)
            a->borrows = true;
    }
}
