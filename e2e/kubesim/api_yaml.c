/*
 * api_yaml: YAML (and JSON, which is YAML) document streams to cJSON, and
 * gf_ks_api_apply_yaml(), which creates every object of a stream the way
 * `kubectl create -f` does.
 *
 * Conversion follows sigs.k8s.io/yaml: plain scalars are resolved to
 * null, booleans and numbers by the YAML core schema, quoted and block
 * scalars stay strings, mapping keys are strings. libyaml's document
 * loader resolves aliases to shared nodes, so the converter counts the
 * nodes it emits and stops at a cap: a "billion laughs" document gets an
 * error, not the whole memory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/json.h"
#include "e2e/kubesim/api_toolkit.h"

/* The Workload CRD alone is 1.4 MB of YAML. */
#define YAML_MAX (16u << 20)
#define YAML_MAX_NODES (4u << 20)
#define YAML_MAX_DEPTH 128

struct conv {
    yaml_document_t *doc;
    size_t nodes;
    bool too_big;
};

static bool all_digits(const char *s)
{
    if (*s == '-' || *s == '+')
        s++;
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/* A YAML 1.2 core-schema float:
 * [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
static bool is_float(const char *s)
{
    if (*s == '-' || *s == '+')
        s++;
    size_t d = 0;
    while (*s >= '0' && *s <= '9')
        s++, d++;
    if (*s == '.') {
        s++;
        while (*s >= '0' && *s <= '9')
            s++, d++;
    }
    if (d == 0)
        return false;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '-' || *s == '+')
            s++;
        if (*s < '0' || *s > '9')
            return false;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    return *s == '\0';
}

static cJSON *plain_scalar(const char *s)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    static const char *const trues[] = {"true", "True", "TRUE"};
    static const char *const falses[] = {"false", "False", "FALSE"};
    for (size_t i = 0; i < 5; i++)
        if (strcmp(s, nulls[i]) == 0)
            return cJSON_CreateNull();
    for (size_t i = 0; i < 3; i++) {
        if (strcmp(s, trues[i]) == 0)
            return cJSON_CreateTrue();
        if (strcmp(s, falses[i]) == 0)
            return cJSON_CreateFalse();
    }
    if (all_digits(s) || is_float(s)) {
        char *end;
        double v = strtod(s, &end);
        if (*end == '\0')
            return cJSON_CreateNumber(v);
    }
    return cJSON_CreateString(s);
}

static cJSON *conv_node(struct conv *c, yaml_node_t *n, int depth);

static cJSON *conv_mapping(struct conv *c, yaml_node_t *n, int depth)
{
    cJSON *o = cJSON_CreateObject();
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
         p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
        if (k == NULL || v == NULL || k->type != YAML_SCALAR_NODE) {
            cJSON_Delete(o);
            return NULL;
        }
        cJSON *cv = conv_node(c, v, depth + 1);
        if (cv == NULL) {
            cJSON_Delete(o);
            return NULL;
        }
        const char *key = (const char *)k->data.scalar.value;
        /* A later duplicate key wins, as in sigs.k8s.io/yaml. */
        cJSON_DeleteItemFromObjectCaseSensitive(o, key);
        cJSON_AddItemToObject(o, key, cv);
    }
    return o;
}

static cJSON *conv_node(struct conv *c, yaml_node_t *n, int depth)
{
    if (depth > YAML_MAX_DEPTH || ++c->nodes > YAML_MAX_NODES) {
        c->too_big = true;
        return NULL;
    }
    switch (n->type) {
    case YAML_SCALAR_NODE: {
        const char *s = (const char *)n->data.scalar.value;
        if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
            return plain_scalar(s);
        return cJSON_CreateString(s);
    }
    case YAML_SEQUENCE_NODE: {
        cJSON *a = cJSON_CreateArray();
        for (yaml_node_item_t *i = n->data.sequence.items.start;
             i < n->data.sequence.items.top; i++) {
            yaml_node_t *e = yaml_document_get_node(c->doc, *i);
            cJSON *ce = e != NULL ? conv_node(c, e, depth + 1) : NULL;
            if (ce == NULL) {
                cJSON_Delete(a);
                return NULL;
            }
            cJSON_AddItemToArray(a, ce);
        }
        return a;
    }
    case YAML_MAPPING_NODE:
        return conv_mapping(c, n, depth);
    default:
        return NULL;
    }
}

static int yaml_error(const yaml_parser_t *p, struct gf_ks_status *err)
{
    return gf_ks_status_set(err, 400, "BadRequest",
                            "error converting YAML to JSON: yaml: line %lu: %s",
                            (unsigned long)p->problem_mark.line + 1,
                            p->problem != NULL ? p->problem : "invalid");
}

typedef int (*doc_fn)(void *data, cJSON *doc, struct gf_ks_status *err);

/*
 * Calls fn for every document of the stream (documents that are empty are
 * skipped; fn takes ownership of doc). Stops at the first error.
 */
static int yaml_each(const char *text, size_t len, doc_fn fn, void *data,
                     struct gf_ks_status *err)
{
    if (len > YAML_MAX)
        return gf_ks_status_set(err, 413, "RequestEntityTooLarge",
                                "the document is too large");
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return gf_ks_status_set(err, 500, "InternalError", "yaml parser");
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    int rc = 0;
    while (rc == 0) {
        yaml_document_t doc;
        if (!yaml_parser_load(&p, &doc)) {
            rc = yaml_error(&p, err);
            break;
        }
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (root == NULL) {
            yaml_document_delete(&doc);
            break; /* end of stream */
        }
        struct conv c = {.doc = &doc};
        cJSON *j = conv_node(&c, root, 0);
        yaml_document_delete(&doc);
        if (j == NULL) {
            rc = gf_ks_status_set(err, 400, "BadRequest",
                                  c.too_big ? "the document is too large "
                                              "or too deep"
                                            : "the document cannot be "
                                              "converted to JSON");
        } else if (cJSON_IsNull(j)) {
            cJSON_Delete(j);
        } else {
            rc = fn(data, j, err);
        }
    }
    yaml_parser_delete(&p);
    return rc;
}

static int take_first(void *data, cJSON *doc, struct gf_ks_status *err)
{
    cJSON **out = data;
    if (*out != NULL) {
        cJSON_Delete(doc);
        return gf_ks_status_set(err, 400, "BadRequest",
                                "expected a single document");
    }
    *out = doc;
    return 0;
}

int gf__ks_yaml_doc(const char *text, size_t len, cJSON **out,
                    struct gf_ks_status *err)
{
    *out = NULL;
    int rc = yaml_each(text, len, take_first, out, err);
    if (rc == 0 && *out == NULL)
        rc = gf_ks_status_set(err, 400, "BadRequest",
                              "the body of the request is empty");
    if (rc < 0) {
        cJSON_Delete(*out);
        *out = NULL;
    }
    return rc;
}

/* ---- apply -------------------------------------------------------------- */

struct find_kind {
    const char *group, *version, *kind;
    const struct gf_ks_rtype *found;
};

static void match_kind(void *data, const struct gf_ks_rtype *t)
{
    struct find_kind *f = data;
    if (f->found == NULL && strcmp(t->group, f->group) == 0 &&
        strcmp(t->kind, f->kind) == 0 &&
        gf__ks_find_version(t, f->version) != NULL)
        f->found = t;
}

static int create_one(struct gf_ks_api *api, cJSON *obj,
                      struct gf_ks_status *err)
{
    const char *av = gf_json_str(obj, "apiVersion");
    const char *kind = gf_json_str(obj, "kind");
    if (av == NULL || kind == NULL) {
        cJSON_Delete(obj);
        return gf_ks_status_set(err, 400, "BadRequest",
                                "Object 'Kind' or 'apiVersion' is missing");
    }
    char group[128] = "";
    const char *version = av;
    const char *slash = strchr(av, '/');
    if (slash != NULL) {
        snprintf(group, sizeof(group), "%.*s", (int)(slash - av), av);
        version = slash + 1;
    }
    struct find_kind f = {group, version, kind, NULL};
    gf_ks_store_types(api->store, match_kind, &f);
    if (f.found == NULL) {
        int rc = gf_ks_status_set(err, 404, "NotFound",
                                  "no matches for kind \"%s\" in version "
                                  "\"%s\"",
                                  kind, av);
        cJSON_Delete(obj);
        return rc;
    }
    const char *ns = gf_json_str(obj, "metadata.namespace");
    char nsbuf[254];
    snprintf(nsbuf, sizeof(nsbuf), "%s",
             ns != NULL && ns[0] != '\0' ? ns : "default");
    return gf__ks_create(api, f.found, gf__ks_find_version(f.found, version),
                         nsbuf, obj, false, NULL, NULL, err);
}

static int apply_doc(void *data, cJSON *doc, struct gf_ks_status *err)
{
    struct gf_ks_api *api = data;
    if (!cJSON_IsObject(doc)) {
        cJSON_Delete(doc);
        return gf_ks_status_set(err, 400, "BadRequest",
                                "a document is not an object");
    }
    const char *kind = gf_json_str(doc, "kind");
    cJSON *items = cJSON_GetObjectItemCaseSensitive(doc, "items");
    size_t kl = kind != NULL ? strlen(kind) : 0;
    if (kl >= 4 && strcmp(kind + kl - 4, "List") == 0 && cJSON_IsArray(items)) {
        int rc = 0;
        while (rc == 0 && items->child != NULL)
            rc = create_one(
                api, cJSON_DetachItemViaPointer(items, items->child), err);
        cJSON_Delete(doc);
        return rc;
    }
    return create_one(api, doc, err);
}

int gf_ks_api_apply_yaml(struct gf_ks_api *api, const char *text, size_t len,
                         struct gf_ks_status *err)
{
    return yaml_each(text, len, apply_doc, api, err);
}
