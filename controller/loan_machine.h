/*
 * loan_machine: the loan protocol (DESIGN.md §2 "Loan", docs/controller.md)
 * as one transition table, (phase, observation) -> (one write, or a wait).
 *
 * A loan lease L moves g GPUs of a budget-like flavor F from lender B's
 * ClusterQueue Q_B to the borrower A for one origin Workload W in A's
 * ClusterQueue Q_A. Two objects carry it:
 * - the hold in B: a pod-less Workload gpufed-hold-<L> in gpufed-system,
 *   queued to gpufed's overflow ClusterQueue for Q_B (nominal 0), so B's
 *   Kueue reserves it only against B's idle quota, under every limit of B;
 * - the grant in A: the gpufed-owned ClusterQueue gpufed-loan-<Q_A> in
 *   Q_A's cohort, whose nominal quota of F' (A's flavor equivalent to F) is
 *   the sum of g over the loans counted in it. W borrows it through the
 *   cohort and runs at home.
 *
 * Safety (S2: the quota usable anywhere never exceeds the budgets) rests on
 * one order, which the table enforces: the grant is raised only after the
 * hold is reserved, and the hold is deleted only after the lowered grant
 * has been seen in A (and W, if the cohort is then over its quota, has
 * been deactivated and holds no quota). A crash between any two writes
 * resumes from observation, the same code as normal operation.
 *
 * The same split as lease_machine: the machine decides, the writer acts,
 * observation closes the loop; time-based and policy decisions come from
 * policy/decide as a command. Pure: no I/O, no clock, no allocation.
 */
#ifndef GF_CONTROLLER_LOAN_MACHINE_H
#define GF_CONTROLLER_LOAN_MACHINE_H

#include <stdbool.h>
#include <stdint.h>

#include "controller/lease_machine.h" /* enum gf_lm_seen */
#include "policy/lease.h"

/* Why a loan is being released, and then why it ended (status.reason). */
enum gf_ln_reason {
    GF_LN_R_NONE,
    GF_LN_R_NOT_ADMITTED,    /* the hold was not reserved in admitTimeout */
    GF_LN_R_COMPLETED,       /* W ran to its end */
    GF_LN_R_CANCELLED,       /* W (or its Job) was deleted */
    GF_LN_R_ORIGIN_ADMITTED, /* W was admitted at home without the loan */
    GF_LN_R_UNUSED,          /* the term ran out unrenewed */
    GF_LN_R_HOLD_LOST,       /* the hold vanished, or B's Kueue evicted it */
    GF_LN_R_NAME_TAKEN,      /* the hold's name is another object's */
    GF_LN_R_CREATE_REFUSED,  /* B refused the hold for good (403, 422) */
    GF_LN_R_REVERTED,        /* the grant was lowered by someone else */
    GF_LN_R_FENCED,          /* the borrower's agent reverted its loans */
    GF_LN_R_RECLAIMED,       /* the lender wants its quota back */
    GF_LN_R_DRAINED,         /* a member is being drained */
    GF_LN_R_COUNT
};

/* From policy/decide (through the hub), or GF_LN_CMD_NONE. */
enum gf_ln_cmd {
    GF_LN_CMD_NONE,
    GF_LN_CMD_WITHDRAW, /* admitTimeout passed for a Pending loan */
    /* the lender or the borrower cannot be reached */
    GF_LN_CMD_SUSPECT,
    /* the borrower (with an agent) has been silent past its fencing
     * instant: its agent has set every gpufed-loan-* nominal to 0. Never
     * sent for a silent lender: a hold is not a running copy, and deleting
     * it while A's grant stands would break S2. */
    GF_LN_CMD_FENCE,
    /* release now, for cmd_reason (reclaim, drain, fence of the origin) */
    GF_LN_CMD_RELEASE,
};

/* The hold Workload in B, looked up by its deterministic name. */
struct gf_ln_hold {
    enum gf_lm_seen wl;
    /* labels gpufed.io/lease and gpufed.io/epoch are this lease's */
    bool ours;
    bool deleting; /* metadata.deletionTimestamp is set */
    bool reserved; /* B's Kueue set QuotaReserved=True */
    bool evicted;  /* B's Kueue evicted it after reserving it */
    /* The writer's last create was refused for good (403, 422). */
    bool create_refused;
    /*
     * B's API server itself said the hold is absent (a GET or DELETE
     * answered 404) since this lease last changed phase. A cache that
     * shows no hold may lag a create that has landed; only this may end
     * a release (a hold left behind would keep B's quota forever).
     */
    bool confirmed_gone;
};

/* The grant: the ClusterQueue gpufed-loan-<Q_A> in A. */
struct gf_ln_grant {
    enum gf_lm_seen cq; /* UNKNOWN while A is not synced */
    int64_t nominal;    /* its observed nominalQuota of F'; 0 if absent */
    /*
     * This lease's g is counted in the observed nominal. It must come from
     * the ClusterQueue object itself, not from the lease: the writer
     * changes the nominal and the gpufed.io/loans annotation (the leases
     * counted in it) in the same resourceVersion-guarded update, and the
     * agent's revert clears both. A raise whose answer was lost leaves the
     * grant UNKNOWN until A's API server answers a GET: otherwise a crash
     * between the raise and status.granted would raise it twice, or a
     * release would delete a hold that still backs quota.
     */
    bool share_in;
    /* the lease's status.granted: the last record of share_in */
    bool granted;
};

/* The origin Workload W in A, which runs at home under the loan. */
struct gf_ln_origin {
    enum gf_lm_seen wl;  /* W */
    enum gf_lm_seen job; /* the Job that owns W (PRESENT if W has none) */
    bool reserved;       /* W holds quota in A (QuotaReserved) */
    bool finished;       /* W ran to its end (Finished) */
    /* spec.active=false with gpufed.io/loan-revoked-at naming this lease */
    bool revoked;
    /* gpufed.io/reclaim-deadline on W, in ms on the caller's clock; 0 if
     * not written. W is deactivated only once it has passed. */
    int64_t deadline_ms;
    /* The mark gpufed.io/loan names this lease: the borrower's agent, when
     * it fences, deactivates W by it. Written before the grant is raised,
     * so every W a grant may serve carries it; removed when the loan
     * ends. It grants nothing by itself. */
    bool marked;
    /* marked, and the agent's gpufed.io/fenced-at is on W: the agent
     * deactivated it while the borrower could not hear the hub. */
    bool fenced;
};

struct gf_ln_view {
    enum gf_lease_phase phase;
    enum gf_ln_reason reason; /* Releasing: what the release is for */
    enum gf_ln_cmd cmd;
    enum gf_ln_reason cmd_reason; /* GF_LN_CMD_RELEASE: why */
    struct gf_ln_hold hold;
    struct gf_ln_grant grant;
    struct gf_ln_origin origin;
    /*
     * With the lowered grant seen in A: the cohort's usage of F' exceeds
     * the sum of its ClusterQueues' nominal quota of F', so the borrowing
     * that this loan backed must stop (W is deactivated).
     */
    bool cohort_over;
    /*
     * Kueue has not yet written the status of one of the cohort's
     * ClusterQueues (the lowered grant's among them) since its spec last
     * changed: cohort_over may predate the lowering and is not known.
     */
    bool cohort_stale;
    /*
     * Another Workload of the borrower carries gpufed.io/fenced-for-loan
     * naming this lease: the agent deactivated it because the cohort was
     * still over its quota without the reverted grant. The hub
     * reactivates it when the loan ends, as it does W.
     */
    bool others_fenced;
    int64_t now_ms;
    int64_t expires_ms; /* the end of the lease's current term */
};

enum gf_ln_write {
    GF_LN_WAIT,      /* nothing to write until observation moves */
    GF_LN_SET_PHASE, /* QuotaLease status: phase, reason, granted, time */
    GF_LN_CREATE_HOLD,
    GF_LN_DELETE_HOLD,       /* uid precondition */
    GF_LN_CONFIRM_HOLD_GONE, /* ask B's API server whether it exists */
    /* gpufed-loan-<Q_A>: create it if absent; nominal += g and this lease
     * added to gpufed.io/loans, in one guarded update; nothing if the
     * annotation lists this lease already (a repeated raise is a no-op) */
    GF_LN_RAISE_GRANT,
    /* nominal -= g and this lease removed from gpufed.io/loans, guarded;
     * nothing if the annotation does not list it */
    GF_LN_LOWER_GRANT,
    /* W: gpufed.io/reclaim-deadline = now + gracePeriod (the same hint
     * as a reclaim's victims get) */
    GF_LN_MARK_DEADLINE,
    /* W: spec.active=false with gpufed.io/loan-revoked-at, with W's
     * resourceVersion precondition (a W that finished or left the quota
     * since the cache saw it is left alone) */
    GF_LN_DEACTIVATE_ORIGIN,
    /* W: spec.active=true and our notes off, only if our
     * gpufed.io/loan-revoked-at is there (JSON patch test op) */
    GF_LN_REACTIVATE_ORIGIN,
    /* W: gpufed.io/loan = this lease, with W's resourceVersion
     * precondition; before the raise */
    GF_LN_MARK_ORIGIN,
    /* W: the mark removed, only if it names this lease (JSON patch test
     * op) */
    GF_LN_UNMARK_ORIGIN,
    /* W, fenced by the agent: spec.active=true, gpufed.io/fenced-at and
     * the mark removed, only if the mark names this lease */
    GF_LN_REACTIVATE_FENCED,
    /* one other Workload carrying gpufed.io/fenced-for-loan = this lease:
     * spec.active=true, that note and gpufed.io/fenced-at removed, only if
     * the note names this lease */
    GF_LN_REACTIVATE_OTHER,
};

struct gf_ln_step {
    enum gf_ln_write write;
    enum gf_lease_phase phase; /* SET_PHASE: the new phase */
    enum gf_ln_reason reason;  /* SET_PHASE: why */
    bool granted;              /* SET_PHASE: status.granted to record */
    /* Event reason to record on W with this write, or NULL. */
    const char *event;
    /* Static text: the rule that chose this step (logs, explain). */
    const char *rule;
};

/* The next step for one loan lease. Pure and total: every view has one. */
struct gf_ln_step gf_ln_next(const struct gf_ln_view *v);

/* "NotAdmitted", "Completed", ... as written in status.reason. */
const char *gf_ln_reason_name(enum gf_ln_reason r);
/* 0 or -EINVAL. */
int gf_ln_reason_parse(const char *s, enum gf_ln_reason *out);
const char *gf_ln_write_name(enum gf_ln_write w);

#endif
