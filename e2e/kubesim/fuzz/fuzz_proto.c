/*
 * Fuzz target for the protobuf body decoder (kubectl sends built-in kinds
 * as application/vnd.kubernetes.protobuf): any bytes either decode to a
 * JSON object naming its apiVersion and kind, or fail with 400 or 415;
 * never a crash, a hang or a leak. The corpus starts from the bodies
 * kubectl 1.32 sends.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/json.h"
#include "e2e/kubesim/api_toolkit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What a decode must give: an object that names its kind, or a 400/415. */
static void check(int rc, const cJSON *out, const struct gf_ks_status *err)
{
    if (rc != 0) {
        GF_BUG_ON(out != NULL);
        GF_BUG_ON(err->code != 400 && err->code != 415);
        return;
    }
    GF_BUG_ON(!cJSON_IsObject(out));
    GF_BUG_ON(gf_json_str(out, "apiVersion") == NULL ||
              gf_json_str(out, "kind") == NULL);
    char *s = cJSON_PrintUnformatted(out);
    GF_BUG_ON(s == NULL);
    cJSON_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t live = gf_alloc_live();
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    cJSON *out = NULL;
    int rc = gf__ks_proto_decode((const char *)data, size, &out, &err);
    check(rc, out, &err);
    cJSON_Delete(out);
    gf_ks_status_clear(&err);
    GF_BUG_ON(gf_alloc_live() != live);
    return 0;
}
