/*
 * kueue_index: turns stored Kueue objects and Jobs into Kueue-lite's index
 * (kueue_internal.h). Every parse is from the object alone, so the index
 * is rebuilt the same way from an initial list or from events, and the
 * controller's own status writes flow back through here.
 */
#include "e2e/kubesim/kueue_index.h"

#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/json.h"

static int64_t qty_or(const cJSON *n, int64_t dflt)
{
    int64_t v;
    return n != NULL && gf_json_quantity_milli(n, &v) == 0 ? v : dflt;
}

/* ---- ClusterQueue ------------------------------------------------------- */

static void group_free(struct gf_kq_group *g)
{
    for (size_t r = 0; r < g->n_res; r++)
        gf_free(g->res[r]);
    gf_free(g->res);
    for (size_t f = 0; f < g->n_fl; f++) {
        gf_free(g->fl[f].name);
        gf_free(g->fl[f].cells);
    }
    gf_free(g->fl);
}

static void cq_clear(struct gf_kq_cq *cq)
{
    for (size_t g = 0; g < cq->n_groups; g++)
        group_free(&cq->groups[g]);
    GF_FREE(cq->groups);
    cq->n_groups = 0;
    GF_FREE(cq->cohort);
    cJSON_Delete(cq->ns_sel);
    cq->ns_sel = NULL;
}

void gf__kq_cq_free(struct gf_kq_cq *cq)
{
    if (cq == NULL)
        return;
    cq_clear(cq);
    gf_free(cq->name);
    gf_free(cq->st_fp);
    gf_free(cq);
}

static enum gf_kq_policy policy_of(const char *s)
{
    if (s == NULL)
        return GF_KQ_NEVER;
    if (strcmp(s, "LowerPriority") == 0)
        return GF_KQ_LOWER;
    if (strcmp(s, "LowerOrNewerEqualPriority") == 0)
        return GF_KQ_LOWER_OR_NEWER_EQUAL;
    if (strcmp(s, "Any") == 0)
        return GF_KQ_ANY;
    return GF_KQ_NEVER;
}

static enum gf_kq_stop stop_of(const char *s)
{
    if (s == NULL)
        return GF_KQ_RUN;
    if (strcmp(s, "Hold") == 0)
        return GF_KQ_HOLD;
    if (strcmp(s, "HoldAndDrain") == 0)
        return GF_KQ_HOLD_AND_DRAIN;
    return GF_KQ_RUN;
}

/* The cell of one flavor for resource res (absent: no quota). */
static void parse_cell(const cJSON *fl, const char *res, struct gf_kq_cell *c)
{
    *c = (struct gf_kq_cell){.borrow = GF_KQ_UNSET, .lend = GF_KQ_UNSET};
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(fl, "resources"))
    {
        const char *name = gf_json_str(r, "name");
        if (name == NULL || strcmp(name, res) != 0)
            continue;
        c->nominal =
            qty_or(cJSON_GetObjectItemCaseSensitive(r, "nominalQuota"), 0);
        c->borrow = qty_or(
            cJSON_GetObjectItemCaseSensitive(r, "borrowingLimit"), GF_KQ_UNSET);
        c->lend = qty_or(cJSON_GetObjectItemCaseSensitive(r, "lendingLimit"),
                         GF_KQ_UNSET);
        return;
    }
}

static void parse_group(const cJSON *rg, struct gf_kq_group *g)
{
    const cJSON *cov = cJSON_GetObjectItemCaseSensitive(rg, "coveredResources");
    const cJSON *fls = cJSON_GetObjectItemCaseSensitive(rg, "flavors");
    size_t nr = (size_t)cJSON_GetArraySize(cov);
    size_t nf = (size_t)cJSON_GetArraySize(fls);
    g->res = gf_calloc(nr + 1, sizeof(*g->res));
    g->fl = gf_calloc(nf + 1, sizeof(*g->fl));
    const cJSON *it;
    cJSON_ArrayForEach(it, cov)
    {
        if (cJSON_IsString(it))
            g->res[g->n_res++] = gf_strdup(it->valuestring);
    }
    cJSON_ArrayForEach(it, fls)
    {
        const char *name = gf_json_str(it, "name");
        if (name == NULL)
            continue;
        struct gf_kq_flavor *f = &g->fl[g->n_fl++];
        f->name = gf_strdup(name);
        f->cells = gf_calloc(g->n_res + 1, sizeof(*f->cells));
        for (size_t r = 0; r < g->n_res; r++)
            parse_cell(it, g->res[r], &f->cells[r]);
    }
}

void gf__kq_cq_load(struct gf_kq_cq *cq, const cJSON *obj)
{
    cq_clear(cq);
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");
    const char *cohort = gf_json_str(spec, "cohortName");
    if (cohort == NULL)
        cohort = gf_json_str(spec, "cohort"); /* v1beta1's name */
    cq->cohort = cohort != NULL && cohort[0] != '\0' ? gf_strdup(cohort) : NULL;
    const cJSON *rgs = cJSON_GetObjectItemCaseSensitive(spec, "resourceGroups");
    size_t n = (size_t)cJSON_GetArraySize(rgs);
    cq->groups = gf_calloc(n + 1, sizeof(*cq->groups));
    const cJSON *rg;
    cJSON_ArrayForEach(rg, rgs)
    {
        parse_group(rg, &cq->groups[cq->n_groups++]);
    }
    cq->within = policy_of(gf_json_str(spec, "preemption.withinClusterQueue"));
    cq->reclaim =
        policy_of(gf_json_str(spec, "preemption.reclaimWithinCohort"));
    /* borrowWithinCohort is "only supported when reclaimWithinCohort is
     * enabled" (cluster_queue.md); its one policy is LowerPriority. */
    const char *bwc = gf_json_str(spec, "preemption.borrowWithinCohort.policy");
    cq->bwc = bwc != NULL && strcmp(bwc, "LowerPriority") == 0 &&
                      cq->reclaim != GF_KQ_NEVER
                  ? GF_KQ_LOWER
                  : GF_KQ_NEVER;
    cq->bwc_max = 0;
    cq->bwc_has_max =
        gf_json_int(spec, "preemption.borrowWithinCohort.maxPriorityThreshold",
                    &cq->bwc_max) == 0;
    const char *wb = gf_json_str(spec, "flavorFungibility.whenCanBorrow");
    const char *wp = gf_json_str(spec, "flavorFungibility.whenCanPreempt");
    const char *pref = gf_json_str(spec, "flavorFungibility.preference");
    cq->borrow_try_next = wb != NULL && strcmp(wb, "TryNextFlavor") == 0;
    cq->preempt_stop = wp != NULL && (strcmp(wp, "MayStopSearch") == 0 ||
                                      strcmp(wp, "Preempt") == 0);
    cq->pref = pref != NULL && strcmp(pref, "PreemptionOverBorrowing") == 0
                   ? GF_KQ_PREEMPT_OVER_BORROW
                   : GF_KQ_BORROW_OVER_PREEMPT;
    /* A null or absent namespaceSelector admits from no namespace. */
    const cJSON *nss =
        cJSON_GetObjectItemCaseSensitive(spec, "namespaceSelector");
    cq->ns_sel = cJSON_IsObject(nss) ? cJSON_Duplicate(nss, true) : NULL;
    const char *qs = gf_json_str(spec, "queueingStrategy");
    cq->strict_fifo = qs != NULL && strcmp(qs, "StrictFIFO") == 0;
    cq->stop = stop_of(gf_json_str(spec, "stopPolicy"));
    int64_t gen = 0;
    gf_json_int(obj, "metadata.generation", &gen);
    cq->generation = gen;
}

/* ---- LocalQueue --------------------------------------------------------- */

void gf__kq_lq_free(struct gf_kq_lq *lq)
{
    if (lq == NULL)
        return;
    gf_free(lq->ns);
    gf_free(lq->name);
    gf_free(lq->cq);
    gf_free(lq->st_fp);
    gf_free(lq);
}

void gf__kq_lq_load(struct gf_kq_lq *lq, const cJSON *obj)
{
    GF_FREE(lq->cq);
    lq->cq = gf_strdup(gf_json_str(obj, "spec.clusterQueue"));
    lq->stop = stop_of(gf_json_str(obj, "spec.stopPolicy"));
}

/* ---- Workload ----------------------------------------------------------- */

static void podsets_free(struct gf_kq_wl *wl)
{
    for (size_t p = 0; p < wl->n_ps; p++) {
        for (size_t r = 0; r < wl->ps[p].n_req; r++)
            gf_free(wl->ps[p].req[r].res);
        gf_free(wl->ps[p].req);
        gf_free(wl->ps[p].name);
        cJSON_Delete(wl->ps[p].node_sel);
    }
    GF_FREE(wl->ps);
    wl->n_ps = 0;
}

static void uses_free(struct gf_kq_wl *wl)
{
    for (size_t u = 0; u < wl->n_uses; u++) {
        gf_free(wl->uses[u].flavor);
        gf_free(wl->uses[u].res);
    }
    GF_FREE(wl->uses);
    wl->n_uses = 0;
}

static void wl_clear(struct gf_kq_wl *wl)
{
    podsets_free(wl);
    uses_free(wl);
    GF_FREE(wl->uid);
    GF_FREE(wl->queue);
    GF_FREE(wl->adm_cq);
    GF_FREE(wl->qr_reason);
    GF_FREE(wl->qr_msg);
    GF_FREE(wl->ev_reason);
    GF_FREE(wl->job_key);
    GF_FREE(wl->job_uid);
}

void gf__kq_wl_free(struct gf_kq_wl *wl)
{
    if (wl == NULL)
        return;
    wl_clear(wl);
    gf_free(wl->key);
    gf_free(wl->ns);
    gf_free(wl->name);
    gf_free(wl);
}

static void add_req(struct gf_kq_podset *ps, const char *res, int64_t milli)
{
    for (size_t i = 0; i < ps->n_req; i++)
        if (strcmp(ps->req[i].res, res) == 0) {
            ps->req[i].milli += milli;
            return;
        }
    ps->req = gf_realloc(ps->req, (ps->n_req + 1) * sizeof(*ps->req));
    ps->req[ps->n_req++] = (struct gf_kq_req){gf_strdup(res), milli};
}

/* One resource list of a pod: name -> milli-units. */
struct rlist {
    struct gf_kq_req *v;
    size_t n;
};

static void rl_add(struct rlist *l, const char *res, int64_t milli, bool max)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i].res, res) == 0) {
            if (!max)
                l->v[i].milli += milli;
            else if (milli > l->v[i].milli)
                l->v[i].milli = milli;
            return;
        }
    l->v = gf_realloc(l->v, (l->n + 1) * sizeof(*l->v));
    l->v[l->n++] = (struct gf_kq_req){gf_strdup(res), milli};
}

static void rl_free(struct rlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        gf_free(l->v[i].res);
    GF_FREE(l->v);
    l->n = 0;
}

/*
 * A container's requests, falling back to its limits for resources it
 * does not request (what the API server defaults requests to), added to
 * (or, max, raised to) l.
 */
static void container_reqs(struct rlist *l, const cJSON *c, bool max)
{
    const cJSON *req = gf_json_path(c, "resources.requests");
    const cJSON *lim = gf_json_path(c, "resources.limits");
    const cJSON *q;
    cJSON_ArrayForEach(q, req)
    {
        rl_add(l, q->string, qty_or(q, 0), max);
    }
    cJSON_ArrayForEach(q, lim)
    {
        if (cJSON_GetObjectItemCaseSensitive(req, q->string) == NULL)
            rl_add(l, q->string, qty_or(q, 0), max);
    }
}

static bool is_sidecar(const cJSON *c)
{
    const char *rp = gf_json_str(c, "restartPolicy");
    return rp != NULL && strcmp(rp, "Always") == 0;
}

/*
 * The pod's effective requests, as Kueue and the scheduler count them:
 * the larger of the sum of the containers (with the sidecars, init
 * containers with restartPolicy Always, that keep running) and each
 * init container (with the sidecars started before it), plus the pod's
 * overhead.
 */
void gf__kq_podset_reqs(struct gf_kq_podset *ps, const cJSON *pod_spec)
{
    struct rlist sum = {0}, side = {0}, init = {0}, one = {0};
    const cJSON *c;
    cJSON_ArrayForEach(c,
                       cJSON_GetObjectItemCaseSensitive(pod_spec, "containers"))
    {
        container_reqs(&sum, c, false);
    }
    cJSON_ArrayForEach(
        c, cJSON_GetObjectItemCaseSensitive(pod_spec, "initContainers"))
    {
        if (is_sidecar(c)) {
            container_reqs(&side, c, false);
            continue;
        }
        container_reqs(&one, c, false);
        for (size_t i = 0; i < side.n; i++)
            rl_add(&one, side.v[i].res, side.v[i].milli, false);
        for (size_t i = 0; i < one.n; i++)
            rl_add(&init, one.v[i].res, one.v[i].milli, true);
        rl_free(&one);
    }
    for (size_t i = 0; i < side.n; i++)
        rl_add(&sum, side.v[i].res, side.v[i].milli, false);
    for (size_t i = 0; i < init.n; i++)
        rl_add(&sum, init.v[i].res, init.v[i].milli, true);
    const cJSON *q;
    cJSON_ArrayForEach(q,
                       cJSON_GetObjectItemCaseSensitive(pod_spec, "overhead"))
    {
        rl_add(&sum, q->string, qty_or(q, 0), false);
    }
    for (size_t i = 0; i < sum.n; i++)
        add_req(ps, sum.v[i].res, sum.v[i].milli);
    rl_free(&sum);
    rl_free(&side);
    rl_free(&init);
}

static void parse_podsets(struct gf_kq_wl *wl, const cJSON *spec)
{
    const cJSON *pss = cJSON_GetObjectItemCaseSensitive(spec, "podSets");
    size_t n = (size_t)cJSON_GetArraySize(pss);
    wl->ps = gf_calloc(n + 1, sizeof(*wl->ps));
    const cJSON *p;
    cJSON_ArrayForEach(p, pss)
    {
        struct gf_kq_podset *ps = &wl->ps[wl->n_ps++];
        const char *name = gf_json_str(p, "name");
        ps->name = gf_strdup(name != NULL ? name : "main");
        ps->count = 1;
        gf_json_int(p, "count", &ps->count);
        const cJSON *pod = gf_json_path(p, "template.spec");
        gf__kq_podset_reqs(ps, pod);
        /* One "pods" per pod: counted when a ClusterQueue covers it. */
        if (ps->count >= 0)
            add_req(ps, "pods", 1000);
        const cJSON *ns = cJSON_GetObjectItemCaseSensitive(pod, "nodeSelector");
        ps->node_sel = cJSON_IsObject(ns) ? cJSON_Duplicate(ns, true) : NULL;
    }
}

static void add_use(struct gf_kq_wl *wl, const char *flavor, const char *res,
                    int64_t q)
{
    for (size_t i = 0; i < wl->n_uses; i++)
        if (strcmp(wl->uses[i].flavor, flavor) == 0 &&
            strcmp(wl->uses[i].res, res) == 0) {
            wl->uses[i].q += q;
            return;
        }
    wl->uses = gf_realloc(wl->uses, (wl->n_uses + 1) * sizeof(*wl->uses));
    wl->uses[wl->n_uses++] =
        (struct gf_kq_use){gf_strdup(flavor), gf_strdup(res), q};
}

static void parse_admission(struct gf_kq_wl *wl, const cJSON *adm)
{
    const char *cq = gf_json_str(adm, "clusterQueue");
    if (cq == NULL)
        return;
    wl->adm_cq = gf_strdup(cq);
    const cJSON *psa;
    cJSON_ArrayForEach(
        psa, cJSON_GetObjectItemCaseSensitive(adm, "podSetAssignments"))
    {
        const cJSON *fl = cJSON_GetObjectItemCaseSensitive(psa, "flavors");
        const cJSON *u;
        cJSON_ArrayForEach(
            u, cJSON_GetObjectItemCaseSensitive(psa, "resourceUsage"))
        {
            /* The resource name is data (nvidia.com/gpu): one key. */
            const char *flavor = gf_json_as_str(GF_JSON_AT(fl, u->string));
            if (flavor != NULL)
                add_use(wl, flavor, u->string, qty_or(u, 0));
        }
    }
}

static bool cond_true(const cJSON *c)
{
    const char *st = gf_json_str(c, "status");
    return st != NULL && strcmp(st, "True") == 0;
}

static void parse_conditions(struct gf_kq_wl *wl, const cJSON *conds)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, conds)
    {
        const char *type = gf_json_str(c, "type");
        const char *reason = gf_json_str(c, "reason");
        if (type == NULL)
            continue;
        if (strcmp(type, "Finished") == 0) {
            wl->finished = cond_true(c);
        } else if (strcmp(type, "QuotaReserved") == 0) {
            wl->qr_true = cond_true(c);
            wl->qr_reason = gf_strdup(reason);
            wl->qr_msg = gf_strdup(gf_json_str(c, "message"));
            const char *ltt = gf_json_str(c, "lastTransitionTime");
            if (ltt != NULL)
                gf_time_parse_rfc3339(ltt, &wl->admitted_ms);
        } else if (strcmp(type, "Evicted") == 0) {
            wl->evicted = cond_true(c);
            GF_FREE(wl->ev_reason);
            wl->ev_reason = gf_strdup(reason);
        } else if (strcmp(type, "Requeued") == 0) {
            wl->deactivated_requeue = !cond_true(c) && reason != NULL &&
                                      strcmp(reason, "Deactivated") == 0;
        }
    }
}

static void parse_owner(struct gf_kq_wl *wl, const cJSON *obj)
{
    const cJSON *o;
    cJSON_ArrayForEach(o, gf_json_path(obj, "metadata.ownerReferences"))
    {
        const char *kind = gf_json_str(o, "kind");
        const char *api = gf_json_str(o, "apiVersion");
        const char *name = gf_json_str(o, "name");
        if (kind == NULL || api == NULL || name == NULL ||
            strcmp(kind, "Job") != 0 || strcmp(api, "batch/v1") != 0)
            continue;
        size_t len = strlen(wl->ns) + strlen(name) + 2;
        wl->job_key = gf_malloc(len);
        snprintf(wl->job_key, len, "%s/%s", wl->ns, name);
        wl->job_uid = gf_strdup(gf_json_str(o, "uid"));
        return;
    }
}

void gf__kq_wl_load(struct gf_kq_wl *wl, const cJSON *obj)
{
    wl_clear(wl);
    wl->finished = wl->qr_true = wl->deactivated_requeue = false;
    wl->evicted = false;
    wl->admitted_ms = 0;
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");
    wl->uid = gf_strdup(gf_json_str(obj, "metadata.uid"));
    wl->queue = gf_strdup(gf_json_str(spec, "queueName"));
    wl->prio = 0;
    gf_json_int(spec, "priority", &wl->prio);
    wl->active = true;
    gf_json_bool(spec, "active", &wl->active);
    const char *ct = gf_json_str(obj, "metadata.creationTimestamp");
    if (ct != NULL)
        gf_time_parse_rfc3339(ct, &wl->created_ms);
    parse_podsets(wl, spec);
    parse_admission(wl, gf_json_path(obj, "status.admission"));
    parse_conditions(wl, gf_json_path(obj, "status.conditions"));
    parse_owner(wl, obj);
}

struct gf_kq_wl *gf__kq_wl_new(const char *ns, const char *name, uint64_t seq)
{
    struct gf_kq_wl *wl = gf_calloc(1, sizeof(*wl));
    size_t len = strlen(ns) + strlen(name) + 2;
    wl->key = gf_malloc(len);
    snprintf(wl->key, len, "%s/%s", ns, name);
    wl->ns = gf_strdup(ns);
    wl->name = gf_strdup(name);
    wl->seq = seq;
    return wl;
}

/* ---- Job ---------------------------------------------------------------- */

void gf__kq_job_free(struct gf_kq_job *j)
{
    if (j == NULL)
        return;
    gf_free(j->uid);
    gf_free(j->fail_msg);
    gf_free(j);
}

bool gf__kq_job_load(struct gf_kq_job *j, const cJSON *obj)
{
    const char *uid = gf_json_str(obj, "metadata.uid");
    bool suspended = false;
    gf_json_bool(obj, "spec.suspend", &suspended);
    int64_t active = 0;
    gf_json_int(obj, "status.active", &active);
    int done = 0;
    const char *msg = NULL;
    const cJSON *c;
    cJSON_ArrayForEach(c, gf_json_path(obj, "status.conditions"))
    {
        const char *type = gf_json_str(c, "type");
        if (type == NULL || !cond_true(c))
            continue;
        if (strcmp(type, "Complete") == 0) {
            done = 1;
        } else if (strcmp(type, "Failed") == 0) {
            done = 2;
            msg = gf_json_str(c, "message");
        }
    }
    bool changed = j->uid == NULL || uid == NULL || strcmp(j->uid, uid) != 0 ||
                   j->suspended != suspended || j->done != done ||
                   j->active != active;
    if (j->uid == NULL || (uid != NULL && strcmp(j->uid, uid) != 0)) {
        GF_FREE(j->uid);
        j->uid = gf_strdup(uid);
        j->need_wl = true;
    }
    j->suspended = suspended;
    j->done = done;
    j->active = active;
    GF_FREE(j->fail_msg);
    j->fail_msg = gf_strdup(msg);
    return changed;
}
