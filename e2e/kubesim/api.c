/*
 * api: request routing and the CRUD verbs of the simulated API server.
 *
 * A request goes through the same stages as in the API server: the path
 * is parsed into a RequestInfo (group, version, resource, subresource,
 * namespace, name, verb), the authorizer is asked about those attributes,
 * and the verb's handler answers from the store. Objects are stored as
 * compact JSON in their type's storage version and streamed out as they
 * are whenever the client asked for that version, so a large list costs a
 * copy, not a parse and a print per object.
 */
#include "e2e/kubesim/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/json.h"
#include "e2e/kubesim/api_internal.h"
#include "e2e/kubesim/patch.h"
#include "e2e/kubesim/select.h"

#define MAX_SEGS 10

/* ---- catalog ------------------------------------------------------------ */

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

/* ---- api lifetime ------------------------------------------------------- */

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

/* ---- small helpers ------------------------------------------------------ */

void gf__ks_gv(const char *group, const char *version, char *out, size_t cap)
{
    if (group[0] != '\0')
        snprintf(out, cap, "%s/%s", group, version);
    else
        snprintf(out, cap, "%s", version);
}

const struct gf_ks_version *gf__ks_find_version(const struct gf_ks_rtype *t,
                                                const char *version)
{
    for (size_t i = 0; i < t->n_versions; i++)
        if (t->versions[i].served && strcmp(t->versions[i].name, version) == 0)
            return &t->versions[i];
    return NULL;
}

static bool is_storage(const struct gf_ks_rtype *t,
                       const struct gf_ks_version *ver)
{
    return ver == NULL || ver == &t->versions[t->storage];
}

int gf__ks_put_obj(struct gf_buf *b, const struct gf_ks_obj *o,
                   const struct gf_ks_version *ver)
{
    if (is_storage(o->type, ver))
        return gf_buf_append(b, o->json, o->len);
    /* Conversion strategy None: only apiVersion changes. */
    cJSON *j = gf_ks_obj_parse(o);
    char gv[256];
    gf__ks_gv(o->type->group, ver->name, gv, sizeof(gv));
    cJSON_DeleteItemFromObjectCaseSensitive(j, "apiVersion");
    cJSON_AddStringToObject(j, "apiVersion", gv);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    int rc = gf_buf_puts(b, s);
    gf_free(s);
    return rc;
}

void gf__ks_reply_status(const struct gf_ks_api_out *out,
                         const struct gf_ks_status *err)
{
    cJSON *j = gf_ks_status_to_json(err);
    gf__ks_reply_json(out, err->code ? err->code : 500, j);
    cJSON_Delete(j);
}

void gf__ks_reply_json(const struct gf_ks_api_out *out, int code,
                       const cJSON *j)
{
    char *s = cJSON_PrintUnformatted(j);
    out->reply(out->ctx, code, "application/json", s, strlen(s));
    gf_free(s);
}

static void reply_buf(const struct gf_ks_api_out *out, int code,
                      const struct gf_buf *b)
{
    out->reply(out->ctx, code, "application/json", gf_buf_cstr(b), b->len);
}

static void reply_obj(const struct gf__ks_rreq *r, int code,
                      const struct gf_ks_obj *o)
{
    struct gf_buf b = GF_BUF_INIT(GF__KS_LIST_MAX);
    gf__ks_put_obj(&b, o, r->ver);
    reply_buf(r->out, code, &b);
    gf_buf_free(&b);
}

static int not_found_path(struct gf_ks_status *err)
{
    return gf_ks_status_set(err, 404, "NotFound",
                            "the server could not find the requested "
                            "resource");
}

/* ---- query -------------------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes %XX and '+' in place, as Go's url.ParseQuery does. */
static bool unescape(char *s)
{
    char *w = s;
    for (const char *p = s; *p != '\0'; p++) {
        if (*p == '+') {
            *w++ = ' ';
        } else if (*p == '%') {
            int hi = hexval(p[1]), lo = hi >= 0 ? hexval(p[2]) : -1;
            if (lo < 0)
                return false;
            *w++ = (char)(hi * 16 + lo);
            p += 2;
        } else {
            *w++ = *p;
        }
    }
    *w = '\0';
    return true;
}

static int parse_query(struct gf__ks_rreq *r, struct gf_ks_status *err)
{
    const char *q = r->req->query;
    if (q == NULL || q[0] == '\0')
        return 0;
    if (strlen(q) > 64 * 1024)
        return gf_ks_status_set(err, 414, "RequestURITooLong",
                                "the request URI is too long");
    r->qbuf = gf_strdup(q);
    char *p = r->qbuf;
    while (p != NULL && *p != '\0') {
        char *amp = strchr(p, '&');
        if (amp != NULL)
            *amp = '\0';
        char *eq = strchr(p, '=');
        if (eq != NULL)
            *eq = '\0';
        const char *v = eq != NULL ? eq + 1 : "";
        if (!unescape(p) || !unescape((char *)v))
            return gf_ks_status_set(err, 400, "BadRequest",
                                    "invalid query string: bad escape");
        if (p[0] != '\0' && r->nparams < GF__KS_MAX_PARAMS) {
            r->params[r->nparams].key = p;
            r->params[r->nparams].value = v;
            r->nparams++;
        }
        p = amp != NULL ? amp + 1 : NULL;
    }
    return 0;
}

const char *gf__ks_param(const struct gf__ks_rreq *r, const char *key)
{
    for (size_t i = 0; i < r->nparams; i++)
        if (strcmp(r->params[i].key, key) == 0)
            return r->params[i].value;
    return NULL;
}

bool gf__ks_param_true(const struct gf__ks_rreq *r, const char *key)
{
    const char *v = gf__ks_param(r, key);
    return v != NULL && (strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
}

/* ---- path --------------------------------------------------------------- */

static size_t split_path(char *p, char *segs[MAX_SEGS + 1])
{
    size_t n = 0;
    while (*p != '\0') {
        while (*p == '/')
            p++;
        if (*p == '\0')
            break;
        if (n == MAX_SEGS + 1)
            return n;
        segs[n++] = p;
        char *slash = strchr(p, '/');
        if (slash == NULL)
            break;
        *slash = '\0';
        p = slash + 1;
    }
    return n;
}

static bool copy_seg(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        return false;
    memcpy(dst, src, n + 1);
    return true;
}

static const char *method_verb(const char *m, bool named, bool watch)
{
    if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0)
        return watch ? "watch" : named ? "get" : "list";
    if (strcmp(m, "POST") == 0)
        return "create";
    if (strcmp(m, "PUT") == 0)
        return "update";
    if (strcmp(m, "PATCH") == 0)
        return "patch";
    if (strcmp(m, "DELETE") == 0)
        return named ? "delete" : "deletecollection";
    return NULL;
}

/* The rest of a resource path after /api/v1 or /apis/G/V. */
static bool parse_resource_parts(struct gf__ks_rreq *r, char **rest, size_t n,
                                 bool *watch_prefix)
{
    if (n > 0 && strcmp(rest[0], "watch") == 0) {
        *watch_prefix = true;
        rest++;
        n--;
    }
    if (n >= 2 && strcmp(rest[0], "namespaces") == 0) {
        if (!copy_seg(r->ns, sizeof(r->ns), rest[1]))
            return false;
        /* namespaces/NS/status and /finalize address the namespace. */
        if (n > 2 && strcmp(rest[2], "status") != 0 &&
            strcmp(rest[2], "finalize") != 0) {
            rest += 2;
            n -= 2;
        }
    }
    if (n == 0 || n > 3)
        return false;
    if (!copy_seg(r->resource, sizeof(r->resource), rest[0]))
        return false;
    if (n > 1 && !copy_seg(r->name, sizeof(r->name), rest[1]))
        return false;
    if (n > 2 && !copy_seg(r->sub, sizeof(r->sub), rest[2]))
        return false;
    return true;
}

/*
 * Fills the RequestInfo. Returns false for a malformed resource path
 * (404). Non-resource paths leave resource_request false.
 */
static bool parse_path(struct gf__ks_rreq *r, char *path)
{
    char *segs[MAX_SEGS + 1];
    size_t n = split_path(path, segs);
    size_t prefix;
    if (n >= 2 && strcmp(segs[0], "api") == 0) {
        r->group[0] = '\0';
        if (!copy_seg(r->version, sizeof(r->version), segs[1]))
            return false;
        prefix = 2;
    } else if (n >= 3 && strcmp(segs[0], "apis") == 0) {
        if (!copy_seg(r->group, sizeof(r->group), segs[1]) ||
            !copy_seg(r->version, sizeof(r->version), segs[2]))
            return false;
        prefix = 3;
    } else {
        return true; /* discovery or another non-resource path */
    }
    if (n == prefix)
        return true; /* /api/v1, /apis/G/V: discovery */
    if (n > MAX_SEGS)
        return false;
    r->resource_request = true;
    bool watch_prefix = false;
    if (!parse_resource_parts(r, segs + prefix, n - prefix, &watch_prefix))
        return false;
    bool watch = watch_prefix || gf__ks_param_true(r, "watch");
    r->verb = method_verb(r->req->method, r->name[0] != '\0', watch);
    return true;
}

static const char *nonresource_verb(const char *m)
{
    static const char *const map[][2] = {
        {"GET", "get"},   {"HEAD", "head"},     {"POST", "post"},
        {"PUT", "put"},   {"PATCH", "patch"},   {"DELETE", "delete"},
        {"OPTIONS", "options"},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(map[i][0], m) == 0)
            return map[i][1];
    return "get";
}

static bool accept_table(const char *accept)
{
    return accept != NULL && strstr(accept, "as=Table") != NULL;
}

/* ---- authorization ------------------------------------------------------ */

static int authorize(struct gf_ks_api *api, const struct gf__ks_rreq *r,
                     struct gf_ks_status *err)
{
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
        .name = r->name,
        .path = q->path,
    };
    int rc = api->authorize(api->authorize_data, &a, err);
    if (rc < 0 && err->code == 0)
        rc = gf_ks_status_set(err, 403, "Forbidden", "forbidden: User \"%s\" "
                              "cannot %s path \"%s\"", a.user, a.verb, a.path);
    return rc < 0 ? rc : 0;
}

/* ---- resolution --------------------------------------------------------- */

/* Finds the type and version a resource request addresses (404). */
static int resolve(struct gf_ks_api *api, struct gf__ks_rreq *r,
                   struct gf_ks_status *err)
{
    if (r->verb == NULL)
        return gf_ks_status_set(err, 405, "MethodNotAllowed",
                                "the server does not allow this method on "
                                "the requested resource");
    r->t = gf_ks_store_type(api->store, r->group, r->resource);
    if (r->t == NULL)
        return not_found_path(err);
    r->ver = gf__ks_find_version(r->t, r->version);
    if (r->ver == NULL)
        return not_found_path(err);
    bool is_ns = r->group[0] == '\0' && strcmp(r->resource, "namespaces") == 0;
    /* A cluster-scoped type under namespaces/NS, or a named namespaced
     * object without a namespace, has no route in the server. */
    if (!r->t->namespaced && r->ns[0] != '\0' && !is_ns)
        return not_found_path(err);
    if (r->t->namespaced && r->ns[0] == '\0' &&
        (r->name[0] != '\0' || strcmp(r->verb, "create") == 0))
        return not_found_path(err);
    if (r->sub[0] != '\0' &&
        (strcmp(r->sub, "status") != 0 || !r->t->has_status) &&
        !(is_ns && strcmp(r->sub, "finalize") == 0))
        return not_found_path(err);
    if (r->sub[0] != '\0' && r->name[0] == '\0')
        return not_found_path(err);
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

/* ---- bodies ------------------------------------------------------------- */

static int parse_body(const struct gf__ks_rreq *r, cJSON **out,
                      struct gf_ks_status *err)
{
    const struct gf_ks_api_req *q = r->req;
    *out = NULL;
    if (q->body_len > GF__KS_BODY_MAX)
        return gf_ks_status_set(err, 413, "RequestEntityTooLarge",
                                "the request body is too large");
    if (q->body == NULL || q->body_len == 0)
        return gf_ks_status_set(err, 400, "BadRequest",
                                "the request body is empty");
    cJSON *j = cJSON_ParseWithLength(q->body, q->body_len);
    if (j == NULL)
        return gf_ks_status_set(err, 400, "BadRequest",
                                "the body of the request could not be "
                                "decoded as JSON");
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return gf_ks_status_set(err, 400, "BadRequest",
                                "the body of the request was not an object");
    }
    *out = j;
    return 0;
}

/*
 * Checks apiVersion and kind of a written object against the type and
 * version of the URL, then sets them to the storage version.
 */
static int fix_type_meta(const struct gf_ks_rtype *t,
                         const struct gf_ks_version *ver, cJSON *obj,
                         struct gf_ks_status *err)
{
    char want[256];
    gf__ks_gv(t->group, ver->name, want, sizeof(want));
    const char *av = gf_json_str(obj, "apiVersion");
    if (av != NULL && av[0] != '\0' && strcmp(av, want) != 0)
        return gf_ks_status_set(err, 400, "BadRequest",
                                "the API version in the data (%s) does not "
                                "match the expected API version (%s)",
                                av, want);
    const char *kind = gf_json_str(obj, "kind");
    if (kind != NULL && kind[0] != '\0' && strcmp(kind, t->kind) != 0)
        return gf_ks_status_set(err, 400, "BadRequest",
                                "the kind in the data (%s) does not match "
                                "the expected kind (%s)",
                                kind, t->kind);
    char stor[256];
    gf__ks_gv(t->group, t->versions[t->storage].name, stor, sizeof(stor));
    cJSON_DeleteItemFromObjectCaseSensitive(obj, "apiVersion");
    cJSON_DeleteItemFromObjectCaseSensitive(obj, "kind");
    cJSON_AddStringToObject(obj, "apiVersion", stor);
    cJSON_AddStringToObject(obj, "kind", t->kind);
    return 0;
}

/* Structural validation of CRD types (built-ins have no schema here). */
static int validate(const struct gf_ks_rtype *t,
                    const struct gf_ks_version *ver, cJSON *obj,
                    const char *name, struct gf_ks_status *err)
{
    if (ver->schema == NULL)
        return 0;
    return gf_ks_schema_validate(ver->schema, obj, t->kind, t->group,
                                 name != NULL ? name : "", err);
}

static bool is_crd_type(const struct gf_ks_rtype *t)
{
    return strcmp(t->group, "apiextensions.k8s.io") == 0 &&
           strcmp(t->resource, "customresourcedefinitions") == 0;
}

static int check_write(struct gf_ks_api *api, const struct gf_ks_rtype *t,
                       const struct gf_ks_version *ver, cJSON *obj,
                       const char *name, struct gf_ks_status *err)
{
    int rc = fix_type_meta(t, ver, obj, err);
    if (rc == 0)
        rc = validate(t, ver, obj, name, err);
    if (rc == 0 && is_crd_type(t))
        rc = gf__ks_crd_check(api, obj, err);
    return rc;
}

int gf__ks_create(struct gf_ks_api *api, const struct gf_ks_rtype *t,
                  const struct gf_ks_version *ver, const char *ns, cJSON *obj,
                  struct gf_ks_obj **out, struct gf_ks_status *err)
{
    const char *name = gf_json_str(obj, "metadata.name");
    char nm[254];
    snprintf(nm, sizeof(nm), "%s", name != NULL ? name : "");
    int rc = check_write(api, t, ver, obj, nm, err);
    if (rc == 0)
        rc = gf_ks_store_create(api->store, t, ns, obj, GF_KS_MAIN, out, err);
    cJSON_Delete(obj);
    return rc;
}

/* ---- get and list ------------------------------------------------------- */

static void do_get(struct gf_ks_api *api, struct gf__ks_rreq *r,
                   struct gf_ks_status *err)
{
    struct gf_ks_obj *o = gf_ks_store_get(api->store, r->t, r->ns, r->name);
    if (o == NULL) {
        gf_ks_status_not_found(err, r->t->group, r->t->resource, r->name);
        gf__ks_reply_status(r->out, err);
        return;
    }
    if (!r->table) {
        reply_obj(r, 200, o);
        return;
    }
    struct gf_buf b = GF_BUF_INIT(GF__KS_LIST_MAX);
    gf__ks_table(api, &b, r->t, r->ver, &o, 1, NULL, NULL,
                 gf__ks_param(r, "includeObject"));
    reply_buf(r->out, 200, &b);
    gf_buf_free(&b);
}

static int parse_limit(const struct gf__ks_rreq *r, size_t *limit,
                       struct gf_ks_status *err)
{
    const char *l = gf__ks_param(r, "limit");
    int64_t v = 0;
    *limit = 0;
    if (l == NULL || l[0] == '\0')
        return 0;
    if (gf_parse_i64(l, &v) != 0)
        return gf_ks_status_set(err, 400, "BadRequest",
                                "invalid limit: %s", l);
    *limit = v > 0 ? (size_t)v : 0;
    return 0;
}

struct sels {
    struct gf_ks_selector *label, *field;
};

static int parse_selectors(const struct gf__ks_rreq *r, struct sels *s,
                           struct gf_ks_status *err)
{
    memset(s, 0, sizeof(*s));
    int rc = gf_ks_selector_parse(gf__ks_param(r, "labelSelector"), false,
                                  &s->label, err);
    if (rc == 0)
        rc = gf_ks_selector_parse(gf__ks_param(r, "fieldSelector"), true,
                                  &s->field, err);
    return rc;
}

static void sels_free(struct sels *s)
{
    gf_ks_selector_free(s->label);
    gf_ks_selector_free(s->field);
}

/* Writes {"kind":..,"apiVersion":..,"metadata":{..},"items":[ into b. */
static void list_head(struct gf_buf *b, const struct gf__ks_rreq *r,
                      const struct gf_ks_list *l)
{
    char gv[256], rv[24];
    gf__ks_gv(r->t->group, r->ver->name, gv, sizeof(gv));
    snprintf(rv, sizeof(rv), "%llu", (unsigned long long)l->rv);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "kind", r->t->list_kind);
    cJSON_AddStringToObject(j, "apiVersion", gv);
    cJSON *m = cJSON_AddObjectToObject(j, "metadata");
    cJSON_AddStringToObject(m, "resourceVersion", rv);
    if (l->cont != NULL) {
        cJSON_AddStringToObject(m, "continue", l->cont);
        if (l->remaining > 0)
            cJSON_AddNumberToObject(m, "remainingItemCount",
                                    (double)l->remaining);
    }
    cJSON_AddArrayToObject(j, "items");
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    /* The printed object ends in "[]}": keep it open for the items. */
    gf_buf_append(b, s, strlen(s) - 2);
    gf_free(s);
}

static int list_body(struct gf_buf *b, const struct gf__ks_rreq *r,
                     const struct gf_ks_list *l)
{
    list_head(b, r, l);
    int rc = 0;
    for (size_t i = 0; i < l->n && rc == 0; i++) {
        if (i > 0)
            rc = gf_buf_putc(b, ',');
        if (rc == 0)
            rc = gf__ks_put_obj(b, l->items[i], r->ver);
    }
    if (rc == 0)
        rc = gf_buf_puts(b, "]}");
    return rc;
}

static void do_list(struct gf_ks_api *api, struct gf__ks_rreq *r,
                    struct gf_ks_status *err)
{
    struct sels s;
    size_t limit;
    int rc = parse_selectors(r, &s, err);
    if (rc == 0)
        rc = parse_limit(r, &limit, err);
    struct gf_ks_list l = {0};
    if (rc == 0) {
        struct gf_ks_list_opts lo = {
            .ns = r->ns,
            .label = s.label,
            .field = s.field,
            .limit = limit,
            .cont = gf__ks_param(r, "continue"),
        };
        rc = gf_ks_store_list(api->store, r->t, &lo, &l, err);
    }
    sels_free(&s);
    if (rc < 0) {
        gf__ks_reply_status(r->out, err);
        return;
    }
    struct gf_buf b = GF_BUF_INIT(GF__KS_LIST_MAX);
    if (r->table) {
        char rv[24];
        snprintf(rv, sizeof(rv), "%llu", (unsigned long long)l.rv);
        rc = gf__ks_table(api, &b, r->t, r->ver, l.items, l.n, rv, l.cont,
                          gf__ks_param(r, "includeObject"));
    } else {
        rc = list_body(&b, r, &l);
    }
    if (rc < 0) {
        gf_ks_status_set(err, 500, "InternalError",
                         "the list is too large to send");
        gf__ks_reply_status(r->out, err);
    } else {
        reply_buf(r->out, 200, &b);
    }
    gf_buf_free(&b);
    gf_ks_list_free(&l);
}

/* ---- dry run ------------------------------------------------------------ */

/*
 * dryRun=All is honoured: the request is checked as a real one would be
 * (type, schema, existence) and answered with the object it would have
 * written, but nothing is stored. Unknown dryRun values are a 400, as on
 * the server.
 */
static int dry_run(const struct gf__ks_rreq *r, bool *dry,
                   struct gf_ks_status *err)
{
    const char *d = gf__ks_param(r, "dryRun");
    *dry = false;
    if (d == NULL || d[0] == '\0')
        return 0;
    if (strcmp(d, "All") != 0)
        return gf_ks_status_set(err, 400, "BadRequest",
                                "Invalid dry run value: %s: valid values "
                                "are \"All\"",
                                d);
    *dry = true;
    return 0;
}

/* ---- create ------------------------------------------------------------- */

static void reply_cjson_obj(const struct gf__ks_rreq *r, int code,
                            cJSON *obj)
{
    char gv[256];
    gf__ks_gv(r->t->group, r->ver->name, gv, sizeof(gv));
    cJSON_DeleteItemFromObjectCaseSensitive(obj, "apiVersion");
    cJSON_AddStringToObject(obj, "apiVersion", gv);
    gf__ks_reply_json(r->out, code, obj);
}

static void do_create(struct gf_ks_api *api, struct gf__ks_rreq *r,
                      struct gf_ks_status *err)
{
    cJSON *obj = NULL;
    bool dry = false;
    int rc = dry_run(r, &dry, err);
    if (rc == 0)
        rc = parse_body(r, &obj, err);
    if (rc < 0)
        goto fail;
    if (dry) {
        const char *name = gf_json_str(obj, "metadata.name");
        rc = check_write(api, r->t, r->ver, obj, name, err);
        if (rc < 0)
            goto fail;
        reply_cjson_obj(r, 201, obj);
        cJSON_Delete(obj);
        return;
    }
    struct gf_ks_obj *o = NULL;
    rc = gf__ks_create(api, r->t, r->ver, r->ns, obj, &o, err);
    obj = NULL;
    if (rc < 0)
        goto fail;
    reply_obj(r, 201, o);
    return;
fail:
    cJSON_Delete(obj);
    gf__ks_reply_status(r->out, err);
}

/* ---- update ------------------------------------------------------------- */

static enum gf_ks_subres subres(const struct gf__ks_rreq *r)
{
    return strcmp(r->sub, "status") == 0 ? GF_KS_STATUS : GF_KS_MAIN;
}

/* Leases and Events may be created by PUT, as their strategies allow. */
static bool create_on_update(const struct gf_ks_rtype *t)
{
    return (strcmp(t->group, "coordination.k8s.io") == 0 &&
            strcmp(t->resource, "leases") == 0) ||
           (t->group[0] == '\0' && strcmp(t->resource, "events") == 0);
}

static void do_update(struct gf_ks_api *api, struct gf__ks_rreq *r,
                      struct gf_ks_status *err)
{
    cJSON *obj = NULL;
    bool dry = false;
    int rc = dry_run(r, &dry, err);
    if (rc == 0)
        rc = parse_body(r, &obj, err);
    if (rc == 0)
        rc = check_write(api, r->t, r->ver, obj, r->name, err);
    if (rc < 0)
        goto fail;
    struct gf_ks_obj *cur = gf_ks_store_get(api->store, r->t, r->ns, r->name);
    if (cur == NULL && create_on_update(r->t) && subres(r) == GF_KS_MAIN) {
        struct gf_ks_obj *o = NULL;
        if (!dry) {
            rc = gf__ks_create(api, r->t, r->ver, r->ns, obj, &o, err);
            obj = NULL;
            if (rc < 0)
                goto fail;
            reply_obj(r, 201, o);
        } else {
            reply_cjson_obj(r, 201, obj);
        }
        cJSON_Delete(obj);
        return;
    }
    if (dry) {
        if (cur == NULL) {
            rc = gf_ks_status_not_found(err, r->t->group, r->t->resource,
                                        r->name);
            goto fail;
        }
        reply_cjson_obj(r, 200, obj);
        cJSON_Delete(obj);
        return;
    }
    struct gf_ks_obj *o = NULL;
    rc = gf_ks_store_update(api->store, r->t, r->ns, r->name, obj, subres(r),
                            &o, err);
    if (rc < 0)
        goto fail;
    cJSON_Delete(obj);
    reply_obj(r, 200, o);
    return;
fail:
    cJSON_Delete(obj);
    gf__ks_reply_status(r->out, err);
}

/* ---- patch -------------------------------------------------------------- */

enum patch_kind { PK_MERGE, PK_JSON, PK_STRATEGIC, PK_APPLY, PK_UNKNOWN };

static enum patch_kind patch_kind(const char *ct)
{
    if (ct == NULL)
        return PK_UNKNOWN;
    size_t n = strcspn(ct, ";");
    static const struct {
        const char *ct;
        enum patch_kind k;
    } map[] = {
        {"application/merge-patch+json", PK_MERGE},
        {"application/json-patch+json", PK_JSON},
        {"application/strategic-merge-patch+json", PK_STRATEGIC},
        {"application/apply-patch+yaml", PK_APPLY},
        {"application/apply-patch+json", PK_APPLY},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strlen(map[i].ct) == n && strncmp(map[i].ct, ct, n) == 0)
            return map[i].k;
    return PK_UNKNOWN;
}

static int unsupported_patch(const struct gf_ks_rtype *t,
                             struct gf_ks_status *err)
{
    if (gf__ks_builtin(t))
        return gf_ks_status_set(
            err, 415, "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted "
            "media types include: application/json-patch+json, "
            "application/merge-patch+json, application/apply-patch+yaml, "
            "application/strategic-merge-patch+json");
    return gf_ks_status_set(
        err, 415, "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media "
        "types include: application/json-patch+json, "
        "application/merge-patch+json, application/apply-patch+yaml");
}

/*
 * Server-side apply, approximated: the applied configuration is created
 * when the object is missing and merged into it otherwise (RFC 7386).
 * There are no managedFields, so fields dropped from a later apply stay.
 */
static int apply_patch(struct gf_ks_api *api, struct gf__ks_rreq *r,
                       cJSON **doc, struct gf_ks_status *err)
{
    cJSON *cfg = NULL;
    const struct gf_ks_api_req *q = r->req;
    if (q->body_len > GF__KS_BODY_MAX)
        return gf_ks_status_set(err, 413, "RequestEntityTooLarge",
                                "the request body is too large");
    int rc = gf__ks_yaml_doc(q->body != NULL ? q->body : "", q->body_len,
                             &cfg, err);
    if (rc < 0)
        return rc;
    if (!cJSON_IsObject(cfg)) {
        cJSON_Delete(cfg);
        return gf_ks_status_set(err, 400, "BadRequest",
                                "the body of the request was not an object");
    }
    (void)api;
    gf_ks_patch_merge(doc, cfg);
    cJSON_Delete(cfg);
    return 0;
}

static int patch_doc(struct gf_ks_api *api, struct gf__ks_rreq *r,
                     enum patch_kind k, cJSON **doc, struct gf_ks_status *err)
{
    const struct gf_ks_api_req *q = r->req;
    if (k == PK_APPLY)
        return apply_patch(api, r, doc, err);
    if (q->body_len > GF_KS_PATCH_MAX)
        return gf_ks_status_set(err, 413, "RequestEntityTooLarge",
                                "the request body is too large");
    enum gf_ks_patch_type pt = k == PK_JSON        ? GF_KS_PATCH_JSON
                               : k == PK_STRATEGIC ? GF_KS_PATCH_STRATEGIC
                                                   : GF_KS_PATCH_MERGE;
    return gf_ks_patch_apply(pt, doc, q->body != NULL ? q->body : "",
                             q->body_len, err);
}

/* A server-side apply of a missing object creates it. */
static void apply_create(struct gf_ks_api *api, struct gf__ks_rreq *r,
                         bool dry, struct gf_ks_status *err)
{
    cJSON *doc = cJSON_CreateObject();
    int rc = apply_patch(api, r, &doc, err);
    const char *name = gf_json_str(doc, "metadata.name");
    if (rc == 0 && (name == NULL || strcmp(name, r->name) != 0))
        rc = gf_ks_status_set(err, 400, "BadRequest",
                              "the name of the object (%s) does not match "
                              "the name on the URL (%s)",
                              name != NULL ? name : "", r->name);
    if (rc == 0 && dry) {
        rc = check_write(api, r->t, r->ver, doc, r->name, err);
        if (rc == 0) {
            reply_cjson_obj(r, 201, doc);
            cJSON_Delete(doc);
            return;
        }
    }
    struct gf_ks_obj *o = NULL;
    if (rc == 0) {
        rc = gf__ks_create(api, r->t, r->ver, r->ns, doc, &o, err);
        doc = NULL;
    }
    cJSON_Delete(doc);
    if (rc < 0)
        gf__ks_reply_status(r->out, err);
    else
        reply_obj(r, 201, o);
}

static void do_patch(struct gf_ks_api *api, struct gf__ks_rreq *r,
                     struct gf_ks_status *err)
{
    enum patch_kind k = patch_kind(r->req->content_type);
    bool dry = false;
    int rc = dry_run(r, &dry, err);
    cJSON *doc = NULL;
    if (rc == 0 && (k == PK_UNKNOWN ||
                    (k == PK_STRATEGIC && !gf__ks_builtin(r->t))))
        rc = unsupported_patch(r->t, err);
    if (rc < 0)
        goto fail;
    struct gf_ks_obj *cur = gf_ks_store_get(api->store, r->t, r->ns, r->name);
    if (cur == NULL && k == PK_APPLY && subres(r) == GF_KS_MAIN) {
        apply_create(api, r, dry, err);
        return;
    }
    if (cur == NULL) {
        rc = gf_ks_status_not_found(err, r->t->group, r->t->resource,
                                    r->name);
        goto fail;
    }
    /* The patch applies to the object as the client sees it. */
    doc = gf_ks_obj_parse(cur);
    char gv[256];
    gf__ks_gv(r->t->group, r->ver->name, gv, sizeof(gv));
    cJSON_DeleteItemFromObjectCaseSensitive(doc, "apiVersion");
    cJSON_AddStringToObject(doc, "apiVersion", gv);
    rc = patch_doc(api, r, k, &doc, err);
    if (rc == 0 && !cJSON_IsObject(doc))
        rc = gf_ks_status_set(err, 422, "Invalid",
                              "the patched object is not an object");
    if (rc == 0)
        rc = check_write(api, r->t, r->ver, doc, r->name, err);
    if (rc < 0)
        goto fail;
    if (dry) {
        reply_cjson_obj(r, 200, doc);
        cJSON_Delete(doc);
        return;
    }
    struct gf_ks_obj *o = NULL;
    rc = gf_ks_store_update(api->store, r->t, r->ns, r->name, doc, subres(r),
                            &o, err);
    if (rc < 0)
        goto fail;
    cJSON_Delete(doc);
    reply_obj(r, 200, o);
    return;
fail:
    cJSON_Delete(doc);
    gf__ks_reply_status(r->out, err);
}

/* ---- delete ------------------------------------------------------------- */

struct del_opts {
    struct gf_ks_delete_opts o;
    cJSON *body; /* owns the strings o points at */
    bool dry;
};

static int parse_propagation(const char *s, enum gf_ks_propagation *p,
                             struct gf_ks_status *err)
{
    if (s == NULL || s[0] == '\0')
        return 0;
    if (strcmp(s, "Foreground") == 0)
        *p = GF_KS_PROP_FOREGROUND;
    else if (strcmp(s, "Background") == 0)
        *p = GF_KS_PROP_BACKGROUND;
    else if (strcmp(s, "Orphan") == 0)
        *p = GF_KS_PROP_ORPHAN;
    else
        return gf_ks_status_set(err, 422, "Invalid",
                                "DeleteOptions.meta.k8s.io \"\" is invalid: "
                                "propagationPolicy: Unsupported value: "
                                "\"%s\": supported values: \"Foreground\", "
                                "\"Background\", \"Orphan\", \"nil\"",
                                s);
    return 0;
}

static bool body_dry_run(const cJSON *body)
{
    const cJSON *d;
    cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(body, "dryRun"))
    {
        if (cJSON_IsString(d) && strcmp(d->valuestring, "All") == 0)
            return true;
    }
    return false;
}

/*
 * DeleteOptions from the body and the query (gracePeriodSeconds is
 * accepted and ignored: deletion is immediate unless finalizers hold).
 */
static int parse_delete(const struct gf__ks_rreq *r, struct del_opts *d,
                        struct gf_ks_status *err)
{
    memset(d, 0, sizeof(*d));
    int rc = dry_run(r, &d->dry, err);
    const struct gf_ks_api_req *q = r->req;
    if (rc == 0 && q->body != NULL && q->body_len > 0) {
        if (q->body_len > GF__KS_BODY_MAX)
            return gf_ks_status_set(err, 413, "RequestEntityTooLarge",
                                    "the request body is too large");
        d->body = cJSON_ParseWithLength(q->body, q->body_len);
        if (!cJSON_IsObject(d->body))
            return gf_ks_status_set(err, 400, "BadRequest",
                                    "the body of the request could not be "
                                    "decoded as DeleteOptions");
        rc = parse_propagation(gf_json_str(d->body, "propagationPolicy"),
                               &d->o.propagation, err);
        d->o.uid = gf_json_str(d->body, "preconditions.uid");
        d->o.rv = gf_json_str(d->body, "preconditions.resourceVersion");
        bool orphan;
        if (gf_json_bool(d->body, "orphanDependents", &orphan) == 0 &&
            d->o.propagation == GF_KS_PROP_DEFAULT)
            d->o.propagation =
                orphan ? GF_KS_PROP_ORPHAN : GF_KS_PROP_BACKGROUND;
        d->dry = d->dry || body_dry_run(d->body);
    }
    if (rc == 0)
        rc = parse_propagation(gf__ks_param(r, "propagationPolicy"),
                               &d->o.propagation, err);
    const char *od = gf__ks_param(r, "orphanDependents");
    if (rc == 0 && od != NULL && d->o.propagation == GF_KS_PROP_DEFAULT)
        d->o.propagation = strcmp(od, "true") == 0 ? GF_KS_PROP_ORPHAN
                                                   : GF_KS_PROP_BACKGROUND;
    return rc;
}

/*
 * The answer to a delete: built-in registries answer an immediate removal
 * with a Success Status naming the object; custom resources, and anything
 * kept by finalizers (202), answer with the object.
 */
static void reply_deleted(const struct gf__ks_rreq *r, struct gf_ks_obj *o,
                          bool gone)
{
    if (!gone || !gf__ks_builtin(r->t)) {
        reply_obj(r, gone ? 200 : 202, o);
        return;
    }
    cJSON *s = gf_ks_status_success();
    cJSON *d = cJSON_AddObjectToObject(s, "details");
    cJSON_AddStringToObject(d, "name", o->name);
    cJSON_AddStringToObject(d, "group", r->t->group);
    cJSON_AddStringToObject(d, "kind", r->t->resource);
    cJSON *j = gf_ks_obj_parse(o);
    const char *uid = gf_json_str(j, "metadata.uid");
    if (uid != NULL)
        cJSON_AddStringToObject(d, "uid", uid);
    cJSON_Delete(j);
    gf__ks_reply_json(r->out, 200, s);
    cJSON_Delete(s);
}

static void do_delete(struct gf_ks_api *api, struct gf__ks_rreq *r,
                      struct gf_ks_status *err)
{
    struct del_opts d;
    int rc = parse_delete(r, &d, err);
    if (rc == 0 && d.dry) {
        struct gf_ks_obj *cur =
            gf_ks_store_get(api->store, r->t, r->ns, r->name);
        if (cur == NULL)
            rc = gf_ks_status_not_found(err, r->t->group, r->t->resource,
                                        r->name);
        else
            reply_obj(r, 200, cur);
    } else if (rc == 0) {
        struct gf_ks_obj *o = NULL;
        bool gone = false;
        rc = gf_ks_store_delete(api->store, r->t, r->ns, r->name, &d.o, &o,
                                &gone, err);
        if (rc == 0)
            reply_deleted(r, o, gone);
    }
    if (rc < 0)
        gf__ks_reply_status(r->out, err);
    cJSON_Delete(d.body);
}

static void do_deletecollection(struct gf_ks_api *api, struct gf__ks_rreq *r,
                                struct gf_ks_status *err)
{
    struct del_opts d;
    struct sels s;
    struct gf_ks_list l = {0};
    int rc = parse_delete(r, &d, err);
    if (rc == 0)
        rc = parse_selectors(r, &s, err);
    else
        memset(&s, 0, sizeof(s));
    if (rc == 0) {
        struct gf_ks_list_opts lo = {
            .ns = r->ns, .label = s.label, .field = s.field};
        rc = gf_ks_store_list(api->store, r->t, &lo, &l, err);
    }
    sels_free(&s);
    /* The answer lists what was deleted, as the registry does. */
    for (size_t i = 0; rc == 0 && !d.dry && i < l.n; i++) {
        struct gf_ks_delete_opts o = {.propagation = d.o.propagation};
        struct gf_ks_status e2;
        gf_ks_status_init(&e2);
        gf_ks_store_delete(api->store, r->t, l.items[i]->ns,
                           l.items[i]->name, &o, NULL, NULL, &e2);
        gf_ks_status_clear(&e2);
    }
    if (rc == 0) {
        struct gf_buf b = GF_BUF_INIT(GF__KS_LIST_MAX);
        if (list_body(&b, r, &l) == 0)
            reply_buf(r->out, 200, &b);
        else
            rc = gf_ks_status_set(err, 500, "InternalError",
                                  "the list is too large to send");
        gf_buf_free(&b);
    }
    if (rc < 0)
        gf__ks_reply_status(r->out, err);
    gf_ks_list_free(&l);
    cJSON_Delete(d.body);
}

/* ---- dispatch ----------------------------------------------------------- */

static void serve_resource(struct gf_ks_api *api, struct gf__ks_rreq *r,
                           struct gf_ks_api_call **call,
                           struct gf_ks_status *err)
{
    const char *v = r->verb;
    if (r->t->read_only && write_verb(v)) {
        gf_ks_status_set(err, 405, "MethodNotAllowed",
                         "the server does not allow this method on the "
                         "requested resource");
        gf__ks_reply_status(r->out, err);
    } else if (strcmp(v, "get") == 0) {
        do_get(api, r, err);
    } else if (strcmp(v, "list") == 0) {
        do_list(api, r, err);
    } else if (strcmp(v, "watch") == 0) {
        gf__ks_watch(api, r, call);
    } else if (strcmp(v, "create") == 0) {
        do_create(api, r, err);
    } else if (strcmp(v, "update") == 0) {
        do_update(api, r, err);
    } else if (strcmp(v, "patch") == 0) {
        do_patch(api, r, err);
    } else if (strcmp(v, "delete") == 0) {
        do_delete(api, r, err);
    } else {
        do_deletecollection(api, r, err);
    }
}

static void handle(struct gf_ks_api *api, struct gf__ks_rreq *r, char *path,
                   struct gf_ks_api_call **call, struct gf_ks_status *err)
{
    int rc = parse_query(r, err);
    if (rc == 0 && !parse_path(r, path))
        rc = not_found_path(err);
    if (rc == 0)
        rc = authorize(api, r, err);
    if (rc == 0 && !r->resource_request) {
        if (!gf__ks_discovery(api, r))
            rc = not_found_path(err);
    } else if (rc == 0) {
        rc = resolve(api, r, err);
        if (rc == 0)
            serve_resource(api, r, call, err);
    }
    if (rc < 0)
        gf__ks_reply_status(r->out, err);
}

void gf_ks_api_handle(struct gf_ks_api *api, const struct gf_ks_api_req *req,
                      const struct gf_ks_api_out *out,
                      struct gf_ks_api_call **call)
{
    *call = NULL;
    struct gf__ks_rreq *r = gf_calloc(1, sizeof(*r));
    r->req = req;
    r->out = out;
    r->table = accept_table(req->accept);
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    char *path = gf_strdup(req->path != NULL ? req->path : "/");
    handle(api, r, path, call, &err);
    gf_free(path);
    gf_ks_status_clear(&err);
    gf_free(r->qbuf);
    gf_free(r);
}
