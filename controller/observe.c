/*
 * observe: projections of watched objects and the QuotaLease mapping (see
 * observe.h). Every reader checks the JSON type before it trusts a node,
 * and every projection builds its struct as it reads, so one failure path
 * (the struct's own free) releases whatever was read before the error.
 */
#include "controller/observe.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/json.h"
#include "controller/copy.h"
#include "controller/fence.h"

#define QL_API_VERSION "gpufed.io/v1alpha1"
#define QL_KIND "QuotaLease"

static const cJSON *item(const cJSON *obj, const char *key)
{
    return cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key)
                               : NULL;
}

/* Absent and null are both "not set", as the API server treats them. */
static bool unset(const cJSON *n)
{
    return n == NULL || cJSON_IsNull(n);
}

/* An optional object: NULL when unset, -EINVAL when of another type. */
static int opt_obj(const cJSON *parent, const char *key, const cJSON **out)
{
    const cJSON *n = item(parent, key);
    *out = NULL;
    if (unset(n))
        return 0;
    if (!cJSON_IsObject(n))
        return -EINVAL;
    *out = n;
    return 0;
}

static int opt_arr(const cJSON *parent, const char *key, const cJSON **out)
{
    const cJSON *n = item(parent, key);
    *out = NULL;
    if (unset(n))
        return 0;
    if (!cJSON_IsArray(n))
        return -EINVAL;
    *out = n;
    return 0;
}

/* An optional string, duplicated into *out (left NULL when unset). */
static int opt_str(const cJSON *parent, const char *key, char **out)
{
    const cJSON *n = item(parent, key);
    if (unset(n))
        return 0;
    if (!cJSON_IsString(n))
        return -EINVAL;
    *out = gf_strdup(n->valuestring);
    return 0;
}

/* An optional RFC 3339 time; *ms left alone when unset. */
static int opt_time(const cJSON *parent, const char *key, int64_t *ms)
{
    const cJSON *n = item(parent, key);
    if (unset(n))
        return 0;
    if (!cJSON_IsString(n) || gf_time_parse_rfc3339(n->valuestring, ms) != 0)
        return -EINVAL;
    return 0;
}

static int opt_bool(const cJSON *parent, const char *key, bool *out)
{
    const cJSON *n = item(parent, key);
    if (unset(n))
        return 0;
    if (!cJSON_IsBool(n))
        return -EINVAL;
    *out = cJSON_IsTrue(n);
    return 0;
}

/* A JSON number that is an integer a double holds exactly (API servers
 * write int64 fields as plain numbers; beyond 2^53 they cannot be told
 * apart). */
static int json_i64(const cJSON *n, int64_t *out)
{
    if (!cJSON_IsNumber(n))
        return -EINVAL;
    double v = n->valuedouble;
    if (!(v >= -9007199254740992.0 && v <= 9007199254740992.0) ||
        v != (double)(int64_t)v)
        return -EINVAL;
    *out = (int64_t)v;
    return 0;
}

/* An optional integer in [min, max]; *out left alone when unset. */
static int opt_int(const cJSON *parent, const char *key, int64_t min,
                   int64_t max, int64_t *out)
{
    const cJSON *n = item(parent, key);
    if (unset(n))
        return 0;
    int64_t v;
    if (json_i64(n, &v) != 0 || v < min || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

static char *dup_or_null(const char *s)
{
    return s != NULL ? gf_strdup(s) : NULL;
}

/*
 * metadata: name (required), namespace (required when namespaced), uid,
 * creationTimestamp. The strings are duplicated into the out pointers.
 */
static int read_meta(const cJSON *obj, bool namespaced, char **ns, char **name,
                     char **uid, int64_t *created_ms)
{
    const cJSON *md;
    if (opt_obj(obj, "metadata", &md) != 0 || md == NULL)
        return -EINVAL;
    const cJSON *n = item(md, "name");
    if (!cJSON_IsString(n) || n->valuestring[0] == '\0')
        return -EINVAL;
    *name = gf_strdup(n->valuestring);
    if (namespaced) {
        n = item(md, "namespace");
        if (!cJSON_IsString(n) || n->valuestring[0] == '\0')
            return -EINVAL;
        *ns = gf_strdup(n->valuestring);
    }
    if (uid != NULL && opt_str(md, "uid", uid) != 0)
        return -EINVAL;
    if (created_ms != NULL && opt_time(md, "creationTimestamp", created_ms))
        return -EINVAL;
    return 0;
}

/* The condition of type when its status is "True", else NULL. */
static const cJSON *cond_true(const cJSON *conds, const char *type)
{
    const cJSON *c = gf_json_cond(conds, type);
    const cJSON *st = item(c, "status");
    return cJSON_IsString(st) && strcmp(st->valuestring, "True") == 0 ? c
                                                                      : NULL;
}

/* The lastTransitionTime of a True condition, 0 when none. */
static int cond_time(const cJSON *conds, const char *type, int64_t *ms)
{
    *ms = 0;
    return opt_time(cond_true(conds, type), "lastTransitionTime", ms);
}

/* ---- GPUs of a Workload -------------------------------------------------- */

/* A container's request of res: requests[res], else limits[res]. Kubernetes
 * defaults a missing request to the limit, and for extended resources the
 * two must be equal; Kueue counts the defaulted value. */
static int container_milli(const cJSON *c, const char *res, int64_t *milli)
{
    const cJSON *r;
    *milli = 0;
    if (opt_obj(c, "resources", &r) != 0)
        return -EINVAL;
    const cJSON *req, *lim;
    if (opt_obj(r, "requests", &req) != 0 || opt_obj(r, "limits", &lim) != 0)
        return -EINVAL;
    const cJSON *q = item(req, res);
    if (q == NULL)
        q = item(lim, res);
    if (q == NULL)
        return 0;
    int rc = gf_json_quantity_milli(q, milli);
    if (rc != 0)
        return rc;
    return *milli < 0 ? -EINVAL : 0;
}

static int add_milli(int64_t *acc, int64_t v)
{
    return __builtin_add_overflow(*acc, v, acc) ? -ERANGE : 0;
}

/* Sum over the regular containers. */
static int containers_milli(const cJSON *pod_spec, const char *res,
                            int64_t *sum)
{
    const cJSON *cs, *c;
    *sum = 0;
    if (opt_arr(pod_spec, "containers", &cs) != 0)
        return -EINVAL;
    cJSON_ArrayForEach(c, cs)
    {
        int64_t m;
        int rc = container_milli(c, res, &m);
        if (rc == 0)
            rc = add_milli(sum, m);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/*
 * Init containers run one at a time before the regular ones, so a pod
 * needs the largest of them, not their sum. Sidecars (init containers
 * with restartPolicy Always) keep running: each later init container runs
 * beside the sidecars started before it, and all of them beside the
 * regular containers. This is Kubernetes' PodRequests, which Kueue uses.
 */
static int init_milli(const cJSON *pod_spec, const char *res, int64_t *init_max,
                      int64_t *sidecars)
{
    const cJSON *cs, *c;
    *init_max = 0;
    *sidecars = 0;
    if (opt_arr(pod_spec, "initContainers", &cs) != 0)
        return -EINVAL;
    cJSON_ArrayForEach(c, cs)
    {
        int64_t m, cand;
        int rc = container_milli(c, res, &m);
        if (rc != 0)
            return rc;
        const cJSON *rp = item(c, "restartPolicy");
        bool sidecar =
            cJSON_IsString(rp) && strcmp(rp->valuestring, "Always") == 0;
        if (sidecar) {
            if (add_milli(sidecars, m) != 0)
                return -ERANGE;
            cand = *sidecars;
        } else if (__builtin_add_overflow(m, *sidecars, &cand)) {
            return -ERANGE;
        }
        if (cand > *init_max)
            *init_max = cand;
    }
    return 0;
}

int gf_obs_pod_milli(const cJSON *pod_spec, const char *resource,
                     int64_t *milli)
{
    int64_t sum, init_max, sidecars, over = 0;
    int rc = containers_milli(pod_spec, resource, &sum);
    if (rc == 0)
        rc = init_milli(pod_spec, resource, &init_max, &sidecars);
    if (rc != 0)
        return rc;
    if (add_milli(&sum, sidecars) != 0)
        return -ERANGE;
    if (init_max > sum)
        sum = init_max;
    /* RuntimeClass overhead is charged once per pod, on top. */
    const cJSON *oh;
    if (opt_obj(pod_spec, "overhead", &oh) != 0)
        return -EINVAL;
    const cJSON *q = item(oh, resource);
    if (q != NULL) {
        rc = gf_json_quantity_milli(q, &over);
        if (rc != 0 || over < 0)
            return rc != 0 ? rc : -EINVAL;
    }
    if (add_milli(&sum, over) != 0)
        return -ERANGE;
    *milli = sum;
    return 0;
}

/* Sum over podSets of count x per-pod milli, in whole units rounded up. */
static int workload_gpus(const cJSON *spec, const char *res, int64_t *gpus)
{
    const cJSON *pss, *ps;
    int64_t total = 0;
    *gpus = 0;
    if (opt_arr(spec, "podSets", &pss) != 0)
        return -EINVAL;
    cJSON_ArrayForEach(ps, pss)
    {
        int64_t count = 1, m, t;
        const cJSON *tmpl, *pod;
        if (!cJSON_IsObject(ps) ||
            opt_int(ps, "count", 0, INT32_MAX, &count) != 0 ||
            opt_obj(ps, "template", &tmpl) != 0 ||
            opt_obj(tmpl, "spec", &pod) != 0)
            return -EINVAL;
        int rc = gf_obs_pod_milli(pod, res, &m);
        if (rc != 0)
            return rc;
        if (__builtin_mul_overflow(m, count, &t) || add_milli(&total, t))
            return -ERANGE;
    }
    *gpus = total / 1000 + (total % 1000 != 0);
    return 0;
}

/* ---- Workloads ------------------------------------------------------------
 */

/*
 * The controller ownerReference as "group/Kind" ("batch/Job"), or "Kind"
 * for the core group ("v1"): the form policy's `kind` uses.
 */
static int read_owner(const cJSON *obj, struct gf_obs_workload *w)
{
    const cJSON *md = item(obj, "metadata"), *ors, *o;
    if (opt_arr(md, "ownerReferences", &ors) != 0)
        return -EINVAL;
    cJSON_ArrayForEach(o, ors)
    {
        bool ctl = false;
        if (opt_bool(o, "controller", &ctl) != 0)
            return -EINVAL;
        if (!ctl)
            continue;
        const cJSON *api = item(o, "apiVersion"), *kind = item(o, "kind");
        if (!cJSON_IsString(api) || !cJSON_IsString(kind))
            return -EINVAL;
        const char *slash = strchr(api->valuestring, '/');
        size_t glen = slash != NULL ? (size_t)(slash - api->valuestring) : 0;
        size_t len = glen + 1 + strlen(kind->valuestring) + 1;
        w->owner_kind = gf_malloc(len);
        if (glen > 0)
            snprintf(w->owner_kind, len, "%.*s/%s", (int)glen, api->valuestring,
                     kind->valuestring);
        else
            snprintf(w->owner_kind, len, "%s", kind->valuestring);
        if (opt_str(o, "name", &w->owner_name) != 0 ||
            opt_str(o, "uid", &w->owner_uid) != 0)
            return -EINVAL;
        return 0;
    }
    return 0;
}

/* The flavor status.admission assigns to res (first podSet with one). */
static int admitted_flavor(const cJSON *status, const char *res, char **out)
{
    const cJSON *adm, *psas, *psa;
    if (opt_obj(status, "admission", &adm) != 0 ||
        opt_arr(adm, "podSetAssignments", &psas) != 0)
        return -EINVAL;
    cJSON_ArrayForEach(psa, psas)
    {
        const cJSON *fl;
        if (opt_obj(psa, "flavors", &fl) != 0)
            return -EINVAL;
        /* A key with dots: read as one key, never as a path. */
        const cJSON *f = item(fl, res);
        if (f == NULL)
            continue;
        if (!cJSON_IsString(f))
            return -EINVAL;
        *out = gf_strdup(f->valuestring);
        return 0;
    }
    return 0;
}

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

static const char *const preempt_names[] = {
    [GF_OBS_PREEMPT_NONE] = "",
    [GF_OBS_PREEMPT_IN_CLUSTER_QUEUE] = "InClusterQueue",
    [GF_OBS_PREEMPT_IN_COHORT_RECLAMATION] = "InCohortReclamation",
    [GF_OBS_PREEMPT_IN_COHORT_FAIR_SHARING] = "InCohortFairSharing",
    [GF_OBS_PREEMPT_IN_COHORT_RECLAIM_WHILE_BORROWING] =
        "InCohortReclaimWhileBorrowing",
    [GF_OBS_PREEMPT_OTHER] = "Preempted",
};

const char *gf_obs_preempt_name(enum gf_obs_preempt p)
{
    return (unsigned)p <= GF_OBS_PREEMPT_OTHER ? preempt_names[p] : "";
}

/* Kept as a small number: the hub holds one projection per Workload. */
static enum gf_obs_preempt preempt_parse(const cJSON *cond)
{
    const cJSON *reason = item(cond, "reason");
    if (cond == NULL)
        return GF_OBS_PREEMPT_NONE;
    for (int p = GF_OBS_PREEMPT_IN_CLUSTER_QUEUE; p < GF_OBS_PREEMPT_OTHER; p++)
        if (cJSON_IsString(reason) &&
            strcmp(reason->valuestring, preempt_names[p]) == 0)
            return (enum gf_obs_preempt)p;
    return GF_OBS_PREEMPT_OTHER;
}

static int read_wl_status(const cJSON *obj, const char *res,
                          struct gf_obs_workload *w)
{
    const cJSON *st, *conds, *rq;
    if (opt_obj(obj, "status", &st) != 0 ||
        opt_arr(st, "conditions", &conds) != 0 ||
        opt_obj(st, "requeueState", &rq) != 0)
        return -EINVAL;
    w->quota_reserved = cond_true(conds, "QuotaReserved") != NULL;
    w->admitted = cond_true(conds, "Admitted") != NULL;
    w->evicted = cond_true(conds, "Evicted") != NULL;
    w->preempted = preempt_parse(cond_true(conds, "Preempted"));
    const cJSON *fin = cond_true(conds, "Finished");
    w->finished = fin != NULL;
    const cJSON *reason = item(fin, "reason");
    w->succeeded =
        cJSON_IsString(reason) && strcmp(reason->valuestring, "Succeeded") == 0;
    int64_t evicted_ms, requeued_ms, requeue_at = 0;
    if (cond_time(conds, "Evicted", &evicted_ms) != 0 ||
        cond_time(conds, "Requeued", &requeued_ms) != 0 ||
        opt_time(rq, "requeueAt", &requeue_at) != 0)
        return -EINVAL;
    w->pending_since_ms =
        max64(max64(w->created_ms, evicted_ms), max64(requeued_ms, requeue_at));
    return res != NULL ? admitted_flavor(st, res, &w->flavor) : 0;
}

static size_t len0(const char *s)
{
    return s != NULL ? strlen(s) + 1 : 0;
}

static void pack_str(char **field, char **at)
{
    if (*field == NULL)
        return;
    size_t n = strlen(*field) + 1;
    memcpy(*at, *field, n);
    *field = *at;
    *at += n;
}

/* w with its strings in one block; w's own pieces are freed. The hub
 * keeps one per tracked Workload: nine small blocks cost more in
 * allocator headers than the strings themselves. */
static struct gf_obs_workload *pack_workload(struct gf_obs_workload *w)
{
    size_t n = len0(w->ns) + len0(w->name) + len0(w->uid) +
               len0(w->local_queue) + len0(w->owner_kind) +
               len0(w->owner_name) + len0(w->owner_uid) + len0(w->flavor) +
               len0(w->lease) + len0(w->loan) + len0(w->fenced_for);
    struct gf_obs_workload *p = gf_malloc(sizeof(*p) + n);
    *p = *w;
    char *at = (char *)(p + 1);
    char **fields[] = {&p->ns,          &p->name,       &p->uid,
                       &p->local_queue, &p->owner_kind, &p->owner_name,
                       &p->owner_uid,   &p->flavor,     &p->lease,
                       &p->loan,        &p->fenced_for};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        pack_str(fields[i], &at);
    p->packed = true;
    gf_obs_workload_free(w);
    return p;
}

int gf_obs_workload_project(void *data, const cJSON *obj, void **out)
{
    const char *res = data;
    struct gf_obs_workload *w = gf_calloc(1, sizeof(*w));
    const cJSON *spec;
    int64_t prio = 0;
    int rc = read_meta(obj, true, &w->ns, &w->name, &w->uid, &w->created_ms);
    if (rc == 0)
        rc = read_owner(obj, w);
    if (rc == 0 && opt_obj(obj, "spec", &spec) != 0)
        rc = -EINVAL;
    if (rc != 0)
        goto fail;
    w->lease = dup_or_null(gf_json_annotation(obj, GF_ANN_LEASE));
    w->loan_revoked = gf_json_annotation(obj, GF_ANN_LOAN_REVOKED_AT) != NULL;
    w->loan = dup_or_null(gf_json_annotation(obj, GF_ANN_LOAN));
    w->fenced_for =
        dup_or_null(gf_json_annotation(obj, GF_ANN_FENCED_FOR_LOAN));
    w->fenced = gf_json_annotation(obj, GF_ANN_FENCED_AT) != NULL;
    const char *dl = gf_json_annotation(obj, GF_ANN_RECLAIM_DEADLINE);
    if (dl == NULL || gf_time_parse_rfc3339(dl, &w->reclaim_deadline_ms) != 0)
        w->reclaim_deadline_ms = 0;
    w->reclaimed = gf_json_annotation(obj, GF_ANN_RECLAIMED_AT) != NULL;
    w->active = true;
    if (opt_str(spec, "queueName", &w->local_queue) != 0 ||
        opt_int(spec, "priority", INT32_MIN, INT32_MAX, &prio) != 0 ||
        opt_bool(spec, "active", &w->active) != 0) {
        rc = -EINVAL;
        goto fail;
    }
    w->priority = (int32_t)prio;
    w->pending_since_ms = w->created_ms;
    if (res != NULL && (rc = workload_gpus(spec, res, &w->gpus)) != 0)
        goto fail;
    if ((rc = read_wl_status(obj, res, w)) != 0)
        goto fail;
    *out = pack_workload(w);
    return 0;
fail:
    gf_obs_workload_free(w);
    return rc;
}

void gf_obs_workload_free(void *p)
{
    struct gf_obs_workload *w = p;
    if (w == NULL)
        return;
    if (w->packed) {
        gf_free(w);
        return;
    }
    gf_free(w->ns);
    gf_free(w->name);
    gf_free(w->uid);
    gf_free(w->local_queue);
    gf_free(w->owner_kind);
    gf_free(w->owner_name);
    gf_free(w->owner_uid);
    gf_free(w->flavor);
    gf_free(w->lease);
    gf_free(w->loan);
    gf_free(w->fenced_for);
    gf_free(w);
}

enum gf_wl_state gf_obs_workload_state(const struct gf_obs_workload *w)
{
    /* Finished first: a finished Workload keeps its last admission, and
     * Kueue no longer counts it whatever else the conditions say. */
    if (w->finished)
        return GF_WL_FINISHED;
    /* Kueue evicts a deactivated Workload; until the eviction lands it
     * may still show Admitted, but it will not stay so. */
    if (!w->active)
        return GF_WL_INACTIVE;
    if (w->admitted)
        return GF_WL_ADMITTED;
    if (w->quota_reserved)
        return GF_WL_RESERVED;
    return GF_WL_PENDING;
}

void gf_obs_workload_to_ledger(const struct gf_obs_workload *w,
                               const char *member, const char *cluster_queue,
                               struct gf_workload *out)
{
    memset(out, 0, sizeof(*out));
    out->member = member;
    out->namespace = w->ns;
    out->name = w->name;
    out->uid = w->uid;
    out->cluster_queue = cluster_queue;
    out->state = gf_obs_workload_state(w);
    out->flavor = out->state == GF_WL_RESERVED || out->state == GF_WL_ADMITTED
                      ? w->flavor
                      : NULL;
    out->kind = w->owner_kind != NULL ? w->owner_kind : "batch/Job";
    out->gpus = w->gpus;
    out->priority = w->priority;
    out->pending_since_ms = gf_obs_workload_pending_ms(w);
}

int64_t gf_obs_workload_pending_ms(const struct gf_obs_workload *w)
{
    int64_t ps = w->pending_since_ms, seen = w->pending_seen_ms;
    if (seen == 0 || ps % 1000 != 0)
        return ps;
    /* Clocks apart (the hub's and the API server's) can put seen before
     * ps: the second named bounds it either way. */
    return seen < ps ? ps : seen > ps + 999 ? ps + 999 : seen;
}

/* ---- ClusterQueues, LocalQueues, Namespaces -------------------------------
 */

/* A quantity in whole units; too large to count saturates. A quota is
 * rounded down and a usage up, so that a fraction in use is never read
 * as free. */
static int whole_units(const cJSON *q, bool round_up, int64_t *out)
{
    int64_t milli;
    int rc = gf_json_quantity_milli(q, &milli);
    if (rc == -ERANGE) {
        *out = INT64_MAX / 1000;
        return 0;
    }
    if (rc != 0 || milli < 0)
        return -EINVAL;
    *out = milli / 1000 + (round_up && milli % 1000 != 0);
    return 0;
}

static int opt_limit(const cJSON *r, const char *key, int64_t *out)
{
    const cJSON *q = item(r, key);
    *out = GF_NO_LIMIT;
    return unset(q) ? 0 : whole_units(q, false, out);
}

static int add_quota(struct gf_obs_cq *cq, size_t *cap, const char *flavor,
                     const cJSON *r)
{
    const cJSON *name = item(r, "name");
    if (!cJSON_IsString(name))
        return -EINVAL;
    if (cq->n_quotas == GF_OBS_MAX_QUOTAS)
        return GF_E2BIG;
    struct gf_cq_quota q = {0};
    const cJSON *nom = item(r, "nominalQuota");
    if (nom == NULL || whole_units(nom, false, &q.nominal) != 0 ||
        opt_limit(r, "borrowingLimit", &q.borrowing_limit) != 0 ||
        opt_limit(r, "lendingLimit", &q.lending_limit) != 0)
        return -EINVAL;
    if (cq->n_quotas == *cap) {
        *cap = *cap != 0 ? *cap * 2 : 4;
        cq->quotas = gf_realloc(cq->quotas, *cap * sizeof(*cq->quotas));
    }
    q.flavor = gf_strdup(flavor);
    q.resource = gf_strdup(name->valuestring);
    cq->quotas[cq->n_quotas++] = q;
    return 0;
}

static int read_flavor(struct gf_obs_cq *cq, size_t *cap, const cJSON *fl)
{
    const cJSON *fname = item(fl, "name"), *rs, *r;
    if (!cJSON_IsString(fname) || opt_arr(fl, "resources", &rs) != 0)
        return -EINVAL;
    cJSON_ArrayForEach(r, rs)
    {
        int rc = add_quota(cq, cap, fname->valuestring, r);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int read_groups(const cJSON *spec, struct gf_obs_cq *cq)
{
    const cJSON *rgs, *rg;
    size_t cap = 0;
    if (opt_arr(spec, "resourceGroups", &rgs) != 0)
        return -EINVAL;
    cJSON_ArrayForEach(rg, rgs)
    {
        const cJSON *fls, *fl;
        if (opt_arr(rg, "flavors", &fls) != 0)
            return -EINVAL;
        cJSON_ArrayForEach(fl, fls)
        {
            int rc = read_flavor(cq, &cap, fl);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

static struct gf_cq_quota *quota_of(struct gf_obs_cq *cq, const char *flavor,
                                    const char *res)
{
    for (size_t i = 0; i < cq->n_quotas; i++)
        if (strcmp(cq->quotas[i].flavor, flavor) == 0 &&
            strcmp(cq->quotas[i].resource, res) == 0)
            return &cq->quotas[i];
    return NULL;
}

/* status.flavorsUsage into cq->usage; -EINVAL if unreadable. Cells the
 * spec does not have (a flavor just removed) are left out with it. */
static int read_usage(const cJSON *status, struct gf_obs_cq *cq)
{
    const cJSON *fus, *fu;
    if (opt_arr(status, "flavorsUsage", &fus) != 0)
        return -EINVAL;
    cJSON_ArrayForEach(fu, fus)
    {
        const cJSON *fname = item(fu, "name"), *rs, *r;
        if (!cJSON_IsString(fname) || opt_arr(fu, "resources", &rs) != 0)
            return -EINVAL;
        cJSON_ArrayForEach(r, rs)
        {
            const cJSON *rname = item(r, "name"), *tot = item(r, "total");
            if (!cJSON_IsString(rname))
                return -EINVAL;
            const struct gf_cq_quota *q =
                quota_of(cq, fname->valuestring, rname->valuestring);
            if (q == NULL || unset(tot))
                continue;
            if (whole_units(tot, true, &cq->usage[q - cq->quotas]) != 0)
                return -EINVAL;
        }
    }
    return 0;
}

/* Whether Kueue's status is of the current spec, and its usage. */
static void read_cq_status(const cJSON *obj, struct gf_obs_cq *cq)
{
    cq->usage = gf_calloc(cq->n_quotas + 1, sizeof(*cq->usage));
    const cJSON *status = item(obj, "status");
    int64_t gen = 0, seen = 0;
    const cJSON *act = gf_json_cond(item(status, "conditions"), "Active");
    if (gf_json_int(obj, "metadata.generation", &gen) != 0 || act == NULL ||
        gf_json_as_int(item(act, "observedGeneration"), &seen) != 0)
        return;
    if (read_usage(status, cq) != 0) {
        memset(cq->usage, 0, cq->n_quotas * sizeof(*cq->usage));
        return;
    }
    cq->status_current = gen > 0 && seen >= gen;
}

int gf_obs_cq_project(void *data, const cJSON *obj, void **out)
{
    (void)data;
    struct gf_obs_cq *cq = gf_calloc(1, sizeof(*cq));
    const cJSON *spec;
    char *stop = NULL;
    int rc = read_meta(obj, false, NULL, &cq->name, NULL, NULL);
    if (rc == 0 && (opt_obj(obj, "spec", &spec) != 0 ||
                    opt_str(spec, "cohortName", &cq->cohort) != 0 ||
                    opt_str(spec, "stopPolicy", &stop) != 0))
        rc = -EINVAL;
    if (rc == 0)
        rc = read_groups(spec, cq);
    if (rc != 0) {
        gf_free(stop);
        gf_obs_cq_free(cq);
        return rc;
    }
    cq->stopped = stop != NULL && strcmp(stop, "None") != 0;
    gf_free(stop);
    const char *mb = gf_json_label(obj, GF_LABEL_MANAGED_BY);
    cq->managed_by_gpufed = mb != NULL && strcmp(mb, GF_MANAGED_BY_GPUFED) == 0;
    cq->loan_grant =
        cq->managed_by_gpufed &&
        strncmp(cq->name, GF_LOAN_CQ_PREFIX, strlen(GF_LOAN_CQ_PREFIX)) == 0;
    cq->loans = dup_or_null(gf_json_annotation(obj, GF_ANN_LOANS));
    read_cq_status(obj, cq);
    *out = cq;
    return 0;
}

void gf_obs_cohort_add(struct gf_obs_cohort *s, const struct gf_obs_cq *q)
{
    if (q->cohort == NULL || strcmp(q->cohort, s->cohort) != 0)
        return;
    if (!q->status_current)
        s->stale = true;
    for (size_t i = 0; i < q->n_quotas; i++)
        if (strcmp(q->quotas[i].flavor, s->flavor) == 0 &&
            strcmp(q->quotas[i].resource, s->resource) == 0) {
            s->nominal += q->quotas[i].nominal;
            s->usage += q->usage[i];
        }
}

void gf_obs_cq_free(void *p)
{
    struct gf_obs_cq *cq = p;
    if (cq == NULL)
        return;
    for (size_t i = 0; i < cq->n_quotas; i++) {
        gf_free((char *)cq->quotas[i].flavor);
        gf_free((char *)cq->quotas[i].resource);
    }
    gf_free(cq->quotas);
    gf_free(cq->usage);
    gf_free(cq->loans);
    gf_free(cq->name);
    gf_free(cq->cohort);
    gf_free(cq);
}

int gf_obs_lq_project(void *data, const cJSON *obj, void **out)
{
    (void)data;
    struct gf_obs_lq *lq = gf_calloc(1, sizeof(*lq));
    const cJSON *spec;
    int rc = read_meta(obj, true, &lq->ns, &lq->name, NULL, NULL);
    if (rc == 0 && (opt_obj(obj, "spec", &spec) != 0 ||
                    opt_str(spec, "clusterQueue", &lq->cluster_queue) != 0))
        rc = -EINVAL;
    if (rc != 0) {
        gf_obs_lq_free(lq);
        return rc;
    }
    *out = lq;
    return 0;
}

void gf_obs_lq_free(void *p)
{
    struct gf_obs_lq *lq = p;
    if (lq == NULL)
        return;
    gf_free(lq->ns);
    gf_free(lq->name);
    gf_free(lq->cluster_queue);
    gf_free(lq);
}

int gf_obs_ns_project(void *data, const cJSON *obj, void **out)
{
    (void)data;
    struct gf_obs_ns *ns = gf_calloc(1, sizeof(*ns));
    int rc = read_meta(obj, false, NULL, &ns->name, NULL, NULL);
    if (rc != 0) {
        gf_obs_ns_free(ns);
        return rc;
    }
    const char *v = gf_json_label(obj, GF_LABEL_ACCEPT_OVERFLOW);
    ns->accept_overflow = v != NULL && strcmp(v, "true") == 0;
    *out = ns;
    return 0;
}

void gf_obs_ns_free(void *p)
{
    struct gf_obs_ns *ns = p;
    if (ns == NULL)
        return;
    gf_free(ns->name);
    gf_free(ns);
}

/* ---- Jobs -----------------------------------------------------------------
 */

/* A decimal epoch label; 0 for anything else (a hand-made label must not
 * stop the Job from being observed). */
static uint64_t parse_epoch(const char *s)
{
    int64_t v;
    if (s == NULL || gf_parse_i64(s, &v) != 0 || v < 0)
        return 0;
    return (uint64_t)v;
}

static int read_job_status(const cJSON *obj, struct gf_obs_job *j)
{
    const cJSON *st, *conds;
    if (opt_obj(obj, "status", &st) != 0 ||
        opt_arr(st, "conditions", &conds) != 0)
        return -EINVAL;
    const cJSON *c = cond_true(conds, "Complete");
    const cJSON *f = cond_true(conds, "Failed");
    j->complete = c != NULL;
    j->failed = f != NULL;
    if (!j->complete && !j->failed)
        return 0;
    if (opt_time(st, "completionTime", &j->finished_ms) != 0 ||
        (j->finished_ms == 0 &&
         opt_time(c != NULL ? c : f, "lastTransitionTime", &j->finished_ms)))
        return -EINVAL;
    return 0;
}

int gf_obs_job_project(void *data, const cJSON *obj, void **out)
{
    (void)data;
    struct gf_obs_job *j = gf_calloc(1, sizeof(*j));
    const cJSON *spec;
    int64_t deleted = 0;
    int rc = read_meta(obj, true, &j->ns, &j->name, &j->uid, NULL);
    if (rc == 0 &&
        (opt_obj(obj, "spec", &spec) != 0 ||
         opt_bool(spec, "suspend", &j->suspended) != 0 ||
         opt_time(item(obj, "metadata"), "deletionTimestamp", &deleted) != 0))
        rc = -EINVAL;
    if (rc == 0)
        rc = read_job_status(obj, j);
    if (rc != 0) {
        gf_obs_job_free(j);
        return rc;
    }
    j->deleting = !unset(item(item(obj, "metadata"), "deletionTimestamp"));
    j->queue_name = dup_or_null(gf_json_label(obj, GF_KUEUE_QUEUE_LABEL));
    j->lease = dup_or_null(gf_json_label(obj, GF_LABEL_LEASE));
    j->origin_uid = dup_or_null(gf_json_label(obj, GF_LABEL_ORIGIN_UID));
    j->origin_cluster =
        dup_or_null(gf_json_label(obj, GF_LABEL_ORIGIN_CLUSTER));
    j->epoch = parse_epoch(gf_json_label(obj, GF_LABEL_EPOCH));
    j->outcome = dup_or_null(gf_json_annotation(obj, GF_ANN_OUTCOME));
    const char *dl = gf_json_annotation(obj, GF_ANN_RECLAIM_DEADLINE);
    if (dl == NULL || gf_time_parse_rfc3339(dl, &j->reclaim_deadline_ms) != 0)
        j->reclaim_deadline_ms = 0;
    *out = j;
    return 0;
}

void gf_obs_job_free(void *p)
{
    struct gf_obs_job *j = p;
    if (j == NULL)
        return;
    gf_free(j->ns);
    gf_free(j->name);
    gf_free(j->uid);
    gf_free(j->queue_name);
    gf_free(j->lease);
    gf_free(j->origin_uid);
    gf_free(j->origin_cluster);
    gf_free(j->outcome);
    gf_free(j);
}

/* ---- QuotaLeases ------------------------------------------------------------
 */

/* Reading a QuotaLease: the first error's sentence goes to why. */
struct ql_reader {
    char *why;
    size_t cap;
    int rc;
};

static void ql_fail(struct ql_reader *r, const char *field, const char *what)
{
    if (r->rc != 0)
        return;
    r->rc = -EINVAL;
    if (r->cap > 0)
        snprintf(r->why, r->cap, "%s %s", field, what);
}

/* A string field with the CRD's length bounds; NULL when absent and not
 * required. */
static char *ql_str(struct ql_reader *r, const cJSON *parent, const char *key,
                    const char *field, size_t min, size_t max)
{
    const cJSON *n = item(parent, key);
    if (unset(n)) {
        if (min > 0)
            ql_fail(r, field, "is required");
        return NULL;
    }
    if (!cJSON_IsString(n)) {
        ql_fail(r, field, "must be a string");
        return NULL;
    }
    size_t len = strlen(n->valuestring);
    if (len < min || len > max) {
        ql_fail(r, field, len < min ? "is empty" : "is too long");
        return NULL;
    }
    return r->rc == 0 ? gf_strdup(n->valuestring) : NULL;
}

static int64_t ql_int(struct ql_reader *r, const cJSON *parent, const char *key,
                      const char *field, bool required, int64_t min,
                      int64_t max)
{
    int64_t v = 0;
    const cJSON *n = item(parent, key);
    if (unset(n)) {
        if (required)
            ql_fail(r, field, "is required");
        return 0;
    }
    if (json_i64(n, &v) != 0)
        ql_fail(r, field, "must be an integer");
    else if (v < min || v > max)
        ql_fail(r, field, "is out of range");
    return v;
}

static const cJSON *ql_obj(struct ql_reader *r, const cJSON *parent,
                           const char *key, const char *field, bool required)
{
    const cJSON *n = item(parent, key);
    if (unset(n)) {
        if (required)
            ql_fail(r, field, "is required");
        return NULL;
    }
    if (!cJSON_IsObject(n)) {
        ql_fail(r, field, "must be an object");
        return NULL;
    }
    return n;
}

static int64_t ql_time(struct ql_reader *r, const cJSON *parent,
                       const char *key, const char *field)
{
    int64_t ms = 0;
    if (opt_time(parent, key, &ms) != 0)
        ql_fail(r, field, "is not an RFC 3339 time");
    /* 0 means "not set" in struct gf_lease, and gpufed never wrote a time
     * before 1970: such a time was not written by us. */
    else if (ms < 0)
        ql_fail(r, field, "is before 1970");
    return ms;
}

static void ql_origin(struct ql_reader *r, const cJSON *o, struct gf_lease *l)
{
    l->origin_member = ql_str(r, o, "member", "spec.origin.member", 1, 63);
    l->origin_namespace =
        ql_str(r, o, "namespace", "spec.origin.namespace", 1, 63);
    l->origin_name = ql_str(r, o, "name", "spec.origin.name", 1, 253);
    l->origin_uid = ql_str(r, o, "uid", "spec.origin.uid", 1, 64);
    l->origin_job = ql_str(r, o, "jobName", "spec.origin.jobName", 0, 253);
    l->origin_cq =
        ql_str(r, o, "clusterQueue", "spec.origin.clusterQueue", 0, 253);
    l->priority = (int32_t)ql_int(r, o, "priority", "spec.origin.priority",
                                  false, INT32_MIN, INT32_MAX);
}

static void ql_spec(struct ql_reader *r, const cJSON *spec, struct gf_lease *l)
{
    l->group = ql_str(r, spec, "group", "spec.group", 1, 253);
    char *mode = ql_str(r, spec, "mode", "spec.mode", 1, 16);
    if (mode != NULL && strcmp(mode, "Loan") == 0)
        l->mode = GF_LEASE_LOAN;
    else if (mode != NULL && strcmp(mode, "Redirect") != 0)
        ql_fail(r, "spec.mode", "must be Redirect or Loan");
    gf_free(mode);
    l->epoch =
        (uint64_t)ql_int(r, spec, "epoch", "spec.epoch", true, 1, INT64_MAX);
    ql_origin(r, ql_obj(r, spec, "origin", "spec.origin", true), l);
    const cJSON *ld = ql_obj(r, spec, "lender", "spec.lender", true);
    l->lender_member = ql_str(r, ld, "member", "spec.lender.member", 1, 63);
    l->lender_cq =
        ql_str(r, ld, "clusterQueue", "spec.lender.clusterQueue", 1, 253);
    l->lender_flavor = ql_str(r, ld, "flavor", "spec.lender.flavor", 1, 253);
    gf_free(ql_str(r, spec, "resource", "spec.resource", 1, 253));
    l->gpus = ql_int(r, spec, "gpus", "spec.gpus", true, 1, INT64_MAX);
}

/*
 * When a final lease ended: the time of its last transition into the
 * phase it is in. The status carries no separate field for it; the
 * transitions are the record (the writer appends one per phase change).
 * 0 when none is there (an older writer, or history trimmed to the cap).
 */
static int64_t ql_ended(struct ql_reader *r, const cJSON *st,
                        enum gf_lease_phase phase)
{
    const cJSON *tr = item(st, "transitions"), *t;
    if (tr == NULL || !cJSON_IsArray(tr))
        return 0;
    const char *want = gf_lease_phase_name(phase);
    int64_t ended = 0;
    cJSON_ArrayForEach(t, tr)
    {
        const cJSON *ph = item(t, "phase");
        if (cJSON_IsString(ph) && strcmp(ph->valuestring, want) == 0)
            ended = ql_time(r, t, "time", "status.transitions[].time");
    }
    return ended;
}

static void ql_status(struct ql_reader *r, const cJSON *st, struct gf_lease *l)
{
    char *phase = ql_str(r, st, "phase", "status.phase", 0, 32);
    if (phase != NULL && gf_lease_phase_parse(phase, &l->phase) != 0)
        ql_fail(r, "status.phase", "is not a QuotaLease phase");
    gf_free(phase);
    l->reason = ql_str(r, st, "reason", "status.reason", 0, 64);
    l->started_ms = ql_time(r, st, "startedAt", "status.startedAt");
    l->expires_ms = ql_time(r, st, "expiresAt", "status.expiresAt");
    l->reclaim_deadline_ms =
        ql_time(r, st, "reclaimDeadline", "status.reclaimDeadline");
    l->reclaim_started_ms =
        ql_time(r, st, "reclaimStarted", "status.reclaimStarted");
    if (l->phase == GF_LEASE_RELEASED || l->phase == GF_LEASE_FAILED)
        l->ended_ms = ql_ended(r, st, l->phase);
}

int gf_obs_lease_from_json(const cJSON *ql, struct gf_lease *out, char *why,
                           size_t why_cap)
{
    struct ql_reader r = {why, why_cap, 0};
    memset(out, 0, sizeof(*out));
    if (why_cap > 0)
        why[0] = '\0';
    if (!cJSON_IsObject(ql)) {
        ql_fail(&r, "QuotaLease", "must be an object");
        return r.rc;
    }
    const cJSON *api = item(ql, "apiVersion"), *kind = item(ql, "kind");
    /* List items from some servers omit them; when there they must
     * match. */
    if (api != NULL &&
        (!cJSON_IsString(api) || strcmp(api->valuestring, QL_API_VERSION) != 0))
        ql_fail(&r, "apiVersion", "is not " QL_API_VERSION);
    if (kind != NULL &&
        (!cJSON_IsString(kind) || strcmp(kind->valuestring, QL_KIND) != 0))
        ql_fail(&r, "kind", "is not " QL_KIND);
    const cJSON *md = ql_obj(&r, ql, "metadata", "metadata", true);
    out->name = ql_str(&r, md, "name", "metadata.name", 1, 253);
    out->created_ms =
        ql_time(&r, md, "creationTimestamp", "metadata.creationTimestamp");
    ql_spec(&r, ql_obj(&r, ql, "spec", "spec", true), out);
    out->phase = GF_LEASE_PENDING;
    ql_status(&r, ql_obj(&r, ql, "status", "status", false), out);
    if (r.rc != 0)
        gf_lease_clear(out);
    return r.rc;
}

int gf_obs_lease_project(void *data, const cJSON *obj, void **out)
{
    (void)data;
    struct gf_lease *l = gf_calloc(1, sizeof(*l));
    int rc = gf_obs_lease_from_json(obj, l, NULL, 0);
    if (rc != 0) {
        gf_free(l);
        return rc;
    }
    *out = l;
    return 0;
}

void gf_obs_lease_free(void *p)
{
    struct gf_lease *l = p;
    if (l == NULL)
        return;
    gf_lease_clear(l);
    gf_free(l);
}

static void add_str(cJSON *obj, const char *key, const char *val)
{
    if (val != NULL)
        cJSON_AddStringToObject(obj, key, val);
}

static void add_time(cJSON *obj, const char *key, int64_t ms)
{
    char ts[32];
    if (ms == 0)
        return;
    gf_time_rfc3339(ms, ts);
    cJSON_AddStringToObject(obj, key, ts);
}

void gf_obs_time_ms(int64_t wall_ms, char out[GF_OBS_TIME_MAX])
{
    /* gf_time_rfc3339's seconds, then the milliseconds before its Z. */
    char ts[32];
    int64_t ms = ((wall_ms % 1000) + 1000) % 1000;
    gf_time_rfc3339(wall_ms - ms, ts);
    size_t n = strlen(ts);
    if (n > 0)
        ts[n - 1] = '\0';
    snprintf(out, GF_OBS_TIME_MAX, "%s.%03dZ", ts, (int)ms);
}

/* A reclaim's instants keep their milliseconds: the deadline is a
 * promise to the job, and a second's rounding either way breaks it. */
static void add_time_ms(cJSON *obj, const char *key, int64_t ms)
{
    char ts[GF_OBS_TIME_MAX];
    if (ms == 0)
        return;
    gf_obs_time_ms(ms, ts);
    cJSON_AddStringToObject(obj, key, ts);
}

cJSON *gf_obs_lease_to_json(const struct gf_lease *l, const char *ns,
                            const char *resource)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "apiVersion", QL_API_VERSION);
    cJSON_AddStringToObject(o, "kind", QL_KIND);
    cJSON *md = cJSON_AddObjectToObject(o, "metadata");
    add_str(md, "name", l->name);
    add_str(md, "namespace", ns);
    add_time(md, "creationTimestamp", l->created_ms);
    /* Labels let kubectl and the hub select the leases of one origin. */
    cJSON *labels = cJSON_AddObjectToObject(md, "labels");
    cJSON_AddStringToObject(labels, GF_LABEL_MANAGED_BY, GF_MANAGED_BY_GPUFED);
    add_str(labels, GF_LABEL_ORIGIN_UID, l->origin_uid);
    cJSON *spec = cJSON_AddObjectToObject(o, "spec");
    add_str(spec, "group", l->group);
    cJSON_AddStringToObject(spec, "mode",
                            l->mode == GF_LEASE_LOAN ? "Loan" : "Redirect");
    cJSON_AddNumberToObject(spec, "epoch", (double)l->epoch);
    cJSON *org = cJSON_AddObjectToObject(spec, "origin");
    add_str(org, "member", l->origin_member);
    add_str(org, "namespace", l->origin_namespace);
    add_str(org, "name", l->origin_name);
    add_str(org, "uid", l->origin_uid);
    add_str(org, "jobName", l->origin_job);
    add_str(org, "clusterQueue", l->origin_cq);
    cJSON_AddNumberToObject(org, "priority", l->priority);
    cJSON *ld = cJSON_AddObjectToObject(spec, "lender");
    add_str(ld, "member", l->lender_member);
    add_str(ld, "clusterQueue", l->lender_cq);
    add_str(ld, "flavor", l->lender_flavor);
    add_str(spec, "resource", resource);
    cJSON_AddNumberToObject(spec, "gpus", (double)l->gpus);
    cJSON *st = cJSON_AddObjectToObject(o, "status");
    cJSON_AddStringToObject(st, "phase", gf_lease_phase_name(l->phase));
    add_str(st, "reason", l->reason);
    add_time(st, "startedAt", l->started_ms);
    add_time(st, "expiresAt", l->expires_ms);
    add_time_ms(st, "reclaimStarted", l->reclaim_started_ms);
    add_time_ms(st, "reclaimDeadline", l->reclaim_deadline_ms);
    return o;
}

char *gf_obs_lease_status_patch(const cJSON *cur_status, const char *phase,
                                const char *reason, const char *message,
                                uint64_t epoch, int64_t now_wall_ms,
                                int64_t started_ms, int64_t expires_ms,
                                int64_t reclaim_started_ms,
                                int64_t reclaim_deadline_ms)
{
    cJSON *p = cJSON_CreateObject();
    cJSON *st = cJSON_AddObjectToObject(p, "status");
    cJSON_AddStringToObject(st, "phase", phase);
    /* In a merge patch, null removes: a reason from an earlier phase
     * must not stay next to the new one. */
    if (reason != NULL)
        cJSON_AddStringToObject(st, "reason", reason);
    else
        cJSON_AddNullToObject(st, "reason");
    if (message != NULL)
        cJSON_AddStringToObject(st, "message", message);
    else
        cJSON_AddNullToObject(st, "message");
    add_time(st, "startedAt", started_ms);
    add_time(st, "expiresAt", expires_ms);
    add_time_ms(st, "reclaimStarted", reclaim_started_ms);
    add_time_ms(st, "reclaimDeadline", reclaim_deadline_ms);
    cJSON *tr = cJSON_AddArrayToObject(st, "transitions");
    const cJSON *old = item(cur_status, "transitions"), *t;
    int n = cJSON_IsArray(old) ? cJSON_GetArraySize(old) : 0;
    int skip = n >= GF_OBS_MAX_TRANSITIONS ? n - GF_OBS_MAX_TRANSITIONS + 1 : 0;
    int i = 0;
    const cJSON *arr = n > 0 ? old : NULL;
    cJSON_ArrayForEach(t, arr)
    {
        if (i++ >= skip && cJSON_IsObject(t))
            cJSON_AddItemToArray(tr, cJSON_Duplicate(t, true));
    }
    cJSON *nt = cJSON_CreateObject();
    cJSON_AddStringToObject(nt, "phase", phase);
    if (reason != NULL)
        cJSON_AddStringToObject(nt, "reason", reason);
    cJSON_AddNumberToObject(nt, "epoch", (double)epoch);
    char ts[32];
    gf_time_rfc3339(now_wall_ms, ts);
    cJSON_AddStringToObject(nt, "time", ts);
    cJSON_AddItemToArray(tr, nt);
    char *s = cJSON_PrintUnformatted(p);
    cJSON_Delete(p);
    return s;
}
