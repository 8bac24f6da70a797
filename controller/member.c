/*
 * member: one member cluster as the hub sees it — a client built from its
 * kubeconfig Secret, a reflector and a projected store per kind, and the
 * feed: every change goes into the ledger at once (incremental, pure
 * calls into policy/) and wakes the keys that depend on it.
 *
 * A member that has not listed everything yet, or whose watches are
 * down, is never read as empty: the ledger's freshness for it stays
 * UNKNOWN or STALE (set by the decision pass from reflector health), and
 * the lease machine sees its objects as unknown.
 */
#include "controller/internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "controller/copy.h"

static const char *const kind_names[GF__M_KINDS] = {
    [GF__M_CQ] = "clusterqueues.kueue.x-k8s.io",
    [GF__M_LQ] = "localqueues.kueue.x-k8s.io",
    [GF__M_WL] = "workloads.kueue.x-k8s.io",
    [GF__M_JOB] = "jobs.batch",
    [GF__M_NS] = "namespaces",
};

/* --- lookups ------------------------------------------------------- */

static const void *proj(const struct gf__member *m, enum gf__mkind k,
                        const char *ns, const char *name)
{
    if (m->stores[k] == NULL)
        return NULL;
    char key[600];
    if (ns != NULL)
        snprintf(key, sizeof(key), "%s/%s", ns, name);
    else
        snprintf(key, sizeof(key), "%s", name);
    const struct gf_store_entry *e = gf_store_get(m->stores[k], key);
    return e != NULL ? e->proj : NULL;
}

const struct gf_obs_workload *gf__member_wl(const struct gf__member *m,
                                            const char *ns, const char *name)
{
    return proj(m, GF__M_WL, ns, name);
}

const struct gf_obs_job *gf__member_job(const struct gf__member *m,
                                        const char *ns, const char *name)
{
    return proj(m, GF__M_JOB, ns, name);
}

const struct gf_obs_lq *gf__member_lq(const struct gf__member *m,
                                      const char *ns, const char *name)
{
    return proj(m, GF__M_LQ, ns, name);
}

const struct gf_obs_cq *gf__member_cq(const struct gf__member *m,
                                      const char *name)
{
    return proj(m, GF__M_CQ, NULL, name);
}

const struct gf_obs_ns *gf__member_ns(const struct gf__member *m,
                                      const char *name)
{
    return proj(m, GF__M_NS, NULL, name);
}

const struct gf_obs_workload *gf__member_job_wl(const struct gf__member *m,
                                                const char *ns, const char *job)
{
    char key[600];
    snprintf(key, sizeof(key), "%s/%s", ns, job);
    const char *wl = gf_htab_get_str(&m->wl_by_job, key);
    if (wl == NULL || m->stores[GF__M_WL] == NULL)
        return NULL;
    const struct gf_store_entry *e = gf_store_get(m->stores[GF__M_WL], wl);
    return e != NULL ? e->proj : NULL;
}

void gf__member_write_through(struct gf__member *m, enum gf__mkind k,
                              const cJSON *obj)
{
    if (m != NULL && m->stores[k] != NULL && obj != NULL)
        gf_store_write_through(m->stores[k], obj);
}

const char *gf__member_kind_name(enum gf__mkind k)
{
    return k < GF__M_KINDS ? kind_names[k] : "";
}

bool gf__member_synced(const struct gf__member *m)
{
    for (int k = 0; k < GF__M_KINDS; k++) {
        if (m->refl[k] == NULL)
            return false;
        struct gf_reflector_health hl;
        gf_reflector_health(m->refl[k], &hl);
        if (!hl.synced || hl.state != GF_REFLECTOR_WATCHING)
            return false;
    }
    return true;
}

/* --- feed ------------------------------------------------------------ */

/* The ClusterQueue of a Workload, through its LocalQueue. */
static const struct gf_obs_cq *wl_cq(const struct gf__member *m,
                                     const struct gf_obs_workload *w)
{
    if (w->local_queue == NULL)
        return NULL;
    const struct gf_obs_lq *lq = gf__member_lq(m, w->ns, w->local_queue);
    return lq != NULL && lq->cluster_queue != NULL
               ? gf__member_cq(m, lq->cluster_queue)
               : NULL;
}

/* "ns/queue", the unresolved index's key. */
static void queue_key(char *key, size_t cap, const char *ns, const char *q)
{
    snprintf(key, cap, "%s/%s", ns, q);
}

/* Adds a Workload to, or removes it from, those waiting for queue q. */
static void unresolved_put(struct gf__member *m, const char *ns, const char *q,
                           const char *name, bool on)
{
    char key[600];
    queue_key(key, sizeof(key), ns, q);
    struct gf_htab *set = gf_htab_get_str(&m->unresolved, key);
    if (on) {
        if (set == NULL) {
            set = gf_calloc(1, sizeof(*set));
            gf_htab_init(set, GF_HTAB_OWN_KEYS);
            gf_htab_put_str(&m->unresolved, key, set);
        }
        gf_htab_put_str(set, name, set);
    } else if (set != NULL && gf_htab_del_str(set, name) != NULL &&
               gf_htab_len(set) == 0) {
        gf_htab_del_str(&m->unresolved, key);
        gf_htab_free(set);
        gf_free(set);
    }
}

static void unresolved_set(struct gf__member *m,
                           const struct gf_obs_workload *w, bool on)
{
    if (w->local_queue != NULL)
        unresolved_put(m, w->ns, w->local_queue, w->name, on);
}

static void unresolved_clear(struct gf__member *m)
{
    struct gf_htab_iter it;
    void *v;
    gf_htab_iter_init(&it, &m->unresolved);
    while (gf_htab_next(&it, NULL, NULL, &v)) {
        gf_htab_free(v);
        gf_free(v);
    }
    gf_htab_free(&m->unresolved);
    gf_htab_init(&m->unresolved, GF_HTAB_OWN_KEYS);
}

static void feed_wl(struct gf__member *m, const struct gf_obs_workload *w)
{
    struct gf_hub *h = m->hub;
    const struct gf_obs_cq *cq = wl_cq(m, w);
    m->n_fed++;
    unresolved_set(m, w, cq == NULL);
    /* Copies run in gpufed's own overflow queues: their quota is the
     * lease's, already counted against the lender. */
    if (cq != NULL && cq->managed_by_gpufed) {
        gf_ledger_workload_delete(h->ledger, m->name, w->ns, w->name);
        return;
    }
    struct gf_workload lw;
    gf_obs_workload_to_ledger(w, m->name, cq != NULL ? cq->name : NULL, &lw);
    int rc = gf_ledger_workload_set(h->ledger, &lw);
    if (rc != 0)
        GF_LOG(&m->lc, GF_LOG_WARN, "workload not counted", "key=%s/%s err=%s",
               w->ns, w->name, gf_strerror(rc));
}

/* The lease a Workload or Job belongs to: the origin's annotation, or a
 * copy's owner Job's label. */
static void wake_leases_of_wl(struct gf__member *m,
                              const struct gf_obs_workload *w)
{
    if (w->lease != NULL)
        gf__hub_enqueue_lease(m->hub, w->lease);
    /* A loan's mark, and the note of a Workload the agent fenced for a
     * loan: the loan clears both when it ends. */
    if (w->loan != NULL)
        gf__hub_enqueue_lease(m->hub, w->loan);
    if (w->fenced_for != NULL)
        gf__hub_enqueue_lease(m->hub, w->fenced_for);
    if (w->owner_name != NULL) {
        const struct gf_obs_job *j = gf__member_job(m, w->ns, w->owner_name);
        if (j != NULL && j->lease != NULL)
            gf__hub_enqueue_lease(m->hub, j->lease);
    }
}

static void index_owner(struct gf__member *m, const struct gf_obs_workload *w,
                        bool add)
{
    if (w->owner_name == NULL)
        return;
    char key[600];
    snprintf(key, sizeof(key), "%s/%s", w->ns, w->owner_name);
    char *old = add ? NULL : gf_htab_get_str(&m->wl_by_job, key);
    if (add) {
        char wk[600];
        snprintf(wk, sizeof(wk), "%s/%s", w->ns, w->name);
        old = gf_htab_put_str(&m->wl_by_job, key, gf_strdup(wk));
        gf_free(old);
    } else if (old != NULL) {
        char wk[600];
        snprintf(wk, sizeof(wk), "%s/%s", w->ns, w->name);
        if (strcmp(old, wk) == 0)
            gf_free(gf_htab_del_str(&m->wl_by_job, key));
    }
}

static int refeed_one(void *data, const struct gf_store_entry *e)
{
    feed_wl(data, e->proj);
    return 0;
}

/* Every Workload again: when a queue that Workloads already resolved
 * through goes away or points elsewhere, which is rare (Kueue makes a
 * LocalQueue's clusterQueue immutable). */
static void refeed_all(struct gf__member *m)
{
    if (m->stores[GF__M_WL] != NULL)
        gf_store_foreach(m->stores[GF__M_WL], refeed_one, m);
}

/*
 * The Workloads of ns/queue that were fed without a ClusterQueue, again:
 * a Workload's ClusterQueue comes through its LocalQueue, and one
 * member's kinds list in no particular order, so at a cold start a
 * Workload often arrives before its queues. Only those are fed again:
 * queues' status changes with every admission, and feeding every
 * Workload each time would cost O(Workloads) per change.
 */
static void refeed_queue(struct gf__member *m, const char *ns, const char *q)
{
    char key[600];
    queue_key(key, sizeof(key), ns, q);
    struct gf_htab *set = gf_htab_get_str(&m->unresolved, key);
    if (set == NULL)
        return;
    /* feed_wl edits the set: walk a copy of its names. */
    size_t n = gf_htab_len(set), i = 0;
    char **names = gf_calloc(n, sizeof(*names));
    struct gf_htab_iter it;
    const char *k;
    gf_htab_iter_init(&it, set);
    while (i < n && gf_htab_next(&it, &k, NULL, NULL))
        names[i++] = gf_strdup(k);
    gf_htab_iter_end(&it);
    for (i = 0; i < n; i++) {
        const struct gf_obs_workload *w = gf__member_wl(m, ns, names[i]);
        if (w != NULL)
            feed_wl(m, w);
        else
            unresolved_put(m, ns, q, names[i], false);
        gf_free(names[i]);
    }
    gf_free(names);
}

struct cq_arrived {
    struct gf__member *m;
    const char *cq;
};

static int refeed_lq_of_cq(void *data, const struct gf_store_entry *e)
{
    const struct cq_arrived *c = data;
    const struct gf_obs_lq *lq = e->proj;
    if (lq->cluster_queue != NULL && strcmp(lq->cluster_queue, c->cq) == 0)
        refeed_queue(c->m, lq->ns, lq->name);
    return 0;
}

static bool str_eq(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* What a ClusterQueue change means for the Workloads: one that arrives
 * resolves those waiting behind its LocalQueues; one that goes, or
 * becomes gpufed's own or stops being, changes how its Workloads count.
 * Quota and status changes reach the ledger through cq_set alone. */
static void cq_changed(struct gf__member *m, const struct gf_obs_cq *old,
                       const struct gf_obs_cq *cur)
{
    if (old == NULL && cur != NULL) {
        struct cq_arrived c = {.m = m, .cq = cur->name};
        if (m->stores[GF__M_LQ] != NULL && gf_htab_len(&m->unresolved) > 0)
            gf_store_foreach(m->stores[GF__M_LQ], refeed_lq_of_cq, &c);
    } else if (cur == NULL ||
               old->managed_by_gpufed != cur->managed_by_gpufed) {
        refeed_all(m);
    }
}

static void lq_changed(struct gf__member *m, const struct gf_obs_lq *old,
                       const struct gf_obs_lq *cur)
{
    if (old == NULL && cur != NULL)
        refeed_queue(m, cur->ns, cur->name);
    else if (cur == NULL || !str_eq(old->cluster_queue, cur->cluster_queue))
        refeed_all(m);
}

/* Which kind a store is, from the handler data. */
struct feed_ctx {
    struct gf__member *m;
    enum gf__mkind kind;
};

struct loan_wake {
    struct gf__member *m;
    const char *origin_cq; /* the borrowing ClusterQueue */
};

static int wake_loan(void *data, const struct gf_store_entry *e)
{
    const struct loan_wake *w = data;
    const struct gf__lease_proj *lp = e->proj;
    const struct gf_lease *l = &lp->l;
    if (l->mode == GF_LEASE_LOAN && l->phase != GF_LEASE_RELEASED &&
        l->phase != GF_LEASE_FAILED && str_eq(l->origin_member, w->m->name) &&
        str_eq(l->origin_cq, w->origin_cq))
        gf__hub_enqueue_lease(w->m->hub, l->name);
    return 0;
}

/* A grant changed (its nominal raised or lowered, or it appeared or
 * went): every loan of its borrowing ClusterQueue that is not over
 * reconciles, since each waits to see the grant at the value its next
 * step needs. A handful of loans per queue, so a walk of the leases. */
static void wake_loans(struct gf__member *m, const struct gf_obs_cq *grant)
{
    struct gf_hub *h = m->hub;
    struct loan_wake w = {.m = m,
                          .origin_cq = grant->name + strlen(GF_LOAN_CQ_PREFIX)};
    if (h->leases != NULL)
        gf_store_foreach(h->leases, wake_loan, &w);
}

struct cohort_wake {
    struct gf__member *m;
    const char *cohort;
};

static int wake_cohort_loan(void *data, const struct gf_store_entry *e)
{
    const struct cohort_wake *w = data;
    const struct gf_lease *l = &((const struct gf__lease_proj *)e->proj)->l;
    if (l->mode != GF_LEASE_LOAN || l->phase == GF_LEASE_RELEASED ||
        l->phase == GF_LEASE_FAILED || !str_eq(l->origin_member, w->m->name))
        return 0;
    const struct gf_obs_cq *q = gf__member_cq(w->m, l->origin_cq);
    if (q != NULL && str_eq(q->cohort, w->cohort))
        gf__hub_enqueue_lease(w->m->hub, l->name);
    return 0;
}

/* Whether Kueue's status of a queue says something new about its usage. */
static bool usage_changed(const struct gf_obs_cq *old,
                          const struct gf_obs_cq *cur)
{
    if (old == NULL || cur == NULL || old->n_quotas != cur->n_quotas ||
        old->status_current != cur->status_current)
        return true;
    for (size_t i = 0; i < cur->n_quotas; i++)
        if (old->usage[i] != cur->usage[i])
            return true;
    return false;
}

/* A queue's usage in a cohort changed: a loan of the cohort releasing
 * waits for the cohort to fit its quota again (loan_reconcile's
 * cohort_state), and this is the change it waits for. */
static void wake_cohort_loans(struct gf__member *m, const struct gf_obs_cq *old,
                              const struct gf_obs_cq *cur)
{
    const struct gf_obs_cq *any = cur != NULL ? cur : old;
    if (any->cohort == NULL || m->hub->leases == NULL ||
        !usage_changed(old, cur))
        return;
    struct cohort_wake w = {.m = m, .cohort = any->cohort};
    gf_store_foreach(m->hub->leases, wake_cohort_loan, &w);
}

/* Each kind's change, with old or cur NULL for an add or a delete. */
static void cq_event(struct gf__member *m, const struct gf_obs_cq *old,
                     const struct gf_obs_cq *cur)
{
    struct gf_ledger *l = m->hub->ledger;
    const struct gf_obs_cq *any = cur != NULL ? cur : old;
    if (any->loan_grant) {
        /* A grant's quota is the lender's, already counted there through
         * the lease (the hold): counted here too it would show as the
         * borrower's own idle quota, and decide could lend it again. */
        gf_ledger_cq_delete(l, m->name, any->name);
        wake_loans(m, any);
        return;
    }
    wake_cohort_loans(m, old, cur);
    if (cur != NULL) {
        gf_ledger_cq_set(l, m->name, cur->name, cur->quotas, cur->n_quotas);
        /* decide lends into a ClusterQueue only through its cohort, so
         * the cohort goes with the quota (and goes away with it). */
        gf_ledger_cq_cohort_set(l, m->name, cur->name, cur->cohort);
    } else {
        gf_ledger_cq_delete(l, m->name, old->name);
        gf_ledger_cq_cohort_set(l, m->name, old->name, NULL);
    }
    cq_changed(m, old, cur);
}

static void wl_event(struct gf__member *m, const struct gf_obs_workload *old,
                     struct gf_obs_workload *cur)
{
    /* When this wait was first seen: kept from the last version while
     * pending_since is the same, now when it is new. */
    if (cur != NULL)
        cur->pending_seen_ms =
            old != NULL && old->pending_since_ms == cur->pending_since_ms
                ? old->pending_seen_ms
                : gf_clock_wall_ms(&m->hub->clk);
    if (old != NULL) {
        index_owner(m, old, false);
        unresolved_set(m, old, false);
    }
    if (cur != NULL) {
        index_owner(m, cur, true);
        feed_wl(m, cur);
        wake_leases_of_wl(m, cur);
    } else {
        gf_ledger_workload_delete(m->hub->ledger, m->name, old->ns, old->name);
        wake_leases_of_wl(m, old);
    }
}

static void job_event(struct gf__member *m, const struct gf_obs_job *j)
{
    if (j->lease != NULL)
        gf__hub_enqueue_lease(m->hub, j->lease);
    /* An origin Job: its Workload's lease, if it has one. */
    const struct gf_obs_workload *w = gf__member_job_wl(m, j->ns, j->name);
    if (w != NULL && w->lease != NULL)
        gf__hub_enqueue_lease(m->hub, w->lease);
}

/* decide picks only lenders whose namespace has opted in. */
static void ns_event(struct gf__member *m, const struct gf_obs_ns *ns,
                     bool present)
{
    gf_ledger_ns_set(m->hub->ledger, m->name, ns->name,
                     present && ns->accept_overflow);
}

static void on_change(struct feed_ctx *c, const struct gf_store_entry *old,
                      const struct gf_store_entry *cur)
{
    struct gf__member *m = c->m;
    const void *o = old != NULL ? old->proj : NULL;
    void *n = cur != NULL ? cur->proj : NULL;
    switch (c->kind) {
    case GF__M_CQ:
        cq_event(m, o, n);
        break;
    case GF__M_WL:
        wl_event(m, o, n);
        break;
    case GF__M_JOB:
        job_event(m, n != NULL ? n : o);
        break;
    case GF__M_LQ:
        lq_changed(m, o, n);
        break;
    case GF__M_NS:
        ns_event(m, n != NULL ? n : o, n != NULL);
        break;
    case GF__M_KINDS:
        break;
    }
    gf__hub_kick_pass(m->hub);
}

static void on_add(void *data, const struct gf_store_entry *e)
{
    on_change(data, NULL, e);
}

static void on_update(void *data, const struct gf_store_entry *old,
                      const struct gf_store_entry *cur)
{
    on_change(data, old, cur);
}

static void on_delete(void *data, const struct gf_store_entry *old)
{
    on_change(data, old, NULL);
}

/* --- lifecycle ------------------------------------------------------- */

struct member_extra {
    struct feed_ctx ctx[GF__M_KINDS];
};

int gf__member_new(struct gf_hub *h, size_t index, struct gf__member **out)
{
    struct gf__member *m =
        gf_calloc(1, sizeof(*m) + sizeof(struct member_extra));
    m->hub = h;
    m->index = index;
    m->name = gf_strdup(h->policy->members[index].name);
    m->lc = (struct gf_log_ctx){.comp = "member", .cluster = m->name};
    gf_htab_init(&m->wl_by_job, GF_HTAB_OWN_KEYS);
    gf_htab_init(&m->unresolved, GF_HTAB_OWN_KEYS);
    gf_timer_init(&h->clk, &m->defer);
    m->defer.data = m;
    *out = m;
    return 0;
}

static struct member_extra *extra(struct gf__member *m)
{
    return (struct member_extra *)(m + 1);
}

static const gf_store_project_fn projections[GF__M_KINDS] = {
    [GF__M_CQ] = gf_obs_cq_project,       [GF__M_LQ] = gf_obs_lq_project,
    [GF__M_WL] = gf_obs_workload_project, [GF__M_JOB] = gf_obs_job_project,
    [GF__M_NS] = gf_obs_ns_project,
};
static const gf_store_free_fn frees[GF__M_KINDS] = {
    [GF__M_CQ] = gf_obs_cq_free,       [GF__M_LQ] = gf_obs_lq_free,
    [GF__M_WL] = gf_obs_workload_free, [GF__M_JOB] = gf_obs_job_free,
    [GF__M_NS] = gf_obs_ns_free,
};

static struct gf_store *store_new(struct gf__member *m, enum gf__mkind k)
{
    struct feed_ctx *c = &extra(m)->ctx[k];
    c->m = m;
    c->kind = k;
    struct gf_store_handlers hs = {.on_add = on_add,
                                   .on_update = on_update,
                                   .on_delete = on_delete,
                                   .data = c};
    struct gf_store_opts so = {
        .project = projections[k],
        .free_proj = frees[k],
        /* Workloads count the policy's resource (nvidia.com/gpu). */
        .project_data = m->hub->resource,
        .handlers = &hs,
    };
    return gf_store_new(&so);
}

void gf__member_stores_new(struct gf__member *m)
{
    for (int k = 0; k < GF__M_KINDS; k++)
        if (m->stores[k] == NULL)
            m->stores[k] = store_new(m, (enum gf__mkind)k);
}

static void stores_free(struct gf__member *m)
{
    for (int k = 0; k < GF__M_KINDS; k++) {
        gf_store_free(m->stores[k]);
        m->stores[k] = NULL;
    }
    /* The next stores list everything again and resolve it afresh. */
    unresolved_clear(m);
}

static int start_kind(struct gf__member *m, enum gf__mkind k)
{
    if (m->stores[k] == NULL)
        m->stores[k] = store_new(m, k);
    /*
     * The reflectors keep client-go's backoff (0.8 s doubling to a 30 s
     * cap). A lower cap for member watches would shorten how long a member
     * that is back stays unsynced, but only by retrying blindly and more
     * often, against a server that may be the one recovering (five
     * paginated lists per member at once). The hub knows better when to
     * try: its heartbeat probe of a suspect member (every D/3) succeeding
     * calls gf__member_retry_now, which bounds the stall by the probe
     * period instead of the cap while the cap keeps protecting a server
     * that keeps failing.
     */
    struct gf_reflector_opts ro = {
        .client = m->client,
        .store = m->stores[k],
        .rng = &m->hub->rng,
        .page_limit = 500,
        .lc = &m->lc,
    };
    int rc = gf_kube_resource_parse(kind_names[k], &ro.res);
    if (rc == 0)
        rc = gf_reflector_new(&ro, &m->refl[k]);
    if (rc == 0)
        rc = gf_reflector_start(m->refl[k]);
    return rc;
}

size_t gf__member_retry_now(struct gf__member *m)
{
    size_t n = 0;
    for (int k = 0; k < GF__M_KINDS; k++)
        if (m->refl[k] != NULL && gf_reflector_retry_now(m->refl[k]))
            n++;
    if (n > 0)
        GF_LOG(&m->lc, GF_LOG_INFO, "member reachable, watches retry now",
               "reflectors=%zu", n);
    return n;
}

static void member_free(struct gf__member *m)
{
    void (*cb)(void *) = m->stop_cb;
    void *d = m->stop_data;
    struct gf_htab_iter it;
    void *v;
    gf_htab_iter_init(&it, &m->wl_by_job);
    while (gf_htab_next(&it, NULL, NULL, &v))
        gf_free(v);
    gf_htab_free(&m->wl_by_job);
    stores_free(m);
    gf_htab_free(&m->unresolved);
    gf_timer_stop(&m->defer);
    gf_free(m->secret_rv);
    gf_free(m->name);
    gf_free(m);
    if (cb != NULL)
        cb(d);
}

static void on_refl_closed(void *data)
{
    struct gf__member *m = data;
    if (--m->closing > 0)
        return;
    stores_free(m);
    gf_kube_client_free(m->client);
    m->client = NULL;
    if (m->stopped) {
        member_free(m);
        return;
    }
    /* Closed for new credentials: connect again with them. */
    char key[160];
    snprintf(key, sizeof(key), "member/%s", m->name);
    gf_wq_add(m->hub->wq, key);
}

static void on_defer(struct gf_timer *t)
{
    member_free(t->data);
}

static void close_reflectors(struct gf__member *m)
{
    for (int k = 0; k < GF__M_KINDS; k++) {
        if (m->refl[k] != NULL) {
            m->closing++;
            gf_reflector_close(m->refl[k], on_refl_closed, m);
            m->refl[k] = NULL;
        }
    }
}

/* The member's credentials from its Secret's kubeconfig, with the
 * policy's apiServer as the URL: the Secret gives trust and identity, the
 * policy says where. */
static int member_creds(struct gf__member *m, const char *kubeconfig,
                        size_t len, struct gf_kube_creds **out)
{
    struct gf_kubeconfig_error kerr;
    char name[128];
    snprintf(name, sizeof(name), "secret for member %s", m->name);
    int rc = gf_kubeconfig_parse(name, NULL, kubeconfig, len, NULL, out, &kerr);
    if (rc != 0) {
        char why[600];
        gf_kubeconfig_error_format(&kerr, why, sizeof(why));
        GF_LOG(&m->lc, GF_LOG_ERROR, "member kubeconfig refused", "why=%s",
               why);
        return rc;
    }
    const char *api = m->hub->policy->members[m->index].api_server;
    if (api != NULL) {
        gf_free((*out)->server);
        (*out)->server = gf_strdup(api);
    }
    return 0;
}

/* Credentials rotated: close this connection; on_refl_closed requeues
 * the member, which then connects with the new ones. */
static int reconnect(struct gf__member *m)
{
    GF_LOG(&m->lc, GF_LOG_INFO, "member credentials changed", "");
    GF_FREE(m->secret_rv);
    close_reflectors(m);
    if (m->closing == 0) {
        gf_kube_client_free(m->client);
        m->client = NULL;
    }
    return -EAGAIN;
}

int gf__member_connect(struct gf__member *m, const char *kubeconfig, size_t len,
                       const char *secret_rv)
{
    struct gf_hub *h = m->hub;
    if (m->client != NULL && m->secret_rv != NULL && secret_rv != NULL &&
        strcmp(m->secret_rv, secret_rv) == 0)
        return 0;
    if (m->closing > 0)
        return -EAGAIN; /* the previous connection is still closing */
    struct gf_kube_creds *creds = NULL;
    int rc = member_creds(m, kubeconfig, len, &creds);
    if (rc != 0)
        return rc;
    if (m->client != NULL) {
        gf_kube_creds_free(creds);
        return reconnect(m);
    }
    struct gf_kube_client_opts co = {.user_agent = "gpufed-hub",
                                     .name = m->name};
    rc = gf_kube_client_new(h->http, &h->clk, creds, &co, &m->client);
    gf_kube_creds_free(creds);
    if (rc != 0)
        return rc;
    m->secret_rv = gf_strdup(secret_rv != NULL ? secret_rv : "");
    for (int k = 0; k < GF__M_KINDS && rc == 0; k++)
        rc = start_kind(m, (enum gf__mkind)k);
    if (rc == 0)
        GF_LOG(&m->lc, GF_LOG_INFO, "member engaged", "server=%s",
               gf_kube_client_server(m->client));
    else
        GF_LOG(&m->lc, GF_LOG_ERROR, "member not engaged", "err=%s",
               gf_strerror(rc));
    return rc;
}

void gf__member_close(struct gf__member *m, void (*cb)(void *data), void *data)
{
    m->stopped = true;
    m->stop_cb = cb;
    m->stop_data = data;
    close_reflectors(m);
    if (m->closing == 0) {
        /* Nothing to wait for: finish from the loop all the same, never
         * before this returns. */
        gf_kube_client_free(m->client);
        m->client = NULL;
        gf_timer_start(&m->defer, 0, on_defer);
    }
}
