/*
 * ledger: gpufed's in-memory view of quota across members.
 *
 * One cell per member x ClusterQueue x flavor x resource holds what
 * Kueue's ClusterQueue spec says (nominal, borrowingLimit, lendingLimit)
 * and what is observed (used by admitted Workloads, reserved by Workloads
 * with QuotaReserved but not yet Admitted, lent through leases). Per
 * ClusterQueue: pending demand (a pending Workload has no flavor yet) and
 * GPUs borrowed through leases. Per member: freshness, totals lent and
 * borrowed, and the number of leases it lends. Per lender x borrower pair:
 * GPUs lent.
 *
 * Only the federated resource (struct gf_ledger.resource, the policy's
 * `resource`, GPUs) is counted from Workloads and leases; other resources
 * of a ClusterQueue are kept with their quota only, because the lender's
 * own Kueue still enforces every limit on them when a copy is admitted.
 *
 * Updates are incremental: one Workload, ClusterQueue, lease or member at
 * a time, each O(1) expected (hash lookups plus constant work; a
 * ClusterQueue update is O(its flavors)). The aggregates are never
 * recomputed in production; gf_ledger_verify() recomputes everything
 * from the stored Workloads and leases and compares, for tests.
 *
 * Unknown is not zero: a member that is not SYNCED reports nothing that
 * may be lent (gf_ledger_lendable() returns GF_ESTALE), and its leases
 * keep counting as used.
 *
 * Ownership: the ledger copies every string it is given. Pointers it
 * returns are returned-borrowed and valid until the next update of the
 * ledger. Pure code: no I/O, no clock; times are passed in.
 */
#ifndef GF_POLICY_LEDGER_H
#define GF_POLICY_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/list.h"
#include "policy/lease.h"

/* A borrowingLimit or lendingLimit that is not set. */
#define GF_NO_LIMIT (-1)
/* Names longer than this are refused with -ENAMETOOLONG. */
#define GF_LEDGER_MAX_NAME 253

enum gf_freshness {
    GF_FRESH_UNKNOWN, /* never listed: nothing is known */
    GF_FRESH_SYNCED,  /* listed and watching: the numbers are current */
    GF_FRESH_STALE,   /* watch lost, relisting: numbers may be old */
    GF_FRESH_SUSPECT  /* unreachable (heartbeat renewals failing) */
};

enum gf_wl_state {
    GF_WL_PENDING,  /* active, waiting for quota */
    GF_WL_RESERVED, /* QuotaReserved, not yet Admitted */
    GF_WL_ADMITTED, /* Admitted: uses quota */
    GF_WL_INACTIVE, /* spec.active=false (e.g. held by a lease) */
    GF_WL_FINISHED
};

/* One flavor x resource of a ClusterQueue spec (input). */
struct gf_cq_quota {
    const char *flavor, *resource;
    int64_t nominal;
    int64_t borrowing_limit; /* GF_NO_LIMIT when unset */
    int64_t lending_limit;   /* GF_NO_LIMIT when unset */
};

/* A Workload as the controller observes it (input; strings borrowed). */
struct gf_workload {
    const char *member, *namespace, *name;
    const char *uid;
    const char *cluster_queue; /* via its LocalQueue; NULL if unknown */
    const char *flavor;        /* assigned flavor when RESERVED/ADMITTED */
    const char *kind;          /* owner job kind, "batch/Job" */
    int64_t gpus;              /* requested federated resource, total */
    int32_t priority;
    enum gf_wl_state state;
    int64_t pending_since_ms; /* when it started waiting */
};

struct gf_ledger_member {
    char *name;
    enum gf_freshness fresh;
    int64_t last_heartbeat_ms; /* last successful heartbeat renewal */
    /* The heartbeat term D the hub's fencing bound counts for this member:
     * the longest one its agent may still believe while the hub lowers
     * leaseDuration in steps (0: the policy's). The bound uses the larger
     * of this and the policy's. */
    int64_t term_ms;
    /* Until then (same clock as last_heartbeat_ms) the member has just
     * healed and its agent may still be fenced: it lends nothing new
     * (decide's rule `recovering`). 0: not recovering. */
    int64_t recovering_until_ms;
    int64_t nominal;        /* sum of nominal of the resource */
    int64_t lent, borrowed; /* through leases that hold quota */
    size_t leases_out;      /* leases that hold quota, as lender */
    size_t n_cqs;
    bool ns_known; /* its namespaces' opt-ins are fed (gf_ledger_ns_set) */
    /* `gpufedctl drain`: it lends nothing new and gets back what it lent */
    bool drained;
};

struct gf_ledger_cq;

struct gf_ledger_cell {
    char *flavor, *resource;
    struct gf_ledger_cq *cq;
    bool in_spec; /* false: no longer in the spec, kept for usage */
    int64_t nominal;
    int64_t borrowing_limit, lending_limit; /* GF_NO_LIMIT when unset */
    int64_t used, reserved;                 /* from Workloads */
    int64_t lease_out;                      /* lent via holding leases */
    size_t n_leases_out;
};

struct gf_ledger_cq {
    char *name;
    struct gf_ledger_member *member;
    bool known;                    /* its spec has been observed */
    struct gf_ledger_cell **cells; /* in spec order; owned array */
    size_t n_cells, cap_cells;
    int64_t pending;  /* demand of PENDING Workloads (resource) */
    size_t n_pending; /* number of PENDING Workloads */
    int64_t lease_in; /* borrowed via holding leases */
    size_t n_workloads;
    /* spec.cohortName, or NULL outside a cohort: a loan's grant reaches
     * a Workload of this ClusterQueue only through its cohort. */
    char *cohort;
};

/* The ledger's record of a Workload. */
struct gf_ledger_wl {
    char *member, *namespace, *name, *uid, *kind; /* owned */
    struct gf_ledger_cq *cq;                      /* NULL if unknown */
    struct gf_ledger_cell *cell; /* RESERVED/ADMITTED: its flavor's cell */
    int64_t gpus;
    int32_t priority;
    enum gf_wl_state state;
    int64_t pending_since_ms;
    /* The ledger's list of PENDING Workloads with a known ClusterQueue.
     * Private to the ledger: walk it with gf_ledger_pending_first/next. */
    struct gf_list pending_link;
};

struct gf_ledger_lease {
    struct gf_lease l;              /* owned deep copy */
    bool holds;                     /* counted in the aggregates */
    struct gf_ledger_cell *cell;    /* lender cell */
    struct gf_ledger_cq *origin_cq; /* may be NULL */
    struct gf_ledger_member *lender, *origin;
};

struct gf_ledger;

/* Returned-owned; free with gf_ledger_free. resource is copied. */
struct gf_ledger *gf_ledger_new(const char *resource);
void gf_ledger_free(struct gf_ledger *l);
/* Returned-borrowed. */
const char *gf_ledger_resource(const struct gf_ledger *l);

/* Creates the member if needed. 0 or -EINVAL/-ENAMETOOLONG. */
int gf_ledger_member_set(struct gf_ledger *l, const char *member,
                         enum gf_freshness fresh, int64_t last_heartbeat_ms);
/*
 * The member's heartbeat term and recovery (gf_ledger_member's term_ms
 * and recovering_until_ms); creates it if needed. 0, -EINVAL or
 * -ENAMETOOLONG.
 */
int gf_ledger_member_heartbeat(struct gf_ledger *l, const char *member,
                               int64_t term_ms, int64_t recovering_until_ms);
/* Drains a member (or undoes it); creates it if needed. 0, -EINVAL or
 * -ENAMETOOLONG. */
int gf_ledger_member_drain(struct gf_ledger *l, const char *member,
                           bool drained);
/*
 * Replaces a ClusterQueue's quota: cells not listed drop out of the spec
 * (nominal 0) but keep their usage. O(n + previous cells).
 */
int gf_ledger_cq_set(struct gf_ledger *l, const char *member, const char *cq,
                     const struct gf_cq_quota *q, size_t n);
/*
 * Sets a ClusterQueue's cohort (spec.cohortName; NULL or "" for none),
 * creating the record if needed; kept across gf_ledger_cq_set. 0 or
 * -EINVAL.
 */
int gf_ledger_cq_cohort_set(struct gf_ledger *l, const char *member,
                            const char *cq, const char *cohort);
/* The ClusterQueue was deleted: all its cells leave the spec. */
int gf_ledger_cq_delete(struct gf_ledger *l, const char *member,
                        const char *cq);
/* Adds or replaces a Workload (keyed by member/namespace/name). */
int gf_ledger_workload_set(struct gf_ledger *l, const struct gf_workload *w);
/* 0, or GF_ENOTFOUND. */
int gf_ledger_workload_delete(struct gf_ledger *l, const char *member,
                              const char *ns, const char *name);
/* Adds or replaces a lease (keyed by name); the ledger copies it. */
int gf_ledger_lease_set(struct gf_ledger *l, const struct gf_lease *lease);
/* 0, or GF_ENOTFOUND. The Workload's highest epoch stays: a lease that
 * is gone (deleted by hand, say) may have left a copy named after its
 * epoch, which no later lease must reuse. */
int gf_ledger_lease_delete(struct gf_ledger *l, const char *name);
/*
 * Takes back a lease set ahead of its record (the controller counts a
 * lease from the moment its create is sent) whose create failed: deletes
 * it and, if it carried the Workload's highest epoch, lowers that by one,
 * so that the next lease of the Workload has the same epoch and name. A
 * create that landed although its answer was lost then meets its own
 * lease (AlreadyExists) instead of a second lease being made. 0, or
 * GF_ENOTFOUND.
 */
int gf_ledger_lease_retract(struct gf_ledger *l, const char *name);

/*
 * Lender namespaces that accept copies (label gpufed.io/accept-overflow:
 * "true"), per member: accepts=true adds one, false removes it. Once any
 * namespace of a member has been set, a namespace of it never set does
 * not accept; a member none was ever set for is not checked (a ledger
 * built without namespaces, as from a snapshot: every cluster has
 * namespaces, so the hub's feed sets some of each member). 0, -EINVAL
 * or -ENAMETOOLONG.
 */
int gf_ledger_ns_set(struct gf_ledger *l, const char *member, const char *ns,
                     bool accepts);
bool gf_ledger_ns_accepts(const struct gf_ledger *l, const char *member,
                          const char *ns);

/* Lookups: returned-borrowed, NULL when absent. */
const struct gf_ledger_member *gf_ledger_member(const struct gf_ledger *l,
                                                const char *member);
const struct gf_ledger_cq *gf_ledger_cq(const struct gf_ledger *l,
                                        const char *member, const char *cq);
const struct gf_ledger_cell *gf_ledger_cell(const struct gf_ledger *l,
                                            const char *member, const char *cq,
                                            const char *flavor,
                                            const char *resource);
const struct gf_ledger_wl *gf_ledger_workload(const struct gf_ledger *l,
                                              const char *member,
                                              const char *ns, const char *name);
const struct gf_ledger_lease *gf_ledger_lease(const struct gf_ledger *l,
                                              const char *name);
/* GPUs lent by lender to borrower through holding leases. */
int64_t gf_ledger_pair_lent(const struct gf_ledger *l, const char *lender,
                            const char *borrower);
/*
 * Leases of one origin Workload: how many still hold quota, and the
 * highest epoch seen (0 when none). S1 rests on live == 0 before a new
 * lease is started.
 */
void gf_ledger_workload_leases(const struct gf_ledger *l, const char *member,
                               const char *ns, const char *name, size_t *live,
                               uint64_t *max_epoch);

/*
 * Iteration (order unspecified; sort when order matters). The pending
 * Workloads (PENDING, with a known ClusterQueue): first, then next of the
 * previous one, NULL at the end; any update of the ledger ends the walk.
 */
const struct gf_ledger_wl *gf_ledger_pending_first(const struct gf_ledger *l);
const struct gf_ledger_wl *gf_ledger_pending_next(const struct gf_ledger *l,
                                                  const struct gf_ledger_wl *w);
size_t gf_ledger_n_pending(const struct gf_ledger *l);
size_t gf_ledger_n_workloads(const struct gf_ledger *l);
/* Fills out[0..n) with up to cap leases; returns the total count. */
size_t gf_ledger_leases(const struct gf_ledger *l,
                        const struct gf_ledger_lease **out, size_t cap);
size_t gf_ledger_workloads(const struct gf_ledger *l,
                           const struct gf_ledger_wl **out, size_t cap);
size_t gf_ledger_members(const struct gf_ledger *l,
                         const struct gf_ledger_member **out, size_t cap);
size_t gf_ledger_cqs(const struct gf_ledger *l, const struct gf_ledger_cq **out,
                     size_t cap);

/*
 * Kueue arithmetic on one cell (see docs/policy.md, "Ledger"):
 *   lendable part   L = min(lendingLimit, nominal), or nominal if unset
 *   guaranteed      G = nominal - L (never lent)
 *   in use          U = used + reserved
 *   borrowed        = max(0, U - nominal)          (Kueue's "borrowed")
 *   free            = max(0, nominal - U - lease_out)
 *   lendable        = max(0, L - max(0, U - G) - lease_out)
 * gf_ledger_lendable() returns GF_ESTALE (and *out = 0) when the cell's
 * member is not SYNCED: unknown is never read as zero usage.
 */
int64_t gf_ledger_cell_borrowed(const struct gf_ledger_cell *c);
int64_t gf_ledger_cell_free(const struct gf_ledger_cell *c);
int gf_ledger_lendable(const struct gf_ledger_cell *c, int64_t *out);
/* Headroom under borrowingLimit: INT64_MAX when unset. */
int64_t gf_ledger_cell_borrow_headroom(const struct gf_ledger_cell *c);

/*
 * Recomputes every aggregate from the stored Workloads, ClusterQueues and
 * leases and compares with the incremental values. 0 when they agree,
 * else -EINVAL with a description of the first difference in why.
 */
int gf_ledger_verify(const struct gf_ledger *l, char *why, size_t cap);

const char *gf_freshness_name(enum gf_freshness f);
const char *gf_wl_state_name(enum gf_wl_state s);

#endif
