/*
 * Fuzz target for the three patch formats, on trees and through the store.
 *
 * Input: one byte choosing the patch type (and the subresource), then
 * either "DOC\0PATCH" or just PATCH (applied to a fixed Workload-like
 * object). The tree-level result must print and re-parse to an equal
 * tree; the store must keep its invariants whatever the patched object
 * says (name, uid, resourceVersion, finalizers, deletionTimestamp,
 * ownerReferences), and everything must be freed.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/err.h"
#include "e2e/kubesim/patch.h"
#include "e2e/kubesim/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char base_json[] =
    "{\"apiVersion\":\"kueue.x-k8s.io/v1beta2\",\"kind\":\"Workload\","
    "\"metadata\":{\"name\":\"w\",\"namespace\":\"a\",\"labels\":{\"x\":"
    "\"y\"},\"finalizers\":[\"f/1\"]},\"spec\":{\"active\":true,"
    "\"podSets\":[{\"name\":\"main\",\"count\":1,\"template\":{\"spec\":{"
    "\"containers\":[{\"name\":\"c\",\"image\":\"i\",\"env\":[{\"name\":"
    "\"A\",\"value\":\"1\"}]}]}}}]},\"status\":{\"conditions\":[{\"type\":"
    "\"Admitted\",\"status\":\"True\"}]}}";

static struct gf_ks_rtype *mk_type(const char *group, const char *resource,
                                   const char *kind, bool has_status)
{
    struct gf_ks_rtype *t = gf_calloc(1, sizeof(*t));
    t->group = gf_strdup(group);
    t->resource = gf_strdup(resource);
    t->kind = gf_strdup(kind);
    t->versions = gf_calloc(1, sizeof(*t->versions));
    t->versions[0].name = gf_strdup("v1");
    t->n_versions = 1;
    t->namespaced = true;
    t->has_status = has_status;
    return t;
}

static void tree_level(enum gf_ks_patch_type type, const char *doc_s,
                       size_t doc_n, const char *patch, size_t n)
{
    cJSON *doc = doc_s != NULL ? cJSON_ParseWithLength(doc_s, doc_n)
                               : cJSON_Parse(base_json);
    if (doc == NULL)
        return;
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    int rc = gf_ks_patch_apply(type, &doc, patch, n, &err);
    if (rc == 0 && doc != NULL) {
        char *s = cJSON_PrintUnformatted(doc);
        if (s != NULL) {
            cJSON *back = cJSON_Parse(s);
            /* cJSON prints huge or non-finite numbers lossily: skip. */
            GF_BUG_ON(back == NULL && strstr(s, "null") == NULL);
            cJSON_Delete(back);
            gf_free(s);
        }
    } else if (rc != 0) {
        GF_BUG_ON(err.code != 400 && err.code != 422 && err.code != 413);
    }
    gf_ks_status_clear(&err);
    cJSON_Delete(doc);
}

static void store_level(uint8_t sel, const char *patch, size_t n)
{
    struct gf_clock clock;
    gf_clock_init_manual(&clock, 0, 1795000000000LL);
    struct gf_ks_store_opts o = {.clock = &clock, .uid_seed = 1};
    struct gf_ks_store *st = gf_ks_store_new(&o);
    gf_ks_store_register(
        st, mk_type("kueue.x-k8s.io", "workloads", "Workload", true));
    const struct gf_ks_rtype *t =
        gf_ks_store_type(st, "kueue.x-k8s.io", "workloads");
    cJSON *base = cJSON_Parse(base_json);
    struct gf_ks_obj *owner = NULL;
    GF_BUG_ON(gf_ks_store_create(st, t, "a", base, GF_KS_MAIN, &owner, NULL) !=
              0);
    /* A dependent, so GC paths run when the patch deletes the owner. */
    cJSON *dep = cJSON_Parse("{\"metadata\":{\"name\":\"d\"}}");
    cJSON *refs = cJSON_AddArrayToObject(cJSON_GetObjectItem(dep, "metadata"),
                                         "ownerReferences");
    cJSON *r = cJSON_CreateObject();
    cJSON *oj = gf_ks_obj_parse(owner);
    cJSON_AddStringToObject(
        r, "uid",
        cJSON_GetObjectItem(cJSON_GetObjectItem(oj, "metadata"), "uid")
            ->valuestring);
    cJSON_AddItemToArray(refs, r);
    cJSON_Delete(oj);
    gf_ks_store_create(st, t, "a", dep, GF_KS_MAIN, NULL, NULL);
    cJSON_Delete(dep);
    cJSON_Delete(base);
    if (sel & 0x10) {
        struct gf_ks_delete_opts d = {.propagation =
                                          (enum gf_ks_propagation)(sel & 3)};
        gf_ks_store_delete(st, t, "a", "w", &d, NULL, NULL, NULL);
    }
    uint64_t rv = gf_ks_store_rv(st);
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    struct gf_ks_obj *out = NULL;
    int rc = gf_ks_store_patch(
        st, t, "a", "w", (enum gf_ks_patch_type)((sel >> 2) % 3), patch, n,
        (sel & 0x20) ? GF_KS_STATUS : GF_KS_MAIN, &out, &err);
    if (rc == 0 && out != NULL) {
        /* What the store returns names the object it was asked for. */
        GF_BUG_ON(strcmp(out->name, "w") != 0 || strcmp(out->ns, "a") != 0);
        GF_BUG_ON(out->rv > gf_ks_store_rv(st));
        cJSON *j = gf_ks_obj_parse(out);
        cJSON_Delete(j);
    } else if (rc != 0) {
        GF_BUG_ON(gf_ks_store_rv(st) != rv);
    }
    gf_ks_status_clear(&err);
    gf_ks_store_free(st);
    gf_clock_close(&clock);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    uint8_t sel = data[0];
    const char *rest = (const char *)data + 1;
    size_t n = size - 1;
    const char *nul = memchr(rest, '\0', n);
    enum gf_ks_patch_type type = (enum gf_ks_patch_type)(sel % 3);
    if (nul != NULL) {
        size_t dn = (size_t)(nul - rest);
        tree_level(type, rest, dn, nul + 1, n - dn - 1);
        return 0;
    }
    tree_level(type, NULL, 0, rest, n);
    store_level(sel, rest, n);
    return 0;
}
