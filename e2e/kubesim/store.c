/*
 * store: objects, resourceVersions, events and garbage collection of one
 * simulated cluster.
 *
 * Layout. Each registered type has a table: a map (common/htab) from
 * "namespace/name" to an entry that points at the object's current
 * immutable blob, plus a ring of recent events (the watch cache) and the
 * watches on that type. A uid index maps every uid to its entry and to
 * the entries that name it as an owner, so garbage collection never scans.
 *
 * Ordering. A write changes the table, appends to the watch cache and
 * queues one event. Events are delivered by dispatch(), which runs only at
 * the outermost level: writes made by observers while an event is being
 * delivered only queue theirs. Garbage collection work (dependents of a
 * removed owner, foreground completion, namespace cleanup) is queued the
 * same way and runs once the event queue is empty, so every observer sees
 * the owner's deletion before its dependents'.
 */
#include "e2e/kubesim/store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/htab.h"
#include "common/json.h"
#include "common/log.h"
#include "common/rand.h"
#include "e2e/kubesim/patch.h"
#include "e2e/kubesim/schema.h"
#include "e2e/kubesim/select.h"

#define DEFAULT_WATCH_CACHE 1024
#define NS_GR "/namespaces"
#define FG_FINALIZER "foregroundDeletion"
/* Object names: the API server's limit for DNS subdomains. */
#define NAME_MAX_LEN 253
#define KEY_MAX (2 * NAME_MAX_LEN + 2)
/*
 * Bytes for an array of n pointers. Spelled with void * because
 * clang-tidy reads sizeof(*p) on a pointer-to-pointer as a mistake; all
 * object pointers have one size on the platforms kubesim runs on.
 */
#define PTRS(n) ((n) * sizeof(void *))

struct table;

struct entry {
    struct table *tab;
    struct gf_ks_obj *obj; /* current version (a ref) */
    char *uid;             /* owned */
    char key[];            /* "namespace/name"; the table borrows it */
};

struct dep {
    struct dep *next;
    struct entry *e;
};

/* A uid: the entry that carries it (if any) and the entries it owns. */
struct uidrec {
    struct entry *e;
    struct dep *deps;
    char uid[]; /* the index borrows it */
};

struct cached_ev {
    enum gf_ks_ev_type type;
    struct gf_ks_obj *obj, *old; /* refs */
};

struct gf_ks_watch {
    struct gf_ks_watch *next;
    struct gf_ks_store *st;
    struct table *tab;
    char *ns; /* NULL = all */
    struct gf_ks_selector *label, *field;
    gf_ks_watch_cb cb;
    void *data;
    uint64_t last_rv; /* highest rv delivered */
    bool dead;
    /*
     * Flow control (gf_ks_watch_pause): a paused watch is sent nothing,
     * and marked behind when it misses an event; on resume, pump() sends
     * the rest of its initial events, then reads the watch cache from
     * last_rv on, until it is paused again or has caught up.
     */
    bool paused, behind, pumping;
    bool init_pending;      /* initial ADDED events still to send */
    bool init_bookmark;     /* a BOOKMARK follows them */
    struct gf_ks_list init; /* their snapshot (refs) */
    size_t init_pos;
    uint64_t init_rv; /* the snapshot's resourceVersion */
};

struct table {
    struct table *next; /* registration order */
    struct gf_ks_rtype *t;
    struct gf_htab map; /* key -> struct entry */
    struct cached_ev *ring;
    size_t ring_cap, ring_head, ring_len;
    size_t ring_max;       /* the watch cache size; ring_cap grows up to it */
    uint64_t compacted_rv; /* events up to here were dropped */
    struct gf_ks_watch *watches;
    bool dead;
};

struct gf_ks_observer {
    struct gf_ks_observer *next;
    struct table *tab; /* NULL = every type */
    uint64_t from_rv;  /* sees only events after this (registration) */
    gf_ks_observer_fn fn;
    void *data;
    bool dead;
};

struct pending {
    struct pending *next;
    enum gf_ks_ev_type type;
    struct table *tab;
    struct gf_ks_obj *obj, *old; /* refs */
};

enum gc_kind { GC_DEPENDENTS, GC_FOREGROUND_DONE, GC_NAMESPACE };

struct gcwork {
    struct gcwork *next;
    enum gc_kind kind;
    enum gf_ks_propagation prop;
    char *arg; /* owner uid or namespace */
};

struct gf_ks_store {
    struct gf_clock *clock;
    char *cluster;
    struct gf_log_ctx lc;
    size_t watch_cache;
    struct gf_rand rand;
    uint64_t rv;
    struct table *tables, *dead_tables;
    struct gf_htab uids; /* uid -> struct uidrec */
    struct gf_ks_observer *observers;
    struct pending *pq_head, *pq_tail;
    struct gcwork *gc_head, *gc_tail;
    bool dispatching;
    int depth; /* public write calls in progress */
    /*
     * Watch callbacks running outside dispatch (initial events, replay,
     * CLOSED): lists are being walked, so nothing may be freed yet.
     */
    int busy;
    uint64_t delivered_rv;
    struct gf_ks_obj **keep; /* outs kept alive for the caller */
    size_t nkeep, capkeep;
    size_t bytes;
    size_t nwatches;
};

static void dispatch(struct gf_ks_store *st);

/* ---- small helpers --------------------------------------------------- */

/*
 * "namespace/name" into out (KEY_MAX bytes). Returns false when it does
 * not fit: such a key names no stored object (names are capped at
 * NAME_MAX_LEN on create), and a truncated key could name another.
 */
static bool make_key(char *out, const char *ns, const char *name)
{
    int n = snprintf(out, KEY_MAX, "%s/%s", ns != NULL ? ns : "", name);
    return n > 0 && n < KEY_MAX;
}

static cJSON *meta_of(cJSON *obj)
{
    cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    if (!cJSON_IsObject(m)) {
        cJSON_DeleteItemFromObjectCaseSensitive(obj, "metadata");
        m = cJSON_AddObjectToObject(obj, "metadata");
    }
    return m;
}

static void set_str(cJSON *obj, const char *key, const char *v)
{
    cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
    cJSON_AddStringToObject(obj, key, v);
}

static void set_item(cJSON *obj, const char *key, cJSON *v)
{
    cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
    cJSON_AddItemToObject(obj, key, v);
}

static void copy_key(cJSON *dst, const cJSON *src, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(src, key);
    if (v != NULL)
        set_item(dst, key, cJSON_Duplicate(v, true));
    else
        cJSON_DeleteItemFromObjectCaseSensitive(dst, key);
}

static const char *resource_of(const struct table *tab)
{
    return tab->t->resource;
}

/* ---- objects --------------------------------------------------------- */

static struct gf_ks_obj *obj_new(struct table *tab, const char *json,
                                 size_t len, uint64_t rv, const char *ns,
                                 const char *name)
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

static size_t obj_bytes(const struct gf_ks_obj *o)
{
    return sizeof(*o) + o->len + strlen(o->ns) + strlen(o->name) + 3;
}

/* Keeps a returned-borrowed out alive until the next outermost write. */
static void keep(struct gf_ks_store *st, struct gf_ks_obj *o)
{
    if (st->nkeep == st->capkeep) {
        st->capkeep = st->capkeep ? st->capkeep * 2 : 8;
        st->keep = gf_realloc(st->keep, PTRS(st->capkeep));
    }
    st->keep[st->nkeep++] = gf_ks_obj_ref(o);
}

static void enter(struct gf_ks_store *st)
{
    if (st->depth++ == 0 && !st->dispatching) {
        for (size_t i = 0; i < st->nkeep; i++)
            gf_ks_obj_unref(st->keep[i]);
        st->nkeep = 0;
    }
}

static int leave(struct gf_ks_store *st, int rc)
{
    st->depth--;
    dispatch(st);
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

static struct table *find_table(const struct gf_ks_store *st, const char *group,
                                const char *resource)
{
    for (struct table *tab = st->tables; tab != NULL; tab = tab->next)
        if (strcmp(tab->t->group, group) == 0 &&
            strcmp(tab->t->resource, resource) == 0)
            return tab;
    return NULL;
}

static struct table *table_of(const struct gf_ks_store *st,
                              const struct gf_ks_rtype *t)
{
    for (struct table *tab = st->tables; tab != NULL; tab = tab->next)
        if (tab->t == t)
            return tab;
    return NULL;
}

const struct gf_ks_rtype *gf_ks_store_type(const struct gf_ks_store *st,
                                           const char *group,
                                           const char *resource)
{
    struct table *tab = find_table(st, group != NULL ? group : "", resource);
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
    struct table *tab = find_table(st, t->group, t->resource);
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
    struct table **pp = &st->tables;
    while (*pp != NULL)
        pp = &(*pp)->next;
    *pp = tab;
    return 0;
}

void gf_ks_store_types(const struct gf_ks_store *st,
                       void (*fn)(void *data, const struct gf_ks_rtype *t),
                       void *data)
{
    for (struct table *tab = st->tables; tab != NULL; tab = tab->next)
        fn(data, tab->t);
}

/* ---- uid index ------------------------------------------------------- */

static struct uidrec *uid_find(const struct gf_ks_store *st, const char *uid)
{
    return gf_htab_get_str(&st->uids, uid);
}

static struct uidrec *uid_get(struct gf_ks_store *st, const char *uid)
{
    struct uidrec *u = uid_find(st, uid);
    if (u != NULL)
        return u;
    size_t n = strlen(uid);
    u = gf_calloc(1, sizeof(*u) + n + 1);
    memcpy(u->uid, uid, n + 1);
    gf_htab_put(&st->uids, u->uid, n, u);
    st->bytes += sizeof(*u) + n + 1;
    return u;
}

static void uid_maybe_free(struct gf_ks_store *st, struct uidrec *u)
{
    if (u->e != NULL || u->deps != NULL)
        return;
    gf_htab_del_str(&st->uids, u->uid);
    st->bytes -= sizeof(*u) + strlen(u->uid) + 1;
    gf_free(u);
}

static void owners_link(struct gf_ks_store *st, struct entry *e,
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
            struct uidrec *u = uid_get(st, uid);
            struct dep *d = gf_malloc(sizeof(*d));
            d->e = e;
            d->next = u->deps;
            u->deps = d;
            st->bytes += sizeof(*d);
            continue;
        }
        struct uidrec *u = uid_find(st, uid);
        if (u == NULL)
            continue;
        for (struct dep **pp = &u->deps; *pp != NULL; pp = &(*pp)->next) {
            if ((*pp)->e == e) {
                struct dep *d = *pp;
                *pp = d->next;
                gf_free(d);
                st->bytes -= sizeof(*d);
                break;
            }
        }
        uid_maybe_free(st, u);
    }
}

/* ---- tables ---------------------------------------------------------- */

static struct entry *tab_find(const struct table *tab, const char *key)
{
    return gf_htab_get_str(&tab->map, key);
}

static struct entry *tab_insert(struct gf_ks_store *st, struct table *tab,
                                const char *key, const char *uid)
{
    size_t kl = strlen(key);
    struct entry *e = gf_calloc(1, sizeof(*e) + kl + 1);
    memcpy(e->key, key, kl + 1);
    e->tab = tab;
    e->uid = gf_strdup(uid);
    gf_htab_put(&tab->map, e->key, kl, e);
    st->bytes += sizeof(*e) + kl + 1 + strlen(uid) + 1;
    uid_get(st, uid)->e = e;
    return e;
}

static void tab_remove(struct gf_ks_store *st, struct entry *e)
{
    gf_htab_del_str(&e->tab->map, e->key);
    struct uidrec *u = uid_find(st, e->uid);
    if (u != NULL && u->e == e) {
        u->e = NULL;
        uid_maybe_free(st, u);
    }
    st->bytes -= sizeof(*e) + strlen(e->key) + 1 + strlen(e->uid) + 1;
    if (e->obj != NULL)
        st->bytes -= obj_bytes(e->obj);
    gf_ks_obj_unref(e->obj);
    gf_free(e->uid);
    gf_free(e);
}

/* ---- events ---------------------------------------------------------- */

/* Doubles the ring (up to ring_max), unrolling it to start at 0. */
static void ring_grow(struct table *tab)
{
    size_t cap = tab->ring_cap * 2;
    if (cap > tab->ring_max)
        cap = tab->ring_max;
    struct cached_ev *r = gf_calloc(cap, sizeof(*r));
    for (size_t i = 0; i < tab->ring_len; i++)
        r[i] = tab->ring[(tab->ring_head + i) % tab->ring_cap];
    gf_free(tab->ring);
    tab->ring = r;
    tab->ring_cap = cap;
    tab->ring_head = 0;
}

static void ring_push(struct table *tab, enum gf_ks_ev_type type,
                      struct gf_ks_obj *obj, struct gf_ks_obj *old)
{
    if (tab->ring_cap == 0)
        return;
    if (tab->ring_len == tab->ring_cap && tab->ring_cap < tab->ring_max)
        ring_grow(tab);
    if (tab->ring_len == tab->ring_cap) {
        struct cached_ev *c = &tab->ring[tab->ring_head];
        tab->compacted_rv = c->obj->rv;
        gf_ks_obj_unref(c->obj);
        gf_ks_obj_unref(c->old);
        tab->ring_head = (tab->ring_head + 1) % tab->ring_cap;
        tab->ring_len--;
    }
    struct cached_ev *c =
        &tab->ring[(tab->ring_head + tab->ring_len) % tab->ring_cap];
    c->type = type;
    c->obj = gf_ks_obj_ref(obj);
    c->old = old != NULL ? gf_ks_obj_ref(old) : NULL;
    tab->ring_len++;
}

static void ring_clear(struct table *tab, uint64_t rv)
{
    for (size_t i = 0; i < tab->ring_len; i++) {
        struct cached_ev *c = &tab->ring[(tab->ring_head + i) % tab->ring_cap];
        gf_ks_obj_unref(c->obj);
        gf_ks_obj_unref(c->old);
    }
    tab->ring_len = 0;
    tab->ring_head = 0;
    tab->compacted_rv = rv;
}

/* Records one change: watch cache now, delivery when dispatch runs. */
static void emit(struct gf_ks_store *st, struct table *tab,
                 enum gf_ks_ev_type type, struct gf_ks_obj *obj,
                 struct gf_ks_obj *old)
{
    ring_push(tab, type, obj, old);
    struct pending *p = gf_malloc(sizeof(*p));
    p->next = NULL;
    p->type = type;
    p->tab = tab;
    p->obj = gf_ks_obj_ref(obj);
    p->old = old != NULL ? gf_ks_obj_ref(old) : NULL;
    if (st->pq_tail != NULL)
        st->pq_tail->next = p;
    else
        st->pq_head = p;
    st->pq_tail = p;
}

static bool sel_match(const struct gf_ks_watch *w, const cJSON *j)
{
    return gf_ks_selector_match(w->label, j) &&
           gf_ks_selector_match(w->field, j);
}

/*
 * Sends one change to one watch, translating it by the watch's selectors
 * the way the watch cache does. json/old_json may be NULL (parsed here if
 * a selector needs them).
 */
static void watch_deliver(struct gf_ks_watch *w, enum gf_ks_ev_type type,
                          struct gf_ks_obj *obj, struct gf_ks_obj *old,
                          const cJSON *json, const cJSON *old_json)
{
    if (w->dead || obj->rv <= w->last_rv)
        return;
    w->last_rv = obj->rv;
    if (w->ns != NULL && strcmp(w->ns, obj->ns) != 0)
        return;
    if (w->label == NULL && w->field == NULL) {
        w->cb(w->data, type, obj, obj->rv, 0);
        return;
    }
    cJSON *pj = NULL, *po = NULL;
    if (json == NULL)
        json = pj = gf_ks_obj_parse(obj);
    bool now = sel_match(w, json), before = false;
    if (type == GF_KS_EV_MODIFIED && old != NULL) {
        if (old_json == NULL)
            old_json = po = gf_ks_obj_parse(old);
        before = sel_match(w, old_json);
    }
    cJSON_Delete(pj);
    cJSON_Delete(po);
    if (type == GF_KS_EV_MODIFIED) {
        if (now && !before)
            type = GF_KS_EV_ADDED;
        else if (!now && before)
            type = GF_KS_EV_DELETED;
        else if (!now)
            return;
    } else if (!now) {
        return;
    }
    w->cb(w->data, type, obj, obj->rv, 0);
}

/* A live change: delivered now, unless the watch is held back (then it
 * is read from the watch cache when the watch resumes). */
static void watch_send(struct gf_ks_watch *w, enum gf_ks_ev_type type,
                       struct gf_ks_obj *obj, struct gf_ks_obj *old,
                       const cJSON *json, const cJSON *old_json)
{
    if (w->dead || obj->rv <= w->last_rv)
        return;
    if (w->paused || w->behind || w->init_pending) {
        w->behind = true;
        return;
    }
    watch_deliver(w, type, obj, old, json, old_json);
}

static bool needs_json(const struct gf_ks_store *st, const struct table *tab)
{
    for (const struct gf_ks_observer *o = st->observers; o != NULL; o = o->next)
        if (!o->dead && (o->tab == NULL || o->tab == tab))
            return true;
    for (const struct gf_ks_watch *w = tab->watches; w != NULL; w = w->next)
        if (w->label != NULL || w->field != NULL)
            return true;
    return false;
}

static void deliver(struct gf_ks_store *st, struct pending *p)
{
    cJSON *json = NULL, *old_json = NULL;
    if (needs_json(st, p->tab)) {
        json = gf_ks_obj_parse(p->obj);
        if (p->old != NULL)
            old_json = gf_ks_obj_parse(p->old);
    }
    struct gf_ks_event ev = {
        .type = p->type,
        .rtype = p->tab->t,
        .obj = p->obj,
        .old = p->old,
        .obj_json = json,
        .old_json = old_json,
        .rv = p->obj->rv,
    };
    for (struct gf_ks_observer *o = st->observers; o != NULL; o = o->next)
        if (!o->dead && (o->tab == NULL || o->tab == p->tab) &&
            p->obj->rv > o->from_rv)
            o->fn(o->data, &ev);
    for (struct gf_ks_watch *w = p->tab->watches; w != NULL; w = w->next)
        watch_send(w, p->type, p->obj, p->old, json, old_json);
    st->delivered_rv = p->obj->rv;
    cJSON_Delete(json);
    cJSON_Delete(old_json);
}

static void watch_free(struct gf_ks_store *st, struct gf_ks_watch *w)
{
    if (w->init_pending)
        gf_ks_list_free(&w->init);
    gf_free(w->ns);
    gf_ks_selector_free(w->label);
    gf_ks_selector_free(w->field);
    gf_free(w);
    st->nwatches--;
}

static void table_free(struct gf_ks_store *st, struct table *tab);

/* Frees what callbacks marked dead, once nothing is being delivered. */
static void sweep(struct gf_ks_store *st)
{
    for (struct gf_ks_observer **pp = &st->observers; *pp != NULL;) {
        struct gf_ks_observer *o = *pp;
        if (o->dead) {
            *pp = o->next;
            gf_free(o);
        } else {
            pp = &o->next;
        }
    }
    for (struct table *tab = st->tables; tab != NULL; tab = tab->next) {
        for (struct gf_ks_watch **pp = &tab->watches; *pp != NULL;) {
            struct gf_ks_watch *w = *pp;
            if (w->dead) {
                *pp = w->next;
                watch_free(st, w);
            } else {
                pp = &w->next;
            }
        }
    }
    while (st->dead_tables != NULL) {
        struct table *tab = st->dead_tables;
        st->dead_tables = tab->next;
        table_free(st, tab);
    }
}

static void gc_run(struct gf_ks_store *st, struct gcwork *g);
static void maybe_sweep(struct gf_ks_store *st);

static void dispatch(struct gf_ks_store *st)
{
    if (st->dispatching || st->depth > 0)
        return;
    st->dispatching = true;
    for (;;) {
        if (st->pq_head != NULL) {
            struct pending *p = st->pq_head;
            st->pq_head = p->next;
            if (st->pq_head == NULL)
                st->pq_tail = NULL;
            deliver(st, p);
            gf_ks_obj_unref(p->obj);
            gf_ks_obj_unref(p->old);
            gf_free(p);
            continue;
        }
        if (st->gc_head != NULL) {
            struct gcwork *g = st->gc_head;
            st->gc_head = g->next;
            if (st->gc_head == NULL)
                st->gc_tail = NULL;
            gc_run(st, g);
            gf_free(g->arg);
            gf_free(g);
            continue;
        }
        break;
    }
    st->delivered_rv = st->rv;
    st->dispatching = false;
    maybe_sweep(st);
}

static void gc_queue(struct gf_ks_store *st, enum gc_kind kind,
                     enum gf_ks_propagation prop, const char *arg)
{
    struct gcwork *g = gf_calloc(1, sizeof(*g));
    g->kind = kind;
    g->prop = prop;
    g->arg = gf_strdup(arg);
    if (st->gc_tail != NULL)
        st->gc_tail->next = g;
    else
        st->gc_head = g;
    st->gc_tail = g;
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

static void table_free(struct gf_ks_store *st, struct table *tab)
{
    struct gf_htab_iter it;
    void *v;
    gf_htab_iter_init(&it, &tab->map);
    while (gf_htab_next(&it, NULL, NULL, &v)) {
        struct entry *e = v;
        cJSON *j = gf_ks_obj_parse(e->obj);
        owners_link(st, e, j, false);
        cJSON_Delete(j);
        tab_remove(st, e);
    }
    ring_clear(tab, 0);
    while (tab->watches != NULL) {
        struct gf_ks_watch *w = tab->watches;
        tab->watches = w->next;
        watch_free(st, w);
    }
    gf_free(tab->ring);
    gf_htab_free(&tab->map);
    gf_ks_rtype_free(tab->t);
    gf_free(tab);
}

/* Frees what was marked dead, unless a walk of the lists is under way. */
static void maybe_sweep(struct gf_ks_store *st)
{
    if (!st->dispatching && st->busy == 0)
        sweep(st);
}

/*
 * Ends every watch of a table with CLOSED (err). A callback may stop
 * other watches: they are only marked, and freed after the walk.
 */
static void close_watches(struct gf_ks_store *st, struct table *tab, int err)
{
    st->busy++;
    for (struct gf_ks_watch *w = tab->watches; w != NULL; w = w->next) {
        if (w->dead)
            continue;
        w->dead = true;
        w->cb(w->data, GF_KS_EV_CLOSED, NULL, 0, err);
    }
    st->busy--;
}

void gf_ks_store_free(struct gf_ks_store *st)
{
    if (st == NULL)
        return;
    st->dispatching = true; /* no deliveries from here on */
    for (struct table *tab = st->tables; tab != NULL; tab = tab->next)
        close_watches(st, tab, GF_ECANCELED);
    while (st->pq_head != NULL) {
        struct pending *p = st->pq_head;
        st->pq_head = p->next;
        gf_ks_obj_unref(p->obj);
        gf_ks_obj_unref(p->old);
        gf_free(p);
    }
    while (st->gc_head != NULL) {
        struct gcwork *g = st->gc_head;
        st->gc_head = g->next;
        gf_free(g->arg);
        gf_free(g);
    }
    for (struct gf_ks_observer *o = st->observers; o != NULL; o = o->next)
        o->dead = true;
    sweep(st);
    while (st->tables != NULL) {
        struct table *tab = st->tables;
        st->tables = tab->next;
        table_free(st, tab);
    }
    for (size_t i = 0; i < st->nkeep; i++)
        gf_ks_obj_unref(st->keep[i]);
    gf_free(st->keep);
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
    const struct table *tab = t != NULL ? table_of(st, t) : NULL;
    return tab != NULL ? gf_htab_len(&tab->map) : 0;
}

size_t gf_ks_store_bytes(const struct gf_ks_store *st)
{
    return st->bytes;
}

size_t gf_ks_store_watches(const struct gf_ks_store *st)
{
    size_t n = 0;
    for (const struct table *tab = st->tables; tab != NULL; tab = tab->next)
        for (const struct gf_ks_watch *w = tab->watches; w != NULL; w = w->next)
            n += !w->dead;
    return n;
}

void gf_ks_store_restart(struct gf_ks_store *st)
{
    for (struct table *tab = st->tables; tab != NULL; tab = tab->next) {
        close_watches(st, tab, GF_ECANCELED);
        ring_clear(tab, st->rv);
    }
    GF_LOG(&st->lc, GF_LOG_INFO, "watch cache dropped", "rv=%llu",
           (unsigned long long)st->rv);
    maybe_sweep(st);
}

/* ---- reads ----------------------------------------------------------- */

struct gf_ks_obj *gf_ks_store_get(const struct gf_ks_store *st,
                                  const struct gf_ks_rtype *t, const char *ns,
                                  const char *name)
{
    const struct table *tab = table_of(st, t);
    if (tab == NULL || name == NULL)
        return NULL;
    char key[KEY_MAX];
    if (!make_key(key, t->namespaced ? ns : "", name))
        return NULL;
    struct entry *e = tab_find(tab, key);
    return e != NULL ? e->obj : NULL;
}

void gf_ks_store_foreach(const struct gf_ks_store *st,
                         const struct gf_ks_rtype *t, const char *ns,
                         bool (*fn)(void *data, struct gf_ks_obj *o),
                         void *data)
{
    const struct table *tab = table_of(st, t);
    if (tab == NULL)
        return;
    if (ns != NULL && ns[0] == '\0')
        ns = NULL;
    size_t pos = 0;
    void *v;
    while (gf_htab_scan(&tab->map, &pos, NULL, &v)) {
        const struct entry *e = v;
        if ((ns == NULL || strcmp(e->obj->ns, ns) == 0) && !fn(data, e->obj))
            return;
    }
}

void gf_ks_store_dependents(const struct gf_ks_store *st, const char *owner_uid,
                            bool (*fn)(void *data, struct gf_ks_obj *o),
                            void *data)
{
    struct uidrec *u = uid_find(st, owner_uid);
    for (struct dep *d = u != NULL ? u->deps : NULL; d != NULL; d = d->next)
        if (!fn(data, d->e->obj))
            return;
}

static int cmp_entry(const void *a, const void *b)
{
    const struct entry *x = *(const struct entry *const *)a;
    const struct entry *y = *(const struct entry *const *)b;
    return strcmp(x->key, y->key);
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

static int continue_decode(const char *tok, char *key, size_t cap,
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
    cJSON_Delete(j);
    return 0;
bad:
    return gf_ks_status_set(err, 400, "BadRequest",
                            "continue key is not valid: illegal base64 data");
}

/*
 * The entries of a table in namespace ns (NULL = all) whose key sorts
 * after `after` ("" = from the start), in key order. Returned-owned
 * array (gf_free) of borrowed entries; *n set.
 */
static struct entry **sorted_entries(const struct table *tab, const char *ns,
                                     const char *after, size_t *n)
{
    size_t len = gf_htab_len(&tab->map);
    struct entry **v = gf_malloc(PTRS(len ? len : 1));
    size_t k = 0, pos = 0;
    void *p;
    while (gf_htab_scan(&tab->map, &pos, NULL, &p)) {
        struct entry *e = p;
        if (ns != NULL && strcmp(e->obj->ns, ns) != 0)
            continue;
        if (after[0] != '\0' && strcmp(e->key, after) <= 0)
            continue;
        v[k++] = e;
    }
    qsort(v, k, sizeof(void *), cmp_entry);
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

int gf_ks_store_list(const struct gf_ks_store *st, const struct gf_ks_rtype *t,
                     const struct gf_ks_list_opts *o, struct gf_ks_list *out,
                     struct gf_ks_status *err)
{
    memset(out, 0, sizeof(*out));
    out->rv = st->rv;
    const struct table *tab = table_of(st, t);
    if (tab == NULL)
        return gf_ks_status_set(err, 404, "NotFound",
                                "the server could not find the requested "
                                "resource");
    char after[KEY_MAX + 2] = "";
    if (o->cont != NULL && o->cont[0] != '\0') {
        int rc = continue_decode(o->cont, after, sizeof(after), err);
        if (rc < 0)
            return rc;
    }
    const char *ns = o->ns != NULL && o->ns[0] != '\0' ? o->ns : NULL;
    size_t n = 0;
    struct entry **v = sorted_entries(tab, ns, after, &n);
    out->items = gf_malloc(PTRS(n ? n : 1));
    size_t i = 0;
    for (; i < n; i++) {
        if (!list_match(o, v[i]->obj))
            continue;
        if (o->limit > 0 && out->n == o->limit)
            break;
        out->items[out->n++] = gf_ks_obj_ref(v[i]->obj);
    }
    if (i < n && out->n > 0) {
        /*
         * The server counts the rest only when no selector filters them
         * (it cannot know how many would match); so does this.
         */
        out->remaining = (o->label == NULL && o->field == NULL) ? n - i : 0;
        struct gf_ks_obj *last = out->items[out->n - 1];
        char key[KEY_MAX];
        make_key(key, last->ns, last->name);
        out->cont = continue_encode(st->rv, key);
    }
    gf_free(v);
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

/* ---- write helpers --------------------------------------------------- */

static void new_uid(struct gf_ks_store *st, char out[37])
{
    uint64_t a = gf_rand_u64(&st->rand), b = gf_rand_u64(&st->rand);
    /* A version 4, variant 1 UUID, as the API server generates. */
    snprintf(out, 37,
             "%08" PRIx64 "-%04" PRIx64 "-4%03" PRIx64 "-%04" PRIx64
             "-%012" PRIx64,
             a >> 32, (a >> 16) & 0xffff, a & 0xfff,
             ((b >> 48) & 0x3fff) | 0x8000, (uint64_t)(b & 0xffffffffffffULL));
}

static void now_rfc3339(const struct gf_ks_store *st, char out[32])
{
    gf_time_rfc3339(gf_clock_wall_ms(st->clock), out);
}

static bool is_rbac(const struct gf_ks_rtype *t)
{
    return strcmp(t->group, "rbac.authorization.k8s.io") == 0;
}

/* RFC 1123 subdomain, the rule for most object names. */
static bool dns_subdomain(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && c != '-' && c != '.')
            return false;
        if ((i == 0 || i == n - 1) && !alnum)
            return false;
    }
    return true;
}

static int check_name(const struct gf_ks_rtype *t, const char *name,
                      struct gf_ks_status *err)
{
    char msg[512];
    if (strlen(name) > NAME_MAX_LEN) {
        snprintf(msg, sizeof(msg), "Too long: may not be more than %d bytes",
                 NAME_MAX_LEN);
    } else if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
               strchr(name, '/') != NULL || strchr(name, '%') != NULL) {
        snprintf(msg, sizeof(msg),
                 "Invalid value: \"%s\": may not contain '/' or '%%'", name);
    } else if (!is_rbac(t) && !dns_subdomain(name)) {
        snprintf(msg, sizeof(msg),
                 "Invalid value: \"%s\": a lowercase RFC 1123 subdomain must "
                 "consist of lower case alphanumeric characters, '-' or '.', "
                 "and must start and end with an alphanumeric character",
                 name);
    } else {
        return 0;
    }
    char grp[160];
    if (t->group[0] != '\0')
        snprintf(grp, sizeof(grp), "%s.%s", t->kind, t->group);
    else
        snprintf(grp, sizeof(grp), "%s", t->kind);
    int rc = gf_ks_status_set(err, 422, "Invalid",
                              "%s \"%s\" is invalid: metadata.name: %s", grp,
                              name, msg);
    gf_ks_status_details(err, name, t->group, t->kind);
    gf_ks_status_cause(err, "FieldValueInvalid", msg, "metadata.name");
    return rc;
}

static bool gen_ignored(const char *key, bool has_status)
{
    return strcmp(key, "metadata") == 0 ||
           (has_status && strcmp(key, "status") == 0);
}

/*
 * True when anything but metadata (and status, for types with the status
 * subresource) differs: the rule for bumping metadata.generation.
 */
static bool spec_changed(const cJSON *a, const cJSON *b, bool has_status)
{
    const cJSON *x;
    cJSON_ArrayForEach(x, a)
    {
        if (gen_ignored(x->string, has_status))
            continue;
        const cJSON *y = cJSON_GetObjectItemCaseSensitive(b, x->string);
        if (y == NULL || !gf_json_equal(x, y))
            return true;
    }
    cJSON_ArrayForEach(x, b)
    {
        if (gen_ignored(x->string, has_status))
            continue;
        if (cJSON_GetObjectItemCaseSensitive(a, x->string) == NULL)
            return true;
    }
    return false;
}

static bool has_finalizer(const cJSON *obj, const char *f)
{
    const cJSON *v;
    cJSON_ArrayForEach(v, gf_json_path(obj, "metadata.finalizers"))
    {
        if (cJSON_IsString(v) && strcmp(v->valuestring, f) == 0)
            return true;
    }
    return false;
}

static bool has_finalizers(const cJSON *obj)
{
    return cJSON_GetArraySize(gf_json_path(obj, "metadata.finalizers")) > 0;
}

static void remove_finalizer(cJSON *obj, const char *f)
{
    cJSON *fins = (cJSON *)gf_json_path(obj, "metadata.finalizers");
    cJSON *v = fins != NULL ? fins->child : NULL;
    while (v != NULL) {
        cJSON *next = v->next;
        if (cJSON_IsString(v) && strcmp(v->valuestring, f) == 0) {
            cJSON_DetachItemViaPointer(fins, v);
            cJSON_Delete(v);
        }
        v = next;
    }
    if (fins != NULL && cJSON_GetArraySize(fins) == 0)
        cJSON_DeleteItemFromObjectCaseSensitive(meta_of(obj), "finalizers");
}

/* Prints obj with a fresh resourceVersion into a new blob. */
static struct gf_ks_obj *seal(struct gf_ks_store *st, struct table *tab,
                              cJSON *obj, const char *ns, const char *name)
{
    uint64_t rv = ++st->rv;
    char rvs[24];
    snprintf(rvs, sizeof(rvs), "%llu", (unsigned long long)rv);
    set_str(meta_of(obj), "resourceVersion", rvs);
    char *s = cJSON_PrintUnformatted(obj);
    struct gf_ks_obj *o = obj_new(tab, s, strlen(s), rv, ns, name);
    gf_free(s);
    return o;
}

static void entry_set(struct gf_ks_store *st, struct entry *e,
                      struct gf_ks_obj *o)
{
    if (e->obj != NULL) {
        st->bytes -= obj_bytes(e->obj);
        gf_ks_obj_unref(e->obj);
    }
    e->obj = o; /* takes the blob's reference */
    st->bytes += obj_bytes(o);
}

static bool ns_terminating(const struct gf_ks_store *st, const char *ns);

/*
 * An object stopped depending on the owners in refs (it went, or dropped
 * the references): owners waiting in foreground deletion may now be free
 * to go. The check itself runs later, as GC work.
 */
static void recheck_owners(struct gf_ks_store *st, const cJSON *refs)
{
    const cJSON *r;
    cJSON_ArrayForEach(r, refs)
    {
        const char *ouid = gf_json_str(r, "uid");
        struct uidrec *u = ouid != NULL ? uid_find(st, ouid) : NULL;
        if (u != NULL && u->e != NULL)
            gc_queue(st, GC_FOREGROUND_DONE, GF_KS_PROP_DEFAULT, ouid);
    }
}

/*
 * Removes an entry for good: obj is its final state (owned, gets a new
 * resourceVersion). Queues the DELETED event and the follow-up GC.
 */
static struct gf_ks_obj *remove_now(struct gf_ks_store *st, struct entry *e,
                                    cJSON *obj, enum gf_ks_propagation prop)
{
    struct table *tab = e->tab;
    struct gf_ks_obj *o = seal(st, tab, obj, e->obj->ns, e->obj->name);
    struct gf_ks_obj *old = gf_ks_obj_ref(e->obj);
    char *uid = gf_strdup(e->uid);
    char *ns = gf_strdup(o->ns);
    /*
     * The owner index was built from the stored object; the final state
     * may name other owners (a PUT that drops ownerReferences along with
     * the last finalizer), so unlink by what the index holds.
     */
    cJSON *stored = gf_ks_obj_parse(e->obj);
    owners_link(st, e, stored, false);
    recheck_owners(st, gf_json_path(stored, "metadata.ownerReferences"));
    cJSON_Delete(stored);
    tab_remove(st, e);
    emit(st, tab, GF_KS_EV_DELETED, o, old);
    gf_ks_obj_unref(old);
    if (prop != GF_KS_PROP_ORPHAN && uid_find(st, uid) != NULL)
        gc_queue(st, GC_DEPENDENTS, prop, uid);
    if (tab->t->namespaced && ns[0] != '\0' && ns_terminating(st, ns))
        gc_queue(st, GC_NAMESPACE, GF_KS_PROP_DEFAULT, ns);
    gf_free(uid);
    gf_free(ns);
    cJSON_Delete(obj);
    keep(st, o);
    gf_ks_obj_unref(o);
    return o;
}

/* Stores obj (owned) as the new state of e and queues MODIFIED. */
static struct gf_ks_obj *replace_now(struct gf_ks_store *st, struct entry *e,
                                     cJSON *obj, const cJSON *old_json)
{
    struct gf_ks_obj *o = seal(st, e->tab, obj, e->obj->ns, e->obj->name);
    const cJSON *a = gf_json_path(old_json, "metadata.ownerReferences");
    const cJSON *b = gf_json_path(obj, "metadata.ownerReferences");
    if (!(a == NULL && b == NULL) && !(a && b && gf_json_equal(a, b))) {
        owners_link(st, e, old_json, false);
        owners_link(st, e, obj, true);
        recheck_owners(st, a);
    }
    struct gf_ks_obj *old = gf_ks_obj_ref(e->obj);
    entry_set(st, e, o);
    emit(st, e->tab, GF_KS_EV_MODIFIED, o, old);
    gf_ks_obj_unref(old);
    cJSON_Delete(obj);
    keep(st, o);
    return o;
}

static struct entry *lookup(const struct gf_ks_store *st, struct table *tab,
                            const char *ns, const char *name)
{
    (void)st; /* kept for symmetry with the other lookups */
    char key[KEY_MAX];
    if (!make_key(key, tab->t->namespaced ? ns : "", name))
        return NULL;
    return tab_find(tab, key);
}

static bool ns_terminating(const struct gf_ks_store *st, const char *ns)
{
    struct table *nt = find_table(st, "", "namespaces");
    struct entry *e = nt != NULL ? lookup(st, nt, "", ns) : NULL;
    if (e == NULL)
        return false;
    cJSON *j = gf_ks_obj_parse(e->obj);
    bool t = gf_json_path(j, "metadata.deletionTimestamp") != NULL;
    cJSON_Delete(j);
    return t;
}

static int not_found(const struct table *tab, const char *name,
                     struct gf_ks_status *err)
{
    return gf_ks_status_not_found(err, tab->t->group, resource_of(tab), name);
}

/* ---- create ---------------------------------------------------------- */

static void random_suffix(struct gf_ks_store *st, char out[6])
{
    /* The alphabet of the API server's name generator (no vowels). */
    static const char alphabet[] = "bcdfghjklmnpqrstvwxz2456789";
    for (int i = 0; i < 5; i++)
        out[i] = alphabet[gf_rand_range(&st->rand, 0, sizeof(alphabet) - 2)];
    out[5] = '\0';
}

static int check_namespace(struct gf_ks_store *st, const struct table *tab,
                           const char *ns, struct gf_ks_status *err)
{
    struct table *nt = find_table(st, "", "namespaces");
    if (!tab->t->namespaced || nt == NULL)
        return 0;
    struct entry *e = lookup(st, nt, "", ns);
    if (e == NULL)
        return gf_ks_status_not_found(err, "", "namespaces", ns);
    if (ns_terminating(st, ns)) {
        return gf_ks_status_set(err, 403, "Forbidden",
                                "unable to create new content in namespace "
                                "%s because it is being terminated",
                                ns);
    }
    return 0;
}

/* 422 for a create that names no object. */
static int name_required(const struct gf_ks_rtype *t, struct gf_ks_status *err)
{
    char q[200];
    snprintf(q, sizeof(q), "%s%s%s", t->kind, t->group[0] ? "." : "", t->group);
    int rc = gf_ks_status_set(err, 422, "Invalid",
                              "%s \"\" is invalid: metadata.name: Required "
                              "value: name or generateName is required",
                              q);
    gf_ks_status_details(err, "", t->group, t->kind);
    gf_ks_status_cause(err, "FieldValueRequired",
                       "Required value: name or generateName is required",
                       "metadata.name");
    return rc;
}

/*
 * The name a create will use: metadata.name, or generateName plus a
 * random suffix. Writes it into out (cap bytes); checks it is valid and
 * free. Returns 0 or a GF_E* code with err filled.
 */
static int create_name(struct gf_ks_store *st, struct table *tab,
                       const char *ns, const cJSON *m, char *out, size_t cap,
                       struct gf_ks_status *err)
{
    const struct gf_ks_rtype *t = tab->t;
    const char *name = gf_json_str(m, "name");
    const char *gen = gf_json_str(m, "generateName");
    if (name != NULL && name[0] != '\0') {
        snprintf(out, cap, "%s", name);
    } else if (gen != NULL && gen[0] != '\0') {
        /* A few tries; the server also retries generated-name clashes. */
        for (int i = 0; i < 8; i++) {
            char sfx[6];
            random_suffix(st, sfx);
            snprintf(out, cap, "%.*s%s", 58, gen, sfx);
            if (lookup(st, tab, ns, out) == NULL)
                break;
        }
    } else {
        return name_required(t, err);
    }
    int rc = check_name(t, out, err);
    if (rc < 0)
        return rc;
    if (lookup(st, tab, ns, out) != NULL)
        return gf_ks_status_already_exists(err, t->group, t->resource, out);
    return 0;
}

/* What the namespace registry sets on every new namespace. */
static void init_namespace(cJSON *obj, cJSON *m, const char *name)
{
    cJSON *spec = cJSON_CreateObject();
    cJSON *fins = cJSON_AddArrayToObject(spec, "finalizers");
    cJSON_AddItemToArray(fins, cJSON_CreateString("kubernetes"));
    set_item(obj, "spec", spec);
    cJSON *status = cJSON_CreateObject();
    cJSON_AddStringToObject(status, "phase", "Active");
    set_item(obj, "status", status);
    cJSON *labels = cJSON_GetObjectItemCaseSensitive(m, "labels");
    if (!cJSON_IsObject(labels)) {
        cJSON_DeleteItemFromObjectCaseSensitive(m, "labels");
        labels = cJSON_AddObjectToObject(m, "labels");
    }
    set_str(labels, "kubernetes.io/metadata.name", name);
}

/* The metadata the registry owns on create; writes the new uid. */
static void init_meta(struct gf_ks_store *st, const struct gf_ks_rtype *t,
                      cJSON *obj, cJSON *m, const char *ns, const char *name,
                      enum gf_ks_subres sub, char uid[37])
{
    set_str(m, "name", name);
    if (t->namespaced)
        set_str(m, "namespace", ns);
    else
        cJSON_DeleteItemFromObjectCaseSensitive(m, "namespace");
    char ts[32];
    new_uid(st, uid);
    now_rfc3339(st, ts);
    set_str(m, "uid", uid);
    set_str(m, "creationTimestamp", ts);
    static const char *const dropped[] = {"deletionTimestamp",
                                          "deletionGracePeriodSeconds",
                                          "resourceVersion", "selfLink"};
    for (size_t i = 0; i < sizeof(dropped) / sizeof(dropped[0]); i++)
        cJSON_DeleteItemFromObjectCaseSensitive(m, dropped[i]);
    set_item(m, "generation", cJSON_CreateNumber(1));
    if (t->has_status && sub == GF_KS_MAIN)
        cJSON_DeleteItemFromObjectCaseSensitive(obj, "status");
    if (strcmp(t->gr, NS_GR) == 0)
        init_namespace(obj, m, name);
}

static int create_checks(const struct gf_ks_rtype *t, const char *ns,
                         const cJSON *in, struct gf_ks_status *err)
{
    if (!cJSON_IsObject(in))
        return gf_ks_status_set(err, 400, "BadRequest",
                                "the body of the request was not an object");
    if (t->namespaced && ns[0] == '\0')
        return gf_ks_status_set(err, 400, "BadRequest",
                                "the namespace of the object must be set");
    const char *ons = gf_json_str(in, "metadata.namespace");
    if (t->namespaced && ons != NULL && ons[0] != '\0' && strcmp(ons, ns) != 0)
        return gf_ks_status_set(err, 400, "BadRequest",
                                "the namespace of the provided object does "
                                "not match the namespace sent on the request");
    return 0;
}

int gf_ks_store_create(struct gf_ks_store *st, const struct gf_ks_rtype *t,
                       const char *ns, const cJSON *in, enum gf_ks_subres sub,
                       struct gf_ks_obj **out, struct gf_ks_status *err)
{
    struct table *tab = table_of(st, t);
    if (tab == NULL)
        return gf_ks_status_set(err, 404, "NotFound",
                                "the server could not find the requested "
                                "resource");
    if (!t->namespaced || ns == NULL)
        ns = "";
    int rc = create_checks(t, ns, in, err);
    if (rc < 0)
        return rc;
    enter(st);
    cJSON *obj = cJSON_Duplicate(in, true);
    cJSON *m = meta_of(obj);
    char name[NAME_MAX_LEN + 2];
    rc = check_namespace(st, tab, ns, err);
    if (rc == 0)
        rc = create_name(st, tab, ns, m, name, sizeof(name), err);
    if (rc < 0) {
        cJSON_Delete(obj);
        return leave(st, rc);
    }
    char uid[37];
    init_meta(st, t, obj, m, ns, name, sub, uid);
    char key[KEY_MAX];
    make_key(key, ns, name);
    struct entry *e = tab_insert(st, tab, key, uid);
    struct gf_ks_obj *o = seal(st, tab, obj, ns, name);
    entry_set(st, e, o);
    owners_link(st, e, obj, true);
    emit(st, tab, GF_KS_EV_ADDED, o, NULL);
    keep(st, o);
    if (out != NULL)
        *out = o;
    cJSON_Delete(obj);
    return leave(st, 0);
}

/* ---- update ---------------------------------------------------------- */

static void fmt_rv(const struct gf_ks_obj *o, char out[24])
{
    snprintf(out, 24, "%llu", (unsigned long long)o->rv);
}

/* name, resourceVersion and uid of a write against the stored object. */
static int check_preconditions(const struct gf_ks_rtype *t,
                               const struct entry *e, const cJSON *im,
                               const char *cur, struct gf_ks_status *err)
{
    const char *name = e->obj->name;
    const char *iname = gf_json_str(im, "name");
    if (iname != NULL && strcmp(iname, name) != 0)
        return gf_ks_status_set(err, 400, "BadRequest",
                                "the name of the object (%s) does not match "
                                "the name on the URL (%s)",
                                iname, name);
    const char *irv = gf_json_str(im, "resourceVersion");
    if (irv != NULL && irv[0] != '\0' && strcmp(irv, cur) != 0)
        return gf_ks_status_conflict(err, t->group, t->resource, name,
                                     "the object has been modified; please "
                                     "apply your changes to the latest "
                                     "version and try again");
    const char *iuid = gf_json_str(im, "uid");
    if (iuid != NULL && iuid[0] != '\0' && strcmp(iuid, e->uid) != 0) {
        char why[200];
        snprintf(why, sizeof(why),
                 "Precondition failed: UID in precondition: %s, UID in "
                 "object meta: %s",
                 iuid, e->uid);
        return gf_ks_status_conflict(err, t->group, t->resource, name, why);
    }
    return 0;
}

/* Once an object is being deleted, no finalizer may be added. */
static int check_new_finalizers(const struct gf_ks_rtype *t, const char *name,
                                const cJSON *old, const cJSON *obj,
                                struct gf_ks_status *err)
{
    if (gf_json_path(old, "metadata.deletionTimestamp") == NULL)
        return 0;
    static const char why[] = "Forbidden: no new finalizers can be added if "
                              "the object is being deleted";
    const cJSON *f;
    cJSON_ArrayForEach(f, gf_json_path(obj, "metadata.finalizers"))
    {
        if (!cJSON_IsString(f) || has_finalizer(old, f->valuestring))
            continue;
        char q[200];
        snprintf(q, sizeof(q), "%s%s%s", t->kind, t->group[0] ? "." : "",
                 t->group);
        int rc = gf_ks_status_set(err, 422, "Invalid",
                                  "%s \"%s\" is invalid: metadata.finalizers: "
                                  "%s",
                                  q, name, why);
        gf_ks_status_details(err, name, t->group, t->kind);
        gf_ks_status_cause(err, "FieldValueForbidden", why,
                           "metadata.finalizers");
        return rc;
    }
    return 0;
}

/*
 * The new state for a main-resource write: the input, with the stored
 * status (for types with the subresource) and the metadata the registry
 * owns. Returned-owned in *out; 0 or a GF_E* code.
 */
static int merge_main(const struct gf_ks_rtype *t, const char *name,
                      const cJSON *old, const cJSON *in, cJSON **out,
                      struct gf_ks_status *err)
{
    cJSON *obj = cJSON_Duplicate(in, true);
    if (t->has_status)
        copy_key(obj, old, "status");
    cJSON *m = meta_of(obj);
    const cJSON *om = cJSON_GetObjectItemCaseSensitive(old, "metadata");
    static const char *const fixed[] = {"name",
                                        "namespace",
                                        "uid",
                                        "creationTimestamp",
                                        "deletionTimestamp",
                                        "deletionGracePeriodSeconds",
                                        "generation",
                                        "selfLink"};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        copy_key(m, om, fixed[i]);
    int rc = check_new_finalizers(t, name, old, obj, err);
    if (rc < 0) {
        cJSON_Delete(obj);
        return rc;
    }
    if (strcmp(t->gr, NS_GR) == 0) {
        /* A namespace's spec and status belong to its controller. */
        copy_key(obj, old, "spec");
        copy_key(obj, old, "status");
    }
    if (spec_changed(old, obj, t->has_status)) {
        int64_t g = 1;
        gf_json_int(old, "metadata.generation", &g);
        set_item(m, "generation", cJSON_CreateNumber((double)(g + 1)));
    }
    *out = obj;
    return 0;
}

/*
 * The heart of PUT and PATCH: in is the full desired object (owned).
 * Applies the registry rules and stores it.
 */
static int update_obj(struct gf_ks_store *st, struct table *tab,
                      struct entry *e, cJSON *in, enum gf_ks_subres sub,
                      struct gf_ks_obj **out, struct gf_ks_status *err)
{
    const struct gf_ks_rtype *t = tab->t;
    cJSON *old = gf_ks_obj_parse(e->obj);
    cJSON *obj = NULL;
    char cur[24];
    fmt_rv(e->obj, cur);
    int rc = 0;
    if (!cJSON_IsObject(in)) {
        rc = gf_ks_status_set(err, 400, "BadRequest",
                              "the body of the request was not an object");
        goto out;
    }
    rc = check_preconditions(t, e, meta_of(in), cur, err);
    if (rc < 0)
        goto out;
    if (sub == GF_KS_STATUS) {
        /* /status takes only status; everything else stays as stored. */
        obj = cJSON_Duplicate(old, true);
        copy_key(obj, in, "status");
    } else {
        rc = merge_main(t, e->obj->name, old, in, &obj, err);
        if (rc < 0)
            goto out;
    }
    /* The server skips writes that change nothing: same RV, no event. */
    set_str(meta_of(obj), "resourceVersion", cur);
    struct gf_ks_obj *o = e->obj;
    if (gf_json_equal(obj, old)) {
        keep(st, o);
    } else if (gf_json_path(obj, "metadata.deletionTimestamp") != NULL &&
               !has_finalizers(obj)) {
        o = remove_now(st, e, obj, GF_KS_PROP_BACKGROUND);
        obj = NULL;
    } else {
        o = replace_now(st, e, obj, old);
        obj = NULL;
    }
    if (out != NULL)
        *out = o;
out:
    cJSON_Delete(obj);
    cJSON_Delete(old);
    cJSON_Delete(in);
    return rc;
}

int gf_ks_store_update(struct gf_ks_store *st, const struct gf_ks_rtype *t,
                       const char *ns, const char *name, const cJSON *in,
                       enum gf_ks_subres sub, struct gf_ks_obj **out,
                       struct gf_ks_status *err)
{
    struct table *tab = table_of(st, t);
    if (tab == NULL)
        return gf_ks_status_set(err, 404, "NotFound",
                                "the server could not find the requested "
                                "resource");
    int rc;
    enter(st);
    struct entry *e = lookup(st, tab, ns, name);
    if (e == NULL)
        rc = not_found(tab, name, err);
    else
        rc = update_obj(st, tab, e, cJSON_Duplicate(in, true), sub, out, err);
    return leave(st, rc);
}

int gf_ks_store_patch(struct gf_ks_store *st, const struct gf_ks_rtype *t,
                      const char *ns, const char *name,
                      enum gf_ks_patch_type type, const char *patch, size_t len,
                      enum gf_ks_subres sub, struct gf_ks_obj **out,
                      struct gf_ks_status *err)
{
    struct table *tab = table_of(st, t);
    if (tab == NULL)
        return gf_ks_status_set(err, 404, "NotFound",
                                "the server could not find the requested "
                                "resource");
    enter(st);
    int rc = 0;
    struct entry *e = lookup(st, tab, ns, name);
    if (e == NULL) {
        rc = not_found(tab, name, err);
        return leave(st, rc);
    }
    cJSON *doc = gf_ks_obj_parse(e->obj);
    rc = gf_ks_patch_apply(type, &doc, patch, len, err);
    if (rc < 0) {
        cJSON_Delete(doc);
        return leave(st, rc);
    }
    rc = update_obj(st, tab, e, doc, sub, out, err);
    return leave(st, rc);
}

int gf_ks_store_patch_status(struct gf_ks_store *st,
                             const struct gf_ks_rtype *t, const char *ns,
                             const char *name, const cJSON *status,
                             struct gf_ks_obj **out, struct gf_ks_status *err)
{
    struct table *tab = table_of(st, t);
    if (tab == NULL)
        return gf_ks_status_set(err, 404, "NotFound",
                                "the server could not find the requested "
                                "resource");
    enter(st);
    int rc;
    struct entry *e = lookup(st, tab, ns, name);
    if (e == NULL) {
        rc = not_found(tab, name, err);
        return leave(st, rc);
    }
    cJSON *doc = gf_ks_obj_parse(e->obj);
    cJSON *cur = cJSON_DetachItemFromObjectCaseSensitive(doc, "status");
    gf_ks_patch_merge(&cur, status);
    cJSON_AddItemToObject(doc, "status", cur);
    rc = update_obj(st, tab, e, doc, GF_KS_STATUS, out, err);
    return leave(st, rc);
}

/* ---- delete ---------------------------------------------------------- */

static bool has_dependents(const struct gf_ks_store *st, const char *uid)
{
    struct uidrec *u = uid_find(st, uid);
    return u != NULL && u->deps != NULL;
}

/* Removes d's ownerReference to owner_uid (one MODIFIED event). */
static void drop_owner_ref(struct gf_ks_store *st, struct entry *d,
                           const char *owner_uid)
{
    cJSON *j = gf_ks_obj_parse(d->obj);
    cJSON *refs = (cJSON *)gf_json_path(j, "metadata.ownerReferences");
    cJSON *r = refs != NULL ? refs->child : NULL;
    while (r != NULL) {
        cJSON *next = r->next;
        const char *ru = gf_json_str(r, "uid");
        if (ru != NULL && strcmp(ru, owner_uid) == 0) {
            cJSON_DetachItemViaPointer(refs, r);
            cJSON_Delete(r);
        }
        r = next;
    }
    if (refs != NULL && cJSON_GetArraySize(refs) == 0)
        cJSON_DeleteItemFromObjectCaseSensitive(meta_of(j), "ownerReferences");
    cJSON *old = gf_ks_obj_parse(d->obj);
    replace_now(st, d, j, old);
    cJSON_Delete(old);
}

/* Removes the ownerReference to owner_uid from every dependent. */
static void orphan_dependents(struct gf_ks_store *st, const char *owner_uid)
{
    for (;;) {
        struct uidrec *u = uid_find(st, owner_uid);
        if (u == NULL || u->deps == NULL)
            return;
        drop_owner_ref(st, u->deps->e, owner_uid);
    }
}

static enum gf_ks_propagation resolve_prop(const struct gf_ks_rtype *t,
                                           enum gf_ks_propagation p)
{
    if (p != GF_KS_PROP_DEFAULT)
        return p;
    return t->default_orphan ? GF_KS_PROP_ORPHAN : GF_KS_PROP_BACKGROUND;
}

static struct gf_ks_obj *delete_entry(struct gf_ks_store *st, struct entry *e,
                                      enum gf_ks_propagation prop, bool *gone)
{
    cJSON *j = gf_ks_obj_parse(e->obj);
    if (gf_json_path(j, "metadata.deletionTimestamp") != NULL) {
        cJSON_Delete(j);
        *gone = false;
        keep(st, e->obj);
        return e->obj;
    }
    if (prop == GF_KS_PROP_ORPHAN)
        orphan_dependents(st, e->uid);
    bool is_ns = strcmp(e->tab->t->gr, NS_GR) == 0;
    bool fg = prop == GF_KS_PROP_FOREGROUND && has_dependents(st, e->uid);
    if (!has_finalizers(j) && !fg && !is_ns) {
        *gone = true;
        return remove_now(st, e, j, prop);
    }
    cJSON *old = cJSON_Duplicate(j, true);
    cJSON *m = meta_of(j);
    char ts[32];
    now_rfc3339(st, ts);
    set_str(m, "deletionTimestamp", ts);
    set_item(m, "deletionGracePeriodSeconds", cJSON_CreateNumber(0));
    /* The registry bumps the generation when it marks an object deleted. */
    int64_t g = 0;
    if (gf_json_int(m, "generation", &g) == 0 && g > 0)
        set_item(m, "generation", cJSON_CreateNumber((double)(g + 1)));
    if (fg) {
        cJSON *fins = cJSON_GetObjectItemCaseSensitive(m, "finalizers");
        if (!cJSON_IsArray(fins)) {
            cJSON_DeleteItemFromObjectCaseSensitive(m, "finalizers");
            fins = cJSON_AddArrayToObject(m, "finalizers");
        }
        cJSON_AddItemToArray(fins, cJSON_CreateString(FG_FINALIZER));
    }
    if (is_ns) {
        cJSON *status = cJSON_GetObjectItemCaseSensitive(j, "status");
        if (cJSON_IsObject(status))
            set_str(status, "phase", "Terminating");
    }
    char *uid = gf_strdup(e->uid);
    char *name = gf_strdup(e->obj->name);
    struct gf_ks_obj *o = replace_now(st, e, j, old);
    cJSON_Delete(old);
    if (fg)
        gc_queue(st, GC_DEPENDENTS, GF_KS_PROP_FOREGROUND, uid);
    if (is_ns)
        gc_queue(st, GC_NAMESPACE, GF_KS_PROP_DEFAULT, name);
    gf_free(uid);
    gf_free(name);
    *gone = false;
    return o;
}

int gf_ks_store_delete(struct gf_ks_store *st, const struct gf_ks_rtype *t,
                       const char *ns, const char *name,
                       const struct gf_ks_delete_opts *o,
                       struct gf_ks_obj **out, bool *gone,
                       struct gf_ks_status *err)
{
    struct table *tab = table_of(st, t);
    if (tab == NULL)
        return gf_ks_status_set(err, 404, "NotFound",
                                "the server could not find the requested "
                                "resource");
    static const struct gf_ks_delete_opts none;
    if (o == NULL)
        o = &none;
    enter(st);
    int rc = 0;
    struct entry *e = lookup(st, tab, ns, name);
    if (e == NULL) {
        rc = not_found(tab, name, err);
        return leave(st, rc);
    }
    char why[256];
    if (o->uid != NULL && o->uid[0] != '\0' && strcmp(o->uid, e->uid) != 0) {
        snprintf(why, sizeof(why),
                 "Precondition failed: UID in precondition: %s, UID in "
                 "object meta: %s",
                 o->uid, e->uid);
        rc = gf_ks_status_conflict(err, t->group, t->resource, name, why);
        return leave(st, rc);
    }
    char cur[24];
    fmt_rv(e->obj, cur);
    if (o->rv != NULL && o->rv[0] != '\0' && strcmp(o->rv, cur) != 0) {
        snprintf(why, sizeof(why),
                 "Precondition failed: ResourceVersion in precondition: %s, "
                 "ResourceVersion in object meta: %s",
                 o->rv, cur);
        rc = gf_ks_status_conflict(err, t->group, t->resource, name, why);
        return leave(st, rc);
    }
    bool g = false;
    struct gf_ks_obj *res =
        delete_entry(st, e, resolve_prop(t, o->propagation), &g);
    if (out != NULL)
        *out = res;
    if (gone != NULL)
        *gone = g;
    return leave(st, rc);
}

/* ---- garbage collection ---------------------------------------------- */

/* True when another owner of dependent d (not owner_uid) still exists. */
static bool other_owner_alive(const struct gf_ks_store *st, const cJSON *d,
                              const char *owner_uid)
{
    const cJSON *r;
    cJSON_ArrayForEach(r, gf_json_path(d, "metadata.ownerReferences"))
    {
        const char *u = gf_json_str(r, "uid");
        if (u == NULL || strcmp(u, owner_uid) == 0)
            continue;
        struct uidrec *rec = uid_find(st, u);
        if (rec != NULL && rec->e != NULL)
            return true;
    }
    return false;
}

static void gc_dependents(struct gf_ks_store *st, const char *owner_uid,
                          enum gf_ks_propagation prop)
{
    struct uidrec *u = uid_find(st, owner_uid);
    if (u == NULL)
        return;
    /* Collect first: deleting changes the dependency lists. */
    size_t n = 0, cap = 8;
    char **keys = gf_malloc(PTRS(cap));
    struct table **tabs = gf_malloc(PTRS(cap));
    for (struct dep *d = u->deps; d != NULL; d = d->next) {
        if (n == cap) {
            cap *= 2;
            keys = gf_realloc(keys, PTRS(cap));
            tabs = gf_realloc(tabs, PTRS(cap));
        }
        keys[n] = gf_strdup(d->e->key);
        tabs[n++] = d->e->tab;
    }
    for (size_t i = 0; i < n; i++) {
        struct entry *e = tab_find(tabs[i], keys[i]);
        if (e != NULL) {
            cJSON *j = gf_ks_obj_parse(e->obj);
            bool keep_it = other_owner_alive(st, j, owner_uid);
            cJSON_Delete(j);
            if (keep_it) {
                /* Another owner lives: only this reference goes. */
                drop_owner_ref(st, e, owner_uid);
            } else {
                bool gone;
                delete_entry(st, e,
                             prop == GF_KS_PROP_FOREGROUND
                                 ? GF_KS_PROP_FOREGROUND
                                 : GF_KS_PROP_BACKGROUND,
                             &gone);
            }
        }
        gf_free(keys[i]);
    }
    gf_free(keys);
    gf_free(tabs);
    /*
     * Dependents that only lost their reference (another owner lives) do
     * not go away, so nothing else would tell a foreground owner that it
     * has no dependents left.
     */
    if (prop == GF_KS_PROP_FOREGROUND)
        gc_queue(st, GC_FOREGROUND_DONE, GF_KS_PROP_DEFAULT, owner_uid);
}

static void gc_foreground_done(struct gf_ks_store *st, const char *uid)
{
    struct uidrec *u = uid_find(st, uid);
    if (u == NULL || u->e == NULL || u->deps != NULL)
        return;
    struct entry *e = u->e;
    cJSON *j = gf_ks_obj_parse(e->obj);
    if (!has_finalizer(j, FG_FINALIZER) ||
        gf_json_path(j, "metadata.deletionTimestamp") == NULL) {
        cJSON_Delete(j);
        return;
    }
    cJSON *old = cJSON_Duplicate(j, true);
    remove_finalizer(j, FG_FINALIZER);
    if (!has_finalizers(j))
        remove_now(st, e, j, GF_KS_PROP_BACKGROUND);
    else
        replace_now(st, e, j, old);
    cJSON_Delete(old);
}

static void gc_namespace(struct gf_ks_store *st, const char *ns)
{
    struct table *nt = find_table(st, "", "namespaces");
    struct entry *ne = nt != NULL ? lookup(st, nt, "", ns) : NULL;
    if (ne == NULL)
        return;
    size_t left = 0;
    for (struct table *tab = st->tables; tab != NULL; tab = tab->next) {
        if (!tab->t->namespaced)
            continue;
        char prefix[300];
        snprintf(prefix, sizeof(prefix), "%s/", ns);
        size_t pl = strlen(prefix);
        /* Collect keys first: deletion edits the table. */
        size_t n = 0;
        size_t len = gf_htab_len(&tab->map);
        char **keys = gf_malloc(PTRS(len ? len : 1));
        size_t pos = 0;
        const char *key;
        while (gf_htab_scan(&tab->map, &pos, &key, NULL))
            if (strncmp(key, prefix, pl) == 0)
                keys[n++] = gf_strdup(key);
        for (size_t i = 0; i < n; i++) {
            struct entry *e = tab_find(tab, keys[i]);
            if (e != NULL) {
                bool gone;
                delete_entry(st, e, GF_KS_PROP_BACKGROUND, &gone);
                left += !gone;
            }
            gf_free(keys[i]);
        }
        gf_free(keys);
    }
    if (left > 0)
        return; /* finalizers hold some; their removal re-queues us */
    ne = lookup(st, nt, "", ns);
    if (ne == NULL)
        return;
    cJSON *j = gf_ks_obj_parse(ne->obj);
    cJSON *spec = cJSON_GetObjectItemCaseSensitive(j, "spec");
    cJSON_DeleteItemFromObjectCaseSensitive(spec, "finalizers");
    if (has_finalizers(j)) {
        cJSON_Delete(j);
        return;
    }
    remove_now(st, ne, j, GF_KS_PROP_BACKGROUND);
}

static void gc_run(struct gf_ks_store *st, struct gcwork *g)
{
    switch (g->kind) {
    case GC_DEPENDENTS:
        gc_dependents(st, g->arg, g->prop);
        break;
    case GC_FOREGROUND_DONE:
        gc_foreground_done(st, g->arg);
        break;
    case GC_NAMESPACE:
        gc_namespace(st, g->arg);
        break;
    }
}

/* ---- unregister ------------------------------------------------------ */

int gf_ks_store_unregister(struct gf_ks_store *st, const char *group,
                           const char *resource)
{
    struct table *tab = find_table(st, group, resource);
    if (tab == NULL)
        return GF_ENOTFOUND;
    enter(st);
    /* Every object goes, as the CRD finalizer deletes them all. */
    struct gf_htab_iter it;
    void *v;
    gf_htab_iter_init(&it, &tab->map);
    while (gf_htab_next(&it, NULL, NULL, &v)) {
        struct entry *e = v;
        remove_now(st, e, gf_ks_obj_parse(e->obj), GF_KS_PROP_ORPHAN);
    }
    st->depth--;
    dispatch(st); /* deliver the DELETED events while the type exists */
    st->depth++;
    close_watches(st, tab, GF_ENOTFOUND);
    for (struct gf_ks_observer *o = st->observers; o != NULL; o = o->next)
        if (o->tab == tab)
            o->dead = true;
    struct table **pp = &st->tables;
    while (*pp != tab)
        pp = &(*pp)->next;
    *pp = tab->next;
    tab->next = st->dead_tables;
    st->dead_tables = tab;
    tab->dead = true;
    /* Pending events may still point at the table: free it after them. */
    st->depth--;
    if (!st->dispatching)
        dispatch(st);
    return 0;
}

/* ---- observers and watches ------------------------------------------- */

struct gf_ks_observer *gf_ks_store_observe(struct gf_ks_store *st,
                                           const struct gf_ks_rtype *t,
                                           gf_ks_observer_fn fn, void *data)
{
    struct gf_ks_observer *o = gf_calloc(1, sizeof(*o));
    o->tab = t != NULL ? table_of(st, t) : NULL;
    GF_BUG_ON(t != NULL && o->tab == NULL);
    o->fn = fn;
    o->data = data;
    /*
     * Everything written so far is the state the observer starts from
     * (it reads it with get/list); queued events of those writes are not
     * delivered to it twice.
     */
    o->from_rv = st->rv;
    struct gf_ks_observer **pp = &st->observers;
    while (*pp != NULL)
        pp = &(*pp)->next;
    *pp = o;
    return o;
}

void gf_ks_store_unobserve(struct gf_ks_store *st, struct gf_ks_observer *o)
{
    if (o == NULL)
        return;
    o->dead = true;
    maybe_sweep(st);
}

const char *gf_ks_ev_name(enum gf_ks_ev_type t)
{
    switch (t) {
    case GF_KS_EV_ADDED:
        return "ADDED";
    case GF_KS_EV_MODIFIED:
        return "MODIFIED";
    case GF_KS_EV_DELETED:
        return "DELETED";
    case GF_KS_EV_BOOKMARK:
        return "BOOKMARK";
    case GF_KS_EV_CLOSED:
        break;
    }
    return "ERROR";
}

/* The first index in the watch cache of a change after rv. */
static size_t ring_after(const struct table *tab, uint64_t rv)
{
    size_t lo = 0, hi = tab->ring_len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct cached_ev *c =
            &tab->ring[(tab->ring_head + mid) % tab->ring_cap];
        if (c->obj->rv <= rv)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The next initial ADDED event, if the watch's selectors take it. */
static void send_initial(struct gf_ks_watch *w)
{
    struct gf_ks_obj *o = w->init.items[w->init_pos++];
    bool ok = true;
    if (w->label != NULL || w->field != NULL) {
        cJSON *j = gf_ks_obj_parse(o);
        ok = sel_match(w, j);
        cJSON_Delete(j);
    }
    if (ok)
        w->cb(w->data, GF_KS_EV_ADDED, o, o->rv, 0);
}

/*
 * Sends the changes a held-back watch missed, from the watch cache. If
 * they have left it, the watch ends with CLOSED (GF_EGONE): the API
 * server, too, closes a watcher that cannot keep up, and the client
 * resumes from its last version or relists.
 */
static void catch_up(struct gf_ks_watch *w)
{
    const struct table *tab = w->tab;
    /* The position is found again for every event: a callback that
     * writes to the store may compact the ring under us. */
    while (!w->dead && !w->paused) {
        if (w->last_rv < tab->compacted_rv) {
            w->dead = true;
            w->cb(w->data, GF_KS_EV_CLOSED, NULL, 0, GF_EGONE);
            return;
        }
        size_t i = ring_after(tab, w->last_rv);
        if (i == tab->ring_len) {
            w->behind = false;
            return;
        }
        const struct cached_ev *c =
            &tab->ring[(tab->ring_head + i) % tab->ring_cap];
        watch_deliver(w, c->type, c->obj, c->old, NULL, NULL);
    }
}

/*
 * Sends what the watch has not had yet, until it is paused or has caught
 * up: the rest of its initial events, then the watch cache after the last
 * version it saw. Live changes go straight to it again from then on.
 */
static void pump(struct gf_ks_store *st, struct gf_ks_watch *w)
{
    st->busy++;
    w->pumping = true;
    while (!w->dead && !w->paused && w->init_pos < w->init.n)
        send_initial(w);
    if (!w->dead && !w->paused && w->init_pending) {
        gf_ks_list_free(&w->init);
        w->init_pending = false;
        w->last_rv = w->init_rv;
        w->behind = true;
        if (w->init_bookmark)
            w->cb(w->data, GF_KS_EV_BOOKMARK, NULL, w->init_rv, 0);
    }
    if (!w->dead && !w->paused && w->behind)
        catch_up(w);
    w->pumping = false;
    st->busy--;
    maybe_sweep(st);
}

int gf_ks_watch_start(struct gf_ks_store *st, const struct gf_ks_rtype *t,
                      const struct gf_ks_watch_opts *o, gf_ks_watch_cb cb,
                      void *data, struct gf_ks_watch **out,
                      struct gf_ks_status *err)
{
    struct table *tab = table_of(st, t);
    if (tab == NULL)
        return gf_ks_status_set(err, 404, "NotFound",
                                "the server could not find the requested "
                                "resource");
    bool initial = o->rv == NULL || o->rv[0] == '\0' || strcmp(o->rv, "0") == 0;
    int64_t from = 0;
    if (!initial) {
        if (gf_parse_i64(o->rv, &from) != 0 || from < 0)
            return gf_ks_status_set(err, 400, "BadRequest",
                                    "invalid resource version: %s", o->rv);
        if ((uint64_t)from > st->rv) {
            /*
             * What the server answers once its wait for a future version
             * times out; clients relist on it.
             */
            int rc = gf_ks_status_set(
                err, 504, "Timeout",
                "Timeout: Too large resource version: %lld, current: %llu",
                (long long)from, (unsigned long long)st->rv);
            gf_ks_status_cause(err, "ResourceVersionTooLarge",
                               "Too large resource version", NULL);
            if (err != NULL)
                err->retry_after = 1;
            return rc;
        }
        if ((uint64_t)from < tab->compacted_rv) {
            int rc = gf_ks_status_set(
                err, 410, "Expired", "too old resource version: %lld (%llu)",
                (long long)from, (unsigned long long)tab->compacted_rv + 1);
            return rc;
        }
    }
    struct gf_ks_watch *w = gf_calloc(1, sizeof(*w));
    w->st = st;
    w->tab = tab;
    w->ns = o->ns != NULL && o->ns[0] != '\0' ? gf_strdup(o->ns) : NULL;
    w->label = gf_ks_selector_dup(o->label);
    w->field = gf_ks_selector_dup(o->field);
    w->cb = cb;
    w->data = data;
    w->next = tab->watches;
    tab->watches = w;
    st->nwatches++;
    *out = w;
    /*
     * The callback may stop this watch (or others): they are only marked
     * until the events below have been sent, then freed.
     */
    if (initial) {
        /* Synthetic ADDED events for the current state. */
        struct gf_ks_list_opts lo = {.ns = w->ns};
        gf_ks_store_list(st, tab->t, &lo, &w->init, NULL);
        w->init_rv = st->rv;
        w->init_pending = true;
        w->init_bookmark = o->initial_end_bookmark;
    } else {
        /* Every cached change after version from, in order. */
        w->last_rv = (uint64_t)from;
        w->behind = true;
    }
    pump(st, w);
    return 0;
}

void gf_ks_watch_bookmark(struct gf_ks_watch *w)
{
    /* Mid-way through the initial events no version is safe to resume
     * from. */
    if (w == NULL || w->dead || w->init_pending)
        return;
    struct gf_ks_store *st = w->st;
    uint64_t rv = st->pq_head != NULL ? st->delivered_rv : st->rv;
    /* Held back, it has seen everything up to its own last version. */
    if (rv < w->last_rv || w->paused || w->behind)
        rv = w->last_rv;
    w->cb(w->data, GF_KS_EV_BOOKMARK, NULL, rv, 0);
}

void gf_ks_watch_pause(struct gf_ks_watch *w)
{
    if (w != NULL)
        w->paused = true;
}

void gf_ks_watch_resume(struct gf_ks_watch *w)
{
    if (w == NULL || w->dead || !w->paused)
        return;
    w->paused = false;
    /* From inside its own callback, the running pump goes on. */
    if (!w->pumping)
        pump(w->st, w);
}

bool gf_ks_watch_initial_done(const struct gf_ks_watch *w)
{
    return w != NULL && !w->init_pending;
}

void gf_ks_watch_stop(struct gf_ks_watch *w)
{
    if (w == NULL || w->dead)
        return;
    w->dead = true;
    maybe_sweep(w->st);
}
