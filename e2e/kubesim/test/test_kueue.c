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
    const char *remove;      /* deleted after the second batch */
    const char *pending_msg; /* "name=text" in its QuotaReserved message */
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

/* A ClusterQueue as CQ, with no namespaceSelector of its own. */
#define CQ_NOSEL(n, extra, quota)                                              \
    "apiVersion: kueue.x-k8s.io/v1beta2\nkind: ClusterQueue\n"                 \
    "metadata: {name: " n "}\n"                                                \
    "spec:\n" extra "  resourceGroups:\n  - coveredResources: [\"" RES         \
    "\"]\n    flavors:\n"                                                      \
    "    - name: default-flavor\n      resources:\n"                           \
    "      - {name: \"" RES "\", " quota "}\n---\n"
/* A ClusterQueue with two flavors f1 and f2 of RES, each its own quota. */
#define CQ2(n, extra, q1, q2)                                                  \
    "apiVersion: kueue.x-k8s.io/v1beta2\nkind: ClusterQueue\n"                 \
    "metadata: {name: " n "}\n"                                                \
    "spec:\n  namespaceSelector: {}\n" extra                                   \
    "  resourceGroups:\n  - coveredResources: [\"" RES "\"]\n    flavors:\n"   \
    "    - {name: f1, resources: [{name: \"" RES "\", " q1 "}]}\n"             \
    "    - {name: f2, resources: [{name: \"" RES "\", " q2 "}]}\n---\n"

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

static void want_preempted(struct ks_kqtk *t, const char *item,
                           const struct kq_case *c)
{
    /* "name" (the case's reason) or "name:Reason". */
    char name[64];
    const char *want = c->preempted_reason;
    const char *colon = strchr(item, ':');
    snprintf(name, sizeof(name), "%.*s",
             (int)(colon != NULL ? (size_t)(colon - item) : strlen(item)),
             item);
    if (colon != NULL)
        want = colon + 1;
    cJSON *o = get_wl(t, name);
    const char *reason = NULL, *preason = NULL;
    const char *ev = ks_kqtk_cond(o, "Evicted", &reason, NULL);
    const char *pr = ks_kqtk_cond(o, "Preempted", &preason, NULL);
    if (ev == NULL || strcmp(ev, "True") != 0 || pr == NULL ||
        strcmp(reason, "Preempted") != 0 || strcmp(preason, want) != 0)
        fail_msg("%s not preempted (%s)", name, want);
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

static char *setup_for(const char *setup, const char *res);

static void delete_wl(struct ks_kqtk *t, const char *name,
                      const struct kq_case *c)
{
    (void)c;
    const struct gf_ks_rtype *ty = gf_ks_store_type(t->st, KQ, "workloads");
    assert_int_equal(
        gf_ks_store_delete(t->st, ty, "default", name, NULL, NULL, NULL, NULL),
        0);
}

/* "name=text": the Workload waits, and its message contains text. */
static void check_pending_msg(struct ks_kqtk *t, const char *spec,
                              const char *res)
{
    char name[64];
    const char *eq = strchr(spec, '=');
    assert_non_null(eq);
    snprintf(name, sizeof(name), "%.*s", (int)(eq - spec), spec);
    /* RES in the text stands for the case's resource. */
    char *want = setup_for(eq + 1, res);
    cJSON *o = get_wl(t, name);
    const char *msg = NULL;
    const char *qr = ks_kqtk_cond(o, "QuotaReserved", NULL, &msg);
    if (qr == NULL || strcmp(qr, "False") != 0 || msg == NULL ||
        strstr(msg, want) == NULL)
        fail_msg("%s: message \"%s\", want \"%s\"", name,
                 msg != NULL ? msg : "(none)", want);
    gf_free(want);
    cJSON_Delete(o);
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
    if (c->remove != NULL) {
        each(c->remove, delete_wl, &t, c);
        ks_kqtk_settle(&t);
    }
    if (c->pending_msg != NULL)
        check_pending_msg(&t, c->pending_msg, res);
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
    /* 11: flavors are tried in the order the ClusterQueue lists them.
     * (With namespaceSelector: {}: "To allow workloads from all
     * namespaces, set the empty selector {}", cluster_queue.md.) */
    {.setup = FLAVOR("small") FLAVOR(
         "large") "apiVersion: kueue.x-k8s.io/v1beta2\nkind: ClusterQueue\n"
                  "metadata: {name: cq}\nspec:\n  namespaceSelector: {}\n"
                  "  resourceGroups:\n"
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
    /* 13: "Within a Cohort, Kueue prioritizes scheduling workloads that
     * will fit under nominalQuota" (cluster_queue.md): when b1 ends, b2
     * fits cq-b's nominal quota and goes before the older a2, which would
     * have to borrow. */
    {.setup = FLAVOR("default-flavor")
         CQ("cq-a", "  cohortName: pool\n", "nominalQuota: 4")
             CQ("cq-b", "  cohortName: pool\n", "nominalQuota: 4")
                 LQ("lq-a", "cq-a") LQ("lq-b", "cq-b"),
     .first = {{"a1", "lq-a", 0, "4", 1}, {"b1", "lq-b", 0, "4", 1}},
     .then = {{"a2", "lq-a", 0, "4", 1}, {"b2", "lq-b", 0, "4", 1}},
     .remove = "b1",
     .admitted = "a1,b2",
     .pending = "a2"},
    /* 14: "To allow workloads from all namespaces, set the empty
     * selector {}" (cluster_queue.md); without it none is eligible. */
    {.setup = FLAVOR("default-flavor") CQ_NOSEL("cq", "", "nominalQuota: 4")
         LQ("lq", "cq"),
     .first = {{"a", "lq", 0, "1", 1}},
     .pending = "a",
     .pending_msg = "a=workload namespace doesn't match ClusterQueue selector"},
    /* 15: matchLabels on "kubernetes.io/metadata.name ... that the
     * Kubernetes control plane sets on all namespaces". */
    {.setup = FLAVOR("default-flavor")
         CQ_NOSEL("cq",
                  "  namespaceSelector:\n    matchLabels:\n"
                  "      kubernetes.io/metadata.name: default\n",
                  "nominalQuota: 4") LQ("lq", "cq"),
     .first = {{"a", "lq", 0, "1", 1}},
     .admitted = "a"},
    /* 16: a matchLabels selector for another namespace. */
    {.setup = FLAVOR("default-flavor")
         CQ_NOSEL("cq",
                  "  namespaceSelector:\n    matchLabels:\n"
                  "      kubernetes.io/metadata.name: team-a\n",
                  "nominalQuota: 4") LQ("lq", "cq"),
     .first = {{"a", "lq", 0, "1", 1}},
     .pending = "a"},
    /* 17: "Another way to configure namespaceSelector is using
     * matchExpressions": In. */
    {.setup = FLAVOR("default-flavor")
         CQ_NOSEL("cq",
                  "  namespaceSelector:\n    matchExpressions:\n"
                  "    - {key: kubernetes.io/metadata.name, operator: In,"
                  " values: [team-a, default]}\n",
                  "nominalQuota: 4") LQ("lq", "cq"),
     .first = {{"a", "lq", 0, "1", 1}},
     .admitted = "a"},
    /* 18: matchExpressions NotIn. */
    {.setup = FLAVOR("default-flavor")
         CQ_NOSEL("cq",
                  "  namespaceSelector:\n    matchExpressions:\n"
                  "    - {key: kubernetes.io/metadata.name, operator: NotIn,"
                  " values: [default]}\n",
                  "nominalQuota: 4") LQ("lq", "cq"),
     .first = {{"a", "lq", 0, "1", 1}},
     .pending = "a"},
    /* 19: "An incoming Workload, which does not fit within the unused
     * quota, is eligible to issue preemptions when ... the requests of
     * the Workload are below the flavor's nominal quota, or
     * borrowWithinCohort is enabled" (preemption.md): 3 > nominal 2, so
     * withinClusterQueue does not preempt a-low. */
    {.setup = FLAVOR("default-flavor")
         CQ("cq-a",
            "  cohortName: pool\n"
            "  preemption: {withinClusterQueue: LowerPriority}\n",
            "nominalQuota: 2")
             CQ("cq-b", "  cohortName: pool\n", "nominalQuota: 2")
                 LQ("lq-a", "cq-a") LQ("lq-b", "cq-b"),
     .first = {{"a-low", "lq-a", 0, "3", 1}, {"b1", "lq-b", 0, "1", 1}},
     .then = {{"a-high", "lq-a", 10, "3", 1}},
     .admitted = "a-low,b1",
     .pending = "a-high"},
    /* 20: borrowWithinCohort LowerPriority: "if the pending Workload
     * requires borrowing, only preempt Workloads in the cohort that have
     * lower priority" (cluster_queue.md). */
    {.setup = FLAVOR("default-flavor")
         CQ("cq-a",
            "  cohortName: pool\n"
            "  preemption:\n    reclaimWithinCohort: Any\n"
            "    borrowWithinCohort: {policy: LowerPriority}\n",
            "nominalQuota: 2")
             CQ("cq-b", "  cohortName: pool\n", "nominalQuota: 2")
                 CQ("cq-c", "  cohortName: pool\n", "nominalQuota: 2")
                     LQ("lq-a", "cq-a") LQ("lq-b", "cq-b") LQ("lq-c", "cq-c"),
     .first = {{"b-low", "lq-b", 0, "4", 1}, {"c1", "lq-c", 0, "2", 1}},
     .then = {{"a-high", "lq-a", 10, "3", 1}},
     .admitted = "a-high,c1",
     .preempted = "b-low",
     .preempted_reason = "InCohortReclaimWhileBorrowing"},
    /* 21: "only workloads up to the priority indicated by
     * maxPriorityThreshold can be preempted in that scenario". */
    {.setup = FLAVOR("default-flavor")
         CQ("cq-a",
            "  cohortName: pool\n"
            "  preemption:\n    reclaimWithinCohort: Any\n"
            "    borrowWithinCohort: {policy: LowerPriority,"
            " maxPriorityThreshold: 1}\n",
            "nominalQuota: 2")
             CQ("cq-b", "  cohortName: pool\n", "nominalQuota: 2")
                 CQ("cq-c", "  cohortName: pool\n", "nominalQuota: 2")
                     LQ("lq-a", "cq-a") LQ("lq-b", "cq-b") LQ("lq-c", "cq-c"),
     .first = {{"b-mid", "lq-b", 5, "4", 1}, {"c1", "lq-c", 0, "2", 1}},
     .then = {{"a-high", "lq-a", 10, "3", 1}},
     .admitted = "b-mid,c1",
     .pending = "a-high"},
    /* 22: Kueue's "Should preempt Workloads in the cohort borrowing
     * quota, when the ClusterQueue is using less than nominal quota": the
     * targets are one lower-priority Workload of alpha and one borrower
     * of beta, not beta's larger higher-priority one ("Kueue greedily
     * qualifies the candidates, until the preemptor Workload can fit,
     * disallowing for borrowing", preemption.md). */
    {.setup = FLAVOR("default-flavor") CQ(
         "alpha",
         "  cohortName: all\n"
         "  preemption: {withinClusterQueue: LowerPriority,"
         " reclaimWithinCohort: Any}\n",
         "nominalQuota: 2") CQ("beta", "  cohortName: all\n", "nominalQuota: 2")
         CQ("gamma",
            "  cohortName: all\n"
            "  preemption: {withinClusterQueue: LowerPriority,"
            " reclaimWithinCohort: Any}\n",
            "nominalQuota: 2") LQ("alpha-q", "alpha") LQ("beta-q", "beta")
             LQ("gamma-q", "gamma"),
     .first = {{"alpha-low", "alpha-q", 1, "1", 1},
               {"beta-mid", "beta-q", 5, "1", 1},
               {"beta-high", "beta-q", 10, "4", 1}},
     .then = {{"alpha-mid", "alpha-q", 5, "2", 1}},
     .admitted = "alpha-mid,beta-high",
     .preempted = "alpha-low:InClusterQueue,beta-mid:InCohortReclamation"},
    /* 23: Kueue's "Should not preempt Workloads in the cohort, if the
     * ClusterQueue requires borrowing". */
    {.setup = FLAVOR("default-flavor") CQ(
         "alpha",
         "  cohortName: all\n"
         "  preemption: {withinClusterQueue: LowerPriority,"
         " reclaimWithinCohort: Any}\n",
         "nominalQuota: 2") CQ("beta", "  cohortName: all\n", "nominalQuota: 2")
         CQ("gamma", "  cohortName: all\n", "nominalQuota: 2")
             LQ("alpha-q", "alpha") LQ("beta-q", "beta"),
     .first = {{"alpha-high-1", "alpha-q", 10, "2", 1},
               {"beta-low", "beta-q", 1, "4", 1}},
     .then = {{"alpha-high-2", "alpha-q", 10, "2", 1}},
     .admitted = "alpha-high-1,beta-low",
     .pending = "alpha-high-2"},
    /* 24: flavorFungibility "whenCanBorrow ... MayStopSearch (default):
     * Kueue stops looking for a better assignment": f1 by borrowing. */
    {.setup = FLAVOR("f1") FLAVOR("f2") CQ2(
         "cq-a", "  cohortName: pool\n", "nominalQuota: 2", "nominalQuota: 4")
         CQ2("cq-b", "  cohortName: pool\n", "nominalQuota: 4",
             "nominalQuota: 0") LQ("lq-a", "cq-a"),
     .first = {{"w", "lq-a", 0, "3", 1}},
     .admitted = "w",
     .flavor_of = "w=f1"},
    /* 25: "TryNextFlavor: Kueue tries the next ResourceFlavor", and "if
     * ... Kueue finds some ResourceFlavor in which it can fit without
     * preemption or borrowing, such ResourceFlavor is immediately
     * selected". */
    {.setup = FLAVOR("f1") FLAVOR("f2")
         CQ2("cq-a",
             "  cohortName: pool\n"
             "  flavorFungibility: {whenCanBorrow: TryNextFlavor}\n",
             "nominalQuota: 2", "nominalQuota: 4")
             CQ2("cq-b", "  cohortName: pool\n", "nominalQuota: 4",
                 "nominalQuota: 0") LQ("lq-a", "cq-a"),
     .first = {{"w", "lq-a", 0, "3", 1}},
     .admitted = "w",
     .flavor_of = "w=f2"},
    /* 26: whenCanPreempt TryNextFlavor (the default) takes a later
     * flavor where it fits over preempting in the first. */
    {.setup = FLAVOR("f1") FLAVOR("f2")
         CQ2("cq", "  preemption: {withinClusterQueue: LowerPriority}\n",
             "nominalQuota: 2", "nominalQuota: 4") LQ("lq", "cq"),
     .first = {{"low", "lq", 0, "2", 1}},
     .then = {{"high", "lq", 10, "2", 1}},
     .admitted = "low,high",
     .flavor_of = "high=f2"},
    /* 27: whenCanPreempt MayStopSearch preempts in the first flavor (the
     * preempted low is requeued and then fits f2). */
    {.setup = FLAVOR("f1") FLAVOR("f2")
         CQ2("cq",
             "  preemption: {withinClusterQueue: LowerPriority}\n"
             "  flavorFungibility: {whenCanPreempt: MayStopSearch}\n",
             "nominalQuota: 2", "nominalQuota: 4") LQ("lq", "cq"),
     .first = {{"low", "lq", 0, "2", 1}},
     .then = {{"high", "lq", 10, "2", 1}},
     .admitted = "high,low",
     .flavor_of = "high=f1"},
    /* 28: every flavor's reason is kept, with Kueue's "request > maximum
     * capacity" wording when no amount of waiting could make it fit. */
    {.setup = FLAVOR("f1") FLAVOR("f2")
         CQ2("cq", "", "nominalQuota: 2", "nominalQuota: 4") LQ("lq", "cq"),
     .first = {{"w", "lq", 0, "5", 1}},
     .pending = "w",
     .pending_msg =
         "w=couldn't assign flavors to pod set main: insufficient quota "
         "for " RES
         " in flavor f1, previously considered podsets requests (0) + "
         "current podset request (5) > maximum capacity (2), insufficient "
         "quota for " RES " in flavor f2, previously considered podsets "
         "requests (0) + current podset request (5) > maximum capacity (4)"},
    /* 29: both flavors' "insufficient unused quota" reasons. */
    {.setup = FLAVOR("f1") FLAVOR("f2")
         CQ2("cq", "", "nominalQuota: 2", "nominalQuota: 4") LQ("lq", "cq"),
     .first = {{"a", "lq", 0, "2", 1}, {"b", "lq", 0, "3", 1}},
     .then = {{"w", "lq", 0, "2", 1}},
     .admitted = "a,b",
     .pending = "w",
     .pending_msg =
         "w=couldn't assign flavors to pod set main: insufficient "
         "unused quota for " RES " in flavor f1, 2 more needed, "
         "insufficient unused quota for " RES " in flavor f2, 1 more needed"},
    /* 30: "nominalQuota defined at the Cohort level represents
     * additional resources on top of those defined by ClusterQueues
     * within the Cohort ... a shared pool" (cohort.md). */
    {.setup = FLAVOR(
         "default-flavor") "apiVersion: kueue.x-k8s.io/v1beta2\nkind: Cohort\n"
                           "metadata: {name: hello}\nspec:\n  resourceGroups:\n"
                           "  - coveredResources: [\"" RES "\"]\n    flavors:\n"
                           "    - {name: default-flavor, resources: [{name: "
                           "\"" RES "\","
                           " nominalQuota: 6}]}\n---\n" CQ(
                               "cq-a", "  cohortName: hello\n",
                               "nominalQuota: 0") LQ("lq-a", "cq-a"),
     .first = {{"a", "lq-a", 0, "6", 1}},
     .then = {{"b", "lq-a", 0, "1", 1}},
     .admitted = "a",
     .pending = "b",
     .cq_borrowed = "cq-a=6"},
    /* 31: Kueue's "Should be able to preempt when lending limit
     * enabled": prod keeps 1 of its 5 and lends 4; reclaiming them takes
     * the lower-priority borrower of dev only. */
    {.setup = FLAVOR("default-flavor")
         CQ("prod-cq",
            "  cohortName: all\n  preemption: {reclaimWithinCohort: Any}\n",
            "nominalQuota: 5, lendingLimit: 4")
             CQ("dev-cq", "  cohortName: all\n", "nominalQuota: 5")
                 LQ("prod-queue", "prod-cq") LQ("dev-queue", "dev-cq"),
     .first = {{"wl-1", "dev-queue", 0, "4", 1},
               {"wl-2", "dev-queue", 1, "5", 1}},
     .then = {{"wl-3", "prod-queue", 0, "4", 1}},
     .admitted = "wl-2,wl-3",
     .preempted = "wl-1",
     .preempted_reason = "InCohortReclamation"},
    /* 32: a loan's grant (docs/controller.md, "Loans"): gpufed's
     * ClusterQueue with a namespaceSelector no namespace matches and no
     * LocalQueue only lends to its cohort. cq-a may use its own 2 and
     * the grant's 2, once: a fifth GPU waits. */
    {.setup = FLAVOR("default-flavor") CQ_NOSEL(
         "gpufed-loan-cq-a",
         "  cohortName: pool\n"
         "  namespaceSelector: {matchLabels: {gpufed.io/none: \"true\"}}\n",
         "nominalQuota: 2") CQ("cq-a", "  cohortName: pool\n",
                               "nominalQuota: 2") LQ("lq-a", "cq-a"),
     .first = {{"a", "lq-a", 0, "2", 1}, {"b", "lq-a", 0, "2", 1}},
     .then = {{"c", "lq-a", 0, "1", 1}},
     .admitted = "a,b",
     .pending = "c",
     .cq_borrowed = "cq-a=2"},
    /* 33: a loan's hold: an ownerless Workload in gpufed's overflow
     * ClusterQueue (nominal 0) is admitted by borrowing the lender's idle
     * quota, and that quota is then not the lender's to use. */
    {.setup = FLAVOR("default-flavor")
         CQ("cq-b", "  cohortName: pool\n", "nominalQuota: 4")
             CQ("gpufed-cq-b", "  cohortName: pool\n", "nominalQuota: 0")
                 LQ("lq-b", "cq-b") LQ("gpufed-cq-b", "gpufed-cq-b"),
     .first = {{"hold", "gpufed-cq-b", 0, "3", 1}},
     .then = {{"b1", "lq-b", 0, "2", 1}},
     .admitted = "hold",
     .pending = "b1",
     .cq_borrowed = "gpufed-cq-b=3"},
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
    X(test_reclaim_takes_back_only_borrowed_quota, 12)                         \
    X(test_cohort_admits_nominal_fitting_workloads_first, 13)                  \
    X(test_null_namespaceSelector_admits_from_no_namespace, 14)                \
    X(test_namespaceSelector_matchLabels_selects_namespace, 15)                \
    X(test_namespaceSelector_matchLabels_rejects_other_namespace, 16)          \
    X(test_namespaceSelector_matchExpressions_In, 17)                          \
    X(test_namespaceSelector_matchExpressions_NotIn, 18)                       \
    X(test_withinClusterQueue_needs_request_within_nominal, 19)                \
    X(test_borrowWithinCohort_preempts_lower_priority_while_borrowing, 20)     \
    X(test_borrowWithinCohort_maxPriorityThreshold_spares_above, 21)           \
    X(test_upstream_preempt_own_low_and_cohort_borrower, 22)                   \
    X(test_upstream_no_cohort_preemption_when_borrowing_required, 23)          \
    X(test_whenCanBorrow_MayStopSearch_borrows_in_first_flavor, 24)            \
    X(test_whenCanBorrow_TryNextFlavor_prefers_flavor_without_borrowing, 25)   \
    X(test_whenCanPreempt_TryNextFlavor_prefers_a_flavor_that_fits, 26)        \
    X(test_whenCanPreempt_MayStopSearch_preempts_in_first_flavor, 27)          \
    X(test_message_says_request_exceeds_maximum_capacity_per_flavor, 28)       \
    X(test_message_keeps_every_flavors_reason, 29)                             \
    X(test_cohort_object_quota_is_a_shared_pool, 30)                           \
    X(test_upstream_preempt_when_lending_limit_enabled, 31)                    \
    X(test_loan_grant_lends_to_its_cohort_once, 32)                            \
    X(test_loan_hold_without_owner_reserves_idle_quota, 33)

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
