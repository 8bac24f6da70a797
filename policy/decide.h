/*
 * decide: given the ledger, the policy and the time, what to do next.
 *
 * gf_decide() is pure and deterministic: the same ledger, policy and
 * now_ms give the same actions in the same order. It reads no clock and
 * does no I/O; the controller carries the actions out (DESIGN.md §3-§4)
 * and feeds what it observes back into the ledger.
 *
 * Actions, in the order they are returned:
 *   1. lease upkeep, by lease name: WITHDRAW a Pending lease whose copy was
 *      not admitted within admitTimeout; SUSPECT a lease whose lender is
 *      not SYNCED; FENCE a Suspect lease once its lender (with an agent)
 *      has been silent for D*(1+rho) + fenceMargin, D the longer of the
 *      policy's and the member's term_ms (never for
 *      `fencing: none`); RENEW an Active lease when less than 2D/3 of its
 *      term is left (the heartbeat runs every D/3);
 *   2. RECLAIM: a lender ClusterQueue whose own Workloads have waited
 *      reclaimAfter for quota that its borrowers hold marks victims (the
 *      policy's victimOrder) until the missing quota would be free, with a
 *      deadline of now + gracePeriod;
 *   3. START: pending Workloads, highest priority then longest waiting
 *      first, each to the best lender ClusterQueue x flavor (below).
 *
 * A Workload may start a lease only if it has waited overflowAfter, its
 * ClusterQueue is in a group whose overflow filter lets it through
 * (namespace, job kind, priority), its origin is SYNCED, it holds no
 * live lease (S1: at most one copy), and its last lease did not end
 * Failed(CreateRefused) while it had the same uid (rule "copyRefused": the
 * next copy would be refused the same way). A lender cell qualifies if its
 * member is SYNCED (unknown is never read as zero), neither drained (rule
 * "drained") nor recovering from a heal while it has an agent (rule
 * "recovering": until its recovering_until_ms), the sharing rules
 * allow the pair for the group, the lender's namespace for the copy (the
 * group's namespaceMapping of the Workload's) has opted in
 * (gf_ledger_ns_accepts; why rule "acceptOverflow" when none has), its
 * flavor is equivalent to one of the
 * origin ClusterQueue's flavors, and the Workload's GPUs fit under every
 * cap at once (S2): the cell's Kueue lendable quota minus the group's
 * reserve, the lender's lending cap, the borrower's borrowing cap and the
 * pair's cap, each net of what earlier actions of the same pass take.
 * Qualifying cells are ordered by: most idle (largest headroom), then
 * locality (labels shared with the origin, in spec.locality order), then
 * fewest leases out of the lender, then names; the first wins.
 *
 * Every action carries a structured explanation: the rule that decided
 * and the numbers compared.
 *
 * Ownership: actions own all their strings (the ledger's are only valid
 * until its next update). gf_actions_free() releases them.
 */
#ifndef GF_POLICY_DECIDE_H
#define GF_POLICY_DECIDE_H

#include <stddef.h>
#include <stdint.h>

#include "policy/config.h"
#include "policy/lease.h"
#include "policy/ledger.h"

enum gf_action_kind {
    GF_ACT_START,    /* start a lease for a pending Workload */
    GF_ACT_WITHDRAW, /* the copy was not admitted in time: undo */
    GF_ACT_SUSPECT,  /* the lender cannot be reached: hold, count as used */
    GF_ACT_FENCE,    /* the lender has certainly stopped the copy */
    GF_ACT_RENEW,    /* extend an Active lease's term */
    GF_ACT_RECLAIM   /* the lender wants quota back: mark victims */
};

/* Why: the rule that decided and the numbers it compared. */
struct gf_why {
    const char *rule; /* static: "overflowAfter", "fit", "admitTimeout"... */
    char text[320];   /* one sentence for people */
    int64_t have, need;
};

struct gf_action {
    enum gf_action_kind kind;
    char *lease; /* the lease acted on; NULL for START */
    /* START: the origin Workload; others: the lease's origin */
    char *member, *namespace, *name;
    char *group;
    /* START: where it goes; others: the lease's lender */
    char *lender, *lender_cq, *flavor;
    int64_t gpus;
    enum gf_lease_mode mode; /* START */
    uint64_t epoch;          /* START: one above the last lease's */
    int64_t until_ms;        /* RENEW: new expiry; RECLAIM: deadline */
    char **victims;          /* RECLAIM: lease names, in victim order */
    size_t n_victims;
    struct gf_why why;
};

struct gf_actions {
    struct gf_action *v;
    size_t n, cap;
};

/* Appends the actions to out (initialise it zeroed). 0 or -ENOMEM-free
 * errors: -EINVAL when the ledger's resource is not the policy's. */
int gf_decide(const struct gf_ledger *l, const struct gf_policy *p,
              int64_t now_ms, struct gf_actions *out);
void gf_actions_free(struct gf_actions *a);

/*
 * The same pass in slices, so that a caller on an event loop never holds
 * it for a whole pass (33k pending Workloads past overflowAfter take
 * seconds): gf_decide_begin appends the lease upkeep and reclaim actions
 * (one walk of the leases) and returns the pass; each gf_decide_step then
 * considers at most `budget` pending Workloads for START, the next ones in
 * decide's order after those of the previous step, against the ledger and
 * policy as they are at that step, and returns 1 once none is left (0:
 * call again). A pass over n pending Workloads takes ceil(n / budget)
 * steps when nothing changes in between. The caps of S2 hold across
 * steps: the pass keeps what its earlier STARTs took, net of the ledger
 * (once the ledger shows those leases too, they count twice until the
 * pass ends, which only ever errs toward starting less). A Workload whose
 * place in the order moves before the cursor, or that arrives there,
 * waits for the next pass. The ledger must be the same one throughout;
 * a caller whose policy is reloaded meanwhile frees the pass and begins
 * anew.
 * gf_decide() is begin, steps with no budget, free.
 */
struct gf_decide_pass;
int gf_decide_begin(const struct gf_ledger *l, const struct gf_policy *p,
                    int64_t now_ms, struct gf_actions *out,
                    struct gf_decide_pass **dp);
int gf_decide_step(struct gf_decide_pass *dp, const struct gf_ledger *l,
                   const struct gf_policy *p, size_t budget,
                   struct gf_actions *out);
/* Pending Workloads considered so far. */
size_t gf_decide_pass_considered(const struct gf_decide_pass *dp);
void gf_decide_pass_free(struct gf_decide_pass *dp);

const char *gf_action_kind_name(enum gf_action_kind k);

/*
 * The earliest fencing instant after now_ms: for every member with
 * `fencing: agent` that is not SYNCED, its last heartbeat + D*(1+rho) +
 * fenceMargin, the instant from which gf_decide() FENCEs its Suspect
 * leases. INT64_MAX when none is still to come. The controller runs a
 * pass then rather than up to a period later.
 */
int64_t gf_decide_next_fence_ms(const struct gf_ledger *l,
                                const struct gf_policy *p, int64_t now_ms);

/*
 * The earliest instant after now_ms at which a reclaim may become due
 * without any other change: a pending Workload of a ClusterQueue that
 * lends through leases reaching reclaimAfter, a copy spared by minRunTime
 * outgrowing it while its lender ClusterQueue has pending Workloads, or a
 * reclaim leaving the hour window of a group with maxReclaimsPerHour.
 * INT64_MAX when none. The controller runs a pass then, so that a lender
 * waits reclaimAfter and not reclaimAfter plus up to a period. O(pending
 * Workloads + leases).
 */
int64_t gf_decide_next_reclaim_ms(const struct gf_ledger *l,
                                  const struct gf_policy *p, int64_t now_ms);

/*
 * The earliest instant after now_ms at which a member with `fencing:
 * agent` that has just healed may lend again (its recovering_until_ms;
 * rule `recovering`). INT64_MAX when none. The controller runs a pass
 * then, so that the lender is used the moment its agent can have seen
 * the heartbeat move.
 */
int64_t gf_decide_next_recovered_ms(const struct gf_ledger *l,
                                    const struct gf_policy *p, int64_t now_ms);

/*
 * Why a pending Workload would or would not start a lease now, with the
 * best lender if it would: the same checks as gf_decide() for that one
 * Workload, against the ledger as it is. Returns 0 with *out filled
 * (out->kind GF_ACT_START when it would start; otherwise out->why says
 * the first thing that blocks it), or GF_ENOTFOUND.
 */
int gf_decide_workload(const struct gf_ledger *l, const struct gf_policy *p,
                       int64_t now_ms, const char *member, const char *ns,
                       const char *name, struct gf_action *out, int *starts);
void gf_action_clear(struct gf_action *a);

#endif
