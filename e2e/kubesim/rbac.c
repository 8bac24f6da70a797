/*
 * rbac: the RBAC authorizer over a compiled copy of the cluster's RBAC
 * objects. See rbac.h for the rules; the matching functions mirror the
 * ones Kubernetes documents for PolicyRule, one small function each.
 */
#include "e2e/kubesim/rbac.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/json.h"
#include "common/log.h"

#define RBAC_GROUP "rbac.authorization.k8s.io"

/* One PolicyRule; every list is NULL-terminated, NULL when absent. */
struct rule {
    char **verbs, **groups, **resources, **names, **urls;
};

struct role {
    char *ns; /* "" for a ClusterRole */
    char *name;
    struct rule *rules;
    size_t n_rules;
    size_t n_own;       /* rules of the object itself, before aggregation */
    cJSON *labels;      /* owned copy of metadata.labels, or NULL */
    cJSON *aggregation; /* owned aggregationRule.clusterRoleSelectors */
};

enum subject_kind { SUBJ_USER, SUBJ_GROUP, SUBJ_SA };

struct subject {
    enum subject_kind kind;
    char *name;
    char *ns; /* ServiceAccount namespace */
};

struct binding {
    char *ns; /* "" for a ClusterRoleBinding */
    bool cluster_role;
    char *role;
    struct subject *subjects;
    size_t n_subjects;
};

struct gf_ks_rbac {
    struct gf_ks_store *st; /* borrowed */
    struct gf_ks_observer *obs;
    bool dirty;
    unsigned long rebuilds;
    struct role *roles; /* Roles and ClusterRoles */
    size_t n_roles;
    struct binding *bindings;
    size_t n_bindings;
};

/* ---- compiled cache ---------------------------------------------------- */

static void strv_free(char **v)
{
    for (size_t i = 0; v != NULL && v[i] != NULL; i++)
        gf_free(v[i]);
    gf_free(v);
}

/* A NULL-terminated copy of the strings of a JSON array; NULL if none. */
static char **strv_of(const cJSON *arr)
{
    if (!cJSON_IsArray(arr))
        return NULL;
    char **v = gf_calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(char *));
    size_t n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        if (cJSON_IsString(it))
            v[n++] = gf_strdup(it->valuestring);
    }
    return v;
}

static const char *str_at(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static void clear_cache(struct gf_ks_rbac *r)
{
    for (size_t i = 0; i < r->n_roles; i++) {
        struct role *ro = &r->roles[i];
        for (size_t j = 0; j < ro->n_rules; j++) {
            strv_free(ro->rules[j].verbs);
            strv_free(ro->rules[j].groups);
            strv_free(ro->rules[j].resources);
            strv_free(ro->rules[j].names);
            strv_free(ro->rules[j].urls);
        }
        gf_free(ro->rules);
        gf_free(ro->ns);
        gf_free(ro->name);
        cJSON_Delete(ro->labels);
        cJSON_Delete(ro->aggregation);
    }
    for (size_t i = 0; i < r->n_bindings; i++) {
        struct binding *b = &r->bindings[i];
        for (size_t j = 0; j < b->n_subjects; j++) {
            gf_free(b->subjects[j].name);
            gf_free(b->subjects[j].ns);
        }
        gf_free(b->subjects);
        gf_free(b->ns);
        gf_free(b->role);
    }
    GF_FREE(r->roles);
    GF_FREE(r->bindings);
    r->n_roles = r->n_bindings = 0;
}

static bool add_role(void *data, struct gf_ks_obj *o)
{
    struct gf_ks_rbac *r = data;
    cJSON *j = gf_ks_obj_parse(o);
    const cJSON *rules = cJSON_GetObjectItemCaseSensitive(j, "rules");
    r->roles = gf_realloc(r->roles, (r->n_roles + 1) * sizeof(*r->roles));
    struct role *ro = &r->roles[r->n_roles++];
    ro->ns = gf_strdup(o->ns);
    ro->name = gf_strdup(o->name);
    size_t n = cJSON_IsArray(rules) ? (size_t)cJSON_GetArraySize(rules) : 0;
    ro->rules = gf_calloc(n + 1, sizeof(*ro->rules));
    ro->n_rules = 0;
    const cJSON *ru;
    const cJSON *rules_arr = n > 0 ? rules : NULL;
    cJSON_ArrayForEach(ru, rules_arr)
    {
        struct rule *x = &ro->rules[ro->n_rules++];
        x->verbs = strv_of(cJSON_GetObjectItemCaseSensitive(ru, "verbs"));
        x->groups = strv_of(cJSON_GetObjectItemCaseSensitive(ru, "apiGroups"));
        x->resources =
            strv_of(cJSON_GetObjectItemCaseSensitive(ru, "resources"));
        x->names =
            strv_of(cJSON_GetObjectItemCaseSensitive(ru, "resourceNames"));
        x->urls =
            strv_of(cJSON_GetObjectItemCaseSensitive(ru, "nonResourceURLs"));
    }
    ro->n_own = ro->n_rules;
    const cJSON *labels = gf_json_path(j, "metadata.labels");
    const cJSON *agg = gf_json_path(j, "aggregationRule.clusterRoleSelectors");
    ro->labels = cJSON_IsObject(labels) ? cJSON_Duplicate(labels, true) : NULL;
    ro->aggregation = o->ns[0] == '\0' && cJSON_IsArray(agg)
                          ? cJSON_Duplicate(agg, true)
                          : NULL;
    cJSON_Delete(j);
    return true;
}

/* ---- aggregated ClusterRoles ------------------------------------------- */

static char **strv_dup(char *const *v)
{
    if (v == NULL)
        return NULL;
    size_t n = 0;
    while (v[n] != NULL)
        n++;
    char **out = gf_calloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        out[i] = gf_strdup(v[i]);
    return out;
}

/*
 * matchLabels of one selector against a role's labels. Only matchLabels
 * is evaluated: a selector with matchExpressions selects nothing, which
 * errs on the side of granting less.
 */
static bool selector_selects(const cJSON *sel, const cJSON *labels)
{
    if (cJSON_GetObjectItemCaseSensitive(sel, "matchExpressions") != NULL)
        return false;
    const cJSON *ml = cJSON_GetObjectItemCaseSensitive(sel, "matchLabels");
    const cJSON *kv;
    cJSON_ArrayForEach(kv, ml)
    {
        const cJSON *have =
            cJSON_GetObjectItemCaseSensitive(labels, kv->string);
        if (!cJSON_IsString(kv) || !cJSON_IsString(have) ||
            strcmp(kv->valuestring, have->valuestring) != 0)
            return false;
    }
    /* An empty selector selects nothing (it would select every role). */
    return ml != NULL && ml->child != NULL;
}

static bool aggregates(const struct role *into, const struct role *from)
{
    const cJSON *sel;
    cJSON_ArrayForEach(sel, into->aggregation)
    {
        if (selector_selects(sel, from->labels))
            return true;
    }
    return false;
}

static void append_rules(struct role *into, const struct role *from)
{
    into->rules = gf_realloc(into->rules, (into->n_rules + from->n_own + 1) *
                                              sizeof(*into->rules));
    for (size_t i = 0; i < from->n_own; i++) {
        const struct rule *x = &from->rules[i];
        struct rule *y = &into->rules[into->n_rules++];
        y->verbs = strv_dup(x->verbs);
        y->groups = strv_dup(x->groups);
        y->resources = strv_dup(x->resources);
        y->names = strv_dup(x->names);
        y->urls = strv_dup(x->urls);
    }
}

/*
 * What the clusterrole-aggregation controller writes into a ClusterRole
 * with an aggregationRule: the rules of every ClusterRole its selectors
 * pick. Computed here instead of stored; one level, from the picked
 * roles' own rules, so the result does not depend on the order.
 */
static void aggregate(struct gf_ks_rbac *r)
{
    for (size_t i = 0; i < r->n_roles; i++) {
        struct role *into = &r->roles[i];
        if (into->aggregation == NULL)
            continue;
        for (size_t j = 0; j < r->n_roles; j++) {
            const struct role *from = &r->roles[j];
            if (j != i && from->ns[0] == '\0' && aggregates(into, from))
                append_rules(into, from);
        }
    }
}

static void add_subject(struct binding *b, const cJSON *s)
{
    const char *kind = str_at(s, "kind");
    struct subject *x = &b->subjects[b->n_subjects];
    if (strcmp(kind, "User") == 0)
        x->kind = SUBJ_USER;
    else if (strcmp(kind, "Group") == 0)
        x->kind = SUBJ_GROUP;
    else if (strcmp(kind, "ServiceAccount") == 0)
        x->kind = SUBJ_SA;
    else
        return; /* unknown kinds bind nobody, as in Kubernetes */
    x->name = gf_strdup(str_at(s, "name"));
    /* A ServiceAccount without a namespace is in the binding's. */
    const char *ns = str_at(s, "namespace");
    x->ns = gf_strdup(ns[0] != '\0' ? ns : b->ns);
    b->n_subjects++;
}

static bool add_binding(void *data, struct gf_ks_obj *o)
{
    struct gf_ks_rbac *r = data;
    cJSON *j = gf_ks_obj_parse(o);
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(j, "roleRef");
    const cJSON *subs = cJSON_GetObjectItemCaseSensitive(j, "subjects");
    r->bindings =
        gf_realloc(r->bindings, (r->n_bindings + 1) * sizeof(*r->bindings));
    struct binding *b = &r->bindings[r->n_bindings++];
    b->ns = gf_strdup(o->ns);
    b->cluster_role = strcmp(str_at(ref, "kind"), "ClusterRole") == 0;
    b->role = gf_strdup(str_at(ref, "name"));
    size_t n = cJSON_IsArray(subs) ? (size_t)cJSON_GetArraySize(subs) : 0;
    b->subjects = gf_calloc(n + 1, sizeof(*b->subjects));
    b->n_subjects = 0;
    const cJSON *s;
    const cJSON *subs_arr = n > 0 ? subs : NULL;
    cJSON_ArrayForEach(s, subs_arr)
    {
        add_subject(b, s);
    }
    cJSON_Delete(j);
    return true;
}

static void rebuild(struct gf_ks_rbac *r)
{
    static const char *const role_types[] = {"clusterroles", "roles"};
    static const char *const binding_types[] = {"clusterrolebindings",
                                                "rolebindings"};
    clear_cache(r);
    for (size_t i = 0; i < 2; i++) {
        const struct gf_ks_rtype *t =
            gf_ks_store_type(r->st, RBAC_GROUP, role_types[i]);
        if (t != NULL)
            gf_ks_store_foreach(r->st, t, NULL, add_role, r);
        t = gf_ks_store_type(r->st, RBAC_GROUP, binding_types[i]);
        if (t != NULL)
            gf_ks_store_foreach(r->st, t, NULL, add_binding, r);
    }
    aggregate(r);
    r->dirty = false;
    r->rebuilds++;
}

static void on_change(void *data, const struct gf_ks_event *ev)
{
    struct gf_ks_rbac *r = data;
    if (strcmp(ev->rtype->group, RBAC_GROUP) == 0)
        r->dirty = true;
}

struct gf_ks_rbac *gf_ks_rbac_new(struct gf_ks_store *st)
{
    struct gf_ks_rbac *r = gf_calloc(1, sizeof(*r));
    r->st = st;
    r->dirty = true;
    /*
     * Every type, filtered in on_change: RBAC types may be registered
     * after us, and a strcmp per write is cheap next to the write.
     */
    r->obs = gf_ks_store_observe(st, NULL, on_change, r);
    return r;
}

void gf_ks_rbac_free(struct gf_ks_rbac *r)
{
    if (r == NULL)
        return;
    gf_ks_store_unobserve(r->st, r->obs);
    clear_cache(r);
    gf_free(r);
}

unsigned long gf_ks_rbac_rebuilds(const struct gf_ks_rbac *r)
{
    return r->rebuilds;
}

/* ---- matching ---------------------------------------------------------- */

static bool has(char *const *v, const char *s)
{
    for (size_t i = 0; v != NULL && v[i] != NULL; i++)
        if (strcmp(v[i], s) == 0 || strcmp(v[i], "*") == 0)
            return true;
    return false;
}

static bool has_exact(const char *const *v, const char *s)
{
    for (size_t i = 0; v != NULL && v[i] != NULL; i++)
        if (strcmp(v[i], s) == 0)
            return true;
    return false;
}

static bool resource_matches(const struct rule *ru,
                             const struct gf_ks_authz_attrs *a)
{
    char combined[512];
    const char *sub = a->subresource != NULL ? a->subresource : "";
    if (sub[0] != '\0')
        snprintf(combined, sizeof(combined), "%s/%s", a->resource, sub);
    else
        snprintf(combined, sizeof(combined), "%s", a->resource);
    for (size_t i = 0; ru->resources != NULL && ru->resources[i] != NULL; i++) {
        const char *x = ru->resources[i];
        if (strcmp(x, "*") == 0 || strcmp(x, combined) == 0)
            return true;
        /* "*" followed by "/sub" grants that subresource of everything. */
        if (sub[0] != '\0' && strncmp(x, "*/", 2) == 0 &&
            strcmp(x + 2, sub) == 0)
            return true;
    }
    return false;
}

static bool names_match(const struct rule *ru, const char *name)
{
    if (ru->names == NULL || ru->names[0] == NULL)
        return true;
    return name != NULL && name[0] != '\0' &&
           has_exact((const char *const *)ru->names, name);
}

static bool url_matches(const struct rule *ru, const char *path)
{
    for (size_t i = 0; ru->urls != NULL && ru->urls[i] != NULL; i++) {
        const char *u = ru->urls[i];
        size_t n = strlen(u);
        if (strcmp(u, "*") == 0 || strcmp(u, path) == 0)
            return true;
        if (n > 0 && u[n - 1] == '*' && strncmp(u, path, n - 1) == 0)
            return true;
    }
    return false;
}

static bool rule_allows(const struct rule *ru,
                        const struct gf_ks_authz_attrs *a)
{
    if (!has(ru->verbs, a->verb))
        return false;
    if (a->resource == NULL)
        return url_matches(ru, a->path);
    return has(ru->groups, a->api_group) && resource_matches(ru, a) &&
           names_match(ru, a->name);
}

static bool subject_applies(const struct subject *s,
                            const struct gf_ks_authz_attrs *a)
{
    char sa[512];
    switch (s->kind) {
    case SUBJ_USER:
        return strcmp(s->name, a->user) == 0;
    case SUBJ_GROUP:
        return has_exact(a->groups, s->name);
    case SUBJ_SA:
        snprintf(sa, sizeof(sa), "system:serviceaccount:%s:%s", s->ns, s->name);
        return strcmp(sa, a->user) == 0;
    }
    return false;
}

static const struct role *find_role(const struct gf_ks_rbac *r, const char *ns,
                                    const char *name)
{
    for (size_t i = 0; i < r->n_roles; i++)
        if (strcmp(r->roles[i].ns, ns) == 0 &&
            strcmp(r->roles[i].name, name) == 0)
            return &r->roles[i];
    return NULL;
}

static bool binding_allows(const struct gf_ks_rbac *r, const struct binding *b,
                           const struct gf_ks_authz_attrs *a)
{
    bool cluster_binding = b->ns[0] == '\0';
    /* A RoleBinding grants only in its namespace and never paths. */
    if (!cluster_binding && (a->resource == NULL || strcmp(b->ns, a->ns) != 0))
        return false;
    /* A ClusterRoleBinding can only reference a ClusterRole. */
    if (cluster_binding && !b->cluster_role)
        return false;
    bool applies = false;
    for (size_t i = 0; i < b->n_subjects && !applies; i++)
        applies = subject_applies(&b->subjects[i], a);
    if (!applies)
        return false;
    const struct role *ro = find_role(r, b->cluster_role ? "" : b->ns, b->role);
    for (size_t i = 0; ro != NULL && i < ro->n_rules; i++)
        if (rule_allows(&ro->rules[i], a))
            return true;
    return false;
}

static int forbid(const struct gf_ks_authz_attrs *a, struct gf_ks_status *err)
{
    if (a->resource == NULL)
        return gf_ks_status_set(err, 403, "Forbidden",
                                "forbidden: User \"%s\" cannot %s path \"%s\"",
                                a->user, a->verb, a->path);
    char gr[384], res[384], where[300];
    if (a->api_group[0] != '\0')
        snprintf(gr, sizeof(gr), "%s.%s", a->resource, a->api_group);
    else
        snprintf(gr, sizeof(gr), "%s", a->resource);
    if (a->subresource != NULL && a->subresource[0] != '\0')
        snprintf(res, sizeof(res), "%s/%s", a->resource, a->subresource);
    else
        snprintf(res, sizeof(res), "%s", a->resource);
    if (a->ns[0] != '\0')
        snprintf(where, sizeof(where), "in the namespace \"%s\"", a->ns);
    else
        snprintf(where, sizeof(where), "at the cluster scope");
    char named[300] = "";
    if (a->name[0] != '\0')
        snprintf(named, sizeof(named), " \"%s\"", a->name);
    int rc = gf_ks_status_set(
        err, 403, "Forbidden",
        "%s%s is forbidden: User \"%s\" cannot %s resource \"%s\" in API "
        "group \"%s\" %s",
        gr, named, a->user, a->verb, res, a->api_group, where);
    gf_ks_status_details(err, a->name, a->api_group, a->resource);
    return rc;
}

int gf_ks_rbac_authorize(void *data, const struct gf_ks_authz_attrs *a,
                         struct gf_ks_status *err)
{
    struct gf_ks_rbac *r = data;
    if (has_exact(a->groups, "system:masters"))
        return 0;
    if (r->dirty)
        rebuild(r);
    for (size_t i = 0; i < r->n_bindings; i++)
        if (binding_allows(r, &r->bindings[i], a))
            return 0;
    return forbid(a, err);
}

/* ---- bootstrap --------------------------------------------------------- */

/* The subset of the API server's bootstrap policy that clients rely on. */
static const char *const boot_roles[] = {
    "{\"metadata\":{\"name\":\"cluster-admin\"},\"rules\":["
    "{\"apiGroups\":[\"*\"],\"resources\":[\"*\"],\"verbs\":[\"*\"]},"
    "{\"nonResourceURLs\":[\"*\"],\"verbs\":[\"*\"]}]}",
    "{\"metadata\":{\"name\":\"system:discovery\"},\"rules\":["
    "{\"nonResourceURLs\":[\"/api\",\"/api/*\",\"/apis\",\"/apis/*\","
    "\"/healthz\",\"/livez\",\"/openapi\",\"/openapi/*\",\"/readyz\","
    "\"/version\",\"/version/\"],\"verbs\":[\"get\"]}]}",
    "{\"metadata\":{\"name\":\"system:public-info-viewer\"},\"rules\":["
    "{\"nonResourceURLs\":[\"/healthz\",\"/livez\",\"/readyz\","
    "\"/version\",\"/version/\"],\"verbs\":[\"get\"]}]}",
    /* What `kubectl auth can-i` and `kubectl auth whoami` need. */
    "{\"metadata\":{\"name\":\"system:basic-user\"},\"rules\":["
    "{\"apiGroups\":[\"authorization.k8s.io\"],\"resources\":["
    "\"selfsubjectaccessreviews\",\"selfsubjectrulesreviews\"],"
    "\"verbs\":[\"create\"]},{\"apiGroups\":[\"authentication.k8s.io\"],"
    "\"resources\":[\"selfsubjectreviews\"],\"verbs\":[\"create\"]}]}",
};

static const char *const boot_bindings[] = {
    "{\"metadata\":{\"name\":\"cluster-admin\"},\"roleRef\":{\"apiGroup\":"
    "\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\",\"name\":"
    "\"cluster-admin\"},\"subjects\":[{\"apiGroup\":"
    "\"rbac.authorization.k8s.io\",\"kind\":\"Group\",\"name\":"
    "\"system:masters\"}]}",
    "{\"metadata\":{\"name\":\"system:discovery\"},\"roleRef\":{\"apiGroup\":"
    "\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\",\"name\":"
    "\"system:discovery\"},\"subjects\":[{\"apiGroup\":"
    "\"rbac.authorization.k8s.io\",\"kind\":\"Group\",\"name\":"
    "\"system:authenticated\"}]}",
    "{\"metadata\":{\"name\":\"system:public-info-viewer\"},\"roleRef\":{"
    "\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\","
    "\"name\":\"system:public-info-viewer\"},\"subjects\":[{\"apiGroup\":"
    "\"rbac.authorization.k8s.io\",\"kind\":\"Group\",\"name\":"
    "\"system:authenticated\"},{\"apiGroup\":\"rbac.authorization.k8s.io\","
    "\"kind\":\"Group\",\"name\":\"system:unauthenticated\"}]}",
    "{\"metadata\":{\"name\":\"system:basic-user\"},\"roleRef\":{"
    "\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\","
    "\"name\":\"system:basic-user\"},\"subjects\":[{\"apiGroup\":"
    "\"rbac.authorization.k8s.io\",\"kind\":\"Group\",\"name\":"
    "\"system:authenticated\"}]}",
};

static int create_all(struct gf_ks_store *st, const char *resource,
                      const char *kind, const char *const *docs, size_t n,
                      struct gf_ks_status *err)
{
    const struct gf_ks_rtype *t = gf_ks_store_type(st, RBAC_GROUP, resource);
    if (t == NULL)
        return gf_ks_status_set(err, 404, "NotFound",
                                "the server could not find the requested "
                                "resource (%s)",
                                resource);
    for (size_t i = 0; i < n; i++) {
        cJSON *o = cJSON_Parse(docs[i]);
        GF_BUG_ON(o == NULL);
        cJSON_AddStringToObject(o, "apiVersion", RBAC_GROUP "/v1");
        cJSON_AddStringToObject(o, "kind", kind);
        cJSON *meta = cJSON_GetObjectItemCaseSensitive(o, "metadata");
        cJSON *labels = cJSON_AddObjectToObject(meta, "labels");
        cJSON_AddStringToObject(labels, "kubernetes.io/bootstrapping",
                                "rbac-defaults");
        int rc = gf_ks_store_create(st, t, "", o, GF_KS_MAIN, NULL, err);
        cJSON_Delete(o);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int gf_ks_rbac_bootstrap(struct gf_ks_store *st, struct gf_ks_status *err)
{
    int rc = create_all(st, "clusterroles", "ClusterRole", boot_roles,
                        sizeof(boot_roles) / sizeof(boot_roles[0]), err);
    if (rc == 0)
        rc = create_all(st, "clusterrolebindings", "ClusterRoleBinding",
                        boot_bindings,
                        sizeof(boot_bindings) / sizeof(boot_bindings[0]), err);
    return rc;
}
