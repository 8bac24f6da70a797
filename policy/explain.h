/*
 * explain: why one Workload is where it is, for the person who submitted
 * it and for `gpufedctl policy explain`.
 *
 * The explanation is a JSON document (for tools) and the same in words
 * (for people): the Workload as the ledger sees it, its leases (where it
 * ran or runs, in which phase), and what gf_decide() would do for it now,
 * with the rule that decides and the numbers compared. For a group in
 * mode loan or both, the decision's mode says which way it goes and its
 * text why (rule "loan"; or, for a redirect, why no loan: notBudget,
 * noCohort, borrowingLimit):
 *
 *   {"workload": {"member", "namespace", "name", "clusterQueue", "cohort",
 *                 "group", "groupMode": "redirect"|"loan"|"both", "gpus",
 *                 "priority", "state", "pendingMs"},
 *    "leases": [{"name", "mode": "redirect"|"loan", "phase", "lender",
 *                "clusterQueue", "flavor", "epoch", "gpus", "reason"}],
 *    "decision": {"action": "start"|"wait"|"none", "rule", "text", "have",
 *                 "need", "lender", "clusterQueue", "flavor", "mode",
 *                 "epoch"}}
 *
 * Pure: the ledger, the policy and the time are passed in.
 */
#ifndef GF_POLICY_EXPLAIN_H
#define GF_POLICY_EXPLAIN_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "policy/config.h"
#include "policy/ledger.h"

/* 0 with *out (returned-owned, cJSON_Delete), or GF_ENOTFOUND. */
int gf_explain(const struct gf_ledger *l, const struct gf_policy *p,
               int64_t now_ms, const char *member, const char *ns,
               const char *name, cJSON **out);
/*
 * The same explanation in words, one fact per line, built from the
 * ledger and the policy as gf_explain() is: 0 with *out (returned-owned,
 * gf_free), or GF_ENOTFOUND.
 */
int gf_explain_words(const struct gf_ledger *l, const struct gf_policy *p,
                     int64_t now_ms, const char *member, const char *ns,
                     const char *name, char **out);

#endif
