/*
 * lease: the plain-struct form of a QuotaLease (DESIGN.md §3), shared by
 * policy/ (which counts leases in the ledger and decides their next step)
 * and controller/ (which fills them from QuotaLease objects and writes
 * their phase transitions back).
 *
 * A lease records one borrowing: origin Workload, lender ClusterQueue and
 * flavor, GPUs, epoch and phase. Times are milliseconds on the caller's
 * clock (the same one it passes to decide() as now_ms).
 *
 * Ownership: every string of a struct gf_lease belongs to whoever holds
 * the struct; gf_lease_copy() makes a deep copy and gf_lease_clear() frees
 * one. Pure code, loop thread only.
 */
#ifndef GF_POLICY_LEASE_H
#define GF_POLICY_LEASE_H

#include <stdbool.h>
#include <stdint.h>

enum gf_lease_phase {
    GF_LEASE_PENDING,    /* recorded; origin held; copy not yet admitted */
    GF_LEASE_ACTIVE,     /* the copy (or the loan) holds quota in lender */
    GF_LEASE_RELEASING,  /* finishing; the copy is being removed */
    GF_LEASE_RECLAIMING, /* the lender wants it back; victims marked */
    GF_LEASE_RELEASED,   /* final: nothing holds quota any more */
    GF_LEASE_SUSPECT,    /* lender unreachable: counted as used, unknown */
    GF_LEASE_FENCED,     /* fencing time passed: the agent has stopped it */
    GF_LEASE_EXPIRED,    /* term ran out; the copy may still exist */
    GF_LEASE_FAILED,     /* final: the copy was never created */
    GF_LEASE_PHASE_COUNT
};

enum gf_lease_mode { GF_LEASE_REDIRECT, GF_LEASE_LOAN };

struct gf_lease {
    char *name;  /* QuotaLease name in the hub, unique */
    char *group; /* policy group */
    enum gf_lease_mode mode;
    enum gf_lease_phase phase;
    uint64_t epoch; /* one higher for each new lease of the same Workload */
    char *origin_member, *origin_namespace, *origin_name, *origin_uid;
    char *origin_job; /* the Job that owns the origin Workload, or NULL */
    char *origin_cq;
    char *lender_member, *lender_cq, *lender_flavor;
    int64_t gpus;
    int32_t priority;
    int64_t created_ms;
    int64_t started_ms;          /* became Active; 0 if never */
    int64_t expires_ms;          /* end of the current term */
    int64_t reclaim_deadline_ms; /* victims are evicted after it; 0 none */
    int64_t reclaim_started_ms;  /* turned Reclaiming; 0 never */
    char *reason;                /* reason of the last transition, or NULL */
};

/* Deep copy: dst is overwritten (not freed first) and owns its strings. */
void gf_lease_copy(struct gf_lease *dst, const struct gf_lease *src);
/* Frees the strings and zeroes the struct. Accepts a zeroed struct. */
void gf_lease_clear(struct gf_lease *l);

/* "Pending", "Active", ... as written in QuotaLease status.phase. */
const char *gf_lease_phase_name(enum gf_lease_phase p);
/* 0 or -EINVAL. */
int gf_lease_phase_parse(const char *s, enum gf_lease_phase *out);
const char *gf_lease_mode_name(enum gf_lease_mode m);
int gf_lease_mode_parse(const char *s, enum gf_lease_mode *out);

/*
 * Whether a lease in this phase still counts against quota. Unknown is not
 * zero: Suspect and Expired leases hold their GPUs until observation or
 * fencing proves the copy stopped; only Released, Fenced and Failed free
 * them.
 */
bool gf_lease_holds_quota(enum gf_lease_phase p);

#endif
