/*
 * Fuzz target for YAML request bodies (kubectl apply/create send YAML as
 * JSON, but clients may send application/yaml): any text either becomes
 * one JSON document or fails with 400; never a crash or a leak. (The
 * node cap against "billion laughs" documents is tested in
 * test_api_crd.c: a seed that expands to the cap costs a second a run
 * here and would starve the fuzzer.)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "e2e/kubesim/api_toolkit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t live = gf_alloc_live();
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    cJSON *out = NULL;
    int rc = gf__ks_yaml_doc((const char *)data, size, &out, &err);
    if (rc == 0) {
        GF_BUG_ON(out == NULL);
        char *s = cJSON_PrintUnformatted(out);
        GF_BUG_ON(s == NULL);
        cJSON_free(s);
    } else {
        GF_BUG_ON(out != NULL);
        GF_BUG_ON(err.code != 400);
    }
    cJSON_Delete(out);
    gf_ks_status_clear(&err);
    GF_BUG_ON(gf_alloc_live() != live);
    return 0;
}
