/*
 * decide: the actions for one pass over the ledger (see decide.h).
 *
 * A pass keeps what its own earlier actions take from each cell, lender,
 * borrower and pair (struct pass.taken), so that several starts in one
 * pass never add up past a cap: every START is checked against the
 * ledger's numbers minus what the pass has already promised.
 */
#include "policy/decide.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/htab.h"
#include "policy/internal.h"

#define MAX_CLASSES 64

/* A group queue's ledger records, looked up once per pass: the ledger
 * never frees members or ClusterQueues, so the pointers hold across the
 * slices of a pass (a record not there yet is looked up again). */
struct qres {
    const struct gf_ledger_member *lm;
    const struct gf_ledger_cq *lq;
};

struct pass {
    const struct gf_ledger *l;
    const struct gf_policy *p;
    int64_t now;
    struct gf_htab taken; /* key -> int64_t* GPUs promised this pass */
    /* Per group, its queues' records (qc + qoff[g] + i); NULL: no cache
     * (a one-Workload decision). */
    struct qres *qc;
    size_t *qoff;
};

/* A pass's queue cache, for every queue of every group. */
static void qcache_init(struct pass *ps)
{
    const struct gf_policy *p = ps->p;
    ps->qoff = gf_calloc(p->n_groups + 1, sizeof(*ps->qoff));
    size_t n = 0;
    for (size_t g = 0; g < p->n_groups; g++) {
        ps->qoff[g] = n;
        n += p->groups[g].n_queues;
    }
    ps->qc = gf_calloc(n + 1, sizeof(*ps->qc));
}

/* ---- small helpers --------------------------------------------------- */

static void why_set(struct gf_why *w, const char *rule, int64_t have,
                    int64_t need, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void why_set(struct gf_why *w, const char *rule, int64_t have,
                    int64_t need, const char *fmt, ...)
{
    w->rule = rule;
    w->have = have;
    w->need = need;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->text, sizeof(w->text), fmt, ap);
    va_end(ap);
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* A cap minus what is already used of it; INT64_MAX when uncapped. */
static int64_t room(const struct gf_policy_cap *c, int64_t nominal,
                    int64_t used)
{
    int64_t lim = gf_policy_cap_limit(c, nominal);
    return lim == GF_NO_CAP ? INT64_MAX : lim - used;
}

/*
 * Key of a pass counter: a tag and up to two ledger records (a cell, a
 * lender, a borrower, a lender and borrower pair). Records stay put while
 * decide runs (the ledger is const), and keying by address spares a string
 * key per lookup: four lookups per candidate cell were most of a pass.
 */
struct tkey {
    uintptr_t tag, a, b;
};

static int64_t taken(const struct pass *ps, char tag, const void *a,
                     const void *b)
{
    if (ps->taken.len == 0)
        return 0;
    struct tkey k = {(uintptr_t)tag, (uintptr_t)a, (uintptr_t)b};
    const int64_t *v = gf_htab_get(&ps->taken, &k, sizeof(k));
    return v != NULL ? *v : 0;
}

static void take(struct pass *ps, char tag, const void *a, const void *b,
                 int64_t gpus)
{
    struct tkey k = {(uintptr_t)tag, (uintptr_t)a, (uintptr_t)b};
    int64_t *v = gf_htab_get(&ps->taken, &k, sizeof(k));
    if (v == NULL) {
        v = gf_calloc(1, sizeof(*v));
        gf_htab_put(&ps->taken, &k, sizeof(k), v);
    }
    *v += gpus;
}

static void pass_free(struct pass *ps)
{
    gf_htab_free_all(&ps->taken, gf_free);
    gf_free(ps->qc);
    gf_free(ps->qoff);
}

static struct gf_action *push(struct gf_actions *a, enum gf_action_kind k)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 16;
        a->v = gf_realloc(a->v, a->cap * sizeof(*a->v));
    }
    struct gf_action *x = &a->v[a->n++];
    memset(x, 0, sizeof(*x));
    x->kind = k;
    return x;
}

void gf_action_clear(struct gf_action *a)
{
    gf_free(a->lease);
    gf_free(a->member);
    gf_free(a->namespace);
    gf_free(a->name);
    gf_free(a->group);
    gf_free(a->lender);
    gf_free(a->lender_cq);
    gf_free(a->flavor);
    for (size_t i = 0; i < a->n_victims; i++)
        gf_free(a->victims[i]);
    gf_free(a->victims);
    memset(a, 0, sizeof(*a));
}

void gf_actions_free(struct gf_actions *a)
{
    for (size_t i = 0; i < a->n; i++)
        gf_action_clear(&a->v[i]);
    gf_free(a->v);
    memset(a, 0, sizeof(*a));
}

const char *gf_action_kind_name(enum gf_action_kind k)
{
    static const char *const n[] = {"start", "withdraw", "suspect",
                                    "fence", "renew",    "reclaim"};
    return (unsigned)k < sizeof(n) / sizeof(n[0]) ? n[k] : "?";
}

/* The lease's names copied into an action. */
static void from_lease(struct gf_action *a, const struct gf_lease *l)
{
    a->lease = gf_strdup(l->name);
    a->member = gf_strdup(l->origin_member);
    a->namespace = gf_strdup(l->origin_namespace);
    a->name = gf_strdup(l->origin_name);
    a->group = gf_strdup(l->group);
    a->lender = gf_strdup(l->lender_member);
    a->lender_cq = gf_strdup(l->lender_cq);
    a->flavor = gf_strdup(l->lender_flavor);
    a->gpus = l->gpus;
    a->mode = l->mode;
    a->epoch = l->epoch;
}

/* ---- 1. lease upkeep -------------------------------------------------- */

static int cmp_lease_name(const void *a, const void *b)
{
    const struct gf_ledger_lease *x = *(const struct gf_ledger_lease *const *)a;
    const struct gf_ledger_lease *y = *(const struct gf_ledger_lease *const *)b;
    return strcmp(x->l.name, y->l.name);
}

/* When the hub may treat a silent lender's leases as fenced. */
static int64_t fence_time(const struct gf_policy *p,
                          const struct gf_ledger_member *m)
{
    const struct gf_policy_timing *t = &p->timing;
    int64_t d = t->lease_duration_ms;
    return m->last_heartbeat_ms + d + d * t->clock_drift_ppm / GF_PPM +
           t->fence_margin_ms;
}

int64_t gf_decide_next_fence_ms(const struct gf_ledger *l,
                                const struct gf_policy *p, int64_t now_ms)
{
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < p->n_members; i++) {
        if (p->members[i].fencing != GF_FENCING_AGENT)
            continue;
        const struct gf_ledger_member *m =
            gf_ledger_member(l, p->members[i].name);
        if (m == NULL || m->fresh == GF_FRESH_SYNCED)
            continue;
        int64_t at = fence_time(p, m);
        if (at > now_ms && at < next)
            next = at;
    }
    return next;
}

static void upkeep_suspect(struct pass *ps, const struct gf_ledger_lease *ll,
                           struct gf_actions *out)
{
    const struct gf_ledger_member *m = ll->lender;
    if (m->fresh == GF_FRESH_SYNCED)
        return; /* observed again: the controller adopts or deletes */
    int pm = gf_policy_member_index(ps->p, m->name);
    if (pm < 0 || ps->p->members[pm].fencing != GF_FENCING_AGENT)
        return; /* without an agent it is never assumed fenced */
    int64_t at = fence_time(ps->p, m);
    if (ps->now < at)
        return;
    struct gf_action *a = push(out, GF_ACT_FENCE);
    from_lease(a, &ll->l);
    why_set(&a->why, "fenceAfter", ps->now - m->last_heartbeat_ms,
            at - m->last_heartbeat_ms,
            "lender %s silent for %lldms >= D*(1+rho)+margin = %lldms: its "
            "agent has stopped the copy",
            m->name, (long long)(ps->now - m->last_heartbeat_ms),
            (long long)(at - m->last_heartbeat_ms));
}

static void upkeep_lease(struct pass *ps, const struct gf_ledger_lease *ll,
                         struct gf_actions *out)
{
    const struct gf_lease *l = &ll->l;
    const struct gf_policy_timing *t = &ps->p->timing;
    bool live = l->phase == GF_LEASE_PENDING || l->phase == GF_LEASE_ACTIVE ||
                l->phase == GF_LEASE_RECLAIMING;
    if (live && ll->lender->fresh != GF_FRESH_SYNCED) {
        struct gf_action *a = push(out, GF_ACT_SUSPECT);
        from_lease(a, l);
        why_set(&a->why, "lenderFreshness", 0, 0,
                "lender %s is %s: its GPUs stay counted as used and nothing "
                "more is sent there",
                ll->lender->name, gf_freshness_name(ll->lender->fresh));
        return;
    }
    if (l->phase == GF_LEASE_SUSPECT) {
        upkeep_suspect(ps, ll, out);
        return;
    }
    if (l->phase == GF_LEASE_PENDING &&
        ps->now - l->created_ms >= t->admit_timeout_ms) {
        struct gf_action *a = push(out, GF_ACT_WITHDRAW);
        from_lease(a, l);
        why_set(&a->why, "admitTimeout", ps->now - l->created_ms,
                t->admit_timeout_ms,
                "the copy was not admitted in %s within admitTimeout "
                "(%lldms)",
                l->lender_member, (long long)t->admit_timeout_ms);
        return;
    }
    int64_t d = t->lease_duration_ms;
    if (l->phase == GF_LEASE_ACTIVE && l->expires_ms - ps->now < 2 * d / 3) {
        struct gf_action *a = push(out, GF_ACT_RENEW);
        from_lease(a, l);
        a->until_ms = ps->now + d;
        why_set(&a->why, "leaseDuration", l->expires_ms - ps->now, 2 * d / 3,
                "less than 2D/3 of the term left: renewed to now + D");
    }
}

static void upkeep(struct pass *ps, struct gf_actions *out)
{
    size_t n = gf_ledger_leases(ps->l, NULL, 0);
    if (n == 0)
        return;
    const struct gf_ledger_lease **v = gf_calloc(n, sizeof(*v));
    n = gf_ledger_leases(ps->l, v, n);
    qsort(v, n, sizeof(*v), cmp_lease_name);
    for (size_t i = 0; i < n; i++)
        upkeep_lease(ps, v[i], out);
    gf_free(v);
}

/* ---- 2. reclaim -------------------------------------------------------- */

struct victim {
    const struct gf_ledger_lease *ll;
    const struct gf_policy *p;
};

static int victim_key_cmp(const struct gf_lease *x, const struct gf_lease *y,
                          enum gf_victim_key k)
{
    switch (k) {
    case GF_VICTIM_LOWEST_PRIORITY:
        return (x->priority > y->priority) - (x->priority < y->priority);
    case GF_VICTIM_NEWEST:
        return (x->started_ms < y->started_ms) -
               (x->started_ms > y->started_ms);
    case GF_VICTIM_OLDEST:
        return (x->started_ms > y->started_ms) -
               (x->started_ms < y->started_ms);
    case GF_VICTIM_LARGEST:
        return (x->gpus < y->gpus) - (x->gpus > y->gpus);
    case GF_VICTIM_SMALLEST:
        return (x->gpus > y->gpus) - (x->gpus < y->gpus);
    }
    return 0;
}

static int cmp_victims(const void *a, const void *b)
{
    const struct victim *x = a, *y = b;
    for (size_t i = 0; i < x->p->n_victim_order; i++) {
        int c = victim_key_cmp(&x->ll->l, &y->ll->l, x->p->victim_order[i]);
        if (c != 0)
            return c;
    }
    return strcmp(x->ll->l.name, y->ll->l.name);
}

/* GPUs free in cq's cells of the federated resource. */
static int64_t cq_free(const struct gf_ledger *l, const struct gf_ledger_cq *q)
{
    int64_t free_gpus = 0;
    for (size_t i = 0; i < q->n_cells; i++)
        if (q->cells[i]->in_spec &&
            strcmp(q->cells[i]->resource, gf_ledger_resource(l)) == 0)
            free_gpus += gf_ledger_cell_free(q->cells[i]);
    return free_gpus;
}

/*
 * Marks victims among the Active leases lent out of cq until `need`. The
 * GPUs of leases already Reclaiming out of cq are on their way back: they
 * count toward the need, so that a reclaim in its grace period is not
 * answered by a second round of victims on every pass.
 */
static void reclaim_cq(struct pass *ps, const struct gf_ledger_cq *q,
                       int64_t need, struct gf_actions *out)
{
    size_t n = gf_ledger_leases(ps->l, NULL, 0);
    const struct gf_ledger_lease **all = gf_calloc(n + 1, sizeof(*all));
    n = gf_ledger_leases(ps->l, all, n);
    struct victim *v = gf_calloc(n + 1, sizeof(*v));
    size_t nv = 0;
    for (size_t i = 0; i < n; i++) {
        if (!all[i]->holds || all[i]->cell == NULL || all[i]->cell->cq != q)
            continue;
        if (all[i]->l.phase == GF_LEASE_RECLAIMING)
            need -= all[i]->l.gpus;
        else if (all[i]->l.phase == GF_LEASE_ACTIVE)
            v[nv++] = (struct victim){all[i], ps->p};
    }
    qsort(v, nv, sizeof(*v), cmp_victims);
    int64_t freed = 0;
    size_t k = 0;
    while (k < nv && freed < need)
        freed += v[k++].ll->l.gpus;
    if (k > 0) {
        struct gf_action *a = push(out, GF_ACT_RECLAIM);
        a->lender = gf_strdup(q->member->name);
        a->lender_cq = gf_strdup(q->name);
        a->until_ms = ps->now + ps->p->timing.grace_period_ms;
        a->gpus = freed;
        a->victims = gf_calloc(k, sizeof(*a->victims));
        for (size_t i = 0; i < k; i++)
            a->victims[a->n_victims++] = gf_strdup(v[i].ll->l.name);
        why_set(&a->why, "reclaimAfter", freed, need,
                "%s/%s: its own Workloads have waited reclaimAfter for %lld "
                "GPUs that borrowers hold; %zu lease(s) freeing %lld GPUs "
                "get until now + gracePeriod",
                q->member->name, q->name, (long long)need, k, (long long)freed);
    }
    gf_free(v);
    gf_free(all);
}

static int cmp_cq(const void *a, const void *b)
{
    const struct gf_ledger_cq *x = *(const struct gf_ledger_cq *const *)a;
    const struct gf_ledger_cq *y = *(const struct gf_ledger_cq *const *)b;
    int c = strcmp(x->member->name, y->member->name);
    return c != 0 ? c : strcmp(x->name, y->name);
}

static void reclaim(struct pass *ps, struct gf_actions *out)
{
    /* Demand per ClusterQueue from Workloads that waited reclaimAfter. */
    struct gf_htab demand;
    gf_htab_init(&demand, GF_HTAB_OWN_KEYS);
    for (const struct gf_ledger_wl *w = gf_ledger_pending_first(ps->l);
         w != NULL; w = gf_ledger_pending_next(ps->l, w)) {
        if (w->cq == NULL || w->cq->member->fresh != GF_FRESH_SYNCED ||
            ps->now - w->pending_since_ms < ps->p->timing.reclaim_after_ms)
            continue;
        const struct gf_ledger_cq *q = w->cq;
        int64_t *d = gf_htab_get(&demand, &q, sizeof(q));
        if (d == NULL) {
            d = gf_calloc(1, sizeof(*d));
            gf_htab_put(&demand, &q, sizeof(q), d);
        }
        *d += w->gpus;
    }
    /* In ClusterQueue order, so the actions come out deterministically. */
    size_t n = gf_ledger_cqs(ps->l, NULL, 0);
    const struct gf_ledger_cq **qs = gf_calloc(n + 1, sizeof(*qs));
    n = gf_ledger_cqs(ps->l, qs, n);
    qsort(qs, n, sizeof(*qs), cmp_cq);
    for (size_t i = 0; i < n; i++) {
        const int64_t *d = gf_htab_get(&demand, &qs[i], sizeof(qs[i]));
        if (d == NULL)
            continue;
        int64_t need = *d - cq_free(ps->l, qs[i]);
        if (need > 0)
            reclaim_cq(ps, qs[i], need, out);
    }
    gf_free(qs);
    gf_htab_free_all(&demand, gf_free);
}

/* ---- 3. starting leases ----------------------------------------------------
 */

struct cand {
    const struct gf_ledger_cell *cell;
    const struct gf_ledger_member *lender;
    int64_t room;
    uint64_t locality;
};

/* What a Workload's evaluation found. */
struct eval {
    const struct gf_ledger_wl *w;
    const struct gf_ledger_member *origin;
    int group, borrower;
    const char *classes[MAX_CLASSES];
    size_t n_classes;
    struct cand best;
    bool found;
    struct gf_why why; /* the first block, or the closest miss */
    int64_t best_miss; /* the largest room of a cell that did not fit */
};

static uint64_t locality(const struct gf_policy *p, int a, int b)
{
    uint64_t score = 0;
    for (size_t k = 0; k < p->n_locality && k < 63; k++) {
        const char *x = gf_policy_member_label(&p->members[a], p->locality[k]);
        const char *y = gf_policy_member_label(&p->members[b], p->locality[k]);
        if (x != NULL && y != NULL && strcmp(x, y) == 0)
            score |= 1ULL << (62 - k);
    }
    return score;
}

/* Whether c beats best: most idle, closest, fewest leases, then names. */
static bool better(const struct cand *c, const struct cand *best)
{
    if (c->room != best->room)
        return c->room > best->room;
    if (c->locality != best->locality)
        return c->locality > best->locality;
    if (c->lender->leases_out != best->lender->leases_out)
        return c->lender->leases_out < best->lender->leases_out;
    int k = strcmp(c->lender->name, best->lender->name);
    if (k == 0)
        k = strcmp(c->cell->cq->name, best->cell->cq->name);
    if (k == 0)
        k = strcmp(c->cell->flavor, best->cell->flavor);
    return k < 0;
}

static bool class_ok(const struct eval *e, const char *cls)
{
    for (size_t i = 0; i < e->n_classes; i++)
        if (strcmp(e->classes[i], cls) == 0)
            return true;
    return false;
}

/* Room for e's Workload in cell c of lender lm (pair cap pc), net of the
 * pass; the binding limit's name in *rule. */
static int64_t cell_room(const struct pass *ps, const struct eval *e,
                         const struct gf_ledger_cell *c,
                         const struct gf_ledger_member *lm, int li,
                         const struct gf_policy_pair *pc, const char **rule)
{
    const struct gf_policy *p = ps->p;
    const struct gf_policy_group *g = &p->groups[e->group];
    const struct gf_ledger_member *bm = e->origin;
    int64_t lend = 0;
    gf_ledger_lendable(c, &lend);
    int64_t reserve = gf_policy_reserve(&g->reserve, c->nominal);
    int64_t r[4] = {
        min64(lend, gf_ledger_cell_free(c) - reserve) - taken(ps, 'c', c, NULL),
        room(&p->members[li].max_lent, lm->nominal, lm->lent) -
            taken(ps, 'l', lm, NULL),
        room(&p->members[e->borrower].max_borrowed, bm->nominal, bm->borrowed) -
            taken(ps, 'b', bm, NULL),
        room(&pc->max, lm->nominal,
             gf_ledger_pair_lent(ps->l, lm->name, bm->name)) -
            taken(ps, 'p', lm, bm),
    };
    static const char *const names[4] = {"lendable", "lenderCap", "borrowerCap",
                                         "pairCap"};
    size_t k = 0;
    for (size_t i = 1; i < 4; i++)
        if (r[i] < r[k])
            k = i;
    *rule = names[k];
    return r[k];
}

/* Keeps the closest miss: the explanation names the cell that came
 * nearest and the limit that bound it. */
static void note_miss(struct eval *e, const char *lname,
                      const struct gf_ledger_cell *c, int64_t r,
                      const char *rule)
{
    if (r <= e->best_miss && e->why.rule != NULL)
        return;
    int64_t shown = r < 0 ? 0 : r;
    e->best_miss = r;
    why_set(&e->why, rule, shown, e->w->gpus,
            "no lender fits: the closest, %s/%s flavor %s, has room for %lld "
            "of %lld GPUs (bound by %s)",
            lname, c->cq->name, c->flavor, (long long)shown,
            (long long)e->w->gpus, rule);
}

static void consider_queue(const struct pass *ps, struct eval *e,
                           const struct gf_policy_queue *q, size_t qi)
{
    const struct gf_policy *p = ps->p;
    const char *lname = p->members[q->member].name;
    struct qres none = {0};
    struct qres *qr = ps->qc != NULL ? &ps->qc[ps->qoff[e->group] + qi] : &none;
    if (qr->lm == NULL)
        qr->lm = gf_ledger_member(ps->l, lname);
    const struct gf_ledger_member *lm = qr->lm;
    if (lm == NULL || lm->fresh != GF_FRESH_SYNCED)
        return; /* unknown is never read as zero */
    if (lm->drained) {
        /* An admin took it out of lending (gpufedctl drain). */
        if (e->why.rule == NULL)
            why_set(&e->why, "drained", 0, 0,
                    "member %s is drained: it lends nothing new", lname);
        return;
    }
    struct gf_policy_pair pc;
    gf_policy_pair(p, q->member, (size_t)e->borrower, (size_t)e->group, &pc);
    if (!pc.allowed)
        return;
    if (qr->lq == NULL)
        qr->lq = gf_ledger_cq(ps->l, lname, q->cluster_queue);
    const struct gf_ledger_cq *lq = qr->lq;
    if (lq == NULL || !lq->known)
        return;
    /* The copy goes into the lender's namespace after namespaceMapping,
     * and only one that has opted in takes it. */
    const char *lns = gf_policy_map_namespace(&p->groups[e->group], q->member,
                                              e->w->namespace);
    if (!gf_ledger_ns_accepts(ps->l, lname, lns)) {
        if (e->why.rule == NULL)
            why_set(&e->why, "acceptOverflow", 0, 0,
                    "namespace %s in member %s does not accept overflow "
                    "(label gpufed.io/accept-overflow=true)",
                    lns, lname);
        return;
    }
    for (size_t i = 0; i < lq->n_cells; i++) {
        const struct gf_ledger_cell *c = lq->cells[i];
        if (!c->in_spec ||
            strcmp(c->resource, gf_ledger_resource(ps->l)) != 0 ||
            !class_ok(e, gf_policy_flavor_class(p, lname, c->flavor)))
            continue;
        const char *rule;
        int64_t r = cell_room(ps, e, c, lm, (int)q->member, &pc, &rule);
        if (r < e->w->gpus) {
            note_miss(e, lname, c, r, rule);
            continue;
        }
        struct cand cd = {c, lm, r, locality(p, (int)q->member, e->borrower)};
        if (!e->found || better(&cd, &e->best)) {
            e->best = cd;
            e->found = true;
        }
    }
}

/* The origin ClusterQueue's flavor classes, for equivalence. */
static void origin_classes(const struct pass *ps, struct eval *e)
{
    const struct gf_ledger_cq *q = e->w->cq;
    for (size_t i = 0; i < q->n_cells && e->n_classes < MAX_CLASSES; i++)
        if (q->cells[i]->in_spec &&
            strcmp(q->cells[i]->resource, gf_ledger_resource(ps->l)) == 0)
            e->classes[e->n_classes++] = gf_policy_flavor_class(
                ps->p, e->w->member, q->cells[i]->flavor);
}

/* The checks on the Workload itself; false with e->why when blocked. */
static bool eligible(const struct pass *ps, struct eval *e)
{
    const struct gf_policy *p = ps->p;
    const struct gf_ledger_wl *w = e->w;
    e->origin = gf_ledger_member(ps->l, w->member);
    e->borrower = gf_policy_member_index(p, w->member);
    int64_t waited = ps->now - w->pending_since_ms;
    const char *why = NULL;
    size_t live = 0;
    uint64_t epoch = 0;
    if (w->state != GF_WL_PENDING || w->cq == NULL)
        why_set(&e->why, "pending", 0, 0,
                "not pending in a known ClusterQueue");
    else if (e->borrower < 0 || e->origin == NULL)
        why_set(&e->why, "members", 0, 0, "%s is not a member", w->member);
    else if ((e->group = gf_policy_group_of(p, w->member, w->cq->name)) < 0)
        why_set(&e->why, "groups", 0, 0,
                "ClusterQueue %s/%s is in no group of the policy", w->member,
                w->cq->name);
    else if (e->origin->fresh != GF_FRESH_SYNCED)
        why_set(&e->why, "originFreshness", 0, 0,
                "origin %s is %s: the Workload cannot be held safely",
                w->member, gf_freshness_name(e->origin->fresh));
    else if (waited < p->timing.overflow_after_ms)
        why_set(&e->why, "overflowAfter", waited, p->timing.overflow_after_ms,
                "pending %lldms of overflowAfter %lldms", (long long)waited,
                (long long)p->timing.overflow_after_ms);
    else if (!gf_policy_may_overflow(&p->groups[e->group], w->namespace,
                                     w->kind, w->priority, &why))
        why_set(&e->why, "overflow", w->priority,
                p->groups[e->group].has_min_priority
                    ? p->groups[e->group].min_priority
                    : 0,
                "group %s: %s", p->groups[e->group].name, why);
    else {
        gf_ledger_workload_leases(ps->l, w->member, w->namespace, w->name,
                                  &live, &epoch);
        if (live == 0)
            return true;
        why_set(&e->why, "S1", (int64_t)live, 0,
                "it already holds %zu live lease(s): at most one copy runs",
                live);
    }
    return false;
}

static void evaluate(const struct pass *ps, struct eval *e)
{
    e->best_miss = -1;
    if (!eligible(ps, e))
        return;
    origin_classes(ps, e);
    const struct gf_policy_group *g = &ps->p->groups[e->group];
    for (size_t i = 0; i < g->n_queues; i++)
        if (g->queues[i].member != (size_t)e->borrower)
            consider_queue(ps, e, &g->queues[i], i);
    if (!e->found && e->why.rule == NULL)
        why_set(&e->why, "lenders", 0, e->w->gpus,
                "no member of group %s may lend to %s now (sharing rules, "
                "freshness or flavors)",
                g->name, e->w->member);
}

/* Fills a START action from a successful evaluation. */
static void start_action(const struct pass *ps, const struct eval *e,
                         struct gf_action *a)
{
    const struct gf_ledger_wl *w = e->w;
    const struct gf_policy_group *g = &ps->p->groups[e->group];
    size_t live;
    uint64_t epoch;
    gf_ledger_workload_leases(ps->l, w->member, w->namespace, w->name, &live,
                              &epoch);
    a->kind = GF_ACT_START;
    a->member = gf_strdup(w->member);
    a->namespace = gf_strdup(w->namespace);
    a->name = gf_strdup(w->name);
    a->group = gf_strdup(g->name);
    a->lender = gf_strdup(e->best.lender->name);
    a->lender_cq = gf_strdup(e->best.cell->cq->name);
    a->flavor = gf_strdup(e->best.cell->flavor);
    a->gpus = w->gpus;
    a->mode = (g->modes & GF_MODE_LOAN) ? GF_LEASE_LOAN : GF_LEASE_REDIRECT;
    a->epoch = epoch + 1;
    why_set(&a->why, "fit", e->best.room, w->gpus,
            "pending %lldms >= overflowAfter; %s/%s flavor %s has room for "
            "%lld GPUs (the most idle that fits %lld)",
            (long long)(ps->now - w->pending_since_ms), a->lender, a->lender_cq,
            a->flavor, (long long)e->best.room, (long long)w->gpus);
}

static int cmp_pending(const void *a, const void *b)
{
    const struct gf_ledger_wl *x = *(const struct gf_ledger_wl *const *)a;
    const struct gf_ledger_wl *y = *(const struct gf_ledger_wl *const *)b;
    if (x->priority != y->priority)
        return x->priority > y->priority ? -1 : 1;
    if (x->pending_since_ms != y->pending_since_ms)
        return x->pending_since_ms < y->pending_since_ms ? -1 : 1;
    int c = strcmp(x->member, y->member);
    if (c == 0)
        c = strcmp(x->namespace, y->namespace);
    return c != 0 ? c : strcmp(x->name, y->name);
}

/* Considers one pending Workload for a START. */
static void start_one(struct pass *ps, const struct gf_ledger_wl *w,
                      struct gf_actions *out)
{
    struct eval e = {.w = w, .group = -1};
    evaluate(ps, &e);
    if (!e.found)
        return;
    struct gf_action *a = push(out, GF_ACT_START);
    start_action(ps, &e, a);
    take(ps, 'c', e.best.cell, NULL, w->gpus);
    take(ps, 'l', e.best.lender, NULL, w->gpus);
    take(ps, 'b', e.origin, NULL, w->gpus);
    take(ps, 'p', e.best.lender, e.origin, w->gpus);
}

/* A pass in slices (decide.h). The cursor is the sort key of the last
 * Workload considered, copied: the ledger changes between slices, and a
 * pointer into it would not survive. Ledger members, ClusterQueues and
 * cells are never freed while the ledger lives, so the pass's taken
 * counters (keyed by their addresses) stay valid across slices. */
struct gf_decide_pass {
    struct pass ps;
    bool started; /* a slice has run: the cursor is set */
    struct gf_ledger_wl cursor;
    size_t considered;
};

/* Sorts strictly after the cursor. */
static bool after_cursor(const struct gf_decide_pass *dp,
                         const struct gf_ledger_wl *w)
{
    const struct gf_ledger_wl *c = &dp->cursor;
    return !dp->started || cmp_pending(&c, &w) < 0;
}

/* A max-heap (by decide's order) of the `cap` first pending Workloads
 * after the cursor: one walk of the pending list, O(n log cap). */
static void heap_sift_down(const struct gf_ledger_wl **h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && cmp_pending(&h[l], &h[m]) > 0)
            m = l;
        if (r < n && cmp_pending(&h[r], &h[m]) > 0)
            m = r;
        if (m == i)
            return;
        const struct gf_ledger_wl *t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void heap_sift_up(const struct gf_ledger_wl **h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (cmp_pending(&h[p], &h[i]) >= 0)
            return;
        const struct gf_ledger_wl *t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

/* The next (up to cap) Workloads after the cursor, in decide's order, into
 * v; *more: some remain after them. Returns how many. */
static size_t next_slice(const struct gf_decide_pass *dp,
                         const struct gf_ledger_wl **v, size_t cap, bool *more)
{
    size_t n = 0;
    *more = false;
    /* Room for every pending Workload: no heap, one sort. */
    bool all = cap >= gf_ledger_n_pending(dp->ps.l);
    for (const struct gf_ledger_wl *w = gf_ledger_pending_first(dp->ps.l);
         w != NULL; w = gf_ledger_pending_next(dp->ps.l, w)) {
        if (!after_cursor(dp, w))
            continue;
        if (n < cap && all) {
            v[n++] = w;
        } else if (n < cap) {
            v[n] = w;
            heap_sift_up(v, n++);
        } else {
            *more = true;
            if (cmp_pending(&w, &v[0]) < 0) {
                v[0] = w;
                heap_sift_down(v, n, 0);
            }
        }
    }
    qsort(v, n, sizeof(*v), cmp_pending);
    return n;
}

static void cursor_set(struct gf_decide_pass *dp, const struct gf_ledger_wl *w)
{
    struct gf_ledger_wl *c = &dp->cursor;
    gf_free(c->member);
    gf_free(c->namespace);
    gf_free(c->name);
    c->member = gf_strdup(w->member);
    c->namespace = gf_strdup(w->namespace);
    c->name = gf_strdup(w->name);
    c->priority = w->priority;
    c->pending_since_ms = w->pending_since_ms;
    dp->started = true;
}

int gf_decide_begin(const struct gf_ledger *l, const struct gf_policy *p,
                    int64_t now_ms, struct gf_actions *out,
                    struct gf_decide_pass **dpp)
{
    *dpp = NULL;
    if (strcmp(gf_ledger_resource(l), p->resource) != 0)
        return -EINVAL;
    struct gf_decide_pass *dp = gf_calloc(1, sizeof(*dp));
    dp->ps = (struct pass){.l = l, .p = p, .now = now_ms};
    qcache_init(&dp->ps);
    gf_htab_init(&dp->ps.taken, GF_HTAB_OWN_KEYS);
    upkeep(&dp->ps, out);
    reclaim(&dp->ps, out);
    *dpp = dp;
    return 0;
}

int gf_decide_step(struct gf_decide_pass *dp, const struct gf_ledger *l,
                   const struct gf_policy *p, size_t budget,
                   struct gf_actions *out)
{
    dp->ps.l = l;
    dp->ps.p = p;
    size_t cap = budget;
    size_t n_pending = gf_ledger_n_pending(l);
    if (cap > n_pending)
        cap = n_pending;
    const struct gf_ledger_wl **v = gf_calloc(cap + 1, sizeof(*v));
    bool more = false;
    size_t n = next_slice(dp, v, cap, &more);
    for (size_t i = 0; i < n; i++)
        start_one(&dp->ps, v[i], out);
    if (n > 0)
        cursor_set(dp, v[n - 1]);
    dp->considered += n;
    gf_free(v);
    /* A zero budget over a non-empty remainder would never end. */
    return more && n > 0 ? 0 : 1;
}

size_t gf_decide_pass_considered(const struct gf_decide_pass *dp)
{
    return dp->considered;
}

void gf_decide_pass_free(struct gf_decide_pass *dp)
{
    if (dp == NULL)
        return;
    pass_free(&dp->ps);
    gf_free(dp->cursor.member);
    gf_free(dp->cursor.namespace);
    gf_free(dp->cursor.name);
    gf_free(dp);
}

int gf_decide(const struct gf_ledger *l, const struct gf_policy *p,
              int64_t now_ms, struct gf_actions *out)
{
    struct gf_decide_pass *dp;
    int rc = gf_decide_begin(l, p, now_ms, out, &dp);
    if (rc != 0)
        return rc;
    while (gf_decide_step(dp, l, p, SIZE_MAX, out) == 0)
        ;
    gf_decide_pass_free(dp);
    return 0;
}

int gf_decide_workload(const struct gf_ledger *l, const struct gf_policy *p,
                       int64_t now_ms, const char *member, const char *ns,
                       const char *name, struct gf_action *out, int *starts_now)
{
    memset(out, 0, sizeof(*out));
    *starts_now = 0;
    const struct gf_ledger_wl *w = gf_ledger_workload(l, member, ns, name);
    if (w == NULL)
        return GF_ENOTFOUND;
    struct pass ps = {.l = l, .p = p, .now = now_ms};
    gf_htab_init(&ps.taken, GF_HTAB_OWN_KEYS);
    struct eval e = {.w = w, .group = -1};
    evaluate(&ps, &e);
    if (e.found) {
        start_action(&ps, &e, out);
        *starts_now = 1;
    } else {
        out->kind = GF_ACT_START;
        out->member = gf_strdup(member);
        out->namespace = gf_strdup(ns);
        out->name = gf_strdup(name);
        out->gpus = w->gpus;
        if (e.group >= 0)
            out->group = gf_strdup(p->groups[e.group].name);
        out->why = e.why;
    }
    pass_free(&ps);
    return 0;
}
