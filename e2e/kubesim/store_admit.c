/*
 * store_admit: the store's create mutators (store.h), the place where a
 * registry's PrepareForCreate and a mutating admission webhook change a
 * new object before it is stored.
 *
 * Doing this inside the store's create, rather than as a second write
 * after it, is what makes the create's answer, the stored object and the
 * ADDED event agree, as they do on a real API server: a client that
 * creates a queued Job sees `suspend: true` in the answer, and no watcher
 * ever sees it running first.
 */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "e2e/kubesim/store_internal.h"

struct gf_ks_mutator {
    struct gf_ks_mutator *next;
    char *gr; /* "group/resource", as struct gf_ks_rtype's gr */
    gf_ks_mutator_fn fn;
    void *data;
};

struct gf_ks_mutator *gf_ks_store_mutate(struct gf_ks_store *st,
                                         const char *group,
                                         const char *resource,
                                         gf_ks_mutator_fn fn, void *data)
{
    struct gf_ks_mutator *m = gf_calloc(1, sizeof(*m));
    size_t n = strlen(group) + strlen(resource) + 2;
    m->gr = gf_malloc(n);
    /* The registry key's form: "/jobs" would be the core group. */
    snprintf(m->gr, n, "%s/%s", group, resource);
    m->fn = fn;
    m->data = data;
    struct gf_ks_mutator **pp = &st->mutators;
    while (*pp != NULL)
        pp = &(*pp)->next;
    *pp = m;
    return m;
}

static void mutator_free(struct gf_ks_mutator *m)
{
    gf_free(m->gr);
    gf_free(m);
}

void gf_ks_store_unmutate(struct gf_ks_store *st, struct gf_ks_mutator *m)
{
    if (m == NULL)
        return;
    for (struct gf_ks_mutator **pp = &st->mutators; *pp != NULL;
         pp = &(*pp)->next)
        if (*pp == m) {
            *pp = m->next;
            mutator_free(m);
            return;
        }
}

void gf__ks_st_admit_create(struct gf_ks_store *st, const struct gf_ks_rtype *t,
                            cJSON *obj)
{
    for (struct gf_ks_mutator *m = st->mutators; m != NULL; m = m->next)
        if (strcmp(m->gr, t->gr) == 0)
            m->fn(m->data, t, obj);
}

void gf__ks_st_mutators_free(struct gf_ks_store *st)
{
    while (st->mutators != NULL) {
        struct gf_ks_mutator *m = st->mutators;
        st->mutators = m->next;
        mutator_free(m);
    }
}
