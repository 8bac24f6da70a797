/*
 * Tests for kubesim/select: the label selector grammar (equality and
 * set-based requirements, existence), field selectors on metadata.name
 * and metadata.namespace, and the 400 errors for malformed selectors.
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
#include "e2e/kubesim/select.h"
#include "kubeclient/global.h"

static int64_t baseline;

/* One object for every case: labels app=web, tier=front, env=prod. */
static const char obj_json[] =
    "{\"metadata\":{\"name\":\"web-1\",\"namespace\":\"team-a\","
    "\"labels\":{\"app\":\"web\",\"tier\":\"front\",\"env\":\"prod\","
    "\"kueue.x-k8s.io/queue-name\":\"user-queue\"}},"
    "\"spec\":{\"nodeName\":\"n1\",\"suspend\":true}}";

struct scase {
    const char *sel;
    bool field;
    int match; /* 1 match, 0 no match, -1 parse error (400) */
};

static void test_selectors(void **state)
{
    (void)state;
    static const struct scase cases[] = {
        /* equality */
        {"app=web", false, 1},
        {"app==web", false, 1},
        {"app=db", false, 0},
        {"app!=db", false, 1},
        {"app!=web", false, 0},
        {"missing!=x", false, 1},
        {"app=web,tier=front", false, 1},
        {"app=web,tier=back", false, 0},
        {" app = web , env = prod ", false, 1},
        {"kueue.x-k8s.io/queue-name=user-queue", false, 1},
        {"missing=", false, 0},
        /* set-based */
        {"env in (prod,staging)", false, 1},
        {"env in (staging)", false, 0},
        {"env in(prod)", false, 1},
        {"env notin (prod)", false, 0},
        {"env notin (dev,staging)", false, 1},
        {"missing notin (x)", false, 1},
        {"missing in (x)", false, 0},
        {"env in (a,,prod)", false, 1},
        {"app,env", false, 1},
        {"app,missing", false, 0},
        {"!missing", false, 1},
        {"!app", false, 0},
        {"app=web,env in (prod),!missing,tier", false, 1},
        {"", false, 1},
        {"   ", false, 1},
        /* malformed label selectors */
        {"app=web,", false, -1},
        {",app=web", false, -1},
        {"app=web tier=front", false, -1},
        {"app in prod", false, -1},
        {"app in (prod", false, -1},
        {"app in ()", false, -1},
        {"app in (a b)", false, -1},
        {"app >= 3", false, -1},
        {"app=we@b", false, -1},
        {"-app=web", false, -1},
        {"a/b/c=x", false, -1},
        {"Bad_Prefix/app=x", false, -1},
        {"app=-web", false, -1},
        {"!", false, -1},
        {"app=(x)", false, -1},
        {"x=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
         false, -1},
        /* field selectors */
        {"metadata.name=web-1", true, 1},
        {"metadata.name==web-1", true, 1},
        {"metadata.name!=web-1", true, 0},
        {"metadata.namespace=team-a", true, 1},
        {"metadata.namespace=team-b", true, 0},
        {"metadata.name=web-1,metadata.namespace=team-a", true, 1},
        {"metadata.name=web-1,metadata.namespace!=team-a", true, 0},
        {"spec.nodeName=n1", true, 1},
        {"spec.suspend=true", true, 1},
        {"status.phase=", true, 1}, /* an absent field reads as "" */
        {"metadata.name", true, -1},
        {"metadata.name in (a)", true, -1},
        {"=web-1", true, -1},
        {"metadata.name=web-1,", true, -1},
    };
    cJSON *obj = cJSON_Parse(obj_json);
    assert_non_null(obj);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct gf_ks_selector *sel = NULL;
        struct gf_ks_status err;
        gf_ks_status_init(&err);
        int rc = gf_ks_selector_parse(cases[i].sel, cases[i].field, &sel, &err);
        print_message("case %zu \"%s\": rc=%d %s\n", i, cases[i].sel, rc,
                      err.message);
        if (cases[i].match < 0) {
            assert_int_equal(rc, GF_EINVALID);
            assert_int_equal(err.code, 400);
            assert_string_equal(err.reason, "BadRequest");
            assert_null(sel);
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(gf_ks_selector_match(sel, obj),
                             cases[i].match == 1);
            /* A copy behaves the same. */
            struct gf_ks_selector *d = gf_ks_selector_dup(sel);
            assert_int_equal(gf_ks_selector_match(d, obj), cases[i].match == 1);
            gf_ks_selector_free(d);
        }
        gf_ks_selector_free(sel);
        gf_ks_status_clear(&err);
    }
    cJSON_Delete(obj);
    assert_int_equal(gf_alloc_live(), baseline);
}

static void test_match_helpers_and_limits(void **state)
{
    (void)state;
    /* NULL selectors match everything, NULL labels are no labels. */
    assert_true(gf_ks_selector_match(NULL, NULL));
    struct gf_ks_selector *sel = NULL;
    assert_int_equal(gf_ks_selector_parse(NULL, false, &sel, NULL), 0);
    assert_null(sel);
    assert_int_equal(gf_ks_selector_parse("!a", false, &sel, NULL), 0);
    assert_true(gf_ks_selector_match_labels(sel, NULL));
    gf_ks_selector_free(sel);
    assert_int_equal(gf_ks_selector_parse("a", false, &sel, NULL), 0);
    assert_false(gf_ks_selector_match_labels(sel, NULL));
    /* Non-string label values never match (they are not labels). */
    cJSON *labels = cJSON_Parse("{\"a\":1}");
    assert_false(gf_ks_selector_match_labels(sel, labels));
    cJSON_Delete(labels);
    gf_ks_selector_free(sel);
    /* Oversized selectors and value lists are refused before parsing. */
    size_t n = 9000;
    char *big = gf_malloc(n + 1);
    memset(big, 'a', n);
    big[n] = '\0';
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    assert_int_equal(gf_ks_selector_parse(big, false, &sel, &err), GF_EINVALID);
    assert_int_equal(err.code, 400);
    char *p = big;
    p += snprintf(p, n, "k in (");
    for (int i = 0; i < 300; i++)
        p += snprintf(p, n - (size_t)(p - big), "v%d,", i);
    snprintf(p - 1, 3, ")");
    assert_int_equal(gf_ks_selector_parse(big, false, &sel, &err), GF_EINVALID);
    gf_free(big);
    gf_ks_status_clear(&err);
    assert_int_equal(gf_alloc_live(), baseline);
}

int main(void)
{
    gf_kube_global_init();
    baseline = gf_alloc_live();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_selectors),
        cmocka_unit_test(test_match_helpers_and_limits),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_kube_global_cleanup();
    return rc;
}
