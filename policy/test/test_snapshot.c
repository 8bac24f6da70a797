/*
 * Tests for policy/snapshot and policy/explain: a snapshot loads into a
 * consistent ledger and dumps back to the same text; every malformed field
 * is named; explain() says where a Workload is and what happens next, in
 * JSON and in words, for each kind of answer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/file.h"
#include "common/json.h"
#include "policy/config.h"
#include "policy/explain.h"
#include "policy/snapshot.h"

#define SNAPSHOT "policy/fuzz/corpus/snapshot/federation.json"
#define POLICY "manifests/policy/federation-policy.yaml"

static char *slurp(const char *path, size_t *len)
{
    char *data;
    assert_int_equal(gf_file_read(path, 1 << 24, &data, len), 0);
    return data;
}

static void test_roundtrip_is_stable_and_consistent(void **state)
{
    (void)state;
    int64_t live = gf_alloc_live();
    size_t len;
    char *data = slurp(SNAPSHOT, &len);
    struct gf_ledger *l;
    int64_t now;
    char err[256];
    assert_int_equal(gf_snapshot_load(data, len, &l, &now, err, sizeof(err)),
                     0);
    assert_int_equal(now, 600000);
    char why[256];
    assert_int_equal(gf_ledger_verify(l, why, sizeof(why)), 0);
    assert_int_equal(gf_ledger_n_workloads(l), 6);
    assert_int_equal(gf_ledger_n_pending(l), 3);
    const struct gf_ledger_cell *c = gf_ledger_cell(
        l, "west", "research-gpu", "gpu-a100-80gb", "nvidia.com/gpu");
    assert_non_null(c);
    assert_int_equal(c->lending_limit, 24);
    assert_int_equal(c->used, 10);
    /* the reclaim fields of a lease load, and dump back below */
    const struct gf_ledger_lease *ll = gf_ledger_lease(l, "train-e-1");
    assert_non_null(ll);
    assert_int_equal(ll->l.reclaim_started_ms, 400000);
    assert_int_equal(ll->l.reclaim_deadline_ms, 520000);
    assert_string_equal(ll->l.reason, "LenderUnreachable");
    /* the cohort a loan's grant joins */
    assert_string_equal(gf_ledger_cq(l, "east", "research-gpu")->cohort,
                        "research");
    assert_null(gf_ledger_cq(l, "west", "research-gpu")->cohort);
    char *a = gf_snapshot_dump(l, now);
    assert_non_null(strstr(a, "\"reclaimStartedMs\":400000"));
    struct gf_ledger *l2;
    int64_t now2;
    assert_int_equal(
        gf_snapshot_load(a, strlen(a), &l2, &now2, err, sizeof(err)), 0);
    char *b = gf_snapshot_dump(l2, now2);
    assert_string_equal(a, b);
    gf_free(a);
    gf_free(b);
    gf_ledger_free(l2);
    gf_ledger_free(l);
    gf_free(data);
    assert_int_equal(gf_alloc_live(), live);
}

static void test_bad_fields_are_named(void **state)
{
    (void)state;
    static const struct {
        const char *doc, *err;
    } t[] = {
        {"[1,2", "not a JSON object"},
        {"{\"kind\":\"Other\"}", "kind: \"Other\": expected LedgerSnapshot"},
        {"{\"kind\":\"LedgerSnapshot\",\"members\":{}}",
         "members: expected an array"},
        {"{\"kind\":\"LedgerSnapshot\",\"members\":[{\"name\":\"e\","
         "\"freshness\":\"fresh\"}]}",
         "members[0].freshness: \"fresh\": expected synced"},
        {"{\"kind\":\"LedgerSnapshot\",\"members\":[{\"name\":\"e\","
         "\"freshness\":\"synced\"}],\"clusterQueues\":[{\"member\":\"e\","
         "\"name\":\"q\",\"quota\":[{\"flavor\":\"f\",\"resource\":\"r\","
         "\"nominal\":-1}]}]}",
         "clusterQueues[0].quota[0].nominal: expected a whole number >= 0"},
        {"{\"kind\":\"LedgerSnapshot\",\"workloads\":[{\"member\":\"e\","
         "\"namespace\":\"n\",\"name\":\"w\",\"gpus\":1.5,\"state\":"
         "\"Pending\"}]}",
         "workloads[0].gpus: expected a whole number >= 0"},
        {"{\"kind\":\"LedgerSnapshot\",\"leases\":[{\"name\":\"l\","
         "\"group\":\"g\",\"mode\":\"teleport\",\"phase\":\"Active\","
         "\"epoch\":1}]}",
         "leases[0].mode: \"teleport\": expected redirect or loan"},
        {"{\"kind\":\"LedgerSnapshot\",\"members\":[{\"name\":\"e\","
         "\"freshness\":\"synced\"}],\"clusterQueues\":[{\"member\":\"e\","
         "\"name\":\"q\",\"cohort\":7,\"quota\":[]}]}",
         "clusterQueues[0].cohort: expected a non-empty string"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        struct gf_ledger *l = (struct gf_ledger *)1;
        int64_t now = 7;
        char err[256];
        int64_t live = gf_alloc_live();
        assert_true(gf_snapshot_load(t[i].doc, strlen(t[i].doc), &l, &now, err,
                                     sizeof(err)) != 0);
        assert_null(l);
        if (strstr(err, t[i].err) == NULL)
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, err, t[i].err);
        assert_int_equal(gf_alloc_live(), live);
    }
}

struct world {
    struct gf_policy *p;
    struct gf_ledger *l;
    int64_t now;
};

static void world_load(struct world *w)
{
    size_t len;
    char *data = slurp(POLICY, &len);
    struct gf_policy_diag d;
    gf_policy_diag_init(&d);
    assert_int_equal(gf_policy_parse(data, len, &w->p, &d), 0);
    gf_policy_diag_free(&d);
    gf_free(data);
    data = slurp(SNAPSHOT, &len);
    char err[256];
    assert_int_equal(
        gf_snapshot_load(data, len, &w->l, &w->now, err, sizeof(err)), 0);
    gf_free(data);
}

static void world_free(struct world *w)
{
    gf_ledger_free(w->l);
    gf_policy_free(w->p);
}

static cJSON *explain(struct world *w, const char *name, char **words)
{
    cJSON *ex = NULL;
    assert_int_equal(
        gf_explain(w->l, w->p, w->now, "east", "research", name, &ex), 0);
    assert_int_equal(
        gf_explain_words(w->l, w->p, w->now, "east", "research", name, words),
        0);
    return ex;
}

static void test_explain_every_answer(void **state)
{
    (void)state;
    int64_t live = gf_alloc_live();
    struct world w;
    world_load(&w);
    char *words;
    /* starts: where, why, with the numbers */
    cJSON *ex = explain(&w, "train-b", &words);
    assert_string_equal(gf_json_str(ex, "decision.action"), "start");
    assert_string_equal(gf_json_str(ex, "decision.lender"), "west");
    assert_string_equal(gf_json_str(ex, "decision.mode"), "loan");
    int64_t have = 0;
    gf_json_int(ex, "decision.have", &have);
    assert_int_equal(have, 18); /* min(lendable 22, free 22 - reserve 4) */
    assert_non_null(
        strstr(words, "next: start a loan lease in west/research-gpu"));
    /* the mode chosen and why: the group allows both, the flavor is a
     * budget and the origin's ClusterQueue is in a cohort */
    assert_string_equal(gf_json_str(ex, "decision.rule"), "loan");
    assert_string_equal(gf_json_str(ex, "workload.groupMode"), "both");
    assert_string_equal(gf_json_str(ex, "workload.cohort"), "research");
    assert_non_null(strstr(words, "(ClusterQueue research-gpu in cohort "
                                  "research, group ml-research, mode both)"));
    assert_non_null(strstr(words, "into cohort research"));
    gf_free(words);
    cJSON_Delete(ex);
    /* waits: too early */
    ex = explain(&w, "train-c", &words);
    assert_string_equal(gf_json_str(ex, "decision.rule"), "overflowAfter");
    assert_non_null(
        strstr(words, "next: wait (overflowAfter: 10000 of 120000)"));
    gf_free(words);
    cJSON_Delete(ex);
    /* waits: below the group's minPriority */
    ex = explain(&w, "train-d", &words);
    assert_string_equal(gf_json_str(ex, "decision.rule"), "overflow");
    assert_non_null(strstr(words, "overflow: 50 of 100"));
    gf_free(words);
    cJSON_Delete(ex);
    /* held by a lease in a silent lender */
    ex = explain(&w, "train-e", &words);
    assert_string_equal(gf_json_str(ex, "decision.action"), "none");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(ex, "leases")), 1);
    assert_non_null(
        strstr(words, "lease train-e-1 (redirect): Suspect in north/research"));
    gf_free(words);
    cJSON_Delete(ex);
    /* reclaimed from west 20s ago: not sent straight back there */
    struct gf_lease rl = {.name = "train-b-1",
                          .group = "ml-research",
                          .phase = GF_LEASE_RELEASED,
                          .epoch = 1,
                          .origin_member = "east",
                          .origin_namespace = "research",
                          .origin_name = "train-b",
                          .lender_member = "west",
                          .lender_cq = "research-gpu",
                          .lender_flavor = "gpu-a100-80gb",
                          .gpus = 4,
                          .reclaim_started_ms = w.now - 140000,
                          .ended_ms = w.now - 20000,
                          .reason = "Reclaimed"};
    assert_int_equal(gf_ledger_lease_set(w.l, &rl), 0);
    ex = explain(&w, "train-b", &words);
    assert_string_equal(gf_json_str(ex, "decision.action"), "wait");
    assert_string_equal(gf_json_str(ex, "decision.rule"), "recentlyReclaimed");
    int64_t ended = 0;
    gf_json_int(cJSON_GetArrayItem(cJSON_GetObjectItem(ex, "leases"), 0),
                "endedMs", &ended);
    assert_int_equal(ended, w.now - 20000);
    assert_non_null(strstr(words,
                           "lease train-b-1 (redirect): Released in "
                           "west/research-gpu (flavor gpu-a100-80gb), "
                           "epoch 1, 4 GPUs (Reclaimed), ended 20s ago"));
    assert_non_null(strstr(words, "next: wait (recentlyReclaimed"));
    gf_free(words);
    cJSON_Delete(ex);
    assert_int_equal(
        gf_explain(w.l, w.p, w.now, "east", "research", "nope", &ex),
        GF_ENOTFOUND);
    world_free(&w);
    assert_int_equal(gf_alloc_live(), live);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_is_stable_and_consistent),
        cmocka_unit_test(test_bad_fields_are_named),
        cmocka_unit_test(test_explain_every_answer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
