/*
 * Tests for kubesim's protobuf intake: the bodies kubectl 1.32's typed
 * create commands send (captured from kubectl, byte for byte) become the
 * objects they describe; every truncation of them and a few corruptions
 * are refused or decoded without reading out of bounds; kinds without a
 * decoder get 415 so that client-go falls back to JSON.
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
#include "e2e/kubesim/test/api_testkit.h"
#include "kubeclient/global.h"

#define PB "application/vnd.kubernetes.protobuf"

/* kubectl create namespace ns1, as kubectl 1.32 sends it (54 bytes). */
static const char pb_ns[] =
    "\x6b\x38\x73\x00\x0a\x0f\x0a\x02\x76\x31\x12\x09\x4e\x61\x6d\x65"
    "\x73\x70\x61\x63\x65\x12\x1b\x0a\x13\x0a\x03\x6e\x73\x31\x12\x00"
    "\x1a\x00\x22\x00\x2a\x00\x32\x00\x38\x00\x42\x00\x12\x00\x1a\x02"
    "\x0a\x00\x1a\x00\x22\x00";

/* kubectl create configmap cm1 --from-literal=a=b --from-literal=c=d, as
 * kubectl 1.32 sends it (71 bytes). */
static const char pb_cm[] =
    "\x6b\x38\x73\x00\x0a\x0f\x0a\x02\x76\x31\x12\x09\x43\x6f\x6e\x66"
    "\x69\x67\x4d\x61\x70\x12\x2c\x0a\x1a\x0a\x03\x63\x6d\x31\x12\x00"
    "\x1a\x07\x64\x65\x66\x61\x75\x6c\x74\x22\x00\x2a\x00\x32\x00\x38"
    "\x00\x42\x00\x12\x06\x0a\x01\x61\x12\x01\x62\x12\x06\x0a\x01\x63"
    "\x12\x01\x64\x1a\x00\x22\x00";

/* kubectl create secret generic s1 --from-literal=k=v, as kubectl 1.32 sends it
 * (61 bytes). */
static const char pb_secret[] =
    "\x6b\x38\x73\x00\x0a\x0c\x0a\x02\x76\x31\x12\x06\x53\x65\x63\x72"
    "\x65\x74\x12\x25\x0a\x19\x0a\x02\x73\x31\x12\x00\x1a\x07\x64\x65"
    "\x66\x61\x75\x6c\x74\x22\x00\x2a\x00\x32\x00\x38\x00\x42\x00\x12"
    "\x06\x0a\x01\x6b\x12\x01\x76\x1a\x00\x1a\x00\x22\x00";

/* kubectl create serviceaccount sa1, as kubectl 1.32 sends it (60 bytes). */
static const char pb_sa[] =
    "\x6b\x38\x73\x00\x0a\x14\x0a\x02\x76\x31\x12\x0e\x53\x65\x72\x76"
    "\x69\x63\x65\x41\x63\x63\x6f\x75\x6e\x74\x12\x1c\x0a\x1a\x0a\x03"
    "\x73\x61\x31\x12\x00\x1a\x07\x64\x65\x66\x61\x75\x6c\x74\x22\x00"
    "\x2a\x00\x32\x00\x38\x00\x42\x00\x1a\x00\x22\x00";

/* kubectl create rolebinding rb1 --clusterrole=view --user=u1
 * --serviceaccount=default:sa1, as kubectl 1.32 sends it (207 bytes). */
static const char pb_rb[] =
    "\x6b\x38\x73\x00\x0a\x2b\x0a\x1c\x72\x62\x61\x63\x2e\x61\x75\x74"
    "\x68\x6f\x72\x69\x7a\x61\x74\x69\x6f\x6e\x2e\x6b\x38\x73\x2e\x69"
    "\x6f\x2f\x76\x31\x12\x0b\x52\x6f\x6c\x65\x42\x69\x6e\x64\x69\x6e"
    "\x67\x12\x97\x01\x0a\x1a\x0a\x03\x72\x62\x31\x12\x00\x1a\x07\x64"
    "\x65\x66\x61\x75\x6c\x74\x22\x00\x2a\x00\x32\x00\x38\x00\x42\x00"
    "\x12\x27\x0a\x04\x55\x73\x65\x72\x12\x19\x72\x62\x61\x63\x2e\x61"
    "\x75\x74\x68\x6f\x72\x69\x7a\x61\x74\x69\x6f\x6e\x2e\x6b\x38\x73"
    "\x2e\x69\x6f\x1a\x02\x75\x31\x22\x00\x12\x20\x0a\x0e\x53\x65\x72"
    "\x76\x69\x63\x65\x41\x63\x63\x6f\x75\x6e\x74\x12\x00\x1a\x03\x73"
    "\x61\x31\x22\x07\x64\x65\x66\x61\x75\x6c\x74\x1a\x2e\x0a\x19\x72"
    "\x62\x61\x63\x2e\x61\x75\x74\x68\x6f\x72\x69\x7a\x61\x74\x69\x6f"
    "\x6e\x2e\x6b\x38\x73\x2e\x69\x6f\x12\x0b\x43\x6c\x75\x73\x74\x65"
    "\x72\x52\x6f\x6c\x65\x1a\x04\x76\x69\x65\x77\x1a\x00\x22\x00";

/* kubectl auth can-i delete workloads.kueue.x-k8s.io -n team-a (without
 * discovery, so the resource carries the group). */
static const char pb_ssar_res[] =
    "\x6b\x38\x73\x00\x0a\x32\x0a\x17\x61\x75\x74\x68\x6f\x72\x69\x7a"
    "\x61\x74\x69\x6f\x6e\x2e\x6b\x38\x73\x2e\x69\x6f\x2f\x76\x31\x12"
    "\x17\x53\x65\x6c\x66\x53\x75\x62\x6a\x65\x63\x74\x41\x63\x63\x65"
    "\x73\x73\x52\x65\x76\x69\x65\x77\x12\x52\x0a\x10\x0a\x00\x12\x00"
    "\x1a\x00\x22\x00\x2a\x00\x32\x00\x38\x00\x42\x00\x12\x34\x0a\x32"
    "\x0a\x06\x74\x65\x61\x6d\x2d\x61\x12\x06\x64\x65\x6c\x65\x74\x65"
    "\x1a\x00\x22\x00\x2a\x18\x77\x6f\x72\x6b\x6c\x6f\x61\x64\x73\x2e"
    "\x6b\x75\x65\x75\x65\x2e\x78\x2d\x6b\x38\x73\x2e\x69\x6f\x32\x00"
    "\x3a\x00\x1a\x08\x08\x00\x12\x00\x1a\x00\x20\x00\x1a\x00\x22\x00";

/* kubectl auth can-i get /healthz */
static const char pb_ssar_nonres[] =
    "\x6b\x38\x73\x00\x0a\x32\x0a\x17\x61\x75\x74\x68\x6f\x72\x69\x7a"
    "\x61\x74\x69\x6f\x6e\x2e\x6b\x38\x73\x2e\x69\x6f\x2f\x76\x31\x12"
    "\x17\x53\x65\x6c\x66\x53\x75\x62\x6a\x65\x63\x74\x41\x63\x63\x65"
    "\x73\x73\x52\x65\x76\x69\x65\x77\x12\x2f\x0a\x10\x0a\x00\x12\x00"
    "\x1a\x00\x22\x00\x2a\x00\x32\x00\x38\x00\x42\x00\x12\x11\x12\x0f"
    "\x0a\x08\x2f\x68\x65\x61\x6c\x74\x68\x7a\x12\x03\x67\x65\x74\x1a"
    "\x08\x08\x00\x12\x00\x1a\x00\x20\x00\x1a\x00\x22\x00";

struct vec {
    const char *path;
    const char *body;
    size_t len;
};

static const struct vec vecs[] = {
    {"/api/v1/namespaces", pb_ns, sizeof(pb_ns) - 1},
    {"/api/v1/namespaces/default/configmaps", pb_cm, sizeof(pb_cm) - 1},
    {"/api/v1/namespaces/default/secrets", pb_secret, sizeof(pb_secret) - 1},
    {"/api/v1/namespaces/default/serviceaccounts", pb_sa, sizeof(pb_sa) - 1},
    {"/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
     pb_rb, sizeof(pb_rb) - 1},
};

static cJSON *post(struct ks_apitk_cluster *k, const char *path,
                   const char *body, size_t len, int *code)
{
    struct ks_apitk_resp r;
    ks_apitk_resp_init(&r);
    *code = ks_apitk_do_len(k, &r, "POST", path, PB, NULL, body, len);
    cJSON *j = cJSON_ParseWithLength(gf_buf_cstr(&r.body), r.body.len);
    ks_apitk_resp_free(&r);
    return j;
}

static const char *or_null(const char *s)
{
    return s != NULL ? s : "(null)";
}
/* A macro, so gf_json_str's literal-only check reaches every call. */
#define str(j, path) or_null(gf_json_str(j, path))

static void test_kubectl_bodies(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    int code;
    cJSON *j = post(&k, vecs[0].path, vecs[0].body, vecs[0].len, &code);
    assert_int_equal(code, 201);
    assert_string_equal(str(j, "kind"), "Namespace");
    assert_string_equal(str(j, "metadata.name"), "ns1");
    assert_string_equal(str(j, "status.phase"), "Active");
    cJSON_Delete(j);
    j = post(&k, vecs[1].path, vecs[1].body, vecs[1].len, &code);
    assert_int_equal(code, 201);
    assert_string_equal(str(j, "metadata.namespace"), "default");
    assert_string_equal(str(j, "data.a"), "b");
    assert_string_equal(str(j, "data.c"), "d");
    /* kubectl's protobuf carries every string field, empty ones too; as
     * in the API server's JSON, unset ones are left out. */
    assert_null(gf_json_path(j, "metadata.generateName"));
    cJSON_Delete(j);
    /* Secret data is bytes: base64 in JSON. */
    j = post(&k, vecs[2].path, vecs[2].body, vecs[2].len, &code);
    assert_int_equal(code, 201);
    assert_string_equal(str(j, "data.k"), "dg==");
    assert_string_equal(str(j, "type"), "Opaque"); /* defaulted */
    cJSON_Delete(j);
    j = post(&k, vecs[3].path, vecs[3].body, vecs[3].len, &code);
    assert_int_equal(code, 201);
    assert_string_equal(str(j, "kind"), "ServiceAccount");
    cJSON_Delete(j);
    j = post(&k, vecs[4].path, vecs[4].body, vecs[4].len, &code);
    assert_int_equal(code, 201);
    assert_string_equal(str(j, "roleRef.kind"), "ClusterRole");
    assert_string_equal(str(j, "roleRef.name"), "view");
    const cJSON *subs = gf_json_path(j, "subjects");
    assert_int_equal(cJSON_GetArraySize(subs), 2);
    assert_string_equal(str(cJSON_GetArrayItem(subs, 0), "name"), "u1");
    assert_string_equal(str(cJSON_GetArrayItem(subs, 1), "namespace"),
                        "default");
    cJSON_Delete(j);
    ks_apitk_stop(&k);
}

static void test_truncations_and_corruption(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    /* Every prefix of every body: an answer, never a crash or an
     * over-read (ASan watches); the shortest ones are always a 400. */
    for (size_t v = 0; v < sizeof(vecs) / sizeof(vecs[0]); v++) {
        for (size_t n = 0; n < vecs[v].len; n++) {
            char *copy = gf_malloc(n + 1); /* exact size for ASan */
            memcpy(copy, vecs[v].body, n);
            int code;
            cJSON_Delete(post(&k, vecs[v].path, copy, n, &code));
            gf_free(copy);
            assert_true(code == 201 || code == 400 || code == 409 ||
                        code == 422);
            if (n < 10)
                assert_int_equal(code, 400);
        }
    }
    /* Flipping each byte of the ConfigMap body. */
    char buf[sizeof(pb_cm)];
    for (size_t i = 4; i < sizeof(pb_cm) - 1; i++) {
        memcpy(buf, pb_cm, sizeof(pb_cm));
        buf[i] = (char)(buf[i] ^ 0xff);
        int code;
        cJSON_Delete(post(&k, vecs[1].path, buf, sizeof(pb_cm) - 1, &code));
        assert_true(code >= 200 && code < 500);
    }
    ks_apitk_stop(&k);
}

static void test_unknown_kind(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    /* A Job in protobuf: not decoded here, 415 so that clients retry in
     * JSON. */
    static const char job[] = "k8s\0\n\x0f\n\x08"
                              "batch/v1"
                              "\x12\x03"
                              "Job"
                              "\x12\x00";
    int code;
    cJSON *j = post(&k, "/apis/batch/v1/namespaces/default/jobs", job,
                    sizeof(job) - 1, &code);
    assert_int_equal(code, 415);
    assert_string_equal(str(j, "reason"), "UnsupportedMediaType");
    cJSON_Delete(j);
    ks_apitk_stop(&k);
}

#define SSAR "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"

struct asked {
    char last[256];
};

/* Allows everything but delete; records what it was asked. */
static int no_deletes(void *data, const struct gf_ks_authz_attrs *a,
                      struct gf_ks_status *err)
{
    struct asked *s = data;
    snprintf(s->last, sizeof(s->last), "%s|%s|%s|%s|%s|%s", a->user, a->verb,
             a->resource != NULL ? a->resource : "<nil>", a->ns, a->name,
             a->path);
    if (strcmp(a->verb, "delete") != 0)
        return 0;
    return gf_ks_status_set(err, 403, "Forbidden", "no deletes for %s",
                            a->user);
}

static void test_self_subject_access_review(void **state)
{
    (void)state;
    struct asked s = {{0}};
    struct gf_ks_api_opts o = {.authorize = no_deletes, .authorize_data = &s};
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, &o);
    k.user = "bob";
    int code;
    cJSON *j = post(&k, SSAR, pb_ssar_res, sizeof(pb_ssar_res) - 1, &code);
    assert_int_equal(code, 201);
    /* The review itself was a create; the question was a delete. */
    assert_string_equal(s.last, "bob|delete|workloads.kueue.x-k8s.io|team-a||");
    assert_string_equal(str(j, "kind"), "SelfSubjectAccessReview");
    assert_true(cJSON_IsFalse(gf_json_path(j, "status.allowed")));
    assert_string_equal(str(j, "status.reason"), "no deletes for bob");
    cJSON_Delete(j);
    j = post(&k, SSAR, pb_ssar_nonres, sizeof(pb_ssar_nonres) - 1, &code);
    assert_int_equal(code, 201);
    assert_string_equal(s.last, "bob|get|<nil>|||/healthz");
    assert_true(cJSON_IsTrue(gf_json_path(j, "status.allowed")));
    cJSON_Delete(j);
    /* JSON, as the Python client sends it. */
    j = ks_apitk_json(&k, "POST", SSAR, NULL,
                      "{\"spec\":{\"resourceAttributes\":{\"verb\":\"list\","
                      "\"group\":\"batch\",\"resource\":\"jobs\","
                      "\"namespace\":\"n\"}}}",
                      &code);
    assert_int_equal(code, 201);
    assert_true(cJSON_IsTrue(gf_json_path(j, "status.allowed")));
    cJSON_Delete(j);
    j = ks_apitk_json(&k, "POST", SSAR, NULL, "{\"spec\":{}}", &code);
    assert_int_equal(code, 422);
    cJSON_Delete(j);
    /* Nothing is stored: there is nothing to get or list. */
    j = ks_apitk_json(&k, "GET", SSAR, NULL, NULL, &code);
    assert_int_equal(code, 405);
    cJSON_Delete(j);
    ks_apitk_stop(&k);
}

int main(void)
{
    gf_kube_global_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kubectl_bodies),
        cmocka_unit_test(test_truncations_and_corruption),
        cmocka_unit_test(test_unknown_kind),
        cmocka_unit_test(test_self_subject_access_review),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_kube_global_cleanup();
    return rc;
}
