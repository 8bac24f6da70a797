/*
 * api_read: the get and list verbs. A get answers one object from the
 * store; a list answers a page of a type's objects in key order, filtered
 * by label and field selectors, with the continue token and
 * remainingItemCount the API server sends. Either may be a Table.
 */
#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "common/json.h"
#include "e2e/kubesim/api_handlers.h"

void gf__ks_do_get(struct gf_ks_api *api, struct gf__ks_rreq *r,
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

/*
 * The version a list is served at (0 = now), as the API server reads
 * resourceVersion and resourceVersionMatch: Exact, or a limit with a
 * version other than 0 (the paginated read from etcd), is served at
 * exactly that version; otherwise a version is only a lower bound, which
 * the current state meets.
 */
static int parse_list_rv(const struct gf__ks_rreq *r, size_t limit,
                         uint64_t *at, struct gf_ks_status *err)
{
    const char *rv = gf__ks_param(r, "resourceVersion");
    const char *match = gf__ks_param(r, "resourceVersionMatch");
    bool has_rv = rv != NULL && rv[0] != '\0';
    bool has_match = match != NULL && match[0] != '\0';
    *at = 0;
    if (has_match && !has_rv) {
        static const char why[] = "Forbidden: resourceVersionMatch is "
                                  "forbidden unless resourceVersion is "
                                  "provided";
        int rc = gf_ks_status_set(err, 422, "Invalid",
                                  "ListOptions.meta.k8s.io \"\" is invalid: "
                                  "resourceVersionMatch: %s",
                                  why);
        gf_ks_status_details(err, "", "meta.k8s.io", "ListOptions");
        gf_ks_status_cause(err, "FieldValueForbidden", why,
                           "resourceVersionMatch");
        return rc;
    }
    if (!has_rv || strcmp(rv, "0") == 0)
        return 0;
    int64_t v = 0;
    if (gf_parse_i64(rv, &v) != 0 || v <= 0)
        return gf_ks_status_set(err, 400, "BadRequest",
                                "invalid resource version: %s", rv);
    bool exact = has_match ? strcmp(match, "Exact") == 0 : limit > 0;
    if (exact)
        *at = (uint64_t)v;
    return 0;
}

void gf__ks_do_list(struct gf_ks_api *api, struct gf__ks_rreq *r,
                    struct gf_ks_status *err)
{
    struct gf__ks_sels s;
    size_t limit = 0;
    uint64_t at = 0;
    int rc = gf__ks_parse_selectors(r, &s, err);
    if (rc == 0)
        rc = parse_limit(r, &limit, err);
    if (rc == 0)
        rc = parse_list_rv(r, limit, &at, err);
    struct gf_ks_list l = {0};
    if (rc == 0) {
        struct gf_ks_list_opts lo = {
            .ns = r->ns,
            .label = s.label,
            .field = s.field,
            .limit = limit,
            .cont = gf__ks_param(r, "continue"),
            .at_rv = at,
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
