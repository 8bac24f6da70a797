/*
 * kueue_map: a small string-keyed hash map for Kueue-lite and the job
 * runner (workloads by "namespace/name", queues by name, pods by uid).
 *
 * Open addressing with linear probing and tombstones; FNV-1a hashing. The
 * map owns copies of its keys and never its values: callers free values
 * before gf_ks_kmap_free(). Values must not be NULL. Iteration order is
 * unspecified; inserting during an iteration may rehash and is not allowed
 * (deleting is). Loop thread only.
 */
#ifndef GF_KS_KUEUE_MAP_H
#define GF_KS_KUEUE_MAP_H

#include <stdbool.h>
#include <stddef.h>

struct gf_ks_kmap_slot {
    char *key; /* NULL = empty; GF_KS_KMAP_TOMB = deleted */
    void *val;
};

struct gf_ks_kmap {
    struct gf_ks_kmap_slot *slots;
    size_t cap;  /* a power of two, or 0 */
    size_t n;    /* live entries */
    size_t used; /* live entries plus tombstones */
};

/* A zeroed struct is an empty map. */
#define GF_KS_KMAP_INIT                                                        \
    {                                                                          \
        NULL, 0, 0, 0                                                          \
    }

/* Frees the keys and the table (not the values). Accepts a zeroed map. */
void gf_ks_kmap_free(struct gf_ks_kmap *m);
/* Frees every value with free_val, then the map. */
void gf_ks_kmap_free_all(struct gf_ks_kmap *m, void (*free_val)(void *val));
/* Returned-borrowed value, or NULL. */
void *gf_ks_kmap_get(const struct gf_ks_kmap *m, const char *key);
/* Inserts or replaces; key is copied. Returns the old value or NULL. */
void *gf_ks_kmap_put(struct gf_ks_kmap *m, const char *key, void *val);
/* Removes key; returns its value (now the caller's) or NULL. */
void *gf_ks_kmap_del(struct gf_ks_kmap *m, const char *key);
/*
 * Iterates: start with *pos = 0; returns false at the end. key and val
 * may be NULL. The key is borrowed until the entry is deleted.
 */
bool gf_ks_kmap_next(const struct gf_ks_kmap *m, size_t *pos, const char **key,
                     void **val);

#endif
