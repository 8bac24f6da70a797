/*
 * api_builtin: the built-in types of a simulated cluster and the
 * namespaces every cluster starts with.
 *
 * Only the types gpufed, Kueue-lite and the e2e tests touch are served;
 * their names, short names, categories, scope and subresources are those
 * of the real API server so that kubectl's resource mapping and the
 * Python client's typed calls resolve them unchanged. Built-in types carry
 * no schema: the store keeps whatever fields a client writes.
 */
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "e2e/kubesim/api_internal.h"

struct builtin {
    const char *group, *version, *resource, *kind, *singular;
    const char *short_names[3];
    bool namespaced, has_status, read_only, default_orphan, all;
};

static const struct builtin builtins[] = {
    {"",
     "v1",
     "namespaces",
     "Namespace",
     "namespace",
     {"ns"},
     false,
     true,
     false,
     false,
     false},
    {"",
     "v1",
     "configmaps",
     "ConfigMap",
     "configmap",
     {"cm"},
     true,
     false,
     false,
     false,
     false},
    {"",
     "v1",
     "secrets",
     "Secret",
     "secret",
     {0},
     true,
     false,
     false,
     false,
     false},
    {"",
     "v1",
     "events",
     "Event",
     "event",
     {"ev"},
     true,
     false,
     false,
     false,
     false},
    {"", "v1", "pods", "Pod", "pod", {"po"}, true, true, true, false, true},
    {"",
     "v1",
     "nodes",
     "Node",
     "node",
     {"no"},
     false,
     true,
     false,
     false,
     false},
    {"",
     "v1",
     "serviceaccounts",
     "ServiceAccount",
     "serviceaccount",
     {"sa"},
     true,
     false,
     false,
     false,
     false},
    /* Stored only, as the manifests' Service, Deployments and
     * PodDisruptionBudget need: no endpoints, no ReplicaSets, no Pods and
     * no disruption controller act on them, so their status stays as
     * written. */
    {"",
     "v1",
     "services",
     "Service",
     "service",
     {"svc"},
     true,
     true,
     false,
     false,
     true},
    {"apps",
     "v1",
     "deployments",
     "Deployment",
     "deployment",
     {"deploy"},
     true,
     true,
     false,
     false,
     true},
    {"policy",
     "v1",
     "poddisruptionbudgets",
     "PodDisruptionBudget",
     "poddisruptionbudget",
     {"pdb"},
     true,
     true,
     false,
     false,
     false},
    {"batch", "v1", "jobs", "Job", "job", {0}, true, true, false, true, true},
    {"coordination.k8s.io",
     "v1",
     "leases",
     "Lease",
     "lease",
     {0},
     true,
     false,
     false,
     false,
     false},
    {"rbac.authorization.k8s.io",
     "v1",
     "clusterroles",
     "ClusterRole",
     "clusterrole",
     {0},
     false,
     false,
     false,
     false,
     false},
    {"rbac.authorization.k8s.io",
     "v1",
     "clusterrolebindings",
     "ClusterRoleBinding",
     "clusterrolebinding",
     {0},
     false,
     false,
     false,
     false,
     false},
    {"rbac.authorization.k8s.io",
     "v1",
     "roles",
     "Role",
     "role",
     {0},
     true,
     false,
     false,
     false,
     false},
    {"rbac.authorization.k8s.io",
     "v1",
     "rolebindings",
     "RoleBinding",
     "rolebinding",
     {0},
     true,
     false,
     false,
     false,
     false},
    {"apiextensions.k8s.io",
     "v1",
     "customresourcedefinitions",
     "CustomResourceDefinition",
     "customresourcedefinition",
     {"crd", "crds"},
     false,
     true,
     false,
     false,
     false},
    {"authorization.k8s.io",
     "v1",
     "selfsubjectaccessreviews",
     "SelfSubjectAccessReview",
     "selfsubjectaccessreview",
     {0},
     false,
     false,
     false,
     false,
     false},
    /* Stored apart from core/v1 Events (the server converts between the
     * two; kubesim does not). */
    {"events.k8s.io",
     "v1",
     "events",
     "Event",
     "event",
     {"ev"},
     true,
     false,
     false,
     false,
     false},
    /* Stored only: no provisioner acts on it. */
    {"storage.k8s.io",
     "v1",
     "storageclasses",
     "StorageClass",
     "storageclass",
     {"sc"},
     false,
     false,
     false,
     false,
     false},
    {"scheduling.k8s.io",
     "v1",
     "priorityclasses",
     "PriorityClass",
     "priorityclass",
     {"pc"},
     false,
     false,
     false,
     false,
     false},
};

static char **strv_dup(const char *const *v, size_t max)
{
    size_t n = 0;
    while (n < max && v[n] != NULL)
        n++;
    if (n == 0)
        return NULL;
    char **out = gf_calloc(n + 1, sizeof(*out));
    for (size_t i = 0; i < n; i++)
        out[i] = gf_strdup(v[i]);
    return out;
}

static struct gf_ks_rtype *builtin_type(const struct builtin *b)
{
    struct gf_ks_rtype *t = gf_calloc(1, sizeof(*t));
    t->group = gf_strdup(b->group);
    t->resource = gf_strdup(b->resource);
    t->kind = gf_strdup(b->kind);
    t->singular = gf_strdup(b->singular);
    t->short_names = strv_dup(b->short_names, 3);
    if (b->all) {
        static const char *const all[] = {"all", NULL};
        t->categories = strv_dup(all, 1);
    }
    t->versions = gf_calloc(1, sizeof(*t->versions));
    t->versions[0].name = gf_strdup(b->version);
    t->versions[0].served = true;
    t->versions[0].storage = true;
    t->n_versions = 1;
    t->namespaced = b->namespaced;
    t->has_status = b->has_status;
    t->read_only = b->read_only;
    t->default_orphan = b->default_orphan;
    return t;
}

bool gf__ks_builtin(const struct gf_ks_rtype *t)
{
    for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++)
        if (strcmp(builtins[i].group, t->group) == 0 &&
            strcmp(builtins[i].resource, t->resource) == 0)
            return true;
    return false;
}

bool gf__ks_review(const struct gf_ks_rtype *t)
{
    return strcmp(t->group, "authorization.k8s.io") == 0 &&
           strcmp(t->resource, "selfsubjectaccessreviews") == 0;
}

void gf__ks_builtin_register(struct gf_ks_api *api)
{
    struct gf_ks_store *st = gf_ks_api_store(api);
    for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++) {
        int rc = gf_ks_store_register(st, builtin_type(&builtins[i]));
        GF_BUG_ON(rc != 0);
    }
    const struct gf_ks_rtype *ns = gf_ks_store_type(st, "", "namespaces");
    static const char *const names[] = {"default", "kube-system", "kube-public",
                                        "kube-node-lease"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "apiVersion", "v1");
        cJSON_AddStringToObject(o, "kind", "Namespace");
        cJSON *m = cJSON_AddObjectToObject(o, "metadata");
        cJSON_AddStringToObject(m, "name", names[i]);
        int rc = gf_ks_store_create(st, ns, NULL, o, GF_KS_MAIN, NULL, NULL);
        GF_BUG_ON(rc != 0);
        cJSON_Delete(o);
    }
}
