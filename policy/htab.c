/*
 * htab: the open-addressing hash table behind every ledger lookup.
 *
 * Linear probing keeps a probe sequence in one or two cache lines, and
 * backward-shift deletion (Knuth 6.4, algorithm R) keeps the table free of
 * tombstones, so a ledger that sees millions of Workloads come and go
 * never degrades. The load factor stays at or below 1/2.
 */
#include "policy/internal.h"

#include <string.h>

#include "common/alloc.h"

uint64_t gf__hash(const void *key, size_t len)
{
    const unsigned char *p = key;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    /* FNV's low bits are weak for short keys; the finaliser mixes them
     * because the slot index is taken from the low bits. */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

size_t gf__key(char *out, size_t cap, const char *a, const char *b,
               const char *c, const char *d)
{
    const char *parts[4] = {a, b, c, d};
    size_t len = 0;
    for (int i = 0; i < 4 && parts[i] != NULL; i++) {
        size_t n = strlen(parts[i]);
        if (len + n + 1 > cap)
            return 0;
        memcpy(out + len, parts[i], n);
        len += n;
        out[len++] = '\0';
    }
    return len;
}

void gf__htab_init(struct gf__htab *t)
{
    t->slots = NULL;
    t->cap = 0;
    t->len = 0;
}

void gf__htab_free(struct gf__htab *t)
{
    for (size_t i = 0; i < t->cap; i++)
        gf_free(t->slots[i].key);
    GF_FREE(t->slots);
    t->cap = 0;
    t->len = 0;
}

static size_t find(const struct gf__htab *t, const void *key, size_t klen,
                   uint64_t h)
{
    size_t mask = t->cap - 1;
    size_t i = (size_t)h & mask;
    for (;;) {
        const struct gf__hslot *s = &t->slots[i];
        if (s->key == NULL)
            return i;
        if (s->hash == h && s->klen == klen && memcmp(s->key, key, klen) == 0)
            return i;
        i = (i + 1) & mask;
    }
}

static void grow(struct gf__htab *t)
{
    size_t ncap = t->cap == 0 ? 16 : t->cap * 2;
    struct gf__hslot *old = t->slots;
    size_t ocap = t->cap;
    t->slots = gf_calloc(ncap, sizeof(*t->slots));
    t->cap = ncap;
    for (size_t i = 0; i < ocap; i++) {
        if (old[i].key == NULL)
            continue;
        size_t j = find(t, old[i].key, old[i].klen, old[i].hash);
        t->slots[j] = old[i];
    }
    gf_free(old);
}

void *gf__htab_get(const struct gf__htab *t, const void *key, size_t klen)
{
    if (t->len == 0)
        return NULL;
    size_t i = find(t, key, klen, gf__hash(key, klen));
    return t->slots[i].key != NULL ? t->slots[i].val : NULL;
}

void *gf__htab_put(struct gf__htab *t, const void *key, size_t klen, void *val)
{
    if ((t->len + 1) * 2 > t->cap)
        grow(t);
    uint64_t h = gf__hash(key, klen);
    size_t i = find(t, key, klen, h);
    struct gf__hslot *s = &t->slots[i];
    if (s->key != NULL) {
        void *old = s->val;
        s->val = val;
        return old;
    }
    /* One extra byte so that keys built from C strings stay terminated. */
    s->key = gf_malloc(klen + 1);
    memcpy(s->key, key, klen);
    s->key[klen] = '\0';
    s->klen = klen;
    s->hash = h;
    s->val = val;
    t->len++;
    return NULL;
}

void *gf__htab_del(struct gf__htab *t, const void *key, size_t klen)
{
    if (t->len == 0)
        return NULL;
    size_t i = find(t, key, klen, gf__hash(key, klen));
    if (t->slots[i].key == NULL)
        return NULL;
    void *val = t->slots[i].val;
    gf_free(t->slots[i].key);
    t->slots[i].key = NULL;
    t->len--;
    /* Backward shift: move every following entry of the cluster that may
     * sit in the hole's place, so lookups never stop at a false gap. */
    size_t mask = t->cap - 1;
    size_t hole = i;
    for (size_t j = (i + 1) & mask; t->slots[j].key != NULL;
         j = (j + 1) & mask) {
        size_t home = (size_t)t->slots[j].hash & mask;
        /* Entry j may move to hole if home is not cyclically in
         * (hole, j]. */
        bool in_range =
            hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (in_range)
            continue;
        t->slots[hole] = t->slots[j];
        t->slots[j].key = NULL;
        hole = j;
    }
    return val;
}
