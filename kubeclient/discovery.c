/*
 * discovery: fetches what a server serves and resolves resource
 * arguments against it the way kubectl does (see discovery.h).
 */
#include "kubeclient/discovery.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/log.h"
#include "kubeclient/internal.h"

/* Short names per resource kept; CRDs rarely declare more than four. */
#define MAX_SHORT 8
/* Group versions a legacy server may list; more are left out. */
#define MAX_GV 256

struct entry {
    char *group, *version, *plural, *singular, *kind;
    char *shorts[MAX_SHORT];
    size_t nshort;
    bool namespaced;
};

struct gf_kube_discovery {
    struct entry *e;
    size_t n, cap;
};

struct gf_kube_discovery *gf_kube_discovery_new(void)
{
    return gf_calloc(1, sizeof(struct gf_kube_discovery));
}

static void entry_free(struct entry *e)
{
    gf_free(e->group);
    gf_free(e->version);
    gf_free(e->plural);
    gf_free(e->singular);
    gf_free(e->kind);
    for (size_t i = 0; i < e->nshort; i++)
        gf_free(e->shorts[i]);
}

void gf_kube_discovery_free(struct gf_kube_discovery *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->n; i++)
        entry_free(&d->e[i]);
    gf_free(d->e);
    gf_free(d);
}

size_t gf_kube_discovery_count(const struct gf_kube_discovery *d)
{
    return d != NULL ? d->n : 0;
}

/* ---- documents ----------------------------------------------------------- */

static const char *str_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static char *lower_dup(const char *s)
{
    char *d = gf_strdup(s);
    for (char *p = d; *p != '\0'; p++)
        *p = (char)tolower((unsigned char)*p);
    return d;
}

/* One resource of group/version. singular "" or NULL: kubectl's guess,
 * the kind lowercased (legacy servers leave built-ins' singular out). */
static void add_entry(struct gf_kube_discovery *d, const char *group,
                      const char *version, const char *plural,
                      const char *singular, const char *kind, bool namespaced,
                      const cJSON *shorts)
{
    if (plural == NULL || *plural == '\0' || strchr(plural, '/') != NULL ||
        kind == NULL || *kind == '\0')
        return; /* a subresource, or nothing we can name */
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 64;
        d->e = gf_realloc(d->e, d->cap * sizeof(*d->e));
    }
    struct entry *e = &d->e[d->n++];
    memset(e, 0, sizeof(*e));
    e->group = gf_strdup(group);
    e->version = gf_strdup(version);
    e->plural = gf_strdup(plural);
    e->kind = gf_strdup(kind);
    e->singular = singular != NULL && *singular != '\0' ? gf_strdup(singular)
                                                        : lower_dup(kind);
    e->namespaced = namespaced;
    const cJSON *s;
    cJSON_ArrayForEach(s, shorts)
    {
        if (cJSON_IsString(s) && e->nshort < MAX_SHORT)
            e->shorts[e->nshort++] = gf_strdup(s->valuestring);
    }
}

/* "group/version" or "version" (core). */
static void split_gv(const char *gv, char *group, size_t gcap, char *version,
                     size_t vcap)
{
    const char *slash = strchr(gv, '/');
    if (slash == NULL) {
        gf__strlcpy(group, "", gcap);
        gf__strlcpy(version, gv, vcap);
        return;
    }
    size_t gl = (size_t)(slash - gv);
    snprintf(group, gcap, "%.*s", (int)(gl < gcap ? gl : gcap - 1), gv);
    gf__strlcpy(version, slash + 1, vcap);
}

static int add_resource_list(struct gf_kube_discovery *d, const cJSON *doc)
{
    const char *gv = str_of(doc, "groupVersion");
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(doc, "resources");
    if (gv == NULL || !cJSON_IsArray(res))
        return GF_EPARSE;
    char group[256], version[64];
    split_gv(gv, group, sizeof(group), version, sizeof(version));
    const cJSON *r;
    cJSON_ArrayForEach(r, res)
    {
        add_entry(
            d, group, version, str_of(r, "name"), str_of(r, "singularName"),
            str_of(r, "kind"),
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "namespaced")),
            cJSON_GetObjectItemCaseSensitive(r, "shortNames"));
    }
    return 0;
}

static int add_aggregated(struct gf_kube_discovery *d, const cJSON *doc)
{
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(doc, "items");
    if (!cJSON_IsArray(items))
        return GF_EPARSE;
    const cJSON *g;
    cJSON_ArrayForEach(g, items)
    {
        /* The core group has no name. */
        const char *group =
            str_of(cJSON_GetObjectItemCaseSensitive(g, "metadata"), "name");
        const cJSON *v;
        cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(g, "versions"))
        {
            const char *version = str_of(v, "version");
            if (version == NULL)
                continue;
            const cJSON *r;
            cJSON_ArrayForEach(r,
                               cJSON_GetObjectItemCaseSensitive(v, "resources"))
            {
                /* kube-apiserver 1.28 leaves responseKind's group and
                 * version empty; only its kind is read. */
                const cJSON *rk =
                    cJSON_GetObjectItemCaseSensitive(r, "responseKind");
                const char *scope = str_of(r, "scope");
                add_entry(d, group != NULL ? group : "", version,
                          str_of(r, "resource"), str_of(r, "singularResource"),
                          str_of(rk, "kind"),
                          scope != NULL && strcmp(scope, "Namespaced") == 0,
                          cJSON_GetObjectItemCaseSensitive(r, "shortNames"));
            }
        }
    }
    return 0;
}

int gf_kube_discovery_add(struct gf_kube_discovery *d, const cJSON *doc)
{
    const char *kind = str_of(doc, "kind");
    if (kind == NULL)
        return GF_EPARSE;
    if (strcmp(kind, "APIGroupDiscoveryList") == 0)
        return add_aggregated(d, doc);
    if (strcmp(kind, "APIResourceList") == 0)
        return add_resource_list(d, doc);
    return GF_EPARSE;
}

/* ---- resolution ---------------------------------------------------------- */

static int fill(const struct entry *e, const char *version,
                struct gf_kube_resource *out)
{
    return gf_kube_resource_set(out, e->group,
                                version != NULL ? version : e->version,
                                e->plural, e->kind, e->namespaced);
}

static bool named(const struct entry *e, const char *res)
{
    return strcmp(e->plural, res) == 0 || strcmp(e->singular, res) == 0;
}

static bool in_scope(const struct entry *e, const char *group,
                     const char *version)
{
    return (group == NULL || strcmp(e->group, group) == 0) &&
           (version == NULL || strcmp(e->version, version) == 0);
}

/*
 * kubectl's shortcut expander: a short name applies only when no
 * resource (of the group, if one is given) is named res by its plural or
 * singular; then the first resource declaring it stands for it.
 */
static const struct entry *by_short(const struct gf_kube_discovery *d,
                                    const char *res, const char *group)
{
    for (size_t i = 0; i < d->n; i++)
        if (in_scope(&d->e[i], group, NULL) && named(&d->e[i], res))
            return NULL;
    for (size_t i = 0; i < d->n; i++) {
        if (!in_scope(&d->e[i], group, NULL))
            continue;
        for (size_t s = 0; s < d->e[i].nshort; s++)
            if (strcmp(d->e[i].shorts[s], res) == 0)
                return &d->e[i];
    }
    return NULL;
}

/* res in group (NULL: any), version (NULL: the first in priority). */
static int by_resource(const struct gf_kube_discovery *d, const char *res,
                       const char *version, const char *group,
                       struct gf_kube_resource *out)
{
    const struct entry *sh = by_short(d, res, group);
    if (sh != NULL) {
        res = sh->plural;
        group = sh->group;
    }
    for (size_t i = 0; i < d->n; i++)
        if (in_scope(&d->e[i], group, version) && named(&d->e[i], res))
            return fill(&d->e[i], NULL, out);
    return -ENOENT;
}

static int by_kind(const struct gf_kube_discovery *d, const char *kind,
                   const char *version, const char *group,
                   struct gf_kube_resource *out)
{
    for (size_t i = 0; i < d->n; i++)
        if (in_scope(&d->e[i], group, version) &&
            strcmp(d->e[i].kind, kind) == 0)
            return fill(&d->e[i], NULL, out);
    return -ENOENT;
}

static bool valid_arg(const char *s)
{
    for (; *s != '\0'; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '.')
            return false;
    return true;
}

int gf_kube_discovery_resolve(const struct gf_kube_discovery *d,
                              const char *arg, struct gf_kube_resource *out)
{
    char a[256], lower[256];
    if (d == NULL || arg == NULL || *arg == '\0' || strlen(arg) >= sizeof(a) ||
        !valid_arg(arg))
        return -EINVAL;
    gf__strlcpy(a, arg, sizeof(a));
    for (size_t i = 0;; i++) {
        lower[i] = (char)tolower((unsigned char)a[i]);
        if (a[i] == '\0')
            break;
    }
    /* Split both spellings at their first two dots: name, 2nd, rest. */
    char *parts[2][3] = {{a, NULL, NULL}, {lower, NULL, NULL}};
    for (int w = 0; w < 2; w++) {
        char *dot = strchr(parts[w][0], '.');
        if (dot == NULL)
            continue;
        *dot = '\0';
        parts[w][1] = dot + 1;
        char *dot2 = strchr(dot + 1, '.');
        if (dot2 != NULL)
            parts[w][2] = dot2 + 1;
    }
    if (*parts[0][0] == '\0' || (parts[0][1] != NULL && *parts[0][1] == '\0'))
        return -EINVAL;
    /* The group keeps its spelling: groups are lowercase by rule. */
    const char *res = parts[1][0], *after = parts[0][1], *rest = parts[0][2];
    char version[64] = "";
    if (rest != NULL) {
        size_t vl = (size_t)(rest - 1 - after);
        if (vl == 0 || vl >= sizeof(version) || *rest == '\0')
            return -EINVAL;
        memcpy(version, after, vl);
        version[vl] = '\0';
        if (by_resource(d, res, version, rest, out) == 0)
            return 0;
    }
    if (by_resource(d, res, NULL, after != NULL ? after : "", out) == 0)
        return 0;
    if (after == NULL && by_resource(d, res, NULL, NULL, out) == 0)
        return 0;
    const char *kind = parts[0][0];
    if (rest != NULL && by_kind(d, kind, version, rest, out) == 0)
        return 0;
    return by_kind(d, kind, NULL, after, out);
}

/* ---- fetching ------------------------------------------------------------ */

#define ACCEPT_AGGREGATED                                                      \
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"    \
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as="                     \
    "APIGroupDiscoveryList,application/json"

/* One document's resources, kept apart until all are in, so that the
 * result is in priority order whatever order the answers came in. Slots
 * are allocated one by one: a call in flight points at its own. */
struct slot {
    struct gf_kube_discovery *d;
    struct gf_kube_call *call;
    struct gf_kube_discover *dc;
    bool top; /* /api or /apis: its failure fails discovery */
};

struct gf_kube_discover {
    struct gf_kube_client *c;
    bool legacy;
    struct slot **slots; /* in priority order */
    size_t nslots, cap, pending;
    int err;
    struct gf_api_status st;
    gf_kube_discover_cb cb;
    void *data;
};

static void on_doc(void *data, const struct gf_kube_result *res);

static size_t slot_index(const struct gf_kube_discover *dc,
                         const struct slot *s)
{
    size_t i = 0;
    while (i < dc->nslots && dc->slots[i] != s)
        i++;
    return i;
}

/* Fetches path into a new slot at position `at`, so that what a document
 * leads to (a group's versions) takes the document's place. */
static int fetch(struct gf_kube_discover *dc, size_t at, const char *path,
                 bool top)
{
    if (dc->nslots == MAX_GV)
        return GF_E2BIG;
    struct slot *s = gf_calloc(1, sizeof(*s));
    s->dc = dc;
    s->top = top;
    struct gf_kube_op op = {
        .method = "GET",
        .path = path,
        .accept = top && !dc->legacy ? ACCEPT_AGGREGATED : NULL,
    };
    int rc = gf_kube_call(dc->c, &op, on_doc, s, &s->call);
    if (rc != 0) {
        gf_free(s);
        return rc;
    }
    if (dc->nslots == dc->cap) {
        dc->cap = dc->cap ? dc->cap * 2 : 16;
        dc->slots = gf_realloc(dc->slots, dc->cap * sizeof(*dc->slots));
    }
    memmove(&dc->slots[at + 1], &dc->slots[at],
            (dc->nslots - at) * sizeof(*dc->slots));
    dc->slots[at] = s;
    dc->nslots++;
    dc->pending++;
    return 0;
}

/* A legacy /apis: every version of every group, in the listed order,
 * after position at. */
static void fetch_groups(struct gf_kube_discover *dc, size_t at,
                         const cJSON *doc)
{
    const cJSON *g;
    size_t next = at + 1;
    cJSON_ArrayForEach(g, cJSON_GetObjectItemCaseSensitive(doc, "groups"))
    {
        const cJSON *v;
        cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(g, "versions"))
        {
            const char *gv = str_of(v, "groupVersion");
            char path[300];
            if (gv == NULL ||
                snprintf(path, sizeof(path), "/apis/%s", gv) >=
                    (int)sizeof(path) ||
                fetch(dc, next, path, false) != 0)
                continue;
            next++;
        }
    }
}

static void finish(struct gf_kube_discover *dc)
{
    struct gf_kube_discovery *d = NULL;
    if (dc->err == 0) {
        d = gf_kube_discovery_new();
        for (size_t i = 0; i < dc->nslots; i++) {
            struct gf_kube_discovery *s = dc->slots[i]->d;
            if (s == NULL)
                continue;
            for (size_t j = 0; j < s->n; j++) {
                if (d->n == d->cap) {
                    d->cap = d->cap ? d->cap * 2 : 64;
                    d->e = gf_realloc(d->e, d->cap * sizeof(*d->e));
                }
                d->e[d->n++] = s->e[j];
            }
            s->n = 0; /* moved */
        }
    }
    for (size_t i = 0; i < dc->nslots; i++) {
        gf_kube_discovery_free(dc->slots[i]->d);
        gf_free(dc->slots[i]);
    }
    dc->cb(dc->data, dc->err, &dc->st, d);
    gf_free(dc->slots);
    gf_free(dc);
}

static void fail(struct gf_kube_discover *dc, int err,
                 const struct gf_api_status *st)
{
    if (dc->err != 0)
        return;
    dc->err = err;
    dc->st = *st;
    gf_kube_discover_cancel(dc);
}

static void on_doc(void *data, const struct gf_kube_result *res)
{
    struct slot *s = data;
    struct gf_kube_discover *dc = s->dc;
    size_t at = slot_index(dc, s);
    s->call = NULL;
    dc->pending--;
    if (res->err != 0 || res->json == NULL) {
        if (s->top)
            fail(dc, res->err != 0 ? res->err : GF_EPARSE, res->status);
        else if (dc->err == 0)
            GF_LOG(gf__kube_client_lc(dc->c), GF_LOG_WARN,
                   "group version left out of discovery", "err=%s msg=%s",
                   gf_strerror(res->err), res->status->message);
    } else if (dc->err == 0) {
        const char *kind = str_of(res->json, "kind");
        s->d = gf_kube_discovery_new();
        if (kind != NULL && strcmp(kind, "APIVersions") == 0)
            fetch(dc, at, "/api/v1", false); /* legacy core */
        else if (kind != NULL && strcmp(kind, "APIGroupList") == 0)
            fetch_groups(dc, at, res->json);
        else if (gf_kube_discovery_add(s->d, res->json) != 0 && s->top) {
            struct gf_api_status st;
            gf_api_status_transport(GF_EPARSE, "not a discovery document", &st);
            fail(dc, GF_EPARSE, &st);
        }
    }
    if (dc->pending == 0)
        finish(dc);
}

int gf_kube_discover_start(struct gf_kube_client *c,
                           const struct gf_kube_discover_opts *opts,
                           gf_kube_discover_cb cb, void *data,
                           struct gf_kube_discover **out)
{
    if (out != NULL)
        *out = NULL;
    if (c == NULL || cb == NULL)
        return -EINVAL;
    struct gf_kube_discover *dc = gf_calloc(1, sizeof(*dc));
    dc->c = c;
    dc->legacy = opts != NULL && opts->legacy;
    dc->cb = cb;
    dc->data = data;
    int rc = fetch(dc, 0, "/api", true);
    if (rc != 0) {
        gf_free(dc);
        return rc;
    }
    rc = fetch(dc, 1, "/apis", true);
    if (rc != 0) {
        /* /api is in flight and its callback will run: report then. */
        struct gf_api_status st;
        gf_api_status_transport(rc, "discovery not started", &st);
        fail(dc, rc, &st);
    }
    if (out != NULL)
        *out = dc;
    return 0;
}

void gf_kube_discover_cancel(struct gf_kube_discover *dc)
{
    if (dc == NULL)
        return;
    if (dc->err == 0) {
        dc->err = GF_ECANCELED;
        gf_api_status_transport(GF_ECANCELED, NULL, &dc->st);
    }
    for (size_t i = 0; i < dc->nslots; i++)
        if (dc->slots[i]->call != NULL)
            gf_kube_call_cancel(dc->slots[i]->call);
}
