/*
 * internal: helpers shared by the files of policy/ and by nothing else.
 *
 * - Lookups go through common/htab.h (the ledger's incremental updates are
 *   O(1) because every lookup goes through one), keyed by the composite
 *   keys below. Iteration order depends on insertion history, so nothing
 *   that must be deterministic may depend on it: callers sort what they
 *   collect.
 * - gf__ynode: a YAML document as a plain tree with 1-based line:column
 *   marks, built from libyaml events. Aliases are refused (a policy never
 *   needs them, and refusing them rules out "billion laughs" expansion),
 *   nesting depth and node count are capped.
 *
 * Pure code: no I/O, no clock. Single-threaded like the rest of gpufed.
 */
#ifndef GF_POLICY_INTERNAL_H
#define GF_POLICY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Builds a composite key "a\0b\0c" from up to 4 strings into out (cap
 * bytes). Returns its length, or 0 when it does not fit (the caller treats
 * that as an over-long name).
 */
size_t gf__key(char *out, size_t cap, const char *a, const char *b,
               const char *c, const char *d);

enum gf__ykind { GF__Y_SCALAR, GF__Y_SEQ, GF__Y_MAP };

struct gf__ynode {
    enum gf__ykind kind;
    int line, col; /* 1-based */
    char *str;     /* scalar text (owned), NUL-terminated */
    size_t len;    /* scalar length */
    bool plain;    /* scalar written without quotes */
    /* SEQ: n children; MAP: n/2 key,value pairs stored flat. Owned. */
    struct gf__ynode **kids;
    size_t n, cap;
};

#define GF__Y_MAX_DEPTH 64
#define GF__Y_MAX_NODES 200000

/*
 * Parses one YAML document from buf[0..len). On success returns 0 and
 * *out (returned-owned, gf__ynode_free); an empty document yields NULL.
 * On failure returns GF_EPARSE (or GF_E2BIG for the caps) and fills
 * *line, *col (1-based) and msg (a NUL-terminated reason).
 */
int gf__yaml_load(const char *buf, size_t len, struct gf__ynode **out,
                  int *line, int *col, char *msg, size_t msg_cap);
void gf__ynode_free(struct gf__ynode *n);
/* For a MAP: the value node of key, or NULL. */
const struct gf__ynode *gf__ymap_get(const struct gf__ynode *map,
                                     const char *key);

#endif
