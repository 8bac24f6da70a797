/*
 * internal: helpers shared by the files of policy/ and by nothing else.
 *
 * - Lookups go through common/htab.h (the ledger's incremental updates are
 *   O(1) because every lookup goes through one), keyed by the composite
 *   keys below. Iteration order depends on insertion history, so nothing
 *   that must be deterministic may depend on it: callers sort what they
 *   collect.
 * - The policy YAML is read into common/ytree.h's tree (positions for
 *   every message, aliases refused, depth and node count capped).
 *
 * Pure code: no I/O, no clock. Single-threaded like the rest of gpufed.
 */
#ifndef GF_POLICY_INTERNAL_H
#define GF_POLICY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/config.h"
#include "policy/decide.h"
#include "policy/ledger.h"

/*
 * Builds a composite key "a\0b\0c" from up to 4 strings into out (cap
 * bytes). Returns its length, or 0 when it does not fit (the caller treats
 * that as an over-long name).
 */
size_t gf__key(char *out, size_t cap, const char *a, const char *b,
               const char *c, const char *d);

/* decide.c: when the hub may treat member m, silent, as fenced:
 * its last heartbeat + D*(1+rho) + fenceMargin. */
int64_t gf__fence_time(const struct gf_policy *p,
                       const struct gf_ledger_member *m);

/*
 * decide_loan.c: whether lender cell c (of member lender) may back a loan
 * for pending Workload w of group g. False when a loan rule blocks it;
 * then why, if its rule is still NULL, says which (notBudget, noCohort,
 * borrowingLimit). The caps are decide.c's, as for a redirect.
 */
bool gf__loan_cell_ok(const struct gf_ledger *l, const struct gf_policy *p,
                      const struct gf_policy_group *g,
                      const struct gf_ledger_wl *w, const char *lender,
                      const struct gf_ledger_cell *c, struct gf_why *why);
/* The explanation of a loan START (rule "loan"). */
void gf__loan_start_why(const struct gf_ledger_wl *w,
                        const struct gf_ledger_cell *c, const char *lender,
                        int64_t room, int64_t now_ms, struct gf_why *why);
/*
 * The upkeep of one loan lease (decide.h, "lease upkeep", with the
 * borrower's silence in the lender's place for FENCE, and RENEW only while
 * the origin holds quota). True with *kind, *why (and *until_ms for
 * RENEW) when it needs an action.
 */
bool gf__loan_upkeep(const struct gf_ledger *l, const struct gf_policy *p,
                     int64_t now, const struct gf_ledger_lease *ll,
                     enum gf_action_kind *kind, int64_t *until_ms,
                     struct gf_why *why);

#endif
