/*
 * ledger: incremental quota bookkeeping (see ledger.h).
 *
 * Every update first removes the old contribution of the object it
 * replaces and then adds the new one, so the aggregates are always the
 * sum of what is stored; gf_ledger_verify() checks exactly that by
 * recomputing from scratch. Records are found through gf__htab tables
 * keyed by "member\0cq\0flavor\0resource" style byte strings.
 */
#include "policy/ledger.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/htab.h"
#include "policy/internal.h"

#define KEY_CAP (4 * (GF_LEDGER_MAX_NAME + 1) + 8)

/* Lent GPUs per lender -> borrower pair. */
struct pair {
    int64_t lent;
};

/* Leases of one origin Workload. */
struct wl_leases {
    size_t live;
    uint64_t max_epoch;
};

struct gf_ledger {
    char *resource;
    struct gf_htab members;   /* name -> gf_ledger_member */
    struct gf_htab cqs;       /* member\0cq -> gf_ledger_cq */
    struct gf_htab cells;     /* member\0cq\0flavor\0resource -> cell */
    struct gf_htab wls;       /* member\0ns\0name -> gf_ledger_wl */
    struct gf_htab leases;    /* name -> gf_ledger_lease */
    struct gf_htab pairs;     /* lender\0borrower -> pair */
    struct gf_htab wl_leases; /* member\0ns\0name -> wl_leases */
    struct gf_htab ns_ok;     /* member\0ns -> the ledger (present: opted in) */
    struct gf_list pending;   /* of gf_ledger_wl.pending_link */
    size_t n_pending;
};

static bool name_ok(const char *s)
{
    return s != NULL && s[0] != '\0' && strlen(s) <= GF_LEDGER_MAX_NAME;
}

struct gf_ledger *gf_ledger_new(const char *resource)
{
    struct gf_ledger *l = gf_calloc(1, sizeof(*l));
    l->resource = gf_strdup(resource);
    return l;
}

const char *gf_ledger_resource(const struct gf_ledger *l)
{
    return l->resource;
}

/* A Workload record and its strings are one allocation: the hub keeps
 * one per tracked Workload, and five small blocks cost more in headers
 * than the strings themselves. */
static void free_wl(struct gf_ledger_wl *w)
{
    gf_free(w);
}

static size_t len0(const char *s)
{
    return s != NULL ? strlen(s) + 1 : 0;
}

static char *put_str(char **at, const char *s)
{
    if (s == NULL)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = memcpy(*at, s, n);
    *at += n;
    return d;
}

static bool same_str(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* A record for w with its strings, the other fields copied from old (or
 * zero). */
static struct gf_ledger_wl *wl_new(const struct gf_ledger_wl *old,
                                   const struct gf_workload *w)
{
    size_t n = len0(w->member) + len0(w->namespace) + len0(w->name) +
               len0(w->uid) + len0(w->kind);
    struct gf_ledger_wl *r = gf_malloc(sizeof(*r) + n);
    if (old != NULL)
        *r = *old;
    else
        memset(r, 0, sizeof(*r));
    /* Not on the pending list (a copied link would point into old). */
    gf_list_init(&r->pending_link);
    char *at = (char *)(r + 1);
    r->member = put_str(&at, w->member);
    r->namespace = put_str(&at, w->namespace);
    r->name = put_str(&at, w->name);
    r->uid = put_str(&at, w->uid);
    r->kind = put_str(&at, w->kind);
    return r;
}

void gf_ledger_free(struct gf_ledger *l)
{
    if (l == NULL)
        return;
    size_t pos = 0;
    void *v;
    while (gf_htab_scan(&l->wls, &pos, NULL, &v))
        free_wl(v);
    for (pos = 0; gf_htab_scan(&l->leases, &pos, NULL, &v);) {
        struct gf_ledger_lease *ll = v;
        gf_lease_clear(&ll->l);
        gf_free(ll);
    }
    for (pos = 0; gf_htab_scan(&l->cells, &pos, NULL, &v);) {
        struct gf_ledger_cell *c = v;
        gf_free(c->flavor);
        gf_free(c->resource);
        gf_free(c);
    }
    for (pos = 0; gf_htab_scan(&l->cqs, &pos, NULL, &v);) {
        struct gf_ledger_cq *q = v;
        gf_free(q->name);
        gf_free(q->cohort);
        gf_free(q->cells);
        gf_free(q);
    }
    for (pos = 0; gf_htab_scan(&l->members, &pos, NULL, &v);) {
        struct gf_ledger_member *m = v;
        gf_free(m->name);
        gf_free(m);
    }
    gf_htab_free_all(&l->pairs, gf_free);
    gf_htab_free_all(&l->wl_leases, gf_free);
    gf_htab_free(&l->ns_ok);
    gf_htab_free(&l->members);
    gf_htab_free(&l->cqs);
    gf_htab_free(&l->cells);
    gf_htab_free(&l->wls);
    gf_htab_free(&l->leases);
    gf_free(l->resource);
    gf_free(l);
}

/* ---- records created on demand ------------------------------------------ */

static struct gf_ledger_member *get_member(struct gf_ledger *l,
                                           const char *name)
{
    size_t kl = strlen(name);
    struct gf_ledger_member *m = gf_htab_get(&l->members, name, kl);
    if (m == NULL) {
        m = gf_calloc(1, sizeof(*m));
        m->name = gf_strdup(name);
        m->fresh = GF_FRESH_UNKNOWN;
        gf_htab_put(&l->members, name, kl, m);
    }
    return m;
}

static struct gf_ledger_cq *get_cq(struct gf_ledger *l, const char *member,
                                   const char *name)
{
    char key[KEY_CAP];
    size_t kl = gf__key(key, sizeof(key), member, name, NULL, NULL);
    struct gf_ledger_cq *q = gf_htab_get(&l->cqs, key, kl);
    if (q == NULL) {
        q = gf_calloc(1, sizeof(*q));
        q->name = gf_strdup(name);
        q->member = get_member(l, member);
        q->member->n_cqs++;
        gf_htab_put(&l->cqs, key, kl, q);
    }
    return q;
}

static struct gf_ledger_cell *get_cell(struct gf_ledger *l,
                                       struct gf_ledger_cq *q,
                                       const char *flavor, const char *resource)
{
    char key[KEY_CAP];
    size_t kl =
        gf__key(key, sizeof(key), q->member->name, q->name, flavor, resource);
    struct gf_ledger_cell *c = gf_htab_get(&l->cells, key, kl);
    if (c == NULL) {
        c = gf_calloc(1, sizeof(*c));
        c->flavor = gf_strdup(flavor);
        c->resource = gf_strdup(resource);
        c->cq = q;
        c->borrowing_limit = c->lending_limit = GF_NO_LIMIT;
        gf_htab_put(&l->cells, key, kl, c);
        if (q->n_cells == q->cap_cells) {
            q->cap_cells = q->cap_cells ? q->cap_cells * 2 : 4;
            q->cells = gf_realloc(q->cells, q->cap_cells * sizeof(*q->cells));
        }
        q->cells[q->n_cells++] = c;
    }
    return c;
}

/* ---- members and ClusterQueues ------------------------------------------ */

int gf_ledger_member_set(struct gf_ledger *l, const char *member,
                         enum gf_freshness fresh, int64_t last_heartbeat_ms)
{
    if (!name_ok(member))
        return member == NULL ? -EINVAL : -ENAMETOOLONG;
    struct gf_ledger_member *m = get_member(l, member);
    m->fresh = fresh;
    m->last_heartbeat_ms = last_heartbeat_ms;
    return 0;
}

int gf_ledger_member_heartbeat(struct gf_ledger *l, const char *member,
                               int64_t term_ms, int64_t recovering_until_ms)
{
    if (!name_ok(member))
        return member == NULL ? -EINVAL : -ENAMETOOLONG;
    struct gf_ledger_member *m = get_member(l, member);
    m->term_ms = term_ms;
    m->recovering_until_ms = recovering_until_ms;
    return 0;
}

int gf_ledger_member_drain(struct gf_ledger *l, const char *member,
                           bool drained)
{
    if (!name_ok(member))
        return member == NULL ? -EINVAL : -ENAMETOOLONG;
    get_member(l, member)->drained = drained;
    return 0;
}

static bool counted(const struct gf_ledger *l, const struct gf_ledger_cell *c)
{
    return strcmp(c->resource, l->resource) == 0;
}

/* Takes every cell of q out of the spec (usage stays). */
static void unspec(struct gf_ledger *l, struct gf_ledger_cq *q)
{
    for (size_t i = 0; i < q->n_cells; i++) {
        struct gf_ledger_cell *c = q->cells[i];
        if (c->in_spec && counted(l, c))
            q->member->nominal -= c->nominal;
        c->in_spec = false;
        c->nominal = 0;
        c->borrowing_limit = c->lending_limit = GF_NO_LIMIT;
    }
}

int gf_ledger_cq_set(struct gf_ledger *l, const char *member, const char *cq,
                     const struct gf_cq_quota *q, size_t n)
{
    if (!name_ok(member) || !name_ok(cq))
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!name_ok(q[i].flavor) || !name_ok(q[i].resource) ||
            q[i].nominal < 0 || q[i].borrowing_limit < GF_NO_LIMIT ||
            q[i].lending_limit < GF_NO_LIMIT)
            return -EINVAL;
    struct gf_ledger_cq *rec = get_cq(l, member, cq);
    unspec(l, rec);
    rec->known = true;
    for (size_t i = 0; i < n; i++) {
        struct gf_ledger_cell *c = get_cell(l, rec, q[i].flavor, q[i].resource);
        /* A flavor listed twice: the last entry wins, counted once. */
        if (c->in_spec && counted(l, c))
            rec->member->nominal -= c->nominal;
        c->in_spec = true;
        c->nominal = q[i].nominal;
        c->borrowing_limit = q[i].borrowing_limit;
        c->lending_limit = q[i].lending_limit;
        if (counted(l, c))
            rec->member->nominal += c->nominal;
    }
    return 0;
}

int gf_ledger_cq_cohort_set(struct gf_ledger *l, const char *member,
                            const char *cq, const char *cohort)
{
    if (cohort != NULL && cohort[0] == '\0')
        cohort = NULL;
    if (!name_ok(member) || !name_ok(cq) ||
        (cohort != NULL && !name_ok(cohort)))
        return -EINVAL;
    struct gf_ledger_cq *rec = get_cq(l, member, cq);
    if (rec->cohort != NULL && cohort != NULL &&
        strcmp(rec->cohort, cohort) == 0)
        return 0;
    GF_FREE(rec->cohort);
    if (cohort != NULL)
        rec->cohort = gf_strdup(cohort);
    return 0;
}

int gf_ledger_cq_delete(struct gf_ledger *l, const char *member, const char *cq)
{
    char key[KEY_CAP];
    size_t kl = gf__key(key, sizeof(key), member, cq, NULL, NULL);
    struct gf_ledger_cq *rec = kl ? gf_htab_get(&l->cqs, key, kl) : NULL;
    if (rec == NULL)
        return GF_ENOTFOUND;
    unspec(l, rec);
    rec->known = false;
    return 0;
}

/* ---- Workloads ---------------------------------------------------------- */

static void contrib(struct gf_ledger *l, struct gf_ledger_wl *w, int sign)
{
    int64_t g = sign * w->gpus;
    if (w->cq != NULL)
        w->cq->n_workloads += (size_t)(ptrdiff_t)sign;
    switch (w->state) {
    case GF_WL_PENDING:
        if (w->cq == NULL)
            return;
        w->cq->pending += g;
        w->cq->n_pending += (size_t)(ptrdiff_t)sign;
        if (sign > 0) {
            gf_list_push_front(&l->pending, &w->pending_link);
            l->n_pending++;
        } else {
            gf_list_remove(&w->pending_link);
            l->n_pending--;
        }
        return;
    case GF_WL_RESERVED:
        if (w->cell != NULL)
            w->cell->reserved += g;
        return;
    case GF_WL_ADMITTED:
        if (w->cell != NULL)
            w->cell->used += g;
        return;
    default:
        return;
    }
}

int gf_ledger_workload_set(struct gf_ledger *l, const struct gf_workload *w)
{
    char key[KEY_CAP];
    if (!name_ok(w->member) || !name_ok(w->namespace) || !name_ok(w->name) ||
        w->gpus < 0)
        return -EINVAL;
    if ((w->cluster_queue != NULL && !name_ok(w->cluster_queue)) ||
        (w->flavor != NULL && !name_ok(w->flavor)))
        return -EINVAL;
    size_t kl =
        gf__key(key, sizeof(key), w->member, w->namespace, w->name, NULL);
    struct gf_ledger_wl *r = gf_htab_get(&l->wls, key, kl);
    if (r == NULL) {
        r = wl_new(NULL, w);
        gf_htab_put(&l->wls, key, kl, r);
    } else {
        contrib(l, r, -1);
        if (!same_str(r->uid, w->uid) || !same_str(r->kind, w->kind)) {
            /* Out of the pending list while it moves (contrib put it
             * back below). */
            struct gf_ledger_wl *n = wl_new(r, w);
            gf_htab_put(&l->wls, key, kl, n);
            free_wl(r);
            r = n;
        }
    }
    r->cq = w->cluster_queue != NULL ? get_cq(l, w->member, w->cluster_queue)
                                     : NULL;
    r->cell = NULL;
    if (r->cq != NULL && w->flavor != NULL &&
        (w->state == GF_WL_RESERVED || w->state == GF_WL_ADMITTED))
        r->cell = get_cell(l, r->cq, w->flavor, l->resource);
    r->gpus = w->gpus;
    r->priority = w->priority;
    r->state = w->state;
    r->pending_since_ms = w->pending_since_ms;
    contrib(l, r, +1);
    return 0;
}

int gf_ledger_workload_delete(struct gf_ledger *l, const char *member,
                              const char *ns, const char *name)
{
    char key[KEY_CAP];
    size_t kl = gf__key(key, sizeof(key), member, ns, name, NULL);
    struct gf_ledger_wl *r = kl ? gf_htab_del(&l->wls, key, kl) : NULL;
    if (r == NULL)
        return GF_ENOTFOUND;
    contrib(l, r, -1);
    free_wl(r);
    return 0;
}

/* ---- lender namespaces --------------------------------------------------- */

int gf_ledger_ns_set(struct gf_ledger *l, const char *member, const char *ns,
                     bool accepts)
{
    if (!name_ok(member) || !name_ok(ns))
        return -EINVAL;
    char key[KEY_CAP];
    size_t kl = gf__key(key, sizeof(key), member, ns, NULL, NULL);
    if (kl == 0)
        return -ENAMETOOLONG;
    get_member(l, member)->ns_known = true;
    if (accepts)
        gf_htab_put(&l->ns_ok, key, kl, l);
    else
        gf_htab_del(&l->ns_ok, key, kl);
    return 0;
}

bool gf_ledger_ns_accepts(const struct gf_ledger *l, const char *member,
                          const char *ns)
{
    const struct gf_ledger_member *m = gf_ledger_member(l, member);
    if (m == NULL || !m->ns_known)
        return true; /* no namespace of it told: not checked */
    char key[KEY_CAP];
    size_t kl = gf__key(key, sizeof(key), member, ns, NULL, NULL);
    return kl != 0 && gf_htab_get(&l->ns_ok, key, kl) != NULL;
}

/* ---- leases ------------------------------------------------------------- */

static struct pair *get_pair(struct gf_ledger *l, const char *lender,
                             const char *borrower)
{
    char key[KEY_CAP];
    size_t kl = gf__key(key, sizeof(key), lender, borrower, NULL, NULL);
    struct pair *p = gf_htab_get(&l->pairs, key, kl);
    if (p == NULL) {
        p = gf_calloc(1, sizeof(*p));
        gf_htab_put(&l->pairs, key, kl, p);
    }
    return p;
}

static struct wl_leases *get_wl_leases(struct gf_ledger *l,
                                       const struct gf_lease *x)
{
    char key[KEY_CAP];
    size_t kl = gf__key(key, sizeof(key), x->origin_member, x->origin_namespace,
                        x->origin_name, NULL);
    struct wl_leases *w = gf_htab_get(&l->wl_leases, key, kl);
    if (w == NULL) {
        w = gf_calloc(1, sizeof(*w));
        gf_htab_put(&l->wl_leases, key, kl, w);
    }
    return w;
}

static void lease_contrib(struct gf_ledger *l, struct gf_ledger_lease *ll,
                          int sign)
{
    if (!ll->holds)
        return;
    int64_t g = sign * ll->l.gpus;
    ll->cell->lease_out += g;
    ll->cell->n_leases_out += (size_t)(ptrdiff_t)sign;
    ll->lender->lent += g;
    ll->lender->leases_out += (size_t)(ptrdiff_t)sign;
    ll->origin->borrowed += g;
    if (ll->origin_cq != NULL)
        ll->origin_cq->lease_in += g;
    get_pair(l, ll->lender->name, ll->origin->name)->lent += g;
    get_wl_leases(l, &ll->l)->live += (size_t)(ptrdiff_t)sign;
}

int gf_ledger_lease_set(struct gf_ledger *l, const struct gf_lease *x)
{
    if (!name_ok(x->name) || !name_ok(x->origin_member) ||
        !name_ok(x->origin_namespace) || !name_ok(x->origin_name) ||
        !name_ok(x->lender_member) || !name_ok(x->lender_cq) ||
        !name_ok(x->lender_flavor) || x->gpus < 0 ||
        (x->origin_cq != NULL && !name_ok(x->origin_cq)) ||
        (unsigned)x->phase >= GF_LEASE_PHASE_COUNT)
        return -EINVAL;
    size_t kl = strlen(x->name);
    struct gf_ledger_lease *ll = gf_htab_get(&l->leases, x->name, kl);
    if (ll == NULL) {
        ll = gf_calloc(1, sizeof(*ll));
        gf_htab_put(&l->leases, x->name, kl, ll);
    } else {
        lease_contrib(l, ll, -1);
        gf_lease_clear(&ll->l);
    }
    gf_lease_copy(&ll->l, x);
    ll->holds = gf_lease_holds_quota(x->phase);
    ll->lender = get_member(l, x->lender_member);
    ll->origin = get_member(l, x->origin_member);
    ll->cell = get_cell(l, get_cq(l, x->lender_member, x->lender_cq),
                        x->lender_flavor, l->resource);
    ll->origin_cq =
        x->origin_cq != NULL ? get_cq(l, x->origin_member, x->origin_cq) : NULL;
    struct wl_leases *wl = get_wl_leases(l, x);
    if (x->epoch > wl->max_epoch)
        wl->max_epoch = x->epoch;
    lease_contrib(l, ll, +1);
    return 0;
}

int gf_ledger_lease_delete(struct gf_ledger *l, const char *name)
{
    struct gf_ledger_lease *ll =
        name != NULL ? gf_htab_del(&l->leases, name, strlen(name)) : NULL;
    if (ll == NULL)
        return GF_ENOTFOUND;
    lease_contrib(l, ll, -1);
    gf_lease_clear(&ll->l);
    gf_free(ll);
    return 0;
}

int gf_ledger_lease_retract(struct gf_ledger *l, const char *name)
{
    const struct gf_ledger_lease *ll =
        name != NULL ? gf_htab_get(&l->leases, name, strlen(name)) : NULL;
    if (ll == NULL)
        return GF_ENOTFOUND;
    /* The epoch was one above the highest when the lease was decided;
     * a higher one seen since belongs to another lease and stays. */
    struct wl_leases *wl = get_wl_leases(l, &ll->l);
    if (wl->max_epoch == ll->l.epoch && ll->l.epoch > 0)
        wl->max_epoch--;
    return gf_ledger_lease_delete(l, name);
}

/* ---- lookups ------------------------------------------------------------ */

const struct gf_ledger_member *gf_ledger_member(const struct gf_ledger *l,
                                                const char *member)
{
    return gf_htab_get(&l->members, member, strlen(member));
}

const struct gf_ledger_cq *gf_ledger_cq(const struct gf_ledger *l,
                                        const char *member, const char *cq)
{
    char key[KEY_CAP];
    size_t kl = gf__key(key, sizeof(key), member, cq, NULL, NULL);
    return kl ? gf_htab_get(&l->cqs, key, kl) : NULL;
}

const struct gf_ledger_cell *gf_ledger_cell(const struct gf_ledger *l,
                                            const char *member, const char *cq,
                                            const char *flavor,
                                            const char *resource)
{
    char key[KEY_CAP];
    size_t kl = gf__key(key, sizeof(key), member, cq, flavor, resource);
    return kl ? gf_htab_get(&l->cells, key, kl) : NULL;
}

const struct gf_ledger_wl *gf_ledger_workload(const struct gf_ledger *l,
                                              const char *member,
                                              const char *ns, const char *name)
{
    char key[KEY_CAP];
    size_t kl = gf__key(key, sizeof(key), member, ns, name, NULL);
    return kl ? gf_htab_get(&l->wls, key, kl) : NULL;
}

const struct gf_ledger_lease *gf_ledger_lease(const struct gf_ledger *l,
                                              const char *name)
{
    return gf_htab_get(&l->leases, name, strlen(name));
}

int64_t gf_ledger_pair_lent(const struct gf_ledger *l, const char *lender,
                            const char *borrower)
{
    char key[KEY_CAP];
    size_t kl = gf__key(key, sizeof(key), lender, borrower, NULL, NULL);
    const struct pair *p = kl ? gf_htab_get(&l->pairs, key, kl) : NULL;
    return p != NULL ? p->lent : 0;
}

void gf_ledger_workload_leases(const struct gf_ledger *l, const char *member,
                               const char *ns, const char *name, size_t *live,
                               uint64_t *max_epoch)
{
    char key[KEY_CAP];
    size_t kl = gf__key(key, sizeof(key), member, ns, name, NULL);
    const struct wl_leases *w = kl ? gf_htab_get(&l->wl_leases, key, kl) : NULL;
    *live = w != NULL ? w->live : 0;
    *max_epoch = w != NULL ? w->max_epoch : 0;
}

const struct gf_ledger_wl *gf_ledger_pending_first(const struct gf_ledger *l)
{
    const struct gf_list *n = gf_list_first(&l->pending);
    return n ? GF_LIST_ENTRY(n, const struct gf_ledger_wl, pending_link) : NULL;
}

const struct gf_ledger_wl *gf_ledger_pending_next(const struct gf_ledger *l,
                                                  const struct gf_ledger_wl *w)
{
    const struct gf_list *n = gf_list_next(&l->pending, &w->pending_link);
    return n ? GF_LIST_ENTRY(n, const struct gf_ledger_wl, pending_link) : NULL;
}

size_t gf_ledger_n_pending(const struct gf_ledger *l)
{
    return l->n_pending;
}

size_t gf_ledger_n_workloads(const struct gf_ledger *l)
{
    return l->wls.len;
}

static size_t collect(const struct gf_htab *t, const void **out, size_t cap)
{
    size_t n = 0, pos = 0;
    void *v;
    while (gf_htab_scan(t, &pos, NULL, &v)) {
        if (n < cap)
            out[n] = v;
        n++;
    }
    return n;
}

size_t gf_ledger_leases(const struct gf_ledger *l,
                        const struct gf_ledger_lease **out, size_t cap)
{
    return collect(&l->leases, (const void **)out, cap);
}

size_t gf_ledger_workloads(const struct gf_ledger *l,
                           const struct gf_ledger_wl **out, size_t cap)
{
    return collect(&l->wls, (const void **)out, cap);
}

size_t gf_ledger_members(const struct gf_ledger *l,
                         const struct gf_ledger_member **out, size_t cap)
{
    return collect(&l->members, (const void **)out, cap);
}

size_t gf_ledger_cqs(const struct gf_ledger *l, const struct gf_ledger_cq **out,
                     size_t cap)
{
    return collect(&l->cqs, (const void **)out, cap);
}

/* ---- Kueue arithmetic --------------------------------------------------- */

int64_t gf_ledger_cell_borrowed(const struct gf_ledger_cell *c)
{
    int64_t u = c->used + c->reserved - c->nominal;
    return u > 0 ? u : 0;
}

int64_t gf_ledger_cell_free(const struct gf_ledger_cell *c)
{
    int64_t f = c->nominal - c->used - c->reserved - c->lease_out;
    return f > 0 ? f : 0;
}

int gf_ledger_lendable(const struct gf_ledger_cell *c, int64_t *out)
{
    *out = 0;
    if (c->cq->member->fresh != GF_FRESH_SYNCED)
        return GF_ESTALE;
    /* Kueue: lendingLimit caps what the queue lends; the rest of nominal
     * (G) is guaranteed to it, and its own usage consumes G first. */
    int64_t L = c->lending_limit == GF_NO_LIMIT || c->lending_limit > c->nominal
                    ? c->nominal
                    : c->lending_limit;
    int64_t G = c->nominal - L;
    int64_t over = c->used + c->reserved - G;
    int64_t v = L - (over > 0 ? over : 0) - c->lease_out;
    *out = v > 0 ? v : 0;
    return 0;
}

int64_t gf_ledger_cell_borrow_headroom(const struct gf_ledger_cell *c)
{
    if (c->borrowing_limit == GF_NO_LIMIT)
        return INT64_MAX;
    int64_t h = c->borrowing_limit - gf_ledger_cell_borrowed(c);
    return h > 0 ? h : 0;
}

/* ---- verification ------------------------------------------------------- */

/* Scratch sums keyed by record address. */
struct sums {
    int64_t a, b, c, d;
};

static struct sums *sum_of(struct gf_htab *t, const void *rec)
{
    struct sums *s = gf_htab_get(t, &rec, sizeof(rec));
    if (s == NULL) {
        s = gf_calloc(1, sizeof(*s));
        gf_htab_put(t, &rec, sizeof(rec), s);
    }
    return s;
}

static void free_sums(struct gf_htab *t)
{
    gf_htab_free_all(t, gf_free);
}

static void recompute(const struct gf_ledger *l, struct gf_htab *t)
{
    size_t pos = 0;
    void *v;
    while (gf_htab_scan(&l->wls, &pos, NULL, &v)) {
        const struct gf_ledger_wl *w = v;
        if (w->cq != NULL)
            sum_of(t, w->cq)->d++;
        if (w->state == GF_WL_PENDING && w->cq != NULL) {
            sum_of(t, w->cq)->a += w->gpus;
            sum_of(t, w->cq)->b++;
        } else if (w->state == GF_WL_RESERVED && w->cell != NULL) {
            sum_of(t, w->cell)->b += w->gpus;
        } else if (w->state == GF_WL_ADMITTED && w->cell != NULL) {
            sum_of(t, w->cell)->a += w->gpus;
        }
    }
    for (pos = 0; gf_htab_scan(&l->leases, &pos, NULL, &v);) {
        const struct gf_ledger_lease *ll = v;
        if (!ll->holds)
            continue;
        sum_of(t, ll->cell)->c += ll->l.gpus;
        sum_of(t, ll->cell)->d++;
        sum_of(t, ll->lender)->b += ll->l.gpus;
        sum_of(t, ll->lender)->d++;
        sum_of(t, ll->origin)->c += ll->l.gpus;
        if (ll->origin_cq != NULL)
            sum_of(t, ll->origin_cq)->c += ll->l.gpus;
    }
    for (pos = 0; gf_htab_scan(&l->cells, &pos, NULL, &v);) {
        const struct gf_ledger_cell *c = v;
        if (c->in_spec && strcmp(c->resource, l->resource) == 0)
            sum_of(t, c->cq->member)->a += c->nominal;
    }
}

/* In the verify_* helpers: a failed cross-check says why and returns. */
#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            snprintf(why, cap, __VA_ARGS__);                                   \
            return -EINVAL;                                                    \
        }                                                                      \
    } while (0)

static int verify_cells(const struct gf_ledger *l, struct gf_htab *t, char *why,
                        size_t cap)
{
    size_t pos = 0;
    void *v;
    while (gf_htab_scan(&l->cells, &pos, NULL, &v)) {
        const struct gf_ledger_cell *c = v;
        const struct sums *s = sum_of(t, c);
        CHECK(c->used == s->a && c->reserved == s->b && c->lease_out == s->c &&
                  c->n_leases_out == (size_t)s->d,
              "cell %s/%s/%s: used %lld/%lld reserved %lld/%lld lent "
              "%lld/%lld",
              c->cq->member->name, c->cq->name, c->flavor, (long long)c->used,
              (long long)s->a, (long long)c->reserved, (long long)s->b,
              (long long)c->lease_out, (long long)s->c);
    }
    return 0;
}

static int verify_cqs(const struct gf_ledger *l, struct gf_htab *t, char *why,
                      size_t cap)
{
    size_t pos = 0;
    void *v;
    while (gf_htab_scan(&l->cqs, &pos, NULL, &v)) {
        const struct gf_ledger_cq *q = v;
        const struct sums *s = sum_of(t, q);
        CHECK(q->pending == s->a && q->n_pending == (size_t)s->b &&
                  q->lease_in == s->c && q->n_workloads == (size_t)s->d,
              "cq %s/%s: pending %lld/%lld lease_in %lld/%lld", q->member->name,
              q->name, (long long)q->pending, (long long)s->a,
              (long long)q->lease_in, (long long)s->c);
    }
    return 0;
}

static int verify_members(const struct gf_ledger *l, struct gf_htab *t,
                          char *why, size_t cap)
{
    size_t pos = 0;
    void *v;
    while (gf_htab_scan(&l->members, &pos, NULL, &v)) {
        const struct gf_ledger_member *m = v;
        const struct sums *s = sum_of(t, m);
        CHECK(m->nominal == s->a && m->lent == s->b && m->borrowed == s->c &&
                  m->leases_out == (size_t)s->d,
              "member %s: nominal %lld/%lld lent %lld/%lld borrowed %lld/%lld",
              m->name, (long long)m->nominal, (long long)s->a,
              (long long)m->lent, (long long)s->b, (long long)m->borrowed,
              (long long)s->c);
    }
    return 0;
}

static int verify_pending(const struct gf_ledger *l, char *why, size_t cap)
{
    size_t n = 0;
    for (const struct gf_ledger_wl *w = gf_ledger_pending_first(l); w != NULL;
         w = gf_ledger_pending_next(l, w)) {
        CHECK(w->state == GF_WL_PENDING && w->cq != NULL,
              "non-pending workload %s/%s on the pending list", w->namespace,
              w->name);
        n++;
    }
    CHECK(n == l->n_pending, "pending list has %zu entries, count %zu", n,
          l->n_pending);
    /* And every pending Workload is on it. */
    struct gf_htab_iter it;
    void *v;
    const struct gf_ledger_wl *off = NULL;
    gf_htab_iter_init(&it, &l->wls);
    while (off == NULL && gf_htab_next(&it, NULL, NULL, &v)) {
        const struct gf_ledger_wl *w = v;
        if (w->state == GF_WL_PENDING && w->cq != NULL &&
            !gf_list_linked(&w->pending_link))
            off = w;
    }
    gf_htab_iter_end(&it);
    CHECK(off == NULL, "pending workload %s/%s is not on the pending list",
          off ? off->namespace : "", off ? off->name : "");
    return 0;
}

/* Live leases of Workload member/ns/name, by scanning every lease. */
static size_t count_live(const struct gf_ledger *l, const char *m,
                         const char *ns, const char *name)
{
    size_t live = 0;
    size_t pos = 0;
    void *v;
    while (gf_htab_scan(&l->leases, &pos, NULL, &v)) {
        const struct gf_ledger_lease *ll = v;
        if (ll->holds && strcmp(ll->l.origin_member, m) == 0 &&
            strcmp(ll->l.origin_namespace, ns) == 0 &&
            strcmp(ll->l.origin_name, name) == 0)
            live++;
    }
    return live;
}

/* GPUs lent by lender to borrower, by scanning every lease. */
static int64_t sum_lent(const struct gf_ledger *l, const char *lender,
                        const char *borrower)
{
    int64_t want = 0;
    size_t pos = 0;
    void *v;
    while (gf_htab_scan(&l->leases, &pos, NULL, &v)) {
        const struct gf_ledger_lease *ll = v;
        if (ll->holds && strcmp(ll->lender->name, lender) == 0 &&
            strcmp(ll->origin->name, borrower) == 0)
            want += ll->l.gpus;
    }
    return want;
}

/* Pairs and per-Workload lease counts: quadratic, tests only. */
static int verify_leases(const struct gf_ledger *l, char *why, size_t cap)
{
    size_t pos;
    const char *k;
    void *v;
    for (pos = 0; gf_htab_scan(&l->wl_leases, &pos, &k, &v);) {
        const struct wl_leases *wl = v;
        const char *m = k;
        const char *ns = m + strlen(m) + 1;
        const char *name = ns + strlen(ns) + 1;
        size_t live = count_live(l, m, ns, name);
        CHECK(wl->live == live, "workload %s/%s: %zu live leases, count %zu",
              ns, name, live, wl->live);
    }
    for (pos = 0; gf_htab_scan(&l->pairs, &pos, &k, &v);) {
        const struct pair *p = v;
        const char *lender = k;
        const char *borrower = lender + strlen(lender) + 1;
        int64_t want = sum_lent(l, lender, borrower);
        CHECK(p->lent == want, "pair %s->%s: lent %lld, leases say %lld",
              lender, borrower, (long long)p->lent, (long long)want);
    }
    return 0;
}

#undef CHECK

int gf_ledger_verify(const struct gf_ledger *l, char *why, size_t cap)
{
    struct gf_htab t;
    gf_htab_init(&t, GF_HTAB_OWN_KEYS);
    recompute(l, &t);
    int rc = verify_cells(l, &t, why, cap);
    if (rc == 0)
        rc = verify_cqs(l, &t, why, cap);
    if (rc == 0)
        rc = verify_members(l, &t, why, cap);
    if (rc == 0)
        rc = verify_pending(l, why, cap);
    if (rc == 0)
        rc = verify_leases(l, why, cap);
    free_sums(&t);
    return rc;
}

const char *gf_freshness_name(enum gf_freshness f)
{
    static const char *const n[] = {"unknown", "synced", "stale", "suspect"};
    return (unsigned)f < 4 ? n[f] : "?";
}

const char *gf_wl_state_name(enum gf_wl_state s)
{
    static const char *const n[] = {"Pending", "QuotaReserved", "Admitted",
                                    "Inactive", "Finished"};
    return (unsigned)s < 5 ? n[s] : "?";
}
