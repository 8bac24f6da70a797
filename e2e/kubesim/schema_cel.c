/*
 * schema_cel: compiling a schema's x-kubernetes-validations and running
 * them over an object (see schema_cel.h).
 *
 * The compiled form is a flat table keyed by schema node: a node with
 * rules of its own, or with rules somewhere below it, has an entry. The
 * walk over an object follows the schema only into nodes with an entry,
 * so a write of a Workload (a large schema with a few rules) visits the
 * handful of places that have rules, not the whole object.
 */
#include "e2e/kubesim/schema_cel.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/json.h"
#include "e2e/kubesim/cel.h"

struct rule {
    const char *text;    /* borrowed from the schema */
    const char *message; /* borrowed; NULL = none */
    struct gf_ks_cel *cel;
    char why[160]; /* why it is unsupported (cel == NULL) */
};

struct entry {
    const cJSON *node; /* the schema node */
    char *path;        /* schema path, for reports */
    struct rule *rules;
    size_t n_rules;
};

struct gf_ks_cel_rules {
    struct entry *e;
    size_t n, cap;
    size_t n_rules, n_unsupported;
};

/* The deepest schema walked; CRD schemas are far shallower. */
#define MAX_DEPTH 64

static struct entry *add_entry(struct gf_ks_cel_rules *r, const cJSON *node,
                               const char *path)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->e = gf_realloc(r->e, r->cap * sizeof(*r->e));
    }
    struct entry *e = &r->e[r->n++];
    *e = (struct entry){.node = node, .path = gf_strdup(path)};
    return e;
}

static void compile_rules(struct gf_ks_cel_rules *r, struct entry *e,
                          const cJSON *vs)
{
    size_t n = (size_t)cJSON_GetArraySize(vs);
    e->rules = gf_calloc(n, sizeof(*e->rules));
    const cJSON *v;
    cJSON_ArrayForEach(v, vs)
    {
        const char *text = gf_json_str(v, "rule");
        if (text == NULL)
            continue;
        struct rule *ru = &e->rules[e->n_rules++];
        ru->text = text;
        ru->message = gf_json_str(v, "message");
        r->n_rules++;
        /* Parts of a rule that change how it runs or how its failure
         * reads: a rule using one is reported, not half-enforced. */
        static const char *const unsupported[] = {
            "messageExpression", "reason", "fieldPath", "optionalOldSelf"};
        const char *part = NULL;
        for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]);
             i++)
            if (cJSON_GetObjectItemCaseSensitive(v, unsupported[i]) != NULL)
                part = unsupported[i];
        if (part != NULL) {
            snprintf(ru->why, sizeof(ru->why), "%s is not supported", part);
            r->n_unsupported++;
        } else if (gf_ks_cel_compile(text, &ru->cel, ru->why, sizeof(ru->why)) <
                   0) {
            r->n_unsupported++;
        }
    }
}

/* Returns whether node or anything below it has rules. */
static bool walk_schema(struct gf_ks_cel_rules *r, const cJSON *node,
                        const char *path, int depth)
{
    if (!cJSON_IsObject(node) || depth > MAX_DEPTH)
        return false;
    /* The entry is added first and filled in after the children, which
     * may grow (and move) the table: keep its index, not a pointer. */
    size_t at = r->n;
    add_entry(r, node, path);
    bool below = false;
    char sub[1024];
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(node, "properties");
    const cJSON *p;
    cJSON_ArrayForEach(p, props)
    {
        snprintf(sub, sizeof(sub), "%s%s%s", path, path[0] ? "." : "",
                 p->string);
        below |= walk_schema(r, p, sub, depth + 1);
    }
    const cJSON *ap =
        cJSON_GetObjectItemCaseSensitive(node, "additionalProperties");
    snprintf(sub, sizeof(sub), "%s[*]", path);
    below |= walk_schema(r, ap, sub, depth + 1);
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(node, "items");
    snprintf(sub, sizeof(sub), "%s[]", path);
    below |= walk_schema(r, items, sub, depth + 1);
    const cJSON *vs =
        cJSON_GetObjectItemCaseSensitive(node, "x-kubernetes-validations");
    bool own = cJSON_IsArray(vs) && cJSON_GetArraySize(vs) > 0;
    if (own)
        compile_rules(r, &r->e[at], vs);
    if (!own && !below) {
        /* Nothing here: drop the entry and whatever the children left
         * (they left nothing, or below would be true). */
        gf_free(r->e[at].path);
        r->n = at;
    }
    return own || below;
}

struct gf_ks_cel_rules *gf_ks_cel_rules_new(const cJSON *schema)
{
    struct gf_ks_cel_rules *r = gf_calloc(1, sizeof(*r));
    walk_schema(r, schema, "", 0);
    if (r->n == 0) {
        gf_ks_cel_rules_free(r);
        return NULL;
    }
    return r;
}

void gf_ks_cel_rules_free(struct gf_ks_cel_rules *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++) {
        for (size_t j = 0; j < r->e[i].n_rules; j++)
            gf_ks_cel_free(r->e[i].rules[j].cel);
        gf_free(r->e[i].rules);
        gf_free(r->e[i].path);
    }
    gf_free(r->e);
    gf_free(r);
}

size_t gf_ks_cel_rules_count(const struct gf_ks_cel_rules *r)
{
    return r != NULL ? r->n_rules : 0;
}

size_t gf_ks_cel_rules_unsupported(const struct gf_ks_cel_rules *r)
{
    return r != NULL ? r->n_unsupported : 0;
}

void gf_ks_cel_rules_each_unsupported(const struct gf_ks_cel_rules *r,
                                      gf_ks_cel_rule_fn fn, void *data)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++)
        for (size_t j = 0; j < r->e[i].n_rules; j++)
            if (r->e[i].rules[j].cel == NULL)
                fn(data, r->e[i].path[0] ? r->e[i].path : "<root>",
                   r->e[i].rules[j].text, r->e[i].rules[j].why);
}

/* ---- validation --------------------------------------------------------- */

#define MAX_ERRORS 16

struct vctx {
    const struct gf_ks_cel_rules *r;
    struct gf_ks_status *err;
    struct gf_buf msg; /* "path: detail, path: detail" */
    size_t total;
};

static const struct entry *find(const struct gf_ks_cel_rules *r,
                                const cJSON *node)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->e[i].node == node)
            return &r->e[i];
    return NULL;
}

static void field_error(struct vctx *v, const char *path, const char *detail)
{
    const char *field = path[0] ? path : "<nil>";
    v->total++;
    if (v->total > MAX_ERRORS)
        return;
    gf_buf_printf(&v->msg, "%s%s: %s", v->msg.len ? ", " : "", field, detail);
    gf_ks_status_cause(v->err, "FieldValueInvalid", detail, field);
}

static void run_rules(struct vctx *v, const struct entry *e, const cJSON *self,
                      const cJSON *old, const char *path)
{
    const char *type = gf_json_str(e->node, "type");
    if (type == NULL)
        type = cJSON_IsObject(self)  ? "object"
               : cJSON_IsArray(self) ? "array"
                                     : "string";
    for (size_t i = 0; i < e->n_rules; i++) {
        const struct rule *ru = &e->rules[i];
        if (ru->cel == NULL)
            continue;
        if (gf_ks_cel_uses_old_self(ru->cel) && old == NULL)
            continue;
        char why[256], detail[1024];
        int rc = gf_ks_cel_eval(ru->cel, self, old, why, sizeof(why));
        if (rc == 1)
            continue;
        if (rc == 0 && ru->message != NULL)
            snprintf(detail, sizeof(detail), "Invalid value: \"%s\": %s", type,
                     ru->message);
        else if (rc == 0)
            snprintf(detail, sizeof(detail),
                     "Invalid value: \"%s\": failed rule: %s", type, ru->text);
        else
            snprintf(detail, sizeof(detail),
                     "Invalid value: \"%s\": %s evaluating rule: %s", type, why,
                     ru->message != NULL ? ru->message : ru->text);
        field_error(v, path, detail);
    }
}

/* The old item of a list-type map list with the same keys as item. */
static const cJSON *old_map_item(const cJSON *schema, const cJSON *old,
                                 const cJSON *item)
{
    const char *lt = gf_json_str(schema, "x-kubernetes-list-type");
    const cJSON *keys =
        cJSON_GetObjectItemCaseSensitive(schema, "x-kubernetes-list-map-keys");
    if (old == NULL || lt == NULL || strcmp(lt, "map") != 0 ||
        !cJSON_IsArray(keys) || !cJSON_IsObject(item))
        return NULL;
    const cJSON *o;
    cJSON_ArrayForEach(o, old)
    {
        bool same = cJSON_IsObject(o);
        const cJSON *k;
        cJSON_ArrayForEach(k, keys)
        {
            if (!same || !cJSON_IsString(k))
                break;
            same = gf_json_equal(
                cJSON_GetObjectItemCaseSensitive(o, k->valuestring),
                cJSON_GetObjectItemCaseSensitive(item, k->valuestring));
        }
        if (same)
            return o;
    }
    return NULL;
}

static const cJSON *child(const cJSON *o, const char *key)
{
    const cJSON *c =
        cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    return cJSON_IsNull(c) ? NULL : c;
}

static void walk(struct vctx *v, const cJSON *schema, const cJSON *self,
                 const cJSON *old, const char *path, int depth);

static void walk_object(struct vctx *v, const cJSON *schema, const cJSON *self,
                        const cJSON *old, const char *path, int depth)
{
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(schema, "properties");
    const cJSON *ap =
        cJSON_GetObjectItemCaseSensitive(schema, "additionalProperties");
    char sub[1024];
    const cJSON *f;
    cJSON_ArrayForEach(f, self)
    {
        const cJSON *ps = cJSON_GetObjectItemCaseSensitive(props, f->string);
        if (ps != NULL)
            snprintf(sub, sizeof(sub), "%s%s%s", path, path[0] ? "." : "",
                     f->string);
        else if (cJSON_IsObject(ap))
            snprintf(sub, sizeof(sub), "%s[%s]", path, f->string);
        else
            continue;
        walk(v, ps != NULL ? ps : ap, f, child(old, f->string), sub, depth + 1);
    }
}

static void walk_array(struct vctx *v, const cJSON *schema, const cJSON *self,
                       const cJSON *old, const char *path, int depth)
{
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(schema, "items");
    char sub[1024];
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, self)
    {
        snprintf(sub, sizeof(sub), "%s[%d]", path, i++);
        walk(v, items, it, old_map_item(schema, old, it), sub, depth + 1);
    }
}

static void walk(struct vctx *v, const cJSON *schema, const cJSON *self,
                 const cJSON *old, const char *path, int depth)
{
    const struct entry *e = find(v->r, schema);
    if (e == NULL || self == NULL || cJSON_IsNull(self) || depth > MAX_DEPTH)
        return;
    run_rules(v, e, self, old, path);
    if (cJSON_IsObject(self))
        walk_object(v, schema, self, old, path, depth);
    else if (cJSON_IsArray(self))
        walk_array(v, schema, self, old, path, depth);
}

int gf_ks_cel_rules_validate(const struct gf_ks_cel_rules *r, const cJSON *obj,
                             const cJSON *old, const char *kind,
                             const char *group, const char *name,
                             struct gf_ks_status *err)
{
    if (r == NULL || r->n == 0)
        return 0;
    struct vctx v = {.r = r, .err = err, .msg = GF_BUF_INIT(8192)};
    walk(&v, r->e[0].node, obj, old, "", 0);
    if (v.total == 0) {
        gf_buf_free(&v.msg);
        return 0;
    }
    char q[256];
    snprintf(q, sizeof(q), "%s%s%s", kind, group[0] ? "." : "", group);
    /* gf_ks_status_set() starts afresh: carry the causes over. */
    cJSON *causes = err != NULL ? err->causes : NULL;
    if (err != NULL)
        err->causes = NULL;
    /* The server's message: one error bare, several in brackets. */
    int rc;
    if (v.total == 1)
        rc = gf_ks_status_set(err, 422, "Invalid", "%s \"%s\" is invalid: %s",
                              q, name, gf_buf_cstr(&v.msg));
    else
        rc = gf_ks_status_set(err, 422, "Invalid", "%s \"%s\" is invalid: [%s]",
                              q, name, gf_buf_cstr(&v.msg));
    if (err != NULL) {
        err->causes = causes;
        gf_ks_status_details(err, name, group, kind);
    }
    gf_buf_free(&v.msg);
    return rc;
}
