/*
 * api: request routing and the CRUD verbs of the simulated API server.
 *
 * A request goes through the same stages as in the API server: the path
 * is parsed into a RequestInfo (group, version, resource, subresource,
 * namespace, name, verb), the authorizer is asked about those attributes,
 * and the verb's handler answers from the store: reads here, writes in
 * api_write.c, watches in api_watch.c. Objects are stored as
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

/* Skips the JSON string at p (at its opening quote). */
static const char *skip_str(const char *p, const char *end)
{
    for (p++; p < end && *p != '"'; p++)
        if (*p == '\\')
            p++;
    return p < end ? p + 1 : end;
}

/* Skips one compact JSON value at p. */
static const char *skip_val(const char *p, const char *end)
{
    if (p < end && *p == '"')
        return skip_str(p, end);
    if (p < end && (*p == '{' || *p == '[')) {
        int depth = 0;
        while (p < end) {
            if (*p == '"') {
                p = skip_str(p, end);
                continue;
            }
            if (*p == '{' || *p == '[')
                depth++;
            else if ((*p == '}' || *p == ']') && --depth == 0)
                return p + 1;
            p++;
        }
        return end;
    }
    while (p < end && *p != ',' && *p != '}')
        p++;
    return p;
}

/*
 * True when a compact JSON object begins with kind and apiVersion, the
 * order in which the API layer writes them (and the server prints them).
 * Objects that in-process controllers store directly may lack TypeMeta,
 * which the server always sends; those take the slow path. Looking at the
 * first two members only keeps large lists at memcpy speed.
 */
static bool has_type_meta(const char *json, size_t len)
{
    const char *p = json + 1, *end = json + len;
    bool av = false, kind = false;
    for (int i = 0; i < 2 && p < end && *p == '"'; i++) {
        const char *k = p + 1;
        p = skip_str(p, end);
        size_t kl = (size_t)(p - 1 - k);
        av = av || (kl == 10 && memcmp(k, "apiVersion", 10) == 0);
        kind = kind || (kl == 4 && memcmp(k, "kind", 4) == 0);
        if (p < end && *p == ':')
            p = skip_val(p + 1, end);
        if (p < end && *p == ',')
            p++;
    }
    return av && kind;
}

void gf__ks_put_first(cJSON *obj, const char *key, const char *value)
{
    if (obj->child == NULL) {
        cJSON_AddStringToObject(obj, key, value);
        return;
    }
    /* cJSON names an item only when adding it to an object: name it in a
     * scratch object, then move it to the front. */
    cJSON *tmp = cJSON_CreateObject();
    cJSON *item = cJSON_AddStringToObject(tmp, key, value);
    cJSON_DetachItemViaPointer(tmp, item);
    cJSON_Delete(tmp);
    cJSON_InsertItemInArray(obj, 0, item);
}

int gf__ks_put_obj(struct gf_buf *b, const struct gf_ks_obj *o,
                   const struct gf_ks_version *ver)
{
    if (is_storage(o->type, ver) && has_type_meta(o->json, o->len))
        return gf_buf_append(b, o->json, o->len);
    /* Conversion strategy None: only apiVersion changes (and TypeMeta is
     * filled in when a controller stored the object without it). */
    const struct gf_ks_rtype *t = o->type;
    if (ver == NULL)
        ver = &t->versions[t->storage];
    cJSON *j = gf_ks_obj_parse(o);
    char gv[256];
    gf__ks_gv(t->group, ver->name, gv, sizeof(gv));
    cJSON_DeleteItemFromObjectCaseSensitive(j, "apiVersion");
    cJSON_DeleteItemFromObjectCaseSensitive(j, "kind");
    gf__ks_put_first(j, "apiVersion", gv);
    gf__ks_put_first(j, "kind", t->kind);
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

void gf__ks_reply_buf(const struct gf_ks_api_out *out, int code,
                      const struct gf_buf *b)
{
    out->reply(out->ctx, code, "application/json", gf_buf_cstr(b), b->len);
}

void gf__ks_reply_obj(const struct gf__ks_rreq *r, int code,
                      const struct gf_ks_obj *o)
{
    struct gf_buf b = GF_BUF_INIT(GF__KS_LIST_MAX);
    gf__ks_put_obj(&b, o, r->ver);
    gf__ks_reply_buf(r->out, code, &b);
    gf_buf_free(&b);
}

int gf__ks_not_found_path(struct gf_ks_status *err)
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
    if (strlen(q) > (size_t)64 * 1024)
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
        /* A key without '=' has the empty value (inside qbuf: writable). */
        char *v = eq != NULL ? eq + 1 : p + strlen(p);
        if (!unescape(p) || !unescape(v))
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
    /* Go's strconv.ParseBool: the Python client sends "True". */
    static const char *const yes[] = {"1", "t", "T", "true", "TRUE", "True"};
    const char *v = gf__ks_param(r, key);
    for (size_t i = 0; v != NULL && i < sizeof(yes) / sizeof(yes[0]); i++)
        if (strcmp(v, yes[i]) == 0)
            return true;
    return false;
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
        {"GET", "get"},         {"HEAD", "head"},   {"POST", "post"},
        {"PUT", "put"},         {"PATCH", "patch"}, {"DELETE", "delete"},
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
        rc = gf_ks_status_set(err, 403, "Forbidden",
                              "forbidden: User \"%s\" "
                              "cannot %s path \"%s\"",
                              a.user, a.verb, a.path);
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
        return gf__ks_not_found_path(err);
    r->ver = gf__ks_find_version(r->t, r->version);
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
        gf__ks_reply_obj(r, 200, o);
        return;
    }
    struct gf_buf b = GF_BUF_INIT(GF__KS_LIST_MAX);
    gf__ks_table(api, &b, r->t, r->ver, &o, 1, NULL, NULL,
                 gf__ks_param(r, "includeObject"));
    gf__ks_reply_buf(r->out, 200, &b);
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
        return gf_ks_status_set(err, 400, "BadRequest", "invalid limit: %s", l);
    *limit = v > 0 ? (size_t)v : 0;
    return 0;
}

int gf__ks_parse_selectors(const struct gf__ks_rreq *r, struct gf__ks_sels *s,
                           struct gf_ks_status *err)
{
    memset(s, 0, sizeof(*s));
    int rc = gf_ks_selector_parse(gf__ks_param(r, "labelSelector"), false,
                                  &s->label, err);
    if (rc == 0) {
        const struct gf_ks_field_type ft = {
            .group = r->t->group,
            .resource = r->t->resource,
            .kind = r->t->kind,
            .namespaced = r->t->namespaced,
            .custom = !gf__ks_builtin(r->t),
        };
        rc = gf_ks_selector_parse_fields(gf__ks_param(r, "fieldSelector"), &ft,
                                         &s->field, err);
    }
    return rc;
}

void gf__ks_sels_free(struct gf__ks_sels *s)
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

int gf__ks_list_body(struct gf_buf *b, const struct gf__ks_rreq *r,
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
    struct gf__ks_sels s;
    size_t limit;
    int rc = gf__ks_parse_selectors(r, &s, err);
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
    gf__ks_sels_free(&s);
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
        rc = gf__ks_list_body(&b, r, &l);
    }
    if (rc < 0) {
        gf_ks_status_set(err, 500, "InternalError",
                         "the list is too large to send");
        gf__ks_reply_status(r->out, err);
    } else {
        gf__ks_reply_buf(r->out, 200, &b);
    }
    gf_buf_free(&b);
    gf_ks_list_free(&l);
}

/* ---- dispatch ----------------------------------------------------------- */

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
        do_get(api, r, err);
    } else if (strcmp(v, "list") == 0) {
        do_list(api, r, err);
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

static void handle(struct gf_ks_api *api, struct gf__ks_rreq *r, char *path,
                   struct gf_ks_api_call **call, struct gf_ks_status *err)
{
    int rc = parse_query(r, err);
    if (rc == 0 && !parse_path(r, path))
        rc = gf__ks_not_found_path(err);
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
            rc = gf__ks_not_found_path(err);
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
    GF_BUG_ON(req->method == NULL); /* the server always sets it */
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
