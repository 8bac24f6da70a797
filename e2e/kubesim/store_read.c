/*
 * store_read: get, foreach, dependents and list of the object store. A list
 * is sorted by key and paged with continue tokens of the API server's
 * shape.
 */
#include "e2e/kubesim/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/alloc.h"
#include "common/json.h"
#include "e2e/kubesim/select.h"
#include "e2e/kubesim/store_internal.h"

/* ---- reads ----------------------------------------------------------- */

struct gf_ks_obj *gf_ks_store_get(const struct gf_ks_store *st,
                                  const struct gf_ks_rtype *t, const char *ns,
                                  const char *name)
{
    const struct gf__ks_st_table *tab = gf__ks_st_table_of(st, t);
    if (tab == NULL || name == NULL)
        return NULL;
    char key[GF__KS_KEY_MAX];
    if (!gf__ks_st_make_key(key, t->namespaced ? ns : "", name))
        return NULL;
    struct gf__ks_st_entry *e = gf__ks_st_tab_find(tab, key);
    return e != NULL ? e->obj : NULL;
}

void gf_ks_store_foreach(const struct gf_ks_store *st,
                         const struct gf_ks_rtype *t, const char *ns,
                         bool (*fn)(void *data, struct gf_ks_obj *o),
                         void *data)
{
    const struct gf__ks_st_table *tab = gf__ks_st_table_of(st, t);
    if (tab == NULL)
        return;
    if (ns != NULL && ns[0] == '\0')
        ns = NULL;
    size_t pos = 0;
    void *v;
    while (gf_htab_scan(&tab->map, &pos, NULL, &v)) {
        const struct gf__ks_st_entry *e = v;
        if ((ns == NULL || strcmp(e->obj->ns, ns) == 0) && !fn(data, e->obj))
            return;
    }
}

void gf_ks_store_dependents(const struct gf_ks_store *st, const char *owner_uid,
                            bool (*fn)(void *data, struct gf_ks_obj *o),
                            void *data)
{
    struct gf__ks_st_uidrec *u = gf__ks_st_uid_find(st, owner_uid);
    for (struct gf__ks_st_dep *d = u != NULL ? u->deps : NULL; d != NULL;
         d = d->next)
        if (!fn(data, d->e->obj))
            return;
}

/*
 * Continue tokens have the API server's shape: base64 of
 * {"v":"meta.k8s.io/v1","rv":N,"start":"<key>\u0000"}.
 */
static char *continue_encode(uint64_t rv, const char *key)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "v", "meta.k8s.io/v1");
    cJSON_AddNumberToObject(j, "rv", (double)rv);
    size_t kl = strlen(key);
    char *start = gf_malloc(kl + 2);
    memcpy(start, key, kl);
    start[kl] = '\x01'; /* "after key": cJSON strings stop at NUL */
    start[kl + 1] = '\0';
    cJSON_AddStringToObject(j, "start", start);
    gf_free(start);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    size_t n = strlen(s);
    char *out = gf_malloc(4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n);
    gf_free(s);
    return out;
}

static int continue_decode(const char *tok, char *key, size_t cap, uint64_t *rv,
                           struct gf_ks_status *err)
{
    size_t n = strlen(tok);
    if (n == 0 || n > 4096 || n % 4 != 0)
        goto bad;
    unsigned char raw[3100];
    int m = EVP_DecodeBlock(raw, (const unsigned char *)tok, (int)n);
    if (m <= 0)
        goto bad;
    /* EVP_DecodeBlock counts the padding bytes as zeros. */
    while (m > 0 && raw[m - 1] == '\0')
        m--;
    cJSON *j = cJSON_ParseWithLength((const char *)raw, (size_t)m);
    const char *start = gf_json_str(j, "start");
    if (start == NULL || strlen(start) >= cap) {
        cJSON_Delete(j);
        goto bad;
    }
    snprintf(key, cap, "%s", start);
    int64_t v = 0;
    *rv = gf_json_int(j, "rv", &v) == 0 && v > 0 ? (uint64_t)v : 0;
    cJSON_Delete(j);
    return 0;
bad:
    return gf_ks_status_set(err, 400, "BadRequest",
                            "continue key is not valid: illegal base64 data");
}

/* One object of a listing, current or rebuilt. */
struct kv {
    const char *key;
    struct gf_ks_obj *obj;
};

static int cmp_kv(const void *a, const void *b)
{
    return strcmp(((const struct kv *)a)->key, ((const struct kv *)b)->key);
}

static bool in_page(const char *key, const struct gf_ks_obj *o, const char *ns,
                    const char *after)
{
    if (ns != NULL && strcmp(o->ns, ns) != 0)
        return false;
    return after[0] == '\0' || strcmp(key, after) > 0;
}

/*
 * The objects of a table in namespace ns (NULL = all) whose key sorts
 * after `after` ("" = from the start), in key order. Returned-owned
 * array (gf_free) of borrowed keys and objects; *n set.
 */
static struct kv *current_kvs(const struct gf__ks_st_table *tab, const char *ns,
                              const char *after, size_t *n)
{
    size_t len = gf_htab_len(&tab->map);
    struct kv *v = gf_malloc((len ? len : 1) * sizeof(*v));
    size_t k = 0, pos = 0;
    void *p;
    while (gf_htab_scan(&tab->map, &pos, NULL, &p)) {
        struct gf__ks_st_entry *e = p;
        if (in_page(e->key, e->obj, ns, after))
            v[k++] = (struct kv){e->key, e->obj};
    }
    qsort(v, k, sizeof(*v), cmp_kv);
    *n = k;
    return v;
}

static void snap_set(struct gf_htab *m, const struct gf_ks_obj *o,
                     struct gf_ks_obj *val)
{
    char key[GF__KS_KEY_MAX];
    if (!gf__ks_st_make_key(key, o->ns, o->name))
        return;
    if (val != NULL)
        gf_htab_put_str(m, key, val);
    else
        gf_htab_del_str(m, key);
}

/*
 * The table as it was at rv: the current objects with every cached
 * change newer than rv undone, newest first (the caller has checked
 * that the watch cache holds all of them). Keys are owned by *m.
 */
static struct kv *kvs_at(const struct gf__ks_st_table *tab, uint64_t rv,
                         const char *ns, const char *after, struct gf_htab *m,
                         size_t *n)
{
    gf_htab_init(m, GF_HTAB_OWN_KEYS);
    size_t pos = 0;
    const char *key;
    void *p;
    while (gf_htab_scan(&tab->map, &pos, &key, &p))
        gf_htab_put_str(m, key, ((struct gf__ks_st_entry *)p)->obj);
    for (size_t i = tab->ring_len; i-- > 0;) {
        const struct gf__ks_st_cached_ev *c =
            &tab->ring[(tab->ring_head + i) % tab->ring_cap];
        if (c->obj->rv <= rv)
            break;
        snap_set(m, c->obj,
                 c->type == GF_KS_EV_ADDED ? NULL
                 : c->old != NULL          ? c->old
                                           : c->obj);
    }
    struct kv *v =
        gf_malloc((gf_htab_len(m) ? gf_htab_len(m) : 1) * sizeof(*v));
    size_t k = 0;
    pos = 0;
    while (gf_htab_scan(m, &pos, &key, &p)) {
        if (in_page(key, p, ns, after))
            v[k++] = (struct kv){key, p};
    }
    qsort(v, k, sizeof(*v), cmp_kv);
    *n = k;
    return v;
}

static bool list_match(const struct gf_ks_list_opts *o,
                       const struct gf_ks_obj *obj)
{
    if (o->label == NULL && o->field == NULL)
        return true;
    cJSON *j = gf_ks_obj_parse(obj);
    bool ok =
        gf_ks_selector_match(o->label, j) && gf_ks_selector_match(o->field, j);
    cJSON_Delete(j);
    return ok;
}

/* One page of the sorted objects v[0..n) into out (items, token). */
static void fill_page(const struct gf_ks_list_opts *o, const struct kv *v,
                      size_t n, struct gf_ks_list *out)
{
    out->items = gf_malloc(GF__KS_PTRS(n ? n : 1));
    size_t i = 0;
    for (; i < n; i++) {
        if (!list_match(o, v[i].obj))
            continue;
        if (o->limit > 0 && out->n == o->limit)
            break;
        out->items[out->n++] = gf_ks_obj_ref(v[i].obj);
    }
    if (i == n || out->n == 0)
        return;
    /*
     * The server counts the rest only when no selector filters them (it
     * cannot know how many would match); so does this.
     */
    out->remaining = (o->label == NULL && o->field == NULL) ? n - i : 0;
    struct gf_ks_obj *last = out->items[out->n - 1];
    char key[GF__KS_KEY_MAX];
    gf__ks_st_make_key(key, last->ns, last->name);
    out->cont = continue_encode(out->rv, key);
}

/* 0 when the table's state at rv can be rebuilt, else the server's error. */
static int check_at(const struct gf_ks_store *st,
                    const struct gf__ks_st_table *tab, uint64_t rv,
                    bool from_token, struct gf_ks_status *err)
{
    if (rv > st->rv) {
        int rc = gf_ks_status_set(
            err, 504, "Timeout",
            "Timeout: Too large resource version: %llu, current: %llu",
            (unsigned long long)rv, (unsigned long long)st->rv);
        gf_ks_status_cause(err, "ResourceVersionTooLarge",
                           "Too large resource version", NULL);
        if (err != NULL)
            err->retry_after = 1;
        return rc;
    }
    if (rv >= tab->compacted_rv && tab->ring_cap > 0)
        return 0;
    if (from_token)
        return gf_ks_status_set(
            err, 410, "Expired",
            "The provided continue parameter is too old to display a "
            "consistent list result. You can start a new list without the "
            "continue parameter, or use the continue token in this "
            "response to retrieve the remainder of the results. Continuing "
            "with the provided token results in an inconsistent list - "
            "objects that were created, modified, or deleted between the "
            "time the first chunk was returned and now may show up in the "
            "list.");
    return gf_ks_status_set(err, 410, "Expired",
                            "The resourceVersion for the provided list is too "
                            "old.");
}

int gf_ks_store_list(const struct gf_ks_store *st, const struct gf_ks_rtype *t,
                     const struct gf_ks_list_opts *o, struct gf_ks_list *out,
                     struct gf_ks_status *err)
{
    memset(out, 0, sizeof(*out));
    out->rv = st->rv;
    const struct gf__ks_st_table *tab = gf__ks_st_table_of(st, t);
    if (tab == NULL)
        return gf_ks_status_set(err, 404, "NotFound",
                                "the server could not find the requested "
                                "resource");
    char after[GF__KS_KEY_MAX + 2] = "";
    uint64_t at = o->at_rv, tok_rv = 0;
    if (o->cont != NULL && o->cont[0] != '\0') {
        int rc = continue_decode(o->cont, after, sizeof(after), &tok_rv, err);
        if (rc < 0)
            return rc;
        if (tok_rv != 0)
            at = tok_rv;
    }
    if (at != 0 && at != st->rv) {
        int rc = check_at(st, tab, at, tok_rv != 0, err);
        if (rc < 0)
            return rc;
        out->rv = at;
    }
    const char *ns = o->ns != NULL && o->ns[0] != '\0' ? o->ns : NULL;
    size_t n = 0;
    struct gf_htab snap = {0};
    struct kv *v = out->rv != st->rv
                       ? kvs_at(tab, out->rv, ns, after, &snap, &n)
                       : current_kvs(tab, ns, after, &n);
    fill_page(o, v, n, out);
    gf_free(v);
    gf_htab_free(&snap);
    return 0;
}

void gf_ks_list_free(struct gf_ks_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        gf_ks_obj_unref(l->items[i]);
    gf_free(l->items);
    gf_free(l->cont);
    memset(l, 0, sizeof(*l));
}
