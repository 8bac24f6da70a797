/*
 * api_discovery: the paths clients read before they touch a resource:
 * /api, /apis, /api/v1, /apis/GROUP, /apis/GROUP/VERSION, /version and
 * the health endpoints.
 *
 * Everything is computed from the registered types on each request, so a
 * CRD that was just created is discoverable at once, as with the
 * apiextensions server. Clients that ask for aggregated discovery
 * (apidiscovery.k8s.io/v2, kubectl 1.26+) get /api and /apis as
 * APIGroupDiscoveryList documents, so two requests discover everything;
 * others get the legacy documents.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "e2e/kubesim/api_handlers.h"

/* ---- version priority --------------------------------------------------- */

/*
 * Kubernetes orders versions GA first, then beta, then alpha, each by
 * number descending (v1 > v1beta2 > v1beta1 > v1alpha1); anything else
 * sorts last, by name. Returns a rank: lower is preferred.
 */
static long version_rank(const char *v, long *major, long *minor)
{
    *major = *minor = 0;
    if (v[0] != 'v' || v[1] < '1' || v[1] > '9')
        return 3;
    char *end;
    *major = strtol(v + 1, &end, 10);
    if (*end == '\0')
        return 0;
    long kind = 0;
    if (strncmp(end, "beta", 4) == 0)
        kind = 1, end += 4;
    else if (strncmp(end, "alpha", 5) == 0)
        kind = 2, end += 5;
    else
        return 3;
    char *e2;
    *minor = strtol(end, &e2, 10);
    if (e2 == end || *e2 != '\0')
        return 3;
    return kind;
}

static int version_cmp(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    long xm, xn, ym, yn;
    long rx = version_rank(x, &xm, &xn), ry = version_rank(y, &ym, &yn);
    if (rx != ry)
        return rx < ry ? -1 : 1;
    if (rx == 3)
        return strcmp(x, y);
    if (xm != ym)
        return xm > ym ? -1 : 1;
    if (xn != yn)
        return xn > yn ? -1 : 1;
    return 0;
}

/* ---- collecting groups -------------------------------------------------- */

#define MAX_GROUPS 64
#define MAX_VERSIONS 16

struct group {
    const char *name;
    const char *versions[MAX_VERSIONS];
    size_t nversions;
};

struct groups {
    struct group g[MAX_GROUPS];
    size_t n;
};

static void add_version(struct group *g, const char *v)
{
    for (size_t i = 0; i < g->nversions; i++)
        if (strcmp(g->versions[i], v) == 0)
            return;
    if (g->nversions < MAX_VERSIONS)
        g->versions[g->nversions++] = v;
}

static void collect_type(void *data, const struct gf_ks_rtype *t)
{
    struct groups *gs = data;
    struct group *g = NULL;
    for (size_t i = 0; i < gs->n && g == NULL; i++)
        if (strcmp(gs->g[i].name, t->group) == 0)
            g = &gs->g[i];
    if (g == NULL) {
        if (gs->n == MAX_GROUPS)
            return;
        g = &gs->g[gs->n++];
        g->name = t->group;
    }
    for (size_t i = 0; i < t->n_versions; i++)
        if (t->versions[i].served)
            add_version(g, t->versions[i].name);
}

static void collect(struct gf_ks_api *api, struct groups *gs)
{
    memset(gs, 0, sizeof(*gs));
    gf_ks_store_types(gf_ks_api_store(api), collect_type, gs);
    for (size_t i = 0; i < gs->n; i++)
        qsort(gs->g[i].versions, gs->g[i].nversions, sizeof(char *),
              version_cmp);
}

static const struct group *find_group(const struct groups *gs, const char *name)
{
    for (size_t i = 0; i < gs->n; i++)
        if (strcmp(gs->g[i].name, name) == 0 && gs->g[i].nversions > 0)
            return &gs->g[i];
    return NULL;
}

bool gf__ks_gv_served(struct gf_ks_api *api, const char *group,
                      const char *version)
{
    struct groups gs;
    collect(api, &gs);
    const struct group *g = find_group(&gs, group);
    for (size_t i = 0; g != NULL && i < g->nversions; i++)
        if (strcmp(g->versions[i], version) == 0)
            return true;
    return false;
}

/* ---- documents ---------------------------------------------------------- */

static cJSON *gv_entry(const char *group, const char *version)
{
    char gv[256];
    gf__ks_gv(group, version, gv, sizeof(gv));
    cJSON *v = cJSON_CreateObject();
    cJSON_AddStringToObject(v, "groupVersion", gv);
    cJSON_AddStringToObject(v, "version", version);
    return v;
}

static cJSON *group_doc(const struct group *g, bool with_type_meta)
{
    cJSON *j = cJSON_CreateObject();
    if (with_type_meta) {
        cJSON_AddStringToObject(j, "kind", "APIGroup");
        cJSON_AddStringToObject(j, "apiVersion", "v1");
    }
    cJSON_AddStringToObject(j, "name", g->name);
    cJSON *vs = cJSON_AddArrayToObject(j, "versions");
    for (size_t i = 0; i < g->nversions; i++)
        cJSON_AddItemToArray(vs, gv_entry(g->name, g->versions[i]));
    cJSON_AddItemToObject(j, "preferredVersion",
                          gv_entry(g->name, g->versions[0]));
    return j;
}

static cJSON *api_versions(void)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "kind", "APIVersions");
    cJSON *vs = cJSON_AddArrayToObject(j, "versions");
    cJSON_AddItemToArray(vs, cJSON_CreateString("v1"));
    cJSON *sa = cJSON_AddArrayToObject(j, "serverAddressByClientCIDRs");
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "clientCIDR", "0.0.0.0/0");
    cJSON_AddStringToObject(a, "serverAddress", "");
    cJSON_AddItemToArray(sa, a);
    return j;
}

static cJSON *group_list(const struct groups *gs)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "kind", "APIGroupList");
    cJSON_AddStringToObject(j, "apiVersion", "v1");
    cJSON *arr = cJSON_AddArrayToObject(j, "groups");
    for (size_t i = 0; i < gs->n; i++)
        if (gs->g[i].name[0] != '\0' && gs->g[i].nversions > 0)
            cJSON_AddItemToArray(arr, group_doc(&gs->g[i], false));
    return j;
}

static void add_strv(cJSON *o, const char *key, char *const *v)
{
    if (v == NULL || v[0] == NULL)
        return;
    cJSON *a = cJSON_AddArrayToObject(o, key);
    for (size_t i = 0; v[i] != NULL; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
}

static void add_verbs(cJSON *o, bool read_only, bool status);

/* The verbs of a type's main resource. */
static void type_verbs(cJSON *o, const struct gf_ks_rtype *t)
{
    if (gf__ks_review(t)) {
        cJSON *a = cJSON_AddArrayToObject(o, "verbs");
        cJSON_AddItemToArray(a, cJSON_CreateString("create"));
        return;
    }
    add_verbs(o, t->read_only, false);
}

static void add_verbs(cJSON *o, bool read_only, bool status)
{
    static const char *const all[] = {"create", "delete", "deletecollection",
                                      "get",    "list",   "patch",
                                      "update", "watch"};
    static const char *const ro[] = {"get", "list", "watch"};
    static const char *const st[] = {"get", "patch", "update"};
    const char *const *v = status ? st : read_only ? ro : all;
    size_t n = status ? 3 : read_only ? 3 : 8;
    if (status && read_only)
        n = 1; /* get only */
    cJSON *a = cJSON_AddArrayToObject(o, "verbs");
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
}

struct rl_ctx {
    const char *group, *version;
    cJSON *resources;
};

static void resource_entry(void *data, const struct gf_ks_rtype *t)
{
    struct rl_ctx *c = data;
    if (strcmp(t->group, c->group) != 0 ||
        gf__ks_find_version(t, c->version) == NULL)
        return;
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "name", t->resource);
    cJSON_AddStringToObject(r, "singularName", t->singular);
    cJSON_AddBoolToObject(r, "namespaced", t->namespaced);
    cJSON_AddStringToObject(r, "kind", t->kind);
    type_verbs(r, t);
    add_strv(r, "shortNames", t->short_names);
    add_strv(r, "categories", t->categories);
    cJSON_AddItemToArray(c->resources, r);
    if (!t->has_status)
        return;
    char name[300];
    snprintf(name, sizeof(name), "%s/status", t->resource);
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "name", name);
    cJSON_AddStringToObject(s, "singularName", "");
    cJSON_AddBoolToObject(s, "namespaced", t->namespaced);
    cJSON_AddStringToObject(s, "kind", t->kind);
    add_verbs(s, t->read_only, true);
    cJSON_AddItemToArray(c->resources, s);
}

static cJSON *resource_list(struct gf_ks_api *api, const char *group,
                            const char *version)
{
    char gv[256];
    gf__ks_gv(group, version, gv, sizeof(gv));
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "kind", "APIResourceList");
    cJSON_AddStringToObject(j, "apiVersion", "v1");
    cJSON_AddStringToObject(j, "groupVersion", gv);
    struct rl_ctx c = {group, version, cJSON_AddArrayToObject(j, "resources")};
    gf_ks_store_types(gf_ks_api_store(api), resource_entry, &c);
    return j;
}

static cJSON *version_doc(void)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "major", "1");
    cJSON_AddStringToObject(j, "minor", "32");
    cJSON_AddStringToObject(j, "gitVersion", "v1.32.0-kubesim");
    cJSON_AddStringToObject(j, "gitCommit",
                            "0000000000000000000000000000000000000000");
    cJSON_AddStringToObject(j, "gitTreeState", "clean");
    cJSON_AddStringToObject(j, "buildDate", "2026-01-01T00:00:00Z");
    cJSON_AddStringToObject(j, "goVersion", "go1.23.0");
    cJSON_AddStringToObject(j, "compiler", "gc");
    cJSON_AddStringToObject(j, "platform", "linux/amd64");
    return j;
}

static bool has_prefix_path(const char *p, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncmp(p, prefix, n) == 0 && (p[n] == '\0' || p[n] == '/');
}

/* Splits /apis/G[/V] into group and version (either may stay ""). */
static bool split_apis(const char *p, char *g, size_t gcap, char *v,
                       size_t vcap)
{
    g[0] = v[0] = '\0';
    if (!has_prefix_path(p, "/apis") || p[5] == '\0' || p[6] == '\0')
        return false;
    const char *s = p + 6;
    const char *slash = strchr(s, '/');
    size_t gl = slash != NULL ? (size_t)(slash - s) : strlen(s);
    if (gl == 0 || gl >= gcap)
        return false;
    memcpy(g, s, gl);
    g[gl] = '\0';
    if (slash == NULL || slash[1] == '\0')
        return true;
    snprintf(v, vcap, "%s", slash + 1);
    size_t vl = strlen(v);
    if (vl > 0 && v[vl - 1] == '/')
        v[vl - 1] = '\0';
    return strchr(v, '/') == NULL && v[0] != '\0';
}

static cJSON *apis_doc(struct gf_ks_api *api, const char *path)
{
    struct groups gs;
    collect(api, &gs);
    if (strcmp(path, "/apis") == 0 || strcmp(path, "/apis/") == 0)
        return group_list(&gs);
    char g[128], v[64];
    if (!split_apis(path, g, sizeof(g), v, sizeof(v)))
        return NULL;
    const struct group *grp = find_group(&gs, g);
    if (grp == NULL)
        return NULL;
    if (v[0] == '\0')
        return group_doc(grp, true);
    for (size_t i = 0; i < grp->nversions; i++)
        if (strcmp(grp->versions[i], v) == 0)
            return resource_list(api, g, v);
    return NULL;
}

/* ---- aggregated discovery (apidiscovery.k8s.io/v2) ---------------------- */

#define AGG_CTYPE                                                              \
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

/* True when one of the Accept entries is the v2 aggregated list. */
static bool wants_aggregated(const char *accept)
{
    const char *p = accept;
    while (p != NULL && *p != '\0') {
        const char *comma = strchr(p, ',');
        size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);
        char e[256];
        snprintf(e, sizeof(e), "%.*s", (int)(n < sizeof(e) ? n : 0), p);
        char *v = strstr(e, ";v=");
        if (strstr(e, "g=apidiscovery.k8s.io") != NULL && v != NULL &&
            strncmp(v + 3, "v2", 2) == 0 && (v[5] == ';' || v[5] == '\0') &&
            strstr(e, "as=APIGroupDiscoveryList") != NULL)
            return true;
        p = comma != NULL ? comma + 1 : NULL;
    }
    return false;
}

static cJSON *gvk(const char *group, const char *version, const char *kind)
{
    cJSON *k = cJSON_CreateObject();
    cJSON_AddStringToObject(k, "group", group);
    cJSON_AddStringToObject(k, "version", version);
    cJSON_AddStringToObject(k, "kind", kind);
    return k;
}

static void agg_resource(void *data, const struct gf_ks_rtype *t)
{
    struct rl_ctx *c = data;
    if (strcmp(t->group, c->group) != 0 ||
        gf__ks_find_version(t, c->version) == NULL)
        return;
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "resource", t->resource);
    cJSON_AddItemToObject(r, "responseKind",
                          gvk(t->group, c->version, t->kind));
    cJSON_AddStringToObject(r, "scope",
                            t->namespaced ? "Namespaced" : "Cluster");
    cJSON_AddStringToObject(r, "singularResource", t->singular);
    type_verbs(r, t);
    add_strv(r, "shortNames", t->short_names);
    add_strv(r, "categories", t->categories);
    if (t->has_status) {
        cJSON *subs = cJSON_AddArrayToObject(r, "subresources");
        cJSON *s = cJSON_CreateObject();
        cJSON_AddStringToObject(s, "subresource", "status");
        cJSON_AddItemToObject(s, "responseKind",
                              gvk(t->group, c->version, t->kind));
        add_verbs(s, t->read_only, true);
        cJSON_AddItemToArray(subs, s);
    }
    cJSON_AddItemToArray(c->resources, r);
}

static cJSON *agg_group(struct gf_ks_api *api, const struct group *g)
{
    cJSON *item = cJSON_CreateObject();
    cJSON *m = cJSON_AddObjectToObject(item, "metadata");
    if (g->name[0] != '\0')
        cJSON_AddStringToObject(m, "name", g->name);
    cJSON *vs = cJSON_AddArrayToObject(item, "versions");
    /* Versions in preference order, as the server lists them. */
    for (size_t i = 0; i < g->nversions; i++) {
        cJSON *v = cJSON_CreateObject();
        cJSON_AddStringToObject(v, "version", g->versions[i]);
        struct rl_ctx c = {g->name, g->versions[i],
                           cJSON_AddArrayToObject(v, "resources")};
        gf_ks_store_types(gf_ks_api_store(api), agg_resource, &c);
        cJSON_AddStringToObject(v, "freshness", "Current");
        cJSON_AddItemToArray(vs, v);
    }
    return item;
}

/* /api (core: true) or /apis as an APIGroupDiscoveryList. */
static cJSON *aggregated(struct gf_ks_api *api, bool core)
{
    struct groups gs;
    collect(api, &gs);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "kind", "APIGroupDiscoveryList");
    cJSON_AddStringToObject(j, "apiVersion", "apidiscovery.k8s.io/v2");
    cJSON_AddObjectToObject(j, "metadata");
    cJSON *items = cJSON_AddArrayToObject(j, "items");
    for (size_t i = 0; i < gs.n; i++) {
        bool is_core = gs.g[i].name[0] == '\0';
        if (is_core == core && gs.g[i].nversions > 0)
            cJSON_AddItemToArray(items, agg_group(api, &gs.g[i]));
    }
    return j;
}

static bool serve_aggregated(struct gf_ks_api *api, const struct gf__ks_rreq *r,
                             const char *p)
{
    bool core = strcmp(p, "/api") == 0 || strcmp(p, "/api/") == 0;
    bool apis = strcmp(p, "/apis") == 0 || strcmp(p, "/apis/") == 0;
    if ((!core && !apis) || !wants_aggregated(r->req->accept))
        return false;
    cJSON *doc = aggregated(api, core);
    char *s = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    r->out->reply(r->out->ctx, 200, AGG_CTYPE, s, strlen(s));
    gf_free(s);
    return true;
}

/* "/": the paths the server serves, as GET / lists them. */
static cJSON *root_paths(struct gf_ks_api *api)
{
    struct groups gs;
    collect(api, &gs);
    cJSON *j = cJSON_CreateObject();
    cJSON *p = cJSON_AddArrayToObject(j, "paths");
    static const char *const fixed[] = {"/api",        "/api/v1",  "/apis",
                                        "/apis/",      "/healthz", "/livez",
                                        "/openapi/v3", "/readyz",  "/version"};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        cJSON_AddItemToArray(p, cJSON_CreateString(fixed[i]));
    for (size_t i = 0; i < gs.n; i++) {
        if (gs.g[i].name[0] == '\0')
            continue;
        char path[256];
        snprintf(path, sizeof(path), "/apis/%s", gs.g[i].name);
        cJSON_AddItemToArray(p, cJSON_CreateString(path));
        for (size_t v = 0; v < gs.g[i].nversions; v++) {
            snprintf(path, sizeof(path), "/apis/%s/%s", gs.g[i].name,
                     gs.g[i].versions[v]);
            cJSON_AddItemToArray(p, cJSON_CreateString(path));
        }
    }
    return j;
}

static void reply_text(const struct gf_ks_api_out *out, const char *s)
{
    out->reply(out->ctx, 200, "text/plain; charset=utf-8", s, strlen(s));
}

bool gf__ks_discovery(struct gf_ks_api *api, const struct gf__ks_rreq *r)
{
    const char *p = r->req->path != NULL ? r->req->path : "/";
    if (has_prefix_path(p, "/healthz") || has_prefix_path(p, "/readyz") ||
        has_prefix_path(p, "/livez")) {
        reply_text(r->out, "ok");
        return true;
    }
    if (serve_aggregated(api, r, p))
        return true;
    cJSON *doc = NULL;
    if (strcmp(p, "/") == 0)
        doc = root_paths(api);
    else if (strcmp(p, "/version") == 0 || strcmp(p, "/version/") == 0)
        doc = version_doc();
    else if (strcmp(p, "/api") == 0 || strcmp(p, "/api/") == 0)
        doc = api_versions();
    else if (strcmp(p, "/api/v1") == 0 || strcmp(p, "/api/v1/") == 0)
        doc = resource_list(api, "", "v1");
    else if (has_prefix_path(p, "/apis"))
        doc = apis_doc(api, p);
    else if (has_prefix_path(p, "/openapi/v3"))
        doc = gf__ks_openapi(api, p);
    if (doc == NULL)
        return false;
    gf__ks_reply_json(r->out, 200, doc);
    cJSON_Delete(doc);
    return true;
}
