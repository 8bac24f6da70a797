/*
 * Tests for controller/leader: the decision rule by rule, then electors
 * against a fake API server on the manual clock. The fake keeps one Lease
 * with a resourceVersion and answers like the API server (404, 409 on a
 * stale precondition, AlreadyExists); each elector has its own fake
 * client, which answers, hangs (until cancelled) or fails on command.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/err.h"
#include "controller/leader.h"

#define LEASE 15000
#define RD 10000   /* 2/3 of the lease */
#define RETRY 2000 /* min(2 s, lease/7) */

/* --- the decision ----------------------------------------------------- */

static struct gf_leader_record rec_of(const char *holder)
{
    struct gf_leader_record r = {.duration_s = 15};
    snprintf(r.holder, sizeof(r.holder), "%s", holder);
    return r;
}

static enum gf_leader_step dec(const struct gf_leader_record *r, bool leading,
                               uint64_t now, uint64_t changed, uint64_t renewed)
{
    struct gf_leader_view v = {.me = "a",
                               .rec = r,
                               .now_ms = now,
                               .changed_ms = changed,
                               .lease_ms = LEASE,
                               .leading = leading,
                               .renewed_ms = renewed,
                               .renew_deadline_ms = RD};
    return gf_leader_decide(&v);
}

static void test_decide_rules(void **state)
{
    (void)state;
    struct gf_leader_record a = rec_of("a"), b = rec_of("b"), none = rec_of("");
    /* No Lease, or a released one: acquire. */
    assert_int_equal(dec(NULL, false, 100, 0, 0), GF_LEADER_ACQUIRE);
    assert_int_equal(dec(&none, false, 100, 100, 0), GF_LEADER_ACQUIRE);
    /* Ours: renew, leading or not (a restart with the same id). */
    assert_int_equal(dec(&a, true, 5000, 4000, 4000), GF_LEADER_RENEW);
    assert_int_equal(dec(&a, false, 5000, 5000, 0), GF_LEADER_RENEW);
    /* Another holder: wait for one full lease of no change, no less. */
    assert_int_equal(dec(&b, false, 1000 + LEASE - 1, 1000, 0), GF_LEADER_WAIT);
    assert_int_equal(dec(&b, false, 1000 + LEASE, 1000, 0), GF_LEADER_ACQUIRE);
    /* The record's own duration wins over ours. */
    struct gf_leader_record b4 = rec_of("b");
    b4.duration_s = 4;
    assert_int_equal(dec(&b4, false, 1000 + 3999, 1000, 0), GF_LEADER_WAIT);
    assert_int_equal(dec(&b4, false, 1000 + 4000, 1000, 0), GF_LEADER_ACQUIRE);
    /* Leading: another holder, or the deadline passed, is a loss. */
    assert_int_equal(dec(&b, true, 5000, 5000, 4000), GF_LEADER_LOST);
    assert_int_equal(dec(&a, true, 4000 + RD - 1, 4000, 4000), GF_LEADER_RENEW);
    assert_int_equal(dec(&a, true, 4000 + RD, 4000, 4000), GF_LEADER_LOST);
    assert_int_equal(dec(NULL, true, 4000 + RD, 4000, 4000), GF_LEADER_LOST);
    assert_string_equal(gf_leader_step_name(GF_LEADER_LOST), "lost");
}

static void test_timing_and_micro_time(void **state)
{
    (void)state;
    assert_int_equal(gf_leader_retry_ms(15000), 2000);
    assert_int_equal(gf_leader_retry_ms(4000), 571);
    assert_int_equal(gf_leader_renew_deadline_ms(15000), 10000);
    assert_int_equal(gf_leader_renew_deadline_ms(4000), 2666);
    char s[40];
    gf_leader_micro_time(1796534496123, s);
    assert_string_equal(s, "2026-12-06T05:21:36.123000Z");
    gf_leader_micro_time(1796534496000, s);
    assert_string_equal(s, "2026-12-06T05:21:36.000000Z");
    int64_t back = 0;
    assert_int_equal(
        gf_time_parse_rfc3339("2026-12-06T05:21:36.123000Z", &back), 0);
    assert_int_equal(back, 1796534496123);
}

/* --- the fake API server ----------------------------------------------- */

struct server {
    bool exists;
    struct gf_leader_record rec;
    unsigned rv;
    unsigned writes;
    /* Applied just before the next write is answered (a racing writer). */
    bool race;
    struct gf_leader_record race_rec;
};

enum mode { ANSWER, HANG, FAIL };

struct client {
    struct server *srv;
    struct gf_clock *clk;
    enum mode mode;
    int fail_err;
    unsigned puts, gets;
    /* The call in flight. */
    bool pending, is_put, cancelled;
    struct gf_leader_record put_rec;
    char put_rv[16];
    bool put_has_rv;
    gf_leader_api_cb cb;
    void *data;
    struct gf_timer t;
};

static void answer(struct gf_timer *t)
{
    struct client *c = t->data;
    struct server *s = c->srv;
    c->pending = false;
    gf_leader_api_cb cb = c->cb;
    char rv[16];
    if (c->cancelled) {
        cb(c->data, GF_ECANCELED, NULL, NULL);
        return;
    }
    if (c->mode == FAIL) {
        cb(c->data, c->fail_err, NULL, NULL);
        return;
    }
    if (!c->is_put) {
        snprintf(rv, sizeof(rv), "%u", s->rv);
        cb(c->data, s->exists ? 0 : GF_ENOTFOUND, s->exists ? &s->rec : NULL,
           s->exists ? rv : NULL);
        return;
    }
    if (s->race) {
        s->race = false;
        s->exists = true;
        s->rec = s->race_rec;
        s->rv++;
    }
    int err = 0;
    if (!c->put_has_rv && s->exists)
        err = GF_EEXIST;
    else if (c->put_has_rv && !s->exists)
        err = GF_ENOTFOUND;
    else if (c->put_has_rv && (unsigned)strtoul(c->put_rv, NULL, 10) != s->rv)
        err = GF_ECONFLICT;
    if (err != 0) {
        cb(c->data, err, NULL, NULL);
        return;
    }
    s->exists = true;
    s->rec = c->put_rec;
    s->rv++;
    s->writes++;
    snprintf(rv, sizeof(rv), "%u", s->rv);
    cb(c->data, 0, &s->rec, rv);
}

static void start_call(struct client *c, gf_leader_api_cb cb, void *data)
{
    assert_false(c->pending); /* one call at a time */
    c->pending = true;
    c->cancelled = false;
    c->cb = cb;
    c->data = data;
    if (c->mode != HANG)
        gf_timer_start(&c->t, 0, answer);
}

static int fake_get(void *ctx, uint64_t timeout_ms, gf_leader_api_cb cb,
                    void *data)
{
    struct client *c = ctx;
    assert_true(timeout_ms > 0);
    c->gets++;
    c->is_put = false;
    start_call(c, cb, data);
    return 0;
}

static int fake_put(void *ctx, const struct gf_leader_record *rec,
                    const char *rv, uint64_t timeout_ms, gf_leader_api_cb cb,
                    void *data)
{
    struct client *c = ctx;
    assert_true(timeout_ms > 0);
    c->puts++;
    c->is_put = true;
    c->put_rec = *rec;
    c->put_has_rv = rv != NULL;
    snprintf(c->put_rv, sizeof(c->put_rv), "%s", rv != NULL ? rv : "");
    start_call(c, cb, data);
    return 0;
}

static void fake_cancel(void *ctx)
{
    struct client *c = ctx;
    if (!c->pending)
        return;
    c->cancelled = true;
    gf_timer_start(&c->t, 0, answer);
}

/* One replica: its fake client, its elector, what it went through. */
struct replica {
    struct client c;
    struct gf_leader_api api;
    struct gf_leader *l;
    unsigned gained, lost;
    uint64_t gained_at, lost_at;
    bool closed;
};

static void on_change(void *data, bool leading)
{
    struct replica *r = data;
    uint64_t now = gf_clock_now_ms(r->c.clk);
    if (leading) {
        r->gained++;
        r->gained_at = now;
    } else {
        r->lost++;
        r->lost_at = now;
    }
}

static void replica_start(struct replica *r, struct server *s,
                          struct gf_clock *clk, const char *id,
                          uint64_t lease_ms)
{
    memset(r, 0, sizeof(*r));
    r->c.srv = s;
    r->c.clk = clk;
    gf_timer_init(clk, &r->c.t);
    r->c.t.data = &r->c;
    r->api = (struct gf_leader_api){
        .get = fake_get, .put = fake_put, .cancel = fake_cancel, .ctx = &r->c};
    struct gf_leader_opts o = {.clk = clk,
                               .id = id,
                               .lease_ms = lease_ms,
                               .api = &r->api,
                               .on_change = on_change,
                               .data = r};
    assert_int_equal(gf_leader_start(&o, &r->l), 0);
}

static void on_closed(void *data)
{
    struct replica *r = data;
    r->closed = true;
}

static void replica_close(struct replica *r, struct gf_clock *clk)
{
    gf_leader_close(r->l, on_closed, r);
    assert_false(r->closed); /* later, from the loop */
    gf_clock_advance(clk, 0);
    assert_true(r->closed);
    gf_timer_stop(&r->c.t);
}

struct fx {
    struct gf_clock clk;
    struct server srv;
    int64_t live;
};

static struct fx *fx_new(void)
{
    static struct fx f;
    memset(&f, 0, sizeof(f));
    f.live = gf_alloc_live();
    gf_clock_init_manual(&f.clk, 1000, 1796534496000);
    return &f;
}

static void fx_done(struct fx *f)
{
    assert_int_equal(gf_clock_active_timers(&f->clk), 0);
    gf_clock_close(&f->clk);
    assert_int_equal(gf_alloc_live(), f->live);
}

/* --- the electors ------------------------------------------------------ */

static void test_acquires_an_empty_lease_then_renews(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    struct replica a;
    replica_start(&a, &f->srv, &f->clk, "a", LEASE);
    gf_clock_advance(&f->clk, 0);
    assert_true(gf_leader_leading(a.l));
    assert_int_equal(a.gained, 1);
    assert_true(f->srv.exists);
    assert_string_equal(f->srv.rec.holder, "a");
    assert_int_equal(f->srv.rec.duration_s, 15);
    assert_int_equal(f->srv.rec.transitions, 0);
    assert_int_equal(f->srv.rec.acquire_ms, 1796534496000);
    assert_string_equal(gf_leader_holder(a.l), "a");
    assert_int_equal(gf_leader_transitions(a.l), 1);
    /* Renewals every retry period: renewTime moves, acquireTime stays. */
    for (int i = 1; i <= 20; i++) {
        gf_clock_advance(&f->clk, RETRY);
        assert_true(gf_leader_leading(a.l));
        assert_int_equal(f->srv.rec.renew_ms,
                         1796534496000 + (int64_t)i * RETRY);
        assert_int_equal(f->srv.rec.acquire_ms, 1796534496000);
        assert_int_equal(f->srv.rec.transitions, 0);
    }
    assert_int_equal(f->srv.writes, 21);
    assert_int_equal(a.lost, 0);
    replica_close(&a, &f->clk);
    fx_done(f);
}

static void test_standby_never_takes_over_while_the_record_changes(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    struct replica a, b;
    replica_start(&a, &f->srv, &f->clk, "a", LEASE);
    gf_clock_advance(&f->clk, 0);
    replica_start(&b, &f->srv, &f->clk, "b", LEASE);
    for (int i = 0; i < 100; i++)
        gf_clock_advance(&f->clk, 500);
    assert_true(gf_leader_leading(a.l));
    assert_false(gf_leader_leading(b.l));
    /* The standby reads, and never writes. */
    assert_true(b.c.gets > 10);
    assert_int_equal(b.c.puts, 0);
    assert_string_equal(gf_leader_holder(b.l), "a");
    replica_close(&a, &f->clk);
    replica_close(&b, &f->clk);
    fx_done(f);
}

static void test_takes_over_after_exactly_one_lease_of_no_change(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    struct replica a, b;
    replica_start(&a, &f->srv, &f->clk, "a", LEASE);
    gf_clock_advance(&f->clk, 0);
    a.c.mode = HANG; /* a's API server stops answering */
    gf_clock_advance(&f->clk, 1);
    replica_start(&b, &f->srv, &f->clk, "b", LEASE);
    uint64_t t0 = gf_clock_now_ms(&f->clk);
    gf_clock_advance(&f->clk, 0); /* b's first read: the change it sees */
    gf_clock_advance(&f->clk, LEASE - 1);
    assert_false(gf_leader_leading(b.l));
    assert_int_equal(b.c.puts, 0);
    gf_clock_advance(&f->clk, 1);
    assert_true(gf_leader_leading(b.l));
    assert_int_equal(b.gained_at, t0 + LEASE);
    assert_string_equal(f->srv.rec.holder, "b");
    assert_int_equal(f->srv.rec.transitions, 1);
    /* a had stopped long before. */
    assert_false(gf_leader_leading(a.l));
    assert_true(a.lost_at < b.gained_at);
    replica_close(&a, &f->clk);
    replica_close(&b, &f->clk);
    fx_done(f);
}

static void test_leader_stops_at_the_deadline_before_a_takeover(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    struct replica a, b;
    replica_start(&a, &f->srv, &f->clk, "a", LEASE);
    gf_clock_advance(&f->clk, 0);
    replica_start(&b, &f->srv, &f->clk, "b", LEASE);
    gf_clock_advance(&f->clk, 0);
    for (int i = 0; i < 10; i++)
        gf_clock_advance(&f->clk, 300);
    /* Every renewal fails from now on; the last one that counted was
     * sent at the last multiple of the retry period. */
    a.c.mode = FAIL;
    a.c.fail_err = GF_ETIMEDOUT;
    uint64_t last_ok = 1000 + RETRY; /* renewals at 1000, 3000 */
    while (!gf_leader_leading(b.l) && gf_clock_now_ms(&f->clk) < 100000)
        gf_clock_advance(&f->clk, 1);
    assert_int_equal(a.lost, 1);
    assert_int_equal(a.lost_at, last_ok + RD);
    assert_true(gf_leader_leading(b.l));
    /* The ordering that makes it safe: a stopped before b could start,
     * with a third of the lease to spare. */
    assert_true(a.lost_at < b.gained_at);
    assert_true(b.gained_at >= last_ok + LEASE);
    print_message("renew deadline at +%llu ms, takeover at +%llu ms after "
                  "the last renewal\n",
                  (unsigned long long)(a.lost_at - last_ok),
                  (unsigned long long)(b.gained_at - last_ok));
    /* a is a candidate again, and sees b. */
    a.c.mode = ANSWER;
    gf_clock_advance(&f->clk, RETRY);
    assert_false(gf_leader_leading(a.l));
    assert_string_equal(gf_leader_holder(a.l), "b");
    replica_close(&a, &f->clk);
    replica_close(&b, &f->clk);
    fx_done(f);
}

static void test_hung_renewal_is_cancelled_at_the_deadline(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    struct replica a;
    replica_start(&a, &f->srv, &f->clk, "a", LEASE);
    gf_clock_advance(&f->clk, 0);
    a.c.mode = HANG;
    gf_clock_advance(&f->clk, RETRY); /* a read that never comes back */
    assert_true(a.c.pending);
    gf_clock_advance(&f->clk, RD - RETRY - 1);
    assert_true(gf_leader_leading(a.l));
    gf_clock_advance(&f->clk, 1);
    assert_false(gf_leader_leading(a.l));
    assert_int_equal(a.lost_at, 1000 + RD);
    assert_false(a.c.pending); /* cancelled, answered */
    /* Its API server back: the record still names a, unchanged, so a
     * takes it back with a precondition (nobody else could have). */
    a.c.mode = ANSWER;
    gf_clock_advance(&f->clk, RETRY);
    assert_true(gf_leader_leading(a.l));
    assert_int_equal(a.gained, 2);
    replica_close(&a, &f->clk);
    fx_done(f);
}

static void test_conflict_on_renew(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    struct replica a;
    replica_start(&a, &f->srv, &f->clk, "a", LEASE);
    gf_clock_advance(&f->clk, 0);
    assert_true(gf_leader_leading(a.l));
    /* Between a's read and its write, x takes the Lease: the write's
     * precondition fails (409), a reads again and stops at once. */
    f->srv.race = true;
    f->srv.race_rec = rec_of("x");
    unsigned puts = a.c.puts;
    gf_clock_advance(&f->clk, RETRY);
    assert_int_equal(a.c.puts, puts + 1);
    assert_false(gf_leader_leading(a.l));
    assert_int_equal(a.lost_at, 1000 + RETRY);
    assert_string_equal(f->srv.rec.holder, "x");
    assert_int_equal(a.c.puts, puts + 1); /* no write after the loss */
    replica_close(&a, &f->clk);
    /* A 409 that a wins on the re-read (its record) keeps it leading. */
    struct replica c;
    replica_start(&c, &f->srv, &f->clk, "c", LEASE);
    gf_clock_advance(&f->clk, LEASE + RETRY);
    assert_true(gf_leader_leading(c.l));
    f->srv.race = true;
    f->srv.race_rec = f->srv.rec; /* c's own record, a new version */
    gf_clock_advance(&f->clk, RETRY);
    assert_true(gf_leader_leading(c.l));
    assert_int_equal(c.lost, 0);
    replica_close(&c, &f->clk);
    fx_done(f);
}

static void test_same_id_restart_reacquires_at_once(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    struct replica a, a2, c;
    replica_start(&a, &f->srv, &f->clk, "a", LEASE);
    gf_clock_advance(&f->clk, 0);
    gf_clock_advance(&f->clk, RETRY);
    replica_close(&a, &f->clk); /* a crash: no release */
    gf_clock_advance(&f->clk, 100);
    replica_start(&c, &f->srv, &f->clk, "c", LEASE);
    replica_start(&a2, &f->srv, &f->clk, "a", LEASE);
    gf_clock_advance(&f->clk, 0);
    assert_true(gf_leader_leading(a2.l)); /* at once */
    assert_false(gf_leader_leading(c.l)); /* another id waits */
    assert_int_equal(f->srv.rec.acquire_ms, 1796534496000);
    assert_int_equal(f->srv.rec.transitions, 0);
    replica_close(&a2, &f->clk);
    replica_close(&c, &f->clk);
    fx_done(f);
}

static void test_bad_options(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    struct gf_leader *l = NULL;
    struct gf_leader_opts o = {.clk = &f->clk, .id = "a"};
    assert_int_equal(gf_leader_start(&o, &l), -EINVAL); /* no API */
    assert_null(l);
    fx_done(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decide_rules),
        cmocka_unit_test(test_timing_and_micro_time),
        cmocka_unit_test(test_acquires_an_empty_lease_then_renews),
        cmocka_unit_test(
            test_standby_never_takes_over_while_the_record_changes),
        cmocka_unit_test(test_takes_over_after_exactly_one_lease_of_no_change),
        cmocka_unit_test(test_leader_stops_at_the_deadline_before_a_takeover),
        cmocka_unit_test(test_hung_renewal_is_cancelled_at_the_deadline),
        cmocka_unit_test(test_conflict_on_renew),
        cmocka_unit_test(test_same_id_restart_reacquires_at_once),
        cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
