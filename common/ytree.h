/*
 * ytree: a YAML document as a small tree with line:column marks.
 *
 * The policy validator and the kubeconfig resolver both need every node's
 * position for their messages (file:line:col) and look values up by key,
 * so both walk this tree rather than libyaml's event stream. libyaml's own
 * document loader (yaml_parser_load) allocates in proportion to hostile
 * input before anything can refuse it and expands nothing we could cap;
 * this builder reads events and refuses, as it goes:
 * - aliases (by default): refusing them rules out "billion laughs";
 * - nesting deeper than max_depth, and more than max_nodes nodes;
 * - a second document (by default).
 * It keeps whether a scalar was plain, so that `null` and `~` can be told
 * from the quoted strings "null" and "~".
 *
 * Keys are compared byte for byte: `nvidia.com/gpu` and
 * `kueue.x-k8s.io/queue-name` are ordinary map keys, never paths.
 *
 * Aliases, when a caller allows them (kubeconfig: kubectl reads anchors),
 * resolve by sharing the anchored node, never by copying it: the tree is
 * then a DAG whose size is bounded by the node cap (each alias counts as a
 * node), and whose every path is bounded by max_depth (an alias may not
 * carry a path past it). An alias to a node that is still open (a cycle) is
 * refused. A caller that walks a shared tree should look values up by key,
 * as the kubeconfig resolver does, and never visit it whole: the number of
 * paths through a DAG can grow exponentially with its node count.
 *
 * Scalar text is wiped (gf_wipe) when the tree is freed: a
 * kubeconfig tree holds tokens and private keys.
 *
 * Pure code: no I/O, no clock. Trees are not shared between threads.
 */
#ifndef GF_COMMON_YTREE_H
#define GF_COMMON_YTREE_H

#include <stdbool.h>
#include <stddef.h>

enum gf_ykind { GF_Y_SCALAR, GF_Y_SEQ, GF_Y_MAP };

struct gf_ynode {
    enum gf_ykind kind;
    int line, col; /* 1-based, where the node starts */
    /* SCALAR: the text, NUL-terminated; it may hold NUL bytes itself
     * (`"a\0b"`), which callers that want a C string refuse by checking
     * strlen(str) != len. Owned. */
    char *str;
    size_t len;
    bool plain; /* scalar written without quotes or block style */
    /* SEQ: n children; MAP: n/2 key,value pairs stored flat. Owned. */
    struct gf_ynode **kids;
    size_t n, cap;
    /* Internal: parents holding this node (more than 1 only through an
     * alias), and the levels below it (for the depth cap over aliases). */
    unsigned refs, height;
};

/* Hard ceilings: options may lower them, never raise them. */
#define GF_Y_MAX_DEPTH 64
#define GF_Y_MAX_NODES 200000
#define GF_Y_MAX_ANCHORS 1024

struct gf_yaml_opts {
    unsigned max_depth; /* 0 or above GF_Y_MAX_DEPTH: GF_Y_MAX_DEPTH */
    size_t max_nodes;   /* 0 or above GF_Y_MAX_NODES: GF_Y_MAX_NODES */
    /* Resolve an alias to the complete node its anchor names, shared;
     * else an alias is an error. */
    bool aliases;
    /* Stop after the first document (what kubectl does with a kubeconfig);
     * else a second document is an error. */
    bool first_document;
};

/* Where and why a document was refused. */
struct gf_yaml_error {
    int line, col; /* 1-based */
    char msg[256];
};

/*
 * Parses one YAML document from buf[0..len) with opts (NULL: the
 * defaults: no aliases, one document, the hard caps). On success returns
 * 0 and *out (returned-owned, gf_ynode_free); an empty stream yields NULL.
 * On failure *out is NULL, err (if not NULL) holds a position and a reason
 * that never quotes the input, and the return is GF_EPARSE (syntax, an
 * alias, a second document), GF_E2BIG (depth, node or anchor cap) or
 * -ENOMEM (libyaml could not start).
 */
int gf_yaml_load(const char *buf, size_t len, const struct gf_yaml_opts *opts,
                 struct gf_ynode **out, struct gf_yaml_error *err);

/* Frees the tree (NULL is fine); wipes scalar text first. */
void gf_ynode_free(struct gf_ynode *n);

/*
 * For a MAP: the value node of the first scalar key equal to key (byte for
 * byte, whole length), or NULL. NULL when map is NULL or not a MAP.
 */
const struct gf_ynode *gf_ymap_get(const struct gf_ynode *map, const char *key);

/* A plain scalar that YAML reads as null: empty, ~, null, Null or NULL. */
bool gf_ynode_is_null(const struct gf_ynode *n);

#endif
