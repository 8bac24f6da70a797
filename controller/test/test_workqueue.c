/*
 * Tests for controller/workqueue: the client-go contract, rule by rule, on
 * the manual clock. A recorder stands in for the reconcilers: it logs every
 * key it is given and, unless told to hold it, finishes it at once with a
 * scripted result.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "controller/workqueue.h"

#define MAX_LOG 4096

struct rec {
    char log[MAX_LOG][32];
    uint64_t at[MAX_LOG];
    size_t n;
    bool hold; /* keep keys in flight until the test calls done */
    enum gf_wq_result result;
    uint64_t after_ms;
    struct gf_clock *clk;
};

static void process(struct gf_workqueue *wq, const char *key, void *data)
{
    struct rec *r = data;
    assert_true(r->n < MAX_LOG);
    snprintf(r->log[r->n], sizeof(r->log[0]), "%s", key);
    r->at[r->n] = gf_clock_now_ms(r->clk);
    r->n++;
    if (!r->hold)
        gf_wq_done(wq, key, r->result, r->after_ms);
}

struct fx {
    struct gf_clock clk;
    struct rec rec;
    struct gf_workqueue *wq;
    int64_t live;
};

static struct fx *fx_new(const struct gf_wq_config *cfg)
{
    static struct fx f;
    memset(&f, 0, sizeof(f));
    f.live = gf_alloc_live();
    gf_clock_init_manual(&f.clk, 1000, 1700000000000);
    f.rec.clk = &f.clk;
    f.wq = gf_wq_new(&f.clk, cfg, process, &f.rec);
    return &f;
}

static void fx_free(struct fx *f)
{
    struct gf_wq_stats st;
    gf_wq_stats(f->wq, &st);
    gf_wq_free(f->wq);
    assert_int_equal(gf_clock_active_timers(&f->clk), 0);
    gf_clock_close(&f->clk);
    assert_int_equal(gf_alloc_live(), f->live);
}

/* Runs every due timer (dispatch included) without moving time. */
static void turn(struct fx *f)
{
    gf_clock_advance(&f->clk, 0);
}

static size_t count(const struct rec *r, const char *key)
{
    size_t c = 0;
    for (size_t i = 0; i < r->n; i++)
        c += strcmp(r->log[i], key) == 0;
    return c;
}

static void test_repeated_adds_coalesce(void **state)
{
    (void)state;
    struct fx *f = fx_new(NULL);
    for (int i = 0; i < 10; i++)
        gf_wq_add(f->wq, "east/ml/train-1");
    gf_wq_add(f->wq, "east/ml/train-2");
    struct gf_wq_stats st;
    gf_wq_stats(f->wq, &st);
    assert_int_equal(st.depth, 2);
    assert_int_equal(st.adds, 2);
    turn(f);
    assert_int_equal(f->rec.n, 2);
    assert_string_equal(f->rec.log[0], "east/ml/train-1");
    assert_string_equal(f->rec.log[1], "east/ml/train-2");
    /* Nothing is left: OK results forget the keys entirely. */
    gf_wq_stats(f->wq, &st);
    assert_int_equal(st.tracked, 0);
    fx_free(f);
}

static void test_key_never_processed_twice_at_once(void **state)
{
    (void)state;
    struct fx *f = fx_new(NULL);
    f->rec.hold = true;
    gf_wq_add(f->wq, "east/ml/a");
    turn(f);
    assert_int_equal(f->rec.n, 1);
    /* Added while it runs: dirty, but not handed out again. */
    gf_wq_add(f->wq, "east/ml/a");
    gf_wq_add(f->wq, "east/ml/a");
    turn(f);
    assert_int_equal(f->rec.n, 1);
    struct gf_wq_stats st;
    gf_wq_stats(f->wq, &st);
    assert_int_equal(st.inflight, 1);
    assert_int_equal(st.depth, 0);
    /* Done queues it once more, because it was dirty. */
    gf_wq_done(f->wq, "east/ml/a", GF_WQ_OK, 0);
    turn(f);
    assert_int_equal(f->rec.n, 2);
    gf_wq_done(f->wq, "east/ml/a", GF_WQ_OK, 0);
    turn(f);
    assert_int_equal(f->rec.n, 2);
    fx_free(f);
}

static void test_ready_keys_run_fifo(void **state)
{
    (void)state;
    struct fx *f = fx_new(NULL);
    const char *keys[] = {"west/a/3", "east/a/1", "hub/b/2", "east/a/0"};
    for (int i = 0; i < 4; i++)
        gf_wq_add(f->wq, keys[i]);
    gf_wq_add(f->wq, "east/a/1"); /* coalesces, keeps its place */
    turn(f);
    assert_int_equal(f->rec.n, 4);
    for (int i = 0; i < 4; i++)
        assert_string_equal(f->rec.log[i], keys[i]);
    fx_free(f);
}

static void test_add_after_keeps_the_earliest_time(void **state)
{
    (void)state;
    struct fx *f = fx_new(NULL);
    gf_wq_add_after(f->wq, "east/ml/a", 100);
    gf_wq_add_after(f->wq, "east/ml/a", 50);  /* earlier: moves it */
    gf_wq_add_after(f->wq, "east/ml/a", 300); /* later: ignored */
    gf_wq_add_after(f->wq, "east/ml/b", 70);
    struct gf_wq_stats st;
    gf_wq_stats(f->wq, &st);
    assert_int_equal(st.waiting, 2);
    assert_int_equal(st.depth, 0);
    gf_clock_advance(&f->clk, 49);
    assert_int_equal(f->rec.n, 0);
    gf_clock_advance(&f->clk, 1);
    assert_int_equal(f->rec.n, 1);
    assert_int_equal(f->rec.at[0], 1050);
    gf_clock_advance(&f->clk, 1000);
    assert_int_equal(f->rec.n, 2);
    assert_string_equal(f->rec.log[1], "east/ml/b");
    assert_int_equal(f->rec.at[1], 1070);
    /* The later add was ignored, not kept as a second entry. */
    assert_int_equal(count(&f->rec, "east/ml/a"), 1);
    fx_free(f);
}

static void test_add_after_zero_is_add(void **state)
{
    (void)state;
    struct fx *f = fx_new(NULL);
    gf_wq_add_after(f->wq, "east/ml/a", 0);
    struct gf_wq_stats st;
    gf_wq_stats(f->wq, &st);
    assert_int_equal(st.depth, 1);
    assert_int_equal(st.waiting, 0);
    turn(f);
    assert_int_equal(f->rec.n, 1);
    fx_free(f);
}

static void test_errors_back_off_exponentially_then_forget(void **state)
{
    (void)state;
    struct gf_wq_config cfg = GF_WQ_CONFIG_DEFAULT;
    cfg.max_delay_ms = 1000;
    struct fx *f = fx_new(&cfg);
    f->rec.result = GF_WQ_ERROR;
    gf_wq_add(f->wq, "east/ml/a");
    turn(f);
    /* 5, 10, 20, ... capped at 1000 ms between attempts. */
    const uint64_t want[] = {5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_int_equal(gf_wq_num_requeues(f->wq, "east/ml/a"), i + 1);
        gf_clock_advance(&f->clk, want[i] - 1);
        assert_int_equal(f->rec.n, i + 1);
        gf_clock_advance(&f->clk, 1);
        assert_int_equal(f->rec.n, i + 2);
    }
    /* Success forgets: the next failure starts at the base again. */
    f->rec.result = GF_WQ_OK;
    gf_clock_advance(&f->clk, 1000);
    size_t n = f->rec.n;
    assert_int_equal(gf_wq_num_requeues(f->wq, "east/ml/a"), 0);
    f->rec.result = GF_WQ_ERROR;
    gf_wq_add(f->wq, "east/ml/a");
    turn(f);
    assert_int_equal(f->rec.n, n + 1);
    gf_clock_advance(&f->clk, 5);
    assert_int_equal(f->rec.n, n + 2);
    gf_wq_shutdown(f->wq);
    fx_free(f);
}

static void test_global_bucket_spreads_a_burst_of_failures(void **state)
{
    (void)state;
    struct fx *f = fx_new(NULL); /* 10 qps, burst 100 */
    char key[32];
    for (int i = 0; i < 130; i++) {
        snprintf(key, sizeof(key), "east/ml/j%d", i);
        gf_wq_add_rate_limited(f->wq, key);
    }
    /* The first 100 wait only their own 5 ms; the rest at 10 per second. */
    gf_clock_advance(&f->clk, 5);
    assert_int_equal(f->rec.n, 100);
    gf_clock_advance(&f->clk, 95);
    assert_int_equal(f->rec.n, 101); /* token 101 at 100 ms */
    gf_clock_advance(&f->clk, 1000);
    assert_int_equal(f->rec.n, 111);
    gf_clock_advance(&f->clk, 2000);
    assert_int_equal(f->rec.n, 130);
    /* Nothing held: every key was forgotten on its OK. */
    struct gf_wq_stats st;
    gf_wq_stats(f->wq, &st);
    assert_int_equal(st.tracked, 0);
    assert_int_equal(st.retries, 130);
    fx_free(f);
}

static void test_requeue_after_and_error_ignores_it(void **state)
{
    (void)state;
    struct fx *f = fx_new(NULL);
    f->rec.result = GF_WQ_REQUEUE_AFTER;
    f->rec.after_ms = 3000; /* an overflowAfter timer */
    gf_wq_add(f->wq, "east/ml/a");
    turn(f);
    gf_clock_advance(&f->clk, 2999);
    assert_int_equal(f->rec.n, 1);
    f->rec.result = GF_WQ_ERROR; /* after_ms stays 3000: ignored */
    gf_clock_advance(&f->clk, 1);
    assert_int_equal(f->rec.n, 2);
    gf_clock_advance(&f->clk, 5);
    assert_int_equal(f->rec.n, 3);
    assert_int_equal(f->rec.at[2] - f->rec.at[1], 5);
    gf_wq_shutdown(f->wq);
    fx_free(f);
}

static void test_terminal_is_not_retried_until_added(void **state)
{
    (void)state;
    struct fx *f = fx_new(NULL);
    f->rec.result = GF_WQ_ERROR;
    gf_wq_add(f->wq, "east/ml/a");
    turn(f);
    f->rec.result = GF_WQ_TERMINAL;
    gf_clock_advance(&f->clk, 5);
    assert_int_equal(f->rec.n, 2);
    gf_clock_advance(&f->clk, 3600000);
    assert_int_equal(f->rec.n, 2);
    assert_int_equal(gf_wq_num_requeues(f->wq, "east/ml/a"), 0);
    gf_wq_add(f->wq, "east/ml/a");
    turn(f);
    assert_int_equal(f->rec.n, 3);
    struct gf_wq_stats st;
    gf_wq_stats(f->wq, &st);
    assert_int_equal(st.results[GF_WQ_TERMINAL], 2);
    assert_int_equal(st.results[GF_WQ_ERROR], 1);
    fx_free(f);
}

static void test_dispatch_is_bounded_per_turn_and_in_flight(void **state)
{
    (void)state;
    struct gf_wq_config cfg = GF_WQ_CONFIG_DEFAULT;
    cfg.batch = 8;
    cfg.max_inflight = 20;
    struct fx *f = fx_new(&cfg);
    f->rec.hold = true;
    char key[32];
    for (int i = 0; i < 50; i++) {
        snprintf(key, sizeof(key), "east/ml/j%02d", i);
        gf_wq_add(f->wq, key);
    }
    /* One loop turn starts one batch; the dispatcher re-arms itself for
     * the next turn instead of running on. */
    struct gf_wq_stats st;
    assert_int_equal(gf_clock_next_due(&f->clk), 1000);
    gf_clock_advance(&f->clk, 0);
    gf_wq_stats(f->wq, &st);
    assert_int_equal(st.inflight, 20); /* the manual clock ran 3 turns */
    assert_int_equal(f->rec.n, 20);
    /* Capacity, not the batch, is what stops it now. */
    assert_int_equal(gf_clock_active_timers(&f->clk), 0);
    for (int i = 0; i < 5; i++)
        gf_wq_done(f->wq, f->rec.log[i], GF_WQ_OK, 0);
    turn(f);
    assert_int_equal(f->rec.n, 25);
    assert_string_equal(f->rec.log[24], "east/ml/j24");
    for (size_t i = 5; i < f->rec.n; i++)
        gf_wq_done(f->wq, f->rec.log[i], GF_WQ_OK, 0);
    f->rec.hold = false;
    turn(f);
    assert_int_equal(f->rec.n, 50);
    fx_free(f);
}

/*
 * Turns, seen from inside: each process call (re)starts a zero-delay
 * marker timer. The dispatcher re-arms itself after its batch, so the
 * marker (started earlier) fires between two batches, as libuv would run
 * other timers and I/O between two turns. Keys seen between two markers
 * were started by one turn.
 */
struct turns {
    struct gf_timer marker;
    unsigned turn;
    unsigned per_turn[16];
};

static void on_marker(struct gf_timer *t)
{
    struct turns *tu = t->data;
    tu->turn++;
}

static void per_turn_process(struct gf_workqueue *wq, const char *key,
                             void *data)
{
    struct turns *tu = data;
    if (tu->turn < 16)
        tu->per_turn[tu->turn]++;
    gf_timer_start(&tu->marker, 0, on_marker);
    gf_wq_done(wq, key, GF_WQ_OK, 0);
}

static void test_each_turn_starts_at_most_one_batch(void **state)
{
    (void)state;
    int64_t live = gf_alloc_live();
    struct gf_clock clk;
    gf_clock_init_manual(&clk, 0, 0);
    struct gf_wq_config cfg = GF_WQ_CONFIG_DEFAULT;
    cfg.batch = 8;
    struct turns tu = {0};
    gf_timer_init(&clk, &tu.marker);
    tu.marker.data = &tu;
    struct gf_workqueue *wq = gf_wq_new(&clk, &cfg, per_turn_process, &tu);
    char key[32];
    for (int i = 0; i < 30; i++) {
        snprintf(key, sizeof(key), "east/ml/j%02d", i);
        gf_wq_add(wq, key);
    }
    gf_clock_advance(&clk, 0);
    /* 30 keys, 8 a turn: 8, 8, 8, 6. */
    assert_int_equal(tu.turn, 4);
    assert_int_equal(tu.per_turn[0], 8);
    assert_int_equal(tu.per_turn[1], 8);
    assert_int_equal(tu.per_turn[2], 8);
    assert_int_equal(tu.per_turn[3], 6);
    gf_wq_free(wq);
    gf_clock_close(&clk);
    assert_int_equal(gf_alloc_live(), live);
}

static void test_drop_prefix_forgets_a_member(void **state)
{
    (void)state;
    struct fx *f = fx_new(NULL);
    f->rec.hold = true;
    gf_wq_add(f->wq, "east/ml/running");
    turn(f);
    gf_wq_add(f->wq, "east/ml/running"); /* dirty while it runs */
    gf_wq_add(f->wq, "east/ml/queued");
    gf_wq_add(f->wq, "west/ml/queued");
    gf_wq_add_after(f->wq, "east/ml/later", 100);
    gf_wq_add_rate_limited(f->wq, "east/ml/failing");
    gf_wq_add(f->wq, "eastern/ml/other-member"); /* prefix is "east/" */
    gf_wq_drop_prefix(f->wq, "east/");
    struct gf_wq_stats st;
    gf_wq_stats(f->wq, &st);
    assert_int_equal(st.depth, 2);
    assert_int_equal(st.waiting, 0);
    assert_int_equal(st.inflight, 1);
    /* The running key finishes with ERROR but is not requeued. */
    gf_wq_done(f->wq, "east/ml/running", GF_WQ_ERROR, 0);
    f->rec.hold = false;
    gf_clock_advance(&f->clk, 10000);
    assert_int_equal(f->rec.n, 3);
    assert_string_equal(f->rec.log[1], "west/ml/queued");
    assert_string_equal(f->rec.log[2], "eastern/ml/other-member");
    gf_wq_stats(f->wq, &st);
    assert_int_equal(st.tracked, 0);
    fx_free(f);
}

static void test_shutdown_drains_in_flight_and_ignores_adds(void **state)
{
    (void)state;
    struct fx *f = fx_new(NULL);
    f->rec.hold = true;
    gf_wq_add(f->wq, "east/ml/a");
    gf_wq_add(f->wq, "east/ml/b");
    gf_wq_add_after(f->wq, "east/ml/c", 100);
    gf_clock_advance(&f->clk, 0);
    assert_int_equal(f->rec.n, 2);
    gf_wq_add(f->wq, "east/ml/a");
    gf_wq_shutdown(f->wq);
    assert_true(gf_wq_shutting_down(f->wq));
    gf_wq_add(f->wq, "east/ml/d");
    gf_wq_add_rate_limited(f->wq, "east/ml/e");
    gf_wq_done(f->wq, "east/ml/a", GF_WQ_REQUEUE_AFTER, 10);
    gf_wq_done(f->wq, "east/ml/b", GF_WQ_ERROR, 0);
    gf_clock_advance(&f->clk, 100000);
    assert_int_equal(f->rec.n, 2);
    struct gf_wq_stats st;
    gf_wq_stats(f->wq, &st);
    assert_int_equal(st.inflight, 0);
    assert_int_equal(st.tracked, 0);
    fx_free(f);
}

/* Random operations against a model of the invariants in workqueue.c. */
static void test_random_ops_keep_the_invariants(void **state)
{
    (void)state;
    struct fx *f = fx_new(NULL);
    f->rec.hold = true;
    uint64_t seed = 42;
    char key[32];
    size_t done_upto = 0;
    for (int step = 0; step < 20000; step++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        unsigned r = (unsigned)(seed >> 33);
        snprintf(key, sizeof(key), "east/ml/k%u", r % 37);
        switch (r % 7) {
        case 0:
        case 1:
            gf_wq_add(f->wq, key);
            break;
        case 2:
            gf_wq_add_after(f->wq, key, r % 500);
            break;
        case 3:
            gf_wq_add_rate_limited(f->wq, key);
            break;
        case 4:
            gf_clock_advance(&f->clk, r % 50);
            break;
        default:
            /* Finish everything started so far, in order. */
            while (done_upto < f->rec.n)
                gf_wq_done(f->wq, f->rec.log[done_upto++],
                           (enum gf_wq_result)(r % 4), r % 100);
            break;
        }
        /* No key is in flight twice: every started-not-done key is
         * distinct. */
        for (size_t i = done_upto; i < f->rec.n; i++)
            for (size_t j = i + 1; j < f->rec.n; j++)
                assert_string_not_equal(f->rec.log[i], f->rec.log[j]);
        if (f->rec.n > MAX_LOG - 64) {
            while (done_upto < f->rec.n)
                gf_wq_done(f->wq, f->rec.log[done_upto++], GF_WQ_OK, 0);
            f->rec.n = done_upto = 0;
        }
    }
    while (done_upto < f->rec.n)
        gf_wq_done(f->wq, f->rec.log[done_upto++], GF_WQ_OK, 0);
    gf_wq_shutdown(f->wq);
    struct gf_wq_stats st;
    gf_wq_stats(f->wq, &st);
    assert_int_equal(st.tracked, 0);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_repeated_adds_coalesce),
        cmocka_unit_test(test_key_never_processed_twice_at_once),
        cmocka_unit_test(test_ready_keys_run_fifo),
        cmocka_unit_test(test_add_after_keeps_the_earliest_time),
        cmocka_unit_test(test_add_after_zero_is_add),
        cmocka_unit_test(test_errors_back_off_exponentially_then_forget),
        cmocka_unit_test(test_global_bucket_spreads_a_burst_of_failures),
        cmocka_unit_test(test_requeue_after_and_error_ignores_it),
        cmocka_unit_test(test_terminal_is_not_retried_until_added),
        cmocka_unit_test(test_dispatch_is_bounded_per_turn_and_in_flight),
        cmocka_unit_test(test_each_turn_starts_at_most_one_batch),
        cmocka_unit_test(test_drop_prefix_forgets_a_member),
        cmocka_unit_test(test_shutdown_drains_in_flight_and_ignores_adds),
        cmocka_unit_test(test_random_ops_keep_the_invariants),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
