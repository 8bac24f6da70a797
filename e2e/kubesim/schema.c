/*
 * schema: interned CRD schemas and structural validation with pruning.
 *
 * Validation walks the object and the schema together, collecting field
 * errors with paths written as the API server writes them
 * ("spec.podSets[0].count"); unknown fields are removed unless the schema
 * preserves them, and nulls in non-nullable fields are dropped, which is
 * what the apiextensions server does before it validates.
 */
#include "e2e/kubesim/schema.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/htab.h"
#include "common/json.h"
#include "e2e/kubesim/patch.h"

struct gf_ks_schema {
    struct gf_ks_schema *next; /* in the cache */
    struct gf_ks_schema_cache *cache;
    uint32_t refs;
    uint32_t hash;
    cJSON *root;
    struct gf_ks_cel_rules *rules; /* compiled CEL rules, NULL = none */
};

struct gf_ks_schema_cache {
    struct gf_ks_schema *list;
    size_t n;
};

/* A schema may list many errors; the server caps what it reports too. */
#define MAX_ERRORS 16
#define MAX_DEPTH 64

struct gf_ks_schema_cache *gf_ks_schema_cache_new(void)
{
    return gf_calloc(1, sizeof(struct gf_ks_schema_cache));
}

void gf_ks_schema_cache_free(struct gf_ks_schema_cache *c)
{
    if (c == NULL)
        return;
    /* Every schema must have been released by its types first. */
    GF_BUG_ON(c->list != NULL);
    gf_free(c);
}

size_t gf_ks_schema_cache_size(const struct gf_ks_schema_cache *c)
{
    return c->n;
}

struct gf_ks_schema *gf_ks_schema_intern(struct gf_ks_schema_cache *c,
                                         const cJSON *schema)
{
    char *text = cJSON_PrintUnformatted(schema);
    /* A prefilter for the deep comparison below. */
    uint32_t h = (uint32_t)gf_hash(text, strlen(text));
    gf_free(text);
    for (struct gf_ks_schema *s = c->list; s != NULL; s = s->next)
        if (s->hash == h && gf_json_equal(s->root, schema))
            return gf_ks_schema_ref(s);
    struct gf_ks_schema *s = gf_calloc(1, sizeof(*s));
    s->cache = c;
    s->refs = 1;
    s->hash = h;
    s->root = cJSON_Duplicate(schema, true);
    s->rules = gf_ks_cel_rules_new(s->root);
    s->next = c->list;
    c->list = s;
    c->n++;
    return s;
}

struct gf_ks_schema *gf_ks_schema_ref(struct gf_ks_schema *s)
{
    s->refs++;
    return s;
}

void gf_ks_schema_unref(struct gf_ks_schema *s)
{
    if (s == NULL || --s->refs > 0)
        return;
    struct gf_ks_schema **pp = &s->cache->list;
    while (*pp != s)
        pp = &(*pp)->next;
    *pp = s->next;
    s->cache->n--;
    gf_ks_cel_rules_free(s->rules);
    cJSON_Delete(s->root);
    gf_free(s);
}

const cJSON *gf_ks_schema_root(const struct gf_ks_schema *s)
{
    return s->root;
}

const struct gf_ks_cel_rules *gf_ks_schema_rules(const struct gf_ks_schema *s)
{
    return s->rules;
}

/* ---- validation ------------------------------------------------------ */

struct vctx {
    struct gf_ks_status *err;
    char msgs[MAX_ERRORS][384];
    size_t n;
    size_t total;
};

static void field_error(struct vctx *v, const char *reason, const char *path,
                        const char *detail)
{
    v->total++;
    if (v->n >= MAX_ERRORS)
        return;
    /* A message longer than the slot is cut: it is for humans, and the
     * full path and detail also go into the Status cause below. */
    if (snprintf(v->msgs[v->n], sizeof(v->msgs[0]), "%s: %s", path, detail) < 0)
        v->msgs[v->n][0] = '\0';
    v->n++;
    gf_ks_status_cause(v->err, reason, detail, path);
}

static const char *json_type_name(const cJSON *v)
{
    if (cJSON_IsString(v))
        return "string";
    if (cJSON_IsBool(v))
        return "boolean";
    if (cJSON_IsNumber(v))
        return v->valuedouble == floor(v->valuedouble) ? "integer" : "number";
    if (cJSON_IsArray(v))
        return "array";
    if (cJSON_IsObject(v))
        return "object";
    return "null";
}

static bool flag(const cJSON *schema, const char *key)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(schema, key));
}

static bool type_ok(const char *type, const cJSON *v)
{
    if (strcmp(type, "object") == 0)
        return cJSON_IsObject(v);
    if (strcmp(type, "array") == 0)
        return cJSON_IsArray(v);
    if (strcmp(type, "string") == 0)
        return cJSON_IsString(v);
    if (strcmp(type, "boolean") == 0)
        return cJSON_IsBool(v);
    if (strcmp(type, "number") == 0)
        return cJSON_IsNumber(v);
    if (strcmp(type, "integer") == 0)
        return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble);
    return true;
}

static void value_text(const cJSON *v, char *out, size_t cap)
{
    if (cJSON_IsString(v)) {
        snprintf(out, cap, "\"%s\"", v->valuestring);
        return;
    }
    char *s = cJSON_PrintUnformatted(v);
    snprintf(out, cap, "%s", s != NULL ? s : "null");
    gf_free(s);
}

static void check_enum(struct vctx *v, const cJSON *schema, const cJSON *val,
                       const char *path)
{
    const cJSON *en = cJSON_GetObjectItemCaseSensitive(schema, "enum");
    if (!cJSON_IsArray(en))
        return;
    const cJSON *e;
    cJSON_ArrayForEach(e, en)
    {
        if (gf_json_equal(e, val))
            return;
    }
    char msg[384], vt[96];
    value_text(val, vt, sizeof(vt));
    int n = snprintf(msg, sizeof(msg),
                     "Unsupported value: %s: supported "
                     "values: ",
                     vt);
    bool first = true;
    cJSON_ArrayForEach(e, en)
    {
        char et[64];
        value_text(e, et, sizeof(et));
        if (n > 0 && (size_t)n < sizeof(msg))
            n += snprintf(msg + n, sizeof(msg) - (size_t)n, "%s%s",
                          first ? "" : ", ", et);
        first = false;
    }
    field_error(v, "FieldValueNotSupported", path, msg);
}

static void walk(struct vctx *v, const cJSON *schema, cJSON *val,
                 const char *path, int depth);

/*
 * Sets the schema's default on every property of val that is absent, as
 * the apiextensions server does after pruning and before validating
 * (e.g. Workload spec.active, ClusterQueue spec.queueingStrategy). The
 * defaults of a structural schema are themselves valid and pruned, so
 * they are copied as they are.
 */
static void apply_defaults(const cJSON *props, cJSON *val)
{
    const cJSON *ps;
    cJSON_ArrayForEach(ps, props)
    {
        const cJSON *def = cJSON_GetObjectItemCaseSensitive(ps, "default");
        if (def == NULL ||
            cJSON_GetObjectItemCaseSensitive(val, ps->string) != NULL)
            continue;
        cJSON_AddItemToObject(val, ps->string, cJSON_Duplicate(def, true));
    }
}

enum field_act { FIELD_DROP, FIELD_WALK, FIELD_KEEP };

static bool is_meta_key(const char *k)
{
    return strcmp(k, "apiVersion") == 0 || strcmp(k, "kind") == 0 ||
           strcmp(k, "metadata") == 0;
}

/*
 * What to do with member f of an object validated by schema: walk it
 * with *sub, keep it unchecked, or drop it (pruning, and nulls in
 * non-nullable fields, which the server drops rather than rejects).
 * At the root, apiVersion, kind and metadata belong to the server.
 */
static enum field_act field_action(const cJSON *schema, const cJSON *f,
                                   bool root, const cJSON **sub)
{
    const char *k = f->string;
    if (root && is_meta_key(k))
        return FIELD_KEEP;
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(schema, "properties");
    const cJSON *addl =
        cJSON_GetObjectItemCaseSensitive(schema, "additionalProperties");
    const cJSON *ps = cJSON_GetObjectItemCaseSensitive(props, k);
    if (cJSON_IsObject(ps)) {
        if (cJSON_IsNull(f) && !flag(ps, "nullable"))
            return FIELD_DROP;
        *sub = ps;
        return FIELD_WALK;
    }
    if (cJSON_IsObject(addl)) {
        *sub = addl;
        return FIELD_WALK;
    }
    bool embedded = flag(schema, "x-kubernetes-embedded-resource");
    if (flag(schema, "x-kubernetes-preserve-unknown-fields") ||
        cJSON_IsTrue(addl) || (embedded && is_meta_key(k)))
        return FIELD_KEEP;
    return FIELD_DROP;
}

static void join_path(char *out, size_t cap, const char *path, const char *k)
{
    if (path[0] != '\0')
        snprintf(out, cap, "%s.%s", path, k);
    else
        snprintf(out, cap, "%s", k);
}

static void walk_object(struct vctx *v, const cJSON *schema, cJSON *val,
                        const char *path, int depth, bool root)
{
    char sub[1024];
    /* First, so defaulted values get their own nested defaults. */
    apply_defaults(cJSON_GetObjectItemCaseSensitive(schema, "properties"), val);
    cJSON *f = val->child;
    while (f != NULL) {
        cJSON *next = f->next;
        const cJSON *fs = NULL;
        switch (field_action(schema, f, root, &fs)) {
        case FIELD_WALK:
            join_path(sub, sizeof(sub), path, f->string);
            walk(v, fs, f, sub, depth + 1);
            break;
        case FIELD_DROP:
            cJSON_DetachItemViaPointer(val, f);
            cJSON_Delete(f);
            break;
        case FIELD_KEEP:
            break;
        }
        f = next;
    }
    const cJSON *req;
    cJSON_ArrayForEach(req,
                       cJSON_GetObjectItemCaseSensitive(schema, "required"))
    {
        if (!cJSON_IsString(req) ||
            cJSON_GetObjectItemCaseSensitive(val, req->valuestring) != NULL)
            continue;
        join_path(sub, sizeof(sub), path, req->valuestring);
        field_error(v, "FieldValueRequired", sub, "Required value");
    }
}

static void walk(struct vctx *v, const cJSON *schema, cJSON *val,
                 const char *path, int depth)
{
    if (depth > MAX_DEPTH)
        return;
    if (cJSON_IsNull(val)) {
        if (!flag(schema, "nullable"))
            field_error(v, "FieldValueInvalid", path,
                        "Invalid value: \"null\": must not be null");
        return;
    }
    char msg[384];
    if (flag(schema, "x-kubernetes-int-or-string")) {
        if (!cJSON_IsString(val) && !type_ok("integer", val)) {
            snprintf(msg, sizeof(msg),
                     "Invalid value: \"%s\": %s in body must be of type "
                     "integer,string: \"%s\"",
                     json_type_name(val), path, json_type_name(val));
            field_error(v, "FieldValueTypeInvalid", path, msg);
        }
        return;
    }
    const char *type = gf_json_str(schema, "type");
    if (type != NULL && !type_ok(type, val)) {
        snprintf(msg, sizeof(msg),
                 "Invalid value: \"%s\": %s in body must be of type %s: "
                 "\"%s\"",
                 json_type_name(val), path, type, json_type_name(val));
        field_error(v, "FieldValueTypeInvalid", path, msg);
        return;
    }
    check_enum(v, schema, val, path);
    if (cJSON_IsObject(val)) {
        walk_object(v, schema, val, path, depth, false);
    } else if (cJSON_IsArray(val)) {
        const cJSON *items = cJSON_GetObjectItemCaseSensitive(schema, "items");
        if (!cJSON_IsObject(items))
            return;
        int i = 0;
        cJSON *e;
        cJSON_ArrayForEach(e, val)
        {
            char sub[1024];
            snprintf(sub, sizeof(sub), "%s[%d]", path, i++);
            walk(v, items, e, sub, depth + 1);
        }
    }
}

int gf_ks_schema_validate(const struct gf_ks_schema *s, cJSON *obj,
                          const char *kind, const char *group, const char *name,
                          struct gf_ks_status *err)
{
    struct vctx v = {.err = err};
    if (err != NULL)
        gf_ks_status_clear(err);
    if (!cJSON_IsObject(obj))
        return gf_ks_status_set(err, 400, "BadRequest",
                                "the body of the request was not an object");
    walk_object(&v, s->root, obj, "", 0, true);
    if (v.total == 0)
        return 0;
    /* The server's message: one error bare, several in brackets. */
    char q[256];
    snprintf(q, sizeof(q), "%s%s%s", kind, group[0] ? "." : "", group);
    char all[900];
    size_t n = 0;
    all[0] = '\0';
    for (size_t i = 0; i < v.n && n < sizeof(all); i++) {
        int w = snprintf(all + n, sizeof(all) - n, "%s%s", i ? ", " : "",
                         v.msgs[i]);
        if (w < 0)
            break;
        n += (size_t)w;
    }
    /* gf_ks_status_set() starts afresh: carry the causes over. */
    cJSON *causes = err != NULL ? err->causes : NULL;
    if (err != NULL)
        err->causes = NULL;
    int rc;
    if (v.total == 1)
        rc = gf_ks_status_set(err, 422, "Invalid", "%s \"%s\" is invalid: %s",
                              q, name, all);
    else
        rc = gf_ks_status_set(err, 422, "Invalid", "%s \"%s\" is invalid: [%s]",
                              q, name, all);
    if (err != NULL) {
        err->causes = causes;
        gf_ks_status_details(err, name, group, kind);
    }
    return rc;
}
