/*
 * watch: the Kubernetes watch stream, from bytes to decoded events.
 *
 * Three layers, usable separately:
 *  - the framer cuts a byte stream into newline-delimited JSON events. It
 *    is incremental: an event may be split anywhere across chunks and one
 *    chunk may carry many events. Each event is capped (GF_E2BIG beyond the
 *    cap) so a hostile server cannot make us buffer without bound;
 *  - the decoder parses each event exactly once with
 *    cJSON_ParseWithLengthOpts and extracts type, object and
 *    resourceVersion; an ERROR event carries a Status, decoded into
 *    struct gf_api_status (410/Expired classifies as relist);
 *  - gf_watch runs one streaming GET ?watch=1 through request.h. The
 *    server ends the stream after timeoutSeconds; the client bounds it
 *    with a deadline a grace later, on the client's clock (silence
 *    between events is normal and is not timed).
 *
 * See docs/kubeclient.md. Loop thread only.
 */
#ifndef GF_WATCH_H
#define GF_WATCH_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "kubeclient/request.h"

/* Default cap on one event (an object plus envelope). */
#define GF_WATCH_DEFAULT_MAX_EVENT (4u << 20)

enum gf_watch_type {
    GF_WATCH_ADDED,
    GF_WATCH_MODIFIED,
    GF_WATCH_DELETED,
    GF_WATCH_BOOKMARK,
    GF_WATCH_ERROR,
};
/* "ADDED", ... */
const char *gf_watch_type_name(enum gf_watch_type t);

/* One decoded event; every pointer is returned-borrowed and valid only
 * during the callback that receives it. */
struct gf_watch_event {
    enum gf_watch_type type;
    const cJSON *object; /* the "object" member (Status for ERROR) */
    const char *rv;      /* object's metadata.resourceVersion, or NULL */
    const char *raw;     /* the event's bytes (no newline) */
    size_t raw_len;
    struct gf_api_status status; /* ERROR events only */
};

/*
 * Decodes one framed event. On success *root is returned-owned (free with
 * cJSON_Delete after using ev, whose pointers point into it). Returns 0,
 * or GF_EPARSE (not JSON, no known type, no object) with *root NULL.
 */
int gf_watch_event_decode(const char *p, size_t n, struct gf_watch_event *ev,
                          cJSON **root);

/* Receives one event; nonzero return stops feeding and is returned by
 * gf_watch_framer_feed(). */
typedef int (*gf_watch_event_cb)(void *data, const struct gf_watch_event *ev);

struct gf_watch_framer {
    struct gf_buf partial; /* bytes of an event not yet terminated */
    /*
     * Each event's cJSON tree is parsed into this arena and dropped after
     * the callback (common/alloc.h): watch ingest is parse-bound, and a
     * bump allocator halves the cost of a tree. Callbacks must not keep
     * or detach any part of ev->object (copy what they need).
     */
    struct gf_arena *arena;
    size_t max_event;
    uint64_t events, bytes;
};

/* max_event 0: GF_WATCH_DEFAULT_MAX_EVENT. */
void gf_watch_framer_init(struct gf_watch_framer *f, size_t max_event);
void gf_watch_framer_free(struct gf_watch_framer *f);
/*
 * Feeds a chunk. For every complete event, decodes it and calls cb (blank
 * lines are skipped). Returns 0, GF_E2BIG (an event exceeds the cap),
 * GF_EPARSE (an event does not decode) or the first nonzero return of cb;
 * after an error the framer must not be fed again.
 */
int gf_watch_framer_feed(struct gf_watch_framer *f, const char *p, size_t n,
                         gf_watch_event_cb cb, void *data);
/* End of stream: 0 if nothing is pending, GF_ETRANSPORT if the stream was
 * cut inside an event (a final unterminated but complete event is
 * decoded and delivered first). */
int gf_watch_framer_finish(struct gf_watch_framer *f, gf_watch_event_cb cb,
                           void *data);

/* ------------------------------------------------------------------ */

struct gf_watch;

/*
 * End of a watch, exactly once per successful gf_watch_start(). err 0: the
 * server closed the stream normally (reconnect from the last RV);
 * GF_ECANCELED after gf_watch_stop(); otherwise `st` (never NULL)
 * describes the failure: an HTTP failure, an ERROR event (st->cls ==
 * GF_API_RELIST for 410/Expired), GF_ETIMEDOUT from the idle timer,
 * GF_ETRANSPORT for a dropped connection, GF_E2BIG/GF_EPARSE for a bad
 * event.
 */
typedef void (*gf_watch_done_cb)(void *data, int err,
                                 const struct gf_api_status *st);

struct gf_watch_opts {
    const struct gf_kube_resource *res; /* borrowed for the call */
    const char *ns;                     /* NULL/"": all namespaces */
    const char *label_selector;
    const char *field_selector;
    const char *resource_version; /* start after this RV; NULL: now */
    bool allow_bookmarks;
    unsigned timeout_seconds; /* server-side stream end; 0: none */
    /* Client-side bound on the whole stream, GF_ETIMEDOUT past it (0:
     * none): the server should have closed it after timeout_seconds, so
     * a stream that outlives that plus a grace runs to a server that has
     * gone silent (blackholed), which no byte-level silence can tell
     * from a quiet resource. */
    uint64_t deadline_ms;
    /* No byte for this long: GF_ETIMEDOUT (0: no idle timer). Only for
     * servers known to send keep-alives; a real API server sends nothing
     * on a quiet watch, not even bookmarks, for minutes. */
    uint64_t idle_timeout_ms;
    size_t max_event; /* 0: GF_WATCH_DEFAULT_MAX_EVENT */
    /* Events except ERROR (which ends the watch through on_done). A
     * nonzero return stops the watch; on_done then gets that error. */
    gf_watch_event_cb on_event;
    gf_watch_done_cb on_done;
    void *data;
};

/*
 * Starts a watch. *out is returned-borrowed, valid until on_done returns.
 * Returns 0 (on_done fires exactly once) or a negative error (never).
 */
int gf_watch_start(struct gf_kube_client *c, const struct gf_watch_opts *o,
                   struct gf_watch **out);
/* on_done fires later with GF_ECANCELED. Idempotent; accepts NULL. */
void gf_watch_stop(struct gf_watch *w);
/* Returned-borrowed: RV of the last event or bookmark seen, or NULL. */
const char *gf_watch_last_rv(const struct gf_watch *w);
/* Events delivered so far. */
uint64_t gf_watch_events(const struct gf_watch *w);

#endif
