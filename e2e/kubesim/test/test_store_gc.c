/*
 * Tests for kubesim/store's garbage collection (store_gc.c): background,
 * foreground and orphan propagation through ownerReferences, and
 * namespace deletion.
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
#include "common/json.h"
#include "e2e/kubesim/select.h"
#include "e2e/kubesim/store.h"
#include "e2e/kubesim/test/store_testkit.h"
#include "kubeclient/global.h"

static void test_gc_background_and_shared_owner(void **state)
{
    (void)state;
    struct ks_sttk_fx f;
    ks_sttk_init(&f, 0);
    ks_sttk_mk_ns(&f, "a");
    struct ks_sttk_olog log = {0};
    struct ks_sttk_obs ob = {.log = &log, .tag = "o"};
    gf_ks_store_observe(f.st, NULL, ks_sttk_obs_cb, &ob);
    struct gf_ks_obj *a =
        ks_sttk_mk(&f, f.cm, "a", "{\"metadata\":{\"name\":\"a\"}}");
    char ra[256], rb[256], both[600];
    ks_sttk_owner_ref(ra, sizeof(ra), "ConfigMap", a);
    struct gf_ks_obj *b =
        ks_sttk_mk(&f, f.cm, "a", "{\"metadata\":{\"name\":\"b\"}}");
    ks_sttk_owner_ref(rb, sizeof(rb), "ConfigMap", b);
    snprintf(both, sizeof(both), "%s,%s", ra, rb);
    ks_sttk_mk_owned(&f, "a1", ra);
    struct gf_ks_obj *a2 = ks_sttk_mk_owned(&f, "a2", ra);
    char r2[256];
    ks_sttk_owner_ref(r2, sizeof(r2), "ConfigMap", a2);
    ks_sttk_mk_owned(&f, "a2x", r2); /* a chain: a -> a2 -> a2x */
    ks_sttk_mk_owned(&f, "ab", both);
    int n = 0;
    bool gone = false;
    assert_int_equal(
        ks_sttk_del(&f, f.cm, "a", "a", GF_KS_PROP_BACKGROUND, &gone), 0);
    assert_true(gone);
    (void)n;
    assert_null(gf_ks_store_get(f.st, f.cm, "a", "a1"));
    assert_null(gf_ks_store_get(f.st, f.cm, "a", "a2"));
    assert_null(gf_ks_store_get(f.st, f.cm, "a", "a2x"));
    /* ab has another live owner: only the reference to a goes. */
    struct gf_ks_obj *ab = gf_ks_store_get(f.st, f.cm, "a", "ab");
    assert_non_null(ab);
    cJSON *j = gf_ks_obj_parse(ab);
    const cJSON *refs = gf_json_path(j, "metadata.ownerReferences");
    assert_int_equal(cJSON_GetArraySize(refs), 1);
    assert_string_equal(gf_json_str(cJSON_GetArrayItem(refs, 0), "name"), "b");
    cJSON_Delete(j);
    ks_sttk_before(&log, "o DELETED ConfigMap a/a", "o DELETED ConfigMap a/a1");
    ks_sttk_before(&log, "o DELETED ConfigMap a/a2",
                   "o DELETED ConfigMap a/a2x");
    ks_sttk_before(&log, "o DELETED ConfigMap a/a",
                   "o MODIFIED ConfigMap a/ab");
    /* Now b goes and takes ab with it. */
    assert_int_equal(ks_sttk_del(&f, f.cm, "a", "b", GF_KS_PROP_DEFAULT, &gone),
                     0);
    assert_null(gf_ks_store_get(f.st, f.cm, "a", "ab"));
    assert_int_equal(gf_ks_store_count(f.st, f.cm), 0);
    ks_sttk_done(&f);
}

static void test_gc_foreground_chain(void **state)
{
    (void)state;
    struct ks_sttk_fx f;
    ks_sttk_init(&f, 0);
    ks_sttk_mk_ns(&f, "a");
    struct ks_sttk_olog log = {0};
    struct ks_sttk_obs ob = {.log = &log, .tag = "o"};
    gf_ks_store_observe(f.st, NULL, ks_sttk_obs_cb, &ob);
    char r[256];
    struct gf_ks_obj *a =
        ks_sttk_mk(&f, f.cm, "a", "{\"metadata\":{\"name\":\"a\"}}");
    ks_sttk_owner_ref(r, sizeof(r), "ConfigMap", a);
    struct gf_ks_obj *b = ks_sttk_mk_owned(&f, "b", r);
    ks_sttk_owner_ref(r, sizeof(r), "ConfigMap", b);
    ks_sttk_mk(
        &f, f.cm, "a",
        "{\"metadata\":{\"name\":\"c\",\"finalizers\":[\"x/hold\"],"
        "\"ownerReferences\":[{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\","
        "\"name\":\"b\",\"uid\":\"placeholder\"}]}}");
    /* Point c at b for real (an update relinks the owner index). */
    char body[600];
    snprintf(body, sizeof(body),
             "{\"metadata\":{\"finalizers\":[\"x/hold\"],"
             "\"ownerReferences\":[%s]}}",
             r);
    assert_int_equal(
        ks_sttk_upd(&f, f.cm, "a", "c", body, GF_KS_MAIN, NULL, NULL), 0);
    log.n = 0;
    bool gone = true;
    assert_int_equal(
        ks_sttk_del(&f, f.cm, "a", "a", GF_KS_PROP_FOREGROUND, &gone), 0);
    assert_false(gone);
    /* a and b wait with foregroundDeletion; c waits on its finalizer. */
    struct gf_ks_obj *oa = gf_ks_store_get(f.st, f.cm, "a", "a");
    struct gf_ks_obj *ob2 = gf_ks_store_get(f.st, f.cm, "a", "b");
    struct gf_ks_obj *oc = gf_ks_store_get(f.st, f.cm, "a", "c");
    assert_non_null(oa);
    assert_non_null(ob2);
    assert_non_null(oc);
    cJSON *j = gf_ks_obj_parse(oa);
    const cJSON *fin = GF_JSON_AT(j, "metadata", "finalizers");
    assert_int_equal(cJSON_GetArraySize(fin), 1);
    assert_string_equal(gf_json_as_str(cJSON_GetArrayItem(fin, 0)),
                        "foregroundDeletion");
    cJSON_Delete(j);
    assert_true(ks_sttk_has(ob2, "metadata.deletionTimestamp"));
    assert_true(ks_sttk_has(oc, "metadata.deletionTimestamp"));
    /* Releasing c lets the chain finish, dependents first. */
    assert_int_equal(ks_sttk_upd(&f, f.cm, "a", "c", "{\"metadata\":{}}",
                                 GF_KS_MAIN, NULL, NULL),
                     0);
    assert_int_equal(gf_ks_store_count(f.st, f.cm), 0);
    ks_sttk_before(&log, "o MODIFIED ConfigMap a/a",
                   "o MODIFIED ConfigMap a/b");
    ks_sttk_before(&log, "o DELETED ConfigMap a/c", "o DELETED ConfigMap a/b");
    ks_sttk_before(&log, "o DELETED ConfigMap a/b", "o DELETED ConfigMap a/a");
    ks_sttk_done(&f);
}

static bool count_cb(void *data, struct gf_ks_obj *o)
{
    (void)o;
    (*(int *)data)++;
    return true;
}

static void test_gc_orphan(void **state)
{
    (void)state;
    struct ks_sttk_fx f;
    ks_sttk_init(&f, 0);
    ks_sttk_mk_ns(&f, "a");
    /* A Job's default propagation is orphan (its legacy default). */
    struct gf_ks_obj *job = ks_sttk_mk(
        &f, f.job, "a", "{\"metadata\":{\"name\":\"j\"},\"spec\":{}}");
    char r[256];
    ks_sttk_owner_ref(r, sizeof(r), "Job", job);
    ks_sttk_mk_owned(&f, "p1", r);
    struct ks_sttk_olog log = {0};
    struct ks_sttk_obs ob = {.log = &log, .tag = "o"};
    gf_ks_store_observe(f.st, f.job, ks_sttk_obs_cb, &ob);
    bool gone = true;
    assert_int_equal(
        ks_sttk_del(&f, f.job, "a", "j", GF_KS_PROP_DEFAULT, &gone), 0);
    /* As the API server does, the delete marks the Job with the orphan
     * finalizer; the collector orphans its dependents, then removes it. */
    assert_false(gone);
    assert_null(gf_ks_store_get(f.st, f.job, "a", "j"));
    ks_sttk_before(&log, "o MODIFIED Job a/j", "o DELETED Job a/j");
    struct gf_ks_obj *p1 = gf_ks_store_get(f.st, f.cm, "a", "p1");
    assert_non_null(p1);
    assert_false(ks_sttk_has(p1, "metadata.ownerReferences"));
    /* Explicit orphan on a background type. */
    struct gf_ks_obj *c =
        ks_sttk_mk(&f, f.cm, "a", "{\"metadata\":{\"name\":\"c\"}}");
    ks_sttk_owner_ref(r, sizeof(r), "ConfigMap", c);
    ks_sttk_mk_owned(&f, "p2", r);
    assert_int_equal(ks_sttk_del(&f, f.cm, "a", "c", GF_KS_PROP_ORPHAN, &gone),
                     0);
    assert_non_null(gf_ks_store_get(f.st, f.cm, "a", "p2"));
    int count = 0;
    gf_ks_store_dependents(f.st, ks_sttk_field(c, "metadata.uid"), count_cb,
                           &count);
    assert_int_equal(count, 0);
    /* The index sees live dependents. */
    struct gf_ks_obj *d =
        ks_sttk_mk(&f, f.cm, "a", "{\"metadata\":{\"name\":\"d\"}}");
    ks_sttk_owner_ref(r, sizeof(r), "ConfigMap", d);
    ks_sttk_mk_owned(&f, "p3", r);
    ks_sttk_mk_owned(&f, "p4", r);
    gf_ks_store_dependents(f.st, ks_sttk_field(d, "metadata.uid"), count_cb,
                           &count);
    assert_int_equal(count, 2);
    ks_sttk_done(&f);
}

static void test_namespace_deletion(void **state)
{
    (void)state;
    struct ks_sttk_fx f;
    ks_sttk_init(&f, 0);
    ks_sttk_mk_ns(&f, "a");
    ks_sttk_mk_ns(&f, "keep");
    struct gf_ks_obj *n = gf_ks_store_get(f.st, f.ns, NULL, "a");
    assert_string_equal(ks_sttk_field(n, "status.phase"), "Active");
    /* The API server labels every namespace with its name. */
    assert_string_equal(ks_sttk_label(n, "kubernetes.io/metadata.name"), "a");
    ks_sttk_mk(&f, f.cm, "a", "{\"metadata\":{\"name\":\"c\"}}");
    ks_sttk_mk(&f, f.wl, "a",
               "{\"metadata\":{\"name\":\"w\",\"finalizers\":[\"x/hold\"]}}");
    ks_sttk_mk(&f, f.cm, "keep", "{\"metadata\":{\"name\":\"c\"}}");
    bool gone = true;
    assert_int_equal(
        ks_sttk_del(&f, f.ns, NULL, "a", GF_KS_PROP_DEFAULT, &gone), 0);
    assert_false(gone);
    n = gf_ks_store_get(f.st, f.ns, NULL, "a");
    assert_non_null(n);
    assert_string_equal(ks_sttk_field(n, "status.phase"), "Terminating");
    assert_null(gf_ks_store_get(f.st, f.cm, "a", "c"));
    assert_non_null(gf_ks_store_get(f.st, f.wl, "a", "w"));
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    cJSON *j = ks_sttk_js("{\"metadata\":{\"name\":\"late\"}}");
    assert_int_equal(
        gf_ks_store_create(f.st, f.cm, "a", j, GF_KS_MAIN, NULL, &err),
        GF_EFORBIDDEN);
    cJSON_Delete(j);
    assert_int_equal(err.code, 403);
    gf_ks_status_clear(&err);
    /* The last finalizer in the namespace goes: so does the namespace. */
    assert_int_equal(ks_sttk_upd(&f, f.wl, "a", "w", "{\"metadata\":{}}",
                                 GF_KS_MAIN, NULL, NULL),
                     0);
    assert_null(gf_ks_store_get(f.st, f.wl, "a", "w"));
    assert_null(gf_ks_store_get(f.st, f.ns, NULL, "a"));
    assert_non_null(gf_ks_store_get(f.st, f.cm, "keep", "c"));
    ks_sttk_done(&f);
}

/*
 * Foreground deletion ends when no dependent is left, however that
 * happens: a dependent with another live owner only loses the reference,
 * and a dependent may drop its ownerReferences itself.
 */
static void test_gc_foreground_without_deletions(void **state)
{
    (void)state;
    struct ks_sttk_fx f;
    ks_sttk_init(&f, 0);
    ks_sttk_mk_ns(&f, "a");
    char ra[256], rd[256], both[600];
    struct gf_ks_obj *a =
        ks_sttk_mk(&f, f.cm, "a", "{\"metadata\":{\"name\":\"a\"}}");
    ks_sttk_owner_ref(ra, sizeof(ra), "ConfigMap", a);
    struct gf_ks_obj *d =
        ks_sttk_mk(&f, f.cm, "a", "{\"metadata\":{\"name\":\"d\"}}");
    ks_sttk_owner_ref(rd, sizeof(rd), "ConfigMap", d);
    snprintf(both, sizeof(both), "%s,%s", ra, rd);
    ks_sttk_mk_owned(&f, "shared", both);
    bool gone = true;
    assert_int_equal(
        ks_sttk_del(&f, f.cm, "a", "a", GF_KS_PROP_FOREGROUND, &gone), 0);
    assert_false(gone);
    assert_null(gf_ks_store_get(f.st, f.cm, "a", "a"));
    assert_non_null(gf_ks_store_get(f.st, f.cm, "a", "shared"));
    /* A dependent that releases its owner by an update. */
    struct gf_ks_obj *b =
        ks_sttk_mk(&f, f.cm, "a", "{\"metadata\":{\"name\":\"b\"}}");
    char rb[256], body[600];
    ks_sttk_owner_ref(rb, sizeof(rb), "ConfigMap", b);
    snprintf(body, sizeof(body),
             "{\"metadata\":{\"name\":\"held\",\"finalizers\":[\"x/h\"],"
             "\"ownerReferences\":[%s]}}",
             rb);
    ks_sttk_mk(&f, f.cm, "a", body);
    assert_int_equal(
        ks_sttk_del(&f, f.cm, "a", "b", GF_KS_PROP_FOREGROUND, &gone), 0);
    assert_non_null(gf_ks_store_get(f.st, f.cm, "a", "b"));
    /* held is being deleted; dropping its reference frees b. */
    assert_int_equal(ks_sttk_upd(&f, f.cm, "a", "held",
                                 "{\"metadata\":{\"finalizers\":[\"x/h\"]}}",
                                 GF_KS_MAIN, NULL, NULL),
                     0);
    assert_null(gf_ks_store_get(f.st, f.cm, "a", "b"));
    assert_non_null(gf_ks_store_get(f.st, f.cm, "a", "held"));
    ks_sttk_done(&f);
}

int main(void)
{
    gf_kube_global_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gc_background_and_shared_owner),
        cmocka_unit_test(test_gc_foreground_chain),
        cmocka_unit_test(test_gc_orphan),
        cmocka_unit_test(test_gc_foreground_without_deletions),
        cmocka_unit_test(test_namespace_deletion),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_kube_global_cleanup();
    return rc;
}
