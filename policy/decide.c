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
/* The window of maxReclaimsPerHour. */
#define HOUR_MS ((int64_t)3600 * 1000)

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
    /* Workload x lender ClusterQueue -> int64_t* the instant until which
     * the Workload may not go back there (rule recentlyReclaimed); only
     * entries still in force at the pass's now. */
    struct gf_htab recent;
    /* Workload ("member\0ns\0name") -> the uid (owned) it had when its
     * last lease ended Failed(CreateRefused) (rule copyRefused). */
    struct gf_htab refused;
    /* Lender ClusterQueue -> int64_t* GPUs its own Workloads have waited
     * for at least reclaimAfter (what a reclaim would take back). */
    struct gf_htab demand;
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
    gf_htab_free_all(&ps->recent, gf_free);
    gf_htab_free_all(&ps->refused, gf_free);
    gf_htab_free_all(&ps->demand, gf_free);
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

/* ---- the retry-storm guard ------------------------------------------- */

/* Key of a Workload x lender ClusterQueue; 0 when a name is too long. */
static size_t recent_key(char *out, size_t cap, const char *member,
                         const char *ns, const char *name, const char *lender,
                         const char *lender_cq)
{
    size_t a = gf__key(out, cap, member, ns, name, NULL);
    if (a == 0)
        return 0;
    size_t b = gf__key(out + a, cap - a, lender, lender_cq, NULL, NULL);
    return b == 0 ? 0 : a + b;
}

/* The last lease (the highest epoch) under one key; a pointer into the
 * ledger, used only while an index is built. */
struct last_of {
    uint64_t epoch;
    const struct gf_lease *s;
};

/* A lease's key in an index; 0 when a name is too long. */
typedef size_t (*lease_key_fn)(char *out, size_t cap, const struct gf_lease *s);

/*
 * Fills *last (initialised by the caller, freed with gf_htab_free_all)
 * with the last lease of each key over the ledger's leases: the walk
 * shared by the indexes a pass builds from lease history.
 */
static void last_leases(const struct pass *ps, lease_key_fn keyf,
                        struct gf_htab *last)
{
    size_t n = gf_ledger_leases(ps->l, NULL, 0);
    if (n == 0)
        return;
    const struct gf_ledger_lease **v = gf_calloc(n, sizeof(*v));
    n = gf_ledger_leases(ps->l, v, n);
    char key[5 * (GF_LEDGER_MAX_NAME + 1)];
    for (size_t i = 0; i < n; i++) {
        const struct gf_lease *s = &v[i]->l;
        size_t kl = keyf(key, sizeof(key), s);
        if (kl == 0)
            continue;
        struct last_of *x = gf_htab_get(last, key, kl);
        if (x == NULL) {
            x = gf_calloc(1, sizeof(*x));
            gf_htab_put(last, key, kl, x);
        } else if (s->epoch < x->epoch) {
            continue;
        }
        x->epoch = s->epoch;
        x->s = s;
    }
    gf_free(v);
}

static size_t wl_lender_key(char *out, size_t cap, const struct gf_lease *s)
{
    return recent_key(out, cap, s->origin_member, s->origin_namespace,
                      s->origin_name, s->lender_member, s->lender_cq);
}

/* Whether a lease ended because its lender took the quota back. */
static bool ended_by_reclaim(const struct gf_lease *s)
{
    return s->phase == GF_LEASE_RELEASED && s->reason != NULL &&
           (strcmp(s->reason, "Reclaimed") == 0 ||
            strcmp(s->reason, "Preempted") == 0);
}

/*
 * Builds ps->recent: for each Workload and lender ClusterQueue whose last
 * lease there ended Reclaimed or Preempted less than reclaimAfter ago,
 * the instant it may go back. Without it a Workload reclaimed from a
 * lender whose demand has just been met looks, to the next pass, like
 * any other overflow, and goes straight back to be reclaimed again. The
 * index keeps values, not pointers: a sliced pass outlives ledger
 * updates. A final lease with no end time (an older writer) blocks
 * nothing: its end cannot be placed.
 */
static void recent_build(struct pass *ps)
{
    gf_htab_init(&ps->recent, GF_HTAB_OWN_KEYS);
    struct gf_htab last;
    gf_htab_init(&last, GF_HTAB_OWN_KEYS);
    last_leases(ps, wl_lender_key, &last);
    struct gf_htab_iter it;
    const char *k;
    size_t klen;
    void *val;
    gf_htab_iter_init(&it, &last);
    while (gf_htab_next(&it, &k, &klen, &val)) {
        const struct gf_lease *s = ((const struct last_of *)val)->s;
        int64_t until = ended_by_reclaim(s) && s->ended_ms > 0
                            ? s->ended_ms + ps->p->timing.reclaim_after_ms
                            : 0;
        if (until <= ps->now)
            continue;
        int64_t *u = gf_calloc(1, sizeof(*u));
        *u = until;
        gf_htab_put(&ps->recent, k, klen, u);
    }
    gf_htab_free_all(&last, gf_free);
}

/* ---- the refusal memory ---------------------------------------------- */

/* Whether a lease ended because its copy (or a loan's hold) could not be
 * made at all: the lender's API server refused it (400, 403, 422), or the
 * hub would not build it (host access the group does not allow). */
static bool ended_refused(const struct gf_lease *s)
{
    return s->phase == GF_LEASE_FAILED && s->reason != NULL &&
           strcmp(s->reason, "CreateRefused") == 0;
}

static size_t wl_key(char *out, size_t cap, const struct gf_lease *s)
{
    return gf__key(out, cap, s->origin_member, s->origin_namespace,
                   s->origin_name, NULL);
}

/*
 * Builds ps->refused: each Workload whose last lease (the highest epoch)
 * ended Failed(CreateRefused), with the uid that lease was made for.
 * The refusal is about the Job as submitted, and the next copy would be
 * refused the same way: without this the Workload, requeued at home,
 * would start a lease again after every overflowAfter (a loan's origin,
 * never held, at every pass). A recreated Workload (another uid) is a
 * new submission and may overflow again. Values are copies: a sliced
 * pass outlives ledger updates.
 */
static void refused_build(struct pass *ps)
{
    gf_htab_init(&ps->refused, GF_HTAB_OWN_KEYS);
    struct gf_htab last;
    gf_htab_init(&last, GF_HTAB_OWN_KEYS);
    last_leases(ps, wl_key, &last);
    struct gf_htab_iter it;
    const char *k;
    size_t klen;
    void *val;
    gf_htab_iter_init(&it, &last);
    while (gf_htab_next(&it, &k, &klen, &val)) {
        const struct gf_lease *s = ((const struct last_of *)val)->s;
        if (ended_refused(s))
            gf_htab_put(&ps->refused, k, klen,
                        gf_strdup(s->origin_uid != NULL ? s->origin_uid : ""));
    }
    gf_htab_free_all(&last, gf_free);
}

/* ---- 1. lease upkeep -------------------------------------------------- */

static int cmp_lease_name(const void *a, const void *b)
{
    const struct gf_ledger_lease *x = *(const struct gf_ledger_lease *const *)a;
    const struct gf_ledger_lease *y = *(const struct gf_ledger_lease *const *)b;
    return strcmp(x->l.name, y->l.name);
}

/* When the hub may treat a silent member's leases as fenced. */
int64_t gf__fence_time(const struct gf_policy *p,
                       const struct gf_ledger_member *m)
{
    const struct gf_policy_timing *t = &p->timing;
    /* While the hub lowers leaseDuration, the agent may still believe a
     * longer term than the policy's (heartbeat.c): the hub never counts
     * a member fenced before its agent would be under the term it may
     * believe. */
    int64_t d =
        t->lease_duration_ms > m->term_ms ? t->lease_duration_ms : m->term_ms;
    /* The drift rounded up, as the hub's heartbeat rounds it: a bound
     * that comes out a millisecond short is early. */
    int64_t drift = (d * t->clock_drift_ppm + GF_PPM - 1) / GF_PPM;
    return m->last_heartbeat_ms + d + drift + t->fence_margin_ms;
}

/* Whether a member's heal is recent enough that its agent may still be
 * fenced: only members with `fencing: agent` have one. */
static bool member_recovering(const struct gf_policy *p,
                              const struct gf_ledger_member *m, int64_t now)
{
    if (m->recovering_until_ms <= now)
        return false;
    int pm = gf_policy_member_index(p, m->name);
    return pm >= 0 && p->members[pm].fencing == GF_FENCING_AGENT;
}

int64_t gf_decide_next_recovered_ms(const struct gf_ledger *l,
                                    const struct gf_policy *p, int64_t now_ms)
{
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < p->n_members; i++) {
        const struct gf_ledger_member *m =
            gf_ledger_member(l, p->members[i].name);
        if (m != NULL && m->fresh == GF_FRESH_SYNCED &&
            member_recovering(p, m, now_ms) && m->recovering_until_ms < next)
            next = m->recovering_until_ms;
    }
    return next;
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
        int64_t at = gf__fence_time(p, m);
        if (at > now_ms && at < next)
            next = at;
    }
    return next;
}

/* Whether any cell of q lends through a lease that holds quota. */
static bool cq_lends(const struct gf_ledger_cq *q)
{
    for (size_t i = 0; i < q->n_cells; i++)
        if (q->cells[i]->n_leases_out > 0)
            return true;
    return false;
}

int64_t gf_decide_next_reclaim_ms(const struct gf_ledger *l,
                                  const struct gf_policy *p, int64_t now_ms)
{
    int64_t next = INT64_MAX;
    /* A lender's own Workload reaching reclaimAfter, where borrowers hold
     * quota (elsewhere there is nothing to reclaim). */
    for (const struct gf_ledger_wl *w = gf_ledger_pending_first(l); w != NULL;
         w = gf_ledger_pending_next(l, w)) {
        int64_t at = w->pending_since_ms + p->timing.reclaim_after_ms;
        if (at > now_ms && at < next && w->cq != NULL && cq_lends(w->cq))
            next = at;
    }
    /* A copy spared by minRunTime becoming a victim, where its lender's
     * own Workloads wait; a reclaim leaving the hour's window of a group
     * with maxReclaimsPerHour. */
    size_t n = gf_ledger_leases(l, NULL, 0);
    const struct gf_ledger_lease **v = gf_calloc(n + 1, sizeof(*v));
    n = gf_ledger_leases(l, v, n);
    for (size_t i = 0; i < n; i++) {
        const struct gf_lease *s = &v[i]->l;
        int64_t at = INT64_MAX;
        if (s->phase == GF_LEASE_ACTIVE && v[i]->cell != NULL &&
            v[i]->cell->cq->n_pending > 0 && p->timing.min_run_time_ms > 0)
            at = s->started_ms + p->timing.min_run_time_ms;
        int g = gf_policy_group_of(p, s->lender_member, s->lender_cq);
        if (s->reclaim_started_ms > 0 && g >= 0 &&
            p->groups[g].max_reclaims_per_hour != GF_NO_CAP &&
            s->reclaim_started_ms + HOUR_MS > now_ms &&
            s->reclaim_started_ms + HOUR_MS < at)
            at = s->reclaim_started_ms + HOUR_MS;
        if (at > now_ms && at < next)
            next = at;
    }
    gf_free(v);
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
    int64_t at = gf__fence_time(ps->p, m);
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

/* Loans have their own upkeep rules (decide_loan.c). */
static void upkeep_loan(struct pass *ps, const struct gf_ledger_lease *ll,
                        struct gf_actions *out)
{
    enum gf_action_kind kind;
    int64_t until = 0;
    struct gf_why why = {0};
    if (!gf__loan_upkeep(ps->l, ps->p, ps->now, ll, &kind, &until, &why))
        return;
    struct gf_action *a = push(out, kind);
    from_lease(a, &ll->l);
    a->until_ms = until;
    a->why = why;
}

static void upkeep_lease(struct pass *ps, const struct gf_ledger_lease *ll,
                         struct gf_actions *out)
{
    const struct gf_lease *l = &ll->l;
    const struct gf_policy_timing *t = &ps->p->timing;
    bool live = l->phase == GF_LEASE_PENDING || l->phase == GF_LEASE_ACTIVE ||
                l->phase == GF_LEASE_RECLAIMING;
    if (l->mode == GF_LEASE_LOAN) {
        upkeep_loan(ps, ll, out);
        return;
    }
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
    if (l->phase == GF_LEASE_PENDING && ll->lender->drained) {
        /* An admin drains the lender: a copy not yet admitted there is
         * withdrawn at once rather than left to take quota it must give
         * back. */
        struct gf_action *a = push(out, GF_ACT_WITHDRAW);
        from_lease(a, l);
        why_set(&a->why, "drain", 0, 0,
                "lender %s is drained: the copy not yet admitted there is "
                "withdrawn",
                l->lender_member);
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

/* The Active leases that hold quota out of cq, in victim order, into v
 * (room for every lease); the GPUs of those already Reclaiming out of cq
 * in *reclaiming. With min_run, copies that started less than the
 * policy's minRunTime ago are left out. Returns how many. */
static size_t victims_of(const struct pass *ps, const struct gf_ledger_cq *q,
                         bool min_run, struct victim *v, int64_t *reclaiming)
{
    size_t n = gf_ledger_leases(ps->l, NULL, 0);
    const struct gf_ledger_lease **all = gf_calloc(n + 1, sizeof(*all));
    n = gf_ledger_leases(ps->l, all, n);
    size_t nv = 0;
    *reclaiming = 0;
    for (size_t i = 0; i < n; i++) {
        const struct gf_lease *s = &all[i]->l;
        if (!all[i]->holds || all[i]->cell == NULL || all[i]->cell->cq != q)
            continue;
        if (s->phase == GF_LEASE_RECLAIMING)
            *reclaiming += s->gpus;
        else if (s->phase == GF_LEASE_ACTIVE &&
                 (!min_run ||
                  ps->now - s->started_ms >= ps->p->timing.min_run_time_ms))
            v[nv++] = (struct victim){all[i], ps->p};
    }
    gf_free(all);
    qsort(v, nv, sizeof(*v), cmp_victims);
    return nv;
}

static struct gf_action *reclaim_action(struct pass *ps,
                                        const struct gf_ledger_cq *q,
                                        const struct victim *v, size_t k,
                                        int64_t freed, struct gf_actions *out)
{
    struct gf_action *a = push(out, GF_ACT_RECLAIM);
    a->lender = gf_strdup(q->member->name);
    a->lender_cq = gf_strdup(q->name);
    int g = gf_policy_group_of(ps->p, q->member->name, q->name);
    if (g >= 0)
        a->group = gf_strdup(ps->p->groups[g].name);
    a->until_ms = ps->now + ps->p->timing.grace_period_ms;
    a->gpus = freed;
    a->victims = gf_calloc(k, sizeof(*a->victims));
    for (size_t i = 0; i < k; i++)
        a->victims[a->n_victims++] = gf_strdup(v[i].ll->l.name);
    return a;
}

/*
 * Marks victims among the Active leases lent out of cq until `need`. The
 * GPUs of leases already Reclaiming out of cq are on their way back: they
 * count toward the need, so that a reclaim in its grace period is not
 * answered by a second round of victims on every pass. Copies younger
 * than minRunTime are spared (a borrower evicted as soon as it starts
 * gets nothing done: thrash), and at most `left` victims are taken (the
 * group's maxReclaimsPerHour, net of the last hour's). Returns how many
 * were taken.
 */
static size_t reclaim_cq(struct pass *ps, const struct gf_ledger_cq *q,
                         int64_t need, int64_t left, struct gf_actions *out)
{
    size_t n = gf_ledger_leases(ps->l, NULL, 0);
    struct victim *v = gf_calloc(n + 1, sizeof(*v));
    int64_t reclaiming;
    size_t nv = victims_of(ps, q, true, v, &reclaiming);
    need -= reclaiming;
    int64_t freed = 0;
    size_t k = 0;
    while (k < nv && freed < need && (int64_t)k < left)
        freed += v[k++].ll->l.gpus;
    if (k > 0) {
        struct gf_action *a = reclaim_action(ps, q, v, k, freed, out);
        why_set(&a->why, "reclaimAfter", freed, need,
                "%s/%s: its own Workloads have waited reclaimAfter for %lld "
                "GPUs that borrowers hold; %zu lease(s) freeing %lld GPUs "
                "get until now + gracePeriod%s",
                q->member->name, q->name, (long long)need, k, (long long)freed,
                freed < need && (int64_t)k == left
                    ? " (the group's maxReclaimsPerHour is reached)"
                    : "");
    }
    gf_free(v);
    return k;
}

/*
 * A drained member gets back everything it lent out of cq: every Active
 * lease, in victim order, with the same grace period, whatever the
 * demand, reclaimAfter, minRunTime and maxReclaimsPerHour say (an admin
 * asked for it). Leases already Reclaiming keep their deadline.
 */
static void drain_cq(struct pass *ps, const struct gf_ledger_cq *q,
                     struct gf_actions *out)
{
    size_t n = gf_ledger_leases(ps->l, NULL, 0);
    struct victim *v = gf_calloc(n + 1, sizeof(*v));
    int64_t reclaiming;
    size_t nv = victims_of(ps, q, false, v, &reclaiming);
    if (nv > 0) {
        int64_t freed = 0;
        for (size_t i = 0; i < nv; i++)
            freed += v[i].ll->l.gpus;
        struct gf_action *a = reclaim_action(ps, q, v, nv, freed, out);
        why_set(&a->why, "drain", freed, freed,
                "%s is drained: %zu lease(s) out of %s/%s freeing %lld GPUs "
                "get until now + gracePeriod",
                q->member->name, nv, q->member->name, q->name,
                (long long)freed);
    }
    gf_free(v);
}

/* Per group, victims whose reclaim started in the last hour. */
static int64_t *reclaims_last_hour(const struct pass *ps)
{
    int64_t *cnt = gf_calloc(ps->p->n_groups + 1, sizeof(*cnt));
    size_t n = gf_ledger_leases(ps->l, NULL, 0);
    const struct gf_ledger_lease **all = gf_calloc(n + 1, sizeof(*all));
    n = gf_ledger_leases(ps->l, all, n);
    for (size_t i = 0; i < n; i++) {
        const struct gf_lease *s = &all[i]->l;
        if (s->reclaim_started_ms <= 0 ||
            s->reclaim_started_ms <= ps->now - HOUR_MS)
            continue;
        int g = gf_policy_group_of(ps->p, s->lender_member, s->lender_cq);
        if (g >= 0)
            cnt[g]++;
    }
    gf_free(all);
    return cnt;
}

static int cmp_cq(const void *a, const void *b)
{
    const struct gf_ledger_cq *x = *(const struct gf_ledger_cq *const *)a;
    const struct gf_ledger_cq *y = *(const struct gf_ledger_cq *const *)b;
    int c = strcmp(x->member->name, y->member->name);
    return c != 0 ? c : strcmp(x->name, y->name);
}

/*
 * Demand per ClusterQueue from its own Workloads that waited reclaimAfter:
 * what a reclaim takes back, and what a START may not lend (rule
 * ownDemand), so that the pass never lends what the next one reclaims.
 */
/* The queue's own GPUs (in the spec), what its Workloads may use
 * without borrowing. */
static int64_t cq_nominal(const struct gf_ledger *l,
                          const struct gf_ledger_cq *q)
{
    int64_t n = 0;
    for (size_t i = 0; i < q->n_cells; i++)
        if (q->cells[i]->in_spec &&
            strcmp(q->cells[i]->resource, gf_ledger_resource(l)) == 0)
            n += q->cells[i]->nominal;
    return n;
}

/* A Workload of the queue that has waited reclaimAfter and that the
 * queue's own quota can hold: one larger than the queue's nominal quota
 * is not served by taking lent quota back. */
static bool is_demand(const struct pass *ps, const struct gf_ledger_wl *w)
{
    return w->cq != NULL && w->cq->member->fresh == GF_FRESH_SYNCED &&
           ps->now - w->pending_since_ms >= ps->p->timing.reclaim_after_ms &&
           w->gpus <= cq_nominal(ps->l, w->cq);
}

static void demand_build(struct pass *ps)
{
    struct gf_htab *demand = &ps->demand;
    gf_htab_init(demand, GF_HTAB_OWN_KEYS);
    for (const struct gf_ledger_wl *w = gf_ledger_pending_first(ps->l);
         w != NULL; w = gf_ledger_pending_next(ps->l, w)) {
        if (!is_demand(ps, w))
            continue;
        const struct gf_ledger_cq *q = w->cq;
        int64_t *d = gf_htab_get(demand, &q, sizeof(q));
        if (d == NULL) {
            d = gf_calloc(1, sizeof(*d));
            gf_htab_put(demand, &q, sizeof(q), d);
        }
        *d += w->gpus;
    }
}

static int64_t own_demand(const struct pass *ps, const struct gf_ledger_cq *q)
{
    if (ps->demand.len == 0)
        return 0;
    const int64_t *d = gf_htab_get(&ps->demand, &q, sizeof(q));
    return d != NULL ? *d : 0;
}

static void reclaim(struct pass *ps, struct gf_actions *out)
{
    /* In ClusterQueue order, so the actions come out deterministically. */
    size_t n = gf_ledger_cqs(ps->l, NULL, 0);
    const struct gf_ledger_cq **qs = gf_calloc(n + 1, sizeof(*qs));
    n = gf_ledger_cqs(ps->l, qs, n);
    qsort(qs, n, sizeof(*qs), cmp_cq);
    int64_t *recent = reclaims_last_hour(ps);
    for (size_t i = 0; i < n; i++) {
        const struct gf_ledger_cq *q = qs[i];
        if (q->member->drained) {
            /* One RECLAIM per ClusterQueue and pass: the drain's, which
             * takes everything, stands in for a demand reclaim. */
            if (q->member->fresh == GF_FRESH_SYNCED)
                drain_cq(ps, q, out);
            continue;
        }
        int64_t d = own_demand(ps, q);
        if (d == 0)
            continue;
        int64_t need = d - cq_free(ps->l, q);
        int g = gf_policy_group_of(ps->p, q->member->name, q->name);
        int64_t left = INT64_MAX;
        if (g >= 0 && ps->p->groups[g].max_reclaims_per_hour != GF_NO_CAP)
            left = ps->p->groups[g].max_reclaims_per_hour - recent[g];
        if (need > 0 && left > 0) {
            size_t k = reclaim_cq(ps, q, need, left, out);
            if (g >= 0)
                recent[g] += (int64_t)k;
        }
    }
    gf_free(recent);
    gf_free(qs);
}

/* ---- 3. starting leases ----------------------------------------------------
 */

struct cand {
    const struct gf_ledger_cell *cell;
    const struct gf_ledger_member *lender;
    int64_t room;
    uint64_t locality;
    bool loan; /* backs a loan (else a copy) */
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
    struct gf_why why;      /* the first block, or the closest miss */
    struct gf_why loan_why; /* why no loan (decide_loan.c), first block */
    int64_t best_miss;      /* the largest room of a cell that did not fit */
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

/* Whether c beats best: a loan (tried first where the group allows both),
 * then most idle, closest, fewest leases, then names. */
static bool better(const struct cand *c, const struct cand *best)
{
    if (c->loan != best->loan)
        return c->loan;
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
    /* The lender's own waiting Workloads come first: what they need of the
     * queue's free GPUs is not idle. */
    int64_t own = own_demand(ps, c->cq);
    int64_t r[5] = {
        min64(lend, gf_ledger_cell_free(c) - reserve) - taken(ps, 'c', c, NULL),
        room(&p->members[li].max_lent, lm->nominal, lm->lent) -
            taken(ps, 'l', lm, NULL),
        room(&p->members[e->borrower].max_borrowed, bm->nominal, bm->borrowed) -
            taken(ps, 'b', bm, NULL),
        room(&pc->max, lm->nominal,
             gf_ledger_pair_lent(ps->l, lm->name, bm->name)) -
            taken(ps, 'p', lm, bm),
        own > 0 ? cq_free(ps->l, c->cq) - own - taken(ps, 'c', c, NULL)
                : INT64_MAX,
    };
    static const char *const names[5] = {"lendable", "lenderCap", "borrowerCap",
                                         "pairCap", "ownDemand"};
    size_t k = 0;
    for (size_t i = 1; i < 5; i++)
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

/* A drained lender lends nothing new: true (with e->why) when lm is. */
static bool drained(struct eval *e, const struct gf_ledger_member *lm)
{
    if (!lm->drained)
        return false;
    if (e->why.rule == NULL)
        why_set(&e->why, "drained", 0, 0,
                "member %s is drained (gpufedctl drain): it lends nothing "
                "new",
                lm->name);
    return true;
}

/*
 * A member that has just healed lends nothing new until its agent can
 * have seen the heartbeat move (rule recovering): a still-fenced agent
 * would stop a copy the moment it started, and the lease would end
 * Fenced for nothing.
 */
static bool recovering(const struct pass *ps, struct eval *e,
                       const struct gf_ledger_member *lm)
{
    if (!member_recovering(ps->p, lm, ps->now))
        return false;
    if (e->why.rule == NULL)
        why_set(&e->why, "recovering", ps->now, lm->recovering_until_ms,
                "member %s has just healed and its agent may still be "
                "fenced: it lends nothing new for another %lldms",
                lm->name, (long long)(lm->recovering_until_ms - ps->now));
    return true;
}

/* A lender drained or recovering lends nothing new (with e->why). */
static bool lends_nothing_new(const struct pass *ps, struct eval *e,
                              const struct gf_ledger_member *lm)
{
    return drained(e, lm) || recovering(ps, e, lm);
}

/* Whether e's Workload may not go back to lender/cq yet (rule
 * recentlyReclaimed, with e->why). */
static bool recently_reclaimed(const struct pass *ps, struct eval *e,
                               const char *lender, const char *cq)
{
    if (gf_htab_len(&ps->recent) == 0)
        return false; /* the common case: no lookup on the hot path */
    const struct gf_ledger_wl *w = e->w;
    char key[5 * (GF_LEDGER_MAX_NAME + 1)];
    size_t kl = recent_key(key, sizeof(key), w->member, w->namespace, w->name,
                           lender, cq);
    const int64_t *u = kl > 0 ? gf_htab_get(&ps->recent, key, kl) : NULL;
    if (u == NULL)
        return false;
    if (e->why.rule == NULL)
        why_set(&e->why, "recentlyReclaimed", ps->now, *u,
                "its last lease from %s/%s ended Reclaimed or Preempted less "
                "than reclaimAfter ago: not sent back there for another "
                "%lldms",
                lender, cq, (long long)(*u - ps->now));
    return true;
}

/* Whether the group may send e's Workload to lender lname as a copy: the
 * copy goes into the lender's namespace after namespaceMapping, and only
 * one that has opted in takes it. (A loan runs nothing in the lender, so
 * the opt-in does not bind it.) */
static bool copy_allowed(const struct pass *ps, struct eval *e,
                         const struct gf_policy_queue *q, const char *lname)
{
    const struct gf_policy_group *g = &ps->p->groups[e->group];
    if (!(g->modes & GF_MODE_REDIRECT))
        return false;
    const char *lns = gf_policy_map_namespace(g, q->member, e->w->namespace);
    if (gf_ledger_ns_accepts(ps->l, lname, lns))
        return true;
    if (e->why.rule == NULL)
        why_set(&e->why, "acceptOverflow", 0, 0,
                "namespace %s in member %s does not accept overflow "
                "(label gpufed.io/accept-overflow=true)",
                lns, lname);
    return false;
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
    if (lends_nothing_new(ps, e, lm))
        return;
    struct gf_policy_pair pc;
    gf_policy_pair(p, q->member, (size_t)e->borrower, (size_t)e->group, &pc);
    if (!pc.allowed)
        return;
    if (qr->lq == NULL)
        qr->lq = gf_ledger_cq(ps->l, lname, q->cluster_queue);
    const struct gf_ledger_cq *lq = qr->lq;
    if (lq == NULL || !lq->known)
        return;
    if (recently_reclaimed(ps, e, lname, q->cluster_queue))
        return;
    const struct gf_policy_group *g = &p->groups[e->group];
    bool copy = copy_allowed(ps, e, q, lname);
    if (!copy && !(g->modes & GF_MODE_LOAN))
        return;
    for (size_t i = 0; i < lq->n_cells; i++) {
        const struct gf_ledger_cell *c = lq->cells[i];
        if (!c->in_spec ||
            strcmp(c->resource, gf_ledger_resource(ps->l)) != 0 ||
            !class_ok(e, gf_policy_flavor_class(p, lname, c->flavor)))
            continue;
        bool loan = (g->modes & GF_MODE_LOAN) &&
                    gf__loan_cell_ok(ps->l, p, g, e->w, lname, c, &e->loan_why);
        if (!loan && !copy)
            continue;
        const char *rule;
        int64_t r = cell_room(ps, e, c, lm, (int)q->member, &pc, &rule);
        if (r < e->w->gpus) {
            note_miss(e, lname, c, r, rule);
            continue;
        }
        struct cand cd = {c, lm, r, locality(p, (int)q->member, e->borrower),
                          loan};
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

/* Whether e's Workload, as it is now, had its last lease refused (rule
 * copyRefused, with e->why). A uid unknown on either side counts as the
 * same Workload: not knowing is no reason to try again. */
static bool copy_refused(const struct pass *ps, struct eval *e)
{
    if (gf_htab_len(&ps->refused) == 0)
        return false; /* the common case: no lookup on the hot path */
    const struct gf_ledger_wl *w = e->w;
    char key[3 * (GF_LEDGER_MAX_NAME + 1)];
    size_t kl =
        gf__key(key, sizeof(key), w->member, w->namespace, w->name, NULL);
    const char *uid = kl > 0 ? gf_htab_get(&ps->refused, key, kl) : NULL;
    if (uid == NULL ||
        (uid[0] != '\0' && w->uid != NULL && strcmp(uid, w->uid) != 0))
        return false;
    why_set(&e->why, "copyRefused", 0, 0,
            "its last lease ended Failed(CreateRefused): its copy cannot be "
            "made (the hub's log says why, msg=\"copy refused\"), so it runs "
            "at home; submitted again (a new uid) it may overflow");
    return true;
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
        if (live > 0)
            why_set(&e->why, "S1", (int64_t)live, 0,
                    "it already holds %zu live lease(s): at most one copy "
                    "runs",
                    live);
        else if (!copy_refused(ps, e))
            return true;
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
    /* A loan-only group that no cell could back: the loan rule says why
     * (a cap that bound a cell that could is the closer miss). */
    if (!e->found && g->modes == GF_MODE_LOAN && e->loan_why.rule != NULL &&
        (e->why.rule == NULL || e->best_miss < 0))
        e->why = e->loan_why;
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
    a->mode = e->best.loan ? GF_LEASE_LOAN : GF_LEASE_REDIRECT;
    a->epoch = epoch + 1;
    if (e->best.loan) {
        gf__loan_start_why(w, e->best.cell, a->lender, e->best.room, ps->now,
                           &a->why);
        return;
    }
    why_set(&a->why, "fit", e->best.room, w->gpus,
            "%spending %lldms >= overflowAfter; %s/%s flavor %s has room for "
            "%lld GPUs (the most idle that fits %lld)%s%s",
            (g->modes & GF_MODE_LOAN) ? "mode redirect: " : "",
            (long long)(ps->now - w->pending_since_ms), a->lender, a->lender_cq,
            a->flavor, (long long)e->best.room, (long long)w->gpus,
            e->loan_why.rule != NULL ? "; " : "", e->loan_why.text);
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
    /* Started elsewhere: no longer a demand on its own queue. */
    int64_t *d = is_demand(ps, w)
                     ? gf_htab_get(&ps->demand, &w->cq, sizeof(w->cq))
                     : NULL;
    if (d != NULL)
        *d -= w->gpus;
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
    recent_build(&dp->ps);
    refused_build(&dp->ps);
    demand_build(&dp->ps);
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
    recent_build(&ps);
    refused_build(&ps);
    demand_build(&ps);
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
