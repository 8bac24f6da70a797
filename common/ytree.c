/*
 * ytree: libyaml events into a tree of struct gf_ynode (see ytree.h for
 * what is refused and why).
 *
 * The loader keeps the open containers on a fixed stack of GF_Y_MAX_DEPTH,
 * so no input can make it allocate anything but nodes (capped) and anchor
 * names (capped). Every node counts once, and so does every alias.
 */
#include "common/ytree.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>

#include "common/alloc.h"
#include "common/err.h"

void gf_ynode_free(struct gf_ynode *n)
{
    if (n == NULL || --n->refs > 0)
        return;
    for (size_t i = 0; i < n->n; i++)
        gf_ynode_free(n->kids[i]);
    gf_free(n->kids);
    if (n->str != NULL)
        gf_wipe(n->str, n->len);
    gf_free(n->str);
    gf_free(n);
}

const struct gf_ynode *gf_ymap_get(const struct gf_ynode *map, const char *key)
{
    if (map == NULL || map->kind != GF_Y_MAP)
        return NULL;
    size_t klen = strlen(key);
    for (size_t i = 0; i + 1 < map->n; i += 2) {
        const struct gf_ynode *k = map->kids[i];
        if (k->kind == GF_Y_SCALAR && k->len == klen &&
            memcmp(k->str, key, klen) == 0)
            return map->kids[i + 1];
    }
    return NULL;
}

bool gf_ynode_is_null(const struct gf_ynode *n)
{
    if (n == NULL || n->kind != GF_Y_SCALAR || !n->plain)
        return false;
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
        if (strlen(nulls[i]) == n->len && strcmp(n->str, nulls[i]) == 0)
            return true;
    return false;
}

struct anchor {
    char *name;
    struct gf_ynode *node;
};

struct loader {
    unsigned max_depth;
    size_t max_nodes;
    bool aliases, first_document;
    struct gf_yaml_error *err;

    struct gf_ynode *root;
    struct gf_ynode *stack[GF_Y_MAX_DEPTH];
    unsigned depth;
    size_t nodes;
    int docs;
    bool done;
    struct anchor *anchors;
    size_t nanchors;
};

static int fail(struct loader *ld, yaml_mark_t m, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(struct loader *ld, yaml_mark_t m, int rc, const char *fmt, ...)
{
    if (ld->err != NULL) {
        ld->err->line = (int)m.line + 1;
        ld->err->col = (int)m.column + 1;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ld->err->msg, sizeof(ld->err->msg), fmt, ap);
        va_end(ap);
    }
    return rc;
}

static struct gf_ynode *node_new(enum gf_ykind kind, yaml_mark_t m)
{
    struct gf_ynode *n = gf_calloc(1, sizeof(*n));
    n->kind = kind;
    n->line = (int)m.line + 1;
    n->col = (int)m.column + 1;
    n->refs = 1;
    return n;
}

static void add_kid(struct gf_ynode *parent, struct gf_ynode *kid)
{
    if (parent->n == parent->cap) {
        parent->cap = parent->cap == 0 ? 4 : parent->cap * 2;
        parent->kids =
            gf_realloc(parent->kids, parent->cap * sizeof(*parent->kids));
    }
    parent->kids[parent->n++] = kid;
}

/* Counts one more node (or alias) against the cap. */
static int count(struct loader *ld, yaml_mark_t m)
{
    if (++ld->nodes > ld->max_nodes)
        return fail(ld, m, GF_E2BIG, "too many YAML nodes (more than %zu)",
                    ld->max_nodes);
    return 0;
}

/* Attaches n under the open container, or as the root. */
static void attach(struct loader *ld, struct gf_ynode *n)
{
    if (ld->depth == 0)
        ld->root = n;
    else
        add_kid(ld->stack[ld->depth - 1], n);
}

static int add_anchor(struct loader *ld, const yaml_char_t *name,
                      struct gf_ynode *n, yaml_mark_t m)
{
    if (!ld->aliases || name == NULL)
        return 0;
    if (ld->nanchors == GF_Y_MAX_ANCHORS)
        return fail(ld, m, GF_E2BIG, "too many YAML anchors (more than %d)",
                    GF_Y_MAX_ANCHORS);
    ld->anchors =
        gf_realloc(ld->anchors, (ld->nanchors + 1) * sizeof(*ld->anchors));
    ld->anchors[ld->nanchors].name = gf_strdup((const char *)name);
    ld->anchors[ld->nanchors].node = n;
    ld->nanchors++;
    return 0;
}

static bool is_open(const struct loader *ld, const struct gf_ynode *n)
{
    for (unsigned i = 0; i < ld->depth; i++)
        if (ld->stack[i] == n)
            return true;
    return false;
}

static int on_alias(struct loader *ld, const yaml_event_t *ev)
{
    yaml_mark_t m = ev->start_mark;
    if (!ld->aliases)
        return fail(ld, m, GF_EPARSE,
                    "YAML aliases are not supported; write the value out");
    const char *name = (const char *)ev->data.alias.anchor;
    struct gf_ynode *n = NULL;
    /* The latest definition wins, as YAML says for redefined anchors. */
    for (size_t i = ld->nanchors; i > 0 && n == NULL; i--)
        if (strcmp(ld->anchors[i - 1].name, name) == 0)
            n = ld->anchors[i - 1].node;
    if (n == NULL)
        return fail(ld, m, GF_EPARSE, "unknown YAML alias");
    if (is_open(ld, n))
        return fail(ld, m, GF_EPARSE, "recursive YAML alias");
    if (ld->depth + n->height > ld->max_depth)
        return fail(ld, m, GF_E2BIG, "YAML nested deeper than %u",
                    ld->max_depth);
    int rc = count(ld, m);
    if (rc != 0)
        return rc;
    n->refs++;
    attach(ld, n);
    return 0;
}

static int on_scalar(struct loader *ld, const yaml_event_t *ev)
{
    yaml_mark_t m = ev->start_mark;
    int rc = count(ld, m);
    if (rc != 0)
        return rc;
    struct gf_ynode *n = node_new(GF_Y_SCALAR, m);
    /* Copied by length: a scalar may hold "\0" (gf_strndup would stop
     * there); callers that want a C string check strlen against len. */
    n->len = ev->data.scalar.length;
    n->str = gf_malloc(n->len + 1);
    memcpy(n->str, ev->data.scalar.value, n->len);
    n->str[n->len] = '\0';
    n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    attach(ld, n);
    return add_anchor(ld, ev->data.scalar.anchor, n, m);
}

static int on_start(struct loader *ld, const yaml_event_t *ev)
{
    yaml_mark_t m = ev->start_mark;
    if (ld->depth == ld->max_depth)
        return fail(ld, m, GF_E2BIG, "YAML nested deeper than %u",
                    ld->max_depth);
    int rc = count(ld, m);
    if (rc != 0)
        return rc;
    bool seq = ev->type == YAML_SEQUENCE_START_EVENT;
    struct gf_ynode *n = node_new(seq ? GF_Y_SEQ : GF_Y_MAP, m);
    attach(ld, n);
    ld->stack[ld->depth++] = n;
    return add_anchor(ld,
                      seq ? ev->data.sequence_start.anchor
                          : ev->data.mapping_start.anchor,
                      n, m);
}

/* libyaml guarantees balanced start and end events. */
static void on_end(struct loader *ld)
{
    struct gf_ynode *n = ld->stack[--ld->depth];
    unsigned below = 0;
    for (size_t i = 0; i < n->n; i++)
        if (n->kids[i]->height > below)
            below = n->kids[i]->height;
    n->height = below + 1;
}

static int on_event(struct loader *ld, const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++ld->docs > 1)
            return fail(ld, ev->start_mark, GF_EPARSE,
                        "expected exactly one YAML document, found another");
        return 0;
    case YAML_DOCUMENT_END_EVENT:
        ld->done = ld->first_document;
        return 0;
    case YAML_STREAM_END_EVENT:
        ld->done = true;
        return 0;
    case YAML_ALIAS_EVENT:
        return on_alias(ld, ev);
    case YAML_SCALAR_EVENT:
        return on_scalar(ld, ev);
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        return on_start(ld, ev);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        on_end(ld);
        return 0;
    default:
        return 0;
    }
}

static void loader_init(struct loader *ld, const struct gf_yaml_opts *o,
                        struct gf_yaml_error *err)
{
    memset(ld, 0, sizeof(*ld));
    ld->err = err;
    ld->max_depth = GF_Y_MAX_DEPTH;
    ld->max_nodes = GF_Y_MAX_NODES;
    if (o == NULL)
        return;
    if (o->max_depth > 0 && o->max_depth < GF_Y_MAX_DEPTH)
        ld->max_depth = o->max_depth;
    if (o->max_nodes > 0 && o->max_nodes < GF_Y_MAX_NODES)
        ld->max_nodes = o->max_nodes;
    ld->aliases = o->aliases;
    ld->first_document = o->first_document;
}

int gf_yaml_load(const char *buf, size_t len, const struct gf_yaml_opts *opts,
                 struct gf_ynode **out, struct gf_yaml_error *err)
{
    yaml_parser_t parser;
    struct loader ld;
    int rc = 0;

    *out = NULL;
    loader_init(&ld, opts, err);
    if (!yaml_parser_initialize(&parser))
        return fail(&ld, (yaml_mark_t){0}, -ENOMEM,
                    "cannot initialise the YAML parser");
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    while (rc == 0 && !ld.done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            /* problem_mark is 0-based like every libyaml mark. */
            rc = fail(&ld, parser.problem_mark, GF_EPARSE,
                      "invalid YAML: %s%s%s",
                      parser.problem ? parser.problem : "syntax error",
                      parser.context ? " " : "",
                      parser.context ? parser.context : "");
            break;
        }
        rc = on_event(&ld, &ev);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    for (size_t i = 0; i < ld.nanchors; i++)
        gf_free(ld.anchors[i].name);
    gf_free(ld.anchors);
    if (rc != 0) {
        gf_ynode_free(ld.root);
        return rc;
    }
    *out = ld.root;
    return 0;
}
