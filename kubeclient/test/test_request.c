/*
 * Tests for kubeclient/request's pure parts: resource names as kubectl
 * reads them, URL paths, and the decoding and classification of every
 * failure answer (what the reflector and the controller act on: back
 * off, requeue, relist, or give up).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/err.h"
#include "kubeclient/request.h"

static int64_t baseline;

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(gf_alloc_live(), baseline);
    return 0;
}

struct res_case {
    const char *name;
    int rc;
    const char *group, *version, *plural;
    bool namespaced;
};

static void test_resource_names_as_kubectl_reads_them(void **state)
{
    (void)state;
    static const struct res_case cases[] = {
        {"pods", 0, "", "v1", "pods", true},
        {"po", 0, "", "v1", "pods", true},
        {"ns", 0, "", "v1", "namespaces", false},
        {"jobs.batch", 0, "batch", "v1", "jobs", true},
        {"workloads.kueue.x-k8s.io", 0, "kueue.x-k8s.io", "v1beta2",
         "workloads", true},
        {"wl", 0, "kueue.x-k8s.io", "v1beta2", "workloads", true},
        {"clusterqueues.kueue.x-k8s.io", 0, "kueue.x-k8s.io", "v1beta2",
         "clusterqueues", false},
        /* an explicit version overrides the known one */
        {"workloads.v1beta1.kueue.x-k8s.io", 0, "kueue.x-k8s.io", "v1beta1",
         "workloads", true},
        /* core events shadow events.k8s.io, as kubectl's priority does */
        {"events", 0, "", "v1", "events", true},
        {"events.events.k8s.io", 0, "events.k8s.io", "v1", "events", true},
        /* unknown group: needs a version, then assumed namespaced */
        {"widgets.example.com", -ENOENT, NULL, NULL, NULL, false},
        {"widgets.v2.example.com", 0, "example.com", "v2", "widgets", true},
        {"nosuchthing", -ENOENT, NULL, NULL, NULL, false},
        {"", -EINVAL, NULL, NULL, NULL, false},
        {".batch", -EINVAL, NULL, NULL, NULL, false},
        {"jobs.", -EINVAL, NULL, NULL, NULL, false},
        {"jobs/batch", -EINVAL, NULL, NULL, NULL, false},
        {"a-plural-name-that-is-far-too-long-to-be-any-real-resource-plural",
         -EINVAL, NULL, NULL, NULL, false},
        {"widgets.v1234567890123456789012345678901234567890.example.com",
         -EINVAL, NULL, NULL, NULL, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct res_case *c = &cases[i];
        struct gf_kube_resource r;
        int rc = gf_kube_resource_parse(c->name, &r);
        if (rc != c->rc)
            fail_msg("%s: rc %d, want %d", c->name, rc, c->rc);
        if (rc != 0)
            continue;
        assert_string_equal(r.group, c->group);
        assert_string_equal(r.version, c->version);
        assert_string_equal(r.plural, c->plural);
        assert_int_equal(r.namespaced, c->namespaced);
    }
    assert_int_equal(gf_kube_resource_parse(NULL, NULL), -EINVAL);
}

static void test_paths(void **state)
{
    (void)state;
    struct gf_kube_resource wl, ns, pod;
    assert_int_equal(gf_kube_resource_parse("workloads.kueue.x-k8s.io", &wl),
                     0);
    assert_int_equal(gf_kube_resource_parse("namespaces", &ns), 0);
    assert_int_equal(gf_kube_resource_parse("pods", &pod), 0);
    struct gf_buf b = GF_BUF_INIT(1024);
    assert_int_equal(gf_kube_path(&b, &wl, "team-a", "wl-1", "status"), 0);
    assert_string_equal(gf_buf_cstr(&b),
                        "/apis/kueue.x-k8s.io/v1beta2/namespaces/team-a/"
                        "workloads/wl-1/status");
    gf_buf_reset(&b);
    assert_int_equal(gf_kube_path(&b, &wl, NULL, NULL, NULL), 0);
    assert_string_equal(gf_buf_cstr(&b), "/apis/kueue.x-k8s.io/v1beta2/"
                                         "workloads");
    gf_buf_reset(&b);
    assert_int_equal(gf_kube_path(&b, &ns, "ignored", "default", NULL), 0);
    assert_string_equal(gf_buf_cstr(&b), "/api/v1/namespaces/default");
    gf_buf_reset(&b);
    /* a named object of a namespaced type needs its namespace */
    assert_int_equal(gf_kube_path(&b, &pod, NULL, "p", NULL), -EINVAL);
    /* a subresource needs an object */
    assert_int_equal(gf_kube_path(&b, &pod, "d", NULL, "status"), -EINVAL);
    /* segments are escaped: no path traversal through a name */
    gf_buf_reset(&b);
    assert_int_equal(gf_kube_path(&b, &pod, "d", "../x", NULL), 0);
    assert_null(strstr(gf_buf_cstr(&b), "/../"));
    gf_buf_free(&b);
}

struct st_case {
    long code;
    const char *body;
    uint64_t retry_after_ms;
    int err;
    enum gf_api_class cls;
    const char *reason;
    uint64_t want_retry_ms;
};

#define STATUS(code, reason, extra)                                            \
    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\","       \
    "\"message\":\"m\",\"reason\":\"" reason "\",\"code\":" #code extra "}"

static void test_every_failure_is_classified(void **state)
{
    (void)state;
    static const struct st_case cases[] = {
        /* relist */
        {410, STATUS(410, "Expired", ""), 0, GF_EGONE, GF_API_RELIST, "Expired",
         0},
        {410, NULL, 0, GF_EGONE, GF_API_RELIST, "Expired", 0},
        /* requeue */
        {409, STATUS(409, "Conflict", ""), 0, GF_ECONFLICT, GF_API_REQUEUE,
         "Conflict", 0},
        {409, STATUS(409, "AlreadyExists", ""), 0, GF_EEXIST, GF_API_REQUEUE,
         "AlreadyExists", 0},
        /* back off, with Retry-After from the header or the body */
        {429, STATUS(429, "TooManyRequests", ""), 7000, GF_ETHROTTLED,
         GF_API_BACKOFF, "TooManyRequests", 7000},
        {429,
         STATUS(429, "TooManyRequests",
                ",\"details\":{\"retryAfterSeconds\":3}"),
         0, GF_ETHROTTLED, GF_API_BACKOFF, "TooManyRequests", 3000},
        {500, "<html>oops</html>", 0, GF_ESERVER, GF_API_BACKOFF,
         "InternalError", 0},
        {503, NULL, 2000, GF_ESERVER, GF_API_BACKOFF, "ServiceUnavailable",
         2000},
        {401, STATUS(401, "Unauthorized", ""), 0, GF_EUNAUTH, GF_API_BACKOFF,
         "Unauthorized", 0},
        /* a 5xx backs off even when its body claims Expired */
        {500, STATUS(500, "Expired", ""), 0, GF_ESERVER, GF_API_BACKOFF,
         "Expired", 0},
        /* terminal */
        {400, STATUS(400, "BadRequest", ""), 0, GF_EINVALID, GF_API_TERMINAL,
         "BadRequest", 0},
        {422, STATUS(422, "Invalid", ""), 0, GF_EINVALID, GF_API_TERMINAL,
         "Invalid", 0},
        /* Any 422 is terminal, whatever object or namespace it names and
         * whatever it says: preconditions come back as 409 (the patch
         * writes the expected resourceVersion; see gf_kube_patch_body). */
        {422,
         "{\"kind\":\"Status\",\"status\":\"Failure\",\"message\":"
         "\"Workload.kueue.x-k8s.io \\\"latest-1\\\" is invalid: "
         "spec.podSets: Required value\",\"reason\":\"Invalid\","
         "\"code\":422}",
         0, GF_EINVALID, GF_API_TERMINAL, "Invalid", 0},
        {422,
         "{\"kind\":\"Status\",\"status\":\"Failure\",\"message\":"
         "\"workloads.kueue.x-k8s.io \\\"w\\\" is forbidden: namespace "
         "test is terminating\",\"reason\":\"Invalid\",\"code\":422}",
         0, GF_EINVALID, GF_API_TERMINAL, "Invalid", 0},
        {422,
         "{\"kind\":\"Status\",\"status\":\"Failure\",\"message\":"
         "\"testing value /metadata/resourceVersion failed: test failed\","
         "\"reason\":\"Invalid\",\"code\":422}",
         0, GF_EINVALID, GF_API_TERMINAL, "Invalid", 0},
        {403, STATUS(403, "Forbidden", ""), 0, GF_EFORBIDDEN, GF_API_TERMINAL,
         "Forbidden", 0},
        {404, STATUS(404, "NotFound", ""), 0, GF_ENOTFOUND, GF_API_TERMINAL,
         "NotFound", 0},
        /* a success code with a Failure Status is still a failure */
        {200, STATUS(500, "InternalError", ""), 0, GF_EAPI, GF_API_TERMINAL,
         "InternalError", 0},
        {200, "{\"kind\":\"Status\",\"status\":\"Success\"}", 0, 0, GF_API_OK,
         "", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct st_case *c = &cases[i];
        struct gf_api_status st;
        int rc = gf_api_status_decode(c->body, c->body ? strlen(c->body) : 0,
                                      c->code, c->retry_after_ms, &st);
        if (rc != c->err || st.err != c->err || st.cls != c->cls)
            fail_msg("case %zu (%ld): err %d cls %s, want %d %s", i, c->code,
                     rc, gf_api_class_name(st.cls), c->err,
                     gf_api_class_name(c->cls));
        assert_string_equal(st.reason, c->reason);
        assert_int_equal(st.retry_after_ms, c->want_retry_ms);
        assert_int_equal(st.code, c->code);
    }
}

static void test_patch_preconditions_write_the_resource_version(void **state)
{
    (void)state;
    struct gf_buf b = GF_BUF_INIT(4096);
    const char *ops = "[{\"op\":\"add\",\"path\":\"/spec/active\","
                      "\"value\":false}]";
    assert_int_equal(
        gf_kube_patch_body(&b, GF_PATCH_JSON, ops, strlen(ops), "42"), 0);
    /* replace, not test: the server answers a lost race with 409. */
    assert_string_equal(gf_buf_cstr(&b),
                        "[{\"op\":\"replace\",\"path\":\"/metadata/"
                        "resourceVersion\",\"value\":\"42\"},{\"op\":"
                        "\"add\",\"path\":\"/spec/active\",\"value\":"
                        "false}]");
    gf_buf_free(&b);
    const char *merge = "{\"metadata\":{\"resourceVersion\":\"1\","
                        "\"labels\":{\"a\":\"b\"}}}";
    assert_int_equal(
        gf_kube_patch_body(&b, GF_PATCH_MERGE, merge, strlen(merge), "42"), 0);
    assert_string_equal(gf_buf_cstr(&b),
                        "{\"metadata\":{\"labels\":{\"a\":\"b\"},"
                        "\"resourceVersion\":\"42\"}}");
    gf_buf_free(&b);
    assert_int_equal(
        gf_kube_patch_body(&b, GF_PATCH_JSON, merge, strlen(merge), "42"),
        GF_EPARSE);
    gf_buf_free(&b);
}

static void test_watch_error_event_status(void **state)
{
    (void)state;
    /* A watch ERROR event carries the code only in the Status. */
    cJSON *o = cJSON_Parse(STATUS(410, "Expired", ""));
    struct gf_api_status st;
    assert_int_equal(gf_api_status_from_json(o, 0, 0, &st), GF_EGONE);
    assert_int_equal(st.code, 410);
    assert_int_equal(st.cls, GF_API_RELIST);
    cJSON_Delete(o);
    /* Old servers said Gone, without a code. */
    o = cJSON_Parse("{\"kind\":\"Status\",\"status\":\"Failure\","
                    "\"reason\":\"Gone\"}");
    assert_int_equal(gf_api_status_from_json(o, 0, 0, &st), GF_EGONE);
    cJSON_Delete(o);
    /* Long strings are cut, never overflow. */
    char body[3000];
    memset(body, 'x', sizeof(body));
    int n = snprintf(body, sizeof(body), "{\"message\":\"");
    body[n] = 'x'; /* snprintf's NUL */
    body[sizeof(body) - 3] = '"';
    body[sizeof(body) - 2] = '}';
    body[sizeof(body) - 1] = '\0';
    assert_true(n > 0);
    assert_int_equal(gf_api_status_decode(body, strlen(body), 404, 0, &st),
                     GF_ENOTFOUND);
    assert_int_equal(strlen(st.message), sizeof(st.message) - 1);
}

static void test_transport_failures_back_off(void **state)
{
    (void)state;
    static const int errs[] = {GF_ETRANSPORT, GF_ETLS, GF_ETIMEDOUT};
    for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
        struct gf_api_status st;
        gf_api_status_transport(errs[i], "connection refused", &st);
        assert_int_equal(st.err, errs[i]);
        assert_int_equal(st.cls, GF_API_BACKOFF);
        assert_int_equal(st.code, 0);
        assert_string_equal(st.message, "connection refused");
    }
}

int main(void)
{
    assert_int_equal(gf_alloc_global_init(), 0);
    baseline = gf_alloc_live();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_resource_names_as_kubectl_reads_them,
                                  teardown),
        cmocka_unit_test_teardown(test_paths, teardown),
        cmocka_unit_test_teardown(test_every_failure_is_classified, teardown),
        cmocka_unit_test_teardown(
            test_patch_preconditions_write_the_resource_version, teardown),
        cmocka_unit_test_teardown(test_watch_error_event_status, teardown),
        cmocka_unit_test_teardown(test_transport_failures_back_off, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_alloc_global_cleanup();
    return rc;
}
