/*
 * discovery: what an API server serves (every group, version and
 * resource, with its scope, kind, singular and short names), and
 * kubectl's reading of a resource argument against it.
 *
 * gf_kube_resource_parse() (request.h) names resources from a fixed table,
 * which is right for the controller's own resources but not for a person
 * typing at a server: only the server knows that `storageclasses` is
 * cluster-scoped, that the Kueue CRDs call their Workloads `kwl` (and
 * nothing calls them `wl`), or that `Workload` and `workload` name them
 * too. A struct gf_kube_discovery holds the server's own answer.
 *
 * Fetching asks for aggregated discovery (apidiscovery.k8s.io v2, or
 * v2beta1 as kube-apiserver 1.27-1.29 serves it): two requests, /api and
 * /apis. A server that answers with the legacy documents gets one more
 * request per group version (/api/v1, /apis/G/V), all in flight at once;
 * a group version that fails is left out (as kubectl does), a failure of
 * /api or /apis fails the discovery.
 *
 * Resources are kept in kubectl's priority order: the core group first,
 * then the groups in the order the server lists them, each group's
 * versions in the server's preference order. Loop thread only.
 */
#ifndef GF_DISCOVERY_H
#define GF_DISCOVERY_H

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "kubeclient/request.h"

struct gf_kube_discovery;

/* An empty set; free with gf_kube_discovery_free() (accepts NULL). */
struct gf_kube_discovery *gf_kube_discovery_new(void);
void gf_kube_discovery_free(struct gf_kube_discovery *d);

/*
 * Adds the resources of one document, after those already added (so add
 * in priority order): an APIGroupDiscoveryList (aggregated, v2 or
 * v2beta1) or an APIResourceList (legacy, one group version).
 * Subresources are skipped. Returns 0, or GF_EPARSE if doc is neither.
 */
int gf_kube_discovery_add(struct gf_kube_discovery *d, const cJSON *doc);
/* Number of resources held (tests, logs). */
size_t gf_kube_discovery_count(const struct gf_kube_discovery *d);

/*
 * Resolves a resource argument as kubectl 1.32 does:
 *   1. resource.version.group ("storageclasses.v1.storage.k8s.io"),
 *   2. resource.group ("workloads.kueue.x-k8s.io") or resource alone,
 *      where resource is a plural, a singular or a short name (a short
 *      name applies only when no resource is named so), case-insensitive,
 *      so a Kind ("StorageClass") matches through its singular,
 *   3. Kind.version.group or Kind.group, the kind as written.
 * Among several matches the first in priority order wins ("events" is
 * the core group's). Fills *out (kind and scope from the server).
 * Returns 0, -ENOENT (the server has no such resource) or -EINVAL.
 */
int gf_kube_discovery_resolve(const struct gf_kube_discovery *d,
                              const char *arg, struct gf_kube_resource *out);

struct gf_kube_discover_opts {
    bool legacy; /* skip aggregated discovery (tests, old servers) */
};

/*
 * Called once. err 0: *d is returned-owned (gf_kube_discovery_free()).
 * Otherwise d is NULL and st describes the failure of /api or /apis
 * (GF_ECANCELED after gf_kube_discover_cancel()).
 */
typedef void (*gf_kube_discover_cb)(void *data, int err,
                                    const struct gf_api_status *st,
                                    struct gf_kube_discovery *d);

struct gf_kube_discover;

/*
 * Starts discovery on client c (borrowed; must outlive the callback).
 * opts may be NULL. *out (may be NULL) is a returned-borrowed handle for
 * gf_kube_discover_cancel(), valid until cb returns. Returns 0 (cb fires
 * exactly once) or a negative code (cb never fires).
 */
int gf_kube_discover_start(struct gf_kube_client *c,
                           const struct gf_kube_discover_opts *opts,
                           gf_kube_discover_cb cb, void *data,
                           struct gf_kube_discover **out);
/* Cancels every request in flight; cb fires with GF_ECANCELED. */
void gf_kube_discover_cancel(struct gf_kube_discover *dc);

#endif
