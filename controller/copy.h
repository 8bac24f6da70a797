/*
 * copy: the objects and patches of the redirect protocol (DESIGN.md §3),
 * built from what was observed. Pure: cJSON in, cJSON or text out.
 *
 * - gf_copy_name: the copy Job's deterministic name, from the origin's
 *   uid and the lease's epoch, so a create that is repeated (after a
 *   crash, or from a stale cache) finds the first one and adopts it
 *   instead of making a second copy (S1).
 * - gf_copy_job_build: the copy Job for a lender, made from the origin
 *   Job: what the submitter wrote (containers, resources, parallelism),
 *   none of what the origin cluster assigned (uid, resourceVersion,
 *   selector, controller-uid labels, status), suspended, queued in the
 *   overflow LocalQueue, and labelled so that anyone can find its origin.
 *   Pod templates that the policy does not allow to leave their cluster
 *   (hostPath volumes, privileged containers, host namespaces) are
 *   refused with the reason: the copy would run with the lender's
 *   credentials on the lender's nodes.
 * - gf_copy_hold_patch, gf_copy_reactivate_patch, gf_copy_outcome_patch:
 *   the origin's patches, each with the precondition that makes it safe
 *   to send from a cache that may lag.
 *
 * Ownership: every returned tree or string is returned-owned (cJSON_Delete,
 * cJSON_free); inputs are borrowed. Loop thread only.
 */
#ifndef GF_CONTROLLER_COPY_H
#define GF_CONTROLLER_COPY_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Labels and annotations gpufed writes (DESIGN.md §3). */
#define GF_LABEL_LEASE "gpufed.io/lease"
#define GF_LABEL_ORIGIN_CLUSTER "gpufed.io/origin-cluster"
#define GF_LABEL_ORIGIN_UID "gpufed.io/origin-uid"
#define GF_LABEL_EPOCH "gpufed.io/epoch"
#define GF_ANN_LEASE "gpufed.io/lease"
#define GF_ANN_PLACEMENT "gpufed.io/placement"
#define GF_ANN_OUTCOME "gpufed.io/outcome"
#define GF_ANN_ORIGIN "gpufed.io/origin"
/* On a reclaimed copy Job and its Workload: when it will be stopped (the
 * checkpoint hint), then, on the Workload, when it was. */
#define GF_ANN_RECLAIM_DEADLINE "gpufed.io/reclaim-deadline"
#define GF_ANN_RECLAIMED_AT "gpufed.io/reclaimed-at"
#define GF_KUEUE_QUEUE_LABEL "kueue.x-k8s.io/queue-name"

/* Room for a Job name (a DNS-1123 label: it becomes the job-name label). */
#define GF_COPY_NAME_MAX 64

/*
 * The copy's name: the origin Job's name, 8 hex digits of a hash of the
 * origin uid, and the epoch ("train-resnet-7f3a09c2-1"), the name cut so
 * that the whole is 63 characters at most. Returns 0, or
 * -EINVAL for an empty name or uid.
 */
int gf_copy_name(const char *origin_job, const char *origin_uid, uint64_t epoch,
                 char out[GF_COPY_NAME_MAX]);

struct gf_copy_spec {
    const char *name;        /* gf_copy_name() */
    const char *namespace;   /* in the lender, after namespaceMapping */
    const char *local_queue; /* the overflow LocalQueue there */
    const char *lease;       /* QuotaLease name */
    const char *origin_member;
    const char *origin_namespace;
    const char *origin_uid;
    uint64_t epoch;
    bool allow_host_access; /* hostPath, privileged, host namespaces */
};

/*
 * Builds the copy of origin_job (a batch/v1 Job as read from the origin).
 * Returns 0 with *out, or -EPERM with why (a sentence, why_cap bytes)
 * when the pod template may not leave its cluster, or -EINVAL when
 * origin_job is not a Job with a pod template.
 */
int gf_copy_job_build(const cJSON *origin_job, const struct gf_copy_spec *s,
                      cJSON **out, char *why, size_t why_cap);

/*
 * The hold (§3 step 3): a merge patch of the origin Workload that sets
 * spec.active=false and the lease and placement annotations, with
 * metadata.resourceVersion = rv, so the server answers 409 if Kueue
 * admitted the Workload since it was observed. Returned-owned string.
 */
char *gf_copy_hold_patch(const char *rv, const char *lease, const char *lender);

/*
 * The reactivation: a JSON patch of the origin Workload whose first op
 * tests that gpufed.io/lease is still this lease, then sets
 * spec.active=true and removes the lease and placement annotations. On an
 * origin that another lease (or nobody) holds, the test fails and nothing
 * changes. Returned-owned string.
 */
char *gf_copy_reactivate_patch(const char *lease);

/* A merge patch that sets gpufed.io/outcome (Succeeded or Failed). */
char *gf_copy_outcome_patch(bool succeeded);

/* The reclaim's checkpoint hint on a copy Job or its Workload: a merge
 * patch that sets gpufed.io/reclaim-deadline to deadline (RFC 3339).
 * Returned-owned string. */
char *gf_copy_reclaim_mark_patch(const char *deadline);

/*
 * The reclaim's stop, on the copy Workload: a merge patch that sets
 * spec.active=false and gpufed.io/reclaimed-at = at, with
 * metadata.resourceVersion = rv (a Workload that changed since it was
 * observed, say finished, is looked at again first). The lender's Kueue
 * evicts a deactivated Workload and its pods stop. Returned-owned.
 */
char *gf_copy_reclaim_stop_patch(const char *rv, const char *at);

/* Escapes a key for a JSON pointer (RFC 6901: ~ as ~0, / as ~1). Returns
 * 0, or -ENAMETOOLONG when out (cap bytes) is too small. */
int gf_json_pointer_escape(const char *key, char *out, size_t cap);

#endif
