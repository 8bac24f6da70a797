/*
 * Tests for kubesim's fault table: identity matching, expiry on the
 * manual clock with listener calls, bursts that end after count
 * requests, the Kueue-frozen query, and the admin endpoint's JSON form
 * (good and bad specs).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "e2e/kubesim/fault.h"
#include "kubeclient/global.h"

struct fx {
    struct gf_clock clk;
    struct gf_ks_faults *f;
    int added, ended;
    int64_t baseline;
};

static void listener(void *data, enum gf_ks_fault_change ch,
                     const struct gf_ks_fault *ft)
{
    struct fx *x = data;
    if (ch == GF_KS_FAULT_ADDED) {
        assert_non_null(ft);
        x->added++;
    } else {
        assert_null(ft);
        x->ended++;
    }
}

static int setup(void **state)
{
    struct fx *x = calloc(1, sizeof(*x));
    x->baseline = gf_alloc_live();
    gf_clock_init_manual(&x->clk, 0, 1700000000000);
    x->f = gf_ks_faults_new(&x->clk);
    gf_ks_faults_listen(x->f, listener, x);
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    struct fx *x = *state;
    gf_ks_faults_free(x->f);
    assert_int_equal(gf_clock_active_timers(&x->clk), 0);
    gf_clock_close(&x->clk);
    assert_int_equal(gf_alloc_live(), x->baseline);
    free(x);
    return 0;
}

static void test_identity_matching(void **state)
{
    struct fx *x = *state;
    struct gf_ks_fault_spec hub = {.kind = GF_KS_FAULT_BLACKHOLE,
                                   .identity = "gpufed-hub"};
    assert_true(gf_ks_faults_add(x->f, &hub) > 0);
    assert_int_equal(x->added, 1);
    enum gf_ks_fault_kind k = GF_KS_FAULT_BLACKHOLE;
    assert_non_null(gf_ks_faults_match(x->f, k, "gpufed-hub", "u"));
    /* By user name as well as by identity name. */
    assert_non_null(gf_ks_faults_match(x->f, k, NULL, "gpufed-hub"));
    assert_null(gf_ks_faults_match(x->f, k, "admin", "kubesim-admin"));
    assert_null(gf_ks_faults_match(x->f, k, NULL, NULL));
    assert_null(
        gf_ks_faults_match(x->f, GF_KS_FAULT_RESET, "gpufed-hub", NULL));
    struct gf_ks_fault_spec all = {.kind = GF_KS_FAULT_RESET};
    assert_true(gf_ks_faults_add(x->f, &all) > 0);
    assert_non_null(gf_ks_faults_match(x->f, GF_KS_FAULT_RESET, NULL, NULL));
    assert_non_null(
        gf_ks_faults_match(x->f, GF_KS_FAULT_RESET, "admin", "kubesim-admin"));
    gf_ks_faults_clear(x->f);
    assert_int_equal(x->ended, 1);
    assert_int_equal(gf_ks_faults_count(x->f), 0);
    /* Clearing an empty table tells nobody. */
    gf_ks_faults_clear(x->f);
    assert_int_equal(x->ended, 1);
}

static void test_expiry_on_clock(void **state)
{
    struct fx *x = *state;
    struct gf_ks_fault_spec a = {.kind = GF_KS_FAULT_KUEUE_FROZEN,
                                 .for_ms = 1000};
    struct gf_ks_fault_spec b = {
        .kind = GF_KS_FAULT_LATENCY, .latency_ms = 50, .for_ms = 3000};
    assert_true(gf_ks_faults_add(x->f, &b) > 0);
    assert_true(gf_ks_faults_add(x->f, &a) > 0);
    assert_true(gf_ks_faults_kueue_frozen(x->f));
    gf_clock_advance(&x->clk, 999);
    assert_true(gf_ks_faults_kueue_frozen(x->f));
    assert_int_equal(x->ended, 0);
    gf_clock_advance(&x->clk, 1);
    assert_false(gf_ks_faults_kueue_frozen(x->f));
    assert_int_equal(x->ended, 1);
    assert_int_equal(gf_ks_faults_count(x->f), 1);
    gf_clock_advance(&x->clk, 2000);
    assert_int_equal(x->ended, 2);
    assert_int_equal(gf_ks_faults_count(x->f), 0);
    assert_int_equal(gf_clock_active_timers(&x->clk), 0);
    assert_false(gf_ks_faults_kueue_frozen(NULL));
}

static void test_burst_count(void **state)
{
    struct fx *x = *state;
    struct gf_ks_fault_spec s = {
        .kind = GF_KS_FAULT_5XX, .count = 2, .code = 500, .retry_after_s = 4};
    assert_true(gf_ks_faults_add(x->f, &s) > 0);
    struct gf_ks_fault ft;
    assert_true(gf_ks_faults_take(x->f, GF_KS_FAULT_5XX, "a", "b", &ft));
    assert_int_equal(ft.code, 500);
    assert_int_equal(ft.retry_after_s, 4);
    assert_int_equal(x->ended, 0);
    assert_true(gf_ks_faults_take(x->f, GF_KS_FAULT_5XX, "a", "b", &ft));
    assert_int_equal(x->ended, 1);
    assert_false(gf_ks_faults_take(x->f, GF_KS_FAULT_5XX, "a", "b", &ft));
    /* Defaults: 503 without Retry-After; a 429 is always 429, after 1 s. */
    struct gf_ks_fault_spec d = {.kind = GF_KS_FAULT_5XX};
    struct gf_ks_fault_spec t = {.kind = GF_KS_FAULT_429, .code = 503};
    assert_true(gf_ks_faults_add(x->f, &d) > 0);
    assert_true(gf_ks_faults_add(x->f, &t) > 0);
    assert_true(gf_ks_faults_take(x->f, GF_KS_FAULT_5XX, NULL, NULL, &ft));
    assert_int_equal(ft.code, 503);
    assert_int_equal(ft.retry_after_s, 0);
    assert_true(gf_ks_faults_take(x->f, GF_KS_FAULT_429, NULL, NULL, &ft));
    assert_int_equal(ft.code, 429);
    assert_int_equal(ft.retry_after_s, 1);
}

static void test_bad_specs_refused(void **state)
{
    struct fx *x = *state;
    struct gf_ks_fault_spec lat = {.kind = GF_KS_FAULT_LATENCY};
    struct gf_ks_fault_spec code = {.kind = GF_KS_FAULT_5XX, .code = 404};
    struct gf_ks_fault_spec kind = {.kind = GF_KS_FAULT_NKINDS};
    assert_int_equal(gf_ks_faults_add(x->f, &lat), -EINVAL);
    assert_int_equal(gf_ks_faults_add(x->f, &code), -EINVAL);
    assert_int_equal(gf_ks_faults_add(x->f, &kind), -EINVAL);
    assert_int_equal(x->added, 0);
}

struct jcase {
    const char *json;
    bool ok;
};

static const struct jcase jcases[] = {
    {"{\"kind\":\"blackhole\"}", true},
    {"{\"kind\":\"429\",\"identity\":\"gpufed-hub\",\"forMs\":5000,"
     "\"retryAfterSeconds\":2,\"count\":3}",
     true},
    {"{\"kind\":\"latency\",\"latencyMs\":200}", true},
    {"{\"kind\":\"5xx\",\"code\":502}", true},
    {"{\"kind\":\"kueue-frozen\",\"identity\":null}", true},
    {"{\"kind\":\"latency\"}", false},
    {"{\"kind\":\"5xx\",\"code\":418}", false},
    {"{\"kind\":\"meteor\"}", false},
    {"{}", false},
    {"{\"kind\":\"reset\",\"forMs\":-1}", false},
    {"{\"kind\":\"reset\",\"forMs\":\"10\"}", false},
    {"{\"kind\":\"reset\",\"identity\":7}", false},
    {"{\"kind\":\"reset\",\"forMs\":1e300}", false},
};

static void test_json_specs(void **state)
{
    struct fx *x = *state;
    for (size_t i = 0; i < sizeof(jcases) / sizeof(jcases[0]); i++) {
        cJSON *j = cJSON_Parse(jcases[i].json);
        assert_non_null(j);
        struct gf_ks_fault_spec s;
        const char *why = NULL;
        int rc = gf_ks_fault_spec_from_json(j, &s, &why);
        if (jcases[i].ok && rc != 0)
            fail_msg("%s refused: %s", jcases[i].json, why);
        if (!jcases[i].ok && (rc == 0 || why == NULL))
            fail_msg("%s accepted", jcases[i].json);
        if (rc == 0)
            assert_true(gf_ks_faults_add(x->f, &s) > 0);
        cJSON_Delete(j);
    }
    gf_clock_advance(&x->clk, 1000);
    cJSON *arr = gf_ks_faults_to_json(x->f);
    assert_int_equal(cJSON_GetArraySize(arr), 5);
    const cJSON *second = cJSON_GetArrayItem(arr, 1);
    assert_string_equal(cJSON_GetObjectItem(second, "identity")->valuestring,
                        "gpufed-hub");
    assert_int_equal(cJSON_GetObjectItem(second, "remainingMs")->valueint,
                     4000);
    assert_int_equal(cJSON_GetObjectItem(second, "count")->valueint, 3);
    cJSON_Delete(arr);
}

static void test_kind_names_round_trip(void **state)
{
    (void)state;
    for (int k = 0; k < GF_KS_FAULT_NKINDS; k++) {
        enum gf_ks_fault_kind back;
        const char *name = gf_ks_fault_kind_name((enum gf_ks_fault_kind)k);
        assert_non_null(name);
        assert_int_equal(gf_ks_fault_kind_parse(name, &back), 0);
        assert_int_equal(back, k);
    }
    assert_null(gf_ks_fault_kind_name(GF_KS_FAULT_NKINDS));
}

int main(void)
{
    if (gf_kube_global_init() != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_identity_matching, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_expiry_on_clock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_burst_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_specs_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_json_specs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kind_names_round_trip, setup,
                                        teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    gf_kube_global_cleanup();
    return failed;
}
