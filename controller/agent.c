/*
 * agent: the wiring of `gpufed agent` (controller/agent.h). The decisions
 * (when to fence, which copies) are controller/fence.c; this file reads
 * the heartbeat, watches copies and Workloads, carries out the patches,
 * writes the Events and serves /healthz, /readyz and /metrics.
 */
#include "controller/agent.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/htab.h"
#include "common/json.h"
#include "common/log.h"
#include "common/rand.h"
#include "controller/copy.h"
#include "controller/event.h"
#include "controller/fence.h"
#include "controller/httpd.h"
#include "controller/internal.h"
#include "controller/metrics.h"
#include "controller/observe.h"
#include "kubeclient/http.h"
#include "kubeclient/reflector.h"
#include "kubeclient/request.h"
#include "kubeclient/store.h"
#include "kubeclient/uvclock.h"

/* A 409 is re-read and sent again at most this many times per sweep. */
#define MAX_CONFLICTS 5
/* A stopping agent waits this long for its writes in flight. */
#define DRAIN_MS 5000
/* Objects per page of the fence's LIST. */
#define LIST_PAGE 500

struct gf_agent {
    uv_loop_t *loop;
    const struct gf__agent_io *io;
    struct gf_clock clk;
    struct gf_http *http;
    struct gf_rand rng;
    struct gf_log_ctx lc;
    char *member;
    struct gf_kube_client *c;
    struct gf_store *jobs, *wls;
    struct gf_reflector *job_refl, *wl_refl;
    struct gf_htab idx;      /* owner Job uid -> Workload key (owned) */
    struct gf_htab inflight; /* Workload key -> struct patch */
    /* Workload key -> the resourceVersion we deactivated (owned): until
     * the watch shows the change, the cache still says active. */
    struct gf_htab patched_rv;
    struct gf_fence fence;
    /* The fence's fresh LIST (copy Jobs, then all Workloads), while one
     * runs: the objects read so far, the next page's token. */
    struct gf_store *lj, *lw;
    /* and every ClusterQueue (the grants, and the per-cohort rule's
     * quotas) */
    struct gf_store *lq;
    struct gf_kube_call *list_call;
    bool list_wls;   /* reading the Workload pages */
    bool list_cqs;   /* then gpufed's ClusterQueues (loans to revert) */
    bool list_again; /* a poll came while it ran: list again after */
    /*
     * The grants are known reverted: the last LIST of gpufed's
     * ClusterQueues while fenced showed none lending, or every revert it
     * sent has been answered. Only then are the Workloads marked with a
     * loan deactivated: while a grant stands, Kueue admits the cohort's
     * pending Workloads into the room a deactivated one frees, and
     * lowering the grant afterwards evicts none of them.
     */
    bool grants_clear;
    bool revert_failed; /* a revert of this LIST's failed */
    unsigned reverts;   /* reverts in flight */
    uint64_t list_sent_ms;
    char *list_cont;
    struct gf_timer poll, due, sweep, drain;
    struct gf_kube_call *hb_call;
    uint64_t hb_sent_ms;
    bool answered; /* the first heartbeat read has been answered */
    bool ready_logged;
    /* The last read that parsed: for messages when no credit exists. */
    bool last_valid, last_absent;
    int64_t last_renew_wall_ms;
    char why[300];  /* why the agent is fenced, for logs and Events */
    unsigned calls; /* patches, re-reads and Events in flight */
    struct gf_httpd *httpd;
    struct gf_metrics *m;
    struct gf_metric *m_fenced, *m_fences, *m_copies, *m_age, *m_reads;
    struct gf_metric *m_lists;
    bool fatal, stopping;
    unsigned closing;
    uint64_t drain_deadline;
    void (*on_fatal)(void *data);
    void *fatal_data;
    void (*stop_cb)(void *data);
    void *stop_data;
};

/* One copy being fenced: a patch, or the re-read after a 409. */
struct patch {
    struct gf_agent *a;
    char *wl_key, *wl_ns, *wl_name;
    char *job_ns, *job_name, *job_uid;
    char *rv;
    /* The per-cohort rule's stop: the lease whose release reactivates it,
     * and what the Event says; NULL for the other rules. */
    char *for_lease, *why;
    unsigned conflicts;
    struct gf_kube_call *call;
};

static void sweep_soon(struct gf_agent *a);
static void on_due(struct gf_timer *t);

/* --- helpers ------------------------------------------------------------ */

static bool ready(const struct gf_agent *a)
{
    return a->answered && a->jobs != NULL && a->wls != NULL &&
           gf_store_has_synced(a->jobs) && gf_store_has_synced(a->wls);
}

static void fatal(struct gf_agent *a, const char *what,
                  const struct gf_api_status *st)
{
    if (a->fatal || a->stopping)
        return;
    a->fatal = true;
    GF_LOG(&a->lc, GF_LOG_ERROR, "cannot run: refused by the API server",
           "what=%s status=%ld reason=%s message=%s hint=%s", what, st->code,
           st->reason, st->message,
           "the agent needs the RBAC of manifests/member (rbac-agent.yaml) "
           "and the gpufed-agent service account, in a cluster with Kueue");
    if (a->on_fatal != NULL)
        a->on_fatal(a->fatal_data);
}

/* Refusals that no retry will fix, before the agent was ever ready. */
static bool refused(const struct gf_api_status *st)
{
    return st->code == 401 || st->code == 403 || st->code == 404;
}

static void describe(struct gf_agent *a, char *out, size_t cap)
{
    int64_t age = gf_fence_age_ms(&a->fence, gf_clock_now_ms(&a->clk));
    double d = (double)a->fence.d_ms / 1000.0;
    if (age >= 0)
        snprintf(out, cap,
                 "the hub's heartbeat (Lease %s/%s) has not moved for %.1fs "
                 "(lease duration %.0fs)",
                 GF_HEARTBEAT_NS, GF_HEARTBEAT_NAME, (double)age / 1000.0, d);
    else if (a->last_absent)
        snprintf(out, cap,
                 "the hub's heartbeat Lease %s/%s does not exist (the hub "
                 "never reached this cluster, or it was deleted)",
                 GF_HEARTBEAT_NS, GF_HEARTBEAT_NAME);
    else if (a->last_valid)
        snprintf(out, cap,
                 "the hub's heartbeat (Lease %s/%s) was last renewed %.1fs "
                 "ago by this cluster's clock (lease duration %.0fs)",
                 GF_HEARTBEAT_NS, GF_HEARTBEAT_NAME,
                 (double)(gf_clock_wall_ms(&a->clk) - a->last_renew_wall_ms) /
                     1000.0,
                 d);
    else
        snprintf(out, cap,
                 "the hub's heartbeat Lease %s/%s has no valid renewTime or "
                 "leaseDurationSeconds",
                 GF_HEARTBEAT_NS, GF_HEARTBEAT_NAME);
}

/* --- fencing copies ------------------------------------------------------ */

static void patch_free(struct patch *p)
{
    gf_free(p->wl_key);
    gf_free(p->wl_ns);
    gf_free(p->wl_name);
    gf_free(p->job_ns);
    gf_free(p->job_name);
    gf_free(p->job_uid);
    gf_free(p->rv);
    gf_free(p->for_lease);
    gf_free(p->why);
    gf_free(p);
}

static void patch_end(struct patch *p)
{
    struct gf_agent *a = p->a;
    gf_htab_del_str(&a->inflight, p->wl_key);
    patch_free(p);
    a->calls--;
}

static void event_done(void *data, const struct gf_kube_result *res)
{
    struct gf_agent *a = data;
    if (res->err != 0 && res->err != GF_ECANCELED)
        GF_LOG(&a->lc, GF_LOG_WARN, "event not written", "err=%s message=%s",
               gf_strerror(res->err), res->status->message);
    a->calls--;
}

/* A Workload that ran on a loan (no copy Job): the Event goes on it. */
static void loan_fenced_one(struct patch *p)
{
    struct gf_agent *a = p->a;
    char msg[1000];
    if (p->for_lease != NULL)
        snprintf(msg, sizeof(msg),
                 "gpufed agent deactivated this Workload (spec.active=false): "
                 "%s. With the loans' grants reverted, %s; it is the newest "
                 "admitted there. Nothing here reactivates it: the hub does "
                 "when loan %s ends, once it reaches this cluster again.",
                 a->why, p->why, p->for_lease);
    else
        snprintf(
            msg, sizeof(msg),
            "gpufed agent fenced this Workload, which may use quota lent "
            "to its cohort: %s. It was deactivated (spec.active=false), so "
            "Kueue stops its pods before the lender can hand the quota out "
            "again. Nothing here reactivates it: the hub ends the loan and "
            "queues it at home again once it reaches this cluster.",
            a->why);
    GF_LOG(&a->lc, GF_LOG_WARN,
           p->for_lease != NULL ? "workload fenced for its cohort's quota"
                                : "loan workload fenced",
           "workload=%s for_loan=%s why=%s", p->wl_key,
           p->for_lease != NULL ? p->for_lease : "",
           p->why != NULL ? p->why : "");
    const struct gf_event ev = {.ns = p->wl_ns,
                                .api_version = "kueue.x-k8s.io/v1beta2",
                                .kind = "Workload",
                                .name = p->wl_name,
                                .uid = p->job_uid,
                                .reason = p->for_lease != NULL ? "FencedForLoan"
                                                               : "Fenced",
                                .message = msg,
                                .component = "gpufed-agent",
                                .warning = true};
    if (a->io->event(a->c, gf_clock_wall_ms(&a->clk), &ev, event_done, a) == 0)
        a->calls++;
}

static void fenced_one(struct patch *p)
{
    struct gf_agent *a = p->a;
    gf_free(gf_htab_put_str(&a->patched_rv, p->wl_key, gf_strdup(p->rv)));
    describe(a, a->why, sizeof(a->why));
    if (p->job_name == NULL) {
        loan_fenced_one(p);
        return;
    }
    gf_metric_add(a->m_copies, 1, NULL);
    char msg[700];
    snprintf(msg, sizeof(msg),
             "gpufed agent fenced this borrowed copy: %s. Its Workload "
             "%s/%s was deactivated (spec.active=false), so Kueue stops "
             "its pods. Nothing here reactivates it: the hub decides what "
             "happens to the job once it reaches this cluster again.",
             a->why, p->wl_ns, p->wl_name);
    GF_LOG(&a->lc, GF_LOG_WARN, "copy fenced", "job=%s/%s workload=%s",
           p->job_ns, p->job_name, p->wl_key);
    const struct gf_event ev = {.ns = p->job_ns,
                                .api_version = "batch/v1",
                                .kind = "Job",
                                .name = p->job_name,
                                .uid = p->job_uid,
                                .reason = "Fenced",
                                .message = msg,
                                .component = "gpufed-agent",
                                .warning = true};
    if (a->io->event(a->c, gf_clock_wall_ms(&a->clk), &ev, event_done, a) == 0)
        a->calls++;
}

static void send_patch(struct patch *p);

static void reread_done(void *data, const struct gf_kube_result *res)
{
    struct patch *p = data;
    struct gf_agent *a = p->a;
    p->call = NULL;
    void *proj = NULL;
    const char *rv = NULL;
    if (res->err == 0 && res->json != NULL && !a->stopping &&
        gf_fence_wl_project(NULL, res->json, &proj) == 0) {
        const struct gf_fence_wl *w = proj;
        rv = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(res->json, "metadata"),
            "resourceVersion"));
        if (w->active && !w->finished && rv != NULL) {
            gf_free(p->rv);
            p->rv = gf_strdup(rv);
            gf_fence_wl_free(proj);
            send_patch(p);
            return;
        }
    }
    gf_fence_wl_free(proj);
    patch_end(p);
}

static void patch_done(void *data, const struct gf_kube_result *res)
{
    struct patch *p = data;
    struct gf_agent *a = p->a;
    p->call = NULL;
    if (res->err == 0) {
        fenced_one(p);
    } else if (res->err != GF_ECANCELED && !a->stopping &&
               res->status->cls == GF_API_REQUEUE && p->for_lease == NULL &&
               ++p->conflicts <= MAX_CONFLICTS) {
        /* Kueue wrote the Workload since we read it: read it again and
         * patch what is there now, unless it is no longer active. */
        struct gf_kube_resource r;
        gf_kube_resource_parse("workloads.kueue.x-k8s.io", &r);
        if (a->io->get(a->c, &r, p->wl_ns, p->wl_name, reread_done, p,
                       &p->call) == 0)
            return;
    } else if (res->err != GF_ECANCELED && res->http_code != 404) {
        GF_LOG(&a->lc, GF_LOG_WARN, "fencing a copy failed; retried",
               "workload=%s status=%ld message=%s", p->wl_key,
               res->status->code, res->status->message);
    }
    patch_end(p);
}

static void send_patch(struct patch *p)
{
    struct gf_agent *a = p->a;
    struct gf_kube_resource r;
    gf_kube_resource_parse("workloads.kueue.x-k8s.io", &r);
    char *body = gf_fence_patch_body(gf_clock_wall_ms(&a->clk), p->for_lease);
    const struct gf_kube_patch_opts po = {.type = GF_PATCH_MERGE,
                                          .field_manager = "gpufed-agent",
                                          .resource_version = p->rv};
    int rc = a->io->patch(a->c, &r, p->wl_ns, p->wl_name, &po, body,
                          strlen(body), patch_done, p, &p->call);
    cJSON_free(body);
    if (rc != 0) {
        GF_LOG(&a->lc, GF_LOG_WARN, "fencing a copy failed; retried",
               "workload=%s err=%s", p->wl_key, gf_strerror(rc));
        patch_end(p);
    }
}

/*
 * Deactivates one Workload: a copy's (job set) or one that runs on a loan
 * (job NULL; the uid kept for the Event is then the Workload's). The same
 * patch, precondition and re-read after a 409 for both.
 */
static struct patch *fence_wl(struct gf_agent *a,
                              const struct gf_store_entry *job,
                              const struct gf_store_entry *wl)
{
    if (gf_htab_get_str(&a->inflight, wl->key) != NULL)
        return NULL;
    const char *done = gf_htab_get_str(&a->patched_rv, wl->key);
    if (done != NULL && strcmp(done, wl->rv) == 0)
        return NULL;
    struct patch *p = gf_calloc(1, sizeof(*p));
    p->a = a;
    p->wl_key = gf_strdup(wl->key);
    p->wl_ns = gf_strdup(wl->ns);
    p->wl_name = gf_strdup(wl->name);
    if (job != NULL) {
        p->job_ns = gf_strdup(job->ns);
        p->job_name = gf_strdup(job->name);
    }
    p->job_uid = gf_strdup(job != NULL ? job->uid : wl->uid);
    p->rv = gf_strdup(wl->rv);
    gf_htab_put_str(&a->inflight, p->wl_key, p);
    a->calls++;
    return p;
}

static void fence_copy(void *data, const struct gf_store_entry *job,
                       const struct gf_store_entry *wl)
{
    struct patch *p = fence_wl(data, job, wl);
    if (p != NULL)
        send_patch(p);
}

static void fence_loan(void *data, const struct gf_store_entry *wl)
{
    struct patch *p = fence_wl(data, NULL, wl);
    if (p != NULL)
        send_patch(p);
}

static size_t sweep(struct gf_agent *a, size_t *waiting)
{
    if (!a->fence.fenced || a->stopping || a->jobs == NULL)
        return 0;
    size_t n = gf_fence_plan(a->jobs, a->wls, &a->idx, fence_copy, a, waiting);
    if (a->grants_clear)
        n += gf_fence_loan_plan(a->wls, fence_loan, a);
    return n;
}

static void on_sweep(struct gf_timer *t)
{
    sweep(t->data, NULL);
}

static void sweep_soon(struct gf_agent *a)
{
    /* Coalesces a burst of watch events into one pass over the copies. */
    if (a->fence.fenced && !a->stopping && !gf_timer_active(&a->sweep))
        gf_timer_start(&a->sweep, 0, on_sweep);
}

/* --- the fence's fresh LIST ----------------------------------------------- */

/*
 * The caches alone are not enough to fence from: after a watch failure
 * (the API server restarted, a reflector in backoff) a copy the hub
 * created meanwhile is in the API server but not in the cache, and would
 * keep running while the hub reactivates its origin. So at the fence and
 * at every poll while fenced the agent reads the copies and Workloads
 * afresh (no resourceVersion: a quorum read) and fences what that read
 * shows as well as what the caches show. A copy created after a LIST
 * was served is in the next one, one poll (D/6) later.
 */

static void fence_list(struct gf_agent *a);
static void list_page(struct gf_agent *a);
static struct gf_store *list_store(gf_store_project_fn project,
                                   gf_store_free_fn fr);

static void list_free(struct gf_agent *a)
{
    gf_store_free(a->lj);
    gf_store_free(a->lw);
    gf_store_free(a->lq);
    a->lj = a->lw = a->lq = NULL;
    gf_free(a->list_cont);
    a->list_cont = NULL;
    a->list_wls = false;
    a->list_cqs = false;
}

/* The LIST ended (read, failed or cancelled): a poll that came while it
 * ran asked for a fresher one. */
static void list_end(struct gf_agent *a)
{
    list_free(a);
    if (a->list_again && !a->stopping)
        fence_list(a);
}

static void list_failed(struct gf_agent *a, int err,
                        const struct gf_api_status *st)
{
    const char *v[] = {"error"};
    gf_metric_add(a->m_lists, 1, v);
    GF_LOG(&a->lc, GF_LOG_WARN, "fence list failed; retried at the next poll",
           "what=%s err=%s status=%ld message=%s",
           a->list_cqs   ? "clusterqueues"
           : a->list_wls ? "workloads"
                         : "jobs",
           gf_strerror(err), st != NULL ? st->code : 0L,
           st != NULL ? st->message : "");
    list_end(a);
}

static int index_one(void *data, const struct gf_store_entry *e)
{
    gf_fence_index_update(data, NULL, e);
    return 0;
}

/* Both lists are read: fence what they show. */
static void list_fence(struct gf_agent *a)
{
    const char *v[] = {"ok"};
    gf_metric_add(a->m_lists, 1, v);
    struct gf_htab idx;
    gf_htab_init(&idx, GF_HTAB_OWN_KEYS);
    gf_store_foreach(a->lw, index_one, &idx);
    size_t waiting = 0, n = 0;
    /* A poll's read may have ended the fenced state meanwhile: from then
     * on new copies are left alone. */
    if (a->fence.fenced) {
        n = gf_fence_plan(a->lj, a->lw, &idx, fence_copy, a, &waiting);
        if (a->grants_clear)
            n += gf_fence_loan_plan(a->lw, fence_loan, a);
    }
    gf_fence_index_free(&idx);
    GF_LOG(&a->lc, n > 0 ? GF_LOG_WARN : GF_LOG_DEBUG, "fence list read",
           "member=%s copies_listed=%zu copies=%zu waiting_for_workload=%zu "
           "took_ms=%llu",
           a->member, gf_store_len(a->lj), n, waiting,
           (unsigned long long)(gf_clock_now_ms(&a->clk) - a->list_sent_ms));
    if (!a->fence.fenced) {
        list_end(a);
        return;
    }
    /* Then the loans granted here: after the copies, whose fence the
     * margin is counted for. */
    gf_free(a->list_cont);
    a->list_cont = NULL;
    a->list_cqs = true;
    a->revert_failed = false;
    a->lq = list_store(gf_fence_cq_project, gf_fence_cq_free);
    list_page(a);
}

struct grant_patch {
    struct gf_agent *a;
    struct gf_kube_call *call;
    char name[254];
};

static void grant_reverted(void *data, const struct gf_kube_result *res)
{
    struct grant_patch *g = data;
    struct gf_agent *a = g->a;
    a->reverts--;
    if (res->err != 0) {
        a->revert_failed = true;
        /* A 409 (the hub raised or lowered it meanwhile) or a failure:
         * the next poll's LIST, within a second, sees it again. */
        if (res->err != GF_ECANCELED)
            GF_LOG(&a->lc, GF_LOG_WARN, "reverting a loan failed; retried",
                   "cq=%s status=%ld message=%s", g->name,
                   res->status != NULL ? res->status->code : 0L,
                   res->status != NULL ? res->status->message : "");
    } else {
        char msg[600];
        snprintf(msg, sizeof(msg),
                 "gpufed agent reverted the quota this ClusterQueue lent to "
                 "its cohort (nominalQuota 0): %s. The Workloads marked "
                 "gpufed.io/loan are deactivated; the hub releases the loan "
                 "once it reaches this cluster again.",
                 a->why);
        GF_LOG(&a->lc, GF_LOG_WARN, "loan reverted", "cq=%s", g->name);
        const struct gf_event ev = {.ns = "default",
                                    .api_version = "kueue.x-k8s.io/v1beta2",
                                    .kind = "ClusterQueue",
                                    .name = g->name,
                                    .reason = "LoanReverted",
                                    .message = msg,
                                    .component = "gpufed-agent",
                                    .warning = true};
        if (a->io->event(a->c, gf_clock_wall_ms(&a->clk), &ev, event_done, a) ==
            0)
            a->calls++;
        if (a->reverts == 0 && !a->revert_failed && !a->stopping) {
            /* The cache now; a fresh LIST for what the cache misses. */
            a->grants_clear = true;
            sweep_soon(a);
            fence_list(a);
        }
    }
    gf_free(g);
    a->calls--;
}

/* One listed ClusterQueue: a grant that still lends is set to 0. */
static void revert_grant(struct gf_agent *a, const cJSON *cq)
{
    char *body = gf_fence_grant_patch(cq);
    const char *rv =
        gf_json_as_str(GF_JSON_AT(cq, "metadata", "resourceVersion"));
    const char *name = gf_json_as_str(GF_JSON_AT(cq, "metadata", "name"));
    if (body == NULL || rv == NULL || name == NULL) {
        cJSON_free(body);
        return;
    }
    struct grant_patch *g = gf_calloc(1, sizeof(*g));
    g->a = a;
    snprintf(g->name, sizeof(g->name), "%s", name);
    struct gf_kube_resource r;
    gf_kube_resource_parse("clusterqueues.kueue.x-k8s.io", &r);
    const struct gf_kube_patch_opts po = {.type = GF_PATCH_MERGE,
                                          .field_manager = "gpufed-agent",
                                          .resource_version = rv};
    a->calls++;
    a->reverts++;
    a->grants_clear = false;
    if (a->io->patch(a->c, &r, NULL, name, &po, body, strlen(body),
                     grant_reverted, g, &g->call) != 0) {
        gf_free(g);
        a->calls--;
        a->reverts--;
        a->revert_failed = true;
    }
    cJSON_free(body);
}

/* --- the per-cohort rule -------------------------------------------------- */

/*
 * The inputs of controller/cohort_fit.h, from one fenced LIST: every
 * ClusterQueue (a grant that lends nothing names its lease), and every
 * Workload with what it holds. Copies and loan-marked Workloads are being
 * stopped by the other rules: their quota counts as gone.
 */
struct fit_in {
    struct gf_fit_cq *cqs;
    size_t n_cqs;
    struct gf_fit_wl *wls;
    const struct gf_store_entry **ents;
    size_t n_wls;
    struct gf_htab copies; /* uids of copy Jobs (values unused) */
};

static int fit_cq(void *data, const struct gf_store_entry *e)
{
    struct fit_in *in = data;
    const struct gf_fence_cq *q = e->proj;
    in->cqs[in->n_cqs++] =
        (struct gf_fit_cq){.name = q->name,
                           .cohort = q->cohort,
                           .nominal = q->nominal,
                           .n_nominal = q->n_nominal,
                           .lease = q->grant && !q->lends ? q->lease : NULL};
    return 0;
}

static int fit_copy(void *data, const struct gf_store_entry *e)
{
    struct fit_in *in = data;
    const struct gf_fence_job *j = e->proj;
    gf_htab_put_str(&in->copies, j->uid, in);
    return 0;
}

static int fit_wl(void *data, const struct gf_store_entry *e)
{
    struct fit_in *in = data;
    const struct gf_fence_wl *w = e->proj;
    bool copy = w->owner_uid != NULL &&
                gf_htab_get_str(&in->copies, w->owner_uid) != NULL;
    bool hold = strcmp(e->ns, GF_LOAN_NS) == 0 &&
                strncmp(e->name, GF_HOLD_PREFIX, strlen(GF_HOLD_PREFIX)) == 0;
    in->ents[in->n_wls] = e;
    in->wls[in->n_wls++] = (struct gf_fit_wl){
        .key = e->key,
        .cq = w->cq,
        .uses = w->uses,
        .n_uses = w->n_uses,
        .admitted_ms = w->admitted_ms,
        .leaving = !w->active || w->finished || w->loan || copy,
        .keep = hold};
    return 0;
}

static void fit_why(const struct gf_fit_stop *s, char *out, size_t cap)
{
    snprintf(out, cap,
             "cohort %s uses %.3g %s of flavor %s on a nominal quota of %.3g",
             s->cohort, (double)s->used_milli / 1000.0, s->resource, s->flavor,
             (double)s->nominal_milli / 1000.0);
}

/*
 * After the grants are reverted and the marked Workloads stopped: Kueue
 * pools a cohort's quota, so a grant may have admitted other Workloads of
 * the cohort ahead of the loan's. Each cohort that held a reverted grant
 * is brought within its own nominal quota again by stopping its newest
 * admissions (controller/cohort_fit.h), each marked with the lease whose
 * release reactivates it. From the fresh LIST only: the caches may lag
 * an admission the grant made just before the revert.
 */
static void cohort_rule(struct gf_agent *a)
{
    if (a->lq == NULL || a->lw == NULL || a->lj == NULL)
        return;
    struct fit_in in = {0};
    gf_htab_init(&in.copies, GF_HTAB_OWN_KEYS);
    in.cqs = gf_calloc(gf_store_len(a->lq) + 1, sizeof(*in.cqs));
    in.wls = gf_calloc(gf_store_len(a->lw) + 1, sizeof(*in.wls));
    in.ents = gf_calloc(gf_store_len(a->lw) + 1, sizeof(*in.ents));
    gf_store_foreach(a->lq, fit_cq, &in);
    gf_store_foreach(a->lj, fit_copy, &in);
    gf_store_foreach(a->lw, fit_wl, &in);
    struct gf_fit_stop *stops = gf_calloc(in.n_wls + 1, sizeof(*stops));
    size_t n = gf_fit_plan(in.cqs, in.n_cqs, in.wls, in.n_wls, stops);
    for (size_t i = 0; i < n; i++) {
        struct patch *p = fence_wl(a, NULL, in.ents[stops[i].wl]);
        if (p == NULL)
            continue;
        char why[600];
        fit_why(&stops[i], why, sizeof(why));
        p->for_lease = gf_strdup(stops[i].lease);
        p->why = gf_strdup(why);
        send_patch(p);
    }
    if (n > 0)
        GF_LOG(&a->lc, GF_LOG_WARN, "cohort over its quota after the revert",
               "member=%s stops=%zu", a->member, n);
    gf_free(stops);
    gf_free(in.ents);
    gf_free(in.wls);
    gf_free(in.cqs);
    gf_htab_free(&in.copies);
}

/* The ClusterQueue LIST is read: with no grant left lending, what the
 * loans served is deactivated, from this LIST and from the cache. */
static void grants_listed(struct gf_agent *a)
{
    if (a->reverts > 0 || a->revert_failed || !a->fence.fenced)
        return;
    a->grants_clear = true;
    gf_fence_loan_plan(a->lw, fence_loan, a);
    if (a->wls != NULL)
        gf_fence_loan_plan(a->wls, fence_loan, a);
    cohort_rule(a);
}

static void list_done(void *data, const struct gf_kube_result *res)
{
    struct gf_agent *a = data;
    a->list_call = NULL;
    if (a->stopping) {
        list_free(a);
        return;
    }
    if (res->err != 0 || res->json == NULL) {
        list_failed(a, res->err != 0 ? res->err : -EPROTO, res->status);
        return;
    }
    struct gf_store *s = a->list_wls ? a->lw : a->lj;
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(res->json, "items");
    if (!cJSON_IsArray(items))
        items = NULL;
    const cJSON *it;
    cJSON_ArrayForEach(it, items)
    {
        /* One object we cannot read does not hide the others. */
        if (a->list_cqs) {
            revert_grant(a, it);
            (void)gf_store_upsert(a->lq, it);
        } else
            (void)gf_store_upsert(s, it);
    }
    const char *rv = NULL, *cont = NULL;
    gf_kube_list_meta(res->json, &rv, &cont);
    gf_free(a->list_cont);
    a->list_cont = cont != NULL && cont[0] != '\0' ? gf_strdup(cont) : NULL;
    if (a->list_cont == NULL && a->list_cqs) {
        grants_listed(a);
        list_end(a);
        return;
    }
    if (a->list_cont == NULL) {
        if (a->list_wls) {
            list_fence(a);
            return;
        }
        /* Jobs first: a Workload Kueue creates for a listed copy after
         * its LIST was served is in the Workload LIST that follows. */
        a->list_wls = true;
    }
    list_page(a);
}

static void list_page(struct gf_agent *a)
{
    struct gf_kube_resource r;
    gf_kube_resource_parse(a->list_cqs   ? "clusterqueues.kueue.x-k8s.io"
                           : a->list_wls ? "workloads.kueue.x-k8s.io"
                                         : "jobs.batch",
                           &r);
    /* Every ClusterQueue: the per-cohort rule sums the nominal quota of
     * each cohort that held a grant. */
    const struct gf_kube_list_opts o = {
        .label_selector = a->list_cqs || a->list_wls ? NULL : GF_LABEL_LEASE,
        .continue_token = a->list_cont,
        .limit = LIST_PAGE};
    int rc = a->io->list(a->c, &r, &o, list_done, a, &a->list_call);
    if (rc != 0)
        list_failed(a, rc, NULL);
}

static struct gf_store *list_store(gf_store_project_fn project,
                                   gf_store_free_fn fr)
{
    const struct gf_store_opts so = {.project = project, .free_proj = fr};
    return gf_store_new(&so);
}

/* At the fence and at every poll while fenced. */
static void fence_list(struct gf_agent *a)
{
    if (!a->fence.fenced || a->stopping || a->fatal)
        return;
    uint64_t now = gf_clock_now_ms(&a->clk);
    if (a->lj != NULL && now == a->list_sent_ms)
        return; /* the fence and a poll at the same instant */
    if (a->lj != NULL) {
        /* One LIST at a time; one that takes longer than a poll period
         * is given up for a fresh one (the client's own timeout is
         * longer than the margin the fence has). */
        a->list_again = true;
        if (now - a->list_sent_ms >= gf_fence_poll_ms(&a->fence))
            a->io->cancel(a->list_call);
        return;
    }
    a->list_again = false;
    a->lj = list_store(gf_fence_job_project, gf_fence_job_free);
    a->lw = list_store(gf_fence_wl_project, gf_fence_wl_free);
    a->list_sent_ms = now;
    list_page(a);
}

/* --- the fenced state ----------------------------------------------------- */

static void apply(struct gf_agent *a, enum gf_fence_change ch)
{
    uint64_t now = gf_clock_now_ms(&a->clk);
    if (ch == GF_FENCE_ENTER) {
        gf_metric_add(a->m_fences, 1, NULL);
        /* Known again only from this fence's LIST of the grants. */
        a->grants_clear = false;
        describe(a, a->why, sizeof(a->why));
        size_t waiting = 0;
        size_t n = sweep(a, &waiting);
        GF_LOG(&a->lc, GF_LOG_WARN, "fencing",
               "member=%s heartbeat_age_ms=%lld d_ms=%llu copies=%zu "
               "waiting_for_workload=%zu why=%s",
               a->member, (long long)gf_fence_age_ms(&a->fence, now),
               (unsigned long long)a->fence.d_ms, n, waiting, a->why);
        /* copies= counts the caches; the LIST fences the rest. */
        fence_list(a);
    } else if (ch == GF_FENCE_LEAVE) {
        GF_LOG(&a->lc, GF_LOG_INFO, "heartbeat moved again",
               "member=%s fenced_for_ms=%llu d_ms=%llu", a->member,
               (unsigned long long)(now - a->fence.fenced_since_ms),
               (unsigned long long)a->fence.d_ms);
    }
    uint64_t due = gf_fence_deadline(&a->fence);
    if (due == UINT64_MAX)
        gf_timer_stop(&a->due);
    else
        gf_timer_start(&a->due, due > now ? due - now : 0, on_due);
}

static void on_due(struct gf_timer *t)
{
    struct gf_agent *a = t->data;
    apply(a, gf_fence_tick(&a->fence, gf_clock_now_ms(&a->clk)));
}

/* --- heartbeat ------------------------------------------------------------ */

static void poll_fire(struct gf_timer *t);

static void read_answered(struct gf_agent *a, const struct gf_hb_read *r)
{
    const char *res[] = {"ok"};
    gf_metric_add(a->m_reads, 1, res);
    a->last_absent = !r->present;
    a->last_valid = r->valid;
    if (r->valid)
        a->last_renew_wall_ms = r->renew_wall_ms;
    if (!a->answered)
        GF_LOG(&a->lc, GF_LOG_INFO, "heartbeat read",
               "present=%d valid=%d renew_time=%s d_ms=%llu", r->present,
               r->valid, r->renew, (unsigned long long)r->d_ms);
    a->answered = true;
    apply(a, gf_fence_on_read(&a->fence, r, a->hb_sent_ms,
                              gf_clock_now_ms(&a->clk),
                              gf_clock_wall_ms(&a->clk)));
}

/* The API server answered a read: watches waiting out a backoff need not
 * (their caches are what the fence sweeps first, and stale ones are what
 * the fence's LIST has to make up for). */
static void reachable(struct gf_agent *a)
{
    size_t n = a->io->retry_now(a);
    if (n > 0)
        GF_LOG(&a->lc, GF_LOG_INFO, "watches retried now",
               "member=%s watches=%zu", a->member, n);
}

static void hb_done(void *data, const struct gf_kube_result *res)
{
    struct gf_agent *a = data;
    a->hb_call = NULL;
    if (res->err == GF_ECANCELED || a->stopping)
        return;
    if (res->err == 0 || res->http_code == 404)
        reachable(a);
    if (res->err == 0 && res->json != NULL) {
        struct gf_hb_read r;
        gf_fence_lease_parse(res->json, &r);
        read_answered(a, &r);
    } else if (res->http_code == 404) {
        const struct gf_hb_read r = {.present = false};
        read_answered(a, &r);
    } else {
        const char *v[] = {"error"};
        gf_metric_add(a->m_reads, 1, v);
        if (!ready(a) && refused(res->status)) {
            fatal(a, "get lease " GF_HEARTBEAT_NS "/" GF_HEARTBEAT_NAME,
                  res->status);
            return;
        }
        GF_LOG(&a->lc, GF_LOG_WARN, "heartbeat read failed",
               "status=%ld message=%s", res->status->code,
               res->status->message);
    }
    if (a->fence.fenced)
        sweep(a, NULL);
    if (!a->ready_logged && ready(a)) {
        a->ready_logged = true;
        GF_LOG(&a->lc, GF_LOG_INFO, "ready", "member=%s", a->member);
    }
    /* Reads every P from the previous send, not from its answer, so a
     * slow server does not stretch the period. */
    uint64_t now = gf_clock_now_ms(&a->clk);
    uint64_t next = a->hb_sent_ms + gf_fence_poll_ms(&a->fence);
    gf_timer_start(&a->poll, next > now ? next - now : 0, poll_fire);
}

static void poll_fire(struct gf_timer *t)
{
    struct gf_agent *a = t->data;
    if (a->stopping || a->fatal)
        return;
    struct gf_kube_resource r;
    gf_kube_resource_parse("leases.coordination.k8s.io", &r);
    uint64_t p = gf_fence_poll_ms(&a->fence);
    const struct gf_kube_op op = {.method = "GET",
                                  .res = &r,
                                  .ns = GF_HEARTBEAT_NS,
                                  .name = GF_HEARTBEAT_NAME,
                                  .timeout_ms = p};
    a->hb_sent_ms = gf_clock_now_ms(&a->clk);
    if (a->io->call(a->c, &op, hb_done, a, &a->hb_call) != 0)
        gf_timer_start(&a->poll, p, poll_fire);
    /* Whatever this read shows, the copies are read afresh every poll
     * while fenced; a LIST that failed is retried here. */
    fence_list(a);
}

/* --- watches -------------------------------------------------------------- */

static void job_add(void *data, const struct gf_store_entry *e)
{
    (void)e;
    sweep_soon(data);
}
static void job_upd(void *data, const struct gf_store_entry *old,
                    const struct gf_store_entry *cur)
{
    (void)old;
    (void)cur;
    sweep_soon(data);
}
static void wl_add(void *data, const struct gf_store_entry *e)
{
    struct gf_agent *a = data;
    gf_fence_index_update(&a->idx, NULL, e);
    sweep_soon(a);
}
static void wl_upd(void *data, const struct gf_store_entry *old,
                   const struct gf_store_entry *cur)
{
    struct gf_agent *a = data;
    gf_fence_index_update(&a->idx, old, cur);
    /* The watch caught up with our patch (or someone else's write). */
    const char *done = gf_htab_get_str(&a->patched_rv, cur->key);
    if (done != NULL && strcmp(done, cur->rv) != 0)
        gf_free(gf_htab_del_str(&a->patched_rv, cur->key));
    sweep_soon(a);
}
static void wl_del(void *data, const struct gf_store_entry *old)
{
    struct gf_agent *a = data;
    gf_fence_index_update(&a->idx, old, NULL);
    gf_free(gf_htab_del_str(&a->patched_rv, old->key));
}

static void on_terminal(void *data, int err, const struct gf_api_status *st)
{
    struct gf_agent *a = data;
    (void)err;
    if (!ready(a) && refused(st))
        fatal(a, "watch jobs and workloads", st);
}

static int start_watch(struct gf_agent *a, const char *resource,
                       const char *selector, gf_store_project_fn project,
                       gf_store_free_fn fr, const struct gf_store_handlers *hs,
                       struct gf_store **store, struct gf_reflector **refl)
{
    struct gf_store_opts so = {
        .project = project, .free_proj = fr, .handlers = hs};
    *store = gf_store_new(&so);
    struct gf_reflector_opts ro = {.client = a->c,
                                   .store = *store,
                                   .rng = &a->rng,
                                   .label_selector = selector,
                                   .page_limit = 500,
                                   .lc = &a->lc,
                                   .on_terminal = on_terminal,
                                   .data = a};
    int rc = gf_kube_resource_parse(resource, &ro.res);
    if (rc == 0)
        rc = gf_reflector_new(&ro, refl);
    if (rc == 0)
        rc = gf_reflector_start(*refl);
    return rc;
}

/* --- HTTP ----------------------------------------------------------------- */

static int healthz(void *data, struct gf_buf *body, const char **ct)
{
    (void)data;
    *ct = "text/plain; charset=utf-8";
    gf_buf_puts(body, "ok\n");
    return 200;
}

static int readyz(void *data, struct gf_buf *body, const char **ct)
{
    struct gf_agent *a = data;
    *ct = "text/plain; charset=utf-8";
    if (ready(a)) {
        gf_buf_puts(body, "ok\n");
        return 200;
    }
    if (!a->answered)
        gf_buf_puts(body, "heartbeat: no read answered yet\n");
    if (a->jobs == NULL || !gf_store_has_synced(a->jobs))
        gf_buf_puts(body, "jobs: not synced\n");
    if (a->wls == NULL || !gf_store_has_synced(a->wls))
        gf_buf_puts(body, "workloads: not synced\n");
    return 503;
}

static int metrics(void *data, struct gf_buf *body, const char **ct)
{
    struct gf_agent *a = data;
    *ct = GF_METRICS_CONTENT_TYPE;
    gf_metric_set(a->m_fenced, a->fence.fenced ? 1 : 0, NULL);
    int64_t age = gf_fence_age_ms(&a->fence, gf_clock_now_ms(&a->clk));
    gf_metric_set(a->m_age, age >= 0 ? (double)age / 1000.0 : NAN, NULL);
    return gf_metrics_render(a->m, body) == 0 ? 200 : 500;
}

static void registry(struct gf_agent *a)
{
    static const char *const none[] = {NULL};
    static const char *const result[] = {"result", NULL};
    a->m = gf_metrics_new();
    a->m_fenced =
        gf_metrics_gauge(a->m, "gpufed_agent_fenced",
                         "1 while the agent fences borrowed copies", none);
    a->m_fences =
        gf_metrics_counter(a->m, "gpufed_agent_fences_total",
                           "times the agent entered the fenced state", none);
    a->m_copies =
        gf_metrics_counter(a->m, "gpufed_agent_copies_fenced_total",
                           "copy Workloads the agent deactivated", none);
    a->m_age = gf_metrics_gauge(
        a->m, "gpufed_agent_heartbeat_age_seconds",
        "time since the heartbeat was last known to move, on the agent's "
        "clock (NaN when it never moved since the agent started)",
        none);
    a->m_reads = gf_metrics_counter(
        a->m, "gpufed_agent_heartbeat_reads_total",
        "heartbeat reads: ok (answered, a 404 included) or error", result);
    a->m_lists = gf_metrics_counter(
        a->m, "gpufed_agent_fence_lists_total",
        "fresh LISTs of copies and Workloads read while fenced: ok or error "
        "(an error is retried at the next poll)",
        result);
    const char *ok[] = {"ok"}, *err[] = {"error"};
    gf_metric_add(a->m_reads, 0, ok);
    gf_metric_add(a->m_reads, 0, err);
    gf_metric_add(a->m_lists, 0, ok);
    gf_metric_add(a->m_lists, 0, err);
}

static size_t retry_watches(struct gf_agent *a)
{
    size_t n = 0;
    if (a->job_refl != NULL && gf_reflector_retry_now(a->job_refl))
        n++;
    if (a->wl_refl != NULL && gf_reflector_retry_now(a->wl_refl))
        n++;
    return n;
}

static const struct gf__agent_io kube_io = {.call = gf_kube_call,
                                            .get = gf_kube_get,
                                            .list = gf_kube_list,
                                            .patch = gf_kube_patch,
                                            .cancel = gf_kube_call_cancel,
                                            .event = gf_event_post,
                                            .retry_now = retry_watches};

/* --- lifecycle ------------------------------------------------------------ */

/* The clock, the transfer engine, the client and the listener. */
static int open_io(struct gf_agent *a, const struct gf_agent_opts *o)
{
    int rc = gf_clock_init_uv_rate(&a->clk, a->loop, o->clock_rate_ppm);
    if (rc == 0)
        rc = gf_http_new(a->loop, &a->clk, &a->http);
    struct gf_kube_client_opts co = {.user_agent = "gpufed-agent",
                                     .name = a->member};
    if (rc == 0)
        rc = gf_kube_client_new(a->http, &a->clk, o->creds, &co, &a->c);
    if (rc == 0 && o->listen != NULL) {
        rc = gf_httpd_new(a->loop, o->listen, &a->httpd);
        if (rc != 0)
            GF_LOG(&a->lc, GF_LOG_ERROR, "cannot listen", "addr=%s err=%s",
                   o->listen, gf_strerror(rc));
    }
    return rc;
}

/* Undoes open_io and frees a; what has handles closes when the loop runs. */
static void start_failed(struct gf_agent *a, int rc)
{
    GF_LOG(&a->lc, GF_LOG_ERROR, "agent not started", "err=%s",
           gf_strerror(rc));
    gf_kube_client_free(a->c);
    if (a->http != NULL)
        gf_http_close(a->http, NULL, NULL);
    gf_clock_close(&a->clk);
    gf_metrics_free(a->m);
    gf_htab_free(&a->idx);
    gf_htab_free(&a->inflight);
    gf_htab_free(&a->patched_rv);
    gf_free(a->member);
    gf_free(a);
}

static void serve(struct gf_agent *a, const char *listen)
{
    gf_httpd_set_clock(a->httpd, &a->clk);
    gf_httpd_route(a->httpd, "/healthz", healthz, a);
    gf_httpd_route(a->httpd, "/readyz", readyz, a);
    gf_httpd_route(a->httpd, "/metrics", metrics, a);
    GF_LOG(&a->lc, GF_LOG_INFO, "serving", "addr=%s port=%d", listen,
           gf_httpd_port(a->httpd));
}

static struct gf_agent *agent_alloc(const struct gf__agent_io *io,
                                    const char *member,
                                    uint64_t max_clock_offset_ms)
{
    struct gf_agent *a = gf_calloc(1, sizeof(*a));
    a->io = io;
    a->member = gf_strdup(member != NULL ? member : "");
    a->lc = (struct gf_log_ctx){.comp = "agent", .cluster = a->member};
    gf_rand_seed_os(&a->rng);
    gf_fence_init(&a->fence, max_clock_offset_ms);
    gf_htab_init(&a->idx, GF_HTAB_OWN_KEYS);
    gf_htab_init(&a->inflight, GF_HTAB_OWN_KEYS);
    gf_htab_init(&a->patched_rv, GF_HTAB_OWN_KEYS);
    registry(a);
    return a;
}

static void init_timers(struct gf_agent *a)
{
    struct gf_timer *timers[] = {&a->poll, &a->due, &a->sweep, &a->drain};
    for (size_t i = 0; i < sizeof(timers) / sizeof(timers[0]); i++) {
        gf_timer_init(&a->clk, timers[i]);
        timers[i]->data = a;
    }
}

static struct gf_store_handlers job_handlers(struct gf_agent *a)
{
    return (struct gf_store_handlers){
        .on_add = job_add, .on_update = job_upd, .data = a};
}

static struct gf_store_handlers wl_handlers(struct gf_agent *a)
{
    return (struct gf_store_handlers){
        .on_add = wl_add, .on_update = wl_upd, .on_delete = wl_del, .data = a};
}

int gf__agent_new(const struct gf__agent_io *io, uint64_t start_ms,
                  int64_t wall_ms, const char *member,
                  uint64_t max_clock_offset_ms, struct gf_agent **out)
{
    struct gf_agent *a = agent_alloc(io, member, max_clock_offset_ms);
    gf_clock_init_manual(&a->clk, start_ms, wall_ms);
    init_timers(a);
    const struct gf_store_handlers jh = job_handlers(a), wh = wl_handlers(a);
    const struct gf_store_opts jo = {.project = gf_fence_job_project,
                                     .free_proj = gf_fence_job_free,
                                     .handlers = &jh};
    const struct gf_store_opts wo = {.project = gf_fence_wl_project,
                                     .free_proj = gf_fence_wl_free,
                                     .handlers = &wh};
    a->jobs = gf_store_new(&jo);
    a->wls = gf_store_new(&wo);
    gf_timer_start(&a->poll, 0, poll_fire);
    *out = a;
    return 0;
}

struct gf_clock *gf__agent_clock(struct gf_agent *a)
{
    return &a->clk;
}

void gf__agent_caches(struct gf_agent *a, struct gf_store **jobs,
                      struct gf_store **wls)
{
    *jobs = a->jobs;
    *wls = a->wls;
}

bool gf__agent_fenced(const struct gf_agent *a)
{
    return a->fence.fenced;
}

int gf_agent_start(const struct gf_agent_opts *o, struct gf_agent **out)
{
    *out = NULL;
    struct gf_agent *a =
        agent_alloc(&kube_io, o->member, o->max_clock_offset_ms);
    a->loop = o->loop;
    a->on_fatal = o->on_fatal;
    a->fatal_data = o->data;
    int rc = open_io(a, o);
    if (rc != 0) {
        start_failed(a, rc);
        return rc;
    }
    init_timers(a);
    if (a->httpd != NULL)
        serve(a, o->listen);
    const struct gf_store_handlers jh = job_handlers(a), wh = wl_handlers(a);
    rc = start_watch(a, "jobs.batch", GF_LABEL_LEASE, gf_fence_job_project,
                     gf_fence_job_free, &jh, &a->jobs, &a->job_refl);
    if (rc == 0)
        rc = start_watch(a, "workloads.kueue.x-k8s.io", NULL,
                         gf_fence_wl_project, gf_fence_wl_free, &wh, &a->wls,
                         &a->wl_refl);
    gf_timer_start(&a->poll, 0, poll_fire);
    GF_LOG(&a->lc, GF_LOG_INFO, "agent started",
           "member=%s max_clock_offset_ms=%llu", a->member,
           (unsigned long long)o->max_clock_offset_ms);
    *out = a;
    return rc;
}

static void agent_free(struct gf_agent *a)
{
    list_free(a);
    gf_store_free(a->jobs);
    gf_store_free(a->wls);
    gf_fence_index_free(&a->idx);
    gf_htab_free(&a->inflight);
    gf_htab_free_all(&a->patched_rv, gf_free);
    gf_metrics_free(a->m);
    gf_clock_close(&a->clk);
    gf_free(a->member);
    gf_free(a);
}

static void finish_stop(void *data)
{
    struct gf_agent *a = data;
    void (*cb)(void *) = a->stop_cb;
    void *d = a->stop_data;
    agent_free(a);
    if (cb != NULL)
        cb(d);
}

void gf__agent_free(struct gf_agent *a)
{
    a->stopping = true;
    a->io->cancel(a->hb_call);
    a->io->cancel(a->list_call);
    gf_timer_stop(&a->poll);
    gf_timer_stop(&a->due);
    gf_timer_stop(&a->sweep);
    gf_timer_stop(&a->drain);
    agent_free(a);
}

static void on_closed(void *data)
{
    struct gf_agent *a = data;
    if (--a->closing > 0)
        return;
    /* Last: the transfer engine, whose close cancels what is left (an
     * Event still in flight); its callbacks only count down. */
    gf_kube_client_free(a->c);
    a->c = NULL;
    gf_http_close(a->http, finish_stop, a);
}

static void close_all(struct gf_agent *a)
{
    a->closing = 1;
    if (a->job_refl != NULL) {
        a->closing++;
        gf_reflector_close(a->job_refl, on_closed, a);
    }
    if (a->wl_refl != NULL) {
        a->closing++;
        gf_reflector_close(a->wl_refl, on_closed, a);
    }
    if (a->httpd != NULL) {
        a->closing++;
        gf_httpd_close(a->httpd, on_closed, a);
    }
    on_closed(a);
}

static void on_drain(struct gf_timer *t)
{
    struct gf_agent *a = t->data;
    if (a->calls > 0 && gf_clock_now_ms(&a->clk) < a->drain_deadline) {
        gf_timer_start(t, 20, on_drain);
        return;
    }
    close_all(a);
}

void gf_agent_stop(struct gf_agent *a, void (*cb)(void *data), void *data)
{
    a->stopping = true;
    a->stop_cb = cb;
    a->stop_data = data;
    GF_LOG(&a->lc, GF_LOG_INFO, "agent stopping", "");
    gf_timer_stop(&a->poll);
    gf_timer_stop(&a->due);
    gf_timer_stop(&a->sweep);
    a->io->cancel(a->hb_call);
    a->io->cancel(a->list_call);
    /* Patches in flight finish (a fence half sent is worth finishing);
     * the drain gives them DRAIN_MS. */
    a->drain_deadline = gf_clock_now_ms(&a->clk) + DRAIN_MS;
    gf_timer_start(&a->drain, 0, on_drain);
}
