/*
 * Tests for common/clock: manual time fires timers in deadline order with
 * now() equal to each deadline; a backend is armed for the earliest
 * deadline only and fires what is due; RFC 3339 formatting and parsing.
 * The libuv backend is tested in kubeclient/test/test_uvclock.c.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/clock.h"

static int64_t baseline;

struct rec {
    struct gf_timer t;
    int id;
    uint64_t fired_at;
    int *order;
    int *n;
};

static void rec_cb(struct gf_timer *t)
{
    struct rec *r = t->data;
    r->fired_at = gf_clock_now_ms(t->clk);
    r->order[(*r->n)++] = r->id;
}

static void test_manual_fires_in_deadline_then_fifo_order(void **state)
{
    (void)state;
    struct gf_clock clk;
    gf_clock_init_manual(&clk, 1000, 1700000000000);
    int order[8], n = 0;
    struct rec r[5];
    const uint64_t delays[] = {300, 100, 200, 100, 5000};
    for (int i = 0; i < 5; i++) {
        r[i] = (struct rec){.id = i, .order = order, .n = &n};
        gf_timer_init(&clk, &r[i].t);
        r[i].t.data = &r[i];
        gf_timer_start(&r[i].t, delays[i], rec_cb);
    }
    assert_int_equal(gf_clock_active_timers(&clk), 5);
    assert_int_equal(gf_clock_next_due(&clk), 1100);
    assert_int_equal(gf_clock_advance(&clk, 99), 0);
    assert_int_equal(gf_clock_advance(&clk, 150), 3);
    assert_int_equal(gf_clock_now_ms(&clk), 1249);
    /* Equal deadlines fire in start order (1 before 3). */
    assert_int_equal(order[0], 1);
    assert_int_equal(order[1], 3);
    assert_int_equal(order[2], 2);
    assert_int_equal(r[1].fired_at, 1100);
    assert_int_equal(r[2].fired_at, 1200);
    assert_false(gf_timer_active(&r[1].t));
    assert_true(gf_timer_active(&r[0].t));
    gf_timer_stop(&r[4].t);
    gf_timer_stop(&r[4].t); /* idempotent */
    assert_int_equal(gf_clock_advance(&clk, 100000), 1);
    assert_int_equal(order[3], 0);
    assert_int_equal(n, 4);
    assert_int_equal(gf_clock_wall_ms(&clk), 1700000000000 + 100249);
    gf_clock_close(&clk);
}

static void test_restart_moves_deadline(void **state)
{
    (void)state;
    struct gf_clock clk;
    gf_clock_init_manual(&clk, 0, 0);
    int order[4], n = 0;
    struct rec r = {.id = 7, .order = order, .n = &n};
    gf_timer_init(&clk, &r.t);
    r.t.data = &r;
    gf_timer_start(&r.t, 100, rec_cb);
    gf_timer_start(&r.t, 500, rec_cb); /* re-arm replaces, never duplicates */
    assert_int_equal(gf_clock_active_timers(&clk), 1);
    assert_int_equal(gf_clock_advance(&clk, 499), 0);
    assert_int_equal(gf_clock_advance(&clk, 1), 1);
    assert_int_equal(r.fired_at, 500);
    gf_clock_close(&clk);
}

/* A backoff chain: each firing re-arms with a doubled delay. */
struct chain {
    struct gf_timer t;
    uint64_t delay;
    int fired;
};

static void chain_cb(struct gf_timer *t)
{
    struct chain *c = t->data;
    c->fired++;
    c->delay *= 2;
    if (c->fired < 5)
        gf_timer_start(t, c->delay, chain_cb);
}

static void test_manual_advance_runs_whole_chains(void **state)
{
    (void)state;
    struct gf_clock clk;
    gf_clock_init_manual(&clk, 0, 0);
    struct chain c = {.delay = 100};
    gf_timer_init(&clk, &c.t);
    c.t.data = &c;
    gf_timer_start(&c.t, c.delay, chain_cb);
    /* 100 + 200 + 400 + 800 + 1600 = 3100 */
    assert_int_equal(gf_clock_advance(&clk, 3099), 4);
    assert_int_equal(gf_clock_advance(&clk, 1), 1);
    assert_int_equal(c.fired, 5);
    assert_int_equal(gf_clock_active_timers(&clk), 0);
    gf_clock_close(&clk);
}

static void stop_other_cb(struct gf_timer *t)
{
    struct gf_timer *other = t->data;
    gf_timer_stop(other);
}

static void test_callback_may_stop_a_due_timer(void **state)
{
    (void)state;
    struct gf_clock clk;
    gf_clock_init_manual(&clk, 0, 0);
    int order[4], n = 0;
    struct rec victim = {.id = 1, .order = order, .n = &n};
    struct gf_timer killer;
    gf_timer_init(&clk, &killer);
    gf_timer_init(&clk, &victim.t);
    killer.data = &victim.t;
    victim.t.data = &victim;
    gf_timer_start(&killer, 10, stop_other_cb);
    gf_timer_start(&victim.t, 10, rec_cb);
    assert_int_equal(gf_clock_advance(&clk, 10), 1);
    assert_int_equal(n, 0);
    gf_clock_close(&clk);
}

/* A backend that records what the clock asks of it. */
struct fake_backend {
    uint64_t now;
    uint64_t armed; /* UINT64_MAX when disarmed */
    int arms, closes;
};

static uint64_t fake_now(const struct gf_clock *clk)
{
    return ((const struct fake_backend *)clk->backend)->now;
}

static int64_t fake_wall(const struct gf_clock *clk)
{
    return 1700000000000 + (int64_t)fake_now(clk);
}

static void fake_arm(struct gf_clock *clk, uint64_t due_ms)
{
    struct fake_backend *f = clk->backend;
    f->armed = due_ms;
    f->arms++;
}

static void fake_close(struct gf_clock *clk)
{
    ((struct fake_backend *)clk->backend)->closes++;
}

static const struct gf_clock_ops fake_ops = {fake_now, fake_wall, fake_arm,
                                             fake_close};

static void again_cb(struct gf_timer *t)
{
    rec_cb(t);
    gf_timer_start(t, 0, again_cb); /* re-arms itself at once */
}

/*
 * A backend is only ever armed for the earliest deadline, and a firing
 * fires what is due but never a timer started during that same firing: a
 * timer that re-arms itself with a zero timeout waits for the next loop
 * turn instead of starving I/O (the manual clock, above, runs such chains
 * at once).
 */
static void test_backend_armed_for_the_earliest_deadline(void **state)
{
    (void)state;
    struct fake_backend f = {.now = 100, .armed = UINT64_MAX};
    struct gf_clock clk;
    gf_clock_init_backend(&clk, &fake_ops, &f);
    assert_int_equal(gf_clock_now_ms(&clk), 100);
    assert_int_equal(gf_clock_wall_ms(&clk), 1700000000100);
    int order[8], n = 0;
    struct rec a = {.id = 1, .order = order, .n = &n};
    struct rec b = {.id = 2, .order = order, .n = &n};
    gf_timer_init(&clk, &a.t);
    gf_timer_init(&clk, &b.t);
    a.t.data = &a;
    b.t.data = &b;
    gf_timer_start(&a.t, 50, rec_cb);
    assert_int_equal(f.armed, 150);
    gf_timer_start(&b.t, 10, again_cb);
    assert_int_equal(f.armed, 110);
    f.now = 110;
    assert_int_equal(gf_clock_backend_fire(&clk, f.now), 1);
    /* b re-armed itself for 110: due, but it waits for the next firing */
    assert_int_equal(n, 1);
    assert_int_equal(f.armed, 110);
    assert_int_equal(gf_clock_backend_fire(&clk, f.now), 1);
    assert_int_equal(n, 2);
    gf_timer_stop(&b.t);
    assert_int_equal(f.armed, 150);
    f.now = 200;
    assert_int_equal(gf_clock_backend_fire(&clk, f.now), 1);
    assert_int_equal(order[2], 1);
    assert_int_equal(a.fired_at, 200);
    assert_int_equal(f.armed, UINT64_MAX);
    gf_clock_close(&clk);
    gf_clock_close(&clk); /* closes the backend once */
    assert_int_equal(f.closes, 1);
}

static void test_rfc3339_roundtrip(void **state)
{
    (void)state;
    char out[32];
    int64_t ms;
    gf_time_rfc3339(0, out);
    assert_string_equal(out, "1970-01-01T00:00:00Z");
    assert_int_equal(gf_time_parse_rfc3339("2026-11-24T10:00:00Z", &ms), 0);
    gf_time_rfc3339(ms, out);
    assert_string_equal(out, "2026-11-24T10:00:00Z");
    assert_int_equal(ms, 1795514400000);
    assert_int_equal(gf_time_parse_rfc3339("2026-11-24T10:00:00.25Z", &ms), 0);
    assert_int_equal(ms, 1795514400250);
    assert_int_equal(
        gf_time_parse_rfc3339("2026-11-24T12:30:00.123456+02:30", &ms), 0);
    assert_int_equal(ms, 1795514400123);
    assert_int_equal(gf_time_parse_rfc3339("2024-02-29T00:00:00Z", &ms), 0);
    const char *bad[] = {"",
                         "2026-11-24",
                         "2026-11-24T10:00:00",
                         "2026-13-01T00:00:00Z",
                         "2025-02-29T00:00:00Z",
                         "2026-11-24T24:00:00Z",
                         "2026-11-24T10:00:00Zjunk",
                         "2026-11-24T10:00:00.Z",
                         "2026-1-24T10:00:00Z"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(gf_time_parse_rfc3339(bad[i], &ms), -EINVAL);
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(gf_alloc_live(), baseline);
    return 0;
}

int main(void)
{
    assert_int_equal(gf_alloc_global_init(), 0);
    baseline = gf_alloc_live();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_manual_fires_in_deadline_then_fifo_order,
                                  teardown),
        cmocka_unit_test_teardown(test_restart_moves_deadline, teardown),
        cmocka_unit_test_teardown(test_manual_advance_runs_whole_chains,
                                  teardown),
        cmocka_unit_test_teardown(test_callback_may_stop_a_due_timer, teardown),
        cmocka_unit_test_teardown(test_backend_armed_for_the_earliest_deadline,
                                  teardown),
        cmocka_unit_test_teardown(test_rfc3339_roundtrip, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_alloc_global_cleanup();
    return rc;
}
