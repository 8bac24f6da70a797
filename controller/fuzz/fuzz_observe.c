/*
 * Fuzz target for controller/observe: arbitrary bytes as JSON, given to
 * every store projection and to the QuotaLease reader, as one object and,
 * when it is a List, item by item. A projection either refuses (out
 * untouched) or returns a struct whose invariants hold (names set, GPUs
 * and quotas never negative); a QuotaLease that reads back builds an
 * object that reads back the same; a status patch over any current status
 * is JSON with at most the CRD's 32 transitions. Nothing may leak either
 * way (the replay counts allocations).
 */
#include <stdint.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "controller/observe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define GPU "nvidia.com/gpu"

static void check_workload(const cJSON *obj)
{
    void *p = (void *)&p;
    if (gf_obs_workload_project((void *)GPU, obj, &p) != 0) {
        GF_BUG_ON(p != (void *)&p);
        return;
    }
    const struct gf_obs_workload *w = p;
    GF_BUG_ON(w->ns == NULL || w->name == NULL || w->gpus < 0);
    GF_BUG_ON(w->pending_since_ms < w->created_ms);
    struct gf_workload lw;
    gf_obs_workload_to_ledger(w, "east", "q", &lw);
    GF_BUG_ON(lw.kind == NULL);
    GF_BUG_ON(lw.flavor != NULL && lw.state != GF_WL_ADMITTED &&
              lw.state != GF_WL_RESERVED);
    gf_obs_workload_free(p);
}

static void check_cq(const cJSON *obj)
{
    void *p = NULL;
    if (gf_obs_cq_project(NULL, obj, &p) != 0) {
        GF_BUG_ON(p != NULL);
        return;
    }
    const struct gf_obs_cq *cq = p;
    GF_BUG_ON(cq->name == NULL || cq->n_quotas > GF_OBS_MAX_QUOTAS);
    for (size_t i = 0; i < cq->n_quotas; i++) {
        const struct gf_cq_quota *q = &cq->quotas[i];
        GF_BUG_ON(q->flavor == NULL || q->resource == NULL || q->nominal < 0);
        GF_BUG_ON(q->lending_limit < GF_NO_LIMIT ||
                  q->borrowing_limit < GF_NO_LIMIT);
    }
    gf_obs_cq_free(p);
}

static void check_others(const cJSON *obj)
{
    void *p = NULL;
    if (gf_obs_lq_project(NULL, obj, &p) == 0) {
        GF_BUG_ON(((struct gf_obs_lq *)p)->name == NULL);
        gf_obs_lq_free(p);
    }
    p = NULL;
    if (gf_obs_job_project(NULL, obj, &p) == 0) {
        const struct gf_obs_job *j = p;
        GF_BUG_ON(j->name == NULL || j->ns == NULL);
        GF_BUG_ON(j->finished_ms != 0 && !j->complete && !j->failed);
        gf_obs_job_free(p);
    }
    p = NULL;
    if (gf_obs_ns_project(NULL, obj, &p) == 0)
        gf_obs_ns_free(p);
}

/* Kubernetes keeps seconds; a time read with a fraction comes back cut. */
static bool same_second(int64_t a, int64_t b)
{
    return a / 1000 == b / 1000 || (a < 0 && b < 0);
}

static void check_lease(const cJSON *obj)
{
    struct gf_lease l, back;
    char why[128];
    if (gf_obs_lease_from_json(obj, &l, why, sizeof(why)) != 0) {
        GF_BUG_ON(why[0] == '\0' || l.name != NULL);
        return;
    }
    GF_BUG_ON(l.gpus < 1 || l.epoch < 1 || l.name == NULL);
    cJSON *o = gf_obs_lease_to_json(&l, "gpufed-system", GPU);
    GF_BUG_ON(gf_obs_lease_from_json(o, &back, why, sizeof(why)) != 0);
    GF_BUG_ON(strcmp(l.name, back.name) != 0 || l.gpus != back.gpus ||
              l.epoch != back.epoch || l.phase != back.phase ||
              l.mode != back.mode || l.priority != back.priority ||
              strcmp(l.origin_uid, back.origin_uid) != 0 ||
              strcmp(l.lender_flavor, back.lender_flavor) != 0);
    GF_BUG_ON(!same_second(l.expires_ms, back.expires_ms));
    gf_lease_clear(&back);
    cJSON_Delete(o);
    gf_lease_clear(&l);
}

static void check_status_patch(const cJSON *obj)
{
    const cJSON *st = cJSON_IsObject(obj)
                          ? cJSON_GetObjectItemCaseSensitive(obj, "status")
                          : NULL;
    char *s = gf_obs_lease_status_patch(st, "Active", "CopyAdmitted", NULL, 3,
                                        1796526000000, 1796526000000, 0, 0, 0);
    cJSON *p = cJSON_Parse(s);
    GF_BUG_ON(p == NULL);
    const cJSON *tr = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(p, "status"), "transitions");
    int n = cJSON_GetArraySize(tr);
    GF_BUG_ON(n < 1 || n > GF_OBS_MAX_TRANSITIONS);
    cJSON_Delete(p);
    cJSON_free(s);
}

static void check_all(const cJSON *obj)
{
    check_workload(obj);
    check_cq(obj);
    check_others(obj);
    check_lease(obj);
    check_status_patch(obj);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t live = gf_alloc_live();
    cJSON *root = cJSON_ParseWithLength((const char *)data, size);
    if (root != NULL) {
        check_all(root);
        const cJSON *it;
        const cJSON *items =
            cJSON_IsObject(root)
                ? cJSON_GetObjectItemCaseSensitive(root, "items")
                : NULL;
        const cJSON *arr = cJSON_IsArray(items) ? items : NULL;
        cJSON_ArrayForEach(it, arr)
        {
            check_all(it);
        }
        cJSON_Delete(root);
    }
    GF_BUG_ON(gf_alloc_live() != live);
    return 0;
}
