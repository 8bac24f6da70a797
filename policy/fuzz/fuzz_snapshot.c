/*
 * Fuzz target for ledger snapshots: arbitrary bytes as a snapshot. What
 * loads must be a consistent ledger (its incremental aggregates equal a
 * full recompute), must dump and load back to the same text, and must
 * survive a decision pass under a fixed policy; what does not load must
 * leave nothing behind.
 */
#include <stdint.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "policy/config.h"
#include "policy/decide.h"
#include "policy/snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char policy_yaml[] =
    "apiVersion: gpufed.io/v1alpha1\n"
    "kind: FederationPolicy\n"
    "spec:\n"
    "  members:\n"
    "  - {name: east, apiServer: 'https://e:6443', credentialsSecret: s/e}\n"
    "  - {name: west, apiServer: 'https://w:6443', credentialsSecret: s/w}\n"
    "  - {name: north, apiServer: 'https://n:6443', credentialsSecret: s/n,"
    " fencing: none}\n"
    "  groups:\n"
    "  - name: ml\n"
    "    mode: both\n"
    "    budgetFlavors: [a100]\n"
    "    reserve: {gpus: 1}\n"
    "    clusterQueues: [{member: east, name: ml}, {member: west, name: ml},"
    " {member: north, name: ml}]\n"
    "  sharing:\n"
    "    rules: [{name: r, lenders: ['*'], borrowers: ['*'], maxGPUs: 8}]\n";

/* Parsed per input: the replay checks that each input frees all. */
static struct gf_policy *fixed_policy(void)
{
    struct gf_policy *p = NULL;
    struct gf_policy_diag d;
    gf_policy_diag_init(&d);
    GF_BUG_ON(gf_policy_parse(policy_yaml, sizeof(policy_yaml) - 1, &p, &d) !=
              0);
    gf_policy_diag_free(&d);
    return p;
}

/* A loaded snapshot dumps, loads back and dumps to the same text. */
static void check_round_trip(const struct gf_ledger *l, int64_t now)
{
    char err[256];
    char *a = gf_snapshot_dump(l, now);
    struct gf_ledger *l2 = NULL;
    int64_t now2 = 0;
    GF_BUG_ON(gf_snapshot_load(a, strlen(a), &l2, &now2, err, sizeof(err)) !=
              0);
    char *b = gf_snapshot_dump(l2, now2);
    GF_BUG_ON(strcmp(a, b) != 0);
    gf_free(a);
    gf_free(b);
    gf_ledger_free(l2);
}

/* A decision pass over it never starts a lease of a negative size. */
static void check_decide(struct gf_ledger *l, int64_t now)
{
    struct gf_policy *p = fixed_policy();
    struct gf_actions acts = {0};
    if (gf_decide(l, p, now, &acts) == 0)
        for (size_t i = 0; i < acts.n; i++)
            GF_BUG_ON(acts.v[i].kind == GF_ACT_START && acts.v[i].gpus < 0);
    gf_actions_free(&acts);
    gf_policy_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t live = gf_alloc_live();
    struct gf_ledger *l = NULL;
    int64_t now = 0;
    char err[256];
    int rc =
        gf_snapshot_load((const char *)data, size, &l, &now, err, sizeof(err));
    if (rc != 0) {
        GF_BUG_ON(l != NULL || err[0] == '\0');
        GF_BUG_ON(gf_alloc_live() != live);
        return 0;
    }
    char why[256];
    GF_BUG_ON(gf_ledger_verify(l, why, sizeof(why)) != 0);
    check_round_trip(l, now);
    check_decide(l, now);
    gf_ledger_free(l);
    GF_BUG_ON(gf_alloc_live() != live);
    return 0;
}
