/*
 * select: label and field selectors, parsed once and matched many times.
 *
 * Label selectors follow the API server's grammar: comma-separated
 * requirements, each `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`,
 * `k` (exists) or `!k` (does not exist). Field selectors accept `=`, `==`
 * and `!=` on the fields the server supports for every type
 * (metadata.name, metadata.namespace). A requirement that does not parse
 * is a 400 BadRequest with the server's message.
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
