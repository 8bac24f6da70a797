/*
 * Tests for the member feed (controller/member.c): objects upserted into
 * a member's stores, as its reflectors would, reach the ledger whatever
 * order one member's kinds list in, and a queue's status change feeds no
 * Workload again. A hub without clients: the ledger, the workqueue on the
 * manual clock, and one member's stores.
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
#include "common/json.h"
#include "controller/internal.h"

#define GPU "nvidia.com/gpu"

struct fx {
    struct gf_hub h;
    struct gf_policy pol;
    struct gf_policy_member pm;
    struct gf__member *m;
    int64_t live;
};

/* The keys the workqueue ran, space-separated (the last 1 KB). */
static char ran[1024];

static void process(struct gf_workqueue *wq, const char *key, void *data)
{
    (void)data;
    size_t n = strlen(ran);
    if (n + strlen(key) + 2 < sizeof(ran))
        snprintf(ran + n, sizeof(ran) - n, "%s ", key);
    gf_wq_done(wq, key, GF_WQ_OK, 0);
}

static struct fx *fx_new(void)
{
    static struct fx f;
    memset(&f, 0, sizeof(f));
    ran[0] = '\0';
    f.live = gf_alloc_live();
    gf_clock_init_manual(&f.h.clk, 1000, 1700000000000);
    f.pm.name = "east";
    f.pol.members = &f.pm;
    f.pol.n_members = 1;
    f.h.policy = &f.pol;
    f.h.resource = GPU;
    f.h.ledger = gf_ledger_new(GPU);
    f.h.wq = gf_wq_new(&f.h.clk, NULL, process, &f.h);
    f.h.lc = (struct gf_log_ctx){.comp = "hub"};
    assert_int_equal(gf__member_new(&f.h, 0, &f.m), 0);
    gf__member_stores_new(f.m);
    return &f;
}

static void fx_free(struct fx *f)
{
    char why[256];
    assert_int_equal(gf_ledger_verify(f->h.ledger, why, sizeof(why)), 0);
    gf__member_close(f->m, NULL, NULL);
    gf_clock_advance(&f->h.clk, 0); /* the member is freed from the loop */
    gf_wq_free(f->h.wq);
    gf_ledger_free(f->h.ledger);
    assert_int_equal(gf_clock_active_timers(&f->h.clk), 0);
    gf_clock_close(&f->h.clk);
    assert_int_equal(gf_alloc_live(), f->live);
}

static void upsert(struct fx *f, enum gf__mkind k, const char *json)
{
    cJSON *o = cJSON_Parse(json);
    assert_non_null(o);
    assert_int_equal(gf_store_upsert(f->m->stores[k], o), 0);
    cJSON_Delete(o);
}

static void removed(struct fx *f, enum gf__mkind k, const char *json)
{
    cJSON *o = cJSON_Parse(json);
    assert_non_null(o);
    assert_int_equal(gf_store_remove(f->m->stores[k], o), 0);
    cJSON_Delete(o);
}

/* A ClusterQueue with 4 GPUs; rv makes each version new to the store;
 * managed: gpufed's own overflow queue. */
static void cq(struct fx *f, const char *name, int rv, bool managed)
{
    char j[1024];
    snprintf(j, sizeof(j),
             "{\"metadata\":{\"name\":\"%s\",\"resourceVersion\":\"%d\","
             "\"labels\":{%s}},\"spec\":{\"cohortName\":\"pool\","
             "\"resourceGroups\":[{\"coveredResources\":[\"" GPU "\"],"
             "\"flavors\":[{\"name\":\"a100\",\"resources\":[{\"name\":"
             "\"" GPU "\",\"nominalQuota\":\"4\"}]}]}]},"
             "\"status\":{\"pendingWorkloads\":%d}}",
             name, rv,
             managed ? "\"app.kubernetes.io/managed-by\":\"gpufed\"" : "", rv);
    upsert(f, GF__M_CQ, j);
}

static void lq_json(char *j, size_t cap, const char *ns, const char *name,
                    const char *cq_name, int rv)
{
    snprintf(j, cap,
             "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"%s\","
             "\"resourceVersion\":\"%d\"},\"spec\":{\"clusterQueue\":\"%s\"},"
             "\"status\":{\"pendingWorkloads\":%d}}",
             name, ns, rv, cq_name, rv);
}

static void lq(struct fx *f, const char *ns, const char *name,
               const char *cq_name, int rv)
{
    char j[512];
    lq_json(j, sizeof(j), ns, name, cq_name, rv);
    upsert(f, GF__M_LQ, j);
}

/* A pending Workload asking for 2 GPUs, at resourceVersion rv, with
 * status the JSON that follows its spec ("" or ",\"status\":{..}"). */
static void wl_json(struct fx *f, const char *ns, const char *name,
                    const char *queue, int rv, const char *created,
                    const char *status)
{
    char j[1024];
    snprintf(j, sizeof(j),
             "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"%s\","
             "\"uid\":\"u-%s\",\"resourceVersion\":\"%d\","
             "\"creationTimestamp\":\"%s\"},"
             "\"spec\":{\"queueName\":\"%s\",\"podSets\":[{\"count\":1,"
             "\"name\":\"main\",\"template\":{\"spec\":{\"containers\":[{"
             "\"name\":\"c\",\"resources\":{\"requests\":{\"" GPU
             "\":\"2\"}}}]}}}]}%s}",
             name, ns, name, rv, created, queue, status);
    upsert(f, GF__M_WL, j);
}

static void wl(struct fx *f, const char *ns, const char *name,
               const char *queue)
{
    wl_json(f, ns, name, queue, 1, "2026-01-01T00:00:00Z", "");
}

/* The ClusterQueue the ledger has the Workload in, or NULL. */
static const char *ledger_cq(const struct fx *f, const char *ns,
                             const char *name)
{
    const struct gf_ledger_wl *w =
        gf_ledger_workload(f->h.ledger, "east", ns, name);
    assert_non_null(w);
    return w->cq != NULL ? w->cq->name : NULL;
}

/* Every order in which one member's three kinds can finish their first
 * list: the Workload ends up pending in its ClusterQueue each time. */
static void test_every_listing_order_resolves_the_clusterqueue(void **state)
{
    (void)state;
    static const enum gf__mkind orders[6][3] = {
        {GF__M_CQ, GF__M_LQ, GF__M_WL}, {GF__M_CQ, GF__M_WL, GF__M_LQ},
        {GF__M_LQ, GF__M_CQ, GF__M_WL}, {GF__M_LQ, GF__M_WL, GF__M_CQ},
        {GF__M_WL, GF__M_CQ, GF__M_LQ}, {GF__M_WL, GF__M_LQ, GF__M_CQ},
    };
    for (size_t o = 0; o < 6; o++) {
        struct fx *f = fx_new();
        for (size_t i = 0; i < 3; i++) {
            if (orders[o][i] == GF__M_CQ)
                cq(f, "team-a", 1, false);
            else if (orders[o][i] == GF__M_LQ)
                lq(f, "ml", "team-a", "team-a", 1);
            else
                wl(f, "ml", "train", "team-a");
        }
        assert_string_equal(ledger_cq(f, "ml", "train"), "team-a");
        assert_int_equal(gf_ledger_n_pending(f->h.ledger), 1);
        const struct gf_ledger_cq *q =
            gf_ledger_cq(f->h.ledger, "east", "team-a");
        assert_non_null(q);
        assert_int_equal(q->pending, 2);
        assert_int_equal(gf_htab_len(&f->m->unresolved), 0);
        fx_free(f);
    }
}

/* Kueue writes a queue's status at every admission: such a change feeds
 * no Workload again (it used to feed every Workload of the member). */
static void test_queue_status_changes_feed_no_workload(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    cq(f, "team-a", 1, false);
    lq(f, "ml", "team-a", "team-a", 1);
    for (int i = 0; i < 500; i++) {
        char name[32];
        snprintf(name, sizeof(name), "w%d", i);
        wl(f, "ml", name, "team-a");
    }
    uint64_t fed = f->m->n_fed;
    assert_int_equal(fed, 500);
    for (int rv = 2; rv < 12; rv++) {
        cq(f, "team-a", rv, false);
        lq(f, "ml", "team-a", "team-a", rv);
    }
    assert_int_equal(f->m->n_fed, fed);
    assert_int_equal(gf_ledger_n_pending(f->h.ledger), 500);
    fx_free(f);
}

/* A queue that arrives feeds the Workloads that wait for it, and no
 * other: those of another queue that does not exist stay unresolved. */
static void test_arriving_queue_feeds_only_its_workloads(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    for (int i = 0; i < 200; i++) {
        char name[32];
        snprintf(name, sizeof(name), "bg%d", i);
        wl(f, "batch", name, "nowhere");
    }
    wl(f, "ml", "a", "team-a");
    wl(f, "ml", "b", "team-a");
    uint64_t fed = f->m->n_fed;
    lq(f, "ml", "team-a", "team-a", 1);
    assert_int_equal(f->m->n_fed, fed + 2); /* still no ClusterQueue */
    assert_null(ledger_cq(f, "ml", "a"));
    cq(f, "team-a", 1, false);
    assert_int_equal(f->m->n_fed, fed + 4);
    assert_string_equal(ledger_cq(f, "ml", "a"), "team-a");
    assert_string_equal(ledger_cq(f, "ml", "b"), "team-a");
    assert_null(ledger_cq(f, "batch", "bg7"));
    assert_int_equal(gf_ledger_n_pending(f->h.ledger), 2);
    /* A Workload deleted while it waits leaves nothing behind. */
    for (int i = 0; i < 200; i++) {
        char j[256];
        snprintf(j, sizeof(j),
                 "{\"metadata\":{\"name\":\"bg%d\",\"namespace\":\"batch\"}}",
                 i);
        removed(f, GF__M_WL, j);
    }
    assert_int_equal(gf_htab_len(&f->m->unresolved), 0);
    fx_free(f);
}

/* A LocalQueue deleted and created again for another ClusterQueue, and a
 * ClusterQueue that becomes gpufed's own: the Workloads follow. */
static void test_queues_that_go_or_change_refeed(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    cq(f, "team-a", 1, false);
    cq(f, "team-b", 1, false);
    lq(f, "ml", "q", "team-a", 1);
    wl(f, "ml", "train", "q");
    assert_string_equal(ledger_cq(f, "ml", "train"), "team-a");
    char j[512];
    lq_json(j, sizeof(j), "ml", "q", "team-a", 1);
    removed(f, GF__M_LQ, j);
    assert_null(ledger_cq(f, "ml", "train"));
    assert_int_equal(gf_ledger_n_pending(f->h.ledger), 0);
    lq(f, "ml", "q", "team-b", 2);
    assert_string_equal(ledger_cq(f, "ml", "train"), "team-b");
    /* The same LocalQueue pointed elsewhere (Kueue refuses it; a store
     * may still see it across a delete it missed). */
    lq(f, "ml", "q", "team-a", 3);
    assert_string_equal(ledger_cq(f, "ml", "train"), "team-a");
    /* Copies run in gpufed's queues: not counted as the lender's own. */
    cq(f, "team-a", 2, true);
    assert_null(gf_ledger_workload(f->h.ledger, "east", "ml", "train"));
    cq(f, "team-a", 3, false);
    assert_string_equal(ledger_cq(f, "ml", "train"), "team-a");
    /* A ClusterQueue deleted: its Workloads wait for it again. */
    removed(f, GF__M_CQ, "{\"metadata\":{\"name\":\"team-a\"}}");
    assert_null(ledger_cq(f, "ml", "train"));
    cq(f, "team-a", 4, false);
    assert_string_equal(ledger_cq(f, "ml", "train"), "team-a");
    fx_free(f);
}

static void ns(struct fx *f, const char *name, int rv, bool accepts)
{
    char j[512];
    snprintf(j, sizeof(j),
             "{\"metadata\":{\"name\":\"%s\",\"resourceVersion\":\"%d\","
             "\"labels\":{%s}}}",
             name, rv, accepts ? "\"gpufed.io/accept-overflow\":\"true\"" : "");
    upsert(f, GF__M_NS, j);
}

/* A namespace's opt-in reaches the ledger, where decide reads it. */
static void test_namespace_opt_in_reaches_the_ledger(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    ns(f, "default", 1, false);
    ns(f, "ml", 1, true);
    assert_true(gf_ledger_ns_accepts(f->h.ledger, "east", "ml"));
    assert_false(gf_ledger_ns_accepts(f->h.ledger, "east", "default"));
    ns(f, "ml", 2, false); /* the label taken off */
    assert_false(gf_ledger_ns_accepts(f->h.ledger, "east", "ml"));
    ns(f, "ml", 3, true);
    removed(f, GF__M_NS, "{\"metadata\":{\"name\":\"ml\"}}");
    assert_false(gf_ledger_ns_accepts(f->h.ledger, "east", "ml"));
    fx_free(f);
}

/* A held Workload at rv, as a write's answer or a watch event would
 * bring it (held: spec.active false and the lease annotation). */
static cJSON *wl_at(int rv, bool held)
{
    char j[1024];
    snprintf(j, sizeof(j),
             "{\"metadata\":{\"name\":\"train\",\"namespace\":\"ml\","
             "\"uid\":\"u-train\",\"resourceVersion\":\"%d\","
             "\"creationTimestamp\":\"2026-01-01T00:00:00Z\"%s},"
             "\"spec\":{\"active\":%s,\"queueName\":\"team-a\","
             "\"podSets\":[{\"count\":1,\"name\":\"main\",\"template\":"
             "{\"spec\":{\"containers\":[{\"name\":\"c\",\"resources\":"
             "{\"requests\":{\"" GPU "\":\"2\"}}}]}}}]}}",
             rv,
             held ? ",\"annotations\":{\"gpufed.io/lease\":\"east-train-1\"}"
                  : "",
             held ? "false" : "true");
    cJSON *o = cJSON_Parse(j);
    assert_non_null(o);
    return o;
}

/* The answer to the hold goes into the cache and the ledger at once, and
 * wakes the lease, before the watch brings it; an older event still on
 * its way does not take it back. */
static void test_a_write_answer_is_seen_before_its_watch_event(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    cq(f, "team-a", 1, false);
    lq(f, "ml", "team-a", "team-a", 1);
    cJSON *v2 = wl_at(2, false), *v5 = wl_at(5, true), *v4 = wl_at(4, false);
    assert_int_equal(gf_store_upsert(f->m->stores[GF__M_WL], v2), 0);
    assert_int_equal(
        gf_ledger_workload(f->h.ledger, "east", "ml", "train")->state,
        GF_WL_PENDING);
    gf__member_write_through(f->m, GF__M_WL, v5);
    assert_int_equal(
        gf_ledger_workload(f->h.ledger, "east", "ml", "train")->state,
        GF_WL_INACTIVE);
    gf_clock_advance(&f->h.clk, 0);
    assert_non_null(strstr(ran, "lease/east-train-1 "));
    /* Kueue's change at 4, before our hold at 5, arrives late. */
    assert_int_equal(gf_store_upsert(f->m->stores[GF__M_WL], v4), 0);
    assert_int_equal(
        gf_ledger_workload(f->h.ledger, "east", "ml", "train")->state,
        GF_WL_INACTIVE);
    assert_true(gf__member_wl(f->m, "ml", "train")->lease != NULL);
    cJSON_Delete(v2);
    cJSON_Delete(v5);
    cJSON_Delete(v4);
    fx_free(f);
}

/* The hub's lease cache, reduced to what the feed reads: name, mode,
 * phase, origin member and ClusterQueue. */
static int lease_proj(void *data, const cJSON *obj, void **out)
{
    (void)data;
    struct gf__lease_proj *p = gf_calloc(1, sizeof(*p));
    p->l.name = gf_strdup(gf_json_str(obj, "metadata.name"));
    p->l.origin_member = gf_strdup("east");
    p->l.origin_cq = gf_strdup(gf_json_str(obj, "cq"));
    p->l.mode = strcmp(gf_json_str(obj, "mode"), "Loan") == 0
                    ? GF_LEASE_LOAN
                    : GF_LEASE_REDIRECT;
    assert_int_equal(
        gf_lease_phase_parse(gf_json_str(obj, "phase"), &p->l.phase), 0);
    *out = p;
    return 0;
}

static void lease_proj_free(void *v)
{
    struct gf__lease_proj *p = v;
    gf_lease_clear(&p->l);
    gf_free(p);
}

static void lease(struct fx *f, const char *name, const char *mode,
                  const char *cq_name, const char *phase)
{
    char j[512];
    snprintf(j, sizeof(j),
             "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"gpufed-system\","
             "\"resourceVersion\":\"1\"},\"mode\":\"%s\",\"cq\":\"%s\","
             "\"phase\":\"%s\"}",
             name, mode, cq_name, phase);
    cJSON *o = cJSON_Parse(j);
    assert_int_equal(gf_store_upsert(f->h.leases, o), 0);
    cJSON_Delete(o);
}

/* A loan's grant (gpufed-loan-<queue>) is the lender's quota: it never
 * reaches the ledger as the borrower's own, and a change of it wakes the
 * loans of its queue that are not over, and nothing else. */
static void test_a_grant_is_not_quota_and_wakes_its_loans(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    struct gf_store_opts so = {.project = lease_proj,
                               .free_proj = lease_proj_free};
    f->h.leases = gf_store_new(&so);
    lease(f, "loan-a", "Loan", "team-a", "Active");
    lease(f, "loan-b", "Loan", "team-b", "Active");
    lease(f, "loan-old", "Loan", "team-a", "Released");
    lease(f, "redirect-a", "Redirect", "team-a", "Active");
    cq(f, "team-a", 1, false);
    gf_clock_advance(&f->h.clk, 0);
    ran[0] = '\0';
    cq(f, "gpufed-loan-team-a", 2, true);
    const struct gf_ledger_cq *g =
        gf_ledger_cq(f->h.ledger, "east", "gpufed-loan-team-a");
    assert_true(g == NULL || !g->known);
    assert_true(gf_ledger_cq(f->h.ledger, "east", "team-a")->known);
    gf_clock_advance(&f->h.clk, 0);
    assert_string_equal(ran, "lease/loan-a ");
    ran[0] = '\0';
    removed(f, GF__M_CQ, "{\"metadata\":{\"name\":\"gpufed-loan-team-a\"}}");
    gf_clock_advance(&f->h.clk, 0);
    assert_string_equal(ran, "lease/loan-a ");
    gf_store_free(f->h.leases);
    f->h.leases = NULL;
    fx_free(f);
}

/* decide lends into a ClusterQueue only through its cohort: the feed
 * carries spec.cohortName to the ledger with the quota, and takes it
 * away with the ClusterQueue. */
static void test_the_cohort_reaches_the_ledger(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    cq(f, "team-a", 1, false);
    const struct gf_ledger_cq *q = gf_ledger_cq(f->h.ledger, "east", "team-a");
    assert_non_null(q);
    assert_non_null(q->cohort);
    assert_string_equal(q->cohort, "pool");
    upsert(f, GF__M_CQ,
           "{\"metadata\":{\"name\":\"team-a\",\"resourceVersion\":\"2\"},"
           "\"spec\":{\"resourceGroups\":[]}}");
    assert_null(gf_ledger_cq(f->h.ledger, "east", "team-a")->cohort);
    cq(f, "team-a", 3, false);
    removed(f, GF__M_CQ, "{\"metadata\":{\"name\":\"team-a\"}}");
    q = gf_ledger_cq(f->h.ledger, "east", "team-a");
    assert_true(q == NULL || q->cohort == NULL);
    gf_clock_advance(&f->h.clk, 0);
    fx_free(f);
}

/* A version of Workload name (created 2023-11-14T22:13:20Z, T0 below), with
 * Evicted=True at evicted (NULL: never evicted). */
static void wl_seen(struct fx *f, const char *name, int rv, const char *evicted)
{
    char cond[256] = "";
    if (evicted != NULL)
        snprintf(cond, sizeof(cond),
                 ",\"status\":{\"conditions\":[{\"type\":\"Evicted\","
                 "\"status\":\"True\",\"reason\":\"Preempted\","
                 "\"lastTransitionTime\":\"%s\"}]}",
                 evicted);
    wl_json(f, "ml", name, "team-a", rv, "2023-11-14T22:13:20Z", cond);
}

static int64_t ledger_pending_since(const struct fx *f, const char *name)
{
    const struct gf_ledger_wl *w =
        gf_ledger_workload(f->h.ledger, "east", "ml", name);
    assert_non_null(w);
    return w->pending_since_ms;
}

/*
 * overflowAfter counts from the instant the hub saw a Workload start
 * waiting, not from the start of the second its timestamp names: the
 * Workloads of one second reach it one by one, as they came, and never
 * before their time (the wait is kept within that second).
 */
static void test_a_wait_counts_from_when_it_was_seen(void **state)
{
    (void)state;
    struct fx *f = fx_new(); /* wall clock at T0 */
    const int64_t t0 = 1700000000000;
    cq(f, "team-a", 1, false);
    lq(f, "ml", "team-a", "team-a", 1);
    gf_clock_advance(&f->h.clk, 400);
    wl_seen(f, "train", 1, NULL);
    assert_int_equal(ledger_pending_since(f, "train"), t0 + 400);
    /* A later version that names the same wait keeps the instant. */
    gf_clock_advance(&f->h.clk, 2000);
    wl_seen(f, "train", 2, NULL);
    assert_int_equal(ledger_pending_since(f, "train"), t0 + 400);
    /* One first seen seconds after its second (a cold start's list)
     * counts from the end of that second, never later. */
    wl_seen(f, "old", 1, NULL);
    assert_int_equal(ledger_pending_since(f, "old"), t0 + 999);
    /* An eviction starts a new wait; a hub clock behind the API
     * server's (seen at T0 + 2.4 s, evicted at T0 + 5 s) never counts
     * it before the second named. */
    wl_seen(f, "train", 3, "2023-11-14T22:13:25Z");
    assert_int_equal(ledger_pending_since(f, "train"), t0 + 5000);
    gf_clock_advance(&f->h.clk, 3000); /* T0 + 5.4 s */
    wl_seen(f, "old", 2, "2023-11-14T22:13:25Z");
    assert_int_equal(ledger_pending_since(f, "old"), t0 + 5400);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_listing_order_resolves_the_clusterqueue),
        cmocka_unit_test(test_queue_status_changes_feed_no_workload),
        cmocka_unit_test(test_arriving_queue_feeds_only_its_workloads),
        cmocka_unit_test(test_queues_that_go_or_change_refeed),
        cmocka_unit_test(test_namespace_opt_in_reaches_the_ledger),
        cmocka_unit_test(test_a_write_answer_is_seen_before_its_watch_event),
        cmocka_unit_test(test_a_grant_is_not_quota_and_wakes_its_loans),
        cmocka_unit_test(test_the_cohort_reaches_the_ledger),
        cmocka_unit_test(test_a_wait_counts_from_when_it_was_seen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
