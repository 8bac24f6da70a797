/*
 * patch: the three patch formats of the Kubernetes API, applied to cJSON
 * documents.
 *
 *   - JSON merge patch (RFC 7386): objects merge, null deletes, anything
 *     else replaces;
 *   - JSON patch (RFC 6902): add, remove, replace, move, copy, test;
 *   - strategic merge patch, as kubectl sends it for built-in types: maps
 *     merge, lists with a merge key merge element-wise (containers, env,
 *     volumes by name; conditions by type; ownerReferences by uid; ...),
 *     "$patch": "delete" / "replace" directives, "$deleteFromPrimitiveList/"
 *     and "$setElementOrder/" keys (the latter only fixes order and is
 *     dropped), metadata.finalizers merged as a set.
 *
 * Errors are filled as the API server reports them: 400 BadRequest when a
 * patch does not parse, 422 Invalid when it cannot be applied (a failed
 * "test", a path that does not exist).
 */
#ifndef GF_KS_PATCH_H
#define GF_KS_PATCH_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "e2e/kubesim/status.h"
#include "e2e/kubesim/store.h"

/* Patch bodies come from the network: this is their hard cap. */
#define GF_KS_PATCH_MAX (3u << 20)
/*
 * Caps on a patched document: JSON-patch "copy" can double a document per
 * operation, and "add" can nest a value under a deep path. Results over
 * either cap fail with 413 and leave nothing stored; the depth cap keeps
 * every stored object within cJSON's parse limit.
 */
#define GF_KS_PATCH_MAX_NODES (1u << 20)
#define GF_KS_PATCH_MAX_DEPTH 512

/*
 * Applies patch (len bytes, borrowed) to *doc. On success *doc is the
 * patched document (the old tree may have been freed and replaced; the
 * caller owns whatever *doc points to). On failure *doc is unchanged or
 * partially patched (the caller discards it) and err is filled.
 * Returns 0, GF_EINVALID (400, 422) or GF_EAPI (413: the body or the
 * result is over a cap).
 */
int gf_ks_patch_apply(enum gf_ks_patch_type type, cJSON **doc,
                      const char *patch, size_t len, struct gf_ks_status *err);

/* RFC 7386 on trees: merges patch (borrowed) into *doc. */
void gf_ks_patch_merge(cJSON **doc, const cJSON *patch);

#endif
