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
}

void gf__kq_cq_free(struct gf_kq_cq *cq)
{
    if (cq == NULL)
        return;
    cq_clear(cq);
    gf_free(cq->name);
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

/*
 * A container's requests, falling back to its limits for resources it
 * does not request (what the API server defaults requests to).
 */
static void container_reqs(struct gf_kq_podset *ps, const cJSON *c)
{
    const cJSON *req = gf_json_path(c, "resources.requests");
    const cJSON *lim = gf_json_path(c, "resources.limits");
    const cJSON *q;
    cJSON_ArrayForEach(q, req)
    {
        add_req(ps, q->string, qty_or(q, 0));
    }
    cJSON_ArrayForEach(q, lim)
    {
        if (cJSON_GetObjectItemCaseSensitive(req, q->string) == NULL)
            add_req(ps, q->string, qty_or(q, 0));
    }
}

void gf__kq_podset_reqs(struct gf_kq_podset *ps, const cJSON *pod_spec)
{
    const cJSON *c;
    cJSON_ArrayForEach(c,
                       cJSON_GetObjectItemCaseSensitive(pod_spec, "containers"))
    {
        container_reqs(ps, c);
    }
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
        gf__kq_podset_reqs(ps, gf_json_path(p, "template.spec"));
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
                   j->suspended != suspended || j->done != done;
    if (j->uid == NULL || (uid != NULL && strcmp(j->uid, uid) != 0)) {
        GF_FREE(j->uid);
        j->uid = gf_strdup(uid);
        j->need_wl = true;
    }
    j->suspended = suspended;
    j->done = done;
    GF_FREE(j->fail_msg);
    j->fail_msg = gf_strdup(msg);
    return changed;
}
