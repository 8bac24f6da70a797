/*
 * What the real API server (v1.28) refuses and answers on writes, as
 * measured against it (e2e/diff/cases/leases.yaml and writes.yaml run
 * the same requests on both): Lease MicroTime and duration rules,
 * metadata.generation only where the strategy keeps one, resourceVersion
 * rules of PUT and create, kind checks, and the Success Status a delete
 * answers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/json.h"
#include "e2e/kubesim/test/api_testkit.h"
#include "kubeclient/global.h"

#define LEASES "/apis/coordination.k8s.io/v1/namespaces/default/leases"
#define CMS "/api/v1/namespaces/default/configmaps"
#define WIDGETS "/apis/example.io/v1/namespaces/default/widgets"

static const char *or_null(const char *s)
{
    return s != NULL ? s : "(null)";
}
#define str(j, path) or_null(gf_json_str(j, path))

static cJSON *req(struct ks_apitk_cluster *k, const char *method,
                  const char *target, const char *body, int want)
{
    int code = 0;
    cJSON *j = ks_apitk_json(k, method, target, NULL, body, &code);
    if (code != want) {
        char *s = j != NULL ? cJSON_PrintUnformatted(j) : NULL;
        fail_msg("%s %s: code %d, want %d: %s", method, target, code, want,
                 s != NULL ? s : "");
    }
    return j;
}

static const char *cause_field(const cJSON *j)
{
    return or_null(gf_json_str(
        cJSON_GetArrayItem(gf_json_path(j, "details.causes"), 0), "field"));
}

static void lease(struct ks_apitk_cluster *k, const char *name,
                  const char *spec, int want, const char *msg)
{
    char body[512];
    snprintf(body, sizeof(body),
             "{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\","
             "\"metadata\":{\"name\":\"%s\"},\"spec\":%s}",
             name, spec);
    cJSON *j = req(k, "POST", LEASES, body, want);
    if (msg != NULL)
        assert_string_equal(str(j, "message"), msg);
    cJSON_Delete(j);
}

static void test_lease_microtime(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    lease(&k, "ok", "{\"renewTime\":\"2026-12-06T05:21:36.123456Z\"}", 201,
          NULL);
    lease(&k, "offset", "{\"renewTime\":\"2026-12-06T05:21:36.123456+01:00\"}",
          201, NULL);
    lease(&k, "no-frac", "{\"renewTime\":\"2026-12-06T05:21:36Z\"}", 400,
          "Lease in version \"v1\" cannot be handled as a Lease: parsing "
          "time \"2026-12-06T05:21:36Z\" as "
          "\"2006-01-02T15:04:05.000000Z07:00\": cannot parse \"Z\" as "
          "\".000000\"");
    lease(&k, "milli", "{\"acquireTime\":\"2026-12-06T05:21:36.123Z\"}", 400,
          "Lease in version \"v1\" cannot be handled as a Lease: parsing "
          "time \"2026-12-06T05:21:36.123Z\" as "
          "\"2006-01-02T15:04:05.000000Z07:00\": cannot parse \".123Z\" as "
          "\".000000\"");
    lease(&k, "junk", "{\"renewTime\":\"yesterday\"}", 400,
          "Lease in version \"v1\" cannot be handled as a Lease: parsing "
          "time \"yesterday\" as \"2006-01-02T15:04:05.000000Z07:00\": "
          "cannot parse \"yesterday\" as \"2006\"");
    /* A patch that leaves a bad time: 422 naming "patch". */
    cJSON *j =
        ks_apitk_json(&k, "PATCH", LEASES "/ok", "application/merge-patch+json",
                      "{\"spec\":{\"renewTime\":\"2026-12-06T05:21:"
                      "56Z\"}}",
                      NULL);
    assert_string_equal(str(j, "reason"), "Invalid");
    assert_string_equal(cause_field(j), "patch");
    assert_non_null(strstr(str(j, "message"), "cannot parse \"Z\" as"));
    cJSON_Delete(j);
    ks_apitk_stop(&k);
}

static void test_lease_fields(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    lease(&k, "zero", "{\"leaseDurationSeconds\":0}", 422,
          "Lease.coordination.k8s.io \"zero\" is invalid: "
          "spec.leaseDurationSeconds: Invalid value: 0: must be greater "
          "than 0");
    lease(&k, "neg", "{\"leaseDurationSeconds\":-5}", 422, NULL);
    lease(&k, "trans", "{\"leaseTransitions\":-1}", 422, NULL);
    /* No metadata.generation on a Lease, on create or on update. */
    cJSON *j = req(&k, "POST", LEASES,
                   "{\"metadata\":{\"name\":\"hb\"},\"spec\":"
                   "{\"leaseDurationSeconds\":30}}",
                   201);
    assert_null(gf_json_path(j, "metadata.generation"));
    char body[512];
    snprintf(body, sizeof(body),
             "{\"metadata\":{\"name\":\"hb\",\"resourceVersion\":\"%s\"},"
             "\"spec\":{\"leaseDurationSeconds\":15}}",
             str(j, "metadata.resourceVersion"));
    cJSON_Delete(j);
    /* A Lease PUT must name the version it replaces. */
    j = req(&k, "PUT", LEASES "/hb",
            "{\"metadata\":{\"name\":\"hb\"},\"spec\":"
            "{\"leaseDurationSeconds\":15}}",
            422);
    assert_string_equal(cause_field(j), "metadata.resourceVersion");
    cJSON_Delete(j);
    j = req(&k, "PUT", LEASES "/hb", body, 200);
    assert_null(gf_json_path(j, "metadata.generation"));
    cJSON_Delete(j);
    ks_apitk_stop(&k);
}

static void widget_crd(struct ks_apitk_cluster *k)
{
    cJSON_Delete(req(
        k, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        "{\"metadata\":{\"name\":\"widgets.example.io\"},\"spec\":{\"group\":"
        "\"example.io\",\"scope\":\"Namespaced\",\"names\":{\"plural\":"
        "\"widgets\",\"singular\":\"widget\",\"kind\":\"Widget\"},"
        "\"versions\":[{\"name\":\"v1\",\"served\":true,\"storage\":true,"
        "\"schema\":{\"openAPIV3Schema\":{\"type\":\"object\","
        "\"x-kubernetes-preserve-unknown-fields\":true}}}]}}",
        201));
}

static void test_write_rules(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    widget_crd(&k);
    cJSON *j =
        req(&k, "POST", WIDGETS,
            "{\"metadata\":{\"name\":\"w\"},\"spec\":{\"size\":1}}", 201);
    int64_t gen = 0;
    assert_int_equal(gf_json_int(j, "metadata.generation", &gen), 0);
    assert_int_equal(gen, 1); /* custom resources keep one */
    cJSON_Delete(j);
    /* A custom resource's PUT without resourceVersion: 422. */
    j = req(&k, "PUT", WIDGETS "/w",
            "{\"metadata\":{\"name\":\"w\"},\"spec\":{\"size\":2}}", 422);
    assert_string_equal(str(j, "message"),
                        "widgets.example.io \"w\" is invalid: "
                        "metadata.resourceVersion: Invalid value: 0x0: must "
                        "be specified for an update");
    assert_string_equal(str(j, "details.kind"), "widgets");
    cJSON_Delete(j);
    /* A ConfigMap's is allowed, and a ConfigMap has no generation. */
    j = req(&k, "POST", CMS, "{\"metadata\":{\"name\":\"c\"}}", 201);
    assert_null(gf_json_path(j, "metadata.generation"));
    cJSON_Delete(j);
    cJSON_Delete(req(&k, "PUT", CMS "/c",
                     "{\"metadata\":{\"name\":\"c\"},\"data\":{\"a\":\"1\"}}",
                     200));
    /* A create naming a resourceVersion: the storage layer's 500. */
    j = req(&k, "POST", CMS,
            "{\"metadata\":{\"name\":\"d\",\"resourceVersion\":\"5\"}}", 500);
    assert_string_equal(str(j, "message"), "resourceVersion should not be set "
                                           "on objects to be created");
    assert_null(gf_json_path(j, "reason"));
    cJSON_Delete(j);
    /* A kind other than the URL's. */
    j = req(&k, "POST", CMS,
            "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":"
            "{\"name\":\"e\"}}",
            400);
    assert_string_equal(str(j, "message"),
                        "Secret in version \"v1\" cannot be handled as a "
                        "ConfigMap: converting (v1.Secret) to "
                        "(core.ConfigMap): unknown conversion");
    cJSON_Delete(j);
    j = req(&k, "POST", WIDGETS,
            "{\"apiVersion\":\"example.io/v1\",\"kind\":\"Gadget\","
            "\"metadata\":{\"name\":\"g\"}}",
            422);
    assert_string_equal(str(j, "message"),
                        "Gadget.example.io \"g\" is invalid: kind: Invalid "
                        "value: \"Gadget\": must be Widget");
    assert_string_equal(cause_field(j), "kind");
    cJSON_Delete(j);
    /* A stale resourceVersion precondition names the kind. */
    j = req(&k, "DELETE", WIDGETS "/w",
            "{\"preconditions\":{\"resourceVersion\":\"1\"}}", 409);
    assert_string_equal(str(j, "details.kind"), "Widget");
    assert_non_null(strstr(str(j, "message"),
                           "Operation cannot be fulfilled on "
                           "Widget.example.io \"w\": the ResourceVersion in "
                           "the precondition (1) does not match"));
    cJSON_Delete(j);
    /* A delete that removes a custom resource answers a Success Status. */
    j = req(&k, "DELETE", WIDGETS "/w", NULL, 200);
    assert_string_equal(str(j, "kind"), "Status");
    assert_string_equal(str(j, "status"), "Success");
    assert_string_equal(str(j, "details.kind"), "widgets");
    assert_string_equal(str(j, "details.group"), "example.io");
    cJSON_Delete(j);
    j = req(&k, "DELETE", CMS "/c", NULL, 200);
    assert_string_equal(str(j, "status"), "Success");
    assert_null(gf_json_path(j, "details.group"));
    cJSON_Delete(j);
    ks_apitk_stop(&k);
}

static void test_list_rules(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    cJSON *j = req(&k, "POST", CMS, "{\"metadata\":{\"name\":\"a\"}}", 201);
    char target[256];
    snprintf(target, sizeof(target), CMS "?limit=1&resourceVersion=%s",
             str(j, "metadata.resourceVersion"));
    char rv_a[24];
    snprintf(rv_a, sizeof(rv_a), "%s", str(j, "metadata.resourceVersion"));
    cJSON_Delete(j);
    cJSON_Delete(req(&k, "POST", CMS, "{\"metadata\":{\"name\":\"b\"}}", 201));
    /* limit with a version: served exactly there, as etcd serves it. */
    j = req(&k, "GET", target, NULL, 200);
    assert_string_equal(str(j, "metadata.resourceVersion"), rv_a);
    assert_int_equal(cJSON_GetArraySize(gf_json_path(j, "items")), 1);
    assert_null(gf_json_path(j, "metadata.continue"));
    cJSON_Delete(j);
    /* Without limit, a lower bound: the current state. */
    snprintf(target, sizeof(target), CMS "?resourceVersion=%s", rv_a);
    j = req(&k, "GET", target, NULL, 200);
    assert_int_equal(cJSON_GetArraySize(gf_json_path(j, "items")), 2);
    cJSON_Delete(j);
    j = req(&k, "GET", CMS "?resourceVersionMatch=Exact", NULL, 422);
    assert_string_equal(cause_field(j), "resourceVersionMatch");
    assert_string_equal(str(j, "details.kind"), "ListOptions");
    cJSON_Delete(j);
    /* Paths no built-in group serves: the mux's plain-text 404. */
    struct ks_apitk_resp r;
    ks_apitk_resp_init(&r);
    assert_int_equal(
        ks_apitk_do(&k, &r, "GET", "/apis/nope.io/v1/things", NULL, NULL, NULL),
        404);
    assert_string_equal(gf_buf_cstr(&r.body), "404 page not found\n");
    assert_string_equal(r.ctype, "text/plain; charset=utf-8");
    ks_apitk_resp_free(&r);
    /* The built-in groups' router: a Status with empty details. */
    j = req(&k, "GET", "/api/v1/namespaces/default/gizmos", NULL, 404);
    assert_non_null(gf_json_path(j, "details"));
    cJSON_Delete(j);
    ks_apitk_stop(&k);
}

static void test_delete_policies(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    static const struct {
        const char *policy, *finalizer;
    } cases[] = {{"Foreground", "foregroundDeletion"}, {"Orphan", "orphan"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON_Delete(
            req(&k, "POST", CMS, "{\"metadata\":{\"name\":\"c\"}}", 201));
        char body[128];
        snprintf(body, sizeof(body), "{\"propagationPolicy\":\"%s\"}",
                 cases[i].policy);
        /* The answer is the object, marked with the policy's finalizer. */
        cJSON *j = req(&k, "DELETE", CMS "/c", body, 200);
        assert_string_equal(str(j, "kind"), "ConfigMap");
        assert_non_null(gf_json_path(j, "metadata.deletionTimestamp"));
        const cJSON *f = gf_json_path(j, "metadata.finalizers");
        assert_int_equal(cJSON_GetArraySize(f), 1);
        assert_string_equal(cJSON_GetArrayItem(f, 0)->valuestring,
                            cases[i].finalizer);
        cJSON_Delete(j);
        /* Then the collector finishes. */
        cJSON_Delete(req(&k, "GET", CMS "/c", NULL, 404));
    }
    cJSON *j =
        req(&k, "DELETE", CMS "/c?propagationPolicy=Sideways", NULL, 422);
    assert_string_equal(cause_field(j), "propagationPolicy");
    assert_string_equal(str(j, "details.kind"), "DeleteOptions");
    cJSON_Delete(j);
    ks_apitk_stop(&k);
}

static void test_unknown_field_warnings(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    cJSON_Delete(req(
        &k, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        "{\"metadata\":{\"name\":\"widgets.example.io\"},\"spec\":{\"group\":"
        "\"example.io\",\"scope\":\"Namespaced\",\"names\":{\"plural\":"
        "\"widgets\",\"singular\":\"widget\",\"kind\":\"Widget\"},"
        "\"versions\":[{\"name\":\"v1\",\"served\":true,\"storage\":true,"
        "\"schema\":{\"openAPIV3Schema\":{\"type\":\"object\",\"properties\":"
        "{\"spec\":{\"type\":\"object\",\"properties\":{\"size\":{\"type\":"
        "\"integer\"}}}}}}}]}}",
        201));
    static const struct {
        const char *query, *headers;
    } cases[] = {
        /* The default is Warn: pruned, and one Warning per field. */
        {"", "Warning: 299 - \"unknown field \\\"spec.colour\\\"\"\n"
             "Warning: 299 - \"unknown field \\\"spec.shade\\\"\"\n"},
        {"?fieldValidation=Warn",
         "Warning: 299 - \"unknown field \\\"spec.colour\\\"\"\n"
         "Warning: 299 - \"unknown field \\\"spec.shade\\\"\"\n"},
        {"?fieldValidation=Ignore", ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char target[128], body[256];
        snprintf(target, sizeof(target), WIDGETS "%s", cases[i].query);
        snprintf(body, sizeof(body),
                 "{\"metadata\":{\"name\":\"w%zu\"},\"spec\":{\"size\":1,"
                 "\"colour\":\"red\",\"shade\":\"dark\"}}",
                 i);
        struct ks_apitk_resp r;
        ks_apitk_resp_init(&r);
        assert_int_equal(ks_apitk_do(&k, &r, "POST", target, NULL, NULL, body),
                         201);
        assert_string_equal(gf_buf_cstr(&r.headers), cases[i].headers);
        assert_null(strstr(gf_buf_cstr(&r.body), "colour"));
        ks_apitk_resp_free(&r);
    }
    ks_apitk_stop(&k);
}

int main(void)
{
    gf_kube_global_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lease_microtime),
        cmocka_unit_test(test_lease_fields),
        cmocka_unit_test(test_write_rules),
        cmocka_unit_test(test_list_rules),
        cmocka_unit_test(test_delete_policies),
        cmocka_unit_test(test_unknown_field_warnings),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_kube_global_cleanup();
    return rc;
}
