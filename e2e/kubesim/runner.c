/*
 * runner: Jobs become Pods on simulated nodes (see runner.h).
 *
 * Store events mark Jobs dirty; one reconcile per loop turn (a 0 ms timer
 * on the cluster clock) brings each dirty Job's Pods and status in line
 * and then binds Pending Pods to nodes with free GPUs. Each running Pod
 * has its own timer for its end. The runner keeps, per Job, only what the
 * Job controller keeps in memory (its live Pods and the succeeded/failed
 * counts); everything else is read from the stored Job when it runs.
 */
#include "e2e/kubesim/runner.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/json.h"
#include "common/log.h"
#include "common/htab.h"
#include "e2e/kubesim/kueue_index.h"

#define RN_DURATION "kubesim.gpufed.io/duration"
#define RN_FAIL "kubesim.gpufed.io/fail"
#define RN_GPU "nvidia.com/gpu"
#define RN_FROZEN_RETRY_MS 100
/* The Job controller's pod failure back-off: 10 s doubling, 6 min cap. */
#define RN_BACKOFF_MS 10000
#define RN_BACKOFF_MAX_MS 360000

/* The resources a node's capacity is checked for, as the scheduler does. */
enum { RN_R_GPU, RN_R_CPU, RN_R_MEM, RN_R_PODS, RN_NRES };
static const char *const rn_res[RN_NRES] = {RN_GPU, "cpu", "memory", "pods"};

struct rnode {
    char name[32];
    cJSON *labels;         /* owned: the Node's labels, from the store */
    int64_t free[RN_NRES]; /* allocatable minus bound Pods, milli-units */
};

struct rjob;

struct rpod {
    struct rjob *job;
    char *key; /* "namespace/name" */
    char *name;
    cJSON *labels; /* owned copy, for the execution log */
    char *workload;
    int node;             /* -1 while Pending */
    unsigned gpus;        /* whole GPUs, for the execution log */
    int64_t req[RN_NRES]; /* effective requests, milli-units */
    cJSON *node_sel;      /* spec.nodeSelector; owned; may be NULL */
    char *unsched;        /* the PodScheduled=False message written */
    uint64_t duration_ms;
    bool fail;
    struct gf_timer timer;
    struct rpod *next; /* in the Job's list */
};

struct rjob {
    struct gf_ks_runner *r;
    char *key, *ns, *name, *uid;
    struct rpod *pods; /* live (not finished) Pods */
    size_t active, running;
    int64_t succeeded, failed;
    bool dirty;
    uint64_t backoff_until; /* no replacement Pod before (clock ms) */
    struct gf_timer timer;  /* wakes the Job when its back-off ends */
};

struct gf_ks_runner {
    struct gf_ks_store *st;
    struct gf_clock *clk;
    struct gf_ks_faults *faults;
    char *cluster;
    struct gf_log_ctx lc;
    struct gf_ks_observer *obs;
    struct gf_timer timer;
    bool in_reconcile, dirty;
    struct gf_htab jobs; /* key -> struct rjob */
    struct gf_htab pods; /* key -> struct rpod */
    unsigned n_nodes, gpus_per_node;
    struct rnode *nodes;
    uint64_t default_ms;
    double scale;
    int fd;
    struct gf_ks_runner_stats stats;
    const struct gf_ks_rtype *t_pod, *t_job;
};

static void schedule(struct gf_ks_runner *r);

static bool frozen(const struct gf_ks_runner *r)
{
    return r->faults != NULL && gf_ks_faults_kueue_frozen(r->faults);
}

static char *key_of(const char *ns, const char *name)
{
    size_t len = strlen(ns) + strlen(name) + 2;
    char *k = gf_malloc(len);
    snprintf(k, len, "%s/%s", ns, name);
    return k;
}

/* ---- execution log ------------------------------------------------------- */

static void exec_log(struct gf_ks_runner *r, const struct rpod *p,
                     const char *event, const char *reason)
{
    if (r->fd < 0)
        return;
    char ts[32];
    int64_t now = gf_clock_wall_ms(r->clk);
    gf_time_rfc3339(now, ts);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "ts", ts);
    cJSON_AddNumberToObject(j, "ts_ms", (double)now);
    cJSON_AddStringToObject(j, "event", event);
    cJSON_AddStringToObject(j, "cluster", r->cluster);
    cJSON_AddStringToObject(j, "namespace", p->job->ns);
    cJSON_AddStringToObject(j, "job", p->job->name);
    cJSON_AddStringToObject(j, "job_uid", p->job->uid);
    cJSON_AddStringToObject(j, "workload", p->workload ? p->workload : "");
    cJSON_AddStringToObject(j, "pod", p->name);
    if (p->node >= 0)
        cJSON_AddStringToObject(j, "node", r->nodes[p->node].name);
    cJSON_AddItemToObject(j, "labels",
                          p->labels != NULL ? cJSON_Duplicate(p->labels, true)
                                            : cJSON_CreateObject());
    cJSON_AddNumberToObject(j, "gpus", p->gpus);
    cJSON_AddStringToObject(j, "reason", reason);
    char *line = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    size_t len = strlen(line);
    char *buf = gf_malloc(len + 2);
    memcpy(buf, line, len + 1);
    buf[len] = '\n';
    cJSON_free(line);
    /*
     * One write(2) per line on an O_APPEND descriptor: readers tailing the
     * file see whole lines. A small append to a local file does not block
     * the loop in any way that matters for a test instrument.
     */
    ssize_t n = write(r->fd, buf, len + 1);
    if (n != (ssize_t)(len + 1))
        GF_LOG(&r->lc, GF_LOG_WARN, "execution log write failed", "error=%s",
               n < 0 ? strerror(errno) : "short write");
    gf_free(buf);
}

/* ---- conditions ---------------------------------------------------------- */

static void cond_set(const struct gf_ks_runner *r, cJSON *conds,
                     const char *type, bool status, const char *reason,
                     const char *msg)
{
    char ts[32];
    gf_time_rfc3339(gf_clock_wall_ms(r->clk), ts);
    const char *st = status ? "True" : "False";
    cJSON *c = gf_json_cond_ensure(conds, type);
    const char *old = gf_json_str(c, "status");
    if (old != NULL && strcmp(old, st) == 0)
        return; /* the Job controller keeps a condition that holds */
    gf_json_set_str(c, "status", st);
    gf_json_set_str(c, "reason", reason);
    gf_json_set_str(c, "message", msg);
    gf_json_set_str(c, "lastProbeTime", ts);
    gf_json_set_str(c, "lastTransitionTime", ts);
}

/* ---- Pods ---------------------------------------------------------------- */

/*
 * status.containerStatuses as the kubelet reports them, so kubectl's
 * READY and STATUS columns read right. exit < 0: running.
 */
static cJSON *container_statuses(const cJSON *spec, const char *ts, int exit)
{
    cJSON *arr = cJSON_CreateArray();
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(spec, "containers"))
    {
        const char *name = gf_json_str(c, "name");
        const char *image = gf_json_str(c, "image");
        cJSON *cs = cJSON_CreateObject();
        cJSON_AddItemToArray(arr, cs);
        cJSON_AddStringToObject(cs, "name", name != NULL ? name : "");
        cJSON_AddStringToObject(cs, "image", image != NULL ? image : "");
        cJSON_AddStringToObject(cs, "imageID", "");
        cJSON_AddBoolToObject(cs, "ready", exit < 0);
        cJSON_AddBoolToObject(cs, "started", exit < 0);
        cJSON_AddNumberToObject(cs, "restartCount", 0);
        cJSON *state = cJSON_AddObjectToObject(cs, "state");
        if (exit < 0) {
            cJSON *run = cJSON_AddObjectToObject(state, "running");
            cJSON_AddStringToObject(run, "startedAt", ts);
            continue;
        }
        cJSON *term = cJSON_AddObjectToObject(state, "terminated");
        cJSON_AddNumberToObject(term, "exitCode", exit);
        cJSON_AddStringToObject(term, "reason",
                                exit == 0 ? "Completed" : "Error");
        cJSON_AddStringToObject(term, "finishedAt", ts);
    }
    return arr;
}

/* The stored Pod's spec (returned-owned), for its container list. */
static cJSON *pod_spec(struct gf_ks_runner *r, const char *ns, const char *name)
{
    struct gf_ks_obj *o = gf_ks_store_get(r->st, r->t_pod, ns, name);
    if (o == NULL)
        return cJSON_CreateObject();
    cJSON *pod = gf_ks_obj_parse(o);
    cJSON *spec = cJSON_DetachItemFromObjectCaseSensitive(pod, "spec");
    cJSON_Delete(pod);
    return spec != NULL ? spec : cJSON_CreateObject();
}

static void rpod_free(void *v)
{
    struct rpod *p = v;
    gf_timer_stop(&p->timer);
    gf_free(p->key);
    gf_free(p->name);
    gf_free(p->workload);
    cJSON_Delete(p->labels);
    cJSON_Delete(p->node_sel);
    gf_free(p->unsched);
    gf_free(p);
}

static void node_give(struct gf_ks_runner *r, const struct rpod *p, int sign)
{
    for (int i = 0; i < RN_NRES; i++)
        r->nodes[p->node].free[i] += sign * p->req[i];
}

/* Unlinks a Pod from its Job and the index, gives back its GPUs. */
static void rpod_detach(struct gf_ks_runner *r, struct rpod *p)
{
    struct rjob *j = p->job;
    for (struct rpod **pp = &j->pods; *pp != NULL; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    j->active--;
    if (p->node >= 0) {
        node_give(r, p, 1);
        j->running--;
    }
    gf_htab_del_str(&r->pods, p->key);
    j->dirty = true;
}

/* Deletes a live Pod (suspension, Job end, Job deletion). */
static void rpod_stop(struct gf_ks_runner *r, struct rpod *p,
                      const char *reason)
{
    rpod_detach(r, p);
    if (p->node >= 0) {
        exec_log(r, p, "stop", reason);
        r->stats.stopped++;
    }
    const char *slash = strchr(p->key, '/');
    char ns[254];
    snprintf(ns, sizeof(ns), "%.*s", (int)(slash - p->key), p->key);
    gf_ks_store_delete(r->st, r->t_pod, ns, p->name, NULL, NULL, NULL, NULL);
    rpod_free(p);
}

static void on_pod_end(struct gf_timer *t)
{
    struct rpod *p = t->data;
    struct gf_ks_runner *r = p->job->r;
    if (frozen(r)) {
        gf_timer_start(&p->timer, RN_FROZEN_RETRY_MS, on_pod_end);
        return;
    }
    struct rjob *j = p->job;
    rpod_detach(r, p);
    const char *phase = p->fail ? "Failed" : "Succeeded";
    if (p->fail) {
        j->failed++;
        r->stats.failed++;
        /* "Failed Pods ... are recreated by the Job controller with an
         * exponential back-off delay (10s, 20s, 40s ...) capped at six
         * minutes" (the Job documentation). */
        uint64_t d = RN_BACKOFF_MS;
        for (int64_t i = 1; i < j->failed && d < RN_BACKOFF_MAX_MS; i++)
            d *= 2;
        if (d > RN_BACKOFF_MAX_MS)
            d = RN_BACKOFF_MAX_MS;
        j->backoff_until =
            gf_clock_now_ms(r->clk) + (uint64_t)((double)d / r->scale);
    } else {
        j->succeeded++;
        r->stats.succeeded++;
    }
    exec_log(r, p, "stop", phase);
    char ts[32];
    gf_time_rfc3339(gf_clock_wall_ms(r->clk), ts);
    cJSON *st = cJSON_CreateObject();
    cJSON_AddStringToObject(st, "phase", phase);
    cJSON *conds = cJSON_AddArrayToObject(st, "conditions");
    cond_set(r, conds, "PodScheduled", true, "", "");
    cond_set(r, conds, "Ready", false, "PodCompleted", "");
    const char *slash = strchr(p->key, '/');
    char ns[254];
    snprintf(ns, sizeof(ns), "%.*s", (int)(slash - p->key), p->key);
    cJSON *spec = pod_spec(r, ns, p->name);
    cJSON_AddItemToObject(st, "containerStatuses",
                          container_statuses(spec, ts, p->fail ? 1 : 0));
    cJSON_Delete(spec);
    gf_ks_store_patch_status(r->st, r->t_pod, ns, p->name, st, NULL, NULL);
    cJSON_Delete(st);
    rpod_free(p);
    schedule(r);
}

/*
 * The pod's effective requests (Kueue-lite's reading: containers, init
 * containers and overhead) of the resources nodes are checked for, and
 * its whole GPUs for the execution log.
 */
static void pod_reqs(struct rpod *p, const cJSON *spec)
{
    struct gf_kq_podset ps = {.count = 1};
    gf__kq_podset_reqs(&ps, spec);
    for (size_t i = 0; i < ps.n_req; i++) {
        for (int k = 0; k < RN_NRES; k++)
            if (strcmp(ps.req[i].res, rn_res[k]) == 0 && ps.req[i].milli > 0)
                p->req[k] = ps.req[i].milli;
        gf_free(ps.req[i].res);
    }
    gf_free(ps.req);
    p->req[RN_R_PODS] = 1000;
    /* Extended resources are whole units: round a fraction up. */
    p->req[RN_R_GPU] = (p->req[RN_R_GPU] + 999) / 1000 * 1000;
    int64_t g = p->req[RN_R_GPU] / 1000;
    p->gpus = g > 1000000 ? 1000000 : (unsigned)g;
}

/* The Workload that owns nothing but is owned by the Job, if any. */
static bool find_wl(void *data, struct gf_ks_obj *o)
{
    char **out = data;
    if (strcmp(o->type->gr, "kueue.x-k8s.io/workloads") != 0)
        return true;
    *out = gf_strdup(o->name);
    return false;
}

static cJSON *pod_json(const struct rjob *j, const cJSON *job)
{
    const cJSON *tmpl = gf_json_path(job, "spec.template");
    cJSON *pod = cJSON_CreateObject();
    cJSON_AddStringToObject(pod, "apiVersion", "v1");
    cJSON_AddStringToObject(pod, "kind", "Pod");
    cJSON *md = cJSON_AddObjectToObject(pod, "metadata");
    char gen[300];
    snprintf(gen, sizeof(gen), "%.240s-", j->name);
    cJSON_AddStringToObject(md, "generateName", gen);
    const cJSON *tl = gf_json_path(tmpl, "metadata.labels");
    cJSON *labels =
        cJSON_IsObject(tl) ? cJSON_Duplicate(tl, true) : cJSON_CreateObject();
    cJSON_AddItemToObject(md, "labels", labels);
    /* The API server put these in the template already; set them once. */
    cJSON_DeleteItemFromObjectCaseSensitive(labels, "job-name");
    cJSON_DeleteItemFromObjectCaseSensitive(labels, "controller-uid");
    cJSON_DeleteItemFromObjectCaseSensitive(labels,
                                            "batch.kubernetes.io/job-name");
    cJSON_DeleteItemFromObjectCaseSensitive(
        labels, "batch.kubernetes.io/controller-uid");
    cJSON_AddStringToObject(labels, "batch.kubernetes.io/job-name", j->name);
    cJSON_AddStringToObject(labels, "job-name", j->name);
    cJSON_AddStringToObject(labels, "batch.kubernetes.io/controller-uid",
                            j->uid);
    cJSON_AddStringToObject(labels, "controller-uid", j->uid);
    const cJSON *ta = gf_json_path(tmpl, "metadata.annotations");
    if (cJSON_IsObject(ta))
        cJSON_AddItemToObject(md, "annotations", cJSON_Duplicate(ta, true));
    cJSON *ors = cJSON_AddArrayToObject(md, "ownerReferences");
    cJSON * or = cJSON_CreateObject();
    cJSON_AddItemToArray(ors, or);
    cJSON_AddStringToObject(or, "apiVersion", "batch/v1");
    cJSON_AddStringToObject(or, "kind", "Job");
    cJSON_AddStringToObject(or, "name", j->name);
    cJSON_AddStringToObject(or, "uid", j->uid);
    cJSON_AddTrueToObject(or, "controller");
    cJSON_AddTrueToObject(or, "blockOwnerDeletion");
    const cJSON *spec = gf_json_path(tmpl, "spec");
    cJSON_AddItemToObject(pod, "spec",
                          cJSON_IsObject(spec) ? cJSON_Duplicate(spec, true)
                                               : cJSON_CreateObject());
    cJSON *st = cJSON_AddObjectToObject(pod, "status");
    cJSON_AddStringToObject(st, "phase", "Pending");
    return pod;
}

/* Job-wide settings read when a Pod is made. */
struct podcfg {
    uint64_t duration_ms;
    bool fail;
};

static void rpod_create(struct gf_ks_runner *r, struct rjob *j,
                        const cJSON *job, const struct podcfg *cfg)
{
    cJSON *pod = pod_json(j, job);
    struct gf_ks_obj *o = NULL;
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    int rc =
        gf_ks_store_create(r->st, r->t_pod, j->ns, pod, GF_KS_STATUS, &o, &err);
    if (rc != 0) {
        GF_LOG(&r->lc, GF_LOG_WARN, "pod create failed", "job=%s error=%s",
               j->key, err.message);
        gf_ks_status_clear(&err);
        cJSON_Delete(pod);
        return;
    }
    struct rpod *p = gf_calloc(1, sizeof(*p));
    p->job = j;
    p->name = gf_strdup(o->name);
    p->key = key_of(j->ns, o->name);
    p->labels = cJSON_DetachItemFromObjectCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(pod, "metadata"), "labels");
    pod_reqs(p, gf_json_path(pod, "spec"));
    const cJSON *sel = gf_json_path(pod, "spec.nodeSelector");
    p->node_sel = cJSON_IsObject(sel) ? cJSON_Duplicate(sel, true) : NULL;
    p->node = -1;
    p->duration_ms = cfg->duration_ms;
    p->fail = cfg->fail;
    gf_ks_store_dependents(r->st, j->uid, find_wl, &p->workload);
    gf_timer_init(r->clk, &p->timer);
    p->timer.data = p;
    p->next = j->pods;
    j->pods = p;
    j->active++;
    gf_htab_put_str(&r->pods, p->key, p);
    cJSON_Delete(pod);
}

/* Whether every key of the Pod's nodeSelector is a label of the node. */
static bool selector_matches(const cJSON *sel, const cJSON *labels)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, sel)
    {
        /* Label keys are data (kubernetes.io/hostname): one key each. */
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(labels, it->string);
        if (!cJSON_IsString(l) || !cJSON_IsString(it) ||
            strcmp(l->valuestring, it->valuestring) != 0)
            return false;
    }
    return true;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * Marks a Pod that no node can take PodScheduled=False/Unschedulable with
 * the scheduler's message ("0/4 nodes are available: 4 Insufficient
 * nvidia.com/gpu."), written when it changes.
 */
static void unschedulable(struct gf_ks_runner *r, struct rpod *p, size_t n_sel,
                          const size_t n_res[RN_NRES])
{
    char parts[RN_NRES + 1][96];
    const char *v[RN_NRES + 1];
    size_t n = 0;
    for (int k = 0; k < RN_NRES; k++)
        if (n_res[k] > 0) {
            snprintf(parts[n], sizeof(parts[n]), "%zu Insufficient %s",
                     n_res[k], rn_res[k]);
            v[n] = parts[n];
            n++;
        }
    if (n_sel > 0) {
        snprintf(parts[n], sizeof(parts[n]),
                 "%zu node(s) didn't match Pod's node affinity/selector",
                 n_sel);
        v[n] = parts[n];
        n++;
    }
    qsort(v, n, sizeof(v[0]), str_cmp);
    char msg[512];
    size_t len = (size_t)snprintf(msg, sizeof(msg),
                                  "0/%u nodes are available: ", r->n_nodes);
    for (size_t i = 0; i < n && len < sizeof(msg); i++)
        len += (size_t)snprintf(msg + len, sizeof(msg) - len, "%s%s",
                                i > 0 ? ", " : "", v[i]);
    if (len < sizeof(msg))
        snprintf(msg + len, sizeof(msg) - len, ".");
    if (p->unsched != NULL && strcmp(p->unsched, msg) == 0)
        return;
    gf_free(p->unsched);
    p->unsched = gf_strdup(msg);
    cJSON *st = cJSON_CreateObject();
    cJSON_AddStringToObject(st, "phase", "Pending");
    cJSON *conds = cJSON_AddArrayToObject(st, "conditions");
    cond_set(r, conds, "PodScheduled", false, "Unschedulable", msg);
    gf_ks_store_patch_status(r->st, r->t_pod, p->job->ns, p->name, st, NULL,
                             NULL);
    cJSON_Delete(st);
}

/*
 * Binds a Pending Pod to the first node whose labels match its
 * nodeSelector and that has room for its GPU, cpu, memory and pod
 * requests; false if none.
 */
static bool rpod_bind(struct gf_ks_runner *r, struct rpod *p)
{
    int node = -1;
    size_t n_sel = 0, n_res[RN_NRES] = {0};
    for (unsigned i = 0; i < r->n_nodes && node < 0; i++) {
        if (!selector_matches(p->node_sel, r->nodes[i].labels)) {
            n_sel++;
            continue;
        }
        bool fit = true;
        for (int k = 0; k < RN_NRES; k++)
            if (p->req[k] > r->nodes[i].free[k]) {
                n_res[k]++;
                fit = false;
            }
        if (fit)
            node = (int)i;
    }
    if (node < 0) {
        unschedulable(r, p, n_sel, n_res);
        return false;
    }
    p->node = node;
    node_give(r, p, -1);
    p->job->running++;
    p->job->dirty = true;
    const char *ns = p->job->ns;
    char body[128];
    snprintf(body, sizeof(body), "{\"spec\":{\"nodeName\":\"%s\"}}",
             r->nodes[node].name);
    gf_ks_store_patch(r->st, r->t_pod, ns, p->name, GF_KS_PATCH_MERGE, body,
                      strlen(body), GF_KS_MAIN, NULL, NULL);
    char ts[32];
    gf_time_rfc3339(gf_clock_wall_ms(r->clk), ts);
    cJSON *st = cJSON_CreateObject();
    cJSON_AddStringToObject(st, "phase", "Running");
    cJSON_AddStringToObject(st, "startTime", ts);
    cJSON_AddStringToObject(st, "hostIP", "10.0.0.1");
    cJSON *conds = cJSON_AddArrayToObject(st, "conditions");
    cond_set(r, conds, "PodScheduled", true, "", "");
    cond_set(r, conds, "Ready", true, "", "");
    cJSON *spec = pod_spec(r, ns, p->name);
    cJSON_AddItemToObject(st, "containerStatuses",
                          container_statuses(spec, ts, -1));
    cJSON_Delete(spec);
    gf_ks_store_patch_status(r->st, r->t_pod, ns, p->name, st, NULL, NULL);
    cJSON_Delete(st);
    exec_log(r, p, "start", "Started");
    r->stats.started++;
    gf_timer_start(&p->timer, (uint64_t)((double)p->duration_ms / r->scale),
                   on_pod_end);
    return true;
}

/* ---- Jobs ---------------------------------------------------------------- */

static void rjob_stop_all(struct gf_ks_runner *r, struct rjob *j,
                          const char *reason)
{
    while (j->pods != NULL)
        rpod_stop(r, j->pods, reason);
}

/* Frees a job's memory only (a map value: the runner is going away). */
static void rjob_release(void *v)
{
    struct rjob *j = v;
    gf_timer_stop(&j->timer);
    gf_free(j->key);
    gf_free(j->ns);
    gf_free(j->name);
    gf_free(j->uid);
    gf_free(j);
}

static void rjob_free(struct gf_ks_runner *r, struct rjob *j)
{
    rjob_stop_all(r, j, "JobDeleted");
    rjob_release(j);
}

static void podcfg_of(const struct gf_ks_runner *r, const cJSON *job,
                      struct podcfg *cfg)
{
    const char *d = gf_json_annotation(job, RN_DURATION);
    if (d == NULL)
        d = gf_json_annotation(gf_json_path(job, "spec.template"), RN_DURATION);
    int64_t ms;
    cfg->duration_ms = d != NULL && gf_duration_parse_ms(d, &ms) == 0 && ms >= 0
                           ? (uint64_t)ms
                           : r->default_ms;
    const char *f = gf_json_annotation(job, RN_FAIL);
    if (f == NULL)
        f = gf_json_annotation(gf_json_path(job, "spec.template"), RN_FAIL);
    cfg->fail = f != NULL && strcmp(f, "true") == 0;
}

/* Writes the Job's status from the runner's counts and conds. */
static void job_status(struct gf_ks_runner *r, const struct rjob *j,
                       const cJSON *job, cJSON *conds, int state)
{
    char ts[32];
    gf_time_rfc3339(gf_clock_wall_ms(r->clk), ts);
    cJSON *st = cJSON_CreateObject();
    const char *start = gf_json_str(job, "status.startTime");
    if (state == 1) /* suspended: the Job controller clears startTime */
        cJSON_AddNullToObject(st, "startTime");
    else
        cJSON_AddStringToObject(st, "startTime", start ? start : ts);
    if (state == 2 && gf_json_str(job, "status.completionTime") == NULL)
        cJSON_AddStringToObject(st, "completionTime", ts);
    cJSON_AddNumberToObject(st, "active", (double)j->active);
    cJSON_AddNumberToObject(st, "ready", (double)j->running);
    cJSON_AddNumberToObject(st, "succeeded", (double)j->succeeded);
    cJSON_AddNumberToObject(st, "failed", (double)j->failed);
    cJSON_AddItemToObject(st, "conditions", conds);
    gf_ks_store_patch_status(r->st, r->t_job, j->ns, j->name, st, NULL, NULL);
    cJSON_Delete(st);
}

struct jobspec {
    bool suspended, done;
    int64_t parallelism, target, backoff;
};

static void jobspec_of(const cJSON *job, struct jobspec *s)
{
    s->suspended = false;
    gf_json_bool(job, "spec.suspend", &s->suspended);
    const cJSON *conds = gf_json_path(job, "status.conditions");
    s->done = gf_json_cond_true(conds, "Complete") ||
              gf_json_cond_true(conds, "Failed");
    s->parallelism = 1;
    gf_json_int(job, "spec.parallelism", &s->parallelism);
    s->target = s->parallelism;
    gf_json_int(job, "spec.completions", &s->target);
    s->backoff = 6;
    gf_json_int(job, "spec.backoffLimit", &s->backoff);
}

static void on_backoff_end(struct gf_timer *t)
{
    struct rjob *j = t->data;
    j->dirty = true;
    schedule(j->r);
}

static void rjob_reconcile(struct gf_ks_runner *r, struct rjob *j)
{
    struct gf_ks_obj *o = gf_ks_store_get(r->st, r->t_job, j->ns, j->name);
    if (o == NULL)
        return;
    cJSON *job = gf_ks_obj_parse(o);
    struct jobspec s;
    jobspec_of(job, &s);
    const cJSON *c = gf_json_path(job, "status.conditions");
    cJSON *conds =
        cJSON_IsArray(c) ? cJSON_Duplicate(c, true) : cJSON_CreateArray();
    int state = 0; /* 0 running, 1 suspended, 2 finished */
    if (s.done) {
        rjob_stop_all(r, j, "JobFinished");
        cJSON_Delete(conds);
        cJSON_Delete(job);
        return;
    }
    /* Completion and failure are reckoned before suspension, as the Job
     * controller does: a last Pod that succeeded as the Job was suspended
     * (Kueue evicting its Workload in the same instant) completes it. */
    if (j->succeeded >= s.target) {
        rjob_stop_all(r, j, "JobFinished");
        const char *m = "Reached expected number of succeeded pods";
        cond_set(r, conds, "SuccessCriteriaMet", true, "CompletionsReached", m);
        cond_set(r, conds, "Complete", true, "CompletionsReached", m);
        state = 2;
    } else if (j->failed > s.backoff) {
        rjob_stop_all(r, j, "JobFinished");
        const char *m = "Job has reached the specified backoff limit";
        cond_set(r, conds, "FailureTarget", true, "BackoffLimitExceeded", m);
        cond_set(r, conds, "Failed", true, "BackoffLimitExceeded", m);
        state = 2;
    } else if (s.suspended) {
        rjob_stop_all(r, j, "Suspended");
        cond_set(r, conds, "Suspended", true, "JobSuspended", "Job suspended");
        state = 1;
    } else {
        if (gf_json_cond_true(conds, "Suspended"))
            cond_set(r, conds, "Suspended", false, "JobResumed", "Job resumed");
        struct podcfg cfg;
        podcfg_of(r, job, &cfg);
        uint64_t now = gf_clock_now_ms(r->clk);
        if (j->backoff_until > now) {
            /* Replacements wait out the failure back-off. */
            gf_timer_start(&j->timer, j->backoff_until - now, on_backoff_end);
            s.parallelism = 0;
        }
        while ((int64_t)j->active < s.parallelism &&
               j->succeeded + (int64_t)j->active < s.target) {
            size_t before = j->active;
            rpod_create(r, j, job, &cfg);
            if (j->active == before)
                break; /* the create failed (logged) */
        }
    }
    job_status(r, j, job, conds, state);
    cJSON_Delete(job);
}

/* ---- reconcile ------------------------------------------------------------
 */

static void reconcile(struct gf_ks_runner *r)
{
    r->dirty = false;
    r->in_reconcile = true;
    r->t_pod = gf_ks_store_type(r->st, "", "pods");
    r->t_job = gf_ks_store_type(r->st, "batch", "jobs");
    struct gf_htab_iter it;
    void *v;
    /* Pods are added to their own index here, never to the Job index,
     * which may not grow while it is iterated (common/htab.h). */
    gf_htab_iter_init(&it, &r->jobs);
    while (gf_htab_next(&it, NULL, NULL, &v)) {
        struct rjob *j = v;
        if (j->dirty) {
            j->dirty = false;
            rjob_reconcile(r, j);
        }
    }
    /* Bind Pending Pods; a bind never adds or removes index entries. */
    gf_htab_iter_init(&it, &r->pods);
    while (gf_htab_next(&it, NULL, NULL, &v)) {
        struct rpod *p = v;
        if (p->node < 0)
            rpod_bind(r, p);
    }
    /* Binding changed Jobs' ready counts: their status follows. */
    gf_htab_iter_init(&it, &r->jobs);
    while (gf_htab_next(&it, NULL, NULL, &v)) {
        struct rjob *j = v;
        if (j->dirty) {
            j->dirty = false;
            rjob_reconcile(r, j);
        }
    }
    r->in_reconcile = false;
    if (r->dirty)
        schedule(r);
}

static void on_timer(struct gf_timer *t)
{
    struct gf_ks_runner *r = t->data;
    if (frozen(r)) {
        gf_timer_start(&r->timer, RN_FROZEN_RETRY_MS, on_timer);
        return;
    }
    reconcile(r);
}

static void schedule(struct gf_ks_runner *r)
{
    r->dirty = true;
    if (!r->in_reconcile && !gf_timer_active(&r->timer))
        gf_timer_start(&r->timer, 0, on_timer);
}

/* ---- events -------------------------------------------------------------- */

static void on_job(struct gf_ks_runner *r, const struct gf_ks_event *ev)
{
    char *key = key_of(ev->obj->ns, ev->obj->name);
    struct rjob *j = gf_htab_get_str(&r->jobs, key);
    const char *uid = gf_json_str(ev->obj_json, "metadata.uid");
    if (j != NULL && (ev->type == GF_KS_EV_DELETED || uid == NULL ||
                      strcmp(uid, j->uid) != 0)) {
        gf_htab_del_str(&r->jobs, key);
        rjob_free(r, j);
        j = NULL;
    }
    if (ev->type != GF_KS_EV_DELETED && uid != NULL) {
        if (j == NULL) {
            j = gf_calloc(1, sizeof(*j));
            j->r = r;
            gf_timer_init(r->clk, &j->timer);
            j->timer.data = j;
            j->key = gf_strdup(key);
            j->ns = gf_strdup(ev->obj->ns);
            j->name = gf_strdup(ev->obj->name);
            j->uid = gf_strdup(uid);
            gf_htab_put_str(&r->jobs, key, j);
        }
        j->dirty = true;
        schedule(r);
    }
    gf_free(key);
}

static void on_pod(struct gf_ks_runner *r, const struct gf_ks_event *ev)
{
    if (ev->type != GF_KS_EV_DELETED)
        return;
    char *key = key_of(ev->obj->ns, ev->obj->name);
    struct rpod *p = gf_htab_get_str(&r->pods, key);
    gf_free(key);
    if (p == NULL)
        return;
    /* Deleted by someone else: the Job controller replaces it. */
    rpod_detach(r, p);
    if (p->node >= 0) {
        exec_log(r, p, "stop", "PodDeleted");
        r->stats.stopped++;
    }
    rpod_free(p);
    schedule(r);
}

/* A Node's labels changed (kubectl label node): Pods may fit it now. */
static void on_node(struct gf_ks_runner *r, const struct gf_ks_event *ev)
{
    for (unsigned i = 0; i < r->n_nodes; i++) {
        struct rnode *n = &r->nodes[i];
        if (strcmp(n->name, ev->obj->name) != 0)
            continue;
        const cJSON *l = gf_json_path(ev->obj_json, "metadata.labels");
        cJSON *labels =
            cJSON_IsObject(l) ? cJSON_Duplicate(l, true) : cJSON_CreateObject();
        if (n->labels != NULL && gf_json_equal(n->labels, labels)) {
            cJSON_Delete(labels);
            return;
        }
        cJSON_Delete(n->labels);
        n->labels = labels;
        schedule(r);
        return;
    }
}

static void on_event(void *data, const struct gf_ks_event *ev)
{
    struct gf_ks_runner *r = data;
    if (ev->obj == NULL || ev->type > GF_KS_EV_DELETED)
        return;
    if (strcmp(ev->rtype->gr, "batch/jobs") == 0)
        on_job(r, ev);
    else if (strcmp(ev->rtype->gr, "/pods") == 0)
        on_pod(r, ev);
    else if (strcmp(ev->rtype->gr, "/nodes") == 0 &&
             ev->type == GF_KS_EV_MODIFIED)
        on_node(r, ev);
}

static bool index_job(void *data, struct gf_ks_obj *o)
{
    struct gf_ks_runner *r = data;
    cJSON *j = gf_ks_obj_parse(o);
    struct gf_ks_event ev = {.type = GF_KS_EV_ADDED,
                             .rtype = o->type,
                             .obj = o,
                             .obj_json = j,
                             .rv = o->rv};
    on_job(r, &ev);
    cJSON_Delete(j);
    return true;
}

/* ---- lifecycle ----------------------------------------------------------- */

static void create_nodes(struct gf_ks_runner *r)
{
    const struct gf_ks_rtype *t = gf_ks_store_type(r->st, "", "nodes");
    if (t == NULL)
        return;
    char ts[32];
    gf_time_rfc3339(gf_clock_wall_ms(r->clk), ts);
    for (unsigned i = 0; i < r->n_nodes; i++) {
        char name[32];
        snprintf(name, sizeof(name), "node-%u", i + 1);
        cJSON *n = cJSON_CreateObject();
        cJSON_AddStringToObject(n, "apiVersion", "v1");
        cJSON_AddStringToObject(n, "kind", "Node");
        cJSON *md = cJSON_AddObjectToObject(n, "metadata");
        cJSON_AddStringToObject(md, "name", name);
        cJSON *l = cJSON_AddObjectToObject(md, "labels");
        cJSON_AddStringToObject(l, "kubernetes.io/hostname", name);
        cJSON_AddStringToObject(l, "kubesim.gpufed.io/cluster", r->cluster);
        r->nodes[i].labels = cJSON_Duplicate(l, true);
        cJSON *st = cJSON_AddObjectToObject(n, "status");
        cJSON *cap = cJSON_AddObjectToObject(st, "capacity");
        char g[16];
        snprintf(g, sizeof(g), "%u", r->gpus_per_node);
        cJSON_AddStringToObject(cap, RN_GPU, g);
        cJSON_AddStringToObject(cap, "cpu", "64");
        cJSON_AddStringToObject(cap, "memory", "512Gi");
        cJSON_AddStringToObject(cap, "pods", "110");
        cJSON_AddItemToObject(st, "allocatable", cJSON_Duplicate(cap, true));
        cJSON *conds = cJSON_AddArrayToObject(st, "conditions");
        cond_set(r, conds, "Ready", true, "KubeletReady",
                 "kubelet is posting ready status");
        gf_ks_store_create(r->st, t, "", n, GF_KS_STATUS, NULL, NULL);
        cJSON_Delete(n);
    }
}

struct gf_ks_runner *gf_ks_runner_new(const struct gf_ks_runner_opts *o)
{
    struct gf_ks_runner *r = gf_calloc(1, sizeof(*r));
    r->st = o->store;
    r->clk = o->clock;
    r->faults = o->faults;
    r->cluster = gf_strdup(o->cluster != NULL ? o->cluster : "");
    r->lc = (struct gf_log_ctx){.comp = "runner", .cluster = r->cluster};
    r->n_nodes = o->nodes > 0 ? o->nodes : 4;
    r->gpus_per_node = o->gpus_per_node > 0 ? o->gpus_per_node : 8;
    r->default_ms = o->default_ms > 0 ? o->default_ms : 60000;
    r->fd = o->exec_log_fd;
    r->scale = o->time_scale > 0 ? o->time_scale : 1.0;
    r->nodes = gf_calloc(r->n_nodes, sizeof(*r->nodes));
    for (unsigned i = 0; i < r->n_nodes; i++) {
        /* Named even without a Node type (a bare store). */
        snprintf(r->nodes[i].name, sizeof(r->nodes[i].name), "node-%u", i + 1);
        r->nodes[i].free[RN_R_GPU] = (int64_t)r->gpus_per_node * 1000;
        r->nodes[i].free[RN_R_CPU] = (int64_t)64 * 1000;
        r->nodes[i].free[RN_R_MEM] = (int64_t)512 * 1024 * 1024 * 1024 * 1000;
        r->nodes[i].free[RN_R_PODS] = (int64_t)110 * 1000;
    }
    gf_timer_init(r->clk, &r->timer);
    r->timer.data = r;
    create_nodes(r);
    r->t_pod = gf_ks_store_type(r->st, "", "pods");
    r->t_job = gf_ks_store_type(r->st, "batch", "jobs");
    if (r->t_job != NULL)
        gf_ks_store_foreach(r->st, r->t_job, NULL, index_job, r);
    r->obs = gf_ks_store_observe(r->st, NULL, on_event, r);
    return r;
}

void gf_ks_runner_free(struct gf_ks_runner *r)
{
    if (r == NULL)
        return;
    gf_ks_store_unobserve(r->st, r->obs);
    gf_timer_stop(&r->timer);
    gf_htab_free_all(&r->pods, rpod_free);
    gf_htab_free_all(&r->jobs, rjob_release);
    for (unsigned i = 0; i < r->n_nodes; i++)
        cJSON_Delete(r->nodes[i].labels);
    gf_free(r->nodes);
    gf_free(r->cluster);
    gf_free(r);
}

void gf_ks_runner_stats(const struct gf_ks_runner *r,
                        struct gf_ks_runner_stats *out)
{
    *out = r->stats;
    out->free_gpus = 0;
    for (unsigned i = 0; i < r->n_nodes; i++)
        out->free_gpus += (uint64_t)(r->nodes[i].free[RN_R_GPU] / 1000);
}
