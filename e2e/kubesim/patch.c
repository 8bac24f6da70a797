/*
 * patch: merge, JSON and strategic merge patches over cJSON trees.
 *
 * Strategic merge needs each list's merge key, which the API server takes
 * from the Go types' struct tags. kubesim serves few built-in types, so
 * the keys are a table by field name (the same field name has the same
 * strategy everywhere in the types kubesim serves).
 */
#include "e2e/kubesim/patch.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/json.h"

/* ---- merge patch --------------------------------------------------------- */

void gf_ks_patch_merge(cJSON **doc, const cJSON *patch)
{
    if (!cJSON_IsObject(patch)) {
        cJSON_Delete(*doc);
        *doc = cJSON_Duplicate(patch, true);
        return;
    }
    if (!cJSON_IsObject(*doc)) {
        cJSON_Delete(*doc);
        *doc = cJSON_CreateObject();
    }
    const cJSON *p;
    cJSON_ArrayForEach(p, patch)
    {
        if (cJSON_IsNull(p)) {
            cJSON_DeleteItemFromObjectCaseSensitive(*doc, p->string);
            continue;
        }
        cJSON *cur = cJSON_GetObjectItemCaseSensitive(*doc, p->string);
        if (cur == NULL) {
            gf_ks_patch_merge(&cur, p);
            cJSON_AddItemToObject(*doc, p->string, cur);
            continue;
        }
        /*
         * Merged in place, so members keep their order. The merge may
         * build a new node without a name: replacing by name sets it.
         */
        cJSON *merged = cJSON_Duplicate(cur, true);
        gf_ks_patch_merge(&merged, p);
        cJSON_ReplaceItemInObjectCaseSensitive(*doc, p->string, merged);
    }
}

/* ---- JSON patch ---------------------------------------------------------- */

/*
 * Decodes one JSON-pointer token (~1 is '/', ~0 is '~') into out.
 * Returns the end of the token in the pointer, or NULL when the token
 * does not fit in out or holds a '~' that is not an escape (RFC 6901).
 * A truncated token could name another member, so it is an error.
 */
static const char *ptr_token(const char *p, char *out, size_t cap)
{
    size_t n = 0;
    while (*p != '\0' && *p != '/') {
        char c = *p++;
        if (c == '~') {
            if (*p != '0' && *p != '1')
                return NULL;
            c = *p++ == '0' ? '~' : '/';
        }
        if (n + 1 >= cap)
            return NULL;
        out[n++] = c;
    }
    out[n] = '\0';
    return p;
}

static bool parse_index(const char *tok, size_t max, size_t *out)
{
    if (tok[0] == '\0' || (tok[0] == '0' && tok[1] != '\0'))
        return false;
    int64_t v;
    if (gf_parse_i64(tok, &v) != 0 || v < 0 || (size_t)v > max)
        return false;
    *out = (size_t)v;
    return true;
}

/*
 * Resolves path to its parent container and last token. Returns the parent
 * or NULL when an intermediate step is missing.
 */
static cJSON *ptr_parent(cJSON *doc, const char *path, char *last, size_t cap)
{
    if (path[0] != '/')
        return NULL;
    cJSON *cur = doc;
    const char *p = path;
    char tok[512];
    for (;;) {
        p = ptr_token(p + 1, tok, sizeof(tok));
        if (p == NULL)
            return NULL;
        if (*p == '\0') {
            snprintf(last, cap, "%s", tok);
            return cur;
        }
        if (cJSON_IsObject(cur)) {
            cur = cJSON_GetObjectItemCaseSensitive(cur, tok);
        } else if (cJSON_IsArray(cur)) {
            size_t i;
            int n = cJSON_GetArraySize(cur);
            if (!parse_index(tok, n > 0 ? (size_t)n - 1 : 0, &i) || n == 0)
                return NULL;
            cur = cJSON_GetArrayItem(cur, (int)i);
        } else {
            return NULL;
        }
        if (cur == NULL)
            return NULL;
    }
}

static cJSON *ptr_get(cJSON *doc, const char *path)
{
    if (path[0] == '\0')
        return doc;
    char last[512];
    cJSON *parent = ptr_parent(doc, path, last, sizeof(last));
    if (cJSON_IsObject(parent))
        return cJSON_GetObjectItemCaseSensitive(parent, last);
    if (cJSON_IsArray(parent)) {
        size_t i;
        int n = cJSON_GetArraySize(parent);
        if (n > 0 && parse_index(last, (size_t)n - 1, &i))
            return cJSON_GetArrayItem(parent, (int)i);
    }
    return NULL;
}

/* Detaches the value at path; NULL when absent. */
static cJSON *ptr_detach(cJSON *doc, const char *path)
{
    char last[512];
    cJSON *parent = ptr_parent(doc, path, last, sizeof(last));
    if (cJSON_IsObject(parent))
        return cJSON_DetachItemFromObjectCaseSensitive(parent, last);
    if (cJSON_IsArray(parent)) {
        size_t i;
        int n = cJSON_GetArraySize(parent);
        if (n > 0 && parse_index(last, (size_t)n - 1, &i))
            return cJSON_DetachItemFromArray(parent, (int)i);
    }
    return NULL;
}

/*
 * Inserts (takes) v before index i of arr (i may equal the size). Written
 * out because cJSON_InsertItemInArray of the cJSON this project builds
 * against refuses valid positions; this moves the tail by pointer, O(n).
 */
static void array_insert(cJSON *arr, size_t i, cJSON *v)
{
    cJSON *at = arr->child;
    for (size_t k = 0; at != NULL && k < i; k++)
        at = at->next;
    cJSON *tail = cJSON_CreateArray();
    while (at != NULL) {
        cJSON *next = at->next;
        cJSON_AddItemToArray(tail, cJSON_DetachItemViaPointer(arr, at));
        at = next;
    }
    cJSON_AddItemToArray(arr, v);
    while (tail->child != NULL)
        cJSON_AddItemToArray(arr,
                             cJSON_DetachItemViaPointer(tail, tail->child));
    cJSON_Delete(tail);
}

/* Adds (takes) v at path. Returns false when the target does not exist. */
static bool ptr_add(cJSON **doc, const char *path, cJSON *v, bool replace)
{
    if (path[0] == '\0') {
        cJSON_Delete(*doc);
        *doc = v;
        return true;
    }
    char last[512];
    cJSON *parent = ptr_parent(*doc, path, last, sizeof(last));
    if (cJSON_IsObject(parent)) {
        if (replace && cJSON_GetObjectItemCaseSensitive(parent, last) == NULL)
            return false;
        cJSON_DeleteItemFromObjectCaseSensitive(parent, last);
        cJSON_AddItemToObject(parent, last, v);
        return true;
    }
    if (cJSON_IsArray(parent)) {
        int n = cJSON_GetArraySize(parent);
        size_t i;
        if (replace) {
            if (n == 0 || !parse_index(last, (size_t)n - 1, &i))
                return false;
            cJSON_ReplaceItemInArray(parent, (int)i, v);
            return true;
        }
        if (strcmp(last, "-") == 0) {
            cJSON_AddItemToArray(parent, v);
            return true;
        }
        if (!parse_index(last, (size_t)n, &i))
            return false;
        array_insert(parent, i, v);
        return true;
    }
    return false;
}

static int jp_fail(struct gf_ks_status *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int jp_fail(struct gf_ks_status *err, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return gf_ks_status_set(err, 422, "Invalid", "%s", msg);
}

static int jp_missing(struct gf_ks_status *err, const char *name,
                      const char *what, const char *path)
{
    return jp_fail(err,
                   "%s operation does not apply: doc is missing %s: \"%s\"",
                   name, what, path);
}

/* add and replace: value goes to path. */
static int jp_add(cJSON **doc, const char *name, const char *path,
                  const cJSON *value, struct gf_ks_status *err)
{
    if (value == NULL)
        return jp_fail(err, "%s operation does not apply: %s has no value",
                       name, path);
    cJSON *v = cJSON_Duplicate(value, true);
    if (!ptr_add(doc, path, v, name[0] == 'r')) {
        cJSON_Delete(v);
        return jp_missing(err, name, "path", path);
    }
    return 0;
}

/* move and copy: the value at from goes to path. */
static int jp_move(cJSON **doc, const char *name, const char *path,
                   const char *from, struct gf_ks_status *err)
{
    if (from == NULL)
        return gf_ks_status_set(err, 400, "BadRequest",
                                "%s operation needs from", name);
    cJSON *v;
    if (name[0] == 'm') {
        v = ptr_detach(*doc, from);
    } else {
        const cJSON *src = ptr_get(*doc, from);
        v = src != NULL ? cJSON_Duplicate(src, true) : NULL;
    }
    if (v == NULL)
        return jp_missing(err, name, "from path", from);
    if (!ptr_add(doc, path, v, false)) {
        cJSON_Delete(v);
        return jp_missing(err, name, "path", path);
    }
    return 0;
}

/* Nodes in a tree, counting no further than cap. */
static size_t count_nodes(const cJSON *n, size_t cap)
{
    size_t k = 1;
    for (const cJSON *c = n->child; c != NULL && k <= cap; c = c->next)
        k += count_nodes(c, cap - k);
    return k;
}

/* Depth of a tree, looking no deeper than limit + 1. */
static int tree_depth(const cJSON *n, int limit)
{
    int d = 0;
    if (limit < 0)
        return 1;
    for (const cJSON *c = n->child; c != NULL; c = c->next) {
        int cd = tree_depth(c, limit - 1);
        if (cd > d)
            d = cd;
        if (d > limit)
            break;
    }
    return d + 1;
}

static int too_large(struct gf_ks_status *err, const char *what)
{
    return gf_ks_status_set(err, 413, "RequestEntityTooLarge",
                            "Request entity too large: the patched object "
                            "would be %s",
                            what);
}

static int json_patch_op(cJSON **doc, const cJSON *op, struct gf_ks_status *err)
{
    const char *name = gf_json_str(op, "op");
    const char *path = gf_json_str(op, "path");
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(op, "value");
    if (name == NULL || path == NULL)
        return gf_ks_status_set(err, 400, "BadRequest",
                                "json patch operation needs op and path");
    if (strcmp(name, "add") == 0 || strcmp(name, "replace") == 0)
        return jp_add(doc, name, path, value, err);
    if (strcmp(name, "move") == 0 || strcmp(name, "copy") == 0)
        return jp_move(doc, name, path, gf_json_str(op, "from"), err);
    if (strcmp(name, "remove") == 0) {
        cJSON *v = ptr_detach(*doc, path);
        if (v == NULL)
            return jp_missing(err, name, "path", path);
        cJSON_Delete(v);
        return 0;
    }
    if (strcmp(name, "test") == 0) {
        const cJSON *cur = ptr_get(*doc, path);
        if (cur == NULL || value == NULL || !gf_json_equal(cur, value))
            return jp_fail(err, "testing value %s failed: test failed", path);
        return 0;
    }
    return gf_ks_status_set(err, 400, "BadRequest", "Unexpected kind: %s",
                            name);
}

/* ---- strategic merge patch ---------------------------------------------- */

/* Merge keys of the list fields of the built-in types kubesim serves. */
static const struct {
    const char *field, *key;
} merge_keys[] = {
    {"containers", "name"},
    {"initContainers", "name"},
    {"ephemeralContainers", "name"},
    {"env", "name"},
    {"volumes", "name"},
    {"volumeMounts", "mountPath"},
    {"volumeDevices", "devicePath"},
    {"ports", "containerPort"},
    {"conditions", "type"},
    {"ownerReferences", "uid"},
    {"imagePullSecrets", "name"},
    {"hostAliases", "ip"},
};

/* Primitive lists that merge as sets (patchStrategy:"merge"). */
static const char *const set_lists[] = {"finalizers"};

static const char *merge_key_of(const char *field)
{
    for (size_t i = 0; i < sizeof(merge_keys) / sizeof(merge_keys[0]); i++)
        if (strcmp(merge_keys[i].field, field) == 0)
            return merge_keys[i].key;
    return NULL;
}

static bool is_set_list(const char *field)
{
    for (size_t i = 0; i < sizeof(set_lists) / sizeof(set_lists[0]); i++)
        if (strcmp(set_lists[i], field) == 0)
            return true;
    return false;
}

static void smp_map(cJSON **doc, const cJSON *patch);

static cJSON *find_by_key(cJSON *list, const char *key, const cJSON *val)
{
    cJSON *e;
    cJSON_ArrayForEach(e, list)
    {
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(e, key);
        if (k != NULL && gf_json_equal(k, val))
            return e;
    }
    return NULL;
}

/* Strips the directives a patch element may carry before it is stored. */
static cJSON *clean_copy(const cJSON *v)
{
    cJSON *d = cJSON_CreateObject();
    smp_map(&d, v);
    return d;
}

/* "$patch": "replace" in a list: the list becomes the other elements. */
static void smp_list_replace(cJSON **doc, const cJSON *patch,
                             const cJSON *directive_elem)
{
    cJSON_Delete(*doc);
    *doc = cJSON_CreateArray();
    const cJSON *q;
    cJSON_ArrayForEach(q, patch)
    {
        if (q == directive_elem)
            continue;
        cJSON_AddItemToArray(
            *doc, cJSON_IsObject(q) ? clean_copy(q) : cJSON_Duplicate(q, true));
    }
}

/* One object element of a keyed-list patch: merge, add or delete. */
static void smp_keyed_elem(cJSON *list, const cJSON *p, const char *key)
{
    const char *directive = gf_json_str(p, "$patch");
    const cJSON *kv = cJSON_GetObjectItemCaseSensitive(p, key);
    cJSON *cur = kv != NULL ? find_by_key(list, key, kv) : NULL;
    if (directive != NULL && strcmp(directive, "delete") == 0) {
        if (cur != NULL) {
            cJSON_DetachItemViaPointer(list, cur);
            cJSON_Delete(cur);
        }
        return;
    }
    if (cur == NULL) {
        cJSON_AddItemToArray(list, clean_copy(p));
        return;
    }
    cJSON *merged = cJSON_Duplicate(cur, true);
    smp_map(&merged, p);
    cJSON_ReplaceItemViaPointer(list, cur, merged);
}

static void smp_keyed_list(cJSON **doc, const cJSON *patch, const char *key)
{
    if (!cJSON_IsArray(*doc)) {
        cJSON_Delete(*doc);
        *doc = cJSON_CreateArray();
    }
    const cJSON *p;
    cJSON_ArrayForEach(p, patch)
    {
        const char *directive = gf_json_str(p, "$patch");
        if (directive != NULL && strcmp(directive, "replace") == 0) {
            smp_list_replace(doc, patch, p);
            return;
        }
    }
    cJSON_ArrayForEach(p, patch)
    {
        if (cJSON_IsObject(p))
            smp_keyed_elem(*doc, p, key);
        else
            cJSON_AddItemToArray(*doc, cJSON_Duplicate(p, true));
    }
}

static void smp_set_list(cJSON **doc, const cJSON *patch)
{
    if (!cJSON_IsArray(*doc)) {
        cJSON_Delete(*doc);
        *doc = cJSON_CreateArray();
    }
    const cJSON *p;
    cJSON_ArrayForEach(p, patch)
    {
        bool found = false;
        const cJSON *e;
        cJSON_ArrayForEach(e, *doc)
        {
            if (gf_json_equal(e, p))
                found = true;
        }
        if (!found)
            cJSON_AddItemToArray(*doc, cJSON_Duplicate(p, true));
    }
}

static void delete_from_primitive(cJSON *list, const cJSON *values)
{
    const cJSON *v;
    cJSON_ArrayForEach(v, values)
    {
        cJSON *e = list != NULL ? list->child : NULL;
        while (e != NULL) {
            cJSON *next = e->next;
            if (gf_json_equal(e, v)) {
                cJSON_DetachItemViaPointer(list, e);
                cJSON_Delete(e);
            }
            e = next;
        }
    }
}

static bool is_directive(const cJSON *patch, const char *what)
{
    const char *d = gf_json_str(patch, "$patch");
    return d != NULL && strcmp(d, what) == 0;
}

/* One member of a map patch, merged into doc (an object). */
static void smp_member(cJSON *doc, const cJSON *p)
{
    const char *k = p->string;
    if (k[0] == '$') {
        static const char del[] = "$deleteFromPrimitiveList/";
        if (strncmp(k, del, sizeof(del) - 1) == 0)
            delete_from_primitive(
                cJSON_GetObjectItemCaseSensitive(doc, k + sizeof(del) - 1), p);
        /* $setElementOrder and $retainKeys only constrain order. */
        return;
    }
    if (cJSON_IsNull(p) || (cJSON_IsObject(p) && is_directive(p, "delete"))) {
        cJSON_DeleteItemFromObjectCaseSensitive(doc, k);
        return;
    }
    cJSON *old = cJSON_GetObjectItemCaseSensitive(doc, k);
    cJSON *cur = old != NULL ? cJSON_Duplicate(old, true) : NULL;
    if (cJSON_IsObject(p)) {
        smp_map(&cur, p);
    } else if (cJSON_IsArray(p) && merge_key_of(k) != NULL) {
        smp_keyed_list(&cur, p, merge_key_of(k));
    } else if (cJSON_IsArray(p) && is_set_list(k)) {
        smp_set_list(&cur, p);
    } else {
        cJSON_Delete(cur);
        cur = cJSON_Duplicate(p, true);
    }
    /* Replaced in place (by name, which also names the new node). */
    if (old != NULL)
        cJSON_ReplaceItemInObjectCaseSensitive(doc, k, cur);
    else
        cJSON_AddItemToObject(doc, k, cur);
}

static void smp_map(cJSON **doc, const cJSON *patch)
{
    if (!cJSON_IsObject(*doc) || is_directive(patch, "replace") ||
        is_directive(patch, "delete")) {
        cJSON_Delete(*doc);
        *doc = cJSON_CreateObject();
    }
    if (is_directive(patch, "delete"))
        return;
    const cJSON *p;
    cJSON_ArrayForEach(p, patch)
    {
        smp_member(*doc, p);
    }
}

/*
 * Runs the operations in order. Only "copy" can grow the document beyond
 * what the patch itself carries, so its growth is counted against the cap.
 */
static int json_patch_ops(cJSON **doc, const cJSON *ops,
                          struct gf_ks_status *err)
{
    size_t nodes = *doc != NULL ? count_nodes(*doc, GF_KS_PATCH_MAX_NODES) : 0;
    const cJSON *op;
    cJSON_ArrayForEach(op, ops)
    {
        const char *name = gf_json_str(op, "op");
        const char *from = gf_json_str(op, "from");
        if (name != NULL && strcmp(name, "copy") == 0 && from != NULL) {
            const cJSON *src = ptr_get(*doc, from);
            if (src != NULL)
                nodes += count_nodes(src, GF_KS_PATCH_MAX_NODES);
            if (nodes > GF_KS_PATCH_MAX_NODES)
                return too_large(err, "too large");
        }
        int rc = json_patch_op(doc, op, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- entry point --------------------------------------------------------- */

/*
 * Parses exactly one JSON value from len bytes: trailing bytes other than
 * whitespace are an error, as in Go's decoder. (cJSON's own
 * require_null_terminated wants a NUL inside the length, which a network
 * body does not have.)
 */
static cJSON *parse_whole(const char *s, size_t len)
{
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(s, len, &end, false);
    if (j == NULL)
        return NULL;
    for (const char *q = end; q < s + len; q++) {
        if (*q != ' ' && *q != '\t' && *q != '\r' && *q != '\n') {
            cJSON_Delete(j);
            return NULL;
        }
    }
    return j;
}

int gf_ks_patch_apply(enum gf_ks_patch_type type, cJSON **doc,
                      const char *patch, size_t len, struct gf_ks_status *err)
{
    if (len > GF_KS_PATCH_MAX)
        return gf_ks_status_set(err, 413, "RequestEntityTooLarge",
                                "Request entity too large");
    cJSON *p = parse_whole(patch, len);
    if (p == NULL)
        return gf_ks_status_set(err, 400, "BadRequest",
                                "error decoding patch: invalid JSON");
    int rc = 0;
    switch (type) {
    case GF_KS_PATCH_MERGE:
        gf_ks_patch_merge(doc, p);
        break;
    case GF_KS_PATCH_STRATEGIC:
        if (!cJSON_IsObject(p)) {
            rc = gf_ks_status_set(err, 400, "BadRequest",
                                  "strategic merge patch must be an object");
            break;
        }
        smp_map(doc, p);
        break;
    case GF_KS_PATCH_JSON: {
        if (!cJSON_IsArray(p)) {
            rc = gf_ks_status_set(err, 400, "BadRequest",
                                  "json: cannot unmarshal object into Go "
                                  "value of type jsonpatch.Patch");
            break;
        }
        rc = json_patch_ops(doc, p, err);
        break;
    }
    }
    cJSON_Delete(p);
    if (rc == 0 && *doc != NULL &&
        tree_depth(*doc, GF_KS_PATCH_MAX_DEPTH) > GF_KS_PATCH_MAX_DEPTH)
        rc = too_large(err, "nested too deeply");
    return rc;
}
