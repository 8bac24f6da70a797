/*
 * Tests for kubesim/store's lifecycle (store.c): a write and its watch
 * event end to end, unregistering a type (its watches close, also from
 * inside an observer), and the memory a stored Workload costs.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/json.h"
#include "e2e/kubesim/select.h"
#include "e2e/kubesim/store.h"
#include "e2e/kubesim/test/store_testkit.h"
#include "kubeclient/global.h"

static void test_crud_and_watch(void **state)
{
    (void)state;
    struct ks_sttk_fx f;
    ks_sttk_init(&f, 0);
    ks_sttk_mk_ns(&f, "team-a");
    uint64_t rv0 = gf_ks_store_rv(f.st);

    struct ks_sttk_rec r = {0};
    struct gf_ks_watch *w = NULL;
    struct gf_ks_watch_opts wo = {.ns = "team-a"};
    assert_int_equal(
        gf_ks_watch_start(f.st, f.cm, &wo, ks_sttk_rec_cb, &r, &w, NULL), 0);
    assert_int_equal(r.n, 0);

    struct gf_ks_obj *o =
        ks_sttk_mk(&f, f.cm, "team-a",
                   "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\","
                   "\"metadata\":{\"name\":\"c1\"},\"data\":{\"k\":\"v\"}}");
    assert_int_equal(o->rv, rv0 + 1);
    assert_string_equal(o->ns, "team-a");
    assert_string_equal(o->name, "c1");
    assert_string_equal(ks_sttk_field(o, "metadata.namespace"), "team-a");
    assert_string_equal(ks_sttk_field(o, "metadata.resourceVersion"), "2");
    assert_ptr_equal(gf_ks_store_get(f.st, f.cm, "team-a", "c1"), o);
    assert_null(gf_ks_store_get(f.st, f.cm, "team-b", "c1"));

    cJSON *u =
        ks_sttk_js("{\"metadata\":{\"name\":\"c1\"},\"data\":{\"k\":\"w\"}}");
    struct gf_ks_obj *o2 = NULL;
    assert_int_equal(gf_ks_store_update(f.st, f.cm, "team-a", "c1", u,
                                        GF_KS_MAIN, &o2, NULL),
                     0);
    cJSON_Delete(u);
    assert_int_equal(o2->rv, rv0 + 2);
    assert_string_equal(ks_sttk_field(o2, "data.k"), "w");

    bool gone = false;
    struct gf_ks_obj *last = NULL;
    assert_int_equal(gf_ks_store_delete(f.st, f.cm, "team-a", "c1", NULL, &last,
                                        &gone, NULL),
                     0);
    assert_true(gone);
    assert_int_equal(last->rv, rv0 + 3);
    assert_null(gf_ks_store_get(f.st, f.cm, "team-a", "c1"));
    assert_int_equal(gf_ks_store_count(f.st, f.cm), 0);

    assert_int_equal(r.n, 3);
    assert_string_equal(r.lines[0], "ADDED team-a/c1 2");
    assert_string_equal(r.lines[1], "MODIFIED team-a/c1 3");
    assert_string_equal(r.lines[2], "DELETED team-a/c1 4");
    gf_ks_watch_stop(w);
    assert_int_equal(gf_ks_store_watches(f.st), 0);
    ks_sttk_done(&f);
}

static void test_unregister_closes_watches(void **state)
{
    (void)state;
    struct ks_sttk_fx f;
    ks_sttk_init(&f, 0);
    ks_sttk_mk_ns(&f, "a");
    ks_sttk_mk(&f, f.wl, "a", "{\"metadata\":{\"name\":\"w\"}}");
    struct ks_sttk_rec r = {0};
    struct gf_ks_watch *w = NULL;
    struct gf_ks_watch_opts wo = {0};
    assert_int_equal(
        gf_ks_watch_start(f.st, f.wl, &wo, ks_sttk_rec_cb, &r, &w, NULL), 0);
    size_t bytes = gf_ks_store_bytes(f.st);
    assert_int_equal(
        gf_ks_store_unregister(f.st, "kueue.x-k8s.io", "workloads"), 0);
    assert_int_equal(r.n, 2);
    assert_int_equal(strncmp(r.lines[1], "DELETED a/w ", 12), 0);
    assert_int_equal(r.closed, 1);
    assert_int_equal(r.close_err, GF_ENOTFOUND);
    assert_null(gf_ks_store_type(f.st, "kueue.x-k8s.io", "workloads"));
    assert_true(gf_ks_store_bytes(f.st) < bytes);
    assert_int_equal(
        gf_ks_store_unregister(f.st, "kueue.x-k8s.io", "workloads"),
        GF_ENOTFOUND);
    ks_sttk_done(&f);
}

/*
 * A Workload as Kueue writes it for a GPU Job: owner reference, labels,
 * one pod set with a full container, admission and conditions. About
 * 2 KB of compact JSON.
 */
static void workload_json(char *out, size_t cap, int i)
{
    snprintf(
        out, cap,
        "{\"apiVersion\":\"kueue.x-k8s.io/v1beta2\",\"kind\":\"Workload\","
        "\"metadata\":{\"name\":\"job-train-%05d-1a2b3\",\"labels\":{"
        "\"kueue.x-k8s.io/job-uid\":\"7f3c2a10-5b8e-4d21-9c44-%012d\","
        "\"team\":\"ml-research\"},\"annotations\":{"
        "\"gpufed.io/placement\":\"east\"},\"ownerReferences\":[{"
        "\"apiVersion\":\"batch/v1\",\"kind\":\"Job\",\"name\":"
        "\"train-%05d\",\"uid\":\"7f3c2a10-5b8e-4d21-9c44-%012d\","
        "\"controller\":true,\"blockOwnerDeletion\":true}],\"finalizers\":["
        "\"kueue.x-k8s.io/resource-in-use\"]},"
        "\"spec\":{\"active\":true,\"queueName\":\"team-queue\",\"priority\":"
        "100,\"priorityClassSource\":\"kueue.x-k8s.io/workloadpriorityclass\","
        "\"priorityClassName\":\"high\",\"podSets\":[{\"name\":\"main\","
        "\"count\":4,\"template\":{\"metadata\":{\"labels\":{\"app\":"
        "\"train\"}},\"spec\":{\"containers\":[{\"name\":\"trainer\","
        "\"image\":\"registry.example.com/ml/trainer:2026.11.1\",\"command\":"
        "[\"python\",\"-m\",\"train\"],\"args\":[\"--epochs=10\","
        "\"--batch-size=512\",\"--data=/data/set-a\"],\"env\":[{\"name\":"
        "\"NCCL_DEBUG\",\"value\":\"INFO\"},{\"name\":\"WORLD_SIZE\","
        "\"value\":\"4\"}],\"resources\":{\"requests\":{\"cpu\":\"8\","
        "\"memory\":\"64Gi\",\"nvidia.com/gpu\":\"2\"},\"limits\":{"
        "\"nvidia.com/gpu\":\"2\"}},\"volumeMounts\":[{\"name\":\"data\","
        "\"mountPath\":\"/data\"}]}],\"volumes\":[{\"name\":\"data\","
        "\"persistentVolumeClaim\":{\"claimName\":\"datasets\"}}],"
        "\"restartPolicy\":\"Never\",\"nodeSelector\":{"
        "\"nvidia.com/gpu.product\":\"A100\"},\"tolerations\":[{\"key\":"
        "\"nvidia.com/gpu\",\"operator\":\"Exists\",\"effect\":"
        "\"NoSchedule\"}]}}}]},"
        "\"status\":{\"admission\":{\"clusterQueue\":\"team-cq\","
        "\"podSetAssignments\":[{\"name\":\"main\",\"flavors\":{\"cpu\":"
        "\"default\",\"memory\":\"default\",\"nvidia.com/gpu\":\"a100\"},"
        "\"resourceUsage\":{\"cpu\":\"32\",\"memory\":\"256Gi\","
        "\"nvidia.com/gpu\":\"8\"},\"count\":4}]},\"conditions\":[{\"type\":"
        "\"QuotaReserved\",\"status\":\"True\",\"reason\":\"QuotaReserved\","
        "\"message\":\"Quota reserved in ClusterQueue team-cq\","
        "\"lastTransitionTime\":\"2026-11-24T10:00:00Z\","
        "\"observedGeneration\":1},{\"type\":\"Admitted\",\"status\":"
        "\"True\",\"reason\":\"Admitted\",\"message\":\"The workload is "
        "admitted\",\"lastTransitionTime\":\"2026-11-24T10:00:00Z\","
        "\"observedGeneration\":1}]}}",
        i, i, i, i);
}

/*
 * Memory per stored Workload, for the "100 clusters x 1k Workloads in one
 * process" goal: every allocation goes through the counter, so the live
 * byte delta is the true cost (blob, index entry, uid index, owner index,
 * watch-cache reference).
 */
static void test_memory_per_workload(void **state)
{
    (void)state;
    enum { N = 1000 };
    struct ks_sttk_fx f;
    int64_t empty = gf_alloc_live_bytes();
    ks_sttk_init(&f, 0);
    empty = gf_alloc_live_bytes() - empty;
    ks_sttk_mk_ns(&f, "a");
    char buf[4096];
    workload_json(buf, sizeof(buf), 0);
    /* What one parsed cJSON tree of the same object costs. */
    int64_t b0 = gf_alloc_live_bytes(), n0 = gf_alloc_live();
    cJSON *tree = cJSON_Parse(buf);
    int64_t tree_bytes = gf_alloc_live_bytes() - b0;
    int64_t tree_blocks = gf_alloc_live() - n0;
    cJSON_Delete(tree);
    int64_t before = gf_alloc_live_bytes();
    size_t json_len = 0;
    for (int i = 0; i < N; i++) {
        workload_json(buf, sizeof(buf), i);
        cJSON *j = ks_sttk_js(buf);
        struct gf_ks_obj *o = NULL;
        assert_int_equal(
            gf_ks_store_create(f.st, f.wl, "a", j, GF_KS_STATUS, &o, NULL), 0);
        json_len += o->len;
        cJSON_Delete(j);
    }
    int64_t created = gf_alloc_live_bytes() - before;
    /* One status write each: the watch cache now holds old versions. */
    for (int i = 0; i < N; i++) {
        char name[64];
        snprintf(name, sizeof(name), "job-train-%05d-1a2b3", i);
        cJSON *st = ks_sttk_js(
            "{\"reclaimablePods\":[{\"name\":\"main\",\"count\":1}]}");
        assert_int_equal(
            gf_ks_store_patch_status(f.st, f.wl, "a", name, st, NULL, NULL), 0);
        cJSON_Delete(st);
    }
    int64_t updated = gf_alloc_live_bytes() - before;
    print_message("empty store with %d types: %lld bytes\n", 6,
                  (long long)empty);
    print_message("workload: %zu bytes of compact JSON; cJSON tree %lld bytes "
                  "in %lld blocks\n",
                  json_len / N, (long long)tree_bytes, (long long)tree_blocks);
    print_message("stored: %lld bytes/object after create (store_bytes %zu), "
                  "%lld bytes/object after one update each (watch cache "
                  "holds %d old versions)\n",
                  (long long)(created / N), gf_ks_store_bytes(f.st) / N,
                  (long long)(updated / N), 1024);
    /* The blob dominates: overhead stays under half the JSON size. */
    assert_true(json_len / N > 1800);
    assert_true(created / N < (int64_t)(json_len / N) * 3 / 2);
    assert_true(tree_bytes > (int64_t)(json_len / N) * 3);
    /* A cluster's fixed cost stays small: rings grow on demand. */
    assert_true(empty < (int64_t)32 * 1024);
    ks_sttk_done(&f);
}

/* Unregisters the workloads type when a ConfigMap "crd" is deleted. */
static void crd_observer_cb(void *data, const struct gf_ks_event *ev)
{
    struct ks_sttk_fx *f = data;
    if (ev->type == GF_KS_EV_DELETED && strcmp(ev->obj->name, "crd") == 0)
        assert_int_equal(
            gf_ks_store_unregister(f->st, "kueue.x-k8s.io", "workloads"), 0);
}

static void test_unregister_from_an_observer(void **state)
{
    (void)state;
    struct ks_sttk_fx f;
    ks_sttk_init(&f, 0);
    ks_sttk_mk_ns(&f, "a");
    ks_sttk_mk(&f, f.cm, "a", "{\"metadata\":{\"name\":\"crd\"}}");
    ks_sttk_mk(&f, f.wl, "a", "{\"metadata\":{\"name\":\"w1\"}}");
    ks_sttk_mk(&f, f.wl, "a", "{\"metadata\":{\"name\":\"w2\"}}");
    struct ks_sttk_olog log = {0};
    struct ks_sttk_obs all = {.log = &log, .tag = "all"};
    struct ks_sttk_obs wl = {.log = &log, .tag = "wl"};
    gf_ks_store_observe(f.st, NULL, ks_sttk_obs_cb, &all);
    gf_ks_store_observe(f.st, f.wl, ks_sttk_obs_cb, &wl);
    gf_ks_store_observe(f.st, f.cm, crd_observer_cb, &f);
    struct ks_sttk_rec r = {0};
    struct gf_ks_watch *w = NULL;
    struct gf_ks_watch_opts wo = {0};
    assert_int_equal(
        gf_ks_watch_start(f.st, f.wl, &wo, ks_sttk_rec_cb, &r, &w, NULL), 0);
    bool gone = false;
    assert_int_equal(
        ks_sttk_del(&f, f.cm, "a", "crd", GF_KS_PROP_DEFAULT, &gone), 0);
    assert_null(gf_ks_store_type(f.st, "kueue.x-k8s.io", "workloads"));
    assert_int_equal(r.closed, 1);
    assert_int_equal(r.close_err, GF_ENOTFOUND);
    /* Every-type observers still see the objects go, after the CRD. */
    ks_sttk_before(&log, "all DELETED ConfigMap a/crd",
                   "all DELETED Workload a/w1");
    ks_sttk_before(&log, "all DELETED ConfigMap a/crd",
                   "all DELETED Workload a/w2");
    /* Writes go on afterwards. */
    ks_sttk_mk(&f, f.cm, "a", "{\"metadata\":{\"name\":\"after\"}}");
    ks_sttk_done(&f);
}

int main(void)
{
    gf_kube_global_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crud_and_watch),
        cmocka_unit_test(test_unregister_closes_watches),
        cmocka_unit_test(test_memory_per_workload),
        cmocka_unit_test(test_unregister_from_an_observer),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_kube_global_cleanup();
    return rc;
}
