/*
 * api_reply: replies of the REST layer. Objects are stored as compact
 * JSON in their type's storage version and streamed out as they are
 * whenever the client asked for that version, so a large list costs a
 * copy, not a parse and a print per object; Status errors, lists and
 * single objects all leave through here.
 */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "e2e/kubesim/api_toolkit.h"

void gf__ks_gv(const char *group, const char *version, char *out, size_t cap)
{
    if (group[0] != '\0')
        snprintf(out, cap, "%s/%s", group, version);
    else
        snprintf(out, cap, "%s", version);
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
    int rc = gf_ks_status_set(err, 404, "NotFound",
                              "the server could not find the requested "
                              "resource");
    /* The API server's router answers with empty details. */
    if (err != NULL)
        err->details = true;
    return rc;
}

void gf__ks_warn(struct gf_ks_api *api, const char *text)
{
    const struct gf_ks_api_out *out = api->out_now;
    if (out == NULL || out->header == NULL)
        return;
    /* 299 - "text", the text quoted as a Go %q would (the server's form). */
    cJSON *s = cJSON_CreateString(text);
    char *q = cJSON_PrintUnformatted(s);
    struct gf_buf v = GF_BUF_INIT(8192);
    gf_buf_printf(&v, "299 - %s", q != NULL ? q : "\"\"");
    out->header(out->ctx, "Warning", gf_buf_cstr(&v));
    gf_buf_free(&v);
    cJSON_free(q);
    cJSON_Delete(s);
}

void gf__ks_reply_not_found_text(const struct gf_ks_api_out *out)
{
    static const char text[] = "404 page not found\n";
    out->reply(out->ctx, 404, "text/plain; charset=utf-8", text,
               sizeof(text) - 1);
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
