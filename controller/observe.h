/*
 * observe: what the hub keeps of the objects it watches, projected from
 * JSON as the API server returns it into small owned structs, and the
 * QuotaLease <-> struct gf_lease mapping.
 *
 * The hub's stores (kubeclient/store.h) never keep JSON: each watched
 * object passes once through a projection here and only the fields the
 * protocol reads survive. That is what keeps a tracked Workload near its
 * 2 KB budget, and it puts every reading of Kueue's API in one place, so
 * that a rule such as "how many GPUs does this Workload ask for" has one
 * answer in the hub, written down next to the Kueue document it follows.
 *
 * Rules that matter (docs/controller.md, "Observation", has the details):
 * - GPUs of a Workload are counted as Kueue counts them: per pod,
 *   max(sum of containers (+ sidecars), max of init containers (+ the
 *   sidecars started before each)) + overhead, a request defaulting to
 *   the limit; times count; over all podSets; milli-units rounded up to
 *   whole units (a pod that asks for 500m of a GPU holds a whole one).
 * - ClusterQueue quotas are in whole units rounded down (a quota of 1500m
 *   lends 1, never 2); a quantity too large to count saturates.
 * - pending_since is the latest of creation, the last eviction and the
 *   last requeue (see gf_obs_workload).
 * - Keys with dots (nvidia.com/gpu, kueue.x-k8s.io/queue-name) are read
 *   key by key, never through a dotted path.
 *
 * Malformed input (a wrong type, an unparsable quantity or time, a sum
 * that overflows) is refused with a negative errno and never crashes or
 * aborts: the projections are fuzzed (controller/fuzz/fuzz_observe.c).
 *
 * Ownership: projections return owned structs (free with the matching
 * _free, which accepts NULL); every string in them is owned. JSON inputs
 * are borrowed. Pure: no I/O, no clock, loop thread only.
 */
#ifndef GF_CONTROLLER_OBSERVE_H
#define GF_CONTROLLER_OBSERVE_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/ledger.h"
#include "policy/lease.h"

/* Label of the queues gpufed creates and owns in a lender. */
#define GF_LABEL_MANAGED_BY "app.kubernetes.io/managed-by"
#define GF_MANAGED_BY_GPUFED "gpufed"
/* Namespace label: a lender namespace that accepts copies. */
#define GF_LABEL_ACCEPT_OVERFLOW "gpufed.io/accept-overflow"
/*
 * Loans (docs/controller.md, "Loans"). The borrower's grant is gpufed's
 * ClusterQueue GF_LOAN_CQ_PREFIX + the borrowing ClusterQueue's name in
 * the borrower; the lender's hold is the Workload GF_HOLD_PREFIX + the
 * lease's name in GF_LOAN_NS, labelled and annotated gpufed.io/lease.
 */
#define GF_LOAN_CQ_PREFIX "gpufed-loan-"
#define GF_HOLD_PREFIX "gpufed-hold-"
#define GF_LOAN_NS "gpufed-system"
#define GF_ANN_LOANS "gpufed.io/loans"
#define GF_ANN_LOAN_REVOKED_AT "gpufed.io/loan-revoked-at"
/* On a loan's origin W: the lease, written before its grant is raised and
 * removed when the loan ends; the borrower's agent fences W by it. */
#define GF_ANN_LOAN "gpufed.io/loan"
/* On another Workload of the borrowing cohort that the agent deactivated
 * because the cohort was over its quota without the reverted grant: the
 * lease whose release reactivates it. */
#define GF_ANN_FENCED_FOR_LOAN "gpufed.io/fenced-for-loan"
#define GF_ANN_RECLAIM_DEADLINE "gpufed.io/reclaim-deadline"
/* More flavor x resource cells than Kueue's CRD allows: -E2BIG. */
#define GF_OBS_MAX_QUOTAS 4096
/* Transitions kept in a QuotaLease status (the CRD's maxItems). */
#define GF_OBS_MAX_TRANSITIONS 32

/* A kueue.x-k8s.io Workload, projected. */
/* Kueue's reasons for condition Preempted (Workload status). */
enum gf_obs_preempt {
    GF_OBS_PREEMPT_NONE,
    GF_OBS_PREEMPT_IN_CLUSTER_QUEUE,
    GF_OBS_PREEMPT_IN_COHORT_RECLAMATION,
    GF_OBS_PREEMPT_IN_COHORT_FAIR_SHARING,
    GF_OBS_PREEMPT_IN_COHORT_RECLAIM_WHILE_BORROWING,
    GF_OBS_PREEMPT_OTHER, /* a reason this build does not know */
};
/* "InClusterQueue", ...; "" for NONE, "Preempted" for OTHER. */
const char *gf_obs_preempt_name(enum gf_obs_preempt p);

struct gf_obs_workload {
    char *ns, *name, *uid; /* uid NULL when absent */
    char *local_queue;     /* spec.queueName, or NULL */
    /* The controller ownerReference: "batch/Job" (apiVersion group + "/" +
     * kind; the core group as "Kind"), or NULL. */
    char *owner_kind;
    char *owner_name, *owner_uid;
    /* status.admission: the flavor assigned to the federated resource (the
     * first podSet that has one), or NULL. */
    char *flavor;
    char *lease;      /* annotation gpufed.io/lease, or NULL */
    int64_t gpus;     /* federated resource requested, whole units */
    int32_t priority; /* spec.priority, 0 when unset */
    bool active;      /* spec.active, default true */
    /* Conditions QuotaReserved, Admitted, Finished, Evicted are True. */
    bool quota_reserved, admitted, finished, evicted;
    bool succeeded; /* Finished with reason Succeeded */
    /* A loan's notes on its origin: gpufed.io/loan-revoked-at is set,
     * and gpufed.io/reclaim-deadline parsed (0 when absent or not a
     * time). */
    bool loan_revoked;
    int64_t reclaim_deadline_ms;
    /* annotations gpufed.io/loan and gpufed.io/fenced-for-loan (or NULL),
     * and whether the agent's gpufed.io/fenced-at is set */
    char *loan, *fenced_for;
    bool fenced;
    /* annotation gpufed.io/reclaimed-at is set: the hub deactivated it
     * for a reclaim (a copy) */
    bool reclaimed;
    /* The reason of condition Preempted=True (Kueue's), or NONE. */
    enum gf_obs_preempt preempted;
    int64_t created_ms;
    /*
     * When it last started waiting: the latest of creationTimestamp, the
     * lastTransitionTime of Evicted=True, that of Requeued=True and
     * status.requeueState.requeueAt. This is Kueue's queue-order
     * timestamp with its default requeuing strategy (Eviction): a
     * Workload that was evicted, deactivated and reactivated, or backed
     * off after PodsReadyTimeout (Kueue's Workload concept page,
     * "Exponential Backoff Requeueing") queues again from that moment, so
     * overflowAfter counts from there and not from its creation.
     */
    int64_t pending_since_ms;
    /*
     * The hub's own clock when it first saw this pending_since_ms, or 0:
     * set by the member feed, not by the projection (which has no clock).
     * The API's timestamps have whole seconds, so a Workload created at
     * 12:00:00.900 reads as 12:00:00; counted from there, every Workload
     * of one second would reach overflowAfter at the same instant, up to
     * 999 ms early. gf_obs_workload_to_ledger counts from the moment
     * first seen instead, kept within the second the API names.
     */
    int64_t pending_seen_ms;
    /* The strings live in the struct's own block (what the projection
     * returns: one allocation per tracked Workload, not ten). */
    bool packed;
};

/* A ClusterQueue, projected. */
struct gf_obs_cq {
    char *name;
    char *cohort; /* spec.cohortName (v1beta2), or NULL */
    /* Every flavor x resource of spec.resourceGroups, in spec order;
     * flavor and resource strings are owned by this struct. */
    struct gf_cq_quota *quotas;
    size_t n_quotas;
    bool managed_by_gpufed; /* label app.kubernetes.io/managed-by=gpufed */
    /* managed_by_gpufed and named GF_LOAN_CQ_PREFIX...: a loan's grant */
    bool loan_grant;
    /* A grant's annotation gpufed.io/loans: the leases counted in its
     * nominal quota, comma-separated; NULL when absent. */
    char *loans;
    bool stopped; /* spec.stopPolicy set and not None */
    /*
     * status.flavorsUsage[].resources[].total of quotas[i], in whole
     * units rounded up (0 where the status names none), parallel to
     * quotas. Kueue writes it from its own cache with every admission, so
     * it counts every Workload that holds this queue's quota: gpufed's
     * copies and holds as well as the members' own.
     */
    int64_t *usage;
    /*
     * Kueue has written the status since the spec last changed: the
     * Active condition's observedGeneration is metadata.generation. Until
     * then usage may predate a quota change (a lowered grant), and an
     * unreadable flavorsUsage leaves it false too (unknown is not zero).
     */
    bool status_current;
};

/* A LocalQueue, projected. */
struct gf_obs_lq {
    char *ns, *name, *cluster_queue;
};

/* A batch/v1 Job, projected. */
struct gf_obs_job {
    char *ns, *name, *uid;
    char *queue_name; /* label kueue.x-k8s.io/queue-name */
    /* Labels gpufed.io/lease, origin-uid, origin-cluster (copies only). */
    char *lease, *origin_uid, *origin_cluster;
    uint64_t epoch; /* label gpufed.io/epoch, 0 absent or malformed */
    char *outcome;  /* annotation gpufed.io/outcome */
    /* annotation gpufed.io/reclaim-deadline, 0 absent or malformed */
    int64_t reclaim_deadline_ms;
    bool suspended; /* spec.suspend */
    bool complete;  /* condition Complete True */
    bool failed;    /* condition Failed True */
    bool deleting;  /* metadata.deletionTimestamp set */
    /* completionTime, else the Complete/Failed condition's
     * lastTransitionTime (the API server sets completionTime only on
     * success); 0 while running. */
    int64_t finished_ms;
};

/* A Namespace: accept_overflow is label gpufed.io/accept-overflow ==
 * "true". */
struct gf_obs_ns {
    char *name;
    bool accept_overflow;
};

/*
 * Store projections (gf_store_project_fn). data is the federated resource
 * name (const char *, "nvidia.com/gpu") for Workloads and ignored for the
 * others. 0 with *out, or a negative error for a malformed object (*out
 * untouched, nothing allocated): -EINVAL (wrong type, unparsable
 * quantity or time, missing name), -ERANGE (a GPU sum that overflows),
 * -E2BIG (more quota cells than Kueue allows).
 */
int gf_obs_workload_project(void *data, const cJSON *obj, void **out);
int gf_obs_cq_project(void *data, const cJSON *obj, void **out);
int gf_obs_lq_project(void *data, const cJSON *obj, void **out);
int gf_obs_job_project(void *data, const cJSON *obj, void **out);
int gf_obs_ns_project(void *data, const cJSON *obj, void **out);
/* QuotaLeases: *out is a struct gf_lease (gf_obs_lease_from_json). */
int gf_obs_lease_project(void *data, const cJSON *obj, void **out);
void gf_obs_workload_free(void *p);
void gf_obs_cq_free(void *p);
void gf_obs_lq_free(void *p);
void gf_obs_job_free(void *p);
void gf_obs_ns_free(void *p);
void gf_obs_lease_free(void *p);

/*
 * One cohort's quota and usage of one flavor and resource, as Kueue's
 * ClusterQueue status reports it: gf_obs_cohort_add over every
 * ClusterQueue of a member (those of other cohorts are skipped) sums
 * their nominal quota and their status usage, gpufed's own overflow and
 * grant queues included. stale is set when one of the cohort's queues
 * has a status older than its spec: the sums are then not to be trusted.
 * The strings are borrowed; set them and zero the rest before the walk.
 */
struct gf_obs_cohort {
    const char *cohort, *flavor, *resource;
    int64_t nominal, usage;
    bool stale;
};
void gf_obs_cohort_add(struct gf_obs_cohort *s, const struct gf_obs_cq *q);

/*
 * The ledger's view of a Workload; strings are borrowed from w and the
 * arguments. state: FINISHED (Finished), else INACTIVE (active=false),
 * ADMITTED, RESERVED (QuotaReserved, not yet Admitted), else PENDING.
 * flavor only when it holds quota; kind from owner_kind ("batch/Job" when
 * unknown).
 */
/*
 * When w started waiting, to the millisecond where the hub saw it happen:
 * pending_seen_ms kept within the second pending_since_ms names (a
 * sub-second pending_since_ms, or none seen, is taken as it is). Never
 * earlier than pending_since_ms, so overflowAfter is never cut short,
 * and at most 999 ms later (a Workload first seen long after, at a cold
 * start, counts from the end of its second).
 */
int64_t gf_obs_workload_pending_ms(const struct gf_obs_workload *w);

void gf_obs_workload_to_ledger(const struct gf_obs_workload *w,
                               const char *member, const char *cluster_queue,
                               struct gf_workload *out);
enum gf_wl_state gf_obs_workload_state(const struct gf_obs_workload *w);

/*
 * A QuotaLease object into *out (zeroed first; free with
 * gf_lease_clear()). The object must follow the CRD
 * (manifests/hub/crd-quotalease.yaml): every required spec field with its
 * type, bounds (epoch >= 1, gpus >= 1, string lengths) and enums, times
 * in RFC 3339. status may be absent: a lease just created is Pending.
 * Returns 0, or -EINVAL with why (one sentence naming the field) and *out
 * zeroed. origin_job is spec.origin.jobName (NULL when absent).
 */
int gf_obs_lease_from_json(const cJSON *ql, struct gf_lease *out, char *why,
                           size_t why_cap);

/*
 * The QuotaLease to create for l in namespace ns: apiVersion
 * gpufed.io/v1alpha1, kind QuotaLease, metadata (name, namespace, the
 * labels app.kubernetes.io/managed-by=gpufed and gpufed.io/origin-uid),
 * spec from the lease with resource, and a status with the phase, reason
 * and times. The server drops status on create (status subresource): the
 * writer follows with gf_obs_lease_status_patch. The status is there so
 * that to_json and from_json are inverse (times to the second, as
 * Kubernetes keeps them). Returned-owned (cJSON_Delete).
 */
cJSON *gf_obs_lease_to_json(const struct gf_lease *l, const char *ns,
                            const char *resource);

/*
 * A merge patch for the status subresource ({"status":{...}}): phase,
 * reason and message (removed when NULL), startedAt, expiresAt,
 * reclaimStarted and reclaimDeadline when nonzero (the last two with
 * milliseconds), and transitions: those of cur_status (the QuotaLease's current
 * status, may be NULL) plus {phase, reason, epoch, time = now}, keeping
 * the last GF_OBS_MAX_TRANSITIONS. A merge patch replaces arrays whole,
 * hence the copy. Returned-owned string (cJSON_free).
 */
char *gf_obs_lease_status_patch(const cJSON *cur_status, const char *phase,
                                const char *reason, const char *message,
                                uint64_t epoch, int64_t now_wall_ms,
                                int64_t started_ms, int64_t expires_ms,
                                int64_t reclaim_started_ms,
                                int64_t reclaim_deadline_ms);

/* RFC 3339 UTC with milliseconds ("2026-12-06T08:33:50.123Z"): a
 * reclaim's instants (status.reclaimStarted and reclaimDeadline, the
 * copies' gpufed.io/reclaim-deadline and reclaimed-at). */
#define GF_OBS_TIME_MAX 40
void gf_obs_time_ms(int64_t wall_ms, char out[GF_OBS_TIME_MAX]);

/*
 * GPUs of one pod template spec (a v1 PodSpec) for resource, in
 * milli-units, by Kueue's rule above. 0, -EINVAL, -ERANGE.
 */
int gf_obs_pod_milli(const cJSON *pod_spec, const char *resource,
                     int64_t *milli);

#endif
