/*
 * Tests for the name a request is authorized for, as kube-apiserver's
 * RequestInfo derives it: a list (or watch) without a name in its path
 * whose fieldSelector requires metadata.name=X is checked as a request
 * for X, so a Role's resourceNames can grant it (the hub's watch of the
 * one ConfigMap gpufed-drain, manifests/hub/rbac.yaml); without such a
 * selector, or with another name, it is a list of everything and
 * refused.
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
#define CMS "/api/v1/namespaces/gpufed-system/configmaps"

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
static const char *const hub_groups[] = {"system:authenticated", NULL};

static int call(struct ks_apitk_cluster *k, const char *method,
                const char *target, const char *body)
{
    int code = 0;
    cJSON *j = ks_apitk_json(k, method, target, NULL, body, &code);
    cJSON_Delete(j);
    return code;
}

static void as_admin(struct ks_apitk_cluster *k, const char *method,
                     const char *target, const char *body)
{
    k->user = "admin";
    k->groups = admin_groups;
    assert_int_equal(call(k, method, target, body), 201);
}

static void test_list_by_name_is_checked_against_resource_names(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    struct authz z;
    struct gf_ks_api_opts o = {.authorize = authorize, .authorize_data = &z};
    ks_apitk_start(&k, &o);
    z.rbac = gf_ks_rbac_new(gf_ks_api_store(k.api));
    as_admin(&k, "POST", "/api/v1/namespaces",
             "{\"metadata\":{\"name\":\"gpufed-system\"}}");
    as_admin(&k, "POST", CMS,
             "{\"metadata\":{\"name\":\"gpufed-drain\"},\"data\":{\"west\":"
             "\"2026-12-06T08:00:00Z\"}}");
    as_admin(&k, "POST", CMS, "{\"metadata\":{\"name\":\"other\"}}");
    as_admin(&k, "POST", RBAC "/namespaces/gpufed-system/roles",
             "{\"metadata\":{\"name\":\"hub\"},\"rules\":[{\"apiGroups\":"
             "[\"\"],\"resources\":[\"configmaps\"],\"resourceNames\":["
             "\"gpufed-drain\"],\"verbs\":[\"get\",\"list\",\"watch\"]}]}");
    as_admin(&k, "POST", RBAC "/namespaces/gpufed-system/rolebindings",
             "{\"metadata\":{\"name\":\"hub\"},\"roleRef\":{\"apiGroup\":"
             "\"rbac.authorization.k8s.io\",\"kind\":\"Role\",\"name\":"
             "\"hub\"},\"subjects\":[{\"kind\":\"User\",\"name\":\"hub\"}]}");
    k.user = "hub";
    k.groups = hub_groups;
    assert_int_equal(call(&k, "GET", CMS "/gpufed-drain", NULL), 200);
    assert_int_equal(call(&k, "GET", CMS "/other", NULL), 403);
    /* A list is a list of everything unless the selector names one. */
    assert_int_equal(call(&k, "GET", CMS, NULL), 403);
    int code = 0;
    cJSON *j = ks_apitk_json(&k, "GET",
                             CMS "?fieldSelector=metadata.name%3Dgpufed-drain",
                             NULL, NULL, &code);
    assert_int_equal(code, 200);
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(j, "items");
    assert_int_equal(cJSON_GetArraySize(items), 1);
    assert_string_equal(
        gf_json_str(cJSON_GetArrayItem(items, 0), "metadata.name"),
        "gpufed-drain");
    cJSON_Delete(j);
    assert_int_equal(call(&k, "GET",
                          CMS "?fieldSelector=metadata.name%3D%3Dgpufed-drain",
                          NULL),
                     200);
    assert_int_equal(call(&k, "GET",
                          CMS "?fieldSelector=metadata.namespace%3D"
                              "gpufed-system%2Cmetadata.name%3Dgpufed-drain",
                          NULL),
                     200);
    assert_int_equal(
        call(&k, "GET", CMS "?fieldSelector=metadata.name%3Dother", NULL), 403);
    assert_int_equal(
        call(&k, "GET", CMS "?fieldSelector=metadata.name!%3Dother", NULL),
        403);
    /* A selector on another field names nothing. */
    assert_int_equal(
        call(&k, "GET", CMS "?fieldSelector=metadata.namespace%3Dgpufed-system",
             NULL),
        403);
    gf_ks_rbac_free(z.rbac);
    ks_apitk_stop(&k);
}

int main(void)
{
    gf_kube_global_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_by_name_is_checked_against_resource_names),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_kube_global_cleanup();
    return rc;
}
