/*
 * config: the FederationPolicy (gpufed.io/v1alpha1) — parse and validate.
 *
 * Platform admins describe the federation in one YAML file: the members,
 * which flavors are equivalent across members, the groups (one tenant's
 * ClusterQueues across members), who may lend to whom and how much, and
 * the timing of leases, fencing and reclaim. docs/policy.md is the
 * reference; manifests/policy/federation-policy.yaml a complete example.
 *
 * gf_policy_parse() turns a buffer into an immutable struct gf_policy, or
 * reports every problem at once in a struct gf_policy_diag: each error has
 * a 1-based line:column, the field path (spec.groups[1].clusterQueues[0])
 * and what was expected. Nothing here reads files or clocks: the caller
 * reads the file (with a cap of GF_POLICY_MAX_BYTES) and passes the bytes.
 *
 * Ownership: a parsed policy owns all of its strings and arrays and is
 * never modified after parse, so the controller can share one policy
 * between a decision pass and an explain call and swap in a new one on
 * hot reload (free the old one after the last user is done).
 */
#ifndef GF_POLICY_CONFIG_H
#define GF_POLICY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define GF_POLICY_API_VERSION "gpufed.io/v1alpha1"
#define GF_POLICY_KIND "FederationPolicy"
/* A policy file larger than this is refused before it is parsed. */
#define GF_POLICY_MAX_BYTES (1u << 20)
/* Errors beyond this many are counted but not kept. */
#define GF_POLICY_MAX_ERRORS 100
/* Hard caps on list sizes, so hostile input cannot blow up indexes. */
#define GF_POLICY_MAX_MEMBERS 1024
#define GF_POLICY_MAX_GROUPS 4096
#define GF_POLICY_MAX_RULES 4096

/* A cap that is not set. */
#define GF_NO_CAP INT64_MAX
/* Fractions are kept in parts per million so arithmetic stays exact. */
#define GF_PPM 1000000

/* Defaults (docs/policy.md lists them too). */
#define GF_POLICY_DEFAULT_RESOURCE "nvidia.com/gpu"
#define GF_POLICY_DEFAULT_OVERFLOW_AFTER_MS ((int64_t)2 * 60 * 1000)
#define GF_POLICY_DEFAULT_LEASE_DURATION_MS ((int64_t)30 * 1000)
#define GF_POLICY_DEFAULT_CLOCK_DRIFT_PPM 10000 /* 1% */
#define GF_POLICY_DEFAULT_FENCE_MARGIN_MS ((int64_t)5 * 1000)
#define GF_POLICY_DEFAULT_ADMIT_TIMEOUT_MS ((int64_t)5 * 60 * 1000)
#define GF_POLICY_DEFAULT_RECLAIM_AFTER_MS ((int64_t)60 * 1000)
#define GF_POLICY_DEFAULT_GRACE_PERIOD_MS ((int64_t)2 * 60 * 1000)
#define GF_POLICY_DEFAULT_MIN_RUN_TIME_MS ((int64_t)0)
#define GF_POLICY_DEFAULT_JOB_KIND "batch/Job"

enum gf_fencing {
    GF_FENCING_AGENT, /* the member runs `gpufed agent`: it fences itself */
    GF_FENCING_NONE   /* no agent: its leases stay Suspect until observed */
};

/* Bits: a group may allow one or both ways of borrowing. */
enum gf_mode { GF_MODE_REDIRECT = 1, GF_MODE_LOAN = 2 };

/* Keys of the reclaim victim order, applied in the order given. */
enum gf_victim_key {
    GF_VICTIM_LOWEST_PRIORITY,
    GF_VICTIM_NEWEST, /* most recently started first */
    GF_VICTIM_OLDEST,
    GF_VICTIM_LARGEST,
    GF_VICTIM_SMALLEST
};
#define GF_VICTIM_MAX_KEYS 5

/* Where a value came from in the file: 1-based, 0:0 when defaulted. */
struct gf_policy_pos {
    int line, col;
};

/* A limit in absolute GPUs and/or as a fraction of nominal quota. */
struct gf_policy_cap {
    int64_t gpus;         /* GF_NO_CAP when unset */
    int32_t fraction_ppm; /* 0..GF_PPM, or -1 when unset */
};

struct gf_policy_label {
    char *key, *value;
};

struct gf_policy_member {
    char *name;               /* DNS-1123 label, unique */
    char *api_server;         /* https URL */
    char *credentials_secret; /* "namespace/name" of a kubeconfig Secret */
    enum gf_fencing fencing;
    struct gf_policy_label *labels;
    size_t n_labels;
    /* Totals across all groups and flavors: what this member may lend,
     * and borrow; fractions are of the member's total nominal quota. */
    struct gf_policy_cap max_lent, max_borrowed;
    struct gf_policy_pos pos;
};

struct gf_policy_flavor_ref {
    size_t member; /* index into members */
    char *flavor;  /* a ResourceFlavor name in that member */
};

/* One equivalence class: these flavors are the same hardware. */
struct gf_policy_flavor_class {
    char *name;
    struct gf_policy_flavor_ref *flavors;
    size_t n_flavors;
};

struct gf_policy_queue {
    size_t member;       /* index into members */
    char *cluster_queue; /* a ClusterQueue in that member */
    struct gf_policy_pos pos;
};

/* A Workload's namespace `from` becomes `to` in lender `member`. */
struct gf_policy_ns_map {
    size_t member;
    char *from, *to;
};

struct gf_policy_group {
    char *name;
    unsigned modes; /* GF_MODE_* bits; loan is tried first when both */
    struct gf_policy_queue *queues;
    size_t n_queues;
    /* Which Workloads may overflow. Empty namespaces = every namespace. */
    char **namespaces;
    size_t n_namespaces;
    char **job_kinds; /* "group/Kind"; default batch/Job */
    size_t n_job_kinds;
    bool has_min_priority;
    int32_t min_priority;
    /* Copies may keep host access (hostPath volumes, privileged
     * containers, host namespaces); default false: such Jobs stay home. */
    bool allow_host_access;
    /* Kept free in every lender ClusterQueue x flavor for local bursts;
     * the larger of gpus and fraction x nominal applies. */
    struct gf_policy_cap reserve;
    struct gf_policy_ns_map *ns_map;
    size_t n_ns_map;
    /* Victims whose reclaim may start in the group per rolling hour;
     * GF_NO_CAP when unset (no limit). */
    int64_t max_reclaims_per_hour;
    /* Flavor classes (gf_policy_flavor_class names) whose quota is a
     * budget: the only ones a loan may move. At least one when modes has
     * GF_MODE_LOAN. */
    char **budget_flavors;
    size_t n_budget_flavors;
    struct gf_policy_pos pos;
};

/* A sharing rule, with member sets already expanded. */
struct gf_policy_rule {
    char *name;
    bool deny;
    size_t *lenders, *borrowers; /* member indices, sorted, unique */
    size_t n_lenders, n_borrowers;
    size_t *groups; /* group indices; n_groups == 0 means every group */
    size_t n_groups;
    /* Per (lender, borrower) pair; the fraction is of lender nominal. */
    struct gf_policy_cap max;
    struct gf_policy_pos pos;
};

struct gf_policy_timing {
    int64_t overflow_after_ms;
    int64_t lease_duration_ms; /* D; the heartbeat is renewed every D/3 */
    int32_t clock_drift_ppm;   /* rho */
    int64_t fence_margin_ms;
    int64_t admit_timeout_ms;
    int64_t reclaim_after_ms;
    int64_t grace_period_ms;
    /* An Active copy that started less than this ago is not a victim:
     * a borrower is not evicted before it got some work done. */
    int64_t min_run_time_ms;
};

struct gf__policy_index;

struct gf_policy {
    char *name;        /* metadata.name */
    char *resource;    /* the federated resource, default nvidia.com/gpu */
    bool default_deny; /* pairs no rule names: deny (else allow) */
    char **locality;   /* label keys, most important first */
    size_t n_locality;
    struct gf_policy_member *members;
    size_t n_members;
    struct gf_policy_flavor_class *classes;
    size_t n_classes;
    struct gf_policy_group *groups;
    size_t n_groups;
    struct gf_policy_rule *rules;
    size_t n_rules;
    struct gf_policy_timing timing;
    enum gf_victim_key victim_order[GF_VICTIM_MAX_KEYS];
    size_t n_victim_order;
    struct gf__policy_index *idx; /* lookups; private */
};

/* One validation problem. */
struct gf_policy_error {
    int line, col; /* 1-based; 0:0 for problems of the file as a whole */
    char *path;    /* field path, "" for the document */
    char *msg;     /* what is wrong and what was expected */
};

struct gf_policy_diag {
    struct gf_policy_error *errs; /* owned, sorted by line:col after parse */
    size_t n, cap;
    size_t dropped; /* errors beyond GF_POLICY_MAX_ERRORS */
};

void gf_policy_diag_init(struct gf_policy_diag *d);
void gf_policy_diag_free(struct gf_policy_diag *d);
/*
 * Appends one "FILE:LINE:COL: error: PATH: MSG\n" line per error to out
 * (file may be NULL: "<input>"). 0 or GF_E2BIG from out's cap.
 */
int gf_policy_diag_format(const struct gf_policy_diag *d, const char *file,
                          struct gf_buf *out);

/*
 * Parses and validates buf[0..len). On success returns 0 and *out
 * (returned-owned, gf_policy_free). Otherwise returns GF_ECONFIG (the
 * policy is invalid; diag holds every error), or GF_E2BIG when len
 * exceeds GF_POLICY_MAX_BYTES; *out is NULL. diag must be initialised;
 * errors are appended to it.
 */
int gf_policy_parse(const char *buf, size_t len, struct gf_policy **out,
                    struct gf_policy_diag *diag);
void gf_policy_free(struct gf_policy *p);

/* Lookups (all O(1) through hash indexes). */
/* Index of member name, or -1. */
int gf_policy_member_index(const struct gf_policy *p, const char *name);
/* Index of the group that member's ClusterQueue belongs to, or -1. */
int gf_policy_group_of(const struct gf_policy *p, const char *member,
                       const char *cluster_queue);
int gf_policy_group_index(const struct gf_policy *p, const char *name);
/*
 * The equivalence class of flavor in member: the class name when a
 * flavorEquivalence entry lists it, else the flavor's own name (flavors
 * of the same name are equivalent unless a class says otherwise).
 * Returned-borrowed.
 */
const char *gf_policy_flavor_class(const struct gf_policy *p,
                                   const char *member, const char *flavor);
/* Label value of member, or NULL. Returned-borrowed. */
const char *gf_policy_member_label(const struct gf_policy_member *m,
                                   const char *key);

/* Whether lender may lend to borrower in group, and the pair cap. */
struct gf_policy_pair {
    bool allowed;
    /* The rule that decided (NULL: the default); returned-borrowed. */
    const char *rule;
    /* The tightest cap of all matching allow rules. */
    struct gf_policy_cap max;
};
void gf_policy_pair(const struct gf_policy *p, size_t lender, size_t borrower,
                    size_t group, struct gf_policy_pair *out);

/* Applies a cap to a nominal quantity: min(gpus, floor(ppm x nominal)). */
int64_t gf_policy_cap_limit(const struct gf_policy_cap *c, int64_t nominal);
/* max(gpus, ceil(ppm x nominal)) for reserves; 0 when unset. */
int64_t gf_policy_reserve(const struct gf_policy_cap *c, int64_t nominal);

/* Whether flavor of member is budget-like in group g: its equivalence
 * class is one of g's budgetFlavors. */
bool gf_policy_budget_flavor(const struct gf_policy *p,
                             const struct gf_policy_group *g,
                             const char *member, const char *flavor);

/* Does group g let a Workload of this namespace, kind and priority
 * overflow? why (may be NULL) gets a static reason when it does not. */
bool gf_policy_may_overflow(const struct gf_policy_group *g, const char *ns,
                            const char *kind, int32_t priority,
                            const char **why);
/* The namespace a Workload of namespace ns gets in lender member; ns
 * itself when no mapping applies. Returned-borrowed. */
const char *gf_policy_map_namespace(const struct gf_policy_group *g,
                                    size_t member, const char *ns);

const char *gf_fencing_name(enum gf_fencing f);
const char *gf_victim_key_name(enum gf_victim_key k);

#endif
