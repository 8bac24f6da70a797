/*
 * Tests for common/buf: growth, the hard cap (curl's dynbuf rule: over the
 * cap fails and changes nothing), consume and steal.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/err.h"

static int64_t baseline;

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(gf_alloc_live(), baseline);
    return 0;
}

static void test_empty_buffer_is_empty_string(void **state)
{
    (void)state;
    struct gf_buf b = GF_BUF_INIT(16);
    assert_string_equal(gf_buf_cstr(&b), "");
    assert_int_equal(b.len, 0);
    gf_buf_free(&b);
}

static void test_append_grows_and_terminates(void **state)
{
    (void)state;
    struct gf_buf b;
    gf_buf_init(&b, 1 << 20);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(gf_buf_puts(&b, "abc"), 0);
    assert_int_equal(b.len, 3000);
    assert_int_equal(b.data[3000], '\0');
    assert_int_equal(memcmp(b.data + 2997, "abc", 3), 0);
    assert_int_equal(gf_buf_printf(&b, "-%d-%s", 42, "x"), 0);
    assert_string_equal(b.data + 3000, "-42-x");
    gf_buf_free(&b);
}

/* max == SIZE_MAX means "no cap": max + 1 wraps to 0, and the cap clamp must
 * not turn that into a zero-byte allocation followed by a write. */
static void test_uncapped_buffer_grows(void **state)
{
    (void)state;
    struct gf_buf b;
    gf_buf_init(&b, SIZE_MAX);
    char chunk[1000];
    memset(chunk, 'z', sizeof(chunk));
    for (int i = 0; i < 100; i++)
        assert_int_equal(gf_buf_append(&b, chunk, sizeof(chunk)), 0);
    assert_int_equal(b.len, 100000);
    assert_true(b.cap > b.len);
    assert_int_equal(b.data[99999], 'z');
    assert_int_equal(b.data[100000], '\0');
    gf_buf_free(&b);
}

static void test_cap_is_exact_and_failure_changes_nothing(void **state)
{
    (void)state;
    struct gf_buf b = GF_BUF_INIT(5);
    assert_int_equal(gf_buf_puts(&b, "abcd"), 0);
    assert_int_equal(gf_buf_puts(&b, "ef"), GF_E2BIG);
    assert_string_equal(gf_buf_cstr(&b), "abcd");
    assert_int_equal(gf_buf_putc(&b, 'e'), 0);
    assert_string_equal(gf_buf_cstr(&b), "abcde");
    assert_int_equal(gf_buf_putc(&b, 'f'), GF_E2BIG);
    assert_int_equal(gf_buf_printf(&b, "%s", "g"), GF_E2BIG);
    assert_int_equal(b.len, 5);
    assert_true(b.cap <= 6);
    /* A length that would overflow size_t arithmetic is refused too. */
    assert_int_equal(gf_buf_append(&b, "x", SIZE_MAX), GF_E2BIG);
    gf_buf_free(&b);
}

static void test_consume_moves_rest_to_front(void **state)
{
    (void)state;
    struct gf_buf b = GF_BUF_INIT(64);
    gf_buf_puts(&b, "line1\nline2\n");
    gf_buf_consume(&b, 6);
    assert_string_equal(gf_buf_cstr(&b), "line2\n");
    gf_buf_consume(&b, 100);
    assert_int_equal(b.len, 0);
    assert_string_equal(gf_buf_cstr(&b), "");
    gf_buf_free(&b);
}

static void test_reset_keeps_memory_steal_takes_it(void **state)
{
    (void)state;
    struct gf_buf b = GF_BUF_INIT(64);
    gf_buf_puts(&b, "hello");
    size_t cap = b.cap;
    gf_buf_reset(&b);
    assert_int_equal(b.cap, cap);
    assert_string_equal(gf_buf_cstr(&b), "");
    gf_buf_puts(&b, "world");
    char *s = gf_buf_steal(&b);
    assert_string_equal(s, "world");
    assert_null(b.data);
    gf_free(s);
    s = gf_buf_steal(&b); /* stealing an empty buffer gives "" */
    assert_string_equal(s, "");
    gf_free(s);
}

int main(void)
{
    assert_int_equal(gf_alloc_global_init(), 0);
    baseline = gf_alloc_live();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_empty_buffer_is_empty_string, teardown),
        cmocka_unit_test_teardown(test_append_grows_and_terminates, teardown),
        cmocka_unit_test_teardown(test_cap_is_exact_and_failure_changes_nothing,
                                  teardown),
        cmocka_unit_test_teardown(test_uncapped_buffer_grows, teardown),
        cmocka_unit_test_teardown(test_consume_moves_rest_to_front, teardown),
        cmocka_unit_test_teardown(test_reset_keeps_memory_steal_takes_it,
                                  teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_alloc_global_cleanup();
    return rc;
}
