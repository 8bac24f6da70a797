/*
 * Tests for the batch/v1 Job registry through the REST layer, against
 * what a real kube-apiserver v1.28 answers for the same requests: the
 * API defaults of a created Job and its pod template, the selector and
 * labels naming the Job's uid, restartPolicy validation, the immutable
 * spec.completions and spec.template with the exception for suspended
 * Jobs that never started, a PUT without the defaults changing nothing,
 * and Kueue's webhook suspending a queued Job in the create's answer.
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
#include "e2e/kubesim/test/api_testkit.h"
#include "e2e/kubesim/test/kueue_testkit.h"
#include "kubeclient/global.h"

#define JOBS "/apis/batch/v1/namespaces/default/jobs"
#define MERGE "application/merge-patch+json"
#define CONTAINER                                                              \
    "\"containers\":[{\"name\":\"c\",\"image\":\"busybox\",\"resources\":"     \
    "{\"limits\":{\"nvidia.com/gpu\":\"1\"}}}]"

static const char *or_null(const char *s)
{
    return s != NULL ? s : "(null)";
}
#define str(j, path) or_null(gf_json_str(j, path))

static cJSON *call(struct ks_apitk_cluster *k, const char *method,
                   const char *target, const char *ctype, const char *body,
                   int want)
{
    int code = 0;
    cJSON *j = ks_apitk_json(k, method, target, ctype, body, &code);
    if (code != want)
        fail_msg("%s %s: %d, want %d: %s", method, target, code, want,
                 str(j, "message"));
    return j;
}

static void expect_invalid(struct ks_apitk_cluster *k, const char *method,
                           const char *target, const char *ctype,
                           const char *body, const char *msg)
{
    cJSON *j = call(k, method, target, ctype, body, 422);
    assert_string_equal(str(j, "reason"), "Invalid");
    assert_string_equal(str(j, "message"), msg);
    assert_string_equal(str(j, "details.kind"), "Job");
    assert_string_equal(str(j, "details.group"), "batch");
    cJSON_Delete(j);
}

static int64_t num_at(const cJSON *node)
{
    int64_t v = -1;
    if (gf_json_as_int(node, &v) != 0)
        fail_msg("not an integer");
    return v;
}
#define num(j, path) num_at(gf_json_path(j, path))

static void test_create_defaults(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    cJSON *j =
        call(&k, "POST", JOBS, NULL,
             "{\"apiVersion\":\"batch/v1\",\"kind\":\"Job\",\"metadata\":"
             "{\"name\":\"j1\"},\"spec\":{\"template\":{\"spec\":{"
             "\"restartPolicy\":\"Never\"," CONTAINER "}}}}",
             201);
    const char *uid = str(j, "metadata.uid");
    assert_int_equal(num(j, "spec.parallelism"), 1);
    assert_int_equal(num(j, "spec.completions"), 1);
    assert_int_equal(num(j, "spec.backoffLimit"), 6);
    assert_string_equal(str(j, "spec.completionMode"), "NonIndexed");
    assert_true(cJSON_IsFalse(gf_json_path(j, "spec.suspend")));
    const cJSON *ml = gf_json_path(j, "spec.selector.matchLabels");
    assert_int_equal(cJSON_GetArraySize(ml), 1);
    assert_string_equal(gf_json_as_str(cJSON_GetObjectItemCaseSensitive(
                            ml, "batch.kubernetes.io/controller-uid")),
                        uid);
    const cJSON *tmpl = gf_json_path(j, "spec.template");
    const cJSON *labels = gf_json_path(tmpl, "metadata.labels");
    assert_int_equal(cJSON_GetArraySize(labels), 4);
    assert_string_equal(gf_json_label(tmpl, "batch.kubernetes.io/job-name"),
                        "j1");
    assert_string_equal(gf_json_label(tmpl, "job-name"), "j1");
    assert_string_equal(gf_json_label(tmpl, "controller-uid"), uid);
    assert_true(cJSON_IsNull(gf_json_path(tmpl, "metadata.creationTimestamp")));
    assert_int_equal(num(tmpl, "spec.terminationGracePeriodSeconds"), 30);
    assert_string_equal(str(tmpl, "spec.dnsPolicy"), "ClusterFirst");
    assert_string_equal(str(tmpl, "spec.schedulerName"), "default-scheduler");
    assert_true(cJSON_IsObject(gf_json_path(tmpl, "spec.securityContext")));
    const cJSON *c =
        cJSON_GetArrayItem(gf_json_path(tmpl, "spec.containers"), 0);
    assert_string_equal(str(c, "imagePullPolicy"), "Always");
    assert_string_equal(str(c, "terminationMessagePath"),
                        "/dev/termination-log");
    assert_string_equal(str(c, "terminationMessagePolicy"), "File");
    /* Template requests are not defaulted from limits (only Pods are). */
    assert_null(gf_json_path(c, "resources.requests"));
    /* A Job without labels of its own shows its template's. */
    assert_string_equal(gf_json_label(j, "batch.kubernetes.io/controller-uid"),
                        uid);
    assert_string_equal(gf_json_label(j, "job-name"), "j1");
    assert_true(cJSON_IsObject(gf_json_path(j, "status")));
    assert_int_equal(cJSON_GetArraySize(gf_json_path(j, "status")), 0);
    cJSON_Delete(j);
    /* A tagged image is pulled if not present; a parallelism alone
     * leaves completions unset. */
    j = call(&k, "POST", JOBS, NULL,
             "{\"metadata\":{\"name\":\"j2\"},\"spec\":{\"parallelism\":3,"
             "\"template\":{\"spec\":{\"restartPolicy\":\"OnFailure\","
             "\"containers\":[{\"name\":\"c\",\"image\":"
             "\"registry:5000/busybox:1.36\"}]}}}}",
             201);
    assert_null(gf_json_path(j, "spec.completions"));
    assert_int_equal(num(j, "spec.parallelism"), 3);
    assert_string_equal(
        str(cJSON_GetArrayItem(gf_json_path(j, "spec.template.spec.containers"),
                               0),
            "imagePullPolicy"),
        "IfNotPresent");
    /* Containers always show resources, empty or not. */
    assert_true(cJSON_IsObject(gf_json_path(
        cJSON_GetArrayItem(gf_json_path(j, "spec.template.spec.containers"), 0),
        "resources")));
    cJSON_Delete(j);
    ks_apitk_stop(&k);
}

static void test_restart_policy(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    const char *msg = "Job.batch \"j\" is invalid: "
                      "spec.template.spec.restartPolicy: Required value: "
                      "valid values: \"OnFailure\", \"Never\"";
    expect_invalid(&k, "POST", JOBS, NULL,
                   "{\"metadata\":{\"name\":\"j\"},\"spec\":{\"template\":{"
                   "\"spec\":{" CONTAINER "}}}}",
                   msg);
    expect_invalid(&k, "POST", JOBS, NULL,
                   "{\"metadata\":{\"name\":\"j\"},\"spec\":{\"template\":{"
                   "\"spec\":{\"restartPolicy\":\"Always\"," CONTAINER "}}}}",
                   msg);
    ks_apitk_stop(&k);
}

static void test_update_rules(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    cJSON *j = call(&k, "POST", JOBS, NULL,
                    "{\"metadata\":{\"name\":\"j\"},\"spec\":{\"template\":{"
                    "\"spec\":{\"restartPolicy\":\"Never\"," CONTAINER "}}}}",
                    201);
    cJSON_Delete(j);
    expect_invalid(&k, "PATCH", JOBS "/j", MERGE,
                   "{\"spec\":{\"completions\":2}}",
                   "Job.batch \"j\" is invalid: spec.completions: Invalid "
                   "value: 2: field is immutable");
    const char *tmsg = "Job.batch \"j\" is invalid: spec.template: Invalid "
                       "value: core.PodTemplateSpec{...}: field is immutable";
    /* Running (not suspended): not even the nodeSelector may change. */
    expect_invalid(&k, "PATCH", JOBS "/j", MERGE,
                   "{\"spec\":{\"template\":{\"spec\":{\"nodeSelector\":{"
                   "\"gpu\":\"a100\"}}}}}",
                   tmsg);
    j = call(&k, "PATCH", JOBS "/j", MERGE, "{\"spec\":{\"suspend\":true}}",
             200);
    cJSON_Delete(j);
    /* Suspended and never started: scheduling directives may change. */
    j = call(&k, "PATCH", JOBS "/j", MERGE,
             "{\"spec\":{\"template\":{\"metadata\":{\"labels\":{\"x\":"
             "\"y\"}},\"spec\":{\"nodeSelector\":{\"gpu\":\"a100\"},"
             "\"tolerations\":[{\"key\":\"nvidia.com/gpu\",\"operator\":"
             "\"Exists\"}]}}}}",
             200);
    assert_string_equal(str(j, "spec.template.spec.nodeSelector.gpu"), "a100");
    cJSON_Delete(j);
    /* ... but not the containers. */
    expect_invalid(&k, "PATCH", JOBS "/j", MERGE,
                   "{\"spec\":{\"template\":{\"spec\":{\"containers\":[{"
                   "\"name\":\"c\",\"image\":\"busybox:2\"}]}}}}",
                   tmsg);
    /* Once started, the exception ends. */
    j = call(&k, "PATCH", JOBS "/j/status", MERGE,
             "{\"status\":{\"startTime\":\"2026-01-01T00:00:00Z\"}}", 200);
    cJSON_Delete(j);
    expect_invalid(&k, "PATCH", JOBS "/j", MERGE,
                   "{\"spec\":{\"template\":{\"spec\":{\"nodeSelector\":"
                   "null}}}}",
                   tmsg);
    /* A PUT of the Job without its defaults is defaulted again: no
     * change to the template, no error. */
    j = call(&k, "GET", JOBS "/j", NULL, NULL, 200);
    cJSON *c =
        cJSON_GetArrayItem(gf_json_path(j, "spec.template.spec.containers"), 0);
    cJSON_DeleteItemFromObjectCaseSensitive(c, "imagePullPolicy");
    cJSON *ps = (cJSON *)gf_json_path(j, "spec.template.spec");
    cJSON_DeleteItemFromObjectCaseSensitive(ps, "dnsPolicy");
    cJSON_DeleteItemFromObjectCaseSensitive((cJSON *)gf_json_path(j, "spec"),
                                            "backoffLimit");
    char *body = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    j = call(&k, "PUT", JOBS "/j", NULL, body, 200);
    assert_int_equal(num(j, "spec.backoffLimit"), 6);
    cJSON_Delete(j);
    gf_free(body);
    ks_apitk_stop(&k);
}

static void test_kueue_webhook_suspends_on_create(void **state)
{
    (void)state;
    struct ks_kqtk t;
    ks_kqtk_start(&t);
    cJSON *j = call(&t.k, "POST", JOBS, NULL,
                    "{\"metadata\":{\"name\":\"q\",\"labels\":{"
                    "\"kueue.x-k8s.io/queue-name\":\"lq\"}},\"spec\":{"
                    "\"suspend\":false,\"template\":{\"spec\":{"
                    "\"restartPolicy\":\"Never\"," CONTAINER "}}}}",
                    201);
    /* In the answer itself, at the object's first resourceVersion. */
    assert_true(cJSON_IsTrue(gf_json_path(j, "spec.suspend")));
    /* Its own labels stay its own. */
    assert_null(gf_json_label(j, "job-name"));
    char rv[32];
    snprintf(rv, sizeof(rv), "%s", str(j, "metadata.resourceVersion"));
    cJSON_Delete(j);
    ks_kqtk_settle(&t);
    j = ks_kqtk_get(&t, "batch", "jobs", "default", "q");
    assert_true(cJSON_IsTrue(gf_json_path(j, "spec.suspend")));
    /* No second write to suspend it: the stored Job is the answered one. */
    assert_string_equal(str(j, "metadata.resourceVersion"), rv);
    cJSON_Delete(j);
    /* A Job without the label is left alone. */
    j = call(&t.k, "POST", JOBS, NULL,
             "{\"metadata\":{\"name\":\"free\"},\"spec\":{\"template\":{"
             "\"spec\":{\"restartPolicy\":\"Never\"," CONTAINER "}}}}",
             201);
    assert_true(cJSON_IsFalse(gf_json_path(j, "spec.suspend")));
    cJSON_Delete(j);
    ks_kqtk_stop(&t);
}

int main(void)
{
    gf_kube_global_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_defaults),
        cmocka_unit_test(test_restart_policy),
        cmocka_unit_test(test_update_rules),
        cmocka_unit_test(test_kueue_webhook_suspends_on_create),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_kube_global_cleanup();
    return rc;
}
