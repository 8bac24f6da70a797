/*
 * Fuzz target for common/ytree: the first byte picks the options (aliases
 * allowed or not, first document only or not, the default caps or small
 * ones), the rest is YAML. Whatever loads must keep the promises of
 * ytree.h: every node has a position, mappings hold pairs, no path is
 * deeper than the cap, and the node count (each alias counted) stays under
 * its cap; whatever is refused says where and why.
 */
#include <stdint.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/ytree.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Walks n at depth (containers above it); counts edges into *edges. A
 * shared node is walked once per parent, so the walk stops early once it
 * has seen more edges than a tree under the cap could hold. */
static void check(const struct gf_ynode *n, unsigned depth, unsigned max_depth,
                  size_t *edges, size_t max_edges)
{
    if (++*edges > max_edges)
        return;
    GF_BUG_ON(n->line < 1 || n->col < 1 || n->refs < 1);
    if (n->kind == GF_Y_SCALAR) {
        GF_BUG_ON(n->str == NULL || n->str[n->len] != '\0' || n->n != 0);
        return;
    }
    GF_BUG_ON(depth + 1 > max_depth);
    GF_BUG_ON(n->kind == GF_Y_MAP && n->n % 2 != 0);
    for (size_t i = 0; i < n->n; i++)
        check(n->kids[i], depth + 1, max_depth, edges, max_edges);
}

/* A refusal leaves no tree and says where and why. */
static void check_refusal(int rc, const struct gf_ynode *root,
                          const struct gf_yaml_error *err)
{
    GF_BUG_ON(root != NULL);
    GF_BUG_ON(rc != GF_EPARSE && rc != GF_E2BIG && rc != -ENOMEM);
    GF_BUG_ON(err->line < 1 || err->col < 1 || err->msg[0] == '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1u << 20))
        return 0;
    uint8_t sel = data[0];
    struct gf_yaml_opts opts = {
        .aliases = (sel & 1) != 0,
        .first_document = (sel & 2) != 0,
        .max_depth = (sel & 4) != 0 ? 8 : 0,
        .max_nodes = (sel & 8) != 0 ? 64 : 0,
    };
    unsigned max_depth = opts.max_depth ? opts.max_depth : GF_Y_MAX_DEPTH;
    size_t max_nodes = opts.max_nodes ? opts.max_nodes : GF_Y_MAX_NODES;
    struct gf_ynode *root = (struct gf_ynode *)&root; /* poison */
    struct gf_yaml_error err;
    memset(&err, 0, sizeof(err));
    int rc = gf_yaml_load((const char *)data + 1, size - 1, &opts, &root, &err);
    if (rc != 0) {
        check_refusal(rc, root, &err);
        return 0;
    }
    size_t edges = 0;
    if (root != NULL)
        check(root, 0, max_depth, &edges, 4 * max_nodes);
    /* Without aliases the tree is a tree: every node counted once. */
    GF_BUG_ON(!opts.aliases && edges > max_nodes);
    gf_ynode_free(root);
    return 0;
}
