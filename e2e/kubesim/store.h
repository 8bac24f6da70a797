/*
 * store: the object store of one simulated cluster (etcd plus the generic
 * registry of an API server, without the HTTP).
 *
 * The store is type-agnostic. A resource type (struct gf_ks_rtype) is
 * registered once per group/resource; objects of that type are kept as
 * immutable, refcounted blobs of compact JSON (struct gf_ks_obj), keyed by
 * namespace and name. Compact JSON is the smallest faithful form of an
 * object that can be streamed to a client without re-serialising it; a
 * cJSON tree is several times larger (see docs/internals/kubesim-api.md).
 *
 * What the store does on every write, as the Kubernetes registry does:
 *   - one cluster-wide resourceVersion, incremented by every write;
 *   - uid and creationTimestamp on create, generateName expansion;
 *   - metadata.generation bumped when anything outside metadata and status
 *     changes (status.observedGeneration is never touched);
 *   - status ignored on main-resource writes and everything but status
 *     ignored on /status writes, for types with the status subresource;
 *   - optimistic concurrency: a write that carries metadata.resourceVersion
 *     fails with 409 Conflict unless it matches;
 *   - finalizers and deletionTimestamp; an object is removed when it is
 *     being deleted and its last finalizer goes;
 *   - ownerReferences garbage collection: background (dependents deleted
 *     after the owner), foreground (owner kept with the foregroundDeletion
 *     finalizer until its dependents are gone) and orphan;
 *   - a bounded watch cache per type (a ring of recent events); watching
 *     from a compacted resourceVersion fails with 410 Expired.
 *
 * Observers and watches. Every change becomes one event that is delivered,
 * in resourceVersion order, to every observer (in-process controllers) and
 * every matching watch. Delivery is synchronous but never re-entrant: a
 * write made from inside a callback is queued and delivered after the
 * current event has reached everyone, so all parties see one total order.
 *
 * Writes are made as the system: the store does no authentication or
 * authorization (the API layer does, before calling it). The store does not
 * validate against schemas either; api.c does that for client writes.
 *
 * Ownership: the store owns its types, objects, observers and watches.
 * Objects handed out are returned-borrowed (valid until the store next
 * changes) unless the caller takes a reference with gf_ks_obj_ref().
 *
 * Loop thread only.
 */
#ifndef GF_KS_STORE_H
#define GF_KS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "common/clock.h"
#include "e2e/kubesim/status.h"

struct gf_ks_store;
struct gf_ks_selector;
struct gf_ks_schema;

/* ---- resource types ---------------------------------------------------- */

/* One served version of a type (CRDs may serve several). */
struct gf_ks_version {
    char *name;                  /* "v1beta2" */
    bool served, storage;        /* as in the CRD */
    struct gf_ks_schema *schema; /* a reference (schema.h); NULL = none */
    cJSON *printer_columns; /* additionalPrinterColumns, owned; may be NULL */
};

/*
 * A resource type. Everything is owned by the type and freed with it.
 * Built-in types are registered by api.c; CRD types are registered by
 * api.c when a CustomResourceDefinition object is created.
 */
struct gf_ks_rtype {
    char *group;    /* "" for the core group */
    char *resource; /* plural, "workloads" */
    char *kind;     /* "Workload" */
    char *list_kind;
    char *singular;
    char **short_names; /* NULL-terminated, may be NULL */
    char **categories;  /* NULL-terminated, may be NULL */
    struct gf_ks_version *versions;
    size_t n_versions;
    size_t storage; /* index of the storage version in versions */
    bool namespaced;
    bool has_status; /* status subresource */
    bool read_only;  /* clients may not write (the Pod view) */
    /*
     * When a delete names no propagation policy: true orphans dependents
     * (batch/v1 Job keeps this legacy default), false is background.
     */
    bool default_orphan;
    /*
     * The registry strategies' choices, false for custom resources:
     * no_generation for types without metadata.generation (ConfigMaps,
     * Leases, ...); unconditional_update for types whose PUT may omit
     * metadata.resourceVersion (not custom resources, Leases or CRDs).
     */
    bool no_generation;
    bool unconditional_update;
    /* "group/resource" ("/namespaces" for core), the registry key. */
    char *gr;
};

/* Returned-borrowed; NULL when the type is unknown. */
const struct gf_ks_rtype *gf_ks_store_type(const struct gf_ks_store *st,
                                           const char *group,
                                           const char *resource);
/*
 * Registers a type; takes ownership of t (allocated with gf_malloc, every
 * string too) even on error. Re-registering a group/resource replaces the
 * type's description and keeps its objects. Returns 0 or -EINVAL.
 */
int gf_ks_store_register(struct gf_ks_store *st, struct gf_ks_rtype *t);
/*
 * Removes a type and all its objects (a CRD deletion). Watches on it are
 * closed. Returns 0 or GF_ENOTFOUND.
 */
int gf_ks_store_unregister(struct gf_ks_store *st, const char *group,
                           const char *resource);
/* Calls fn for every registered type, in registration order. */
void gf_ks_store_types(const struct gf_ks_store *st,
                       void (*fn)(void *data, const struct gf_ks_rtype *t),
                       void *data);
/* Frees a type that was never registered (accepts NULL). */
void gf_ks_rtype_free(struct gf_ks_rtype *t);

/* ---- objects ----------------------------------------------------------- */

/*
 * One version of one object: immutable after creation. json is compact
 * JSON, NUL-terminated, in the storage version of its type.
 */
struct gf_ks_obj {
    uint32_t refs;
    uint32_t len;                   /* strlen(json) */
    uint64_t rv;                    /* metadata.resourceVersion */
    const struct gf_ks_rtype *type; /* borrowed from the store */
    const char *ns;   /* metadata.namespace, "" if none; in this block */
    const char *name; /* metadata.name; in this block */
    char json[];
};

struct gf_ks_obj *gf_ks_obj_ref(struct gf_ks_obj *o);
/* Accepts NULL. */
void gf_ks_obj_unref(struct gf_ks_obj *o);
/* Returned-owned cJSON tree of the object (cJSON_Delete). Never NULL. */
cJSON *gf_ks_obj_parse(const struct gf_ks_obj *o);

/* ---- store ------------------------------------------------------------- */

struct gf_ks_store_opts {
    struct gf_clock *clock; /* borrowed, required: timestamps */
    const char *cluster;    /* for logs and uids; copied */
    size_t watch_cache;     /* events kept per type; 0 = default (1024) */
    uint64_t uid_seed;      /* makes uids repeatable in tests; 0 = random */
};

/* Returned-owned; free with gf_ks_store_free(). Never NULL. */
struct gf_ks_store *gf_ks_store_new(const struct gf_ks_store_opts *o);
/*
 * Closes every watch (their callbacks fire with GF_KS_EV_CLOSED), drops
 * observers without calling them, frees everything. Accepts NULL.
 */
void gf_ks_store_free(struct gf_ks_store *st);

/* The latest resourceVersion written in this cluster. */
uint64_t gf_ks_store_rv(const struct gf_ks_store *st);
/* Number of objects of a type (all namespaces); 0 for unknown types. */
size_t gf_ks_store_count(const struct gf_ks_store *st,
                         const struct gf_ks_rtype *t);
/* Bytes held by stored objects (JSON blobs and index entries). */
size_t gf_ks_store_bytes(const struct gf_ks_store *st);

/*
 * "API server restart" for the fault injector: every watch is closed
 * (GF_KS_EV_CLOSED) and every watch cache is emptied, so clients that
 * re-watch from an older resourceVersion get 410 Expired and relist.
 * Data, types and observers are kept.
 */
void gf_ks_store_restart(struct gf_ks_store *st);

/* ---- reads ------------------------------------------------------------- */

/*
 * Returned-borrowed object, or NULL. ns is "" or NULL for cluster-scoped
 * types.
 */
struct gf_ks_obj *gf_ks_store_get(const struct gf_ks_store *st,
                                  const struct gf_ks_rtype *t, const char *ns,
                                  const char *name);

/* A list request. Every field may be zero. */
struct gf_ks_list_opts {
    const char *ns;                     /* NULL or "" = all namespaces */
    const struct gf_ks_selector *label; /* borrowed, NULL = everything */
    const struct gf_ks_selector *field; /* metadata.name/.namespace */
    size_t limit;                       /* 0 = no limit */
    const char *cont;                   /* continue token from a page */
    /*
     * 0: the current state. Otherwise the state at exactly this
     * resourceVersion, rebuilt from the watch cache (410 Expired once
     * it has left it, 504 when it is in the future). A continue token
     * carries the version of its first page, which its pages keep.
     */
    uint64_t at_rv;
};

struct gf_ks_list {
    struct gf_ks_obj **items; /* refs held; sorted by namespace, name */
    size_t n;
    uint64_t rv;      /* the resourceVersion the list was served at */
    char *cont;       /* owned; NULL when this is the last page */
    size_t remaining; /* items after this page (remainingItemCount) */
};

/*
 * Lists objects of a type in key order (namespace, then name), as etcd
 * does, so continue tokens stay valid while objects come and go.
 * Returns 0, or GF_EINVALID / GF_EGONE (a malformed or expired continue
 * token) with st_out filled. Release the result with gf_ks_list_free().
 */
int gf_ks_store_list(const struct gf_ks_store *st, const struct gf_ks_rtype *t,
                     const struct gf_ks_list_opts *o, struct gf_ks_list *out,
                     struct gf_ks_status *err);
void gf_ks_list_free(struct gf_ks_list *l);

/*
 * Calls fn for every object of a type (ns NULL = all namespaces), in no
 * particular order; stop early by returning false. The store must not be
 * written from fn. Cheaper than a list: no sorting, no references.
 */
void gf_ks_store_foreach(const struct gf_ks_store *st,
                         const struct gf_ks_rtype *t, const char *ns,
                         bool (*fn)(void *data, struct gf_ks_obj *o),
                         void *data);

/*
 * Calls fn for every object (any type) whose metadata.ownerReferences name
 * owner_uid. Uses an index, so it is cheap.
 */
void gf_ks_store_dependents(const struct gf_ks_store *st, const char *owner_uid,
                            bool (*fn)(void *data, struct gf_ks_obj *o),
                            void *data);

/* ---- writes ------------------------------------------------------------ */

/* Which part of an object a write addresses. */
enum gf_ks_subres {
    GF_KS_MAIN = 0,   /* the object; status kept from the old object */
    GF_KS_STATUS = 1, /* /status: only status is taken from the input */
};

/*
 * Every write returns 0 and, when out is not NULL, a returned-borrowed
 * pointer to the stored object, valid until the next write made outside
 * a store callback (take a ref to keep it longer). On failure it
 * returns a negative GF_E* code and fills err (which may be NULL):
 *   GF_ENOTFOUND 404 NotFound, GF_EEXIST 409 AlreadyExists,
 *   GF_ECONFLICT 409 Conflict (resourceVersion or uid precondition),
 *   GF_EINVALID 422 Invalid / 400 BadRequest (malformed input),
 *   GF_EFORBIDDEN 403 / 405 (read-only type).
 */

/*
 * Creates an object. obj is borrowed and not modified; it must carry
 * metadata.name or metadata.generateName. ns must be given for namespaced
 * types (metadata.namespace, if set, must agree) and is ignored for
 * cluster-scoped ones. creationTimestamp, uid, resourceVersion,
 * generation are set; deletionTimestamp is refused; status is dropped
 * for types with a status subresource unless GF_KS_STATUS is given (a
 * controller creating an object with its status, e.g. a Pod).
 */
int gf_ks_store_create(struct gf_ks_store *st, const struct gf_ks_rtype *t,
                       const char *ns, const cJSON *obj, enum gf_ks_subres sub,
                       struct gf_ks_obj **out, struct gf_ks_status *err);

/*
 * Replaces an object (PUT). If obj carries metadata.resourceVersion it is
 * a precondition (409 Conflict when stale). metadata.uid, if present, must
 * match. Immutable metadata (uid, creationTimestamp, deletionTimestamp,
 * generation) is kept from the stored object. Removing the last finalizer
 * of an object that is being deleted removes it.
 */
int gf_ks_store_update(struct gf_ks_store *st, const struct gf_ks_rtype *t,
                       const char *ns, const char *name, const cJSON *obj,
                       enum gf_ks_subres sub, struct gf_ks_obj **out,
                       struct gf_ks_status *err);

enum gf_ks_patch_type {
    GF_KS_PATCH_MERGE = 0, /* application/merge-patch+json (RFC 7386) */
    GF_KS_PATCH_JSON,      /* application/json-patch+json (RFC 6902) */
    GF_KS_PATCH_STRATEGIC, /* application/strategic-merge-patch+json */
};

/*
 * Applies a patch to the current object and stores the result as
 * gf_ks_store_update would. A metadata.resourceVersion in the patched
 * result that differs from the stored one is a 409 (this is how clients
 * make a patch conditional). 422 when the patch cannot apply (a failed
 * JSON-patch "test", a missing path), 400 when it does not parse.
 * patch is borrowed, len bytes (need not be NUL-terminated).
 */
int gf_ks_store_patch(struct gf_ks_store *st, const struct gf_ks_rtype *t,
                      const char *ns, const char *name,
                      enum gf_ks_patch_type type, const char *patch, size_t len,
                      enum gf_ks_subres sub, struct gf_ks_obj **out,
                      struct gf_ks_status *err);

/*
 * Convenience for controllers: merge-patches status (borrowed, a status
 * object such as {"conditions":[...]}) through /status semantics,
 * without a resourceVersion precondition.
 */
int gf_ks_store_patch_status(struct gf_ks_store *st,
                             const struct gf_ks_rtype *t, const char *ns,
                             const char *name, const cJSON *status,
                             struct gf_ks_obj **out, struct gf_ks_status *err);

enum gf_ks_propagation {
    GF_KS_PROP_DEFAULT = 0, /* the type's default (see default_orphan) */
    GF_KS_PROP_BACKGROUND,
    GF_KS_PROP_FOREGROUND,
    GF_KS_PROP_ORPHAN,
};

struct gf_ks_delete_opts {
    enum gf_ks_propagation propagation;
    const char *uid; /* precondition, NULL = none */
    const char *rv;  /* precondition, NULL = none */
};

/*
 * Deletes an object. With no finalizers (and not foreground with
 * dependents) it is removed now and *out is its last state (*gone set to
 * true); otherwise it gets deletionTimestamp and stays until its
 * finalizers are removed (*gone false, *out the updated object). gone and
 * out may be NULL. Dependents are then collected by the propagation
 * policy, after the owner's event has been delivered. Deleting an object
 * that is already being deleted changes nothing and returns it.
 */
int gf_ks_store_delete(struct gf_ks_store *st, const struct gf_ks_rtype *t,
                       const char *ns, const char *name,
                       const struct gf_ks_delete_opts *o,
                       struct gf_ks_obj **out, bool *gone,
                       struct gf_ks_status *err);

/* ---- events: observers ------------------------------------------------- */

enum gf_ks_ev_type {
    GF_KS_EV_ADDED = 0,
    GF_KS_EV_MODIFIED,
    GF_KS_EV_DELETED,
    GF_KS_EV_BOOKMARK, /* watches only */
    GF_KS_EV_CLOSED,   /* watches only: the store ended the watch */
};

/* Returns "ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR". */
const char *gf_ks_ev_name(enum gf_ks_ev_type t);

/*
 * One change, as an observer sees it. Everything is borrowed for the
 * duration of the callback. old/old_json are NULL for ADDED; for DELETED
 * obj is the last state of the removed object (with deletionTimestamp if
 * it had finalizers). The parsed trees are shared by all observers of the
 * event: never modify them.
 */
struct gf_ks_event {
    enum gf_ks_ev_type type;
    const struct gf_ks_rtype *rtype;
    struct gf_ks_obj *obj, *old;
    const cJSON *obj_json, *old_json;
    uint64_t rv;
};

typedef void (*gf_ks_observer_fn)(void *data, const struct gf_ks_event *ev);
struct gf_ks_observer;

/*
 * Registers fn for every change to objects of type t (NULL = every type).
 * Observers run in registration order. fn may write to the store; those
 * writes are delivered after the current event. Returns the observer
 * (owned by the store; remove with gf_ks_store_unobserve, which may be
 * called from inside fn).
 */
struct gf_ks_observer *gf_ks_store_observe(struct gf_ks_store *st,
                                           const struct gf_ks_rtype *t,
                                           gf_ks_observer_fn fn, void *data);
void gf_ks_store_unobserve(struct gf_ks_store *st, struct gf_ks_observer *o);

/* ---- admission: create mutators ---------------------------------------- */

/*
 * A change made to every new object of one type before it is stored,
 * whoever creates it: a registry's PrepareForCreate (a Job's selector
 * names its uid) or a mutating admission webhook (Kueue's suspends a
 * queued Job). obj is the object about to be stored, with its metadata
 * (name, namespace, uid, creationTimestamp) set; fn may change anything
 * but those. The create's answer and its ADDED event show the result.
 */
typedef void (*gf_ks_mutator_fn)(void *data, const struct gf_ks_rtype *t,
                                 cJSON *obj);
struct gf_ks_mutator;

/*
 * Registers fn for creates of group/resource (the type need not be
 * registered yet; a CRD type keeps its mutators when it is re-registered).
 * Mutators run in registration order. Returns a handle owned by the store;
 * remove it with gf_ks_store_unmutate() (never from inside fn).
 */
struct gf_ks_mutator *gf_ks_store_mutate(struct gf_ks_store *st,
                                         const char *group,
                                         const char *resource,
                                         gf_ks_mutator_fn fn, void *data);
/* Removes m. Accepts NULL. */
void gf_ks_store_unmutate(struct gf_ks_store *st, struct gf_ks_mutator *m);

/* ---- events: watches --------------------------------------------------- */

struct gf_ks_watch;

/*
 * A watch event. For ADDED/MODIFIED/DELETED obj is the object
 * (borrowed for the call). For BOOKMARK obj is NULL and rv the
 * resourceVersion to report. For CLOSED, err says why
 * (GF_ECANCELED: store restart or free; GF_ENOTFOUND: the type went away;
 * GF_EGONE: a paused watch fell out of the watch cache);
 * after a CLOSED callback the watch is freed: never touch it again.
 */
typedef void (*gf_ks_watch_cb)(void *data, enum gf_ks_ev_type type,
                               const struct gf_ks_obj *obj, uint64_t rv,
                               int err);

struct gf_ks_watch_opts {
    const char *ns;                     /* NULL or "" = all */
    const struct gf_ks_selector *label; /* borrowed; copied by the watch */
    const struct gf_ks_selector *field; /* borrowed; copied by the watch */
    /*
     * NULL, "" or "0": start with a synthetic ADDED for every current
     * object (as the API server does); otherwise replay every change after
     * that version from the watch cache, or fail with 410 Expired.
     */
    const char *rv;
    /* With the initial ADDED events: a BOOKMARK with their version right
     * after the last of them (sendInitialEvents' initial-events-end). */
    bool initial_end_bookmark;
};

/*
 * Starts a watch. On success *out is set before the first callback, which
 * may run before this function returns (the initial ADDED events or the
 * replay). Events follow the API server's selector rules: an object that
 * stops matching is sent as DELETED, one that starts matching as ADDED.
 * Returns 0, or GF_EGONE (410 Expired, err filled), GF_EINVALID (a bad
 * resourceVersion) or GF_ESERVER (504 Timeout "Too large resource
 * version", for a version the store has not reached: what the API server
 * answers after waiting for it); on error cb never fires.
 */
int gf_ks_watch_start(struct gf_ks_store *st, const struct gf_ks_rtype *t,
                      const struct gf_ks_watch_opts *o, gf_ks_watch_cb cb,
                      void *data, struct gf_ks_watch **out,
                      struct gf_ks_status *err);
/*
 * Sends a BOOKMARK with the store's current resourceVersion (the caller
 * decides when, e.g. on a timer). The watch has seen every event up to it.
 */
void gf_ks_watch_bookmark(struct gf_ks_watch *w);
/*
 * The periodic bookmark: as gf_ks_watch_bookmark(), but only once the
 * type has changed since the watch began (the API server's watch cache
 * sends none before).
 */
void gf_ks_watch_bookmark_periodic(struct gf_ks_watch *w);
/*
 * Flow control, for a consumer that cannot take more now (a client whose
 * connection is full). After gf_ks_watch_pause (callable from cb) cb does
 * not fire; nothing is lost: what the watch misses waits in the watch
 * cache. gf_ks_watch_resume sends the backlog (the rest of the initial
 * events, then the cached changes) from inside the call, until the watch
 * is paused again or has caught up, then live changes as before. A watch
 * whose backlog has left the watch cache ends with CLOSED (GF_EGONE), as
 * the API server closes a watcher that cannot keep up. Bookmarks of a
 * watch that is behind carry the last version it has seen.
 */
void gf_ks_watch_pause(struct gf_ks_watch *w);
void gf_ks_watch_resume(struct gf_ks_watch *w);
/* True once every initial ADDED event has been sent (always true for a
 * watch from a resourceVersion). */
bool gf_ks_watch_initial_done(const struct gf_ks_watch *w);
/* Stops a watch; cb does not fire again (no CLOSED). Accepts NULL. */
void gf_ks_watch_stop(struct gf_ks_watch *w);
/* Number of open watches in the store (for tests and metrics). */
size_t gf_ks_store_watches(const struct gf_ks_store *st);

#endif
