/*
 * hub: `gpufed hub`, the controller that runs in the hub cluster.
 *
 * It watches the hub's QuotaLeases and the members' kubeconfig Secrets,
 * connects to every member of the policy, keeps the ledger from what it
 * observes, runs decision passes (policy/decide) and the lease machine
 * (DESIGN.md §3) for every lease, all on one libuv loop. Nothing is
 * decided before every member has listed everything once; a member that
 * cannot be reached is never read as empty. Nothing lives only in memory:
 * a hub that restarts rebuilds the ledger and continues every lease from
 * what it observes. docs/controller.md describes the loop and the keys.
 *
 * Loop thread only.
 */
#ifndef GF_CONTROLLER_HUB_H
#define GF_CONTROLLER_HUB_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "kubeclient/kubeconfig.h"
#include "policy/config.h"

struct gf_hub;

struct gf_hub_opts {
    uv_loop_t *loop;
    const struct gf_kube_creds *hub_creds; /* borrowed for the call */
    /* The FederationPolicy file, reloaded when it changes (also through
     * a ConfigMap's symlink swap); a file that fails validation keeps the
     * last good policy. */
    const char *policy_path;
    const char *ns;          /* NULL: gpufed-system */
    uint64_t pass_period_ms; /* 0: 1000 */
    uint64_t copy_ttl_ms;    /* 0: 10 min */
    /*
     * Fault hook for crash-recovery tests: "WRITE:N" kills the process
     * with SIGKILL right after the N-th successful write of that kind
     * (record, set-phase, hold-origin, create-copy, delete-copy,
     * confirm-gone, reactivate-origin, mark-outcome). NULL: none.
     */
    const char *crash_after;
    /* Fault hook for clock-drift tests: the monotonic clock runs at
     * (1 + ppm/1e6) times real time (kubeclient/uvclock.h); 0: real. */
    int32_t clock_rate_ppm;
    /* /metrics, /healthz, /readyz on this address ("HOST:PORT", ":PORT");
     * NULL: not served. */
    const char *listen;
    /*
     * Leader election (controller/leader.h): this replica's identity in
     * the Lease gpufed-hub-leader of ns (replicas need distinct ids; NULL:
     * "gpufed-hub"), and the lease (0: 15 s). A replica that does not lead
     * keeps its caches warm and writes nothing.
     */
    const char *id;
    uint64_t leader_lease_ms;
    /*
     * Called once when this replica, having led, loses the lease; writes
     * have already stopped. `gpufed hub` stops and exits on it (STYLE: a
     * deposed leader exits, and starts again as a candidate under its
     * Deployment). NULL: go back to being a candidate in this process.
     */
    void (*on_leadership_lost)(void *data);
    void *on_leadership_lost_data;
};

/*
 * Creates the hub on o->loop and starts it: hub watches at once, members
 * as their Secrets arrive. *out is returned-owned: gf_hub_stop() frees
 * it. Returns 0, GF_ECONFIG for a policy that fails validation (every
 * error logged with file:line:col), or another negative error; on
 * failure *out is NULL and only closing handles are left on the loop.
 */
int gf_hub_start(const struct gf_hub_opts *o, struct gf_hub **out);

/*
 * Stops taking work, lets writes in flight finish, closes every watch and
 * frees the hub; cb fires once afterwards, later, from the loop.
 */
void gf_hub_stop(struct gf_hub *h, void (*cb)(void *data), void *data);

/* Counters for logs and tests. */
struct gf_hub_stats {
    uint64_t passes, starts, writes, write_errors;
    size_t members_synced, leases, pending;
    bool leading;
};
void gf_hub_stats(const struct gf_hub *h, struct gf_hub_stats *out);

#endif
