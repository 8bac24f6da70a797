/*
 * htab: see htab.h for the design and its reasons.
 */
#include "common/htab.h"

#include "common/alloc.h"
#include "common/err.h"

/* A slot deleted while an iteration was live: lookups step over it. Its
 * address is never a real key. */
static char hole_marker;
#define HOLE (&hole_marker)

uint64_t gf_hash(const void *key, size_t len)
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

static bool live(const struct gf_htab_slot *s)
{
    return s->key != NULL && s->key != HOLE;
}

void gf_htab_init(struct gf_htab *t, enum gf_htab_keys keys)
{
    memset(t, 0, sizeof(*t));
    t->keys = keys;
}

void gf_htab_free(struct gf_htab *t)
{
    GF_BUG_ON(t->iters != 0);
    if (t->keys == GF_HTAB_OWN_KEYS)
        for (size_t i = 0; i < t->cap; i++)
            if (live(&t->slots[i]))
                gf_free(t->slots[i].key);
    GF_FREE(t->slots);
    t->cap = t->len = t->holes = 0;
}

void gf_htab_free_all(struct gf_htab *t, void (*free_val)(void *val))
{
    for (size_t i = 0; i < t->cap; i++)
        if (live(&t->slots[i]))
            free_val(t->slots[i].val);
    gf_htab_free(t);
}

/* The slot holding key, or the empty slot where it would go. */
static size_t find(const struct gf_htab *t, const void *key, size_t klen,
                   uint32_t h)
{
    size_t mask = t->cap - 1;
    size_t i = h & mask;
    for (;;) {
        const struct gf_htab_slot *s = &t->slots[i];
        if (s->key == NULL)
            return i;
        if (s->key != HOLE && s->hash == h && s->klen == klen &&
            memcmp(s->key, key, klen) == 0)
            return i;
        i = (i + 1) & mask;
    }
}

/* Rehashes the live entries into cap slots (holes are dropped). */
static void rehash(struct gf_htab *t, size_t cap)
{
    struct gf_htab_slot *old = t->slots;
    size_t ocap = t->cap;
    t->slots = gf_calloc(cap, sizeof(*t->slots));
    t->cap = cap;
    t->holes = 0;
    for (size_t i = 0; i < ocap; i++) {
        if (!live(&old[i]))
            continue;
        size_t mask = cap - 1;
        size_t j = old[i].hash & mask;
        while (t->slots[j].key != NULL)
            j = (j + 1) & mask;
        t->slots[j] = old[i];
    }
    gf_free(old);
}

void *gf_htab_get(const struct gf_htab *t, const void *key, size_t klen)
{
    if (t->len == 0)
        return NULL;
    size_t i = find(t, key, klen, (uint32_t)gf_hash(key, klen));
    return t->slots[i].key != NULL ? t->slots[i].val : NULL;
}

void *gf_htab_put(struct gf_htab *t, const void *key, size_t klen, void *val)
{
    GF_BUG_ON(klen > UINT32_MAX);
    uint32_t h = (uint32_t)gf_hash(key, klen);
    if (t->len > 0) {
        struct gf_htab_slot *s = &t->slots[find(t, key, klen, h)];
        if (s->key != NULL) {
            void *old = s->val;
            s->val = val;
            if (t->keys == GF_HTAB_BORROW_KEYS)
                s->key = (char *)key;
            return old;
        }
    }
    /* A new key: growing would move entries under a live iteration. */
    GF_BUG_ON(t->iters != 0);
    if ((t->len + 1) * 2 > t->cap)
        rehash(t, t->cap == 0 ? 16 : t->cap * 2);
    struct gf_htab_slot *s = &t->slots[find(t, key, klen, h)];
    if (t->keys == GF_HTAB_BORROW_KEYS) {
        s->key = (char *)key;
    } else {
        s->key = gf_malloc(klen + 1);
        memcpy(s->key, key, klen);
        s->key[klen] = '\0';
    }
    s->klen = (uint32_t)klen;
    s->hash = h;
    s->val = val;
    t->len++;
    return NULL;
}

/* Backward shift (algorithm R): after emptying slot i, move every later
 * entry of its cluster that may sit in the hole's place, so lookups never
 * stop at a false gap. No holes exist when this runs. */
static void shift_back(struct gf_htab *t, size_t i)
{
    size_t mask = t->cap - 1;
    size_t hole = i;
    for (size_t j = (i + 1) & mask; t->slots[j].key != NULL;
         j = (j + 1) & mask) {
        size_t home = t->slots[j].hash & mask;
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
}

void *gf_htab_del(struct gf_htab *t, const void *key, size_t klen)
{
    if (t->len == 0)
        return NULL;
    size_t i = find(t, key, klen, (uint32_t)gf_hash(key, klen));
    struct gf_htab_slot *s = &t->slots[i];
    if (s->key == NULL)
        return NULL;
    void *val = s->val;
    if (t->keys == GF_HTAB_OWN_KEYS)
        gf_free(s->key);
    s->val = NULL;
    t->len--;
    if (t->iters > 0) {
        /* Shifting would move an entry the iteration has not seen yet
         * behind its cursor: leave a hole and close it at the end. */
        s->key = HOLE;
        t->holes++;
        return val;
    }
    s->key = NULL;
    shift_back(t, i);
    return val;
}

void gf_htab_iter_init(struct gf_htab_iter *it, const struct gf_htab *t)
{
    it->t = t;
    it->pos = 0;
    it->live = true;
    /* The count is bookkeeping, not content: see htab.h. */
    ((struct gf_htab *)t)->iters++;
}

void gf_htab_iter_end(struct gf_htab_iter *it)
{
    if (!it->live)
        return;
    it->live = false;
    struct gf_htab *t = (struct gf_htab *)it->t;
    GF_BUG_ON(t->iters == 0);
    if (--t->iters == 0 && t->holes > 0)
        rehash(t, t->cap);
}

bool gf_htab_scan(const struct gf_htab *t, size_t *pos, const char **key,
                  void **val)
{
    for (; *pos < t->cap; (*pos)++) {
        const struct gf_htab_slot *s = &t->slots[*pos];
        if (!live(s))
            continue;
        if (key != NULL)
            *key = s->key;
        if (val != NULL)
            *val = s->val;
        (*pos)++;
        return true;
    }
    return false;
}

bool gf_htab_next(struct gf_htab_iter *it, const char **key, size_t *klen,
                  void **val)
{
    if (!it->live)
        return false;
    const char *k;
    if (gf_htab_scan(it->t, &it->pos, &k, val)) {
        if (key != NULL)
            *key = k;
        if (klen != NULL)
            *klen = it->t->slots[it->pos - 1].klen;
        return true;
    }
    gf_htab_iter_end(it);
    return false;
}
