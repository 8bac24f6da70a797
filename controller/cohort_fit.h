/*
 * cohort_fit: which Workloads a fenced borrower's agent stops so that a
 * cohort whose loans' grants it reverted fits its own quota again
 * (docs/controller.md, "Loans", "Fencing"; docs/failure-semantics.md).
 *
 * Kueue pools a cohort's quota: a grant raised for a loan's Workload W
 * may have admitted other Workloads of the cohort ahead of W, which carry
 * no loan mark. Kueue evicts nothing when a nominal quota drops, so after
 * the agent sets the grants to 0 and stops the marked Workloads such a
 * cohort can stay above the sum of its ClusterQueues' nominal quota, with
 * no hold behind the excess once the hub has deleted it at its fencing
 * instant (S2). The rule: per cohort that held a reverted grant, and per
 * flavor and resource of that grant, the usage of the Workloads that keep
 * their quota is compared with the sum of the cohort's nominal quota; while
 * it is above, the newest-admitted Workload that uses an over cell is
 * stopped. Workloads the fence stops anyway (copies, loan-marked ones) and
 * inactive or finished ones count as gone first: that is "loan-marked
 * first". A hold (the hub's, for a loan this cluster gives) is never
 * chosen; it still counts, as Kueue counts it.
 *
 * Usage comes from each Workload's status.admission (clusterQueue,
 * podSetAssignments' flavors and resourceUsage), not from the
 * ClusterQueues' status: it must say who holds what, and what is left once
 * the chosen ones are gone.
 *
 * Pure: no I/O, no clock. Inputs are borrowed for the call; the plan's
 * strings point into them. Deterministic: the same inputs in any order give
 * the same stops (newest admission first, ties by key, larger first).
 * Loop thread only.
 */
#ifndef GF_CONTROLLER_COHORT_FIT_H
#define GF_CONTROLLER_COHORT_FIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An amount of one resource of one flavor, in milli-units. */
struct gf_fit_amount {
    const char *flavor, *resource;
    int64_t milli;
};

struct gf_fit_cq {
    const char *name;
    const char *cohort; /* spec.cohortName, or NULL */
    /* spec.resourceGroups' nominalQuota, per flavor and resource */
    const struct gf_fit_amount *nominal;
    size_t n_nominal;
    /*
     * A loan's grant (gpufed-loan-*) that the agent reverted and that
     * lends nothing now: the lease whose release reactivates what is
     * stopped for its cohort. NULL for every other ClusterQueue, and for a
     * grant that still lends (the plan runs only once none does).
     */
    const char *lease;
};

struct gf_fit_wl {
    const char *key; /* namespace/name */
    /* status.admission.clusterQueue: NULL when it holds no quota */
    const char *cq;
    const struct gf_fit_amount *uses; /* resourceUsage per flavor */
    size_t n_uses;
    int64_t admitted_ms; /* QuotaReserved's lastTransitionTime; 0 unknown */
    /* Its quota is on its way back whatever this plan says: inactive,
     * finished, or stopped by the fence's other rules (a copy, a
     * Workload marked with a loan). */
    bool leaving;
    bool keep; /* never stopped here: a hold */
};

/* One Workload to stop, and why. */
struct gf_fit_stop {
    size_t wl; /* index into the Workloads given */
    const char *cohort, *lease;
    /* The first cell found over its quota when this one was chosen. */
    const char *flavor, *resource;
    int64_t used_milli, nominal_milli;
};

/*
 * The Workloads to stop, into out (room for n_wls entries, which is
 * always enough). Returns how many. A cohort that cannot be brought within
 * its quota by stopping what may be stopped (only holds are left) gets as
 * many stops as there are candidates.
 */
size_t gf_fit_plan(const struct gf_fit_cq *cqs, size_t n_cqs,
                   const struct gf_fit_wl *wls, size_t n_wls,
                   struct gf_fit_stop *out);

#endif
