/*
 * api_openapi: a minimal /openapi/v3, enough for kubectl's default
 * validation.
 *
 * kubectl (1.27+) validates with --validate=strict by default. Before it
 * sends an object it asks the OpenAPI v3 document of the object's
 * group/version whether the PATCH operation of that kind takes the
 * fieldValidation query parameter; if so, it leaves validation to the
 * server (which kubesim does from the CRD schemas) and needs no client-side
 * schema. Without /openapi/v3 kubectl falls back to downloading
 * /openapi/v2 and fails. So each group/version document lists, for every
 * kind, the PATCH operation with its x-kubernetes-group-version-kind and
 * the fieldValidation parameter, and nothing else: no component schemas,
 * which makes kubectl compute apply patches the way it does for types it
 * has no schema for (its built-in scheme, or JSON merge patch for CRs).
 *
 * The index (/openapi/v3) gives each document's URL a hash of its content,
 * as the server does, so clients' caches follow CRD changes.
 */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/htab.h"
#include "e2e/kubesim/api_toolkit.h"

struct gv_ctx {
    const char *group, *version;
    cJSON *paths;
};

static cJSON *patch_op(const struct gf_ks_rtype *t, const char *version)
{
    cJSON *op = cJSON_CreateObject();
    char id[320];
    snprintf(id, sizeof(id), "patch%s", t->kind);
    cJSON_AddStringToObject(op, "operationId", id);
    cJSON *params = cJSON_AddArrayToObject(op, "parameters");
    static const char *const names[] = {"dryRun", "fieldManager",
                                        "fieldValidation", "force"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "name", names[i]);
        cJSON_AddStringToObject(p, "in", "query");
        cJSON_AddItemToObject(p, "schema", cJSON_CreateObject());
        cJSON_AddStringToObject(cJSON_GetObjectItem(p, "schema"), "type",
                                i == 3 ? "boolean" : "string");
        cJSON_AddItemToArray(params, p);
    }
    cJSON *resp = cJSON_AddObjectToObject(op, "responses");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(resp, "200"), "description",
                            "OK");
    cJSON *gvk = cJSON_AddObjectToObject(op, "x-kubernetes-group-version-kind");
    cJSON_AddStringToObject(gvk, "group", t->group);
    cJSON_AddStringToObject(gvk, "version", version);
    cJSON_AddStringToObject(gvk, "kind", t->kind);
    cJSON_AddStringToObject(op, "x-kubernetes-action", "patch");
    return op;
}

static void add_type(void *data, const struct gf_ks_rtype *t)
{
    struct gv_ctx *c = data;
    if (strcmp(t->group, c->group) != 0 ||
        gf__ks_find_version(t, c->version) == NULL || t->read_only ||
        gf__ks_review(t))
        return;
    char prefix[256], path[700];
    if (t->group[0] != '\0')
        snprintf(prefix, sizeof(prefix), "/apis/%s/%s", t->group, c->version);
    else
        snprintf(prefix, sizeof(prefix), "/api/%s", c->version);
    if (t->namespaced)
        snprintf(path, sizeof(path), "%s/namespaces/{namespace}/%s/{name}",
                 prefix, t->resource);
    else
        snprintf(path, sizeof(path), "%s/%s/{name}", prefix, t->resource);
    cJSON *item = cJSON_AddObjectToObject(c->paths, path);
    cJSON_AddItemToObject(item, "patch", patch_op(t, c->version));
}

static cJSON *gv_doc(struct gf_ks_api *api, const char *group,
                     const char *version)
{
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "openapi", "3.0.0");
    cJSON *info = cJSON_AddObjectToObject(d, "info");
    cJSON_AddStringToObject(info, "title", "Kubernetes");
    cJSON_AddStringToObject(info, "version", "v1.32.0");
    struct gv_ctx c = {group, version, cJSON_AddObjectToObject(d, "paths")};
    gf_ks_store_types(gf_ks_api_store(api), add_type, &c);
    cJSON_AddObjectToObject(d, "components");
    return d;
}

static unsigned long long text_hash(const cJSON *doc)
{
    char *s = cJSON_PrintUnformatted(doc);
    /* Stable across runs (htab.h), so a client's cached URL stays good. */
    unsigned long long h = gf_hash(s, strlen(s));
    gf_free(s);
    return h;
}

struct idx_ctx {
    struct gf_ks_api *api;
    cJSON *paths;
};

static void index_type(void *data, const struct gf_ks_rtype *t)
{
    struct idx_ctx *c = data;
    for (size_t i = 0; i < t->n_versions; i++) {
        if (!t->versions[i].served)
            continue;
        char key[300];
        if (t->group[0] != '\0')
            snprintf(key, sizeof(key), "apis/%s/%s", t->group,
                     t->versions[i].name);
        else
            snprintf(key, sizeof(key), "api/%s", t->versions[i].name);
        if (cJSON_GetObjectItemCaseSensitive(c->paths, key) != NULL)
            continue;
        cJSON *doc = gv_doc(c->api, t->group, t->versions[i].name);
        char url[400];
        snprintf(url, sizeof(url), "/openapi/v3/%s?hash=%016llX", key,
                 text_hash(doc));
        cJSON_Delete(doc);
        cJSON *e = cJSON_AddObjectToObject(c->paths, key);
        cJSON_AddStringToObject(e, "serverRelativeURL", url);
    }
}

/* Splits "api/V" or "apis/G/V" into group and version. */
static bool split_gv(const char *p, char *g, size_t gcap, char *v, size_t vcap)
{
    g[0] = v[0] = '\0';
    if (strncmp(p, "api/", 4) == 0) {
        snprintf(v, vcap, "%s", p + 4);
        return v[0] != '\0' && strchr(v, '/') == NULL;
    }
    if (strncmp(p, "apis/", 5) != 0)
        return false;
    const char *s = p + 5, *slash = strchr(s, '/');
    if (slash == NULL || slash == s || (size_t)(slash - s) >= gcap)
        return false;
    snprintf(g, gcap, "%.*s", (int)(slash - s), s);
    snprintf(v, vcap, "%s", slash + 1);
    return v[0] != '\0' && strchr(v, '/') == NULL;
}

cJSON *gf__ks_openapi(struct gf_ks_api *api, const char *path)
{
    if (strcmp(path, "/openapi/v3") == 0 || strcmp(path, "/openapi/v3/") == 0) {
        cJSON *d = cJSON_CreateObject();
        struct idx_ctx c = {api, cJSON_AddObjectToObject(d, "paths")};
        gf_ks_store_types(gf_ks_api_store(api), index_type, &c);
        return d;
    }
    if (strncmp(path, "/openapi/v3/", 12) != 0)
        return NULL;
    char g[128], v[64];
    if (!split_gv(path + 12, g, sizeof(g), v, sizeof(v)) ||
        !gf__ks_gv_served(api, g, v))
        return NULL;
    return gv_doc(api, g, v);
}
