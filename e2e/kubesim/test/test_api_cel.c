/*
 * Tests for CRD validation rules (x-kubernetes-validations) through the
 * REST layer, with the messages a real kube-apiserver v1.28 writes for the
 * same requests: every rule of the ten Kueue CRDs and of gpufed's
 * QuotaLease CRD compiles (none is left unenforced), immutable fields
 * (LocalQueue.spec.clusterQueue, QuotaLease.spec) refuse a change by PUT
 * and by patch, ClusterQueue flavors must list as many resources as
 * coveredResources, a root rule on /status names "<nil>", an evaluation
 * error names its cause, transition rules do not run on create, and a CRD
 * with a rule outside the subset is counted and logged, not enforced.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/json.h"
#include "common/log.h"
#include "e2e/kubesim/schema.h"
#include "e2e/kubesim/test/api_testkit.h"
#include "kubeclient/global.h"

#define KQ "/apis/kueue.x-k8s.io/v1beta2"
#define GQ "/apis/gpufed.io/v1alpha1/namespaces/default/quotaleases"

static const char *or_null(const char *s)
{
    return s != NULL ? s : "(null)";
}
#define str(j, path) or_null(gf_json_str(j, path))

static void apply_file(struct ks_apitk_cluster *k, const char *path)
{
    size_t len;
    char *text = ks_apitk_read_file(path, &len);
    if (text == NULL)
        fail_msg("cannot read %s", path);
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    if (gf_ks_api_apply_yaml(k->api, text, len, &err) != 0)
        fail_msg("%s: %s", path, err.message);
    gf_ks_status_clear(&err);
    gf_free(text);
}

static void apply(struct ks_apitk_cluster *k, const char *yaml)
{
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    if (gf_ks_api_apply_yaml(k->api, yaml, strlen(yaml), &err) != 0)
        fail_msg("apply: %s", err.message);
    gf_ks_status_clear(&err);
}

/* Every Kueue CRD, and gpufed's own. */
static void load_crds(struct ks_apitk_cluster *k)
{
    const char *dir = ks_apitk_crd_dir();
    DIR *d = opendir(dir);
    if (d == NULL)
        fail_msg("cannot open %s", dir);
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l < 5 || strcmp(de->d_name + l - 5, ".yaml") != 0)
            continue;
        char path[2048];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        apply_file(k, path);
        n++;
    }
    closedir(d);
    assert_int_equal(n, 10);
#ifdef GF_MANIFESTS
    apply_file(k, GF_MANIFESTS "/hub/crd-quotalease.yaml");
#else
    fail_msg("GF_MANIFESTS is not set: build the tests through make");
#endif
}

/* A request whose answer must be code; returns the parsed body. */
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

/* A 422 whose message is exactly msg, with one cause on field. */
static void expect_invalid(struct ks_apitk_cluster *k, const char *method,
                           const char *target, const char *ctype,
                           const char *body, const char *msg, const char *field)
{
    cJSON *j = call(k, method, target, ctype, body, 422);
    assert_string_equal(str(j, "reason"), "Invalid");
    assert_string_equal(str(j, "message"), msg);
    const cJSON *causes = gf_json_path(j, "details.causes");
    assert_int_equal(cJSON_GetArraySize(causes), 1);
    assert_string_equal(str(cJSON_GetArrayItem(causes, 0), "field"), field);
    assert_string_equal(str(cJSON_GetArrayItem(causes, 0), "reason"),
                        "FieldValueInvalid");
    cJSON_Delete(j);
}

static void test_every_rule_compiles(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    load_crds(&k);
    assert_int_equal(gf_ks_api_cel_unsupported(k.api), 0);
    /* And there are rules to enforce: the Workload CRD alone has dozens. */
    const struct gf_ks_rtype *t =
        gf_ks_store_type(gf_ks_api_store(k.api), "kueue.x-k8s.io", "workloads");
    assert_non_null(t);
    size_t rules = 0;
    for (size_t i = 0; i < t->n_versions; i++)
        rules +=
            gf_ks_cel_rules_count(gf_ks_schema_rules(t->versions[i].schema));
    assert_true(rules >= 20);
    ks_apitk_stop(&k);
}

static void test_local_queue_cluster_queue_immutable(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    load_crds(&k);
    /* A create runs no transition rule. */
    cJSON *j = call(&k, "POST", KQ "/namespaces/default/localqueues", NULL,
                    "{\"metadata\":{\"name\":\"lq\"},\"spec\":"
                    "{\"clusterQueue\":\"cq1\"}}",
                    201);
    char put[512];
    snprintf(put, sizeof(put),
             "{\"apiVersion\":\"kueue.x-k8s.io/v1beta2\",\"kind\":"
             "\"LocalQueue\",\"metadata\":{\"name\":\"lq\",\"namespace\":"
             "\"default\",\"resourceVersion\":\"%s\"},\"spec\":"
             "{\"clusterQueue\":\"cq2\"}}",
             str(j, "metadata.resourceVersion"));
    cJSON_Delete(j);
    const char *msg = "LocalQueue.kueue.x-k8s.io \"lq\" is invalid: "
                      "spec.clusterQueue: Invalid value: \"string\": field "
                      "is immutable";
    expect_invalid(&k, "PATCH", KQ "/namespaces/default/localqueues/lq",
                   "application/merge-patch+json",
                   "{\"spec\":{\"clusterQueue\":\"cq2\"}}", msg,
                   "spec.clusterQueue");
    expect_invalid(&k, "PUT", KQ "/namespaces/default/localqueues/lq", NULL,
                   put, msg, "spec.clusterQueue");
    /* An unchanged value and other fields may still be written. */
    j = call(&k, "PATCH", KQ "/namespaces/default/localqueues/lq",
             "application/merge-patch+json",
             "{\"metadata\":{\"labels\":{\"a\":\"b\"}},\"spec\":"
             "{\"clusterQueue\":\"cq1\",\"stopPolicy\":\"Hold\"}}",
             200);
    assert_string_equal(str(j, "spec.clusterQueue"), "cq1");
    cJSON_Delete(j);
    ks_apitk_stop(&k);
}

static void test_cluster_queue_flavor_resources(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    load_crds(&k);
    static const char cq[] =
        "{\"metadata\":{\"name\":\"cq\"},\"spec\":{\"namespaceSelector\":{},"
        "\"resourceGroups\":[{\"coveredResources\":[\"cpu\","
        "\"nvidia.com/gpu\"],\"flavors\":[{\"name\":\"a100\",\"resources\":"
        "[{\"name\":\"cpu\",\"nominalQuota\":\"8\"}]}]}]}}";
    expect_invalid(&k, "POST", KQ "/clusterqueues", NULL, cq,
                   "ClusterQueue.kueue.x-k8s.io \"cq\" is invalid: "
                   "spec.resourceGroups[0]: Invalid value: \"object\": "
                   "flavors must have the same number of resources as the "
                   "coveredResources",
                   "spec.resourceGroups[0]");
    /* Two rules failing: both named, in brackets. */
    cJSON *j = call(
        &k, "POST", KQ "/clusterqueues", NULL,
        "{\"metadata\":{\"name\":\"cq\"},\"spec\":{\"namespaceSelector\":{},"
        "\"resourceGroups\":[{\"coveredResources\":[\"nvidia.com/gpu\"],"
        "\"flavors\":[{\"name\":\"a100\",\"resources\":[{\"name\":"
        "\"nvidia.com/gpu\",\"nominalQuota\":\"8\",\"borrowingLimit\":"
        "\"2\"}]}]},{\"coveredResources\":[\"cpu\",\"memory\"],\"flavors\":"
        "[{\"name\":\"x\",\"resources\":[{\"name\":\"cpu\",\"nominalQuota\":"
        "\"1\"}]}]}]}}",
        422);
    assert_string_equal(
        str(j, "message"),
        "ClusterQueue.kueue.x-k8s.io \"cq\" is invalid: [spec: Invalid "
        "value: \"object\": borrowingLimit must be nil when cohort is empty, "
        "spec.resourceGroups[1]: Invalid value: \"object\": flavors must "
        "have the same number of resources as the coveredResources]");
    assert_int_equal(cJSON_GetArraySize(gf_json_path(j, "details.causes")), 2);
    cJSON_Delete(j);
    /* With a GPU for every covered resource it is stored. */
    j = call(&k, "POST", KQ "/clusterqueues", NULL,
             "{\"metadata\":{\"name\":\"cq\"},\"spec\":{\"namespaceSelector\":"
             "{},\"resourceGroups\":[{\"coveredResources\":[\"cpu\","
             "\"nvidia.com/gpu\"],\"flavors\":[{\"name\":\"a100\","
             "\"resources\":[{\"name\":\"cpu\",\"nominalQuota\":\"8\"},"
             "{\"name\":\"nvidia.com/gpu\",\"nominalQuota\":\"4\"}]}]}]}}",
             201);
    cJSON_Delete(j);
    ks_apitk_stop(&k);
}

static void test_root_rule_and_eval_error(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    load_crds(&k);
    cJSON *j = call(&k, "POST", KQ "/namespaces/default/workloads", NULL,
                    "{\"metadata\":{\"name\":\"w\"},\"spec\":{\"queueName\":"
                    "\"lq\",\"podSets\":[{\"name\":\"main\",\"count\":1,"
                    "\"template\":{\"spec\":{\"containers\":[{\"name\":\"c\","
                    "\"image\":\"x\"}]}}}]}}",
                    201);
    cJSON_Delete(j);
    /* A rule at the root of the schema names the field "<nil>". */
    expect_invalid(
        &k, "PATCH", KQ "/namespaces/default/workloads/w/status",
        "application/merge-patch+json",
        "{\"status\":{\"conditions\":[{\"type\":\"QuotaReserved\",\"status\":"
        "\"True\",\"reason\":\"x\",\"message\":\"m\",\"lastTransitionTime\":"
        "\"2026-01-01T00:00:00Z\"}],\"admission\":{\"clusterQueue\":\"cq\","
        "\"podSetAssignments\":[]}}}",
        "Workload.kueue.x-k8s.io \"w\" is invalid: <nil>: Invalid value: "
        "\"object\": podSetAssignments must have the same number of podSets "
        "as the spec",
        "<nil>");
    /* A rule that cannot be evaluated on this object says why. */
    expect_invalid(&k, "POST", KQ "/resourceflavors", NULL,
                   "{\"metadata\":{\"name\":\"rf\"},\"spec\":"
                   "{\"topologyName\":\"t\"}}",
                   "ResourceFlavor.kueue.x-k8s.io \"rf\" is invalid: spec: "
                   "Invalid value: \"object\": no such key: nodeLabels "
                   "evaluating rule: at least one nodeLabel is required when "
                   "topology is set",
                   "spec");
    ks_apitk_stop(&k);
}

static void test_quota_lease_spec_immutable(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    load_crds(&k);
    cJSON *j = call(
        &k, "POST", GQ, NULL,
        "{\"apiVersion\":\"gpufed.io/v1alpha1\",\"kind\":\"QuotaLease\","
        "\"metadata\":{\"name\":\"l1\"},\"spec\":{\"group\":\"ml\",\"mode\":"
        "\"Redirect\",\"epoch\":1,\"origin\":{\"member\":\"east\","
        "\"namespace\":\"ml\",\"name\":\"j\",\"uid\":\"u\"},\"lender\":"
        "{\"member\":\"west\",\"clusterQueue\":\"cq\",\"flavor\":\"a100\"},"
        "\"resource\":"
        "\"nvidia.com/gpu\",\"gpus\":4}}",
        201);
    cJSON_Delete(j);
    expect_invalid(&k, "PATCH", GQ "/l1", "application/merge-patch+json",
                   "{\"spec\":{\"gpus\":8}}",
                   "QuotaLease.gpufed.io \"l1\" is invalid: spec: Invalid "
                   "value: \"object\": spec is immutable",
                   "spec");
    /* The status is not spec: the hub writes it freely. */
    j = call(&k, "PATCH", GQ "/l1/status", "application/merge-patch+json",
             "{\"status\":{\"phase\":\"Pending\"}}", 200);
    assert_string_equal(str(j, "status.phase"), "Pending");
    cJSON_Delete(j);
    ks_apitk_stop(&k);
}

static int warnings;
static void count_warnings(void *data, enum gf_log_level level,
                           const char *line, size_t len)
{
    (void)data;
    (void)len;
    if (level == GF_LOG_WARN && strstr(line, "crd rule not evaluated") &&
        strstr(line, "crd=widgets.example.com") &&
        strstr(line, "path=spec.name"))
        warnings++;
}

static void test_unsupported_rule_reported(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    enum gf_log_level lvl = gf_log_get_level();
    gf_log_set_level(GF_LOG_WARN);
    gf_log_set_sink(count_warnings, NULL);
    warnings = 0;
    apply(&k, "apiVersion: apiextensions.k8s.io/v1\n"
              "kind: CustomResourceDefinition\n"
              "metadata: {name: widgets.example.com}\n"
              "spec:\n  group: example.com\n  scope: Namespaced\n"
              "  names: {kind: Widget, plural: widgets, singular: widget}\n"
              "  versions:\n  - name: v1\n    served: true\n    storage: true\n"
              "    schema:\n      openAPIV3Schema:\n        type: object\n"
              "        properties:\n          spec:\n            type: object\n"
              "            properties:\n              name:\n"
              "                type: string\n"
              "                x-kubernetes-validations:\n"
              "                - rule: self.matches('^[a-z]+$')\n"
              "                - rule: size(self) < 5\n"
              "                - rule: size(self) > 0\n"
              "                  messageExpression: \"'too short'\"\n");
    gf_log_set_sink(NULL, NULL);
    gf_log_set_level(lvl);
    assert_int_equal(gf_ks_api_cel_unsupported(k.api), 2);
    assert_int_equal(warnings, 2);
    /* The unsupported rule is not enforced; the supported one is. */
    cJSON *j = call(&k, "POST",
                    "/apis/example.com/v1/namespaces/default/"
                    "widgets",
                    NULL,
                    "{\"metadata\":{\"name\":\"a\"},\"spec\":{\"name\":"
                    "\"X1\"}}",
                    201);
    cJSON_Delete(j);
    expect_invalid(&k, "POST",
                   "/apis/example.com/v1/namespaces/default/widgets", NULL,
                   "{\"metadata\":{\"name\":\"b\"},\"spec\":{\"name\":"
                   "\"abcdef\"}}",
                   "Widget.example.com \"b\" is invalid: spec.name: Invalid "
                   "value: \"string\": failed rule: size(self) < 5",
                   "spec.name");
    ks_apitk_stop(&k);
}

int main(void)
{
    gf_kube_global_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_rule_compiles),
        cmocka_unit_test(test_local_queue_cluster_queue_immutable),
        cmocka_unit_test(test_cluster_queue_flavor_resources),
        cmocka_unit_test(test_root_rule_and_eval_error),
        cmocka_unit_test(test_quota_lease_spec_immutable),
        cmocka_unit_test(test_unsupported_rule_reported),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_kube_global_cleanup();
    return rc;
}
