/*
 * kueue: Kueue-lite's controller (see kueue.h): store events in, one
 * reconcile per loop turn, store writes out.
 *
 * A reconcile runs these steps, each a walk of the Workloads it may act
 * on (the live index: not the finished or deactivated ones, which a
 * cluster holds by the thousand), so a change costs what it touches; each
 * JSON write is made only when the stored object differs from what Kueue
 * would write:
 *   1. Workloads for new Jobs with the queue-name label;
 *   2. Finished for Workloads whose Job completed or failed;
 *   3. eviction of deactivated Workloads and of those in queues stopped
 *      with HoldAndDrain;
 *   4. the usage of every ClusterQueue, from the admitted Workloads;
 *   5. admission in scheduling cycles: the heads of every ClusterQueue,
 *      those that fit nominal quota first, then priority and FIFO, with
 *      preemption;
 *   6. the Jobs' spec.suspend (and flavor nodeLabels in their
 *      nodeSelector), from their Workloads' admission;
 *   7. ClusterQueue and LocalQueue status.
 * Writes made by the reconcile are delivered back to the observer at
 * once (they are not made from a store callback), which updates the
 * index entries in place; entries are only freed outside a reconcile.
 */
#include "e2e/kubesim/kueue.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/json.h"
#include "common/log.h"
#include "e2e/kubesim/kueue_index.h"
#include "e2e/kubesim/kueue_internal.h"

#define KQ_GROUP "kueue.x-k8s.io"
#define KQ_QUEUE_LABEL "kueue.x-k8s.io/queue-name"
#define KQ_PRIO_LABEL "kueue.x-k8s.io/priority-class"
#define KQ_JOB_UID_LABEL "kueue.x-k8s.io/job-uid"
/* How often a frozen Kueue looks again (cluster time). */
#define KQ_FROZEN_RETRY_MS 100

struct gf_ks_kueue {
    struct gf_ks_store *st;
    struct gf_clock *clk;
    struct gf_ks_faults *faults;
    char *cluster;
    struct gf_log_ctx lc;
    struct gf_ks_observer *obs;
    struct gf_ks_mutator *webhook; /* the Job webhook, on create */
    struct gf_timer timer;
    bool dirty, in_reconcile;
    struct gf_htab cqs, lqs, wls, jobs, flavors, cohorts;
    /*
     * The indexes that make a reconcile cost what it touches rather than
     * every Workload of the cluster (a cluster holds thousands of
     * finished or deactivated ones that no step acts on):
     *   live: key -> Workload, every Workload some step may act on
     *         (wl_idle() says which may not); keys borrowed from the
     *         Workload;
     *   by_job: Job key -> struct kq_owned, the Workloads that name the
     *         Job as owner, so a Job's change refreshes theirs;
     *   need_wl: Job key -> Job, the Jobs whose Workload is to be made.
     */
    struct gf_htab live, by_job, need_wl;
    struct gf_kq_wl **grave; /* deleted during a reconcile, freed after */
    size_t n_grave;
    struct gf_ks_kueue_stats stats;
    /* Types, looked up at the start of each reconcile. */
    const struct gf_ks_rtype *t_wl, *t_cq, *t_lq, *t_job;
};

static void schedule(struct gf_ks_kueue *k);

/* ---- helpers ------------------------------------------------------------ */

static char *key_of(const char *ns, const char *name)
{
    size_t len = strlen(ns) + strlen(name) + 2;
    char *k = gf_malloc(len);
    snprintf(k, len, "%s/%s", ns, name);
    return k;
}

static void now_str(const struct gf_ks_kueue *k, char out[32])
{
    gf_time_rfc3339(gf_clock_wall_ms(k->clk), out);
}

/*
 * Sets condition type in conds (an array) as Kueue's SetStatusCondition
 * does: lastTransitionTime changes only when status does.
 */
static void cond_set(const struct gf_ks_kueue *k, cJSON *conds,
                     const char *type, bool status, const char *reason,
                     const char *msg, int64_t gen)
{
    char ts[32];
    now_str(k, ts);
    const char *st = status ? "True" : "False";
    cJSON *c = gf_json_cond_ensure(conds, type);
    const char *old = gf_json_str(c, "status");
    if (old == NULL || strcmp(old, st) != 0 ||
        gf_json_str(c, "lastTransitionTime") == NULL)
        gf_json_set_str(c, "lastTransitionTime", ts);
    gf_json_set_str(c, "status", st);
    gf_json_set_str(c, "reason", reason);
    gf_json_set_str(c, "message", msg);
    cJSON_DeleteItemFromObjectCaseSensitive(c, "observedGeneration");
    if (gen > 0)
        cJSON_AddNumberToObject(c, "observedGeneration", (double)gen);
}

/*
 * Returned-owned copy of the stored object's status.conditions (an empty
 * array when none) and its generation; NULL when the object is gone.
 */
static cJSON *stored_conds(struct gf_ks_kueue *k, const struct gf_ks_rtype *t,
                           const char *ns, const char *name, int64_t *gen)
{
    struct gf_ks_obj *o = gf_ks_store_get(k->st, t, ns, name);
    if (o == NULL)
        return NULL;
    cJSON *obj = gf_ks_obj_parse(o);
    const cJSON *conds = gf_json_path(obj, "status.conditions");
    cJSON *out = cJSON_IsArray(conds) ? cJSON_Duplicate(conds, true)
                                      : cJSON_CreateArray();
    *gen = 0;
    gf_json_int(obj, "metadata.generation", gen);
    cJSON_Delete(obj);
    return out;
}

static int patch_status(struct gf_ks_kueue *k, const struct gf_ks_rtype *t,
                        const char *ns, const char *name, const cJSON *status)
{
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    uint64_t rv = gf_ks_store_rv(k->st);
    int rc = gf_ks_store_patch_status(k->st, t, ns, name, status, NULL, &err);
    if (rc != 0 && rc != GF_ENOTFOUND)
        GF_LOG(&k->lc, GF_LOG_WARN, "status write failed",
               "kind=%s key=%s/%s "
               "error=%s",
               t->kind, ns, name, err.message);
    if (gf_ks_store_rv(k->st) != rv)
        k->stats.writes++;
    gf_ks_status_clear(&err);
    return rc;
}

/* ---- Workload writes ---------------------------------------------------- */

/*
 * Writes a Workload's status and frees it. ns and name are copied first:
 * the write runs the store's observers, which may free wl. key (when not
 * NULL) gets "ns/name" for the caller's log line.
 */
static void write_wl_status(struct gf_ks_kueue *k, const struct gf_kq_wl *wl,
                            cJSON *status, char *key, size_t cap)
{
    if (key != NULL)
        snprintf(key, cap, "%s/%s", wl->ns, wl->name);
    char *ns = gf_strdup(wl->ns), *name = gf_strdup(wl->name);
    patch_status(k, k->t_wl, ns, name, status);
    gf_free(ns);
    gf_free(name);
    cJSON_Delete(status);
}

/* Clears a True condition to False "QuotaReserved", "Previously: ...". */
static void cond_previously(const struct gf_ks_kueue *k, cJSON *conds,
                            const char *type, int64_t gen)
{
    const cJSON *c = gf_json_cond(conds, type);
    const char *st = gf_json_str(c, "status");
    if (st == NULL || strcmp(st, "True") != 0)
        return;
    const char *msg = gf_json_str(c, "message");
    char buf[600];
    snprintf(buf, sizeof(buf), "Previously: %s", msg != NULL ? msg : "");
    cond_set(k, conds, type, false, "QuotaReserved", buf, gen);
}

static cJSON *admission_json(const struct gf_kq_wl *wl,
                             const struct gf_kq_cq *cq,
                             const struct gf_kq_assign *a)
{
    cJSON *adm = cJSON_CreateObject();
    cJSON_AddStringToObject(adm, "clusterQueue", cq->name);
    cJSON *psas = cJSON_AddArrayToObject(adm, "podSetAssignments");
    for (size_t p = 0; p < wl->n_ps; p++) {
        const struct gf_kq_podset *ps = &wl->ps[p];
        cJSON *psa = cJSON_CreateObject();
        cJSON_AddItemToArray(psas, psa);
        cJSON_AddStringToObject(psa, "name", ps->name);
        cJSON *fl = cJSON_AddObjectToObject(psa, "flavors");
        cJSON *ru = cJSON_AddObjectToObject(psa, "resourceUsage");
        /* Flavors per pod set; a pod set of count 0 gets its flavor and a
         * usage of 0, as Kueue records it. */
        for (size_t r = 0; r < ps->n_req; r++) {
            int g = gf__kq_group_idx(cq, ps->req[r].res);
            const char *f = g >= 0 && ps->req[r].milli > 0
                                ? a->psfl[p * a->n_groups + (size_t)g]
                                : NULL;
            if (f == NULL)
                continue;
            cJSON_AddStringToObject(fl, ps->req[r].res, f);
            char q[32];
            gf__kq_qty(ps->req[r].res, ps->count * ps->req[r].milli, q);
            cJSON_AddStringToObject(ru, ps->req[r].res, q);
        }
        cJSON_AddNumberToObject(psa, "count", (double)ps->count);
    }
    return adm;
}

/* Reserves quota for wl in cq: QuotaReserved and Admitted. */
static void admit(struct gf_ks_kueue *k, struct gf_kq_wl *wl,
                  const struct gf_kq_cq *cq, const struct gf_kq_assign *a)
{
    int64_t gen;
    cJSON *conds = stored_conds(k, k->t_wl, wl->ns, wl->name, &gen);
    if (conds == NULL)
        return;
    char msg[600];
    snprintf(msg, sizeof(msg), "Quota reserved in ClusterQueue %s", cq->name);
    cond_set(k, conds, "QuotaReserved", true, "QuotaReserved", msg, gen);
    cond_set(k, conds, "Admitted", true, "Admitted", "The workload is admitted",
             gen);
    cond_previously(k, conds, "Evicted", gen);
    cond_previously(k, conds, "Preempted", gen);
    cJSON *status = cJSON_CreateObject();
    cJSON_AddItemToObject(status, "admission", admission_json(wl, cq, a));
    cJSON_AddItemToObject(status, "conditions", conds);
    char key[512];
    write_wl_status(k, wl, status, key, sizeof(key));
    GF_LOG(&k->lc, GF_LOG_DEBUG, "admitted", "key=%s cq=%s", key, cq->name);
    k->stats.admitted++;
}

/* Why a Workload is evicted: the reasons Kueue writes. */
struct evict_why {
    const char *reason;    /* Evicted: Preempted, Deactivated, ... */
    const char *preempted; /* Preempted reason, NULL when not preempted */
    char msg[512];
    bool requeue; /* Requeued True (back in the queue) or False */
    /* Release the quota now, whatever the Job's pods: a preemption, whose
     * preemptor is admitted in the same cycle (see evict). */
    bool at_once;
};

static const struct gf_kq_job *job_of(const struct gf_ks_kueue *k,
                                      const struct gf_kq_wl *wl);

/* The Job of wl still has pods that have not stopped (status.active). */
static bool pods_active(const struct gf_ks_kueue *k, const struct gf_kq_wl *wl)
{
    const struct gf_kq_job *j = job_of(k, wl);
    return j != NULL && j->active > 0;
}

/*
 * Evicts wl in Kueue's two steps: Evicted first, which suspends its Job
 * (step_suspend), and only once the Job has no active pods is the quota
 * reservation cleared (Kueue's job reconciler, "handle eviction": the
 * admission is cleared when the job is no longer active). Until then the
 * quota stays reserved and counted in the ClusterQueue's usage: a
 * controller that waits for the usage to drop (gpufed's loan release, its
 * reclaim) must not see it drop while the pods still run. A pod-less
 * Workload, or a Job whose pods are gone, is released at once. Preemption
 * victims are released at once too (at_once): Kueue-lite admits the
 * preemptor in the same cycle, where Kueue waits for the victims.
 */
static void evict(struct gf_ks_kueue *k, struct gf_kq_wl *wl,
                  const struct evict_why *why)
{
    bool had = wl->adm_cq != NULL;
    bool wait = had && !why->at_once && pods_active(k, wl);
    if (wait && wl->evicted)
        return; /* evicted already; released when the pods are gone */
    int64_t gen;
    cJSON *conds = stored_conds(k, k->t_wl, wl->ns, wl->name, &gen);
    if (conds == NULL)
        return;
    cond_set(k, conds, "Evicted", true, why->reason, why->msg, gen);
    if (why->preempted != NULL)
        cond_set(k, conds, "Preempted", true, why->preempted, why->msg, gen);
    if (wait) {
        cJSON *st = cJSON_CreateObject();
        cJSON_AddItemToObject(st, "conditions", conds);
        char key[512];
        write_wl_status(k, wl, st, key, sizeof(key));
        GF_LOG(&k->lc, GF_LOG_INFO, "evicting", "key=%s reason=%s", key,
               why->reason);
        return;
    }
    if (had || gf_json_cond(conds, "QuotaReserved") != NULL)
        cond_set(k, conds, "QuotaReserved", false, "Pending", why->msg, gen);
    if (had || gf_json_cond(conds, "Admitted") != NULL)
        cond_set(k, conds, "Admitted", false, "NoReservation",
                 "The workload has no reservation", gen);
    cond_set(k, conds, "Requeued", why->requeue, why->reason, why->msg, gen);
    cJSON *status = cJSON_CreateObject();
    cJSON_AddNullToObject(status, "admission");
    cJSON_AddItemToObject(status, "conditions", conds);
    char key[512];
    write_wl_status(k, wl, status, key, sizeof(key));
    GF_LOG(&k->lc, GF_LOG_INFO, "evicted", "key=%s reason=%s", key,
           why->reason);
    if (had)
        k->stats.evicted++;
}

/* QuotaReserved False with why it is pending, written only on change. */
static void set_pending(struct gf_ks_kueue *k, struct gf_kq_wl *wl,
                        const char *reason, const char *msg)
{
    if (!wl->qr_true && wl->qr_reason != NULL && wl->qr_msg != NULL &&
        strcmp(wl->qr_reason, reason) == 0 && strcmp(wl->qr_msg, msg) == 0)
        return;
    int64_t gen;
    cJSON *conds = stored_conds(k, k->t_wl, wl->ns, wl->name, &gen);
    if (conds == NULL)
        return;
    cond_set(k, conds, "QuotaReserved", false, reason, msg, gen);
    cJSON *status = cJSON_CreateObject();
    cJSON_AddItemToObject(status, "conditions", conds);
    write_wl_status(k, wl, status, NULL, 0);
}

static void finish(struct gf_ks_kueue *k, struct gf_kq_wl *wl,
                   const struct gf_kq_job *j)
{
    int64_t gen;
    cJSON *conds = stored_conds(k, k->t_wl, wl->ns, wl->name, &gen);
    if (conds == NULL)
        return;
    if (j->done == 1)
        cond_set(k, conds, "Finished", true, "Succeeded",
                 "Job finished successfully", gen);
    else
        cond_set(k, conds, "Finished", true, "Failed",
                 j->fail_msg != NULL ? j->fail_msg : "Job failed", gen);
    cJSON *status = cJSON_CreateObject();
    cJSON_AddItemToObject(status, "conditions", conds);
    write_wl_status(k, wl, status, NULL, 0);
}

/* Requeued True after a deactivated Workload is made active again. */
static void reactivate(struct gf_ks_kueue *k, struct gf_kq_wl *wl)
{
    int64_t gen;
    cJSON *conds = stored_conds(k, k->t_wl, wl->ns, wl->name, &gen);
    if (conds == NULL)
        return;
    cond_set(k, conds, "Requeued", true, "Reactivated",
             "The workload was reactivated", gen);
    cJSON *status = cJSON_CreateObject();
    cJSON_AddItemToObject(status, "conditions", conds);
    write_wl_status(k, wl, status, NULL, 0);
}

/* ---- Workloads for Jobs ------------------------------------------------- */

/* Kueue's Workload name for a Job: job-<name>-<5 hex of the uid>. */
static void wl_name_for(const char *job, const char *uid, char out[254])
{
    uint32_t h = 2166136261u;
    for (const char *p = uid; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    snprintf(out, 254, "job-%.240s-%05x", job, h & 0xfffffu);
}

/* The priority class a Job names, and its value; false when none. */
static bool job_priority(struct gf_ks_kueue *k, const cJSON *job, cJSON *spec)
{
    const char *wpc = gf_json_label(job, KQ_PRIO_LABEL);
    const char *pc = gf_json_str(job, "spec.template.spec.priorityClassName");
    const char *group = wpc != NULL ? KQ_GROUP : "scheduling.k8s.io";
    const char *res =
        wpc != NULL ? "workloadpriorityclasses" : "priorityclasses";
    const char *name = wpc != NULL ? wpc : pc;
    if (name == NULL)
        return false;
    const struct gf_ks_rtype *t = gf_ks_store_type(k->st, group, res);
    struct gf_ks_obj *o =
        t != NULL ? gf_ks_store_get(k->st, t, "", name) : NULL;
    if (o == NULL)
        return false;
    cJSON *pobj = gf_ks_obj_parse(o);
    int64_t v = 0;
    gf_json_int(pobj, "value", &v);
    cJSON_Delete(pobj);
    cJSON *ref = cJSON_AddObjectToObject(spec, "priorityClassRef");
    cJSON_AddStringToObject(ref, "group", group);
    cJSON_AddStringToObject(
        ref, "kind", wpc != NULL ? "WorkloadPriorityClass" : "PriorityClass");
    cJSON_AddStringToObject(ref, "name", name);
    cJSON_AddNumberToObject(spec, "priority", (double)v);
    return true;
}

static cJSON *workload_for(struct gf_ks_kueue *k, const cJSON *job,
                           const char *wl_name)
{
    const char *uid = gf_json_str(job, "metadata.uid");
    cJSON *wl = cJSON_CreateObject();
    cJSON_AddStringToObject(wl, "apiVersion", KQ_GROUP "/v1beta2");
    cJSON_AddStringToObject(wl, "kind", "Workload");
    cJSON *md = cJSON_AddObjectToObject(wl, "metadata");
    cJSON_AddStringToObject(md, "name", wl_name);
    cJSON *labels = cJSON_AddObjectToObject(md, "labels");
    cJSON_AddStringToObject(labels, KQ_JOB_UID_LABEL, uid);
    cJSON *ors = cJSON_AddArrayToObject(md, "ownerReferences");
    cJSON * or = cJSON_CreateObject();
    cJSON_AddItemToArray(ors, or);
    cJSON_AddStringToObject(or, "apiVersion", "batch/v1");
    cJSON_AddStringToObject(or, "kind", "Job");
    cJSON_AddStringToObject(or, "name", gf_json_str(job, "metadata.name"));
    cJSON_AddStringToObject(or, "uid", uid);
    cJSON_AddTrueToObject(or, "controller");
    cJSON_AddTrueToObject(or, "blockOwnerDeletion");
    cJSON *spec = cJSON_AddObjectToObject(wl, "spec");
    cJSON_AddTrueToObject(spec, "active");
    cJSON_AddStringToObject(spec, "queueName",
                            gf_json_label(job, KQ_QUEUE_LABEL));
    if (!job_priority(k, job, spec))
        cJSON_AddNumberToObject(spec, "priority", 0);
    cJSON *pss = cJSON_AddArrayToObject(spec, "podSets");
    cJSON *ps = cJSON_CreateObject();
    cJSON_AddItemToArray(pss, ps);
    cJSON_AddStringToObject(ps, "name", "main");
    /* Kueue's count: min(parallelism, completions), parallelism 1 by
     * default (the Job API's default) and no completions bound when
     * unset. */
    int64_t par = 1, comp = -1;
    gf_json_int(job, "spec.parallelism", &par);
    if (gf_json_int(job, "spec.completions", &comp) == 0 && comp < par)
        par = comp;
    cJSON_AddNumberToObject(ps, "count", (double)(par < 0 ? 0 : par));
    const cJSON *tmpl = gf_json_path(job, "spec.template");
    cJSON_AddItemToObject(ps, "template",
                          tmpl != NULL ? cJSON_Duplicate(tmpl, true)
                                       : cJSON_CreateObject());
    return wl;
}

/* Creates the Workload of a Job if it does not exist yet. */
static void ensure_workload(struct gf_ks_kueue *k, const char *job_key)
{
    const char *slash = strchr(job_key, '/');
    char ns[254];
    snprintf(ns, sizeof(ns), "%.*s", (int)(slash - job_key), job_key);
    struct gf_ks_obj *o = gf_ks_store_get(k->st, k->t_job, ns, slash + 1);
    if (o == NULL || k->t_wl == NULL)
        return;
    cJSON *job = gf_ks_obj_parse(o);
    const char *uid = gf_json_str(job, "metadata.uid");
    char name[254];
    wl_name_for(slash + 1, uid != NULL ? uid : "", name);
    if (gf_ks_store_get(k->st, k->t_wl, ns, name) == NULL) {
        cJSON *wl = workload_for(k, job, name);
        struct gf_ks_status err;
        gf_ks_status_init(&err);
        if (gf_ks_store_create(k->st, k->t_wl, ns, wl, GF_KS_MAIN, NULL,
                               &err) == 0)
            k->stats.writes++;
        else
            GF_LOG(&k->lc, GF_LOG_WARN, "workload create failed",
                   "key=%s/%s error=%s", ns, name, err.message);
        gf_ks_status_clear(&err);
        cJSON_Delete(wl);
    }
    cJSON_Delete(job);
}

/*
 * The Job's template nodeSelector as Kueue's job integration sets it:
 * when the Job starts, the Workload's own nodeSelector plus the nodeLabels
 * of the flavors it was admitted with (resource_flavor.md: Kueue adds
 * them "to the nodeSelector of the underlying Workload's Pod templates");
 * when it is suspended again, the original one back (keys that were
 * injected are removed with null, as a merge patch does).
 */
static cJSON *node_selector_patch(const struct gf_ks_kueue *k,
                                  const struct gf_kq_wl *wl, bool run,
                                  const cJSON *job)
{
    const cJSON *orig = wl->n_ps > 0 ? wl->ps[0].node_sel : NULL;
    cJSON *sel = cJSON_CreateObject();
    const cJSON *it;
    cJSON_ArrayForEach(it, gf_json_path(job, "spec.template.spec.nodeSelector"))
    {
        if (cJSON_GetObjectItemCaseSensitive(orig, it->string) == NULL)
            cJSON_AddNullToObject(sel, it->string);
    }
    for (size_t u = 0; run && u < wl->n_uses; u++) {
        const cJSON *labels = gf_htab_get_str(&k->flavors, wl->uses[u].flavor);
        cJSON_ArrayForEach(it, labels)
        {
            cJSON_DeleteItemFromObjectCaseSensitive(sel, it->string);
            cJSON_AddItemToObject(sel, it->string, cJSON_Duplicate(it, true));
        }
    }
    cJSON_ArrayForEach(it, orig)
    {
        if (cJSON_GetObjectItemCaseSensitive(sel, it->string) != NULL &&
            !cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(sel, it->string)))
            continue;
        cJSON_DeleteItemFromObjectCaseSensitive(sel, it->string);
        cJSON_AddItemToObject(sel, it->string, cJSON_Duplicate(it, true));
    }
    return sel;
}

static void patch_suspend(struct gf_ks_kueue *k, const struct gf_kq_wl *wl,
                          bool suspend)
{
    const char *slash = strchr(wl->job_key, '/');
    char ns[254];
    snprintf(ns, sizeof(ns), "%.*s", (int)(slash - wl->job_key), wl->job_key);
    struct gf_ks_obj *o = gf_ks_store_get(k->st, k->t_job, ns, slash + 1);
    if (o == NULL)
        return;
    cJSON *job = gf_ks_obj_parse(o);
    cJSON *body = cJSON_CreateObject();
    cJSON *spec = cJSON_AddObjectToObject(body, "spec");
    cJSON_AddBoolToObject(spec, "suspend", suspend);
    cJSON *sel = node_selector_patch(k, wl, !suspend, job);
    if (cJSON_GetArraySize(sel) > 0) {
        cJSON *tspec = cJSON_AddObjectToObject(
            cJSON_AddObjectToObject(spec, "template"), "spec");
        cJSON_AddItemToObject(tspec, "nodeSelector", sel);
    } else {
        cJSON_Delete(sel);
    }
    char *text = cJSON_PrintUnformatted(body);
    int rc =
        gf_ks_store_patch(k->st, k->t_job, ns, slash + 1, GF_KS_PATCH_MERGE,
                          text, strlen(text), GF_KS_MAIN, NULL, NULL);
    if (rc == 0)
        k->stats.writes++;
    cJSON_free(text);
    cJSON_Delete(body);
    cJSON_Delete(job);
}

/* ---- reconcile steps ---------------------------------------------------- */

struct job_ref {
    uint64_t seq;
    char *key;
};

static int job_ref_cmp(const void *pa, const void *pb)
{
    const struct job_ref *a = pa, *b = pb;
    return a->seq < b->seq ? -1 : (a->seq > b->seq ? 1 : 0);
}

/*
 * Creates the missing Workloads in the order their Jobs were created, as
 * Kueue does from its event stream: the FIFO tie-break between Workloads
 * created in the same millisecond must not depend on the map's order.
 */
static void step_jobs(struct gf_ks_kueue *k)
{
    struct job_ref *v = NULL;
    size_t n = 0, cap = 0, pos = 0;
    const char *key;
    void *p;
    while (gf_htab_scan(&k->need_wl, &pos, &key, &p)) {
        const struct gf_kq_job *j = p;
        if (n == cap) {
            cap = cap == 0 ? 16 : cap * 2;
            v = gf_realloc(v, cap * sizeof(*v));
        }
        v[n].seq = j->seq;
        v[n++].key = gf_strdup(key);
    }
    if (n > 1)
        qsort(v, n, sizeof(*v), job_ref_cmp);
    /* Creating a Workload runs the observers, which may change the Job
     * map: each Job is looked up again. */
    for (size_t i = 0; i < n; i++) {
        struct gf_kq_job *j = gf_htab_get_str(&k->jobs, v[i].key);
        gf_htab_del_str(&k->need_wl, v[i].key);
        if (j != NULL && j->need_wl) {
            j->need_wl = false;
            ensure_workload(k, v[i].key);
        }
        gf_free(v[i].key);
    }
    gf_free(v);
}

/* The Job of a Workload, if it is the one the Workload belongs to. */
static const struct gf_kq_job *job_of(const struct gf_ks_kueue *k,
                                      const struct gf_kq_wl *wl)
{
    if (wl->job_key == NULL)
        return NULL;
    struct gf_kq_job *j = gf_htab_get_str(&k->jobs, wl->job_key);
    if (j == NULL || j->uid == NULL || wl->job_uid == NULL ||
        strcmp(j->uid, wl->job_uid) != 0)
        return NULL;
    return j;
}

/* ---- the indexes ----------------------------------------------------------
 */

/* The Workloads that name one Job as owner (one, unless someone made more). */
struct kq_owned {
    struct gf_kq_wl **v;
    size_t n;
};

/*
 * Whether no reconcile step can act on wl, whatever the queues, the quota
 * and the namespaces say: it finished (and its Job, if any, ended or is
 * suspended), or it was deactivated and evicted and holds no quota (and
 * its Job, if any, is suspended and has not ended). Every step's own test
 * fails for such a Workload: nothing to finish, evict, reactivate, count,
 * admit, preempt or suspend. A cluster holds thousands of them (finished
 * Jobs' Workloads, deactivated ones), which is why the steps walk only
 * the others.
 */
static bool wl_idle(const struct gf_ks_kueue *k, const struct gf_kq_wl *wl)
{
    const struct gf_kq_job *j = job_of(k, wl);
    if (wl->finished)
        return j == NULL || j->done != 0 || j->suspended;
    return wl->adm_cq == NULL && !wl->active && wl->deactivated_requeue &&
           (j == NULL || (j->done == 0 && j->suspended));
}

/* Puts wl in the live index or takes it out, after it or its Job changed. */
static void live_refresh(struct gf_ks_kueue *k, struct gf_kq_wl *wl)
{
    if (!wl_idle(k, wl)) {
        gf_htab_put_str(&k->live, wl->key, wl);
        return;
    }
    /* Only a Workload holding quota can be a victim; step_usage clears
     * the flag on live ones only, so one leaving leaves it clear. */
    if (gf_htab_del_str(&k->live, wl->key) != NULL)
        wl->victim = false;
}

static void by_job_add(struct gf_ks_kueue *k, struct gf_kq_wl *wl)
{
    if (wl->job_key == NULL)
        return;
    struct kq_owned *o = gf_htab_get_str(&k->by_job, wl->job_key);
    if (o == NULL) {
        o = gf_calloc(1, sizeof(*o));
        gf_htab_put_str(&k->by_job, wl->job_key, o);
    }
    o->v = gf_realloc(o->v, (o->n + 1) * sizeof(*o->v));
    o->v[o->n++] = wl;
}

static void owned_free(void *v)
{
    struct kq_owned *o = v;
    if (o != NULL)
        gf_free(o->v);
    gf_free(o);
}

static void by_job_remove(struct gf_ks_kueue *k, const struct gf_kq_wl *wl)
{
    if (wl->job_key == NULL)
        return;
    struct kq_owned *o = gf_htab_get_str(&k->by_job, wl->job_key);
    for (size_t i = 0; o != NULL && i < o->n; i++)
        if (o->v[i] == wl) {
            o->v[i] = o->v[--o->n];
            break;
        }
    if (o != NULL && o->n == 0)
        owned_free(gf_htab_del_str(&k->by_job, wl->job_key));
}

/* After a Job changed: its Workloads' place in the live index. */
static void job_changed(struct gf_ks_kueue *k, const char *job_key)
{
    struct kq_owned *o = gf_htab_get_str(&k->by_job, job_key);
    for (size_t i = 0; o != NULL && i < o->n; i++)
        live_refresh(k, o->v[i]);
}

/*
 * A copy of the live Workloads for a step to walk: the step's own writes
 * come back through on_wl at once and update the index meanwhile (a
 * gf_htab may not grow while iterated). Free with gf_free.
 */
static struct gf_kq_wl **live_snapshot(struct gf_ks_kueue *k, size_t *n)
{
    k->stats.walked += k->live.len;
    struct gf_kq_wl **v = gf_calloc(k->live.len + 1, sizeof(*v));
    size_t i = 0, pos = 0;
    void *p;
    while (gf_htab_scan(&k->live, &pos, NULL, &p))
        v[i++] = p;
    *n = i;
    return v;
}

static struct gf_kq_cq *cq_of_queue(const struct gf_ks_kueue *k,
                                    const struct gf_kq_wl *wl,
                                    struct gf_kq_lq **lq_out)
{
    if (wl->queue == NULL)
        return NULL;
    char key[600];
    snprintf(key, sizeof(key), "%s/%s", wl->ns, wl->queue);
    struct gf_kq_lq *lq = gf_htab_get_str(&k->lqs, key);
    if (lq_out != NULL)
        *lq_out = lq;
    return lq != NULL && lq->cq != NULL ? gf_htab_get_str(&k->cqs, lq->cq)
                                        : NULL;
}

/* Whether the Workload's queue is stopped with HoldAndDrain. */
static const char *drained(const struct gf_ks_kueue *k,
                           const struct gf_kq_wl *wl)
{
    struct gf_kq_cq *cq = gf_htab_get_str(&k->cqs, wl->adm_cq);
    if (cq != NULL && cq->stop == GF_KQ_HOLD_AND_DRAIN)
        return "ClusterQueueStopped";
    struct gf_kq_lq *lq = NULL;
    cq_of_queue(k, wl, &lq);
    if (lq != NULL && lq->stop == GF_KQ_HOLD_AND_DRAIN)
        return "LocalQueueStopped";
    return NULL;
}

static void step_finish_and_evict(struct gf_ks_kueue *k)
{
    size_t n;
    struct gf_kq_wl **v = live_snapshot(k, &n);
    for (size_t i = 0; i < n; i++) {
        struct gf_kq_wl *wl = v[i];
        if (wl->dead)
            continue;
        const struct gf_kq_job *j = job_of(k, wl);
        if (j != NULL && j->done != 0 && !wl->finished) {
            finish(k, wl, j);
            continue;
        }
        if (wl->finished)
            continue;
        struct evict_why why = {.requeue = false};
        const char *stopped = wl->adm_cq != NULL ? drained(k, wl) : NULL;
        if (!wl->active && !wl->deactivated_requeue) {
            why.reason = "Deactivated";
            snprintf(why.msg, sizeof(why.msg), "The workload is deactivated");
            evict(k, wl, &why);
        } else if (wl->active && wl->deactivated_requeue) {
            reactivate(k, wl);
        } else if (stopped != NULL) {
            why.reason = stopped;
            snprintf(why.msg, sizeof(why.msg), "The %s is stopped",
                     stopped[0] == 'C' ? "ClusterQueue" : "LocalQueue");
            why.requeue = true;
            evict(k, wl, &why);
        } else if (wl->evicted && wl->adm_cq != NULL) {
            /* Evicted, then reactivated or its queue resumed before its
             * pods stopped: the reservation still goes when they have. */
            why.reason = wl->ev_reason != NULL ? wl->ev_reason : "Evicted";
            snprintf(why.msg, sizeof(why.msg), "The workload was evicted");
            why.requeue = true;
            evict(k, wl, &why);
        }
    }
    gf_free(v);
}

static void step_usage(struct gf_ks_kueue *k)
{
    size_t pos = 0;
    void *v;
    while (gf_htab_scan(&k->cqs, &pos, NULL, &v)) {
        struct gf_kq_cq *cq = v;
        cq->blocked = false;
        for (size_t g = 0; g < cq->n_groups; g++)
            for (size_t f = 0; f < cq->groups[g].n_fl; f++)
                for (size_t r = 0; r < cq->groups[g].n_res; r++)
                    cq->groups[g].fl[f].cells[r].usage = 0;
    }
    struct gf_kq_world w = {&k->cqs, &k->live, &k->flavors, &k->cohorts};
    k->stats.walked += k->live.len;
    pos = 0;
    while (gf_htab_scan(&k->live, &pos, NULL, &v)) {
        struct gf_kq_wl *wl = v;
        wl->victim = false;
        if (wl->adm_cq != NULL && !wl->finished)
            gf__kq_account(&w, wl, 1);
    }
}

/* Missing flavors of cq, comma-separated into out; true if none. */
static bool flavors_found(const struct gf_ks_kueue *k,
                          const struct gf_kq_cq *cq, char *out, size_t cap)
{
    out[0] = '\0';
    size_t len = 0;
    for (size_t g = 0; g < cq->n_groups; g++)
        for (size_t f = 0; f < cq->groups[g].n_fl; f++) {
            const char *name = cq->groups[g].fl[f].name;
            if (gf_htab_get_str(&k->flavors, name) != NULL || len >= cap)
                continue;
            int n =
                snprintf(out + len, cap - len, "%s%s", len ? "," : "", name);
            len += n > 0 ? (size_t)n : 0;
        }
    return out[0] == '\0';
}

static bool cq_active(const struct gf_ks_kueue *k, const struct gf_kq_cq *cq)
{
    char missing[256];
    return cq->stop == GF_KQ_RUN &&
           flavors_found(k, cq, missing, sizeof(missing));
}

static int pending_cmp(const void *pa, const void *pb)
{
    const struct gf_kq_wl *a = *(struct gf_kq_wl *const *)pa;
    const struct gf_kq_wl *b = *(struct gf_kq_wl *const *)pb;
    if (a->prio != b->prio)
        return a->prio > b->prio ? -1 : 1;
    if (a->created_ms != b->created_ms)
        return a->created_ms < b->created_ms ? -1 : 1;
    return a->seq < b->seq ? -1 : (a->seq > b->seq ? 1 : 0);
}

static void preempt_why(const struct gf_kq_wl *by, const struct gf_kq_wl *v,
                        const struct gf_kq_cq *cq, bool while_borrowing,
                        struct evict_why *why)
{
    bool same = strcmp(v->adm_cq, cq->name) == 0;
    why->reason = "Preempted";
    why->preempted = same              ? "InClusterQueue"
                     : while_borrowing ? "InCohortReclaimWhileBorrowing"
                                       : "InCohortReclamation";
    why->requeue = true;
    snprintf(why->msg, sizeof(why->msg),
             "Preempted to accommodate a workload (UID: %s, JobUID: %s) due "
             "to %s",
             by->uid != NULL ? by->uid : "UNKNOWN",
             by->job_uid != NULL ? by->job_uid : "UNKNOWN",
             same              ? "prioritization in the ClusterQueue"
             : while_borrowing ? "reclamation within the cohort while borrowing"
                               : "reclamation within the cohort");
}

/* The labels of a namespace (returned-owned copy, NULL when none). */
static cJSON *ns_labels(struct gf_ks_kueue *k, const char *ns)
{
    const struct gf_ks_rtype *t = gf_ks_store_type(k->st, "", "namespaces");
    struct gf_ks_obj *o = t != NULL ? gf_ks_store_get(k->st, t, "", ns) : NULL;
    if (o == NULL)
        return NULL;
    cJSON *obj = gf_ks_obj_parse(o);
    cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    cJSON *l = cJSON_DetachItemFromObjectCaseSensitive(md, "labels");
    cJSON_Delete(obj);
    return l;
}

/*
 * Why wl cannot be tried on its queue at all (Kueue's queue blockers and
 * the scheduler's namespace check), or NULL with *cq_out set.
 */
static bool blocked_by_queue(struct gf_ks_kueue *k, struct gf_kq_wl *wl,
                             struct gf_kq_cq **cq_out)
{
    struct gf_kq_lq *lq = NULL;
    struct gf_kq_cq *cq = cq_of_queue(k, wl, &lq);
    char msg[600];
    msg[0] = '\0';
    if (lq == NULL)
        snprintf(msg, sizeof(msg), "LocalQueue %s doesn't exist", wl->queue);
    else if (lq->stop != GF_KQ_RUN)
        snprintf(msg, sizeof(msg), "LocalQueue %s is stopped", wl->queue);
    else if (cq == NULL)
        snprintf(msg, sizeof(msg), "ClusterQueue %s doesn't exist", lq->cq);
    else if (!cq_active(k, cq))
        snprintf(msg, sizeof(msg), "ClusterQueue %s is inactive", cq->name);
    if (msg[0] == '\0' && cq != NULL) {
        /* cluster_queue.md: "To allow workloads from all namespaces, set
         * the empty selector {}"; a null selector selects none. */
        cJSON *labels = ns_labels(k, wl->ns);
        bool match = gf__kq_label_selector_match(cq->ns_sel, labels);
        cJSON_Delete(labels);
        if (!match)
            snprintf(msg, sizeof(msg),
                     "workload namespace doesn't match ClusterQueue selector");
    }
    if (msg[0] != '\0') {
        set_pending(k, wl, "Inadmissible", msg);
        return true;
    }
    *cq_out = cq;
    return false;
}

/* Admits wl with assignment a, evicting its targets. */
static void admit_with(struct gf_ks_kueue *k, struct gf_kq_wl *wl,
                       struct gf_kq_cq *cq, struct gf_kq_assign *a)
{
    struct gf_kq_world w = {&k->cqs, &k->live, &k->flavors, &k->cohorts};
    for (size_t i = 0; i < a->n_victims; i++) {
        struct evict_why why;
        preempt_why(wl, a->victims[i], cq, a->while_borrowing[i], &why);
        why.at_once = true;
        evict(k, a->victims[i], &why);
    }
    admit(k, wl, cq, a);
    /* Account the new reservation for the Workloads after it. */
    gf__kq_account(&w, wl, 1);
}

/* A head of a ClusterQueue in one scheduling cycle. */
struct head {
    struct gf_kq_wl *wl;
    struct gf_kq_cq *cq;
    bool borrows;
};

static int head_cmp(const void *pa, const void *pb)
{
    const struct head *a = pa, *b = pb;
    /* "Within a Cohort, Kueue prioritizes scheduling workloads that will
     * fit under nominalQuota" (cluster_queue.md), then priority, FIFO. */
    if (a->borrows != b->borrows)
        return a->borrows ? 1 : -1;
    return pending_cmp(&a->wl, &b->wl);
}

/*
 * Takes the next head of every ClusterQueue into h (by priority then
 * FIFO: v is sorted), skipping Workloads whose queue blocks them.
 */
static size_t take_heads(struct gf_ks_kueue *k, struct gf_kq_wl **v, size_t n,
                         struct head *h)
{
    size_t nh = 0;
    size_t pos = 0;
    void *p;
    while (gf_htab_scan(&k->cqs, &pos, NULL, &p)) {
        struct gf_kq_cq *cq = p;
        while (!cq->blocked && cq->head < n) {
            struct gf_kq_wl *wl = v[cq->head];
            struct gf_kq_cq *wcq = NULL;
            if (wl->adm_cq != NULL || wl->qcq != cq) {
                cq->head++;
                continue;
            }
            cq->head++;
            if (blocked_by_queue(k, wl, &wcq))
                continue;
            h[nh++] = (struct head){wl, cq, false};
            break;
        }
    }
    return nh;
}

/*
 * Admission in scheduling cycles, as Kueue's scheduler runs them: each
 * cycle takes the head of every ClusterQueue, tries them all, and admits
 * those that fit under nominal quota first, then those that borrow (by
 * priority, then FIFO, within each). A head that does not fit waits; in
 * a StrictFIFO queue it blocks the rest.
 */
static void step_admit(struct gf_ks_kueue *k)
{
    size_t n_live;
    struct gf_kq_wl **live = live_snapshot(k, &n_live);
    struct gf_kq_wl **v = gf_calloc(n_live + 1, sizeof(*v));
    size_t n = 0, pos = 0;
    void *p;
    for (size_t i = 0; i < n_live; i++) {
        struct gf_kq_wl *wl = live[i];
        wl->qcq = NULL;
        if (wl->dead || wl->adm_cq != NULL || !wl->active || wl->finished ||
            wl->queue == NULL)
            continue;
        struct gf_kq_cq *cq = cq_of_queue(k, wl, NULL);
        if (cq == NULL) {
            struct gf_kq_cq *none = NULL;
            blocked_by_queue(k, wl, &none); /* writes why it waits */
            continue;
        }
        wl->qcq = cq;
        v[n++] = wl;
    }
    gf_free(live);
    qsort(v, n, sizeof(*v), pending_cmp);
    struct head *h = gf_calloc(k->cqs.len + 1, sizeof(*h));
    struct gf_kq_world w = {&k->cqs, &k->live, &k->flavors, &k->cohorts};
    pos = 0;
    while (gf_htab_scan(&k->cqs, &pos, NULL, &p))
        ((struct gf_kq_cq *)p)->head = 0;
    size_t nh;
    while ((nh = take_heads(k, v, n, h)) > 0) {
        for (size_t i = 0; i < nh; i++) {
            struct gf_kq_assign a;
            gf__kq_try(&w, h[i].cq, h[i].wl, &a);
            h[i].borrows = a.fit != GF_KQ_NOFIT && a.borrows;
            gf__kq_assign_undo(&w, &a);
            gf__kq_assign_free(&a);
        }
        if (nh > 1)
            qsort(h, nh, sizeof(*h), head_cmp);
        for (size_t i = 0; i < nh; i++) {
            struct gf_kq_assign a;
            /* Again: an admission earlier in the cycle may have used the
             * cohort's quota. */
            gf__kq_try(&w, h[i].cq, h[i].wl, &a);
            if (a.fit == GF_KQ_NOFIT) {
                h[i].cq->blocked = h[i].cq->strict_fifo;
                set_pending(k, h[i].wl, "Pending", a.msg);
            } else {
                admit_with(k, h[i].wl, h[i].cq, &a);
            }
            gf__kq_assign_free(&a);
        }
    }
    gf_free(h);
    gf_free(v);
}

static void step_suspend(struct gf_ks_kueue *k)
{
    size_t n;
    struct gf_kq_wl **v = live_snapshot(k, &n);
    for (size_t i = 0; i < n; i++) {
        const struct gf_kq_wl *wl = v[i];
        const struct gf_kq_job *j = wl->dead ? NULL : job_of(k, wl);
        if (j == NULL || j->done != 0)
            continue;
        bool run =
            wl->adm_cq != NULL && wl->active && !wl->finished && !wl->evicted;
        if (run == j->suspended)
            patch_suspend(k, wl, !run);
    }
    gf_free(v);
}

/* ---- queue status -------------------------------------------------------- */

static void count_queues(struct gf_ks_kueue *k)
{
    size_t pos = 0;
    void *v;
    while (gf_htab_scan(&k->cqs, &pos, NULL, &v))
        ((struct gf_kq_cq *)v)->n_pending =
            ((struct gf_kq_cq *)v)->n_reserving = 0;
    pos = 0;
    while (gf_htab_scan(&k->lqs, &pos, NULL, &v))
        ((struct gf_kq_lq *)v)->n_pending =
            ((struct gf_kq_lq *)v)->n_reserving = 0;
    k->stats.walked += k->live.len;
    pos = 0;
    while (gf_htab_scan(&k->live, &pos, NULL, &v)) {
        const struct gf_kq_wl *wl = v;
        if (wl->finished)
            continue;
        struct gf_kq_lq *lq = NULL;
        struct gf_kq_cq *cq = cq_of_queue(k, wl, &lq);
        bool reserving = wl->adm_cq != NULL;
        if (reserving)
            cq = gf_htab_get_str(&k->cqs, wl->adm_cq);
        else if (!wl->active)
            continue;
        if (cq != NULL)
            *(reserving ? &cq->n_reserving : &cq->n_pending) += 1;
        if (lq != NULL)
            *(reserving ? &lq->n_reserving : &lq->n_pending) += 1;
    }
}

static cJSON *cq_flavors_json(const struct gf_kq_cq *cq)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t g = 0; g < cq->n_groups; g++)
        for (size_t f = 0; f < cq->groups[g].n_fl; f++) {
            const struct gf_kq_flavor *fl = &cq->groups[g].fl[f];
            cJSON *fo = cJSON_CreateObject();
            cJSON_AddItemToArray(arr, fo);
            cJSON_AddStringToObject(fo, "name", fl->name);
            cJSON *rs = cJSON_AddArrayToObject(fo, "resources");
            for (size_t r = 0; r < cq->groups[g].n_res; r++) {
                const char *res = cq->groups[g].res[r];
                const struct gf_kq_cell *c = &fl->cells[r];
                char tot[32], bor[32];
                gf__kq_qty(res, c->usage, tot);
                gf__kq_qty(res,
                           c->usage > c->nominal ? c->usage - c->nominal : 0,
                           bor);
                cJSON *ro = cJSON_CreateObject();
                cJSON_AddItemToArray(rs, ro);
                cJSON_AddStringToObject(ro, "name", res);
                cJSON_AddStringToObject(ro, "total", tot);
                cJSON_AddStringToObject(ro, "borrowed", bor);
            }
        }
    return arr;
}

/* The Active condition a queue's status is to carry. */
struct active_cond {
    bool status;
    const char *reason;
    char msg[400];
};

/*
 * Writes a queue's status: st (taken; every field but the conditions)
 * plus the Active condition, merged into the stored conditions. Kueue-lite
 * writes every queue's status at every pass, and the stored object's
 * parse and the patch were a tenth of kubesim's CPU under a stream of
 * Jobs; so when the stored object is still the one the last write left
 * (its resourceVersion) and the status computed is the same (*fp, the
 * fingerprint of st and the condition), the write, which would change
 * nothing, is skipped. *fp and *rv are the queue's memory of that write.
 */
static void queue_status(struct gf_ks_kueue *k, const struct gf_ks_rtype *t,
                         const char *ns, const char *name, cJSON *st,
                         const struct active_cond *ac, char **fp, uint64_t *rv)
{
    char *body = cJSON_PrintUnformatted(st);
    size_t len = strlen(body) + strlen(ac->reason) + strlen(ac->msg) + 8;
    char *now = gf_malloc(len);
    snprintf(now, len, "%d|%s|%s|%s", ac->status, ac->reason, ac->msg, body);
    cJSON_free(body);
    const struct gf_ks_obj *o = gf_ks_store_get(k->st, t, ns, name);
    if (o == NULL || (*fp != NULL && *rv == o->rv && strcmp(*fp, now) == 0)) {
        gf_free(now);
        cJSON_Delete(st);
        return;
    }
    int64_t gen;
    cJSON *conds = stored_conds(k, t, ns, name, &gen);
    cond_set(k, conds, "Active", ac->status, ac->reason, ac->msg, gen);
    cJSON_AddItemToObject(st, "conditions", conds);
    /* The write runs the observers: name and ns may be the queue's. */
    char *n = gf_strdup(name), *s_ns = gf_strdup(ns);
    k->stats.queue_writes++;
    int rc = patch_status(k, t, s_ns, n, st);
    o = rc == 0 ? gf_ks_store_get(k->st, t, s_ns, n) : NULL;
    gf_free(n);
    gf_free(s_ns);
    cJSON_Delete(st);
    gf_free(*fp);
    *fp = NULL;
    if (o != NULL) {
        *fp = now; /* a failed write is made again next pass */
        *rv = o->rv;
    } else {
        gf_free(now);
    }
}

static void cq_status(struct gf_ks_kueue *k, struct gf_kq_cq *cq)
{
    struct active_cond ac = {true, "Ready", "Can admit new workloads"};
    char missing[256];
    if (!flavors_found(k, cq, missing, sizeof(missing))) {
        ac = (struct active_cond){false, "FlavorNotFound", ""};
        snprintf(ac.msg, sizeof(ac.msg),
                 "Can't admit new workloads: references missing "
                 "ResourceFlavor(s): %s.",
                 missing);
    } else if (cq->stop != GF_KQ_RUN) {
        ac = (struct active_cond){false, "Stopped",
                                  "Can't admit new workloads: is stopped."};
    }
    cJSON *st = cJSON_CreateObject();
    cJSON_AddItemToObject(st, "flavorsReservation", cq_flavors_json(cq));
    cJSON_AddItemToObject(st, "flavorsUsage", cq_flavors_json(cq));
    cJSON_AddNumberToObject(st, "pendingWorkloads", (double)cq->n_pending);
    cJSON_AddNumberToObject(st, "reservingWorkloads", (double)cq->n_reserving);
    cJSON_AddNumberToObject(st, "admittedWorkloads", (double)cq->n_reserving);
    queue_status(k, k->t_cq, "", cq->name, st, &ac, &cq->st_fp, &cq->st_rv);
}

/* What a LocalQueue's admitted Workloads use of one flavor and resource. */
static int64_t lq_usage(const struct gf_ks_kueue *k, const struct gf_kq_lq *lq,
                        const char *flavor, const char *res)
{
    int64_t tot = 0;
    size_t pos = 0;
    void *v;
    while (gf_htab_scan(&k->live, &pos, NULL, &v)) {
        const struct gf_kq_wl *wl = v;
        if (wl->adm_cq == NULL || wl->finished || wl->queue == NULL ||
            strcmp(wl->ns, lq->ns) != 0 || strcmp(wl->queue, lq->name) != 0)
            continue;
        for (size_t u = 0; u < wl->n_uses; u++)
            if (strcmp(wl->uses[u].flavor, flavor) == 0 &&
                strcmp(wl->uses[u].res, res) == 0)
                tot += wl->uses[u].q;
    }
    return tot;
}

/* The usage of a LocalQueue's Workloads, by flavor. */
static cJSON *lq_flavors_json(const struct gf_ks_kueue *k,
                              const struct gf_kq_lq *lq)
{
    cJSON *arr = cJSON_CreateArray();
    struct gf_kq_cq *cq =
        lq->cq != NULL ? gf_htab_get_str(&k->cqs, lq->cq) : NULL;
    for (size_t g = 0; cq != NULL && g < cq->n_groups; g++)
        for (size_t f = 0; f < cq->groups[g].n_fl; f++) {
            const char *fname = cq->groups[g].fl[f].name;
            cJSON *fo = cJSON_CreateObject();
            cJSON_AddItemToArray(arr, fo);
            cJSON_AddStringToObject(fo, "name", fname);
            cJSON *rs = cJSON_AddArrayToObject(fo, "resources");
            for (size_t r = 0; r < cq->groups[g].n_res; r++) {
                const char *res = cq->groups[g].res[r];
                char q[32];
                gf__kq_qty(res, lq_usage(k, lq, fname, res), q);
                cJSON *ro = cJSON_CreateObject();
                cJSON_AddItemToArray(rs, ro);
                cJSON_AddStringToObject(ro, "name", res);
                cJSON_AddStringToObject(ro, "total", q);
            }
        }
    return arr;
}

static void lq_status(struct gf_ks_kueue *k, struct gf_kq_lq *lq)
{
    struct gf_kq_cq *cq =
        lq->cq != NULL ? gf_htab_get_str(&k->cqs, lq->cq) : NULL;
    struct active_cond ac = {true, "Ready",
                             "Can submit new workloads to localQueue"};
    if (cq == NULL)
        ac = (struct active_cond){false, "ClusterQueueDoesNotExist",
                                  "Can't submit new workloads to clusterQueue"};
    else if (lq->stop != GF_KQ_RUN)
        ac = (struct active_cond){false, "Stopped", "LocalQueue is stopped"};
    else if (!cq_active(k, cq))
        ac = (struct active_cond){false, "ClusterQueueIsInactive",
                                  "Can't submit new workloads to clusterQueue"};
    cJSON *st = cJSON_CreateObject();
    cJSON_AddNumberToObject(st, "pendingWorkloads", (double)lq->n_pending);
    cJSON_AddNumberToObject(st, "reservingWorkloads", (double)lq->n_reserving);
    cJSON_AddNumberToObject(st, "admittedWorkloads", (double)lq->n_reserving);
    cJSON *fr = lq_flavors_json(k, lq);
    cJSON_AddItemToObject(st, "flavorsReservation", fr);
    cJSON_AddItemToObject(st, "flavorsUsage", cJSON_Duplicate(fr, true));
    queue_status(k, k->t_lq, lq->ns, lq->name, st, &ac, &lq->st_fp, &lq->st_rv);
}

static void step_status(struct gf_ks_kueue *k)
{
    count_queues(k);
    struct gf_htab_iter it;
    void *v;
    gf_htab_iter_init(&it, &k->cqs);
    while (gf_htab_next(&it, NULL, NULL, &v))
        cq_status(k, v);
    gf_htab_iter_init(&it, &k->lqs);
    while (gf_htab_next(&it, NULL, NULL, &v))
        lq_status(k, v);
}

static void lookup_types(struct gf_ks_kueue *k)
{
    k->t_wl = gf_ks_store_type(k->st, KQ_GROUP, "workloads");
    k->t_cq = gf_ks_store_type(k->st, KQ_GROUP, "clusterqueues");
    k->t_lq = gf_ks_store_type(k->st, KQ_GROUP, "localqueues");
    k->t_job = gf_ks_store_type(k->st, "batch", "jobs");
}

static void reconcile(struct gf_ks_kueue *k)
{
    k->dirty = false;
    k->in_reconcile = true;
    k->stats.reconciles++;
    lookup_types(k);
    if (k->t_job != NULL)
        step_jobs(k);
    if (k->t_wl != NULL) {
        step_finish_and_evict(k);
        step_usage(k);
        step_admit(k);
        if (k->t_job != NULL)
            step_suspend(k);
    }
    if (k->t_cq != NULL && k->t_lq != NULL)
        step_status(k);
    k->in_reconcile = false;
    for (size_t i = 0; i < k->n_grave; i++)
        gf__kq_wl_free(k->grave[i]);
    GF_FREE(k->grave);
    k->n_grave = 0;
    if (k->dirty)
        schedule(k);
}

static void on_timer(struct gf_timer *t)
{
    struct gf_ks_kueue *k = t->data;
    if (k->faults != NULL && gf_ks_faults_kueue_frozen(k->faults)) {
        /* Frozen: no admission, no status; look again later. */
        k->stats.frozen++;
        gf_timer_start(&k->timer, KQ_FROZEN_RETRY_MS, on_timer);
        return;
    }
    reconcile(k);
}

static void schedule(struct gf_ks_kueue *k)
{
    k->dirty = true;
    if (!k->in_reconcile && !gf_timer_active(&k->timer))
        gf_timer_start(&k->timer, 0, on_timer);
}

void gf_ks_kueue_flush(struct gf_ks_kueue *k)
{
    if (!gf_timer_active(&k->timer))
        return;
    gf_timer_stop(&k->timer);
    on_timer(&k->timer);
}

/* ---- events -------------------------------------------------------------- */

static void on_wl(struct gf_ks_kueue *k, const struct gf_ks_event *ev)
{
    char *key = key_of(ev->obj->ns, ev->obj->name);
    struct gf_kq_wl *wl = gf_htab_get_str(&k->wls, key);
    if (ev->type == GF_KS_EV_DELETED) {
        if (wl != NULL) {
            gf_htab_del_str(&k->wls, key);
            gf_htab_del_str(&k->live, key);
            by_job_remove(k, wl);
            wl->dead = true;
            if (k->in_reconcile) {
                k->grave =
                    gf_realloc(k->grave, (k->n_grave + 1) * sizeof(*k->grave));
                k->grave[k->n_grave++] = wl;
            } else {
                gf__kq_wl_free(wl);
            }
        }
    } else {
        if (wl == NULL) {
            /*
             * Only step_jobs creates Workloads during a reconcile, and it
             * walks a copy of the Jobs it serves: no map grows while
             * iterated (which common/htab.h forbids), and the steps walk
             * copies of the live index, which grows here.
             */
            wl = gf__kq_wl_new(ev->obj->ns, ev->obj->name, ev->obj->rv);
            gf_htab_put_str(&k->wls, key, wl);
        }
        /* The owner may change with the object. */
        by_job_remove(k, wl);
        gf__kq_wl_load(wl, ev->obj_json);
        by_job_add(k, wl);
        live_refresh(k, wl);
    }
    gf_free(key);
    schedule(k);
}

static void on_cq(struct gf_ks_kueue *k, const struct gf_ks_event *ev)
{
    struct gf_kq_cq *cq = gf_htab_get_str(&k->cqs, ev->obj->name);
    if (ev->type == GF_KS_EV_DELETED) {
        gf__kq_cq_free(gf_htab_del_str(&k->cqs, ev->obj->name));
        schedule(k);
        return;
    }
    int64_t gen = 0;
    gf_json_int(ev->obj_json, "metadata.generation", &gen);
    if (cq != NULL && cq->generation == gen)
        return; /* a status write: nothing Kueue acts on changed */
    if (cq == NULL) {
        cq = gf_calloc(1, sizeof(*cq));
        cq->name = gf_strdup(ev->obj->name);
        gf_htab_put_str(&k->cqs, cq->name, cq);
    }
    gf__kq_cq_load(cq, ev->obj_json);
    schedule(k);
}

/* Cohort objects: their own quota, shared by the members. */
static void on_cohort(struct gf_ks_kueue *k, const struct gf_ks_event *ev)
{
    struct gf_kq_cq *co = gf_htab_get_str(&k->cohorts, ev->obj->name);
    if (ev->type == GF_KS_EV_DELETED) {
        gf__kq_cq_free(gf_htab_del_str(&k->cohorts, ev->obj->name));
        schedule(k);
        return;
    }
    int64_t gen = 0;
    gf_json_int(ev->obj_json, "metadata.generation", &gen);
    if (co != NULL && co->generation == gen)
        return;
    if (co == NULL) {
        co = gf_calloc(1, sizeof(*co));
        co->name = gf_strdup(ev->obj->name);
        gf_htab_put_str(&k->cohorts, co->name, co);
    }
    gf__kq_cq_load(co, ev->obj_json);
    schedule(k);
}

static void on_lq(struct gf_ks_kueue *k, const struct gf_ks_event *ev)
{
    char *key = key_of(ev->obj->ns, ev->obj->name);
    struct gf_kq_lq *lq = gf_htab_get_str(&k->lqs, key);
    if (ev->type == GF_KS_EV_DELETED) {
        gf__kq_lq_free(gf_htab_del_str(&k->lqs, key));
    } else {
        if (lq == NULL) {
            lq = gf_calloc(1, sizeof(*lq));
            lq->ns = gf_strdup(ev->obj->ns);
            lq->name = gf_strdup(ev->obj->name);
            gf_htab_put_str(&k->lqs, key, lq);
        }
        char *old = lq->cq != NULL ? gf_strdup(lq->cq) : NULL;
        enum gf_kq_stop stop = lq->stop;
        gf__kq_lq_load(lq, ev->obj_json);
        bool same = stop == lq->stop && old != NULL && lq->cq != NULL &&
                    strcmp(old, lq->cq) == 0;
        gf_free(old);
        if (same && ev->type == GF_KS_EV_MODIFIED) {
            gf_free(key);
            return;
        }
    }
    gf_free(key);
    schedule(k);
}

/* Flavors: their nodeLabels ({} when none), matched against nodeSelectors. */
static void on_flavor(struct gf_ks_kueue *k, const struct gf_ks_event *ev)
{
    cJSON *old = gf_htab_get_str(&k->flavors, ev->obj->name);
    if (ev->type == GF_KS_EV_DELETED) {
        cJSON_Delete(gf_htab_del_str(&k->flavors, ev->obj->name));
        schedule(k);
        return;
    }
    const cJSON *nl = gf_json_path(ev->obj_json, "spec.nodeLabels");
    cJSON *labels =
        cJSON_IsObject(nl) ? cJSON_Duplicate(nl, true) : cJSON_CreateObject();
    if (old != NULL && gf_json_equal(old, labels)) {
        cJSON_Delete(labels);
        return;
    }
    cJSON_Delete(gf_htab_del_str(&k->flavors, ev->obj->name));
    gf_htab_put_str(&k->flavors, ev->obj->name, labels);
    schedule(k);
}

/*
 * Kueue's Job webhook: a new Job with the queue-name label is suspended
 * before it is stored, so the create's answer already shows
 * `suspend: true` and no watcher (the job runner included) ever sees it
 * unsuspended. The webhook is a separate deployment from the controller:
 * a frozen Kueue-lite still suspends new Jobs.
 */
static void job_webhook(void *data, const struct gf_ks_rtype *t, cJSON *job)
{
    struct gf_ks_kueue *k = data;
    (void)t;
    if (gf_json_label(job, KQ_QUEUE_LABEL) == NULL)
        return;
    cJSON *spec = cJSON_GetObjectItemCaseSensitive(job, "spec");
    if (!cJSON_IsObject(spec)) {
        cJSON_DeleteItemFromObjectCaseSensitive(job, "spec");
        spec = cJSON_AddObjectToObject(job, "spec");
    }
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(spec, "suspend")))
        return;
    cJSON_DeleteItemFromObjectCaseSensitive(spec, "suspend");
    cJSON_AddTrueToObject(spec, "suspend");
    k->stats.writes++;
}

/* Jobs: the index remembers what the reconcile needs. */
static void on_job(struct gf_ks_kueue *k, const struct gf_ks_event *ev)
{
    char *key = key_of(ev->obj->ns, ev->obj->name);
    struct gf_kq_job *j = gf_htab_get_str(&k->jobs, key);
    bool managed = gf_json_label(ev->obj_json, KQ_QUEUE_LABEL) != NULL;
    if (ev->type == GF_KS_EV_DELETED || !managed) {
        gf_htab_del_str(&k->need_wl, key);
        gf__kq_job_free(gf_htab_del_str(&k->jobs, key));
        job_changed(k, key);
        gf_free(key);
        return;
    }
    if (j == NULL) {
        j = gf_calloc(1, sizeof(*j));
        j->seq = ev->obj->rv;
        gf_htab_put_str(&k->jobs, key, j);
    }
    bool changed = gf__kq_job_load(j, ev->obj_json);
    if (j->need_wl)
        gf_htab_put_str(&k->need_wl, key, j);
    job_changed(k, key);
    gf_free(key);
    if (changed)
        schedule(k);
}

static void dispatch(struct gf_ks_kueue *k, const struct gf_ks_event *ev)
{
    const char *gr = ev->rtype->gr;
    if (ev->type > GF_KS_EV_DELETED || ev->obj == NULL)
        return;
    if (strcmp(gr, KQ_GROUP "/workloads") == 0)
        on_wl(k, ev);
    else if (strcmp(gr, KQ_GROUP "/clusterqueues") == 0)
        on_cq(k, ev);
    else if (strcmp(gr, KQ_GROUP "/localqueues") == 0)
        on_lq(k, ev);
    else if (strcmp(gr, KQ_GROUP "/resourceflavors") == 0)
        on_flavor(k, ev);
    else if (strcmp(gr, KQ_GROUP "/cohorts") == 0)
        on_cohort(k, ev);
    else if (strcmp(gr, "batch/jobs") == 0)
        on_job(k, ev);
    else if (strcmp(gr, "/namespaces") == 0)
        schedule(k); /* labels decide namespaceSelector matches */
}

static void on_event(void *data, const struct gf_ks_event *ev)
{
    dispatch(data, ev);
}

/* ---- lifecycle ---------------------------------------------------------- */

struct initial {
    struct gf_ks_kueue *k;
    const struct gf_ks_rtype *t;
};

static bool index_one(void *data, struct gf_ks_obj *o)
{
    struct initial *in = data;
    cJSON *j = gf_ks_obj_parse(o);
    struct gf_ks_event ev = {.type = GF_KS_EV_ADDED,
                             .rtype = in->t,
                             .obj = o,
                             .obj_json = j,
                             .rv = o->rv};
    dispatch(in->k, &ev);
    cJSON_Delete(j);
    return true;
}

static void index_type(struct gf_ks_kueue *k, const char *group,
                       const char *res)
{
    struct initial in = {k, gf_ks_store_type(k->st, group, res)};
    if (in.t != NULL)
        gf_ks_store_foreach(k->st, in.t, NULL, index_one, &in);
}

struct gf_ks_kueue *gf_ks_kueue_new(const struct gf_ks_kueue_opts *o)
{
    struct gf_ks_kueue *k = gf_calloc(1, sizeof(*k));
    k->st = o->store;
    k->clk = o->clock;
    k->faults = o->faults;
    k->cluster = gf_strdup(o->cluster != NULL ? o->cluster : "");
    k->lc = (struct gf_log_ctx){.comp = "kueue", .cluster = k->cluster};
    gf_timer_init(k->clk, &k->timer);
    k->timer.data = k;
    /* Keys live in the Workloads and Jobs (kept until their entry goes). */
    gf_htab_init(&k->live, GF_HTAB_BORROW_KEYS);
    /* Flavors and queues first, so Workloads resolve on the first pass. */
    index_type(k, KQ_GROUP, "resourceflavors");
    index_type(k, KQ_GROUP, "cohorts");
    index_type(k, KQ_GROUP, "clusterqueues");
    index_type(k, KQ_GROUP, "localqueues");
    index_type(k, KQ_GROUP, "workloads");
    index_type(k, "batch", "jobs");
    k->obs = gf_ks_store_observe(k->st, NULL, on_event, k);
    k->webhook = gf_ks_store_mutate(k->st, "batch", "jobs", job_webhook, k);
    schedule(k);
    return k;
}

/* Map values are freed through void pointers. */
static void wl_free_v(void *v)
{
    gf__kq_wl_free(v);
}
static void cq_free_v(void *v)
{
    gf__kq_cq_free(v);
}
static void lq_free_v(void *v)
{
    gf__kq_lq_free(v);
}
static void job_free_v(void *v)
{
    gf__kq_job_free(v);
}
static void json_free_v(void *v)
{
    cJSON_Delete(v);
}

void gf_ks_kueue_free(struct gf_ks_kueue *k)
{
    if (k == NULL)
        return;
    gf_ks_store_unobserve(k->st, k->obs);
    gf_ks_store_unmutate(k->st, k->webhook);
    gf_timer_stop(&k->timer);
    gf_htab_free(&k->live);
    gf_htab_free(&k->need_wl);
    gf_htab_free_all(&k->by_job, owned_free);
    gf_htab_free_all(&k->wls, wl_free_v);
    gf_htab_free_all(&k->cqs, cq_free_v);
    gf_htab_free_all(&k->cohorts, cq_free_v);
    gf_htab_free_all(&k->lqs, lq_free_v);
    gf_htab_free_all(&k->jobs, job_free_v);
    gf_htab_free_all(&k->flavors, json_free_v);
    gf_free(k->cluster);
    gf_free(k);
}

void gf_ks_kueue_stats(const struct gf_ks_kueue *k,
                       struct gf_ks_kueue_stats *out)
{
    *out = k->stats;
}
