/*
 * Tests for common/alloc: the counter is exact across every entry point and
 * the libraries' hooks really route through it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <uv.h>

#include "common/alloc.h"

static int64_t baseline;

static void test_counts_every_entry_point(void **state)
{
    (void)state;
    int64_t live = gf_alloc_live(), bytes = gf_alloc_live_bytes();
    char *a = gf_malloc(10);
    char *b = gf_calloc(4, 8);
    char *c = gf_strdup("hello");
    char *d = gf_strndup("hello world", 5);
    assert_int_equal(gf_alloc_live(), live + 4);
    assert_int_equal(gf_alloc_live_bytes(), bytes + 10 + 32 + 6 + 6);
    assert_string_equal(d, "hello");
    for (int i = 0; i < 32; i++)
        assert_int_equal(b[i], 0);
    a = gf_realloc(a, 1000);
    assert_int_equal(gf_alloc_live(), live + 4);
    assert_int_equal(gf_alloc_live_bytes(), bytes + 1000 + 32 + 6 + 6);
    GF_FREE(a);
    assert_null(a);
    gf_free(b);
    gf_free(c);
    gf_free(d);
    gf_free(NULL);
    assert_int_equal(gf_alloc_live(), live);
    assert_int_equal(gf_alloc_live_bytes(), bytes);
}

static void test_realloc_null_is_malloc_and_keeps_alignment(void **state)
{
    (void)state;
    void *p = gf_realloc(NULL, 24);
    assert_int_equal((uintptr_t)p % _Alignof(max_align_t), 0);
    gf_free(p);
    assert_int_equal(gf_alloc_live(), baseline);
}

static void test_cjson_goes_through_the_counter(void **state)
{
    (void)state;
    uint64_t before = gf_alloc_total();
    cJSON *j = cJSON_Parse("{\"a\":[1,2,{\"b\":\"c\"}]}");
    assert_non_null(j);
    assert_true(gf_alloc_total() > before);
    assert_true(gf_alloc_live() > baseline);
    char *s = cJSON_PrintUnformatted(j);
    assert_string_equal(s, "{\"a\":[1,2,{\"b\":\"c\"}]}");
    cJSON_free(s);
    cJSON_Delete(j);
    assert_int_equal(gf_alloc_live(), baseline);
}

static void test_libuv_goes_through_the_counter(void **state)
{
    (void)state;
    uint64_t before = gf_alloc_total();
    uv_loop_t *loop = uv_loop_new(); /* allocates through the hook */
    assert_non_null(loop);
    assert_true(gf_alloc_total() > before);
    assert_int_equal(uv_loop_close(loop), 0);
    gf_free(loop);
    assert_int_equal(gf_alloc_live(), baseline);
}

static void test_libcurl_goes_through_the_counter(void **state)
{
    (void)state;
    uint64_t before = gf_alloc_total();
    CURL *h = curl_easy_init();
    assert_non_null(h);
    curl_easy_setopt(h, CURLOPT_URL, "https://127.0.0.1:1/");
    assert_true(gf_alloc_total() > before);
    curl_easy_cleanup(h);
    assert_int_equal(gf_alloc_live(), baseline);
}

int main(void)
{
    assert_int_equal(gf_alloc_global_init(), 0);
    assert_int_equal(gf_alloc_global_init(), 0); /* idempotent */
    baseline = gf_alloc_live();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_every_entry_point),
        cmocka_unit_test(test_realloc_null_is_malloc_and_keeps_alignment),
        cmocka_unit_test(test_cjson_goes_through_the_counter),
        cmocka_unit_test(test_libuv_goes_through_the_counter),
        cmocka_unit_test(test_libcurl_goes_through_the_counter),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_alloc_global_cleanup();
    return rc;
}
