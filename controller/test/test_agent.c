/*
 * Tests for controller/agent: `gpufed agent` on the manual clock with a
 * scripted API server (controller/internal.h's gf__agent_io). A fake
 * records every call and the test answers it as the member's API server
 * would. What is shown: the fence reads the copies afresh from the API
 * server (a copy the watch caches never saw is fenced at the fence
 * instant), a LIST that fails is read again at the next poll, a copy
 * that shows up only in a later LIST is fenced then, and an answered
 * heartbeat read ends the watches' backoff wait.
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
#include "common/err.h"
#include "controller/copy.h"
#include "controller/fence.h"
#include "controller/internal.h"
#include "kubeclient/store.h"

#define D_MS ((uint64_t)3000) /* the poll period P = D/6 = 500 */
#define P_MS ((uint64_t)500)
#define T0 ((uint64_t)100000)
#define WALL0 1790000000000LL
/* A renewal older than D at the agent's start: fenced at once. */
#define STALE (WALL0 - (int64_t)D_MS - 1)
#define MAX_CALLS 128

enum kind { HB, LIST, GET, PATCH, EVENT };

struct call {
    enum kind kind;
    bool open;
    uint64_t at;
    char res[64], ns[64], name[64], selector[64], cont[64], rv[32];
    char body[256];
    gf_kube_cb cb;
    void *data;
};

struct fake {
    struct gf_agent *a;
    struct gf_clock *clk;
    struct call calls[MAX_CALLS];
    size_t n;
    int retried; /* io->retry_now calls */
    int64_t live;
};

static struct fake F;

static struct call *record(enum kind k, gf_kube_cb cb, void *data)
{
    assert_true(F.n < MAX_CALLS);
    struct call *c = &F.calls[F.n++];
    memset(c, 0, sizeof(*c));
    c->kind = k;
    c->open = true;
    c->at = gf_clock_now_ms(F.clk);
    c->cb = cb;
    c->data = data;
    return c;
}

static int fake_call(struct gf_kube_client *c, const struct gf_kube_op *op,
                     gf_kube_cb cb, void *data, struct gf_kube_call **out)
{
    (void)c;
    assert_string_equal(op->name, GF_HEARTBEAT_NAME);
    struct call *k = record(HB, cb, data);
    snprintf(k->ns, sizeof(k->ns), "%s", op->ns);
    *out = NULL;
    return 0;
}

static int fake_get(struct gf_kube_client *c, const struct gf_kube_resource *r,
                    const char *ns, const char *name, gf_kube_cb cb, void *data,
                    struct gf_kube_call **out)
{
    (void)c;
    (void)r;
    struct call *k = record(GET, cb, data);
    snprintf(k->ns, sizeof(k->ns), "%s", ns);
    snprintf(k->name, sizeof(k->name), "%s", name);
    *out = NULL;
    return 0;
}

static int fake_list(struct gf_kube_client *c, const struct gf_kube_resource *r,
                     const struct gf_kube_list_opts *o, gf_kube_cb cb,
                     void *data, struct gf_kube_call **out)
{
    (void)c;
    /* A quorum read: never from a resourceVersion (a cache). */
    assert_null(o->resource_version);
    struct call *k = record(LIST, cb, data);
    snprintf(k->res, sizeof(k->res), "%s", r->plural);
    snprintf(k->selector, sizeof(k->selector), "%s",
             o->label_selector != NULL ? o->label_selector : "");
    snprintf(k->cont, sizeof(k->cont), "%s",
             o->continue_token != NULL ? o->continue_token : "");
    *out = (struct gf_kube_call *)k;
    return 0;
}

static int fake_patch(struct gf_kube_client *c,
                      const struct gf_kube_resource *r, const char *ns,
                      const char *name, const struct gf_kube_patch_opts *o,
                      const char *body, size_t len, gf_kube_cb cb, void *data,
                      struct gf_kube_call **out)
{
    (void)c;
    struct call *k = record(PATCH, cb, data);
    snprintf(k->res, sizeof(k->res), "%s", r->plural);
    snprintf(k->ns, sizeof(k->ns), "%s", ns != NULL ? ns : "");
    snprintf(k->name, sizeof(k->name), "%s", name);
    snprintf(k->rv, sizeof(k->rv), "%s", o->resource_version);
    snprintf(k->body, sizeof(k->body), "%.*s", (int)len, body);
    *out = NULL;
    return 0;
}

static void answer(struct call *k, int err, long code, const char *json);

static void fake_cancel(struct gf_kube_call *call)
{
    struct call *k = (struct call *)call;
    if (k != NULL && k->open)
        answer(k, GF_ECANCELED, 0, NULL);
}

static int fake_event(struct gf_kube_client *c, int64_t wall_ms,
                      const struct gf_event *ev, gf_kube_cb done, void *data)
{
    (void)c;
    (void)wall_ms;
    (void)ev;
    record(EVENT, done, data);
    return 0;
}

static size_t fake_retry_now(struct gf_agent *a)
{
    (void)a;
    F.retried++;
    return 0;
}

static const struct gf__agent_io io = {.call = fake_call,
                                       .get = fake_get,
                                       .list = fake_list,
                                       .patch = fake_patch,
                                       .cancel = fake_cancel,
                                       .event = fake_event,
                                       .retry_now = fake_retry_now};

static void answer(struct call *k, int err, long code, const char *json)
{
    assert_true(k->open);
    k->open = false;
    struct gf_api_status st = {.err = err, .code = code};
    if (err != 0)
        snprintf(st.message, sizeof(st.message), "scripted failure");
    cJSON *o = json != NULL ? cJSON_Parse(json) : NULL;
    if (json != NULL)
        assert_non_null(o);
    const struct gf_kube_result res = {
        .err = err, .http_code = code, .json = o, .status = &st};
    k->cb(k->data, &res);
    cJSON_Delete(o);
}

/* The one open call of kind k (fails if none or several). */
static struct call *open_call(enum kind k)
{
    struct call *found = NULL;
    for (size_t i = 0; i < F.n; i++)
        if (F.calls[i].open && F.calls[i].kind == k) {
            assert_null(found);
            found = &F.calls[i];
        }
    assert_non_null(found);
    return found;
}

static size_t count(enum kind k)
{
    size_t n = 0;
    for (size_t i = 0; i < F.n; i++)
        n += F.calls[i].kind == k;
    return n;
}

static size_t count_open(enum kind k)
{
    size_t n = 0;
    for (size_t i = 0; i < F.n; i++)
        n += F.calls[i].kind == k && F.calls[i].open;
    return n;
}

static void answer_events(void)
{
    for (size_t i = 0; i < F.n; i++)
        if (F.calls[i].open && F.calls[i].kind == EVENT)
            answer(&F.calls[i], 0, 201, "{}");
}

/* The heartbeat Lease as the hub writes it, renewed at wall_ms. */
static void answer_hb(int64_t wall_ms)
{
    char ts[32], js[256];
    gf_time_rfc3339(wall_ms, ts);
    snprintf(js, sizeof(js),
             "{\"metadata\":{\"name\":\"" GF_HEARTBEAT_NAME "\"},"
             "\"spec\":{\"holderIdentity\":\"hub-0\","
             "\"leaseDurationSeconds\":%u,\"renewTime\":\"%.19s.%03d000Z\"}}",
             (unsigned)(D_MS / 1000), ts, (int)(wall_ms % 1000));
    answer(open_call(HB), 0, 200, js);
}

static void job_json(char *out, size_t cap, const char *name, const char *uid)
{
    snprintf(out, cap,
             "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"team-a\","
             "\"uid\":\"%s\",\"resourceVersion\":\"5\",\"labels\":{"
             "\"" GF_LABEL_LEASE "\":\"east-%s-1\","
             "\"" GF_LABEL_ORIGIN_CLUSTER "\":\"east\"}},"
             "\"spec\":{\"suspend\":false}}",
             name, uid, name);
}

/* Kueue's Workload for the Job (name, uid), active, at resourceVersion
 * rv. */
static void wl_json(char *out, size_t cap, const char *job, const char *uid,
                    const char *rv)
{
    snprintf(out, cap,
             "{\"metadata\":{\"name\":\"job-%s-1a2b3\",\"namespace\":"
             "\"team-a\",\"uid\":\"w-%s\",\"resourceVersion\":\"%s\","
             "\"ownerReferences\":[{\"apiVersion\":\"batch/v1\","
             "\"kind\":\"Job\",\"name\":\"%s\",\"uid\":\"%s\","
             "\"controller\":true}]},"
             "\"spec\":{\"active\":true,\"queueName\":\"gpu\","
             "\"podSets\":[{\"name\":\"main\",\"count\":1,\"template\":{"
             "\"spec\":{\"containers\":[{\"name\":\"c\",\"resources\":{"
             "\"requests\":{\"nvidia.com/gpu\":\"1\"}}}]}}}]}}",
             job, uid, rv, job, uid);
}

/* A list body with the given items (a comma-separated JSON text). */
static void answer_list(struct call *k, const char *items, const char *cont)
{
    char js[8192];
    snprintf(js, sizeof(js),
             "{\"kind\":\"List\",\"metadata\":{\"resourceVersion\":\"99\","
             "\"continue\":\"%s\"},\"items\":[%s]}",
             cont, items);
    answer(k, 0, 200, js);
}

/* Answers the fence's LIST: the copy Jobs, then all Workloads, then
 * (while fenced) every ClusterQueue: the loans to revert among them, and
 * the quotas of their cohorts. */
static void answer_lists3(const char *jobs, const char *wls, const char *cqs)
{
    struct call *j = open_call(LIST);
    assert_string_equal(j->res, "jobs");
    assert_string_equal(j->selector, GF_LABEL_LEASE);
    answer_list(j, jobs, "");
    struct call *w = open_call(LIST);
    assert_string_equal(w->res, "workloads");
    assert_string_equal(w->selector, "");
    answer_list(w, wls, "");
    if (count_open(LIST) == 0) {
        assert_false(gf__agent_fenced(F.a));
        return;
    }
    struct call *q = open_call(LIST);
    assert_string_equal(q->res, "clusterqueues");
    assert_string_equal(q->selector, "");
    answer_list(q, cqs, "");
}

static void answer_lists(const char *jobs, const char *wls)
{
    answer_lists3(jobs, wls, "");
}

static int setup(void **state)
{
    (void)state;
    memset(&F, 0, sizeof(F));
    F.live = gf_alloc_live();
    assert_int_equal(gf__agent_new(&io, T0, WALL0, "west", 0, &F.a), 0);
    F.clk = gf__agent_clock(F.a);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    answer_events();
    for (size_t i = 0; i < F.n; i++)
        if (F.calls[i].open && F.calls[i].kind == HB)
            answer(&F.calls[i], GF_ECANCELED, 0, NULL);
    for (size_t i = 0; i < F.n; i++)
        assert_false(F.calls[i].open && F.calls[i].kind != LIST);
    gf__agent_free(F.a);
    assert_int_equal(gf_alloc_live(), F.live);
    return 0;
}

/* Moves the clock by ms, answering every heartbeat read with the Lease
 * renewed at wall_renew as soon as it is sent. */
static void run_for(uint64_t ms, int64_t wall_renew)
{
    uint64_t end = gf_clock_now_ms(F.clk) + ms;
    for (;;) {
        uint64_t due = gf_clock_next_due(F.clk);
        uint64_t now = gf_clock_now_ms(F.clk);
        if (due > end) {
            gf_clock_advance(F.clk, end - now);
            return;
        }
        gf_clock_advance(F.clk, due > now ? due - now : 0);
        if (count_open(HB) > 0)
            answer_hb(wall_renew);
    }
}

/* Started with a Lease renewed at WALL0: credit T0, the fence due at
 * T0 + D. */
static void started(void)
{
    gf_clock_advance(F.clk, 0);
    answer_hb(WALL0);
    assert_int_equal(F.retried, 1);
    assert_false(gf__agent_fenced(F.a));
}

/* Started with a Lease last renewed more than D ago: fenced at once. */
static void started_fenced(void)
{
    gf_clock_advance(F.clk, 0);
    answer_hb(STALE);
    assert_true(gf__agent_fenced(F.a));
}

static void cache_add(bool job, const char *json)
{
    struct gf_store *jobs, *wls;
    gf__agent_caches(F.a, &jobs, &wls);
    cJSON *o = cJSON_Parse(json);
    assert_int_equal(gf_store_upsert(job ? jobs : wls, o), 0);
    cJSON_Delete(o);
}

static const struct call *patch_of(const char *name)
{
    const struct call *found = NULL;
    for (size_t i = 0; i < F.n; i++)
        if (F.calls[i].kind == PATCH && strcmp(F.calls[i].name, name) == 0) {
            assert_null(found);
            found = &F.calls[i];
        }
    return found;
}

static void
test_copy_missing_from_the_cache_is_fenced_at_the_fence(void **state)
{
    (void)state;
    started();
    /* j1 is in the cache and in the API server; j2 only in the API
     * server (created while the watches were down). */
    char j1[512], w1[1024], j2[512], w2[1024], items[4096];
    job_json(j1, sizeof(j1), "j1", "u1");
    wl_json(w1, sizeof(w1), "j1", "u1", "7");
    job_json(j2, sizeof(j2), "j2", "u2");
    wl_json(w2, sizeof(w2), "j2", "u2", "8");
    cache_add(true, j1);
    cache_add(false, w1);
    /* The heartbeat never moves again: nothing is read or patched
     * before the fence. */
    run_for(D_MS - 1, WALL0);
    assert_false(gf__agent_fenced(F.a));
    assert_int_equal(count(LIST), 0);
    assert_int_equal(count(PATCH), 0);
    run_for(1, WALL0);
    uint64_t fence_at = T0 + D_MS;
    assert_true(gf__agent_fenced(F.a));
    assert_int_equal(gf_clock_now_ms(F.clk), fence_at);
    /* The cached copy is patched from the cache at once; the LIST is
     * sent at the same instant. */
    assert_non_null(patch_of("job-j1-1a2b3"));
    struct call *l = open_call(LIST);
    assert_int_equal(l->at, fence_at);
    snprintf(items, sizeof(items), "%s,%s", j1, j2);
    char wls[4096];
    snprintf(wls, sizeof(wls), "%s,%s", w1, w2);
    answer_lists(items, wls);
    const struct call *p2 = patch_of("job-j2-1a2b3");
    assert_non_null(p2);
    assert_int_equal(p2->at, fence_at);
    assert_string_equal(p2->ns, "team-a");
    assert_string_equal(p2->rv, "8");
    assert_non_null(strstr(p2->body, "\"active\":false"));
    assert_non_null(strstr(p2->body, GF_ANN_FENCED_AT));
    /* j1 is patched once: the LIST finds its patch in flight. */
    assert_int_equal(count(PATCH), 2);
    answer((struct call *)patch_of("job-j1-1a2b3"), 0, 200, "{}");
    answer((struct call *)p2, 0, 200, "{}");
    assert_int_equal(count(EVENT), 2);
}

static void test_a_failed_list_is_read_again_at_the_next_poll(void **state)
{
    (void)state;
    started_fenced();
    uint64_t fenced_at = gf_clock_now_ms(F.clk);
    struct call *l = open_call(LIST);
    assert_int_equal(l->at, fenced_at);
    answer(l, GF_ETRANSPORT, 0, NULL);
    assert_int_equal(count_open(LIST), 0);
    /* Nothing until the next poll, one period after the last read was
     * sent. */
    run_for(P_MS - 1, STALE);
    assert_int_equal(count(LIST), 1);
    run_for(1, STALE);
    l = open_call(LIST);
    assert_int_equal(l->at, fenced_at + P_MS);
    char j[512], w[1024];
    job_json(j, sizeof(j), "j3", "u3");
    wl_json(w, sizeof(w), "j3", "u3", "11");
    answer_lists(j, w);
    const struct call *p = patch_of("job-j3-1a2b3");
    assert_non_null(p);
    assert_int_equal(p->at, fenced_at + P_MS);
    answer(open_call(PATCH), 0, 200, "{}");
    /* Still fenced: a Workload list that fails is retried too. */
    run_for(P_MS, STALE);
    answer_list(open_call(LIST), j, "");
    answer(open_call(LIST), GF_ETRANSPORT, 503, NULL);
    run_for(P_MS, STALE);
    assert_int_equal(count_open(LIST), 1);
}

static void test_a_copy_in_a_later_list_is_fenced_then(void **state)
{
    (void)state;
    started_fenced();
    uint64_t fenced_at = gf_clock_now_ms(F.clk);
    answer_lists("", "");
    assert_int_equal(count(PATCH), 0);
    /* The hub's create landed after that LIST was served. */
    run_for(P_MS, STALE);
    char j[512], w[1024];
    job_json(j, sizeof(j), "j4", "u4");
    wl_json(w, sizeof(w), "j4", "u4", "21");
    /* Kueue has not made its Workload yet: it waits. */
    answer_lists(j, "");
    assert_int_equal(count(PATCH), 0);
    run_for(P_MS, STALE);
    /* Jobs in two pages. */
    struct call *l = open_call(LIST);
    answer_list(l, "", "page2");
    l = open_call(LIST);
    assert_string_equal(l->res, "jobs");
    assert_string_equal(l->cont, "page2");
    answer_list(l, j, "");
    answer_list(open_call(LIST), w, "");
    const struct call *p = patch_of("job-j4-1a2b3");
    assert_non_null(p);
    assert_int_equal(p->at, fenced_at + 2 * P_MS);
    answer(open_call(PATCH), 0, 200, "{}");
    /* Listed again with the same resourceVersion (the watch has not
     * caught up with the patch): not patched twice. */
    run_for(P_MS, STALE);
    answer_lists(j, w);
    assert_int_equal(count(PATCH), 1);
}

static void test_a_list_that_outlasts_a_poll_is_sent_again(void **state)
{
    (void)state;
    started_fenced();
    struct call *l = open_call(LIST);
    /* Unanswered for a whole period: the poll gives it up and lists
     * afresh. */
    run_for(P_MS, STALE);
    assert_false(l->open);
    struct call *l2 = open_call(LIST);
    assert_int_equal(l2->at, gf_clock_now_ms(F.clk));
    answer_lists("", "");
}

static void test_the_heartbeat_moving_again_ends_the_lists(void **state)
{
    (void)state;
    started_fenced();
    answer_lists("", "");
    /* A renewal: the agent leaves the fenced state; a LIST sent at that
     * poll fences nothing, and no more are sent. */
    run_for(P_MS, WALL0 + 1000);
    assert_false(gf__agent_fenced(F.a));
    char j[512], w[1024];
    job_json(j, sizeof(j), "j5", "u5");
    wl_json(w, sizeof(w), "j5", "u5", "31");
    answer_lists(j, w);
    assert_int_equal(count(PATCH), 0);
    size_t lists = count(LIST);
    run_for(3 * P_MS, WALL0 + 1000);
    assert_int_equal(count(LIST), lists);
}

/* gpufed's ClusterQueue named cq at rv, lending nominal with the
 * leases loans (NULL: no annotation). */
static void grant_json(char *out, size_t cap, const char *cq, const char *rv,
                       const char *nominal, const char *loans)
{
    char ann[128] = "";
    if (loans != NULL)
        snprintf(ann, sizeof(ann),
                 ",\"annotations\":{\"" GF_FENCE_ANN_LOANS "\":\"%s\"}", loans);
    snprintf(out, cap,
             "{\"metadata\":{\"name\":\"%s\",\"resourceVersion\":\"%s\","
             "\"labels\":{\"app.kubernetes.io/managed-by\":\"gpufed\"}%s},"
             "\"spec\":{\"cohortName\":\"pool\",\"resourceGroups\":[{"
             "\"coveredResources\":[\"nvidia.com/gpu\"],\"flavors\":[{"
             "\"name\":\"a100\",\"resources\":[{\"name\":\"nvidia.com/gpu\","
             "\"nominalQuota\":%s}]}]}]}}",
             cq, rv, ann, nominal);
}

/* Fenced, the agent reverts the loans granted in its cluster: every
 * gpufed-loan-* ClusterQueue still lending is set to 0 (with its
 * resourceVersion), with an Event; overflow queues and grants already
 * at 0 are left alone, and a revert that conflicts is done again from
 * the next poll's LIST. */
static void test_fenced_the_agent_reverts_loans(void **state)
{
    (void)state;
    started_fenced();
    char g1[1024], g2[1024], ov[1024], g3[1024], items[4096];
    grant_json(g1, sizeof(g1), "gpufed-loan-team-a", "41", "\"4\"",
               "east-a-1,east-a-2");
    grant_json(g2, sizeof(g2), "gpufed-loan-team-b", "42", "0", NULL);
    grant_json(ov, sizeof(ov), "gpufed-team-c", "43", "0", NULL);
    grant_json(g3, sizeof(g3), "gpufed-loan-team-d", "44", "0", "east-d-1");
    snprintf(items, sizeof(items), "%s,%s,%s,%s", g1, g2, ov, g3);
    answer_lists3("", "", items);
    assert_int_equal(count(PATCH), 2);
    struct call *p = (struct call *)patch_of("gpufed-loan-team-a");
    assert_non_null(p);
    assert_string_equal(p->res, "clusterqueues");
    assert_string_equal(p->rv, "41");
    assert_non_null(strstr(p->body, "\"nominalQuota\":\"0\""));
    assert_null(strstr(p->body, "\"4\""));
    assert_non_null(strstr(p->body, "\"" GF_FENCE_ANN_LOANS "\":null"));
    assert_non_null(patch_of("gpufed-loan-team-d"));
    answer(p, 0, 200, "{}");
    assert_int_equal(count(EVENT), 1);
    /* The hub raised team-d meanwhile: 409; the next poll lists it
     * again and reverts what is there now. */
    answer((struct call *)patch_of("gpufed-loan-team-d"), GF_ECONFLICT, 409,
           NULL);
    assert_int_equal(count(EVENT), 1);
    run_for(P_MS, STALE);
    grant_json(g3, sizeof(g3), "gpufed-loan-team-d", "45", "\"2\"",
               "east-d-1,east-d-2");
    answer_lists3("", "", g3);
    const struct call *again = NULL;
    for (size_t i = 0; i < F.n; i++)
        if (F.calls[i].kind == PATCH && F.calls[i].open)
            again = &F.calls[i];
    assert_non_null(again);
    assert_string_equal(again->name, "gpufed-loan-team-d");
    assert_string_equal(again->rv, "45");
    answer((struct call *)again, 0, 200, "{}");
    assert_int_equal(count(EVENT), 2);
}

/* A Workload of team-a's own, marked (or not) with a loan's lease. */
static void loan_wl_json(char *out, size_t cap, const char *name,
                         const char *rv, const char *loan)
{
    char ann[128] = "";
    if (loan != NULL)
        snprintf(ann, sizeof(ann),
                 ",\"annotations\":{\"gpufed.io/loan\":\"%s\"}", loan);
    snprintf(out, cap,
             "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"team-a\","
             "\"uid\":\"w-%s\",\"resourceVersion\":\"%s\"%s},"
             "\"spec\":{\"active\":true,\"queueName\":\"gpu\"},"
             "\"status\":{\"conditions\":[{\"type\":\"QuotaReserved\","
             "\"status\":\"True\"}]}}",
             name, name, rv, ann);
}

/* Fenced, the agent also stops what runs on the loans it reverts: every
 * Workload marked gpufed.io/loan is deactivated (resourceVersion
 * precondition, Event Fenced on it), from the cache and from the LIST,
 * once the LIST of gpufed's ClusterQueues shows no grant lending; an
 * unmarked Workload is left alone. */
static void test_fenced_the_agent_stops_workloads_on_loans(void **state)
{
    (void)state;
    char w1[1024], w2[1024], w3[1024], wls[4096];
    loan_wl_json(w1, sizeof(w1), "on-loan", "51", "east-a-1");
    loan_wl_json(w2, sizeof(w2), "own", "52", NULL);
    loan_wl_json(w3, sizeof(w3), "listed-only", "53", "east-a-2");
    cache_add(false, w1);
    cache_add(false, w2);
    uint64_t fence_at = gf_clock_now_ms(F.clk);
    started_fenced();
    /* Not before the grants are known not to lend. */
    assert_null(patch_of("on-loan"));
    snprintf(wls, sizeof(wls), "%s,%s,%s", w1, w2, w3);
    answer_lists("", wls);
    const struct call *p = patch_of("on-loan");
    assert_non_null(p);
    assert_int_equal(p->at, fence_at);
    assert_string_equal(p->res, "workloads");
    assert_string_equal(p->ns, "team-a");
    assert_string_equal(p->rv, "51");
    assert_non_null(strstr(p->body, "\"active\":false"));
    assert_non_null(strstr(p->body, GF_ANN_FENCED_AT));
    const struct call *p3 = patch_of("listed-only");
    assert_non_null(p3);
    assert_int_equal(p3->at, fence_at);
    assert_null(patch_of("own"));
    assert_int_equal(count(PATCH), 2);
    answer((struct call *)p, 0, 200, "{}");
    answer((struct call *)p3, 0, 200, "{}");
    assert_int_equal(count(EVENT), 2);
}

/* A grant still lending is reverted before any Workload marked with a
 * loan is deactivated: while it stands, Kueue admits the cohort's
 * pending Workloads into the quota a deactivated one frees, and the
 * revert evicts none of them (chaos: 6 GPUs admitted on a grant in the
 * 14 ms between the two writes ran on after its hold was deleted). A
 * revert that fails leaves them to the next poll's LIST. */
static void test_fenced_the_agent_reverts_grants_before_stopping(void **state)
{
    (void)state;
    char w1[1024], w3[1024], wls[4096], g[1024], g0[1024];
    loan_wl_json(w1, sizeof(w1), "on-loan", "51", "east-a-1");
    loan_wl_json(w3, sizeof(w3), "listed-only", "53", "east-a-2");
    cache_add(false, w1);
    grant_json(g, sizeof(g), "gpufed-loan-team-a", "41", "\"8\"",
               "east-a-1,east-a-2");
    grant_json(g0, sizeof(g0), "gpufed-loan-team-a", "42", "0", NULL);
    started_fenced();
    snprintf(wls, sizeof(wls), "%s,%s", w1, w3);
    answer_lists3("", wls, g);
    assert_int_equal(count(PATCH), 1);
    struct call *rv = (struct call *)patch_of("gpufed-loan-team-a");
    assert_non_null(rv);
    /* The revert fails: nothing marked is stopped on the grant. */
    answer(rv, GF_ETRANSPORT, 0, NULL);
    gf_clock_advance(F.clk, 0);
    assert_int_equal(count(PATCH), 1);
    /* The next poll reverts it again; its answer lets the cache's marked
     * Workload go at once, and a fresh LIST the listed one. */
    run_for(P_MS, STALE);
    grant_json(g, sizeof(g), "gpufed-loan-team-a", "43", "\"8\"",
               "east-a-1,east-a-2");
    answer_lists3("", wls, g);
    assert_int_equal(count(PATCH), 2);
    assert_null(patch_of("on-loan"));
    struct call *again = NULL;
    for (size_t i = 0; i < F.n; i++)
        if (F.calls[i].kind == PATCH && F.calls[i].open)
            again = &F.calls[i];
    assert_non_null(again);
    assert_string_equal(again->rv, "43");
    uint64_t reverted_at = gf_clock_now_ms(F.clk);
    answer(again, 0, 200, "{}");
    gf_clock_advance(F.clk, 0);
    const struct call *p = patch_of("on-loan");
    assert_non_null(p);
    assert_int_equal(p->at, reverted_at);
    assert_null(patch_of("listed-only"));
    answer_lists3("", wls, g0);
    const struct call *p3 = patch_of("listed-only");
    assert_non_null(p3);
    assert_int_equal(p3->at, reverted_at);
    answer((struct call *)p, 0, 200, "{}");
    answer((struct call *)p3, 0, 200, "{}");
}

static void test_an_answered_read_ends_the_watches_backoff(void **state)
{
    (void)state;
    started();
    run_for(P_MS, WALL0);
    assert_int_equal(F.retried, 2);
    /* A failed read does not: the server may still be down. */
    run_for(P_MS - 1, WALL0);
    gf_clock_advance(F.clk, 1);
    answer(open_call(HB), GF_ETRANSPORT, 0, NULL);
    assert_int_equal(F.retried, 2);
    /* A 404 is an answer. */
    run_for(P_MS - 1, WALL0);
    gf_clock_advance(F.clk, 1);
    answer(open_call(HB), -ENOENT, 404, NULL);
    assert_int_equal(F.retried, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_copy_missing_from_the_cache_is_fenced_at_the_fence, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_a_failed_list_is_read_again_at_the_next_poll, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_copy_in_a_later_list_is_fenced_then, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_list_that_outlasts_a_poll_is_sent_again, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_the_heartbeat_moving_again_ends_the_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_an_answered_read_ends_the_watches_backoff, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_fenced_the_agent_stops_workloads_on_loans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fenced_the_agent_reverts_loans,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_fenced_the_agent_reverts_grants_before_stopping, setup,
            teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
