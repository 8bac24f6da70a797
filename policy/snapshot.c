/*
 * snapshot: the ledger to and from JSON (see snapshot.h). cJSON does the
 * JSON; this file only checks fields and maps them to the ledger's API.
 */
#include "policy/snapshot.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/alloc.h"
#include "common/err.h"

#define MAX_QUOTA 64

/* Where loading stands, for error messages. */
struct sctx {
    char *err;
    size_t cap;
    bool failed;
};

static void fail(struct sctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void fail(struct sctx *c, const char *fmt, ...)
{
    if (c->failed)
        return; /* the first problem is the one to fix */
    c->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, c->cap, fmt, ap);
    va_end(ap);
}

/* ---- field readers --------------------------------------------------------
 */

static const char *str_field(struct sctx *c, const cJSON *o, const char *key,
                             const char *path, bool required)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (v == NULL || cJSON_IsNull(v)) {
        if (required)
            fail(c, "%s.%s: required", path, key);
        return NULL;
    }
    if (!cJSON_IsString(v) || v->valuestring[0] == '\0') {
        fail(c, "%s.%s: expected a non-empty string", path, key);
        return NULL;
    }
    return v->valuestring;
}

/* A whole number in [lo, 2^53] (JSON numbers are doubles); dflt when
 * absent and not required. */
static int64_t int_field(struct sctx *c, const cJSON *o, const char *key,
                         const char *path, int64_t lo, bool required,
                         int64_t dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (v == NULL || cJSON_IsNull(v)) {
        if (required)
            fail(c, "%s.%s: required", path, key);
        return dflt;
    }
    double d = cJSON_IsNumber(v) ? v->valuedouble : -1e300;
    if (!cJSON_IsNumber(v) || d != (double)(int64_t)d || d < (double)lo ||
        d > 9007199254740992.0) {
        fail(c, "%s.%s: expected a whole number >= %lld", path, key,
             (long long)lo);
        return dflt;
    }
    return (int64_t)d;
}

static const cJSON *array_field(struct sctx *c, const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (v != NULL && !cJSON_IsArray(v)) {
        fail(c, "%s: expected an array", key);
        return NULL;
    }
    return v;
}

/* ---- sections
 * ---------------------------------------------------------------- */

static int parse_freshness(const char *s, enum gf_freshness *out)
{
    for (int f = GF_FRESH_UNKNOWN; f <= GF_FRESH_SUSPECT; f++)
        if (strcmp(s, gf_freshness_name((enum gf_freshness)f)) == 0) {
            *out = (enum gf_freshness)f;
            return 0;
        }
    return -EINVAL;
}

static int parse_state(const char *s, enum gf_wl_state *out)
{
    for (int st = GF_WL_PENDING; st <= GF_WL_FINISHED; st++)
        if (strcmp(s, gf_wl_state_name((enum gf_wl_state)st)) == 0) {
            *out = (enum gf_wl_state)st;
            return 0;
        }
    return -EINVAL;
}

static void load_members(struct sctx *c, const cJSON *root, struct gf_ledger *l)
{
    const cJSON *it;
    int i = 0;
    cJSON_ArrayForEach(it, array_field(c, root, "members"))
    {
        char path[32];
        snprintf(path, sizeof(path), "members[%d]", i++);
        const char *name = str_field(c, it, "name", path, true);
        const char *fr = str_field(c, it, "freshness", path, true);
        int64_t hb = int_field(c, it, "lastHeartbeatMs", path, 0, false, 0);
        int64_t term = int_field(c, it, "termMs", path, 0, false, 0);
        int64_t rec = int_field(c, it, "recoveringUntilMs", path, 0, false, 0);
        enum gf_freshness f = GF_FRESH_UNKNOWN;
        if (fr != NULL && parse_freshness(fr, &f) != 0)
            fail(c,
                 "%s.freshness: \"%s\": expected synced, stale, suspect "
                 "or unknown",
                 path, fr);
        if (!c->failed && (gf_ledger_member_set(l, name, f, hb) != 0 ||
                           gf_ledger_member_heartbeat(l, name, term, rec) != 0))
            fail(c, "%s.name: invalid name", path);
    }
}

static void load_quota(struct sctx *c, const cJSON *q, const char *path,
                       struct gf_cq_quota *out)
{
    out->flavor = str_field(c, q, "flavor", path, true);
    out->resource = str_field(c, q, "resource", path, true);
    out->nominal = int_field(c, q, "nominal", path, 0, true, 0);
    out->borrowing_limit =
        int_field(c, q, "borrowingLimit", path, 0, false, GF_NO_LIMIT);
    out->lending_limit =
        int_field(c, q, "lendingLimit", path, 0, false, GF_NO_LIMIT);
}

static void load_cqs(struct sctx *c, const cJSON *root, struct gf_ledger *l)
{
    const cJSON *it;
    int i = 0;
    cJSON_ArrayForEach(it, array_field(c, root, "clusterQueues"))
    {
        char path[48], qp[64];
        snprintf(path, sizeof(path), "clusterQueues[%d]", i++);
        const char *member = str_field(c, it, "member", path, true);
        const char *name = str_field(c, it, "name", path, true);
        struct gf_cq_quota q[MAX_QUOTA];
        size_t n = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(it, "quota"))
        {
            if (n == MAX_QUOTA) {
                fail(c, "%s.quota: more than %d entries", path, MAX_QUOTA);
                break;
            }
            snprintf(qp, sizeof(qp), "%s.quota[%zu]", path, n);
            load_quota(c, e, qp, &q[n++]);
        }
        if (!c->failed && gf_ledger_cq_set(l, member, name, q, n) != 0)
            fail(c, "%s: rejected by the ledger (unknown member \"%s\"?)", path,
                 member);
        const char *cohort = str_field(c, it, "cohort", path, false);
        if (!c->failed && gf_ledger_cq_cohort_set(l, member, name, cohort) != 0)
            fail(c, "%s.cohort: invalid name", path);
    }
}

static void load_workload(struct sctx *c, const cJSON *it, const char *path,
                          struct gf_ledger *l)
{
    struct gf_workload w = {0};
    w.member = str_field(c, it, "member", path, true);
    w.namespace = str_field(c, it, "namespace", path, true);
    w.name = str_field(c, it, "name", path, true);
    w.uid = str_field(c, it, "uid", path, false);
    w.cluster_queue = str_field(c, it, "clusterQueue", path, false);
    w.flavor = str_field(c, it, "flavor", path, false);
    w.kind = str_field(c, it, "kind", path, false);
    w.gpus = int_field(c, it, "gpus", path, 0, true, 0);
    w.priority =
        (int32_t)int_field(c, it, "priority", path, -2147483647, false, 0);
    w.pending_since_ms = int_field(c, it, "pendingSinceMs", path, 0, false, 0);
    const char *st = str_field(c, it, "state", path, true);
    if (st != NULL && parse_state(st, &w.state) != 0)
        fail(c,
             "%s.state: \"%s\": expected Pending, QuotaReserved, "
             "Admitted, Inactive or Finished",
             path, st);
    if (w.kind == NULL)
        w.kind = "batch/Job";
    if (!c->failed && gf_ledger_workload_set(l, &w) != 0)
        fail(c, "%s: rejected by the ledger", path);
}

static void load_workloads(struct sctx *c, const cJSON *root,
                           struct gf_ledger *l)
{
    const cJSON *it;
    int i = 0;
    cJSON_ArrayForEach(it, array_field(c, root, "workloads"))
    {
        char path[32];
        snprintf(path, sizeof(path), "workloads[%d]", i++);
        load_workload(c, it, path, l);
    }
}

static void load_lease_ends(struct sctx *c, const cJSON *it, const char *path,
                            struct gf_lease *s)
{
    char p[64];
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(it, "origin");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(it, "lender");
    snprintf(p, sizeof(p), "%s.origin", path);
    s->origin_member = (char *)str_field(c, o, "member", p, true);
    s->origin_namespace = (char *)str_field(c, o, "namespace", p, true);
    s->origin_name = (char *)str_field(c, o, "name", p, true);
    s->origin_uid = (char *)str_field(c, o, "uid", p, false);
    s->origin_cq = (char *)str_field(c, o, "clusterQueue", p, false);
    snprintf(p, sizeof(p), "%s.lender", path);
    s->lender_member = (char *)str_field(c, d, "member", p, true);
    s->lender_cq = (char *)str_field(c, d, "clusterQueue", p, true);
    s->lender_flavor = (char *)str_field(c, d, "flavor", p, true);
}

/* Strings of the struct point into the JSON: the ledger copies them. */
static void load_lease(struct sctx *c, const cJSON *it, const char *path,
                       struct gf_ledger *l)
{
    struct gf_lease s = {0};
    s.name = (char *)str_field(c, it, "name", path, true);
    s.group = (char *)str_field(c, it, "group", path, true);
    const char *mode = str_field(c, it, "mode", path, true);
    const char *phase = str_field(c, it, "phase", path, true);
    if (mode != NULL && gf_lease_mode_parse(mode, &s.mode) != 0)
        fail(c, "%s.mode: \"%s\": expected redirect or loan", path, mode);
    if (phase != NULL && gf_lease_phase_parse(phase, &s.phase) != 0)
        fail(c, "%s.phase: \"%s\" is not a lease phase", path, phase);
    s.epoch = (uint64_t)int_field(c, it, "epoch", path, 1, true, 1);
    load_lease_ends(c, it, path, &s);
    s.gpus = int_field(c, it, "gpus", path, 0, true, 0);
    s.priority =
        (int32_t)int_field(c, it, "priority", path, -2147483647, false, 0);
    s.created_ms = int_field(c, it, "createdMs", path, 0, false, 0);
    s.started_ms = int_field(c, it, "startedMs", path, 0, false, 0);
    s.expires_ms = int_field(c, it, "expiresMs", path, 0, false, 0);
    s.reclaim_deadline_ms =
        int_field(c, it, "reclaimDeadlineMs", path, 0, false, 0);
    s.reclaim_started_ms =
        int_field(c, it, "reclaimStartedMs", path, 0, false, 0);
    s.ended_ms = int_field(c, it, "endedMs", path, 0, false, 0);
    s.reason = (char *)str_field(c, it, "reason", path, false);
    if (!c->failed && gf_ledger_lease_set(l, &s) != 0)
        fail(c, "%s: rejected by the ledger", path);
}

static void load_leases(struct sctx *c, const cJSON *root, struct gf_ledger *l)
{
    const cJSON *it;
    int i = 0;
    cJSON_ArrayForEach(it, array_field(c, root, "leases"))
    {
        char path[32];
        snprintf(path, sizeof(path), "leases[%d]", i++);
        load_lease(c, it, path, l);
    }
}

int gf_snapshot_load(const char *buf, size_t len, struct gf_ledger **out,
                     int64_t *now_ms, char *err, size_t cap)
{
    *out = NULL;
    *now_ms = 0;
    struct sctx c = {err, cap, false};
    if (cap > 0)
        err[0] = '\0';
    if (len > GF_SNAPSHOT_MAX_BYTES) {
        fail(&c, "snapshot larger than %u bytes", GF_SNAPSHOT_MAX_BYTES);
        return GF_E2BIG;
    }
    cJSON *root = cJSON_ParseWithLength(buf, len);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        fail(&c, "not a JSON object");
        return GF_EPARSE;
    }
    const char *kind = str_field(&c, root, "kind", "snapshot", true);
    if (kind != NULL && strcmp(kind, "LedgerSnapshot") != 0)
        fail(&c, "kind: \"%s\": expected LedgerSnapshot", kind);
    const char *res = str_field(&c, root, "resource", "snapshot", false);
    *now_ms = int_field(&c, root, "nowMs", "snapshot", 0, false, 0);
    struct gf_ledger *l = gf_ledger_new(res != NULL ? res : "nvidia.com/gpu");
    if (!c.failed)
        load_members(&c, root, l);
    if (!c.failed)
        load_cqs(&c, root, l);
    if (!c.failed)
        load_workloads(&c, root, l);
    if (!c.failed)
        load_leases(&c, root, l);
    cJSON_Delete(root);
    if (c.failed) {
        gf_ledger_free(l);
        *now_ms = 0;
        return -EINVAL;
    }
    *out = l;
    return 0;
}

/* ---- dump -------------------------------------------------------------------
 */

static int cmp_member(const void *a, const void *b)
{
    return strcmp((*(const struct gf_ledger_member *const *)a)->name,
                  (*(const struct gf_ledger_member *const *)b)->name);
}

static int cmp_cq(const void *a, const void *b)
{
    const struct gf_ledger_cq *x = *(const struct gf_ledger_cq *const *)a;
    const struct gf_ledger_cq *y = *(const struct gf_ledger_cq *const *)b;
    int c = strcmp(x->member->name, y->member->name);
    return c != 0 ? c : strcmp(x->name, y->name);
}

static int cmp_wl(const void *a, const void *b)
{
    const struct gf_ledger_wl *x = *(const struct gf_ledger_wl *const *)a;
    const struct gf_ledger_wl *y = *(const struct gf_ledger_wl *const *)b;
    int c = strcmp(x->member, y->member);
    if (c == 0)
        c = strcmp(x->namespace, y->namespace);
    return c != 0 ? c : strcmp(x->name, y->name);
}

static int cmp_lease(const void *a, const void *b)
{
    return strcmp((*(const struct gf_ledger_lease *const *)a)->l.name,
                  (*(const struct gf_ledger_lease *const *)b)->l.name);
}

static void add_str(cJSON *o, const char *k, const char *v)
{
    if (v != NULL)
        cJSON_AddStringToObject(o, k, v);
}

static cJSON *dump_members(const struct gf_ledger *l)
{
    cJSON *arr = cJSON_CreateArray();
    size_t n = gf_ledger_members(l, NULL, 0);
    const struct gf_ledger_member **v = gf_calloc(n + 1, sizeof(*v));
    n = gf_ledger_members(l, v, n);
    qsort(v, n, sizeof(*v), cmp_member);
    for (size_t i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        add_str(o, "name", v[i]->name);
        add_str(o, "freshness", gf_freshness_name(v[i]->fresh));
        cJSON_AddNumberToObject(o, "lastHeartbeatMs",
                                (double)v[i]->last_heartbeat_ms);
        if (v[i]->term_ms != 0)
            cJSON_AddNumberToObject(o, "termMs", (double)v[i]->term_ms);
        if (v[i]->recovering_until_ms != 0)
            cJSON_AddNumberToObject(o, "recoveringUntilMs",
                                    (double)v[i]->recovering_until_ms);
        cJSON_AddItemToArray(arr, o);
    }
    gf_free(v);
    return arr;
}

static cJSON *dump_cqs(const struct gf_ledger *l)
{
    cJSON *arr = cJSON_CreateArray();
    size_t n = gf_ledger_cqs(l, NULL, 0);
    const struct gf_ledger_cq **v = gf_calloc(n + 1, sizeof(*v));
    n = gf_ledger_cqs(l, v, n);
    qsort(v, n, sizeof(*v), cmp_cq);
    for (size_t i = 0; i < n; i++) {
        if (!v[i]->known)
            continue;
        cJSON *o = cJSON_CreateObject();
        add_str(o, "member", v[i]->member->name);
        add_str(o, "name", v[i]->name);
        if (v[i]->cohort != NULL)
            add_str(o, "cohort", v[i]->cohort);
        cJSON *q = cJSON_AddArrayToObject(o, "quota");
        for (size_t k = 0; k < v[i]->n_cells; k++) {
            const struct gf_ledger_cell *c = v[i]->cells[k];
            if (!c->in_spec)
                continue;
            cJSON *e = cJSON_CreateObject();
            add_str(e, "flavor", c->flavor);
            add_str(e, "resource", c->resource);
            cJSON_AddNumberToObject(e, "nominal", (double)c->nominal);
            if (c->borrowing_limit != GF_NO_LIMIT)
                cJSON_AddNumberToObject(e, "borrowingLimit",
                                        (double)c->borrowing_limit);
            if (c->lending_limit != GF_NO_LIMIT)
                cJSON_AddNumberToObject(e, "lendingLimit",
                                        (double)c->lending_limit);
            cJSON_AddItemToArray(q, e);
        }
        cJSON_AddItemToArray(arr, o);
    }
    gf_free(v);
    return arr;
}

static cJSON *dump_workloads(const struct gf_ledger *l)
{
    cJSON *arr = cJSON_CreateArray();
    size_t n = gf_ledger_workloads(l, NULL, 0);
    const struct gf_ledger_wl **v = gf_calloc(n + 1, sizeof(*v));
    n = gf_ledger_workloads(l, v, n);
    qsort(v, n, sizeof(*v), cmp_wl);
    for (size_t i = 0; i < n; i++) {
        const struct gf_ledger_wl *w = v[i];
        cJSON *o = cJSON_CreateObject();
        add_str(o, "member", w->member);
        add_str(o, "namespace", w->namespace);
        add_str(o, "name", w->name);
        add_str(o, "uid", w->uid);
        add_str(o, "clusterQueue", w->cq != NULL ? w->cq->name : NULL);
        add_str(o, "flavor", w->cell != NULL ? w->cell->flavor : NULL);
        add_str(o, "kind", w->kind);
        cJSON_AddNumberToObject(o, "gpus", (double)w->gpus);
        cJSON_AddNumberToObject(o, "priority", (double)w->priority);
        add_str(o, "state", gf_wl_state_name(w->state));
        cJSON_AddNumberToObject(o, "pendingSinceMs",
                                (double)w->pending_since_ms);
        cJSON_AddItemToArray(arr, o);
    }
    gf_free(v);
    return arr;
}

static cJSON *dump_lease(const struct gf_lease *s)
{
    cJSON *o = cJSON_CreateObject();
    add_str(o, "name", s->name);
    add_str(o, "group", s->group);
    add_str(o, "mode", gf_lease_mode_name(s->mode));
    add_str(o, "phase", gf_lease_phase_name(s->phase));
    cJSON_AddNumberToObject(o, "epoch", (double)s->epoch);
    cJSON *org = cJSON_AddObjectToObject(o, "origin");
    add_str(org, "member", s->origin_member);
    add_str(org, "namespace", s->origin_namespace);
    add_str(org, "name", s->origin_name);
    add_str(org, "uid", s->origin_uid);
    add_str(org, "clusterQueue", s->origin_cq);
    cJSON *lnd = cJSON_AddObjectToObject(o, "lender");
    add_str(lnd, "member", s->lender_member);
    add_str(lnd, "clusterQueue", s->lender_cq);
    add_str(lnd, "flavor", s->lender_flavor);
    cJSON_AddNumberToObject(o, "gpus", (double)s->gpus);
    cJSON_AddNumberToObject(o, "priority", (double)s->priority);
    cJSON_AddNumberToObject(o, "createdMs", (double)s->created_ms);
    cJSON_AddNumberToObject(o, "startedMs", (double)s->started_ms);
    cJSON_AddNumberToObject(o, "expiresMs", (double)s->expires_ms);
    cJSON_AddNumberToObject(o, "reclaimDeadlineMs",
                            (double)s->reclaim_deadline_ms);
    cJSON_AddNumberToObject(o, "reclaimStartedMs",
                            (double)s->reclaim_started_ms);
    cJSON_AddNumberToObject(o, "endedMs", (double)s->ended_ms);
    add_str(o, "reason", s->reason);
    return o;
}

static cJSON *dump_leases(const struct gf_ledger *l)
{
    cJSON *arr = cJSON_CreateArray();
    size_t n = gf_ledger_leases(l, NULL, 0);
    const struct gf_ledger_lease **v = gf_calloc(n + 1, sizeof(*v));
    n = gf_ledger_leases(l, v, n);
    qsort(v, n, sizeof(*v), cmp_lease);
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(arr, dump_lease(&v[i]->l));
    gf_free(v);
    return arr;
}

char *gf_snapshot_dump(const struct gf_ledger *l, int64_t now_ms)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "apiVersion", "gpufed.io/v1alpha1");
    cJSON_AddStringToObject(root, "kind", "LedgerSnapshot");
    cJSON_AddStringToObject(root, "resource", gf_ledger_resource(l));
    cJSON_AddNumberToObject(root, "nowMs", (double)now_ms);
    cJSON_AddItemToObject(root, "members", dump_members(l));
    cJSON_AddItemToObject(root, "clusterQueues", dump_cqs(l));
    cJSON_AddItemToObject(root, "workloads", dump_workloads(l));
    cJSON_AddItemToObject(root, "leases", dump_leases(l));
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    char *out = gf_strdup(s);
    cJSON_free(s);
    return out;
}
