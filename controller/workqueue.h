/*
 * workqueue: client-go's workqueue semantics on one event loop.
 *
 * The controller never hands event payloads to its reconcilers: it queues
 * keys ("cluster/namespace/name") and a reconcile reads the current state
 * from the caches when its key comes up. That is what makes reconciles
 * level-triggered, and it is why the queue may coalesce: ten events about
 * one Workload while its key waits are one reconcile.
 *
 * Semantics (client-go's queue, delaying queue and rate limiter, as one
 * module because on a single loop they share one state machine per key):
 *
 * - dirty: a key that needs processing. Adding a dirty key again does
 *   nothing, so repeated adds coalesce.
 * - processing: a key whose reconcile has started and not yet called
 *   gf_wq_done. A key is never processed twice at once: adding it while it
 *   runs marks it dirty, and gf_wq_done queues it again.
 * - waiting: a key with a ready time in the future (gf_wq_add_after). One
 *   min-heap on one timer holds them all; adding a waiting key with an
 *   earlier time moves it earlier, a later time is ignored.
 * - failures: per key, for gf_wq_add_rate_limited. The delay is
 *   max(base * 2^failures capped at max_delay, the global token bucket's
 *   wait), the bucket refilling at qps up to burst. gf_wq_forget (or a done
 *   with GF_WQ_OK, GF_WQ_REQUEUE_AFTER or GF_WQ_TERMINAL) clears failures.
 *
 * Dispatch. Ready keys are started in FIFO order from a zero-delay timer,
 * at most cfg.batch per loop turn and at most cfg.max_inflight at once,
 * so a cold start with 30k eligible keys never starves the watches, the
 * writes and the timers sharing the loop. The process callback may finish
 * the key synchronously (calling gf_wq_done inside it) or later, from any
 * loop callback.
 *
 * Ownership: the queue owns copies of its keys. The key passed to the
 * process callback is returned-borrowed and stays valid until gf_wq_done
 * for it returns.
 *
 * Time comes from a struct gf_clock, so tests drive the manual clock and
 * never sleep. Loop thread only.
 */
#ifndef GF_CONTROLLER_WORKQUEUE_H
#define GF_CONTROLLER_WORKQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/clock.h"

struct gf_workqueue;

/* How a reconcile ended (STYLE §7). */
enum gf_wq_result {
    GF_WQ_OK,            /* done; failures forgotten */
    GF_WQ_REQUEUE_AFTER, /* done; run again after the given delay */
    GF_WQ_ERROR,         /* failed; rate-limited requeue */
    GF_WQ_TERMINAL,      /* failed for good; not retried until re-added */
};

/*
 * Called when a key's turn comes. key is returned-borrowed until the
 * matching gf_wq_done returns. The callback must call gf_wq_done exactly
 * once for this key, now or later.
 */
typedef void (*gf_wq_process_cb)(struct gf_workqueue *wq, const char *key,
                                 void *data);

struct gf_wq_config {
    uint64_t base_delay_ms; /* per-key backoff start; default 5 */
    uint64_t max_delay_ms;  /* per-key backoff cap; default 1000 s */
    double qps;             /* global bucket refill; default 10 */
    unsigned burst;         /* global bucket size; default 100 */
    unsigned max_inflight;  /* keys processing at once; default 64 */
    unsigned batch;         /* keys started per loop turn; default 32 */
};

/* client-go's defaults (DefaultControllerRateLimiter) and ours. */
#define GF_WQ_CONFIG_DEFAULT                                                   \
    {                                                                          \
        .base_delay_ms = 5, .max_delay_ms = 1000000, .qps = 10.0,              \
        .burst = 100, .max_inflight = 64, .batch = 32                          \
    }

/* Counters for /metrics (client-go's workqueue metrics, as totals). */
struct gf_wq_stats {
    size_t depth;        /* ready keys waiting for a worker */
    size_t waiting;      /* keys with a future ready time */
    size_t inflight;     /* keys processing */
    size_t tracked;      /* keys the queue holds any state for */
    uint64_t adds;       /* adds that made a key dirty */
    uint64_t retries;    /* gf_wq_add_rate_limited calls */
    uint64_t processed;  /* reconciles started */
    uint64_t results[4]; /* done calls by enum gf_wq_result */
};

/*
 * Returned-owned; free with gf_wq_free. cfg may be NULL for the defaults;
 * a zero field takes its default. The clock is borrowed and must outlive
 * the queue.
 */
struct gf_workqueue *gf_wq_new(struct gf_clock *clk,
                               const struct gf_wq_config *cfg,
                               gf_wq_process_cb cb, void *data);
/*
 * Frees the queue. Nothing may be in flight (drain first: gf_wq_shutdown,
 * then wait until gf_wq_stats().inflight is 0); freeing with a reconcile
 * still running is a programmer error. Accepts NULL.
 */
void gf_wq_free(struct gf_workqueue *wq);

/* Marks key dirty and queues it unless it is processing. */
void gf_wq_add(struct gf_workqueue *wq, const char *key);
/* Adds key after delay_ms (0: at once); an earlier pending time wins. */
void gf_wq_add_after(struct gf_workqueue *wq, const char *key,
                     uint64_t delay_ms);
/* Adds key after its rate-limited delay, and counts a failure. */
void gf_wq_add_rate_limited(struct gf_workqueue *wq, const char *key);
/* Clears key's failure count (its next rate-limited delay is base). */
void gf_wq_forget(struct gf_workqueue *wq, const char *key);
/* Failures counted for key since it was last forgotten. */
unsigned gf_wq_num_requeues(const struct gf_workqueue *wq, const char *key);

/*
 * Ends the reconcile of key (which must be processing). after_ms is used
 * only with GF_WQ_REQUEUE_AFTER; with GF_WQ_ERROR any requeue-after is
 * ignored, as STYLE §7 says. If the key was added again while it ran, it
 * is queued again (a GF_WQ_REQUEUE_AFTER then also leaves its timer).
 */
void gf_wq_done(struct gf_workqueue *wq, const char *key,
                enum gf_wq_result result, uint64_t after_ms);

/*
 * Forgets every key that starts with prefix (a member being removed:
 * "east/"): queued and waiting entries go, failure counts go, and keys in
 * flight are not requeued when they finish, whatever their result.
 */
void gf_wq_drop_prefix(struct gf_workqueue *wq, const char *prefix);

/*
 * Stops taking keys: adds become no-ops, queued and waiting keys are
 * dropped, reconciles in flight run to their gf_wq_done.
 */
void gf_wq_shutdown(struct gf_workqueue *wq);
bool gf_wq_shutting_down(const struct gf_workqueue *wq);

void gf_wq_stats(const struct gf_workqueue *wq, struct gf_wq_stats *out);

#endif
