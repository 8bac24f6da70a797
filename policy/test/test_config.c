/*
 * Tests for policy/config: every validation error kind with its exact
 * line:column and field path, all errors reported in one run, defaults,
 * and the lookups decide() relies on (pair rules, flavor classes, caps).
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
#include "common/err.h"
#include "policy/config.h"

static int64_t baseline;

static int setup(void **state)
{
    (void)state;
    baseline = gf_alloc_live();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(gf_alloc_live(), baseline);
    return 0;
}

/* Lines 1-11 of every case; the case's own text starts at line 12. */
#define HEAD                                                                   \
    "apiVersion: gpufed.io/v1alpha1\n"                                         \
    "kind: FederationPolicy\n"                                                 \
    "spec:\n"                                                                  \
    "  members:\n"                                                             \
    "  - name: east\n"                                                         \
    "    apiServer: https://east.example:6443\n"                               \
    "    credentialsSecret: gpufed-system/east\n"                              \
    "  - name: west\n"                                                         \
    "    apiServer: https://west.example:6443\n"                               \
    "    credentialsSecret: gpufed-system/west\n"                              \
    "    fencing: none\n"

#define GROUP_OK                                                               \
    "  groups:\n"                                                              \
    "  - name: ml\n"                                                           \
    "    clusterQueues:\n"                                                     \
    "    - {member: east, name: ml}\n"                                         \
    "    - {member: west, name: ml}\n"

struct want {
    int line, col;
    const char *path; /* exact */
    const char *msg;  /* substring */
};

struct vcase {
    const char *name;
    const char *yaml;
    struct want want[6];
};

static const struct vcase cases[] = {
    {"unknown field",
     HEAD GROUP_OK "  bogus: 1\n",
     {{17, 3, "spec.bogus", "unknown field \"bogus\"; expected one of:"}}},
    {"unknown nested field",
     HEAD "  groups:\n"
          "  - name: ml\n"
          "    clusterQueue: []\n",
     {{13, 5, "spec.groups[0]", "missing required field \"clusterQueues\""},
      {14, 5, "spec.groups[0].clusterQueue", "unknown field"}}},
    {"wrong type list",
     HEAD "  groups: 5\n",
     {{12, 11, "spec.groups", "wrong type: expected a list, got a scalar"}}},
    {"wrong type mapping",
     HEAD GROUP_OK "  timing: [1]\n",
     {{17, 11, "spec.timing", "wrong type: expected a mapping, got a list"}}},
    {"wrong type number",
     HEAD GROUP_OK "    reserve: {gpus: two}\n",
     {{17, 21, "spec.groups[0].reserve.gpus",
       "expected a whole number of GPUs, got \"two\""}}},
    {"negative quota",
     HEAD "    lending: {maxGPUs: -4}\n" GROUP_OK,
     {{12, 24, "spec.members[1].lending.maxGPUs", "negative quota -4"}}},
    {"negative fraction",
     HEAD "    borrowing:\n"
          "      maxFraction: -0.5\n" GROUP_OK,
     {{13, 20, "spec.members[1].borrowing.maxFraction",
       "negative fraction -0.5"}}},
    {"fraction above one",
     HEAD GROUP_OK "    reserve: {fraction: 1.5}\n",
     {{17, 25, "spec.groups[0].reserve.fraction",
       "fraction 1.5 is greater than 1"}}},
    {"group names unknown member",
     HEAD "  groups:\n"
          "  - name: ml\n"
          "    clusterQueues:\n"
          "    - {member: north, name: ml}\n",
     {{15, 16, "spec.groups[0].clusterQueues[0].member",
       "unknown member \"north\""}}},
    {"two groups claim one ClusterQueue",
     HEAD GROUP_OK "  - name: cv\n"
                   "    clusterQueues:\n"
                   "    - {member: west, name: ml}\n",
     {{19, 7, "spec.groups[1].clusterQueues[0]",
       "ClusterQueue west/ml is claimed by two groups: \"ml\" (line 13) and "
       "\"cv\""}}},
    {"cycle in member sets",
     HEAD GROUP_OK "  memberSets:\n"
                   "  - name: a\n"
                   "    members: [east, b]\n"
                   "  - name: b\n"
                   "    members: [a]\n",
     {{21, 15, "spec.memberSets[1].members[0]",
       "cycle in member sets: a -> b -> a"}}},
    {"contradiction in rules",
     HEAD GROUP_OK "  sharing:\n"
                   "    rules:\n"
                   "    - {name: open, lenders: ['*'], borrowers: [east]}\n"
                   "    - {name: shut, lenders: [west], borrowers: ['*'],\n"
                   "       action: deny}\n",
     {{20, 7, "spec.sharing.rules[1]",
       "contradiction: rule \"shut\" denies west -> east in group \"ml\" that "
       "rule \"open\" (line 19) allows"}}},
    {"rules on different groups do not contradict",
     HEAD GROUP_OK "  - name: cv\n"
                   "    clusterQueues: [{member: east, name: cv}]\n"
                   "  sharing:\n"
                   "    rules:\n"
                   "    - {lenders: [west], borrowers: [east], groups: [ml]}\n"
                   "    - {lenders: [west], borrowers: [east], groups: [cv],\n"
                   "       action: deny}\n",
     {{0, 0, NULL, NULL}}},
    {"deny with a cap",
     HEAD GROUP_OK "  sharing:\n"
                   "    rules:\n"
                   "    - {lenders: [west], borrowers: [east], action: deny,\n"
                   "       maxGPUs: 3}\n",
     {{19, 7, "spec.sharing.rules[0]", "a deny rule cannot carry"}}},
    {"missing required field",
     HEAD "  - name: south\n"
          "    credentialsSecret: a/b\n" GROUP_OK,
     {{12, 5, "spec.members[2]", "missing required field \"apiServer\""}}},
    {"duplicate field",
     HEAD GROUP_OK "    mode: redirect\n"
                   "    mode: both\n",
     {{18, 5, "spec.groups[0].mode",
       "duplicate field \"mode\" (first at line 17)"}}},
    {"loan without budgetFlavors",
     HEAD GROUP_OK "    mode: loan\n",
     {{17, 11, "spec.groups[0].mode", "mode loan needs budgetFlavors"}}},
    {"both with an empty budgetFlavors",
     HEAD GROUP_OK "    mode: both\n"
                   "    budgetFlavors: []\n",
     {{18, 20, "spec.groups[0].budgetFlavors",
       "mode both needs budgetFlavors"}}},
    {"budgetFlavors: invalid and duplicate names",
     HEAD GROUP_OK "    mode: loan\n"
                   "    budgetFlavors: [a100, A_100, a100]\n",
     {{18, 27, "spec.groups[0].budgetFlavors[1]",
       "invalid flavor class \"A_100\""},
      {18, 34, "spec.groups[0].budgetFlavors[2]",
       "duplicate flavor class \"a100\""}}},
    {"invalid enum",
     HEAD GROUP_OK "    mode: borrow\n",
     {{17, 11, "spec.groups[0].mode",
       "invalid value \"borrow\": expected one of: redirect, loan, both"}}},
    {"invalid duration",
     HEAD GROUP_OK "  timing:\n"
                   "    overflowAfter: soon\n"
                   "    gracePeriod: -5s\n",
     {{18, 20, "spec.timing.overflowAfter", "expected a duration"},
      {19, 18, "spec.timing.gracePeriod", "negative duration -5s"}}},
    {"bad reclaim limits",
     HEAD GROUP_OK "    maxReclaimsPerHour: -1\n"
                   "  timing: {minRunTime: 5 minutes}\n",
     {{17, 25, "spec.groups[0].maxReclaimsPerHour",
       "expected a whole number >= 0"},
      {18, 24, "spec.timing.minRunTime", "expected a duration"}}},
    {"lease too short",
     HEAD GROUP_OK "  timing: {leaseDuration: 1s}\n",
     {{17, 27, "spec.timing.leaseDuration", "too short"}}},
    {"clock drift too large",
     HEAD GROUP_OK "  timing: {clockDrift: 0.9}\n",
     {{17, 24, "spec.timing.clockDrift", "implausible"}}},
    {"yaml syntax error",
     HEAD "  groups: [a, b\n",
     {{13, 1, "", "invalid YAML"}}},
    {"yaml alias refused",
     HEAD "  groups: &g []\n"
          "  timing: *g\n",
     {{13, 11, "", "aliases are not supported"}}},
    {"wrong apiVersion and kind",
     "apiVersion: v1\nkind: ConfigMap\nspec: {}\n",
     {{1, 13, "apiVersion", "expected \"gpufed.io/v1alpha1\""},
      {2, 7, "kind", "expected \"FederationPolicy\""},
      {3, 7, "spec", "missing required field \"groups\""},
      {3, 7, "spec", "missing required field \"members\""}}},
    {"duplicate member",
     HEAD "  - name: east\n"
          "    apiServer: https://e2:6443\n"
          "    credentialsSecret: a/b\n" GROUP_OK,
     {{12, 11, "spec.members[2].name",
       "duplicate member \"east\" (first at line 5)"}}},
    {"insecure api server and bad secret ref",
     "apiVersion: gpufed.io/v1alpha1\n"
     "kind: FederationPolicy\n"
     "spec:\n"
     "  members:\n"
     "  - name: east\n"
     "    apiServer: http://east:80\n"
     "    credentialsSecret: just-a-name\n"
     "  groups: []\n",
     {{6, 16, "spec.members[0].apiServer", "expected https://"},
      {7, 24, "spec.members[0].credentialsSecret", "expected NAMESPACE/NAME"}}},
    {"invalid names",
     HEAD "  groups:\n"
          "  - name: ML_Team\n"
          "    clusterQueues: [{member: east, name: ok}]\n",
     {{13, 11, "spec.groups[0].name", "expected a DNS-1123 label"}}},
    {"unknown group and member in rule",
     HEAD GROUP_OK "  sharing:\n"
                   "    rules:\n"
                   "    - {lenders: [mars], borrowers: [east], groups: [x]}\n",
     {{19, 18, "spec.sharing.rules[0].lenders[0]",
       "unknown member or member set \"mars\""},
      {19, 53, "spec.sharing.rules[0].groups[0]", "unknown group \"x\""}}},
    {"flavor in two classes",
     HEAD GROUP_OK "  flavorEquivalence:\n"
                   "  - name: a100\n"
                   "    flavors: [{member: east, flavor: a100-40g}]\n"
                   "  - name: h100\n"
                   "    flavors: [{member: east, flavor: a100-40g}]\n",
     {{21, 38, "spec.flavorEquivalence[1].flavors[0].flavor",
       "already in flavor class \"a100\""}}},
    {"namespace mapped twice",
     HEAD GROUP_OK "    namespaceMapping:\n"
                   "    - {member: west, from: a, to: b}\n"
                   "    - {member: west, from: a, to: c}\n",
     {{19, 7, "spec.groups[0].namespaceMapping[1]", "mapped twice"}}},
    {"victim order",
     HEAD GROUP_OK "  timing: {victimOrder: [newest, newest, random]}\n",
     {{17, 34, "spec.timing.victimOrder[1]", "duplicate key \"newest\""},
      {17, 42, "spec.timing.victimOrder[2]", "invalid value \"random\""}}},
    {"allowHostAccess not a boolean",
     HEAD GROUP_OK "    overflow: {allowHostAccess: yes}\n",
     {{17, 33, "spec.groups[0].overflow.allowHostAccess",
       "expected true or false, got \"yes\""}}},
    {"empty document", "", {{1, 1, "", "empty document"}}},
    {"not a mapping", "- 1\n", {{1, 1, "", "expected a mapping"}}},
    {"two documents",
     "kind: a\n---\nkind: b\n",
     {{2, 1, "", "exactly one YAML document"}}},
};

static int mismatches;

static void run_case(const struct vcase *c)
{
    struct gf_policy_diag d;
    struct gf_policy *p = NULL;
    gf_policy_diag_init(&d);
    int rc = gf_policy_parse(c->yaml, strlen(c->yaml), &p, &d);
    size_t nwant = 0;
    while (nwant < 6 && c->want[nwant].msg != NULL)
        nwant++;
    if (d.n != nwant) {
        struct gf_buf b = GF_BUF_INIT(1 << 16);
        gf_policy_diag_format(&d, c->name, &b);
        print_error("case '%s': %zu errors, want %zu:\n%s", c->name, d.n, nwant,
                    gf_buf_cstr(&b));
        gf_buf_free(&b);
        mismatches++;
        gf_policy_free(p);
        gf_policy_diag_free(&d);
        return;
    }
    if (nwant == 0) {
        assert_int_equal(rc, 0);
        assert_non_null(p);
    } else {
        assert_int_equal(rc, GF_ECONFIG);
        assert_null(p);
    }
    for (size_t i = 0; i < nwant; i++) {
        const struct gf_policy_error *e = &d.errs[i];
        const struct want *w = &c->want[i];
        if (e->line != w->line || e->col != w->col ||
            strcmp(e->path, w->path) != 0 || strstr(e->msg, w->msg) == NULL) {
            print_error("case '%s' error %zu: got %d:%d %s: %s\n"
                        "want %d:%d %s: ...%s...\n",
                        c->name, i, e->line, e->col, e->path, e->msg, w->line,
                        w->col, w->path, w->msg);
            mismatches++;
        }
    }
    gf_policy_free(p);
    gf_policy_diag_free(&d);
}

static void test_validation_table(void **state)
{
    (void)state;
    mismatches = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_case(&cases[i]);
    assert_int_equal(mismatches, 0);
}

static void test_all_errors_reported_sorted(void **state)
{
    (void)state;
    static const char y[] = HEAD "  groups:\n"
                                 "  - name: ml\n"
                                 "    mode: x\n"
                                 "    clusterQueues:\n"
                                 "    - {member: nope, name: ml}\n"
                                 "    reserve: {gpus: -1, fraction: 2}\n"
                                 "  timing: {admitTimeout: 0}\n"
                                 "  extra: true\n";
    struct gf_policy_diag d;
    struct gf_policy *p;
    gf_policy_diag_init(&d);
    assert_int_equal(gf_policy_parse(y, strlen(y), &p, &d), GF_ECONFIG);
    assert_int_equal(d.n, 6);
    for (size_t i = 1; i < d.n; i++)
        assert_true(d.errs[i - 1].line < d.errs[i].line ||
                    (d.errs[i - 1].line == d.errs[i].line &&
                     d.errs[i - 1].col <= d.errs[i].col));
    struct gf_buf b = GF_BUF_INIT(1 << 16);
    assert_int_equal(gf_policy_diag_format(&d, "p.yaml", &b), 0);
    assert_non_null(strstr(gf_buf_cstr(&b),
                           "p.yaml:14:11: error: spec.groups[0].mode: invalid "
                           "value \"x\""));
    assert_non_null(strstr(gf_buf_cstr(&b), "p.yaml:19:3: error: spec.extra"));
    gf_buf_free(&b);
    gf_policy_diag_free(&d);
}

static void test_error_cap(void **state)
{
    (void)state;
    struct gf_buf y = GF_BUF_INIT(1 << 20);
    gf_buf_puts(&y, HEAD GROUP_OK);
    for (int i = 0; i < GF_POLICY_MAX_ERRORS + 20; i++)
        gf_buf_printf(&y, "  bad%d: 1\n", i);
    struct gf_policy_diag d;
    struct gf_policy *p;
    gf_policy_diag_init(&d);
    assert_int_equal(gf_policy_parse(y.data, y.len, &p, &d), GF_ECONFIG);
    assert_int_equal(d.n, GF_POLICY_MAX_ERRORS);
    assert_int_equal(d.dropped, 20);
    gf_policy_diag_free(&d);
    gf_buf_free(&y);
}

static void test_too_big(void **state)
{
    (void)state;
    size_t n = GF_POLICY_MAX_BYTES + 1;
    char *big = gf_malloc(n);
    memset(big, '#', n);
    struct gf_policy_diag d;
    struct gf_policy *p;
    gf_policy_diag_init(&d);
    assert_int_equal(gf_policy_parse(big, n, &p, &d), GF_E2BIG);
    assert_null(p);
    assert_int_equal(d.n, 1);
    gf_free(big);
    gf_policy_diag_free(&d);
}

static struct gf_policy *must_parse(const char *y)
{
    struct gf_policy_diag d;
    struct gf_policy *p = NULL;
    gf_policy_diag_init(&d);
    int rc = gf_policy_parse(y, strlen(y), &p, &d);
    if (rc != 0) {
        struct gf_buf b = GF_BUF_INIT(1 << 16);
        gf_policy_diag_format(&d, NULL, &b);
        print_error("%s", gf_buf_cstr(&b));
        gf_buf_free(&b);
    }
    assert_int_equal(rc, 0);
    gf_policy_diag_free(&d);
    return p;
}

static void test_defaults(void **state)
{
    (void)state;
    struct gf_policy *p = must_parse(HEAD GROUP_OK);
    assert_string_equal(p->name, "default");
    assert_string_equal(p->resource, "nvidia.com/gpu");
    assert_false(p->default_deny);
    assert_int_equal(p->n_members, 2);
    assert_int_equal(p->members[0].fencing, GF_FENCING_AGENT);
    assert_int_equal(p->members[1].fencing, GF_FENCING_NONE);
    assert_int_equal(p->members[0].max_lent.gpus, GF_NO_CAP);
    assert_int_equal(p->members[0].max_lent.fraction_ppm, -1);
    assert_int_equal(p->groups[0].modes, GF_MODE_REDIRECT);
    assert_int_equal(p->groups[0].n_job_kinds, 1);
    assert_string_equal(p->groups[0].job_kinds[0], "batch/Job");
    assert_false(p->groups[0].has_min_priority);
    assert_int_equal(p->timing.overflow_after_ms, 120000);
    assert_int_equal(p->timing.lease_duration_ms, 30000);
    assert_int_equal(p->timing.clock_drift_ppm, 10000);
    assert_int_equal(p->timing.fence_margin_ms, 5000);
    assert_int_equal(p->timing.admit_timeout_ms, 300000);
    assert_int_equal(p->timing.reclaim_after_ms, 60000);
    assert_int_equal(p->timing.grace_period_ms, 120000);
    assert_int_equal(p->timing.min_run_time_ms, 0);
    assert_int_equal(p->groups[0].max_reclaims_per_hour, GF_NO_CAP);
    assert_int_equal(p->n_victim_order, 2);
    assert_int_equal(p->victim_order[0], GF_VICTIM_LOWEST_PRIORITY);
    assert_int_equal(p->victim_order[1], GF_VICTIM_NEWEST);
    assert_int_equal(gf_policy_group_of(p, "west", "ml"), 0);
    assert_int_equal(gf_policy_group_of(p, "west", "other"), -1);
    assert_int_equal(gf_policy_member_index(p, "west"), 1);
    assert_int_equal(gf_policy_member_index(p, "nope"), -1);
    gf_policy_free(p);
}

static void test_full_fields(void **state)
{
    (void)state;
    static const char y[] =
        "apiVersion: gpufed.io/v1alpha1\n"
        "kind: FederationPolicy\n"
        "metadata: {name: prod}\n"
        "spec:\n"
        "  resource: example.com/gpu\n"
        "  locality: [region, zone]\n"
        "  members:\n"
        "  - name: a\n"
        "    apiServer: https://a:6443\n"
        "    credentialsSecret: s/a\n"
        "    labels: {region: eu, zone: eu-1}\n"
        "    lending: {maxGPUs: 10, maxFraction: 0.5}\n"
        "    borrowing: {maxFraction: 0.25}\n"
        "  - {name: b, apiServer: 'https://b', credentialsSecret: s/b}\n"
        "  - {name: c, apiServer: 'https://c', credentialsSecret: s/c}\n"
        "  memberSets:\n"
        "  - {name: ab, members: [a, b]}\n"
        "  - {name: abc, members: [ab, c]}\n"
        "  flavorEquivalence:\n"
        "  - name: a100\n"
        "    flavors: [{member: a, flavor: gpu-a}, {member: b, flavor: big}]\n"
        "  groups:\n"
        "  - name: ml\n"
        "    mode: both\n"
        "    budgetFlavors: [a100]\n"
        "    clusterQueues: [{member: a, name: q}, {member: b, name: q},\n"
        "                    {member: c, name: q}]\n"
        "    overflow: {namespaces: [train], jobKinds: ['*'],\n"
        "               minPriority: -5, allowHostAccess: true}\n"
        "    reserve: {gpus: 1, fraction: 0.1}\n"
        "    namespaceMapping: [{member: b, from: train, to: ov}]\n"
        "    maxReclaimsPerHour: 6\n"
        "  sharing:\n"
        "    default: deny\n"
        "    rules:\n"
        "    - {name: r1, lenders: [abc], borrowers: [a], maxGPUs: 8}\n"
        "    - {name: r2, lenders: [b], borrowers: [a], maxFraction: 0.25}\n"
        "    - {name: r3, lenders: [c], borrowers: [b], action: deny}\n"
        "  timing: {overflowAfter: 30s, leaseDuration: 1m, clockDrift: 0.05,\n"
        "           fenceMargin: 2s, admitTimeout: 1m, reclaimAfter: 10s,\n"
        "           gracePeriod: 45s, victimOrder: [largest, oldest],\n"
        "           minRunTime: 10m}\n";
    struct gf_policy *p = must_parse(y);
    assert_string_equal(p->name, "prod");
    assert_string_equal(p->resource, "example.com/gpu");
    assert_int_equal(p->n_locality, 2);
    assert_true(p->default_deny);
    assert_int_equal(p->members[0].max_lent.gpus, 10);
    assert_int_equal(p->members[0].max_lent.fraction_ppm, 500000);
    assert_int_equal(p->members[0].max_borrowed.gpus, GF_NO_CAP);
    assert_int_equal(p->members[0].max_borrowed.fraction_ppm, 250000);
    assert_string_equal(gf_policy_member_label(&p->members[0], "zone"), "eu-1");
    assert_null(gf_policy_member_label(&p->members[1], "zone"));
    assert_string_equal(gf_policy_flavor_class(p, "a", "gpu-a"), "a100");
    assert_string_equal(gf_policy_flavor_class(p, "b", "big"), "a100");
    assert_string_equal(gf_policy_flavor_class(p, "c", "big"), "big");
    const struct gf_policy_group *g = &p->groups[0];
    assert_int_equal(g->modes, GF_MODE_REDIRECT | GF_MODE_LOAN);
    assert_int_equal(g->n_budget_flavors, 1);
    /* A budget class covers each member's flavor of it, whatever its
     * name; a flavor outside the class is not budget-like. */
    assert_true(gf_policy_budget_flavor(p, g, "a", "gpu-a"));
    assert_true(gf_policy_budget_flavor(p, g, "b", "big"));
    assert_false(gf_policy_budget_flavor(p, g, "c", "big"));
    assert_true(g->has_min_priority);
    assert_int_equal(g->min_priority, -5);
    assert_true(g->allow_host_access);
    assert_int_equal(gf_policy_reserve(&g->reserve, 5), 1);
    assert_int_equal(gf_policy_reserve(&g->reserve, 40), 4);
    assert_int_equal(gf_policy_reserve(&g->reserve, 41), 5); /* ceil */
    assert_string_equal(gf_policy_map_namespace(g, 1, "train"), "ov");
    assert_string_equal(gf_policy_map_namespace(g, 2, "train"), "train");
    const char *why = NULL;
    assert_true(gf_policy_may_overflow(g, "train", "x/Y", -5, &why));
    assert_false(gf_policy_may_overflow(g, "train", "x/Y", -6, &why));
    assert_non_null(strstr(why, "minPriority"));
    assert_false(gf_policy_may_overflow(g, "dev", "x/Y", 0, &why));
    assert_non_null(strstr(why, "namespace"));
    assert_int_equal(p->rules[0].n_lenders, 3); /* abc expanded */
    struct gf_policy_pair pr;
    gf_policy_pair(p, 1, 0, 0, &pr); /* b -> a: r1 and r2, tightest wins */
    assert_true(pr.allowed);
    assert_string_equal(pr.rule, "r1");
    assert_int_equal(pr.max.gpus, 8);
    assert_int_equal(pr.max.fraction_ppm, 250000);
    assert_int_equal(gf_policy_cap_limit(&pr.max, 100), 8);
    assert_int_equal(gf_policy_cap_limit(&pr.max, 10), 2);
    gf_policy_pair(p, 2, 1, 0, &pr); /* c -> b: denied by r3 */
    assert_false(pr.allowed);
    assert_string_equal(pr.rule, "r3");
    gf_policy_pair(p, 0, 1, 0, &pr); /* a -> b: default deny */
    assert_false(pr.allowed);
    assert_null(pr.rule);
    gf_policy_pair(p, 0, 0, 0, &pr); /* never to itself */
    assert_false(pr.allowed);
    assert_int_equal(p->timing.overflow_after_ms, 30000);
    assert_int_equal(p->timing.lease_duration_ms, 60000);
    assert_int_equal(p->timing.clock_drift_ppm, 50000);
    assert_int_equal(p->timing.grace_period_ms, 45000);
    assert_int_equal(p->timing.min_run_time_ms, 600000);
    assert_int_equal(g->max_reclaims_per_hour, 6);
    assert_int_equal(p->victim_order[0], GF_VICTIM_LARGEST);
    assert_int_equal(p->victim_order[1], GF_VICTIM_OLDEST);
    gf_policy_free(p);
}

static void test_cap_arithmetic(void **state)
{
    (void)state;
    static const struct {
        int64_t gpus;
        int32_t ppm;
        int64_t nominal, limit, reserve;
    } t[] = {
        {GF_NO_CAP, -1, 100, GF_NO_CAP, 0},
        {5, -1, 100, 5, 5},
        {GF_NO_CAP, 500000, 9, 4, 5}, /* limit floors, reserve ceils */
        {3, 500000, 9, 3, 5},
        {10, 500000, 9, 4, 10},
        {GF_NO_CAP, 0, 100, 0, 0},
        {GF_NO_CAP, 1000000, 7, 7, 7},
        {GF_NO_CAP, 500000, -3, 0, 0},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        struct gf_policy_cap c = {t[i].gpus, t[i].ppm};
        assert_int_equal(gf_policy_cap_limit(&c, t[i].nominal), t[i].limit);
        assert_int_equal(gf_policy_reserve(&c, t[i].nominal), t[i].reserve);
    }
}

int main(void)
{
    gf_alloc_global_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_validation_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_errors_reported_sorted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_error_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_big, setup, teardown),
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cap_arithmetic, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_alloc_global_cleanup();
    return rc;
}
