/*
 * Tests for common/json (paths, typed getters, Kubernetes quantities and
 * durations), common/rand and common/err.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/json.h"
#include "common/rand.h"

static int64_t baseline;

static void test_paths_and_typed_getters(void **state)
{
    (void)state;
    cJSON *o = cJSON_Parse(
        "{\"metadata\":{\"name\":\"w1\",\"labels\":{\"kueue.x-k8s.io/"
        "queue-name\":\"lq\"},\"annotations\":{\"a.b/c\":\"d\"}},"
        "\"spec\":{\"active\":false,\"priority\":100,\"big\":1e300,"
        "\"frac\":1.5},\"status\":null}");
    assert_non_null(o);
    assert_string_equal(gf_json_str(o, "metadata.name"), "w1");
    assert_null(gf_json_str(o, "metadata.missing"));
    assert_null(gf_json_str(o, "spec.priority")); /* wrong type */
    assert_null(gf_json_path(o, "metadata.name.deeper"));
    int64_t v;
    bool b = true;
    assert_int_equal(gf_json_int(o, "spec.priority", &v), 0);
    assert_int_equal(v, 100);
    assert_int_equal(gf_json_int(o, "spec.nope", &v), -ENOENT);
    assert_int_equal(gf_json_int(o, "spec.big", &v), -EINVAL);
    assert_int_equal(gf_json_int(o, "spec.frac", &v), -EINVAL);
    assert_int_equal(gf_json_int(o, "metadata.name", &v), -EINVAL);
    assert_int_equal(gf_json_bool(o, "spec.active", &b), 0);
    assert_false(b);
    assert_int_equal(gf_json_bool(o, "spec.priority", &b), -EINVAL);
    assert_string_equal(gf_json_label(o, "kueue.x-k8s.io/queue-name"), "lq");
    assert_null(gf_json_label(o, "other"));
    assert_string_equal(gf_json_annotation(o, "a.b/c"), "d");
    cJSON_Delete(o);
}

/* Keys from data are taken whole, dots and all; paths split at dots. */
static void test_keys_from_data_are_taken_whole(void **state)
{
    (void)state;
    cJSON *o = cJSON_Parse(
        "{\"flavors\":{\"nvidia.com/gpu\":\"a100\",\"cpu\":\"x\"},"
        "\"nvidia\":{\"com/gpu\":\"wrong\"},"
        "\"metadata\":{\"labels\":{\"kueue.x-k8s.io/queue-name\":\"lq\"}},"
        "\"n\":{\"a.b\":7,\"t\":true},\"s\":\"str\"}");
    assert_non_null(o);
    const char *res = "nvidia.com/gpu"; /* as read from a Workload */
    assert_string_equal(gf_json_as_str(GF_JSON_AT(o, "flavors", res)), "a100");
    const char *key = "kueue.x-k8s.io/queue-name";
    assert_string_equal(
        gf_json_as_str(GF_JSON_AT(o, "metadata", "labels", key)), "lq");
    /* The dotted path reads "nvidia", then "com/gpu": another field. */
    assert_string_equal(gf_json_str(o, "nvidia.com/gpu"), "wrong");
    assert_null(GF_JSON_AT(o, "flavors", "nvidia"));
    assert_null(GF_JSON_AT(o, "s", "x")); /* through a non-object */
    assert_null(GF_JSON_AT(NULL, "a"));
    int64_t v = 0;
    bool b = false;
    assert_int_equal(gf_json_as_int(GF_JSON_AT(o, "n", "a.b"), &v), 0);
    assert_int_equal(v, 7);
    assert_int_equal(gf_json_as_int(GF_JSON_AT(o, "n", "zz"), &v), -ENOENT);
    assert_int_equal(gf_json_as_bool(GF_JSON_AT(o, "n", "t"), &b), 0);
    assert_true(b);
    assert_int_equal(gf_json_as_bool(GF_JSON_AT(o, "s"), &b), -EINVAL);
    cJSON_Delete(o);
}

/*
 * A path segment longer than the lookup buffer can only be a typo in the
 * code (paths are literals): it stops the process rather than reading as
 * "absent". Checked in a child, which must die of SIGABRT.
 */
static void test_overlong_path_segment_is_a_bug(void **state)
{
    (void)state;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0)
            dup2(fd, STDERR_FILENO);
        cJSON *o = cJSON_CreateObject();
        (void)gf_json_path(o, "metadata.x"
                              "0123456789012345678901234567890123456789"
                              "0123456789012345678901234567890123456789"
                              "0123456789012345678901234567890123456789"
                              "0123456789012345678901234567890123456789"
                              "0123456789012345678901234567890123456789"
                              "0123456789012345678901234567890123456789"
                              "0123456789012345678901234567890123456789");
        _exit(0);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGABRT);
}

struct qcase {
    const char *in;
    int rc;
    int64_t milli;
};

static void test_quantities_as_kubernetes_reads_them(void **state)
{
    (void)state;
    static const struct qcase cases[] = {
        {"8", 0, 8000},
        {"0", 0, 0},
        {"500m", 0, 500},
        {"1.5", 0, 1500},
        {"0.1", 0, 100},
        {"1Ki", 0, 1024000},
        {"16Gi", 0, 17179869184000LL},
        {"2k", 0, 2000000},
        {"1M", 0, 1000000000},
        {"1e3", 0, 1000000},
        {"1E-3", 0, 1},
        {"100u", 0, 1}, /* rounds up, as Quantity.MilliValue does */
        {"1n", 0, 1},
        {"+3", 0, 3000},
        {"-2", 0, -2000},
        {"007", 0, 7000},
        {"", -EINVAL, 0},
        {"m", -EINVAL, 0},
        {"1.2.3", -EINVAL, 0},
        {"8 ", -EINVAL, 0},
        {"8gi", -EINVAL, 0},
        {"8Xi", -EINVAL, 0},
        {"1e", -EINVAL, 0},
        {"99999999999999999999", -ERANGE, 0},
        {"9000000E", -ERANGE, 0},
        {"16Ei", -ERANGE, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t m = -12345;
        int rc = gf_quantity_parse_milli(cases[i].in, &m);
        if (rc != cases[i].rc || (rc == 0 && m != cases[i].milli))
            fail_msg("quantity \"%s\": rc=%d milli=%lld, want rc=%d milli=%lld",
                     cases[i].in, rc, (long long)m, cases[i].rc,
                     (long long)cases[i].milli);
    }
    cJSON *n = cJSON_CreateNumber(4);
    cJSON *s = cJSON_CreateString("250m");
    cJSON *t = cJSON_CreateTrue();
    int64_t m;
    assert_int_equal(gf_json_quantity_milli(n, &m), 0);
    assert_int_equal(m, 4000);
    assert_int_equal(gf_json_quantity_milli(s, &m), 0);
    assert_int_equal(m, 250);
    assert_int_equal(gf_json_quantity_milli(t, &m), -EINVAL);
    cJSON_Delete(n);
    cJSON_Delete(s);
    cJSON_Delete(t);
}

static void test_durations(void **state)
{
    (void)state;
    static const struct qcase cases[] = {
        {"90s", 0, 90000},     {"5m", 0, 300000},    {"1h30m", 0, 5400000},
        {"250ms", 0, 250},     {"1.5s", 0, 1500},    {"0", 0, 0},
        {"2h", 0, 7200000},    {"1500us", 0, 1},     {"10ns", 0, 0},
        {"", -EINVAL, 0},      {"5", -EINVAL, 0},    {"s", -EINVAL, 0},
        {"-5s", -EINVAL, 0},   {"1e3s", -EINVAL, 0}, {"5d", -EINVAL, 0},
        {"1h 2m", -EINVAL, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t ms = -1;
        int rc = gf_duration_parse_ms(cases[i].in, &ms);
        if (rc != cases[i].rc || (rc == 0 && ms != cases[i].milli))
            fail_msg("duration \"%s\": rc=%d ms=%lld", cases[i].in, rc,
                     (long long)ms);
    }
}

static void test_parse_i64(void **state)
{
    (void)state;
    int64_t v;
    assert_int_equal(gf_parse_i64("42", &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(gf_parse_i64("-9223372036854775808", &v), 0);
    assert_int_equal(v, INT64_MIN);
    assert_int_equal(gf_parse_i64("9223372036854775808", &v), -ERANGE);
    assert_int_equal(gf_parse_i64("12a", &v), -EINVAL);
    assert_int_equal(gf_parse_i64("", &v), -EINVAL);
    assert_int_equal(gf_parse_i64(" 1", &v), -EINVAL);
    assert_int_equal(gf_parse_i64(NULL, &v), -EINVAL);
}

static void test_rand_is_seeded_and_bounded(void **state)
{
    (void)state;
    struct gf_rand a, b;
    gf_rand_seed(&a, 7);
    gf_rand_seed(&b, 7);
    for (int i = 0; i < 100; i++)
        assert_int_equal(gf_rand_u64(&a), gf_rand_u64(&b));
    gf_rand_seed(&b, 8);
    assert_int_not_equal(gf_rand_u64(&a), gf_rand_u64(&b));
    int seen[5] = {0};
    for (int i = 0; i < 10000; i++) {
        uint64_t x = gf_rand_range(&a, 10, 14);
        assert_in_range(x, 10, 14);
        seen[x - 10]++;
        double d = gf_rand_double(&a);
        assert_true(d >= 0.0 && d < 1.0);
    }
    for (int i = 0; i < 5; i++)
        assert_in_range(seen[i], 1700, 2300); /* uniform within 15% */
    assert_int_equal(gf_rand_range(&a, 3, 3), 3);
    (void)gf_rand_range(&a, 0, UINT64_MAX);
    struct gf_rand os;
    gf_rand_seed_os(&os);
    (void)gf_rand_u64(&os);
}

static void test_strerror_names_both_kinds(void **state)
{
    (void)state;
    assert_string_equal(gf_strerror(0), "success");
    assert_string_equal(gf_strerror(GF_EGONE),
                        "resource version expired (gone)");
    assert_string_equal(gf_strerror(GF_E2BIG), "input larger than its limit");
    assert_string_equal(gf_strerror(GF_ESTALE), "data not known to be current");
    assert_string_equal(gf_strerror(-ENOENT), "No such file or directory");
    assert_string_equal(gf_strerror(GF_EBASE), "unknown error");
    assert_string_equal(gf_strerror(GF_ELAST), "unknown error");
    assert_string_equal(gf_strerror(5), "unknown error");
    for (int e = GF_EBASE + 1; e < GF_ELAST; e++)
        assert_non_null(gf_strerror(e));
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(gf_alloc_live(), baseline);
    return 0;
}

static void test_conditions_by_type(void **state)
{
    (void)state;
    cJSON *conds = cJSON_Parse(
        "[{\"type\":\"QuotaReserved\",\"status\":\"True\"},"
        "{\"type\":\"Admitted\",\"status\":\"False\"},{\"status\":\"True\"}]");
    assert_true(gf_json_cond_true(conds, "QuotaReserved"));
    assert_false(gf_json_cond_true(conds, "Admitted"));
    assert_non_null(gf_json_cond(conds, "Admitted"));
    assert_null(gf_json_cond(conds, "Finished"));
    assert_false(gf_json_cond_true(conds, "Finished"));
    assert_null(gf_json_cond(NULL, "Finished"));
    assert_false(gf_json_cond_true(NULL, "Finished"));
    /* ensure appends once, then finds the same element */
    cJSON *f = gf_json_cond_ensure(conds, "Finished");
    assert_ptr_equal(gf_json_cond_ensure(conds, "Finished"), f);
    assert_int_equal(cJSON_GetArraySize(conds), 4);
    gf_json_set_str(f, "status", "False");
    gf_json_set_str(f, "status", "True");
    assert_true(gf_json_cond_true(conds, "Finished"));
    assert_int_equal(cJSON_GetArraySize(f), 2);
    cJSON_Delete(conds);
}

int main(void)
{
    assert_int_equal(gf_alloc_global_init(), 0);
    baseline = gf_alloc_live();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_paths_and_typed_getters, teardown),
        cmocka_unit_test_teardown(test_keys_from_data_are_taken_whole,
                                  teardown),
        cmocka_unit_test_teardown(test_overlong_path_segment_is_a_bug,
                                  teardown),
        cmocka_unit_test_teardown(test_quantities_as_kubernetes_reads_them,
                                  teardown),
        cmocka_unit_test_teardown(test_durations, teardown),
        cmocka_unit_test_teardown(test_parse_i64, teardown),
        cmocka_unit_test_teardown(test_conditions_by_type, teardown),
        cmocka_unit_test_teardown(test_rand_is_seeded_and_bounded, teardown),
        cmocka_unit_test_teardown(test_strerror_names_both_kinds, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_alloc_global_cleanup();
    return rc;
}
