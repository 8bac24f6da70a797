/*
 * kueue_internal: the index Kueue-lite keeps of a cluster and the quota
 * arithmetic over it, shared by kueue.c (the controller: events, store
 * writes, status) and kueue_quota.c (pure: available quota, flavor
 * assignment, preemption targets). Quantities are milli-units (int64).
 * Loop thread only.
 */
#ifndef GF_KS_KUEUE_INTERNAL_H
#define GF_KS_KUEUE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "common/htab.h"

/* No borrowingLimit / lendingLimit: the field is absent. */
#define GF_KQ_UNSET (-1)

/* One [flavor, resource] cell of a ClusterQueue's quota. */
struct gf_kq_cell {
    int64_t nominal, borrow, lend; /* borrow/lend may be GF_KQ_UNSET */
    int64_t usage;                 /* reserved by admitted Workloads */
};

struct gf_kq_flavor {
    char *name;
    struct gf_kq_cell *cells; /* one per covered resource of the group */
};

struct gf_kq_group {
    char **res; /* coveredResources */
    size_t n_res;
    struct gf_kq_flavor *fl;
    size_t n_fl;
};

enum gf_kq_policy {
    GF_KQ_NEVER = 0,
    GF_KQ_LOWER,                /* LowerPriority */
    GF_KQ_LOWER_OR_NEWER_EQUAL, /* LowerOrNewerEqualPriority */
    GF_KQ_ANY,                  /* Any (reclaimWithinCohort) */
};

enum gf_kq_stop { GF_KQ_RUN = 0, GF_KQ_HOLD, GF_KQ_HOLD_AND_DRAIN };

/* flavorFungibility.preference: how feasible flavors are ranked. */
enum gf_kq_pref { GF_KQ_BORROW_OVER_PREEMPT = 0, GF_KQ_PREEMPT_OVER_BORROW };

struct gf_kq_cq {
    char *name;
    char *cohort; /* NULL = none */
    struct gf_kq_group *groups;
    size_t n_groups;
    enum gf_kq_policy within, reclaim;
    /* borrowWithinCohort: policy (NEVER or LOWER) and maxPriorityThreshold. */
    enum gf_kq_policy bwc;
    bool bwc_has_max;
    int64_t bwc_max;
    /* flavorFungibility: whenCanBorrow TryNextFlavor, whenCanPreempt
     * MayStopSearch (both the non-default values), preference. */
    bool borrow_try_next, preempt_stop;
    enum gf_kq_pref pref;
    /* spec.namespaceSelector (a LabelSelector); NULL: the field is absent
     * or null, which matches no namespace. Owned. */
    cJSON *ns_sel;
    bool strict_fifo;
    enum gf_kq_stop stop;
    int64_t generation;
    /* Per reconcile. */
    bool blocked; /* StrictFIFO: the head could not be admitted */
    size_t head;  /* step_admit: next pending Workload of the queue */
    size_t n_pending, n_reserving;
    /* The last status write: its fingerprint (owned) and the object's
     * resourceVersion after it (kueue.c, queue_status). */
    char *st_fp;
    uint64_t st_rv;
};

struct gf_kq_lq {
    char *ns, *name;
    char *cq; /* spec.clusterQueue */
    enum gf_kq_stop stop;
    size_t n_pending, n_reserving; /* per reconcile */
    char *st_fp;                   /* as in struct gf_kq_cq */
    uint64_t st_rv;
};

/* A request of one pod of a pod set. */
struct gf_kq_req {
    char *res;
    int64_t milli;
};

struct gf_kq_podset {
    char *name;
    int64_t count;
    struct gf_kq_req *req; /* the pod's effective requests, and "pods" */
    size_t n_req;
    cJSON *node_sel; /* template.spec.nodeSelector; owned; NULL when none */
};

/* Quota held by an admitted Workload on one [flavor, resource]. */
struct gf_kq_use {
    char *flavor, *res;
    int64_t q;
};

struct gf_kq_wl {
    char *key; /* "namespace/name" */
    char *ns, *name, *uid;
    char *queue; /* spec.queueName, NULL when none */
    int64_t prio;
    int64_t created_ms; /* creationTimestamp */
    uint64_t seq;       /* resourceVersion of creation: FIFO tie-break */
    bool active;
    struct gf_kq_podset *ps;
    size_t n_ps;
    /* From status. */
    char *adm_cq; /* status.admission.clusterQueue; NULL = no reservation */
    struct gf_kq_use *uses;
    size_t n_uses;
    int64_t admitted_ms; /* QuotaReserved lastTransitionTime */
    bool finished;
    bool qr_true;             /* QuotaReserved is True */
    char *qr_reason, *qr_msg; /* the QuotaReserved condition */
    bool deactivated_requeue; /* Requeued False by deactivation */
    /* Evicted is True, and its reason: with adm_cq still set, the quota
     * stays reserved until the Job's pods have stopped. */
    bool evicted;
    char *ev_reason;
    /* The owner Job ("namespace/name" and uid), NULL for pod-less ones. */
    char *job_key, *job_uid;
    bool victim;          /* per reconcile: chosen for preemption */
    bool dead;            /* deleted; freed when the reconcile ends */
    struct gf_kq_cq *qcq; /* per reconcile: the queue it is pending in */
};

/* The quota view the pure functions work on. */
struct gf_kq_world {
    struct gf_htab *cqs; /* name -> struct gf_kq_cq */
    /* key -> struct gf_kq_wl: at least every Workload holding quota. */
    struct gf_htab *wls;
    struct gf_htab *flavors; /* name -> cJSON spec.nodeLabels ({} if none) */
    /* name -> struct gf_kq_cq: Cohort objects, their quota in cells (a
     * flat cohort: parentName is not followed); may be NULL. */
    struct gf_htab *cohorts;
};

/* The cell of cq for [flavor, res], or NULL. */
struct gf_kq_cell *gf__kq_cell(const struct gf_kq_cq *cq, const char *flavor,
                               const char *res);
/* The resource group of cq covering res, or NULL. */
const struct gf_kq_group *gf__kq_group_of(const struct gf_kq_cq *cq,
                                          const char *res);
/*
 * What cq can still reserve of [flavor, res], Kueue's rule: its own
 * unlent (guaranteed) quota left, plus what the cohort has free of the
 * quota its members lend, capped by cq's borrowingLimit.
 */
int64_t gf__kq_available(const struct gf_kq_world *w, const struct gf_kq_cq *cq,
                         const char *flavor, const char *res);
/* Adds (sign 1) or removes (-1) a Workload's uses to its ClusterQueue. */
void gf__kq_account(const struct gf_kq_world *w, const struct gf_kq_wl *wl,
                    int sign);

/* A Workload's quota on one [flavor, resource]; strings are borrowed. */
struct gf_kq_fr {
    const char *flavor, *res;
    int64_t q;
};

enum gf_kq_fit { GF_KQ_FIT = 0, GF_KQ_PREEMPT, GF_KQ_NOFIT };

/* The outcome of trying a Workload on a ClusterQueue. */
struct gf_kq_assign {
    enum gf_kq_fit fit;
    bool borrows;         /* the admission would use more than nominal quota */
    size_t n_groups;      /* of the ClusterQueue */
    const char **psfl;    /* [podset * n_groups + group]: flavor; owned array */
    struct gf_kq_fr *tot; /* owned; the Workload's quota per cell */
    size_t n_tot;
    struct gf_kq_wl **victims; /* owned array, borrowed Workloads */
    bool *while_borrowing;     /* per victim: InCohortReclaimWhileBorrowing */
    size_t n_victims;
    char msg[1024]; /* why it does not fit (Kueue's wording) */
};

/*
 * Assigns a flavor to every pod set of wl for each resource group, in the
 * order the ClusterQueue lists them and as its flavorFungibility says,
 * borrowing within the cohort when allowed, and looks for preemption
 * targets by cq's policies (Kueue's classic preemption) when it does not
 * fit. For GF_KQ_PREEMPT the targets' usage has already been removed from
 * the cells (they are to be evicted). Free with gf__kq_assign_free.
 */
void gf__kq_try(const struct gf_kq_world *w, struct gf_kq_cq *cq,
                const struct gf_kq_wl *wl, struct gf_kq_assign *a);
/* Gives the victims' usage back to the cells (an attempt not acted on). */
void gf__kq_assign_undo(const struct gf_kq_world *w, struct gf_kq_assign *a);
void gf__kq_assign_free(struct gf_kq_assign *a);
/* The index of the resource group of cq covering res, or -1. */
int gf__kq_group_idx(const struct gf_kq_cq *cq, const char *res);

/*
 * Whether labels (an object, may be NULL) match a metav1.LabelSelector
 * (matchLabels and matchExpressions with In, NotIn, Exists and
 * DoesNotExist). The empty selector {} matches everything; sel NULL
 * matches nothing (Kueue's null namespaceSelector).
 */
bool gf__kq_label_selector_match(const cJSON *sel, const cJSON *labels);

/* Formats a quantity as Kubernetes prints it ("3", "500m", "36Gi"). */
void gf__kq_qty(const char *res, int64_t milli, char out[32]);

#endif
