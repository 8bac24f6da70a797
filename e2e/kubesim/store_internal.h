/*
 * store_internal: what the files of the object store (store*.c) share.
 *
 * Layout. Each registered type has a table: a map (common/htab) from
 * "namespace/name" to an entry that points at the object's current
 * immutable blob, plus a ring of recent events (the watch cache) and the
 * watches on that type. A uid index maps every uid to its entry and to
 * the entries that name it as an owner, so garbage collection never scans.
 *
 * Ordering. A write changes the table, appends to the watch cache and
 * queues one event. Events are delivered by gf__ks_st_dispatch(), which
 * runs only at the outermost level: writes made by observers while an
 * event is being delivered only queue theirs. Garbage collection work
 * (dependents of a removed owner, foreground completion, namespace
 * cleanup) is queued the same way and runs once the event queue is empty,
 * so every observer sees the owner's deletion before its dependents'.
 *
 * Files:
 *   - store.c: lifecycle (store new/free/restart), objects, types
 *     (register, unregister), the uid index and the tables;
 *   - store_watch.c: the event queue and its dispatch, the watch cache
 *     (ring), observers and watches (initial events, flow control);
 *   - store_read.c: get, foreach, dependents, list with continue tokens;
 *   - store_write.c: create, update, patch, delete, and the helpers that
 *     replace or remove an entry for them and for GC;
 *   - store_gc.c: the GC work queue: dependents, foreground completion,
 *     namespace cleanup.
 *
 * Everything here is loop-thread only and internal to the store.
 */
#ifndef GF_KS_STORE_INTERNAL_H
#define GF_KS_STORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/htab.h"
#include "common/log.h"
#include "common/rand.h"
#include "e2e/kubesim/select.h"
#include "e2e/kubesim/store.h"

#define GF__KS_FG_FINALIZER "foregroundDeletion"
#define GF__KS_ORPHAN_FINALIZER "orphan"
/* Object names: the API server's limit for DNS subdomains. */
#define GF__KS_NAME_MAX 253
#define GF__KS_KEY_MAX (2 * GF__KS_NAME_MAX + 2)
/*
 * Bytes for an array of n pointers. Spelled with void * because
 * clang-tidy reads sizeof(*p) on a pointer-to-pointer as a mistake; all
 * object pointers have one size on the platforms kubesim runs on.
 */
#define GF__KS_PTRS(n) ((n) * sizeof(void *))

struct gf__ks_st_table;

struct gf__ks_st_entry {
    struct gf__ks_st_table *tab;
    struct gf_ks_obj *obj; /* current version (a ref) */
    char *uid;             /* owned */
    char key[];            /* "namespace/name"; the table borrows it */
};

struct gf__ks_st_dep {
    struct gf__ks_st_dep *next;
    struct gf__ks_st_entry *e;
};

/* A uid: the entry that carries it (if any) and the entries it owns. */
struct gf__ks_st_uidrec {
    struct gf__ks_st_entry *e;
    struct gf__ks_st_dep *deps;
    char uid[]; /* the index borrows it */
};

struct gf__ks_st_cached_ev {
    enum gf_ks_ev_type type;
    struct gf_ks_obj *obj, *old; /* refs */
};

struct gf_ks_watch {
    struct gf_ks_watch *next;
    struct gf_ks_store *st;
    struct gf__ks_st_table *tab;
    char *ns; /* NULL = all */
    struct gf_ks_selector *label, *field;
    gf_ks_watch_cb cb;
    void *data;
    uint64_t last_rv; /* highest rv delivered */
    bool dead;
    /*
     * Flow control (gf_ks_watch_pause): a paused watch is sent nothing,
     * and marked behind when it misses an event; on resume, pump() sends
     * the rest of its initial events, then reads the watch cache from
     * last_rv on, until it is paused again or has caught up.
     */
    bool paused, behind, pumping;
    bool init_pending;      /* initial ADDED events still to send */
    bool init_bookmark;     /* a BOOKMARK follows them */
    struct gf_ks_list init; /* their snapshot (refs) */
    size_t init_pos;
    uint64_t init_rv;  /* the snapshot's resourceVersion */
    uint64_t start_rv; /* the version the watch began at */
};

struct gf__ks_st_table {
    struct gf__ks_st_table *next; /* registration order */
    struct gf_ks_rtype *t;
    struct gf_htab map; /* key -> struct gf__ks_st_entry */
    uint64_t write_rv;  /* the version of the type's latest change */
    struct gf__ks_st_cached_ev *ring;
    size_t ring_cap, ring_head, ring_len;
    size_t ring_max;       /* the watch cache size; ring_cap grows up to it */
    uint64_t compacted_rv; /* events up to here were dropped */
    struct gf_ks_watch *watches;
    bool dead;
};

struct gf_ks_observer {
    struct gf_ks_observer *next;
    struct gf__ks_st_table *tab; /* NULL = every type */
    uint64_t from_rv; /* sees only events after this (registration) */
    gf_ks_observer_fn fn;
    void *data;
    bool dead;
};

struct gf__ks_st_pending {
    struct gf__ks_st_pending *next;
    enum gf_ks_ev_type type;
    struct gf__ks_st_table *tab;
    struct gf_ks_obj *obj, *old; /* refs */
};

enum gf__ks_st_gc_kind {
    GF__KS_GC_DEPENDENTS,
    GF__KS_GC_FOREGROUND_DONE,
    GF__KS_GC_NAMESPACE,
    GF__KS_GC_ORPHAN /* orphan the dependents, then drop the finalizer */
};

struct gf__ks_st_gcwork {
    struct gf__ks_st_gcwork *next;
    enum gf__ks_st_gc_kind kind;
    enum gf_ks_propagation prop;
    char *arg; /* owner uid or namespace */
};

struct gf_ks_store {
    struct gf_clock *clock;
    char *cluster;
    struct gf_log_ctx lc;
    size_t watch_cache;
    struct gf_rand rand;
    uint64_t rv;
    struct gf__ks_st_table *tables, *dead_tables;
    struct gf_htab uids; /* uid -> struct gf__ks_st_uidrec */
    struct gf_ks_observer *observers;
    struct gf_ks_mutator *mutators; /* store_admit.c */
    struct gf__ks_st_pending *pq_head, *pq_tail;
    struct gf__ks_st_gcwork *gc_head, *gc_tail;
    bool dispatching;
    int depth; /* public write calls in progress */
    /*
     * Watch callbacks running outside dispatch (initial events, replay,
     * CLOSED): lists are being walked, so nothing may be freed yet.
     */
    int busy;
    uint64_t delivered_rv;
    struct gf_ks_obj **keep; /* outs kept alive for the caller */
    size_t nkeep, capkeep;
    size_t bytes;
    size_t nwatches;
};

/*
 * Runs the create mutators of t on obj (store_admit.c), in registration
 * order, after the store has set obj's metadata.
 */
void gf__ks_st_admit_create(struct gf_ks_store *st, const struct gf_ks_rtype *t,
                            cJSON *obj);
/* Frees every mutator (gf_ks_store_free). */
void gf__ks_st_mutators_free(struct gf_ks_store *st);

/* ---- small inline helpers ----------------------------------------------- */

/*
 * "namespace/name" into out (GF__KS_KEY_MAX bytes). Returns false when it does
 * not fit: such a key names no stored object (names are capped at
 * GF__KS_NAME_MAX on create), and a truncated key could name another.
 */
static inline bool gf__ks_st_make_key(char *out, const char *ns,
                                      const char *name)
{
    int n = snprintf(out, GF__KS_KEY_MAX, "%s/%s", ns != NULL ? ns : "", name);
    return n > 0 && n < GF__KS_KEY_MAX;
}

static inline size_t gf__ks_st_obj_bytes(const struct gf_ks_obj *o)
{
    return sizeof(*o) + o->len + strlen(o->ns) + strlen(o->name) + 3;
}

static inline struct gf__ks_st_uidrec *
gf__ks_st_uid_find(const struct gf_ks_store *st, const char *uid)
{
    return gf_htab_get_str(&st->uids, uid);
}

static inline struct gf__ks_st_entry *
gf__ks_st_tab_find(const struct gf__ks_st_table *tab, const char *key)
{
    return gf_htab_get_str(&tab->map, key);
}

/* ---- lifecycle: objects, types, the uid index, tables (store.c) ---------- */
struct gf_ks_obj *gf__ks_st_obj_new(struct gf__ks_st_table *tab,
                                    const char *json, size_t len, uint64_t rv,
                                    const char *ns, const char *name);

/* Keeps a returned-borrowed out alive until the next outermost write. */
void gf__ks_st_keep(struct gf_ks_store *st, struct gf_ks_obj *o);

void gf__ks_st_enter(struct gf_ks_store *st);

int gf__ks_st_leave(struct gf_ks_store *st, int rc);

struct gf__ks_st_table *gf__ks_st_find_table(const struct gf_ks_store *st,
                                             const char *group,
                                             const char *resource);

struct gf__ks_st_table *gf__ks_st_table_of(const struct gf_ks_store *st,
                                           const struct gf_ks_rtype *t);

void gf__ks_st_owners_link(struct gf_ks_store *st, struct gf__ks_st_entry *e,
                           const cJSON *obj, bool add);

struct gf__ks_st_entry *gf__ks_st_tab_insert(struct gf_ks_store *st,
                                             struct gf__ks_st_table *tab,
                                             const char *key, const char *uid);

void gf__ks_st_tab_remove(struct gf_ks_store *st, struct gf__ks_st_entry *e);

void gf__ks_st_table_free(struct gf_ks_store *st, struct gf__ks_st_table *tab);

/* ---- events, the watch cache and watches (store_watch.c) ----------------- */
void gf__ks_st_ring_clear(struct gf__ks_st_table *tab, uint64_t rv);

/* Records one change: watch cache now, delivery when dispatch runs. */
void gf__ks_st_emit(struct gf_ks_store *st, struct gf__ks_st_table *tab,
                    enum gf_ks_ev_type type, struct gf_ks_obj *obj,
                    struct gf_ks_obj *old);

void gf__ks_st_watch_free(struct gf_ks_store *st, struct gf_ks_watch *w);

/* Frees what callbacks marked dead, once nothing is being delivered. */
void gf__ks_st_sweep(struct gf_ks_store *st);

void gf__ks_st_dispatch(struct gf_ks_store *st);

/* Frees what was marked dead, unless a walk of the lists is under way. */
void gf__ks_st_maybe_sweep(struct gf_ks_store *st);

/*
 * Ends every watch of a table with CLOSED (err). A callback may stop
 * other watches: they are only marked, and freed after the walk.
 */
void gf__ks_st_close_watches(struct gf_ks_store *st,
                             struct gf__ks_st_table *tab, int err);

/* ---- writes (store_write.c) ---------------------------------------------- */
bool gf__ks_st_has_finalizer(const cJSON *obj, const char *f);

bool gf__ks_st_has_finalizers(const cJSON *obj);

void gf__ks_st_remove_finalizer(cJSON *obj, const char *f);

/*
 * Removes an entry for good: obj is its final state (owned, gets a new
 * resourceVersion). Queues the DELETED event and the follow-up GC.
 */
struct gf_ks_obj *gf__ks_st_remove_now(struct gf_ks_store *st,
                                       struct gf__ks_st_entry *e, cJSON *obj,
                                       enum gf_ks_propagation prop);

/* Stores obj (owned) as the new state of e and queues MODIFIED. */
struct gf_ks_obj *gf__ks_st_replace_now(struct gf_ks_store *st,
                                        struct gf__ks_st_entry *e, cJSON *obj,
                                        const cJSON *old_json);

struct gf__ks_st_entry *gf__ks_st_lookup(const struct gf_ks_store *st,
                                         struct gf__ks_st_table *tab,
                                         const char *ns, const char *name);

/* Removes d's ownerReference to owner_uid (one MODIFIED event). */
void gf__ks_st_drop_owner_ref(struct gf_ks_store *st, struct gf__ks_st_entry *d,
                              const char *owner_uid);

/*
 * Deletes e, or marks it deleted when finalizers hold it. requested: a
 * client's delete, which the API server marks with the finalizer of its
 * policy (foregroundDeletion, orphan) for the collector to finish; the
 * collector's own deletions mark only what has dependents to wait for.
 */
struct gf_ks_obj *gf__ks_st_delete_entry(struct gf_ks_store *st,
                                         struct gf__ks_st_entry *e,
                                         enum gf_ks_propagation prop,
                                         bool requested, bool *gone);
/* Orphans the dependents of owner_uid (drops their references to it). */
void gf__ks_st_orphan_dependents(struct gf_ks_store *st, const char *owner_uid);

/* ---- garbage collection (store_gc.c) ------------------------------------- */
void gf__ks_st_gc_queue(struct gf_ks_store *st, enum gf__ks_st_gc_kind kind,
                        enum gf_ks_propagation prop, const char *arg);

void gf__ks_st_gc_run(struct gf_ks_store *st, struct gf__ks_st_gcwork *g);

#endif
