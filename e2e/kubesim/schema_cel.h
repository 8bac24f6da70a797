/*
 * schema_cel: a CRD schema's validation rules (x-kubernetes-validations),
 * compiled once and run on every write as the apiextensions server runs
 * them, after structural validation.
 *
 * Each rule runs where it is declared, with `self` the value there. A
 * transition rule (one naming oldSelf) runs only on an update, and only
 * where the old object has a value at the same place: through object
 * properties and map values, and through list items of lists with
 * x-kubernetes-list-type: map (matched by their keys); never inside other
 * lists, as the server correlates nothing there. A failing rule gives
 *   spec.clusterQueue: Invalid value: "string": field is immutable
 * (the value shown is the schema type; "<nil>" names the root), and a
 * rule that cannot be evaluated on this object
 *   spec: Invalid value: "object": no such key: nodeLabels evaluating
 *   rule: <message or rule>
 *
 * A rule outside kubesim's CEL subset (cel.h), or one with
 * messageExpression, reason, fieldPath or optionalOldSelf (which none of
 * the shipped CRDs use), is kept as unsupported: it is never evaluated,
 * and gf_ks_cel_rules_each_unsupported() lists it so the CRD's installer
 * can report it.
 *
 * Immutable after creation; loop thread only.
 */
#ifndef GF_KS_SCHEMA_CEL_H
#define GF_KS_SCHEMA_CEL_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "e2e/kubesim/status.h"

struct gf_ks_cel_rules;

/*
 * Compiles every rule of schema (borrowed; it must outlive the result,
 * which points into it). Returned-owned: gf_ks_cel_rules_free(). NULL when
 * the schema has no rules.
 */
struct gf_ks_cel_rules *gf_ks_cel_rules_new(const cJSON *schema);
void gf_ks_cel_rules_free(struct gf_ks_cel_rules *r);

/* Number of rules, and of rules outside the subset (r may be NULL). */
size_t gf_ks_cel_rules_count(const struct gf_ks_cel_rules *r);
size_t gf_ks_cel_rules_unsupported(const struct gf_ks_cel_rules *r);

typedef void (*gf_ks_cel_rule_fn)(void *data, const char *path,
                                  const char *rule, const char *why);
/*
 * Calls fn for each unsupported rule: path is the schema path
 * ("spec.resourceGroups[]"), why the compiler's reason.
 */
void gf_ks_cel_rules_each_unsupported(const struct gf_ks_cel_rules *r,
                                      gf_ks_cel_rule_fn fn, void *data);

/*
 * Runs the rules on obj, with old the stored object on an update (NULL on
 * a create). Returns 0, or GF_EINVALID with err set as the server's 422
 * (kind/group/name as in gf_ks_schema_validate()).
 */
int gf_ks_cel_rules_validate(const struct gf_ks_cel_rules *r, const cJSON *obj,
                             const cJSON *old, const char *kind,
                             const char *group, const char *name,
                             struct gf_ks_status *err);

#endif
