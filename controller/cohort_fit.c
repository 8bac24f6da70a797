/*
 * cohort_fit: the fenced agent's per-cohort rule as one pure function
 * (controller/cohort_fit.h). It is apart from fence.c because it reads
 * quota and admissions, not heartbeats and marks, and because its table
 * of cases is best tested on its own.
 */
#include "controller/cohort_fit.h"

#include <stdint.h>
#include <string.h>

#include "common/alloc.h"
#include "common/htab.h"

/* One flavor x resource of a cohort's grants, and its sums. */
struct cell {
    const char *flavor, *resource;
    int64_t nominal, used;
};

struct cohort {
    const char *name, *lease;
    struct cell *cells;
    size_t n_cells;
};

static bool same(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

static int64_t amount_of(const struct gf_fit_amount *v, size_t n,
                         const struct cell *c)
{
    int64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        if (same(v[i].flavor, c->flavor) && same(v[i].resource, c->resource))
            sum += v[i].milli;
    return sum;
}

static void add_cell(struct cohort *co, const struct gf_fit_amount *a)
{
    for (size_t i = 0; i < co->n_cells; i++)
        if (same(co->cells[i].flavor, a->flavor) &&
            same(co->cells[i].resource, a->resource))
            return;
    co->cells[co->n_cells++] =
        (struct cell){.flavor = a->flavor, .resource = a->resource};
}

/*
 * The cohort of grant g, if g is the first grant of it in the input: its
 * cells (every flavor x resource any of its reverted grants covers) and
 * the lease of its grant with the smallest name, so that the choice does
 * not depend on the order of the input. False when an earlier grant
 * already stood for this cohort.
 */
static bool cohort_of(const struct gf_fit_cq *cqs, size_t n_cqs, size_t g,
                      struct cohort *co)
{
    const char *name = cqs[g].cohort;
    size_t cap = 0;
    for (size_t i = 0; i < n_cqs; i++) {
        if (cqs[i].lease == NULL || !same(cqs[i].cohort, name))
            continue;
        if (i < g)
            return false;
        cap += cqs[i].n_nominal;
    }
    *co = (struct cohort){.name = name, .lease = cqs[g].lease};
    co->cells = gf_calloc(cap + 1, sizeof(*co->cells));
    const char *first = cqs[g].name;
    for (size_t i = 0; i < n_cqs; i++) {
        if (cqs[i].lease == NULL || !same(cqs[i].cohort, name))
            continue;
        if (cqs[i].name != NULL && first != NULL &&
            strcmp(cqs[i].name, first) < 0) {
            first = cqs[i].name;
            co->lease = cqs[i].lease;
        }
        for (size_t k = 0; k < cqs[i].n_nominal; k++)
            add_cell(co, &cqs[i].nominal[k]);
    }
    for (size_t i = 0; i < n_cqs; i++)
        if (same(cqs[i].cohort, name))
            for (size_t c = 0; c < co->n_cells; c++)
                co->cells[c].nominal +=
                    amount_of(cqs[i].nominal, cqs[i].n_nominal, &co->cells[c]);
    return true;
}

/* Whether w uses any cell of co that is over its quota. */
static const struct cell *over_cell(const struct cohort *co,
                                    const struct gf_fit_wl *w)
{
    for (size_t c = 0; c < co->n_cells; c++)
        if (co->cells[c].used > co->cells[c].nominal &&
            (w == NULL || amount_of(w->uses, w->n_uses, &co->cells[c]) > 0))
            return &co->cells[c];
    return NULL;
}

/* Newer admission first; ties by key, the larger first. */
static bool newer(const struct gf_fit_wl *a, const struct gf_fit_wl *b)
{
    if (a->admitted_ms != b->admitted_ms)
        return a->admitted_ms > b->admitted_ms;
    return strcmp(a->key != NULL ? a->key : "", b->key != NULL ? b->key : "") >
           0;
}

static size_t fit_cohort(struct cohort *co, const struct gf_fit_wl *wls,
                         size_t n_wls, const bool *in, bool *stopped,
                         struct gf_fit_stop *out)
{
    for (size_t i = 0; i < n_wls; i++)
        if (in[i] && !wls[i].leaving)
            for (size_t c = 0; c < co->n_cells; c++)
                co->cells[c].used +=
                    amount_of(wls[i].uses, wls[i].n_uses, &co->cells[c]);
    size_t n = 0;
    const struct cell *over;
    while ((over = over_cell(co, NULL)) != NULL) {
        size_t best = SIZE_MAX;
        const struct cell *why = NULL;
        for (size_t i = 0; i < n_wls; i++) {
            const struct cell *c;
            if (!in[i] || wls[i].leaving || wls[i].keep || stopped[i] ||
                (c = over_cell(co, &wls[i])) == NULL)
                continue;
            if (best == SIZE_MAX || newer(&wls[i], &wls[best])) {
                best = i;
                why = c;
            }
        }
        if (best == SIZE_MAX)
            break; /* only what may not be stopped is left */
        out[n++] = (struct gf_fit_stop){.wl = best,
                                        .cohort = co->name,
                                        .lease = co->lease,
                                        .flavor = why->flavor,
                                        .resource = why->resource,
                                        .used_milli = why->used,
                                        .nominal_milli = why->nominal};
        stopped[best] = true;
        for (size_t c = 0; c < co->n_cells; c++)
            co->cells[c].used -=
                amount_of(wls[best].uses, wls[best].n_uses, &co->cells[c]);
    }
    return n;
}

size_t gf_fit_plan(const struct gf_fit_cq *cqs, size_t n_cqs,
                   const struct gf_fit_wl *wls, size_t n_wls,
                   struct gf_fit_stop *out)
{
    /* ClusterQueue name -> index + 1: a Workload's cohort is its
     * admission's queue's. */
    struct gf_htab by_name;
    gf_htab_init(&by_name, GF_HTAB_BORROW_KEYS);
    for (size_t i = 0; i < n_cqs; i++)
        if (cqs[i].name != NULL)
            gf_htab_put_str(&by_name, cqs[i].name, (void *)(uintptr_t)(i + 1));
    bool *in = gf_calloc(n_wls + 1, sizeof(*in));
    bool *stopped = gf_calloc(n_wls + 1, sizeof(*stopped));
    size_t n = 0;
    for (size_t g = 0; g < n_cqs; g++) {
        struct cohort co;
        if (cqs[g].lease == NULL || cqs[g].cohort == NULL ||
            !cohort_of(cqs, n_cqs, g, &co))
            continue;
        for (size_t i = 0; i < n_wls; i++) {
            uintptr_t q = wls[i].cq != NULL
                              ? (uintptr_t)gf_htab_get_str(&by_name, wls[i].cq)
                              : 0;
            in[i] = q > 0 && same(cqs[q - 1].cohort, co.name);
        }
        n += fit_cohort(&co, wls, n_wls, in, stopped, out + n);
        gf_free(co.cells);
    }
    gf_free(stopped);
    gf_free(in);
    gf_htab_free(&by_name);
    return n;
}
