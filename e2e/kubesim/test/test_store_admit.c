/*
 * Tests for the store's create mutators (store_admit.c): a mutator sees
 * every create of its type, whoever makes it, with the new uid already
 * set, and its change is in the create's answer, the stored object and
 * the ADDED event alike, at the first resourceVersion (no second write);
 * other types, updates and removed mutators are left alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/json.h"
#include "e2e/kubesim/store.h"
#include "e2e/kubesim/test/store_testkit.h"
#include "kubeclient/global.h"

struct seen {
    int calls;
    char uid[64];
};

static void stamp(void *data, const struct gf_ks_rtype *t, cJSON *obj)
{
    struct seen *s = data;
    s->calls++;
    const char *uid = gf_json_str(obj, "metadata.uid");
    snprintf(s->uid, sizeof(s->uid), "%s", uid != NULL ? uid : "");
    cJSON *spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");
    if (spec == NULL)
        spec = cJSON_AddObjectToObject(obj, "spec");
    cJSON_DeleteItemFromObjectCaseSensitive(spec, "kind");
    cJSON_AddStringToObject(spec, "kind", t->kind);
    cJSON_AddStringToObject(spec, "owner", s->uid);
}

static void test_mutator_in_the_create(void **state)
{
    (void)state;
    struct ks_sttk_fx f;
    ks_sttk_init(&f, 0);
    ks_sttk_mk_ns(&f, "a");
    struct ks_sttk_olog log = {0};
    struct ks_sttk_obs o = {.log = &log, .tag = "o"};
    struct gf_ks_observer *ob =
        gf_ks_store_observe(f.st, f.job, ks_sttk_obs_cb, &o);
    struct seen s = {0};
    struct gf_ks_mutator *m =
        gf_ks_store_mutate(f.st, "batch", "jobs", stamp, &s);
    struct gf_ks_obj *j =
        ks_sttk_mk(&f, f.job, "a", "{\"metadata\":{\"name\":\"j\"}}");
    assert_int_equal(s.calls, 1);
    assert_string_equal(ks_sttk_field(j, "spec.kind"), "Job");
    /* The uid was the store's before the mutator ran. */
    assert_string_equal(ks_sttk_field(j, "spec.owner"),
                        ks_sttk_field(j, "metadata.uid"));
    uint64_t rv = j->rv;
    j = gf_ks_store_get(f.st, f.job, "a", "j");
    assert_int_equal(j->rv, rv);
    assert_string_equal(ks_sttk_field(j, "spec.kind"), "Job");
    /* One ADDED event, nothing after it. */
    assert_int_equal(log.n, 1);
    /* Other types and updates are not mutated. */
    (void)ks_sttk_mk(&f, f.cm, "a", "{\"metadata\":{\"name\":\"c\"}}");
    assert_int_equal(
        ks_sttk_upd(&f, f.job, "a", "j",
                    "{\"metadata\":{\"name\":\"j\"},\"spec\":{\"x\":1}}",
                    GF_KS_MAIN, NULL, NULL),
        0);
    assert_int_equal(s.calls, 1);
    /* Removed, it is gone. */
    gf_ks_store_unmutate(f.st, m);
    (void)ks_sttk_mk(&f, f.job, "a", "{\"metadata\":{\"name\":\"k\"}}");
    assert_int_equal(s.calls, 1);
    /* A mutator left registered is freed with the store. */
    gf_ks_store_mutate(f.st, "batch", "jobs", stamp, &s);
    gf_ks_store_unobserve(f.st, ob);
    ks_sttk_done(&f);
}

int main(void)
{
    gf_kube_global_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mutator_in_the_create),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_kube_global_cleanup();
    return rc;
}
