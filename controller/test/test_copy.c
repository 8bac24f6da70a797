/*
 * Tests for controller/copy, on a Job as a real kube-apiserver v1.28
 * stores it (testdata/origin-job.json: the defaulted selector, the
 * controller-uid labels on the pod template, managedFields, status).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/file.h"
#include "common/json.h"
#include "controller/copy.h"

#define TESTDATA "controller/test/testdata/"

static cJSON *load(const char *path)
{
    char *buf = NULL;
    size_t len = 0;
    assert_int_equal(gf_file_read(path, 1 << 20, &buf, &len), 0);
    cJSON *j = cJSON_ParseWithLength(buf, len);
    gf_free(buf);
    assert_non_null(j);
    return j;
}

static const struct gf_copy_spec spec = {
    .name = "train-resnet-1a2b3c4d-2",
    .namespace = "ml-overflow",
    .local_queue = "gpufed-overflow",
    .lease = "east-train-resnet-2",
    .origin_member = "east",
    .origin_namespace = "ml",
    .origin_uid = "80b3949a-30d2-4f24-b275-876b244f2290",
    .epoch = 2,
};

static const cJSON *at(const cJSON *o, const char *a, const char *b,
                       const char *c)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, a);
    if (b != NULL)
        n = cJSON_GetObjectItemCaseSensitive(n, b);
    if (c != NULL)
        n = cJSON_GetObjectItemCaseSensitive(n, c);
    return n;
}

static const char *str_at(const cJSON *o, const char *a, const char *b,
                          const char *c)
{
    const cJSON *n = at(o, a, b, c);
    return cJSON_IsString(n) ? n->valuestring : NULL;
}

static void test_name_is_deterministic_and_a_dns_label(void **state)
{
    (void)state;
    char a[GF_COPY_NAME_MAX], b[GF_COPY_NAME_MAX], c[GF_COPY_NAME_MAX];
    const char *uid = "80b3949a-30d2-4f24-b275-876b244f2290";
    assert_int_equal(gf_copy_name("train-resnet", uid, 1, a), 0);
    assert_int_equal(gf_copy_name("train-resnet", uid, 1, b), 0);
    assert_string_equal(a, b);
    /* Another epoch, another name: the stale copy and the new one can be
     * told apart after a heal. */
    assert_int_equal(gf_copy_name("train-resnet", uid, 2, c), 0);
    assert_string_not_equal(a, c);
    assert_int_equal(strncmp(a, "train-resnet-", 13), 0);
    /* The longest Job name: cut, and never ending in '-' before the hash. */
    char longname[64];
    memset(longname, 'x', 63);
    longname[63] = '\0';
    longname[39] = '-';
    assert_int_equal(
        gf_copy_name(longname, uid, UINT64_C(18446744073709551615), a), 0);
    assert_true(strlen(a) <= 63);
    assert_null(strstr(a, "--"));
    assert_int_equal(gf_copy_name("", uid, 1, a), -EINVAL);
    assert_int_equal(gf_copy_name("j", "", 1, a), -EINVAL);
}

static void test_copy_keeps_the_work_drops_the_origins_identity(void **state)
{
    (void)state;
    int64_t live = gf_alloc_live();
    cJSON *origin = load(TESTDATA "origin-job.json");
    cJSON *copy = NULL;
    char why[128];
    assert_int_equal(gf_copy_job_build(origin, &spec, &copy, why, sizeof(why)),
                     0);
    /* Identity and placement. */
    assert_string_equal(str_at(copy, "metadata", "name", NULL), spec.name);
    assert_string_equal(str_at(copy, "metadata", "namespace", NULL),
                        "ml-overflow");
    static const char *const gone[] = {
        "uid",        "resourceVersion", "creationTimestamp",
        "generation", "managedFields",   NULL};
    for (const char *const *k = gone; *k != NULL; k++)
        assert_null(at(copy, "metadata", *k, NULL));
    assert_null(at(copy, "status", NULL, NULL));
    /* Labels: the overflow queue instead of the origin's, the protocol's
     * labels, the submitter's own kept. All keys have dots in them. */
    const cJSON *labels = at(copy, "metadata", "labels", NULL);
    assert_string_equal(str_at(labels, GF_KUEUE_QUEUE_LABEL, NULL, NULL),
                        "gpufed-overflow");
    assert_string_equal(str_at(labels, GF_LABEL_LEASE, NULL, NULL),
                        "east-train-resnet-2");
    assert_string_equal(str_at(labels, GF_LABEL_ORIGIN_CLUSTER, NULL, NULL),
                        "east");
    assert_string_equal(str_at(labels, GF_LABEL_ORIGIN_UID, NULL, NULL),
                        spec.origin_uid);
    assert_string_equal(str_at(labels, GF_LABEL_EPOCH, NULL, NULL), "2");
    assert_string_equal(str_at(labels, "team", NULL, NULL), "vision");
    const cJSON *ann = at(copy, "metadata", "annotations", NULL);
    assert_string_equal(str_at(ann, GF_ANN_ORIGIN, NULL, NULL),
                        "east/ml/train-resnet");
    assert_string_equal(str_at(ann, "kubesim.gpufed.io/duration", NULL, NULL),
                        "30s");
    /* Spec: suspended, no selector, the pod template's controller labels
     * gone (the lender's Job controller would refuse them), the work
     * itself as the submitter wrote it. */
    const cJSON *s = at(copy, "spec", NULL, NULL);
    assert_true(cJSON_IsTrue(at(s, "suspend", NULL, NULL)));
    assert_null(at(s, "selector", NULL, NULL));
    const cJSON *tl = at(s, "template", "metadata", "labels");
    assert_string_equal(str_at(tl, "app", NULL, NULL), "resnet");
    assert_null(at(tl, "controller-uid", NULL, NULL));
    assert_null(at(tl, "batch.kubernetes.io/controller-uid", NULL, NULL));
    assert_null(at(tl, "batch.kubernetes.io/job-name", NULL, NULL));
    assert_null(at(tl, "job-name", NULL, NULL));
    assert_true(gf_json_equal(at(s, "template", "spec", NULL),
                              at(origin, "spec", "template", "spec")));
    const cJSON *c0 =
        cJSON_GetArrayItem(at(s, "template", "spec", "containers"), 0);
    const cJSON *req = at(c0, "resources", "requests", NULL);
    assert_string_equal(str_at(req, "nvidia.com/gpu", NULL, NULL), "2");
    assert_int_equal(at(s, "parallelism", NULL, NULL)->valueint, 2);
    /* The origin was not touched. */
    assert_non_null(at(origin, "spec", "selector", NULL));
    cJSON_Delete(copy);
    cJSON_Delete(origin);
    assert_int_equal(gf_alloc_live(), live);
}

static void refuse(cJSON *origin, const char *expect_why)
{
    cJSON *copy = NULL;
    char why[128] = "";
    assert_int_equal(gf_copy_job_build(origin, &spec, &copy, why, sizeof(why)),
                     -EPERM);
    assert_null(copy);
    assert_string_equal(why, expect_why);
    struct gf_copy_spec allow = spec;
    allow.allow_host_access = true;
    assert_int_equal(gf_copy_job_build(origin, &allow, &copy, why, sizeof(why)),
                     0);
    cJSON_Delete(copy);
}

static void test_host_access_stays_home_unless_allowed(void **state)
{
    (void)state;
    int64_t live = gf_alloc_live();
    cJSON *origin = load(TESTDATA "origin-job.json");
    cJSON *pod = (cJSON *)at(origin, "spec", "template", "spec");
    cJSON *c0 = cJSON_GetArrayItem(
        cJSON_GetObjectItemCaseSensitive(pod, "containers"), 0);

    cJSON *vols = cJSON_AddArrayToObject(pod, "volumes");
    cJSON *v = cJSON_CreateObject();
    cJSON_AddStringToObject(v, "name", "datasets");
    cJSON_AddObjectToObject(v, "hostPath");
    cJSON_AddItemToArray(vols, v);
    refuse(origin, "volume datasets is a hostPath");
    cJSON_DeleteItemFromObjectCaseSensitive(pod, "volumes");

    cJSON *sc = cJSON_AddObjectToObject(c0, "securityContext");
    cJSON_AddTrueToObject(sc, "privileged");
    refuse(origin, "container trainer is privileged");
    cJSON_DeleteItemFromObjectCaseSensitive(c0, "securityContext");

    cJSON_AddTrueToObject(pod, "hostNetwork");
    refuse(origin, "the pod template sets hostNetwork");

    cJSON_Delete(origin);
    assert_int_equal(gf_alloc_live(), live);
}

static void test_not_a_job(void **state)
{
    (void)state;
    cJSON *o = cJSON_Parse("{\"metadata\":{\"name\":\"x\"},\"spec\":{}}");
    cJSON *copy = NULL;
    char why[128];
    assert_int_equal(gf_copy_job_build(o, &spec, &copy, why, sizeof(why)),
                     -EINVAL);
    cJSON_Delete(o);
}

static void test_patches(void **state)
{
    (void)state;
    int64_t live = gf_alloc_live();
    char *hold = gf_copy_hold_patch("1234", "east-train-resnet-2", "west");
    assert_string_equal(
        hold, "{\"metadata\":{\"resourceVersion\":\"1234\",\"annotations\":"
              "{\"gpufed.io/lease\":\"east-train-resnet-2\","
              "\"gpufed.io/placement\":\"west\"}},"
              "\"spec\":{\"active\":false}}");
    cJSON_free(hold);
    /* The test op comes first: on an origin that is not this lease's,
     * nothing else applies. */
    char *re = gf_copy_reactivate_patch("east-train-resnet-2");
    assert_string_equal(
        re,
        "[{\"op\":\"test\",\"path\":\"/metadata/annotations/gpufed.io~1lease\","
        "\"value\":\"east-train-resnet-2\"},"
        "{\"op\":\"remove\",\"path\":\"/metadata/annotations/"
        "gpufed.io~1lease\"},"
        "{\"op\":\"remove\",\"path\":\"/metadata/annotations/"
        "gpufed.io~1placement\"},"
        "{\"op\":\"replace\",\"path\":\"/spec/active\",\"value\":true}]");
    cJSON_free(re);
    char *out = gf_copy_outcome_patch(false);
    assert_string_equal(out, "{\"metadata\":{\"annotations\":"
                             "{\"gpufed.io/outcome\":\"Failed\"}}}");
    cJSON_free(out);
    char *mark = gf_copy_reclaim_mark_patch("2026-12-06T03:05:00.250Z");
    assert_string_equal(mark, "{\"metadata\":{\"annotations\":"
                              "{\"gpufed.io/reclaim-deadline\":"
                              "\"2026-12-06T03:05:00.250Z\"}}}");
    cJSON_free(mark);
    /* The stop is conditional on the version seen, like the hold. */
    char *stop = gf_copy_reclaim_stop_patch("77", "2026-12-06T03:05:00.251Z");
    assert_string_equal(
        stop, "{\"metadata\":{\"resourceVersion\":\"77\",\"annotations\":"
              "{\"gpufed.io/reclaimed-at\":\"2026-12-06T03:05:00.251Z\"}},"
              "\"spec\":{\"active\":false}}");
    cJSON_free(stop);
    char p[16];
    assert_int_equal(gf_json_pointer_escape("a~b/c", p, sizeof(p)), 0);
    assert_string_equal(p, "a~0b~1c");
    assert_int_equal(gf_json_pointer_escape("a/b", p, 4), -ENAMETOOLONG);
    assert_int_equal(gf_alloc_live(), live);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_is_deterministic_and_a_dns_label),
        cmocka_unit_test(test_copy_keeps_the_work_drops_the_origins_identity),
        cmocka_unit_test(test_host_access_stays_home_unless_allowed),
        cmocka_unit_test(test_not_a_job),
        cmocka_unit_test(test_patches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
