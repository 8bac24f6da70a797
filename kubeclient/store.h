/*
 * store: a cache of the objects of one resource in one cluster, keeping
 * only what the caller projects out of each object.
 *
 * The store never keeps whole JSON. For every object it calls the
 * caller's projection, which returns a small owned struct with just the
 * fields the caller needs (ClusterQueue quotas, Workload phase...); that
 * is what makes 2 KB per tracked object possible. Entries are immutable
 * and refcounted: an update swaps in a new entry, and whoever holds a ref
 * (a running reconcile) keeps seeing the old one until it unrefs it.
 *
 * Keys are "namespace/name" or "name" for cluster-scoped objects. The
 * store calls add/update/delete handlers after each change, and reports
 * has_synced once the first full list has been applied (gf_store_replace).
 *
 * Loop thread only.
 */
#ifndef GF_STORE_H
#define GF_STORE_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gf_store;

/* An immutable cached object. All fields read-only for users. */
struct gf_store_entry {
    unsigned refs;
    const char *key; /* "ns/name" or "name" */
    const char *ns;  /* "" for cluster-scoped */
    const char *name;
    const char *rv;  /* metadata.resourceVersion ("" if none) */
    const char *uid; /* metadata.uid ("" if none) */
    void *proj;      /* the caller's projection, owned by the entry */
};

/*
 * Projection: fills *out with a returned-owned value (freed by
 * free_proj) built from `obj` (borrowed for the call). Return 0 to keep
 * the object, a positive value to skip it (it is then treated as absent),
 * or a negative error (the object is skipped and the error counted).
 * NULL projection: entries carry proj == NULL (keys and RVs only).
 */
typedef int (*gf_store_project_fn)(void *data, const cJSON *obj, void **out);
typedef void (*gf_store_free_fn)(void *proj);

/* Change handlers; entries are borrowed for the call (ref to keep). */
struct gf_store_handlers {
    void (*on_add)(void *data, const struct gf_store_entry *e);
    void (*on_update)(void *data, const struct gf_store_entry *old,
                      const struct gf_store_entry *cur);
    void (*on_delete)(void *data, const struct gf_store_entry *old);
    void *data;
};

struct gf_store_opts {
    gf_store_project_fn project;
    gf_store_free_fn free_proj;
    void *project_data;
    const struct gf_store_handlers *handlers; /* copied; may be NULL */
};

/* Returned-owned; free with gf_store_free(). */
struct gf_store *gf_store_new(const struct gf_store_opts *o);
/* Drops the store's refs; entries still referenced stay alive. NULL ok. */
void gf_store_free(struct gf_store *s);

/*
 * Applies one watch event (ADDED, MODIFIED or DELETED) for `obj`.
 * ADDED/MODIFIED of an object whose RV equals the cached one is a no-op.
 * Returns 0, -EINVAL (no metadata.name) or the projection's error.
 */
int gf_store_upsert(struct gf_store *s, const cJSON *obj);
int gf_store_remove(struct gf_store *s, const cJSON *obj);

/*
 * Write-through (client-go's mutation cache): obj is what the API server
 * answered to one of our own writes (a create, update or patch). It is
 * applied, with the handlers, only when it is newer than everything the
 * list and watch have delivered (its resourceVersion above the highest
 * they brought, and above the cached object's), so the cache only ever
 * moves forward through versions the server really had; the watch event
 * for the same version is then a no-op, and a watch event older than it
 * (someone else's change before ours, still on its way) does not take
 * the object back. A writer reconciles on the result at once instead of
 * waiting for its watch. Returns 0 (applied), 1 (not newer: nothing
 * done), or an error as gf_store_upsert.
 */
int gf_store_write_through(struct gf_store *s, const cJSON *obj);

/*
 * Replacing the whole content after a LIST: begin, upsert every listed
 * object, end. gf_store_replace_end() deletes (with on_delete) every key
 * not upserted since begin and marks the store synced.
 */
void gf_store_replace_begin(struct gf_store *s);
int gf_store_replace_add(struct gf_store *s, const cJSON *obj);
void gf_store_replace_end(struct gf_store *s);

/* Returned-borrowed entry (ref it to keep it past this loop turn), or
 * NULL. */
const struct gf_store_entry *gf_store_get(const struct gf_store *s,
                                          const char *key);
/* Calls fn for each entry in unspecified order; fn must not modify the
 * store. A nonzero return stops and is returned. */
int gf_store_foreach(const struct gf_store *s,
                     int (*fn)(void *data, const struct gf_store_entry *e),
                     void *data);

const struct gf_store_entry *gf_store_entry_ref(const struct gf_store_entry *e);
/* Frees the entry (and its projection) when the last ref goes. NULL ok. */
void gf_store_entry_unref(const struct gf_store_entry *e);

size_t gf_store_len(const struct gf_store *s);
/* True once the first replace_end has run; stays true afterwards (as
 * client-go's HasSynced). Freshness is the reflector's health. */
bool gf_store_has_synced(const struct gf_store *s);

struct gf_store_stats {
    uint64_t adds, updates, deletes, skipped, proj_errors;
    uint64_t written; /* write-throughs applied */
};
void gf_store_stats(const struct gf_store *s, struct gf_store_stats *out);

#endif
