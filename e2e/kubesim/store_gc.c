/*
 * store_gc: garbage collection in the object store. Work is queued by
 * writes and run by dispatch once no event is pending: dependents of a
 * removed owner, the end of a foreground or orphaning deletion, and
 * namespace cleanup.
 */
#include "e2e/kubesim/store.h"

#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/json.h"
#include "e2e/kubesim/store_internal.h"

void gf__ks_st_gc_queue(struct gf_ks_store *st, enum gf__ks_st_gc_kind kind,
                        enum gf_ks_propagation prop, const char *arg)
{
    struct gf__ks_st_gcwork *g = gf_calloc(1, sizeof(*g));
    g->kind = kind;
    g->prop = prop;
    g->arg = gf_strdup(arg);
    if (st->gc_tail != NULL)
        st->gc_tail->next = g;
    else
        st->gc_head = g;
    st->gc_tail = g;
}

/* ---- garbage collection ---------------------------------------------- */

/* True when another owner of dependent d (not owner_uid) still exists. */
static bool other_owner_alive(const struct gf_ks_store *st, const cJSON *d,
                              const char *owner_uid)
{
    const cJSON *r;
    cJSON_ArrayForEach(r, gf_json_path(d, "metadata.ownerReferences"))
    {
        const char *u = gf_json_str(r, "uid");
        if (u == NULL || strcmp(u, owner_uid) == 0)
            continue;
        struct gf__ks_st_uidrec *rec = gf__ks_st_uid_find(st, u);
        if (rec != NULL && rec->e != NULL)
            return true;
    }
    return false;
}

static void gc_dependents(struct gf_ks_store *st, const char *owner_uid,
                          enum gf_ks_propagation prop)
{
    struct gf__ks_st_uidrec *u = gf__ks_st_uid_find(st, owner_uid);
    if (u == NULL)
        return;
    /* Collect first: deleting changes the dependency lists. */
    size_t n = 0, cap = 8;
    char **keys = gf_malloc(GF__KS_PTRS(cap));
    struct gf__ks_st_table **tabs = gf_malloc(GF__KS_PTRS(cap));
    for (struct gf__ks_st_dep *d = u->deps; d != NULL; d = d->next) {
        if (n == cap) {
            cap *= 2;
            keys = gf_realloc(keys, GF__KS_PTRS(cap));
            tabs = gf_realloc(tabs, GF__KS_PTRS(cap));
        }
        keys[n] = gf_strdup(d->e->key);
        tabs[n++] = d->e->tab;
    }
    for (size_t i = 0; i < n; i++) {
        struct gf__ks_st_entry *e = gf__ks_st_tab_find(tabs[i], keys[i]);
        if (e != NULL) {
            cJSON *j = gf_ks_obj_parse(e->obj);
            bool keep_it = other_owner_alive(st, j, owner_uid);
            cJSON_Delete(j);
            if (keep_it) {
                /* Another owner lives: only this reference goes. */
                gf__ks_st_drop_owner_ref(st, e, owner_uid);
            } else {
                bool gone;
                gf__ks_st_delete_entry(st, e,
                                       prop == GF_KS_PROP_FOREGROUND
                                           ? GF_KS_PROP_FOREGROUND
                                           : GF_KS_PROP_BACKGROUND,
                                       false, &gone);
            }
        }
        gf_free(keys[i]);
    }
    gf_free(keys);
    gf_free(tabs);
    /*
     * Dependents that only lost their reference (another owner lives) do
     * not go away, so nothing else would tell a foreground owner that it
     * has no dependents left.
     */
    if (prop == GF_KS_PROP_FOREGROUND)
        gf__ks_st_gc_queue(st, GF__KS_GC_FOREGROUND_DONE, GF_KS_PROP_DEFAULT,
                           owner_uid);
}

static void gc_foreground_done(struct gf_ks_store *st, const char *uid)
{
    struct gf__ks_st_uidrec *u = gf__ks_st_uid_find(st, uid);
    if (u == NULL || u->e == NULL || u->deps != NULL)
        return;
    struct gf__ks_st_entry *e = u->e;
    cJSON *j = gf_ks_obj_parse(e->obj);
    if (!gf__ks_st_has_finalizer(j, GF__KS_FG_FINALIZER) ||
        gf_json_path(j, "metadata.deletionTimestamp") == NULL) {
        cJSON_Delete(j);
        return;
    }
    cJSON *old = cJSON_Duplicate(j, true);
    gf__ks_st_remove_finalizer(j, GF__KS_FG_FINALIZER);
    if (!gf__ks_st_has_finalizers(j))
        gf__ks_st_remove_now(st, e, j, GF_KS_PROP_BACKGROUND);
    else
        gf__ks_st_replace_now(st, e, j, old);
    cJSON_Delete(old);
}

/* The end of an orphaning deletion: dependents let go, then the owner. */
static void gc_orphan(struct gf_ks_store *st, const char *uid)
{
    gf__ks_st_orphan_dependents(st, uid);
    struct gf__ks_st_uidrec *u = gf__ks_st_uid_find(st, uid);
    if (u == NULL || u->e == NULL)
        return;
    struct gf__ks_st_entry *e = u->e;
    cJSON *j = gf_ks_obj_parse(e->obj);
    if (!gf__ks_st_has_finalizer(j, GF__KS_ORPHAN_FINALIZER)) {
        cJSON_Delete(j);
        return;
    }
    cJSON *old = cJSON_Duplicate(j, true);
    gf__ks_st_remove_finalizer(j, GF__KS_ORPHAN_FINALIZER);
    if (!gf__ks_st_has_finalizers(j))
        gf__ks_st_remove_now(st, e, j, GF_KS_PROP_ORPHAN);
    else
        gf__ks_st_replace_now(st, e, j, old);
    cJSON_Delete(old);
}

static void gc_namespace(struct gf_ks_store *st, const char *ns)
{
    struct gf__ks_st_table *nt = gf__ks_st_find_table(st, "", "namespaces");
    struct gf__ks_st_entry *ne =
        nt != NULL ? gf__ks_st_lookup(st, nt, "", ns) : NULL;
    if (ne == NULL)
        return;
    size_t left = 0;
    for (struct gf__ks_st_table *tab = st->tables; tab != NULL;
         tab = tab->next) {
        if (!tab->t->namespaced)
            continue;
        char prefix[300];
        snprintf(prefix, sizeof(prefix), "%s/", ns);
        size_t pl = strlen(prefix);
        /* Collect keys first: deletion edits the table. */
        size_t n = 0;
        size_t len = gf_htab_len(&tab->map);
        char **keys = gf_malloc(GF__KS_PTRS(len ? len : 1));
        size_t pos = 0;
        const char *key;
        while (gf_htab_scan(&tab->map, &pos, &key, NULL))
            if (strncmp(key, prefix, pl) == 0)
                keys[n++] = gf_strdup(key);
        for (size_t i = 0; i < n; i++) {
            struct gf__ks_st_entry *e = gf__ks_st_tab_find(tab, keys[i]);
            if (e != NULL) {
                bool gone;
                gf__ks_st_delete_entry(st, e, GF_KS_PROP_BACKGROUND, false,
                                       &gone);
                left += !gone;
            }
            gf_free(keys[i]);
        }
        gf_free(keys);
    }
    if (left > 0)
        return; /* finalizers hold some; their removal re-queues us */
    ne = gf__ks_st_lookup(st, nt, "", ns);
    if (ne == NULL)
        return;
    cJSON *j = gf_ks_obj_parse(ne->obj);
    cJSON *spec = cJSON_GetObjectItemCaseSensitive(j, "spec");
    cJSON_DeleteItemFromObjectCaseSensitive(spec, "finalizers");
    if (gf__ks_st_has_finalizers(j)) {
        cJSON_Delete(j);
        return;
    }
    gf__ks_st_remove_now(st, ne, j, GF_KS_PROP_BACKGROUND);
}

void gf__ks_st_gc_run(struct gf_ks_store *st, struct gf__ks_st_gcwork *g)
{
    switch (g->kind) {
    case GF__KS_GC_DEPENDENTS:
        gc_dependents(st, g->arg, g->prop);
        break;
    case GF__KS_GC_FOREGROUND_DONE:
        gc_foreground_done(st, g->arg);
        break;
    case GF__KS_GC_NAMESPACE:
        gc_namespace(st, g->arg);
        break;
    case GF__KS_GC_ORPHAN:
        gc_orphan(st, g->arg);
        break;
    }
}
