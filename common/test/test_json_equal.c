/*
 * Tests for gf_json_equal (common/json.h): member order does not matter,
 * array order does, numbers compare by value, and a deep tree compares in
 * linear time (cJSON_Compare would take 2^60 steps on the first case).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/json.h"

static int64_t baseline;

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(gf_alloc_live(), baseline);
    return 0;
}

/* A chain of objects depth levels deep, each with two members. */
static cJSON *deep_tree(int depth, int leaf)
{
    cJSON *o = cJSON_CreateObject();
    if (depth == 0) {
        cJSON_AddNumberToObject(o, "v", leaf);
        return o;
    }
    cJSON_AddItemToObject(o, "a", deep_tree(depth - 1, leaf));
    cJSON_AddNumberToObject(o, "b", depth);
    return o;
}

static void test_json_equal(void **state)
{
    (void)state;
    /*
     * 60 levels: comparing every member twice per level (as cJSON_Compare
     * does) would take 2^60 steps; this must be instant.
     */
    cJSON *a = deep_tree(60, 1), *b = deep_tree(60, 1), *c = deep_tree(60, 2);
    assert_true(gf_json_equal(a, b));
    assert_false(gf_json_equal(a, c));
    cJSON_Delete(a);
    cJSON_Delete(b);
    cJSON_Delete(c);
    static const struct {
        const char *x, *y;
        bool eq;
    } cases[] = {
        {"{\"a\":1,\"b\":[1,{\"c\":null}]}", "{\"b\":[1,{\"c\":null}],\"a\":1}",
         true},
        {"{\"a\":1}", "{\"a\":1,\"b\":2}", false},
        {"{\"a\":1,\"b\":2}", "{\"a\":1,\"c\":2}", false},
        {"[1,2]", "[2,1]", false},
        {"[1,2]", "[1,2,3]", false},
        {"{\"a\":1,\"a\":2}", "{\"a\":1,\"a\":2}", true},
        {"1", "1.0", true},
        {"1", "\"1\"", false},
        {"true", "false", false},
        {"null", "null", true},
        {"{}", "[]", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *x = cJSON_Parse(cases[i].x), *y = cJSON_Parse(cases[i].y);
        assert_int_equal(gf_json_equal(x, y), cases[i].eq);
        assert_int_equal(gf_json_equal(y, x), cases[i].eq);
        cJSON_Delete(x);
        cJSON_Delete(y);
    }
    assert_true(gf_json_equal(NULL, NULL));
    cJSON *n = cJSON_CreateNull();
    assert_false(gf_json_equal(n, NULL));
    cJSON_Delete(n);
}

int main(void)
{
    assert_int_equal(gf_alloc_global_init(), 0);
    baseline = gf_alloc_live();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_json_equal, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_alloc_global_cleanup();
    return rc;
}
