/*
 * json: small helpers over cJSON for reading API objects.
 *
 * Two ways to address a field, for two kinds of key:
 *
 *  - gf_json_path/str/int/bool(root, "status.admission.clusterQueue"):
 *    a dot-separated path of field names written in the code. These are
 *    macros that accept only a string literal (a variable does not
 *    compile), because a key that comes from data may itself contain
 *    dots: resource names (nvidia.com/gpu), label and annotation keys
 *    (kueue.x-k8s.io/queue-name). Reading such a key through a dotted
 *    path silently finds nothing.
 *  - GF_JSON_AT(root, "metadata", "labels", key): key by key, each
 *    argument one object key taken as it is, dots and all. Use it for
 *    every key that is not a literal; gf_json_as_str/int/bool type the
 *    node it returns.
 *
 * All returned nodes and strings are returned-borrowed from root.
 */
#ifndef GF_JSON_H
#define GF_JSON_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The node at a literal dotted path, or NULL if absent (or if a step is
 * not an object). A segment longer than 255 bytes is a programmer error
 * and stops the process (GF_BUG_ON), since it can only come from code.
 */
#define gf_json_path(root, path) gf__json_path((root), "" path "")
/* The string at a literal dotted path; NULL if absent or not a string. */
#define gf_json_str(root, path) gf_json_as_str(gf_json_path(root, path))
/* 0, -ENOENT (absent) or -EINVAL (wrong type / not an exact integer). */
#define gf_json_int(root, path, out)                                           \
    gf_json_as_int(gf_json_path(root, path), out)
/* 0, -ENOENT (absent) or -EINVAL (not a boolean). */
#define gf_json_bool(root, path, out)                                          \
    gf_json_as_bool(gf_json_path(root, path), out)

/*
 * The node reached from root by the object keys given, one key per
 * argument (at least one), each used verbatim; NULL if any is absent or a
 * step is not an object. root may be NULL.
 */
#define GF_JSON_AT(root, ...)                                                  \
    gf_json_at((root), (const char *const[]){__VA_ARGS__},                     \
               sizeof((const char *const[]){__VA_ARGS__}) / sizeof(char *))
/* The same with the keys in an array of n (tables of field locations). */
const cJSON *gf_json_at(const cJSON *root, const char *const *keys, size_t n);

/* Typed views of a node (node may be NULL). */
const char *gf_json_as_str(const cJSON *node);
/* 0, -ENOENT (NULL node) or -EINVAL (not a number, not an exact integer). */
int gf_json_as_int(const cJSON *node, int64_t *out);
/* 0, -ENOENT (NULL node) or -EINVAL (not a boolean). */
int gf_json_as_bool(const cJSON *node, bool *out);

/* metadata.labels[key] / metadata.annotations[key], or NULL. */
const char *gf_json_label(const cJSON *obj, const char *key);
const char *gf_json_annotation(const cJSON *obj, const char *key);

/* The implementation behind the macros above; call the macros. */
const cJSON *gf__json_path(const cJSON *root, const char *path);

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
