/*
 * Tests for kubeclient/discovery's reading of resource arguments, on
 * discovery documents recorded from kube-apiserver v1.28.7 with the Kueue
 * v0.19 CRDs installed (testdata/realk8s-1.28-*.json, trimmed to a few
 * groups): kubectl 1.32 gave the answer each row expects.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/file.h"
#include "kubeclient/discovery.h"

#define TESTDATA "kubeclient/test/testdata/"

static int64_t baseline;

static int teardown(void **state)
{
    gf_kube_discovery_free(*state);
    *state = NULL;
    assert_int_equal(gf_alloc_live(), baseline);
    return 0;
}

static void add_file(struct gf_kube_discovery *d, const char *name)
{
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(gf_file_read(name, 1 << 20, &text, &len), 0);
    cJSON *doc = cJSON_ParseWithLength(text, len);
    assert_non_null(doc);
    assert_int_equal(gf_kube_discovery_add(d, doc), 0);
    cJSON_Delete(doc);
    gf_free(text);
}

/* The server's answer, as a client reads it: /api then /apis. */
static int setup_aggregated(void **state)
{
    struct gf_kube_discovery *d = gf_kube_discovery_new();
    add_file(d, TESTDATA "realk8s-1.28-api.json");
    add_file(d, TESTDATA "realk8s-1.28-apis.json");
    *state = d;
    return 0;
}

struct res_case {
    const char *arg;
    int rc;
    const char *group, *version, *plural, *kind;
    bool namespaced;
};

static void check(const struct gf_kube_discovery *d,
                  const struct res_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct res_case *c = &cases[i];
        struct gf_kube_resource r;
        int rc = gf_kube_discovery_resolve(d, c->arg, &r);
        if (rc != c->rc)
            fail_msg("%s: rc %d, want %d", c->arg, rc, c->rc);
        if (rc != 0)
            continue;
        if (strcmp(r.group, c->group) != 0 ||
            strcmp(r.version, c->version) != 0 ||
            strcmp(r.plural, c->plural) != 0 || strcmp(r.kind, c->kind) != 0 ||
            r.namespaced != c->namespaced)
            fail_msg("%s: %s/%s %s %s ns=%d", c->arg, r.group, r.version,
                     r.plural, r.kind, r.namespaced);
    }
}

#define KQ "kueue.x-k8s.io"

static void test_names_as_kubectl_resolves_them(void **state)
{
    static const struct res_case cases[] = {
        /* resource.version.group: scope from the server, not a guess */
        {"storageclasses.v1.storage.k8s.io", 0, "storage.k8s.io", "v1",
         "storageclasses", "StorageClass", false},
        {"workloads.v1beta1." KQ, 0, KQ, "v1beta1", "workloads", "Workload",
         true},
        {"clusterqueues.v1beta2." KQ, 0, KQ, "v1beta2", "clusterqueues",
         "ClusterQueue", false},
        /* resource.group, at the group's preferred version */
        {"workloads." KQ, 0, KQ, "v1beta2", "workloads", "Workload", true},
        {"hpa.autoscaling", 0, "autoscaling", "v2", "horizontalpodautoscalers",
         "HorizontalPodAutoscaler", true},
        /* plural, singular, Kind */
        {"storageclasses", 0, "storage.k8s.io", "v1", "storageclasses",
         "StorageClass", false},
        {"storageclass", 0, "storage.k8s.io", "v1", "storageclasses",
         "StorageClass", false},
        {"StorageClass", 0, "storage.k8s.io", "v1", "storageclasses",
         "StorageClass", false},
        {"Workload", 0, KQ, "v1beta2", "workloads", "Workload", true},
        {"Workload." KQ, 0, KQ, "v1beta2", "workloads", "Workload", true},
        {"Workload.v1beta1." KQ, 0, KQ, "v1beta1", "workloads", "Workload",
         true},
        /* the CRDs' own short names */
        {"kwl", 0, KQ, "v1beta2", "workloads", "Workload", true},
        {"kueueworkloads", 0, KQ, "v1beta2", "workloads", "Workload", true},
        {"cq", 0, KQ, "v1beta2", "clusterqueues", "ClusterQueue", false},
        {"lq", 0, KQ, "v1beta2", "localqueues", "LocalQueue", true},
        {"queue", 0, KQ, "v1beta2", "localqueues", "LocalQueue", true},
        {"rf", 0, KQ, "v1beta2", "resourceflavors", "ResourceFlavor", false},
        {"wpc", 0, KQ, "v1beta2", "workloadpriorityclasses",
         "WorkloadPriorityClass", false},
        {"sc", 0, "storage.k8s.io", "v1", "storageclasses", "StorageClass",
         false},
        {"po", 0, "", "v1", "pods", "Pod", true},
        {"ns", 0, "", "v1", "namespaces", "Namespace", false},
        /* core first: events is the core group's, events.k8s.io asks */
        {"events", 0, "", "v1", "events", "Event", true},
        {"ev", 0, "", "v1", "events", "Event", true},
        {"events.events.k8s.io", 0, "events.k8s.io", "v1", "events", "Event",
         true},
        {"deploy", 0, "apps", "v1", "deployments", "Deployment", true},
        /* what no server defines */
        {"wl", -ENOENT, NULL, NULL, NULL, NULL, false},
        {"widgets.example.com", -ENOENT, NULL, NULL, NULL, NULL, false},
        {"widgets.v1.example.com", -ENOENT, NULL, NULL, NULL, NULL, false},
        {"storageclasses.v2.storage.k8s.io", -ENOENT, NULL, NULL, NULL, NULL,
         false},
        /* a short name in another group does not apply */
        {"cq.apps", -ENOENT, NULL, NULL, NULL, NULL, false},
        /* names are read without case, as kubectl does */
        {"storageClass.storage.k8s.io", 0, "storage.k8s.io", "v1",
         "storageclasses", "StorageClass", false},
        {"", -EINVAL, NULL, NULL, NULL, NULL, false},
        {".apps", -EINVAL, NULL, NULL, NULL, NULL, false},
        {"pods.", -EINVAL, NULL, NULL, NULL, NULL, false},
        {"pods/status", -EINVAL, NULL, NULL, NULL, NULL, false},
    };
    check(*state, cases, sizeof(cases) / sizeof(cases[0]));
}

/* A legacy APIResourceList: subresources are not resources, and a
 * missing singularName is the kind lowercased (kubectl's guess). */
static void test_legacy_resource_list(void **state)
{
    struct gf_kube_discovery *d = gf_kube_discovery_new();
    *state = d;
    add_file(d, TESTDATA "realk8s-1.28-storage-v1.json");
    assert_int_equal(gf_kube_discovery_count(d), 3);
    cJSON *doc = cJSON_Parse(
        "{\"kind\":\"APIResourceList\",\"groupVersion\":\"v1\",\"resources\":"
        "[{\"name\":\"endpoints\",\"singularName\":\"\",\"namespaced\":true,"
        "\"kind\":\"Endpoints\",\"shortNames\":[\"ep\"]}]}");
    assert_int_equal(gf_kube_discovery_add(d, doc), 0);
    cJSON_Delete(doc);
    static const struct res_case cases[] = {
        {"volumeattachments", 0, "storage.k8s.io", "v1", "volumeattachments",
         "VolumeAttachment", false},
        {"volumeattachments/status", -EINVAL, NULL, NULL, NULL, NULL, false},
        {"csidriver", 0, "storage.k8s.io", "v1", "csidrivers", "CSIDriver",
         false},
        {"endpoints", 0, "", "v1", "endpoints", "Endpoints", true},
        {"ep", 0, "", "v1", "endpoints", "Endpoints", true},
    };
    check(d, cases, sizeof(cases) / sizeof(cases[0]));
    doc = cJSON_Parse("{\"kind\":\"APIGroupList\",\"groups\":[]}");
    assert_int_equal(gf_kube_discovery_add(d, doc), GF_EPARSE);
    cJSON_Delete(doc);
}

int main(void)
{
    assert_int_equal(gf_alloc_global_init(), 0);
    baseline = gf_alloc_live();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_names_as_kubectl_resolves_them,
                                        setup_aggregated, teardown),
        cmocka_unit_test_teardown(test_legacy_resource_list, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_alloc_global_cleanup();
    return rc;
}
