/*
 * agent: `gpufed agent`, the fencing agent that runs in each member
 * (DESIGN.md §4, docs/controller.md "The agent").
 *
 * It reads the hub's heartbeat Lease (gpufed-system/gpufed-heartbeat) in
 * its own cluster with a plain GET every D/6 and applies the credit rule
 * of controller/fence.h on its own monotonic clock. When the heartbeat
 * has not moved for D it fences: every borrowed copy (a Job labelled
 * gpufed.io/lease) that has not finished gets its Workload deactivated
 * (spec.active=false, annotation gpufed.io/fenced-at; a merge patch with
 * the Workload's resourceVersion, re-read and sent again on 409) and an
 * Event (reason Fenced) on the copy Job. While fenced it keeps doing so
 * for copies and Workloads that appear later. It never reactivates
 * anything, and it leaves the fenced state only when the heartbeat moves
 * again. Copies and Workloads are watched (two reflectors); the
 * heartbeat is polled, because a watch that falls silent cannot be told
 * from a heartbeat that stopped.
 *
 * It needs only the RBAC of manifests/member/rbac-agent.yaml. A refusal
 * (401, 403, or 404 on Jobs or Workloads: Kueue not installed) before the
 * agent was ever ready is a deployment error: it is logged with the
 * server's message and on_fatal fires (gpufed exits with 2).
 *
 * /healthz, /readyz and /metrics on opts.listen (docs/operations.md).
 *
 * Loop thread only.
 */
#ifndef GF_CONTROLLER_AGENT_H
#define GF_CONTROLLER_AGENT_H

#include <stdint.h>
#include <uv.h>

#include "kubeclient/kubeconfig.h"

struct gf_agent;

struct gf_agent_opts {
    uv_loop_t *loop;
    const struct gf_kube_creds *creds; /* borrowed for the call */
    const char *member;                /* for logs and Events */
    /* /metrics, /healthz, /readyz ("HOST:PORT", ":PORT"); NULL: none. */
    const char *listen;
    /* How far this cluster's wall clock may be behind the hub's: added to
     * the heartbeat's age at start. */
    uint64_t max_clock_offset_ms;
    /* Fault hook for clock-drift tests: the monotonic clock runs at
     * (1 + ppm/1e6) times real time (kubeclient/uvclock.h); 0: real. */
    int32_t clock_rate_ppm;
    /* Fires once, from the loop, when the agent cannot run at all (its
     * RBAC or its cluster refuses it); the caller then stops it. */
    void (*on_fatal)(void *data);
    void *data;
};

/*
 * Creates the agent and starts it. *out is returned-owned:
 * gf_agent_stop() frees it. Returns 0, or a negative error: with *out
 * NULL when nothing could start (only handles that close when the loop
 * runs are left), or with *out set when its watches could not start
 * (stop it).
 */
int gf_agent_start(const struct gf_agent_opts *o, struct gf_agent **out);

/*
 * Stops polling, cancels what is in flight, closes the watches and the
 * HTTP server, and frees the agent; cb fires once afterwards, later,
 * from the loop.
 */
void gf_agent_stop(struct gf_agent *a, void (*cb)(void *data), void *data);

#endif
