/*
 * Tests for decide's loan rules (policy/decide_loan.c): which mode a START
 * takes and why, each rule that blocks a loan (notBudget, noCohort,
 * borrowingLimit), a group in mode both falling back to a redirect, the
 * caps that bind a loan as they bind a copy, the lender opt-in that does
 * not, and the upkeep of loan leases (whose silence suspects and fences,
 * renewal only while the origin uses the loan).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "policy/config.h"
#include "policy/decide.h"
#include "policy/ledger.h"
#include "policy/test/decide_testkit.h"

#define GPU "nvidia.com/gpu"
#define MIN ((int64_t)60000)

/* east borrows; west lends budget flavor a100 and hardware flavor h100;
 * north has no agent. */
static const char head[] =
    "apiVersion: gpufed.io/v1alpha1\n"
    "kind: FederationPolicy\n"
    "spec:\n"
    "  members:\n"
    "  - {name: east, apiServer: 'https://e:6443', credentialsSecret: s/e}\n"
    "  - {name: west, apiServer: 'https://w:6443', credentialsSecret: s/w}\n"
    "  - {name: north, apiServer: 'https://n:6443', credentialsSecret: s/n,"
    " fencing: none}\n"
    "  timing: {overflowAfter: 1m, leaseDuration: 30s, clockDrift: 0.1,"
    " fenceMargin: 5s, admitTimeout: 5m}\n"
    "  groups:\n"
    "  - name: ml\n";

static const char queues[] =
    "    budgetFlavors: [a100]\n"
    "    clusterQueues: [{member: east, name: ml}, {member: west, name: ml},"
    " {member: north, name: ml}]\n";

static void pending(struct gf_dtk *f, const char *name, int64_t gpus,
                    enum gf_wl_state st)
{
    struct gf_workload w = {.member = "east",
                            .namespace = "team",
                            .name = name,
                            .uid = name,
                            .cluster_queue = "ml",
                            .flavor = st == GF_WL_PENDING ? NULL : "a100",
                            .kind = "batch/Job",
                            .gpus = gpus,
                            .state = st};
    assert_int_equal(gf_ledger_workload_set(f->l, &w), 0);
}

/* ClusterQueue ml of member with one GPU flavor. */
static void quota(struct gf_dtk *f, const char *member, const char *flavor,
                  int64_t nominal, int64_t borrowing_limit)
{
    struct gf_cq_quota q = {flavor, GPU, nominal, borrowing_limit, GF_NO_LIMIT};
    assert_int_equal(gf_ledger_cq_set(f->l, member, "ml", &q, 1), 0);
}

static void fx_init(struct gf_dtk *f, const char *mode, const char *extra)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s    mode: %s\n%s%s", head, mode, queues,
             extra != NULL ? extra : "");
    gf_dtk_init(f, buf);
    /* east's ClusterQueue is full, in cohort "ml-cohort"; west lends */
    quota(f, "east", "a100", 4, GF_NO_LIMIT);
    assert_int_equal(gf_ledger_cq_cohort_set(f->l, "east", "ml", "ml-cohort"),
                     0);
    quota(f, "west", "a100", 8, GF_NO_LIMIT);
    pending(f, "running", 4, GF_WL_ADMITTED);
}

/* What decide says of east/team/name now: a START (start, in mode), or
 * the rule that blocks it; text is the explanation. */
struct verdict {
    bool start;
    enum gf_lease_mode mode;
    const char *rule;
    char text[320];
};

static struct verdict decide_one(struct gf_dtk *f, const char *name)
{
    struct gf_action a;
    int starts = 0;
    assert_int_equal(
        gf_decide_workload(f->l, f->p, MIN, "east", "team", name, &a, &starts),
        0);
    struct verdict v = {
        .start = starts != 0, .mode = a.mode, .rule = a.why.rule};
    snprintf(v.text, sizeof(v.text), "%s", a.why.text);
    gf_action_clear(&a);
    return v;
}

static void test_loan_start_says_mode_and_why(void **state)
{
    (void)state;
    struct gf_dtk f;
    fx_init(&f, "loan", NULL);
    pending(&f, "w", 2, GF_WL_PENDING);
    struct verdict v = decide_one(&f, "w");
    assert_true(v.start);
    assert_int_equal(v.mode, GF_LEASE_LOAN);
    assert_string_equal(v.rule, "loan");
    assert_non_null(strstr(v.text, "mode loan"));
    assert_non_null(strstr(v.text, "into cohort ml-cohort"));
    /* the pass agrees */
    assert_int_equal(gf_decide(f.l, f.p, MIN, &f.a), 0);
    assert_int_equal(f.a.n, 1);
    assert_int_equal(f.a.v[0].mode, GF_LEASE_LOAN);
    assert_string_equal(f.a.v[0].lender, "west");
    gf_dtk_done(&f);
}

static void test_hardware_flavor_is_not_lent(void **state)
{
    (void)state;
    struct gf_dtk f;
    fx_init(&f, "loan", NULL);
    /* west has only h100 quota, and h100 is hardware. */
    struct gf_cq_quota e[2] = {{"a100", GPU, 4, GF_NO_LIMIT, GF_NO_LIMIT},
                               {"h100", GPU, 0, GF_NO_LIMIT, GF_NO_LIMIT}};
    assert_int_equal(gf_ledger_cq_set(f.l, "east", "ml", e, 2), 0);
    quota(&f, "west", "h100", 8, GF_NO_LIMIT);
    pending(&f, "w", 2, GF_WL_PENDING);
    struct verdict v = decide_one(&f, "w");
    assert_false(v.start);
    assert_string_equal(v.rule, "notBudget");
    assert_non_null(strstr(v.text, "flavor h100"));
    gf_dtk_done(&f);
}

static void test_origin_outside_a_cohort_gets_no_loan(void **state)
{
    (void)state;
    struct gf_dtk f;
    fx_init(&f, "loan", NULL);
    assert_int_equal(gf_ledger_cq_cohort_set(f.l, "east", "ml", NULL), 0);
    pending(&f, "w", 2, GF_WL_PENDING);
    struct verdict v = decide_one(&f, "w");
    assert_false(v.start);
    assert_string_equal(v.rule, "noCohort");
    /* The cohort survives a quota update; "" clears it like NULL. */
    assert_int_equal(gf_ledger_cq_cohort_set(f.l, "east", "ml", "c"), 0);
    quota(&f, "east", "a100", 4, GF_NO_LIMIT);
    assert_string_equal(gf_ledger_cq(f.l, "east", "ml")->cohort, "c");
    assert_int_equal(gf_ledger_cq_cohort_set(f.l, "east", "ml", ""), 0);
    assert_null(gf_ledger_cq(f.l, "east", "ml")->cohort);
    gf_dtk_done(&f);
}

static void test_origin_borrowing_limit_binds(void **state)
{
    (void)state;
    struct gf_dtk f;
    fx_init(&f, "loan", NULL);
    quota(&f, "east", "a100", 4, 1);
    pending(&f, "w", 2, GF_WL_PENDING);
    struct verdict v = decide_one(&f, "w");
    assert_false(v.start);
    assert_string_equal(v.rule, "borrowingLimit");
    pending(&f, "one", 1, GF_WL_PENDING);
    v = decide_one(&f, "one");
    assert_true(v.start);
    gf_dtk_done(&f);
}

static void test_both_falls_back_to_a_redirect_and_says_why(void **state)
{
    (void)state;
    struct gf_dtk f;
    fx_init(&f, "both", NULL);
    pending(&f, "w", 2, GF_WL_PENDING);
    /* With a cohort: a loan first. */
    struct verdict v = decide_one(&f, "w");
    assert_true(v.start);
    assert_int_equal(v.mode, GF_LEASE_LOAN);
    /* Without: a copy, and the text says why no loan. */
    assert_int_equal(gf_ledger_cq_cohort_set(f.l, "east", "ml", NULL), 0);
    v = decide_one(&f, "w");
    assert_true(v.start);
    assert_int_equal(v.mode, GF_LEASE_REDIRECT);
    assert_string_equal(v.rule, "fit");
    assert_non_null(strstr(v.text, "mode redirect"));
    assert_non_null(strstr(v.text, "no loan: ClusterQueue east/ml is in no "
                                   "cohort"));
    gf_dtk_done(&f);
}

static void test_both_prefers_a_loan_to_a_more_idle_copy(void **state)
{
    (void)state;
    struct gf_dtk f;
    fx_init(&f, "both", NULL);
    /* north has more idle hardware quota, west some budget quota. */
    struct gf_cq_quota e[2] = {{"a100", GPU, 4, GF_NO_LIMIT, GF_NO_LIMIT},
                               {"h100", GPU, 0, GF_NO_LIMIT, GF_NO_LIMIT}};
    assert_int_equal(gf_ledger_cq_set(f.l, "east", "ml", e, 2), 0);
    quota(&f, "north", "h100", 16, GF_NO_LIMIT);
    pending(&f, "w", 2, GF_WL_PENDING);
    assert_int_equal(gf_decide(f.l, f.p, MIN, &f.a), 0);
    assert_int_equal(f.a.n, 1);
    assert_int_equal(f.a.v[0].mode, GF_LEASE_LOAN);
    assert_string_equal(f.a.v[0].lender, "west");
    assert_string_equal(f.a.v[0].flavor, "a100");
    gf_dtk_done(&f);
}

static void test_loan_obeys_the_caps_not_the_opt_in(void **state)
{
    (void)state;
    struct gf_dtk f;
    fx_init(&f, "loan",
            "  sharing:\n"
            "    rules: [{name: small, lenders: [west], borrowers: [east],"
            " maxGPUs: 1}]\n");
    /* A hold runs nothing in west: its namespace opt-in does not matter. */
    assert_int_equal(gf_ledger_ns_set(f.l, "west", "team", false), 0);
    pending(&f, "one", 1, GF_WL_PENDING);
    pending(&f, "two", 2, GF_WL_PENDING);
    struct verdict v = decide_one(&f, "one");
    assert_true(v.start);
    assert_int_equal(v.mode, GF_LEASE_LOAN);
    /* The pair's cap binds a loan as it binds a copy (S2). */
    v = decide_one(&f, "two");
    assert_false(v.start);
    assert_string_equal(v.rule, "pairCap");
    /* A redirect-only group still needs the opt-in. */
    gf_dtk_done(&f);
    fx_init(&f, "redirect", NULL);
    assert_int_equal(gf_ledger_ns_set(f.l, "west", "team", false), 0);
    pending(&f, "one", 1, GF_WL_PENDING);
    v = decide_one(&f, "one");
    assert_false(v.start);
    assert_string_equal(v.rule, "acceptOverflow");
    gf_dtk_done(&f);
}

static void loan_lease(struct gf_dtk *f, const char *name, const char *origin,
                       const char *lender, enum gf_lease_phase ph,
                       int64_t created, int64_t expires)
{
    struct gf_lease l = gf_dtk_lease(name, name, lender, ph);
    l.mode = GF_LEASE_LOAN;
    l.origin_member = (char *)origin;
    l.gpus = 1;
    l.created_ms = l.started_ms = created;
    l.expires_ms = expires;
    assert_int_equal(gf_ledger_lease_set(f->l, &l), 0);
}

static const struct gf_action *action_for(const struct gf_dtk *f, const char *l)
{
    for (size_t i = 0; i < f->a.n; i++)
        if (f->a.v[i].lease != NULL && strcmp(f->a.v[i].lease, l) == 0)
            return &f->a.v[i];
    return NULL;
}

static void test_loan_renewed_only_while_used(void **state)
{
    (void)state;
    struct gf_dtk f;
    fx_init(&f, "loan", NULL);
    int64_t now = 10 * MIN;
    loan_lease(&f, "used", "east", "west", GF_LEASE_ACTIVE, 0, now + 10000);
    loan_lease(&f, "idle", "east", "west", GF_LEASE_ACTIVE, 0, now + 10000);
    loan_lease(&f, "late", "east", "west", GF_LEASE_PENDING, now - 6 * MIN,
               now);
    pending(&f, "used", 1, GF_WL_ADMITTED);
    pending(&f, "idle", 1, GF_WL_PENDING);
    pending(&f, "late", 1, GF_WL_PENDING);
    assert_int_equal(gf_decide(f.l, f.p, now, &f.a), 0);
    const struct gf_action *a = action_for(&f, "used");
    assert_non_null(a);
    assert_int_equal(a->kind, GF_ACT_RENEW);
    assert_int_equal(a->until_ms, now + 30000);
    /* A loan nothing uses runs out within one term. */
    assert_null(action_for(&f, "idle"));
    a = action_for(&f, "late");
    assert_non_null(a);
    assert_int_equal(a->kind, GF_ACT_WITHDRAW);
    assert_non_null(strstr(a->why.text, "hold was not reserved"));
    gf_dtk_done(&f);
}

/* Live loans of the origin ClusterQueue whose Workloads do not hold quota
 * yet count toward its borrowingLimit: without them a burst of decisions
 * raised a grant past the limit. A loan in use counts once, in what the
 * ClusterQueue borrows. */
static void test_borrowing_limit_counts_loans_not_yet_used(void **state)
{
    (void)state;
    struct gf_dtk f;
    fx_init(&f, "loan", NULL);
    quota(&f, "east", "a100", 4, 4);
    int64_t now = 10 * MIN;
    loan_lease(&f, "l1", "east", "west", GF_LEASE_ACTIVE, now, now + 30000);
    loan_lease(&f, "l2", "east", "west", GF_LEASE_PENDING, now, now + 30000);
    /* A loan that ended and one of another ClusterQueue do not count. */
    loan_lease(&f, "l3", "east", "west", GF_LEASE_RELEASED, now, now + 30000);
    pending(&f, "l1", 1, GF_WL_PENDING);
    pending(&f, "l2", 1, GF_WL_PENDING);
    pending(&f, "w", 3, GF_WL_PENDING);
    /* 4 - 2 granted or recorded = 2 < 3 */
    struct verdict v = decide_one(&f, "w");
    assert_false(v.start);
    assert_string_equal(v.rule, "borrowingLimit");
    assert_non_null(strstr(v.text, "may borrow 2 more"));
    pending(&f, "two", 2, GF_WL_PENDING);
    v = decide_one(&f, "two");
    assert_true(v.start);
    /* l1 in use: borrowed 1, one loan to come: still 2 of room, not 1. */
    pending(&f, "l1", 1, GF_WL_ADMITTED);
    v = decide_one(&f, "two");
    assert_true(v.start);
    v = decide_one(&f, "w");
    assert_false(v.start);
    assert_non_null(strstr(v.text, "may borrow 2 more"));
    gf_dtk_done(&f);
}

static void test_loan_suspect_and_fence_follow_the_borrower(void **state)
{
    (void)state;
    struct gf_dtk f;
    fx_init(&f, "loan", NULL);
    /* D(1+rho)+margin = 30s + 3s + 5s = 38s after the last heartbeat */
    int64_t hb = MIN, late = hb + 38000;
    loan_lease(&f, "lender-silent", "east", "west", GF_LEASE_ACTIVE, 0,
               late + MIN);
    loan_lease(&f, "borrower-silent", "north", "west", GF_LEASE_ACTIVE, 0,
               late + MIN);
    assert_int_equal(gf_ledger_member_set(f.l, "west", GF_FRESH_SUSPECT, hb),
                     0);
    assert_int_equal(gf_decide(f.l, f.p, late, &f.a), 0);
    const struct gf_action *a = action_for(&f, "lender-silent");
    assert_int_equal(a->kind, GF_ACT_SUSPECT);
    assert_string_equal(a->why.rule, "lenderFreshness");
    /* Suspect now; the lender silent past its fencing instant: no FENCE
     * (the hold stays while the grant may stand). */
    loan_lease(&f, "lender-silent", "east", "west", GF_LEASE_SUSPECT, 0,
               late + MIN);
    loan_lease(&f, "borrower-silent", "east", "north", GF_LEASE_ACTIVE, 0,
               late + MIN);
    gf_actions_free(&f.a);
    assert_int_equal(gf_decide(f.l, f.p, late + MIN, &f.a), 0);
    assert_null(action_for(&f, "lender-silent"));
    /* The borrower silent: Suspect, then FENCE at its fencing instant. */
    assert_int_equal(gf_ledger_member_set(f.l, "west", GF_FRESH_SYNCED, hb), 0);
    assert_int_equal(gf_ledger_member_set(f.l, "east", GF_FRESH_SUSPECT, hb),
                     0);
    gf_actions_free(&f.a);
    assert_int_equal(gf_decide(f.l, f.p, late - 1, &f.a), 0);
    a = action_for(&f, "borrower-silent");
    assert_int_equal(a->kind, GF_ACT_SUSPECT);
    assert_string_equal(a->why.rule, "borrowerFreshness");
    assert_null(action_for(&f, "lender-silent")); /* not yet */
    gf_actions_free(&f.a);
    assert_int_equal(gf_decide(f.l, f.p, late, &f.a), 0);
    a = action_for(&f, "lender-silent");
    assert_non_null(a);
    assert_int_equal(a->kind, GF_ACT_FENCE);
    assert_non_null(strstr(a->why.text, "borrower east"));
    /* A borrower without an agent is never assumed fenced. */
    loan_lease(&f, "no-agent", "north", "west", GF_LEASE_SUSPECT, 0,
               late + MIN);
    assert_int_equal(gf_ledger_member_set(f.l, "north", GF_FRESH_SUSPECT, hb),
                     0);
    gf_actions_free(&f.a);
    assert_int_equal(gf_decide(f.l, f.p, late + 10 * MIN, &f.a), 0);
    assert_null(action_for(&f, "no-agent"));
    gf_dtk_done(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loan_start_says_mode_and_why),
        cmocka_unit_test(test_hardware_flavor_is_not_lent),
        cmocka_unit_test(test_origin_outside_a_cohort_gets_no_loan),
        cmocka_unit_test(test_origin_borrowing_limit_binds),
        cmocka_unit_test(test_both_falls_back_to_a_redirect_and_says_why),
        cmocka_unit_test(test_both_prefers_a_loan_to_a_more_idle_copy),
        cmocka_unit_test(test_loan_obeys_the_caps_not_the_opt_in),
        cmocka_unit_test(test_loan_renewed_only_while_used),
        cmocka_unit_test(test_loan_suspect_and_fence_follow_the_borrower),
        cmocka_unit_test(test_borrowing_limit_counts_loans_not_yet_used),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
