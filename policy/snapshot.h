/*
 * snapshot: the ledger as a JSON document, for `gpufedctl policy explain`
 * (offline: a policy plus a snapshot), for tests and for bug reports.
 *
 *   {"apiVersion": "gpufed.io/v1alpha1", "kind": "LedgerSnapshot",
 *    "resource": "nvidia.com/gpu", "nowMs": 600000,
 *    "members": [{"name", "freshness": "synced|stale|suspect|unknown",
 *                 "lastHeartbeatMs", "termMs"?, "recoveringUntilMs"?}],
 *    "clusterQueues": [{"member", "name", "cohort"?, "quota": [{"flavor",
 *                       "resource", "nominal", "borrowingLimit"?,
 *                       "lendingLimit"?}]}],
 *    "workloads": [{"member", "namespace", "name", "uid"?, "clusterQueue"?,
 *                   "flavor"?, "kind"?, "gpus", "priority"?,
 *                   "state": "Pending|QuotaReserved|Admitted|Inactive|
 *                   Finished", "pendingSinceMs"?}],
 *    "leases": [{"name", "group", "mode": "redirect|loan", "phase",
 *                "epoch", "origin": {"member", "namespace", "name", "uid",
 *                "clusterQueue"}, "lender": {"member", "clusterQueue",
 *                "flavor"}, "gpus", "priority"?, "createdMs"?,
 *                "startedMs"?, "expiresMs"?, "reclaimDeadlineMs"?,
 *                "reclaimStartedMs"?, "endedMs"?, "reason"?}]}
 *
 * Quantities are whole numbers of the federated resource; times are
 * milliseconds on the controller's clock (nowMs is when the snapshot was
 * taken). Loading validates every field and says which one is wrong;
 * documents larger than GF_SNAPSHOT_MAX_BYTES are refused.
 */
#ifndef GF_POLICY_SNAPSHOT_H
#define GF_POLICY_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "policy/ledger.h"

#define GF_SNAPSHOT_MAX_BYTES (64u << 20)

/*
 * Builds a ledger from a snapshot. Returns 0 with *out (returned-owned)
 * and *now_ms (0 when absent), or GF_EPARSE / GF_E2BIG / -EINVAL with a
 * reason in err ("workloads[3].gpus: expected a whole number >= 0").
 */
int gf_snapshot_load(const char *buf, size_t len, struct gf_ledger **out,
                     int64_t *now_ms, char *err, size_t cap);
/* The ledger as a snapshot document; returned-owned (gf_free). Sorted,
 * so equal ledgers give equal text. */
char *gf_snapshot_dump(const struct gf_ledger *l, int64_t now_ms);

#endif
