/*
 * leader: leader election for `gpufed hub` replicas, client-go's
 * algorithm on a coordination.k8s.io/v1 Lease (GF_LEADER_LEASE in the
 * hub's namespace).
 *
 * The record is the Lease's spec: holderIdentity, leaseDurationSeconds,
 * acquireTime and renewTime (MicroTime, 6 fractional digits) and
 * leaseTransitions. Every write carries the resourceVersion it was
 * computed from, so two candidates that race are ordered by the API
 * server (one gets 409) and never both believe they hold it.
 *
 * Time. Wall-clock times in the record are for humans only: no replica
 * trusts another's clock. A candidate times the record with its own
 * monotonic clock: it notes when it last saw the record change, and takes
 * over only when it has not changed for one full lease duration. The
 * holder renews every retry period and stops leading when it has not
 * renewed within the renew deadline, counted from the SEND time of its
 * last acknowledged write (the write landed after it was sent, so the
 * others saw that change no earlier). The renew deadline is shorter than
 * the lease, so the old leader stops before anyone can take over, as
 * long as the clocks' rates differ by less than the gap.
 *
 * The engine calls the API through struct gf_leader_api: the hub passes
 * a client (the Lease over HTTP), tests a fake driven with the manual
 * clock. One call at a time; a timer independent of calls enforces the
 * renew deadline, so a call that hangs cannot keep a replica leading.
 *
 * Loop thread only.
 */
#ifndef GF_CONTROLLER_LEADER_H
#define GF_CONTROLLER_LEADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/clock.h"
#include "common/log.h"

struct gf_kube_client;

#define GF_LEADER_LEASE "gpufed-hub-leader"

/* The Lease's spec. Wall-clock milliseconds; 0 when absent. */
struct gf_leader_record {
    char holder[128]; /* "" when nobody holds it (released) */
    int64_t duration_s;
    int64_t acquire_ms, renew_ms;
    int64_t transitions;
};

/* --- the decision (pure) ------------------------------------------- */

enum gf_leader_step {
    GF_LEADER_WAIT,    /* another replica holds it: look again later */
    GF_LEADER_ACQUIRE, /* take it (create it, or a takeover) */
    GF_LEADER_RENEW,   /* it is ours: write a new renewTime */
    GF_LEADER_LOST,    /* we were leading and must stop at once */
};

struct gf_leader_view {
    const char *me;
    /* What the last read showed; NULL when the Lease does not exist. */
    const struct gf_leader_record *rec;
    uint64_t now_ms;     /* monotonic */
    uint64_t changed_ms; /* monotonic: when we last saw rec change */
    uint64_t lease_ms;   /* ours; used when rec carries no duration */
    bool leading;
    /* Monotonic send time of our last acknowledged acquire or renew. */
    uint64_t renewed_ms;
    uint64_t renew_deadline_ms;
};

/*
 * Decides the next step (client-go's tryAcquireOrRenew):
 *  - leading, and now >= renewed + renew deadline: LOST, whatever rec
 *    says (no write can make up for a deadline already passed);
 *  - leading, and rec names another holder: LOST;
 *  - no Lease, or an empty holder: ACQUIRE;
 *  - rec's holder is me: RENEW (also after a restart with the same id:
 *    the record is ours, so nobody else can be leading);
 *  - another holder, rec unchanged for less than its lease duration
 *    (rec->duration_s, else v->lease_ms): WAIT;
 *  - otherwise: ACQUIRE (a takeover).
 */
enum gf_leader_step gf_leader_decide(const struct gf_leader_view *v);
const char *gf_leader_step_name(enum gf_leader_step s);

/*
 * Retry period for a lease: 2 s, or lease/7 when that is shorter (short
 * leases in tests); the renew deadline is 2/3 of the lease.
 */
uint64_t gf_leader_retry_ms(uint64_t lease_ms);
uint64_t gf_leader_renew_deadline_ms(uint64_t lease_ms);

/*
 * Formats wall-clock ms as a MicroTime: RFC 3339 UTC with exactly six
 * fractional digits ("2026-12-06T05:21:36.123000Z"), as the API server
 * requires for acquireTime and renewTime.
 */
void gf_leader_micro_time(int64_t wall_ms, char out[40]);

/* --- the engine ----------------------------------------------------- */

/*
 * The result of an API call: err 0, GF_ENOTFOUND (get: no Lease; rec
 * NULL), GF_ECONFLICT or GF_EEXIST (write: someone else wrote first),
 * GF_ECANCELED, or another error. rec and rv are returned-borrowed, valid
 * during the callback, and set when err is 0.
 */
typedef void (*gf_leader_api_cb)(void *data, int err,
                                 const struct gf_leader_record *rec,
                                 const char *rv);

struct gf_leader_api {
    /* Reads the Lease. */
    int (*get)(void *ctx, uint64_t timeout_ms, gf_leader_api_cb cb, void *data);
    /* Creates the Lease (rv NULL) or updates it with rv as a
     * precondition. */
    int (*put)(void *ctx, const struct gf_leader_record *rec, const char *rv,
               uint64_t timeout_ms, gf_leader_api_cb cb, void *data);
    /* Cancels the call in flight, if any; its cb fires later with
     * GF_ECANCELED. */
    void (*cancel)(void *ctx);
    void *ctx;
};
/* Both calls follow libuv's contract: an error return means cb never
 * fires; 0 means it fires exactly once, later, from the loop. */

struct gf_leader;

struct gf_leader_opts {
    struct gf_clock *clk; /* borrowed; outlives the leader */
    const char *id;       /* copied */
    uint64_t lease_ms;    /* 0: 15 s */
    /* Either api (tests) or client + ns (the Lease over HTTP). */
    const struct gf_leader_api *api;
    struct gf_kube_client *client; /* borrowed */
    const char *ns;                /* copied */
    /* Fires when this replica starts (true) or stops (false) leading,
     * never from inside gf_leader_* calls of the owner except
     * gf_leader_close (which never fires it). */
    void (*on_change)(void *data, bool leading);
    void *data;
};

/*
 * Creates the elector and starts it (its first read is at once).
 * *out is returned-owned: gf_leader_close(). Returns 0 or -EINVAL (no id,
 * no API).
 */
int gf_leader_start(const struct gf_leader_opts *o, struct gf_leader **out);

/*
 * Stops: no more calls, the call in flight cancelled. It does not write
 * a release (a restart with the same id takes the Lease back at once; a
 * new id waits one lease). on_change is not called. cb fires once, later,
 * from the loop, after which the elector is freed.
 */
void gf_leader_close(struct gf_leader *l, void (*cb)(void *data), void *data);

bool gf_leader_leading(const struct gf_leader *l);
/* The holder the last read or write showed; "" if none (borrowed). */
const char *gf_leader_holder(const struct gf_leader *l);
const char *gf_leader_id(const struct gf_leader *l);
/* Times this replica saw the holder change to a new one (its own
 * acquisitions included). */
uint64_t gf_leader_transitions(const struct gf_leader *l);

#endif
