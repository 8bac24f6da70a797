/*
 * cel: the subset of the Common Expression Language that CRD validation
 * rules (x-kubernetes-validations) are written in, enough for every rule
 * of the Kueue CRDs and of gpufed's own.
 *
 * A rule is compiled once (when its CRD is installed) and evaluated on
 * every write with `self` (the value at the rule's place in the object)
 * and, for transition rules, `oldSelf` (the stored value at that place).
 * The subset: null, bool, int, double and string literals, list literals
 * and indexing, field selection, has(), size() (function and method),
 * the macros all, exists, exists_one, filter and map, `in`, the ternary,
 * arithmetic, comparisons and the logical operators with CEL's
 * commutative error absorption (`false && error` is false), and the
 * string methods startsWith, endsWith and contains. Anything else
 * (regular expressions, map literals, quantities, ...) fails to compile
 * with -ENOTSUP, so that the caller can report the rule instead of
 * ignoring it.
 *
 * No CEL library exists for C in Debian; the parser is a hand-written
 * recursive descent with caps on the rule's length and nesting.
 *
 * Values are borrowed from the cJSON documents given to gf_ks_cel_eval()
 * (JSON numbers without a fraction are CEL ints). Loop thread only.
 */
#ifndef GF_KS_CEL_H
#define GF_KS_CEL_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

/* Longest rule compiled, and the deepest nesting of an expression. */
#define GF_KS_CEL_MAX_LEN 8192
#define GF_KS_CEL_MAX_DEPTH 48

struct gf_ks_cel;

/*
 * Compiles rule into *out (returned-owned, gf_ks_cel_free()). Returns 0,
 * -EINVAL for a syntax error or -ENOTSUP for CEL outside the subset; then
 * *out is NULL and why (at least 1 byte) says what.
 */
int gf_ks_cel_compile(const char *rule, struct gf_ks_cel **out, char *why,
                      size_t why_len);
void gf_ks_cel_free(struct gf_ks_cel *c);

/* True when the rule names oldSelf: a transition rule, run on updates. */
bool gf_ks_cel_uses_old_self(const struct gf_ks_cel *c);

/*
 * Evaluates the rule with self and old_self (borrowed; old_self NULL when
 * there is none, and then a rule naming it is an error). Returns 1 when
 * the rule holds, 0 when it does not, or -EINVAL when evaluation fails
 * (a missing field, a type mismatch, a non-bool result) with why filled
 * as the API server words it ("no such key: nodeLabels").
 */
int gf_ks_cel_eval(const struct gf_ks_cel *c, const cJSON *self,
                   const cJSON *old_self, char *why, size_t why_len);

#endif
