/*
 * list: an intrusive doubly-linked list, in the spirit of libuv's queue.h.
 *
 * A struct that goes on a list embeds a struct gf_list link and is reached
 * from it with GF_LIST_ENTRY (container_of). The list itself is a
 * struct gf_list head, circular through the head, so insertion and removal
 * are O(1) and never test for the ends: this is the one place the project
 * unlinks prev/next by hand.
 *
 * Two choices differ from queue.h, for how the project holds its lists:
 * - A zeroed head is an empty list (structs are gf_calloc'ed, and a map
 *   or a buffer is empty when zeroed too); it is made circular on the
 *   first insert.
 * - A removed link points at itself, so gf_list_linked() tells whether an
 *   element is on a list, and removing twice is harmless.
 *
 * gf_list_first and gf_list_next return NULL at the end, so a loop reads
 * like the NULL-terminated lists it replaces. To remove the current element
 * while walking, take the next one first (GF_LIST_FOREACH_SAFE).
 */
#ifndef GF_COMMON_LIST_H
#define GF_COMMON_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct gf_list {
    struct gf_list *next, *prev;
};

/* The struct of type that embeds member at ptr. */
#define GF_LIST_ENTRY(ptr, type, member)                                       \
    ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

static inline void gf_list_init(struct gf_list *h)
{
    h->next = h->prev = h;
}

static inline bool gf_list_empty(const struct gf_list *h)
{
    return h->next == NULL || h->next == h;
}

/* Whether link n is on a list (false when zeroed or removed). */
static inline bool gf_list_linked(const struct gf_list *n)
{
    return n->next != NULL && n->next != n;
}

static inline void gf__list_link(struct gf_list *prev, struct gf_list *n,
                                 struct gf_list *next)
{
    n->prev = prev;
    n->next = next;
    prev->next = n;
    next->prev = n;
}

static inline void gf_list_push_front(struct gf_list *h, struct gf_list *n)
{
    if (h->next == NULL)
        gf_list_init(h);
    gf__list_link(h, n, h->next);
}

static inline void gf_list_push_back(struct gf_list *h, struct gf_list *n)
{
    if (h->next == NULL)
        gf_list_init(h);
    gf__list_link(h->prev, n, h);
}

/* Unlinks n from its list; harmless when n is not on one. */
static inline void gf_list_remove(struct gf_list *n)
{
    if (gf_list_linked(n)) {
        n->prev->next = n->next;
        n->next->prev = n->prev;
    }
    n->next = n->prev = n;
}

/* The first element of h, or NULL when empty. */
static inline struct gf_list *gf_list_first(const struct gf_list *h)
{
    return gf_list_empty(h) ? NULL : h->next;
}

/* The element after n on list h, or NULL at the end. */
static inline struct gf_list *gf_list_next(const struct gf_list *h,
                                           const struct gf_list *n)
{
    return n->next == h ? NULL : n->next;
}

/* Walks h with pos; the body may remove (or free) pos, not other elements. */
#define GF_LIST_FOREACH_SAFE(pos, tmp, h)                                      \
    for ((pos) = gf_list_first(h),                                             \
        (tmp) = (pos) != NULL ? gf_list_next((h), (pos)) : NULL;               \
         (pos) != NULL; (pos) = (tmp),                                         \
        (tmp) = (pos) != NULL ? gf_list_next((h), (pos)) : NULL)

#endif
