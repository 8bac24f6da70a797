/*
 * api_read: the get and list verbs. A get answers one object from the
 * store; a list answers a page of a type's objects in key order, filtered
 * by label and field selectors, with the continue token and
 * remainingItemCount the API server sends. Either may be a Table.
 */
#include <stdio.h>

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

void gf__ks_do_list(struct gf_ks_api *api, struct gf__ks_rreq *r,
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
