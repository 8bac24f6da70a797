/*
 * Tests for kubesim's discovery documents and CustomResourceDefinitions:
 * the shapes kubectl and the Python client read (/api, /apis, resource
 * lists with verbs, short names, categories and subresources, /version,
 * health), the upstream Kueue CRDs loaded from YAML and served (status
 * Established, preferred version, schema validation with 422 naming the
 * field, pruning, version rewriting, printer columns in Table output),
 * CRD checks, CRD deletion, schema sharing across clusters through the
 * catalog, and YAML stream errors.
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
#include "common/err.h"
#include "common/json.h"
#include "e2e/kubesim/api_toolkit.h"
#include "e2e/kubesim/schema.h"
#include "e2e/kubesim/test/api_testkit.h"
#include "kubeclient/global.h"

#define KQ "/apis/kueue.x-k8s.io/v1beta2"
#define TABLE_ACCEPT                                                           \
    "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;"  \
    "v=v1beta1;g=meta.k8s.io,application/json"

static const char *or_null(const char *s)
{
    return s != NULL ? s : "(null)";
}
/* A macro, so gf_json_str's literal-only check reaches every call. */
#define str(j, path) or_null(gf_json_str(j, path))

static cJSON *get(struct ks_apitk_cluster *k, const char *target, int want)
{
    int code = 0;
    cJSON *j = ks_apitk_json(k, "GET", target, NULL, NULL, &code);
    if (code != want)
        fail_msg("GET %s: %d", target, code);
    return j;
}

/* The entry named name in an APIResourceList, or NULL. */
static const cJSON *resource(const cJSON *list, const char *name)
{
    const cJSON *r;
    cJSON_ArrayForEach(r, gf_json_path(list, "resources"))
    {
        if (strcmp(str(r, "name"), name) == 0)
            return r;
    }
    return NULL;
}

static bool has_str(const cJSON *arr, const char *s)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, arr)
    {
        if (cJSON_IsString(e) && strcmp(e->valuestring, s) == 0)
            return true;
    }
    return false;
}

static const cJSON *group(const cJSON *list, const char *name)
{
    const cJSON *g;
    cJSON_ArrayForEach(g, gf_json_path(list, "groups"))
    {
        if (strcmp(str(g, "name"), name) == 0)
            return g;
    }
    return NULL;
}

static void test_discovery_builtin(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    cJSON *j = get(&k, "/api", 200);
    assert_string_equal(str(j, "kind"), "APIVersions");
    assert_true(has_str(gf_json_path(j, "versions"), "v1"));
    assert_non_null(gf_json_path(j, "serverAddressByClientCIDRs"));
    cJSON_Delete(j);
    j = get(&k, "/apis", 200);
    assert_string_equal(str(j, "kind"), "APIGroupList");
    const cJSON *g = group(j, "batch");
    assert_non_null(g);
    assert_string_equal(str(g, "preferredVersion.groupVersion"), "batch/v1");
    assert_null(group(j, "")); /* the core group is under /api */
    assert_non_null(group(j, "rbac.authorization.k8s.io"));
    assert_non_null(group(j, "coordination.k8s.io"));
    assert_non_null(group(j, "apiextensions.k8s.io"));
    assert_non_null(group(j, "events.k8s.io"));
    assert_non_null(group(j, "scheduling.k8s.io"));
    cJSON_Delete(j);
    j = get(&k, "/api/v1", 200);
    assert_string_equal(str(j, "kind"), "APIResourceList");
    assert_string_equal(str(j, "groupVersion"), "v1");
    const cJSON *cm = resource(j, "configmaps");
    assert_non_null(cm);
    assert_string_equal(str(cm, "kind"), "ConfigMap");
    assert_string_equal(str(cm, "singularName"), "configmap");
    assert_true(cJSON_IsTrue(gf_json_path(cm, "namespaced")));
    assert_true(has_str(gf_json_path(cm, "shortNames"), "cm"));
    assert_int_equal(cJSON_GetArraySize(gf_json_path(cm, "verbs")), 8);
    const cJSON *ns = resource(j, "namespaces");
    assert_true(cJSON_IsFalse(gf_json_path(ns, "namespaced")));
    const cJSON *nss = resource(j, "namespaces/status");
    assert_non_null(nss);
    assert_true(has_str(gf_json_path(nss, "verbs"), "patch"));
    const cJSON *pods = resource(j, "pods");
    assert_true(has_str(gf_json_path(pods, "categories"), "all"));
    assert_false(has_str(gf_json_path(pods, "verbs"), "create"));
    assert_null(resource(j, "jobs"));
    cJSON_Delete(j);
    j = get(&k, "/apis/batch/v1", 200);
    assert_string_equal(str(j, "groupVersion"), "batch/v1");
    assert_non_null(resource(j, "jobs"));
    assert_non_null(resource(j, "jobs/status"));
    cJSON_Delete(j);
    /* The types of the shipped manifests (manifests/hub, manifests/member)
     * with the real server's names, so that `kubectl apply -k` maps them. */
    j = get(&k, "/api/v1", 200);
    const cJSON *svc = resource(j, "services");
    assert_non_null(svc);
    assert_true(has_str(gf_json_path(svc, "shortNames"), "svc"));
    assert_true(has_str(gf_json_path(svc, "categories"), "all"));
    assert_non_null(resource(j, "services/status"));
    cJSON_Delete(j);
    j = get(&k, "/apis/apps/v1", 200);
    const cJSON *deploy = resource(j, "deployments");
    assert_non_null(deploy);
    assert_string_equal(str(deploy, "kind"), "Deployment");
    assert_true(cJSON_IsTrue(gf_json_path(deploy, "namespaced")));
    assert_true(has_str(gf_json_path(deploy, "shortNames"), "deploy"));
    assert_true(has_str(gf_json_path(deploy, "categories"), "all"));
    assert_non_null(resource(j, "deployments/status"));
    cJSON_Delete(j);
    j = get(&k, "/apis/policy/v1", 200);
    const cJSON *pdb = resource(j, "poddisruptionbudgets");
    assert_non_null(pdb);
    assert_string_equal(str(pdb, "kind"), "PodDisruptionBudget");
    assert_true(has_str(gf_json_path(pdb, "shortNames"), "pdb"));
    cJSON_Delete(j);
    j = get(&k, "/apis/authorization.k8s.io/v1", 200);
    const cJSON *ssar = resource(j, "selfsubjectaccessreviews");
    assert_int_equal(cJSON_GetArraySize(gf_json_path(ssar, "verbs")), 1);
    assert_true(has_str(gf_json_path(ssar, "verbs"), "create"));
    cJSON_Delete(j);
    j = get(&k, "/apis/batch", 200);
    assert_string_equal(str(j, "kind"), "APIGroup");
    cJSON_Delete(j);
    j = get(&k, "/", 200);
    assert_true(has_str(gf_json_path(j, "paths"), "/apis/batch/v1"));
    assert_true(has_str(gf_json_path(j, "paths"), "/api/v1"));
    cJSON_Delete(j);
    j = get(&k, "/version", 200);
    assert_string_equal(str(j, "major"), "1");
    assert_non_null(gf_json_str(j, "gitVersion"));
    cJSON_Delete(j);
    cJSON_Delete(get(&k, "/apis/batch/v9", 404));
    cJSON_Delete(get(&k, "/apis/nope.io", 404));
    /* Health answers "ok" as text. */
    static const char *const health[] = {"/healthz", "/readyz", "/livez",
                                         "/readyz/ping"};
    for (size_t i = 0; i < 4; i++) {
        struct ks_apitk_resp r;
        ks_apitk_resp_init(&r);
        assert_int_equal(
            ks_apitk_do(&k, &r, "GET", health[i], NULL, NULL, NULL), 200);
        assert_string_equal(gf_buf_cstr(&r.body), "ok");
        ks_apitk_resp_free(&r);
    }
    /* Aggregated discovery (what kubectl 1.32 asks for first). */
    struct ks_apitk_resp r;
    ks_apitk_resp_init(&r);
    ks_apitk_do(&k, &r, "GET", "/apis", NULL,
                "application/json;g=apidiscovery.k8s.io;v=v2;"
                "as=APIGroupDiscoveryList,application/json;"
                "g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
                "application/json",
                NULL);
    assert_string_equal(r.ctype, "application/json;g=apidiscovery.k8s.io;"
                                 "v=v2;as=APIGroupDiscoveryList");
    j = cJSON_Parse(gf_buf_cstr(&r.body));
    ks_apitk_resp_free(&r);
    assert_string_equal(str(j, "kind"), "APIGroupDiscoveryList");
    assert_string_equal(str(j, "apiVersion"), "apidiscovery.k8s.io/v2");
    const cJSON *batch = NULL, *it;
    cJSON_ArrayForEach(it, gf_json_path(j, "items"))
    {
        if (strcmp(str(it, "metadata.name"), "batch") == 0)
            batch = it;
    }
    assert_non_null(batch);
    const cJSON *v = cJSON_GetArrayItem(gf_json_path(batch, "versions"), 0);
    assert_string_equal(str(v, "version"), "v1");
    assert_string_equal(str(v, "freshness"), "Current");
    const cJSON *jobs = cJSON_GetArrayItem(gf_json_path(v, "resources"), 0);
    assert_string_equal(str(jobs, "resource"), "jobs");
    assert_string_equal(str(jobs, "scope"), "Namespaced");
    assert_string_equal(str(jobs, "responseKind.kind"), "Job");
    assert_string_equal(str(jobs, "singularResource"), "job");
    assert_string_equal(
        str(cJSON_GetArrayItem(gf_json_path(jobs, "subresources"), 0),
            "subresource"),
        "status");
    cJSON_Delete(j);
    ks_apitk_resp_init(&r);
    ks_apitk_do(&k, &r, "GET", "/api", NULL,
                "application/json;g=apidiscovery.k8s.io;v=v2;"
                "as=APIGroupDiscoveryList",
                NULL);
    j = cJSON_Parse(gf_buf_cstr(&r.body));
    ks_apitk_resp_free(&r);
    const cJSON *core = cJSON_GetArrayItem(gf_json_path(j, "items"), 0);
    assert_int_equal(cJSON_GetArraySize(gf_json_path(j, "items")), 1);
    assert_null(gf_json_path(core, "metadata.name"));
    v = cJSON_GetArrayItem(gf_json_path(core, "versions"), 0);
    bool cms = false;
    cJSON_ArrayForEach(it, gf_json_path(v, "resources"))
    {
        cms |= strcmp(str(it, "resource"), "configmaps") == 0;
    }
    assert_true(cms);
    cJSON_Delete(j);
    /* Only v2beta1 asked for: the legacy document. */
    ks_apitk_resp_init(&r);
    ks_apitk_do(&k, &r, "GET", "/apis", NULL,
                "application/json;g=apidiscovery.k8s.io;v=v2beta1;"
                "as=APIGroupDiscoveryList,application/json",
                NULL);
    assert_string_equal(r.ctype, "application/json");
    assert_non_null(strstr(gf_buf_cstr(&r.body), "APIGroupList"));
    ks_apitk_resp_free(&r);
    ks_apitk_stop(&k);
}

static void test_openapi_v3(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    cJSON *j = get(&k, "/openapi/v3", 200);
    const char *url = gf_json_str(j, "paths.api/v1.serverRelativeURL");
    assert_non_null(url);
    assert_non_null(strstr(url, "/openapi/v3/api/v1?hash="));
    assert_non_null(gf_json_path(j, "paths.apis/batch/v1"));
    cJSON_Delete(j);
    /* What kubectl's field-validation check reads: the PATCH operation of
     * the kind, with fieldValidation among its query parameters. */
    j = get(&k, "/openapi/v3/apis/batch/v1?hash=x", 200);
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(
            gf_json_path(j, "paths"),
            "/apis/batch/v1/namespaces/{namespace}/jobs/{name}"),
        "patch");
    assert_non_null(op);
    assert_string_equal(str(op, "x-kubernetes-group-version-kind.kind"), "Job");
    bool fv = false;
    const cJSON *p;
    cJSON_ArrayForEach(p, gf_json_path(op, "parameters"))
    {
        fv |= strcmp(str(p, "name"), "fieldValidation") == 0 &&
              strcmp(str(p, "in"), "query") == 0;
    }
    assert_true(fv);
    cJSON_Delete(j);
    cJSON_Delete(get(&k, "/openapi/v3/apis/nope.io/v1", 404));
    cJSON_Delete(get(&k, "/openapi/v2", 404));
    ks_apitk_stop(&k);
}

/* Loads every Kueue CRD; a missing file fails the test. */
static void load_kueue(struct ks_apitk_cluster *k)
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
        size_t len;
        char *text = ks_apitk_read_file(path, &len);
        assert_non_null(text);
        struct gf_ks_status err;
        gf_ks_status_init(&err);
        int rc = gf_ks_api_apply_yaml(k->api, text, len, &err);
        if (rc != 0)
            fail_msg("%s: %s", de->d_name, err.message);
        gf_ks_status_clear(&err);
        gf_free(text);
        n++;
    }
    closedir(d);
    assert_int_equal(n, 10);
}

static void apply(struct ks_apitk_cluster *k, const char *yaml, int want_rc)
{
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    int rc = gf_ks_api_apply_yaml(k->api, yaml, strlen(yaml), &err);
    if (rc != want_rc)
        fail_msg("apply: %d %s", rc, err.message);
    gf_ks_status_clear(&err);
}

static void test_kueue_crds_served(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    load_kueue(&k);
    cJSON *j = get(&k, "/apis", 200);
    const cJSON *g = group(j, "kueue.x-k8s.io");
    assert_non_null(g);
    assert_string_equal(str(g, "preferredVersion.version"), "v1beta2");
    assert_int_equal(cJSON_GetArraySize(gf_json_path(g, "versions")), 2);
    cJSON_Delete(j);
    j = get(&k, KQ, 200);
    const cJSON *w = resource(j, "workloads");
    assert_non_null(w);
    assert_string_equal(str(w, "kind"), "Workload");
    assert_string_equal(str(w, "singularName"), "workload");
    assert_true(cJSON_IsTrue(gf_json_path(w, "namespaced")));
    assert_true(has_str(gf_json_path(w, "shortNames"), "kwl"));
    assert_non_null(resource(j, "workloads/status"));
    const cJSON *cq = resource(j, "clusterqueues");
    assert_true(cJSON_IsFalse(gf_json_path(cq, "namespaced")));
    assert_true(has_str(gf_json_path(cq, "shortNames"), "cq"));
    cJSON_Delete(j);
    /* The CRD is Established, as kubectl wait expects. */
    j = get(&k,
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
            "workloads.kueue.x-k8s.io",
            200);
    bool established = false;
    const cJSON *c;
    cJSON_ArrayForEach(c, gf_json_path(j, "status.conditions"))
    {
        established |= strcmp(str(c, "type"), "Established") == 0 &&
                       strcmp(str(c, "status"), "True") == 0;
    }
    assert_true(established);
    assert_true(has_str(gf_json_path(j, "status.storedVersions"), "v1beta2"));
    cJSON_Delete(j);
    /* The upstream single-cluster sample applies cleanly. */
    apply(&k,
          "apiVersion: kueue.x-k8s.io/v1beta2\nkind: ResourceFlavor\n"
          "metadata:\n  name: \"default-flavor\"\n---\n"
          "apiVersion: kueue.x-k8s.io/v1beta2\nkind: ClusterQueue\nmetadata:\n"
          "  name: \"cluster-queue\"\nspec:\n  namespaceSelector: {}\n"
          "  resourceGroups:\n  - coveredResources: [\"cpu\", \"memory\"]\n"
          "    flavors:\n    - name: \"default-flavor\"\n      resources:\n"
          "      - name: \"cpu\"\n        nominalQuota: 9\n"
          "      - name: \"memory\"\n        nominalQuota: 36Gi\n---\n"
          "apiVersion: kueue.x-k8s.io/v1beta2\nkind: LocalQueue\nmetadata:\n"
          "  namespace: \"default\"\n  name: \"user-queue\"\nspec:\n"
          "  clusterQueue: \"cluster-queue\"\n",
          0);
    j = get(&k, KQ "/namespaces/default/localqueues/user-queue", 200);
    assert_string_equal(str(j, "spec.clusterQueue"), "cluster-queue");
    cJSON_Delete(j);
    j = get(&k, KQ "/clusterqueues", 200);
    assert_int_equal(cJSON_GetArraySize(gf_json_path(j, "items")), 1);
    assert_string_equal(str(j, "kind"), "ClusterQueueList");
    cJSON_Delete(j);
    ks_apitk_stop(&k);
}

static void test_kueue_validation(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    load_kueue(&k);
    int code;
    /* A wrong type: 422 Invalid naming the field. */
    cJSON *j =
        ks_apitk_json(&k, "POST", KQ "/namespaces/default/localqueues", NULL,
                      "{\"metadata\":{\"name\":\"q\"},\"spec\":"
                      "{\"clusterQueue\":5}}",
                      &code);
    assert_int_equal(code, 422);
    assert_string_equal(str(j, "reason"), "Invalid");
    assert_non_null(strstr(str(j, "message"), "LocalQueue.kueue.x-k8s.io "
                                              "\"q\" is invalid: "
                                              "spec.clusterQueue"));
    const cJSON *cause =
        cJSON_GetArrayItem(gf_json_path(j, "details.causes"), 0);
    assert_string_equal(str(cause, "field"), "spec.clusterQueue");
    cJSON_Delete(j);
    /* An enum violation names the field and the supported values. */
    j = ks_apitk_json(&k, "POST", KQ "/clusterqueues", NULL,
                      "{\"metadata\":{\"name\":\"cq\"},\"spec\":"
                      "{\"queueingStrategy\":\"Random\"}}",
                      &code);
    assert_int_equal(code, 422);
    assert_non_null(strstr(str(j, "message"), "spec.queueingStrategy"));
    cJSON_Delete(j);
    /* Unknown fields are pruned, not rejected. */
    j = ks_apitk_json(&k, "POST", KQ "/namespaces/default/localqueues", NULL,
                      "{\"metadata\":{\"name\":\"q\"},\"spec\":"
                      "{\"clusterQueue\":\"cq\",\"bogus\":1},\"extra\":2}",
                      &code);
    assert_int_equal(code, 201);
    assert_null(gf_json_path(j, "spec.bogus"));
    assert_null(gf_json_path(j, "extra"));
    cJSON_Delete(j);
    /* fieldValidation=Strict (kubectl's default) refuses them instead. */
    j = ks_apitk_json(
        &k, "POST", KQ "/namespaces/default/localqueues?fieldValidation=Strict",
        NULL,
        "{\"metadata\":{\"name\":\"q3\"},\"spec\":"
        "{\"clusterQueue\":\"cq\",\"bogus\":1,\"nil\":null}}",
        &code);
    assert_int_equal(code, 400);
    assert_string_equal(str(j, "reason"), "BadRequest");
    assert_string_equal(str(j, "message"),
                        "LocalQueue in version \"v1beta2\" cannot be handled "
                        "as a LocalQueue: strict decoding error: unknown "
                        "field \"spec.bogus\"");
    cJSON_Delete(j);
    j = ks_apitk_json(&k, "PATCH",
                      KQ "/namespaces/default/localqueues/q?fieldValidation="
                         "Strict",
                      "application/merge-patch+json",
                      "{\"spec\":{\"stopPolicy\":\"Hold\"}}", &code);
    assert_int_equal(code, 200);
    cJSON_Delete(j);
    /* Patches are validated too; SMP is refused for custom resources. */
    j = ks_apitk_json(&k, "PATCH", KQ "/namespaces/default/localqueues/q",
                      "application/merge-patch+json",
                      "{\"spec\":{\"clusterQueue\":[]}}", &code);
    assert_int_equal(code, 422);
    cJSON_Delete(j);
    j = ks_apitk_json(&k, "PATCH", KQ "/namespaces/default/localqueues/q",
                      "application/strategic-merge-patch+json", "{\"spec\":{}}",
                      &code);
    assert_int_equal(code, 415);
    cJSON_Delete(j);
    /* Served at v1beta1, stored at v1beta2 (conversion None). */
    j = ks_apitk_json(&k, "GET",
                      "/apis/kueue.x-k8s.io/v1beta1/namespaces/default/"
                      "localqueues/q",
                      NULL, NULL, &code);
    assert_int_equal(code, 200);
    assert_string_equal(str(j, "apiVersion"), "kueue.x-k8s.io/v1beta1");
    cJSON_Delete(j);
    j = get(&k, KQ "/namespaces/default/localqueues/q", 200);
    assert_string_equal(str(j, "apiVersion"), "kueue.x-k8s.io/v1beta2");
    cJSON_Delete(j);
    /* The body's apiVersion must match the URL's. */
    j = ks_apitk_json(&k, "POST", KQ "/namespaces/default/localqueues", NULL,
                      "{\"apiVersion\":\"kueue.x-k8s.io/v1beta1\",\"metadata\":"
                      "{\"name\":\"q2\"}}",
                      &code);
    assert_int_equal(code, 400);
    cJSON_Delete(j);
    ks_apitk_stop(&k);
}

static const cJSON *cell(const cJSON *table, int row, int col)
{
    const cJSON *r = cJSON_GetArrayItem(gf_json_path(table, "rows"), row);
    return cJSON_GetArrayItem(gf_json_path(r, "cells"), col);
}

static void test_kueue_tables(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    load_kueue(&k);
    apply(&k,
          "apiVersion: kueue.x-k8s.io/v1beta2\nkind: LocalQueue\nmetadata:\n"
          "  name: lq\n  namespace: default\nspec:\n  clusterQueue: cq\n",
          0);
    int code;
    cJSON_Delete(ks_apitk_json(&k, "PATCH",
                               KQ "/namespaces/default/localqueues/lq/status",
                               "application/merge-patch+json",
                               "{\"status\":{\"pendingWorkloads\":3}}", &code));
    assert_int_equal(code, 200);
    gf_clock_advance(&k.clock, 300000); /* 5 minutes old */
    struct ks_apitk_resp r;
    ks_apitk_resp_init(&r);
    ks_apitk_do(&k, &r, "GET", KQ "/namespaces/default/localqueues", NULL,
                TABLE_ACCEPT, NULL);
    assert_int_equal(r.code, 200);
    cJSON *t = cJSON_Parse(gf_buf_cstr(&r.body));
    ks_apitk_resp_free(&r);
    assert_string_equal(str(t, "kind"), "Table");
    assert_string_equal(str(t, "apiVersion"), "meta.k8s.io/v1");
    const cJSON *defs = gf_json_path(t, "columnDefinitions");
    assert_string_equal(str(cJSON_GetArrayItem(defs, 0), "name"), "Name");
    assert_string_equal(str(cJSON_GetArrayItem(defs, 1), "name"),
                        "ClusterQueue");
    assert_string_equal(cell(t, 0, 0)->valuestring, "lq");
    assert_string_equal(cell(t, 0, 1)->valuestring, "cq");
    assert_int_equal((int)cell(t, 0, 2)->valuedouble, 3);
    /* Absent values are null; v1beta2 prints no Age column. */
    assert_int_equal(cJSON_GetArraySize(defs), 4);
    assert_true(cJSON_IsNull(cell(t, 0, 3)));
    cJSON_Delete(t);
    /* Workloads: a filter expression over conditions. */
    apply(&k,
          "apiVersion: kueue.x-k8s.io/v1beta2\nkind: Workload\nmetadata:\n"
          "  name: w\n  namespace: default\nspec:\n  queueName: lq\n"
          "  podSets:\n  - name: main\n    count: 1\n    template:\n"
          "      spec:\n        containers:\n        - name: c\n"
          "          image: x\n",
          0);
    cJSON_Delete(ks_apitk_json(
        &k, "PATCH", KQ "/namespaces/default/workloads/w/status",
        "application/merge-patch+json",
        "{\"status\":{\"conditions\":[{\"type\":\"QuotaReserved\",\"status\":"
        "\"True\",\"reason\":\"r\",\"message\":\"m\",\"lastTransitionTime\":"
        "\"2026-11-24T10:00:00Z\"},{\"type\":\"Admitted\",\"status\":\"True\","
        "\"reason\":\"r\",\"message\":\"m\",\"lastTransitionTime\":"
        "\"2026-11-24T10:00:00Z\"}]}}",
        &code));
    assert_int_equal(code, 200);
    ks_apitk_resp_init(&r);
    ks_apitk_do(&k, &r, "GET", KQ "/namespaces/default/workloads/w", NULL,
                TABLE_ACCEPT, NULL);
    t = cJSON_Parse(gf_buf_cstr(&r.body));
    ks_apitk_resp_free(&r);
    defs = gf_json_path(t, "columnDefinitions");
    int adm = -1;
    for (int i = 0; i < cJSON_GetArraySize(defs); i++)
        if (strcmp(str(cJSON_GetArrayItem(defs, i), "name"), "Admitted") == 0)
            adm = i;
    assert_true(adm > 0);
    assert_string_equal(cell(t, 0, adm)->valuestring, "True");
    assert_string_equal(cell(t, 0, 1)->valuestring, "lq");
    cJSON_Delete(t);
    ks_apitk_stop(&k);
}

static int cond_count(const cJSON *o, const char *type, const char *status)
{
    int n = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, gf_json_path(o, "status.conditions"))
    {
        n += strcmp(str(c, "type"), type) == 0 &&
             (status == NULL || strcmp(str(c, "status"), status) == 0);
    }
    return n;
}

#define COND(t, s)                                                             \
    "{\"type\":\"" t "\",\"status\":\"" s "\",\"reason\":\"R\","               \
    "\"message\":\"m\",\"lastTransitionTime\":\"2026-11-24T10:00:00Z\"}"

/* Server-side apply merges lists as their schema says. */
static void test_apply_list_semantics(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    load_kueue(&k);
    apply(&k,
          "apiVersion: kueue.x-k8s.io/v1beta2\nkind: Workload\nmetadata:\n"
          "  name: w\n  namespace: default\nspec:\n  queueName: lq\n"
          "  podSets:\n  - name: main\n    count: 1\n    template:\n"
          "      spec:\n        containers:\n        - name: c\n"
          "          image: x\n",
          0);
    int code;
    const char *w = KQ "/namespaces/default/workloads/w/status";
    cJSON_Delete(ks_apitk_json(
        &k, "PATCH", w, "application/merge-patch+json",
        "{\"status\":{\"conditions\":[" COND("QuotaReserved", "True") "," COND(
            "Admitted", "True") "]}}",
        &code));
    assert_int_equal(code, 200);
    /* Conditions are a list-type map keyed by type: an apply of one
     * condition adds or updates that one and keeps the others. */
    cJSON *o = ks_apitk_json(
        &k, "PATCH", KQ "/namespaces/default/workloads/w/status?fieldManager=t",
        "application/apply-patch+yaml",
        "{\"apiVersion\":\"kueue.x-k8s.io/v1beta2\",\"kind\":\"Workload\","
        "\"metadata\":{\"name\":\"w\"},\"status\":{\"conditions\":[" COND(
            "Evicted", "True") "]}}",
        &code);
    assert_int_equal(code, 200);
    assert_int_equal(cJSON_GetArraySize(gf_json_path(o, "status.conditions")),
                     3);
    cJSON_Delete(o);
    /* Admitted was set by another manager's patch: force takes it. */
    o = ks_apitk_json(
        &k, "PATCH",
        KQ "/namespaces/default/workloads/w/status?fieldManager=t&force=true",
        "application/apply-patch+yaml",
        "apiVersion: kueue.x-k8s.io/v1beta2\nkind: Workload\nmetadata:\n"
        "  name: w\nstatus:\n  conditions:\n  - type: Admitted\n"
        "    status: \"False\"\n    reason: R\n    message: m\n"
        "    lastTransitionTime: \"2026-11-24T10:00:00Z\"\n",
        &code);
    assert_int_equal(code, 200);
    assert_int_equal(cond_count(o, "Admitted", "False"), 1);
    assert_int_equal(cond_count(o, "Admitted", NULL), 1);
    assert_int_equal(cond_count(o, "QuotaReserved", "True"), 1);
    cJSON_Delete(o);
    /* Finalizers are a set and labels a map, for custom resources too. */
    o = ks_apitk_json(&k, "PATCH", KQ "/namespaces/default/workloads/w",
                      "application/merge-patch+json",
                      "{\"metadata\":{\"finalizers\":[\"a/x\"],\"labels\":"
                      "{\"l1\":\"1\"}}}",
                      &code);
    cJSON_Delete(o);
    o = ks_apitk_json(&k, "PATCH",
                      KQ "/namespaces/default/workloads/w?fieldManager=t",
                      "application/apply-patch+yaml",
                      "{\"metadata\":{\"name\":\"w\",\"finalizers\":[\"b/y\","
                      "\"a/x\"],\"labels\":{\"l2\":\"2\"}}}",
                      &code);
    assert_int_equal(code, 200);
    assert_int_equal(cJSON_GetArraySize(gf_json_path(o, "metadata.finalizers")),
                     2);
    assert_string_equal(gf_json_label(o, "l1"), "1");
    assert_string_equal(gf_json_label(o, "l2"), "2");
    cJSON_Delete(o);
    /* Built-ins merge by their strategic keys. */
    o = ks_apitk_json(
        &k, "POST", "/apis/batch/v1/namespaces/default/jobs", NULL,
        "{\"metadata\":{\"name\":\"j\"},\"spec\":{"
        "\"template\":{\"spec\":{\"restartPolicy\":\"Never\",\"containers\":[{"
        "\"name\":\"c\",\"image\":\"busybox:1.36\"}]}}}}",
        &code);
    cJSON_Delete(o);
    const char *js =
        "/apis/batch/v1/namespaces/default/jobs/j/status?fieldManager=t";
    cJSON_Delete(ks_apitk_json(
        &k, "PATCH", js, "application/apply-patch+yaml",
        "{\"status\":{\"conditions\":[" COND("Suspended", "True") "]}}",
        &code));
    assert_int_equal(code, 200);
    o = ks_apitk_json(
        &k, "PATCH", js, "application/apply-patch+yaml",
        "{\"status\":{\"conditions\":[" COND("Complete", "True") "]}}", &code);
    assert_int_equal(code, 200);
    /* The manager no longer applies Suspended, so it goes, as a 1.28
     * server (where Job conditions are atomic) replaces the list. */
    assert_int_equal(cond_count(o, "Suspended", NULL), 0);
    assert_int_equal(cond_count(o, "Complete", "True"), 1);
    cJSON_Delete(o);
    ks_apitk_stop(&k);
}

static void test_builtin_tables(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    struct ks_apitk_resp r;
    ks_apitk_resp_init(&r);
    ks_apitk_do(&k, &r, "GET", "/api/v1/namespaces?includeObject=Object", NULL,
                TABLE_ACCEPT, NULL);
    cJSON *t = cJSON_Parse(gf_buf_cstr(&r.body));
    ks_apitk_resp_free(&r);
    const cJSON *defs = gf_json_path(t, "columnDefinitions");
    assert_int_equal(cJSON_GetArraySize(defs), 3);
    assert_string_equal(str(cJSON_GetArrayItem(defs, 1), "name"), "Status");
    assert_int_equal(cJSON_GetArraySize(gf_json_path(t, "rows")), 4);
    assert_string_equal(cell(t, 0, 0)->valuestring, "default");
    assert_string_equal(cell(t, 0, 1)->valuestring, "Active");
    assert_string_equal(cell(t, 0, 2)->valuestring, "0s");
    const cJSON *row = cJSON_GetArrayItem(gf_json_path(t, "rows"), 0);
    assert_string_equal(str(row, "object.kind"), "Namespace");
    assert_non_null(gf_json_str(t, "metadata.resourceVersion"));
    cJSON_Delete(t);
    int code;
    cJSON_Delete(ks_apitk_json(
        &k, "POST", "/apis/batch/v1/namespaces/default/jobs", NULL,
        "{\"metadata\":{\"name\":\"j\"},\"spec\":{\"completions\":3,"
        "\"suspend\":true,\"template\":{\"spec\":{\"restartPolicy\":\"Never\","
        "\"containers\":[{\"name\":\"c\",\"image\":\"busybox:1.36\"}]}}}}",
        &code));
    ks_apitk_resp_init(&r);
    ks_apitk_do(&k, &r, "GET",
                "/apis/batch/v1/namespaces/default/jobs?includeObject=None",
                NULL, TABLE_ACCEPT, NULL);
    t = cJSON_Parse(gf_buf_cstr(&r.body));
    ks_apitk_resp_free(&r);
    assert_string_equal(cell(t, 0, 1)->valuestring, "Suspended");
    assert_string_equal(cell(t, 0, 2)->valuestring, "0/3");
    row = cJSON_GetArrayItem(gf_json_path(t, "rows"), 0);
    assert_null(gf_json_path(row, "object"));
    cJSON_Delete(t);
    ks_apitk_stop(&k);
}

/* Ages as k8s.io/apimachinery's HumanDuration writes them. */
static void test_table_ages(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    int code;
    cJSON_Delete(ks_apitk_json(&k, "POST",
                               "/api/v1/namespaces/default/configmaps", NULL,
                               "{\"metadata\":{\"name\":\"c\"}}", &code));
    static const struct {
        uint64_t advance_s;
        const char *age;
    } steps[] = {
        {90, "90s"},
        {30, "2m"},
        {210, "5m30s"},
        {3600, "65m"},
        {3600, "125m"},
        {36000, "12h"},
        {86400ULL * 2, "2d12h"},
        {86400ULL * 30, "32d"},
        {86400ULL * 800, "2y102d"},
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        gf_clock_advance(&k.clock, steps[i].advance_s * 1000);
        struct ks_apitk_resp r;
        ks_apitk_resp_init(&r);
        ks_apitk_do(&k, &r, "GET", "/api/v1/namespaces/default/configmaps/c",
                    NULL, TABLE_ACCEPT, NULL);
        cJSON *t = cJSON_Parse(gf_buf_cstr(&r.body));
        ks_apitk_resp_free(&r);
        assert_string_equal(cell(t, 0, 2)->valuestring, steps[i].age);
        cJSON_Delete(t);
    }
    ks_apitk_stop(&k);
}

static void test_crd_lifecycle(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    static const char crd[] =
        "apiVersion: apiextensions.k8s.io/v1\n"
        "kind: CustomResourceDefinition\n"
        "metadata:\n  name: widgets.example.io\n"
        "spec:\n  group: example.io\n  scope: Namespaced\n"
        "  names:\n    plural: widgets\n    singular: widget\n"
        "    kind: Widget\n    shortNames: [wd]\n    categories: [all]\n"
        "  versions:\n  - name: v1\n    served: true\n    storage: true\n"
        "    schema:\n      openAPIV3Schema:\n        type: object\n"
        "        required: [spec]\n"
        "        properties:\n          spec:\n            type: object\n"
        "            required: [size]\n"
        "            properties:\n              size:\n"
        "                type: integer\n              on:\n"
        "                type: boolean\n";
    apply(&k, crd, 0);
    int code;
    cJSON *j = ks_apitk_json(&k, "POST",
                             "/apis/example.io/v1/namespaces/default/widgets",
                             NULL, "{\"metadata\":{\"name\":\"w\"}}", &code);
    assert_int_equal(code, 422);
    assert_string_equal(
        str(cJSON_GetArrayItem(gf_json_path(j, "details.causes"), 0), "field"),
        "spec");
    cJSON_Delete(j);
    j = ks_apitk_json(&k, "POST",
                      "/apis/example.io/v1/namespaces/default/widgets", NULL,
                      "{\"metadata\":{\"name\":\"w\"},\"spec\":{\"size\":2,"
                      "\"on\":true}}",
                      &code);
    assert_int_equal(code, 201);
    cJSON_Delete(j);
    /* Without printer columns a CRD prints Name and Age. */
    gf_clock_advance(&k.clock, 3ULL * 3600 * 1000);
    struct ks_apitk_resp r;
    ks_apitk_resp_init(&r);
    ks_apitk_do(&k, &r, "GET", "/apis/example.io/v1/namespaces/default/widgets",
                NULL, TABLE_ACCEPT, NULL);
    j = cJSON_Parse(gf_buf_cstr(&r.body));
    ks_apitk_resp_free(&r);
    assert_int_equal(cJSON_GetArraySize(gf_json_path(j, "columnDefinitions")),
                     2);
    assert_string_equal(cell(j, 0, 0)->valuestring, "w");
    assert_string_equal(cell(j, 0, 1)->valuestring, "3h");
    cJSON_Delete(j);
    ks_apitk_resp_init(&r);
    ks_apitk_do(&k, &r, "GET", "/apis/example.io/v1/widgets?watch=1", NULL,
                NULL, NULL);
    assert_int_equal(ks_apitk_events(&r), 1);
    /* Deleting the CRD removes the type, its objects and its watches. */
    j = ks_apitk_json(&k, "DELETE",
                      "/apis/apiextensions.k8s.io/v1/"
                      "customresourcedefinitions/widgets.example.io",
                      NULL, NULL, &code);
    assert_int_equal(code, 200);
    cJSON_Delete(j);
    /* Watchers see the objects go, then the stream ends. */
    assert_true(r.ended);
    assert_int_equal(ks_apitk_events(&r), 2);
    cJSON *ev = ks_apitk_event(&r, 1);
    assert_string_equal(str(ev, "type"), "DELETED");
    assert_string_equal(str(ev, "object.metadata.name"), "w");
    cJSON_Delete(ev);
    ks_apitk_resp_free(&r);
    cJSON_Delete(get(&k, "/apis/example.io/v1/widgets", 404));
    cJSON_Delete(get(&k, "/apis/example.io/v1", 404));
    /* Malformed CRDs are 422s naming the field. */
    static const struct {
        const char *body, *field;
    } bad[] = {
        {"{\"metadata\":{\"name\":\"x.example.io\"},\"spec\":{\"group\":"
         "\"example.io\",\"scope\":\"Namespaced\",\"names\":{\"plural\":\"y\","
         "\"kind\":\"Y\"},\"versions\":[{\"name\":\"v1\",\"served\":true,"
         "\"storage\":true}]}}",
         "metadata.name"},
        {"{\"metadata\":{\"name\":\"y.example.io\"},\"spec\":{\"group\":"
         "\"example.io\",\"scope\":\"Global\",\"names\":{\"plural\":\"y\","
         "\"kind\":\"Y\"},\"versions\":[{\"name\":\"v1\",\"served\":true,"
         "\"storage\":true}]}}",
         "spec.scope"},
        {"{\"metadata\":{\"name\":\"y.example.io\"},\"spec\":{\"group\":"
         "\"example.io\",\"scope\":\"Cluster\",\"names\":{\"plural\":\"y\","
         "\"kind\":\"Y\"},\"versions\":[{\"name\":\"v1\",\"served\":true,"
         "\"storage\":false}]}}",
         "spec.versions"},
        {"{\"metadata\":{\"name\":\"jobs.batch\"},\"spec\":{\"group\":"
         "\"batch\",\"scope\":\"Cluster\",\"names\":{\"plural\":\"jobs\","
         "\"kind\":\"Job\"},\"versions\":[{\"name\":\"v1\",\"served\":true,"
         "\"storage\":true}]}}",
         "spec.group"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        j = ks_apitk_json(&k, "POST",
                          "/apis/apiextensions.k8s.io/v1/"
                          "customresourcedefinitions",
                          NULL, bad[i].body, &code);
        assert_int_equal(code, 422);
        assert_string_equal(
            str(cJSON_GetArrayItem(gf_json_path(j, "details.causes"), 0),
                "field"),
            bad[i].field);
        cJSON_Delete(j);
    }
    ks_apitk_stop(&k);
}

/*
 * Printer columns whose JSONPath names keys with dots, as Kueue's and
 * gpufed's keys all have: escaped dots belong to the key, in a column's
 * path and in a filter's field alike.
 */
static void test_printer_columns_with_dotted_keys(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    static const char crd[] =
        "{\"apiVersion\":\"apiextensions.k8s.io/v1\",\"kind\":"
        "\"CustomResourceDefinition\",\"metadata\":{\"name\":"
        "\"racks.example.io\"},\"spec\":{\"group\":\"example.io\","
        "\"scope\":\"Cluster\",\"names\":{\"plural\":\"racks\","
        "\"kind\":\"Rack\"},\"versions\":[{\"name\":\"v1\",\"served\":true,"
        "\"storage\":true,\"additionalPrinterColumns\":["
        "{\"name\":\"A100\",\"type\":\"string\",\"jsonPath\":"
        "\".spec.slots[?(@.labels.nvidia\\\\.com/gpu==\\\"a100\\\")].name\"},"
        "{\"name\":\"Queue\",\"type\":\"string\",\"jsonPath\":"
        "\".metadata.labels.kueue\\\\.x-k8s\\\\.io/queue-name\"}],"
        "\"schema\":{\"openAPIV3Schema\":{\"type\":\"object\","
        "\"x-kubernetes-preserve-unknown-fields\":true}}}]}}";
    int code;
    cJSON *j = ks_apitk_json(
        &k, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        NULL, crd, &code);
    assert_int_equal(code, 201);
    cJSON_Delete(j);
    j = ks_apitk_json(
        &k, "POST", "/apis/example.io/v1/racks", NULL,
        "{\"metadata\":{\"name\":\"r1\",\"labels\":"
        "{\"kueue.x-k8s.io/queue-name\":\"ml\"}},\"spec\":{\"slots\":["
        "{\"name\":\"s1\",\"labels\":{\"nvidia.com/gpu\":\"h100\"}},"
        "{\"name\":\"s2\",\"labels\":{\"nvidia.com/gpu\":\"a100\"}}]}}",
        &code);
    assert_int_equal(code, 201);
    cJSON_Delete(j);
    struct ks_apitk_resp r;
    ks_apitk_resp_init(&r);
    ks_apitk_do(&k, &r, "GET", "/apis/example.io/v1/racks/r1", NULL,
                TABLE_ACCEPT, NULL);
    j = cJSON_Parse(gf_buf_cstr(&r.body));
    ks_apitk_resp_free(&r);
    assert_non_null(j);
    assert_string_equal(cell(j, 0, 1)->valuestring, "s2");
    assert_string_equal(cell(j, 0, 2)->valuestring, "ml");
    cJSON_Delete(j);
    ks_apitk_stop(&k);
}

/* A changed CRD re-registers its type: versions, columns, schema. */
static void test_crd_update(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    static const char v1[] =
        "{\"apiVersion\":\"apiextensions.k8s.io/v1\",\"kind\":"
        "\"CustomResourceDefinition\",\"metadata\":{\"name\":"
        "\"gadgets.example.io\"},\"spec\":{\"group\":\"example.io\","
        "\"scope\":\"Cluster\",\"names\":{\"plural\":\"gadgets\","
        "\"kind\":\"Gadget\"},\"versions\":[{\"name\":\"v1alpha1\","
        "\"served\":true,\"storage\":false,\"schema\":{\"openAPIV3Schema\":"
        "{\"type\":\"object\",\"x-kubernetes-preserve-unknown-fields\":"
        "true}}},{\"name\":\"v1\",\"served\":true,\"storage\":true,"
        "\"schema\":{\"openAPIV3Schema\":{\"type\":\"object\","
        "\"properties\":{\"spec\":{\"type\":\"object\",\"properties\":"
        "{\"n\":{\"type\":\"integer\"}}}}}}}]}}";
    int code;
    cJSON *j = ks_apitk_json(
        &k, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        NULL, v1, &code);
    assert_int_equal(code, 201);
    cJSON_Delete(j);
    j = ks_apitk_json(&k, "POST", "/apis/example.io/v1/gadgets", NULL,
                      "{\"metadata\":{\"name\":\"g\"},\"spec\":{\"n\":1}}",
                      &code);
    assert_int_equal(code, 201);
    cJSON_Delete(j);
    cJSON_Delete(get(&k, "/apis/example.io/v1alpha1/gadgets/g", 200));
    /* Stop serving v1alpha1, add a printer column, make n a string. */
    j = ks_apitk_json(
        &k, "PATCH",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
        "gadgets.example.io",
        "application/json-patch+json",
        "[{\"op\":\"replace\",\"path\":\"/spec/versions/0/served\","
        "\"value\":false},{\"op\":\"add\",\"path\":\"/spec/versions/1/"
        "additionalPrinterColumns\",\"value\":[{\"name\":\"N\",\"type\":"
        "\"string\",\"jsonPath\":\".spec.n\"}]},{\"op\":\"replace\","
        "\"path\":\"/spec/versions/1/schema/openAPIV3Schema/properties/spec/"
        "properties/n/type\",\"value\":\"string\"}]",
        &code);
    assert_int_equal(code, 200);
    cJSON_Delete(j);
    cJSON_Delete(get(&k, "/apis/example.io/v1alpha1/gadgets/g", 404));
    struct ks_apitk_resp r;
    ks_apitk_resp_init(&r);
    ks_apitk_do(&k, &r, "GET", "/apis/example.io/v1/gadgets", NULL,
                TABLE_ACCEPT, NULL);
    j = cJSON_Parse(gf_buf_cstr(&r.body));
    ks_apitk_resp_free(&r);
    assert_string_equal(
        str(cJSON_GetArrayItem(gf_json_path(j, "columnDefinitions"), 1),
            "name"),
        "N");
    cJSON_Delete(j);
    /* The new schema applies to writes; the object is still there. */
    j = ks_apitk_json(&k, "PATCH", "/apis/example.io/v1/gadgets/g",
                      "application/merge-patch+json", "{\"spec\":{\"n\":2}}",
                      &code);
    assert_int_equal(code, 422);
    cJSON_Delete(j);
    j = ks_apitk_json(&k, "PATCH", "/apis/example.io/v1/gadgets/g",
                      "application/merge-patch+json",
                      "{\"spec\":{\"n\":\"two\"}}", &code);
    assert_int_equal(code, 200);
    cJSON_Delete(j);
    ks_apitk_stop(&k);
}

static void test_catalog_shares_schemas(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    load_kueue(&k);
    size_t one = gf_ks_schema_cache_size(k.catalog->schemas);
    assert_true(one >= 10);
    /* A second cluster on the same catalog adds no schema. */
    struct gf_ks_api_opts o = {
        .clock = &k.clock, .catalog = k.catalog, .cluster = "b", .uid_seed = 7};
    struct gf_ks_api *saved = k.api;
    k.api = gf_ks_api_new(&o);
    load_kueue(&k);
    assert_int_equal(gf_ks_schema_cache_size(k.catalog->schemas), one);
    gf_ks_api_free(k.api);
    k.api = saved;
    ks_apitk_stop(&k);
}

static void test_yaml_errors(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    static const char bad_yaml[] = "a: b\n c: [d\n";
    assert_int_equal(
        gf_ks_api_apply_yaml(k.api, bad_yaml, strlen(bad_yaml), &err),
        GF_EINVALID);
    assert_int_equal(err.code, 400);
    assert_non_null(strstr(err.message, "line"));
    static const char unknown[] = "apiVersion: x.io/v1\nkind: Thing\n"
                                  "metadata:\n  name: t\n";
    assert_int_equal(
        gf_ks_api_apply_yaml(k.api, unknown, strlen(unknown), &err),
        GF_ENOTFOUND);
    assert_non_null(strstr(err.message, "no matches for kind \"Thing\""));
    /* A billion-laughs document is refused, not expanded. */
    struct gf_buf b = GF_BUF_INIT(1 << 20);
    gf_buf_puts(&b, "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for (int i = 1; i < 12; i++)
        gf_buf_printf(&b,
                      "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, "
                      "*a%d, *a%d, *a%d]\n",
                      i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1,
                      i - 1, i - 1, i - 1);
    assert_int_equal(gf_ks_api_apply_yaml(k.api, gf_buf_cstr(&b), b.len, &err),
                     GF_EINVALID);
    gf_buf_free(&b);
    /* A List document and scalars resolved as YAML does. */
    static const char list[] =
        "apiVersion: v1\nkind: List\nitems:\n"
        "- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: l1\n"
        "  data:\n    n: \"1\"\n"
        "- {apiVersion: v1, kind: ConfigMap, metadata: {name: l2, "
        "namespace: kube-system}}\n";
    assert_int_equal(gf_ks_api_apply_yaml(k.api, list, strlen(list), &err), 0);
    int code;
    cJSON *j =
        ks_apitk_json(&k, "GET", "/api/v1/namespaces/kube-system/configmaps/l2",
                      NULL, NULL, &code);
    assert_int_equal(code, 200);
    cJSON_Delete(j);
    j = ks_apitk_json(&k, "GET", "/api/v1/namespaces/default/configmaps/l1",
                      NULL, NULL, &code);
    assert_string_equal(str(j, "data.n"), "1");
    cJSON_Delete(j);
    gf_ks_status_clear(&err);
    ks_apitk_stop(&k);
}

int main(void)
{
    gf_kube_global_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_discovery_builtin),
        cmocka_unit_test(test_openapi_v3),
        cmocka_unit_test(test_kueue_crds_served),
        cmocka_unit_test(test_kueue_validation),
        cmocka_unit_test(test_kueue_tables),
        cmocka_unit_test(test_apply_list_semantics),
        cmocka_unit_test(test_builtin_tables),
        cmocka_unit_test(test_table_ages),
        cmocka_unit_test(test_crd_lifecycle),
        cmocka_unit_test(test_printer_columns_with_dotted_keys),
        cmocka_unit_test(test_crd_update),
        cmocka_unit_test(test_catalog_shares_schemas),
        cmocka_unit_test(test_yaml_errors),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_kube_global_cleanup();
    return rc;
}
