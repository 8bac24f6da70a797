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
#include "e2e/kubesim/api_handlers.h"

/* What a built-in type is, as flags: a row names only what holds. */
enum {
    BI_NAMESPACED = 1u << 0,  /* objects live in a namespace */
    BI_STATUS = 1u << 1,      /* has the status subresource */
    BI_READ_ONLY = 1u << 2,   /* clients may read, never write (405) */
    BI_ORPHAN = 1u << 3,      /* deletion orphans dependents by default */
    BI_ALL = 1u << 4,         /* in the "all" category (kubectl get all) */
    BI_GENERATION = 1u << 5,  /* keeps metadata.generation */
    BI_RV_REQUIRED = 1u << 6, /* a PUT must name metadata.resourceVersion */
};

struct builtin {
    const char *group, *version, *resource, *kind, *singular;
    const char *short_names[3];
    unsigned flags;
};

static const struct builtin builtins[] = {
    {.group = "",
     .version = "v1",
     .resource = "namespaces",
     .kind = "Namespace",
     .singular = "namespace",
     .short_names = {"ns"},
     .flags = BI_STATUS},
    {.group = "",
     .version = "v1",
     .resource = "configmaps",
     .kind = "ConfigMap",
     .singular = "configmap",
     .short_names = {"cm"},
     .flags = BI_NAMESPACED},
    {.group = "",
     .version = "v1",
     .resource = "secrets",
     .kind = "Secret",
     .singular = "secret",
     .flags = BI_NAMESPACED},
    {.group = "",
     .version = "v1",
     .resource = "events",
     .kind = "Event",
     .singular = "event",
     .short_names = {"ev"},
     .flags = BI_NAMESPACED},
    {.group = "",
     .version = "v1",
     .resource = "pods",
     .kind = "Pod",
     .singular = "pod",
     .short_names = {"po"},
     .flags = BI_NAMESPACED | BI_STATUS | BI_READ_ONLY | BI_ALL},
    {.group = "",
     .version = "v1",
     .resource = "nodes",
     .kind = "Node",
     .singular = "node",
     .short_names = {"no"},
     .flags = BI_STATUS},
    {.group = "",
     .version = "v1",
     .resource = "serviceaccounts",
     .kind = "ServiceAccount",
     .singular = "serviceaccount",
     .short_names = {"sa"},
     .flags = BI_NAMESPACED},
    /* Stored only, as the manifests' Service, Deployments and
     * PodDisruptionBudget need: no endpoints, no ReplicaSets, no Pods and
     * no disruption controller act on them, so their status stays as
     * written. */
    {.group = "",
     .version = "v1",
     .resource = "services",
     .kind = "Service",
     .singular = "service",
     .short_names = {"svc"},
     .flags = BI_NAMESPACED | BI_STATUS | BI_ALL},
    {.group = "apps",
     .version = "v1",
     .resource = "deployments",
     .kind = "Deployment",
     .singular = "deployment",
     .short_names = {"deploy"},
     .flags = BI_NAMESPACED | BI_STATUS | BI_ALL | BI_GENERATION},
    {.group = "policy",
     .version = "v1",
     .resource = "poddisruptionbudgets",
     .kind = "PodDisruptionBudget",
     .singular = "poddisruptionbudget",
     .short_names = {"pdb"},
     .flags = BI_NAMESPACED | BI_STATUS | BI_GENERATION},
    {.group = "batch",
     .version = "v1",
     .resource = "jobs",
     .kind = "Job",
     .singular = "job",
     .flags = BI_NAMESPACED | BI_STATUS | BI_ORPHAN | BI_ALL | BI_GENERATION},
    {.group = "coordination.k8s.io",
     .version = "v1",
     .resource = "leases",
     .kind = "Lease",
     .singular = "lease",
     .flags = BI_NAMESPACED | BI_RV_REQUIRED},
    {.group = "rbac.authorization.k8s.io",
     .version = "v1",
     .resource = "clusterroles",
     .kind = "ClusterRole",
     .singular = "clusterrole"},
    {.group = "rbac.authorization.k8s.io",
     .version = "v1",
     .resource = "clusterrolebindings",
     .kind = "ClusterRoleBinding",
     .singular = "clusterrolebinding"},
    {.group = "rbac.authorization.k8s.io",
     .version = "v1",
     .resource = "roles",
     .kind = "Role",
     .singular = "role",
     .flags = BI_NAMESPACED},
    {.group = "rbac.authorization.k8s.io",
     .version = "v1",
     .resource = "rolebindings",
     .kind = "RoleBinding",
     .singular = "rolebinding",
     .flags = BI_NAMESPACED},
    {.group = "apiextensions.k8s.io",
     .version = "v1",
     .resource = "customresourcedefinitions",
     .kind = "CustomResourceDefinition",
     .singular = "customresourcedefinition",
     .short_names = {"crd", "crds"},
     .flags = BI_STATUS | BI_GENERATION | BI_RV_REQUIRED},
    {.group = "authorization.k8s.io",
     .version = "v1",
     .resource = "selfsubjectaccessreviews",
     .kind = "SelfSubjectAccessReview",
     .singular = "selfsubjectaccessreview"},
    /* Stored apart from core/v1 Events (the server converts between the
     * two; kubesim does not). */
    {.group = "events.k8s.io",
     .version = "v1",
     .resource = "events",
     .kind = "Event",
     .singular = "event",
     .short_names = {"ev"},
     .flags = BI_NAMESPACED},
    /* Stored only: no provisioner acts on it. */
    {.group = "storage.k8s.io",
     .version = "v1",
     .resource = "storageclasses",
     .kind = "StorageClass",
     .singular = "storageclass",
     .short_names = {"sc"}},
    {.group = "scheduling.k8s.io",
     .version = "v1",
     .resource = "priorityclasses",
     .kind = "PriorityClass",
     .singular = "priorityclass",
     .short_names = {"pc"}},
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
    if (b->flags & BI_ALL) {
        static const char *const all[] = {"all", NULL};
        t->categories = strv_dup(all, 1);
    }
    t->versions = gf_calloc(1, sizeof(*t->versions));
    t->versions[0].name = gf_strdup(b->version);
    t->versions[0].served = true;
    t->versions[0].storage = true;
    t->n_versions = 1;
    t->namespaced = (b->flags & BI_NAMESPACED) != 0;
    t->has_status = (b->flags & BI_STATUS) != 0;
    t->read_only = (b->flags & BI_READ_ONLY) != 0;
    t->default_orphan = (b->flags & BI_ORPHAN) != 0;
    t->no_generation = (b->flags & BI_GENERATION) == 0;
    t->unconditional_update = (b->flags & BI_RV_REQUIRED) == 0;
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

bool gf__ks_builtin_group(const char *group)
{
    for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++)
        if (strcmp(builtins[i].group, group) == 0)
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
    gf__ks_job_register(st);
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
