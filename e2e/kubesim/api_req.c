/*
 * api_req: request parsing for the REST layer. A request's path and query
 * become a RequestInfo as the API server builds it (group, version,
 * resource, subresource, namespace, name, verb), with the query
 * percent-decoded as Go's url.ParseQuery does; selectors and versions are
 * parsed here for every handler.
 */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "e2e/kubesim/api_toolkit.h"
#include "e2e/kubesim/select.h"

#define MAX_SEGS 10

const struct gf_ks_version *gf__ks_find_version(const struct gf_ks_rtype *t,
                                                const char *version)
{
    for (size_t i = 0; i < t->n_versions; i++)
        if (t->versions[i].served && strcmp(t->versions[i].name, version) == 0)
            return &t->versions[i];
    return NULL;
}

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

static bool accept_table(const char *accept)
{
    return accept != NULL && strstr(accept, "as=Table") != NULL;
}

int gf__ks_req_parse(struct gf__ks_rreq *r, struct gf_ks_status *err)
{
    r->table = accept_table(r->req->accept);
    int rc = parse_query(r, err);
    if (rc != 0)
        return rc;
    /* The path is split in place; the parts are copied into r. */
    char *path = gf_strdup(r->req->path != NULL ? r->req->path : "/");
    if (!parse_path(r, path))
        rc = gf__ks_not_found_path(err);
    gf_free(path);
    return rc;
}

void gf__ks_req_done(struct gf__ks_rreq *r)
{
    gf_free(r->qbuf);
    r->qbuf = NULL;
    r->nparams = 0;
}
