/*
 * Tests for kubesim/store's writes (store_write.c): the registry rules
 * every write follows (uid, generation, one resourceVersion across types,
 * names, status subresource, optimistic concurrency and preconditions,
 * finalizers and deletionTimestamp).
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

static void test_create_metadata_and_generation(void **state)
{
    (void)state;
    struct ks_sttk_fx f;
    ks_sttk_init(&f, 0);
    ks_sttk_mk_ns(&f, "team-a");
    struct gf_ks_obj *o = ks_sttk_mk(
        &f, f.wl, "team-a",
        "{\"metadata\":{\"generateName\":\"job-x-\",\"uid\":\"forged\","
        "\"resourceVersion\":\"77\",\"generation\":9},"
        "\"spec\":{\"queueName\":\"q\"},\"status\":{\"x\":1}}");
    assert_int_equal(strncmp(o->name, "job-x-", 6), 0);
    assert_int_equal(strlen(o->name), 11);
    assert_string_not_equal(ks_sttk_field(o, "metadata.uid"), "forged");
    assert_int_equal(strlen(ks_sttk_field(o, "metadata.uid")), 36);
    assert_string_equal(ks_sttk_field(o, "metadata.creationTimestamp"),
                        "2026-11-18T11:06:40Z");
    assert_int_equal(ks_sttk_ifield(o, "metadata.generation"), 1);
    /* status is dropped on a main-resource create for a status type. */
    assert_false(ks_sttk_has(o, "status"));
    char name[64];
    snprintf(name, sizeof(name), "%s", o->name);

    /* A metadata-only change keeps the generation; a spec change bumps. */
    cJSON *u = ks_sttk_js("{\"metadata\":{\"labels\":{\"a\":\"b\"}},"
                          "\"spec\":{\"queueName\":\"q\"}}");
    struct gf_ks_obj *o2 = NULL;
    assert_int_equal(gf_ks_store_update(f.st, f.wl, "team-a", name, u,
                                        GF_KS_MAIN, &o2, NULL),
                     0);
    cJSON_Delete(u);
    assert_int_equal(ks_sttk_ifield(o2, "metadata.generation"), 1);
    u = ks_sttk_js("{\"metadata\":{},\"spec\":{\"queueName\":\"r\"}}");
    assert_int_equal(gf_ks_store_update(f.st, f.wl, "team-a", name, u,
                                        GF_KS_MAIN, &o2, NULL),
                     0);
    cJSON_Delete(u);
    assert_int_equal(ks_sttk_ifield(o2, "metadata.generation"), 2);
    ks_sttk_done(&f);
}
static void test_rv_monotonic_across_types(void **state)
{
    (void)state;
    struct ks_sttk_fx f;
    ks_sttk_init(&f, 0);
    ks_sttk_mk_ns(&f, "a");
    uint64_t prev = gf_ks_store_rv(f.st);
    const struct gf_ks_rtype *types[] = {f.cm, f.wl, f.cq, f.job};
    for (int i = 0; i < 12; i++) {
        char buf[128];
        snprintf(buf, sizeof(buf), "{\"metadata\":{\"name\":\"o%d\"}}", i);
        struct gf_ks_obj *o = ks_sttk_mk(&f, types[i % 4], "a", buf);
        assert_int_equal(o->rv, prev + 1);
        assert_int_equal(gf_ks_store_rv(f.st), o->rv);
        char rvs[24];
        snprintf(rvs, sizeof(rvs), "%llu", (unsigned long long)o->rv);
        assert_string_equal(ks_sttk_field(o, "metadata.resourceVersion"), rvs);
        prev = o->rv;
    }
    /* A failed write and a write that changes nothing leave rv alone. */
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    cJSON *dup = ks_sttk_js("{\"metadata\":{\"name\":\"o0\"}}");
    assert_int_equal(
        gf_ks_store_create(f.st, f.cm, "a", dup, GF_KS_MAIN, NULL, &err),
        GF_EEXIST);
    cJSON_Delete(dup);
    assert_int_equal(err.code, 409);
    assert_string_equal(err.reason, "AlreadyExists");
    assert_string_equal(err.message, "configmaps \"o0\" already exists");
    struct gf_ks_obj *same = NULL;
    assert_int_equal(ks_sttk_upd(&f, f.cm, "a", "o0",
                                 "{\"metadata\":{\"name\":\"o0\"}}", GF_KS_MAIN,
                                 &same, &err),
                     0);
    assert_int_equal(gf_ks_store_rv(f.st), prev);
    assert_true(same->rv < prev);
    /* Cluster-scoped objects ignore the namespace. */
    assert_non_null(gf_ks_store_get(f.st, f.cq, NULL, "o2"));
    assert_string_equal(ks_sttk_field(gf_ks_store_get(f.st, f.cq, "", "o2"),
                                      "metadata.namespace"),
                        "<none>");
    gf_ks_status_clear(&err);
    ks_sttk_done(&f);
}

static void test_create_errors(void **state)
{
    (void)state;
    struct ks_sttk_fx f;
    ks_sttk_init(&f, 0);
    ks_sttk_mk_ns(&f, "a");
    static const struct {
        const char *ns, *body;
        int rc, code;
        const char *reason, *cause_field;
    } cases[] = {
        {"a", "{\"metadata\":{}}", GF_EINVALID, 422, "Invalid",
         "metadata.name"},
        {"a", "{\"metadata\":{\"name\":\"Bad_Name\"}}", GF_EINVALID, 422,
         "Invalid", "metadata.name"},
        {"a", "{\"metadata\":{\"name\":\"x/y\"}}", GF_EINVALID, 422, "Invalid",
         "metadata.name"},
        {"a", "{\"metadata\":{\"name\":\"x\",\"namespace\":\"b\"}}",
         GF_EINVALID, 400, "BadRequest", NULL},
        {"nope", "{\"metadata\":{\"name\":\"x\"}}", GF_ENOTFOUND, 404,
         "NotFound", NULL},
        {"", "{\"metadata\":{\"name\":\"x\"}}", GF_EINVALID, 400, "BadRequest",
         NULL},
        {"a", "[1]", GF_EINVALID, 400, "BadRequest", NULL},
    };
    uint64_t rv = gf_ks_store_rv(f.st);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct gf_ks_status err;
        gf_ks_status_init(&err);
        cJSON *j = ks_sttk_js(cases[i].body);
        int rc = gf_ks_store_create(f.st, f.cm, cases[i].ns, j, GF_KS_MAIN,
                                    NULL, &err);
        cJSON_Delete(j);
        print_message("case %zu: %d %s\n", i, err.code, err.message);
        assert_int_equal(rc, cases[i].rc);
        assert_int_equal(err.code, cases[i].code);
        assert_string_equal(err.reason, cases[i].reason);
        if (cases[i].cause_field != NULL)
            assert_string_equal(
                gf_json_str(cJSON_GetArrayItem(err.causes, 0), "field"),
                cases[i].cause_field);
        gf_ks_status_clear(&err);
    }
    /* A name longer than any key buffer is refused, not truncated. */
    char big[700];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    char body[800];
    snprintf(body, sizeof(body), "{\"metadata\":{\"name\":\"%s\"}}", big);
    cJSON *j = ks_sttk_js(body);
    assert_int_equal(
        gf_ks_store_create(f.st, f.cm, "a", j, GF_KS_MAIN, NULL, NULL),
        GF_EINVALID);
    cJSON_Delete(j);
    assert_null(gf_ks_store_get(f.st, f.cm, "a", big));
    assert_int_equal(gf_ks_store_rv(f.st), rv);
    ks_sttk_done(&f);
}

static void test_status_subresource(void **state)
{
    (void)state;
    struct ks_sttk_fx f;
    ks_sttk_init(&f, 0);
    ks_sttk_mk_ns(&f, "a");
    ks_sttk_mk(&f, f.wl, "a",
               "{\"metadata\":{\"name\":\"w\"},\"spec\":{\"q\":1}}");
    /* /status takes only status: the spec and label changes are ignored. */
    struct gf_ks_obj *o = NULL;
    assert_int_equal(
        ks_sttk_upd(&f, f.wl, "a", "w",
                    "{\"metadata\":{\"labels\":{\"x\":\"y\"}},"
                    "\"spec\":{\"q\":2},\"status\":{\"phase\":\"Up\"}}",
                    GF_KS_STATUS, &o, NULL),
        0);
    assert_string_equal(ks_sttk_field(o, "status.phase"), "Up");
    assert_int_equal(ks_sttk_ifield(o, "spec.q"), 1);
    assert_false(ks_sttk_has(o, "metadata.labels"));
    assert_int_equal(ks_sttk_ifield(o, "metadata.generation"), 1);
    /* The main resource keeps the stored status whatever the body says. */
    assert_int_equal(ks_sttk_upd(&f, f.wl, "a", "w",
                                 "{\"metadata\":{},\"spec\":{\"q\":3},"
                                 "\"status\":{\"phase\":\"Down\"}}",
                                 GF_KS_MAIN, &o, NULL),
                     0);
    assert_string_equal(ks_sttk_field(o, "status.phase"), "Up");
    assert_int_equal(ks_sttk_ifield(o, "spec.q"), 3);
    assert_int_equal(ks_sttk_ifield(o, "metadata.generation"), 2);
    /* patch_status merges and leaves generation alone. */
    cJSON *st = ks_sttk_js("{\"conditions\":[{\"type\":\"Admitted\"}]}");
    assert_int_equal(
        gf_ks_store_patch_status(f.st, f.wl, "a", "w", st, &o, NULL), 0);
    cJSON_Delete(st);
    assert_string_equal(ks_sttk_field(o, "status.phase"), "Up");
    assert_true(ks_sttk_has(o, "status.conditions"));
    assert_int_equal(ks_sttk_ifield(o, "metadata.generation"), 2);
    /* A type without the subresource takes status from the main body. */
    ks_sttk_mk(&f, f.cm, "a", "{\"metadata\":{\"name\":\"c\"}}");
    assert_int_equal(ks_sttk_upd(&f, f.cm, "a", "c",
                                 "{\"metadata\":{},\"status\":{\"s\":\"v\"}}",
                                 GF_KS_MAIN, &o, NULL),
                     0);
    assert_string_equal(ks_sttk_field(o, "status.s"), "v");
    /* Creating with GF_KS_STATUS keeps the status (controllers do). */
    cJSON *pod =
        ks_sttk_js("{\"metadata\":{\"name\":\"p\"},\"status\":{\"phase\":"
                   "\"Running\"}}");
    assert_int_equal(
        gf_ks_store_create(f.st, f.pod, "a", pod, GF_KS_STATUS, &o, NULL), 0);
    cJSON_Delete(pod);
    assert_string_equal(ks_sttk_field(o, "status.phase"), "Running");
    ks_sttk_done(&f);
}

static void test_conflicts_and_preconditions(void **state)
{
    (void)state;
    struct ks_sttk_fx f;
    ks_sttk_init(&f, 0);
    ks_sttk_mk_ns(&f, "a");
    struct gf_ks_obj *o = ks_sttk_mk(
        &f, f.wl, "a", "{\"metadata\":{\"name\":\"w\"},\"spec\":{\"q\":1}}");
    char stale[24], uid[40];
    snprintf(stale, sizeof(stale), "%llu", (unsigned long long)o->rv);
    snprintf(uid, sizeof(uid), "%s", ks_sttk_field(o, "metadata.uid"));
    assert_int_equal(ks_sttk_upd(&f, f.wl, "a", "w",
                                 "{\"metadata\":{},\"spec\":{\"q\":2}}",
                                 GF_KS_MAIN, &o, NULL),
                     0);
    uint64_t rv = gf_ks_store_rv(f.st);
    char body[256];
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    /* Stale resourceVersion: on the main resource and on /status. */
    for (int sub = 0; sub < 2; sub++) {
        snprintf(body, sizeof(body),
                 "{\"metadata\":{\"resourceVersion\":\"%s\"},"
                 "\"spec\":{\"q\":9},\"status\":{\"x\":1}}",
                 stale);
        assert_int_equal(ks_sttk_upd(&f, f.wl, "a", "w", body,
                                     (enum gf_ks_subres)sub, NULL, &err),
                         GF_ECONFLICT);
        assert_int_equal(err.code, 409);
        assert_string_equal(err.reason, "Conflict");
        assert_string_equal(
            err.message,
            "Operation cannot be fulfilled on workloads.kueue.x-k8s.io \"w\": "
            "the object has been modified; please apply your changes to the "
            "latest version and try again");
    }
    /* A conditional patch carries the resourceVersion it read. */
    snprintf(body, sizeof(body),
             "{\"metadata\":{\"resourceVersion\":\"%s\"},\"spec\":{\"q\":9}}",
             stale);
    assert_int_equal(gf_ks_store_patch(f.st, f.wl, "a", "w", GF_KS_PATCH_MERGE,
                                       body, strlen(body), GF_KS_MAIN, NULL,
                                       &err),
                     GF_ECONFLICT);
    assert_int_equal(err.code, 409);
    /* A uid that is not the object's is a precondition failure. */
    assert_int_equal(
        ks_sttk_upd(&f, f.wl, "a", "w",
                    "{\"metadata\":{\"uid\":\"other\"},\"spec\":{}}",
                    GF_KS_MAIN, NULL, &err),
        GF_ECONFLICT);
    struct gf_ks_delete_opts dop = {.rv = stale};
    assert_int_equal(
        gf_ks_store_delete(f.st, f.wl, "a", "w", &dop, NULL, NULL, &err),
        GF_ECONFLICT);
    dop = (struct gf_ks_delete_opts){.uid = "other"};
    assert_int_equal(
        gf_ks_store_delete(f.st, f.wl, "a", "w", &dop, NULL, NULL, &err),
        GF_ECONFLICT);
    assert_int_equal(gf_ks_store_rv(f.st), rv);
    /* Current resourceVersion and uid: accepted. */
    snprintf(body, sizeof(body),
             "{\"metadata\":{\"resourceVersion\":\"%llu\",\"uid\":\"%s\"},"
             "\"spec\":{\"q\":4}}",
             (unsigned long long)rv, uid);
    assert_int_equal(
        ks_sttk_upd(&f, f.wl, "a", "w", body, GF_KS_MAIN, &o, &err), 0);
    assert_int_equal(o->rv, rv + 1);
    /* Missing objects and names that disagree with the URL. */
    assert_int_equal(ks_sttk_upd(&f, f.wl, "a", "zz", "{\"metadata\":{}}",
                                 GF_KS_MAIN, NULL, &err),
                     GF_ENOTFOUND);
    assert_int_equal(err.code, 404);
    assert_string_equal(err.message,
                        "workloads.kueue.x-k8s.io \"zz\" not found");
    assert_int_equal(ks_sttk_upd(&f, f.wl, "a", "w",
                                 "{\"metadata\":{\"name\":\"v\"}}", GF_KS_MAIN,
                                 NULL, &err),
                     GF_EINVALID);
    assert_int_equal(err.code, 400);
    gf_ks_status_clear(&err);
    ks_sttk_done(&f);
}

static void test_finalizers_and_deletion_timestamp(void **state)
{
    (void)state;
    struct ks_sttk_fx f;
    ks_sttk_init(&f, 0);
    ks_sttk_mk_ns(&f, "a");
    struct ks_sttk_olog log = {0};
    struct ks_sttk_obs ob = {.log = &log, .tag = "o"};
    gf_ks_store_observe(f.st, f.wl, ks_sttk_obs_cb, &ob);
    ks_sttk_mk(
        &f, f.wl, "a",
        "{\"metadata\":{\"name\":\"w\",\"finalizers\":[\"x/a\",\"x/b\"]},"
        "\"spec\":{\"q\":1}}");
    gf_clock_advance(&f.clock, 5000);
    bool gone = true;
    struct gf_ks_obj *o = NULL;
    assert_int_equal(
        gf_ks_store_delete(f.st, f.wl, "a", "w", NULL, &o, &gone, NULL), 0);
    assert_false(gone);
    assert_string_equal(ks_sttk_field(o, "metadata.deletionTimestamp"),
                        "2026-11-18T11:06:45Z");
    assert_int_equal(ks_sttk_ifield(o, "metadata.deletionGracePeriodSeconds"),
                     0);
    /* Marking for deletion bumps the generation, as the registry does. */
    assert_int_equal(ks_sttk_ifield(o, "metadata.generation"), 2);
    assert_non_null(gf_ks_store_get(f.st, f.wl, "a", "w"));
    /* Deleting again changes nothing. */
    uint64_t rv = gf_ks_store_rv(f.st);
    assert_int_equal(
        gf_ks_store_delete(f.st, f.wl, "a", "w", NULL, &o, &gone, NULL), 0);
    assert_false(gone);
    assert_int_equal(gf_ks_store_rv(f.st), rv);
    /* No new finalizers once deleting; the timestamp cannot be cleared. */
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    assert_int_equal(
        ks_sttk_upd(&f, f.wl, "a", "w",
                    "{\"metadata\":{\"finalizers\":[\"x/a\",\"x/b\","
                    "\"x/c\"]},\"spec\":{\"q\":1}}",
                    GF_KS_MAIN, NULL, &err),
        GF_EINVALID);
    assert_int_equal(err.code, 422);
    assert_string_equal(gf_json_str(cJSON_GetArrayItem(err.causes, 0), "field"),
                        "metadata.finalizers");
    gf_ks_status_clear(&err);
    assert_int_equal(ks_sttk_upd(&f, f.wl, "a", "w",
                                 "{\"metadata\":{\"finalizers\":[\"x/b\"]},"
                                 "\"spec\":{\"q\":1}}",
                                 GF_KS_MAIN, &o, NULL),
                     0);
    assert_true(ks_sttk_has(o, "metadata.deletionTimestamp"));
    /* A merge patch drops the last finalizer: the object goes. */
    const char *p = "{\"metadata\":{\"finalizers\":null}}";
    assert_int_equal(gf_ks_store_patch(f.st, f.wl, "a", "w", GF_KS_PATCH_MERGE,
                                       p, strlen(p), GF_KS_MAIN, &o, NULL),
                     0);
    assert_null(gf_ks_store_get(f.st, f.wl, "a", "w"));
    assert_int_equal(o->rv, gf_ks_store_rv(f.st));
    assert_string_equal(log.lines[log.n - 1], "o DELETED Workload a/w");
    assert_int_equal(log.n, 4); /* ADDED, 2 MODIFIED, DELETED */
    ks_sttk_done(&f);
}

/* Paths the other tests leave out, each with the behaviour that matters. */
static void test_more_write_paths(void **state)
{
    (void)state;
    struct ks_sttk_fx f;
    ks_sttk_init(&f, 0);
    ks_sttk_mk_ns(&f, "a");
    /* Ten dependents (more than the GC's first batch) all go. */
    struct gf_ks_obj *job = ks_sttk_mk(
        &f, f.job, "a", "{\"metadata\":{\"name\":\"j\"},\"spec\":{}}");
    char r[256];
    ks_sttk_owner_ref(r, sizeof(r), "Job", job);
    for (int i = 0; i < 10; i++) {
        char name[16];
        snprintf(name, sizeof(name), "pod%d", i);
        ks_sttk_mk_owned(&f, name, r);
    }
    bool gone = false;
    assert_int_equal(
        ks_sttk_del(&f, f.job, "a", "j", GF_KS_PROP_BACKGROUND, &gone), 0);
    assert_int_equal(gf_ks_store_count(f.st, f.cm), 0);
    /* Foreground with a finalizer of its own: only foregroundDeletion goes
     * when the dependents are gone; the object waits for the other. */
    struct gf_ks_obj *o = ks_sttk_mk(
        &f, f.cm, "a",
        "{\"metadata\":{\"name\":\"o\",\"finalizers\":[\"x/keep\"]}}");
    ks_sttk_owner_ref(r, sizeof(r), "ConfigMap", o);
    ks_sttk_mk_owned(&f, "dep", r);
    assert_int_equal(
        ks_sttk_del(&f, f.cm, "a", "o", GF_KS_PROP_FOREGROUND, &gone), 0);
    o = gf_ks_store_get(f.st, f.cm, "a", "o");
    assert_non_null(o);
    assert_null(gf_ks_store_get(f.st, f.cm, "a", "dep"));
    cJSON *j = gf_ks_obj_parse(o);
    const cJSON *fins = gf_json_path(j, "metadata.finalizers");
    assert_int_equal(cJSON_GetArraySize(fins), 1);
    assert_string_equal(cJSON_GetArrayItem(fins, 0)->valuestring, "x/keep");
    cJSON_Delete(j);
    /* A patch that fails leaves the object and the version alone. */
    uint64_t rv = gf_ks_store_rv(f.st);
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    const char *jp = "[{\"op\":\"test\",\"path\":\"/metadata/name\","
                     "\"value\":\"other\"},{\"op\":\"remove\",\"path\":"
                     "\"/metadata/finalizers\"}]";
    assert_int_equal(gf_ks_store_patch(f.st, f.cm, "a", "o", GF_KS_PATCH_JSON,
                                       jp, strlen(jp), GF_KS_MAIN, NULL, &err),
                     GF_EINVALID);
    assert_int_equal(err.code, 422);
    assert_int_equal(gf_ks_store_rv(f.st), rv);
    assert_ptr_equal(gf_ks_store_get(f.st, f.cm, "a", "o"), o);
    assert_int_equal(gf_ks_store_patch(f.st, f.cm, "a", "nope",
                                       GF_KS_PATCH_MERGE, "{}", 2, GF_KS_MAIN,
                                       NULL, &err),
                     GF_ENOTFOUND);
    gf_ks_status_clear(&err);
    /* A namespace's spec and status belong to the server. */
    struct gf_ks_obj *ns = NULL;
    assert_int_equal(
        ks_sttk_upd(&f, f.ns, NULL, "a",
                    "{\"metadata\":{\"labels\":{\"x\":\"y\"}},\"spec\":{"
                    "\"finalizers\":[]},\"status\":{\"phase\":\"Gone\"}}",
                    GF_KS_MAIN, &ns, NULL),
        0);
    assert_string_equal(ks_sttk_field(ns, "status.phase"), "Active");
    assert_string_equal(ks_sttk_field(ns, "metadata.labels.x"), "y");
    j = gf_ks_obj_parse(ns);
    assert_int_equal(cJSON_GetArraySize(gf_json_path(j, "spec.finalizers")), 1);
    cJSON_Delete(j);
    ks_sttk_done(&f);
}

int main(void)
{
    gf_kube_global_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_metadata_and_generation),
        cmocka_unit_test(test_rv_monotonic_across_types),
        cmocka_unit_test(test_create_errors),
        cmocka_unit_test(test_status_subresource),
        cmocka_unit_test(test_conflicts_and_preconditions),
        cmocka_unit_test(test_finalizers_and_deletion_timestamp),
        cmocka_unit_test(test_more_write_paths),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_kube_global_cleanup();
    return rc;
}
