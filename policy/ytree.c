/*
 * ytree: a YAML document as a small tree with line:column marks.
 *
 * The policy validator needs every node's position for its messages and
 * must see the whole document at once (to report all errors together), so
 * it walks a tree rather than libyaml's event stream. libyaml's own
 * document loader resolves aliases into shared nodes; this builder instead
 * refuses aliases, caps depth and node count, and keeps plain-ness of
 * scalars (so "null" and "~" can be told from the string "null").
 */
#include "policy/internal.h"

#include <stdio.h>
#include <string.h>
#include <yaml.h>

#include "common/alloc.h"
#include "common/err.h"

void gf__ynode_free(struct gf__ynode *n)
{
    if (n == NULL)
        return;
    for (size_t i = 0; i < n->n; i++)
        gf__ynode_free(n->kids[i]);
    gf_free(n->kids);
    gf_free(n->str);
    gf_free(n);
}

const struct gf__ynode *gf__ymap_get(const struct gf__ynode *map,
                                     const char *key)
{
    if (map == NULL || map->kind != GF__Y_MAP)
        return NULL;
    for (size_t i = 0; i + 1 < map->n; i += 2) {
        const struct gf__ynode *k = map->kids[i];
        if (k->kind == GF__Y_SCALAR && strcmp(k->str, key) == 0)
            return map->kids[i + 1];
    }
    return NULL;
}

static struct gf__ynode *node_new(enum gf__ykind kind, yaml_mark_t m)
{
    struct gf__ynode *n = gf_calloc(1, sizeof(*n));
    n->kind = kind;
    n->line = (int)m.line + 1;
    n->col = (int)m.column + 1;
    return n;
}

static void add_kid(struct gf__ynode *parent, struct gf__ynode *kid)
{
    if (parent->n == parent->cap) {
        parent->cap = parent->cap == 0 ? 4 : parent->cap * 2;
        parent->kids =
            gf_realloc(parent->kids, parent->cap * sizeof(*parent->kids));
    }
    parent->kids[parent->n++] = kid;
}

struct loader {
    struct gf__ynode *root;
    struct gf__ynode *stack[GF__Y_MAX_DEPTH];
    int depth;
    size_t nodes;
    int docs;
};

static int fail(int *line, int *col, char *msg, size_t cap, yaml_mark_t m,
                const char *what)
{
    *line = (int)m.line + 1;
    *col = (int)m.column + 1;
    snprintf(msg, cap, "%s", what);
    return GF_EPARSE;
}

/* Attaches a new node under the open container (or as the root). */
static int attach(struct loader *ld, struct gf__ynode *n)
{
    if (++ld->nodes > GF__Y_MAX_NODES) {
        gf__ynode_free(n);
        return GF_E2BIG;
    }
    if (ld->depth == 0) {
        ld->root = n;
        return 0;
    }
    add_kid(ld->stack[ld->depth - 1], n);
    return 0;
}

static int on_event(struct loader *ld, const yaml_event_t *ev, int *line,
                    int *col, char *msg, size_t cap)
{
    struct gf__ynode *n;
    int rc;
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++ld->docs > 1)
            return fail(line, col, msg, cap, ev->start_mark,
                        "a policy file holds exactly one YAML document");
        return 0;
    case YAML_ALIAS_EVENT:
        return fail(line, col, msg, cap, ev->start_mark,
                    "YAML aliases are not supported in a policy; "
                    "write the value out");
    case YAML_SCALAR_EVENT:
        n = node_new(GF__Y_SCALAR, ev->start_mark);
        n->str = gf_strndup((const char *)ev->data.scalar.value,
                            ev->data.scalar.length);
        n->len = ev->data.scalar.length;
        n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        if ((rc = attach(ld, n)) != 0)
            return fail(line, col, msg, cap, ev->start_mark,
                        "too many YAML nodes");
        return 0;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        if (ld->depth == GF__Y_MAX_DEPTH)
            return fail(line, col, msg, cap, ev->start_mark,
                        "YAML nesting is too deep");
        n = node_new(ev->type == YAML_SEQUENCE_START_EVENT ? GF__Y_SEQ
                                                           : GF__Y_MAP,
                     ev->start_mark);
        if ((rc = attach(ld, n)) != 0)
            return fail(line, col, msg, cap, ev->start_mark,
                        "too many YAML nodes");
        ld->stack[ld->depth++] = n;
        return 0;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        ld->depth--;
        return 0;
    default:
        return 0;
    }
}

int gf__yaml_load(const char *buf, size_t len, struct gf__ynode **out,
                  int *line, int *col, char *msg, size_t msg_cap)
{
    yaml_parser_t parser;
    struct loader ld;
    int rc = 0;

    memset(&ld, 0, sizeof(ld));
    *out = NULL;
    if (!yaml_parser_initialize(&parser)) {
        *line = 1;
        *col = 1;
        snprintf(msg, msg_cap, "cannot initialise the YAML parser");
        return -ENOMEM;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            *line = (int)parser.problem_mark.line + 1;
            *col = (int)parser.problem_mark.column + 1;
            snprintf(msg, msg_cap, "invalid YAML: %s%s%s",
                     parser.problem ? parser.problem : "syntax error",
                     parser.context ? " " : "",
                     parser.context ? parser.context : "");
            rc = GF_EPARSE;
            break;
        }
        bool end = ev.type == YAML_STREAM_END_EVENT;
        rc = on_event(&ld, &ev, line, col, msg, msg_cap);
        yaml_event_delete(&ev);
        if (rc != 0 || end)
            break;
    }
    yaml_parser_delete(&parser);
    if (rc != 0) {
        gf__ynode_free(ld.root);
        return rc;
    }
    *out = ld.root;
    return 0;
}
