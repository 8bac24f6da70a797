/*
 * Tests for controller/observe, on objects as the API servers serve them:
 * - testdata/workloads-east*.json: `kubectl get workloads -o json` from
 *   kubesim's Kueue-lite (upstream cohort-borrowing and gpu samples with
 *   nvidia.com/gpu, Jobs labelled kueue.x-k8s.io/queue-name): admitted,
 *   pending, finished (succeeded and failed), deactivated, then
 *   reactivated, and a Workload with two podSets, init containers, limits
 *   only and a 500m request;
 * - testdata/clusterqueues-east.json, localqueues-east.json,
 *   namespaces-east.json, jobs-east.json from the same kubesim;
 * - testdata/origin-job.json: a Job as a real kube-apiserver v1.28 stores
 *   it;
 * - testdata/quotalease-built.json: what gf_obs_lease_to_json builds,
 *   which e2e/test_quotalease_crd.sh creates on kubesim and on the real
 *   server, so the CRD is checked against the builder's output.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/file.h"
#include "common/json.h"
#include "controller/observe.h"
#include "policy/ledger.h"

#define TESTDATA "controller/test/testdata/"
#define GPU "nvidia.com/gpu"

static int64_t live_at_start;

static int setup(void **state)
{
    (void)state;
    live_at_start = gf_alloc_live();
    return 0;
}

/* Every test frees all it allocated, whatever the projections refused. */
static int teardown(void **state)
{
    (void)state;
    assert_int_equal(gf_alloc_live(), live_at_start);
    return 0;
}

static cJSON *load(const char *path)
{
    char *buf = NULL;
    size_t len = 0;
    assert_int_equal(gf_file_read(path, 1 << 20, &buf, &len), 0);
    cJSON *j = cJSON_ParseWithLength(buf, len);
    gf_free(buf);
    assert_non_null(j);
    return j;
}

static cJSON *parse(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    assert_non_null(j);
    return j;
}

/* JSON written with single quotes, for tables that stay readable. */
static cJSON *parse_sq(const char *text)
{
    char buf[1024];
    size_t n = strlen(text);
    assert_true(n < sizeof(buf));
    memcpy(buf, text, n + 1);
    for (char *q = strchr(buf, '\''); q != NULL; q = strchr(q, '\''))
        *q = '"';
    return parse(buf);
}

/* The item of a List with metadata.name == name. */
static const cJSON *find(const cJSON *list, const char *name)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(list, "items"))
    {
        const char *n = gf_json_str(it, "metadata.name");
        if (n != NULL && strcmp(n, name) == 0)
            return it;
    }
    fail_msg("no %s in the list", name);
    return NULL;
}

static int64_t ts(const char *s)
{
    int64_t ms = 0;
    assert_int_equal(gf_time_parse_rfc3339(s, &ms), 0);
    return ms;
}

static struct gf_obs_workload *wl_of(const cJSON *list, const char *name)
{
    void *p = NULL;
    assert_int_equal(gf_obs_workload_project((void *)GPU, find(list, name), &p),
                     0);
    return p;
}

static void test_workloads_as_kueue_lite_writes_them(void **state)
{
    (void)state;
    cJSON *list = load(TESTDATA "workloads-east.json");

    struct gf_obs_workload *w = wl_of(list, "job-train-admitted-c110c");
    assert_string_equal(w->ns, "ml");
    assert_string_equal(w->uid, "845b2bb5-32a2-4bfd-ac34-9d61a1481585");
    assert_string_equal(w->local_queue, "team-a");
    assert_string_equal(w->owner_kind, "batch/Job");
    assert_string_equal(w->owner_name, "train-admitted");
    assert_string_equal(w->owner_uid, "e51d3f86-21c8-4b21-89b6-fbb59dbc75a1");
    assert_string_equal(w->flavor, "gpu");
    assert_null(w->lease);
    assert_int_equal(w->gpus, 2);
    assert_true(w->active && w->quota_reserved && w->admitted);
    assert_false(w->finished || w->evicted);
    assert_int_equal(w->created_ms, ts("2026-12-06T03:06:35Z"));
    assert_int_equal(gf_obs_workload_state(w), GF_WL_ADMITTED);
    gf_obs_workload_free(w);

    /* Two pods of 4 GPUs each: 8, more than the queue can ever give. */
    w = wl_of(list, "job-train-pending-d1cba");
    assert_int_equal(w->gpus, 8);
    assert_null(w->flavor);
    assert_false(w->quota_reserved || w->admitted || w->evicted);
    assert_int_equal(w->pending_since_ms, w->created_ms);
    assert_int_equal(gf_obs_workload_state(w), GF_WL_PENDING);
    gf_obs_workload_free(w);

    /* Limits only: the request defaults to the limit. */
    w = wl_of(list, "job-train-done-86531");
    assert_int_equal(w->gpus, 1);
    assert_true(w->finished && w->succeeded);
    assert_int_equal(gf_obs_workload_state(w), GF_WL_FINISHED);
    gf_obs_workload_free(w);

    w = wl_of(list, "job-train-fail-1b987");
    assert_true(w->finished);
    assert_false(w->succeeded);
    assert_int_equal(gf_obs_workload_state(w), GF_WL_FINISHED);
    gf_obs_workload_free(w);

    /* Deactivated: evicted, not requeued, holds nothing. */
    w = wl_of(list, "job-train-inactive-87ccb");
    assert_false(w->active);
    assert_true(w->evicted);
    assert_false(w->quota_reserved || w->admitted);
    assert_null(w->flavor);
    assert_int_equal(w->pending_since_ms, ts("2026-12-06T03:06:45Z"));
    assert_int_equal(gf_obs_workload_state(w), GF_WL_INACTIVE);
    gf_obs_workload_free(w);

    /*
     * Written by hand, queued directly (no owner): driver 1 x max(0, init
     * 1) = 1; workers 2 x max(1 + 0.5, init 3) = 6; 7 in all, as Kueue
     * counts it (Kueue-lite, which skips init containers, charged 3). The
     * GPU flavor is found in the second podSet.
     */
    w = wl_of(list, "llm-finetune");
    assert_int_equal(w->gpus, 7);
    assert_int_equal(w->priority, 100);
    assert_null(w->owner_kind);
    assert_string_equal(w->flavor, "gpu");
    struct gf_workload lw;
    gf_obs_workload_to_ledger(w, "east", "team-a-cq", &lw);
    assert_string_equal(lw.kind, "batch/Job");
    assert_string_equal(lw.member, "east");
    assert_string_equal(lw.cluster_queue, "team-a-cq");
    assert_string_equal(lw.flavor, "gpu");
    assert_int_equal(lw.state, GF_WL_ADMITTED);
    assert_int_equal(lw.gpus, 7);
    assert_int_equal(lw.priority, 100);
    gf_obs_workload_free(w);
    cJSON_Delete(list);
}

/* After deactivation and reactivation, the wait restarts at the requeue
 * (Kueue's queue order with the Eviction timestamp strategy). */
static void test_requeued_workload_waits_from_its_requeue(void **state)
{
    (void)state;
    cJSON *list = load(TESTDATA "workloads-east-requeued.json");
    struct gf_obs_workload *w = wl_of(list, "job-train-pending-d1cba");
    assert_true(w->active);
    assert_true(w->evicted); /* Kueue-lite leaves Evicted True meanwhile */
    assert_int_equal(gf_obs_workload_state(w), GF_WL_PENDING);
    assert_int_equal(w->created_ms, ts("2026-12-06T03:06:35Z"));
    /* Evicted at :10, Requeued at :12: the later one. */
    assert_int_equal(w->pending_since_ms, ts("2026-12-06T03:07:12Z"));
    struct gf_workload lw;
    gf_obs_workload_to_ledger(w, "east", "team-a-cq", &lw);
    assert_int_equal(lw.pending_since_ms, ts("2026-12-06T03:07:12Z"));
    assert_null(lw.flavor);
    gf_obs_workload_free(w);

    w = wl_of(list, "job-train-inactive-87ccb");
    assert_int_equal(gf_obs_workload_state(w), GF_WL_ADMITTED);
    assert_false(w->evicted); /* Evicted False "Previously: ..." */
    assert_string_equal(w->flavor, "gpu");
    gf_obs_workload_free(w);
    cJSON_Delete(list);
}

/* The manifest of Kueue's Workload concept page: no status at all. */
static void test_workload_from_the_kueue_docs_without_status(void **state)
{
    (void)state;
    cJSON *o = parse(
        "{\"apiVersion\":\"kueue.x-k8s.io/v1beta2\",\"kind\":\"Workload\","
        "\"metadata\":{\"name\":\"sample-job\",\"namespace\":\"team-a\"},"
        "\"spec\":{\"active\":true,\"queueName\":\"team-a-queue\","
        "\"podSets\":[{\"count\":3,\"name\":\"main\",\"template\":{\"spec\":"
        "{\"containers\":[{\"name\":\"container\",\"image\":\"agnhost\","
        "\"args\":[\"pause\"],\"resources\":{\"requests\":{\"cpu\":\"1\","
        "\"memory\":\"200Mi\"}}}],\"restartPolicy\":\"Never\"}}}]}}");
    void *p = NULL;
    assert_int_equal(gf_obs_workload_project((void *)GPU, o, &p), 0);
    struct gf_obs_workload *w = p;
    assert_int_equal(w->gpus, 0);
    assert_null(w->uid);
    assert_int_equal(w->created_ms, 0);
    assert_int_equal(gf_obs_workload_state(w), GF_WL_PENDING);
    assert_string_equal(w->local_queue, "team-a-queue");
    gf_obs_workload_free(w);
    /* The same rule for any resource: 3 pods x 1 cpu. */
    assert_int_equal(gf_obs_workload_project((void *)"cpu", o, &p), 0);
    assert_int_equal(((struct gf_obs_workload *)p)->gpus, 3);
    gf_obs_workload_free(p);
    cJSON_Delete(o);
}

struct pod_case {
    const char *what;
    const char *pod; /* a PodSpec */
    int rc;
    int64_t milli;
};

static void test_pod_requests_as_kueue_counts_them(void **state)
{
    (void)state;
    /* Single quotes stand for double quotes (see parse_sq). */
    static const struct pod_case cases[] = {
        {"requests",
         "{'containers':[{'resources':{'requests':{'nvidia.com/gpu':'2'}}}]}",
         0, 2000},
        {"limits only",
         "{'containers':[{'resources':{'limits':{'nvidia.com/gpu':2}}}]}", 0,
         2000},
        {"the request wins over the limit",
         "{'containers':[{'resources':{'requests':{'nvidia.com/gpu':'1'},"
         "'limits':{'nvidia.com/gpu':'2'}}}]}",
         0, 1000},
        {"containers add up",
         "{'containers':[{'resources':{'requests':{'nvidia.com/gpu':'1'}}},"
         "{'resources':{'limits':{'nvidia.com/gpu':'250m'}}}]}",
         0, 1250},
        {"the largest init container, when larger",
         "{'containers':[{'resources':{'requests':{'nvidia.com/gpu':'1'}}}],"
         "'initContainers':[{'resources':{'requests':{'nvidia.com/gpu':'3'}}},"
         "{'resources':{'requests':{'nvidia.com/gpu':'2'}}}]}",
         0, 3000},
        {"init containers run one at a time",
         "{'containers':[{'resources':{'requests':{'nvidia.com/gpu':'4'}}}],"
         "'initContainers':[{'resources':{'requests':{'nvidia.com/gpu':'3'}}},"
         "{'resources':{'requests':{'nvidia.com/gpu':'3'}}}]}",
         0, 4000},
        {"a sidecar runs beside the containers and later init containers",
         "{'containers':[{'resources':{'requests':{'nvidia.com/gpu':'1'}}}],"
         "'initContainers':[{'restartPolicy':'Always','resources':"
         "{'requests':{'nvidia.com/gpu':'1'}}},"
         "{'resources':{'requests':{'nvidia.com/gpu':'3'}}}]}",
         0, 4000},
        {"overhead on top",
         "{'overhead':{'nvidia.com/gpu':'500m'},"
         "'containers':[{'resources':{'requests':{'nvidia.com/gpu':'1'}}}]}",
         0, 1500},
        {"no containers", "{}", 0, 0},
        {"other resources do not count",
         "{'containers':[{'resources':{'requests':{'cpu':'8'}}}]}", 0, 0},
        /* A dotted path would read this as nvidia -> com/gpu. */
        {"dots in the key are one key",
         "{'containers':[{'resources':{'requests':{'nvidia':{'com/gpu':'9'}}}}"
         "]}",
         0, 0},
        {"a bad quantity",
         "{'containers':[{'resources':{'requests':{'nvidia.com/gpu':'two'}}}]}",
         -EINVAL, 0},
        {"a negative quantity",
         "{'containers':[{'resources':{'requests':{'nvidia.com/gpu':'-1'}}}]}",
         -EINVAL, 0},
        {"containers not an array", "{'containers':{}}", -EINVAL, 0},
        {"resources not an object", "{'containers':[{'resources':3}]}", -EINVAL,
         0},
        {"a sum that overflows",
         "{'containers':[{'resources':{'requests':{'nvidia.com/gpu':"
         "'5000000000000000000m'}}},{'resources':{'requests':{"
         "'nvidia.com/gpu':'5000000000000000000m'}}}]}",
         -ERANGE, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *pod = parse_sq(cases[i].pod);
        int64_t m = -1;
        int rc = gf_obs_pod_milli(pod, GPU, &m);
        if (rc != cases[i].rc || (rc == 0 && m != cases[i].milli))
            fail_msg("%s: rc %d milli %lld", cases[i].what, rc, (long long)m);
        cJSON_Delete(pod);
    }
}

/* Milli-units round up per Workload: 3 pods of 500m hold 2 GPUs. */
static void test_workload_gpus_round_up(void **state)
{
    (void)state;
    cJSON *o = parse("{\"metadata\":{\"name\":\"w\",\"namespace\":\"ml\"},"
                     "\"spec\":{\"podSets\":[{\"count\":3,\"template\":{"
                     "\"spec\":{\"containers\":[{\"resources\":{\"limits\":{"
                     "\"" GPU "\":\"500m\"}}}]}}}]}}");
    void *p = NULL;
    assert_int_equal(gf_obs_workload_project((void *)GPU, o, &p), 0);
    assert_int_equal(((struct gf_obs_workload *)p)->gpus, 2);
    gf_obs_workload_free(p);
    cJSON_Delete(o);
}

/* Objects no API server would send are refused, and nothing leaks. */
static void test_malformed_workloads_are_refused(void **state)
{
    (void)state;
#define MD "\"metadata\":{\"name\":\"w\",\"namespace\":\"ml\"}"
    static const struct {
        const char *json;
        int rc;
    } cases[] = {
        {"[]", -EINVAL},
        {"{\"metadata\":{\"namespace\":\"ml\"}}", -EINVAL},
        {"{\"metadata\":{\"name\":\"w\"}}", -EINVAL},
        {"{\"metadata\":{\"name\":7,\"namespace\":\"ml\"}}", -EINVAL},
        {"{\"metadata\":{\"name\":\"w\",\"namespace\":\"ml\","
         "\"creationTimestamp\":\"yesterday\"}}",
         -EINVAL},
        {"{" MD ",\"spec\":[]}", -EINVAL},
        {"{" MD ",\"spec\":{\"queueName\":5}}", -EINVAL},
        {"{" MD ",\"spec\":{\"priority\":1e12}}", -EINVAL},
        {"{" MD ",\"spec\":{\"priority\":1.5}}", -EINVAL},
        {"{" MD ",\"spec\":{\"active\":\"yes\"}}", -EINVAL},
        {"{" MD ",\"spec\":{\"podSets\":{}}}", -EINVAL},
        {"{" MD ",\"spec\":{\"podSets\":[{\"count\":\"3\"}]}}", -EINVAL},
        {"{" MD ",\"spec\":{\"podSets\":[{\"count\":-1}]}}", -EINVAL},
        {"{" MD ",\"spec\":{\"podSets\":[{\"template\":[]}]}}", -EINVAL},
        {"{" MD ",\"spec\":{\"podSets\":[{\"count\":2147483647,\"template\":"
         "{\"spec\":{\"containers\":[{\"resources\":{\"limits\":{\"" GPU
         "\":\"9000000000000\"}}}]}}}]}}",
         -ERANGE},
        {"{" MD ",\"status\":{\"conditions\":{}}}", -EINVAL},
        {"{" MD ",\"status\":{\"conditions\":[{\"type\":\"Evicted\","
         "\"status\":\"True\",\"lastTransitionTime\":3}]}}",
         -EINVAL},
        {"{" MD ",\"status\":{\"admission\":{\"podSetAssignments\":[{"
         "\"flavors\":{\"" GPU "\":1}}]}}}",
         -EINVAL},
        {"{\"metadata\":{\"name\":\"w\",\"namespace\":\"ml\","
         "\"ownerReferences\":[{\"controller\":true,\"kind\":\"Job\"}]}}",
         -EINVAL},
    };
#undef MD
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *o = parse(cases[i].json);
        void *p = (void *)&cases[i];
        int rc = gf_obs_workload_project((void *)GPU, o, &p);
        if (rc != cases[i].rc || p != (void *)&cases[i])
            fail_msg("case %zu: rc %d", i, rc);
        cJSON_Delete(o);
    }
}

static void test_owner_kinds(void **state)
{
    (void)state;
    static const struct {
        const char *refs, *kind;
    } cases[] = {
        {"[{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"name\":\"p\","
         "\"controller\":true}]",
         "Pod"},
        {"[{\"apiVersion\":\"kubeflow.org/v1\",\"kind\":\"PyTorchJob\","
         "\"name\":\"p\",\"controller\":true}]",
         "kubeflow.org/PyTorchJob"},
        /* Only the controller reference names the owner. */
        {"[{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"name\":\"c\"},"
         "{\"apiVersion\":\"batch/v1\",\"kind\":\"Job\",\"name\":\"j\","
         "\"controller\":true}]",
         "batch/Job"},
        {"[{\"apiVersion\":\"batch/v1\",\"kind\":\"Job\",\"name\":\"j\"}]",
         NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[512];
        snprintf(buf, sizeof(buf),
                 "{\"metadata\":{\"name\":\"w\",\"namespace\":\"ml\","
                 "\"ownerReferences\":%s}}",
                 cases[i].refs);
        cJSON *o = parse(buf);
        void *p = NULL;
        assert_int_equal(gf_obs_workload_project((void *)GPU, o, &p), 0);
        struct gf_obs_workload *w = p;
        if (cases[i].kind == NULL)
            assert_null(w->owner_kind);
        else
            assert_string_equal(w->owner_kind, cases[i].kind);
        gf_obs_workload_free(w);
        cJSON_Delete(o);
    }
}

/* The ledger's states for each combination the hub can see. */
static void test_ledger_states(void **state)
{
    (void)state;
    struct gf_obs_workload w = {.ns = "ml", .name = "w", .active = true};
    struct gf_workload lw;
    w.flavor = "gpu";
    gf_obs_workload_to_ledger(&w, "east", NULL, &lw);
    assert_int_equal(lw.state, GF_WL_PENDING);
    assert_null(lw.flavor); /* pending holds no flavor's quota */
    w.quota_reserved = true;
    gf_obs_workload_to_ledger(&w, "east", NULL, &lw);
    assert_int_equal(lw.state, GF_WL_RESERVED);
    assert_string_equal(lw.flavor, "gpu");
    w.admitted = true;
    gf_obs_workload_to_ledger(&w, "east", NULL, &lw);
    assert_int_equal(lw.state, GF_WL_ADMITTED);
    w.active = false;
    gf_obs_workload_to_ledger(&w, "east", NULL, &lw);
    assert_int_equal(lw.state, GF_WL_INACTIVE);
    w.finished = true;
    gf_obs_workload_to_ledger(&w, "east", NULL, &lw);
    assert_int_equal(lw.state, GF_WL_FINISHED);
}

static const struct gf_cq_quota *quota(const struct gf_obs_cq *cq,
                                       const char *flavor, const char *res)
{
    for (size_t i = 0; i < cq->n_quotas; i++)
        if (strcmp(cq->quotas[i].flavor, flavor) == 0 &&
            strcmp(cq->quotas[i].resource, res) == 0)
            return &cq->quotas[i];
    fail_msg("no %s/%s in %s", flavor, res, cq->name);
    return NULL;
}

static struct gf_obs_cq *cq_of(const cJSON *list, const char *name)
{
    void *p = NULL;
    assert_int_equal(gf_obs_cq_project(NULL, find(list, name), &p), 0);
    return p;
}

static void test_cluster_queues_from_the_upstream_samples(void **state)
{
    (void)state;
    cJSON *list = load(TESTDATA "clusterqueues-east.json");

    /* borrowing-limit-example's team-a-cq, with a GPU group added. */
    struct gf_obs_cq *a = cq_of(list, "team-a-cq");
    assert_string_equal(a->cohort, "team-ab");
    assert_int_equal(a->n_quotas, 3);
    assert_false(a->managed_by_gpufed || a->stopped);
    const struct gf_cq_quota *q = quota(a, "gpu", GPU);
    assert_int_equal(q->nominal, 4);
    assert_int_equal(q->borrowing_limit, 2);
    assert_int_equal(q->lending_limit, GF_NO_LIMIT);
    q = quota(a, "default-flavor", "cpu");
    assert_int_equal(q->nominal, 9);
    assert_int_equal(q->borrowing_limit, 1);
    assert_int_equal(quota(a, "default-flavor", "memory")->nominal, 36LL << 30);
    /* Spec order is kept. */
    assert_string_equal(a->quotas[0].resource, "cpu");
    assert_string_equal(a->quotas[2].resource, GPU);

    /* lending-limit-example's team-b-cq, ours and on Hold. */
    struct gf_obs_cq *b = cq_of(list, "team-b-cq");
    assert_true(b->managed_by_gpufed);
    assert_true(b->stopped);
    q = quota(b, "default-flavor", GPU);
    assert_int_equal(q->nominal, 8);
    assert_int_equal(q->lending_limit, 4);
    assert_int_equal(quota(b, "default-flavor", "cpu")->lending_limit, 1);
    /* 500m of cpu lends nothing whole: quotas round down. */
    assert_int_equal(quota(b, "spot", "cpu")->nominal, 0);
    assert_int_equal(quota(b, "spot", GPU)->nominal, 2);

    /* The gpu sample's TAS queue: no cohort. */
    struct gf_obs_cq *t = cq_of(list, "tas-cluster-queue");
    assert_null(t->cohort);
    assert_int_equal(quota(t, "tas-flavor", GPU)->nominal, 16);

    /* What the ledger makes of team-a-cq with the admitted Workloads. */
    struct gf_ledger *l = gf_ledger_new(GPU);
    assert_int_equal(gf_ledger_member_set(l, "east", GF_FRESH_SYNCED, 0), 0);
    assert_int_equal(
        gf_ledger_cq_set(l, "east", "team-a-cq", a->quotas, a->n_quotas), 0);
    cJSON *wls = load(TESTDATA "workloads-east.json");
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(wls, "items"))
    {
        void *p = NULL;
        assert_int_equal(gf_obs_workload_project((void *)GPU, it, &p), 0);
        struct gf_workload lw;
        gf_obs_workload_to_ledger(p, "east", "team-a-cq", &lw);
        assert_int_equal(gf_ledger_workload_set(l, &lw), 0);
        gf_obs_workload_free(p);
    }
    const struct gf_ledger_cell *c =
        gf_ledger_cell(l, "east", "team-a-cq", "gpu", GPU);
    assert_non_null(c);
    /* Admitted: train-admitted 2 + llm-finetune 7 (Kueue-lite let 9 in
     * against 4 + 2; Kueue would not have). */
    assert_int_equal(c->used, 9);
    assert_int_equal(gf_ledger_cq(l, "east", "team-a-cq")->pending, 8);
    char why[256];
    assert_int_equal(gf_ledger_verify(l, why, sizeof(why)), 0);
    gf_ledger_free(l);
    cJSON_Delete(wls);

    gf_obs_cq_free(a);
    gf_obs_cq_free(b);
    gf_obs_cq_free(t);
    cJSON_Delete(list);
}

static void test_malformed_cluster_queues_are_refused(void **state)
{
    (void)state;
    static const struct {
        const char *spec;
        int rc;
    } cases[] = {
        {"[]", -EINVAL},
        {"{\"cohortName\":1}", -EINVAL},
        {"{\"resourceGroups\":{}}", -EINVAL},
        {"{\"resourceGroups\":[{\"flavors\":[{\"resources\":[]}]}]}", -EINVAL},
        {"{\"resourceGroups\":[{\"flavors\":[{\"name\":\"f\",\"resources\":"
         "[{\"name\":\"" GPU "\"}]}]}]}",
         -EINVAL},
        {"{\"resourceGroups\":[{\"flavors\":[{\"name\":\"f\",\"resources\":"
         "[{\"name\":\"" GPU "\",\"nominalQuota\":\"lots\"}]}]}]}",
         -EINVAL},
        {"{\"resourceGroups\":[{\"flavors\":[{\"name\":\"f\",\"resources\":"
         "[{\"name\":\"" GPU "\",\"nominalQuota\":4,\"lendingLimit\":-1}]}]}]}",
         -EINVAL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[512];
        snprintf(buf, sizeof(buf),
                 "{\"metadata\":{\"name\":\"q\"},\"spec\":%s}", cases[i].spec);
        cJSON *o = parse(buf);
        void *p = NULL;
        int rc = gf_obs_cq_project(NULL, o, &p);
        if (rc != cases[i].rc || p != NULL)
            fail_msg("case %zu: rc %d", i, rc);
        cJSON_Delete(o);
    }
    /* A quota too large to count saturates rather than refusing the
     * queue (memory in exbibytes is legal). */
    cJSON *o = parse("{\"metadata\":{\"name\":\"q\"},\"spec\":{"
                     "\"resourceGroups\":[{\"flavors\":[{\"name\":\"f\","
                     "\"resources\":[{\"name\":\"memory\",\"nominalQuota\":"
                     "\"100Ei\"}]}]}]}}");
    void *p = NULL;
    assert_int_equal(gf_obs_cq_project(NULL, o, &p), 0);
    assert_int_equal(((struct gf_obs_cq *)p)->quotas[0].nominal,
                     INT64_MAX / 1000);
    gf_obs_cq_free(p);
    cJSON_Delete(o);
    /* More cells than Kueue allows. */
    cJSON *cq = parse("{\"metadata\":{\"name\":\"q\"},\"spec\":{"
                      "\"resourceGroups\":[{\"flavors\":[]}]}}");
    cJSON *fls = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetArrayItem(gf_json_path(cq, "spec.resourceGroups"), 0),
        "flavors");
    for (int i = 0; i <= GF_OBS_MAX_QUOTAS; i++)
        cJSON_AddItemToArray(
            fls, parse("{\"name\":\"f\",\"resources\":[{\"name\":\"r\","
                       "\"nominalQuota\":1}]}"));
    p = NULL;
    assert_int_equal(gf_obs_cq_project(NULL, cq, &p), GF_E2BIG);
    assert_null(p);
    cJSON_Delete(cq);
}

static void test_local_queues_and_namespaces(void **state)
{
    (void)state;
    cJSON *lqs = load(TESTDATA "localqueues-east.json");
    void *p = NULL;
    assert_int_equal(gf_obs_lq_project(NULL, find(lqs, "team-a"), &p), 0);
    struct gf_obs_lq *lq = p;
    assert_string_equal(lq->ns, "ml");
    assert_string_equal(lq->name, "team-a");
    assert_string_equal(lq->cluster_queue, "team-a-cq");
    gf_obs_lq_free(lq);
    cJSON_Delete(lqs);

    cJSON *nss = load(TESTDATA "namespaces-east.json");
    assert_int_equal(gf_obs_ns_project(NULL, find(nss, "ml"), &p), 0);
    assert_true(((struct gf_obs_ns *)p)->accept_overflow);
    gf_obs_ns_free(p);
    assert_int_equal(gf_obs_ns_project(NULL, find(nss, "research"), &p), 0);
    assert_false(((struct gf_obs_ns *)p)->accept_overflow);
    assert_string_equal(((struct gf_obs_ns *)p)->name, "research");
    gf_obs_ns_free(p);
    cJSON_Delete(nss);

    /* Only "true" opts in. */
    cJSON *o = parse("{\"metadata\":{\"name\":\"x\",\"labels\":{"
                     "\"gpufed.io/accept-overflow\":\"yes\"}}}");
    assert_int_equal(gf_obs_ns_project(NULL, o, &p), 0);
    assert_false(((struct gf_obs_ns *)p)->accept_overflow);
    gf_obs_ns_free(p);
    cJSON_Delete(o);
    o = parse("{\"metadata\":{\"name\":\"q\"},\"spec\":{\"clusterQueue\":1}}");
    p = NULL;
    assert_int_equal(gf_obs_lq_project(NULL, o, &p), -EINVAL);
    assert_null(p);
    cJSON_Delete(o);
}

/* A ClusterQueue as Kueue-lite serves it: spec quota of flavor gpu, and
 * a status of generation seen with that usage. */
static struct gf_obs_cq *cq_with_status(const char *name, const char *cohort,
                                        int nominal, int generation, int seen,
                                        const char *usage)
{
    char buf[1024];
    snprintf(buf, sizeof(buf),
             "{\"metadata\":{\"name\":\"%s\",\"generation\":%d},"
             "\"spec\":{\"cohortName\":\"%s\",\"resourceGroups\":[{"
             "\"coveredResources\":[\"" GPU "\"],\"flavors\":[{\"name\":"
             "\"gpu\",\"resources\":[{\"name\":\"" GPU "\","
             "\"nominalQuota\":%d}]}]}]},\"status\":{\"conditions\":[{"
             "\"type\":\"Active\",\"status\":\"True\",\"reason\":"
             "\"Ready\",\"observedGeneration\":%d}],\"flavorsUsage\":[{"
             "\"name\":\"gpu\",\"resources\":[{\"name\":\"" GPU "\","
             "\"total\":%s,\"borrowed\":\"0\"}]}]}}",
             name, generation, cohort, nominal, seen, usage);
    cJSON *o = parse(buf);
    void *p = NULL;
    assert_int_equal(gf_obs_cq_project(NULL, o, &p), 0);
    cJSON_Delete(o);
    return p;
}

static struct gf_obs_cohort cohort_of(struct gf_obs_cq *const *q, size_t n)
{
    struct gf_obs_cohort s = {
        .cohort = "west", .flavor = "gpu", .resource = GPU};
    for (size_t i = 0; i < n; i++)
        gf_obs_cohort_add(&s, q[i]);
    return s;
}

/* The loan release's cohort test (chaos S2): Kueue's ClusterQueue
 * status counts every Workload on the cohort's quota, gpufed's copies in
 * its overflow queue and W admitted on the grant included, and says
 * whether it was written after the grant was lowered. */
static void test_cohort_usage_from_cluster_queue_status(void **state)
{
    (void)state;
    struct gf_obs_cq *q[4];
    /* West's queue: 7 GPUs of its own and W's 4, on 16. */
    q[0] = cq_with_status("team-a", "west", 16, 1, 1, "\"11\"");
    /* gpufed's overflow queue: 9 GPUs of redirected copies. */
    q[1] = cq_with_status("gpufed-team-a", "west", 0, 1, 1, "\"9\"");
    /* The grant, lowered from 4 to 0 (generation 2) and seen so. */
    q[2] = cq_with_status("gpufed-loan-team-a", "west", 0, 2, 2, "\"0\"");
    /* Another cohort's queue counts for nothing here. */
    q[3] = cq_with_status("other", "east", 40, 1, 1, "\"2\"");
    assert_true(q[0]->status_current);
    assert_int_equal(q[0]->usage[0], 11);
    assert_int_equal(q[1]->usage[0], 9);
    struct gf_obs_cohort s = cohort_of(q, 4);
    assert_int_equal(s.nominal, 16);
    assert_int_equal(s.usage, 20);
    assert_false(s.stale);
    gf_obs_cq_free(q[2]);

    /* The grant's status is of generation 1 (4 GPUs): not written since
     * the lowering, so the cohort's figures are stale. */
    q[2] = cq_with_status("gpufed-loan-team-a", "west", 0, 2, 1, "\"0\"");
    assert_false(q[2]->status_current);
    assert_true(cohort_of(q, 4).stale);
    gf_obs_cq_free(q[2]);

    /* A fraction in use is not free: 500m counts as 1. An unreadable
     * usage, or none written yet, is unknown, never zero. */
    q[2] = cq_with_status("x", "west", 0, 1, 1, "\"500m\"");
    assert_int_equal(q[2]->usage[0], 1);
    gf_obs_cq_free(q[2]);
    q[2] = cq_with_status("x", "west", 0, 1, 1, "\"lots\"");
    assert_false(q[2]->status_current);
    assert_int_equal(q[2]->usage[0], 0);
    gf_obs_cq_free(q[2]);
    cJSON *o = parse("{\"metadata\":{\"name\":\"x\",\"generation\":1},"
                     "\"spec\":{\"cohortName\":\"west\"}}");
    void *p = NULL;
    assert_int_equal(gf_obs_cq_project(NULL, o, &p), 0);
    q[2] = p;
    assert_false(q[2]->status_current);
    assert_true(cohort_of(q, 3).stale);
    gf_obs_cq_free(q[2]);
    cJSON_Delete(o);
    gf_obs_cq_free(q[0]);
    gf_obs_cq_free(q[1]);
    gf_obs_cq_free(q[3]);
}

/* A loan's objects: the grant (gpufed's, named gpufed-loan-*, with the
 * leases it counts) and the notes a loan writes on its origin. */
static void test_loan_grant_and_origin_notes(void **state)
{
    (void)state;
    void *p = NULL;
    cJSON *o = parse(
        "{\"metadata\":{\"name\":\"gpufed-loan-team-a\",\"labels\":{"
        "\"app.kubernetes.io/managed-by\":\"gpufed\"},\"annotations\":{"
        "\"gpufed.io/loans\":\"l-1,l-2\"}},\"spec\":{\"cohortName\":\"c\"}}");
    assert_int_equal(gf_obs_cq_project(NULL, o, &p), 0);
    struct gf_obs_cq *g = p;
    assert_true(g->loan_grant);
    assert_string_equal(g->loans, "l-1,l-2");
    gf_obs_cq_free(g);
    cJSON_Delete(o);
    /* Not ours, whatever its name: not a grant. */
    o = parse("{\"metadata\":{\"name\":\"gpufed-loan-team-a\"},"
              "\"spec\":{}}");
    assert_int_equal(gf_obs_cq_project(NULL, o, &p), 0);
    assert_false(((struct gf_obs_cq *)p)->loan_grant);
    assert_null(((struct gf_obs_cq *)p)->loans);
    gf_obs_cq_free(p);
    cJSON_Delete(o);

    o = parse("{\"metadata\":{\"name\":\"w\",\"namespace\":\"ml\","
              "\"annotations\":{\"gpufed.io/loan-revoked-at\":"
              "\"2026-01-01T00:00:00Z\",\"gpufed.io/reclaim-deadline\":"
              "\"2026-01-01T00:01:00Z\"}},\"spec\":{\"active\":false}}");
    assert_int_equal(gf_obs_workload_project(GPU, o, &p), 0);
    struct gf_obs_workload *w = p;
    assert_true(w->loan_revoked);
    int64_t want = 0;
    assert_int_equal(gf_time_parse_rfc3339("2026-01-01T00:01:00Z", &want), 0);
    assert_int_equal(w->reclaim_deadline_ms, want);
    gf_obs_workload_free(w);
    cJSON_Delete(o);
    o = parse("{\"metadata\":{\"name\":\"w\",\"namespace\":\"ml\","
              "\"annotations\":{\"gpufed.io/reclaim-deadline\":\"soon\"}},"
              "\"spec\":{}}");
    assert_int_equal(gf_obs_workload_project(GPU, o, &p), 0);
    w = p;
    assert_false(w->loan_revoked);
    assert_int_equal(w->reclaim_deadline_ms, 0);
    gf_obs_workload_free(w);
    cJSON_Delete(o);
}

static struct gf_obs_job *job_of(const cJSON *obj)
{
    void *p = NULL;
    assert_int_equal(gf_obs_job_project(NULL, obj, &p), 0);
    return p;
}

static void test_job_as_the_real_server_stores_it(void **state)
{
    (void)state;
    cJSON *o = load(TESTDATA "origin-job.json");
    struct gf_obs_job *j = job_of(o);
    assert_string_equal(j->ns, "ml");
    assert_string_equal(j->name, "train-resnet");
    assert_string_equal(j->uid, "80b3949a-30d2-4f24-b275-876b244f2290");
    assert_string_equal(j->queue_name, "ml-gpu");
    assert_true(j->suspended);
    assert_false(j->complete || j->failed || j->deleting);
    assert_null(j->lease);
    assert_null(j->origin_uid);
    assert_int_equal(j->epoch, 0);
    assert_int_equal(j->finished_ms, 0);
    gf_obs_job_free(j);

    /*
     * The same Job as a copy that failed on the real server: no
     * completionTime there on failure, so the Failed condition's time;
     * being deleted; our labels and outcome.
     */
    cJSON *md = cJSON_GetObjectItemCaseSensitive(o, "metadata");
    cJSON *labels = cJSON_GetObjectItemCaseSensitive(md, "labels");
    cJSON_AddStringToObject(labels, "gpufed.io/lease", "east-train-resnet-3");
    cJSON_AddStringToObject(labels, "gpufed.io/origin-uid", "u-1");
    cJSON_AddStringToObject(labels, "gpufed.io/origin-cluster", "east");
    cJSON_AddStringToObject(labels, "gpufed.io/epoch", "3");
    cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(md, "annotations"),
                            "gpufed.io/outcome", "Failed");
    cJSON_AddStringToObject(md, "deletionTimestamp", "2026-12-06T03:10:00Z");
    cJSON_ReplaceItemInObjectCaseSensitive(
        o, "status",
        parse("{\"conditions\":[{\"type\":\"FailureTarget\",\"status\":"
              "\"True\",\"lastTransitionTime\":\"2026-12-06T03:05:00Z\"},"
              "{\"type\":\"Failed\",\"status\":\"True\",\"reason\":"
              "\"BackoffLimitExceeded\",\"lastTransitionTime\":"
              "\"2026-12-06T03:05:01Z\"}],\"failed\":7}"));
    j = job_of(o);
    assert_string_equal(j->lease, "east-train-resnet-3");
    assert_string_equal(j->origin_uid, "u-1");
    assert_string_equal(j->origin_cluster, "east");
    assert_int_equal(j->epoch, 3);
    assert_string_equal(j->outcome, "Failed");
    assert_true(j->failed && j->deleting);
    assert_false(j->complete);
    assert_int_equal(j->finished_ms, ts("2026-12-06T03:05:01Z"));
    gf_obs_job_free(j);

    /* A hand-made epoch label never stops the Job from being seen. */
    static const char *const bad[] = {"x", "-2", "", "3.0",
                                      "99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        gf_json_set_str(labels, "gpufed.io/epoch", bad[i]);
        j = job_of(o);
        assert_int_equal(j->epoch, 0);
        gf_obs_job_free(j);
    }
    cJSON_Delete(o);
}

static void test_jobs_that_ended_on_kubesim(void **state)
{
    (void)state;
    cJSON *list = load(TESTDATA "jobs-east.json");
    struct gf_obs_job *j = job_of(find(list, "train-done"));
    assert_true(j->complete);
    assert_false(j->failed || j->suspended);
    assert_int_equal(j->finished_ms, ts("2026-12-06T03:06:36Z"));
    assert_string_equal(j->queue_name, "team-a");
    gf_obs_job_free(j);
    j = job_of(find(list, "train-fail"));
    assert_true(j->failed);
    assert_false(j->complete);
    assert_int_equal(j->finished_ms, ts("2026-12-06T03:06:42Z"));
    gf_obs_job_free(j);
    j = job_of(find(list, "train-pending"));
    assert_true(j->suspended);
    assert_int_equal(j->finished_ms, 0);
    gf_obs_job_free(j);
    j = job_of(find(list, "train-admitted"));
    assert_false(j->suspended || j->complete || j->failed);
    gf_obs_job_free(j);
    cJSON_Delete(list);
}

static void sample_lease(struct gf_lease *l)
{
    memset(l, 0, sizeof(*l));
    l->name = "east-train-resnet-2";
    l->group = "ml";
    l->mode = GF_LEASE_REDIRECT;
    l->phase = GF_LEASE_ACTIVE;
    l->epoch = 2;
    l->origin_member = "east";
    l->origin_namespace = "ml";
    l->origin_name = "job-train-resnet-1a2b3";
    l->origin_uid = "80b3949a-30d2-4f24-b275-876b244f2290";
    l->origin_job = "train-resnet";
    l->origin_cq = "team-a-cq";
    l->lender_member = "west";
    l->lender_cq = "team-b-cq";
    l->lender_flavor = "gpu";
    l->gpus = 4;
    l->priority = -5;
    l->created_ms = 1796526000000; /* whole seconds: Kubernetes' precision */
    l->started_ms = 1796526003000;
    l->expires_ms = 1796526303000;
    /* A reclaim's instants keep their milliseconds. */
    l->reclaim_started_ms = 1796526070125;
    l->reclaim_deadline_ms = 1796526100250;
    l->reason = "CopyAdmitted";
}

static void assert_str_eq_or_null(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        assert_ptr_equal(a, b);
    else
        assert_string_equal(a, b);
}

static void assert_lease_equal(const struct gf_lease *a,
                               const struct gf_lease *b)
{
    assert_string_equal(a->name, b->name);
    assert_string_equal(a->group, b->group);
    assert_int_equal(a->mode, b->mode);
    assert_int_equal(a->phase, b->phase);
    assert_int_equal(a->epoch, b->epoch);
    assert_string_equal(a->origin_member, b->origin_member);
    assert_string_equal(a->origin_namespace, b->origin_namespace);
    assert_string_equal(a->origin_name, b->origin_name);
    assert_string_equal(a->origin_uid, b->origin_uid);
    assert_str_eq_or_null(a->origin_job, b->origin_job);
    assert_str_eq_or_null(a->origin_cq, b->origin_cq);
    assert_string_equal(a->lender_member, b->lender_member);
    assert_string_equal(a->lender_cq, b->lender_cq);
    assert_string_equal(a->lender_flavor, b->lender_flavor);
    assert_int_equal(a->gpus, b->gpus);
    assert_int_equal(a->priority, b->priority);
    assert_int_equal(a->created_ms, b->created_ms);
    assert_int_equal(a->started_ms, b->started_ms);
    assert_int_equal(a->expires_ms, b->expires_ms);
    assert_int_equal(a->reclaim_deadline_ms, b->reclaim_deadline_ms);
    assert_int_equal(a->reclaim_started_ms, b->reclaim_started_ms);
    assert_int_equal(a->ended_ms, b->ended_ms);
    assert_str_eq_or_null(a->reason, b->reason);
}

/* A reclaimed copy: the Job's checkpoint hint, the Workload's stop, and
 * Kueue's reason when it preempted the copy first. */
static void test_reclaim_marks_and_kueue_preemption(void **state)
{
    (void)state;
    cJSON *o =
        parse("{\"apiVersion\":\"batch/v1\",\"kind\":\"Job\",\"metadata\":{"
              "\"name\":\"train-resnet-5f2c-1\",\"namespace\":\"ml\","
              "\"uid\":\"u1\",\"annotations\":{\"gpufed.io/reclaim-deadline\":"
              "\"2026-12-06T03:05:00.250Z\"}},\"spec\":{}}");
    struct gf_obs_job *j = job_of(o);
    assert_int_equal(j->reclaim_deadline_ms, ts("2026-12-06T03:05:00Z") + 250);
    gf_obs_job_free(j);
    cJSON_Delete(o);
    /* Malformed: no deadline (the hub marks it again). */
    o = parse("{\"metadata\":{\"name\":\"a\",\"namespace\":\"ml\","
              "\"annotations\":{\"gpufed.io/reclaim-deadline\":\"soon\"}},"
              "\"spec\":{}}");
    j = job_of(o);
    assert_int_equal(j->reclaim_deadline_ms, 0);
    gf_obs_job_free(j);
    cJSON_Delete(o);

#define RECLAIM_WL                                                             \
    "{\"metadata\":{\"name\":\"job-a\",\"namespace\":\"ml\","                  \
    "\"annotations\":{%s}},\"spec\":{\"active\":%s,\"podSets\":[]},"           \
    "\"status\":{\"conditions\":[%s]}}"
    const char *preempted =
        "{\"type\":\"Evicted\",\"status\":\"True\",\"reason\":"
        "\"Preempted\",\"lastTransitionTime\":\"2026-12-06T03:05:00Z\"},"
        "{\"type\":\"Preempted\",\"status\":\"True\",\"reason\":"
        "\"InCohortReclaimWhileBorrowing\","
        "\"lastTransitionTime\":\"2026-12-06T03:05:00Z\"}";
    char buf[1024];
    snprintf(buf, sizeof(buf), RECLAIM_WL, "", "true", preempted);
    o = parse(buf);
    void *p = NULL;
    assert_int_equal(gf_obs_workload_project((void *)GPU, o, &p), 0);
    struct gf_obs_workload *w = p;
    assert_int_equal(w->preempted,
                     GF_OBS_PREEMPT_IN_COHORT_RECLAIM_WHILE_BORROWING);
    assert_string_equal(gf_obs_preempt_name(w->preempted),
                        "InCohortReclaimWhileBorrowing");
    assert_false(w->reclaimed);
    gf_obs_workload_free(w);
    cJSON_Delete(o);
    snprintf(buf, sizeof(buf), RECLAIM_WL,
             "\"gpufed.io/reclaimed-at\":\"2026-12-06T03:05:00.251Z\"", "false",
             "");
    o = parse(buf);
    assert_int_equal(gf_obs_workload_project((void *)GPU, o, &p), 0);
    w = p;
    assert_true(w->reclaimed);
    assert_false(w->active);
    assert_int_equal(w->preempted, GF_OBS_PREEMPT_NONE);
    gf_obs_workload_free(w);
    cJSON_Delete(o);
#undef RECLAIM_WL
}

static void test_lease_round_trip(void **state)
{
    (void)state;
    struct gf_lease l, back;
    char why[256];
    sample_lease(&l);
    cJSON *o = gf_obs_lease_to_json(&l, "gpufed-system", GPU);
    assert_string_equal(gf_json_str(o, "metadata.namespace"), "gpufed-system");
    assert_string_equal(gf_json_str(o, "spec.mode"), "Redirect");
    assert_string_equal(
        cJSON_GetObjectItemCaseSensitive(gf_json_path(o, "spec"), "resource")
            ->valuestring,
        GPU);
    assert_int_equal(gf_obs_lease_from_json(o, &back, why, sizeof(why)), 0);
    assert_lease_equal(&l, &back);
    gf_lease_clear(&back);
    cJSON_Delete(o);

    /* Loan, no optional fields, every phase. */
    l.mode = GF_LEASE_LOAN;
    l.origin_job = NULL;
    l.origin_cq = NULL;
    l.reason = NULL;
    l.started_ms = l.expires_ms = l.reclaim_deadline_ms = 0;
    l.reclaim_started_ms = 0;
    for (int p = 0; p < GF_LEASE_PHASE_COUNT; p++) {
        l.phase = (enum gf_lease_phase)p;
        o = gf_obs_lease_to_json(&l, "gpufed-system", GPU);
        assert_int_equal(gf_obs_lease_from_json(o, &back, why, sizeof(why)), 0);
        assert_lease_equal(&l, &back);
        gf_lease_clear(&back);
        cJSON_Delete(o);
    }
}

/* The object the writer creates is exactly the committed one, which
 * e2e/test_quotalease_crd.sh creates on kubesim and on kube-apiserver. */
static void test_lease_object_is_the_one_the_crd_accepts(void **state)
{
    (void)state;
    struct gf_lease l;
    sample_lease(&l);
    l.phase = GF_LEASE_PENDING;
    l.created_ms = l.started_ms = l.reclaim_deadline_ms = 0;
    l.reclaim_started_ms = 0;
    l.reason = NULL;
    cJSON *o = gf_obs_lease_to_json(&l, "gpufed-system", GPU);
    cJSON *want = load(TESTDATA "quotalease-built.json");
    if (!gf_json_equal(o, want)) {
        char *s = cJSON_Print(o);
        fail_msg("gf_obs_lease_to_json built:\n%s", s);
    }
    cJSON_Delete(want);
    cJSON_Delete(o);
}

static void test_status_patch(void **state)
{
    (void)state;
    int64_t now = ts("2026-12-06T03:00:05Z");
    char *s = gf_obs_lease_status_patch(NULL, "Pending", NULL, NULL, 1, now, 0,
                                        ts("2026-12-06T03:05:00Z"), 0, 0);
    cJSON *p = parse(s);
    cJSON_free(s);
    cJSON *want =
        parse("{\"status\":{\"phase\":\"Pending\",\"reason\":null,"
              "\"message\":null,\"expiresAt\":\"2026-12-06T03:05:00Z\","
              "\"transitions\":[{\"phase\":\"Pending\",\"epoch\":1,"
              "\"time\":\"2026-12-06T03:00:05Z\"}]}}");
    assert_true(gf_json_equal(p, want));
    cJSON_Delete(want);

    /* The next one keeps the history: a merge patch replaces arrays. */
    cJSON *st = cJSON_GetObjectItemCaseSensitive(p, "status");
    s = gf_obs_lease_status_patch(st, "Active", "CopyAdmitted",
                                  "admitted in west", 1, now + 2000, now + 2000,
                                  0, 0, 0);
    cJSON *p2 = parse(s);
    cJSON_free(s);
    /* The committed patch e2e/test_quotalease_crd.sh sends to both
     * servers through the status subresource. */
    want = load(TESTDATA "quotalease-status-patch.json");
    assert_true(gf_json_equal(p2, want));
    cJSON_Delete(want);
    cJSON_Delete(p2);
    cJSON_Delete(p);

    /* Turning Reclaiming: when, and the deadline, to the millisecond. */
    s = gf_obs_lease_status_patch(NULL, "Reclaiming", NULL,
                                  "the lender reclaims its quota", 1, now, 0, 0,
                                  now + 125, now + 30250);
    p = parse(s);
    cJSON_free(s);
    assert_string_equal(gf_json_str(p, "status.reclaimStarted"),
                        "2026-12-06T03:00:05.125Z");
    /* e2e/test_quotalease_crd.sh sends it to both servers. */
    want = load(TESTDATA "quotalease-reclaim-patch.json");
    assert_true(gf_json_equal(p, want));
    cJSON_Delete(want);
    cJSON_Delete(p);

    /* The CRD keeps 32: the oldest goes. */
    cJSON *cur = parse("{\"transitions\":[]}");
    cJSON *tr = cJSON_GetObjectItemCaseSensitive(cur, "transitions");
    for (int i = 0; i < GF_OBS_MAX_TRANSITIONS; i++) {
        cJSON *t = cJSON_CreateObject();
        cJSON_AddStringToObject(t, "phase", "Suspect");
        cJSON_AddNumberToObject(t, "epoch", i);
        cJSON_AddStringToObject(t, "time", "2026-12-06T03:00:00Z");
        cJSON_AddItemToArray(tr, t);
    }
    s = gf_obs_lease_status_patch(cur, "Released", "Completed", NULL, 99, now,
                                  0, 0, 0, 0);
    p = parse(s);
    cJSON_free(s);
    const cJSON *got = gf_json_path(p, "status.transitions");
    assert_int_equal(cJSON_GetArraySize(got), GF_OBS_MAX_TRANSITIONS);
    int64_t e = -1;
    assert_int_equal(gf_json_int(cJSON_GetArrayItem(got, 0), "epoch", &e), 0);
    assert_int_equal(e, 1);
    assert_int_equal(gf_json_int(cJSON_GetArrayItem(got, 31), "epoch", &e), 0);
    assert_int_equal(e, 99);
    assert_null(gf_json_path(p, "status.startedAt"));
    cJSON_Delete(p);
    cJSON_Delete(cur);
}

/* Each case: a change to a valid QuotaLease, and the field named in why. */
static void test_malformed_leases_are_refused_with_a_reason(void **state)
{
    (void)state;
    static const struct {
        const char *path;  /* "a.b": parent path; key after the last dot */
        const char *value; /* JSON, or NULL to delete */
        const char *why;
    } cases[] = {
        {"spec.gpus", NULL, "spec.gpus is required"},
        {"spec.gpus", "-4", "spec.gpus is out of range"},
        {"spec.gpus", "0", "spec.gpus is out of range"},
        {"spec.gpus", "\"4\"", "spec.gpus must be an integer"},
        {"spec.gpus", "2.5", "spec.gpus must be an integer"},
        {"spec.epoch", "0", "spec.epoch is out of range"},
        {"spec.group", NULL, "spec.group is required"},
        {"spec.group", "\"\"", "spec.group is empty"},
        {"spec.mode", "\"redirect\"", "spec.mode must be Redirect or Loan"},
        {"spec.origin", NULL, "spec.origin is required"},
        {"spec.origin", "[]", "spec.origin must be an object"},
        {"spec.origin.uid", NULL, "spec.origin.uid is required"},
        {"spec.origin.member", "7", "spec.origin.member must be a string"},
        {"spec.origin.priority", "3000000000",
         "spec.origin.priority is out of range"},
        {"spec.lender.flavor", NULL, "spec.lender.flavor is required"},
        {"spec.resource", NULL, "spec.resource is required"},
        {"spec", NULL, "spec is required"},
        {"metadata.name", NULL, "metadata.name is required"},
        {"status.phase", "\"Bogus\"", "status.phase is not a QuotaLease phase"},
        {"status.expiresAt", "\"soon\"",
         "status.expiresAt is not an RFC 3339 time"},
        {"status.startedAt", "\"0506-12-06T03:00:07Z\"",
         "status.startedAt is before 1970"},
        {"status", "\"Active\"", "status must be an object"},
        {"kind", "\"Lease\"", "kind is not QuotaLease"},
    };
    struct gf_lease l;
    sample_lease(&l);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *o = gf_obs_lease_to_json(&l, "gpufed-system", GPU);
        char parent[64];
        const char *dot = strrchr(cases[i].path, '.');
        cJSON *at = o;
        const char *key = cases[i].path;
        if (dot != NULL) {
            snprintf(parent, sizeof(parent), "%.*s", (int)(dot - cases[i].path),
                     cases[i].path);
            /* The table's paths are the CRD's own field names, never
             * data: the unchecked form of gf_json_path is right here. */
            at = (cJSON *)gf__json_path(o, parent);
            key = dot + 1;
        }
        assert_non_null(at);
        cJSON_DeleteItemFromObjectCaseSensitive(at, key);
        if (cases[i].value != NULL)
            cJSON_AddItemToObject(at, key, parse(cases[i].value));
        struct gf_lease out;
        char why[128];
        int rc = gf_obs_lease_from_json(o, &out, why, sizeof(why));
        if (rc != -EINVAL || strcmp(why, cases[i].why) != 0)
            fail_msg("%s: rc %d why \"%s\"", cases[i].path, rc, why);
        assert_null(out.name);
        assert_null(out.group);
        cJSON_Delete(o);
    }
    /* Not even an object; and a short why buffer is still a string. */
    cJSON *o = parse("[1]");
    struct gf_lease out;
    char why[8];
    assert_int_equal(gf_obs_lease_from_json(o, &out, why, sizeof(why)),
                     -EINVAL);
    assert_int_equal(strlen(why), sizeof(why) - 1);
    cJSON_Delete(o);
}

/* The lease as kube-apiserver v1.28 serves it after the create and the
 * status patch above (testdata/quotalease-realk8s.json). */
static void test_lease_as_the_real_server_serves_it(void **state)
{
    (void)state;
    cJSON *o = load(TESTDATA "quotalease-realk8s.json");
    struct gf_lease l, want;
    char why[128];
    assert_int_equal(gf_obs_lease_from_json(o, &l, why, sizeof(why)), 0);
    sample_lease(&want);
    /* The server dropped the status sent with the create; the patch set
     * the phase, reason and startedAt. */
    want.created_ms = ts("2026-12-06T03:12:50Z");
    want.started_ms = ts("2026-12-06T03:00:07Z");
    want.expires_ms = 0;
    want.reclaim_deadline_ms = want.reclaim_started_ms = 0;
    assert_lease_equal(&l, &want);
    gf_lease_clear(&l);
    cJSON_Delete(o);
}

/* What decide needs of a reclaim, read back from the status: when it
 * started (status.reclaimStarted), and for a final lease when it ended
 * (its last transition into the final phase) and why (status.reason). */
static void test_lease_reclaim_and_end_times(void **state)
{
    (void)state;
    struct gf_lease l, out;
    char why[128];
    sample_lease(&l);
    l.phase = GF_LEASE_RELEASED;
    l.reason = "Reclaimed";
    cJSON *o = gf_obs_lease_to_json(&l, "gpufed-system", GPU);
    cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "status");
    /* reclaim instants keep their milliseconds */
    assert_string_equal(gf_json_str(o, "status.reclaimStarted"),
                        "2026-12-06T03:01:10.125Z");
    cJSON_ReplaceItemInObjectCaseSensitive(
        st, "reclaimStarted", cJSON_CreateString("2026-12-06T02:59:40.5Z"));
    cJSON_AddItemToObject(
        st, "transitions",
        parse("[{\"phase\":\"Active\",\"time\":\"2026-12-06T03:00:07Z\"},"
              "{\"phase\":\"Released\",\"reason\":\"Fenced\","
              "\"time\":\"2026-12-06T03:01:00Z\"},"
              "{\"phase\":\"Reclaiming\",\"time\":\"2026-12-06T03:02:00Z\"},"
              "{\"phase\":\"Released\",\"reason\":\"Reclaimed\","
              "\"time\":\"2026-12-06T03:04:30.25Z\"}]"));
    assert_int_equal(gf_obs_lease_from_json(o, &out, why, sizeof(why)), 0);
    assert_int_equal(out.reclaim_started_ms, ts("2026-12-06T02:59:40Z") + 500);
    assert_int_equal(out.ended_ms, ts("2026-12-06T03:04:30Z") + 250);
    assert_string_equal(out.reason, "Reclaimed");
    gf_lease_clear(&out);
    /* a live lease has not ended, whatever its history says */
    cJSON_ReplaceItemInObjectCaseSensitive(st, "phase",
                                           cJSON_CreateString("Active"));
    assert_int_equal(gf_obs_lease_from_json(o, &out, why, sizeof(why)), 0);
    assert_int_equal(out.ended_ms, 0);
    gf_lease_clear(&out);
    /* a malformed time is refused with its field */
    cJSON_ReplaceItemInObjectCaseSensitive(st, "phase",
                                           cJSON_CreateString("Released"));
    cJSON_ReplaceItemInObjectCaseSensitive(
        st, "transitions",
        parse("[{\"phase\":\"Released\",\"time\":\"later\"}]"));
    assert_int_equal(gf_obs_lease_from_json(o, &out, why, sizeof(why)),
                     -EINVAL);
    assert_string_equal(why,
                        "status.transitions[].time is not an RFC 3339 time");
    cJSON_ReplaceItemInObjectCaseSensitive(st, "reclaimStarted",
                                           cJSON_CreateString("soon"));
    cJSON_DeleteItemFromObjectCaseSensitive(st, "transitions");
    assert_int_equal(gf_obs_lease_from_json(o, &out, why, sizeof(why)),
                     -EINVAL);
    assert_string_equal(why, "status.reclaimStarted is not an RFC 3339 time");
    cJSON_Delete(o);
}

/* The store projection: a lease just created (no status) is Pending. */
static void test_lease_projection(void **state)
{
    (void)state;
    cJSON *o = load(TESTDATA "quotalease-built.json");
    cJSON_DeleteItemFromObjectCaseSensitive(o, "status");
    void *p = NULL;
    assert_int_equal(gf_obs_lease_project(NULL, o, &p), 0);
    struct gf_lease *l = p;
    assert_int_equal(l->phase, GF_LEASE_PENDING);
    assert_string_equal(l->origin_job, "train-resnet");
    assert_int_equal(l->expires_ms, 0);
    gf_obs_lease_free(l);
    cJSON_DeleteItemFromObjectCaseSensitive(o, "spec");
    p = NULL;
    assert_int_equal(gf_obs_lease_project(NULL, o, &p), -EINVAL);
    assert_null(p);
    cJSON_Delete(o);
}

int main(void)
{
    gf_alloc_global_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_workloads_as_kueue_lite_writes_them, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_requeued_workload_waits_from_its_requeue, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_workload_from_the_kueue_docs_without_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pod_requests_as_kueue_counts_them,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_workload_gpus_round_up, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_malformed_workloads_are_refused,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_owner_kinds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ledger_states, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_cluster_queues_from_the_upstream_samples, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_malformed_cluster_queues_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_local_queues_and_namespaces, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_job_as_the_real_server_stores_it,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_jobs_that_ended_on_kubesim, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reclaim_marks_and_kueue_preemption,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_reclaim_and_end_times, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_lease_object_is_the_one_the_crd_accepts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_patch, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_malformed_leases_are_refused_with_a_reason, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_as_the_real_server_serves_it,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_projection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loan_grant_and_origin_notes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_cohort_usage_from_cluster_queue_status, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
