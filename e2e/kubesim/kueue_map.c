/*
 * kueue_map: see kueue_map.h. The load factor (tombstones included) stays
 * under 3/4, so a probe sequence always ends at an empty slot.
 */
#include "e2e/kubesim/kueue_map.h"

#include <stdint.h>
#include <string.h>

#include "common/alloc.h"

/* A deleted slot: any non-NULL address that is never a real key. */
static char tomb_marker;
#define TOMB (&tomb_marker)

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

static bool live(const struct gf_ks_kmap_slot *s)
{
    return s->key != NULL && s->key != TOMB;
}

void gf_ks_kmap_free(struct gf_ks_kmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        if (live(&m->slots[i]))
            gf_free(m->slots[i].key);
    GF_FREE(m->slots);
    m->cap = m->n = m->used = 0;
}

void gf_ks_kmap_free_all(struct gf_ks_kmap *m, void (*free_val)(void *val))
{
    for (size_t i = 0; i < m->cap; i++)
        if (live(&m->slots[i]))
            free_val(m->slots[i].val);
    gf_ks_kmap_free(m);
}

/* The slot holding key, or SIZE_MAX. */
static size_t find(const struct gf_ks_kmap *m, const char *key)
{
    if (m->cap == 0)
        return SIZE_MAX;
    size_t mask = m->cap - 1;
    for (size_t i = hash(key) & mask;; i = (i + 1) & mask) {
        const struct gf_ks_kmap_slot *s = &m->slots[i];
        if (s->key == NULL)
            return SIZE_MAX;
        if (s->key != TOMB && strcmp(s->key, key) == 0)
            return i;
    }
}

void *gf_ks_kmap_get(const struct gf_ks_kmap *m, const char *key)
{
    size_t i = find(m, key);
    return i == SIZE_MAX ? NULL : m->slots[i].val;
}

/* Places an owned key known to be absent; the table has room. */
static void place(struct gf_ks_kmap *m, char *key, void *val)
{
    size_t mask = m->cap - 1;
    size_t i = hash(key) & mask;
    while (live(&m->slots[i]))
        i = (i + 1) & mask;
    if (m->slots[i].key == NULL)
        m->used++;
    m->slots[i].key = key;
    m->slots[i].val = val;
    m->n++;
}

static void grow(struct gf_ks_kmap *m)
{
    struct gf_ks_kmap_slot *old = m->slots;
    size_t old_cap = m->cap;
    /* Double only when live entries need it; else just drop tombstones. */
    size_t cap = old_cap == 0 ? 16 : old_cap;
    while ((m->n + 1) * 2 > cap)
        cap *= 2;
    m->slots = gf_calloc(cap, sizeof(*m->slots));
    m->cap = cap;
    m->n = m->used = 0;
    for (size_t i = 0; i < old_cap; i++)
        if (live(&old[i]))
            place(m, old[i].key, old[i].val);
    gf_free(old);
}

void *gf_ks_kmap_put(struct gf_ks_kmap *m, const char *key, void *val)
{
    size_t i = find(m, key);
    if (i != SIZE_MAX) {
        void *old = m->slots[i].val;
        m->slots[i].val = val;
        return old;
    }
    if ((m->used + 1) * 4 > m->cap * 3)
        grow(m);
    place(m, gf_strdup(key), val);
    return NULL;
}

void *gf_ks_kmap_del(struct gf_ks_kmap *m, const char *key)
{
    size_t i = find(m, key);
    if (i == SIZE_MAX)
        return NULL;
    void *val = m->slots[i].val;
    gf_free(m->slots[i].key);
    m->slots[i].key = TOMB;
    m->slots[i].val = NULL;
    m->n--;
    return val;
}

bool gf_ks_kmap_next(const struct gf_ks_kmap *m, size_t *pos, const char **key,
                     void **val)
{
    for (; *pos < m->cap; (*pos)++) {
        const struct gf_ks_kmap_slot *s = &m->slots[*pos];
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
