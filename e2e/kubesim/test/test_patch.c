/*
 * Tests for kubesim/patch: the examples of RFC 7386 (appendix A) and
 * RFC 6902 (appendix A), error codes as the API server reports them, and
 * strategic merge patches of the shapes kubectl sends for built-in types
 * (containers and env by name, conditions by type, finalizers as a set,
 * $patch, $setElementOrder and $deleteFromPrimitiveList directives).
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
#include "common/json.h"
#include "e2e/kubesim/patch.h"
#include "kubeclient/global.h"

static int64_t baseline;

struct pcase {
    const char *doc, *patch;
    const char *want; /* NULL: the patch must fail with code */
    int code;
};

#define M GF_KS_PATCH_MERGE
#define J GF_KS_PATCH_JSON
#define S GF_KS_PATCH_STRATEGIC

/* Applies every case; order-insensitive comparison. */
static void run_cases(enum gf_ks_patch_type type, const struct pcase *cases,
                      size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int64_t live = gf_alloc_live();
        cJSON *doc = cJSON_Parse(cases[i].doc);
        assert_non_null(doc);
        struct gf_ks_status err;
        gf_ks_status_init(&err);
        int rc = gf_ks_patch_apply(type, &doc, cases[i].patch,
                                   strlen(cases[i].patch), &err);
        char *got = doc != NULL ? cJSON_PrintUnformatted(doc) : NULL;
        print_message("case %zu: rc=%d code=%d got=%s msg=%s\n", i, rc,
                      err.code, got ? got : "(null)", err.message);
        if (cases[i].want == NULL) {
            assert_int_not_equal(rc, 0);
            assert_int_equal(err.code, cases[i].code);
        } else {
            assert_int_equal(rc, 0);
            cJSON *want = cJSON_Parse(cases[i].want);
            assert_non_null(want);
            if (!gf_json_equal(doc, want))
                fail_msg("case %zu: got %s want %s", i, got, cases[i].want);
            cJSON_Delete(want);
        }
        gf_free(got);
        cJSON_Delete(doc);
        gf_ks_status_clear(&err);
        assert_int_equal(gf_alloc_live(), live);
    }
}

static void test_merge_rfc7386(void **state)
{
    (void)state;
    static const struct pcase cases[] = {
        {"{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}", 0},
        {"{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}", 0},
        {"{\"a\":\"b\"}", "{\"a\":null}", "{}", 0},
        {"{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}", 0},
        {"{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}", 0},
        {"{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}", 0},
        {"{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}",
         "{\"a\":{\"b\":\"d\"}}", 0},
        {"{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}", 0},
        {"[\"a\",\"b\"]", "[\"c\",\"d\"]", "[\"c\",\"d\"]", 0},
        {"{\"a\":\"b\"}", "[\"c\"]", "[\"c\"]", 0},
        {"{\"a\":\"foo\"}", "null", "null", 0},
        {"{\"a\":\"foo\"}", "\"bar\"", "\"bar\"", 0},
        {"{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}", 0},
        {"[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}", 0},
        {"{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}", 0},
        /* An object merged into a scalar keeps its member name. */
        {"{\"s\":{\"a\":true,\"b\":1}}", "{\"s\":{\"a\":{\"x\":null,\"y\":1}}}",
         "{\"s\":{\"a\":{\"y\":1},\"b\":1}}", 0},
        /* Malformed patches are 400 BadRequest. */
        {"{}", "{\"a\":", NULL, 400},
        {"{}", "{} {}", NULL, 400},
        {"{}", "", NULL, 400},
    };
    run_cases(M, cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_merge_keeps_member_order(void **state)
{
    (void)state;
    cJSON *doc = cJSON_Parse("{\"a\":1,\"b\":{\"x\":1,\"y\":2},\"c\":3}");
    const char *p = "{\"b\":{\"x\":9},\"a\":2,\"d\":4} \n";
    assert_int_equal(gf_ks_patch_apply(M, &doc, p, strlen(p), NULL), 0);
    char *s = cJSON_PrintUnformatted(doc);
    assert_string_equal(s, "{\"a\":2,\"b\":{\"x\":9,\"y\":2},\"c\":3,\"d\":4}");
    gf_free(s);
    cJSON_Delete(doc);
    assert_int_equal(gf_alloc_live(), baseline);
}

static void test_json_patch_rfc6902(void **state)
{
    (void)state;
    static const struct pcase cases[] = {
        /* A.1 - A.8 */
        {"{\"foo\":\"bar\"}",
         "[{\"op\":\"add\",\"path\":\"/baz\",\"value\":\"qux\"}]",
         "{\"baz\":\"qux\",\"foo\":\"bar\"}", 0},
        {"{\"foo\":[\"bar\",\"baz\"]}",
         "[{\"op\":\"add\",\"path\":\"/foo/1\",\"value\":\"qux\"}]",
         "{\"foo\":[\"bar\",\"qux\",\"baz\"]}", 0},
        {"{\"baz\":\"qux\",\"foo\":\"bar\"}",
         "[{\"op\":\"remove\",\"path\":\"/baz\"}]", "{\"foo\":\"bar\"}", 0},
        {"{\"foo\":[\"bar\",\"qux\",\"baz\"]}",
         "[{\"op\":\"remove\",\"path\":\"/foo/1\"}]",
         "{\"foo\":[\"bar\",\"baz\"]}", 0},
        {"{\"baz\":\"qux\",\"foo\":\"bar\"}",
         "[{\"op\":\"replace\",\"path\":\"/baz\",\"value\":\"boo\"}]",
         "{\"baz\":\"boo\",\"foo\":\"bar\"}", 0},
        {"{\"foo\":{\"bar\":\"baz\",\"waldo\":\"fred\"},\"qux\":{\"corge\":"
         "\"grault\"}}",
         "[{\"op\":\"move\",\"from\":\"/foo/waldo\",\"path\":\"/qux/thud\"}]",
         "{\"foo\":{\"bar\":\"baz\"},\"qux\":{\"corge\":\"grault\",\"thud\":"
         "\"fred\"}}",
         0},
        {"{\"foo\":[\"all\",\"grass\",\"cows\",\"eat\"]}",
         "[{\"op\":\"move\",\"from\":\"/foo/1\",\"path\":\"/foo/3\"}]",
         "{\"foo\":[\"all\",\"cows\",\"eat\",\"grass\"]}", 0},
        {"{\"baz\":\"qux\",\"foo\":[\"a\",2,\"c\"]}",
         "[{\"op\":\"test\",\"path\":\"/baz\",\"value\":\"qux\"},"
         "{\"op\":\"test\",\"path\":\"/foo/1\",\"value\":2}]",
         "{\"baz\":\"qux\",\"foo\":[\"a\",2,\"c\"]}", 0},
        /* A.9: a failed test is 422. */
        {"{\"baz\":\"qux\"}",
         "[{\"op\":\"test\",\"path\":\"/baz\",\"value\":\"bar\"}]", NULL, 422},
        /* A.10, A.11 (unknown members ignored) */
        {"{\"foo\":\"bar\"}",
         "[{\"op\":\"add\",\"path\":\"/child\",\"value\":{\"grandchild\":{}}}]",
         "{\"foo\":\"bar\",\"child\":{\"grandchild\":{}}}", 0},
        {"{\"foo\":\"bar\"}",
         "[{\"op\":\"add\",\"path\":\"/baz\",\"value\":\"qux\",\"xyz\":123}]",
         "{\"foo\":\"bar\",\"baz\":\"qux\"}", 0},
        /* A.12: adding under a missing parent. */
        {"{\"foo\":\"bar\"}",
         "[{\"op\":\"add\",\"path\":\"/baz/bat\",\"value\":\"qux\"}]", NULL,
         422},
        /* A.14, A.15: escapes; strings and numbers differ. */
        {"{\"/\":9,\"~1\":10}",
         "[{\"op\":\"test\",\"path\":\"/~01\",\"value\":10}]",
         "{\"/\":9,\"~1\":10}", 0},
        {"{\"/\":9,\"~1\":10}",
         "[{\"op\":\"test\",\"path\":\"/~01\",\"value\":\"10\"}]", NULL, 422},
        /* A.16 */
        {"{\"foo\":[\"bar\"]}",
         "[{\"op\":\"add\",\"path\":\"/foo/-\",\"value\":[\"abc\",\"def\"]}]",
         "{\"foo\":[\"bar\",[\"abc\",\"def\"]]}", 0},
        {"{\"foo\":[\"a\",\"b\",\"c\"]}",
         "[{\"op\":\"replace\",\"path\":\"/foo/0\",\"value\":\"x\"},"
         "{\"op\":\"add\",\"path\":\"/foo/0\",\"value\":\"y\"},"
         "{\"op\":\"add\",\"path\":\"/foo/4\",\"value\":\"z\"},"
         "{\"op\":\"remove\",\"path\":\"/foo/2\"}]",
         "{\"foo\":[\"y\",\"x\",\"c\",\"z\"]}", 0},
        /* copy, the whole-document pointer, and the ops kubectl users send */
        {"{\"a\":{\"b\":1}}",
         "[{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/c\"}]",
         "{\"a\":{\"b\":1},\"c\":{\"b\":1}}", 0},
        {"{\"a\":1}", "[{\"op\":\"replace\",\"path\":\"\",\"value\":[1]}]",
         "[1]", 0},
        {"{\"spec\":{\"active\":true}}",
         "[{\"op\":\"test\",\"path\":\"/spec/active\",\"value\":true},"
         "{\"op\":\"replace\",\"path\":\"/spec/active\",\"value\":false}]",
         "{\"spec\":{\"active\":false}}", 0},
        /* Failures: missing targets (422), malformed patches (400). */
        {"{\"a\":1}", "[{\"op\":\"remove\",\"path\":\"/b\"}]", NULL, 422},
        {"{\"a\":1}", "[{\"op\":\"replace\",\"path\":\"/b\",\"value\":1}]",
         NULL, 422},
        {"{\"a\":[1]}", "[{\"op\":\"add\",\"path\":\"/a/5\",\"value\":1}]",
         NULL, 422},
        {"{\"a\":[1,2]}", "[{\"op\":\"remove\",\"path\":\"/a/01\"}]", NULL,
         422},
        {"{\"a\":[1,2]}", "[{\"op\":\"remove\",\"path\":\"/a/-1\"}]", NULL,
         422},
        {"{\"a\":1}", "[{\"op\":\"test\",\"path\":\"/a~2\",\"value\":1}]", NULL,
         422},
        {"{\"a\":1}", "[{\"op\":\"add\",\"path\":\"a\",\"value\":1}]", NULL,
         422},
        {"{\"a\":{}}", "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/a/b\"}]",
         NULL, 422},
        {"{\"a\":1}", "[{\"op\":\"frob\",\"path\":\"/a\"}]", NULL, 400},
        {"{\"a\":1}", "[{\"path\":\"/a\"}]", NULL, 400},
        {"{\"a\":1}", "[{\"op\":\"move\",\"path\":\"/b\"}]", NULL, 400},
        {"{\"a\":1}", "{\"op\":\"add\"}", NULL, 400},
        {"{\"a\":1}", "[1]", NULL, 400},
        {"{\"a\":1}", "[", NULL, 400},
    };
    run_cases(J, cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_strategic_merge(void **state)
{
    (void)state;
    static const struct pcase cases[] = {
        /* Maps merge, null deletes, non-keyed lists replace. */
        {"{\"spec\":{\"suspend\":true,\"parallelism\":2}}",
         "{\"spec\":{\"suspend\":false,\"parallelism\":null}}",
         "{\"spec\":{\"suspend\":false}}", 0},
        /* Containers merge by name; args (no merge key) are replaced. */
        {"{\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"x\","
         "\"args\":[\"1\",\"2\"]},{\"name\":\"b\",\"image\":\"y\"}]}}",
         "{\"spec\":{\"containers\":[{\"name\":\"a\",\"args\":[\"3\"]},"
         "{\"name\":\"c\",\"image\":\"z\"}]}}",
         "{\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"x\","
         "\"args\":[\"3\"]},{\"name\":\"b\",\"image\":\"y\"},{\"name\":\"c\","
         "\"image\":\"z\"}]}}",
         0},
        /* env inside a container merges by name too. */
        {"{\"containers\":[{\"name\":\"a\",\"env\":[{\"name\":\"X\","
         "\"value\":\"1\"},{\"name\":\"Y\",\"value\":\"2\"}]}]}",
         "{\"containers\":[{\"name\":\"a\",\"env\":[{\"name\":\"Y\","
         "\"value\":\"3\"}]}]}",
         "{\"containers\":[{\"name\":\"a\",\"env\":[{\"name\":\"X\","
         "\"value\":\"1\"},{\"name\":\"Y\",\"value\":\"3\"}]}]}",
         0},
        /* $patch: delete removes one element by its key. */
        {"{\"containers\":[{\"name\":\"a\"},{\"name\":\"b\"}]}",
         "{\"containers\":[{\"name\":\"a\",\"$patch\":\"delete\"}]}",
         "{\"containers\":[{\"name\":\"b\"}]}", 0},
        /* $patch: replace on a list replaces it with the other elements. */
        {"{\"containers\":[{\"name\":\"a\"},{\"name\":\"b\"}]}",
         "{\"containers\":[{\"name\":\"c\"},{\"$patch\":\"replace\"}]}",
         "{\"containers\":[{\"name\":\"c\"}]}", 0},
        /* $patch: replace on a map; $patch: delete on a map. */
        {"{\"metadata\":{\"labels\":{\"a\":\"1\",\"b\":\"2\"}}}",
         "{\"metadata\":{\"labels\":{\"$patch\":\"replace\",\"c\":\"3\"}}}",
         "{\"metadata\":{\"labels\":{\"c\":\"3\"}}}", 0},
        {"{\"spec\":{\"template\":{\"x\":1},\"y\":2}}",
         "{\"spec\":{\"template\":{\"$patch\":\"delete\"}}}",
         "{\"spec\":{\"y\":2}}", 0},
        /* Conditions merge by type (a controller's status patch). */
        {"{\"status\":{\"conditions\":[{\"type\":\"Suspended\",\"status\":"
         "\"True\"},{\"type\":\"Complete\",\"status\":\"False\"}]}}",
         "{\"status\":{\"conditions\":[{\"type\":\"Suspended\",\"status\":"
         "\"False\",\"reason\":\"JobResumed\"}]}}",
         "{\"status\":{\"conditions\":[{\"type\":\"Suspended\",\"status\":"
         "\"False\",\"reason\":\"JobResumed\"},{\"type\":\"Complete\","
         "\"status\":\"False\"}]}}",
         0},
        /* Finalizers merge as a set; $deleteFromPrimitiveList removes. */
        {"{\"metadata\":{\"finalizers\":[\"a\",\"b\"]}}",
         "{\"metadata\":{\"finalizers\":[\"b\",\"c\"]}}",
         "{\"metadata\":{\"finalizers\":[\"a\",\"b\",\"c\"]}}", 0},
        {"{\"metadata\":{\"finalizers\":[\"a\",\"b\"]}}",
         "{\"metadata\":{\"$deleteFromPrimitiveList/finalizers\":[\"a\"]}}",
         "{\"metadata\":{\"finalizers\":[\"b\"]}}", 0},
        /*
         * What kubectl apply sends for a Job: $setElementOrder fixes the
         * order only and is never stored.
         */
        {"{\"metadata\":{\"annotations\":{\"x\":\"1\"}},\"spec\":{\"template\":"
         "{\"spec\":{\"containers\":[{\"name\":\"dummy-job\",\"image\":"
         "\"old\"}]}}}}",
         "{\"metadata\":{\"annotations\":{\"x\":\"2\"}},\"spec\":{\"template\":"
         "{\"spec\":{\"$setElementOrder/containers\":[{\"name\":\"dummy-job\""
         "}],\"containers\":[{\"image\":\"new\",\"name\":\"dummy-job\"}]}}}}",
         "{\"metadata\":{\"annotations\":{\"x\":\"2\"}},\"spec\":{\"template\":"
         "{\"spec\":{\"containers\":[{\"name\":\"dummy-job\",\"image\":"
         "\"new\"}]}}}}",
         0},
        /* ownerReferences merge by uid. */
        {"{\"metadata\":{\"ownerReferences\":[{\"uid\":\"1\",\"name\":\"a\"}]}"
         "}",
         "{\"metadata\":{\"ownerReferences\":[{\"uid\":\"2\",\"name\":\"b\"}]}"
         "}",
         "{\"metadata\":{\"ownerReferences\":[{\"uid\":\"1\",\"name\":\"a\"},"
         "{\"uid\":\"2\",\"name\":\"b\"}]}}",
         0},
        /* New elements carry no directives or nulls into the object. */
        {"{\"containers\":[]}",
         "{\"containers\":[{\"name\":\"a\",\"x\":null,\"$retainKeys\":[]}]}",
         "{\"containers\":[{\"name\":\"a\"}]}", 0},
        /* A strategic patch must be an object. */
        {"{}", "[1]", NULL, 400},
        {"{}", "{\"a\":", NULL, 400},
    };
    run_cases(S, cases, sizeof(cases) / sizeof(cases[0]));
}

/* "copy" doubling the document, and "add" nesting too deep: 413. */
static void test_result_caps(void **state)
{
    (void)state;
    char *p = gf_malloc(8192);
    size_t n = (size_t)snprintf(p, 8192, "[");
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(p + n, 8192 - n,
                              "%s{\"op\":\"copy\",\"from\":\"\",\"path\":"
                              "\"/c%d\"}",
                              i ? "," : "", i);
    snprintf(p + n, 8192 - n, "]");
    cJSON *doc = cJSON_Parse("{\"a\":[1,2,3,4,5,6,7,8]}");
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    assert_int_not_equal(gf_ks_patch_apply(J, &doc, p, strlen(p), &err), 0);
    assert_int_equal(err.code, 413);
    cJSON_Delete(doc);
    gf_free(p);
    /* A value 600 levels deep added under an existing member. */
    size_t cap = 4096;
    p = gf_malloc(cap);
    n = (size_t)snprintf(p, cap, "[{\"op\":\"add\",\"path\":\"/a\",\"value\":");
    for (int i = 0; i < 600; i++)
        p[n++] = '[';
    for (int i = 0; i < 600; i++)
        p[n++] = ']';
    snprintf(p + n, cap - n, "}]");
    doc = cJSON_Parse("{\"a\":1}");
    assert_int_not_equal(gf_ks_patch_apply(J, &doc, p, strlen(p), &err), 0);
    assert_int_equal(err.code, 413);
    cJSON_Delete(doc);
    /* 400 levels is fine. */
    n = (size_t)snprintf(p, cap, "[{\"op\":\"add\",\"path\":\"/a\",\"value\":");
    for (int i = 0; i < 400; i++)
        p[n++] = '[';
    for (int i = 0; i < 400; i++)
        p[n++] = ']';
    snprintf(p + n, cap - n, "}]");
    doc = cJSON_Parse("{\"a\":1}");
    assert_int_equal(gf_ks_patch_apply(J, &doc, p, strlen(p), &err), 0);
    cJSON_Delete(doc);
    gf_free(p);
    gf_ks_status_clear(&err);
    assert_int_equal(gf_alloc_live(), baseline);
}

static void test_size_cap(void **state)
{
    (void)state;
    cJSON *doc = cJSON_CreateObject();
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    /* The cap is checked before the bytes are read. */
    assert_int_not_equal(
        gf_ks_patch_apply(M, &doc, "{}", (size_t)GF_KS_PATCH_MAX + 1, &err), 0);
    assert_int_equal(err.code, 413);
    cJSON_Delete(doc);
    assert_int_equal(gf_alloc_live(), baseline);
}

int main(void)
{
    gf_kube_global_init();
    baseline = gf_alloc_live();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge_rfc7386),
        cmocka_unit_test(test_merge_keeps_member_order),
        cmocka_unit_test(test_json_patch_rfc6902),
        cmocka_unit_test(test_strategic_merge),
        cmocka_unit_test(test_result_caps),
        cmocka_unit_test(test_size_cap),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_kube_global_cleanup();
    return rc;
}
