/*
 * managed: metadata.managedFields, the field ownership a real API server
 * records per field manager, for kubesim's writes.
 *
 * A write through the API names a manager (the fieldManager parameter,
 * else the client's user-agent prefix) and is either an Update (create,
 * PUT, and every patch but apply) or an Apply (server-side apply). An
 * Update gives its manager the fields the write changed and takes them
 * from every other manager; an Apply gives its manager exactly the fields
 * of the applied configuration, removes the fields it applied last time
 * and no longer applies (unless another manager still owns them), and
 * refuses, with a 409 naming the managers and fields, to change a field
 * another manager owns unless forced. Field sets are kept in the server's
 * FieldsV1 format (f:, k:{...}, v:, "." for the item itself).
 *
 * Which lists are associative comes from the CRD schema
 * (x-kubernetes-list-type, x-kubernetes-list-map-keys,
 * x-kubernetes-map-type) or, for built-in types, from the strategic-merge
 * keys of the types kubesim serves (containers by name, ports by
 * containerPort and protocol, conditions by type, finalizers a set).
 *
 * Pure functions on cJSON documents; the loop thread only.
 */
#ifndef GF_KS_MANAGED_H
#define GF_KS_MANAGED_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "e2e/kubesim/status.h"

/* The longest manager name the server accepts. */
#define GF_KS_MANAGER_MAX 128

/* One write, as the field manager sees it. All pointers borrowed. */
struct gf_ks_managed_op {
    const char *manager;     /* non-empty, at most GF_KS_MANAGER_MAX */
    const char *api_version; /* "v1", "batch/v1", "kueue.x-k8s.io/v1beta1" */
    bool status;             /* a write of the status subresource */
    /*
     * The version's openAPIV3Schema root for a custom resource; NULL for
     * built-in types (their list semantics are the table's in managed.c).
     */
    const cJSON *schema;
    bool has_status;  /* the type has a status subresource */
    const char *kind; /* "Job", ...: a few built-in lists depend on it */
    const char *now;  /* RFC 3339, seconds */
};

/*
 * The manager of a request: fieldManager when given and non-empty, else
 * the user agent up to its first '/', else "unknown", as the server
 * derives it. Writes at most cap bytes (NUL included) into out.
 */
void gf_ks_managed_name(const char *field_manager, const char *user_agent,
                        char *out, size_t cap);

/*
 * Records an Update: obj (the object to be stored) gets the managedFields
 * of live (NULL on a create) updated for the fields that differ between
 * the two. When obj itself carries a non-empty managedFields list, that
 * list replaces live's first, as a client that writes managedFields
 * resets them on the server.
 */
void gf_ks_managed_update(const struct gf_ks_managed_op *op, const cJSON *live,
                          cJSON *obj);

/*
 * Records an Apply. obj is the stored object merged with the applied
 * configuration cfg (live is the stored object, NULL on a create); fields
 * this manager applied before and no longer applies, and that no other
 * manager owns, are removed from obj, and obj gets the new managedFields.
 * A change of a field another manager owns is a 409 Conflict (obj then
 * is unspecified) unless force. Returns 0 or a negative code with err
 * set.
 */
int gf_ks_managed_apply(const struct gf_ks_managed_op *op, const cJSON *live,
                        const cJSON *cfg, bool force, cJSON *obj,
                        struct gf_ks_status *err);

#endif
