/*
 * Tests for kubesim/select: the label selector grammar (equality and
 * set-based requirements, existence), field selectors on the fields each
 * type lets clients select on (with kube-apiserver v1.28's messages for the
 * others), and the 400 errors for malformed selectors.
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
        /* Without a type, only the fields every type has. */
        {"spec.nodeName=n1", true, -1},
        {"metadata.labels.app=web", true, -1},
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

struct fcase {
    const struct gf_ks_field_type *t;
    const char *sel;
    int match;           /* 1 match, 0 no match, -1 400 */
    const char *message; /* the 400's message */
};

/* A Pod, a Job and a Workload, each with dotted label keys. */
static const char pod_json[] =
    "{\"metadata\":{\"name\":\"p\",\"namespace\":\"team-a\","
    "\"labels\":{\"kueue.x-k8s.io/queue-name\":\"lq\"}},"
    "\"spec\":{\"nodeName\":\"node-1\",\"restartPolicy\":\"Never\"},"
    "\"status\":{\"phase\":\"Running\"}}";

static void test_field_selectors_per_type(void **state)
{
    (void)state;
    static const struct gf_ks_field_type pods = {"", "pods", "Pod", true,
                                                 false};
    static const struct gf_ks_field_type jobs = {"batch", "jobs", "Job", true,
                                                 false};
    static const struct gf_ks_field_type cms = {"", "configmaps", "ConfigMap",
                                                true, false};
    static const struct gf_ks_field_type wls = {"kueue.x-k8s.io", "workloads",
                                                "Workload", true, true};
    static const struct gf_ks_field_type cqs = {
        "kueue.x-k8s.io", "clusterqueues", "ClusterQueue", false, true};
    static const struct gf_ks_field_type nss = {"", "namespaces", "Namespace",
                                                false, false};
    static const struct fcase cases[] = {
        {&pods, "spec.nodeName=node-1", 1, NULL},
        {&pods, "spec.nodeName=node-2", 0, NULL},
        {&pods, "status.phase=Running,metadata.namespace=team-a", 1, NULL},
        {&pods, "spec.restartPolicy!=Always", 1, NULL},
        {&pods, "spec.hostNetwork=false", 1, NULL}, /* absent is false */
        {&pods, "status.podIP=", 1, NULL},          /* absent is "" */
        /* A label is not a field, however it is spelled. */
        {&pods, "metadata.labels.kueue.x-k8s.io/queue-name=lq", -1,
         "field label not supported: "
         "metadata.labels.kueue.x-k8s.io/queue-name"},
        /* The first unsupported field in name order is named. */
        {&pods, "zz=1,spec.nodeName=node-1,aa=2", -1,
         "field label not supported: aa"},
        {&jobs, "status.successful=0", 1, NULL},
        {&jobs, "spec.suspend=true", -1,
         "field label \"spec.suspend\" not supported for Job"},
        {&cms, "metadata.name=p", 1, NULL},
        {&cms, "spec.nodeName=node-1", -1,
         "\"spec.nodeName\" is not a known field selector: only "
         "\"metadata.name\", \"metadata.namespace\""},
        {&wls, "metadata.namespace=team-a", 1, NULL},
        {&wls, "spec.queueName=lq", -1,
         "field label not supported: spec.queueName"},
        {&cqs, "metadata.name=p", 1, NULL},
        {&cqs, "metadata.namespace=", -1,
         "field label not supported: metadata.namespace"},
        {&nss, "status.phase=Running", 1, NULL},
        {&nss, "metadata.namespace=x", -1,
         "field label not supported: metadata.namespace"},
    };
    cJSON *obj = cJSON_Parse(pod_json);
    assert_non_null(obj);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct fcase *c = &cases[i];
        struct gf_ks_selector *sel = NULL;
        struct gf_ks_status err;
        gf_ks_status_init(&err);
        int rc = gf_ks_selector_parse_fields(c->sel, c->t, &sel, &err);
        print_message("case %zu %s \"%s\": rc=%d %s\n", i, c->t->resource,
                      c->sel, rc, err.message);
        if (c->match < 0) {
            assert_int_equal(rc, GF_EINVALID);
            assert_int_equal(err.code, 400);
            assert_string_equal(err.reason, "BadRequest");
            assert_string_equal(err.message, c->message);
            assert_null(sel);
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(gf_ks_selector_match(sel, obj), c->match == 1);
            struct gf_ks_selector *d = gf_ks_selector_dup(sel);
            assert_int_equal(gf_ks_selector_match(d, obj), c->match == 1);
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
        cmocka_unit_test(test_field_selectors_per_type),
        cmocka_unit_test(test_match_helpers_and_limits),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_kube_global_cleanup();
    return rc;
}
