/*
 * internal: the hub's pieces, shared by the files of controller/ that make
 * up `gpufed hub` (hub.c, member.c, lease_reconcile.c, pass.c) and by
 * nothing else; plus, at the end, the seam through which the tests drive
 * `gpufed agent` (agent.c).
 *
 * One struct gf_hub per process holds the loop's machinery (clock, HTTP
 * engine, workqueue), the hub cluster's client and caches (QuotaLeases,
 * the members' kubeconfig Secrets), one struct gf__member per member
 * cluster, the ledger, and per-lease memory the lease machine needs
 * (commands from decide, the API servers' confirmations).
 *
 * Workqueue keys (never payloads, STYLE §7):
 *   "lease/NAME"    run the lease machine for QuotaLease NAME
 *   "pass"          one decision pass (policy/decide) over the ledger
 *   "member/NAME"   (re)connect member NAME from its Secret
 *
 * Loop thread only.
 */
#ifndef GF_CONTROLLER_INTERNAL_H
#define GF_CONTROLLER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/clock.h"
#include "common/htab.h"
#include "common/log.h"
#include "common/rand.h"
#include "controller/drain.h"
#include "controller/hub.h"
#include "controller/leader.h"
#include "controller/lease_machine.h"
#include "controller/loan_machine.h"
#include "controller/observe.h"
#include "controller/policy_file.h"
#include "controller/workqueue.h"
#include "kubeclient/http.h"
#include "kubeclient/reflector.h"
#include "kubeclient/request.h"
#include "kubeclient/store.h"
#include "policy/config.h"
#include "policy/decide.h"
#include "policy/ledger.h"

struct gf_hub;
struct gf__hub_http;

/* The kinds a member is watched for, each a store fed by a reflector. */
enum gf__mkind {
    GF__M_CQ,  /* kueue ClusterQueues */
    GF__M_LQ,  /* kueue LocalQueues */
    GF__M_WL,  /* kueue Workloads */
    GF__M_JOB, /* batch Jobs */
    GF__M_NS,  /* Namespaces (the accept-overflow label) */
    GF__M_KINDS
};

struct gf__member {
    struct gf_hub *hub;
    char *name;
    size_t index; /* in the policy's members */
    struct gf_log_ctx lc;
    struct gf_kube_client *client; /* NULL until its Secret is read */
    char *secret_rv;               /* the Secret version it was built from */
    struct gf_store *stores[GF__M_KINDS];
    struct gf_reflector *refl[GF__M_KINDS];
    /* Copy Workloads by their owner Job ("ns/job" -> Workload key). */
    struct gf_htab wl_by_job;
    /* Workloads fed without a ClusterQueue (their LocalQueue, or its
     * ClusterQueue, not seen yet), by "ns/queue" -> set of names: what
     * an arriving queue feeds again. Empty in a settled cluster. */
    struct gf_htab unresolved;
    uint64_t n_fed; /* Workloads fed into the ledger (tests, profiling) */
    /* The reflectors' list and relist counts last added to /metrics: the
     * counters export the growth since, so they never go backwards. */
    uint64_t exported_lists[GF__M_KINDS], exported_relists[GF__M_KINDS];
    unsigned closing; /* reflectors still closing */
    struct gf_timer defer;
    bool stopped;
    void (*stop_cb)(void *data);
    void *stop_data;
};

/* A QuotaLease as the hub's store keeps it. */
struct gf__lease_proj {
    struct gf_lease l;
    enum gf_lm_reason reason; /* status.reason, parsed */
    /* Loans: status.reason as the loan machine names it, and
     * status.granted (this lease's share was seen in the grant). */
    enum gf_ln_reason ln_reason;
    bool granted;
};

/* What the hub remembers about one lease between reconciles: the command
 * decide gave it and what API servers confirmed. Lost on restart, which
 * only costs a repeated confirmation. */
struct gf__lease_mem {
    char *name;
    enum gf_lm_cmd cmd;
    /* GF_LM_CMD_RECLAIM: the deadline and why ("reclaim" or "drain",
     * static); once the lease is Reclaiming its status keeps both. */
    int64_t reclaim_deadline_ms;
    /* A reclaim marked again that resumes an earlier mark: when that
     * mark started (0: a fresh reclaim, it starts now). */
    int64_t reclaim_started_ms;
    const char *reclaim_cause;
    bool confirmed_gone, confirmed_free, create_refused;
    /* A loan's raise of its grant got no answer (transport error, 5xx):
     * it may have landed unseen, so the grant is unknown until the
     * borrower's API server answers a GET of it (loan_reconcile.c). */
    bool grant_unsure;
    char refused_why[160];
    enum gf_lease_phase phase_seen; /* confirmations are per phase */
    /* The copy's last outcome seen (kept through a partition). */
    enum gf_lm_outcome last_outcome;
    int64_t finished_ms;
    /* The lease's resourceVersion we last wrote over: until the cache
     * moves past it, a reconcile would act on what we already changed. */
    char stale_rv[32];
    /* The origin Job, read beside the hold for the copy that follows
     * (lease_reconcile.c); owned, NULL when none is wanted or held. */
    bool job_wanted;
    cJSON *origin_job;
};

/*
 * heartbeat.c: the hub's heartbeat Lease `gpufed-heartbeat` in the
 * namespace gpufed-system of one member (DESIGN.md §4), renewed every
 * D/3 while the member is healthy. Times are monotonic ms except where named
 * wall.
 */
#define GF__HB_TIME_MAX 32
/* The longest term an agent accepts from a Lease (controller/fence.c). */
#define GF__HB_MAX_TERM_MS (86400 * (int64_t)1000)
enum gf__hb_call { GF__HB_GET, GF__HB_CREATE, GF__HB_PATCH };
struct gf__hb;
/* How a heartbeat reaches its member (the member's client; scripted in
 * tests). send: 0, then gf__hb_answer() exactly once, later; or -errno
 * and no answer. body (a Lease, or a merge patch of its spec) is
 * borrowed. synced: every watch of the member listed and watching. */
struct gf__hb_io {
    int (*send)(struct gf__hb *hb, enum gf__hb_call call, const char *body,
                size_t len, uint64_t timeout_ms);
    bool (*synced)(struct gf__hb *hb);
    /* A probe of a suspect member (or, standing by, of a member whose
     * watches are down) was answered: it is reachable again, so its
     * watches need not wait out their backoff (NULL: nothing). */
    void (*reachable)(struct gf__hb *hb);
    /* The member turned suspect, or healthy again: what the hub derives
     * from that (the ledger's freshness, the leases that wait on it) is
     * due now, not at the next periodic pass (NULL: nothing). */
    void (*changed)(struct gf__hb *hb);
};
struct gf__hb {
    struct gf_clock *clk;
    const struct gf__hb_io *io;
    void *data; /* the io's: the member */
    const struct gf_log_ctx *lc;
    char holder[64];
    /* d_ms: the term D the renewals carry (leaseDurationSeconds) and
     * are sent by, every D/3; tw_ms: Tw = min(D/6, fenceMargin/2) of the
     * smaller of d_ms and want_d_ms, the policy's D. The two differ
     * while a lowered D is being stepped down (gf__hb_set_timing). */
    int64_t d_ms, tw_ms, want_d_ms;
    int32_t drift_ppm; /* rho */
    /* A step down under way: the longer term the agent may still believe
     * (0: none), and the send time of the first acknowledged renewal
     * that carried d_ms (0: none yet). */
    int64_t old_d_ms;
    uint64_t step_ack_ms;
    int64_t call_d_ms; /* the term the renewal in flight carries */
    /* The term the agent may believe is known to this process: it has
     * read the Lease or had a renewal acknowledged. Until then a previous
     * leader may have written any term, and the bound counts the longest
     * an agent accepts (GF__HB_MAX_TERM_MS). A term read that this
     * process did not write is held as a step from 3 times it
     * (learn_term in heartbeat.c). */
    bool term_known;
    /* Healed from a suspicion that stopped the renewals: the agent may be
     * fenced until it has read a renewal. recovering: set at the heal,
     * until the first renewal after it is acknowledged, which sets
     * recover_until_ms (monotonic; 0: not recovering). */
    bool recovering;
    uint64_t recover_until_ms;
    struct gf_timer timer;
    bool running, paused, inflight, retried;
    bool ever_synced; /* the member's watches have all synced once */
    bool suspect;
    /* Suspect only because the member's watches are down while its API
     * server answers: the caches are not to be read, but renewals go on
     * (each one that succeeds shows the member reachable). A renewal that
     * fails ends this: renewals stop, and the probes begin. */
    bool stale_only;
    bool probe_ok;         /* suspect: the last probe GET was answered */
    bool standby_call;     /* the call in flight is a standby's probe */
    enum gf__hb_call call; /* the one in flight */
    struct gf_kube_call *call_handle;
    uint64_t call_sent_ms;
    /* Send time of the latest renewal that may have landed, and the time
     * the latest renewal was acknowledged (0: never). */
    uint64_t sent_ms, ok_ms;
    char rv[64];          /* the Lease's resourceVersion in the last answer */
    char why[96];         /* why suspect */
    uint64_t n_ok, n_err; /* renewals */
    uint64_t last_ok, last_err; /* as last exported (/metrics) */
};
/* RFC 3339 with exactly 6 fractional digits and Z (MicroTime). */
void gf__hb_microtime(int64_t wall_ms, char out[GF__HB_TIME_MAX]);
/* hb_sent := now; holder is copied. Not started. */
void gf__hb_init(struct gf__hb *hb, struct gf_clock *clk,
                 const struct gf__hb_io *io, void *data,
                 const struct gf_log_ctx *lc, const char *holder);
/*
 * The policy's timing (D, fenceMargin, rho). A longer D is written at
 * once. A shorter one is reached in steps, each at most 3 times shorter
 * than the last (whole seconds), and each held until one term of the
 * previous step, (1+rho)^2 * old D, has passed between the first
 * acknowledged renewal that carried it and the latest renewal that may
 * have landed (hb_sent): the agent polls at the term it last read, D/6,
 * and gives credit only from the read before a move, so a term shorter
 * than its poll would make it fence although nothing is cut off; and
 * until that term has passed it may still believe the old one
 * (gf__hb_bound_d_ms). Before this process has written a renewal D is
 * taken as given.
 */
void gf__hb_set_timing(struct gf__hb *hb, int64_t d_ms, int64_t margin_ms,
                       int32_t drift_ppm);
/* The term the hub's fencing bound counts for this member: the longest
 * one its agent may still believe (d_ms, or old_d_ms during a step). */
int64_t gf__hb_bound_d_ms(const struct gf__hb *hb);
/* While a member that has just healed may still have a fenced agent, the
 * wall-clock instant it may lend again (INT64_MAX until the first
 * renewal after the heal is acknowledged), else 0. */
int64_t gf__hb_recovering_until_wall_ms(const struct gf__hb *hb);
/* Ticks every D/3; stop: no more ticks (an answer in flight arrives). */
void gf__hb_start(struct gf__hb *hb);
void gf__hb_stop(struct gf__hb *hb);
/* Looks at the member's watches now: the first sync renews at once,
 * losing them makes the member suspect (stale_only: still renewed), a
 * suspect member whose last probe or renewal was answered and whose
 * watches are synced is healthy again. */
void gf__hb_check(struct gf__hb *hb);
void gf__hb_answer(struct gf__hb *hb, int err, long code, const cJSON *json);
/* Writes nothing while paused (standing by), only probes a member whose
 * watches are down; resume sets hb_sent := now and forgets the term (the
 * Lease is read again, learn_term in heartbeat.c). */
void gf__hb_pause(struct gf__hb *hb);
void gf__hb_resume(struct gf__hb *hb, uint64_t now_ms);
void gf__hb_reset(struct gf__hb *hb, uint64_t now_ms);
bool gf__hb_healthy(const struct gf__hb *hb);
/* What the caches show of a member may be read: every watch synced, and
 * its heartbeat not suspect (a silent connection can look like a quiet
 * watch for minutes). */
bool gf__member_observed(const struct gf__member *m);
/* hb_sent on the wall clock (the ledger's and decide's time base). */
int64_t gf__hb_sent_wall_ms(const struct gf__hb *hb);

/* The hub's heartbeats, one per member (h->hb[i] for h->members[i]).
 * holder: the Lease's holderIdentity, NULL for the host name. Leader
 * election gates them with pause/resume and calls reset when it gains
 * the lead (the previous leader may have renewed just before). */
void gf__heartbeat_start(struct gf_hub *h, const char *holder);
void gf__heartbeat_stop(struct gf_hub *h);
void gf__heartbeat_free(struct gf_hub *h);
void gf__heartbeat_reset(struct gf_hub *h, int64_t now_ms);
void gf__heartbeat_pause(struct gf_hub *h);
void gf__heartbeat_resume(struct gf_hub *h);

/* gpufed_reclaim_seconds' upper bounds (le), seconds. */
#define GF__RECLAIM_BUCKETS 10

struct gf_hub {
    uv_loop_t *loop;
    struct gf_clock clk;
    struct gf_http *http;
    struct gf_rand rng;
    struct gf_log_ctx lc;
    struct gf_policy_file *pf;
    const struct gf_policy *policy; /* a ref on the policy in force */
    char *resource;                 /* the policy's, copied at start */
    char *policy_path;
    char *ns;
    uint64_t pass_period_ms, copy_ttl_ms;
    struct gf_kube_client *hubc;
    struct gf_store *leases, *secrets;
    struct gf_reflector *lease_refl, *secret_refl;
    /* The ConfigMap gpufed-drain (controller/drain.h), one object at most:
     * its first list is part of the gate (a restarted hub must not lend
     * from a member it drained). drain_warned: names in it that are no
     * member, logged once each. */
    struct gf_store *drain_cm;
    struct gf_reflector *drain_cm_refl;
    struct gf_htab drain_warned;
    struct gf_ledger *ledger;
    struct gf_workqueue *wq;
    struct gf__member **members;
    size_t n_members;
    struct gf__hb *hb;        /* one per member (heartbeat.c) */
    struct gf_htab lease_mem; /* name -> struct gf__lease_mem */
    struct gf_htab starting;  /* origin "member/ns/name" being recorded */
    /* The decision pass under way, one slice per loop turn (pass.c), with
     * its time and the policy it began with; NULL between passes. */
    struct gf_decide_pass *dpass;
    int64_t dpass_now;
    const struct gf_policy *dpass_policy;
    size_t pass_budget; /* pending Workloads per slice; 0: the default */
    bool heap_trimmed;  /* free heap pages returned after the first lists */
    unsigned inflight_writes;
    bool stopping;
    struct gf_timer drain; /* stop: waits for writes in flight */
    uint64_t drain_deadline;
    unsigned closing;
    void (*stop_cb)(void *data);
    void *stop_data;
    struct gf__hub_http *http_srv; /* NULL without --listen */
    /* Leader election: only the leader writes (gf__hub_writing). */
    struct gf_leader *leader;
    bool leading;
    void (*on_lost)(void *data); /* gf_hub_opts.on_leadership_lost */
    void *on_lost_data;
    char crash_write[32]; /* gf_hub_opts.crash_after, parsed */
    unsigned crash_n;
    /* Counters for /metrics and the summary. */
    uint64_t n_passes, n_starts, n_writes, n_write_errors;
    uint64_t n_pass_slices;
    /* Jobs that ran to their end twice (the blind window). */
    uint64_t n_double_completions;
    /* Reclaims begun, "lender\ncause" -> uint64_t count (cause reclaim,
     * drain or kueue), and how long each took from Reclaiming to the
     * copy's quota being free (hub_http.c renders both). */
    struct gf_htab reclaims;
    uint64_t reclaim_secs_buckets[GF__RECLAIM_BUCKETS];
    uint64_t reclaim_secs_count;
    double reclaim_secs_sum;
};

extern const double gf__reclaim_bounds[GF__RECLAIM_BUCKETS];
/* Counts a reclaim begun out of lender for cause (reclaim, drain, kueue). */
void gf__hub_count_reclaim(struct gf_hub *h, const char *lender,
                           const char *cause);
/* Observes one reclaim's duration, Reclaiming to the quota free. */
void gf__hub_observe_reclaim(struct gf_hub *h, double seconds);

/* member.c */
int gf__member_new(struct gf_hub *h, size_t index, struct gf__member **out);
/* (Re)connects with a kubeconfig (bytes of the Secret); the policy's
 * apiServer wins over the kubeconfig's server. */
int gf__member_connect(struct gf__member *m, const char *kubeconfig, size_t len,
                       const char *secret_rv);
/* Closes reflectors and frees; cb fires later from the loop. */
void gf__member_close(struct gf__member *m, void (*cb)(void *data), void *data);
/* The member's stores and their feed into the ledger, without
 * reflectors (connect adds them; tests upsert into the stores). */
void gf__member_stores_new(struct gf__member *m);
/* A write's answer into the member's cache of kind k, when newer than
 * what its watch has brought (gf_store_write_through): the handlers feed
 * the ledger and wake the leases at once. obj is borrowed; NULL, or a
 * member without stores, does nothing. */
void gf__member_write_through(struct gf__member *m, enum gf__mkind k,
                              const cJSON *obj);
/* Every store listed and every reflector watching. */
bool gf__member_synced(const struct gf__member *m);
/* The resource a member's kind k is watched as ("workloads.kueue.x-k8s.io"):
 * returned-borrowed, static. */
const char *gf__member_kind_name(enum gf__mkind k);
/*
 * The member's API server answered (a heartbeat probe succeeded): every
 * reflector of it that waits out a backoff retries now, keeping its
 * backoff step (gf_reflector_retry_now). Returns how many retried.
 */
size_t gf__member_retry_now(struct gf__member *m);
struct gf__member *gf__hub_member(const struct gf_hub *h, const char *name);
/* Returned-borrowed projections (valid this loop turn), or NULL. */
const struct gf_obs_workload *gf__member_wl(const struct gf__member *m,
                                            const char *ns, const char *name);
const struct gf_obs_job *gf__member_job(const struct gf__member *m,
                                        const char *ns, const char *name);
const struct gf_obs_workload *
gf__member_job_wl(const struct gf__member *m, const char *ns, const char *job);
const struct gf_obs_lq *gf__member_lq(const struct gf__member *m,
                                      const char *ns, const char *name);
const struct gf_obs_cq *gf__member_cq(const struct gf__member *m,
                                      const char *name);
const struct gf_obs_ns *gf__member_ns(const struct gf__member *m,
                                      const char *name);

/* hub.c */
/* The namespace a copy of a Workload of origin_ns runs in, in lender: the
 * group's namespaceMapping, else origin_ns (returned-borrowed). */
const char *gf__copy_namespace(const struct gf_hub *h, const char *group,
                               const char *lender, const char *origin_ns);
/* The crash hook (gf_hub_opts.crash_after): called after each successful
 * write; kills the process when it is the one named. */
void gf__hub_wrote(struct gf_hub *h, const char *write);
struct gf__lease_mem *gf__lease_mem(struct gf_hub *h, const char *name);
/* Forgets one lease's memory (a lease gone, or one whose create failed
 * before it ever reached the store). Accepts a name with none. */
void gf__lease_mem_drop(struct gf_hub *h, const char *name);
/*
 * True while this replica leads: every write to an API server that does
 * not come from a lease or pass key (Events, heartbeats) checks it first;
 * those keys are not processed at all by a replica that does not lead. A
 * replica that does not lead runs its reflectors and nothing else.
 */
bool gf__hub_writing(const struct gf_hub *h);
/*
 * Called once each time this replica gains leadership, before any write:
 * forgets what a previous term remembered, enqueues every lease and a
 * pass (which wait for every cache to sync, as at start). Whatever else
 * must start afresh with a new term (the members' heartbeat clocks) is
 * reset here.
 */
void gf__hub_on_lead(struct gf_hub *h);
void gf__hub_enqueue_lease(struct gf_hub *h, const char *name);
void gf__hub_kick_pass(struct gf_hub *h);

/* event.c: a core/v1 Event about one object (best effort). */
struct gf__event {
    const char *ns, *api_version, *kind, *name, *uid; /* the object */
    const char *reason, *message, *component;
    bool warning;
};
void gf__event_post(struct gf_hub *h, struct gf_kube_client *c,
                    const struct gf__event *ev);

/* hub.c: the drained set in force (the ConfigMap's projection), or NULL
 * when the ConfigMap is absent or not listed yet. Returned-borrowed,
 * valid this loop turn. */
const struct gf_drain_set *gf__hub_drained(const struct gf_hub *h);
/* The drain ConfigMap's store and its feed into the ledger, without a
 * reflector (gf_hub_start adds it; tests upsert into h->drain_cm). Needs
 * h->policy, h->ledger and h->drain_warned. */
void gf__hub_drain_store_new(struct gf_hub *h);
/* Every store of the hub cluster has listed once (QuotaLeases, the
 * drain ConfigMap): part of the pass's gate and of /readyz. */
bool gf__hub_synced(const struct gf_hub *h);

/* hub_http.c: /healthz, /readyz, /metrics on addr ("HOST:PORT"). */
int gf__hub_http_start(struct gf_hub *h, const char *addr);
void gf__hub_http_close(struct gf_hub *h, void (*cb)(void *), void *data);

/* lease_reconcile.c: runs the lease machine for one lease; calls
 * gf_wq_done for key when its write (if any) has finished. */
void gf__lease_reconcile(struct gf_hub *h, const char *key, const char *name);

/* loan_reconcile.c: lease_reconcile's part for a lease of mode Loan
 * (after its stale and phase checks): runs the loan machine and carries
 * out its one write; calls gf_wq_done for key when it has finished. */
void gf__loan_reconcile(struct gf_hub *h, const char *key,
                        const struct gf__lease_proj *lp, const char *lease_rv);
/* The hold's name in the lender for lease (GF_HOLD_PREFIX + the lease's
 * name, with a hash when that would pass 63 characters). */
void gf__hold_name(const char *lease, char out[64]);
/* An answer that does not say whether the write landed: none at all
 * (transport, timeout) or a 5xx. A 4xx says it did not; success says it
 * did. */
bool gf__loan_answer_lost(const struct gf_kube_result *res);
/* The loan machine's step for view v (which it may change) when the
 * borrower's grant is unsure (a raise whose answer was lost): the grant
 * is shown as unknown, and *get is set when the step is a wait that a
 * GET of the grant must settle instead. */
struct gf_ln_step gf__loan_step(struct gf_ln_view *v, bool grant_unsure,
                                bool *get);
/* lease_reconcile.c: gpufed's overflow queues in a lender, shared by
 * copies and holds: the ClusterQueue `name` in the cohort of lender_cq
 * with nominal 0 for each of its cells (NULL when lender_cq is unknown or
 * has no cohort), and a LocalQueue ns/name pointing at cq. Returned-owned
 * strings (cJSON_free). */
char *gf__overflow_cq_body(const struct gf__member *m, const char *lender_cq,
                           const char *name);
char *gf__overflow_lq_body(const char *ns, const char *name, const char *cq);

/* pass.c: one slice of a decision pass (at most pass_budget pending
 * Workloads); calls gf_wq_done for "pass", requeued at once (the next
 * loop turn) while the pass goes on. */
#define GF__PASS_BUDGET 256
void gf__pass_run(struct gf_hub *h);
/* Drops the pass under way (leadership gained or lost, stop). */
void gf__pass_abandon(struct gf_hub *h);
/* The lease's name: origin member and Workload, a hash of the origin uid
 * and the epoch, at most 63 characters (controller/copy.h's rule). */
int gf__lease_name(const char *member, const char *wl, const char *uid,
                   uint64_t epoch, char out[64]);

/*
 * agent.c: how `gpufed agent` reaches its API server (kubeclient's calls;
 * scripted in controller/test/test_agent.c). Each has the signature of
 * the kubeclient function it stands for: 0, then cb exactly once, later;
 * or an error and no cb. cancel makes a call in flight answer
 * GF_ECANCELED (accepts NULL). retry_now ends the watches' backoff wait
 * (gf_reflector_retry_now) and says how many were waiting.
 */
struct gf_agent;
struct gf_event;
struct gf__agent_io {
    int (*call)(struct gf_kube_client *c, const struct gf_kube_op *op,
                gf_kube_cb cb, void *data, struct gf_kube_call **out);
    int (*get)(struct gf_kube_client *c, const struct gf_kube_resource *r,
               const char *ns, const char *name, gf_kube_cb cb, void *data,
               struct gf_kube_call **out);
    int (*list)(struct gf_kube_client *c, const struct gf_kube_resource *r,
                const struct gf_kube_list_opts *o, gf_kube_cb cb, void *data,
                struct gf_kube_call **out);
    int (*patch)(struct gf_kube_client *c, const struct gf_kube_resource *r,
                 const char *ns, const char *name,
                 const struct gf_kube_patch_opts *o, const char *body,
                 size_t len, gf_kube_cb cb, void *data,
                 struct gf_kube_call **out);
    void (*cancel)(struct gf_kube_call *call);
    int (*event)(struct gf_kube_client *c, int64_t wall_ms,
                 const struct gf_event *ev, gf_kube_cb done, void *data);
    size_t (*retry_now)(struct gf_agent *a);
};
/* An agent on a manual clock (start_ms, wall_ms) that reaches its API
 * server only through io: no client, listener or watches; its caches are
 * empty stores the test fills (gf__agent_caches). Its first poll is due
 * at once. Free with gf__agent_free once nothing is in flight. */
int gf__agent_new(const struct gf__agent_io *io, uint64_t start_ms,
                  int64_t wall_ms, const char *member,
                  uint64_t max_clock_offset_ms, struct gf_agent **out);
struct gf_clock *gf__agent_clock(struct gf_agent *a);
void gf__agent_caches(struct gf_agent *a, struct gf_store **jobs,
                      struct gf_store **wls);
bool gf__agent_fenced(const struct gf_agent *a);
void gf__agent_free(struct gf_agent *a);

#endif
