/*
 * reflector: keeps a struct gf_store equal to one resource of one cluster
 * by LIST then WATCH (client-go's reflector).
 *
 * It lists (resourceVersion=0 from the watch cache, or paginated with
 * limit/continue), replaces the store (deleting keys that vanished), then
 * watches from the list's RV with allowWatchBookmarks and a random
 * timeoutSeconds in 300-600. Each event updates the store, whose handlers
 * enqueue keys; a BOOKMARK only advances the RV. A normal end of stream
 * re-watches from the last RV.
 *
 * A 410 (HTTP or ERROR event) means the RV we hold is gone: after a
 * backoff step the reflector lists the current state (resourceVersion="",
 * a quorum read, as client-go does once the last RV is unavailable) and
 * never watches again from an RV it was told is expired. Failures and 429
 * back off from 0.8 s doubling to 30 s with jitter; the backoff resets
 * after 2 minutes of healthy watching. A terminal answer (400, 403, 404,
 * 422 ...) is logged with the server's message, counted, reported to
 * on_terminal and puts the reflector in FAILED, from which it tries again
 * only every GF_REFLECTOR_TERMINAL_RETRY_MS. An owner that learns the
 * server is back (gf_reflector_retry_now) cuts a backoff wait short.
 *
 * A quiet watch is not an error: there is no idle timer (a real API
 * server sends nothing, not even bookmarks, on a resource that does not
 * change). A watch that outlives its timeoutSeconds plus a grace is torn
 * down, which is how a blackholed server is found; TCP keepalive finds a
 * dead peer sooner. All waits are timers on the client's clock. RVs are
 * opaque and only compared for equality.
 *
 * See docs/kubeclient.md. Loop thread only.
 */
#ifndef GF_REFLECTOR_H
#define GF_REFLECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/log.h"
#include "common/rand.h"
#include "kubeclient/request.h"
#include "kubeclient/store.h"
#include "kubeclient/watch.h"

struct gf_reflector;

#define GF_REFLECTOR_BACKOFF_MIN_MS 800u
#define GF_REFLECTOR_BACKOFF_MAX_MS 30000u
#define GF_REFLECTOR_HEALTHY_RESET_MS 120000u
/* How long past its timeoutSeconds a watch may stay open before the
 * client ends it: the server closes it on time unless it has gone silent
 * (blackholed), which byte-level silence cannot tell from a quiet
 * resource. */
#define GF_REFLECTOR_WATCH_GRACE_MS 30000u
/* Retry period after a terminal failure (403, 404 ...): someone has to
 * fix RBAC or install a CRD; polling faster only adds load. */
#define GF_REFLECTOR_TERMINAL_RETRY_MS 300000u
/* Page size used after an unpaged list did not fit the body cap. */
#define GF_REFLECTOR_FALLBACK_PAGE 500u

struct gf_reflector_opts {
    struct gf_kube_client *client; /* borrowed; outlives the reflector */
    struct gf_store *store;        /* borrowed; outlives the reflector */
    struct gf_rand *rng;           /* borrowed: jitter, timeoutSeconds */
    struct gf_kube_resource res;   /* copied */
    const char *ns;                /* NULL/"": all namespaces; copied */
    const char *label_selector;    /* copied, may be NULL */
    const char *field_selector;    /* copied, may be NULL */
    unsigned page_limit;           /* 0: one LIST rv=0; >0: paginated (rv="") */
    uint64_t watch_grace_ms;       /* 0: GF_REFLECTOR_WATCH_GRACE_MS */
    size_t max_event;              /* 0: GF_WATCH_DEFAULT_MAX_EVENT */
    const struct gf_log_ctx *lc;   /* copied (strings borrowed, must live) */
    /* Optional tap: each watch event after it was applied (tools). */
    gf_watch_event_cb on_event;
    /*
     * Optional: a terminal failure (the server refused the list or watch
     * with 400, 403, 404, 422 ...), after the reflector entered FAILED.
     * `st` is borrowed for the call. May call gf_reflector_close().
     */
    void (*on_terminal)(void *data, int err, const struct gf_api_status *st);
    void *data;
};

enum gf_reflector_state {
    GF_REFLECTOR_STOPPED,
    GF_REFLECTOR_LISTING,
    GF_REFLECTOR_WATCHING,
    GF_REFLECTOR_BACKOFF,
    /* A terminal failure; retried every GF_REFLECTOR_TERMINAL_RETRY_MS. */
    GF_REFLECTOR_FAILED,
};

struct gf_reflector_health {
    enum gf_reflector_state state;
    bool synced;            /* the store has had a complete list */
    bool watching;          /* a watch stream is currently open */
    uint64_t last_event_ms; /* clock time of the last event/bookmark, 0 */
    uint64_t last_list_ms;  /* clock time of the last completed list, 0 */
    int last_err;           /* 0 or the last failure's GF_E* */
    char last_error[256];   /* human text of the last failure, "" */
    char rv[128];           /* last RV seen (opaque) */
    uint64_t backoff_ms;    /* current backoff step */
    uint64_t lists, watches, relists, events, bookmarks, failures;
    uint64_t terminal; /* terminal failures (also counted in failures) */
};

/* Returned-owned (gf_reflector_close). 0 or -EINVAL. Does not start. */
int gf_reflector_new(const struct gf_reflector_opts *o,
                     struct gf_reflector **out);
/* Starts listing. 0, or -EALREADY if started. */
int gf_reflector_start(struct gf_reflector *r);
/*
 * Stops all activity (in-flight list/watch are canceled) and frees the
 * reflector once nothing is in flight; cb (may be NULL) fires exactly
 * once after that, always later from the loop, never before
 * gf_reflector_close() returns (libuv's uv_close contract). May be called
 * from the reflector's own callbacks. The store is left as it was.
 */
void gf_reflector_close(struct gf_reflector *r, void (*cb)(void *data),
                        void *data);
/*
 * The caller has evidence that the server is reachable again (the hub: a
 * heartbeat probe of that member succeeded). If the reflector is waiting
 * out a backoff (state BACKOFF), the wait is cut short: the list or watch
 * it was waiting to start starts now. Returns true then, false (and does
 * nothing) in every other state: a list or watch already in flight, or
 * FAILED, whose cause (RBAC, a missing CRD) reachability does not fix.
 *
 * The rule: only the wait is skipped, never the backoff step. The next
 * failure waits the step after the current one, as it would have after
 * the wait, so a server that flaps (reachable for the caller's probe,
 * failing for the list) is tried at most once more per call, and the
 * caller's own period (the hub probes every D/3) paces those calls. A
 * Retry-After the server sent is skipped too: the probe that succeeded
 * is newer than it.
 */
bool gf_reflector_retry_now(struct gf_reflector *r);
void gf_reflector_health(const struct gf_reflector *r,
                         struct gf_reflector_health *out);
/* "stopped", "listing", "watching", "backoff", "failed". */
const char *gf_reflector_state_name(enum gf_reflector_state s);

#endif
