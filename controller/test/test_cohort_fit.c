/*
 * Tests for controller/cohort_fit: after the fenced agent reverted a
 * cohort's loan grants, which Workloads it stops so that the cohort fits
 * its own quota again. Each test is one case of the rule, named after it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "controller/cohort_fit.h"

#define GPU "nvidia.com/gpu"

static const struct gf_fit_amount gpu0[] = {{"a100", GPU, 0}};
static const struct gf_fit_amount gpu2[] = {{"a100", GPU, 2000}};
static const struct gf_fit_amount gpu4[] = {{"a100", GPU, 4000}};
static const struct gf_fit_amount own2[] = {{"a100", "cpu", 64000},
                                            {"a100", GPU, 2000}};
static const struct gf_fit_amount h100x4[] = {{"h100", GPU, 4000}};

/* east's cohort ml: ml-gpu (2 GPUs), ml-other (0), the reverted grant. */
static const struct gf_fit_cq ml[] = {
    {.name = "ml-gpu", .cohort = "ml", .nominal = own2, .n_nominal = 2},
    {.name = "ml-other", .cohort = "ml", .nominal = gpu0, .n_nominal = 1},
    {.name = "gpufed-loan-ml-gpu",
     .cohort = "ml",
     .nominal = gpu0,
     .n_nominal = 1,
     .lease = "loan-1"},
};

static struct gf_fit_wl wl(const char *key, const char *cq,
                           const struct gf_fit_amount *uses, int64_t t)
{
    return (struct gf_fit_wl){
        .key = key, .cq = cq, .uses = uses, .n_uses = 1, .admitted_ms = t};
}

static size_t plan(const struct gf_fit_cq *cqs, size_t n_cqs,
                   const struct gf_fit_wl *wls, size_t n_wls,
                   struct gf_fit_stop *out)
{
    size_t n = gf_fit_plan(cqs, n_cqs, wls, n_wls, out);
    assert_true(n <= n_wls);
    return n;
}

static void test_unmarked_workload_on_the_grant_is_stopped(void **state)
{
    (void)state;
    /* sneak was admitted on the grant ahead of the loan's W: 6 GPUs on a
     * quota of 2 once the grant is 0. */
    const struct gf_fit_wl w[] = {
        wl("ml/own", "ml-gpu", gpu2, 100),
        wl("ml/sneak", "ml-other", gpu4, 200),
    };
    struct gf_fit_stop out[2];
    assert_int_equal(plan(ml, 3, w, 2, out), 1);
    assert_int_equal(out[0].wl, 1);
    assert_string_equal(out[0].cohort, "ml");
    assert_string_equal(out[0].lease, "loan-1");
    assert_string_equal(out[0].flavor, "a100");
    assert_string_equal(out[0].resource, GPU);
    assert_int_equal(out[0].used_milli, 6000);
    assert_int_equal(out[0].nominal_milli, 2000);
    assert_int_equal(gf_alloc_live(), 0);
}

static void test_newest_admitted_stopped_first_until_it_fits(void **state)
{
    (void)state;
    const struct gf_fit_wl w[] = {
        wl("ml/b", "ml-other", gpu2, 200),
        wl("ml/a", "ml-gpu", gpu2, 100),
        wl("ml/c", "ml-other", gpu2, 300),
    };
    struct gf_fit_stop out[3];
    assert_int_equal(plan(ml, 3, w, 3, out), 2);
    assert_int_equal(out[0].wl, 2); /* c, the newest */
    assert_int_equal(out[0].used_milli, 6000);
    assert_int_equal(out[1].wl, 0); /* then b: 4 GPUs still on 2 */
    assert_int_equal(out[1].used_milli, 4000);
}

static void test_loan_marked_ones_count_as_gone_first(void **state)
{
    (void)state;
    /* The fence stops the marked W anyway: without it the cohort fits,
     * and nothing else is stopped though W is the newest. */
    struct gf_fit_wl w[] = {
        wl("ml/w", "ml-gpu", gpu4, 300),
        wl("ml/b", "ml-other", gpu2, 200),
    };
    w[0].leaving = true;
    struct gf_fit_stop out[2];
    assert_int_equal(plan(ml, 3, w, 2, out), 0);
    /* Counted, it would have put the cohort over. */
    w[0].leaving = false;
    assert_int_equal(plan(ml, 3, w, 2, out), 1);
    assert_int_equal(out[0].wl, 0);
}

static void test_a_hold_counts_but_is_never_stopped(void **state)
{
    (void)state;
    struct gf_fit_wl w[] = {
        wl("gpufed-system/gpufed-hold-x", "ml-other", gpu2, 300),
        wl("ml/a", "ml-gpu", gpu2, 100),
    };
    w[0].keep = true;
    struct gf_fit_stop out[2];
    assert_int_equal(plan(ml, 3, w, 2, out), 1);
    assert_int_equal(out[0].wl, 1);
    /* A hold of 4 alone is over the quota of 2: a is stopped, and the
     * plan ends there, with nothing more it may stop. */
    w[0].uses = gpu4;
    assert_int_equal(plan(ml, 3, w, 2, out), 1);
    assert_int_equal(out[0].wl, 1);
}

static void test_a_cohort_without_a_reverted_grant_is_left_alone(void **state)
{
    (void)state;
    /* Over its quota (an admin lowered it) but no grant of ours: not the
     * fence's business. A grant still lending (no lease given) neither. */
    const struct gf_fit_cq cqs[] = {
        {.name = "team", .cohort = "other", .nominal = gpu0, .n_nominal = 1},
        {.name = "gpufed-loan-ml-gpu",
         .cohort = "ml",
         .nominal = gpu0,
         .n_nominal = 1},
        {.name = "ml-gpu", .cohort = "ml", .nominal = gpu2, .n_nominal = 1},
    };
    const struct gf_fit_wl w[] = {
        wl("t/x", "team", gpu2, 100),
        wl("ml/a", "ml-gpu", gpu4, 100),
    };
    struct gf_fit_stop out[2];
    assert_int_equal(plan(cqs, 3, w, 2, out), 0);
}

static void test_only_the_grants_cells_are_counted(void **state)
{
    (void)state;
    /* x uses another flavor, which the grant never lent: left running. */
    const struct gf_fit_wl w[] = {
        wl("ml/x", "ml-other", h100x4, 900),
        wl("ml/a", "ml-gpu", gpu2, 100),
        wl("ml/b", "ml-other", gpu2, 200),
        wl("ml/pending", NULL, gpu4, 0),
    };
    struct gf_fit_stop out[4];
    assert_int_equal(plan(ml, 3, w, 4, out), 1);
    assert_int_equal(out[0].wl, 2);
}

static void test_the_same_plan_whatever_the_input_order(void **state)
{
    (void)state;
    /* Two grants in one cohort: the lease is the one of the grant with
     * the smallest name; equal admission times fall back to the key. */
    const struct gf_fit_cq cqs[] = {
        {.name = "gpufed-loan-b",
         .cohort = "ml",
         .nominal = gpu0,
         .n_nominal = 1,
         .lease = "loan-b"},
        {.name = "ml-gpu", .cohort = "ml", .nominal = gpu2, .n_nominal = 1},
        {.name = "gpufed-loan-a",
         .cohort = "ml",
         .nominal = gpu0,
         .n_nominal = 1,
         .lease = "loan-a"},
    };
    const struct gf_fit_cq rev[] = {cqs[2], cqs[1], cqs[0]};
    const struct gf_fit_wl w[] = {
        wl("ml/p", "ml-gpu", gpu2, 100),
        wl("ml/q", "ml-gpu", gpu2, 100),
    };
    const struct gf_fit_wl wr[] = {w[1], w[0]};
    struct gf_fit_stop out[2], out2[2];
    assert_int_equal(plan(cqs, 3, w, 2, out), 1);
    assert_int_equal(plan(rev, 3, wr, 2, out2), 1);
    assert_string_equal(out[0].lease, "loan-a");
    assert_string_equal(out2[0].lease, "loan-a");
    assert_string_equal(w[out[0].wl].key, "ml/q");
    assert_string_equal(wr[out2[0].wl].key, "ml/q");
}

int main(void)
{
    gf_alloc_global_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unmarked_workload_on_the_grant_is_stopped),
        cmocka_unit_test(test_newest_admitted_stopped_first_until_it_fits),
        cmocka_unit_test(test_loan_marked_ones_count_as_gone_first),
        cmocka_unit_test(test_a_hold_counts_but_is_never_stopped),
        cmocka_unit_test(test_a_cohort_without_a_reverted_grant_is_left_alone),
        cmocka_unit_test(test_only_the_grants_cells_are_counted),
        cmocka_unit_test(test_the_same_plan_whatever_the_input_order),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    return rc == 0 && gf_alloc_live() == 0 ? 0 : 1;
}
