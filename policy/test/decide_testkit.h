/*
 * decide_testkit: the fixture the decide tests share (test_decide.c,
 * test_decide_loan.c): a policy parsed from YAML, a ledger of
 * nvidia.com/gpu whose members east, west and north are synced and whose
 * namespace "team" accepts overflow everywhere, the actions of the last
 * pass, and the allocation counter to come back to. Support code linked
 * into every policy test binary.
 */
#ifndef GF_DTK_H
#define GF_DTK_H

#include <stdint.h>

#include "policy/config.h"
#include "policy/decide.h"
#include "policy/ledger.h"

#define GF_DTK_GPU "nvidia.com/gpu"

struct gf_dtk {
    struct gf_policy *p;
    struct gf_ledger *l;
    struct gf_actions a;
    int64_t baseline; /* gf_alloc_live() before the fixture */
};

/* Returned-owned policy parsed from yaml (gf_policy_free); a refused one
 * fails the test with its diagnostics. */
struct gf_policy *gf_dtk_policy(const char *yaml);
/* Records the baseline, parses yaml into f->p and makes the ledger. */
void gf_dtk_init(struct gf_dtk *f, const char *yaml);
/* Frees everything and asserts the allocation counter is back. */
void gf_dtk_done(struct gf_dtk *f);
/* A lease of group ml, epoch 1, lent by lender's ClusterQueue ml (flavor
 * a100) to east's Workload team/origin (its uid is its name) in
 * ClusterQueue ml, in phase ph; the caller fills in the rest and sets it.
 * Its strings are borrowed. */
struct gf_lease gf_dtk_lease(const char *name, const char *origin,
                             const char *lender, enum gf_lease_phase ph);

#endif
