/*
 * Tests for common/alloc: the counter is exact across every entry point and
 * cJSON's hooks really route through it (libuv's and libcurl's are tested
 * with kubeclient/global.c, which installs them).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

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

/* What another thread (libuv's pool, curl's resolver) does. */
struct other {
    void *take;  /* allocated on the loop thread, freed here */
    void *given; /* allocated here, freed on the loop thread */
    size_t n;
};

static void *other_thread(void *arg)
{
    struct other *o = arg;
    gf_free(o->take);
    o->given = gf_malloc(o->n);
    void *own = gf_realloc(gf_malloc(8), 64);
    gf_free(own);
    return NULL;
}

/*
 * The loop thread counts without atomics and other threads with them; a
 * block allocated on one and freed on the other still leaves the sums
 * exact.
 */
static void test_counts_across_threads(void **state)
{
    (void)state;
    int64_t live = gf_alloc_live(), bytes = gf_alloc_live_bytes();
    uint64_t total = gf_alloc_total();
    struct other o = {.take = gf_malloc(100), .n = 40};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, other_thread, &o), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(gf_alloc_live(), live + 1);
    assert_int_equal(gf_alloc_live_bytes(), bytes + 40);
    assert_int_equal(gf_alloc_total(), total + 3);
    gf_free(o.given);
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

/* An optional field copies as it is: NULL stays NULL, allocating nothing. */
static void test_strdup_null_is_null(void **state)
{
    (void)state;
    int64_t live = gf_alloc_live();
    assert_null(gf_strdup(NULL));
    assert_int_equal(gf_alloc_live(), live);
    char *s = gf_strdup("nvidia.com/gpu");
    assert_string_equal(s, "nvidia.com/gpu");
    gf_free(s);
    assert_int_equal(gf_alloc_live(), live);
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

static const char arena_doc[] =
    "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"wl-1\","
    "\"labels\":{\"a\":\"b\",\"c\":\"d\"}},\"spec\":{\"podSets\":[{\"count\":"
    "4,\"name\":\"main\"}],\"queueName\":\"q\"},\"status\":{}}}";

static void test_arena_tree_costs_one_chunk(void **state)
{
    (void)state;
    int64_t live = gf_alloc_live();
    uint64_t total = gf_alloc_total();
    struct gf_arena *a = gf_arena_new(65536);
    struct gf_arena *prev = gf_arena_json_begin(a);
    cJSON *ev = cJSON_Parse(arena_doc);
    gf_arena_json_end(prev);
    assert_non_null(ev);
    /* The arena itself and one chunk: every node came from the chunk. */
    assert_int_equal(gf_alloc_total() - total, 2);
    assert_true(gf_arena_bytes(a) > sizeof(arena_doc));
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(ev, "object"), "status")
            ->string,
        "status");
    cJSON_Delete(ev);
    gf_arena_reset(a);
    assert_int_equal(gf_arena_bytes(a), 0);
    /* The chunk is kept: a second tree allocates nothing. */
    total = gf_alloc_total();
    prev = gf_arena_json_begin(a);
    ev = cJSON_Parse(arena_doc);
    gf_arena_json_end(prev);
    assert_int_equal(gf_alloc_total(), total);
    cJSON_Delete(ev);
    gf_arena_free(a);
    assert_int_equal(gf_alloc_live(), live);
}

static void test_arena_mixed_tree_frees_heap_nodes(void **state)
{
    (void)state;
    int64_t live = gf_alloc_live();
    struct gf_arena *a = gf_arena_new(0);
    struct gf_arena *prev = gf_arena_json_begin(a);
    cJSON *ev = cJSON_Parse(arena_doc);
    gf_arena_json_end(prev);
    /* Added after end: heap nodes inside an arena tree. */
    int64_t before = gf_alloc_live();
    cJSON_AddStringToObject(ev, "added", "on the heap");
    assert_true(gf_alloc_live() > before);
    char *printed = cJSON_PrintUnformatted(ev);
    assert_non_null(strstr(printed, "on the heap"));
    cJSON_free(printed);
    cJSON_Delete(ev);
    assert_int_equal(gf_alloc_live(), before);
    gf_arena_free(a);
    assert_int_equal(gf_alloc_live(), live);
}

static void test_arena_oversized_chunk_not_kept(void **state)
{
    (void)state;
    int64_t live = gf_alloc_live();
    struct gf_arena *a = gf_arena_new(4096);
    /* A 64 KiB string needs a chunk of its own. */
    char *big = gf_malloc(70000);
    memset(big, 'x', 69999);
    big[0] = '"';
    big[69998] = '"';
    big[69999] = '\0';
    struct gf_arena *prev = gf_arena_json_begin(a);
    cJSON *s = cJSON_Parse(big);
    cJSON *small = cJSON_Parse("[1,2,3]");
    gf_arena_json_end(prev);
    assert_int_equal(strlen(cJSON_GetStringValue(s)), 69997);
    assert_int_equal(cJSON_GetArraySize(small), 3);
    cJSON_Delete(s);
    cJSON_Delete(small);
    gf_free(big);
    int64_t with_chunks = gf_alloc_live();
    gf_arena_reset(a);
    /* Only the usual-size chunk stays. */
    assert_true(gf_alloc_live() < with_chunks);
    gf_arena_free(a);
    assert_int_equal(gf_alloc_live(), live);
}

static void test_arena_nesting_restores_previous(void **state)
{
    (void)state;
    int64_t live = gf_alloc_live();
    struct gf_arena *outer = gf_arena_new(0), *inner = gf_arena_new(0);
    struct gf_arena *p1 = gf_arena_json_begin(outer);
    cJSON *x = cJSON_Parse("{\"a\":1}");
    struct gf_arena *p2 = gf_arena_json_begin(inner);
    cJSON *y = cJSON_Parse("{\"b\":2}");
    gf_arena_json_end(p2);
    cJSON *z = cJSON_Parse("{\"c\":3}");
    gf_arena_json_end(p1);
    assert_true(gf_arena_bytes(outer) > 0 && gf_arena_bytes(inner) > 0);
    size_t outer_bytes = gf_arena_bytes(outer);
    cJSON *heap = cJSON_Parse("{\"d\":4}");
    assert_int_equal(gf_arena_bytes(outer), outer_bytes);
    cJSON_Delete(heap);
    cJSON_Delete(x);
    cJSON_Delete(y);
    cJSON_Delete(z);
    gf_arena_free(outer);
    gf_arena_free(inner);
    assert_int_equal(gf_alloc_live(), live);
}

int main(void)
{
    assert_int_equal(gf_alloc_global_init(), 0);
    assert_int_equal(gf_alloc_global_init(), 0); /* idempotent */
    baseline = gf_alloc_live();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_every_entry_point),
        cmocka_unit_test(test_counts_across_threads),
        cmocka_unit_test(test_realloc_null_is_malloc_and_keeps_alignment),
        cmocka_unit_test(test_strdup_null_is_null),
        cmocka_unit_test(test_cjson_goes_through_the_counter),
        cmocka_unit_test(test_arena_tree_costs_one_chunk),
        cmocka_unit_test(test_arena_mixed_tree_frees_heap_nodes),
        cmocka_unit_test(test_arena_oversized_chunk_not_kept),
        cmocka_unit_test(test_arena_nesting_restores_previous),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_alloc_global_cleanup();
    return rc;
}
