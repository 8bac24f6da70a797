/*
 * store: projected, refcounted object cache (see store.h).
 *
 * A common/htab map keyed by "ns/name", borrowing the key from the entry.
 * Each entry is one allocation holding the public struct and its strings,
 * plus the free hook of its projection, so an entry that outlives its
 * store (a reconcile still holds it) can still free itself. Replacing after
 * a LIST marks every key seen with the current generation and deletes the
 * unmarked ones at the end (an iteration that deletes as it goes), which
 * is how keys that vanished while we were not watching get their delete
 * events.
 */
#include "kubeclient/store.h"

#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/htab.h"
#include "common/json.h"

struct entry {
    struct gf_store_entry pub;
    gf_store_free_fn free_proj;
    /* Generation of the last upsert while the entry was in its store:
     * bookkeeping of the store, never read through pub. */
    uint32_t mark;
    /* Applied from a write's answer (gf_store_write_through), not yet
     * overtaken by the watch. */
    bool written;
    char strs[]; /* key, ns, name, rv, uid */
};

struct gf_store {
    struct gf_htab map; /* key -> struct entry; keys borrowed from it */
    uint32_t gen;
    bool synced;
    /* The highest resourceVersion the list and watch have delivered: the
     * stream is in resourceVersion order, so every change up to it has
     * been applied. */
    uint64_t seen_rv;
    gf_store_project_fn project;
    gf_store_free_fn free_proj;
    void *project_data;
    struct gf_store_handlers h;
    struct gf_store_stats stats;
};

struct gf_store *gf_store_new(const struct gf_store_opts *o)
{
    struct gf_store *s = gf_calloc(1, sizeof(*s));
    gf_htab_init(&s->map, GF_HTAB_BORROW_KEYS);
    if (o != NULL) {
        s->project = o->project;
        s->free_proj = o->free_proj;
        s->project_data = o->project_data;
        if (o->handlers != NULL)
            s->h = *o->handlers;
    }
    return s;
}

const struct gf_store_entry *gf_store_entry_ref(const struct gf_store_entry *e)
{
    /* The refcount is bookkeeping, not object state: entries stay
     * immutable for their users, so casting away const here is safe. */
    ((struct gf_store_entry *)e)->refs++;
    return e;
}

void gf_store_entry_unref(const struct gf_store_entry *pe)
{
    if (pe == NULL)
        return;
    struct entry *e = (struct entry *)pe;
    GF_BUG_ON(e->pub.refs == 0);
    if (--e->pub.refs > 0)
        return;
    if (e->free_proj != NULL && e->pub.proj != NULL)
        e->free_proj(e->pub.proj);
    gf_free(e);
}

static void unref_entry(void *e)
{
    gf_store_entry_unref(&((struct entry *)e)->pub);
}

void gf_store_free(struct gf_store *s)
{
    if (s == NULL)
        return;
    gf_htab_free_all(&s->map, unref_entry);
    gf_free(s);
}

/* Key parts of an object; 0 or -EINVAL when it has no name. */
static int obj_key(const cJSON *obj, const char **ns, const char **name)
{
    *name = gf_json_str(obj, "metadata.name");
    *ns = gf_json_str(obj, "metadata.namespace");
    if (*ns == NULL)
        *ns = "";
    if (*name == NULL || **name == '\0' || strlen(*name) > 253 ||
        strlen(*ns) > 253)
        return -EINVAL;
    return 0;
}

static void make_key(char *out, size_t cap, const char *ns, const char *name)
{
    size_t nl = strlen(ns), ml = strlen(name);
    GF_BUG_ON(nl + ml + 2 > cap);
    if (nl > 0) {
        memcpy(out, ns, nl);
        out[nl++] = '/';
    }
    memcpy(out + nl, name, ml);
    out[nl + ml] = '\0';
}

static struct entry *entry_new(const struct gf_store *s, const char *key,
                               const char *ns, const char *name, const char *rv,
                               const char *uid, void *proj)
{
    size_t kl = strlen(key) + 1, nl = strlen(ns) + 1, ml = strlen(name) + 1;
    size_t rl = strlen(rv) + 1, ul = strlen(uid) + 1;
    struct entry *e = gf_malloc(sizeof(*e) + kl + nl + ml + rl + ul);
    char *p = e->strs;
    memcpy(p, key, kl);
    e->pub.key = p;
    p += kl;
    memcpy(p, ns, nl);
    e->pub.ns = p;
    p += nl;
    memcpy(p, name, ml);
    e->pub.name = p;
    p += ml;
    memcpy(p, rv, rl);
    e->pub.rv = p;
    p += rl;
    memcpy(p, uid, ul);
    e->pub.uid = p;
    e->pub.refs = 1;
    e->pub.proj = proj;
    e->free_proj = s->free_proj;
    return e;
}

static void remove_entry(struct gf_store *s, struct entry *e)
{
    gf_htab_del_str(&s->map, e->pub.key);
    s->stats.deletes++;
    if (s->h.on_delete != NULL)
        s->h.on_delete(s->h.data, &e->pub);
    gf_store_entry_unref(&e->pub);
}

/* A resourceVersion as a number, 0 when it is not one. Kubernetes calls
 * them opaque, yet they are etcd revisions, ordered within a cluster;
 * client-go's mutation cache compares them the same way. Only
 * write-through relies on the order, and it does nothing on 0. */
static uint64_t rv_num(const char *rv)
{
    uint64_t n = 0;
    if (rv == NULL || *rv == '\0' || strlen(rv) > 19)
        return 0;
    for (const char *p = rv; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return 0;
        n = n * 10 + (uint64_t)(*p - '0');
    }
    return n;
}

static void saw_rv(struct gf_store *s, const cJSON *obj)
{
    uint64_t n = rv_num(gf_json_str(obj, "metadata.resourceVersion"));
    if (n > s->seen_rv)
        s->seen_rv = n;
}

static int upsert(struct gf_store *s, const cJSON *obj, bool written)
{
    const char *ns, *name;
    if (obj_key(obj, &ns, &name) != 0)
        return -EINVAL;
    char key[512];
    make_key(key, sizeof(key), ns, name);
    const char *rv = gf_json_str(obj, "metadata.resourceVersion");
    const char *uid = gf_json_str(obj, "metadata.uid");
    rv = rv != NULL ? rv : "";
    uid = uid != NULL ? uid : "";
    struct entry *n = gf_htab_get_str(&s->map, key);
    if (n != NULL && *rv != '\0' && strcmp(n->pub.rv, rv) == 0 &&
        strcmp(n->pub.uid, uid) == 0) {
        n->mark = s->gen; /* unchanged since we last saw it */
        return 0;
    }
    uint64_t rvn = rv_num(rv);
    if (n != NULL && n->written && strcmp(n->pub.uid, uid) == 0 && rvn != 0 &&
        rvn < rv_num(n->pub.rv)) {
        /* The watch is still behind a version we wrote ourselves: keep
         * ours (it brings it, or a later one, next). */
        n->mark = s->gen;
        return 0;
    }
    void *proj = NULL;
    int rc = s->project != NULL ? s->project(s->project_data, obj, &proj) : 0;
    if (rc != 0) {
        if (rc < 0)
            s->stats.proj_errors++;
        else
            s->stats.skipped++;
        /* Whatever we held for this key no longer describes the object. */
        if (n != NULL)
            remove_entry(s, n);
        return rc < 0 ? rc : 0;
    }
    struct entry *e = entry_new(s, key, ns, name, rv, uid, proj);
    e->mark = s->gen;
    e->written = written;
    /* The map takes e's copy of the key along with e. */
    gf_htab_put_str(&s->map, e->pub.key, e);
    if (n != NULL) {
        s->stats.updates++;
        if (s->h.on_update != NULL)
            s->h.on_update(s->h.data, &n->pub, &e->pub);
        gf_store_entry_unref(&n->pub);
        return 0;
    }
    s->stats.adds++;
    if (s->h.on_add != NULL)
        s->h.on_add(s->h.data, &e->pub);
    return 0;
}

int gf_store_upsert(struct gf_store *s, const cJSON *obj)
{
    saw_rv(s, obj);
    return upsert(s, obj, false);
}

int gf_store_write_through(struct gf_store *s, const cJSON *obj)
{
    const char *rv = gf_json_str(obj, "metadata.resourceVersion");
    uint64_t n = rv_num(rv);
    if (n == 0 || n <= s->seen_rv)
        return 1; /* the watch has delivered it, or something newer */
    const char *ns, *name;
    if (obj_key(obj, &ns, &name) != 0)
        return -EINVAL;
    char key[512];
    make_key(key, sizeof(key), ns, name);
    const struct entry *e = gf_htab_get_str(&s->map, key);
    if (e != NULL && rv_num(e->pub.rv) >= n)
        return 1;
    int rc = upsert(s, obj, true);
    if (rc == 0)
        s->stats.written++;
    return rc;
}

int gf_store_remove(struct gf_store *s, const cJSON *obj)
{
    saw_rv(s, obj);
    const char *ns, *name;
    if (obj_key(obj, &ns, &name) != 0)
        return -EINVAL;
    char key[512];
    make_key(key, sizeof(key), ns, name);
    struct entry *e = gf_htab_get_str(&s->map, key);
    if (e != NULL)
        remove_entry(s, e);
    return 0;
}

void gf_store_replace_begin(struct gf_store *s)
{
    s->gen++;
}

int gf_store_replace_add(struct gf_store *s, const cJSON *obj)
{
    saw_rv(s, obj);
    return upsert(s, obj, false);
}

void gf_store_replace_end(struct gf_store *s)
{
    struct gf_htab_iter it;
    void *v;
    gf_htab_iter_init(&it, &s->map);
    while (gf_htab_next(&it, NULL, NULL, &v)) {
        struct entry *e = v;
        if (e->mark != s->gen)
            remove_entry(s, e);
    }
    s->synced = true;
}

const struct gf_store_entry *gf_store_get(const struct gf_store *s,
                                          const char *key)
{
    struct entry *e = gf_htab_get_str(&s->map, key);
    return e != NULL ? &e->pub : NULL;
}

int gf_store_foreach(const struct gf_store *s,
                     int (*fn)(void *data, const struct gf_store_entry *e),
                     void *data)
{
    size_t pos = 0;
    void *v;
    while (gf_htab_scan(&s->map, &pos, NULL, &v)) {
        int rc = fn(data, &((struct entry *)v)->pub);
        if (rc != 0)
            return rc;
    }
    return 0;
}

size_t gf_store_len(const struct gf_store *s)
{
    return gf_htab_len(&s->map);
}

bool gf_store_has_synced(const struct gf_store *s)
{
    return s->synced;
}

void gf_store_stats(const struct gf_store *s, struct gf_store_stats *out)
{
    *out = s->stats;
}
