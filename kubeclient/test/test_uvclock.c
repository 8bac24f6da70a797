/*
 * Tests for kubeclient/uvclock: the libuv backend of struct gf_clock drives
 * real timers through one uv_timer, a stopped timer does not keep the loop
 * alive, and closing leaves nothing behind once the loop has run. The
 * skewed clock of fault tests: the pure conversions exactly, and one short
 * real timer whose deadline the skewed now reaches when it fires.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <errno.h>
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

/* Skewed time advances (1 + ppm/1e6) times as fast as real time, from
 * the base on, rounded down. */
static void test_rate_skewed_time(void **state)
{
    (void)state;
    assert_int_equal(gf_clock_rate_skewed(5000, 5000, 200000), 5000);
    assert_int_equal(gf_clock_rate_skewed(5000, 4000, 200000), 5000);
    assert_int_equal(gf_clock_rate_skewed(5000, 15000, 200000), 17000);
    assert_int_equal(gf_clock_rate_skewed(5000, 15000, -200000), 13000);
    assert_int_equal(gf_clock_rate_skewed(5000, 15000, 0), 15000);
    /* 100 ppm over 10 s is 1 ms. */
    assert_int_equal(gf_clock_rate_skewed(0, 10000, 100), 10001);
    assert_int_equal(gf_clock_rate_skewed(0, 10000, -100), 9999);
    assert_int_equal(gf_clock_rate_skewed(0, 9999, 100), 9999);
    /* A year at the largest rate does not overflow. */
    uint64_t year = 365ull * 24 * 3600 * 1000;
    assert_int_equal(gf_clock_rate_skewed(0, year, GF_CLOCK_RATE_MAX_PPM),
                     year + year / 2);
}

/* The real time to arm for a skewed deadline is the earliest at which
 * the skewed now has reached it: never early (a timer that fired early
 * would find nothing due), and never a whole ms late. */
static void test_rate_real_deadline(void **state)
{
    (void)state;
    const int32_t rates[] = {0,      1,       -1,     100,     -100,
                             200000, -200000, 500000, -500000, 333};
    for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
        int32_t ppm = rates[i];
        for (uint64_t due = 1001; due < 1001 + 5000; due += 7) {
            uint64_t real = gf_clock_rate_real(1000, due, ppm);
            assert_true(gf_clock_rate_skewed(1000, real, ppm) >= due);
            assert_true(gf_clock_rate_skewed(1000, real - 1, ppm) < due);
        }
    }
    assert_int_equal(gf_clock_rate_real(1000, 500, 100), 1000);
    /* At half speed a 10 s deadline takes 20 s of real time. */
    assert_int_equal(gf_clock_rate_real(0, 10000, -500000), 20000);
}

static void test_rate_parse(void **state)
{
    (void)state;
    int32_t ppm = 7;
    assert_int_equal(gf_clock_rate_parse("-200", &ppm), 0);
    assert_int_equal(ppm, -200);
    assert_int_equal(gf_clock_rate_parse("+150", &ppm), 0);
    assert_int_equal(ppm, 150);
    assert_int_equal(gf_clock_rate_parse("500000", &ppm), 0);
    assert_int_equal(ppm, 500000);
    assert_int_equal(gf_clock_rate_parse("-500000", &ppm), 0);
    assert_int_equal(ppm, -500000);
    const char *bad[] = {
        "", "500001", "-500001", "12x", "x", "1.5", "99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ppm = 7;
        assert_int_equal(gf_clock_rate_parse(bad[i], &ppm), -EINVAL);
        assert_int_equal(ppm, 7);
    }
    assert_int_equal(gf_clock_rate_parse(NULL, &ppm), -EINVAL);
}

/* Out of range is refused, and the clock may still be closed. */
static void test_rate_refused_beyond_max(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct gf_clock clk;
    assert_int_equal(
        gf_clock_init_uv_rate(&clk, &loop, GF_CLOCK_RATE_MAX_PPM + 1), -EINVAL);
    gf_clock_close(&clk);
    assert_int_equal(
        gf_clock_init_uv_rate(&clk, &loop, -GF_CLOCK_RATE_MAX_PPM - 1),
        -EINVAL);
    gf_clock_close(&clk);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/*
 * A fast clock through a real loop: a 30 ms deadline at +50% is armed
 * as 20 real ms on the uv timer (the loop's time is cached, so the
 * figure is exact), and a 30 ms one at -50% as 60. When the timer fires,
 * the skewed now has reached the deadline; the real time that passed is
 * printed, not asserted.
 */
static void test_rate_fast_clock_fires_at_skewed_deadline(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct gf_clock clk;
    assert_int_equal(gf_clock_init_uv_rate(&clk, &loop, 500000), 0);
    struct uvrec a = {0};
    gf_timer_init(&clk, &a.t);
    a.t.data = &a;
    uint64_t start = gf_clock_now_ms(&clk);
    uint64_t real_start = uv_now(&loop);
    gf_timer_start(&a.t, 30, uv_cb);
    assert_int_equal(gf_clock_uv_due_in(&clk), 20);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(a.fired, 1);
    assert_true(a.at >= start + 30);
    uint64_t real = uv_now(&loop) - real_start;
    /* The skewed clock ran 1.5 times as fast as the loop's own. */
    assert_true(gf_clock_now_ms(&clk) - start >= real * 3 / 2);
    print_message("fast clock: 30 ms skewed deadline after %llu real ms\n",
                  (unsigned long long)real);
    gf_clock_close(&clk);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);

    /* Slow: the deadline is further away in real time. */
    assert_int_equal(gf_clock_init_uv_rate(&clk, &loop, -500000), 0);
    gf_timer_init(&clk, &a.t);
    gf_timer_start(&a.t, 30, uv_cb);
    assert_int_equal(gf_clock_uv_due_in(&clk), 60);
    gf_timer_stop(&a.t);
    assert_int_equal(gf_clock_uv_due_in(&clk), 0);
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
        cmocka_unit_test_teardown(test_rate_skewed_time, teardown),
        cmocka_unit_test_teardown(test_rate_real_deadline, teardown),
        cmocka_unit_test_teardown(test_rate_parse, teardown),
        cmocka_unit_test_teardown(test_rate_refused_beyond_max, teardown),
        cmocka_unit_test_teardown(test_rate_fast_clock_fires_at_skewed_deadline,
                                  teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_kube_global_cleanup();
    return rc;
}
