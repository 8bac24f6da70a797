/*
 * Tests for kubeclient/global: after gf_kube_global_init() libuv and
 * libcurl allocate through the one counter (cJSON too, as with
 * gf_alloc_global_init), and init is idempotent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <uv.h>

#include "common/alloc.h"
#include "kubeclient/global.h"

static int64_t baseline;

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

static void test_cjson_goes_through_the_counter(void **state)
{
    (void)state;
    uint64_t before = gf_alloc_total();
    cJSON *j = cJSON_Parse("{\"nvidia.com/gpu\":\"8\"}");
    assert_non_null(j);
    assert_true(gf_alloc_total() > before);
    cJSON_Delete(j);
    assert_int_equal(gf_alloc_live(), baseline);
}

int main(void)
{
    assert_int_equal(gf_kube_global_init(), 0);
    assert_int_equal(gf_kube_global_init(), 0); /* idempotent */
    baseline = gf_alloc_live();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_libuv_goes_through_the_counter),
        cmocka_unit_test(test_libcurl_goes_through_the_counter),
        cmocka_unit_test(test_cjson_goes_through_the_counter),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_kube_global_cleanup();
    return rc;
}
