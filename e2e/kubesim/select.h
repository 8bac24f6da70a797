/*
 * select: label and field selectors, parsed once and matched many times.
 *
 * Label selectors follow the API server's grammar: comma-separated
 * requirements, each `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`,
 * `k` (exists) or `!k` (does not exist). Field selectors accept `=`, `==`
 * and `!=` on the fields the server lets clients select on for the type:
 * metadata.name and metadata.namespace for most types, more for a few
 * (Pod spec.nodeName and status.phase, Event involvedObject.*, Secret
 * type, Job status.successful ...), and only metadata.name (plus
 * metadata.namespace when namespaced) for custom resources. Any other
 * field is a 400 BadRequest worded as the server words it for that type.
 * A requirement that does not parse is a 400 BadRequest with the
 * server's message.
 *
 * Selectors are immutable after parsing and owned by whoever parsed them.
 */
#ifndef GF_KS_SELECT_H
#define GF_KS_SELECT_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "e2e/kubesim/status.h"

struct gf_ks_selector;

/*
 * Parses a label selector (field = false) or a field selector
 * (field = true). An empty or NULL string yields *out = NULL, which matches
 * everything. Returns 0 or GF_EINVALID with err filled (400 BadRequest).
 * *out is returned-owned: gf_ks_selector_free().
 */
int gf_ks_selector_parse(const char *s, bool field, struct gf_ks_selector **out,
                         struct gf_ks_status *err);
void gf_ks_selector_free(struct gf_ks_selector *sel);

/* The type a field selector is for: what decides its selectable fields. */
struct gf_ks_field_type {
    const char *group, *resource, *kind; /* "" group for core */
    bool namespaced;
    bool custom; /* served from a CustomResourceDefinition */
};

/*
 * Parses a field selector for objects of type t, checking every field
 * against t's selectable fields. Returns as gf_ks_selector_parse().
 * gf_ks_selector_parse(s, true, ...) checks against metadata.name and
 * metadata.namespace only.
 */
int gf_ks_selector_parse_fields(const char *s, const struct gf_ks_field_type *t,
                                struct gf_ks_selector **out,
                                struct gf_ks_status *err);
/* Returned-owned deep copy (NULL for NULL). */
struct gf_ks_selector *gf_ks_selector_dup(const struct gf_ks_selector *sel);

/*
 * Matches a label selector against a labels object (may be NULL: no
 * labels) or a field selector against an object (its metadata is read).
 * A NULL selector matches everything.
 */
bool gf_ks_selector_match_labels(const struct gf_ks_selector *sel,
                                 const cJSON *labels);
bool gf_ks_selector_match_fields(const struct gf_ks_selector *sel,
                                 const cJSON *obj);
/* Matches sel (label or field kind) against a whole object. */
bool gf_ks_selector_match(const struct gf_ks_selector *sel, const cJSON *obj);

#endif
