/*
 * Tests for controller/fence: the agent's heartbeat rule on the manual
 * clock (steady renewals, a lapse, failed reads, the start rule, the way
 * out of the fenced state) and what fencing does to copies.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/htab.h"
#include "controller/fence.h"
#include "kubeclient/store.h"

#define D_MS 3000u
#define OFFSET_MS 1000u
#define POLL_MS 500u
#define WALL0 1790000000000LL

/* A Lease as the hub writes it, renewed at wall time wall_ms. */
static struct gf_hb_read lease_at(struct gf_clock *clk, int64_t wall_ms)
{
    char ts[32], micro[64];
    gf_time_rfc3339(wall_ms, ts);
    /* "...:SSZ" -> "...:SS.mmm000Z", MicroTime as the hub writes it. */
    snprintf(micro, sizeof(micro), "%.19s.%03d000Z", ts, (int)(wall_ms % 1000));
    char json[256];
    snprintf(json, sizeof(json),
             "{\"spec\":{\"holderIdentity\":\"hub-0\","
             "\"leaseDurationSeconds\":%u,\"renewTime\":\"%s\"}}",
             D_MS / 1000, micro);
    cJSON *o = cJSON_Parse(json);
    struct gf_hb_read r;
    assert_int_equal(gf_fence_lease_parse(o, &r), 0);
    cJSON_Delete(o);
    assert_true(r.valid);
    assert_int_equal(r.d_ms, D_MS);
    assert_int_equal(r.renew_wall_ms, wall_ms);
    (void)clk;
    return r;
}

/* One answered read sent now and answered 10 ms later. */
static enum gf_fence_change read_now(struct gf_fence *f, struct gf_clock *clk,
                                     const struct gf_hb_read *r)
{
    uint64_t sent = gf_clock_now_ms(clk);
    gf_clock_advance(clk, 10);
    return gf_fence_on_read(f, r, sent, gf_clock_now_ms(clk),
                            gf_clock_wall_ms(clk));
}

static void start(struct gf_clock *clk, struct gf_fence *f)
{
    gf_clock_init_manual(clk, 100000, WALL0);
    gf_fence_init(f, OFFSET_MS);
}

/* While fenced the copies are listed afresh every poll: at most a second
 * apart whatever D is, so a copy whose create landed after the fence's
 * LIST runs for at most that long. */
static void test_fenced_poll_is_at_most_a_second(void **state)
{
    (void)state;
    struct gf_fence f;
    gf_fence_init(&f, OFFSET_MS);
    f.d_ms = 30000;
    assert_int_equal(gf_fence_poll_ms(&f), 5000);
    f.fenced = true;
    assert_int_equal(gf_fence_poll_ms(&f), GF_FENCE_FENCED_POLL_MS);
    f.d_ms = 3000; /* D/6 is shorter than the bound: kept */
    assert_int_equal(gf_fence_poll_ms(&f), 500);
}

static void test_steady_renewals_never_fence(void **state)
{
    (void)state;
    struct gf_clock clk;
    struct gf_fence f;
    start(&clk, &f);
    struct gf_hb_read cur = lease_at(&clk, gf_clock_wall_ms(&clk));
    assert_int_equal(read_now(&f, &clk, &cur), GF_FENCE_SAME);
    assert_true(f.has_credit);
    assert_int_equal(gf_fence_poll_ms(&f), POLL_MS);
    /* Ten minutes: the hub renews every D/3, the agent reads every D/6
     * (each read takes 10 ms), and time is ticked at every millisecond
     * a fence could be due. */
    uint64_t t0 = gf_clock_now_ms(&clk);
    uint64_t next_renew = t0 + D_MS / 3, next_read = t0 + POLL_MS - 10;
    while (gf_clock_now_ms(&clk) < t0 + 600000) {
        uint64_t next = next_renew < next_read ? next_renew : next_read;
        uint64_t due = gf_fence_deadline(&f);
        assert_true(due > gf_clock_now_ms(&clk));
        if (due <= next) {
            gf_clock_advance(&clk, due - gf_clock_now_ms(&clk));
            fail_msg("fenced at %llu under steady renewals",
                     (unsigned long long)due);
        }
        gf_clock_advance(&clk, next - gf_clock_now_ms(&clk));
        if (next == next_renew) {
            cur = lease_at(&clk, gf_clock_wall_ms(&clk));
            next_renew += D_MS / 3;
        } else {
            assert_int_equal(read_now(&f, &clk, &cur), GF_FENCE_SAME);
            next_read += POLL_MS;
        }
    }
    assert_false(f.fenced);
    assert_int_equal(f.fences, 0);
    gf_clock_close(&clk);
}

static void test_a_lapse_fences_at_exactly_credit_plus_d(void **state)
{
    (void)state;
    struct gf_clock clk;
    struct gf_fence f;
    start(&clk, &f);
    struct gf_hb_read a = lease_at(&clk, gf_clock_wall_ms(&clk));
    read_now(&f, &clk, &a);
    gf_clock_advance(&clk, POLL_MS - 10);
    uint64_t last_old_read = gf_clock_now_ms(&clk);
    read_now(&f, &clk, &a);
    /* The last renewal lands between two reads. */
    gf_clock_advance(&clk, 200);
    struct gf_hb_read b = lease_at(&clk, gf_clock_wall_ms(&clk));
    gf_clock_advance(&clk, POLL_MS - 210);
    assert_int_equal(read_now(&f, &clk, &b), GF_FENCE_SAME);
    assert_int_equal(f.credit_ms, (int64_t)last_old_read);
    assert_int_equal(gf_fence_deadline(&f), last_old_read + D_MS);
    /* Then nothing moves: reads keep showing b. */
    while (gf_clock_now_ms(&clk) + POLL_MS < last_old_read + D_MS) {
        gf_clock_advance(&clk, POLL_MS - 10);
        assert_int_equal(read_now(&f, &clk, &b), GF_FENCE_SAME);
    }
    gf_clock_advance(&clk, last_old_read + D_MS - 1 - gf_clock_now_ms(&clk));
    assert_int_equal(gf_fence_tick(&f, gf_clock_now_ms(&clk)), GF_FENCE_SAME);
    gf_clock_advance(&clk, 1);
    assert_int_equal(gf_fence_tick(&f, gf_clock_now_ms(&clk)), GF_FENCE_ENTER);
    assert_true(f.fenced);
    assert_int_equal(f.fenced_since_ms, last_old_read + D_MS);
    assert_int_equal(gf_fence_age_ms(&f, gf_clock_now_ms(&clk)), D_MS);
    assert_int_equal(gf_fence_deadline(&f), UINT64_MAX);
    /* Entering is reported once. */
    assert_int_equal(gf_fence_tick(&f, gf_clock_now_ms(&clk) + 5000),
                     GF_FENCE_SAME);
    assert_int_equal(f.fences, 1);
    gf_clock_close(&clk);
}

static void test_failed_reads_use_the_earlier_reads_send_time(void **state)
{
    (void)state;
    struct gf_clock clk;
    struct gf_fence f;
    start(&clk, &f);
    struct gf_hb_read a = lease_at(&clk, gf_clock_wall_ms(&clk));
    read_now(&f, &clk, &a);
    gf_clock_advance(&clk, POLL_MS - 10);
    uint64_t ok_sent = gf_clock_now_ms(&clk);
    read_now(&f, &clk, &a);
    /* Four reads fail (no call); a renewal lands among them. */
    gf_clock_advance(&clk, 1300);
    struct gf_hb_read b = lease_at(&clk, gf_clock_wall_ms(&clk));
    gf_clock_advance(&clk, 700);
    assert_int_equal(read_now(&f, &clk, &b), GF_FENCE_SAME);
    /* Credit is the last successful read's send time, not the renewal's
     * wall time and not the time of the failed reads. */
    assert_int_equal(f.credit_ms, (int64_t)ok_sent);
    assert_int_equal(gf_fence_deadline(&f), ok_sent + D_MS);
    gf_clock_close(&clk);
}

static void test_failed_reads_past_d_fence(void **state)
{
    (void)state;
    struct gf_clock clk;
    struct gf_fence f;
    start(&clk, &f);
    struct gf_hb_read a = lease_at(&clk, gf_clock_wall_ms(&clk));
    read_now(&f, &clk, &a);
    gf_clock_advance(&clk, 200);
    struct gf_hb_read b = lease_at(&clk, gf_clock_wall_ms(&clk));
    uint64_t sent = gf_clock_now_ms(&clk);
    read_now(&f, &clk, &b);
    uint64_t credit = (uint64_t)f.credit_ms;
    assert_true(credit < sent);
    /* Every read fails from here: the deadline alone fences. */
    gf_clock_advance(&clk, credit + D_MS - gf_clock_now_ms(&clk));
    assert_int_equal(gf_fence_tick(&f, gf_clock_now_ms(&clk)), GF_FENCE_ENTER);
    gf_clock_close(&clk);
}

static void test_start_with_an_absent_lease_fences_at_once(void **state)
{
    (void)state;
    struct gf_clock clk;
    struct gf_fence f;
    start(&clk, &f);
    const struct gf_hb_read absent = {.present = false};
    assert_int_equal(read_now(&f, &clk, &absent), GF_FENCE_ENTER);
    assert_false(f.has_credit);
    /* Absent again: still fenced, nothing moved. */
    gf_clock_advance(&clk, 5000);
    assert_int_equal(read_now(&f, &clk, &absent), GF_FENCE_SAME);
    assert_true(f.fenced);
    /* The hub creates it: that is a renewal. */
    gf_clock_advance(&clk, 100);
    struct gf_hb_read a = lease_at(&clk, gf_clock_wall_ms(&clk));
    gf_clock_advance(&clk, 390);
    assert_int_equal(read_now(&f, &clk, &a), GF_FENCE_LEAVE);
    gf_clock_close(&clk);
}

/* A Lease deleted by hand after the agent had read it: the next hub to
 * create it cannot know the term the agent believed (it counts the one
 * it writes), so the agent does not wait out its credit. */
static void test_a_lease_deleted_after_a_read_fences_at_once(void **state)
{
    (void)state;
    struct gf_clock clk;
    struct gf_fence f;
    start(&clk, &f);
    struct gf_hb_read a = lease_at(&clk, gf_clock_wall_ms(&clk));
    assert_int_equal(read_now(&f, &clk, &a), GF_FENCE_SAME);
    assert_true(f.has_credit);
    gf_clock_advance(&clk, POLL_MS);
    const struct gf_hb_read absent = {.present = false};
    /* Well inside the credit: only the absence fences. */
    assert_true(gf_fence_age_ms(&f, gf_clock_now_ms(&clk)) < (int64_t)D_MS);
    assert_int_equal(read_now(&f, &clk, &absent), GF_FENCE_ENTER);
    assert_true(f.fenced);
    /* Recreated: a renewal after the read that saw it absent. */
    gf_clock_advance(&clk, 100);
    struct gf_hb_read b = lease_at(&clk, gf_clock_wall_ms(&clk));
    gf_clock_advance(&clk, POLL_MS - 110);
    assert_int_equal(read_now(&f, &clk, &b), GF_FENCE_LEAVE);
    gf_clock_close(&clk);
}

static void test_start_with_an_unparsable_lease_fences_at_once(void **state)
{
    (void)state;
    struct gf_clock clk;
    struct gf_fence f;
    start(&clk, &f);
    cJSON *o = cJSON_Parse("{\"spec\":{\"renewTime\":\"yesterday\","
                           "\"leaseDurationSeconds\":3}}");
    struct gf_hb_read bad;
    assert_int_equal(gf_fence_lease_parse(o, &bad), -EINVAL);
    cJSON_Delete(o);
    assert_true(bad.present);
    assert_false(bad.valid);
    assert_int_equal(read_now(&f, &clk, &bad), GF_FENCE_ENTER);
    gf_clock_close(&clk);
}

static void test_start_with_a_stale_lease_fences_at_once(void **state)
{
    (void)state;
    struct gf_clock clk;
    struct gf_fence f;
    start(&clk, &f);
    /* 2.1 s old: within D by the agent's clock, but not once the clock
     * offset it must allow is added. */
    struct gf_hb_read a = lease_at(&clk, gf_clock_wall_ms(&clk) - 2090);
    assert_int_equal(read_now(&f, &clk, &a), GF_FENCE_ENTER);
    gf_clock_close(&clk);
}

static void test_start_with_a_fresh_lease_gets_credit(void **state)
{
    (void)state;
    struct gf_clock clk;
    struct gf_fence f;
    start(&clk, &f);
    struct gf_hb_read a = lease_at(&clk, gf_clock_wall_ms(&clk) - 490);
    assert_int_equal(read_now(&f, &clk, &a), GF_FENCE_SAME);
    /* Answered at now (age 500 there): credit = now - 500 - offset. */
    uint64_t now = gf_clock_now_ms(&clk);
    assert_int_equal(f.credit_ms, (int64_t)now - 500 - OFFSET_MS);
    assert_int_equal(gf_fence_deadline(&f), now + D_MS - 1500);
    /* A renewTime in the future (clock skew) counts as age 0. */
    struct gf_clock c2;
    struct gf_fence f2;
    start(&c2, &f2);
    struct gf_hb_read fut = lease_at(&c2, gf_clock_wall_ms(&c2) + 60000);
    assert_int_equal(read_now(&f2, &c2, &fut), GF_FENCE_SAME);
    assert_int_equal(f2.credit_ms,
                     (int64_t)gf_clock_now_ms(&c2) - (int64_t)OFFSET_MS);
    gf_clock_close(&c2);
    gf_clock_close(&clk);
}

static void test_no_unfence_without_a_newer_renewal(void **state)
{
    (void)state;
    struct gf_clock clk;
    struct gf_fence f;
    start(&clk, &f);
    struct gf_hb_read a = lease_at(&clk, gf_clock_wall_ms(&clk));
    read_now(&f, &clk, &a);
    gf_clock_advance(&clk, D_MS);
    assert_int_equal(gf_fence_tick(&f, gf_clock_now_ms(&clk)), GF_FENCE_ENTER);
    /* The same renewTime, an unparsable Lease, a deleted Lease: none of
     * them is the heartbeat moving. */
    for (int i = 0; i < 20; i++) {
        gf_clock_advance(&clk, POLL_MS - 10);
        assert_int_equal(read_now(&f, &clk, &a), GF_FENCE_SAME);
    }
    struct gf_hb_read bad = {.present = true, .valid = false};
    assert_int_equal(read_now(&f, &clk, &bad), GF_FENCE_SAME);
    assert_true(f.fenced);
    /* A newer renewal seen only after a long silence (reads failing for
     * more than D) may itself be old: still fenced. */
    gf_clock_advance(&clk, 200);
    struct gf_hb_read b = lease_at(&clk, gf_clock_wall_ms(&clk));
    gf_clock_advance(&clk, D_MS + 500);
    assert_int_equal(read_now(&f, &clk, &b), GF_FENCE_SAME);
    assert_true(f.fenced);
    /* The next renewal, seen one poll later: out. */
    gf_clock_advance(&clk, 100);
    struct gf_hb_read c = lease_at(&clk, gf_clock_wall_ms(&clk));
    gf_clock_advance(&clk, POLL_MS - 110);
    assert_int_equal(read_now(&f, &clk, &c), GF_FENCE_LEAVE);
    assert_false(f.fenced);
    assert_int_equal(f.fences, 1);
    /* And the rule goes on from the new credit. */
    assert_int_equal(gf_fence_deadline(&f), (uint64_t)f.credit_ms + D_MS);
    gf_clock_close(&clk);
}

/* --- copies ------------------------------------------------------------ */

struct world {
    struct gf_store *jobs, *wls;
    struct gf_htab idx;
    char patched[8][64];
    size_t n_patched;
};

static void wl_add(void *data, const struct gf_store_entry *e)
{
    gf_fence_index_update(&((struct world *)data)->idx, NULL, e);
}
static void wl_upd(void *data, const struct gf_store_entry *old,
                   const struct gf_store_entry *cur)
{
    gf_fence_index_update(&((struct world *)data)->idx, old, cur);
}
static void wl_del(void *data, const struct gf_store_entry *old)
{
    gf_fence_index_update(&((struct world *)data)->idx, old, NULL);
}

static void world_init(struct world *w)
{
    memset(w, 0, sizeof(*w));
    gf_htab_init(&w->idx, GF_HTAB_OWN_KEYS);
    struct gf_store_opts jo = {.project = gf_fence_job_project,
                               .free_proj = gf_fence_job_free};
    w->jobs = gf_store_new(&jo);
    struct gf_store_handlers h = {
        .on_add = wl_add, .on_update = wl_upd, .on_delete = wl_del, .data = w};
    struct gf_store_opts wo = {.project = gf_fence_wl_project,
                               .free_proj = gf_fence_wl_free,
                               .handlers = &h};
    w->wls = gf_store_new(&wo);
}

static void world_free(struct world *w)
{
    gf_store_free(w->jobs);
    gf_store_free(w->wls);
    gf_fence_index_free(&w->idx);
}

static void upsert(struct gf_store *s, const char *json)
{
    cJSON *o = cJSON_Parse(json);
    assert_non_null(o);
    assert_int_equal(gf_store_upsert(s, o), 0);
    cJSON_Delete(o);
}

static void job(struct world *w, const char *name, const char *rv, bool copy,
                const char *cond)
{
    char json[1024];
    snprintf(json, sizeof(json),
             "{\"metadata\":{\"namespace\":\"ml\",\"name\":\"%s\","
             "\"uid\":\"uid-%s\",\"resourceVersion\":\"%s\",\"labels\":{%s}},"
             "\"spec\":{\"suspend\":false},\"status\":{\"conditions\":["
             "{\"type\":\"%s\",\"status\":\"True\"}]}}",
             name, name, rv,
             copy ? "\"gpufed.io/lease\":\"east-train-1\","
                    "\"gpufed.io/epoch\":\"1\""
                  : "\"app\":\"x\"",
             cond != NULL ? cond : "Suspended");
    upsert(w->jobs, json);
}

static void wl(struct world *w, const char *job_name, const char *rv,
               bool active, bool finished)
{
    char json[1024];
    snprintf(json, sizeof(json),
             "{\"metadata\":{\"namespace\":\"ml\",\"name\":\"job-%s-1a2b3\","
             "\"uid\":\"wl-%s\",\"resourceVersion\":\"%s\","
             "\"ownerReferences\":[{\"apiVersion\":\"batch/v1\","
             "\"kind\":\"Job\",\"name\":\"%s\",\"uid\":\"uid-%s\","
             "\"controller\":true}]},"
             "\"spec\":{\"active\":%s,\"queueName\":\"gpufed-ml\"},"
             "\"status\":{\"conditions\":[{\"type\":\"%s\","
             "\"status\":\"True\"}]}}",
             job_name, job_name, rv, job_name, job_name,
             active ? "true" : "false", finished ? "Finished" : "Admitted");
    upsert(w->wls, json);
}

static void record(void *data, const struct gf_store_entry *j,
                   const struct gf_store_entry *e)
{
    struct world *w = data;
    assert_true(w->n_patched < 8);
    snprintf(w->patched[w->n_patched++], 64, "%s>%s", j->name, e->name);
}

static size_t plan(struct world *w, size_t *waiting)
{
    w->n_patched = 0;
    return gf_fence_plan(w->jobs, w->wls, &w->idx, record, w, waiting);
}

static void test_copies_fenced_finished_left_alone(void **state)
{
    (void)state;
    int64_t live = gf_alloc_live();
    struct world w;
    world_init(&w);
    job(&w, "run", "1", true, NULL);
    wl(&w, "run", "2", true, false);
    job(&w, "done", "3", true, "Complete");
    wl(&w, "done", "4", true, false);
    job(&w, "failed", "5", true, "Failed");
    wl(&w, "failed", "6", true, false);
    job(&w, "wldone", "7", true, NULL);
    wl(&w, "wldone", "8", true, true);
    job(&w, "fenced", "9", true, NULL);
    wl(&w, "fenced", "10", false, false);
    /* Not a copy: the store keeps no such Job at all. */
    job(&w, "local", "11", false, NULL);
    wl(&w, "local", "12", true, false);
    assert_int_equal(gf_store_len(w.jobs), 5);
    size_t waiting = 99;
    assert_int_equal(plan(&w, &waiting), 1);
    assert_string_equal(w.patched[0], "run>job-run-1a2b3");
    assert_int_equal(waiting, 0);
    /* Once the patch shows, nothing is left to do (idempotent). */
    wl(&w, "run", "13", false, false);
    assert_int_equal(plan(&w, NULL), 0);
    world_free(&w);
    assert_int_equal(gf_alloc_live(), live);
}

static void test_a_copy_that_appears_while_fenced_is_fenced(void **state)
{
    (void)state;
    int64_t live = gf_alloc_live();
    struct world w;
    world_init(&w);
    assert_int_equal(plan(&w, NULL), 0);
    /* The create landed just before the partition: the Job first, its
     * Workload later. */
    job(&w, "late", "1", true, NULL);
    size_t waiting = 0;
    assert_int_equal(plan(&w, &waiting), 0);
    assert_int_equal(waiting, 1);
    wl(&w, "late", "2", true, false);
    assert_int_equal(plan(&w, &waiting), 1);
    assert_int_equal(waiting, 0);
    assert_string_equal(w.patched[0], "late>job-late-1a2b3");
    /* The Workload goes and comes back (recreated by Kueue). */
    cJSON *o = cJSON_Parse("{\"metadata\":{\"namespace\":\"ml\","
                           "\"name\":\"job-late-1a2b3\"}}");
    gf_store_remove(w.wls, o);
    cJSON_Delete(o);
    assert_int_equal(plan(&w, &waiting), 0);
    assert_int_equal(waiting, 1);
    assert_int_equal(gf_htab_len(&w.idx), 0);
    wl(&w, "late", "3", true, false);
    assert_int_equal(plan(&w, NULL), 1);
    world_free(&w);
    assert_int_equal(gf_alloc_live(), live);
}

static void marked_wl(struct world *w, const char *name, bool active,
                      bool finished, bool marked)
{
    static unsigned rv = 100;
    rv++;
    char json[1024];
    snprintf(json, sizeof(json),
             "{\"metadata\":{\"namespace\":\"nlp\",\"name\":\"%s\","
             "\"uid\":\"wl-%s\",\"resourceVersion\":\"%u\"%s},"
             "\"spec\":{\"active\":%s,\"queueName\":\"nlp\"},"
             "\"status\":{\"conditions\":[{\"type\":\"%s\","
             "\"status\":\"True\"}]}}",
             name, name, rv,
             marked ? ",\"annotations\":{\"gpufed.io/loan\":\"l-1\"}" : "",
             active ? "true" : "false", finished ? "Finished" : "Admitted");
    upsert(w->wls, json);
}

static void record_loan(void *data, const struct gf_store_entry *e)
{
    struct world *w = data;
    assert_true(w->n_patched < 8);
    snprintf(w->patched[w->n_patched++], 64, "%s", e->name);
}

/* Every active, unfinished Workload with the loan mark is fenced, pending
 * or admitted; unmarked, finished or already inactive ones are not. */
static void test_marked_loan_workloads_are_fenced(void **state)
{
    (void)state;
    int64_t live = gf_alloc_live();
    struct world w;
    world_init(&w);
    marked_wl(&w, "runs-on-loan", true, false, true);
    marked_wl(&w, "own-quota", true, false, false);
    marked_wl(&w, "done", true, true, true);
    marked_wl(&w, "already", false, false, true);
    w.n_patched = 0;
    assert_int_equal(gf_fence_loan_plan(w.wls, record_loan, &w), 1);
    assert_string_equal(w.patched[0], "runs-on-loan");
    /* Once the patch shows, nothing is left to do (idempotent). */
    marked_wl(&w, "runs-on-loan", false, false, true);
    w.n_patched = 0;
    assert_int_equal(gf_fence_loan_plan(w.wls, record_loan, &w), 0);
    world_free(&w);
    assert_int_equal(gf_alloc_live(), live);
}

static void test_patch_body(void **state)
{
    (void)state;
    char *b = gf_fence_patch_body(WALL0, NULL);
    assert_string_equal(b, "{\"metadata\":{\"annotations\":{\"gpufed.io/"
                           "fenced-at\":\"2026-09-21T14:13:20Z\"}},"
                           "\"spec\":{\"active\":false}}");
    cJSON_free(b);
    /* The per-cohort rule's: the lease whose release reactivates it. */
    b = gf_fence_patch_body(WALL0, "loan-1");
    assert_string_equal(b, "{\"metadata\":{\"annotations\":{\"gpufed.io/"
                           "fenced-at\":\"2026-09-21T14:13:20Z\","
                           "\"gpufed.io/fenced-for-loan\":\"loan-1\"}},"
                           "\"spec\":{\"active\":false}}");
    cJSON_free(b);
}

/* What the per-cohort rule reads of a Workload: status.admission, with
 * dotted resource names read as one key. */
static void test_admission_projected(void **state)
{
    (void)state;
    int64_t live = gf_alloc_live();
    cJSON *o = cJSON_Parse(
        "{\"metadata\":{\"namespace\":\"ml\",\"name\":\"w\"},"
        "\"status\":{\"admission\":{\"clusterQueue\":\"ml-other\","
        "\"podSetAssignments\":[{\"name\":\"main\",\"count\":2,"
        "\"flavors\":{\"nvidia.com/gpu\":\"a100\",\"cpu\":\"a100\"},"
        "\"resourceUsage\":{\"nvidia.com/gpu\":\"4\",\"cpu\":\"500m\"}}]},"
        "\"conditions\":[{\"type\":\"QuotaReserved\",\"status\":\"True\","
        "\"lastTransitionTime\":\"2026-09-21T14:13:20Z\"}]}}");
    void *p = NULL;
    assert_int_equal(gf_fence_wl_project(NULL, o, &p), 0);
    const struct gf_fence_wl *w = p;
    assert_string_equal(w->cq, "ml-other");
    assert_int_equal(w->n_uses, 2);
    assert_string_equal(w->uses[0].resource, "nvidia.com/gpu");
    assert_string_equal(w->uses[0].flavor, "a100");
    assert_int_equal(w->uses[0].milli, 4000);
    assert_int_equal(w->uses[1].milli, 500);
    assert_int_equal(w->admitted_ms, WALL0);
    gf_fence_wl_free(p);
    cJSON_Delete(o);
    assert_int_equal(gf_alloc_live(), live);
}

/* A grant: its cohort, its quota, and the lease it lent for, before and
 * after the revert (which keeps the leases in gpufed.io/reverted-loans). */
static void test_grant_projected_and_reverted(void **state)
{
    (void)state;
    int64_t live = gf_alloc_live();
    cJSON *o = cJSON_Parse(
        "{\"metadata\":{\"name\":\"gpufed-loan-ml-gpu\",\"labels\":{"
        "\"app.kubernetes.io/managed-by\":\"gpufed\"},\"annotations\":{"
        "\"gpufed.io/loans\":\"loan-1,loan-2\"}},\"spec\":{\"cohortName\":"
        "\"ml\",\"resourceGroups\":[{\"flavors\":[{\"name\":\"a100\","
        "\"resources\":[{\"name\":\"nvidia.com/gpu\",\"nominalQuota\":"
        "\"4\"}]}]}]}}");
    void *p = NULL;
    assert_int_equal(gf_fence_cq_project(NULL, o, &p), 0);
    const struct gf_fence_cq *q = p;
    assert_true(q->grant);
    assert_true(q->lends);
    assert_string_equal(q->cohort, "ml");
    assert_string_equal(q->lease, "loan-1");
    assert_int_equal(q->n_nominal, 1);
    assert_int_equal(q->nominal[0].milli, 4000);
    gf_fence_cq_free(p);
    char *b = gf_fence_grant_patch(o);
    assert_non_null(strstr(b, "\"gpufed.io/loans\":null"));
    assert_non_null(
        strstr(b, "\"gpufed.io/reverted-loans\":\"loan-1,loan-2\""));
    cJSON_Delete(o);
    /* The grant as the revert left it: lends nothing, still names the
     * lease. */
    o = cJSON_Parse(b);
    cJSON_free(b);
    cJSON *md = cJSON_GetObjectItemCaseSensitive(o, "metadata");
    cJSON_AddStringToObject(md, "name", "gpufed-loan-ml-gpu");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(md, "labels"),
                            "app.kubernetes.io/managed-by", "gpufed");
    cJSON *an = cJSON_GetObjectItemCaseSensitive(md, "annotations");
    cJSON_DeleteItemFromObjectCaseSensitive(an, "gpufed.io/loans");
    assert_int_equal(gf_fence_cq_project(NULL, o, &p), 0);
    q = p;
    assert_false(q->lends);
    assert_string_equal(q->lease, "loan-1");
    assert_int_equal(q->nominal[0].milli, 0);
    gf_fence_cq_free(p);
    assert_null(gf_fence_grant_patch(o));
    cJSON_Delete(o);
    assert_int_equal(gf_alloc_live(), live);
}

int main(void)
{
    gf_alloc_global_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fenced_poll_is_at_most_a_second),
        cmocka_unit_test(test_steady_renewals_never_fence),
        cmocka_unit_test(test_a_lapse_fences_at_exactly_credit_plus_d),
        cmocka_unit_test(test_failed_reads_use_the_earlier_reads_send_time),
        cmocka_unit_test(test_failed_reads_past_d_fence),
        cmocka_unit_test(test_start_with_an_absent_lease_fences_at_once),
        cmocka_unit_test(test_a_lease_deleted_after_a_read_fences_at_once),
        cmocka_unit_test(test_start_with_an_unparsable_lease_fences_at_once),
        cmocka_unit_test(test_start_with_a_stale_lease_fences_at_once),
        cmocka_unit_test(test_start_with_a_fresh_lease_gets_credit),
        cmocka_unit_test(test_no_unfence_without_a_newer_renewal),
        cmocka_unit_test(test_copies_fenced_finished_left_alone),
        cmocka_unit_test(test_a_copy_that_appears_while_fenced_is_fenced),
        cmocka_unit_test(test_marked_loan_workloads_are_fenced),
        cmocka_unit_test(test_patch_body),
        cmocka_unit_test(test_admission_projected),
        cmocka_unit_test(test_grant_projected_and_reverted),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_alloc_global_cleanup();
    return rc;
}
