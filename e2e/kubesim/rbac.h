/*
 * rbac: authorization of one simulated cluster, evaluated from the
 * Role, ClusterRole, RoleBinding and ClusterRoleBinding objects in its
 * store, with the rules of Kubernetes' RBAC authorizer:
 *   - the group system:masters is allowed everything (the API server's
 *     privileged-group authorizer runs before RBAC);
 *   - a ClusterRoleBinding grants its ClusterRole everywhere; a
 *     RoleBinding grants its Role, or a ClusterRole, in its namespace only;
 *   - a rule matches when its verbs, apiGroups, resources ("workloads",
 *     "workloads/status", "* /status" without the space, "*") and, if set,
 *     resourceNames all match; nonResourceURLs ("/apis", "/healthz/ *"
 *     without the space) only count through ClusterRoleBindings;
 *   - subjects are User, Group and ServiceAccount (whose namespace
 *     defaults to the binding's);
 *   - a ClusterRole with an aggregationRule also has the rules of every
 *     ClusterRole its selectors' matchLabels pick, as the aggregation
 *     controller would write them (matchExpressions select nothing).
 * Denials are 403 Status bodies with the API server's message, e.g.
 *   workloads.kueue.x-k8s.io is forbidden: User "x" cannot list resource
 *   "workloads" in API group "kueue.x-k8s.io" in the namespace "ns"
 *
 * The evaluator keeps a compiled copy of the RBAC objects and rebuilds it
 * lazily after any of them changes (it observes the store), so a request
 * costs a scan of a few compiled bindings, not a JSON parse.
 *
 * A struct gf_ks_rbac borrows the store (which must outlive it) and owns
 * its compiled cache. Loop thread only.
 */
#ifndef GF_KS_RBAC_H
#define GF_KS_RBAC_H

#include "e2e/kubesim/api.h"
#include "e2e/kubesim/status.h"
#include "e2e/kubesim/store.h"

struct gf_ks_rbac;

/* Returned-owned; free with gf_ks_rbac_free before the store. */
struct gf_ks_rbac *gf_ks_rbac_new(struct gf_ks_store *st);
/* Accepts NULL. */
void gf_ks_rbac_free(struct gf_ks_rbac *r);

/*
 * A gf_ks_authorize_fn: data is the struct gf_ks_rbac. Returns 0 to
 * allow, GF_EFORBIDDEN with err filled (403 Forbidden) to deny.
 */
int gf_ks_rbac_authorize(void *data, const struct gf_ks_authz_attrs *a,
                         struct gf_ks_status *err);

/*
 * Creates the bootstrap roles every cluster has: cluster-admin (bound to
 * system:masters), system:discovery, system:public-info-viewer and
 * system:basic-user (bound to system:authenticated), so that any
 * authenticated client can run discovery and ask what it may do
 * (SelfSubjectAccessReview), as on a real cluster. The RBAC types must be
 * registered. Returns 0 or the first store error (err filled).
 */
int gf_ks_rbac_bootstrap(struct gf_ks_store *st, struct gf_ks_status *err);

/* Number of compiled rebuilds so far (tests check caching). */
unsigned long gf_ks_rbac_rebuilds(const struct gf_ks_rbac *r);

#endif
