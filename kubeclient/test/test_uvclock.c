/*
 * Tests for kubeclient/uvclock: the libuv backend of struct gf_clock drives
 * real timers through one uv_timer, a stopped timer does not keep the loop
 * alive, and closing leaves nothing behind once the loop has run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "kubeclient/global.h"
#include "kubeclient/uvclock.h"

static int64_t baseline;

struct uvrec {
    struct gf_timer t;
    int fired;
    uint64_t at;
};

static void uv_cb(struct gf_timer *t)
{
    struct uvrec *r = t->data;
    r->fired++;
    r->at = gf_clock_now_ms(t->clk);
}

static void test_uv_clock_fires_through_the_loop(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct gf_clock clk;
    assert_int_equal(gf_clock_init_uv(&clk, &loop), 0);
    struct uvrec a = {0}, b = {0}, c = {0};
    gf_timer_init(&clk, &a.t);
    gf_timer_init(&clk, &b.t);
    gf_timer_init(&clk, &c.t);
    a.t.data = &a;
    b.t.data = &b;
    c.t.data = &c;
    uint64_t start = gf_clock_now_ms(&clk);
    gf_timer_start(&a.t, 2, uv_cb);
    gf_timer_start(&b.t, 1, uv_cb);
    gf_timer_start(&c.t, 1000000, uv_cb);
    gf_timer_stop(&c.t);
    /* The loop exits once nothing is pending: the stopped timer must not
     * keep it alive. */
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(a.fired, 1);
    assert_int_equal(b.fired, 1);
    assert_int_equal(c.fired, 0);
    assert_true(a.at >= start + 2);
    assert_true(b.at >= start + 1);
    assert_true(gf_clock_wall_ms(&clk) > 1700000000000);
    gf_clock_close(&clk);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}
static void test_uv_clock_close_frees_its_timer(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct gf_clock clk;
    assert_int_equal(gf_clock_init_uv(&clk, &loop), 0);
    /* Closing frees the timer on the next loop turn; the struct may go. */
    gf_clock_close(&clk);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(gf_alloc_live(), baseline);
    return 0;
}

int main(void)
{
    assert_int_equal(gf_kube_global_init(), 0);
    baseline = gf_alloc_live();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_uv_clock_fires_through_the_loop,
                                  teardown),
        cmocka_unit_test_teardown(test_uv_clock_close_frees_its_timer,
                                  teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_kube_global_cleanup();
    return rc;
}
