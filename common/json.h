/*
 * json: small helpers over cJSON for reading API objects.
 *
 * Paths are dot-separated object keys ("metadata.name",
 * "status.admission.clusterQueue"). Keys containing dots cannot be
 * addressed this way; use cJSON directly for those (labels/annotations
 * have gf_json_label()).
 */
#ifndef GF_JSON_H
#define GF_JSON_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

/* Returned-borrowed; NULL if absent or not of that type. */
const cJSON *gf_json_path(const cJSON *root, const char *path);
const char *gf_json_str(const cJSON *root, const char *path);
/* 0, -ENOENT (absent) or -EINVAL (wrong type / out of range). */
int gf_json_int(const cJSON *root, const char *path, int64_t *out);
int gf_json_bool(const cJSON *root, const char *path, bool *out);
/* metadata.labels[key] / metadata.annotations[key], or NULL. */
const char *gf_json_label(const cJSON *obj, const char *key);
const char *gf_json_annotation(const cJSON *obj, const char *key);

/*
 * Conditions ([{"type":..,"status":"True"|"False",..}], as in
 * status.conditions). gf_json_cond: the element of type in the array
 * conds, or NULL (conds may be NULL). gf_json_cond_true: whether it is
 * there with status "True".
 */
cJSON *gf_json_cond(const cJSON *conds, const char *type);
bool gf_json_cond_true(const cJSON *conds, const char *type);
/* The element of type in conds, appended as {"type":type} if absent. */
cJSON *gf_json_cond_ensure(cJSON *conds, const char *type);
/* Sets obj[key] to the string val, replacing what was there. */
void gf_json_set_str(cJSON *obj, const char *key, const char *val);

/*
 * Parses a Kubernetes quantity ("8", "500m", "16Gi", "1.5") into
 * milli-units. 0, -EINVAL for malformed input, -ERANGE on overflow.
 */
int gf_quantity_parse_milli(const char *s, int64_t *milli);
/* Same for a JSON number or string node. */
int gf_json_quantity_milli(const cJSON *node, int64_t *milli);

/* Parses a duration "90s", "5m", "1h30m", "250ms" into ms. */
int gf_duration_parse_ms(const char *s, int64_t *ms);

/* Parses a decimal integer with full validation (strtoll, end, errno). */
int gf_parse_i64(const char *s, int64_t *out);

/*
 * Deep equality of two JSON values (either may be NULL: equal only when
 * both are); object members compare regardless of order, arrays in order.
 * Linear in the size of the trees. Use it instead of cJSON_Compare, which
 * compares every object member twice at every level and so takes time
 * exponential in the depth (minutes on a CRD schema).
 */
bool gf_json_equal(const cJSON *a, const cJSON *b);

#endif
