/*
 * schema: structural validation of objects against a CRD's
 * openAPIV3Schema, with the API server's error messages.
 *
 * Schemas are large (the Workload CRD's is most of a megabyte) and the same
 * CRDs are installed in every simulated cluster, so a schema is interned:
 * gf_ks_schema_intern() returns a shared, refcounted, immutable schema for
 * equal input, and 100 clusters hold one copy.
 *
 * Validation covers what a structural schema enforces before admission:
 * type (object, array, string, integer, number, boolean), required,
 * enum, nullable, x-kubernetes-int-or-string,
 * x-kubernetes-preserve-unknown-fields, and items/properties/
 * additionalProperties recursion. Unknown fields are pruned as the server
 * does (not rejected), and absent fields get the schema's defaults.
 * Formats and numeric/length bounds are not evaluated. CEL rules
 * (x-kubernetes-validations) are compiled when the schema is interned and
 * run by the API layer after this validation (schema_cel.h), because
 * transition rules need the stored object.
 *
 * Loop thread only (the intern cache is not locked).
 */
#ifndef GF_KS_SCHEMA_H
#define GF_KS_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "e2e/kubesim/schema_cel.h"
#include "e2e/kubesim/status.h"

struct gf_ks_schema_cache;
struct gf_ks_schema;

/* Returned-owned; gf_ks_schema_cache_free() after every schema is unref'd. */
struct gf_ks_schema_cache *gf_ks_schema_cache_new(void);
void gf_ks_schema_cache_free(struct gf_ks_schema_cache *c);
/* Number of distinct schemas held (tests). */
size_t gf_ks_schema_cache_size(const struct gf_ks_schema_cache *c);

/*
 * Returns a reference to the interned copy of schema (borrowed input, not
 * kept). Release with gf_ks_schema_unref().
 */
struct gf_ks_schema *gf_ks_schema_intern(struct gf_ks_schema_cache *c,
                                         const cJSON *schema);
struct gf_ks_schema *gf_ks_schema_ref(struct gf_ks_schema *s);
void gf_ks_schema_unref(struct gf_ks_schema *s);
/* Returned-borrowed root of the schema. */
const cJSON *gf_ks_schema_root(const struct gf_ks_schema *s);
/* Returned-borrowed compiled CEL rules of the schema; NULL when none. */
const struct gf_ks_cel_rules *gf_ks_schema_rules(const struct gf_ks_schema *s);

/*
 * Validates obj, pruning unknown fields and setting defaults in place, as
 * the server does. kind/group/name build the message
 *   Workload.kueue.x-k8s.io "w1" is invalid: spec.active: Invalid value:
 *   "string": spec.active in body must be of type boolean: "string"
 * Returns 0 or GF_EINVALID with err filled (422 Invalid, one cause per
 * field error). apiVersion, kind and metadata are not checked here.
 */
int gf_ks_schema_validate(const struct gf_ks_schema *s, cJSON *obj,
                          const char *kind, const char *group, const char *name,
                          struct gf_ks_status *err);

#endif
