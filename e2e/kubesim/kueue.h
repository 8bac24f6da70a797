/*
 * kueue: Kueue-lite, the in-process Kueue of one simulated cluster.
 *
 * It behaves as Kueue does for the fields of the upstream CRDs (storage
 * version v1beta2): ResourceFlavors (nodeLabels); ClusterQueues with
 * resourceGroups (nominalQuota, borrowingLimit, lendingLimit),
 * cohortName, namespaceSelector, preemption (withinClusterQueue,
 * reclaimWithinCohort, borrowWithinCohort), flavorFungibility,
 * queueingStrategy and stopPolicy; Cohorts with their own quota (flat:
 * parentName is not followed); LocalQueues; Workloads, one created for
 * every batch/v1 Job carrying the kueue.x-k8s.io/queue-name label (the
 * Job is kept suspended until its Workload is admitted, and gets its
 * flavors' nodeLabels in its nodeSelector when it starts), or created
 * directly (pod-less Workloads are admitted as quota holds). Admission
 * runs in Kueue's scheduling cycles (the heads of all ClusterQueues,
 * those fitting nominal quota first), with flavors per pod set and
 * Kueue's classic preemption. It writes the status Kueue writes:
 * Workload admission and conditions, ClusterQueue and LocalQueue usage,
 * counts and Active conditions. docs/kubesim.md lists where it differs
 * from Kueue.
 *
 * It works as a controller: it observes the cluster's store (store.h),
 * keeps an index of what it needs, and writes through the store, so every
 * change it makes is a watch event with a resourceVersion. Events only
 * mark the controller dirty; one reconcile runs per loop turn (a 0 ms
 * timer on the cluster's clock). While the cluster has an active
 * kueue-frozen fault it makes no admission or status change and looks
 * again every 100 ms of cluster time.
 *
 * Ownership: the controller borrows the store, clock and faults, which
 * must outlive it. Loop thread only.
 */
#ifndef GF_KS_KUEUE_H
#define GF_KS_KUEUE_H

#include <stdint.h>

#include "common/clock.h"
#include "e2e/kubesim/fault.h"
#include "e2e/kubesim/store.h"

struct gf_ks_kueue;

struct gf_ks_kueue_opts {
    struct gf_ks_store *store;   /* required */
    struct gf_clock *clock;      /* required */
    struct gf_ks_faults *faults; /* NULL = never frozen */
    const char *cluster;         /* for logs; copied; may be NULL */
};

/*
 * Starts Kueue-lite on a store: indexes the objects already there and
 * schedules a first reconcile. Returned-owned; free with
 * gf_ks_kueue_free(). Never NULL.
 */
struct gf_ks_kueue *gf_ks_kueue_new(const struct gf_ks_kueue_opts *o);
/* Stops observing, stops its timer, frees everything. Accepts NULL. */
void gf_ks_kueue_free(struct gf_ks_kueue *k);

/* Counters, for tests and the cost figures in docs/kubesim.md. */
struct gf_ks_kueue_stats {
    uint64_t reconciles; /* reconcile passes that ran (not frozen) */
    uint64_t writes;     /* store writes made */
    uint64_t admitted;   /* admissions */
    uint64_t evicted;    /* evictions (preemption, deactivation, drain) */
    uint64_t frozen;     /* passes skipped by the kueue-frozen fault */
    /* Workloads the passes' steps looked at: a step walks the Workloads
     * it may act on (not finished, deactivated ones), so a change costs
     * what it touches, not the size of the cluster. */
    uint64_t walked;
    /* Queue status writes tried: a pass that changes nothing a queue's
     * status says makes none. */
    uint64_t queue_writes;
};
void gf_ks_kueue_stats(const struct gf_ks_kueue *k,
                       struct gf_ks_kueue_stats *out);

/*
 * Runs the reconcile now if one is pending (tests use it in place of a
 * loop turn; gf_clock_advance(clock, 0) does the same).
 */
void gf_ks_kueue_flush(struct gf_ks_kueue *k);

#endif
