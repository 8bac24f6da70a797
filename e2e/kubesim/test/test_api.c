/*
 * Tests for kubesim's REST layer: the CRUD verbs on built-in types as a
 * client sees them through gf_ks_api_handle(): status codes, Status bodies
 * (reason, code, details), optimistic concurrency, the three patch types,
 * the status subresource, selectors and paging, deletecollection, delete
 * preconditions and dry runs, routing errors, and the authorizer's view of
 * each request.
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
#include "e2e/kubesim/test/api_testkit.h"
#include "kubeclient/global.h"

#define CM_PATH "/api/v1/namespaces/default/configmaps"
#define JOB_PATH "/apis/batch/v1/namespaces/default/jobs"

static const char *or_null(const char *s)
{
    return s != NULL ? s : "(null)";
}
/* A macro, so gf_json_str's literal-only check reaches every call. */
#define str(j, path) or_null(gf_json_str(j, path))

static void assert_status(const cJSON *j, int code, const char *reason)
{
    assert_non_null(j);
    assert_string_equal(str(j, "kind"), "Status");
    assert_string_equal(str(j, "status"), "Failure");
    assert_string_equal(str(j, "reason"), reason);
    int64_t c = 0;
    assert_int_equal(gf_json_int(j, "code", &c), 0);
    assert_int_equal(c, code);
}

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

static void mk_cm(struct ks_apitk_cluster *k, const char *name,
                  const char *labels)
{
    char body[512];
    snprintf(body, sizeof(body),
             "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":"
             "{\"name\":\"%s\",\"labels\":%s},\"data\":{\"k\":\"v\"}}",
             name, labels != NULL ? labels : "{}");
    cJSON_Delete(req(k, "POST", CM_PATH, body, 201));
}

static void test_create_get_update_delete(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    /* Create answers 201 with the stored object. */
    cJSON *o =
        req(&k, "POST", CM_PATH,
            "{\"metadata\":{\"name\":\"a\"},\"data\":{\"x\":\"1\"}}", 201);
    assert_string_equal(str(o, "apiVersion"), "v1");
    assert_string_equal(str(o, "kind"), "ConfigMap");
    assert_string_equal(str(o, "metadata.namespace"), "default");
    assert_non_null(gf_json_str(o, "metadata.uid"));
    assert_string_equal(str(o, "metadata.creationTimestamp"),
                        "2026-11-24T10:00:00Z");
    char rv[24];
    snprintf(rv, sizeof(rv), "%s", str(o, "metadata.resourceVersion"));
    cJSON_Delete(o);
    /* A second create of the same name: 409 AlreadyExists. */
    o = req(&k, "POST", CM_PATH, "{\"metadata\":{\"name\":\"a\"}}", 409);
    assert_status(o, 409, "AlreadyExists");
    assert_string_equal(str(o, "message"), "configmaps \"a\" already exists");
    assert_string_equal(str(o, "details.name"), "a");
    assert_string_equal(str(o, "details.kind"), "configmaps");
    cJSON_Delete(o);
    o = req(&k, "GET", CM_PATH "/a", NULL, 200);
    assert_string_equal(str(o, "data.x"), "1");
    cJSON_Delete(o);
    /* PUT with the current resourceVersion succeeds, then the old one is
     * stale: 409 Conflict. */
    char body[256];
    snprintf(body, sizeof(body),
             "{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"%s\"},"
             "\"data\":{\"x\":\"2\"}}",
             rv);
    o = req(&k, "PUT", CM_PATH "/a", body, 200);
    assert_string_equal(str(o, "data.x"), "2");
    assert_string_not_equal(str(o, "metadata.resourceVersion"), rv);
    cJSON_Delete(o);
    o = req(&k, "PUT", CM_PATH "/a", body, 409);
    assert_status(o, 409, "Conflict");
    assert_non_null(strstr(str(o, "message"),
                           "Operation cannot be fulfilled on configmaps "
                           "\"a\": the object has been modified"));
    cJSON_Delete(o);
    /* DELETE of a built-in answers with a Success Status. */
    o = req(&k, "DELETE", CM_PATH "/a", NULL, 200);
    assert_string_equal(str(o, "kind"), "Status");
    assert_string_equal(str(o, "status"), "Success");
    assert_string_equal(str(o, "details.name"), "a");
    cJSON_Delete(o);
    o = req(&k, "GET", CM_PATH "/a", NULL, 404);
    assert_status(o, 404, "NotFound");
    assert_string_equal(str(o, "message"), "configmaps \"a\" not found");
    cJSON_Delete(o);
    o = req(&k, "DELETE", CM_PATH "/a", NULL, 404);
    assert_status(o, 404, "NotFound");
    cJSON_Delete(o);
    ks_apitk_stop(&k);
}

static void test_create_rules(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    /* The namespace must exist. */
    cJSON *o = req(&k, "POST", "/api/v1/namespaces/nope/configmaps",
                   "{\"metadata\":{\"name\":\"a\"}}", 404);
    assert_status(o, 404, "NotFound");
    assert_string_equal(str(o, "message"), "namespaces \"nope\" not found");
    cJSON_Delete(o);
    /* generateName gets a five-character suffix. */
    o = req(&k, "POST", CM_PATH, "{\"metadata\":{\"generateName\":\"gen-\"}}",
            201);
    const char *name = str(o, "metadata.name");
    assert_int_equal(strlen(name), 9);
    assert_memory_equal(name, "gen-", 4);
    cJSON_Delete(o);
    /* No name at all: 422 naming the field. */
    o = req(&k, "POST", CM_PATH, "{\"metadata\":{}}", 422);
    assert_status(o, 422, "Invalid");
    assert_string_equal(
        str(cJSON_GetArrayItem(gf_json_path(o, "details.causes"), 0), "field"),
        "metadata.name");
    cJSON_Delete(o);
    /* Wrong apiVersion in the body, malformed JSON, non-object body. */
    o = req(&k, "POST", CM_PATH,
            "{\"apiVersion\":\"batch/v1\",\"metadata\":{\"name\":\"b\"}}", 400);
    assert_status(o, 400, "BadRequest");
    cJSON_Delete(o);
    o = req(&k, "POST", CM_PATH, "{\"metadata\":", 400);
    assert_status(o, 400, "BadRequest");
    cJSON_Delete(o);
    o = req(&k, "POST", CM_PATH, "[1]", 400);
    assert_status(o, 400, "BadRequest");
    cJSON_Delete(o);
    /* YAML bodies are accepted; a body in another format is a 415; bad
     * protobuf is a 400 (good protobuf: test_api_proto.c). */
    int code;
    o = ks_apitk_json(&k, "POST", CM_PATH, "application/yaml",
                      "metadata:\n  name: y\ndata:\n  n: \"1\"\n", &code);
    assert_int_equal(code, 201);
    assert_string_equal(str(o, "data.n"), "1");
    cJSON_Delete(o);
    o = ks_apitk_json(&k, "POST", CM_PATH,
                      "application/vnd.kubernetes.protobuf", "k8s\x01", &code);
    assert_int_equal(code, 400);
    assert_status(o, 400, "BadRequest");
    cJSON_Delete(o);
    o = ks_apitk_json(&k, "POST", CM_PATH, "application/cbor", "\xa0", &code);
    assert_int_equal(code, 415);
    assert_status(o, 415, "UnsupportedMediaType");
    cJSON_Delete(o);
    /* Namespaces are created cluster-wide and get the kubernetes
     * finalizer and the Active phase. */
    o = req(&k, "POST", "/api/v1/namespaces",
            "{\"metadata\":{\"name\":\"t1\"}}", 201);
    assert_string_equal(str(o, "status.phase"), "Active");
    cJSON_Delete(o);
    ks_apitk_stop(&k);
}

static void test_routing_errors(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    static const struct {
        const char *method, *target;
        int code;
        const char *reason;
    } cases[] = {
        {"GET", "/api/v1/namespaces/default/widgets", 404, "NotFound"},
        {"GET", "/apis/batch/v2/namespaces/default/jobs", 404, "NotFound"},
        /* Not a built-in group: the mux's plain-text 404 (NULL). */
        {"GET", "/apis/nope.io/v1/things", 404, NULL},
        {"GET", "/api/v1/configmaps/a", 404, "NotFound"},
        {"GET", "/api/v1/namespaces/default/nodes", 404, "NotFound"},
        {"GET", "/api/v1/namespaces/default/namespaces", 404, "NotFound"},
        {"GET", CM_PATH "/a/status", 404, "NotFound"},
        {"GET", CM_PATH "/a/b/c", 404, "NotFound"},
        {"GET", "/no/such/path", 404, NULL},
        {"POST", CM_PATH "/a", 405, "MethodNotAllowed"},
        {"TRACE", CM_PATH, 405, "MethodNotAllowed"},
        /* Pods are the runner's read-only view. */
        {"POST", "/api/v1/namespaces/default/pods", 405, "MethodNotAllowed"},
        {"DELETE", "/api/v1/namespaces/default/pods/p", 405,
         "MethodNotAllowed"},
        {"GET", CM_PATH "?limit=abc", 400, "BadRequest"},
        {"GET", CM_PATH "?labelSelector=a%20in%20(", 400, "BadRequest"},
        {"GET", CM_PATH "?watch=1&timeoutSeconds=x", 400, "BadRequest"},
        {"GET", CM_PATH "?watch=1&resourceVersion=x", 400, "BadRequest"},
        {"GET", CM_PATH "?x=%zz", 400, "BadRequest"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int code = 0;
        const char *body = strcmp(cases[i].method, "POST") == 0 ? "{}" : NULL;
        cJSON *o = ks_apitk_json(&k, cases[i].method, cases[i].target, NULL,
                                 body, &code);
        if (code != cases[i].code)
            fail_msg("%s %s: %d", cases[i].method, cases[i].target, code);
        if (cases[i].reason != NULL)
            assert_status(o, cases[i].code, cases[i].reason);
        else /* "404 page not found": no Status object */
            assert_false(cJSON_IsObject(o));
        cJSON_Delete(o);
    }
    ks_apitk_stop(&k);
}

static void test_patch_types(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    mk_cm(&k, "p", "{\"a\":\"1\"}");
    int code = 0;
    cJSON *o =
        ks_apitk_json(&k, "PATCH", CM_PATH "/p", "application/merge-patch+json",
                      "{\"data\":{\"k\":null,\"n\":\"x\"},\"metadata\":"
                      "{\"labels\":{\"b\":\"2\"}}}",
                      &code);
    assert_int_equal(code, 200);
    assert_null(gf_json_path(o, "data.k"));
    assert_string_equal(str(o, "data.n"), "x");
    assert_string_equal(gf_json_label(o, "a"), "1");
    assert_string_equal(gf_json_label(o, "b"), "2");
    cJSON_Delete(o);
    o = ks_apitk_json(&k, "PATCH", CM_PATH "/p", "application/json-patch+json",
                      "[{\"op\":\"replace\",\"path\":\"/data/n\",\"value\":"
                      "\"y\"}]",
                      &code);
    assert_int_equal(code, 200);
    assert_string_equal(str(o, "data.n"), "y");
    cJSON_Delete(o);
    /* A failed JSON-patch test is 422; a patch that does not parse, 400. */
    o = ks_apitk_json(&k, "PATCH", CM_PATH "/p", "application/json-patch+json",
                      "[{\"op\":\"test\",\"path\":\"/data/n\",\"value\":"
                      "\"z\"}]",
                      &code);
    assert_int_equal(code, 422);
    assert_status(o, 422, "Invalid");
    cJSON_Delete(o);
    o = ks_apitk_json(&k, "PATCH", CM_PATH "/p", "application/json-patch+json",
                      "not json", &code);
    assert_int_equal(code, 400);
    cJSON_Delete(o);
    o = ks_apitk_json(&k, "PATCH", CM_PATH "/p",
                      "application/strategic-merge-patch+json",
                      "{\"data\":{\"s\":\"1\"}}", &code);
    assert_int_equal(code, 200);
    assert_string_equal(str(o, "data.s"), "1");
    cJSON_Delete(o);
    /* A patch carrying a stale resourceVersion is a 409. */
    o = ks_apitk_json(&k, "PATCH", CM_PATH "/p", "application/merge-patch+json",
                      "{\"metadata\":{\"resourceVersion\":\"1\"},\"data\":"
                      "{\"q\":\"1\"}}",
                      &code);
    assert_int_equal(code, 409);
    assert_status(o, 409, "Conflict");
    cJSON_Delete(o);
    /* So is a JSON patch that writes one (kubeclient's precondition, as
     * kube-apiserver answers it: 409, not the 422 of a failed test). */
    o = ks_apitk_json(&k, "PATCH", CM_PATH "/p", "application/json-patch+json",
                      "[{\"op\":\"replace\",\"path\":\"/metadata/"
                      "resourceVersion\",\"value\":\"1\"},{\"op\":\"add\","
                      "\"path\":\"/data/q\",\"value\":\"1\"}]",
                      &code);
    assert_int_equal(code, 409);
    assert_status(o, 409, "Conflict");
    cJSON_Delete(o);
    o = ks_apitk_json(&k, "GET", CM_PATH "/p", NULL, NULL, &code);
    char rv[32];
    snprintf(rv, sizeof(rv), "%s", str(o, "metadata.resourceVersion"));
    assert_null(gf_json_path(o, "data.q"));
    cJSON_Delete(o);
    char body[256];
    snprintf(body, sizeof(body),
             "[{\"op\":\"replace\",\"path\":\"/metadata/resourceVersion\","
             "\"value\":\"%s\"},{\"op\":\"add\",\"path\":\"/data/q\","
             "\"value\":\"1\"}]",
             rv);
    o = ks_apitk_json(&k, "PATCH", CM_PATH "/p", "application/json-patch+json",
                      body, &code);
    assert_int_equal(code, 200);
    assert_string_equal(str(o, "data.q"), "1");
    assert_string_not_equal(str(o, "metadata.resourceVersion"), rv);
    cJSON_Delete(o);
    o = ks_apitk_json(&k, "PATCH", CM_PATH "/p", "text/plain", "{}", &code);
    assert_int_equal(code, 415);
    assert_status(o, 415, "UnsupportedMediaType");
    cJSON_Delete(o);
    o = ks_apitk_json(&k, "PATCH", CM_PATH "/zz",
                      "application/merge-patch+json", "{}", &code);
    assert_int_equal(code, 404);
    cJSON_Delete(o);
    /* Server-side apply creates, then merges. */
    o = ks_apitk_json(
        &k, "PATCH", CM_PATH "/ssa?fieldManager=t",
        "application/apply-patch+yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\n"
        "data:\n  a: \"1\"\n",
        &code);
    assert_int_equal(code, 201);
    cJSON_Delete(o);
    o = ks_apitk_json(
        &k, "PATCH", CM_PATH "/ssa?fieldManager=t",
        "application/apply-patch+yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\n"
        "data:\n  b: \"2\"\n",
        &code);
    assert_int_equal(code, 200);
    /* The manager no longer applies data.a, which no one else owns. */
    assert_null(gf_json_path(o, "data.a"));
    assert_string_equal(str(o, "data.b"), "2");
    cJSON_Delete(o);
    ks_apitk_stop(&k);
}

static void test_status_subresource(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    cJSON *o = req(&k, "POST", JOB_PATH,
                   "{\"metadata\":{\"name\":\"j\"},\"spec\":{\"suspend\":true,"
                   "\"template\":{\"spec\":{\"restartPolicy\":\"Never\","
                   "\"containers\":[{\"name\":\"c\",\"image\":\"busybox:1.36\"}"
                   "]}}},\"status\":{\"active\":9}}",
                   201);
    /* Status is dropped on create of a type with /status. */
    assert_null(gf_json_path(o, "status.active"));
    int64_t gen = 0;
    assert_int_equal(gf_json_int(o, "metadata.generation", &gen), 0);
    assert_int_equal(gen, 1);
    cJSON_Delete(o);
    int code;
    o = ks_apitk_json(
        &k, "PATCH", JOB_PATH "/j/status", "application/merge-patch+json",
        "{\"spec\":{\"suspend\":false},\"status\":{\"active\":1}}", &code);
    assert_int_equal(code, 200);
    int64_t active = 0;
    assert_int_equal(gf_json_int(o, "status.active", &active), 0);
    assert_int_equal(active, 1);
    /* /status changes only status: spec and generation stay. */
    assert_true(cJSON_IsTrue(gf_json_path(o, "spec.suspend")));
    assert_int_equal(gf_json_int(o, "metadata.generation", &gen), 0);
    assert_int_equal(gen, 1);
    cJSON_Delete(o);
    /* A spec change on the main resource bumps generation, keeps status. */
    o = ks_apitk_json(
        &k, "PATCH", JOB_PATH "/j", "application/strategic-merge-patch+json",
        "{\"spec\":{\"suspend\":false},\"status\":{\"active\":5}}", &code);
    assert_int_equal(code, 200);
    assert_int_equal(gf_json_int(o, "metadata.generation", &gen), 0);
    assert_int_equal(gen, 2);
    assert_int_equal(gf_json_int(o, "status.active", &active), 0);
    assert_int_equal(active, 1);
    cJSON_Delete(o);
    o = req(&k, "GET", JOB_PATH "/j/status", NULL, 200);
    assert_string_equal(str(o, "kind"), "Job");
    cJSON_Delete(o);
    ks_apitk_stop(&k);
}

static size_t items(const cJSON *list)
{
    return (size_t)cJSON_GetArraySize(gf_json_path(list, "items"));
}

static void test_list_selectors_paging(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    mk_cm(&k, "a", "{\"app\":\"x\"}");
    mk_cm(&k, "b", "{\"app\":\"y\"}");
    mk_cm(&k, "c", "{\"app\":\"x\",\"tier\":\"t\"}");
    cJSON *l = req(&k, "GET", CM_PATH, NULL, 200);
    assert_string_equal(str(l, "kind"), "ConfigMapList");
    assert_string_equal(str(l, "apiVersion"), "v1");
    assert_int_equal(items(l), 3);
    assert_string_equal(
        str(cJSON_GetArrayItem(gf_json_path(l, "items"), 0), "metadata.name"),
        "a");
    assert_non_null(gf_json_str(l, "metadata.resourceVersion"));
    cJSON_Delete(l);
    l = req(&k, "GET", CM_PATH "?labelSelector=app%3Dx", NULL, 200);
    assert_int_equal(items(l), 2);
    cJSON_Delete(l);
    l = req(&k, "GET", CM_PATH "?labelSelector=app+in+(y),!tier", NULL, 200);
    assert_int_equal(items(l), 1);
    cJSON_Delete(l);
    l = req(&k, "GET", CM_PATH "?fieldSelector=metadata.name%3Dc", NULL, 200);
    assert_int_equal(items(l), 1);
    cJSON_Delete(l);
    /* Only the fields the server extracts: labels are not fields. */
    l = req(&k, "GET", CM_PATH "?fieldSelector=metadata.labels.app%3Dx", NULL,
            400);
    assert_string_equal(str(l, "message"),
                        "\"metadata.labels.app\" is not a known field "
                        "selector: only \"metadata.name\", "
                        "\"metadata.namespace\"");
    cJSON_Delete(l);
    l = req(&k, "GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dn1", NULL,
            200);
    cJSON_Delete(l);
    /* All namespaces. */
    l = req(&k, "GET", "/api/v1/configmaps", NULL, 200);
    assert_int_equal(items(l), 3);
    cJSON_Delete(l);
    /* Paging: 2 + 1, with remainingItemCount and a continue token. */
    l = req(&k, "GET", CM_PATH "?limit=2", NULL, 200);
    assert_int_equal(items(l), 2);
    int64_t rem = 0;
    assert_int_equal(gf_json_int(l, "metadata.remainingItemCount", &rem), 0);
    assert_int_equal(rem, 1);
    char target[1024];
    snprintf(target, sizeof(target), CM_PATH "?limit=2&continue=%s",
             str(l, "metadata.continue"));
    cJSON_Delete(l);
    l = req(&k, "GET", target, NULL, 200);
    assert_int_equal(items(l), 1);
    assert_null(gf_json_path(l, "metadata.continue"));
    cJSON_Delete(l);
    l = req(&k, "GET", CM_PATH "?limit=2&continue=%21%21", NULL, 400);
    assert_status(l, 400, "BadRequest");
    cJSON_Delete(l);
    /* deletecollection by selector answers with what it deleted. */
    l = req(&k, "DELETE", CM_PATH "?labelSelector=app%3Dx", NULL, 200);
    assert_int_equal(items(l), 2);
    cJSON_Delete(l);
    l = req(&k, "GET", CM_PATH, NULL, 200);
    assert_int_equal(items(l), 1);
    cJSON_Delete(l);
    ks_apitk_stop(&k);
}

static void test_delete_options(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    cJSON *o =
        req(&k, "POST", CM_PATH,
            "{\"metadata\":{\"name\":\"f\",\"finalizers\":[\"x/y\"]}}", 201);
    char uid[64];
    snprintf(uid, sizeof(uid), "%s", str(o, "metadata.uid"));
    cJSON_Delete(o);
    /* A uid precondition that does not match: 409. */
    o = req(&k, "DELETE", CM_PATH "/f",
            "{\"kind\":\"DeleteOptions\",\"apiVersion\":\"v1\","
            "\"preconditions\":{\"uid\":\"other\"}}",
            409);
    assert_status(o, 409, "Conflict");
    /* The storage layer's words, naming the kind (not the resource). */
    assert_non_null(strstr(str(o, "message"),
                           "Operation cannot be fulfilled on ConfigMap \"f\": "
                           "the UID in the precondition (other) does not "
                           "match the UID in record"));
    assert_string_equal(str(o, "details.kind"), "ConfigMap");
    cJSON_Delete(o);
    o = req(&k, "DELETE", CM_PATH "/f?propagationPolicy=Sideways", NULL, 422);
    assert_status(o, 422, "Invalid");
    cJSON_Delete(o);
    /* Dry run: nothing happens. */
    o = req(&k, "DELETE", CM_PATH "/f?dryRun=All", NULL, 200);
    cJSON_Delete(o);
    o = req(&k, "GET", CM_PATH "/f", NULL, 200);
    assert_null(gf_json_path(o, "metadata.deletionTimestamp"));
    cJSON_Delete(o);
    /* The finalizer holds the object: 200 with deletionTimestamp (202 only
     * when orphanDependents=false asks for it, as the server does). */
    char body[256];
    snprintf(body, sizeof(body),
             "{\"propagationPolicy\":\"Background\",\"gracePeriodSeconds\":0,"
             "\"preconditions\":{\"uid\":\"%s\"}}",
             uid);
    o = req(&k, "DELETE", CM_PATH "/f", body, 200);
    assert_non_null(gf_json_str(o, "metadata.deletionTimestamp"));
    cJSON_Delete(o);
    /* Removing the finalizer removes the object. */
    int code;
    o = ks_apitk_json(&k, "PATCH", CM_PATH "/f", "application/merge-patch+json",
                      "{\"metadata\":{\"finalizers\":null}}", &code);
    assert_int_equal(code, 200);
    cJSON_Delete(o);
    o = req(&k, "GET", CM_PATH "/f", NULL, 404);
    cJSON_Delete(o);
    ks_apitk_stop(&k);
}

static char *uid_of(const cJSON *o)
{
    return gf_strdup(str(o, "metadata.uid"));
}

/* Garbage collection through the API: a Job owns a ConfigMap. */
static void test_owner_propagation(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    static const char *const policies[] = {"Foreground", "Background", NULL};
    for (size_t i = 0; i < 3; i++) {
        cJSON *o = req(
            &k, "POST", JOB_PATH,
            "{\"metadata\":{\"name\":\"owner\"},\"spec\":{"
            "\"template\":{\"spec\":{\"restartPolicy\":\"Never\","
            "\"containers\":[{\"name\":\"c\",\"image\":\"busybox:1.36\"}]}}}}",
            201);
        char *uid = uid_of(o);
        cJSON_Delete(o);
        char body[512];
        snprintf(body, sizeof(body),
                 "{\"metadata\":{\"name\":\"dep\",\"ownerReferences\":[{"
                 "\"apiVersion\":\"batch/v1\",\"kind\":\"Job\",\"name\":"
                 "\"owner\",\"uid\":\"%s\",\"blockOwnerDeletion\":true}]}}",
                 uid);
        cJSON_Delete(req(&k, "POST", CM_PATH, body, 201));
        gf_free(uid);
        char target[256];
        if (policies[i] != NULL)
            snprintf(target, sizeof(target),
                     JOB_PATH "/owner?propagationPolicy=%s", policies[i]);
        else
            snprintf(target, sizeof(target), JOB_PATH "/owner");
        int code;
        cJSON_Delete(ks_apitk_json(&k, "DELETE", target, NULL, NULL, &code));
        assert_int_equal(code, 200);
        cJSON_Delete(req(&k, "GET", JOB_PATH "/owner", NULL, 404));
        if (policies[i] != NULL) {
            /* Foreground and Background both collect the dependent. */
            cJSON_Delete(req(&k, "GET", CM_PATH "/dep", NULL, 404));
        } else {
            /* batch/v1 Jobs orphan by default: the reference goes. */
            o = req(&k, "GET", CM_PATH "/dep", NULL, 200);
            assert_null(gf_json_path(o, "metadata.ownerReferences"));
            cJSON_Delete(o);
            cJSON_Delete(req(&k, "DELETE", CM_PATH "/dep", NULL, 200));
        }
    }
    /* orphanDependents=false on an object held by a finalizer: 202. */
    cJSON_Delete(req(&k, "POST", CM_PATH,
                     "{\"metadata\":{\"name\":\"h\",\"finalizers\":[\"a/b\"]}}",
                     201));
    cJSON *o =
        req(&k, "DELETE", CM_PATH "/h", "{\"orphanDependents\":false}", 202);
    assert_non_null(gf_json_str(o, "metadata.deletionTimestamp"));
    cJSON_Delete(o);
    ks_apitk_stop(&k);
}

/* Objects stored by in-process controllers without TypeMeta are served
 * with it, as the server always sends it. */
static void test_type_meta_filled(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    struct gf_ks_store *st = gf_ks_api_store(k.api);
    const struct gf_ks_rtype *t = gf_ks_store_type(st, "batch", "jobs");
    cJSON *in = cJSON_Parse("{\"metadata\":{\"name\":\"bare\",\"labels\":"
                            "{\"kind\":\"x\"}},\"spec\":{\"kind\":\"y\"}}");
    assert_int_equal(
        gf_ks_store_create(st, t, "default", in, GF_KS_MAIN, NULL, NULL), 0);
    cJSON_Delete(in);
    struct ks_apitk_resp r;
    ks_apitk_resp_init(&r);
    ks_apitk_do(&k, &r, "GET", JOB_PATH "?watch=1", NULL, NULL, NULL);
    cJSON *o = req(&k, "GET", JOB_PATH "/bare", NULL, 200);
    assert_string_equal(str(o, "kind"), "Job");
    assert_string_equal(str(o, "apiVersion"), "batch/v1");
    assert_string_equal(str(o, "spec.kind"), "y");
    cJSON_Delete(o);
    o = req(&k, "GET", JOB_PATH, NULL, 200);
    const cJSON *item = cJSON_GetArrayItem(gf_json_path(o, "items"), 0);
    assert_string_equal(str(item, "kind"), "Job");
    cJSON_Delete(o);
    cJSON *e = ks_apitk_event(&r, 0);
    assert_string_equal(str(e, "object.kind"), "Job");
    cJSON_Delete(e);
    ks_apitk_resp_free(&r);
    /* Objects written through the API carry it already (no rewrite). */
    o = req(&k, "POST", CM_PATH, "{\"metadata\":{\"name\":\"c\"}}", 201);
    assert_string_equal(str(o, "kind"), "ConfigMap");
    cJSON_Delete(o);
    ks_apitk_stop(&k);
}

static void test_dry_run_create(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    cJSON *o = req(&k, "POST", CM_PATH "?dryRun=All",
                   "{\"metadata\":{\"name\":\"d\"}}", 201);
    assert_string_equal(str(o, "kind"), "ConfigMap");
    cJSON_Delete(o);
    o = req(&k, "GET", CM_PATH "/d", NULL, 404);
    cJSON_Delete(o);
    o = req(&k, "POST", CM_PATH "?dryRun=Some",
            "{\"metadata\":{\"name\":\"d\"}}", 400);
    cJSON_Delete(o);
    ks_apitk_stop(&k);
}

/* ---- authorization ------------------------------------------------------ */

struct seen_attrs {
    int calls;
    char last[512];
};

static int deny_deletes(void *data, const struct gf_ks_authz_attrs *a,
                        struct gf_ks_status *err)
{
    struct seen_attrs *s = data;
    s->calls++;
    snprintf(s->last, sizeof(s->last), "%s|%s|%s|%s|%s|%s|%s|%s|%s", a->user,
             a->verb, a->api_group, a->api_version,
             a->resource != NULL ? a->resource : "<nil>", a->subresource, a->ns,
             a->name, a->path);
    if (strcmp(a->verb, "delete") != 0)
        return 0;
    return gf_ks_status_set(err, 403, "Forbidden",
                            "%s is forbidden: User \"%s\" cannot delete",
                            a->resource, a->user);
}

static void test_authorizer(void **state)
{
    (void)state;
    struct seen_attrs s = {0};
    struct gf_ks_api_opts o = {.authorize = deny_deletes, .authorize_data = &s};
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, &o);
    k.user = "alice";
    static const struct {
        const char *method, *target, *attrs;
    } cases[] = {
        {"GET", JOB_PATH "/j/status",
         "alice|get|batch|v1|jobs|status|default|j|" JOB_PATH "/j/status"},
        {"GET", JOB_PATH "?watch=true",
         "alice|watch|batch|v1|jobs||default||" JOB_PATH},
        {"GET", "/api/v1/watch/namespaces/default/configmaps",
         "alice|watch||v1|configmaps||default||"
         "/api/v1/watch/namespaces/default/configmaps"},
        {"GET", "/apis/batch/v1/jobs",
         "alice|list|batch|v1|jobs||||"
         "/apis/batch/v1/jobs"},
        {"GET", "/api/v1/namespaces/kube-system",
         "alice|get||v1|namespaces||kube-system|kube-system|"
         "/api/v1/namespaces/kube-system"},
        {"DELETE", CM_PATH,
         "alice|deletecollection||v1|configmaps||default||" CM_PATH},
        {"GET", "/apis", "alice|get|||<nil>||||/apis"},
        {"GET", "/healthz", "alice|get|||<nil>||||/healthz"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ks_apitk_resp r;
        ks_apitk_resp_init(&r);
        ks_apitk_do(&k, &r, cases[i].method, cases[i].target, NULL, NULL, NULL);
        ks_apitk_resp_free(&r);
        assert_string_equal(s.last, cases[i].attrs);
    }
    /* A method without a verb is refused before the authorizer. */
    int code;
    cJSON *j = ks_apitk_json(&k, "OPTIONS", CM_PATH, NULL, NULL, &code);
    assert_int_equal(code, 405);
    cJSON_Delete(j);
    j = ks_apitk_json(&k, "DELETE", CM_PATH "/x", NULL, NULL, &code);
    assert_int_equal(code, 403);
    assert_status(j, 403, "Forbidden");
    assert_string_equal(str(j, "message"),
                        "configmaps is forbidden: User \"alice\" cannot "
                        "delete");
    cJSON_Delete(j);
    assert_int_equal(s.calls, (int)(sizeof(cases) / sizeof(cases[0])) + 1);
    ks_apitk_stop(&k);
}

static const char q_cont[] =
    "?limit=1&continue="
    "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MSwic3RhcnQiOiIifQ==";
static const char b_ns[] =
    "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":"
    "{\"name\":\"t\"}}";
static const char b_del[] =
    "{\"propagationPolicy\":\"Foreground\",\"preconditions\":{\"uid\":"
    "\"\"}}";
static const char b_widget[] =
    "{\"metadata\":{\"name\":\"t\"},\"spec\":{\"size\":1,\"tags\":[\"a\"]},"
    "\"status\":{\"ok\":true}}";

/* Checks the attributes' contract on every call; denies one verb. */
static int strict_authorizer(void *data, const struct gf_ks_authz_attrs *a,
                             struct gf_ks_status *err)
{
    int *calls = data;
    (*calls)++;
    assert_non_null(a->user);
    assert_non_null(a->verb);
    assert_non_null(a->api_group);
    assert_non_null(a->api_version);
    assert_non_null(a->subresource);
    assert_non_null(a->ns);
    assert_non_null(a->name);
    assert_non_null(a->path);
    if (strcmp(a->verb, "deletecollection") == 0)
        return gf_ks_status_set(err, 403, "Forbidden", "no");
    return 0;
}

/* xorshift64: a fixed sequence, so a failure replays. */
static size_t pick(uint64_t *x, size_t n)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return (size_t)(*x % n);
}

/*
 * Thousands of requests assembled from plausible and hostile pieces (a
 * fixed pseudo-random sequence): every one is answered exactly once (the
 * kit asserts it), streams are cancelled, nothing leaks, nothing crashes
 * (run under ASan by `make asan`).
 */
static void test_request_torture(void **state)
{
    (void)state;
    static const char *const methods[] = {"GET",    "POST", "PUT",    "PATCH",
                                          "DELETE", "HEAD", "OPTIONS"};
    static const char *const paths[] = {
        "/api/v1/namespaces/default/configmaps",
        "/api/v1/namespaces/default/configmaps/t",
        "/api/v1/namespaces/default/configmaps/t/status",
        "/api/v1/namespaces",
        "/api/v1/namespaces/default",
        "/api/v1/namespaces/default/status",
        "/api/v1/namespaces/default/finalize",
        "/apis/batch/v1/namespaces/default/jobs/t/status",
        "/apis/batch/v1/jobs",
        "/api/v1/watch/namespaces/default/configmaps",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/x",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        "/api",
        "/apis/",
        "/api//v1///namespaces/",
        "/apis/%zz/v1/x",
        "/api/v1/namespaces/default/pods/p",
        "/openapi/v3/api/v1",
        "/version",
        "",
        "/a/b/c/d/e/f/g/h/i/j/k/l/m/n",
        "/apis/example.io/v1/namespaces/default/widgets",
        "/apis/example.io/v1/namespaces/default/widgets/t",
        "/apis/example.io/v1/namespaces/default/widgets/t/status",
        "/apis/example.io/v1beta1/widgets",
    };
    static const char *const queries[] = {
        "",
        "?watch=1",
        "?watch=true&resourceVersion=1&allowWatchBookmarks=true",
        "?labelSelector=a%3Db,c+notin+(d)",
        "?labelSelector=%28",
        "?fieldSelector=metadata.name!%3Dt",
        q_cont,
        "?limit=-5",
        "?dryRun=All",
        "?propagationPolicy=Orphan",
        "?fieldValidation=Strict",
        "?includeObject=Object&",
        "?=&&=x&%",
        "?timeoutSeconds=0&watch=1",
    };
    static const char *const ctypes[] = {
        NULL,
        "application/json",
        "application/merge-patch+json",
        "application/json-patch+json",
        "application/strategic-merge-patch+json",
        "application/apply-patch+yaml",
        "application/yaml",
        "application/vnd.kubernetes.protobuf",
        "text/plain",
    };
    static const char *const bodies[] = {
        NULL,
        "",
        "{}",
        "[]",
        "null",
        "{\"metadata\":{\"name\":\"t\"},\"data\":{\"a\":\"b\"}}",
        "{\"metadata\":{\"name\":\"t\",\"resourceVersion\":\"1\"}}",
        b_ns,
        "[{\"op\":\"add\",\"path\":\"/metadata/labels\",\"value\":{}}]",
        "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/a/b\"}]",
        "{\"metadata\":{\"finalizers\":[\"x/y\"]}}",
        "{\"metadata\":{\"finalizers\":null},\"$patch\":\"replace\"}",
        "metadata:\n  name: t\n  labels: {a: b}\n",
        "a: [\n",
        "k8s\x01\x02",
        b_del,
        "{\"spec\":{\"group\":\"x.io\",\"names\":{\"plural\":\"x\"}}}",
        b_widget,
        "{\"metadata\":{\"name\":\"t\"},\"spec\":{\"size\":\"x\",\"tags\":7}}",
        "{\"spec\":{\"size\":null,\"extra\":{\"deep\":[1,2]}}}",
    };
    static const char *const accepts[] = {
        NULL, "application/json",
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"};
    int authz_calls = 0;
    struct gf_ks_api_opts opts = {.authorize = strict_authorizer,
                                  .authorize_data = &authz_calls};
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, &opts);
    static const char widgets[] =
        "apiVersion: apiextensions.k8s.io/v1\n"
        "kind: CustomResourceDefinition\n"
        "metadata: {name: widgets.example.io}\n"
        "spec:\n  group: example.io\n  scope: Namespaced\n"
        "  names: {plural: widgets, kind: Widget}\n"
        "  versions:\n"
        "  - name: v1beta1\n    served: true\n    storage: false\n"
        "    schema: {openAPIV3Schema: {type: object, "
        "x-kubernetes-preserve-unknown-fields: true}}\n"
        "  - name: v1\n    served: true\n    storage: true\n"
        "    subresources: {status: {}}\n"
        "    additionalPrinterColumns:\n"
        "    - {name: Size, type: integer, jsonPath: .spec.size}\n"
        "    - {name: Tags, type: string, jsonPath: '.spec.tags[*]'}\n"
        "    - {name: Ok, type: boolean, jsonPath: "
        "\".status.conditions[?(@.type=='A')].status\"}\n"
        "    schema:\n      openAPIV3Schema:\n        type: object\n"
        "        properties:\n          spec:\n            type: object\n"
        "            properties:\n              size: {type: integer}\n"
        "              tags: {type: array, items: {type: string}}\n"
        "          status: {type: object, "
        "x-kubernetes-preserve-unknown-fields: "
        "true}\n";
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    assert_int_equal(
        gf_ks_api_apply_yaml(k.api, widgets, strlen(widgets), &err), 0);
    uint64_t x = 88172645463325252ULL;
#define NEXT(n) pick(&x, (n))
#define N(a) (sizeof(a) / sizeof((a)[0]))
    for (int i = 0; i < 20000; i++) {
        char target[1024];
        snprintf(target, sizeof(target), "%s%s", paths[NEXT(N(paths))],
                 queries[NEXT(N(queries))]);
        const char *method = methods[NEXT(N(methods))];
        const char *ct = ctypes[NEXT(N(ctypes))];
        const char *body = bodies[NEXT(N(bodies))];
        const char *accept = accepts[NEXT(N(accepts))];
        struct ks_apitk_resp r;
        ks_apitk_resp_init(&r);
        ks_apitk_do(&k, &r, method, target, ct, accept, body);
        if (!r.streaming)
            assert_true(r.code >= 200 && r.code < 600);
        /* Let deferred ends run, then drop the stream. */
        gf_clock_advance(&k.clock, 0);
        ks_apitk_resp_free(&r);
    }
#undef NEXT
#undef N
    assert_int_equal(gf_ks_api_calls(k.api), 0);
    assert_true(authz_calls > 10000);
    gf_ks_status_clear(&err);
    ks_apitk_stop(&k);
}

int main(void)
{
    gf_kube_global_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_get_update_delete),
        cmocka_unit_test(test_create_rules),
        cmocka_unit_test(test_routing_errors),
        cmocka_unit_test(test_patch_types),
        cmocka_unit_test(test_status_subresource),
        cmocka_unit_test(test_list_selectors_paging),
        cmocka_unit_test(test_delete_options),
        cmocka_unit_test(test_owner_propagation),
        cmocka_unit_test(test_type_meta_filled),
        cmocka_unit_test(test_dry_run_create),
        cmocka_unit_test(test_authorizer),
        cmocka_unit_test(test_request_torture),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_kube_global_cleanup();
    return rc;
}
