/*
 * api: the router of the simulated API server, and the API's lifetime.
 *
 * A request goes through the same stages as in the API server: the path
 * is parsed into a RequestInfo (api_req.c), the authorizer is asked about
 * its attributes, the type and version are resolved, and the verb's
 * handler answers from the store (api_handlers.h): reads in api_read.c,
 * writes in api_write.c, watches in api_watch.c, discovery in
 * api_discovery.c. Handlers reply through api_reply.c.
 *
 * The layering is router -> handlers -> toolkit: only this file includes
 * api_handlers.h to dispatch; handlers use api_toolkit.h, and the toolkit
 * (api_req.c, api_reply.c) knows no handler. .ci/layering checks it.
 */
#include "e2e/kubesim/api.h"

#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "e2e/kubesim/api_handlers.h"

struct gf_ks_catalog *gf_ks_catalog_new(void)
{
    struct gf_ks_catalog *c = gf_calloc(1, sizeof(*c));
    c->schemas = gf_ks_schema_cache_new();
    return c;
}

void gf_ks_catalog_free(struct gf_ks_catalog *c)
{
    if (c == NULL)
        return;
    gf_ks_schema_cache_free(c->schemas);
    gf_free(c);
}

struct gf_ks_api *gf_ks_api_new(const struct gf_ks_api_opts *o)
{
    struct gf_ks_api *api = gf_calloc(1, sizeof(*api));
    api->clock = o->clock;
    api->catalog = o->catalog;
    api->cluster = gf_strdup(o->cluster != NULL ? o->cluster : "");
    api->lc.comp = "kubesim-api";
    api->lc.cluster = api->cluster;
    api->authorize = o->authorize;
    api->authorize_data = o->authorize_data;
    api->max_watch_s = o->max_watch_s ? o->max_watch_s : 1800;
    api->bookmark_s = o->bookmark_s ? o->bookmark_s : 60;
    struct gf_ks_store_opts so = {
        .clock = o->clock,
        .cluster = o->cluster,
        .watch_cache = o->watch_cache,
        .uid_seed = o->uid_seed,
    };
    api->store = gf_ks_store_new(&so);
    gf__ks_builtin_register(api);
    gf__ks_crd_start(api);
    return api;
}

void gf_ks_api_free(struct gf_ks_api *api)
{
    if (api == NULL)
        return;
    gf__ks_watch_free_all(api);
    /* The store drops observers and releases every schema reference. */
    gf_ks_store_free(api->store);
    gf_free(api->cluster);
    gf_free(api);
}

struct gf_ks_store *gf_ks_api_store(struct gf_ks_api *api)
{
    return api->store;
}

size_t gf_ks_api_calls(const struct gf_ks_api *api)
{
    return api->ncalls;
}

size_t gf_ks_api_cel_unsupported(const struct gf_ks_api *api)
{
    return api->cel_unsupported;
}

static const char *nonresource_verb(const char *m)
{
    static const char *const map[][2] = {
        {"GET", "get"},         {"HEAD", "head"},   {"POST", "post"},
        {"PUT", "put"},         {"PATCH", "patch"}, {"DELETE", "delete"},
        {"OPTIONS", "options"},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(map[i][0], m) == 0)
            return map[i][1];
    return "get";
}

/*
 * The name a request is authorized for. kube-apiserver's RequestInfo gives
 * a list or watch without a name the name its fieldSelector requires
 * exactly (metadata.name=X or ==X, among other terms), when X is a valid
 * path segment: a Role's resourceNames can then grant a watch of one
 * object (the hub's watch of its drain ConfigMap). Returns r->name, or
 * buf holding that name.
 */
static const char *authz_name(const struct gf__ks_rreq *r, char *buf,
                              size_t cap)
{
    if (r->name[0] != '\0' || !r->resource_request || r->verb == NULL ||
        (strcmp(r->verb, "list") != 0 && strcmp(r->verb, "watch") != 0))
        return r->name;
    const char *fs = gf__ks_param(r, "fieldSelector");
    static const char key[] = "metadata.name=";
    for (const char *t = fs; t != NULL && *t != '\0';) {
        const char *end = strchr(t, ',');
        size_t n = end != NULL ? (size_t)(end - t) : strlen(t);
        if (n > sizeof(key) - 1 && strncmp(t, key, sizeof(key) - 1) == 0) {
            const char *v = t + sizeof(key) - 1;
            size_t vn = n - (sizeof(key) - 1);
            if (*v == '=') { /* "==" */
                v++;
                vn--;
            }
            bool valid = vn > 0 && vn < cap && memchr(v, '/', vn) == NULL &&
                         memchr(v, '%', vn) == NULL &&
                         !(vn == 1 && v[0] == '.') &&
                         !(vn == 2 && v[0] == '.' && v[1] == '.');
            if (valid) {
                memcpy(buf, v, vn);
                buf[vn] = '\0';
                return buf;
            }
        }
        t = end != NULL ? end + 1 : NULL;
    }
    return r->name;
}

static int authorize(struct gf_ks_api *api, const struct gf__ks_rreq *r,
                     struct gf_ks_status *err)
{
    char by_field[254];
    if (api->authorize == NULL)
        return 0;
    const struct gf_ks_api_req *q = r->req;
    struct gf_ks_authz_attrs a = {
        .user = q->user != NULL ? q->user : "",
        .groups = q->groups,
        .verb = r->resource_request ? r->verb : nonresource_verb(q->method),
        .api_group = r->resource_request ? r->group : "",
        .api_version = r->resource_request ? r->version : "",
        .resource = r->resource_request ? r->resource : NULL,
        .subresource = r->sub,
        .ns = r->ns,
        .name = authz_name(r, by_field, sizeof(by_field)),
        .path = q->path,
    };
    int rc = api->authorize(api->authorize_data, &a, err);
    if (rc < 0 && err->code == 0)
        rc = gf_ks_status_set(err, 403, "Forbidden",
                              "forbidden: User \"%s\" "
                              "cannot %s path \"%s\"",
                              a.user, a.verb, a.path);
    return rc < 0 ? rc : 0;
}

/*
 * What resolve() answers for a resource that no built-in group serves:
 * the built-in groups' handlers answer a Status, but an unknown group,
 * and an unknown resource or version of a custom resource group, fall
 * through to the server's mux and its plain-text 404.
 */
#define NOT_FOUND_TEXT 1

/* Finds the type and version a resource request addresses (404). */
static int resolve(struct gf_ks_api *api, struct gf__ks_rreq *r,
                   struct gf_ks_status *err)
{
    if (r->verb == NULL)
        return gf_ks_status_set(err, 405, "MethodNotAllowed",
                                "the server does not allow this method on "
                                "the requested resource");
    r->t = gf_ks_store_type(api->store, r->group, r->resource);
    r->ver = r->t != NULL ? gf__ks_find_version(r->t, r->version) : NULL;
    if (r->ver == NULL && !gf__ks_builtin_group(r->group))
        return NOT_FOUND_TEXT;
    if (r->ver == NULL)
        return gf__ks_not_found_path(err);
    /* /api/v1/namespaces/NAME[/status|/finalize] names the namespace. */
    bool is_ns = r->group[0] == '\0' &&
                 strcmp(r->resource, "namespaces") == 0 &&
                 strcmp(r->ns, r->name) == 0;
    /* A cluster-scoped type under namespaces/NS, or a named namespaced
     * object without a namespace, has no route in the server. */
    if (!r->t->namespaced && r->ns[0] != '\0' && !is_ns)
        return gf__ks_not_found_path(err);
    if (r->t->namespaced && r->ns[0] == '\0' &&
        (r->name[0] != '\0' || strcmp(r->verb, "create") == 0))
        return gf__ks_not_found_path(err);
    if (r->sub[0] != '\0' &&
        (strcmp(r->sub, "status") != 0 || !r->t->has_status) &&
        !(is_ns && strcmp(r->sub, "finalize") == 0))
        return gf__ks_not_found_path(err);
    if (r->sub[0] != '\0' && r->name[0] == '\0')
        return gf__ks_not_found_path(err);
    if (strcmp(r->verb, "create") == 0 && r->name[0] != '\0')
        return gf_ks_status_set(err, 405, "MethodNotAllowed",
                                "the server does not allow this method on "
                                "the requested resource");
    return 0;
}

static bool write_verb(const char *verb)
{
    return strcmp(verb, "get") != 0 && strcmp(verb, "list") != 0 &&
           strcmp(verb, "watch") != 0;
}

static void serve_resource(struct gf_ks_api *api, struct gf__ks_rreq *r,
                           struct gf_ks_api_call **call,
                           struct gf_ks_status *err)
{
    const char *v = r->verb;
    if (gf__ks_review(r->t)) {
        gf__ks_do_review(api, r, err);
    } else if (r->t->read_only && write_verb(v)) {
        gf_ks_status_set(err, 405, "MethodNotAllowed",
                         "the server does not allow this method on the "
                         "requested resource");
        gf__ks_reply_status(r->out, err);
    } else if (strcmp(v, "get") == 0) {
        gf__ks_do_get(api, r, err);
    } else if (strcmp(v, "list") == 0) {
        gf__ks_do_list(api, r, err);
    } else if (strcmp(v, "watch") == 0) {
        gf__ks_watch(api, r, call);
    } else if (strcmp(v, "create") == 0) {
        gf__ks_do_create(api, r, err);
    } else if (strcmp(v, "update") == 0) {
        gf__ks_do_update(api, r, err);
    } else if (strcmp(v, "patch") == 0) {
        gf__ks_do_patch(api, r, err);
    } else if (strcmp(v, "delete") == 0) {
        gf__ks_do_delete(api, r, err);
    } else {
        gf__ks_do_deletecollection(api, r, err);
    }
}

static void handle(struct gf_ks_api *api, struct gf__ks_rreq *r,
                   struct gf_ks_api_call **call, struct gf_ks_status *err)
{
    int rc = gf__ks_req_parse(r, err);
    const char *fv = gf__ks_param(r, "fieldValidation");
    api->warn_unknown = fv == NULL || fv[0] == '\0' || strcmp(fv, "Warn") == 0;
    /* An unknown method on a resource has no verb to authorize. */
    if (rc == 0 && r->resource_request && r->verb == NULL)
        rc = gf_ks_status_set(err, 405, "MethodNotAllowed",
                              "the server does not allow this method on the "
                              "requested resource");
    if (rc == 0)
        rc = authorize(api, r, err);
    if (rc == 0 && !r->resource_request) {
        /* Discovery, health and OpenAPI paths are read-only. */
        bool read = strcmp(r->req->method, "GET") == 0 ||
                    strcmp(r->req->method, "HEAD") == 0;
        if (!read)
            rc = gf_ks_status_set(err, 405, "MethodNotAllowed",
                                  "the server does not allow this method on "
                                  "the requested resource");
        else if (!gf__ks_discovery(api, r))
            rc = NOT_FOUND_TEXT;
    } else if (rc == 0) {
        rc = resolve(api, r, err);
        if (rc == 0)
            serve_resource(api, r, call, err);
    }
    if (rc == NOT_FOUND_TEXT)
        gf__ks_reply_not_found_text(r->out);
    else if (rc < 0)
        gf__ks_reply_status(r->out, err);
}

void gf_ks_api_handle(struct gf_ks_api *api, const struct gf_ks_api_req *req,
                      const struct gf_ks_api_out *out,
                      struct gf_ks_api_call **call)
{
    *call = NULL;
    GF_BUG_ON(req->method == NULL); /* the server always sets it */
    struct gf__ks_acting acting;
    if (gf__ks_impersonate(api, req, out, &acting) < 0) {
        gf__ks_acting_done(&acting);
        return;
    }
    struct gf__ks_rreq *r = gf_calloc(1, sizeof(*r));
    r->req = &acting.req;
    r->out = out;
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    api->out_now = out;
    handle(api, r, call, &err);
    api->out_now = NULL;
    gf_ks_status_clear(&err);
    gf__ks_req_done(r);
    gf_free(r);
    gf__ks_acting_done(&acting);
}
