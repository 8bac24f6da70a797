/*
 * store: the lifecycle of one simulated cluster's object store (new, free,
 * restart), its objects, types, uid index and tables. Reads, writes,
 * watches and garbage collection live in the other store*.c files around
 * store_internal.h, which describes the layout and the ordering rules.
 */
#include "e2e/kubesim/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/htab.h"
#include "common/json.h"
#include "common/log.h"
#include "common/rand.h"
#include "e2e/kubesim/schema.h"
#include "e2e/kubesim/store_internal.h"

#define DEFAULT_WATCH_CACHE 1024

/* ---- objects --------------------------------------------------------- */

struct gf_ks_obj *gf__ks_st_obj_new(struct gf__ks_st_table *tab,
                                    const char *json, size_t len, uint64_t rv,
                                    const char *ns, const char *name)
{
    size_t nsl = strlen(ns), nl = strlen(name);
    struct gf_ks_obj *o = gf_malloc(sizeof(*o) + len + 1 + nsl + 1 + nl + 1);
    o->refs = 1;
    o->len = (uint32_t)len;
    o->rv = rv;
    o->type = tab->t;
    memcpy(o->json, json, len);
    o->json[len] = '\0';
    char *p = o->json + len + 1;
    memcpy(p, ns, nsl + 1);
    o->ns = p;
    p += nsl + 1;
    memcpy(p, name, nl + 1);
    o->name = p;
    return o;
}

struct gf_ks_obj *gf_ks_obj_ref(struct gf_ks_obj *o)
{
    o->refs++;
    return o;
}

void gf_ks_obj_unref(struct gf_ks_obj *o)
{
    if (o != NULL && --o->refs == 0)
        gf_free(o);
}

cJSON *gf_ks_obj_parse(const struct gf_ks_obj *o)
{
    cJSON *j = cJSON_ParseWithLength(o->json, o->len);
    GF_BUG_ON(j == NULL);
    return j;
}

/* Keeps a returned-borrowed out alive until the next outermost write. */
void gf__ks_st_keep(struct gf_ks_store *st, struct gf_ks_obj *o)
{
    if (st->nkeep == st->capkeep) {
        st->capkeep = st->capkeep ? st->capkeep * 2 : 8;
        st->keep = gf_realloc(st->keep, GF__KS_PTRS(st->capkeep));
    }
    st->keep[st->nkeep++] = gf_ks_obj_ref(o);
}

void gf__ks_st_enter(struct gf_ks_store *st)
{
    if (st->depth++ == 0 && !st->dispatching) {
        for (size_t i = 0; i < st->nkeep; i++)
            gf_ks_obj_unref(st->keep[i]);
        st->nkeep = 0;
    }
}

int gf__ks_st_leave(struct gf_ks_store *st, int rc)
{
    st->depth--;
    gf__ks_st_dispatch(st);
    return rc;
}

/* ---- types ----------------------------------------------------------- */

static void free_strv(char **v)
{
    for (size_t i = 0; v != NULL && v[i] != NULL; i++)
        gf_free(v[i]);
    gf_free(v);
}

static void rtype_clear(struct gf_ks_rtype *t)
{
    gf_free(t->group);
    gf_free(t->resource);
    gf_free(t->kind);
    gf_free(t->list_kind);
    gf_free(t->singular);
    gf_free(t->gr);
    free_strv(t->short_names);
    free_strv(t->categories);
    for (size_t i = 0; i < t->n_versions; i++) {
        gf_free(t->versions[i].name);
        gf_ks_schema_unref(t->versions[i].schema);
        cJSON_Delete(t->versions[i].printer_columns);
    }
    gf_free(t->versions);
    memset(t, 0, sizeof(*t));
}

void gf_ks_rtype_free(struct gf_ks_rtype *t)
{
    if (t == NULL)
        return;
    rtype_clear(t);
    gf_free(t);
}

struct gf__ks_st_table *gf__ks_st_find_table(const struct gf_ks_store *st,
                                             const char *group,
                                             const char *resource)
{
    for (struct gf__ks_st_table *tab = st->tables; tab != NULL; tab = tab->next)
        if (strcmp(tab->t->group, group) == 0 &&
            strcmp(tab->t->resource, resource) == 0)
            return tab;
    return NULL;
}

struct gf__ks_st_table *gf__ks_st_table_of(const struct gf_ks_store *st,
                                           const struct gf_ks_rtype *t)
{
    for (struct gf__ks_st_table *tab = st->tables; tab != NULL; tab = tab->next)
        if (tab->t == t)
            return tab;
    return NULL;
}

const struct gf_ks_rtype *gf_ks_store_type(const struct gf_ks_store *st,
                                           const char *group,
                                           const char *resource)
{
    struct gf__ks_st_table *tab =
        gf__ks_st_find_table(st, group != NULL ? group : "", resource);
    return tab != NULL ? tab->t : NULL;
}

int gf_ks_store_register(struct gf_ks_store *st, struct gf_ks_rtype *t)
{
    if (t->group == NULL || t->resource == NULL || t->kind == NULL ||
        t->n_versions == 0 || t->storage >= t->n_versions) {
        gf_ks_rtype_free(t);
        return -EINVAL;
    }
    gf_free(t->gr);
    size_t n = strlen(t->group) + strlen(t->resource) + 2;
    t->gr = gf_malloc(n);
    snprintf(t->gr, n, "%s/%s", t->group, t->resource);
    if (t->list_kind == NULL) {
        size_t k = strlen(t->kind) + 5;
        t->list_kind = gf_malloc(k);
        snprintf(t->list_kind, k, "%sList", t->kind);
    }
    if (t->singular == NULL) {
        t->singular = gf_strdup(t->kind);
        for (char *c = t->singular; *c != '\0'; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
    }
    struct gf__ks_st_table *tab =
        gf__ks_st_find_table(st, t->group, t->resource);
    if (tab != NULL) {
        /*
         * Objects point at the type; keep the struct and move the new
         * description into it.
         */
        rtype_clear(tab->t);
        *tab->t = *t;
        gf_free(t);
        return 0;
    }
    tab = gf_calloc(1, sizeof(*tab));
    tab->t = t;
    gf_htab_init(&tab->map, GF_HTAB_BORROW_KEYS);
    /*
     * The ring grows on demand: most types (RBAC, namespaces, CRDs) see a
     * handful of writes, and 100 clusters of full rings would pin MBs.
     */
    tab->ring_max = st->watch_cache;
    tab->ring_cap = tab->ring_max < 16 ? tab->ring_max : 16;
    tab->ring = gf_calloc(tab->ring_cap, sizeof(*tab->ring));
    struct gf__ks_st_table **pp = &st->tables;
    while (*pp != NULL)
        pp = &(*pp)->next;
    *pp = tab;
    return 0;
}

void gf_ks_store_types(const struct gf_ks_store *st,
                       void (*fn)(void *data, const struct gf_ks_rtype *t),
                       void *data)
{
    for (struct gf__ks_st_table *tab = st->tables; tab != NULL; tab = tab->next)
        fn(data, tab->t);
}

static struct gf__ks_st_uidrec *uid_get(struct gf_ks_store *st, const char *uid)
{
    struct gf__ks_st_uidrec *u = gf__ks_st_uid_find(st, uid);
    if (u != NULL)
        return u;
    size_t n = strlen(uid);
    u = gf_calloc(1, sizeof(*u) + n + 1);
    memcpy(u->uid, uid, n + 1);
    gf_htab_put(&st->uids, u->uid, n, u);
    st->bytes += sizeof(*u) + n + 1;
    return u;
}

static void uid_maybe_free(struct gf_ks_store *st, struct gf__ks_st_uidrec *u)
{
    if (u->e != NULL || u->deps != NULL)
        return;
    gf_htab_del_str(&st->uids, u->uid);
    st->bytes -= sizeof(*u) + strlen(u->uid) + 1;
    gf_free(u);
}

void gf__ks_st_owners_link(struct gf_ks_store *st, struct gf__ks_st_entry *e,
                           const cJSON *obj, bool add)
{
    const cJSON *refs = gf_json_path(obj, "metadata.ownerReferences");
    const cJSON *r;
    cJSON_ArrayForEach(r, refs)
    {
        const char *uid = gf_json_str(r, "uid");
        if (uid == NULL)
            continue;
        if (add) {
            struct gf__ks_st_uidrec *u = uid_get(st, uid);
            struct gf__ks_st_dep *d = gf_malloc(sizeof(*d));
            d->e = e;
            d->next = u->deps;
            u->deps = d;
            st->bytes += sizeof(*d);
            continue;
        }
        struct gf__ks_st_uidrec *u = gf__ks_st_uid_find(st, uid);
        if (u == NULL)
            continue;
        for (struct gf__ks_st_dep **pp = &u->deps; *pp != NULL;
             pp = &(*pp)->next) {
            if ((*pp)->e == e) {
                struct gf__ks_st_dep *d = *pp;
                *pp = d->next;
                gf_free(d);
                st->bytes -= sizeof(*d);
                break;
            }
        }
        uid_maybe_free(st, u);
    }
}

struct gf__ks_st_entry *gf__ks_st_tab_insert(struct gf_ks_store *st,
                                             struct gf__ks_st_table *tab,
                                             const char *key, const char *uid)
{
    size_t kl = strlen(key);
    struct gf__ks_st_entry *e = gf_calloc(1, sizeof(*e) + kl + 1);
    memcpy(e->key, key, kl + 1);
    e->tab = tab;
    e->uid = gf_strdup(uid);
    gf_htab_put(&tab->map, e->key, kl, e);
    st->bytes += sizeof(*e) + kl + 1 + strlen(uid) + 1;
    uid_get(st, uid)->e = e;
    return e;
}

void gf__ks_st_tab_remove(struct gf_ks_store *st, struct gf__ks_st_entry *e)
{
    gf_htab_del_str(&e->tab->map, e->key);
    struct gf__ks_st_uidrec *u = gf__ks_st_uid_find(st, e->uid);
    if (u != NULL && u->e == e) {
        u->e = NULL;
        uid_maybe_free(st, u);
    }
    st->bytes -= sizeof(*e) + strlen(e->key) + 1 + strlen(e->uid) + 1;
    if (e->obj != NULL)
        st->bytes -= gf__ks_st_obj_bytes(e->obj);
    gf_ks_obj_unref(e->obj);
    gf_free(e->uid);
    gf_free(e);
}

/* ---- store ----------------------------------------------------------- */

struct gf_ks_store *gf_ks_store_new(const struct gf_ks_store_opts *o)
{
    struct gf_ks_store *st = gf_calloc(1, sizeof(*st));
    st->clock = o->clock;
    st->cluster = gf_strdup(o->cluster != NULL ? o->cluster : "");
    st->lc.comp = "kubesim-store";
    st->lc.cluster = st->cluster;
    st->watch_cache = o->watch_cache ? o->watch_cache : DEFAULT_WATCH_CACHE;
    if (o->uid_seed != 0)
        gf_rand_seed(&st->rand, o->uid_seed);
    else
        gf_rand_seed_os(&st->rand);
    gf_htab_init(&st->uids, GF_HTAB_BORROW_KEYS);
    return st;
}

void gf__ks_st_table_free(struct gf_ks_store *st, struct gf__ks_st_table *tab)
{
    struct gf_htab_iter it;
    void *v;
    gf_htab_iter_init(&it, &tab->map);
    while (gf_htab_next(&it, NULL, NULL, &v)) {
        struct gf__ks_st_entry *e = v;
        cJSON *j = gf_ks_obj_parse(e->obj);
        gf__ks_st_owners_link(st, e, j, false);
        cJSON_Delete(j);
        gf__ks_st_tab_remove(st, e);
    }
    gf__ks_st_ring_clear(tab, 0);
    while (tab->watches != NULL) {
        struct gf_ks_watch *w = tab->watches;
        tab->watches = w->next;
        gf__ks_st_watch_free(st, w);
    }
    gf_free(tab->ring);
    gf_htab_free(&tab->map);
    gf_ks_rtype_free(tab->t);
    gf_free(tab);
}

void gf_ks_store_free(struct gf_ks_store *st)
{
    if (st == NULL)
        return;
    st->dispatching = true; /* no deliveries from here on */
    for (struct gf__ks_st_table *tab = st->tables; tab != NULL; tab = tab->next)
        gf__ks_st_close_watches(st, tab, GF_ECANCELED);
    while (st->pq_head != NULL) {
        struct gf__ks_st_pending *p = st->pq_head;
        st->pq_head = p->next;
        gf_ks_obj_unref(p->obj);
        gf_ks_obj_unref(p->old);
        gf_free(p);
    }
    while (st->gc_head != NULL) {
        struct gf__ks_st_gcwork *g = st->gc_head;
        st->gc_head = g->next;
        gf_free(g->arg);
        gf_free(g);
    }
    for (struct gf_ks_observer *o = st->observers; o != NULL; o = o->next)
        o->dead = true;
    gf__ks_st_sweep(st);
    while (st->tables != NULL) {
        struct gf__ks_st_table *tab = st->tables;
        st->tables = tab->next;
        gf__ks_st_table_free(st, tab);
    }
    for (size_t i = 0; i < st->nkeep; i++)
        gf_ks_obj_unref(st->keep[i]);
    gf_free(st->keep);
    gf__ks_st_mutators_free(st);
    gf_htab_free(&st->uids);
    gf_free(st->cluster);
    gf_free(st);
}

uint64_t gf_ks_store_rv(const struct gf_ks_store *st)
{
    return st->rv;
}

size_t gf_ks_store_count(const struct gf_ks_store *st,
                         const struct gf_ks_rtype *t)
{
    const struct gf__ks_st_table *tab =
        t != NULL ? gf__ks_st_table_of(st, t) : NULL;
    return tab != NULL ? gf_htab_len(&tab->map) : 0;
}

size_t gf_ks_store_bytes(const struct gf_ks_store *st)
{
    return st->bytes;
}

size_t gf_ks_store_watches(const struct gf_ks_store *st)
{
    size_t n = 0;
    for (const struct gf__ks_st_table *tab = st->tables; tab != NULL;
         tab = tab->next)
        for (const struct gf_ks_watch *w = tab->watches; w != NULL; w = w->next)
            n += !w->dead;
    return n;
}

void gf_ks_store_restart(struct gf_ks_store *st)
{
    for (struct gf__ks_st_table *tab = st->tables; tab != NULL;
         tab = tab->next) {
        gf__ks_st_close_watches(st, tab, GF_ECANCELED);
        gf__ks_st_ring_clear(tab, st->rv);
    }
    GF_LOG(&st->lc, GF_LOG_INFO, "watch cache dropped", "rv=%llu",
           (unsigned long long)st->rv);
    gf__ks_st_maybe_sweep(st);
}

/* ---- unregister ------------------------------------------------------ */

int gf_ks_store_unregister(struct gf_ks_store *st, const char *group,
                           const char *resource)
{
    struct gf__ks_st_table *tab = gf__ks_st_find_table(st, group, resource);
    if (tab == NULL)
        return GF_ENOTFOUND;
    gf__ks_st_enter(st);
    /* Every object goes, as the CRD finalizer deletes them all. */
    struct gf_htab_iter it;
    void *v;
    gf_htab_iter_init(&it, &tab->map);
    while (gf_htab_next(&it, NULL, NULL, &v)) {
        struct gf__ks_st_entry *e = v;
        gf__ks_st_remove_now(st, e, gf_ks_obj_parse(e->obj), GF_KS_PROP_ORPHAN);
    }
    st->depth--;
    gf__ks_st_dispatch(
        st); /* deliver the DELETED events while the type exists */
    st->depth++;
    gf__ks_st_close_watches(st, tab, GF_ENOTFOUND);
    for (struct gf_ks_observer *o = st->observers; o != NULL; o = o->next)
        if (o->tab == tab)
            o->dead = true;
    struct gf__ks_st_table **pp = &st->tables;
    while (*pp != tab)
        pp = &(*pp)->next;
    *pp = tab->next;
    tab->next = st->dead_tables;
    st->dead_tables = tab;
    tab->dead = true;
    /* Pending events may still point at the table: free it after them. */
    st->depth--;
    if (!st->dispatching)
        gf__ks_st_dispatch(st);
    return 0;
}
