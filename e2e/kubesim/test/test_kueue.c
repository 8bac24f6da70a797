/*
 * Tests for Kueue-lite's admission: table cases, each named after the
 * rule of Kueue's documentation it checks (concepts/cluster_queue,
 * concepts/preemption, concepts/workload), run against the upstream CRDs
 * on a manual clock. A case creates queues, then a first batch of
 * pod-less Workloads (admitted in one pass, so priority and FIFO order
 * decide), then a second batch, and checks which Workloads hold quota,
 * which wait, and which were preempted with which reason.
 *
 * Every case runs twice: with nvidia.com/gpu, the resource that matters
 * (its name has a dot, so it is read key by key everywhere), and with cpu.
 * The setups name the resource as RES, replaced when a case runs.
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
#include "common/json.h"
#include "e2e/kubesim/kueue.h"
#include "e2e/kubesim/test/kueue_testkit.h"
#include "kubeclient/global.h"

#define KQ "kueue.x-k8s.io"

struct wl_spec {
    const char *name, *queue;
    int prio;
    const char *q; /* per pod, of the case's resource */
    int count;
};

struct kq_case {
    const char *setup; /* flavors and queues, YAML */
    struct wl_spec first[6], then[6];
    const char *admitted;  /* "a,b": QuotaReserved and Admitted True */
    const char *pending;   /* no reservation */
    const char *preempted; /* Evicted by preemption */
    const char *preempted_reason;
    const char *flavor_of;   /* "name=flavor" assignment to check */
    const char *cq_borrowed; /* "cq=quantity" borrowed to check */
    const char *cq_used;     /* "cq=quantity" in status.flavorsUsage */
};

#define GPU "nvidia.com/gpu"
/* Stands for the resource in setups; replaced by run_case. */
#define RES "@RES@"

#define FLAVOR(n)                                                              \
    "apiVersion: kueue.x-k8s.io/v1beta2\nkind: ResourceFlavor\n"               \
    "metadata: {name: " n "}\n---\n"
#define LQ(n, cq)                                                              \
    "apiVersion: kueue.x-k8s.io/v1beta2\nkind: LocalQueue\n"                   \
    "metadata: {name: " n ", namespace: default}\n"                            \
    "spec: {clusterQueue: " cq "}\n---\n"
/* A ClusterQueue with one flavor of RES; extra is spliced into spec. */
#define CQ(n, extra, quota)                                                    \
    "apiVersion: kueue.x-k8s.io/v1beta2\nkind: ClusterQueue\n"                 \
    "metadata: {name: " n "}\n"                                                \
    "spec:\n  namespaceSelector: {}\n" extra                                   \
    "  resourceGroups:\n  - coveredResources: [\"" RES "\"]\n    flavors:\n"   \
    "    - name: default-flavor\n      resources:\n"                           \
    "      - {name: \"" RES "\", " quota "}\n---\n"

static void create_wl(struct ks_kqtk *t, const struct wl_spec *w,
                      const char *res)
{
    char y[1024];
    snprintf(y, sizeof(y),
             "apiVersion: kueue.x-k8s.io/v1beta2\nkind: Workload\n"
             "metadata: {name: %s, namespace: default}\n"
             "spec:\n  queueName: %s\n  priority: %d\n  podSets:\n"
             "  - name: main\n    count: %d\n    template:\n      spec:\n"
             "        restartPolicy: Never\n        containers:\n"
             "        - name: c\n          image: busybox\n"
             "          resources: {requests: {\"%s\": \"%s\"}, "
             "limits: {\"%s\": \"%s\"}}\n",
             w->name, w->queue, w->prio, w->count > 0 ? w->count : 1, res, w->q,
             res, w->q);
    ks_kqtk_apply(t, y);
}

static cJSON *get_wl(struct ks_kqtk *t, const char *name)
{
    cJSON *o = ks_kqtk_get(t, KQ, "workloads", "default", name);
    if (o == NULL)
        fail_msg("workload %s missing", name);
    return o;
}

/* Calls fn for each name of a comma-separated list. */
static void each(const char *list,
                 void (*fn)(struct ks_kqtk *, const char *,
                            const struct kq_case *),
                 struct ks_kqtk *t, const struct kq_case *c)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", list != NULL ? list : "");
    for (char *save = NULL, *n = strtok_r(buf, ",", &save); n != NULL;
         n = strtok_r(NULL, ",", &save))
        fn(t, n, c);
}

static void want_admitted(struct ks_kqtk *t, const char *name,
                          const struct kq_case *c)
{
    (void)c;
    cJSON *o = get_wl(t, name);
    const char *qr = ks_kqtk_cond(o, "QuotaReserved", NULL, NULL);
    const char *ad = ks_kqtk_cond(o, "Admitted", NULL, NULL);
    if (qr == NULL || strcmp(qr, "True") != 0 || ad == NULL ||
        strcmp(ad, "True") != 0)
        fail_msg("%s not admitted", name);
    assert_non_null(gf_json_str(o, "status.admission.clusterQueue"));
    cJSON_Delete(o);
}

static void want_pending(struct ks_kqtk *t, const char *name,
                         const struct kq_case *c)
{
    (void)c;
    cJSON *o = get_wl(t, name);
    const char *qr = ks_kqtk_cond(o, "QuotaReserved", NULL, NULL);
    if (gf_json_path(o, "status.admission") != NULL ||
        (qr != NULL && strcmp(qr, "True") == 0))
        fail_msg("%s holds quota", name);
    cJSON_Delete(o);
}

static void want_preempted(struct ks_kqtk *t, const char *name,
                           const struct kq_case *c)
{
    cJSON *o = get_wl(t, name);
    const char *reason = NULL, *preason = NULL;
    const char *ev = ks_kqtk_cond(o, "Evicted", &reason, NULL);
    const char *pr = ks_kqtk_cond(o, "Preempted", &preason, NULL);
    if (ev == NULL || strcmp(ev, "True") != 0 || pr == NULL ||
        strcmp(reason, "Preempted") != 0 ||
        strcmp(preason, c->preempted_reason) != 0)
        fail_msg("%s not preempted (%s)", name, c->preempted_reason);
    assert_null(gf_json_path(o, "status.admission"));
    cJSON_Delete(o);
}

/* "name=value" from a table cell into two bounded strings. */
static void split_pair(const char *spec, char *name, char *value, size_t cap)
{
    const char *eq = strchr(spec, '=');
    assert_non_null(eq);
    size_t n = (size_t)(eq - spec);
    assert_true(n > 0 && n < cap && strlen(eq + 1) < cap);
    memcpy(name, spec, n);
    name[n] = '\0';
    memcpy(value, eq + 1, strlen(eq + 1) + 1);
}

static void check_flavor(struct ks_kqtk *t, const char *spec, const char *res)
{
    char name[64], flavor[64];
    split_pair(spec, name, flavor, sizeof(name));
    cJSON *o = get_wl(t, name);
    const cJSON *psa = cJSON_GetArrayItem(
        gf_json_path(o, "status.admission.podSetAssignments"), 0);
    assert_string_equal(gf_json_as_str(GF_JSON_AT(psa, "flavors", res)),
                        flavor);
    cJSON_Delete(o);
}

/* The entry for res in a ClusterQueue's status list (first flavor). */
static const cJSON *cq_res(const cJSON *cq, const char *list, const char *res)
{
    const cJSON *fl = cJSON_GetArrayItem(GF_JSON_AT(cq, "status", list), 0);
    const cJSON *r;
    cJSON_ArrayForEach(r, GF_JSON_AT(fl, "resources"))
    {
        const char *n = gf_json_str(r, "name");
        if (n != NULL && strcmp(n, res) == 0)
            return r;
    }
    fail_msg("no %s in status.%s", res, list);
    return NULL;
}

static void check_cq(struct ks_kqtk *t, const char *spec, const char *list,
                     const char *field, const char *res)
{
    char name[64], q[64];
    split_pair(spec, name, q, sizeof(name));
    cJSON *o = ks_kqtk_get(t, KQ, "clusterqueues", "", name);
    assert_non_null(o);
    const cJSON *r = cq_res(o, list, res);
    assert_string_equal(gf_json_as_str(GF_JSON_AT(r, field)), q);
    cJSON_Delete(o);
}

/* The setup with RES replaced by res. Returned-owned (gf_free). */
static char *setup_for(const char *setup, const char *res)
{
    struct gf_buf b = GF_BUF_INIT((size_t)64 * 1024);
    const char *p = setup, *m;
    while ((m = strstr(p, RES)) != NULL) {
        gf_buf_append(&b, p, (size_t)(m - p));
        gf_buf_puts(&b, res);
        p = m + strlen(RES);
    }
    gf_buf_puts(&b, p);
    char *out = gf_strdup(gf_buf_cstr(&b));
    gf_buf_free(&b);
    return out;
}

static void run_case(const struct kq_case *c, const char *res)
{
    struct ks_kqtk t;
    ks_kqtk_start(&t);
    char *setup = setup_for(c->setup, res);
    ks_kqtk_apply(&t, setup);
    gf_free(setup);
    ks_kqtk_settle(&t);
    for (size_t i = 0; i < 6 && c->first[i].name != NULL; i++)
        create_wl(&t, &c->first[i], res);
    ks_kqtk_settle(&t);
    /* Later Workloads are newer: FIFO order is by creation time. */
    gf_clock_advance(&t.k.clock, 1000);
    for (size_t i = 0; i < 6 && c->then[i].name != NULL; i++)
        create_wl(&t, &c->then[i], res);
    ks_kqtk_settle(&t);
    each(c->admitted, want_admitted, &t, c);
    each(c->pending, want_pending, &t, c);
    each(c->preempted, want_preempted, &t, c);
    if (c->flavor_of != NULL)
        check_flavor(&t, c->flavor_of, res);
    if (c->cq_borrowed != NULL)
        check_cq(&t, c->cq_borrowed, "flavorsReservation", "borrowed", res);
    if (c->cq_used != NULL)
        check_cq(&t, c->cq_used, "flavorsUsage", "total", res);
    /* Idempotent: another pass with nothing changed writes nothing. */
    struct gf_ks_kueue_stats before, after;
    gf_ks_kueue_stats(t.kueue, &before);
    uint64_t rv = gf_ks_store_rv(t.st);
    gf_clock_advance(&t.k.clock, 1000);
    ks_kqtk_settle(&t);
    gf_ks_kueue_stats(t.kueue, &after);
    assert_int_equal(gf_ks_store_rv(t.st), rv);
    assert_int_equal(after.writes, before.writes);
    ks_kqtk_stop(&t);
}

/* ---- the table ------------------------------------------------------------
 */

#define ONE_CQ(extra, quota)                                                   \
    FLAVOR("default-flavor") CQ("cq", extra, quota) LQ("lq", "cq")

#define COHORT3(extra_a)                                                       \
    FLAVOR("default-flavor")                                                   \
    CQ("cq-a", "  cohortName: pool\n" extra_a, "nominalQuota: 3")              \
    CQ("cq-b", "  cohortName: pool\n", "nominalQuota: 3")                      \
    CQ("cq-c", "  cohortName: pool\n", "nominalQuota: 3")                      \
    LQ("lq-a", "cq-a") LQ("lq-b", "cq-b") LQ("lq-c", "cq-c")

static const struct kq_case cases[] = {
    /* 0: nominalQuota is what a ClusterQueue without a cohort can use. */
    {.setup = ONE_CQ("", "nominalQuota: 9"),
     .first = {{"a", "lq", 0, "5", 1}, {"b", "lq", 0, "5", 1}},
     .admitted = "a",
     .pending = "b",
     .cq_used = "cq=5"},
    /* 1: pending Workloads are admitted by priority, then FIFO. */
    {.setup = ONE_CQ("", "nominalQuota: 4"),
     .first = {{"low-old", "lq", 0, "4", 1},
               {"high", "lq", 10, "4", 1},
               {"low-new", "lq", 0, "4", 1}},
     .admitted = "high",
     .pending = "low-old,low-new",
     .cq_used = "cq=4"},
    /* 2: BestEffortFIFO: a Workload that does not fit does not block
     * smaller ones behind it. */
    {.setup = ONE_CQ("", "nominalQuota: 4"),
     .first = {{"big", "lq", 0, "6", 1}, {"small", "lq", 0, "2", 1}},
     .admitted = "small",
     .pending = "big",
     .cq_used = "cq=2"},
    /* 3: StrictFIFO: the head blocks the queue. */
    {.setup = ONE_CQ("  queueingStrategy: StrictFIFO\n", "nominalQuota: 4"),
     .first = {{"big", "lq", 0, "6", 1}, {"small", "lq", 0, "2", 1}},
     .pending = "big,small"},
    /* 4: borrowingLimit caps how far above nominal a queue may use. */
    {.setup = FLAVOR("default-flavor") CQ("cq-a", "  cohortName: pool\n",
                                          "nominalQuota: 4, borrowingLimit: 2")
         CQ("cq-b", "  cohortName: pool\n", "nominalQuota: 10")
             LQ("lq-a", "cq-a"),
     .first = {{"a1", "lq-a", 0, "6", 1}},
     .then = {{"a2", "lq-a", 0, "1", 1}},
     .admitted = "a1",
     .pending = "a2",
     .cq_borrowed = "cq-a=2"},
    /* 5: lendingLimit caps what a member lends of its nominal quota. */
    {.setup = FLAVOR("default-flavor") CQ("cq-a", "  cohortName: pool\n",
                                          "nominalQuota: 4")
         CQ("cq-b", "  cohortName: pool\n", "nominalQuota: 10, lendingLimit: 3")
             LQ("lq-a", "cq-a") LQ("lq-b", "cq-b"),
     .first = {{"a1", "lq-a", 0, "7", 1}, {"b1", "lq-b", 0, "7", 1}},
     .then = {{"a2", "lq-a", 0, "1", 1}},
     .admitted = "a1,b1",
     .pending = "a2",
     .cq_borrowed = "cq-a=3"},
    /* 6: a cohort of three: unused nominal quota of all members is
     * shared, and a queue may borrow all of it. */
    {.setup = COHORT3(""),
     .first = {{"a1", "lq-a", 0, "3", 3}},
     .then = {{"b1", "lq-b", 0, "1", 1}},
     .admitted = "a1",
     .pending = "b1",
     .cq_borrowed = "cq-a=6"},
    /* 7: withinClusterQueue LowerPriority evicts a lower-priority
     * Workload of the same queue. */
    {.setup = ONE_CQ("  preemption: {withinClusterQueue: LowerPriority}\n",
                     "nominalQuota: 4"),
     .first = {{"low", "lq", 0, "4", 1}},
     .then = {{"high", "lq", 100, "4", 1}},
     .admitted = "high",
     .preempted = "low",
     .preempted_reason = "InClusterQueue"},
    /* 8: withinClusterQueue LowerPriority never evicts equal priority. */
    {.setup = ONE_CQ("  preemption: {withinClusterQueue: LowerPriority}\n",
                     "nominalQuota: 4"),
     .first = {{"old", "lq", 5, "4", 1}},
     .then = {{"new", "lq", 5, "4", 1}},
     .admitted = "old",
     .pending = "new"},
    /* 9: reclaimWithinCohort Any: a queue under its nominal quota takes
     * back what a borrower uses, evicting only as many as needed. */
    {.setup = COHORT3("  preemption: {reclaimWithinCohort: Any}\n"),
     .first = {{"c1", "lq-c", 10, "3", 1},
               {"c2", "lq-c", 10, "3", 1},
               {"c3", "lq-c", 10, "3", 1}},
     .then = {{"a1", "lq-a", 0, "2", 1}},
     .admitted = "a1,c1,c2",
     .preempted = "c3",
     .preempted_reason = "InCohortReclamation"},
    /* 10: reclaimWithinCohort LowerPriority spares higher-priority
     * borrowers. */
    {.setup = COHORT3("  preemption: {reclaimWithinCohort: LowerPriority}\n"),
     .first = {{"c1", "lq-c", 10, "3", 3}},
     .then = {{"a1", "lq-a", 0, "2", 1}},
     .admitted = "c1",
     .pending = "a1"},
    /* 11: flavors are tried in the order the ClusterQueue lists them. */
    {.setup = FLAVOR("small") FLAVOR(
         "large") "apiVersion: kueue.x-k8s.io/v1beta2\nkind: ClusterQueue\n"
                  "metadata: {name: cq}\nspec:\n  resourceGroups:\n"
                  "  - coveredResources: [\"" RES "\"]\n    flavors:\n"
                  "    - {name: small, resources: [{name: \"" RES "\", "
                  "nominalQuota: 2}]}\n"
                  "    - {name: large, resources: [{name: \"" RES "\", "
                  "nominalQuota: 10}]}\n"
                  "---\n" LQ("lq", "cq"),
     .first = {{"w3", "lq", 0, "3", 1}},
     .then = {{"w2", "lq", 0, "2", 1}},
     .admitted = "w3,w2",
     .flavor_of = "w3=large"},
    /* 12: a lender below nominal does not reclaim from a queue that is
     * not borrowing (reclaim only takes back lent quota). */
    {.setup = COHORT3("  preemption: {reclaimWithinCohort: Any}\n"),
     .first = {{"c1", "lq-c", 0, "3", 1}, {"b1", "lq-b", 0, "3", 1}},
     .then = {{"a1", "lq-a", 0, "4", 1}},
     .admitted = "c1,b1",
     .pending = "a1"},
};

/* Each case with nvidia.com/gpu and with cpu. */
#define CASE(fn, i)                                                            \
    static void fn##_gpu(void **state)                                         \
    {                                                                          \
        (void)state;                                                           \
        run_case(&cases[i], GPU);                                              \
    }                                                                          \
    static void fn##_cpu(void **state)                                         \
    {                                                                          \
        (void)state;                                                           \
        run_case(&cases[i], "cpu");                                            \
    }

#define CASES(X)                                                               \
    X(test_nominalQuota_caps_usage_without_cohort, 0)                          \
    X(test_admission_orders_by_priority_then_creation_fifo, 1)                 \
    X(test_BestEffortFIFO_lets_smaller_workloads_past_the_head, 2)             \
    X(test_StrictFIFO_head_blocks_the_queue, 3)                                \
    X(test_borrowingLimit_caps_usage_above_nominal, 4)                         \
    X(test_lendingLimit_caps_what_a_member_lends, 5)                           \
    X(test_cohort_of_three_shares_unused_nominal_quota, 6)                     \
    X(test_withinClusterQueue_LowerPriority_preempts_lower_priority, 7)        \
    X(test_withinClusterQueue_LowerPriority_spares_equal_priority, 8)          \
    X(test_reclaimWithinCohort_Any_evicts_only_needed_borrowers, 9)            \
    X(test_reclaimWithinCohort_LowerPriority_spares_higher_priority, 10)       \
    X(test_flavors_are_tried_in_the_order_listed, 11)                          \
    X(test_reclaim_takes_back_only_borrowed_quota, 12)

CASES(CASE)

#define ENTRIES(fn, i) cmocka_unit_test(fn##_gpu), cmocka_unit_test(fn##_cpu),

int main(void)
{
    const struct CMUnitTest tests[] = {CASES(ENTRIES)};
    gf_kube_global_init();
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_kube_global_cleanup();
    return rc;
}
