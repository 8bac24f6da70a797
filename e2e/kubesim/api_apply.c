/*
 * api_apply: how kubesim merges a server-side apply configuration into the
 * stored object.
 *
 * Real server-side apply merges by the schema's list semantics and tracks
 * field ownership per manager (managedFields). The merge is here; the
 * ownership, with the removal of fields a manager no longer applies and
 * conflicts, is managed.c's, which runs on the merged object. The merge
 * is what matters to a controller that applies only the fields it owns
 * next to fields other controllers write:
 *   - objects merge key by key;
 *   - lists with x-kubernetes-list-type: map merge element by element,
 *     matched on x-kubernetes-list-map-keys (status.conditions by type);
 *   - lists with x-kubernetes-list-type: set take the union;
 *   - other lists, and scalars, are replaced (atomic).
 * Custom resources follow their CRD schema; built-in types, which carry no
 * schema here, merge as a strategic merge patch does (the same merge keys,
 * e.g. conditions by type, containers by name).
 */
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/json.h"
#include "e2e/kubesim/api_toolkit.h"
#include "e2e/kubesim/patch.h"
#include "e2e/kubesim/schema.h"

#define APPLY_MAX_DEPTH 64

static void merge(cJSON **dst, const cJSON *src, const cJSON *schema,
                  int depth);

static const cJSON *child_schema(const cJSON *schema, const char *key)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(schema, "properties"), key);
    if (cJSON_IsObject(p))
        return p;
    const cJSON *a =
        cJSON_GetObjectItemCaseSensitive(schema, "additionalProperties");
    return cJSON_IsObject(a) ? a : NULL;
}

static void merge_object(cJSON *dst, const cJSON *src, const cJSON *schema,
                         int depth)
{
    const cJSON *s;
    cJSON_ArrayForEach(s, src)
    {
        cJSON *d = cJSON_GetObjectItemCaseSensitive(dst, s->string);
        if (cJSON_IsNull(s)) {
            cJSON_DeleteItemFromObjectCaseSensitive(dst, s->string);
        } else if (d == NULL) {
            cJSON_AddItemToObject(dst, s->string, cJSON_Duplicate(s, true));
        } else {
            cJSON *merged = cJSON_Duplicate(d, true);
            merge(&merged, s, child_schema(schema, s->string), depth + 1);
            cJSON_ReplaceItemViaPointer(dst, d, merged);
        }
    }
}

/* True when a and b agree on every map key (absent keys agree). */
static bool same_key(const cJSON *a, const cJSON *b, const cJSON *keys)
{
    const cJSON *k;
    cJSON_ArrayForEach(k, keys)
    {
        if (!cJSON_IsString(k))
            continue;
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(a, k->valuestring);
        const cJSON *y = cJSON_GetObjectItemCaseSensitive(b, k->valuestring);
        if ((x == NULL) != (y == NULL) || (x != NULL && !gf_json_equal(x, y)))
            return false;
    }
    return true;
}

static void merge_map_list(cJSON *dst, const cJSON *src, const cJSON *schema,
                           int depth)
{
    const cJSON *keys =
        cJSON_GetObjectItemCaseSensitive(schema, "x-kubernetes-list-map-keys");
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(schema, "items");
    const cJSON *s;
    cJSON_ArrayForEach(s, src)
    {
        cJSON *d = NULL, *e;
        cJSON_ArrayForEach(e, dst)
        {
            if (d == NULL && same_key(e, s, keys))
                d = e;
        }
        if (d == NULL) {
            cJSON_AddItemToArray(dst, cJSON_Duplicate(s, true));
            continue;
        }
        cJSON *merged = cJSON_Duplicate(d, true);
        merge(&merged, s, items, depth + 1);
        cJSON_ReplaceItemViaPointer(dst, d, merged);
    }
}

static void merge_set(cJSON *dst, const cJSON *src)
{
    const cJSON *s;
    cJSON_ArrayForEach(s, src)
    {
        bool found = false;
        const cJSON *e;
        cJSON_ArrayForEach(e, dst)
        {
            found = found || gf_json_equal(e, s);
        }
        if (!found)
            cJSON_AddItemToArray(dst, cJSON_Duplicate(s, true));
    }
}

static void merge(cJSON **dst, const cJSON *src, const cJSON *schema, int depth)
{
    if (depth > APPLY_MAX_DEPTH)
        return;
    if (cJSON_IsObject(src) && cJSON_IsObject(*dst)) {
        merge_object(*dst, src, schema, depth);
        return;
    }
    const char *lt = gf_json_str(schema, "x-kubernetes-list-type");
    if (cJSON_IsArray(src) && cJSON_IsArray(*dst) && lt != NULL) {
        if (strcmp(lt, "map") == 0) {
            merge_map_list(*dst, src, schema, depth);
            return;
        }
        if (strcmp(lt, "set") == 0) {
            merge_set(*dst, src);
            return;
        }
    }
    cJSON_Delete(*dst);
    *dst = cJSON_Duplicate(src, true);
}

/*
 * ObjectMeta's apply semantics, which CRD schemas do not spell out
 * (metadata is a bare object there): finalizers are a set, owner
 * references a map keyed by uid; labels and annotations merge as maps.
 */
static cJSON *meta_schema(void)
{
    cJSON *s = cJSON_CreateObject();
    cJSON *p = cJSON_AddObjectToObject(s, "properties");
    cJSON *f = cJSON_AddObjectToObject(p, "finalizers");
    cJSON_AddStringToObject(f, "x-kubernetes-list-type", "set");
    cJSON *o = cJSON_AddObjectToObject(p, "ownerReferences");
    cJSON_AddStringToObject(o, "x-kubernetes-list-type", "map");
    cJSON *k = cJSON_AddArrayToObject(o, "x-kubernetes-list-map-keys");
    cJSON_AddItemToArray(k, cJSON_CreateString("uid"));
    return s;
}

static void merge_custom(cJSON **doc, const cJSON *cfg, const cJSON *root)
{
    cJSON *rest = cJSON_Duplicate(cfg, true);
    cJSON *meta = cJSON_DetachItemFromObjectCaseSensitive(rest, "metadata");
    merge(doc, rest, root, 0);
    cJSON_Delete(rest);
    if (meta == NULL || !cJSON_IsObject(*doc)) {
        cJSON_Delete(meta);
        return;
    }
    cJSON *ms = meta_schema();
    cJSON *d = cJSON_GetObjectItemCaseSensitive(*doc, "metadata");
    if (d == NULL) {
        cJSON_AddItemToObject(*doc, "metadata", meta);
        meta = NULL;
    } else {
        cJSON *merged = cJSON_Duplicate(d, true);
        merge(&merged, meta, ms, 1);
        cJSON_ReplaceItemViaPointer(*doc, d, merged);
    }
    cJSON_Delete(ms);
    cJSON_Delete(meta);
}

int gf__ks_apply_merge(const struct gf_ks_rtype *t,
                       const struct gf_ks_version *ver, cJSON **doc,
                       const cJSON *cfg, struct gf_ks_status *err)
{
    (void)t;
    if (ver->schema != NULL) {
        merge_custom(doc, cfg, gf_ks_schema_root(ver->schema));
        return 0;
    }
    /* Built-ins: their merge keys are the strategic-merge ones. */
    char *text = cJSON_PrintUnformatted(cfg);
    int rc =
        gf_ks_patch_apply(GF_KS_PATCH_STRATEGIC, doc, text, strlen(text), err);
    gf_free(text);
    return rc;
}
