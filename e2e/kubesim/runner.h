/*
 * runner: the job runner of one simulated cluster, standing in for the
 * Job controller, the scheduler and the kubelets.
 *
 * The cluster gets `nodes` Node objects with `gpus_per_node` GPUs each
 * (nvidia.com/gpu), 64 cpu, 512Gi of memory and 110 pods. A batch/v1 Job
 * that is not suspended runs up to spec.parallelism Pods at a time until
 * spec.completions Pods (default: parallelism) have succeeded. Pods are
 * real objects in the store, so `kubectl get pods` shows them: created
 * Pending, bound to the first node whose labels match the Pod's
 * nodeSelector and that has room for its effective GPU, cpu, memory and
 * pod requests (Node label changes are followed), Running, then
 * Succeeded (or Failed) after the duration in the Job's annotation
 * kubesim.gpufed.io/duration ("90s"; the default otherwise), or at once
 * with kubesim.gpufed.io/fail: "true". A Pod no node can take gets
 * PodScheduled=False, reason Unschedulable, with the scheduler's message
 * ("0/4 nodes are available: 4 Insufficient nvidia.com/gpu."). Failed
 * Pods are replaced after the Job controller's back-off (10 s, doubling,
 * at most 6 min) until spec.backoffLimit (default 6) is exceeded. The
 * Job's status follows the Job controller's: startTime, completionTime,
 * active/ready/succeeded/failed, conditions SuccessCriteriaMet and
 * Complete, or FailureTarget and Failed, and Suspended while suspended.
 * Suspending a Job (Kueue's eviction) or deleting it deletes its Pods.
 *
 * Every Pod start (bound and Running) and stop (finished or deleted) is
 * one JSON line in the execution log, written with a single write(2) so
 * that readers tailing the file never see half a line:
 *   {"ts":"..Z","ts_ms":N,"event":"start"|"stop","cluster":..,
 *    "namespace":..,"job":..,"job_uid":..,"workload":..,"pod":..,
 *    "node":..,"labels":{..},"gpus":N,"reason":..}
 * reason is "Started" for starts and Succeeded, Failed, Suspended,
 * JobFinished, JobDeleted or PodDeleted for stops.
 *
 * While the cluster has an active kueue-frozen fault the runner makes no
 * progress (no Pod starts, ends or status writes) and looks again every
 * 100 ms of cluster time. All timing is on the cluster's clock, with
 * durations divided by the time scale.
 *
 * Ownership: the runner borrows the store, clock, faults and log fd.
 * Loop thread only.
 */
#ifndef GF_KS_RUNNER_H
#define GF_KS_RUNNER_H

#include <stdint.h>

#include "common/clock.h"
#include "e2e/kubesim/fault.h"
#include "e2e/kubesim/store.h"

struct gf_ks_runner;

struct gf_ks_runner_opts {
    struct gf_ks_store *store;   /* required */
    struct gf_clock *clock;      /* required */
    struct gf_ks_faults *faults; /* NULL = never frozen */
    const char *cluster;         /* for the log and Node names; copied */
    unsigned nodes;              /* 0 = 4 */
    unsigned gpus_per_node;      /* 0 = 8 */
    uint64_t default_ms;         /* duration without annotation; 0 = 60 s */
    int exec_log_fd;             /* O_APPEND file, or -1 for none */
    /*
     * Simulated seconds per clock second (gf_ks_cluster_time_scale); 0 =
     * 1. Durations are simulated: a Pod of "90s" at scale 10 runs 9 s of
     * the clock.
     */
    double time_scale;
};

/*
 * Creates the Nodes and starts observing Jobs and Pods (Jobs already in
 * the store are picked up). Returned-owned; never NULL.
 */
struct gf_ks_runner *gf_ks_runner_new(const struct gf_ks_runner_opts *o);
/* Stops every timer and frees everything (Pods stay in the store). */
void gf_ks_runner_free(struct gf_ks_runner *r);

struct gf_ks_runner_stats {
    uint64_t started, succeeded, failed, stopped; /* Pods */
    uint64_t free_gpus;                           /* now */
};
void gf_ks_runner_stats(const struct gf_ks_runner *r,
                        struct gf_ks_runner_stats *out);

#endif
