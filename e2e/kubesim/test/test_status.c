/*
 * Tests for kubesim/status: Status bodies byte-for-byte as the API server
 * writes them for the failures clients key on (NotFound, AlreadyExists,
 * Conflict, Invalid with causes, Expired), and the error-code mapping.
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
#include "common/err.h"
#include "e2e/kubesim/status.h"
#include "kubeclient/global.h"
#include "kubeclient/request.h"

static int64_t baseline;

static void assert_body(const struct gf_ks_status *st, const char *want)
{
    cJSON *j = gf_ks_status_to_json(st);
    char *s = cJSON_PrintUnformatted(j);
    assert_string_equal(s, want);
    gf_free(s);
    cJSON_Delete(j);
}

static void test_bodies(void **state)
{
    (void)state;
    struct gf_ks_status st;
    gf_ks_status_init(&st);
    assert_int_equal(gf_ks_status_not_found(&st, "batch", "jobs", "x"),
                     GF_ENOTFOUND);
    assert_body(&st, "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":"
                     "{},\"status\":\"Failure\",\"message\":\"jobs.batch "
                     "\\\"x\\\" not found\",\"reason\":\"NotFound\","
                     "\"details\":{\"name\":\"x\",\"group\":\"batch\","
                     "\"kind\":\"jobs\"},\"code\":404}");
    assert_int_equal(gf_ks_status_not_found(&st, "", "pods", "p"),
                     GF_ENOTFOUND);
    assert_body(&st, "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":"
                     "{},\"status\":\"Failure\",\"message\":\"pods \\\"p\\\" "
                     "not found\",\"reason\":\"NotFound\",\"details\":{"
                     "\"name\":\"p\",\"kind\":\"pods\"},\"code\":404}");
    assert_int_equal(
        gf_ks_status_already_exists(&st, "kueue.x-k8s.io", "workloads", "w"),
        GF_EEXIST);
    assert_int_equal(st.code, 409);
    assert_string_equal(st.reason, "AlreadyExists");
    assert_string_equal(st.message,
                        "workloads.kueue.x-k8s.io \"w\" already exists");
    assert_int_equal(gf_ks_status_conflict(&st, "", "configmaps", "c",
                                           "the object has been modified"),
                     GF_ECONFLICT);
    assert_string_equal(st.message, "Operation cannot be fulfilled on "
                                    "configmaps \"c\": the object has been "
                                    "modified");
    /* Invalid with causes; set() starts afresh and frees old causes. */
    gf_ks_status_cause(&st, "FieldValueRequired", "Required value", "spec.x");
    assert_int_equal(
        gf_ks_status_set(&st, 422, "Invalid", "W \"%s\" is %s", "w", "invalid"),
        GF_EINVALID);
    assert_null(st.causes);
    gf_ks_status_details(&st, "w", "g", "W");
    gf_ks_status_cause(&st, "FieldValueRequired", "Required value", "spec.x");
    assert_body(&st, "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":"
                     "{},\"status\":\"Failure\",\"message\":\"W \\\"w\\\" is "
                     "invalid\",\"reason\":\"Invalid\",\"details\":{\"name\":"
                     "\"w\",\"group\":\"g\",\"kind\":\"W\",\"causes\":[{"
                     "\"reason\":\"FieldValueRequired\",\"message\":"
                     "\"Required value\",\"field\":\"spec.x\"}]},\"code\":"
                     "422}");
    /* 410 Expired, as a watch ERROR event carries it; Retry-After. */
    gf_ks_status_set(&st, 410, "Expired", "too old resource version: 1 (5)");
    assert_body(&st, "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":"
                     "{},\"status\":\"Failure\",\"message\":\"too old "
                     "resource version: 1 (5)\",\"reason\":\"Expired\","
                     "\"code\":410}");
    gf_ks_status_set(&st, 429, "TooManyRequests", "slow down");
    st.retry_after = 3;
    cJSON *j = gf_ks_status_to_json(&st);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "details"),
                                         "retryAfterSeconds")
                         ->valueint,
                     3);
    cJSON_Delete(j);
    /* Messages are capped, never overflowed. */
    char big[3000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    gf_ks_status_set(&st, 400, "BadRequest", "%s", big);
    assert_int_equal(strlen(st.message), sizeof(st.message) - 1);
    gf_ks_status_details(&st, big, big, big);
    assert_int_equal(strlen(st.name), sizeof(st.name) - 1);
    j = gf_ks_status_success();
    char *s = cJSON_PrintUnformatted(j);
    assert_string_equal(s, "{\"kind\":\"Status\",\"apiVersion\":\"v1\","
                           "\"metadata\":{},\"status\":\"Success\"}");
    gf_free(s);
    cJSON_Delete(j);
    gf_ks_status_clear(&st);
    gf_ks_status_clear(NULL);
    /* A NULL status still maps the code. */
    assert_int_equal(gf_ks_status_set(NULL, 409, "Conflict", "x"),
                     GF_ECONFLICT);
    assert_int_equal(gf_alloc_live(), baseline);
}

/* kubesim's answer, decoded by kubeclient, means what kubesim meant:
 * one mapping (common/err.h) on both sides of the wire. */
static void test_code_mapping(void **state)
{
    (void)state;
    static const struct {
        int code;
        const char *reason;
        int err;
    } map[] = {
        {400, "BadRequest", GF_EINVALID},
        {401, "Unauthorized", GF_EUNAUTH},
        {403, "Forbidden", GF_EFORBIDDEN},
        {404, "NotFound", GF_ENOTFOUND},
        {405, "MethodNotAllowed", -EOPNOTSUPP},
        {408, "Timeout", GF_ETIMEDOUT},
        {409, "Conflict", GF_ECONFLICT},
        {409, "AlreadyExists", GF_EEXIST},
        {410, "Expired", GF_EGONE},
        {413, "RequestEntityTooLarge", GF_EAPI},
        {422, "Invalid", GF_EINVALID},
        {429, "TooManyRequests", GF_ETHROTTLED},
        {500, "InternalError", GF_ESERVER},
        {503, "ServiceUnavailable", GF_ESERVER},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        struct gf_ks_status st;
        gf_ks_status_init(&st);
        int rc = gf_ks_status_set(&st, map[i].code, map[i].reason, "m");
        if (rc != map[i].err)
            fail_msg("%d %s: %d, want %d", map[i].code, map[i].reason, rc,
                     map[i].err);
        cJSON *j = gf_ks_status_to_json(&st);
        char *body = cJSON_PrintUnformatted(j);
        struct gf_api_status got;
        assert_int_equal(
            gf_api_status_decode(body, strlen(body), st.code, 0, &got), rc);
        gf_free(body);
        cJSON_Delete(j);
        gf_ks_status_clear(&st);
    }
    assert_int_equal(gf_alloc_live(), baseline);
}

int main(void)
{
    gf_kube_global_init();
    baseline = gf_alloc_live();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bodies),
        cmocka_unit_test(test_code_mapping),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_kube_global_cleanup();
    return rc;
}
