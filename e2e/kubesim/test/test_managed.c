/*
 * Tests for kubesim/managed: metadata.managedFields as a v1.28
 * kube-apiserver writes them, for Update (create, PUT, patch) and for
 * server-side Apply with its conflicts and force. Every expected
 * managedFields below is the real server's answer to the same writes
 * (e2e/diff/cases/fieldmanagers.yaml sends them to both).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/json.h"
#include "e2e/kubesim/managed.h"
#include "kubeclient/global.h"

static int64_t baseline;

static struct gf_ks_managed_op op_of(const char *manager)
{
    return (struct gf_ks_managed_op){
        .manager = manager,
        .api_version = "v1",
        .now = "2026-01-01T00:00:00Z",
    };
}

/* obj's managedFields equal want (JSON), order of keys aside. */
static void assert_managed(const cJSON *obj, const char *want)
{
    cJSON *w = cJSON_Parse(want);
    assert_non_null(w);
    const cJSON *got = gf_json_path(obj, "metadata.managedFields");
    if (!gf_json_equal(got, w)) {
        char *g = got != NULL ? cJSON_PrintUnformatted(got) : NULL;
        print_error("managedFields\n got: %s\nwant: %s\n", g ? g : "null",
                    want);
        gf_free(g);
        fail();
    }
    cJSON_Delete(w);
}

#define ENTRY(mgr, op, fields)                                                 \
    "{\"manager\":\"" mgr "\",\"operation\":\"" op "\",\"apiVersion\":\"v1\"," \
    "\"time\":\"2026-01-01T00:00:00Z\",\"fieldsType\":\"FieldsV1\","           \
    "\"fieldsV1\":" fields "}"

static void test_manager_name(void **state)
{
    (void)state;
    char n[GF_KS_MANAGER_MAX + 1];
    gf_ks_managed_name("mine", "kubectl/v1.28.15 (linux/amd64)", n, sizeof(n));
    assert_string_equal(n, "mine");
    gf_ks_managed_name("", "kubectl/v1.28.15 (linux/amd64)", n, sizeof(n));
    assert_string_equal(n, "kubectl");
    gf_ks_managed_name(NULL, "curl/8.5.0", n, sizeof(n));
    assert_string_equal(n, "curl");
    gf_ks_managed_name(NULL, "Mozilla/5.0 (X) foo/1", n, sizeof(n));
    assert_string_equal(n, "Mozilla");
    gf_ks_managed_name(NULL, NULL, n, sizeof(n));
    assert_string_equal(n, "unknown");
}

/* Create, then another manager's PUT, then a merge patch: who owns what. */
static void test_update(void **state)
{
    (void)state;
    struct gf_ks_managed_op mine = op_of("mine"), other = op_of("other");
    cJSON *v1 = cJSON_Parse("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\","
                            "\"metadata\":{\"name\":\"c\",\"labels\":"
                            "{\"x\":\"1\"}},\"data\":{\"a\":\"1\"}}");
    gf_ks_managed_update(&mine, NULL, v1);
    /* The map itself ("."), never .metadata or its name. */
    assert_managed(v1, "[" ENTRY("mine", "Update",
                                 "{\"f:data\":{\".\":{},\"f:a\":{}},"
                                 "\"f:metadata\":{\"f:labels\":{\".\":{},"
                                 "\"f:x\":{}}}}") "]");
    cJSON *v2 = cJSON_Duplicate(v1, true);
    cJSON_DeleteItemFromObjectCaseSensitive(v2, "data");
    cJSON_AddItemToObject(v2, "data", cJSON_Parse("{\"a\":\"2\",\"b\":\"1\"}"));
    gf_ks_managed_update(&other, v1, v2);
    assert_managed(
        v2,
        "[" ENTRY("mine", "Update",
                  "{\"f:data\":{},\"f:metadata\":{\"f:labels\":"
                  "{\".\":{},\"f:x\":{}}}}") "," ENTRY("other", "Update",
                                                       "{\"f:data\":{\"f:a\":{}"
                                                       ",\"f:b\":{}}}") "]");
    /* The same content again changes nothing, not even the time. */
    cJSON *v3 = cJSON_Duplicate(v2, true);
    struct gf_ks_managed_op later = mine;
    later.now = "2026-01-01T00:00:09Z";
    gf_ks_managed_update(&later, v2, v3);
    assert_true(gf_json_equal(v2, v3));
    /* A removed field leaves every set. */
    cJSON *v4 = cJSON_Duplicate(v3, true);
    cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItem(v4, "data"),
                                            "b");
    gf_ks_managed_update(&mine, v3, v4);
    assert_managed(
        v4, "[" ENTRY("mine", "Update",
                      "{\"f:data\":{},\"f:metadata\":{\"f:labels\":"
                      "{\".\":{},\"f:x\":{}}}}") "," ENTRY("other", "Update",
                                                           "{\"f:data\":{\"f:"
                                                           "a\":{}}}") "]");
    cJSON_Delete(v1);
    cJSON_Delete(v2);
    cJSON_Delete(v3);
    cJSON_Delete(v4);
    assert_int_equal(gf_alloc_live(), baseline);
}

/* A create that sets no tracked field records no manager. */
static void test_update_nothing(void **state)
{
    (void)state;
    struct gf_ks_managed_op op = op_of("x");
    cJSON *o = cJSON_Parse("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\","
                           "\"metadata\":{\"name\":\"c\"}}");
    gf_ks_managed_update(&op, NULL, o);
    assert_null(gf_json_path(o, "metadata.managedFields"));
    cJSON_Delete(o);
    assert_int_equal(gf_alloc_live(), baseline);
}

static cJSON *apply(const char *mgr, const cJSON *live, const char *cfg,
                    bool force, struct gf_ks_status *err, int *rc)
{
    struct gf_ks_managed_op op = op_of(mgr);
    cJSON *c = cJSON_Parse(cfg);
    cJSON *obj = cJSON_Duplicate(live, true);
    /* The merge itself is api_apply.c's; a map merge suffices here. */
    cJSON *d = cJSON_GetObjectItem(obj, "data");
    const cJSON *x;
    cJSON_ArrayForEach(x, cJSON_GetObjectItem(c, "data"))
    {
        cJSON_DeleteItemFromObjectCaseSensitive(d, x->string);
        cJSON_AddItemToObject(d, x->string, cJSON_Duplicate(x, true));
    }
    *rc = gf_ks_managed_apply(&op, live, c, force, obj, err);
    cJSON_Delete(c);
    return obj;
}

#define CFG(data)                                                              \
    "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"    \
    "\"s\"},\"data\":" data "}"

static void test_apply(void **state)
{
    (void)state;
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    int rc;
    cJSON *v0 = cJSON_Parse(CFG("{}"));
    cJSON *v1 =
        apply("ap1", v0, CFG("{\"a\":\"1\",\"b\":\"2\"}"), false, &err, &rc);
    assert_int_equal(rc, 0);
    /* Exactly the applied fields: no "." for the map. */
    assert_managed(v1, "[" ENTRY("ap1", "Apply",
                                 "{\"f:data\":{\"f:a\":{},\"f:b\":{}}}") "]");
    /* Another applier may not change ap1's fields. */
    cJSON *v2 = apply("ap2", v1, CFG("{\"a\":\"9\",\"b\":\"8\",\"c\":\"3\"}"),
                      false, &err, &rc);
    assert_int_equal(rc, GF_ECONFLICT);
    assert_int_equal(err.code, 409);
    assert_string_equal(err.message, "Apply failed with 2 conflicts: "
                                     "conflicts with \"ap1\":\n- .data.a\n- "
                                     ".data.b");
    char *causes = cJSON_PrintUnformatted(err.causes);
    assert_string_equal(causes, "[{\"reason\":\"FieldManagerConflict\","
                                "\"message\":\"conflict with \\\"ap1\\\"\","
                                "\"field\":\".data.a\"},{\"reason\":"
                                "\"FieldManagerConflict\",\"message\":"
                                "\"conflict with \\\"ap1\\\"\",\"field\":"
                                "\".data.b\"}]");
    gf_free(causes);
    cJSON_Delete(v2);
    /* The same value is shared ownership, not a conflict. */
    v2 = apply("ap2", v1, CFG("{\"a\":\"1\",\"c\":\"3\"}"), false, &err, &rc);
    assert_int_equal(rc, 0);
    assert_managed(
        v2,
        "[" ENTRY(
            "ap1", "Apply",
            "{\"f:data\":{\"f:a\":{},\"f:b\":{}}}") "," ENTRY("ap2", "Apply",
                                                              "{\"f:data\":{"
                                                              "\"f:a\":{},\"f:"
                                                              "c\":{}}}") "]");
    /* ap1 stops applying a (ap2 owns it: kept) and... b stays applied. */
    cJSON *v3 = apply("ap1", v2, CFG("{\"b\":\"2\"}"), false, &err, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(gf_json_str(v3, "data.a"), "1");
    /* ap2 stops applying c, which no one else owns: removed. */
    cJSON *v4 = apply("ap2", v3, CFG("{\"a\":\"1\"}"), false, &err, &rc);
    assert_int_equal(rc, 0);
    assert_null(gf_json_path(v4, "data.c"));
    assert_string_equal(gf_json_str(v4, "data.b"), "2");
    /* force takes b from ap1, whose entry, now empty, goes. */
    cJSON *v5 =
        apply("ap2", v4, CFG("{\"a\":\"1\",\"b\":\"5\"}"), true, &err, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(gf_json_str(v5, "data.b"), "5");
    assert_managed(v5, "[" ENTRY("ap2", "Apply",
                                 "{\"f:data\":{\"f:a\":{},\"f:b\":{}}}") "]");
    /* An Update then takes a; ap2's apply of another value conflicts,
     * naming the updater with its API version. */
    cJSON *v6 = cJSON_Duplicate(v5, true);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(v6, "data"), "a",
                              cJSON_CreateString("7"));
    struct gf_ks_managed_op up = op_of("up");
    gf_ks_managed_update(&up, v5, v6);
    cJSON *v7 =
        apply("ap2", v6, CFG("{\"a\":\"1\",\"b\":\"5\"}"), false, &err, &rc);
    assert_int_equal(rc, GF_ECONFLICT);
    assert_string_equal(err.message, "Apply failed with 1 conflict: conflict "
                                     "with \"up\" using v1: .data.a");
    cJSON *all[] = {v0, v1, v2, v3, v4, v5, v6, v7};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        cJSON_Delete(all[i]);
    gf_ks_status_clear(&err);
    assert_int_equal(gf_alloc_live(), baseline);
}

/*
 * After `kubectl apply`, `kubectl apply --server-side` may take the
 * fields the last-applied annotation names; any other manager conflicts.
 */
static void test_apply_after_client_side(void **state)
{
    (void)state;
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    int rc;
    cJSON *v0 = cJSON_Parse(CFG("{}"));
    cJSON *v1 = cJSON_Parse(
        "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{"
        "\"name\":\"s\",\"annotations\":{\"kubectl.kubernetes.io/"
        "last-applied-configuration\":\"{\\\"data\\\":{\\\"a\\\":"
        "\\\"1\\\"}}\"}},\"data\":{\"a\":\"1\"}}");
    struct gf_ks_managed_op csa = op_of("kubectl-client-side-apply");
    gf_ks_managed_update(&csa, v0, v1);
    cJSON *v2 = apply("other", v1, CFG("{\"a\":\"2\"}"), false, &err, &rc);
    assert_int_equal(rc, GF_ECONFLICT);
    cJSON *v3 = apply("kubectl", v1, CFG("{\"a\":\"2\"}"), false, &err, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(gf_json_str(v3, "data.a"), "2");
    cJSON_Delete(v0);
    cJSON_Delete(v1);
    cJSON_Delete(v2);
    cJSON_Delete(v3);
    gf_ks_status_clear(&err);
    assert_int_equal(gf_alloc_live(), baseline);
}

/*
 * An item the manager owned itself and still owns something inside of
 * (after kubectl moved its client-side fields to the Apply manager,
 * which owns maps as items) stays.
 */
static void test_apply_keeps_owned_parents(void **state)
{
    (void)state;
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    int rc;
    cJSON *v1 = cJSON_Parse(
        "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{"
        "\"name\":\"s\",\"managedFields\":[{\"manager\":\"kubectl\","
        "\"operation\":\"Apply\",\"apiVersion\":\"v1\",\"fieldsType\":"
        "\"FieldsV1\",\"fieldsV1\":{\"f:data\":{\".\":{},\"f:a\":{},"
        "\"f:b\":{}}}}]},\"data\":{\"a\":\"1\",\"b\":\"2\"}}");
    cJSON *v2 = apply("kubectl", v1, CFG("{\"a\":\"1\"}"), false, &err, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(gf_json_str(v2, "data.a"), "1");
    assert_null(gf_json_path(v2, "data.b"));
    cJSON_Delete(v1);
    cJSON_Delete(v2);
    gf_ks_status_clear(&err);
    assert_int_equal(gf_alloc_live(), baseline);
}

/* A Job: containers by name, ports by containerPort and protocol. */
static void test_job_keys(void **state)
{
    (void)state;
    struct gf_ks_managed_op op = op_of("c");
    op.api_version = "batch/v1";
    op.kind = "Job";
    op.has_status = true;
    cJSON *j = cJSON_Parse(
        "{\"metadata\":{\"name\":\"j\",\"finalizers\":[\"a.io/x\"]},"
        "\"spec\":{\"template\":{\"metadata\":{\"creationTimestamp\":null},"
        "\"spec\":{\"containers\":[{\"name\":\"main\",\"image\":\"b\","
        "\"ports\":[{\"containerPort\":80}]}]}}},\"status\":{}}");
    gf_ks_managed_update(&op, NULL, j);
    const char *want =
        "{\"f:metadata\":{\"f:finalizers\":{\".\":{},\"v:\\\"a.io/x\\\"\":{}}},"
        "\"f:spec\":{\"f:template\":{\"f:spec\":{\"f:containers\":{"
        "\"k:{\\\"name\\\":\\\"main\\\"}\":{\".\":{},\"f:image\":{},"
        "\"f:name\":{},\"f:ports\":{\".\":{},\"k:{\\\"containerPort\\\":80,"
        "\\\"protocol\\\":\\\"TCP\\\"}\":{\".\":{},\"f:containerPort\":{}}}}}"
        "}}}}";
    cJSON *w = cJSON_Parse(want);
    assert_non_null(w);
    const cJSON *mf = gf_json_path(j, "metadata.managedFields");
    assert_int_equal(cJSON_GetArraySize(mf), 1);
    assert_true(gf_json_equal(cJSON_GetObjectItem(mf->child, "fieldsV1"), w));
    cJSON_Delete(w);
    cJSON_Delete(j);
    assert_int_equal(gf_alloc_live(), baseline);
}

/* A custom resource's list-map keys come from its schema. */
static void test_crd_list_map(void **state)
{
    (void)state;
    cJSON *schema = cJSON_Parse(
        "{\"type\":\"object\",\"properties\":{\"spec\":{\"type\":\"object\","
        "\"properties\":{\"flavors\":{\"type\":\"array\","
        "\"x-kubernetes-list-type\":\"map\",\"x-kubernetes-list-map-keys\":"
        "[\"name\"],\"items\":{\"type\":\"object\"}},\"tags\":{\"type\":"
        "\"array\"}}}}}");
    struct gf_ks_managed_op op = op_of("m");
    op.schema = schema;
    cJSON *o = cJSON_Parse("{\"metadata\":{\"name\":\"q\"},\"spec\":{"
                           "\"flavors\":[{\"name\":\"a100\",\"n\":1}],"
                           "\"tags\":[\"x\"]}}");
    gf_ks_managed_update(&op, NULL, o);
    cJSON *w = cJSON_Parse("{\"f:spec\":{\".\":{},\"f:flavors\":{\".\":{},"
                           "\"k:{\\\"name\\\":\\\"a100\\\"}\":{\".\":{},\"f:"
                           "n\":{},\"f:name\":{}}},"
                           "\"f:tags\":{}}}");
    const cJSON *e = gf_json_path(o, "metadata.managedFields")->child;
    assert_true(gf_json_equal(cJSON_GetObjectItem(e, "fieldsV1"), w));
    cJSON_Delete(w);
    cJSON_Delete(o);
    cJSON_Delete(schema);
    assert_int_equal(gf_alloc_live(), baseline);
}

int main(void)
{
    gf_kube_global_init();
    baseline = gf_alloc_live();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_manager_name),
        cmocka_unit_test(test_update),
        cmocka_unit_test(test_update_nothing),
        cmocka_unit_test(test_apply),
        cmocka_unit_test(test_apply_after_client_side),
        cmocka_unit_test(test_apply_keeps_owned_parents),
        cmocka_unit_test(test_job_keys),
        cmocka_unit_test(test_crd_list_map),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_kube_global_cleanup();
    return rc;
}
