/*
 * Tests for Kueue-lite with Jobs and the job runner: a Job with the
 * queue-name label gets a Workload and stays suspended until it is
 * admitted (Kueue's job integration), runs, finishes the Workload;
 * spec.active=false evicts and stops it; preemption suspends the
 * preempted Job; the kueue-frozen fault stops admission until it ends;
 * the upstream sample Job runs to completion.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/json.h"
#include "e2e/kubesim/kueue.h"
#include "e2e/kubesim/runner.h"
#include "e2e/kubesim/test/kueue_testkit.h"
#include "kubeclient/global.h"

#define KQ "kueue.x-k8s.io"

static const char setup[] =
    "apiVersion: kueue.x-k8s.io/v1beta2\nkind: ResourceFlavor\n"
    "metadata: {name: default-flavor}\n---\n"
    "apiVersion: kueue.x-k8s.io/v1beta2\nkind: ClusterQueue\n"
    "metadata: {name: cq}\nspec:\n  namespaceSelector: {}\n"
    "  preemption: {withinClusterQueue: LowerPriority}\n"
    "  resourceGroups:\n  - coveredResources: [cpu, nvidia.com/gpu]\n"
    "    flavors:\n    - name: default-flavor\n      resources:\n"
    "      - {name: cpu, nominalQuota: 4}\n"
    "      - {name: nvidia.com/gpu, nominalQuota: 8}\n---\n"
    "apiVersion: kueue.x-k8s.io/v1beta2\nkind: LocalQueue\n"
    "metadata: {name: lq, namespace: default}\n"
    "spec: {clusterQueue: cq}\n---\n"
    "apiVersion: kueue.x-k8s.io/v1beta2\nkind: WorkloadPriorityClass\n"
    "metadata: {name: high}\nvalue: 1000\n";

struct env {
    struct ks_kqtk t;
    struct gf_ks_runner *r;
};

static void env_start(struct env *e)
{
    ks_kqtk_start(&e->t);
    ks_kqtk_apply(&e->t, setup);
    struct gf_ks_runner_opts o = {
        .store = e->t.st,
        .clock = &e->t.k.clock,
        .faults = e->t.faults,
        .cluster = "test",
        .nodes = 2,
        .gpus_per_node = 4,
        .default_ms = 30000,
        .exec_log_fd = -1,
    };
    e->r = gf_ks_runner_new(&o);
    ks_kqtk_settle(&e->t);
}

static void env_stop(struct env *e)
{
    gf_ks_runner_free(e->r);
    ks_kqtk_stop(&e->t);
}

/* A Job whose pods each ask for q of resource res (requests = limits). */
static void create_job_of(struct env *e, const char *name, const char *res,
                          const char *q, int par)
{
    char y[1536];
    snprintf(y, sizeof(y),
             "apiVersion: batch/v1\nkind: Job\n"
             "metadata:\n  name: %s\n  namespace: default\n"
             "  labels: {kueue.x-k8s.io/queue-name: lq}\n"
             "  annotations: {kubesim.gpufed.io/duration: 10s}\n"
             "spec:\n  parallelism: %d\n  completions: %d\n"
             "  template:\n    spec:\n      restartPolicy: Never\n"
             "      containers:\n      - name: c\n        image: busybox\n"
             "        resources: {requests: {\"%s\": \"%s\"}, "
             "limits: {\"%s\": \"%s\"}}\n",
             name, par, par, res, q, res, q);
    ks_kqtk_apply(&e->t, y);
}

static void create_job(struct env *e, const char *name, const char *cpu,
                       int par, const char *extra_labels)
{
    char y[1536];
    snprintf(y, sizeof(y),
             "apiVersion: batch/v1\nkind: Job\n"
             "metadata:\n  name: %s\n  namespace: default\n"
             "  labels: {kueue.x-k8s.io/queue-name: lq%s}\n"
             "  annotations: {kubesim.gpufed.io/duration: 10s}\n"
             "spec:\n  parallelism: %d\n  completions: %d\n"
             "  template:\n    spec:\n      restartPolicy: Never\n"
             "      containers:\n      - name: c\n        image: busybox\n"
             "        resources: {requests: {cpu: \"%s\"}}\n",
             name, extra_labels, par, par, cpu);
    ks_kqtk_apply(&e->t, y);
}

static cJSON *job(struct env *e, const char *name)
{
    cJSON *j = ks_kqtk_get(&e->t, "batch", "jobs", "default", name);
    assert_non_null(j);
    return j;
}

static bool suspended(struct env *e, const char *name)
{
    cJSON *j = job(e, name);
    bool s = false;
    gf_json_bool(j, "spec.suspend", &s);
    cJSON_Delete(j);
    return s;
}

/* The Workload owned by a Job (Kueue names it job-<name>-<hash>). */
struct found {
    const char *job;
    cJSON *wl;
};

static bool find_owned(void *data, struct gf_ks_obj *o)
{
    struct found *f = data;
    cJSON *w = gf_ks_obj_parse(o);
    const cJSON * or
        = cJSON_GetArrayItem(gf_json_path(w, "metadata.ownerReferences"), 0);
    const char *n = gf_json_str(or, "name");
    if (n != NULL && strcmp(n, f->job) == 0 && f->wl == NULL) {
        f->wl = w;
        return false;
    }
    cJSON_Delete(w);
    return true;
}

static cJSON *wl_of(struct env *e, const char *jobname)
{
    struct found f = {jobname, NULL};
    gf_ks_store_foreach(e->t.st, gf_ks_store_type(e->t.st, KQ, "workloads"),
                        NULL, find_owned, &f);
    if (f.wl == NULL)
        fail_msg("no workload for job %s", jobname);
    return f.wl;
}

static const char *cond_of(struct env *e, const char *jobname, const char *type,
                           char reason[64])
{
    cJSON *w = wl_of(e, jobname);
    const char *r = NULL;
    const char *st = ks_kqtk_cond(w, type, &r, NULL);
    snprintf(reason, 64, "%s", r != NULL ? r : "");
    static char out[8];
    snprintf(out, sizeof(out), "%s", st != NULL ? st : "");
    cJSON_Delete(w);
    return out;
}

static size_t count_pods(struct env *e, const char *phase)
{
    struct gf_ks_list l;
    struct gf_ks_list_opts o = {0};
    assert_int_equal(gf_ks_store_list(e->t.st,
                                      gf_ks_store_type(e->t.st, "", "pods"), &o,
                                      &l, NULL),
                     0);
    size_t n = 0;
    for (size_t i = 0; i < l.n; i++) {
        cJSON *p = gf_ks_obj_parse(l.items[i]);
        const char *ph = gf_json_str(p, "status.phase");
        n += ph != NULL && strcmp(ph, phase) == 0;
        cJSON_Delete(p);
    }
    gf_ks_list_free(&l);
    return n;
}

static void test_job_is_suspended_until_its_workload_is_admitted(void **s)
{
    (void)s;
    struct env e;
    env_start(&e);
    create_job(&e, "first", "1", 3, "");
    create_job(&e, "second", "2", 1, "");
    ks_kqtk_settle(&e.t);
    /* first fits (3 of 4 cpu) and runs; second waits, suspended. */
    char reason[64];
    assert_string_equal(cond_of(&e, "first", "Admitted", reason), "True");
    assert_false(suspended(&e, "first"));
    assert_true(suspended(&e, "second"));
    assert_string_equal(cond_of(&e, "second", "QuotaReserved", reason),
                        "False");
    assert_string_equal(reason, "Pending");
    assert_int_equal(count_pods(&e, "Running"), 3);
    /* The Workload: owner, pod set count, priority, queue. */
    cJSON *w = wl_of(&e, "first");
    assert_int_equal(cJSON_GetArrayItem(gf_json_path(w, "spec.podSets"), 0)
                         ->child->next->valuedouble,
                     3);
    assert_string_equal(gf_json_str(w, "spec.queueName"), "lq");
    assert_string_equal(
        gf_json_str(
            cJSON_GetArrayItem(gf_json_path(w, "metadata.ownerReferences"), 0),
            "kind"),
        "Job");
    cJSON_Delete(w);
    /* After 10 s the pods succeed, the Job completes, the Workload is
     * Finished, its quota goes back and the second Job is admitted. */
    gf_clock_advance(&e.t.k.clock, 10000);
    ks_kqtk_settle(&e.t);
    assert_int_equal(count_pods(&e, "Succeeded"), 3);
    cJSON *j = job(&e, "first");
    assert_non_null(gf_json_str(j, "status.completionTime"));
    int64_t n = 0;
    gf_json_int(j, "status.succeeded", &n);
    assert_int_equal(n, 3);
    const char *r = NULL;
    assert_string_equal(ks_kqtk_cond(j, "Complete", &r, NULL), "True");
    assert_string_equal(ks_kqtk_cond(j, "SuccessCriteriaMet", NULL, NULL),
                        "True");
    cJSON_Delete(j);
    assert_string_equal(cond_of(&e, "first", "Finished", reason), "True");
    assert_string_equal(reason, "Succeeded");
    assert_false(suspended(&e, "second"));
    cJSON *cq = ks_kqtk_get(&e.t, KQ, "clusterqueues", "", "cq");
    int64_t reserving = -1;
    gf_json_int(cq, "status.reservingWorkloads", &reserving);
    assert_int_equal(reserving, 1);
    cJSON_Delete(cq);
    env_stop(&e);
}

/* The total of res in the ClusterQueue's status list (first flavor). */
static const char *cq_total(struct env *e, const char *list, const char *res)
{
    static char out[32];
    cJSON *cq = ks_kqtk_get(&e->t, KQ, "clusterqueues", "", "cq");
    assert_non_null(cq);
    const cJSON *fl = cJSON_GetArrayItem(GF_JSON_AT(cq, "status", list), 0);
    const cJSON *r;
    snprintf(out, sizeof(out), "(none)");
    cJSON_ArrayForEach(r, GF_JSON_AT(fl, "resources"))
    {
        const char *n = gf_json_str(r, "name");
        const char *t = gf_json_str(r, "total");
        if (n != NULL && t != NULL && strcmp(n, res) == 0)
            snprintf(out, sizeof(out), "%s", t);
    }
    cJSON_Delete(cq);
    return out;
}

/*
 * nvidia.com/gpu nominal 8: of three Jobs of 4 GPUs only two run at once,
 * and the ClusterQueue's status counts 8 GPUs in use. The third runs when
 * the first two finish.
 */
static void test_gpu_quota_admits_only_what_fits(void **s)
{
    (void)s;
    struct env e;
    env_start(&e);
    /* A second apart, so FIFO order is g1, g2, g3. */
    create_job_of(&e, "g1", "nvidia.com/gpu", "4", 1);
    gf_clock_advance(&e.t.k.clock, 1000);
    create_job_of(&e, "g2", "nvidia.com/gpu", "4", 1);
    gf_clock_advance(&e.t.k.clock, 1000);
    create_job_of(&e, "g3", "nvidia.com/gpu", "4", 1);
    ks_kqtk_settle(&e.t);
    char reason[64];
    assert_string_equal(cond_of(&e, "g1", "Admitted", reason), "True");
    assert_string_equal(cond_of(&e, "g2", "Admitted", reason), "True");
    assert_string_equal(cond_of(&e, "g3", "QuotaReserved", reason), "False");
    assert_string_equal(reason, "Pending");
    assert_true(suspended(&e, "g3"));
    assert_int_equal(count_pods(&e, "Running"), 2);
    assert_string_equal(cq_total(&e, "flavorsUsage", "nvidia.com/gpu"), "8");
    assert_string_equal(cq_total(&e, "flavorsReservation", "nvidia.com/gpu"),
                        "8");
    /* The Workload's admission names the flavor of the GPUs. */
    cJSON *w = wl_of(&e, "g1");
    const cJSON *psa = cJSON_GetArrayItem(
        gf_json_path(w, "status.admission.podSetAssignments"), 0);
    assert_string_equal(
        gf_json_as_str(GF_JSON_AT(psa, "flavors", "nvidia.com/gpu")),
        "default-flavor");
    cJSON_Delete(w);
    gf_clock_advance(&e.t.k.clock, 10000);
    ks_kqtk_settle(&e.t);
    assert_false(suspended(&e, "g3"));
    assert_string_equal(cq_total(&e, "flavorsUsage", "nvidia.com/gpu"), "4");
    env_stop(&e);
}

/*
 * Kueue clears an evicted Workload's admission only once its Job is no
 * longer active: until its pods have stopped, the quota stays reserved
 * and counted in the ClusterQueue's usage, so nothing else is admitted
 * on it (here or, through a controller that waits for the usage to
 * drop, in another cluster) while the pods still run. The runner is
 * taken away so that the pods outlive the eviction, as they do while a
 * kubelet is slow to stop them.
 */
static void test_evicted_workload_keeps_quota_until_pods_stop(void **s)
{
    (void)s;
    struct env e;
    env_start(&e);
    create_job_of(&e, "j", "nvidia.com/gpu", "4", 2);
    ks_kqtk_settle(&e.t);
    assert_int_equal(count_pods(&e, "Running"), 2);
    gf_ks_runner_free(e.r);
    e.r = NULL;
    cJSON *w = wl_of(&e, "j");
    char name[254];
    snprintf(name, sizeof(name), "%s", gf_json_str(w, "metadata.name"));
    cJSON_Delete(w);
    ks_kqtk_patch(&e.t, KQ, "workloads", "default", name,
                  "{\"spec\":{\"active\":false}}");
    ks_kqtk_settle(&e.t);
    char reason[64];
    assert_string_equal(cond_of(&e, "j", "Evicted", reason), "True");
    assert_string_equal(reason, "Deactivated");
    assert_true(suspended(&e, "j"));
    /* The pods still run: the quota is still reserved. */
    assert_string_equal(cond_of(&e, "j", "QuotaReserved", reason), "True");
    w = wl_of(&e, "j");
    assert_non_null(gf_json_path(w, "status.admission"));
    cJSON_Delete(w);
    assert_string_equal(cq_total(&e, "flavorsUsage", "nvidia.com/gpu"), "8");
    /* Another Workload waits for that quota. */
    create_job_of(&e, "k", "nvidia.com/gpu", "4", 1);
    ks_kqtk_settle(&e.t);
    assert_string_equal(cond_of(&e, "k", "QuotaReserved", reason), "False");
    /* The pods have stopped (what the Job controller writes then): the
     * reservation goes, and the waiting Workload gets the quota. */
    const struct gf_ks_rtype *tj = gf_ks_store_type(e.t.st, "batch", "jobs");
    cJSON *st = cJSON_Parse("{\"active\":0,\"ready\":0}");
    assert_int_equal(
        gf_ks_store_patch_status(e.t.st, tj, "default", "j", st, NULL, NULL),
        0);
    cJSON_Delete(st);
    ks_kqtk_settle(&e.t);
    assert_string_equal(cond_of(&e, "j", "QuotaReserved", reason), "False");
    assert_string_equal(cond_of(&e, "j", "Requeued", reason), "False");
    assert_string_equal(reason, "Deactivated");
    w = wl_of(&e, "j");
    assert_null(gf_json_path(w, "status.admission"));
    cJSON_Delete(w);
    assert_string_equal(cond_of(&e, "k", "QuotaReserved", reason), "True");
    assert_string_equal(cq_total(&e, "flavorsUsage", "nvidia.com/gpu"), "4");
    env_stop(&e);
}

static void test_active_false_evicts_and_stops_the_job(void **s)
{
    (void)s;
    struct env e;
    env_start(&e);
    create_job(&e, "j", "1", 2, "");
    ks_kqtk_settle(&e.t);
    assert_int_equal(count_pods(&e, "Running"), 2);
    cJSON *w = wl_of(&e, "j");
    char name[254];
    snprintf(name, sizeof(name), "%s", gf_json_str(w, "metadata.name"));
    cJSON_Delete(w);
    ks_kqtk_patch(&e.t, KQ, "workloads", "default", name,
                  "{\"spec\":{\"active\":false}}");
    ks_kqtk_settle(&e.t);
    char reason[64];
    assert_string_equal(cond_of(&e, "j", "Evicted", reason), "True");
    assert_string_equal(reason, "Deactivated");
    assert_string_equal(cond_of(&e, "j", "Requeued", reason), "False");
    assert_true(suspended(&e, "j"));
    assert_int_equal(count_pods(&e, "Running"), 0);
    w = wl_of(&e, "j");
    assert_null(gf_json_path(w, "status.admission"));
    cJSON_Delete(w);
    cJSON *j = job(&e, "j");
    assert_string_equal(ks_kqtk_cond(j, "Suspended", NULL, NULL), "True");
    assert_null(gf_json_str(j, "status.startTime"));
    cJSON_Delete(j);
    /* Reactivated: admitted again, Evicted cleared as "Previously". */
    ks_kqtk_patch(&e.t, KQ, "workloads", "default", name,
                  "{\"spec\":{\"active\":true}}");
    ks_kqtk_settle(&e.t);
    assert_string_equal(cond_of(&e, "j", "Admitted", reason), "True");
    assert_string_equal(cond_of(&e, "j", "Evicted", reason), "False");
    assert_false(suspended(&e, "j"));
    assert_int_equal(count_pods(&e, "Running"), 2);
    env_stop(&e);
}

static void test_preempted_job_is_suspended_and_its_pods_deleted(void **s)
{
    (void)s;
    struct env e;
    env_start(&e);
    create_job(&e, "low", "4", 1, "");
    ks_kqtk_settle(&e.t);
    assert_false(suspended(&e, "low"));
    gf_clock_advance(&e.t.k.clock, 1000);
    create_job(&e, "high", "4", 1, ", kueue.x-k8s.io/priority-class: high");
    ks_kqtk_settle(&e.t);
    char reason[64];
    assert_string_equal(cond_of(&e, "low", "Evicted", reason), "True");
    assert_string_equal(reason, "Preempted");
    assert_string_equal(cond_of(&e, "low", "Preempted", reason), "True");
    assert_string_equal(reason, "InClusterQueue");
    assert_true(suspended(&e, "low"));
    assert_false(suspended(&e, "high"));
    assert_int_equal(count_pods(&e, "Running"), 1);
    cJSON *w = wl_of(&e, "high");
    int64_t prio = 0;
    gf_json_int(w, "spec.priority", &prio);
    assert_int_equal(prio, 1000);
    assert_string_equal(gf_json_str(w, "spec.priorityClassRef.kind"),
                        "WorkloadPriorityClass");
    cJSON_Delete(w);
    env_stop(&e);
}

static void test_kueue_frozen_fault_stops_admission_until_it_ends(void **s)
{
    (void)s;
    struct env e;
    env_start(&e);
    struct gf_ks_fault_spec f = {.kind = GF_KS_FAULT_KUEUE_FROZEN,
                                 .for_ms = 5000};
    assert_true(gf_ks_faults_add(e.t.faults, &f) > 0);
    create_job(&e, "j", "1", 1, "");
    gf_clock_advance(&e.t.k.clock, 1000);
    ks_kqtk_settle(&e.t);
    /* The webhook still suspends it; no Workload change, no Pod. */
    assert_true(suspended(&e, "j"));
    assert_int_equal(count_pods(&e, "Running"), 0);
    cJSON *cq = ks_kqtk_get(&e.t, KQ, "clusterqueues", "", "cq");
    int64_t pending = -1;
    gf_json_int(cq, "status.pendingWorkloads", &pending);
    assert_int_equal(pending, 0);
    cJSON_Delete(cq);
    struct gf_ks_kueue_stats st;
    gf_ks_kueue_stats(e.t.kueue, &st);
    assert_true(st.frozen > 0);
    gf_clock_advance(&e.t.k.clock, 4500);
    ks_kqtk_settle(&e.t);
    char reason[64];
    assert_string_equal(cond_of(&e, "j", "Admitted", reason), "True");
    assert_false(suspended(&e, "j"));
    assert_int_equal(count_pods(&e, "Running"), 1);
    env_stop(&e);
}

static void test_upstream_sample_job_runs_to_completion(void **s)
{
    (void)s;
    struct ks_kqtk t;
    ks_kqtk_start(&t);
    const char *dir = ks_apitk_crd_dir();
    char path[2048];
    size_t len;
    const char *files[] = {"single-clusterqueue-setup.yaml", "sample-job.yaml"};
    struct gf_ks_runner_opts o = {.store = t.st,
                                  .clock = &t.k.clock,
                                  .faults = t.faults,
                                  .cluster = "test",
                                  .default_ms = 60000,
                                  .exec_log_fd = -1};
    struct gf_ks_runner *r = gf_ks_runner_new(&o);
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "%s/../samples/single-cluster/%s", dir,
                 files[i]);
        char *text = ks_apitk_read_file(path, &len);
        assert_non_null(text);
        ks_kqtk_apply(&t, text);
        gf_free(text);
    }
    ks_kqtk_settle(&t);
    struct gf_ks_runner_stats rs;
    gf_ks_runner_stats(r, &rs);
    assert_int_equal(rs.started, 3);
    cJSON *cq = ks_kqtk_get(&t, KQ, "clusterqueues", "", "cluster-queue");
    const cJSON *res = gf_json_path(
        cJSON_GetArrayItem(gf_json_path(cq, "status.flavorsUsage"), 0),
        "resources");
    assert_string_equal(gf_json_str(cJSON_GetArrayItem(res, 0), "total"), "3");
    assert_string_equal(gf_json_str(cJSON_GetArrayItem(res, 1), "total"),
                        "600Mi");
    cJSON_Delete(cq);
    gf_clock_advance(&t.k.clock, 60000);
    ks_kqtk_settle(&t);
    gf_ks_runner_stats(r, &rs);
    assert_int_equal(rs.succeeded, 3);
    cJSON *lq = ks_kqtk_get(&t, KQ, "localqueues", "default", "user-queue");
    int64_t n = -1;
    gf_json_int(lq, "status.reservingWorkloads", &n);
    assert_int_equal(n, 0);
    cJSON_Delete(lq);
    gf_ks_runner_free(r);
    ks_kqtk_stop(&t);
}

/* A Job from its YAML; its Workload's first pod set assignment. */
static const cJSON *psa0(const cJSON *wl)
{
    return cJSON_GetArrayItem(
        gf_json_path(wl, "status.admission.podSetAssignments"), 0);
}

static void test_job_pod_count_is_min_of_parallelism_and_completions(void **s)
{
    (void)s;
    struct env e;
    env_start(&e);
    /* workload.md: Kueue counts a Job's pods as min(parallelism,
     * completions); 4 parallel pods for 2 completions are 2 pods. */
    ks_kqtk_apply(&e.t, "apiVersion: batch/v1\nkind: Job\n"
                        "metadata:\n  name: j\n  namespace: default\n"
                        "  labels: {kueue.x-k8s.io/queue-name: lq}\n"
                        "spec:\n  parallelism: 4\n  completions: 2\n"
                        "  template:\n    spec:\n      restartPolicy: Never\n"
                        "      containers:\n      - name: c\n"
                        "        image: busybox\n"
                        "        resources: {requests: {nvidia.com/gpu: 1},"
                        " limits: {nvidia.com/gpu: 1}}\n");
    ks_kqtk_settle(&e.t);
    cJSON *w = wl_of(&e, "j");
    int64_t count = 0;
    gf_json_int(cJSON_GetArrayItem(gf_json_path(w, "spec.podSets"), 0), "count",
                &count);
    assert_int_equal(count, 2);
    assert_string_equal(
        gf_json_as_str(GF_JSON_AT(psa0(w), "resourceUsage", "nvidia.com/gpu")),
        "2");
    cJSON_Delete(w);
    env_stop(&e);
}

static void test_effective_requests_count_init_containers(void **s)
{
    (void)s;
    struct env e;
    env_start(&e);
    /* Kueue uses the pod's effective requests: the larger of the
     * containers' sum and any init container (4 GPUs here, not 1). */
    ks_kqtk_apply(&e.t, "apiVersion: batch/v1\nkind: Job\n"
                        "metadata:\n  name: j\n  namespace: default\n"
                        "  labels: {kueue.x-k8s.io/queue-name: lq}\n"
                        "spec:\n  template:\n    spec:\n"
                        "      restartPolicy: Never\n"
                        "      initContainers:\n      - name: warm\n"
                        "        image: busybox\n"
                        "        resources: {requests: {nvidia.com/gpu: 4},"
                        " limits: {nvidia.com/gpu: 4}}\n"
                        "      containers:\n      - name: c\n"
                        "        image: busybox\n"
                        "        resources: {requests: {nvidia.com/gpu: 1},"
                        " limits: {nvidia.com/gpu: 1}}\n");
    ks_kqtk_settle(&e.t);
    cJSON *w = wl_of(&e, "j");
    assert_string_equal(
        gf_json_as_str(GF_JSON_AT(psa0(w), "resourceUsage", "nvidia.com/gpu")),
        "4");
    cJSON_Delete(w);
    env_stop(&e);
}

static void test_pods_resource_counts_one_per_pod(void **s)
{
    (void)s;
    struct env e;
    env_start(&e);
    /* A ClusterQueue that covers "pods" caps the number of pods. */
    ks_kqtk_apply(&e.t,
                  "apiVersion: kueue.x-k8s.io/v1beta2\nkind: ClusterQueue\n"
                  "metadata: {name: pods-cq}\nspec:\n"
                  "  namespaceSelector: {}\n"
                  "  resourceGroups:\n  - coveredResources: [pods]\n"
                  "    flavors:\n    - name: default-flavor\n"
                  "      resources: [{name: pods, nominalQuota: 2}]\n---\n"
                  "apiVersion: kueue.x-k8s.io/v1beta2\nkind: LocalQueue\n"
                  "metadata: {name: plq, namespace: default}\n"
                  "spec: {clusterQueue: pods-cq}\n");
    const char *names[] = {"p1", "p2", "p3"};
    for (int i = 0; i < 3; i++) {
        char y[768];
        snprintf(y, sizeof(y),
                 "apiVersion: batch/v1\nkind: Job\n"
                 "metadata:\n  name: %s\n  namespace: default\n"
                 "  labels: {kueue.x-k8s.io/queue-name: plq}\n"
                 "spec:\n  template:\n    spec:\n"
                 "      restartPolicy: Never\n"
                 "      containers: [{name: c, image: busybox}]\n",
                 names[i]);
        ks_kqtk_apply(&e.t, y);
    }
    ks_kqtk_settle(&e.t);
    char reason[64];
    assert_string_equal(cond_of(&e, "p1", "Admitted", reason), "True");
    assert_string_equal(cond_of(&e, "p2", "Admitted", reason), "True");
    assert_string_not_equal(cond_of(&e, "p3", "QuotaReserved", reason), "True");
    assert_true(suspended(&e, "p3"));
    env_stop(&e);
}

static void test_flavor_nodeLabels_match_and_are_injected(void **s)
{
    (void)s;
    struct env e;
    env_start(&e);
    /* resource_flavor.md: a flavor's nodeLabels are matched against the
     * pod's nodeSelector, and added to the nodeSelector of the admitted
     * Job's pod template. */
    ks_kqtk_apply(
        &e.t,
        "apiVersion: kueue.x-k8s.io/v1beta2\nkind: ResourceFlavor\n"
        "metadata: {name: a100}\nspec: {nodeLabels: {gpu.example.com/type:"
        " a100}}\n---\n"
        "apiVersion: kueue.x-k8s.io/v1beta2\nkind: ResourceFlavor\n"
        "metadata: {name: h100}\nspec: {nodeLabels: {gpu.example.com/type:"
        " h100}}\n---\n"
        "apiVersion: kueue.x-k8s.io/v1beta2\nkind: ClusterQueue\n"
        "metadata: {name: gpu-cq}\nspec:\n  namespaceSelector: {}\n"
        "  resourceGroups:\n  - coveredResources: [nvidia.com/gpu]\n"
        "    flavors:\n"
        "    - {name: a100, resources: [{name: nvidia.com/gpu,"
        " nominalQuota: 8}]}\n"
        "    - {name: h100, resources: [{name: nvidia.com/gpu,"
        " nominalQuota: 8}]}\n---\n"
        "apiVersion: kueue.x-k8s.io/v1beta2\nkind: LocalQueue\n"
        "metadata: {name: glq, namespace: default}\n"
        "spec: {clusterQueue: gpu-cq}\n");
#define GPU_JOB                                                                \
    "apiVersion: batch/v1\nkind: Job\n"                                        \
    "metadata:\n  name: %s\n  namespace: default\n"                            \
    "  labels: {kueue.x-k8s.io/queue-name: glq}\n"                             \
    "spec:\n  template:\n    spec:\n%s"                                        \
    "      restartPolicy: Never\n"                                             \
    "      containers:\n      - name: c\n"                                     \
    "        image: busybox\n"                                                 \
    "        resources: {requests: {nvidia.com/gpu: 1},"                       \
    " limits: {nvidia.com/gpu: 1}}\n"
    char y[1024];
    snprintf(y, sizeof(y), GPU_JOB, "any", "");
    ks_kqtk_apply(&e.t, y);
    snprintf(y, sizeof(y), GPU_JOB, "wants-h100",
             "      nodeSelector: {gpu.example.com/type: h100}\n");
    ks_kqtk_apply(&e.t, y);
    ks_kqtk_settle(&e.t);
    cJSON *w = wl_of(&e, "wants-h100");
    assert_string_equal(
        gf_json_as_str(GF_JSON_AT(psa0(w), "flavors", "nvidia.com/gpu")),
        "h100");
    cJSON_Delete(w);
    cJSON *j = job(&e, "any");
    assert_string_equal(
        gf_json_as_str(GF_JSON_AT(j, "spec", "template", "spec", "nodeSelector",
                                  "gpu.example.com/type")),
        "a100");
    cJSON_Delete(j);
    /* Suspended again (deactivated), the injected label goes away. */
    cJSON *wa = wl_of(&e, "any");
    ks_kqtk_patch(&e.t, KQ, "workloads", "default",
                  gf_json_str(wa, "metadata.name"),
                  "{\"spec\":{\"active\":false}}");
    cJSON_Delete(wa);
    ks_kqtk_settle(&e.t);
    j = job(&e, "any");
    assert_null(GF_JSON_AT(j, "spec", "template", "spec", "nodeSelector",
                           "gpu.example.com/type"));
    cJSON_Delete(j);
    env_stop(&e);
}

static void test_pod_sets_get_flavors_of_their_own(void **s)
{
    (void)s;
    struct env e;
    env_start(&e);
    /* Kueue assigns flavors per pod set: the launcher fits "small", the
     * workers (with the launcher's quota assumed) only "large"; a pod
     * set of count 0 gets a flavor and a usage of 0. */
    ks_kqtk_apply(
        &e.t, "apiVersion: kueue.x-k8s.io/v1beta2\nkind: ResourceFlavor\n"
              "metadata: {name: small}\n---\n"
              "apiVersion: kueue.x-k8s.io/v1beta2\nkind: ResourceFlavor\n"
              "metadata: {name: large}\n---\n"
              "apiVersion: kueue.x-k8s.io/v1beta2\nkind: ClusterQueue\n"
              "metadata: {name: mp-cq}\nspec:\n  namespaceSelector: {}\n"
              "  resourceGroups:\n  - coveredResources: [nvidia.com/gpu]\n"
              "    flavors:\n"
              "    - {name: small, resources: [{name: nvidia.com/gpu,"
              " nominalQuota: 2}]}\n"
              "    - {name: large, resources: [{name: nvidia.com/gpu,"
              " nominalQuota: 16}]}\n---\n"
              "apiVersion: kueue.x-k8s.io/v1beta2\nkind: LocalQueue\n"
              "metadata: {name: mlq, namespace: default}\n"
              "spec: {clusterQueue: mp-cq}\n---\n"
              "apiVersion: kueue.x-k8s.io/v1beta2\nkind: Workload\n"
              "metadata: {name: mpi, namespace: default}\n"
              "spec:\n  queueName: mlq\n  podSets:\n"
              "  - name: launcher\n    count: 1\n    template:\n      spec:\n"
              "        restartPolicy: Never\n        containers:\n"
              "        - {name: c, image: busybox, resources: {requests:"
              " {nvidia.com/gpu: 2}}}\n"
              "  - name: worker\n    count: 3\n    template:\n      spec:\n"
              "        restartPolicy: Never\n        containers:\n"
              "        - {name: c, image: busybox, resources: {requests:"
              " {nvidia.com/gpu: 2}}}\n"
              "  - name: spare\n    count: 0\n    template:\n      spec:\n"
              "        restartPolicy: Never\n        containers:\n"
              "        - {name: c, image: busybox, resources: {requests:"
              " {nvidia.com/gpu: 2}}}\n");
    ks_kqtk_settle(&e.t);
    cJSON *w = ks_kqtk_get(&e.t, KQ, "workloads", "default", "mpi");
    assert_non_null(w);
    const cJSON *psas = gf_json_path(w, "status.admission.podSetAssignments");
    const char *want[] = {"small", "large", "small"};
    const char *usage[] = {"2", "6", "0"};
    for (int i = 0; i < 3; i++) {
        const cJSON *p = cJSON_GetArrayItem(psas, i);
        assert_string_equal(
            gf_json_as_str(GF_JSON_AT(p, "flavors", "nvidia.com/gpu")),
            want[i]);
        assert_string_equal(
            gf_json_as_str(GF_JSON_AT(p, "resourceUsage", "nvidia.com/gpu")),
            usage[i]);
    }
    cJSON_Delete(w);
    env_stop(&e);
}

static void test_stopped_queues_are_reported_as_kueue_does(void **s)
{
    (void)s;
    struct env e;
    env_start(&e);
    /* A stopped LocalQueue: "LocalQueue lq is stopped" (not "ClusterQueue
     * ... is inactive"); a stopped ClusterQueue makes its LocalQueue
     * inactive too (ClusterQueueIsInactive). */
    ks_kqtk_patch(&e.t, KQ, "localqueues", "default", "lq",
                  "{\"spec\":{\"stopPolicy\":\"Hold\"}}");
    create_job(&e, "held", "1", 1, "");
    ks_kqtk_settle(&e.t);
    cJSON *w = wl_of(&e, "held");
    const char *msg = NULL;
    ks_kqtk_cond(w, "QuotaReserved", NULL, &msg);
    assert_string_equal(msg, "LocalQueue lq is stopped");
    cJSON_Delete(w);
    ks_kqtk_patch(&e.t, KQ, "localqueues", "default", "lq",
                  "{\"spec\":{\"stopPolicy\":null}}");
    ks_kqtk_patch(&e.t, KQ, "clusterqueues", "", "cq",
                  "{\"spec\":{\"stopPolicy\":\"Hold\"}}");
    ks_kqtk_settle(&e.t);
    cJSON *lq = ks_kqtk_get(&e.t, KQ, "localqueues", "default", "lq");
    const char *reason = NULL;
    assert_string_equal(ks_kqtk_cond(lq, "Active", &reason, NULL), "False");
    assert_string_equal(reason, "ClusterQueueIsInactive");
    cJSON_Delete(lq);
    env_stop(&e);
}

/* A pod-less Workload in lq, deactivated from the start. */
static void create_inactive_wl(struct env *e, int i)
{
    char y[1024];
    snprintf(y, sizeof(y),
             "apiVersion: kueue.x-k8s.io/v1beta2\nkind: Workload\n"
             "metadata: {name: idle-%d, namespace: default}\n"
             "spec:\n  active: false\n  queueName: lq\n  podSets:\n"
             "  - name: main\n    count: 1\n    template:\n      spec:\n"
             "        restartPolicy: Never\n        containers:\n"
             "        - name: c\n          image: busybox\n"
             "          resources: {requests: {cpu: \"1\"}}\n",
             i);
    ks_kqtk_apply(&e->t, y);
}

/*
 * A cluster's deactivated Workloads are evicted once, then no reconcile
 * step walks them again: a new Job costs what it touches, not the
 * number of Workloads in the cluster (before, every step of every pass
 * walked all of them, O(n) per change).
 */
static void test_reconcile_walks_only_workloads_it_may_act_on(void **s)
{
    (void)s;
    struct env e;
    env_start(&e);
    enum { N = 200 };
    for (int i = 0; i < N; i++)
        create_inactive_wl(&e, i);
    ks_kqtk_settle(&e.t);
    cJSON *w = ks_kqtk_get(&e.t, KQ, "workloads", "default", "idle-7");
    assert_string_equal(ks_kqtk_cond(w, "Requeued", NULL, NULL), "False");
    cJSON_Delete(w);
    struct gf_ks_kueue_stats before, after;
    gf_ks_kueue_stats(e.t.kueue, &before);
    create_job(&e, "j", "1", 2, "");
    ks_kqtk_settle(&e.t);
    gf_ks_kueue_stats(e.t.kueue, &after);
    char reason[64];
    assert_string_equal(cond_of(&e, "j", "Admitted", reason), "True");
    assert_false(suspended(&e, "j"));
    assert_true(after.reconciles > before.reconciles);
    /* The Job's one Workload, a few steps, a few passes. */
    uint64_t walked = after.walked - before.walked;
    print_message("walked %llu Workloads in %llu passes\n",
                  (unsigned long long)walked,
                  (unsigned long long)(after.reconciles - before.reconciles));
    assert_true(walked < N);
    env_stop(&e);
}

/*
 * A deactivated Workload is left alone until it or its Job changes: its
 * Job ending (here: marked Complete while suspended) finishes it, as
 * Kueue's job reconciler does.
 */
static void test_job_ending_finishes_its_deactivated_workload(void **s)
{
    (void)s;
    struct env e;
    env_start(&e);
    create_job(&e, "j", "1", 1, "");
    ks_kqtk_settle(&e.t);
    cJSON *w = wl_of(&e, "j");
    char name[254];
    snprintf(name, sizeof(name), "%s", gf_json_str(w, "metadata.name"));
    cJSON_Delete(w);
    ks_kqtk_patch(&e.t, KQ, "workloads", "default", name,
                  "{\"spec\":{\"active\":false}}");
    ks_kqtk_settle(&e.t);
    char reason[64];
    assert_string_equal(cond_of(&e, "j", "Requeued", reason), "False");
    assert_string_equal(reason, "Deactivated");
    assert_true(suspended(&e, "j"));
    /* Any change of the Workload now finds it idle (deactivated, its Job
     * suspended): only the Job's change can wake it. */
    ks_kqtk_patch(&e.t, KQ, "workloads", "default", name,
                  "{\"metadata\":{\"labels\":{\"touched\":\"yes\"}}}");
    ks_kqtk_settle(&e.t);
    cJSON *st = cJSON_Parse("{\"conditions\":[{\"type\":\"Complete\","
                            "\"status\":\"True\"}]}");
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    assert_int_equal(gf_ks_store_patch_status(
                         e.t.st, gf_ks_store_type(e.t.st, "batch", "jobs"),
                         "default", "j", st, NULL, &err),
                     0);
    gf_ks_status_clear(&err);
    cJSON_Delete(st);
    ks_kqtk_settle(&e.t);
    assert_string_equal(cond_of(&e, "j", "Finished", reason), "True");
    assert_string_equal(reason, "Succeeded");
    env_stop(&e);
}

/*
 * A pass that changes nothing a queue's status says does not write it
 * (nor read the stored queue); one made after someone else wrote the
 * status writes it again.
 */
static void test_queue_status_is_written_only_when_it_changes(void **s)
{
    (void)s;
    struct env e;
    env_start(&e);
    create_inactive_wl(&e, 0);
    create_job(&e, "j", "1", 1, "");
    ks_kqtk_settle(&e.t);
    struct gf_ks_kueue_stats before, after;
    gf_ks_kueue_stats(e.t.kueue, &before);
    ks_kqtk_patch(&e.t, KQ, "workloads", "default", "idle-0",
                  "{\"metadata\":{\"labels\":{\"touched\":\"yes\"}}}");
    ks_kqtk_settle(&e.t);
    gf_ks_kueue_stats(e.t.kueue, &after);
    assert_true(after.reconciles > before.reconciles);
    assert_int_equal(after.queue_writes, before.queue_writes);
    /* Someone else's write: the next pass puts Kueue's figures back. */
    cJSON *st = cJSON_Parse("{\"pendingWorkloads\":99}");
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    assert_int_equal(gf_ks_store_patch_status(
                         e.t.st, gf_ks_store_type(e.t.st, KQ, "localqueues"),
                         "default", "lq", st, NULL, &err),
                     0);
    gf_ks_status_clear(&err);
    cJSON_Delete(st);
    ks_kqtk_patch(&e.t, KQ, "workloads", "default", "idle-0",
                  "{\"metadata\":{\"labels\":{\"touched\":\"again\"}}}");
    ks_kqtk_settle(&e.t);
    cJSON *lq = ks_kqtk_get(&e.t, KQ, "localqueues", "default", "lq");
    int64_t pending = -1;
    gf_json_int(lq, "status.pendingWorkloads", &pending);
    assert_int_equal(pending, 0);
    cJSON_Delete(lq);
    env_stop(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_job_is_suspended_until_its_workload_is_admitted),
        cmocka_unit_test(test_gpu_quota_admits_only_what_fits),
        cmocka_unit_test(test_active_false_evicts_and_stops_the_job),
        cmocka_unit_test(test_evicted_workload_keeps_quota_until_pods_stop),
        cmocka_unit_test(test_preempted_job_is_suspended_and_its_pods_deleted),
        cmocka_unit_test(test_kueue_frozen_fault_stops_admission_until_it_ends),
        cmocka_unit_test(test_upstream_sample_job_runs_to_completion),
        cmocka_unit_test(
            test_job_pod_count_is_min_of_parallelism_and_completions),
        cmocka_unit_test(test_effective_requests_count_init_containers),
        cmocka_unit_test(test_pods_resource_counts_one_per_pod),
        cmocka_unit_test(test_flavor_nodeLabels_match_and_are_injected),
        cmocka_unit_test(test_pod_sets_get_flavors_of_their_own),
        cmocka_unit_test(test_stopped_queues_are_reported_as_kueue_does),
        cmocka_unit_test(test_reconcile_walks_only_workloads_it_may_act_on),
        cmocka_unit_test(test_job_ending_finishes_its_deactivated_workload),
        cmocka_unit_test(test_queue_status_is_written_only_when_it_changes),
    };
    gf_kube_global_init();
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_kube_global_cleanup();
    return rc;
}
