/*
 * Tests for the job runner: Pods run for the annotated (or default)
 * duration, scaled by the time scale; the fail annotation fails them
 * until backoffLimit; Pods wait for GPU capacity; suspension deletes
 * Pods; the kueue-frozen fault holds the runner; every start and stop is
 * one JSON line in the execution log. Jobs here carry no queue-name
 * label, so Kueue-lite leaves them alone.
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
#include "e2e/kubesim/runner.h"
#include "e2e/kubesim/test/kueue_testkit.h"
#include "kubeclient/global.h"

struct renv {
    struct ks_kqtk t;
    struct gf_ks_runner *r;
    FILE *log;
};

static void renv_start(struct renv *e, unsigned nodes, unsigned gpus,
                       double scale)
{
    ks_kqtk_start(&e->t);
    e->log = tmpfile();
    assert_non_null(e->log);
    struct gf_ks_runner_opts o = {
        .store = e->t.st,
        .clock = &e->t.k.clock,
        .faults = e->t.faults,
        .cluster = "east",
        .nodes = nodes,
        .gpus_per_node = gpus,
        .default_ms = 45000,
        .exec_log_fd = fileno(e->log),
        .time_scale = scale,
    };
    e->r = gf_ks_runner_new(&o);
    ks_kqtk_settle(&e->t);
}

static void renv_stop(struct renv *e)
{
    gf_ks_runner_free(e->r);
    fclose(e->log);
    ks_kqtk_stop(&e->t);
}

static void create_job(struct renv *e, const char *name, int par, int gpus,
                       const char *annotations, int backoff)
{
    char y[1536];
    snprintf(y, sizeof(y),
             "apiVersion: batch/v1\nkind: Job\n"
             "metadata:\n  name: %s\n  namespace: default\n"
             "  annotations: {%s}\n"
             "spec:\n  parallelism: %d\n  completions: %d\n"
             "  backoffLimit: %d\n"
             "  template:\n    metadata: {labels: {team: a}}\n"
             "    spec:\n      restartPolicy: Never\n"
             "      containers:\n      - name: c\n        image: busybox\n"
             "        resources: {limits: {nvidia.com/gpu: %d}}\n",
             name, annotations, par, par, backoff, gpus);
    ks_kqtk_apply(&e->t, y);
}

static void advance(struct renv *e, uint64_t ms)
{
    gf_clock_advance(&e->t.k.clock, ms);
    ks_kqtk_settle(&e->t);
}

/* Pods by phase; with_node counts only bound ones. */
static size_t pods(struct renv *e, const char *phase, bool with_node)
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
        bool bound = gf_json_str(p, "spec.nodeName") != NULL;
        n += ph != NULL && strcmp(ph, phase) == 0 && (!with_node || bound);
        cJSON_Delete(p);
    }
    gf_ks_list_free(&l);
    return n;
}

static const char *job_cond(struct renv *e, const char *name, const char *type,
                            const char **reason)
{
    cJSON *j = ks_kqtk_get(&e->t, "batch", "jobs", "default", name);
    assert_non_null(j);
    static char out[8];
    const char *st = ks_kqtk_cond(j, type, reason, NULL);
    /* reason points into j: only its first letters are needed. */
    static char rbuf[64];
    if (reason != NULL) {
        snprintf(rbuf, sizeof(rbuf), "%s", *reason ? *reason : "");
        *reason = rbuf;
    }
    snprintf(out, sizeof(out), "%s", st != NULL ? st : "");
    cJSON_Delete(j);
    return out;
}

/* Counts execution-log lines with event and reason (NULL = any). */
static size_t log_lines(struct renv *e, const char *event, const char *reason,
                        int gpus)
{
    fflush(e->log);
    rewind(e->log);
    char line[4096];
    size_t n = 0;
    while (fgets(line, sizeof(line), e->log) != NULL) {
        cJSON *j = cJSON_Parse(line);
        assert_non_null(j); /* every line is one JSON object */
        assert_string_equal(gf_json_str(j, "cluster"), "east");
        assert_non_null(gf_json_str(j, "job_uid"));
        assert_non_null(gf_json_str(j, "pod"));
        assert_string_equal(gf_json_str(j, "labels.team"), "a");
        int64_t g = -1;
        gf_json_int(j, "gpus", &g);
        const char *ev = gf_json_str(j, "event");
        const char *r = gf_json_str(j, "reason");
        n += strcmp(ev, event) == 0 && g == gpus &&
             (reason == NULL || strcmp(r, reason) == 0);
        cJSON_Delete(j);
    }
    return n;
}

static void test_pods_run_for_the_annotated_duration(void **s)
{
    (void)s;
    struct renv e;
    renv_start(&e, 2, 4, 1.0);
    create_job(&e, "j", 2, 2, "kubesim.gpufed.io/duration: 90s", 6);
    ks_kqtk_settle(&e.t);
    assert_int_equal(pods(&e, "Running", true), 2);
    assert_int_equal(log_lines(&e, "start", "Started", 2), 2);
    advance(&e, 89999);
    assert_int_equal(pods(&e, "Running", true), 2);
    advance(&e, 1);
    assert_int_equal(pods(&e, "Succeeded", true), 2);
    assert_int_equal(log_lines(&e, "stop", "Succeeded", 2), 2);
    const char *reason = NULL;
    assert_string_equal(job_cond(&e, "j", "Complete", &reason), "True");
    assert_string_equal(reason, "CompletionsReached");
    struct gf_ks_runner_stats st;
    gf_ks_runner_stats(e.r, &st);
    assert_int_equal(st.free_gpus, 8);
    renv_stop(&e);
}

static void test_default_duration_and_time_scale(void **s)
{
    (void)s;
    struct renv e;
    /* 45 s of simulated time at scale 10 is 4.5 s of the clock. */
    renv_start(&e, 1, 8, 10.0);
    create_job(&e, "j", 1, 1, "", 6);
    ks_kqtk_settle(&e.t);
    advance(&e, 4499);
    assert_int_equal(pods(&e, "Running", true), 1);
    advance(&e, 1);
    assert_int_equal(pods(&e, "Succeeded", true), 1);
    renv_stop(&e);
}

static void test_fail_annotation_fails_until_backoffLimit(void **s)
{
    (void)s;
    struct renv e;
    renv_start(&e, 1, 8, 1.0);
    create_job(&e, "j", 1, 1,
               "kubesim.gpufed.io/duration: 10s, kubesim.gpufed.io/fail: "
               "\"true\"",
               1);
    ks_kqtk_settle(&e.t);
    advance(&e, 10000);
    /* One failure is within backoffLimit 1: a replacement runs, but
     * "Failed Pods associated with the Job are recreated by the Job
     * controller with an exponential back-off delay (10s, 20s, 40s ...)"
     * (the Job documentation): not before 10 s. */
    assert_int_equal(pods(&e, "Failed", true), 1);
    assert_int_equal(pods(&e, "Running", true), 0);
    advance(&e, 9999);
    assert_int_equal(pods(&e, "Running", true), 0);
    advance(&e, 1);
    assert_int_equal(pods(&e, "Running", true), 1);
    assert_string_equal(job_cond(&e, "j", "Failed", NULL), "");
    advance(&e, 10000);
    assert_int_equal(pods(&e, "Failed", true), 2);
    const char *reason = NULL;
    assert_string_equal(job_cond(&e, "j", "FailureTarget", &reason), "True");
    assert_string_equal(job_cond(&e, "j", "Failed", &reason), "True");
    assert_string_equal(reason, "BackoffLimitExceeded");
    assert_int_equal(log_lines(&e, "stop", "Failed", 1), 2);
    renv_stop(&e);
}

static void test_pods_wait_for_gpu_capacity(void **s)
{
    (void)s;
    struct renv e;
    renv_start(&e, 1, 4, 1.0);
    create_job(&e, "j", 3, 2, "kubesim.gpufed.io/duration: 10s", 6);
    ks_kqtk_settle(&e.t);
    assert_int_equal(pods(&e, "Running", true), 2);
    assert_int_equal(pods(&e, "Pending", false), 1);
    advance(&e, 10000);
    assert_int_equal(pods(&e, "Succeeded", true), 2);
    assert_int_equal(pods(&e, "Running", true), 1);
    advance(&e, 10000);
    assert_string_equal(job_cond(&e, "j", "Complete", NULL), "True");
    renv_stop(&e);
}

/*
 * Capacity is per node: with two nodes of 4 GPUs, pods of 3 GPUs run one
 * per node, and a third waits although 2 GPUs are free in all.
 */
static void test_gpu_capacity_is_counted_per_node(void **s)
{
    (void)s;
    struct renv e;
    renv_start(&e, 2, 4, 1.0);
    create_job(&e, "j", 3, 3, "kubesim.gpufed.io/duration: 10s", 6);
    ks_kqtk_settle(&e.t);
    assert_int_equal(pods(&e, "Running", true), 2);
    assert_int_equal(pods(&e, "Pending", false), 1);
    struct gf_ks_runner_stats st;
    gf_ks_runner_stats(e.r, &st);
    assert_int_equal(st.free_gpus, 2);
    advance(&e, 10000);
    assert_int_equal(pods(&e, "Succeeded", true), 2);
    assert_int_equal(pods(&e, "Running", true), 1);
    renv_stop(&e);
}

static void test_suspend_deletes_pods_and_logs_stop(void **s)
{
    (void)s;
    struct renv e;
    renv_start(&e, 1, 8, 1.0);
    create_job(&e, "j", 2, 1, "", 6);
    ks_kqtk_settle(&e.t);
    assert_int_equal(pods(&e, "Running", true), 2);
    ks_kqtk_patch(&e.t, "batch", "jobs", "default", "j",
                  "{\"spec\":{\"suspend\":true}}");
    ks_kqtk_settle(&e.t);
    assert_int_equal(pods(&e, "Running", false), 0);
    assert_int_equal(log_lines(&e, "stop", "Suspended", 1), 2);
    const char *reason = NULL;
    assert_string_equal(job_cond(&e, "j", "Suspended", &reason), "True");
    assert_string_equal(reason, "JobSuspended");
    /* Resumed: new Pods. */
    ks_kqtk_patch(&e.t, "batch", "jobs", "default", "j",
                  "{\"spec\":{\"suspend\":false}}");
    ks_kqtk_settle(&e.t);
    assert_int_equal(pods(&e, "Running", true), 2);
    assert_string_equal(job_cond(&e, "j", "Suspended", &reason), "False");
    renv_stop(&e);
}

/* A Job whose last Pod succeeds as the Job is suspended (Kueue evicting
 * its Workload in the same instant) is Complete, as the Job controller
 * has it: completion is reckoned before suspension. Kubesim used to mark
 * it Suspended only, so the success was lost and the job ran again. The
 * runner frozen until 13.07 s lines the two up: the Pod's end is retried
 * on a 100 ms grid from 10 s (13.1 s), the reconcile after the suspend
 * on one from 11.05 s (13.15 s). */
static void test_a_pod_done_as_its_job_suspends_completes_it(void **s)
{
    (void)s;
    struct renv e;
    renv_start(&e, 1, 8, 1.0);
    create_job(&e, "j", 1, 1, "kubesim.gpufed.io/duration: 10s", 6);
    ks_kqtk_settle(&e.t);
    assert_int_equal(pods(&e, "Running", true), 1);
    advance(&e, 1000);
    struct gf_ks_fault_spec f = {.kind = GF_KS_FAULT_KUEUE_FROZEN,
                                 .for_ms = 12070};
    assert_true(gf_ks_faults_add(e.t.faults, &f) > 0);
    advance(&e, 10050); /* 11.05 s */
    ks_kqtk_patch(&e.t, "batch", "jobs", "default", "j",
                  "{\"spec\":{\"suspend\":true}}");
    ks_kqtk_settle(&e.t);
    advance(&e, 3000); /* 14.05 s */
    assert_int_equal(log_lines(&e, "stop", "Succeeded", 1), 1);
    const char *reason = NULL;
    assert_string_equal(job_cond(&e, "j", "Complete", &reason), "True");
    renv_stop(&e);
}

static void test_frozen_runner_makes_no_progress(void **s)
{
    (void)s;
    struct renv e;
    renv_start(&e, 1, 8, 1.0);
    create_job(&e, "j", 1, 1, "kubesim.gpufed.io/duration: 10s", 6);
    ks_kqtk_settle(&e.t);
    struct gf_ks_fault_spec f = {.kind = GF_KS_FAULT_KUEUE_FROZEN,
                                 .for_ms = 20000};
    assert_true(gf_ks_faults_add(e.t.faults, &f) > 0);
    advance(&e, 15000);
    assert_int_equal(pods(&e, "Running", true), 1);
    advance(&e, 5100);
    assert_int_equal(pods(&e, "Succeeded", true), 1);
    renv_stop(&e);
}

/* The node each Pod of the store is bound to, in creation order. */
static void nodes_of_pods(struct renv *e, char out[][32], size_t n)
{
    struct gf_ks_list l;
    struct gf_ks_list_opts o = {0};
    assert_int_equal(gf_ks_store_list(e->t.st,
                                      gf_ks_store_type(e->t.st, "", "pods"), &o,
                                      &l, NULL),
                     0);
    assert_int_equal(l.n, n);
    for (size_t i = 0; i < l.n; i++) {
        cJSON *p = gf_ks_obj_parse(l.items[i]);
        const char *node = gf_json_str(p, "spec.nodeName");
        snprintf(out[i], 32, "%s", node != NULL ? node : "");
        cJSON_Delete(p);
    }
    gf_ks_list_free(&l);
}

static void create_pod_job(struct renv *e, const char *name, int par,
                           const char *pod_extra, const char *res)
{
    char y[1536];
    snprintf(y, sizeof(y),
             "apiVersion: batch/v1\nkind: Job\n"
             "metadata:\n  name: %s\n  namespace: default\n"
             "  annotations: {kubesim.gpufed.io/duration: 10s}\n"
             "spec:\n  parallelism: %d\n  completions: %d\n"
             "  template:\n    metadata: {labels: {team: a}}\n"
             "    spec:\n%s      restartPolicy: Never\n"
             "      containers:\n      - name: c\n        image: busybox\n"
             "        resources: {requests: {%s}}\n",
             name, par, par, pod_extra, res);
    ks_kqtk_apply(&e->t, y);
}

static void test_pods_bind_by_nodeSelector(void **s)
{
    (void)s;
    struct renv e;
    renv_start(&e, 2, 8, 1.0);
    create_pod_job(&e, "j", 1,
                   "      nodeSelector: {kubernetes.io/hostname: node-2}\n",
                   "nvidia.com/gpu: 1");
    ks_kqtk_settle(&e.t);
    char nodes[1][32];
    nodes_of_pods(&e, nodes, 1);
    assert_string_equal(nodes[0], "node-2");
    renv_stop(&e);
}

static void test_pods_bind_by_cpu_capacity(void **s)
{
    (void)s;
    struct renv e;
    renv_start(&e, 2, 8, 1.0);
    /* Nodes have 64 cpu: two pods of 40 cpu cannot share one. */
    create_pod_job(&e, "j", 2, "", "cpu: 40");
    ks_kqtk_settle(&e.t);
    char nodes[2][32];
    nodes_of_pods(&e, nodes, 2);
    assert_string_not_equal(nodes[0], nodes[1]);
    assert_int_equal(pods(&e, "Running", true), 2);
    renv_stop(&e);
}

static void test_unbindable_pod_is_unschedulable_until_a_node_matches(void **s)
{
    (void)s;
    struct renv e;
    renv_start(&e, 2, 8, 1.0);
    create_pod_job(&e, "j", 1,
                   "      nodeSelector: {gpu.example.com/type: h100}\n",
                   "nvidia.com/gpu: 1");
    ks_kqtk_settle(&e.t);
    struct gf_ks_list l;
    struct gf_ks_list_opts o = {0};
    assert_int_equal(gf_ks_store_list(e.t.st,
                                      gf_ks_store_type(e.t.st, "", "pods"), &o,
                                      &l, NULL),
                     0);
    assert_int_equal(l.n, 1);
    cJSON *p = gf_ks_obj_parse(l.items[0]);
    gf_ks_list_free(&l);
    const char *reason = NULL, *msg = NULL;
    assert_string_equal(ks_kqtk_cond(p, "PodScheduled", &reason, &msg),
                        "False");
    assert_string_equal(reason, "Unschedulable");
    assert_string_equal(msg, "0/2 nodes are available: 2 node(s) didn't "
                             "match Pod's node affinity/selector.");
    cJSON_Delete(p);
    /* kubectl label node node-1 gpu.example.com/type=h100 */
    ks_kqtk_patch(&e.t, "", "nodes", "", "node-1",
                  "{\"metadata\":{\"labels\":"
                  "{\"gpu.example.com/type\":\"h100\"}}}");
    ks_kqtk_settle(&e.t);
    char nodes[1][32];
    nodes_of_pods(&e, nodes, 1);
    assert_string_equal(nodes[0], "node-1");
    assert_int_equal(pods(&e, "Running", true), 1);
    renv_stop(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pods_run_for_the_annotated_duration),
        cmocka_unit_test(test_default_duration_and_time_scale),
        cmocka_unit_test(test_fail_annotation_fails_until_backoffLimit),
        cmocka_unit_test(test_pods_wait_for_gpu_capacity),
        cmocka_unit_test(test_gpu_capacity_is_counted_per_node),
        cmocka_unit_test(test_suspend_deletes_pods_and_logs_stop),
        cmocka_unit_test(test_a_pod_done_as_its_job_suspends_completes_it),
        cmocka_unit_test(test_frozen_runner_makes_no_progress),
        cmocka_unit_test(test_pods_bind_by_nodeSelector),
        cmocka_unit_test(test_pods_bind_by_cpu_capacity),
        cmocka_unit_test(
            test_unbindable_pod_is_unschedulable_until_a_node_matches),
    };
    gf_kube_global_init();
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_kube_global_cleanup();
    return rc;
}
