/*
 * Tests for kubesim's RBAC authorizer: a table of allowed and denied
 * requests over one fixed set of roles and bindings (wildcards,
 * resourceNames, subresources, "* /status", cluster vs namespaced
 * bindings, ServiceAccount subjects, nonResourceURLs), the exact 403
 * messages the API server writes, the bootstrap discovery roles, and the
 * compiled cache following changes in the store.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/err.h"
#include "e2e/kubesim/rbac.h"
#include "e2e/kubesim/store.h"
#include "kubeclient/global.h"

#define G "rbac.authorization.k8s.io"

struct fx {
    struct gf_clock clk;
    struct gf_ks_store *st;
    struct gf_ks_rbac *rbac;
    int64_t baseline;
};

static void reg(struct gf_ks_store *st, const char *resource, const char *kind,
                bool namespaced)
{
    struct gf_ks_rtype *t = gf_calloc(1, sizeof(*t));
    t->group = gf_strdup(G);
    t->resource = gf_strdup(resource);
    t->kind = gf_strdup(kind);
    t->namespaced = namespaced;
    t->versions = gf_calloc(1, sizeof(*t->versions));
    t->versions[0].name = gf_strdup("v1");
    t->versions[0].served = t->versions[0].storage = true;
    t->n_versions = 1;
    assert_int_equal(gf_ks_store_register(st, t), 0);
}

static void put(struct gf_ks_store *st, const char *resource, const char *ns,
                const char *json)
{
    const struct gf_ks_rtype *t = gf_ks_store_type(st, G, resource);
    assert_non_null(t);
    cJSON *o = cJSON_Parse(json);
    assert_non_null(o);
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    int rc = gf_ks_store_create(st, t, ns, o, GF_KS_MAIN, NULL, &err);
    if (rc != 0)
        fail_msg("create %s: %s", resource, err.message);
    cJSON_Delete(o);
    gf_ks_status_clear(&err);
}

#define RULE(groups, resources, verbs)                                         \
    "{\"apiGroups\":" groups ",\"resources\":" resources ",\"verbs\":" verbs "}"
#define CROLE(name, rules)                                                     \
    "{\"metadata\":{\"name\":\"" name "\"},\"rules\":[" rules "]}"
#define BIND(name, kind, role, subjects)                                       \
    "{\"metadata\":{\"name\":\"" name "\"},\"roleRef\":{\"apiGroup\":\"" G     \
    "\",\"kind\":\"" kind "\",\"name\":\"" role "\"},\"subjects\":[" subjects  \
    "]}"
#define USER(n) "{\"kind\":\"User\",\"name\":\"" n "\"}"
#define GROUP(n) "{\"kind\":\"Group\",\"name\":\"" n "\"}"
#define SA(ns, n)                                                              \
    "{\"kind\":\"ServiceAccount\",\"namespace\":\"" ns "\",\"name\":\"" n "\"" \
    "}"
#define SA_NO_NS(n) "{\"kind\":\"ServiceAccount\",\"name\":\"" n "\"}"

static void load_fixture(struct gf_ks_store *st)
{
    put(st, "clusterroles", "",
        CROLE("wl-reader", RULE("[\"kueue.x-k8s.io\"]", "[\"workloads\"]",
                                "[\"get\",\"list\",\"watch\"]")));
    put(st, "clusterroles", "",
        CROLE("status-writer",
              RULE("[\"kueue.x-k8s.io\"]", "[\"workloads/status\"]",
                   "[\"patch\",\"update\"]")));
    put(st, "clusterroles", "",
        CROLE("any-status", RULE("[\"*\"]", "[\"*/status\"]", "[\"get\"]")));
    put(st, "clusterroles", "",
        CROLE("one-lease",
              "{\"apiGroups\":[\"coordination.k8s.io\"],\"resources\":["
              "\"leases\"],\"resourceNames\":[\"gpufed-heartbeat\"],"
              "\"verbs\":[\"get\",\"update\"]}"));
    put(st, "clusterroles", "",
        CROLE("batch-all", RULE("[\"batch\"]", "[\"*\"]", "[\"*\"]")));
    put(st, "clusterroles", "",
        CROLE("metrics", "{\"nonResourceURLs\":[\"/metrics\",\"/debug/*\"],"
                         "\"verbs\":[\"get\"]}"));
    put(st, "roles", "team-a",
        CROLE("jobs-edit",
              RULE("[\"batch\"]", "[\"jobs\"]", "[\"create\",\"delete\"]")));
    put(st, "clusterrolebindings", "",
        BIND("alice-wl", "ClusterRole", "wl-reader", USER("alice")));
    put(st, "rolebindings", "team-a",
        BIND("bob-status", "ClusterRole", "status-writer", USER("bob")));
    put(st, "rolebindings", "team-a",
        BIND("devs-jobs", "Role", "jobs-edit", GROUP("team-a-devs")));
    put(st, "clusterrolebindings", "",
        BIND("hub-lease", "ClusterRole", "one-lease",
             SA("gpufed-system", "gpufed-hub")));
    put(st, "rolebindings", "gpufed-system",
        BIND("runner", "ClusterRole", "batch-all", SA_NO_NS("runner")));
    put(st, "clusterrolebindings", "",
        BIND("dave", "ClusterRole", "any-status", USER("dave")));
    put(st, "clusterrolebindings", "",
        BIND("erin", "ClusterRole", "metrics", USER("erin")));
    /* Invalid: a ClusterRoleBinding may not reference a Role. */
    put(st, "clusterrolebindings", "",
        BIND("frank", "Role", "jobs-edit", USER("frank")));
    /* A RoleBinding never grants non-resource URLs. */
    put(st, "rolebindings", "team-a",
        BIND("gina", "ClusterRole", "metrics", USER("gina")));
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    f->baseline = gf_alloc_live();
    gf_clock_init_manual(&f->clk, 1000, 1700000000000);
    struct gf_ks_store_opts o = {
        .clock = &f->clk, .cluster = "t", .uid_seed = 7};
    f->st = gf_ks_store_new(&o);
    reg(f->st, "clusterroles", "ClusterRole", false);
    reg(f->st, "roles", "Role", true);
    reg(f->st, "clusterrolebindings", "ClusterRoleBinding", false);
    reg(f->st, "rolebindings", "RoleBinding", true);
    f->rbac = gf_ks_rbac_new(f->st);
    load_fixture(f->st);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    gf_ks_rbac_free(f->rbac);
    gf_ks_store_free(f->st);
    gf_clock_close(&f->clk);
    assert_int_equal(gf_alloc_live(), f->baseline);
    free(f);
    return 0;
}

struct rcase {
    const char *title;
    const char *user;
    const char *group; /* one extra group besides system:authenticated */
    const char *verb, *api_group, *resource, *sub, *ns, *name, *path;
    bool allowed;
};

#define SAU(n) "system:serviceaccount:gpufed-system:" n
#define KQ "kueue.x-k8s.io"

static const struct rcase cases[] = {
    {"cluster binding grants in every namespace", "alice", NULL, "list", KQ,
     "workloads", "", "ns1", "", "", true},
    {"cluster binding grants at cluster scope", "alice", NULL, "watch", KQ,
     "workloads", "", "", "", "", true},
    {"verb not in rule", "alice", NULL, "delete", KQ, "workloads", "", "ns1",
     "w", "", false},
    {"resource rule does not cover its subresource", "alice", NULL, "get", KQ,
     "workloads", "status", "ns1", "w", "", false},
    {"api group must match", "alice", NULL, "list", "", "workloads", "", "ns1",
     "", "", false},
    {"rolebinding grants subresource in its namespace", "bob", NULL, "patch",
     KQ, "workloads", "status", "team-a", "w", "", true},
    {"rolebinding does not grant in another namespace", "bob", NULL, "patch",
     KQ, "workloads", "status", "team-b", "w", "", false},
    {"rolebinding does not grant at cluster scope", "bob", NULL, "patch", KQ,
     "workloads", "status", "", "w", "", false},
    {"subresource rule does not cover the main resource", "bob", NULL, "patch",
     KQ, "workloads", "", "team-a", "w", "", false},
    {"group subject through Role", "carol", "team-a-devs", "create", "batch",
     "jobs", "", "team-a", "", "", true},
    {"Role only in its namespace", "carol", "team-a-devs", "create", "batch",
     "jobs", "", "team-b", "", "", false},
    {"Role verb mismatch", "carol", "team-a-devs", "get", "batch", "jobs", "",
     "team-a", "j", "", false},
    {"user not in the bound group", "carol", NULL, "create", "batch", "jobs",
     "", "team-a", "", "", false},
    {"resourceNames grants the named object", SAU("gpufed-hub"), NULL, "get",
     "coordination.k8s.io", "leases", "", "member-ns", "gpufed-heartbeat", "",
     true},
    {"resourceNames denies other names", SAU("gpufed-hub"), NULL, "get",
     "coordination.k8s.io", "leases", "", "member-ns", "other", "", false},
    {"resourceNames never grants list", SAU("gpufed-hub"), NULL, "list",
     "coordination.k8s.io", "leases", "", "member-ns", "", "", false},
    {"resourceNames never grants create", SAU("gpufed-hub"), NULL, "create",
     "coordination.k8s.io", "leases", "", "member-ns", "", "", false},
    {"ServiceAccount namespace defaults to the binding's", SAU("runner"), NULL,
     "delete", "batch", "jobs", "", "gpufed-system", "j", "", true},
    {"resources * and verbs * in group", SAU("runner"), NULL,
     "deletecollection", "batch", "cronjobs", "", "gpufed-system", "", "",
     true},
    {"resources * covers subresources", SAU("runner"), NULL, "update", "batch",
     "jobs", "status", "gpufed-system", "j", "", true},
    {"same ServiceAccount name in another namespace",
     "system:serviceaccount:other:runner", NULL, "delete", "batch", "jobs", "",
     "gpufed-system", "j", "", false},
    {"*/status grants status of anything", "dave", NULL, "get", KQ,
     "clusterqueues", "status", "", "cq", "", true},
    {"*/status does not grant the resource", "dave", NULL, "get", KQ,
     "clusterqueues", "", "", "cq", "", false},
    {"*/status does not grant other subresources", "dave", NULL, "get", "",
     "pods", "log", "ns", "p", "", false},
    {"nonResourceURL exact", "erin", NULL, "get", "", NULL, "", "", "",
     "/metrics", true},
    {"nonResourceURL prefix", "erin", NULL, "get", "", NULL, "", "", "",
     "/debug/pprof/heap", true},
    {"nonResourceURL prefix needs the slash", "erin", NULL, "get", "", NULL, "",
     "", "", "/debug", false},
    {"nonResourceURL verb", "erin", NULL, "post", "", NULL, "", "", "",
     "/metrics", false},
    {"nonResourceURLs do not grant resources", "erin", NULL, "get", "",
     "metrics", "", "ns", "", "", false},
    {"ClusterRoleBinding to a Role grants nothing", "frank", NULL, "create",
     "batch", "jobs", "", "team-a", "", "", false},
    {"RoleBinding never grants paths", "gina", NULL, "get", "", NULL, "", "",
     "", "/metrics", false},
    {"system:masters is allowed everything", "root", "system:masters", "delete",
     "anything.io", "things", "", "ns", "x", "", true},
    {"system:masters is allowed any path", "root", "system:masters", "get", "",
     NULL, "", "", "", "/secret/path", true},
    {"nobody is allowed nothing", "nobody", NULL, "get", "", "pods", "", "ns",
     "p", "", false},
};

static int run_case(struct fx *f, const struct rcase *c,
                    struct gf_ks_status *err)
{
    const char *groups[3] = {"system:authenticated", c->group, NULL};
    struct gf_ks_authz_attrs a = {
        .user = c->user,
        .groups = groups,
        .verb = c->verb,
        .api_group = c->api_group,
        .api_version = "v1",
        .resource = c->resource,
        .subresource = c->sub,
        .ns = c->ns,
        .name = c->name,
        .path = c->path,
    };
    return gf_ks_rbac_authorize(f->rbac, &a, err);
}

static void test_table(void **state)
{
    struct fx *f = *state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct gf_ks_status err;
        gf_ks_status_init(&err);
        int rc = run_case(f, &cases[i], &err);
        if (cases[i].allowed && rc != 0)
            fail_msg("case '%s': denied: %s", cases[i].title, err.message);
        if (!cases[i].allowed && rc != GF_EFORBIDDEN)
            fail_msg("case '%s': allowed (rc %d)", cases[i].title, rc);
        if (!cases[i].allowed) {
            assert_int_equal(err.code, 403);
            assert_string_equal(err.reason, "Forbidden");
        }
        gf_ks_status_clear(&err);
    }
    /* Everything above was answered from one compiled copy. */
    assert_int_equal(gf_ks_rbac_rebuilds(f->rbac), 1);
}

struct mcase {
    struct rcase req;
    const char *message;
};

static const struct mcase messages[] = {
    {{"", "nobody", NULL, "list", KQ, "workloads", "", "ns", "", "", false},
     "workloads.kueue.x-k8s.io is forbidden: User \"nobody\" cannot list "
     "resource \"workloads\" in API group \"kueue.x-k8s.io\" in the namespace "
     "\"ns\""},
    {{"", "alice", NULL, "get", KQ, "workloads", "status", "ns", "w1", "",
      false},
     "workloads.kueue.x-k8s.io \"w1\" is forbidden: User \"alice\" cannot get "
     "resource \"workloads/status\" in API group \"kueue.x-k8s.io\" in the "
     "namespace \"ns\""},
    {{"", "nobody", NULL, "list", "", "nodes", "", "", "", "", false},
     "nodes is forbidden: User \"nobody\" cannot list resource \"nodes\" in "
     "API group \"\" at the cluster scope"},
    {{"", "nobody", NULL, "get", "", NULL, "", "", "", "/metrics", false},
     "forbidden: User \"nobody\" cannot get path \"/metrics\""},
};

static void test_messages_match_api_server(void **state)
{
    struct fx *f = *state;
    for (size_t i = 0; i < sizeof(messages) / sizeof(messages[0]); i++) {
        struct gf_ks_status err;
        gf_ks_status_init(&err);
        assert_int_equal(run_case(f, &messages[i].req, &err), GF_EFORBIDDEN);
        assert_string_equal(err.message, messages[i].message);
        gf_ks_status_clear(&err);
    }
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    run_case(f, &messages[1].req, &err);
    assert_string_equal(err.name, "w1");
    assert_string_equal(err.group, KQ);
    assert_string_equal(err.kind, "workloads");
    gf_ks_status_clear(&err);
}

static void test_cache_follows_store(void **state)
{
    struct fx *f = *state;
    struct rcase c = {"", "zed", NULL, "list", "",   "configmaps",
                      "", "ns",  "",   "",     false};
    assert_int_equal(run_case(f, &c, NULL), GF_EFORBIDDEN);
    unsigned long before = gf_ks_rbac_rebuilds(f->rbac);
    put(f->st, "clusterroles", "",
        CROLE("cm", RULE("[\"\"]", "[\"configmaps\"]", "[\"list\"]")));
    put(f->st, "rolebindings", "ns",
        BIND("zed", "ClusterRole", "cm", USER("zed")));
    assert_int_equal(run_case(f, &c, NULL), 0);
    assert_int_equal(gf_ks_rbac_rebuilds(f->rbac), before + 1);
    c.ns = "other";
    assert_int_equal(run_case(f, &c, NULL), GF_EFORBIDDEN);

    /* Deleting the binding takes the grant away. */
    const struct gf_ks_rtype *t = gf_ks_store_type(f->st, G, "rolebindings");
    struct gf_ks_delete_opts d = {0};
    assert_int_equal(
        gf_ks_store_delete(f->st, t, "ns", "zed", &d, NULL, NULL, NULL), 0);
    c.ns = "ns";
    assert_int_equal(run_case(f, &c, NULL), GF_EFORBIDDEN);
}

static void test_aggregated_cluster_roles(void **state)
{
    struct fx *f = *state;
    put(f->st, "clusterroles", "",
        "{\"metadata\":{\"name\":\"agg-view\"},\"aggregationRule\":{"
        "\"clusterRoleSelectors\":[{\"matchLabels\":{\"ex.io/view\":"
        "\"true\"}}]},\"rules\":[]}");
    put(f->st, "clusterroles", "",
        "{\"metadata\":{\"name\":\"cm-view\",\"labels\":{\"ex.io/view\":"
        "\"true\"}},\"rules\":[" RULE("[\"\"]", "[\"configmaps\"]",
                                      "[\"list\"]") "]}");
    put(f->st, "clusterroles", "",
        "{\"metadata\":{\"name\":\"secret-edit\",\"labels\":{"
        "\"ex.io/view\":\"false\"}},\"rules\":[" RULE("[\"\"]", "[\"secrets\"]",
                                                      "[\"list\"]") "]}");
    put(f->st, "clusterrolebindings", "",
        BIND("vic", "ClusterRole", "agg-view", USER("vic")));
    struct rcase cm = {"", "vic", NULL, "list", "",   "configmaps",
                       "", "ns",  "",   "",     false};
    struct rcase sec = {"", "vic", NULL, "list", "",   "secrets",
                        "", "ns",  "",   "",     false};
    struct rcase pods = {"", "vic", NULL, "list", "",   "pods",
                         "", "ns",  "",   "",     false};
    assert_int_equal(run_case(f, &cm, NULL), 0);
    /* A label with another value is not picked. */
    assert_int_equal(run_case(f, &sec, NULL), GF_EFORBIDDEN);
    assert_int_equal(run_case(f, &pods, NULL), GF_EFORBIDDEN);
    /* A role labelled later joins the aggregate. */
    put(f->st, "clusterroles", "",
        "{\"metadata\":{\"name\":\"pod-view\",\"labels\":{"
        "\"ex.io/view\":\"true\",\"other\":\"x\"}},\"rules\":[" RULE(
            "[\"\"]", "[\"pods\"]", "[\"list\"]") "]}");
    assert_int_equal(run_case(f, &pods, NULL), 0);
    /* A namespaced Role never joins, whatever its labels. */
    put(f->st, "roles", "ns",
        "{\"metadata\":{\"name\":\"sec\",\"labels\":{\"ex.io/view\":"
        "\"true\"}},\"rules\":[" RULE("[\"\"]", "[\"secrets\"]",
                                      "[\"list\"]") "]}");
    assert_int_equal(run_case(f, &sec, NULL), GF_EFORBIDDEN);
}

static void test_bootstrap_allows_discovery(void **state)
{
    struct fx *f = *state;
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    assert_int_equal(gf_ks_rbac_bootstrap(f->st, &err), 0);
    struct rcase c = {"", "nobody", NULL, "get",   "",   NULL,
                      "", "",       "",   "/apis", false};
    assert_int_equal(run_case(f, &c, NULL), 0);
    c.path = "/apis/kueue.x-k8s.io/v1beta2";
    assert_int_equal(run_case(f, &c, NULL), 0);
    c.path = "/version";
    assert_int_equal(run_case(f, &c, NULL), 0);
    c.path = "/metrics";
    assert_int_equal(run_case(f, &c, NULL), GF_EFORBIDDEN);
    /* Anyone may ask what it is allowed to do. */
    struct rcase ssar = {"",
                         "nobody",
                         NULL,
                         "create",
                         "authorization.k8s.io",
                         "selfsubjectaccessreviews",
                         "",
                         "",
                         "",
                         "",
                         false};
    assert_int_equal(run_case(f, &ssar, NULL), 0);
    /* Discovery does not open resources. */
    struct rcase r = {"", "nobody", NULL, "list", "",   "pods",
                      "", "",       "",   "",     false};
    assert_int_equal(run_case(f, &r, NULL), GF_EFORBIDDEN);
    /* Bootstrapping twice fails on the existing objects, changing nothing. */
    assert_int_not_equal(gf_ks_rbac_bootstrap(f->st, &err), 0);
    assert_int_equal(err.code, 409);
    assert_string_equal(err.reason, "AlreadyExists");
    gf_ks_status_clear(&err);
}

int main(void)
{
    /* cJSON must allocate through gf_malloc: the store frees with gf_free. */
    if (gf_kube_global_init() != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_messages_match_api_server, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cache_follows_store, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_aggregated_cluster_roles, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bootstrap_allows_discovery, setup,
                                        teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    gf_kube_global_cleanup();
    return failed;
}
