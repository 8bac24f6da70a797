/*
 * lease_machine: the redirect protocol of DESIGN.md §3 as one transition
 * table, (phase, observation) -> (one write, or a wait).
 *
 * The machine decides; the writer acts; observation closes the loop. Each
 * call looks at what the caches show of one lease's three objects (the
 * QuotaLease in the hub, the origin Workload and Job in the origin member,
 * the copy Job and its Workload in the lender) and returns the single next
 * write, or none. After the writer has carried it out, the change comes
 * back through the watches and the lease's key is reconciled again. One
 * write per step keeps the order of §3 (record, hold, copy, bind, ...) in
 * the table itself, and makes crash recovery the same code as normal
 * operation: a hub that restarts runs the table on what it observes, and
 * every half-done transition continues or unwinds from there.
 *
 * Safety (S1, at most once) rests on three rules the table enforces:
 * - no copy is created before the origin is held (spec.active=false with
 *   our lease annotation, written with a resourceVersion precondition, so
 *   a Workload that Kueue admitted in the meantime makes the hold fail)
 *   and seen to hold no quota at home;
 * - the origin is reactivated only after the lender's API server itself
 *   has said the copy is absent (unknown is not absent, and a cache may
 *   lag a create that has landed);
 * - a release ends only when the origin's API server has said the origin
 *   is no longer held by the lease (a cache may lag our own hold, and a
 *   hold left behind would keep the job from ever running);
 * - copies have a deterministic name (origin uid + epoch), so a repeated
 *   create adopts instead of duplicating.
 *
 * Time-based and policy decisions (admitTimeout, suspect, fence) come
 * from policy/decide as a command; this table only sequences the writes
 * they imply. Pure: no I/O, no clock, no allocation.
 */
#ifndef GF_CONTROLLER_LEASE_MACHINE_H
#define GF_CONTROLLER_LEASE_MACHINE_H

#include <stdbool.h>
#include <stdint.h>

#include "policy/lease.h"

/* What the caches show of one object. Unknown: its member is not synced
 * or not reachable, so neither presence nor absence may be assumed. */
enum gf_lm_seen { GF_LM_UNKNOWN, GF_LM_ABSENT, GF_LM_PRESENT };

/* Why a lease is being released, and then why it ended. */
enum gf_lm_reason {
    GF_LM_R_NONE,
    GF_LM_R_ORIGIN_ADMITTED, /* Kueue admitted the origin at home first */
    GF_LM_R_NOT_ADMITTED,    /* the copy was not admitted in admitTimeout */
    GF_LM_R_COMPLETED,       /* the copy ran to its end */
    GF_LM_R_CANCELLED,       /* the submitter deleted the origin Job */
    GF_LM_R_COPY_LOST,       /* the copy vanished without an outcome */
    GF_LM_R_PREEMPTED,       /* the lender's Kueue evicted the copy */
    GF_LM_R_ORIGIN_CHANGED,  /* someone else reactivated the origin */
    GF_LM_R_NAME_TAKEN,      /* the copy's name is used by another object */
    GF_LM_R_CREATE_REFUSED,  /* the lender refused the copy for good */
    GF_LM_R_FENCED,          /* the lender's agent has stopped the copy */
    /* an earlier epoch's copy had finished (seen on a heal): its outcome
     * stands, this run is withdrawn */
    GF_LM_R_SUPERSEDED,
    /* the lender took its quota back: the copy was stopped at the reclaim
     * deadline (gpufed's reclaim, or a drain) */
    GF_LM_R_RECLAIMED,
    GF_LM_R_COUNT
};

/* From policy/decide, or GF_LM_CMD_NONE. */
enum gf_lm_cmd {
    GF_LM_CMD_NONE,
    GF_LM_CMD_WITHDRAW, /* admitTimeout passed for a Pending lease */
    GF_LM_CMD_SUSPECT,  /* the lender cannot be reached */
    GF_LM_CMD_FENCE,    /* fencing time passed; the agent stopped it */
    /* the lender wants its quota back: a victim, stopped at a deadline */
    GF_LM_CMD_RECLAIM,
};

struct gf_lm_origin {
    enum gf_lm_seen wl;  /* the origin Workload */
    enum gf_lm_seen job; /* the submitter's Job */
    /* spec.active=false and gpufed.io/lease names this lease */
    bool held_by_us;
    /* spec.active is true: Kueue at home may run it (nobody holds it) */
    bool active;
    bool reserved; /* holds quota at home (QuotaReserved) */
    bool finished; /* ran at home to its end (Finished) */
    /* gpufed.io/outcome is written (by this lease, or by an earlier
     * epoch's whose copy had finished: then no later run may go on) */
    bool outcome_marked;
    /*
     * The origin's API server itself said this lease no longer holds the
     * origin, since the lease last changed phase: the reactivation patch
     * (a JSON patch whose test op requires our gpufed.io/lease annotation)
     * succeeded, failed its test, or found no Workload. A cache may lag
     * our own hold, so a cached "not held" cannot end a release.
     */
    bool confirmed_free;
};

enum gf_lm_outcome { GF_LM_RUNNING, GF_LM_SUCCEEDED, GF_LM_FAILED };

struct gf_lm_copy {
    enum gf_lm_seen job; /* the copy Job, by its deterministic name */
    /* labels gpufed.io/lease and gpufed.io/epoch are this lease's */
    bool ours;
    bool deleting; /* metadata.deletionTimestamp is set */
    bool reserved; /* its Workload holds quota in the lender */
    bool evicted;  /* its Workload was evicted after holding quota */
    /* its Workload has spec.active=false: the lender's agent fenced it,
     * or the hub stopped it for a reclaim (then reclaim_deactivated) */
    bool deactivated;
    /* the copy Job carries gpufed.io/reclaim-deadline equal to the view's
     * reclaim_deadline_ms: the job has been told when it stops */
    bool reclaim_marked;
    /* its Workload carries gpufed.io/reclaimed-at: the hub deactivated it
     * at the reclaim deadline (not the agent's fence) */
    bool reclaim_deactivated;
    /* The last outcome observed for this lease's copy. Kept while the
     * lender is unknown: a finished Job stays finished, so what the hub
     * saw before a partition is still true during it. */
    enum gf_lm_outcome outcome;
    int64_t finished_ms; /* when the outcome was seen; 0 while running */
    /* The writer's last create was refused for good (403, 422). */
    bool create_refused;
    /*
     * The lender's API server itself said the copy is absent (a quorum
     * GET or DELETE answered 404) since this lease last changed phase.
     * A cache that shows no copy may lag a create that already landed;
     * only this may let the origin run again.
     */
    bool confirmed_gone;
};

struct gf_lm_view {
    enum gf_lease_phase phase;
    enum gf_lm_reason reason; /* Releasing: what the release is for */
    enum gf_lm_cmd cmd;
    struct gf_lm_origin origin;
    struct gf_lm_copy copy;
    int64_t now_ms;
    int64_t copy_ttl_ms; /* how long a finished copy is kept */
    /* Reclaiming: when the copy is stopped (status.reclaimDeadline, or
     * the command's while the status does not have it yet); 0 unknown. */
    int64_t reclaim_deadline_ms;
};

enum gf_lm_write {
    GF_LM_WAIT,         /* nothing to write until observation moves */
    GF_LM_SET_PHASE,    /* QuotaLease status: phase, reason, time */
    GF_LM_HOLD_ORIGIN,  /* origin Workload: active=false + notes */
    GF_LM_CREATE_COPY,  /* copy Job in the lender, suspended */
    GF_LM_DELETE_COPY,  /* copy Job, foreground, uid precondition */
    GF_LM_CONFIRM_GONE, /* ask the lender whether the copy exists */
    /* origin Workload: active=true and our notes off, only if our
     * gpufed.io/lease annotation is there (JSON patch test op) */
    GF_LM_REACTIVATE_ORIGIN,
    GF_LM_MARK_OUTCOME, /* origin Job and Workload: gpufed.io/outcome */
    /* copy Job and Workload: gpufed.io/reclaim-deadline (the checkpoint
     * hint), and the Reclaiming Event on the copy Job */
    GF_LM_MARK_RECLAIM,
    /* copy Workload: spec.active=false and gpufed.io/reclaimed-at, with a
     * resourceVersion precondition (the lender's Kueue evicts it) */
    GF_LM_DEACTIVATE_COPY,
};

struct gf_lm_step {
    enum gf_lm_write write;
    enum gf_lease_phase phase; /* SET_PHASE: the new phase */
    enum gf_lm_reason reason;  /* SET_PHASE: why */
    /* Event reason to record on the origin with this write, or NULL. */
    const char *event;
    /* Static text: the rule that chose this step (logs, explain). */
    const char *rule;
    /* WAIT: the instant the answer changes by time alone (a reclaim
     * deadline), for a delayed requeue; 0 none. */
    int64_t wake_ms;
    /* The job ran to its end twice (the blind window of
     * docs/controller.md): the writer logs and counts it once, with this
     * step. Nothing can undo it. */
    bool ran_twice;
};

/* The next step for one lease. Pure and total: every view has one. */
struct gf_lm_step gf_lm_next(const struct gf_lm_view *v);

/* "OriginAdmitted", "NotAdmitted", ... as written in status.reason. */
const char *gf_lm_reason_name(enum gf_lm_reason r);
/* 0 or -EINVAL. */
int gf_lm_reason_parse(const char *s, enum gf_lm_reason *out);
const char *gf_lm_write_name(enum gf_lm_write w);

#endif
