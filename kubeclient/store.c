/*
 * store: projected, refcounted object cache (see store.h).
 *
 * A chained hash table keyed by "ns/name". Each entry is one allocation
 * holding the public struct and its strings, plus the free hook of its
 * projection, so an entry that outlives its store (a reconcile still holds
 * it) can still free itself. Replacing after a LIST marks every key seen
 * with the current generation and deletes the unmarked ones at the end,
 * which is how keys that vanished while we were not watching get their
 * delete events.
 */
#include "kubeclient/store.h"

#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/json.h"

struct entry {
    struct gf_store_entry pub;
    gf_store_free_fn free_proj;
    char strs[]; /* key, ns, name, rv, uid */
};

struct node {
    struct node *next;
    struct entry *e;
    uint64_t hash;
    uint64_t mark; /* generation of the last upsert */
};

struct gf_store {
    struct node **buckets;
    size_t nbuckets; /* power of two */
    size_t len;
    uint64_t gen;
    bool synced;
    gf_store_project_fn project;
    gf_store_free_fn free_proj;
    void *project_data;
    struct gf_store_handlers h;
    struct gf_store_stats stats;
};

static uint64_t hash_key(const char *k)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *k; k++) {
        h ^= (unsigned char)*k;
        h *= 1099511628211ull;
    }
    return h;
}

struct gf_store *gf_store_new(const struct gf_store_opts *o)
{
    struct gf_store *s = gf_calloc(1, sizeof(*s));
    s->nbuckets = 64;
    s->buckets = gf_calloc(s->nbuckets, sizeof(*s->buckets));
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

void gf_store_free(struct gf_store *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->nbuckets; i++) {
        struct node *n = s->buckets[i];
        while (n != NULL) {
            struct node *next = n->next;
            gf_store_entry_unref(&n->e->pub);
            gf_free(n);
            n = next;
        }
    }
    gf_free(s->buckets);
    gf_free(s);
}

static struct node **find(const struct gf_store *s, const char *key, uint64_t h)
{
    struct node **pp = &s->buckets[h & (s->nbuckets - 1)];
    for (; *pp != NULL; pp = &(*pp)->next)
        if ((*pp)->hash == h && strcmp((*pp)->e->pub.key, key) == 0)
            return pp;
    return pp;
}

static void grow(struct gf_store *s)
{
    size_t nb = s->nbuckets * 2;
    struct node **b = gf_calloc(nb, sizeof(*b));
    for (size_t i = 0; i < s->nbuckets; i++) {
        struct node *n = s->buckets[i];
        while (n != NULL) {
            struct node *next = n->next;
            n->next = b[n->hash & (nb - 1)];
            b[n->hash & (nb - 1)] = n;
            n = next;
        }
    }
    gf_free(s->buckets);
    s->buckets = b;
    s->nbuckets = nb;
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

static void unlink_node(struct gf_store *s, struct node **pp)
{
    struct node *n = *pp;
    *pp = n->next;
    s->len--;
    s->stats.deletes++;
    if (s->h.on_delete != NULL)
        s->h.on_delete(s->h.data, &n->e->pub);
    gf_store_entry_unref(&n->e->pub);
    gf_free(n);
}

static int upsert(struct gf_store *s, const cJSON *obj)
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
    uint64_t h = hash_key(key);
    struct node **pp = find(s, key, h);
    struct node *n = *pp;
    if (n != NULL && *rv != '\0' && strcmp(n->e->pub.rv, rv) == 0 &&
        strcmp(n->e->pub.uid, uid) == 0) {
        n->mark = s->gen; /* unchanged since we last saw it */
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
            unlink_node(s, pp);
        return rc < 0 ? rc : 0;
    }
    struct entry *e = entry_new(s, key, ns, name, rv, uid, proj);
    if (n != NULL) {
        struct entry *old = n->e;
        n->e = e;
        n->mark = s->gen;
        s->stats.updates++;
        if (s->h.on_update != NULL)
            s->h.on_update(s->h.data, &old->pub, &e->pub);
        gf_store_entry_unref(&old->pub);
        return 0;
    }
    n = gf_malloc(sizeof(*n));
    n->e = e;
    n->hash = h;
    n->mark = s->gen;
    n->next = NULL;
    *pp = n;
    s->len++;
    s->stats.adds++;
    if (s->len > s->nbuckets)
        grow(s);
    if (s->h.on_add != NULL)
        s->h.on_add(s->h.data, &e->pub);
    return 0;
}

int gf_store_upsert(struct gf_store *s, const cJSON *obj)
{
    return upsert(s, obj);
}

int gf_store_remove(struct gf_store *s, const cJSON *obj)
{
    const char *ns, *name;
    if (obj_key(obj, &ns, &name) != 0)
        return -EINVAL;
    char key[512];
    make_key(key, sizeof(key), ns, name);
    struct node **pp = find(s, key, hash_key(key));
    if (*pp != NULL)
        unlink_node(s, pp);
    return 0;
}

void gf_store_replace_begin(struct gf_store *s)
{
    s->gen++;
}

int gf_store_replace_add(struct gf_store *s, const cJSON *obj)
{
    return upsert(s, obj);
}

void gf_store_replace_end(struct gf_store *s)
{
    for (size_t i = 0; i < s->nbuckets; i++) {
        struct node **pp = &s->buckets[i];
        while (*pp != NULL) {
            if ((*pp)->mark != s->gen)
                unlink_node(s, pp);
            else
                pp = &(*pp)->next;
        }
    }
    s->synced = true;
}

const struct gf_store_entry *gf_store_get(const struct gf_store *s,
                                          const char *key)
{
    struct node *n = *find(s, key, hash_key(key));
    return n != NULL ? &n->e->pub : NULL;
}

int gf_store_foreach(const struct gf_store *s,
                     int (*fn)(void *data, const struct gf_store_entry *e),
                     void *data)
{
    for (size_t i = 0; i < s->nbuckets; i++) {
        for (struct node *n = s->buckets[i]; n != NULL; n = n->next) {
            int rc = fn(data, &n->e->pub);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

size_t gf_store_len(const struct gf_store *s)
{
    return s->len;
}

bool gf_store_has_synced(const struct gf_store *s)
{
    return s->synced;
}

void gf_store_stats(const struct gf_store *s, struct gf_store_stats *out)
{
    *out = s->stats;
}
