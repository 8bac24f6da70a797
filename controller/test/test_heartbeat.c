/*
 * Tests for controller/heartbeat: the per-member heartbeat on the manual
 * clock, with a scripted member. A fake io records every call (and its
 * body) and the test answers it as an API server would: the cadence of
 * D/3, create then patch with the last resourceVersion, suspect on a
 * failure, no renewal while suspect (unless only the watches are down)
 * but a probe every D/3, healthy again
 * only when a probe was answered and the watches are synced, and the
 * rules for hb_sent (a renewal that may have landed counts; a refusal
 * does not).
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
#include "common/err.h"
#include "common/file.h"
#include "common/json.h"
#include "controller/fence.h"
#include "controller/internal.h"

#define D_MS 3000 /* D/3 = 1000, Tw = min(500, M/2 = 1000) = 500 */
#define M_MS 2000
#define MAX_CALLS 64

struct call {
    enum gf__hb_call kind;
    uint64_t at, timeout;
    char body[512];
};

struct fake {
    struct gf_clock clk;
    struct gf__hb hb;
    struct gf_log_ctx lc;
    bool synced;
    int refuse_send; /* send returns this when non-zero */
    struct call calls[MAX_CALLS];
    size_t n, total; /* calls kept, calls made */
    int64_t live;
    int reachable; /* io->reachable calls */
    int changed;   /* io->changed calls */
};

static struct fake F;

static int fake_send(struct gf__hb *hb, enum gf__hb_call call, const char *body,
                     size_t len, uint64_t timeout_ms)
{
    (void)hb;
    if (F.refuse_send != 0)
        return F.refuse_send;
    if (F.n == MAX_CALLS) {
        /* Long runs (the simulations) keep the last call only. */
        F.calls[0] = F.calls[F.n - 1];
        F.n = 1;
    }
    F.total++;
    struct call *c = &F.calls[F.n++];
    c->kind = call;
    c->at = gf_clock_now_ms(&F.clk);
    c->timeout = timeout_ms;
    snprintf(c->body, sizeof(c->body), "%.*s", (int)len, body ? body : "");
    return 0;
}

static bool fake_synced(struct gf__hb *hb)
{
    (void)hb;
    return F.synced;
}

static void fake_reachable(struct gf__hb *hb)
{
    (void)hb;
    F.reachable++;
}

static void fake_changed(struct gf__hb *hb)
{
    (void)hb;
    F.changed++;
}

static const struct gf__hb_io io = {.send = fake_send,
                                    .synced = fake_synced,
                                    .reachable = fake_reachable,
                                    .changed = fake_changed};

static int setup(void **state)
{
    (void)state;
    memset(&F, 0, sizeof(F));
    F.live = gf_alloc_live();
    gf_clock_init_manual(&F.clk, 1000, 1700000000000);
    F.lc = (struct gf_log_ctx){.comp = "test", .cluster = "west"};
    gf__hb_init(&F.hb, &F.clk, &io, NULL, &F.lc, "hub-0");
    gf__hb_set_timing(&F.hb, D_MS, M_MS, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    gf__hb_stop(&F.hb);
    assert_int_equal(gf_clock_active_timers(&F.clk), 0);
    gf_clock_close(&F.clk);
    assert_int_equal(gf_alloc_live(), F.live);
    return 0;
}

/* A fresh fixture within one test. */
static void restart(void **state)
{
    teardown(state);
    setup(state);
}

/* Answers the last call: 2xx with a Lease at resourceVersion rv. */
static void answer_ok(const char *rv)
{
    char js[128];
    snprintf(js, sizeof(js), "{\"metadata\":{\"resourceVersion\":\"%s\"}}", rv);
    cJSON *o = cJSON_Parse(js);
    gf__hb_answer(&F.hb, 0, 200, o);
    cJSON_Delete(o);
}

static void answer_err(int err, long code)
{
    gf__hb_answer(&F.hb, err, code, NULL);
}

static const struct call *last(void)
{
    assert_true(F.n > 0);
    return &F.calls[F.n - 1];
}

/* Started and synced: the first renewal (a create), answered. */
static void healthy_with_rv(const char *rv)
{
    F.synced = true;
    gf__hb_start(&F.hb);
    gf__hb_check(&F.hb);
    assert_int_equal(F.n, 1);
    assert_int_equal(last()->kind, GF__HB_CREATE);
    answer_ok(rv);
    assert_true(gf__hb_healthy(&F.hb));
}

static void test_microtime_has_six_fractional_digits(void **state)
{
    (void)state;
    char s[GF__HB_TIME_MAX];
    gf__hb_microtime(1796534496123, s);
    assert_string_equal(s, "2026-12-06T05:21:36.123000Z");
    gf__hb_microtime(1796534496000, s);
    assert_string_equal(s, "2026-12-06T05:21:36.000000Z");
    gf__hb_microtime(5, s);
    assert_string_equal(s, "1970-01-01T00:00:00.005000Z");
}

/* The Lease a first renewal creates, pinned to
 * testdata/heartbeat-lease.json, which e2e/test_hub_realk8s.sh creates
 * and renews on a real kube-apiserver (it validates MicroTime). */
static void test_created_lease_is_the_pinned_one(void **state)
{
    (void)state;
    gf_clock_advance(&F.clk, 123); /* a fraction of a second */
    healthy_with_rv("1");
    char *want = NULL;
    size_t len = 0;
    assert_int_equal(
        gf_file_read("controller/test/testdata/heartbeat-lease.json", 1 << 16,
                     &want, &len),
        0);
    cJSON *a = cJSON_Parse(F.calls[0].body);
    cJSON *b = cJSON_ParseWithLength(want, len);
    if (!gf_json_equal(a, b))
        fail_msg("built %s", F.calls[0].body);
    cJSON_Delete(a);
    cJSON_Delete(b);
    gf_free(want);
}

static void test_renews_every_third_of_d_with_create_then_patch(void **state)
{
    (void)state;
    healthy_with_rv("7");
    const struct call *c = last();
    /* The whole Lease: holder, D in seconds, MicroTimes. */
    assert_non_null(strstr(c->body, "\"holderIdentity\":\"hub-0\""));
    assert_non_null(strstr(c->body, "\"leaseDurationSeconds\":3"));
    assert_non_null(strstr(c->body, "\"name\":\"gpufed-heartbeat\""));
    assert_non_null(strstr(c->body, "\"namespace\":\"gpufed-system\""));
    assert_non_null(strstr(c->body, "\"acquireTime\":\"2023-11-14T22:13:"));
    assert_non_null(strstr(c->body, ".000000Z\""));
    assert_int_equal(c->timeout, 500); /* Tw = min(D/6, M/2) */
    uint64_t t0 = gf_clock_now_ms(&F.clk);
    for (int i = 1; i <= 5; i++) {
        gf_clock_advance(&F.clk, 1000);
        assert_int_equal(F.n, (size_t)i + 1);
        assert_int_equal(last()->kind, GF__HB_PATCH);
        assert_int_equal(last()->at - t0, (uint64_t)i * 1000);
        assert_null(strstr(last()->body, "acquireTime"));
        assert_non_null(strstr(last()->body, "\"renewTime\":"));
        answer_ok("8");
        assert_int_equal(F.hb.sent_ms, last()->at);
        assert_int_equal(F.hb.ok_ms, last()->at);
    }
    assert_int_equal(F.hb.n_ok, 6);
    assert_int_equal(F.hb.n_err, 0);
    assert_string_equal(F.hb.rv, "8");
}

static void test_conflict_rereads_then_renews(void **state)
{
    (void)state;
    healthy_with_rv("7");
    gf_clock_advance(&F.clk, 1000);
    assert_int_equal(last()->kind, GF__HB_PATCH);
    uint64_t sent_before = F.hb.sent_ms;
    answer_err(GF_ECONFLICT, 409);
    /* A refusal: nothing landed. */
    assert_int_equal(F.hb.sent_ms, sent_before);
    assert_int_equal(last()->kind, GF__HB_GET);
    answer_ok("12");
    assert_int_equal(last()->kind, GF__HB_PATCH);
    assert_string_equal(F.hb.rv, "12");
    answer_ok("13");
    assert_true(gf__hb_healthy(&F.hb));
    assert_int_equal(F.hb.n_err, 0);
    /* A create that finds the Lease there reads it, then patches. */
    restart(state);
    F.synced = true;
    gf__hb_start(&F.hb);
    gf__hb_check(&F.hb);
    assert_int_equal(last()->kind, GF__HB_CREATE);
    answer_err(GF_EEXIST, 409);
    assert_int_equal(last()->kind, GF__HB_GET);
    answer_ok("3");
    assert_int_equal(last()->kind, GF__HB_PATCH);
    answer_ok("4");
    assert_true(gf__hb_healthy(&F.hb));
}

static void test_failure_makes_suspect_and_stops_renewals(void **state)
{
    (void)state;
    healthy_with_rv("7");
    gf_clock_advance(&F.clk, 1000);
    uint64_t sent = last()->at;
    answer_err(GF_ETIMEDOUT, 0);
    assert_true(F.hb.suspect);
    assert_false(gf__hb_healthy(&F.hb));
    /* A timeout may have landed: it counts as sent. */
    assert_int_equal(F.hb.sent_ms, sent);
    assert_int_equal(F.hb.n_err, 1);
    /* Suspect: only probes, one each D/3, never a renewal. */
    size_t n0 = F.n;
    for (int i = 1; i <= 4; i++) {
        gf_clock_advance(&F.clk, 1000);
        assert_int_equal(F.n, n0 + (size_t)i);
        assert_int_equal(last()->kind, GF__HB_GET);
        assert_int_equal(last()->timeout, 500);
        answer_err(GF_ETIMEDOUT, 0);
    }
    assert_true(F.hb.suspect);
    assert_int_equal(F.hb.sent_ms, sent); /* probes are not renewals */
}

static void test_refusal_does_not_count_as_sent(void **state)
{
    (void)state;
    healthy_with_rv("7");
    uint64_t first = F.hb.sent_ms;
    gf_clock_advance(&F.clk, 1000);
    answer_err(GF_EFORBIDDEN, 403);
    assert_true(F.hb.suspect);
    assert_int_equal(F.hb.sent_ms, first);
    /* A 5xx may have been applied before the server failed. */
    restart(state);
    healthy_with_rv("7");
    gf_clock_advance(&F.clk, 1000);
    uint64_t at = last()->at;
    gf_clock_advance(&F.clk, 400);
    answer_err(GF_ESERVER, 503);
    assert_int_equal(F.hb.sent_ms, at);
}

static void test_probe_and_sync_make_healthy_again(void **state)
{
    (void)state;
    healthy_with_rv("7");
    gf_clock_advance(&F.clk, 1000);
    answer_err(GF_ETRANSPORT, 0);
    assert_true(F.hb.suspect);
    /* The probe is answered, but the watches have not synced again. */
    F.synced = false;
    gf_clock_advance(&F.clk, 1000);
    assert_int_equal(last()->kind, GF__HB_GET);
    size_t n = F.n;
    assert_int_equal(F.reachable, 0);
    answer_ok("9");
    /* Reachable again: the member's watches are told to stop waiting
     * out their backoff. */
    assert_int_equal(F.reachable, 1);
    assert_true(F.hb.suspect);
    assert_int_equal(F.n, n); /* no renewal yet */
    /* The watches sync: healthy, renewed at once with what the probe
     * read. */
    F.synced = true;
    gf__hb_check(&F.hb);
    assert_false(F.hb.suspect);
    assert_int_equal(F.n, n + 1);
    assert_int_equal(last()->kind, GF__HB_PATCH);
    answer_ok("10");
    assert_true(gf__hb_healthy(&F.hb));
    assert_int_equal(F.hb.sent_ms, last()->at);
}

/*
 * The heal as a partition ends it: the watches relist first (their
 * backoff is cut short by nothing but time), and the probe's answer then
 * finds the member healthy, outside any pass. The hub is told at once,
 * and told once per change: the ledger's freshness and the leases that
 * wait on the member (Suspect ones, loans) must not sit out the rest of
 * the pass period.
 */
static void test_heal_by_a_probe_is_told_at_once(void **state)
{
    (void)state;
    healthy_with_rv("7");
    assert_int_equal(F.changed, 0);
    gf_clock_advance(&F.clk, 1000);
    answer_err(GF_ETIMEDOUT, 0);
    assert_true(F.hb.suspect);
    assert_int_equal(F.changed, 1);
    /* Probes that fail change nothing. */
    gf_clock_advance(&F.clk, 1000);
    answer_err(GF_ETIMEDOUT, 0);
    assert_int_equal(F.changed, 1);
    /* The watches are synced before the probe is answered. */
    F.synced = true;
    gf_clock_advance(&F.clk, 1000);
    assert_int_equal(last()->kind, GF__HB_GET);
    answer_ok("9");
    assert_false(F.hb.suspect);
    assert_int_equal(F.changed, 2);
    assert_int_equal(last()->kind, GF__HB_PATCH);
    answer_ok("10");
    assert_true(gf__hb_healthy(&F.hb));
    /* The first renewal after the heal is told too: from it the hub
     * reckons when the agent can have left its fence (recovering). */
    assert_int_equal(F.changed, 3);
    gf__hb_check(&F.hb);
    assert_int_equal(F.changed, 3);
}

/*
 * Watches that stop while the API server answers (it restarted and lost
 * its watch cache: the relists wait out a backoff) make the member
 * suspect, so its caches are not read, but do not stop the renewals:
 * stopping them would make the agent fence every copy there after D.
 */
static void test_watches_lost_make_suspect(void **state)
{
    (void)state;
    /* Before the first sync the member is not suspect, only unknown. */
    gf__hb_start(&F.hb);
    gf__hb_check(&F.hb);
    assert_false(F.hb.suspect);
    assert_false(gf__hb_healthy(&F.hb));
    F.n = 0;
    gf_clock_advance(&F.clk, 1000);
    answer_ok("1"); /* the tick's renewal */
    F.synced = true;
    gf__hb_check(&F.hb);
    /* first sync: renewed at once */
    assert_int_equal(last()->kind, GF__HB_PATCH);
    answer_ok("2");
    assert_true(gf__hb_healthy(&F.hb));
    F.synced = false;
    gf__hb_check(&F.hb);
    assert_true(F.hb.suspect);
    assert_true(F.hb.stale_only);
    assert_false(gf__hb_healthy(&F.hb));
    assert_string_equal(F.hb.why, "watches not synced");
    /* Still renewed every D/3, and each success counts as sent and cuts
     * the watches' backoff short, as a probe's answer does. */
    for (int i = 0; i < 3; i++) {
        size_t n = F.n;
        int r = F.reachable;
        gf_clock_advance(&F.clk, 1000);
        assert_int_equal(F.n, n + 1);
        assert_int_equal(last()->kind, GF__HB_PATCH);
        answer_ok("3");
        assert_int_equal(F.hb.sent_ms, last()->at);
        assert_int_equal(F.reachable, r + 1);
        assert_true(F.hb.suspect);
    }
    /* The watches sync: healthy again, renewed at once. */
    F.synced = true;
    gf__hb_check(&F.hb);
    assert_true(gf__hb_healthy(&F.hb));
    assert_false(F.hb.stale_only);
    assert_int_equal(last()->kind, GF__HB_PATCH);
    answer_ok("4");
}

/* A renewal that fails while only the watches were down ends the
 * renewals: from then on the member is probed, and sent stays at the
 * failed renewal (it may have landed), as for a healthy member. */
static void test_failure_while_watches_down_stops_renewals(void **state)
{
    (void)state;
    healthy_with_rv("7");
    F.synced = false;
    gf__hb_check(&F.hb);
    assert_true(F.hb.stale_only);
    gf_clock_advance(&F.clk, 1000);
    assert_int_equal(last()->kind, GF__HB_PATCH);
    uint64_t sent = last()->at;
    answer_err(GF_ETIMEDOUT, 0);
    assert_true(F.hb.suspect);
    assert_false(F.hb.stale_only);
    assert_int_equal(F.hb.sent_ms, sent);
    assert_string_equal(F.hb.why, "renewal failed: timed out");
    for (int i = 0; i < 3; i++) {
        gf_clock_advance(&F.clk, 1000);
        assert_int_equal(last()->kind, GF__HB_GET);
        answer_err(GF_ETIMEDOUT, 0);
    }
    assert_int_equal(F.hb.sent_ms, sent);
    /* A probe answered and the watches synced: healthy again. */
    gf_clock_advance(&F.clk, 1000);
    answer_ok("8");
    assert_true(F.hb.suspect);
    F.synced = true;
    gf__hb_check(&F.hb);
    assert_true(gf__hb_healthy(&F.hb));
    answer_ok("9");
}

static void test_pause_writes_nothing_and_resume_resets_sent(void **state)
{
    (void)state;
    healthy_with_rv("7");
    gf__hb_pause(&F.hb);
    size_t n = F.n;
    gf_clock_advance(&F.clk, 5000);
    assert_int_equal(F.n, n);
    gf__hb_resume(&F.hb, gf_clock_now_ms(&F.clk));
    assert_int_equal(F.hb.sent_ms, gf_clock_now_ms(&F.clk));
    gf_clock_advance(&F.clk, 1000);
    assert_int_equal(F.n, n + 1);
    answer_ok("8");
    /* hb_sent on the wall clock follows the monotonic one. */
    gf_clock_advance(&F.clk, 250);
    assert_int_equal(gf__hb_sent_wall_ms(&F.hb),
                     gf_clock_wall_ms(&F.clk) - 250);
}

/* A replica standing by writes nothing but keeps its caches warm: while
 * a member's watches are down it reads the heartbeat Lease (a GET, never
 * a write) every D/3, and an answer cuts the watches' backoff short, as
 * the leader's probe does. Without it a standby's watches of a restarted
 * member waited out their backoff (up to 30 s): its ledger, and the
 * caches a failover starts from, lagged that long (chaos seed 5). */
static void test_standby_probes_a_member_whose_watches_are_down(void **state)
{
    (void)state;
    healthy_with_rv("7");
    gf__hb_pause(&F.hb);
    size_t n = F.n;
    uint64_t sent = F.hb.sent_ms;
    /* Watches up: nothing at all. */
    gf_clock_advance(&F.clk, 1000);
    assert_int_equal(F.n, n);
    /* The member's API server restarts: its watches back off. */
    F.synced = false;
    gf_clock_advance(&F.clk, 1000);
    assert_int_equal(F.n, n + 1);
    assert_int_equal(last()->kind, GF__HB_GET);
    assert_int_equal(last()->timeout, 500);
    answer_ok("8");
    assert_int_equal(F.reachable, 1);
    /* A standby judges nothing: not suspect, nothing counts as sent. */
    assert_false(F.hb.suspect);
    assert_int_equal(F.hb.sent_ms, sent);
    /* Still down: again a period later; a probe that fails is only not
     * evidence. */
    gf_clock_advance(&F.clk, 1000);
    assert_int_equal(F.n, n + 2);
    answer_err(GF_ETRANSPORT, 0);
    assert_int_equal(F.reachable, 1);
    assert_false(F.hb.suspect);
    assert_int_equal(F.hb.n_err, 0);
    /* One at a time. */
    gf_clock_advance(&F.clk, 1000);
    assert_int_equal(F.n, n + 3);
    gf_clock_advance(&F.clk, 1000);
    assert_int_equal(F.n, n + 3);
    for (size_t i = n; i < F.n; i++)
        assert_int_equal(F.calls[i].kind, GF__HB_GET);
    /* Leading again with the probe still out: its answer only says
     * reachable, then the ticks renew. */
    F.synced = true;
    gf__hb_resume(&F.hb, gf_clock_now_ms(&F.clk));
    answer_ok("8");
    assert_int_equal(F.reachable, 2);
    assert_int_equal(F.n, n + 3);
    gf_clock_advance(&F.clk, 1000);
    assert_int_equal(F.n, n + 4);
    assert_int_equal(last()->kind, GF__HB_PATCH);
    answer_ok("9");
    assert_true(gf__hb_healthy(&F.hb));
}

static void test_cancelled_renewal_may_have_landed(void **state)
{
    (void)state;
    healthy_with_rv("7");
    gf_clock_advance(&F.clk, 1000);
    uint64_t at = last()->at;
    gf__hb_pause(&F.hb);
    gf_clock_advance(&F.clk, 100);
    answer_err(GF_ECANCELED, 0); /* the pause cut it off */
    assert_int_equal(F.hb.sent_ms, at);
    assert_false(F.hb.suspect); /* not a failure of the member */
}

static void test_unsent_renewal_is_not_sent(void **state)
{
    (void)state;
    healthy_with_rv("7");
    uint64_t sent = F.hb.sent_ms;
    F.refuse_send = -ENOTCONN;
    gf_clock_advance(&F.clk, 1000);
    assert_true(F.hb.suspect);
    assert_int_equal(F.hb.sent_ms, sent);
    F.refuse_send = 0;
}

/* --- a heal, and the agent that may still be fenced --------------------- */

/* Renewals stopped by a failure: after the heal the member is recovering
 * until the first renewal after it is acknowledged, then for one fenced
 * agent poll, min(D/6, 1 s) drifted, plus Tw. */
static void test_recovering_after_a_heal_until_the_agent_can_poll(void **state)
{
    (void)state;
    gf__hb_set_timing(&F.hb, D_MS, M_MS, 10000); /* rho = 1% */
    healthy_with_rv("7");
    assert_int_equal(gf__hb_recovering_until_wall_ms(&F.hb), 0);
    gf_clock_advance(&F.clk, 1000);
    answer_err(GF_ETIMEDOUT, 0);
    assert_true(F.hb.suspect);
    gf_clock_advance(&F.clk, 1000);
    answer_ok("8"); /* the probe */
    assert_false(F.hb.suspect);
    /* Healed, the renewal not answered yet: not before it is. */
    assert_int_equal(gf__hb_recovering_until_wall_ms(&F.hb), INT64_MAX);
    gf_clock_advance(&F.clk, 40);
    int changed = F.changed;
    answer_ok("9");
    assert_int_equal(F.changed, changed + 1);
    /* poll = min(3000/6, 1000) = 500, drifted 505; Tw = 500. */
    int64_t want = gf_clock_wall_ms(&F.clk) + 505 + 500;
    assert_int_equal(gf__hb_recovering_until_wall_ms(&F.hb), want);
    gf_clock_advance(&F.clk, 1004);
    assert_int_equal(gf__hb_recovering_until_wall_ms(&F.hb), want);
    gf_clock_advance(&F.clk, 1);
    assert_int_equal(gf__hb_recovering_until_wall_ms(&F.hb), 0);

    /* Only the watches were down: the renewals went on, so the agent
     * never lost the heartbeat and nothing is recovering. */
    restart(state);
    healthy_with_rv("7");
    F.synced = false;
    gf__hb_check(&F.hb);
    assert_true(F.hb.suspect && F.hb.stale_only);
    gf_clock_advance(&F.clk, 1000);
    answer_ok("8");
    F.synced = true;
    gf__hb_check(&F.hb);
    assert_false(F.hb.suspect);
    assert_int_equal(gf__hb_recovering_until_wall_ms(&F.hb), 0);
}

/* --- lowering D ------------------------------------------------------------
 */

/* The D the body of the last renewal carries, in seconds. */
static int body_d_secs(const struct call *c)
{
    cJSON *o = cJSON_Parse(c->body);
    int64_t secs = -1;
    if (gf_json_as_int(GF_JSON_AT(o, "spec", "leaseDurationSeconds"), &secs) !=
        0)
        secs = -1;
    cJSON_Delete(o);
    return (int)secs;
}

/* 30 s to 3 s: 10 s at once (at most 3 times shorter), then 4 s, then
 * 3 s, each once the previous term has passed after its first
 * acknowledged renewal; the bound keeps the previous term until then. A
 * longer D is written at once. */
static void test_lowered_d_is_stepped_and_the_bound_kept(void **state)
{
    (void)state;
    gf__hb_set_timing(&F.hb, 30000, M_MS, 0);
    healthy_with_rv("1");
    assert_int_equal(body_d_secs(last()), 30);
    assert_int_equal(gf__hb_bound_d_ms(&F.hb), 30000);
    const int steps[][2] = {{10, 30000}, {4, 10000}, {3, 4000}};
    for (size_t i = 0; i < 3; i++) {
        gf__hb_set_timing(&F.hb, 3000, M_MS, 0);
        assert_int_equal(F.hb.d_ms, steps[i][0] * 1000);
        assert_int_equal(gf__hb_bound_d_ms(&F.hb), steps[i][1]);
        /* The step holds for the old term after its first renewal. */
        gf_clock_advance(&F.clk, (uint64_t)steps[i][1] / 3);
        assert_int_equal(body_d_secs(last()), steps[i][0]);
        uint64_t ack = last()->at;
        answer_ok("2");
        while (F.hb.sent_ms < ack + (uint64_t)steps[i][1]) {
            gf__hb_set_timing(&F.hb, 3000, M_MS, 0);
            assert_int_equal(F.hb.d_ms, steps[i][0] * 1000);
            assert_int_equal(gf__hb_bound_d_ms(&F.hb), steps[i][1]);
            gf_clock_advance(&F.clk, (uint64_t)F.hb.d_ms / 3);
            answer_ok("3");
        }
    }
    gf__hb_set_timing(&F.hb, 3000, M_MS, 0);
    assert_int_equal(gf__hb_bound_d_ms(&F.hb), 3000);
    /* Longer: at once. */
    gf__hb_set_timing(&F.hb, 20000, M_MS, 0);
    assert_int_equal(F.hb.d_ms, 20000);
    assert_int_equal(gf__hb_bound_d_ms(&F.hb), 20000);
    gf_clock_advance(&F.clk, 1000);
    assert_int_equal(body_d_secs(last()), 20);
    answer_ok("4");
}

/* A restarted hub finds the Lease written by its predecessor with a
 * longer term: it goes on writing that term, counts 3 times it (the
 * predecessor may have been stepping down to it) until that has passed
 * since its own first acknowledged renewal, and only then steps down;
 * before it knows, its bound is the longest term an agent accepts. */
static void test_a_longer_term_found_in_the_lease_is_kept(void **state)
{
    (void)state;
    assert_int_equal(gf__hb_bound_d_ms(&F.hb), GF__HB_MAX_TERM_MS);
    F.synced = true;
    gf__hb_start(&F.hb);
    gf__hb_check(&F.hb);
    assert_int_equal(last()->kind, GF__HB_CREATE);
    assert_int_equal(gf__hb_bound_d_ms(&F.hb), GF__HB_MAX_TERM_MS);
    answer_err(GF_EEXIST, 409);
    assert_int_equal(last()->kind, GF__HB_GET);
    cJSON *o = cJSON_Parse("{\"metadata\":{\"resourceVersion\":\"5\"},"
                           "\"spec\":{\"leaseDurationSeconds\":30}}");
    gf__hb_answer(&F.hb, 0, 200, o);
    cJSON_Delete(o);
    assert_int_equal(last()->kind, GF__HB_PATCH);
    assert_int_equal(body_d_secs(last()), 30);
    assert_int_equal(gf__hb_bound_d_ms(&F.hb), 90000);
    uint64_t ack = last()->at;
    answer_ok("6");
    /* Held: 30 s written, 90 s counted, for 90 s after that renewal. */
    while (F.hb.sent_ms < ack + 90000) {
        gf__hb_set_timing(&F.hb, D_MS, M_MS, 0);
        assert_int_equal(F.hb.d_ms, 30000);
        assert_int_equal(gf__hb_bound_d_ms(&F.hb), 90000);
        gf_clock_advance(&F.clk, 10000);
        assert_int_equal(body_d_secs(last()), 30);
        answer_ok("7");
    }
    gf__hb_set_timing(&F.hb, D_MS, M_MS, 0);
    assert_int_equal(F.hb.d_ms, 10000);
    assert_int_equal(gf__hb_bound_d_ms(&F.hb), 30000);
}

/*
 * The hub and a real agent rule (controller/fence.c) on one manual clock:
 * the hub's renewals land on a simulated Lease 5 ms after they are sent,
 * the agent reads it every poll of the term it last read. D is lowered
 * from 30 s to 3 s while nothing is cut off: the agent must never fence.
 * Then, for a cut of the hub at instants across the change, the agent
 * must fence no later than the hub's own fencing instant (S1).
 */
struct sim {
    struct gf_fence fence;
    char lease[512]; /* the last renewal that landed ("" none) */
    size_t answered; /* hub calls answered */
    uint64_t next_read, fenced_at;
    bool cut;
    int lease_d; /* leaseDurationSeconds on the Lease */
};

static void sim_step(struct sim *S, int64_t want_d)
{
    gf_clock_advance(&F.clk, 5);
    uint64_t now = gf_clock_now_ms(&F.clk);
    if (now % 1000 == 0) /* the pass, every second */
        gf__hb_set_timing(&F.hb, want_d, M_MS, 10000);
    if (F.total > S->answered && now >= F.calls[F.n - 1].at + 5) {
        S->answered = F.total;
        const struct call *c = &F.calls[F.n - 1];
        if (S->cut) {
            answer_err(GF_ETIMEDOUT, 0);
        } else if (c->kind == GF__HB_GET) {
            answer_ok("1");
        } else {
            snprintf(S->lease, sizeof(S->lease), "%s", c->body);
            S->lease_d = body_d_secs(c);
            answer_ok("1");
        }
    }
    if (now >= S->next_read) {
        struct gf_hb_read r = {0};
        cJSON *o = S->lease[0] != '\0' ? cJSON_Parse(S->lease) : NULL;
        if (o != NULL)
            gf_fence_lease_parse(o, &r);
        cJSON_Delete(o);
        if (gf_fence_on_read(&S->fence, &r, now, now,
                             gf_clock_wall_ms(&F.clk)) == GF_FENCE_ENTER &&
            S->fenced_at == 0)
            S->fenced_at = now;
        S->next_read = now + gf_fence_poll_ms(&S->fence);
    }
    if (gf_fence_tick(&S->fence, now) == GF_FENCE_ENTER && S->fenced_at == 0)
        S->fenced_at = now;
}

/* The hub's fencing instant on its clock, as policy/decide reckons it. */
static uint64_t hub_fence_at(void)
{
    int64_t d = gf__hb_bound_d_ms(&F.hb);
    return F.hb.sent_ms + (uint64_t)(d + d * 10000 / 1000000 + M_MS);
}

static void sim_start(struct sim *S)
{
    memset(S, 0, sizeof(*S));
    gf_fence_init(&S->fence, 0);
    gf__hb_set_timing(&F.hb, 30000, M_MS, 10000);
    F.synced = true;
    gf__hb_start(&F.hb);
    gf__hb_check(&F.hb);
    /* Both settle on D = 30 s for a minute. */
    for (int i = 0; i < 12000; i++)
        sim_step(S, 30000);
    assert_int_equal(S->lease_d, 30);
    assert_int_equal(S->fenced_at, 0);
}

static void test_lowering_d_never_fences_an_agent(void **state)
{
    (void)state;
    struct sim S;
    sim_start(&S);
    uint64_t t0 = gf_clock_now_ms(&F.clk), at3 = 0, bound3 = 0;
    for (int i = 0; i < 24000; i++) {
        sim_step(&S, 3000);
        if (at3 == 0 && S.lease_d == 3)
            at3 = gf_clock_now_ms(&F.clk);
        if (bound3 == 0 && gf__hb_bound_d_ms(&F.hb) == 3000)
            bound3 = gf_clock_now_ms(&F.clk);
    }
    assert_int_equal(S.fenced_at, 0);
    assert_int_equal(S.fence.fences, 0);
    assert_int_equal(S.fence.d_ms, 3000);
    assert_true(at3 != 0 && bound3 != 0);
    printf("# 30 s -> 3 s: the Lease carries 3 s after %llu ms, the hub's "
           "bound after %llu ms\n",
           (unsigned long long)(at3 - t0), (unsigned long long)(bound3 - t0));
    gf__hb_stop(&F.hb);
    while (F.total > S.answered)
        sim_step(&S, 3000);
}

static void test_lowering_d_the_hub_fences_after_the_agent(void **state)
{
    for (uint64_t cut = 0; cut <= 60000; cut += 1370) {
        restart(state);
        struct sim S;
        sim_start(&S);
        for (uint64_t t = 0; t < cut; t += 5)
            sim_step(&S, 3000);
        S.cut = true;
        uint64_t t_cut = gf_clock_now_ms(&F.clk);
        while (S.fenced_at == 0) {
            sim_step(&S, 3000);
            assert_true(gf_clock_now_ms(&F.clk) < t_cut + 120000);
        }
        assert_true(F.hb.suspect);
        uint64_t hub = hub_fence_at();
        if (S.fenced_at > hub)
            fail_msg("cut %llu ms after lowering D: the agent fenced at "
                     "%llu, after the hub's fencing instant %llu (bound %lld)",
                     (unsigned long long)cut, (unsigned long long)S.fenced_at,
                     (unsigned long long)hub,
                     (long long)gf__hb_bound_d_ms(&F.hb));
        gf__hb_stop(&F.hb);
        while (F.total > S.answered)
            sim_step(&S, 3000);
    }
}

/* --- a new hub process, and a Lease that was absent --------------------- */

#define RV_M 5000 /* the default fenceMargin */

/*
 * A Lease store answering as an API server (CREATE 409 when present, PATCH
 * 404 when absent, GET returns the Lease with its spec); renewals land 5 ms
 * after they are sent. The agent runs the real rule (fence.c) and reads
 * every poll of the term it last read; while blind its reads fail (no
 * answer; the next is sent a poll later, as agent.c does).
 */
struct rsim {
    struct gf_fence fence;
    char lease[512]; /* {"spec":...} ("" absent) */
    size_t answered;
    uint64_t next_read, fenced_at;
    bool cut;
    uint64_t blind_from, blind_until;
    int lease_d;
    int64_t want;
};

/* The hub's fencing instant as policy/decide reckons it (rho 1%). */
static uint64_t rsim_hub_fence_at(void)
{
    int64_t d = gf__hb_bound_d_ms(&F.hb);
    return F.hb.sent_ms + (uint64_t)(d + d * 10000 / 1000000 + RV_M);
}

static void rsim_answer(struct rsim *S)
{
    const struct call *c = &F.calls[F.n - 1];
    if (S->cut) {
        answer_err(GF_ETIMEDOUT, 0);
        return;
    }
    bool present = S->lease[0] != '\0';
    if (c->kind == GF__HB_GET) {
        if (!present) {
            answer_err(GF_ENOTFOUND, 404);
            return;
        }
        cJSON *o = cJSON_Parse(S->lease);
        cJSON *md = cJSON_AddObjectToObject(o, "metadata");
        cJSON_AddStringToObject(md, "resourceVersion", "1");
        gf__hb_answer(&F.hb, 0, 200, o);
        cJSON_Delete(o);
        return;
    }
    if (c->kind == GF__HB_CREATE && present) {
        answer_err(GF_EEXIST, 409);
        return;
    }
    if (c->kind == GF__HB_PATCH && !present) {
        answer_err(GF_ENOTFOUND, 404);
        return;
    }
    cJSON *o = cJSON_Parse(c->body);
    cJSON *spec = cJSON_DetachItemFromObject(o, "spec");
    cJSON *l = cJSON_CreateObject();
    cJSON_AddItemToObject(l, "spec", spec);
    char *s = cJSON_PrintUnformatted(l);
    snprintf(S->lease, sizeof(S->lease), "%s", s);
    cJSON_free(s);
    cJSON_Delete(l);
    cJSON_Delete(o);
    S->lease_d = body_d_secs(c);
    answer_ok("1");
}

static void rsim_step(struct rsim *S)
{
    gf_clock_advance(&F.clk, 5);
    uint64_t now = gf_clock_now_ms(&F.clk);
    if (now % 1000 == 0) /* the pass */
        gf__hb_set_timing(&F.hb, S->want, RV_M, 10000);
    if (F.total > S->answered && now >= F.calls[F.n - 1].at + 5) {
        S->answered = F.total;
        rsim_answer(S);
    }
    if (now >= S->next_read) {
        if (!(now >= S->blind_from && now < S->blind_until)) {
            struct gf_hb_read r = {0};
            cJSON *o = S->lease[0] != '\0' ? cJSON_Parse(S->lease) : NULL;
            if (o != NULL)
                gf_fence_lease_parse(o, &r);
            cJSON_Delete(o);
            if (gf_fence_on_read(&S->fence, &r, now, now,
                                 gf_clock_wall_ms(&F.clk)) == GF_FENCE_ENTER &&
                S->fenced_at == 0)
                S->fenced_at = now;
        }
        S->next_read = now + gf_fence_poll_ms(&S->fence);
    }
    if (gf_fence_tick(&S->fence, now) == GF_FENCE_ENTER && S->fenced_at == 0)
        S->fenced_at = now;
}

static void rsim_start(struct rsim *S, uint64_t phase)
{
    memset(S, 0, sizeof(*S));
    S->blind_from = S->blind_until = UINT64_MAX;
    gf_fence_init(&S->fence, 0);
    S->want = 30000;
    S->next_read = gf_clock_now_ms(&F.clk) + phase;
    gf__hb_set_timing(&F.hb, 30000, RV_M, 10000);
    F.synced = true;
    gf__hb_start(&F.hb);
    gf__hb_check(&F.hb);
    for (int i = 0; i < 12000; i++)
        rsim_step(S);
    assert_int_equal(S->lease_d, 30);
    assert_int_equal(S->fenced_at, 0);
}

/* The process goes (nothing in flight) and a new one with the policy's
 * D = want leads at once (the same --id, or a standby given the lead). */
static void rsim_new_hub(struct rsim *S, int64_t want)
{
    while (F.total > S->answered)
        rsim_step(S);
    gf__hb_stop(&F.hb);
    gf__hb_init(&F.hb, &F.clk, &io, NULL, &F.lc, "hub-0");
    S->want = want;
    gf__hb_set_timing(&F.hb, want, RV_M, 10000);
    gf__hb_start(&F.hb);
    gf__hb_check(&F.hb);
    while (gf__hb_bound_d_ms(&F.hb) == GF__HB_MAX_TERM_MS)
        rsim_step(S);
}

/* Cut now; runs until both have fenced; hub - agent (ms). */
static int64_t rsim_race(struct rsim *S)
{
    S->cut = true;
    uint64_t t_cut = gf_clock_now_ms(&F.clk);
    while (S->fenced_at == 0 || gf_clock_now_ms(&F.clk) < rsim_hub_fence_at()) {
        rsim_step(S);
        assert_true(gf_clock_now_ms(&F.clk) < t_cut + 200000);
    }
    return (int64_t)rsim_hub_fence_at() - (int64_t)S->fenced_at;
}

static void rsim_end(struct rsim *S)
{
    S->cut = true;
    gf__hb_stop(&F.hb);
    while (F.total > S->answered)
        rsim_step(S);
}

/*
 * D lowered 30 s -> 3 s. The agent's heartbeat reads fail from the 10 s
 * step's landing on (e.g. they take longer than their poll-long timeout;
 * its fence's LIST/PATCH, with the client's 30 s, still land). restarts:
 * 0, the hub keeps running; 1, a new process leads 1 s after the landing;
 * 2, and another one 1 s after the first one's own step (4 s) landed.
 * The hub is cut off once the last one knows the term.
 */
static int64_t rv_mid_step(void **state, int restarts, uint64_t phase,
                           int64_t *bound, uint64_t *agent_rel,
                           uint64_t *hub_rel)
{
    restart(state);
    struct rsim S;
    rsim_start(&S, phase);
    S.want = 3000;
    uint64_t t0 = gf_clock_now_ms(&F.clk);
    while (S.lease_d != 10) {
        rsim_step(&S);
        assert_true(gf_clock_now_ms(&F.clk) < t0 + 60000);
    }
    uint64_t t_land = gf_clock_now_ms(&F.clk);
    S.blind_from = t_land;
    for (int r = 0; r < restarts; r++) {
        for (int i = 0; i < 200; i++)
            rsim_step(&S);
        rsim_new_hub(&S, 3000);
        if (r + 1 < restarts) /* until its own next step lands */
            while (S.lease_d == 10)
                rsim_step(&S);
    }
    *bound = gf__hb_bound_d_ms(&F.hb);
    int64_t slack = rsim_race(&S);
    *agent_rel = S.fenced_at - t_land;
    *hub_rel = rsim_hub_fence_at() - t_land;
    rsim_end(&S);
    return slack;
}

static void test_a_new_hub_mid_step_counts_the_held_term(void **state)
{
    bool bad = false;
    for (int restarts = 0; restarts <= 2; restarts++) {
        int64_t worst = INT64_MAX, wb = 0;
        uint64_t wa = 0, wh = 0;
        for (uint64_t phase = 0; phase < 5000; phase += 500) {
            int64_t b;
            uint64_t a, h;
            int64_t s = rv_mid_step(state, restarts, phase, &b, &a, &h);
            if (s < worst) {
                worst = s;
                wb = b;
                wa = a;
                wh = h;
            }
        }
        printf("# 30 s -> 3 s, %d new hub process(es), agent blind from "
               "the 10 s landing: worst over the read phase: bound %lld s, "
               "agent fences at landing+%.2f s, hub at landing+%.2f s "
               "(hub - agent %+.2f s; must be >= F)\n",
               restarts, (long long)wb / 1000, (double)wa / 1000,
               (double)wh / 1000, (double)worst / 1000);
        if (restarts == 0)
            assert_true(worst >= RV_M / 2);
        else if (worst < 0)
            bad = true;
    }
    if (bad)
        fail_msg("S1: a new hub process fences before the agent");
}

/*
 * The Lease deleted by hand while the agent believes 30 s; absent_ms
 * later a new hub process with D = 3 s creates it: acknowledged, so
 * term_known, bound 3 s and no step. Cut off right after. lost: the
 * agent's reads fail for that many polls after the create. Returns hub -
 * agent at worst over the agent's read phase.
 */
static int64_t rv_absent(void **state, uint64_t absent_ms, int lost)
{
    int64_t worst = INT64_MAX;
    for (uint64_t phase = 0; phase < 5000; phase += 250) {
        restart(state);
        struct rsim S;
        rsim_start(&S, phase);
        while (F.total > S.answered)
            rsim_step(&S);
        S.lease[0] = '\0'; /* kubectl delete lease gpufed-heartbeat */
        for (uint64_t t = 0; t < absent_ms; t += 5)
            rsim_step(&S);
        rsim_new_hub(&S, 3000);
        while (F.total > S.answered)
            rsim_step(&S);
        assert_int_equal(S.lease_d, 3);
        assert_int_equal(gf__hb_bound_d_ms(&F.hb), 3000);
        uint64_t t = gf_clock_now_ms(&F.clk);
        if (lost > 0) {
            S.blind_from = t;
            S.blind_until = S.next_read + (uint64_t)(lost - 1) * 5000 + 1;
        }
        int64_t slack = rsim_race(&S);
        if (slack < worst)
            worst = slack;
        rsim_end(&S);
    }
    return worst;
}

/* The agent has read the Lease absent before it is created again: it
 * fenced then (fence.c), so the new hub's short term is safe whatever
 * the agent's reads do after the create. */
static void test_an_agent_that_read_the_lease_absent_fences_first(void **state)
{
    for (int lost = 0; lost <= 2; lost++) {
        int64_t worst = rv_absent(state, 5100, lost);
        printf("# Lease deleted for 5.1 s, new hub creates it with 3 s "
               "(agent believed 30 s), %d agent read(s) lost: hub - agent "
               "at worst %+.2f s\n",
               lost, (double)worst / 1000);
        assert_true(worst >= 0);
    }
}

/*
 * Deleted and created again within one poll, so the agent never read it
 * absent: an agent that reads on adopts the new term at its next read,
 * one old poll at most after the create, and is first. One whose reads
 * fail keeps the old term, which no hub can know without counting a day
 * (docs/failure-semantics.md, "Changing D"): the residual, printed.
 */
static void
test_a_lease_recreated_between_two_reads_is_the_residual(void **state)
{
    for (int lost = 0; lost <= 2; lost++) {
        int64_t worst = rv_absent(state, 5, lost);
        printf("# Lease deleted and created again within a poll with 3 s "
               "(agent believed 30 s), %d agent read(s) lost: hub - agent "
               "at worst %+.2f s\n",
               lost, (double)worst / 1000);
        if (lost == 0)
            assert_true(worst >= 0);
    }
}

/* Liveness: a new hub process right after a step landed must not write
 * the next step at once (it holds the term it found, learn_term): an
 * agent that has not read the first yet would jump 30 -> 4 and fence with
 * nothing cut off. */
static void test_a_new_hub_right_after_a_step_does_not_step_again(void **state)
{
    int fenced = 0, runs = 0;
    for (uint64_t phase = 0; phase < 5000; phase += 250) {
        restart(state);
        struct rsim S;
        rsim_start(&S, phase);
        S.want = 3000;
        while (S.lease_d != 10)
            rsim_step(&S);
        for (int i = 0; i < 40; i++) /* 200 ms */
            rsim_step(&S);
        rsim_new_hub(&S, 3000);
        for (int i = 0; i < 12000; i++)
            rsim_step(&S);
        runs++;
        fenced += S.fence.fences > 0;
        rsim_end(&S);
    }
    printf("# new hub 200 ms after the 10 s step landed, nothing cut off: "
           "the agent fenced in %d of %d read phases\n",
           fenced, runs);
    assert_int_equal(fenced, 0);
}

/* Liveness: one lost agent read right after a step lands (no restart,
 * nothing cut off) makes the agent's next read come a whole old term
 * after its credit, and it fences: a step 3 times shorter leaves room for
 * no lost read (docs/failure-semantics.md, "Changing D"). The figure is
 * printed; what must hold is that the agent leaves the fenced state on
 * the renewals that follow, with nothing else done. */
static void test_an_agent_fenced_by_a_lost_read_mid_step_recovers(void **state)
{
    int fenced = 0, runs = 0;
    for (uint64_t phase = 0; phase < 5000; phase += 250) {
        restart(state);
        struct rsim S;
        rsim_start(&S, phase);
        S.want = 3000;
        while (S.lease_d != 10)
            rsim_step(&S);
        S.blind_from = gf_clock_now_ms(&F.clk);
        S.blind_until = S.next_read + 1; /* its next read fails */
        for (int i = 0; i < 12000; i++)
            rsim_step(&S);
        runs++;
        fenced += S.fence.fences > 0;
        assert_false(S.fence.fenced);
        rsim_end(&S);
    }
    printf("# one agent read lost after the 10 s step landed, nothing cut "
           "off: the agent fenced in %d of %d read phases\n",
           fenced, runs);
}

/* Random reloads of D (lowered, raised, lowered again mid-step), one hub
 * process, the agent possibly blind from a random instant, cut at a
 * random instant: the hub never fences before the agent. */
static void test_random_reloads_of_d_never_fence_the_hub_first(void **state)
{
    static const int64_t ds[] = {3000,  4000,  5500,  9000, 10000,
                                 20000, 30000, 60000, 10500};
    uint64_t seed = 12345;
    int64_t worst = INT64_MAX;
    int fences_uncut = 0, raced = 0;
    for (int run = 0; run < 400; run++) {
        restart(state);
        struct rsim S;
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        rsim_start(&S, (seed >> 33) % 5000);
        uint64_t t0 = gf_clock_now_ms(&F.clk);
        uint64_t dur = 5000 + (seed >> 20) % 120000;
        bool blind = (seed >> 10) & 1;
        if (blind)
            S.blind_from = t0 + (seed >> 40) % dur;
        uint64_t next_change = t0;
        while (gf_clock_now_ms(&F.clk) < t0 + dur) {
            if (gf_clock_now_ms(&F.clk) >= next_change) {
                seed = seed * 6364136223846793005ULL + 1;
                S.want = ds[(seed >> 33) % (sizeof(ds) / sizeof(ds[0]))];
                next_change += 1000 + (seed >> 45) % 20000;
            }
            rsim_step(&S);
        }
        if (S.fenced_at != 0 && !blind)
            fences_uncut++;
        if (S.fenced_at == 0) {
            raced++;
            int64_t s = rsim_race(&S);
            if (s < worst)
                worst = s;
        }
        rsim_end(&S);
    }
    printf("# random reloads, one process: hub - agent at worst %+.2f s; "
           "fences with nothing cut (reads ok): %d; %d races\n",
           (double)worst / 1000, fences_uncut, raced);
    assert_true(worst >= 0);
}

/* D lowered 90 s -> 10 s (step 90 -> 30); the leader dies right after the
 * 30 s step landed and a standby takes over after the leader lease (L =
 * 15 s); the agent's reads fail from the landing on. */
static void test_a_standby_leading_mid_step_fences_after_the_agent(void **state)
{
    int64_t worst = INT64_MAX;
    uint64_t wa = 0, wh = 0;
    for (uint64_t phase = 0; phase < 15000; phase += 1000) {
        restart(state);
        struct rsim S;
        memset(&S, 0, sizeof(S));
        S.blind_from = S.blind_until = UINT64_MAX;
        gf_fence_init(&S.fence, 0);
        S.want = 90000;
        S.next_read = gf_clock_now_ms(&F.clk) + phase;
        gf__hb_set_timing(&F.hb, 90000, RV_M, 10000);
        F.synced = true;
        gf__hb_start(&F.hb);
        gf__hb_check(&F.hb);
        for (int i = 0; i < 40000; i++)
            rsim_step(&S);
        assert_int_equal(S.lease_d, 90);
        S.want = 10000;
        while (S.lease_d != 30)
            rsim_step(&S);
        uint64_t t_land = gf_clock_now_ms(&F.clk);
        S.blind_from = t_land;
        /* The leader dies: nothing is renewed for L = 15 s. */
        while (F.total > S.answered)
            rsim_step(&S);
        gf__hb_stop(&F.hb);
        for (int i = 0; i < 3000; i++)
            rsim_step(&S);
        rsim_new_hub(&S, 10000);
        int64_t s = rsim_race(&S);
        if (s < worst) {
            worst = s;
            wa = S.fenced_at - t_land;
            wh = rsim_hub_fence_at() - t_land;
        }
        rsim_end(&S);
    }
    printf("# 90 s -> 10 s, standby leads 15 s after the 30 s step landed: "
           "agent fences at landing+%.2f s, hub at landing+%.2f s (hub - "
           "agent %+.2f s)\n",
           (double)wa / 1000, (double)wh / 1000, (double)worst / 1000);
    if (worst < 0)
        fail_msg("S1: the standby fences before the agent");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_a_standby_leading_mid_step_fences_after_the_agent, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_random_reloads_of_d_never_fence_the_hub_first, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_an_agent_fenced_by_a_lost_read_mid_step_recovers, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_a_new_hub_right_after_a_step_does_not_step_again, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_a_new_hub_mid_step_counts_the_held_term, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_an_agent_that_read_the_lease_absent_fences_first, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_a_lease_recreated_between_two_reads_is_the_residual, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_microtime_has_six_fractional_digits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_created_lease_is_the_pinned_one,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_renews_every_third_of_d_with_create_then_patch, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_conflict_rereads_then_renews,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_failure_makes_suspect_and_stops_renewals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusal_does_not_count_as_sent,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_heal_by_a_probe_is_told_at_once,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_and_sync_make_healthy_again,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_failure_while_watches_down_stops_renewals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watches_lost_make_suspect, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_pause_writes_nothing_and_resume_resets_sent, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_standby_probes_a_member_whose_watches_are_down, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_cancelled_renewal_may_have_landed,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_recovering_after_a_heal_until_the_agent_can_poll, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_lowered_d_is_stepped_and_the_bound_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_longer_term_found_in_the_lease_is_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lowering_d_never_fences_an_agent,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_lowering_d_the_hub_fences_after_the_agent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsent_renewal_is_not_sent, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
