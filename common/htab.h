/*
 * htab: the one hash map of the project, keyed by byte strings.
 *
 * Open addressing with linear probing, so a probe sequence stays in one or
 * two cache lines, and backward-shift deletion (Knuth 6.4, algorithm R), so
 * the table never fills with tombstones: a store that sees millions of
 * objects come and go never degrades. The load factor stays at or below
 * 1/2; the table never shrinks. A slot is 24 bytes.
 *
 * Keys. A table either owns copies of its keys (GF_HTAB_OWN_KEYS, the
 * default of a zeroed table; each copy carries a NUL after its klen bytes,
 * so keys built from C strings stay C strings) or borrows them
 * (GF_HTAB_BORROW_KEYS): the key bytes then live inside the value, which
 * saves one allocation and one copy per object, and must stay valid until
 * the entry is deleted or its value replaced. gf_htab_put on a borrowing
 * table stores the new key pointer along with the new value, because the
 * key usually lives in the value being swapped in.
 *
 * Values are never owned: the table never frees them (gf_htab_free_all
 * calls a hook the caller gives). NULL values are allowed, but then
 * gf_htab_get cannot tell them from absence.
 *
 * Hashing. gf_hash is 64-bit FNV-1a followed by MurmurHash3's fmix64
 * finaliser. FNV alone is weak in its low bits for short keys, and the slot
 * index is taken from the low bits; the finaliser spreads every input bit
 * over them. The function is stable: the same bytes give the same value in
 * every process and build (it is not seeded), so a figure measured today
 * is reproducible tomorrow. Keys come from our own members' API servers
 * and from policy files, not from anonymous clients; a table fed by
 * untrusted keys would need a seeded hash.
 *
 * Iteration visits every live entry once, in an order that depends on
 * insertion history: nothing that must be deterministic may depend on it
 * (callers sort what they collect). While an iteration is live, gf_htab_del
 * of ANY entry (the current one or another) is safe: the slot is left as a
 * hole that lookups skip, and the holes are closed when the last live
 * iteration ends. Inserting during an iteration could grow the table and
 * is a programmer error (GF_BUG_ON). An iteration ends when gf_htab_next
 * returns false; a loop that stops early calls gf_htab_iter_end.
 *
 * Loop thread only, like the rest of gpufed.
 */
#ifndef GF_COMMON_HTAB_H
#define GF_COMMON_HTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum gf_htab_keys { GF_HTAB_OWN_KEYS = 0, GF_HTAB_BORROW_KEYS = 1 };

struct gf_htab_slot {
    char *key;     /* NULL: empty; a marker: deleted while iterating */
    void *val;     /* borrowed: the table never frees it */
    uint32_t hash; /* low 32 bits of gf_hash(key) */
    uint32_t klen;
};

struct gf_htab {
    struct gf_htab_slot *slots; /* owned; cap entries */
    size_t cap;                 /* 0 or a power of two */
    size_t len;                 /* live entries */
    size_t holes;               /* deleted while iterating, not yet closed */
    unsigned iters;             /* live iterations */
    enum gf_htab_keys keys;
};

struct gf_htab_iter {
    const struct gf_htab *t;
    size_t pos;
    bool live; /* counted in t->iters */
};

/* A zeroed struct is an empty table that owns its keys. */
void gf_htab_init(struct gf_htab *t, enum gf_htab_keys keys);
/* Frees owned keys and the slot array, never the values. Accepts a zeroed
 * table; the table is empty (and reusable) afterwards. */
void gf_htab_free(struct gf_htab *t);
/* Calls free_val on every value, then gf_htab_free. */
void gf_htab_free_all(struct gf_htab *t, void (*free_val)(void *val));

/* Returned-borrowed value, or NULL when absent. */
void *gf_htab_get(const struct gf_htab *t, const void *key, size_t klen);
/*
 * Inserts key with val, or replaces the value of an existing key. Returns
 * the previous value (NULL when the key was new) so the caller can free
 * it. Keys are at most UINT32_MAX bytes.
 */
void *gf_htab_put(struct gf_htab *t, const void *key, size_t klen, void *val);
/* Removes key; returns its value (now the caller's), or NULL when absent. */
void *gf_htab_del(struct gf_htab *t, const void *key, size_t klen);

static inline size_t gf_htab_len(const struct gf_htab *t)
{
    return t->len;
}

/* The same calls for NUL-terminated keys (the NUL is not part of the key). */
static inline void *gf_htab_get_str(const struct gf_htab *t, const char *key)
{
    return gf_htab_get(t, key, strlen(key));
}
static inline void *gf_htab_put_str(struct gf_htab *t, const char *key,
                                    void *val)
{
    return gf_htab_put(t, key, strlen(key), val);
}
static inline void *gf_htab_del_str(struct gf_htab *t, const char *key)
{
    return gf_htab_del(t, key, strlen(key));
}

/*
 * Iteration:
 *
 *     struct gf_htab_iter it;
 *     const char *key;
 *     void *val;
 *     gf_htab_iter_init(&it, &t);
 *     while (gf_htab_next(&it, &key, NULL, &val))
 *         ...;
 *
 * key, klen and val may be NULL. A key is borrowed until its entry is
 * deleted. The iteration is counted in the table (bookkeeping, not content,
 * so a const table can be iterated) until gf_htab_next returns false or
 * gf_htab_iter_end is called.
 */
void gf_htab_iter_init(struct gf_htab_iter *it, const struct gf_htab *t);
bool gf_htab_next(struct gf_htab_iter *it, const char **key, size_t *klen,
                  void **val);
/* Ends an iteration early; harmless after gf_htab_next returned false. */
void gf_htab_iter_end(struct gf_htab_iter *it);

/*
 * A read-only scan, for loops that neither delete nor insert (and may
 * return from the middle without ending anything): start with *pos = 0;
 * returns false at the end. key and val may be NULL.
 */
bool gf_htab_scan(const struct gf_htab *t, size_t *pos, const char **key,
                  void **val);

/* The table's hash (see above); stable across processes and builds. */
uint64_t gf_hash(const void *key, size_t len);

#endif
