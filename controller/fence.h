/*
 * fence: the fencing agent's decisions, without I/O (docs/controller.md,
 * "The agent"; DESIGN.md §4).
 *
 * Heartbeat. The hub renews the Lease gpufed-system/gpufed-heartbeat in
 * every member every D/3. The agent reads it with a plain GET every D/6
 * and keeps a credit, a time on its own monotonic clock before which the
 * hub is known to have been alive and writing:
 *   - when a read shows a renewTime different from the previous
 *     successful read, credit := the send time of that previous read.
 *     However many reads failed in between, the renewal landed after that
 *     read was served, so the credit is never later than the renewal;
 *   - at start (the first answered read) nothing has been seen to move:
 *     a Lease that is absent, unparsable or older than D by the agent's
 *     wall clock (max_clock_offset added to its age) fences at once;
 *     otherwise credit := now - age - max_clock_offset;
 *   - the agent fences when now - credit >= D;
 *   - a read that finds the Lease absent after one that found it present
 *     fences at once: it was deleted by hand, and whoever creates it
 *     next does not know the term this agent believed.
 * While fenced it stays fenced until the heartbeat moves again (a
 * renewTime newer than the one it last saw, with a credit that is not
 * itself lapsed). Failed or unparsable reads never give credit.
 *
 * Copies. A copy is a Job labelled gpufed.io/lease; its Workload is
 * Kueue's, found by the controller ownerReference (the Job's uid).
 * While fenced every copy that has not finished gets its Workload
 * deactivated (spec.active=false) with the annotation gpufed.io/fenced-at;
 * a copy whose Workload does not exist yet waits for it. Nothing is ever
 * reactivated here: what happens next is the hub's decision.
 *
 * Loans. The hub marks a loan's origin Workload with gpufed.io/loan before
 * it raises the grant (docs/controller.md, "Loans"). While fenced the
 * grants are reverted, and then every marked Workload that is active and
 * not finished is deactivated the same way as a copy's: Kueue does not
 * evict what it admitted when a nominal quota drops, and the hub deletes
 * the hold that backs the grant at its own fencing time, which comes
 * after the agent's by construction. The revert comes first because a
 * grant that still stands lets Kueue admit others into the quota a
 * deactivated Workload frees. Then the per-cohort rule
 * (controller/cohort_fit.h) stops what the grant admitted ahead of the
 * marked Workloads, with gpufed.io/fenced-for-loan naming the lease whose
 * release reactivates it.
 *
 * Pure: times are arguments, no clock reads, no I/O. Projections return
 * owned structs (free with the matching _free, which accepts NULL).
 * Loop thread only.
 */
#ifndef GF_CONTROLLER_FENCE_H
#define GF_CONTROLLER_FENCE_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/htab.h"
#include "controller/cohort_fit.h"
#include "kubeclient/store.h"

#define GF_HEARTBEAT_NS "gpufed-system"
#define GF_HEARTBEAT_NAME "gpufed-heartbeat"
#define GF_ANN_FENCED_AT "gpufed.io/fenced-at"
/* D before the first read that carries one (fs-design: 30 s). */
#define GF_FENCE_DEFAULT_D_MS 30000u
/* Room for a renewTime as written (MicroTime is 27 characters). */
#define GF_FENCE_RENEW_MAX 64

/* One read of the heartbeat Lease. */
struct gf_hb_read {
    bool present; /* false: 404, the Lease does not exist */
    /* spec.renewTime parsed and spec.leaseDurationSeconds >= 1 */
    bool valid;
    char renew[GF_FENCE_RENEW_MAX]; /* spec.renewTime as written */
    int64_t renew_wall_ms;
    uint64_t d_ms; /* spec.leaseDurationSeconds in ms */
};

/*
 * A Lease object into *out (present = true; valid says whether it could
 * be read). Always fills *out; returns 0 when valid, else -EINVAL.
 */
int gf_fence_lease_parse(const cJSON *lease, struct gf_hb_read *out);

enum gf_fence_change {
    GF_FENCE_SAME,  /* the fenced state did not change */
    GF_FENCE_ENTER, /* fence now */
    GF_FENCE_LEAVE, /* the heartbeat moved again */
};

/* The heartbeat watch. Treat as read-only outside this module. */
struct gf_fence {
    uint64_t max_offset_ms;
    uint64_t d_ms;   /* D in force */
    bool answered;   /* a read has been answered: the start rule ran */
    bool has_credit; /* credit_ms is known */
    int64_t credit_ms;
    /* The last successful read: its value and send time. */
    bool has_prev, prev_present;
    char prev_renew[GF_FENCE_RENEW_MAX];
    uint64_t prev_sent_ms;
    bool fenced;
    uint64_t fenced_since_ms;
    uint64_t fences; /* times it entered the fenced state */
};

void gf_fence_init(struct gf_fence *f, uint64_t max_offset_ms);

/*
 * A read was answered: r (borrowed) is what it showed, sent_ms the
 * monotonic time the request was sent, now_ms and wall_now_ms the times
 * the answer arrived. Returns the change of the fenced state.
 */
enum gf_fence_change gf_fence_on_read(struct gf_fence *f,
                                      const struct gf_hb_read *r,
                                      uint64_t sent_ms, uint64_t now_ms,
                                      int64_t wall_now_ms);
/* Time passes: fences when now - credit >= D. */
enum gf_fence_change gf_fence_tick(struct gf_fence *f, uint64_t now_ms);
/* When the fence is due (credit + D), or UINT64_MAX when fenced or when
 * no credit is known. */
uint64_t gf_fence_deadline(const struct gf_fence *f);
/* While fenced, the copies are listed afresh at least this often. */
#define GF_FENCE_FENCED_POLL_MS 1000
/* The poll period: D/6 (at least 50 ms), and at most
 * GF_FENCE_FENCED_POLL_MS while fenced. */
uint64_t gf_fence_poll_ms(const struct gf_fence *f);
/* now - credit, or -1 when no credit is known. */
int64_t gf_fence_age_ms(const struct gf_fence *f, uint64_t now_ms);

/* --- copies ------------------------------------------------------------ */

/* A copy Job, projected (Jobs without the gpufed.io/lease label are
 * skipped). */
struct gf_fence_job {
    char *uid;
    bool finished; /* condition Complete or Failed is True */
};

/* A Workload, projected. */
struct gf_fence_wl {
    char *owner_uid; /* the controller ownerReference of kind Job, or NULL */
    bool active;     /* spec.active, default true */
    bool finished;   /* condition Finished is True */
    bool loan;       /* the loan mark gpufed.io/loan is set */
    /* status.admission (the per-cohort rule, controller/cohort_fit.h):
     * its ClusterQueue (NULL when it holds no quota) and its
     * resourceUsage per flavor, strings owned; QuotaReserved's
     * lastTransitionTime (0 when unknown). */
    char *cq;
    struct gf_fit_amount *uses;
    size_t n_uses;
    int64_t admitted_ms;
};

/* A ClusterQueue, projected for the per-cohort rule. */
struct gf_fence_cq {
    char *name, *cohort;
    struct gf_fit_amount *nominal; /* strings owned */
    size_t n_nominal;
    /* A grant (gpufed-loan-*, managed-by gpufed): the first lease of
     * gpufed.io/loans, else of gpufed.io/reverted-loans; NULL otherwise. */
    char *lease;
    bool grant;
    bool lends; /* a grant with a nominalQuota other than 0, or loans */
};

/* Store projections (kubeclient/store.h); data is ignored. */
int gf_fence_job_project(void *data, const cJSON *obj, void **out);
int gf_fence_wl_project(void *data, const cJSON *obj, void **out);
int gf_fence_cq_project(void *data, const cJSON *obj, void **out);
void gf_fence_job_free(void *p);
void gf_fence_wl_free(void *p);
void gf_fence_cq_free(void *p);

/*
 * The index of Workloads by owner Job uid: an htab (owning its keys)
 * whose values are owned copies of the Workload's store key. Call on
 * every change of the Workload store (old or cur NULL for add and
 * delete); free with gf_fence_index_free.
 */
void gf_fence_index_update(struct gf_htab *idx,
                           const struct gf_store_entry *old,
                           const struct gf_store_entry *cur);
void gf_fence_index_free(struct gf_htab *idx);

enum gf_fence_act {
    GF_FENCE_ACT_FINISHED, /* leave it alone */
    GF_FENCE_ACT_WAIT,     /* its Workload does not exist yet */
    GF_FENCE_ACT_INACTIVE, /* already deactivated */
    GF_FENCE_ACT_PATCH,    /* deactivate its Workload */
};
/* What fencing does with one copy (w NULL: no Workload yet). */
enum gf_fence_act gf_fence_copy_act(const struct gf_fence_job *j,
                                    const struct gf_fence_wl *w);

/*
 * Calls fn for every copy whose Workload must be deactivated, with both
 * entries (borrowed for the call); counts the copies still waiting for
 * their Workload into *waiting (may be NULL). Returns the number of
 * calls. fn must not change the stores.
 */
size_t gf_fence_plan(const struct gf_store *jobs, const struct gf_store *wls,
                     const struct gf_htab *idx,
                     void (*fn)(void *data, const struct gf_store_entry *job,
                                const struct gf_store_entry *wl),
                     void *data, size_t *waiting);

/* --- loans ------------------------------------------------------------- */

/*
 * Calls fn for every Workload carrying the loan mark that is active and
 * not finished (the entry borrowed for the call). Returns the number of
 * calls. fn must not change the store.
 */
size_t gf_fence_loan_plan(const struct gf_store *wls,
                          void (*fn)(void *data,
                                     const struct gf_store_entry *wl),
                          void *data);

#define GF_FENCE_GRANT_PREFIX "gpufed-loan-"
#define GF_FENCE_ANN_LOANS "gpufed.io/loans"
/* On a grant the agent reverted: the leases gpufed.io/loans named, so
 * that the per-cohort rule can name one even after an agent restart. The
 * hub's next raise removes it. */
#define GF_FENCE_ANN_REVERTED_LOANS "gpufed.io/reverted-loans"
/* On a Workload the per-cohort rule stopped: the lease whose release
 * reactivates it (the hub's GF_ANN_FENCED_FOR_LOAN). */
#define GF_FENCE_ANN_FENCED_FOR_LOAN "gpufed.io/fenced-for-loan"

/*
 * The revert of a loan's grant (docs/controller.md, "Loans"): for a
 * ClusterQueue gpufed-loan-* labelled managed-by gpufed that still lends
 * anything (a nominalQuota other than 0, or leases in gpufed.io/loans), a
 * merge patch that sets every nominalQuota of its resourceGroups to 0 and
 * moves gpufed.io/loans to gpufed.io/reverted-loans. The quota it lent is the
 * lender's, backed by a hold the hub keeps only until the borrower is certainly
 * fenced; once the borrower cannot hear the hub it must stop using it. The
 * caller adds the resourceVersion precondition. NULL when there is nothing to
 * revert (another ClusterQueue, or a grant already at 0). Returned-owned
 * (cJSON_free).
 */
char *gf_fence_grant_patch(const cJSON *cq);

/* The merge patch that fences a Workload: spec.active=false and the
 * annotation gpufed.io/fenced-at (RFC 3339 of wall_ms), and with
 * for_lease (NULL: none) gpufed.io/fenced-for-loan = for_lease, which the
 * per-cohort rule writes. The caller adds the resourceVersion
 * precondition. Returned-owned (cJSON_free). */
char *gf_fence_patch_body(int64_t wall_ms, const char *for_lease);

#endif
