/*
 * Tests for controller/metrics: the exact exposition text (format 0.0.4)
 * for counters and gauges with and without labels, escaping, the sort
 * order, clear, the all-or-nothing cap, and the rules promtool checks
 * (one HELP and one TYPE per family, before its samples, samples of a
 * family together).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/err.h"
#include "controller/metrics.h"

#define L(...)                                                                 \
    (const char *const[])                                                      \
    {                                                                          \
        __VA_ARGS__, NULL                                                      \
    }

static int64_t live_at_start;

static int setup(void **state)
{
    (void)state;
    live_at_start = gf_alloc_live();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(gf_alloc_live(), live_at_start);
    return 0;
}

/* Renders m into a fresh buffer and compares with want. */
static void assert_render(const struct gf_metrics *m, const char *want)
{
    struct gf_buf out = GF_BUF_INIT(1 << 20);
    assert_int_equal(gf_metrics_render(m, &out), 0);
    assert_string_equal(gf_buf_cstr(&out), want);
    gf_buf_free(&out);
}

static void test_counter_without_labels_reads_zero_then_sums(void **state)
{
    (void)state;
    struct gf_metrics *m = gf_metrics_new();
    struct gf_metric *c =
        gf_metrics_counter(m, "gpufed_decisions_total", "Decisions.", NULL);
    assert_render(m, "# HELP gpufed_decisions_total Decisions.\n"
                     "# TYPE gpufed_decisions_total counter\n"
                     "gpufed_decisions_total 0\n");
    gf_metric_add(c, 2.5, NULL);
    gf_metric_add(c, 1, NULL);
    assert_render(m, "# HELP gpufed_decisions_total Decisions.\n"
                     "# TYPE gpufed_decisions_total counter\n"
                     "gpufed_decisions_total 3.5\n");
    assert_int_equal(gf_metric_series(c), 1);
    gf_metrics_free(m);
}

static void test_gauge_with_labels_sorted_by_values(void **state)
{
    (void)state;
    struct gf_metrics *m = gf_metrics_new();
    struct gf_metric *g =
        gf_metrics_gauge(m, "gpufed_quota_nominal", "Nominal quota.",
                         L("member", "cluster_queue", "resource"));
    /* Nothing set yet: a labelled family has no series and is left out. */
    assert_render(m, "");
    gf_metric_set(g, 8, L("west", "team-a", "nvidia.com/gpu"));
    gf_metric_set(g, 16, L("east", "team-b", "nvidia.com/gpu"));
    gf_metric_set(g, 4, L("east", "team-a", "nvidia.com/gpu"));
    gf_metric_set(g, 2, L("east", "team-a", "cpu"));
    /* Setting again replaces, never adds a series. */
    gf_metric_set(g, 32, L("east", "team-b", "nvidia.com/gpu"));
    assert_int_equal(gf_metric_series(g), 4);
    assert_render(
        m, "# HELP gpufed_quota_nominal Nominal quota.\n"
           "# TYPE gpufed_quota_nominal gauge\n"
           "gpufed_quota_nominal{member=\"east\",cluster_queue=\"team-a\","
           "resource=\"cpu\"} 2\n"
           "gpufed_quota_nominal{member=\"east\",cluster_queue=\"team-a\","
           "resource=\"nvidia.com/gpu\"} 4\n"
           "gpufed_quota_nominal{member=\"east\",cluster_queue=\"team-b\","
           "resource=\"nvidia.com/gpu\"} 32\n"
           "gpufed_quota_nominal{member=\"west\",cluster_queue=\"team-a\","
           "resource=\"nvidia.com/gpu\"} 8\n");
    gf_metrics_free(m);
}

/*
 * Value by value: ("a", "z") before ("a!", "a"), although a compare of
 * the values joined with a comma would put "a!,a" first ('!' < ',').
 */
static void test_series_order_is_value_by_value(void **state)
{
    (void)state;
    struct gf_metrics *m = gf_metrics_new();
    struct gf_metric *g = gf_metrics_gauge(m, "g", "h", L("x", "y"));
    gf_metric_set(g, 3, L("ab", "a"));
    gf_metric_set(g, 2, L("a!", "a"));
    gf_metric_set(g, 1, L("a", "z"));
    gf_metric_set(g, 0, L("a", ""));
    assert_render(m, "# HELP g h\n"
                     "# TYPE g gauge\n"
                     "g{x=\"a\",y=\"\"} 0\n"
                     "g{x=\"a\",y=\"z\"} 1\n"
                     "g{x=\"a!\",y=\"a\"} 2\n"
                     "g{x=\"ab\",y=\"a\"} 3\n");
    gf_metrics_free(m);
}

static void test_families_sorted_by_name(void **state)
{
    (void)state;
    struct gf_metrics *m = gf_metrics_new();
    gf_metrics_gauge(m, "gpufed_members", "Members.", NULL);
    gf_metrics_counter(m, "gpufed_copies_total", "Copies.", NULL);
    gf_metrics_gauge(m, "gpufed:ratio", "Colon names are valid.", NULL);
    gf_metrics_gauge(m, "a_first", "A.", NULL);
    assert_render(m, "# HELP a_first A.\n"
                     "# TYPE a_first gauge\n"
                     "a_first 0\n"
                     "# HELP gpufed:ratio Colon names are valid.\n"
                     "# TYPE gpufed:ratio gauge\n"
                     "gpufed:ratio 0\n"
                     "# HELP gpufed_copies_total Copies.\n"
                     "# TYPE gpufed_copies_total counter\n"
                     "gpufed_copies_total 0\n"
                     "# HELP gpufed_members Members.\n"
                     "# TYPE gpufed_members gauge\n"
                     "gpufed_members 0\n");
    gf_metrics_free(m);
}

static void test_escaping_of_label_values_and_help(void **state)
{
    (void)state;
    struct gf_metrics *m = gf_metrics_new();
    struct gf_metric *g = gf_metrics_gauge(
        m, "gpufed_x", "Help with a \\ backslash,\na newline and \"quotes\".",
        L("v"));
    gf_metric_set(g, 1, L("back\\slash \"quoted\"\nnext line"));
    /* Help keeps its quotes: only label values escape them. */
    assert_render(
        m, "# HELP gpufed_x Help with a \\\\ backslash,\\na newline and "
           "\"quotes\".\n"
           "# TYPE gpufed_x gauge\n"
           "gpufed_x{v=\"back\\\\slash \\\"quoted\\\"\\nnext line\"} 1\n");
    gf_metrics_free(m);
}

static void test_values_shortest_round_trip_and_specials(void **state)
{
    (void)state;
    struct gf_metrics *m = gf_metrics_new();
    struct gf_metric *g = gf_metrics_gauge(m, "v", "h", L("k"));
    gf_metric_set(g, 0.1, L("a"));
    gf_metric_set(g, 1e21, L("b"));
    gf_metric_set(g, 123456789, L("c"));
    gf_metric_set(g, -2.5, L("d"));
    gf_metric_set(g, NAN, L("e"));
    gf_metric_set(g, INFINITY, L("f"));
    gf_metric_set(g, -INFINITY, L("g"));
    gf_metric_set(g, 1.0 / 3.0, L("h"));
    assert_render(m, "# HELP v h\n"
                     "# TYPE v gauge\n"
                     "v{k=\"a\"} 0.1\n"
                     "v{k=\"b\"} 1e+21\n"
                     "v{k=\"c\"} 123456789\n"
                     "v{k=\"d\"} -2.5\n"
                     "v{k=\"e\"} NaN\n"
                     "v{k=\"f\"} +Inf\n"
                     "v{k=\"g\"} -Inf\n"
                     "v{k=\"h\"} 0.3333333333333333\n");
    gf_metrics_free(m);
}

static void test_clear_drops_every_series(void **state)
{
    (void)state;
    struct gf_metrics *m = gf_metrics_new();
    struct gf_metric *g =
        gf_metrics_gauge(m, "gpufed_member_up", "Up.", L("member"));
    struct gf_metric *c =
        gf_metrics_counter(m, "gpufed_leases_total", "Leases.", L("member"));
    gf_metric_set(g, 1, L("east"));
    gf_metric_set(g, 1, L("west"));
    gf_metric_add(c, 2, L("west"));
    gf_metric_clear(g);
    assert_int_equal(gf_metric_series(g), 0);
    assert_render(m, "# HELP gpufed_leases_total Leases.\n"
                     "# TYPE gpufed_leases_total counter\n"
                     "gpufed_leases_total{member=\"west\"} 2\n");
    /* A series set after a clear starts from its new value. */
    gf_metric_set(g, 0, L("east"));
    assert_render(m, "# HELP gpufed_leases_total Leases.\n"
                     "# TYPE gpufed_leases_total counter\n"
                     "gpufed_leases_total{member=\"west\"} 2\n"
                     "# HELP gpufed_member_up Up.\n"
                     "# TYPE gpufed_member_up gauge\n"
                     "gpufed_member_up{member=\"east\"} 0\n");
    /* An unlabelled gauge cleared has no sample until it is set again. */
    struct gf_metric *u = gf_metrics_gauge(m, "gpufed_ready", "Ready.", NULL);
    gf_metric_clear(u);
    assert_int_equal(gf_metric_series(u), 0);
    gf_metric_add(u, -1, NULL); /* gauges go down too */
    assert_int_equal(gf_metric_series(u), 1);
    gf_metrics_free(m);
}

static void test_render_over_cap_leaves_buffer_unchanged(void **state)
{
    (void)state;
    struct gf_metrics *m = gf_metrics_new();
    struct gf_metric *g = gf_metrics_gauge(m, "gpufed_q", "Q.", L("queue"));
    char name[32];
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof(name), "team-%03d", i);
        gf_metric_set(g, i, L(name));
    }
    struct gf_buf out = GF_BUF_INIT(1000);
    assert_int_equal(gf_buf_puts(&out, "prefix\n"), 0);
    assert_int_equal(gf_metrics_render(m, &out), GF_E2BIG);
    assert_string_equal(gf_buf_cstr(&out), "prefix\n");
    gf_buf_free(&out);
    gf_metrics_free(m);
}

/* ---- promtool's rules on a mixed registry ------------------------------ */

static bool sample_of(const char *line, const char *name)
{
    size_t n = strlen(name);
    return strncmp(line, name, n) == 0 && (line[n] == '{' || line[n] == ' ');
}

/*
 * Walks the text line by line: each family has exactly one HELP, then one
 * TYPE, then its samples together; every sample belongs to the family
 * whose TYPE came last; no family name appears twice.
 */
static void check_exposition(char *text, size_t *families, size_t *samples)
{
    char seen[32][64];
    size_t nseen = 0;
    char cur[64] = "";
    bool want_type = false;
    *families = *samples = 0;
    for (char *line = text, *nl; *line != '\0'; line = nl + 1) {
        nl = strchr(line, '\n');
        assert_non_null(nl); /* every line ends with a newline */
        *nl = '\0';
        if (strncmp(line, "# HELP ", 7) == 0) {
            assert_false(want_type);
            const char *name = line + 7;
            size_t n = strcspn(name, " ");
            assert_true(n < sizeof(cur));
            memcpy(cur, name, n);
            cur[n] = '\0';
            for (size_t i = 0; i < nseen; i++)
                assert_string_not_equal(seen[i], cur);
            assert_true(nseen < 32);
            memcpy(seen[nseen++], cur, n + 1);
            want_type = true;
            (*families)++;
        } else if (strncmp(line, "# TYPE ", 7) == 0) {
            assert_true(want_type);
            assert_true(sample_of(line + 7, cur));
            const char *type = line + 7 + strlen(cur) + 1;
            assert_true(strcmp(type, "counter") == 0 ||
                        strcmp(type, "gauge") == 0);
            want_type = false;
        } else {
            assert_false(want_type);
            assert_true(cur[0] != '\0');
            assert_true(sample_of(line, cur));
            (*samples)++;
        }
    }
    assert_false(want_type);
}

static void test_exposition_rules_hold(void **state)
{
    (void)state;
    struct gf_metrics *m = gf_metrics_new();
    struct gf_metric *leases = gf_metrics_gauge(
        m, "gpufed_leases", "QuotaLeases by phase.", L("phase"));
    struct gf_metric *writes = gf_metrics_counter(
        m, "gpufed_writes_total", "Writes.", L("member", "verb", "code"));
    struct gf_metric *up =
        gf_metrics_gauge(m, "gpufed_member_synced", "Synced.", L("member"));
    gf_metrics_counter(m, "gpufed_policy_reloads_total", "Reloads.", NULL);
    gf_metrics_gauge(m, "gpufed_unused", "Never set.", L("x"));
    const char *phases[] = {"Pending", "Active", "Released", "Suspect"};
    for (int i = 0; i < 4; i++)
        gf_metric_set(leases, i, L(phases[i]));
    gf_metric_add(writes, 1, L("east", "PATCH", "200"));
    gf_metric_add(writes, 1, L("east", "PATCH", "409"));
    gf_metric_add(writes, 1, L("west", "POST", "201"));
    gf_metric_add(writes, 1, L("east", "PATCH", "200"));
    gf_metric_set(up, 1, L("east"));
    gf_metric_set(up, 0, L("we\"st\n"));

    struct gf_buf out = GF_BUF_INIT(1 << 20);
    assert_int_equal(gf_metrics_render(m, &out), 0);
    size_t families, samples;
    check_exposition(out.data, &families, &samples);
    assert_int_equal(families, 4); /* gpufed_unused has no series */
    assert_int_equal(samples, 4 + 3 + 2 + 1);
    gf_buf_free(&out);
    gf_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_counter_without_labels_reads_zero_then_sums, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gauge_with_labels_sorted_by_values,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_series_order_is_value_by_value,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_families_sorted_by_name, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_escaping_of_label_values_and_help,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_values_shortest_round_trip_and_specials, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clear_drops_every_series, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_render_over_cap_leaves_buffer_unchanged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exposition_rules_hold, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
