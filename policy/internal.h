/*
 * internal: helpers shared by the files of policy/ and by nothing else.
 *
 * - Lookups go through common/htab.h (the ledger's incremental updates are
 *   O(1) because every lookup goes through one), keyed by the composite
 *   keys below. Iteration order depends on insertion history, so nothing
 *   that must be deterministic may depend on it: callers sort what they
 *   collect.
 * - The policy YAML is read into common/ytree.h's tree (positions for
 *   every message, aliases refused, depth and node count capped).
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

#endif
