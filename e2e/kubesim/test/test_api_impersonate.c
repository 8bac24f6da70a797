/*
 * Tests for impersonation (Impersonate-User, Impersonate-Group: kubectl
 * --as, --as-group) with the RBAC authorizer, and the messages a real
 * kube-apiserver v1.28 writes: a user without the impersonate verb gets
 * 403 naming the user (or the service account in its namespace, or the
 * group); a user with it runs the request as the impersonated identity,
 * whose own RBAC then decides (and whose SelfSubjectAccessReview it is);
 * groups without a user are the server's plain-text 500.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/json.h"
#include "e2e/kubesim/rbac.h"
#include "e2e/kubesim/test/api_testkit.h"
#include "kubeclient/global.h"

#define RBAC "/apis/rbac.authorization.k8s.io/v1"
#define CMS "/api/v1/namespaces/default/configmaps"

static const char *or_null(const char *s)
{
    return s != NULL ? s : "(null)";
}
#define str(j, path) or_null(gf_json_str(j, path))

struct authz {
    struct gf_ks_rbac *rbac;
};

static int authorize(void *data, const struct gf_ks_authz_attrs *a,
                     struct gf_ks_status *err)
{
    struct authz *z = data;
    return gf_ks_rbac_authorize(z->rbac, a, err);
}

static const char *const admin_groups[] = {"system:masters",
                                           "system:authenticated", NULL};
static const char *const bob_groups[] = {"system:authenticated", NULL};

static void as_admin(struct ks_apitk_cluster *k, const char *method,
                     const char *target, const char *body)
{
    const char *u = k->user, *au = k->as_user;
    const char *const *g = k->groups;
    k->user = "admin";
    k->groups = admin_groups;
    k->as_user = NULL;
    int code = 0;
    cJSON *j = ks_apitk_json(k, method, target, NULL, body, &code);
    if (code != 201)
        fail_msg("%s %s: %d %s", method, target, code, str(j, "message"));
    cJSON_Delete(j);
    k->user = u;
    k->groups = g;
    k->as_user = au;
}

static void setup(struct ks_apitk_cluster *k, struct authz *z)
{
    struct gf_ks_api_opts o = {.authorize = authorize, .authorize_data = z};
    ks_apitk_start(k, &o);
    z->rbac = gf_ks_rbac_new(gf_ks_api_store(k->api));
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    /* system:basic-user and friends, as every real cluster has. */
    assert_int_equal(gf_ks_rbac_bootstrap(gf_ks_api_store(k->api), &err), 0);
    gf_ks_status_clear(&err);
    /* alice may read ConfigMaps in default, nothing else. */
    as_admin(k, "POST", RBAC "/namespaces/default/roles",
             "{\"metadata\":{\"name\":\"cm-reader\"},\"rules\":[{"
             "\"apiGroups\":[\"\"],\"resources\":[\"configmaps\"],\"verbs\":"
             "[\"get\",\"list\"]}]}");
    as_admin(k, "POST", RBAC "/namespaces/default/rolebindings",
             "{\"metadata\":{\"name\":\"alice\"},\"roleRef\":{\"apiGroup\":"
             "\"rbac.authorization.k8s.io\",\"kind\":\"Role\",\"name\":"
             "\"cm-reader\"},\"subjects\":[{\"kind\":\"User\",\"name\":"
             "\"alice\"}]}");
    k->user = "bob";
    k->groups = bob_groups;
}

static void teardown(struct ks_apitk_cluster *k, struct authz *z)
{
    gf_ks_rbac_free(z->rbac);
    ks_apitk_stop(k);
}

static void expect(struct ks_apitk_cluster *k, const char *target, int code,
                   const char *msg)
{
    int got = 0;
    cJSON *j = ks_apitk_json(k, "GET", target, NULL, NULL, &got);
    if (got != code)
        fail_msg("GET %s: %d, want %d: %s", target, got, code,
                 str(j, "message"));
    if (msg != NULL)
        assert_string_equal(str(j, "message"), msg);
    cJSON_Delete(j);
}

static void test_refused_without_the_verb(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    struct authz z;
    setup(&k, &z);
    k.as_user = "alice";
    expect(&k, CMS, 403,
           "users \"alice\" is forbidden: User \"bob\" cannot impersonate "
           "resource \"users\" in API group \"\" at the cluster scope");
    k.as_user = "system:serviceaccount:t1:robot";
    expect(&k, CMS, 403,
           "serviceaccounts \"robot\" is forbidden: User \"bob\" cannot "
           "impersonate resource \"serviceaccounts\" in API group \"\" in "
           "the namespace \"t1\"");
    teardown(&k, &z);
}

static void test_runs_as_the_impersonated_user(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    struct authz z;
    setup(&k, &z);
    as_admin(&k, "POST", RBAC "/clusterroles",
             "{\"metadata\":{\"name\":\"impersonate-alice\"},\"rules\":[{"
             "\"apiGroups\":[\"\"],\"resources\":[\"users\"],"
             "\"resourceNames\":[\"alice\"],\"verbs\":[\"impersonate\"]}]}");
    as_admin(&k, "POST", RBAC "/clusterrolebindings",
             "{\"metadata\":{\"name\":\"bob\"},\"roleRef\":{\"apiGroup\":"
             "\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\","
             "\"name\":\"impersonate-alice\"},\"subjects\":[{\"kind\":"
             "\"User\",\"name\":\"bob\"}]}");
    /* bob himself may not read ConfigMaps; as alice he may. */
    expect(&k, CMS, 403, NULL);
    k.as_user = "alice";
    expect(&k, CMS, 200, NULL);
    expect(&k, "/api/v1/namespaces/default/secrets", 403,
           "secrets is forbidden: User \"alice\" cannot list resource "
           "\"secrets\" in API group \"\" in the namespace \"default\"");
    /* Only alice: another user, or a group, is refused. */
    k.as_user = "carol";
    expect(&k, CMS, 403,
           "users \"carol\" is forbidden: User \"bob\" cannot impersonate "
           "resource \"users\" in API group \"\" at the cluster scope");
    static const char *const devs[] = {"devs", NULL};
    k.as_user = "alice";
    k.as_groups = devs;
    expect(&k, CMS, 403,
           "groups \"devs\" is forbidden: User \"bob\" cannot impersonate "
           "resource \"groups\" in API group \"\" at the cluster scope");
    k.as_groups = NULL;
    /* A SelfSubjectAccessReview answers for alice. */
    int code = 0;
    cJSON *j = ks_apitk_json(
        &k, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        NULL,
        "{\"spec\":{\"resourceAttributes\":{\"namespace\":\"default\","
        "\"verb\":\"list\",\"resource\":\"configmaps\"}}}",
        &code);
    assert_int_equal(code, 201);
    assert_true(cJSON_IsTrue(gf_json_path(j, "status.allowed")));
    cJSON_Delete(j);
    /* Denied by RBAC: no reason, as the server answers (kubectl auth can-i
     * prints a bare "no"). */
    j = ks_apitk_json(
        &k, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        NULL,
        "{\"spec\":{\"resourceAttributes\":{\"namespace\":\"default\","
        "\"verb\":\"list\",\"resource\":\"secrets\"}}}",
        &code);
    assert_int_equal(code, 201);
    assert_true(cJSON_IsFalse(gf_json_path(j, "status.allowed")));
    assert_null(gf_json_path(j, "status.reason"));
    cJSON_Delete(j);
    teardown(&k, &z);
}

static void test_groups_without_user(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    struct authz z;
    setup(&k, &z);
    static const char *const devs[] = {"devs", "ops", NULL};
    k.as_groups = devs;
    struct ks_apitk_resp r;
    ks_apitk_resp_init(&r);
    assert_int_equal(ks_apitk_do(&k, &r, "GET", CMS, NULL, NULL, NULL), 500);
    assert_string_equal(r.ctype, "text/plain; charset=utf-8");
    assert_string_equal(gf_buf_cstr(&r.body),
                        "Internal Server Error: \"" CMS "\": requested "
                        "[{Group  devs    } {Group  ops    }] without "
                        "impersonating a user\n");
    ks_apitk_resp_free(&r);
    teardown(&k, &z);
}

int main(void)
{
    gf_kube_global_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused_without_the_verb),
        cmocka_unit_test(test_runs_as_the_impersonated_user),
        cmocka_unit_test(test_groups_without_user),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_kube_global_cleanup();
    return rc;
}
