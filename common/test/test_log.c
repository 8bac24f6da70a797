/*
 * Tests for common/log: logfmt shape, quoting of every %s, levels checked
 * before arguments are evaluated, truncation without allocation.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/log.h"

static char last[8192];
static int lines;
static enum gf_log_level last_level;

static void capture(void *data, enum gf_log_level level, const char *line,
                    size_t len)
{
    (void)data;
    assert_int_equal(strlen(line), len);
    memcpy(last, line, len + 1);
    last_level = level;
    lines++;
}

static int setup(void **state)
{
    (void)state;
    lines = 0;
    last[0] = '\0';
    gf_log_set_sink(capture, NULL);
    gf_log_set_fixed_time("2026-11-24T10:00:00.000Z");
    gf_log_set_level(GF_LOG_DEBUG);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    gf_log_set_sink(NULL, NULL);
    gf_log_set_fixed_time(NULL);
    gf_log_set_level(GF_LOG_INFO);
    return 0;
}

static void test_line_has_context_and_fields(void **state)
{
    (void)state;
    struct gf_log_ctx lc = {
        .comp = "reflector", .cluster = "east", .key = "ns/name", .rid = 42};
    GF_LOG(&lc, GF_LOG_INFO, "watch restarted", "rv=%s reason=%s n=%d", "123",
           "expired", 7);
    assert_string_equal(last,
                        "ts=2026-11-24T10:00:00.000Z level=info "
                        "comp=reflector cluster=east key=ns/name rid=42 "
                        "msg=\"watch restarted\" rv=123 reason=expired n=7");
    assert_int_equal(last_level, GF_LOG_INFO);
}

static void test_string_values_are_quoted_and_escaped(void **state)
{
    (void)state;
    GF_LOG(NULL, GF_LOG_WARN, "x", "a=%s b=%s c=%s d=%s", "two words",
           "q\"uote", "", "line\nbreak\x01");
    assert_string_equal(last, "ts=2026-11-24T10:00:00.000Z level=warn msg=x "
                              "a=\"two words\" b=\"q\\\"uote\" c=\"\" "
                              "d=\"line\\nbreak\\x01\"");
}

static void test_numeric_conversions(void **state)
{
    (void)state;
    GF_LOG(NULL, GF_LOG_ERROR, "n",
           "a=%zu b=%lld c=%llu d=%ld e=%u f=%.2f g=%x pct=100%%", (size_t)5,
           (long long)-9, (unsigned long long)10, (long)-3, 4u, 1.5, 255u);
    assert_string_equal(last, "ts=2026-11-24T10:00:00.000Z level=error msg=n "
                              "a=5 b=-9 c=10 d=-3 e=4 f=1.50 g=ff pct=100%");
}

static int evaluated;
static const char *side_effect(void)
{
    evaluated++;
    return "v";
}

static void test_level_checked_before_arguments(void **state)
{
    (void)state;
    gf_log_set_level(GF_LOG_WARN);
    evaluated = 0;
    GF_LOG(NULL, GF_LOG_DEBUG, "hot path", "v=%s", side_effect());
    GF_LOG(NULL, GF_LOG_INFO, "hot path", "v=%s", side_effect());
    assert_int_equal(evaluated, 0);
    assert_int_equal(lines, 0);
    GF_LOG(NULL, GF_LOG_WARN, "shown", "v=%s", side_effect());
    assert_int_equal(evaluated, 1);
    assert_int_equal(lines, 1);
    gf_log_set_level(GF_LOG_OFF);
    GF_LOG(NULL, GF_LOG_ERROR, "hidden", "");
    assert_int_equal(lines, 1);
}

static void test_long_line_is_truncated_and_marked(void **state)
{
    (void)state;
    static char big[10000];
    memset(big, 'a', sizeof(big) - 1);
    int64_t before = gf_alloc_live();
    GF_LOG(NULL, GF_LOG_INFO, "big", "v=%s after=%d", big, 1);
    assert_int_equal(gf_alloc_live(), before); /* logging never allocates */
    assert_true(strlen(last) < 4096);
    assert_non_null(strstr(last, " truncated=1"));
}

static void test_parse_level(void **state)
{
    (void)state;
    enum gf_log_level l;
    assert_int_equal(gf_log_parse_level("debug", &l), 0);
    assert_int_equal(l, GF_LOG_DEBUG);
    assert_int_equal(gf_log_parse_level("warning", &l), 0);
    assert_int_equal(l, GF_LOG_WARN);
    assert_int_equal(gf_log_parse_level("off", &l), 0);
    assert_int_equal(l, GF_LOG_OFF);
    assert_int_equal(gf_log_parse_level("loud", &l), -EINVAL);
}

static void test_quote_respects_capacity(void **state)
{
    (void)state;
    char out[8];
    assert_int_equal(gf_log_quote(out, sizeof(out), "plain"), 5);
    assert_string_equal(out, "plain");
    size_t n = gf_log_quote(out, sizeof(out), "has space here");
    assert_int_equal(n, 7);
    assert_string_equal(out, "\"has sp");
    assert_int_equal(gf_log_quote(out, sizeof(out), "a=b"), 5);
    assert_string_equal(out, "\"a=b\"");
    assert_int_equal(gf_log_quote(out, 1, "x"), 0);
    assert_string_equal(out, "");
}

int main(void)
{
    assert_int_equal(gf_alloc_global_init(), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_line_has_context_and_fields, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_string_values_are_quoted_and_escaped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_numeric_conversions, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_level_checked_before_arguments,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_line_is_truncated_and_marked,
                                        setup, teardown),
        cmocka_unit_test(test_parse_level),
        cmocka_unit_test(test_quote_respects_capacity),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_alloc_global_cleanup();
    return rc;
}
