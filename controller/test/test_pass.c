/*
 * Tests for the decision pass (controller/pass.c) on the manual clock: a
 * pass over N pending Workloads runs in slices of the budget, one slice
 * per loop turn, and timers (a watch's callbacks, write answers) run
 * between the slices. A hub without members or clients: the ledger is
 * filled directly, and a START finds no lender namespace, so nothing is
 * written. The test of a QuotaLease create in flight adds the members'
 * stores and a hub client on a loop that runs only to end its calls.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/clock.h"
#include "controller/internal.h"
#include "kubeclient/global.h"

#define GPU "nvidia.com/gpu"

static const char policy_yaml[] =
    "apiVersion: gpufed.io/v1alpha1\n"
    "kind: FederationPolicy\n"
    "spec:\n"
    "  members:\n"
    "  - {name: east, apiServer: 'https://e:6443', credentialsSecret: s/e}\n"
    "  - {name: west, apiServer: 'https://w:6443', credentialsSecret: s/w}\n"
    "  timing: {overflowAfter: 1s}\n"
    "  groups:\n"
    "  - name: ml\n"
    "    clusterQueues: [{member: east, name: ml}, {member: west, name: ml}]\n";

struct fx {
    struct gf_hub h;
    struct gf_policy *pol;
    uv_loop_t loop; /* the hub client's; run only to end its calls */
    struct gf_timer watch;
    /* n_pass_slices each time the watch timer ran */
    uint64_t seen[4096];
    size_t n_seen;
    int64_t live;
};

static void process(struct gf_workqueue *wq, const char *key, void *data)
{
    struct gf_hub *h = data;
    if (strcmp(key, "pass") == 0)
        gf__pass_run(h);
    else
        gf_wq_done(wq, key, GF_WQ_OK, 0);
}

/* Stands for the loop's other work: runs every millisecond. */
static void on_watch(struct gf_timer *t)
{
    struct fx *f = t->data;
    if (f->n_seen < sizeof(f->seen) / sizeof(f->seen[0]))
        f->seen[f->n_seen++] = f->h.n_pass_slices;
    gf_timer_start(t, 1, on_watch);
}

static struct fx *fx_new_drain(size_t pending, size_t budget, bool drain_listed)
{
    static struct fx f;
    memset(&f, 0, sizeof(f));
    f.live = gf_alloc_live();
    struct gf_policy_diag d;
    gf_policy_diag_init(&d);
    assert_int_equal(
        gf_policy_parse(policy_yaml, strlen(policy_yaml), &f.pol, &d), 0);
    gf_policy_diag_free(&d);
    struct gf_hub *h = &f.h;
    gf_clock_init_manual(&h->clk, 1000, 1700000000000);
    h->policy = f.pol;
    h->lc = (struct gf_log_ctx){.comp = "hub"};
    h->pass_period_ms = 1000;
    h->pass_budget = budget;
    h->ledger = gf_ledger_new(GPU);
    h->wq = gf_wq_new(&h->clk, NULL, process, h);
    h->leases = gf_store_new(NULL);
    gf_store_replace_begin(h->leases);
    gf_store_replace_end(h->leases); /* listed: no leases */
    gf_htab_init(&h->lease_mem, GF_HTAB_OWN_KEYS);
    gf_htab_init(&h->starting, GF_HTAB_OWN_KEYS);
    gf_htab_init(&h->drain_warned, GF_HTAB_OWN_KEYS);
    h->ns = "gpufed-system";
    gf__hub_drain_store_new(h);
    if (drain_listed) {
        gf_store_replace_begin(h->drain_cm);
        gf_store_replace_end(h->drain_cm); /* listed: no ConfigMap */
    }
    gf_htab_init(&h->reclaims, GF_HTAB_OWN_KEYS);
    const char *members[] = {"east", "west"};
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(
            gf_ledger_member_set(h->ledger, members[i], GF_FRESH_SYNCED, 0), 0);
        struct gf_cq_quota q = {"a100", GPU, i == 0 ? 0 : 100000, GF_NO_LIMIT,
                                GF_NO_LIMIT};
        assert_int_equal(gf_ledger_cq_set(h->ledger, members[i], "ml", &q, 1),
                         0);
    }
    for (size_t i = 0; i < pending; i++) {
        char name[32];
        snprintf(name, sizeof(name), "w%zu", i);
        struct gf_workload w = {.member = "east",
                                .namespace = "team",
                                .name = name,
                                .uid = name,
                                .cluster_queue = "ml",
                                .kind = "batch/Job",
                                .gpus = 1,
                                .state = GF_WL_PENDING,
                                .pending_since_ms = 1000};
        assert_int_equal(gf_ledger_workload_set(h->ledger, &w), 0);
    }
    gf_timer_init(&h->clk, &f.watch);
    f.watch.data = &f;
    gf_timer_start(&f.watch, 1, on_watch);
    return &f;
}

static struct fx *fx_new(size_t pending, size_t budget)
{
    return fx_new_drain(pending, budget, true);
}

static void fx_free(struct fx *f)
{
    struct gf_hub *h = &f->h;
    gf_timer_stop(&f->watch);
    for (size_t i = 0; i < h->n_members; i++)
        gf__member_close(h->members[i], NULL, NULL);
    gf_clock_advance(&h->clk, 0); /* members are freed from the loop */
    gf_free(h->members);
    gf_free(h->hb);
    gf__pass_abandon(h);
    gf_wq_free(h->wq);
    gf_store_free(h->leases);
    gf_store_free(h->drain_cm);
    gf_htab_free(&h->lease_mem);
    gf_htab_free(&h->starting);
    gf_htab_free(&h->drain_warned);
    gf_htab_free_all(&h->reclaims, gf_free);
    gf_ledger_free(h->ledger);
    gf_policy_free(f->pol);
    assert_int_equal(gf_clock_active_timers(&h->clk), 0);
    gf_clock_close(&h->clk);
    assert_int_equal(gf_alloc_live(), f->live);
}

/* Runs the loop a millisecond at a time until one pass has ended. */
static void run_one_pass(struct fx *f)
{
    gf_wq_add(f->h.wq, "pass");
    for (int ms = 0; ms < 100000; ms++) {
        gf_clock_advance(&f->h.clk, 1);
        if (f->h.n_passes == 1 && f->h.dpass == NULL)
            return;
    }
    fail_msg("the pass did not end");
}

/* 1,000 pending Workloads, slices of 64: ceil(1000/64) = 16 turns, and
 * the other timer ran between every two of them. */
static void test_a_pass_runs_in_bounded_slices(void **state)
{
    (void)state;
    struct fx *f = fx_new(1000, 64);
    run_one_pass(f);
    assert_int_equal(f->h.n_pass_slices, 16);
    assert_int_equal(f->h.n_passes, 1);
    for (uint64_t k = 1; k < 16; k++) {
        bool between = false;
        for (size_t i = 0; i < f->n_seen && !between; i++)
            between = f->seen[i] == k;
        assert_true(between); /* the timer ran after slice k, before k+1 */
    }
    fx_free(f);
}

/* The default budget: a small pass is one slice. */
static void test_a_small_pass_is_one_slice(void **state)
{
    (void)state;
    struct fx *f = fx_new(GF__PASS_BUDGET, 0);
    run_one_pass(f);
    assert_int_equal(f->h.n_pass_slices, 1);
    fx_free(f);
}

static void upsert_cm(struct gf_hub *h, const char *data)
{
    static unsigned long long rv = 100; /* a new version each time */
    char js[512];
    snprintf(js, sizeof(js),
             "{\"metadata\":{\"name\":\"gpufed-drain\",\"namespace\":"
             "\"gpufed-system\",\"resourceVersion\":\"%llu\"},"
             "\"data\":%s}",
             ++rv, data);
    cJSON *cm = cJSON_Parse(js);
    assert_non_null(cm);
    assert_int_equal(gf_store_upsert(h->drain_cm, cm), 0);
    cJSON_Delete(cm);
}

static bool drained(const struct gf_hub *h, const char *m)
{
    const struct gf_ledger_member *lm = gf_ledger_member(h->ledger, m);
    return lm != NULL && lm->drained;
}

/* Until the drain ConfigMap has listed, no pass decides anything: a
 * restarted hub must not lend from a member an admin drained. Then its
 * keys drain the members they name, and only those; a deleted
 * ConfigMap (or a removed key) undrains. */
static void test_the_drain_configmap_gates_and_feeds_the_ledger(void **state)
{
    (void)state;
    struct fx *f = fx_new_drain(3, 0, false);
    struct gf_hub *h = &f->h;
    gf_wq_add(h->wq, "pass");
    gf_clock_advance(&h->clk, 5000);
    assert_int_equal(h->n_pass_slices, 0);
    assert_int_equal(h->n_passes, 0);
    assert_false(gf__hub_synced(h));

    gf_store_replace_begin(h->drain_cm);
    char js[] = "{\"metadata\":{\"name\":\"gpufed-drain\",\"namespace\":"
                "\"gpufed-system\",\"resourceVersion\":\"1\"},\"data\":{"
                "\"west\":\"2026-12-06T08:00:00Z\",\"nowhere\":\"x\"}}";
    cJSON *cm = cJSON_Parse(js);
    assert_int_equal(gf_store_replace_add(h->drain_cm, cm), 0);
    cJSON_Delete(cm);
    gf_store_replace_end(h->drain_cm);
    assert_true(gf__hub_synced(h));
    assert_true(drained(h, "west"));
    assert_false(drained(h, "east"));
    /* A name that is no member is reported, not added to the ledger. */
    assert_null(gf_ledger_member(h->ledger, "nowhere"));
    assert_non_null(gf_htab_get_str(&h->drain_warned, "nowhere"));
    const struct gf_drain_set *ds = gf__hub_drained(h);
    assert_non_null(ds);
    assert_int_equal(ds->n, 2);
    for (int ms = 0; ms < 5000 && h->n_passes == 0; ms++)
        gf_clock_advance(&h->clk, 1);
    assert_true(h->n_passes >= 1);

    upsert_cm(h, "{\"east\":\"2026-12-06T09:00:00Z\"}");
    assert_true(drained(h, "east"));
    assert_false(drained(h, "west"));
    upsert_cm(h, "{}");
    assert_false(drained(h, "east"));
    upsert_cm(h, "{\"west\":\"2026-12-06T09:00:00Z\"}");
    assert_true(drained(h, "west"));
    cm = cJSON_Parse(js);
    assert_int_equal(gf_store_remove(h->drain_cm, cm), 0);
    cJSON_Delete(cm);
    assert_false(drained(h, "west"));
    assert_null(gf__hub_drained(h));
    fx_free(f);
}

/*
 * The reclaim world: west lent all of its 4 GPUs to east's train (lease
 * east-train-1, Active for 10 minutes, with the reclaim instants given),
 * and west's own 2-GPU Workload has waited since the start. Returns the
 * lease, for a test to change and set again.
 */
static struct gf_lease lend_all_of_west(struct fx *f, int64_t reclaim_started,
                                        int64_t reclaim_deadline)
{
    struct gf_hub *h = &f->h;
    struct gf_cq_quota q = {"a100", GPU, 4, GF_NO_LIMIT, GF_NO_LIMIT};
    assert_int_equal(gf_ledger_cq_set(h->ledger, "west", "ml", &q, 1), 0);
    int64_t now = gf_clock_wall_ms(&h->clk);
    struct gf_lease l = {.name = "east-train-1",
                         .group = "ml",
                         .phase = GF_LEASE_ACTIVE,
                         .epoch = 1,
                         .origin_member = "east",
                         .origin_namespace = "team",
                         .origin_name = "train",
                         .origin_uid = "u-train",
                         .origin_cq = "ml",
                         .lender_member = "west",
                         .lender_cq = "ml",
                         .lender_flavor = "a100",
                         .gpus = 4,
                         .created_ms = now - 600000,
                         .started_ms = now - 600000,
                         .expires_ms = now + 600000,
                         .reclaim_started_ms = reclaim_started,
                         .reclaim_deadline_ms = reclaim_deadline};
    assert_int_equal(gf_ledger_lease_set(h->ledger, &l), 0);
    struct gf_workload w = {.member = "west",
                            .namespace = "team",
                            .name = "own",
                            .uid = "u-own",
                            .cluster_queue = "ml",
                            .kind = "batch/Job",
                            .gpus = 2,
                            .state = GF_WL_PENDING,
                            .pending_since_ms = 1000};
    assert_int_equal(gf_ledger_workload_set(h->ledger, &w), 0);
    return l;
}

/* Runs the loop a millisecond at a time until one more pass has ended. */
static void run_next_pass(struct fx *f)
{
    uint64_t passes = f->h.n_passes;
    gf_wq_add(f->h.wq, "pass");
    for (int ms = 0; ms < 100000 && f->h.n_passes == passes; ms++)
        gf_clock_advance(&f->h.clk, 1);
}

/* Frees the lease's memory the passes kept (no lease reconcile runs). */
static void drop_lease_mem(struct gf_hub *h, struct gf__lease_mem *m)
{
    gf_htab_del_str(&h->lease_mem, m->name);
    gf_free(m->name);
    gf_free(m);
}

/*
 * A reclaim: west lent all of its 4 GPUs and its own Workload has waited
 * reclaimAfter. The pass gives the victim the RECLAIM command with the
 * action's deadline (the pass's time + gracePeriod) and its cause; the
 * next pass, where decide no longer names it, takes the command back.
 */
static void test_a_reclaim_commands_its_victims(void **state)
{
    (void)state;
    struct fx *f = fx_new(0, 0);
    struct gf_hub *h = &f->h;
    int64_t now = gf_clock_wall_ms(&h->clk);
    struct gf_lease l = lend_all_of_west(f, 0, 0);
    run_one_pass(f);
    struct gf__lease_mem *m = gf_htab_get_str(&h->lease_mem, "east-train-1");
    assert_non_null(m);
    assert_int_equal(m->cmd, GF_LM_CMD_RECLAIM);
    assert_string_equal(m->reclaim_cause, "reclaim");
    int64_t grace = h->policy->timing.grace_period_ms;
    assert_true(m->reclaim_deadline_ms >= now + grace);
    assert_true(m->reclaim_deadline_ms <= gf_clock_wall_ms(&h->clk) + grace);
    /* The lease turned Reclaiming (its GPUs count toward the need): the
     * next pass names no victim, and the command is taken back. */
    l.phase = GF_LEASE_RECLAIMING;
    assert_int_equal(gf_ledger_lease_set(h->ledger, &l), 0);
    run_next_pass(f);
    assert_int_equal(m->cmd, GF_LM_CMD_NONE);
    assert_int_equal(m->reclaim_deadline_ms, 0);
    drop_lease_mem(h, m);
    fx_free(f);
}

/*
 * A reclaim marked again after its lender was Suspect for a moment (which
 * drops the Reclaiming phase; the status keeps the first mark's instants)
 * resumes the first mark's deadline: the copy was told then, and the
 * lender has waited since (S4; chaos seed 13 saw a full new grace). A mark
 * older than gracePeriod + D belongs to a reclaim dropped for good: the
 * new one gets a full grace period.
 */
static void test_a_reclaim_marked_again_keeps_its_first_deadline(void **state)
{
    (void)state;
    struct fx *f = fx_new(0, 0);
    struct gf_hub *h = &f->h;
    int64_t now = gf_clock_wall_ms(&h->clk);
    const struct gf_policy_timing *t = &h->policy->timing;
    struct gf_lease l = lend_all_of_west(f, now - 1000, now + 500);
    run_one_pass(f);
    struct gf__lease_mem *m = gf_htab_get_str(&h->lease_mem, "east-train-1");
    assert_non_null(m);
    assert_int_equal(m->cmd, GF_LM_CMD_RECLAIM);
    assert_int_equal(m->reclaim_deadline_ms, now + 500);
    assert_int_equal(m->reclaim_started_ms, now - 1000);
    /* The first mark long gone: a fresh reclaim, a full grace period. */
    now = gf_clock_wall_ms(&h->clk);
    l.reclaim_started_ms = now - t->grace_period_ms - t->lease_duration_ms - 1;
    l.reclaim_deadline_ms = now - t->lease_duration_ms - 1;
    assert_int_equal(gf_ledger_lease_set(h->ledger, &l), 0);
    run_next_pass(f);
    assert_int_equal(m->cmd, GF_LM_CMD_RECLAIM);
    assert_int_equal(m->reclaim_started_ms, 0);
    assert_true(m->reclaim_deadline_ms >= now + t->grace_period_ms);
    drop_lease_mem(h, m);
    fx_free(f);
}

/* --- a QuotaLease create in flight ------------------------------------ */

/*
 * Both policy members with stores, synced and healthy, and west's
 * namespace "team" opted in: what start_lease looks at before it writes.
 */
static void add_members(struct fx *f)
{
    struct gf_hub *h = &f->h;
    h->resource = (char *)GPU;
    h->n_members = f->pol->n_members;
    h->members = gf_calloc(h->n_members, sizeof(*h->members));
    h->hb = gf_calloc(h->n_members, sizeof(*h->hb));
    for (size_t i = 0; i < h->n_members; i++) {
        assert_int_equal(gf__member_new(h, i, &h->members[i]), 0);
        gf__member_stores_new(h->members[i]);
        /* Listed once and healthy; not running, so it sends nothing. */
        h->hb[i].clk = &h->clk;
        h->hb[i].ever_synced = true;
    }
    cJSON *ns = cJSON_Parse(
        "{\"metadata\":{\"name\":\"team\",\"resourceVersion\":\"1\","
        "\"labels\":{\"gpufed.io/accept-overflow\":\"true\"}}}");
    assert_non_null(ns);
    assert_int_equal(gf_store_upsert(h->members[1]->stores[GF__M_NS], ns), 0);
    cJSON_Delete(ns);
    assert_true(gf_ledger_ns_accepts(h->ledger, "west", "team"));
}

/* The hub's client, on a loop the test does not run: a create it sends
 * stays in flight. */
static void hub_client_open(struct fx *f)
{
    struct gf_hub *h = &f->h;
    assert_int_equal(gf_http_new(&f->loop, &h->clk, &h->http), 0);
    struct gf_kube_creds creds = {.context = "t",
                                  .cluster = "t",
                                  .user = "t",
                                  .server = "https://127.0.0.1:1"};
    struct gf_kube_client_opts co = {.name = "hub"};
    assert_int_equal(
        gf_kube_client_new(h->http, &h->clk, &creds, &co, &h->hubc), 0);
}

/* Cancels every call in flight (each answers GF_ECANCELED, a create that
 * failed) and runs the loop until they have answered and all is closed. */
static void hub_client_cancel(struct fx *f)
{
    struct gf_hub *h = &f->h;
    gf_kube_client_free(h->hubc);
    h->hubc = NULL;
    gf_http_close(h->http, NULL, NULL);
    h->http = NULL;
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
}

static void pending_wl(struct fx *f, const char *name, int64_t gpus,
                       int32_t priority)
{
    struct gf_workload w = {.member = "east",
                            .namespace = "team",
                            .name = name,
                            .uid = name,
                            .cluster_queue = "ml",
                            .kind = "batch/Job",
                            .gpus = gpus,
                            .priority = priority,
                            .state = GF_WL_PENDING,
                            .pending_since_ms = 1000};
    assert_int_equal(gf_ledger_workload_set(f->h.ledger, &w), 0);
}

/* How many leases of the Workload hold quota, and its highest epoch. */
static size_t live_leases(const struct fx *f, const char *wl, uint64_t *epoch)
{
    size_t live;
    gf_ledger_workload_leases(f->h.ledger, "east", "team", wl, &live, epoch);
    return live;
}

static bool starting(const struct fx *f, const char *wl)
{
    char key[64];
    snprintf(key, sizeof(key), "east/team/%s", wl);
    return gf_htab_get_str(&f->h.starting, key) != NULL;
}

/* The only lease in the ledger (the test makes one at a time). */
static const struct gf_lease *the_lease(const struct fx *f)
{
    const struct gf_ledger_lease *v[2];
    assert_int_equal(gf_ledger_leases(f->h.ledger, v, 2), 1);
    return &v[0]->l;
}

/*
 * West lends 8 GPUs. A pass STARTs Workload a (8 GPUs) and its QuotaLease
 * create stays in flight; then b (8 GPUs, a higher priority, so first in
 * decide's order) is pending too. The next pass must not promise west's
 * 8 GPUs to b: the ledger counts a's lease from the moment its create
 * was sent (without that, b got a lease too, whose copy west's Kueue
 * could never admit, withdrawn after admitTimeout). The create fails:
 * the ledger lets the lease go and gives its epoch back (a retried
 * create has the same name), and a later pass STARTs b. A create that
 * fails after the watch has brought its lease (the write landed, its
 * answer was lost) leaves the server's lease in the ledger.
 */
static void test_a_lease_in_flight_is_counted_before_its_answer(void **state)
{
    (void)state;
    struct fx *f = fx_new(0, 0);
    struct gf_hub *h = &f->h;
    assert_int_equal(uv_loop_init(&f->loop), 0);
    struct gf_cq_quota q = {"a100", GPU, 8, GF_NO_LIMIT, GF_NO_LIMIT};
    assert_int_equal(gf_ledger_cq_set(h->ledger, "west", "ml", &q, 1), 0);
    add_members(f);
    hub_client_open(f);
    uint64_t epoch;

    pending_wl(f, "a", 8, 0);
    run_next_pass(f);
    assert_true(starting(f, "a"));
    assert_int_equal(h->n_writes, 1);
    assert_int_equal(live_leases(f, "a", &epoch), 1);
    assert_int_equal(epoch, 1);

    pending_wl(f, "b", 8, 10);
    run_next_pass(f);
    assert_true(starting(f, "a")); /* still in flight */
    assert_false(starting(f, "b"));
    assert_int_equal(h->n_writes, 1);
    assert_int_equal(live_leases(f, "b", &epoch), 0);

    hub_client_cancel(f);
    assert_false(starting(f, "a"));
    assert_int_equal(h->n_write_errors, 1);
    assert_int_equal(live_leases(f, "a", &epoch), 0);
    assert_int_equal(epoch, 0);
    assert_int_equal(gf_ledger_leases(h->ledger, NULL, 0), 0);
    assert_int_equal(gf_htab_len(&h->lease_mem), 0);

    /* West's GPUs are free again: b is STARTed. */
    hub_client_open(f);
    run_next_pass(f);
    assert_true(starting(f, "b"));
    assert_false(starting(f, "a"));
    assert_int_equal(h->n_writes, 2);
    assert_string_equal(the_lease(f)->origin_name, "b");
    /* The watch brings the lease before the create's answer, which then
     * fails: the ledger keeps it. */
    cJSON *obj = gf_obs_lease_to_json(the_lease(f), h->ns, GPU);
    cJSON_AddItemToObject(cJSON_GetObjectItem(obj, "metadata"),
                          "resourceVersion", cJSON_CreateString("7"));
    assert_int_equal(gf_store_upsert(h->leases, obj), 0);
    cJSON_Delete(obj);
    hub_client_cancel(f);
    assert_int_equal(h->n_write_errors, 2);
    assert_int_equal(live_leases(f, "b", &epoch), 1);
    assert_int_equal(epoch, 1);

    assert_int_equal(uv_loop_close(&f->loop), 0);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_pass_runs_in_bounded_slices),
        cmocka_unit_test(test_a_small_pass_is_one_slice),
        cmocka_unit_test(test_the_drain_configmap_gates_and_feeds_the_ledger),
        cmocka_unit_test(test_a_reclaim_commands_its_victims),
        cmocka_unit_test(test_a_reclaim_marked_again_keeps_its_first_deadline),
        cmocka_unit_test(test_a_lease_in_flight_is_counted_before_its_answer),
    };
    assert_int_equal(gf_kube_global_init(), 0);
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_kube_global_cleanup();
    return rc;
}
