/*
 * fault: the faults injected into one simulated cluster.
 *
 * A fault has a kind, an optional identity it applies to (NULL or "" =
 * every client; otherwise an identity name such as "gpufed-hub" or a user
 * name) and an optional duration after which it ends by itself. The
 * server consults this table on every connection and request; Kueue-lite
 * consults it for "Kueue frozen". The kinds:
 *
 *   blackhole    connections are accepted and never answered; existing
 *                connections of the identity fall silent (a partition)
 *   reset        connections are reset (TCP RST) on accept or request
 *   latency      every request waits latency_ms before it is served
 *   5xx          requests are answered code (500/502/503/504, default 503)
 *   429          requests are answered 429 TooManyRequests
 *                (both with Retry-After: retry_after_s, and optionally
 *                only for the next count requests: a burst)
 *   watch-drop   open watches are cut mid-stream, and so is every watch
 *                started while the fault lasts
 *   kueue-frozen Kueue-lite and the job runner make no progress
 *
 * "API server restart" is an instant action, not a lasting fault; the
 * cluster performs it (cluster.h) and this table is not involved.
 *
 * Changes (a fault added, faults cleared or expired) are reported to one
 * listener, the server, which applies them to existing connections.
 *
 * A struct gf_ks_faults borrows the clock and owns its entries. Loop
 * thread only.
 */
#ifndef GF_KS_FAULT_H
#define GF_KS_FAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "common/clock.h"

enum gf_ks_fault_kind {
    GF_KS_FAULT_BLACKHOLE = 0,
    GF_KS_FAULT_RESET,
    GF_KS_FAULT_LATENCY,
    GF_KS_FAULT_5XX,
    GF_KS_FAULT_429,
    GF_KS_FAULT_WATCH_DROP,
    GF_KS_FAULT_KUEUE_FROZEN,
    GF_KS_FAULT_NKINDS
};

/* One fault as requested; strings borrowed when passed in. */
struct gf_ks_fault_spec {
    enum gf_ks_fault_kind kind;
    const char *identity;   /* NULL or "" = everyone */
    uint64_t for_ms;        /* 0 = until cleared */
    unsigned latency_ms;    /* latency */
    int code;               /* 5xx: 500..599, 0 = 503 */
    unsigned retry_after_s; /* Retry-After; 0 = 1 s for 429, none for 5xx */
    unsigned count;         /* 5xx/429: requests affected, 0 = all */
};

/* An active fault (returned-borrowed; valid until the table changes). */
struct gf_ks_fault {
    uint64_t id;
    enum gf_ks_fault_kind kind;
    char *identity;    /* NULL = everyone */
    uint64_t until_ms; /* monotonic; UINT64_MAX = until cleared */
    unsigned latency_ms;
    int code;
    unsigned retry_after_s;
    unsigned remaining; /* 0 = unlimited */
};

/* Why the listener is called. */
enum gf_ks_fault_change {
    GF_KS_FAULT_ADDED, /* f is the new fault */
    GF_KS_FAULT_ENDED, /* f is NULL: some faults ended (expiry, clear) */
};
typedef void (*gf_ks_fault_listener)(void *data, enum gf_ks_fault_change ch,
                                     const struct gf_ks_fault *f);

struct gf_ks_faults;

/* Returned-owned; free with gf_ks_faults_free. clock borrowed. */
struct gf_ks_faults *gf_ks_faults_new(struct gf_clock *clock);
/* Stops its timer and frees every entry; no listener call. NULL ok. */
void gf_ks_faults_free(struct gf_ks_faults *f);

void gf_ks_faults_listen(struct gf_ks_faults *f, gf_ks_fault_listener fn,
                         void *data);

/*
 * Adds a fault. Returns its id (> 0) or -EINVAL for a bad spec (a 5xx
 * code outside 500..599, latency without latency_ms). The listener is
 * called before this returns.
 */
int64_t gf_ks_faults_add(struct gf_ks_faults *f,
                         const struct gf_ks_fault_spec *spec);
/* Removes every fault (and calls the listener once if any existed). */
void gf_ks_faults_clear(struct gf_ks_faults *f);

/*
 * The first active fault of kind that applies to a client known as
 * identity / user (either may be NULL: a connection that has not sent a
 * request yet matches only faults for everyone). Returned-borrowed, or
 * NULL. Does not consume a burst count; see gf_ks_faults_take.
 */
const struct gf_ks_fault *gf_ks_faults_match(const struct gf_ks_faults *f,
                                             enum gf_ks_fault_kind kind,
                                             const char *identity,
                                             const char *user);
/*
 * Like match, and consumes one request of a burst (a fault whose count
 * reaches zero ends). Copies the fault to *out; returns true if one
 * applied.
 */
bool gf_ks_faults_take(struct gf_ks_faults *f, enum gf_ks_fault_kind kind,
                       const char *identity, const char *user,
                       struct gf_ks_fault *out);

/*
 * Whether a fault applies to this identity (the one an existing
 * connection was made by): NULL fault identity matches everyone.
 */
bool gf_ks_fault_applies(const struct gf_ks_fault *ft, const char *identity,
                         const char *user);

/* Kueue-lite's query: true while a kueue-frozen fault is active. */
bool gf_ks_faults_kueue_frozen(const struct gf_ks_faults *f);

/* Number of active faults. */
size_t gf_ks_faults_count(const struct gf_ks_faults *f);

/* "blackhole", "reset", ...; NULL for an invalid kind. */
const char *gf_ks_fault_kind_name(enum gf_ks_fault_kind k);
/* Returns 0 and *out, or -EINVAL for an unknown name. */
int gf_ks_fault_kind_parse(const char *name, enum gf_ks_fault_kind *out);

/*
 * The admin endpoint's wire form:
 *   {"kind":"429","identity":"gpufed-hub","forMs":5000,"latencyMs":0,
 *    "code":0,"retryAfterSeconds":1,"count":0}
 * from_json fills spec (strings borrowed from j); on error returns -EINVAL
 * and a reason in why (static string).
 */
int gf_ks_fault_spec_from_json(const cJSON *j, struct gf_ks_fault_spec *spec,
                               const char **why);
/* Returned-owned array of the active faults with remaining time. */
cJSON *gf_ks_faults_to_json(const struct gf_ks_faults *f);

#endif
