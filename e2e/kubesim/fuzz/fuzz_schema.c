/*
 * Fuzz target for structural validation: input is "SCHEMA\0OBJECT", both
 * JSON. Any schema (however odd or deep) and any object must validate or
 * fail with a 422/400 Status without crashing or leaking; validating the
 * pruned and defaulted result again must give the same verdict.
 */
#include <stdint.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "e2e/kubesim/schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    const char *in = (const char *)data;
    const char *nul = memchr(in, '\0', size);
    if (nul == NULL)
        return 0;
    cJSON *schema = cJSON_ParseWithLength(in, (size_t)(nul - in));
    cJSON *obj = cJSON_ParseWithLength(nul + 1, size - (size_t)(nul - in) - 1);
    if (schema != NULL && obj != NULL) {
        struct gf_ks_schema_cache *c = gf_ks_schema_cache_new();
        struct gf_ks_schema *s = gf_ks_schema_intern(c, schema);
        struct gf_ks_schema *s2 = gf_ks_schema_intern(c, schema);
        GF_BUG_ON(s != s2 || gf_ks_schema_cache_size(c) != 1);
        struct gf_ks_status err;
        gf_ks_status_init(&err);
        int rc = gf_ks_schema_validate(s, obj, "K", "g", "n", &err);
        GF_BUG_ON(rc != 0 && err.code != 422 && err.code != 400);
        if (rc == 0)
            GF_BUG_ON(gf_ks_schema_validate(s, obj, "K", "g", "n", &err) != 0);
        gf_ks_status_clear(&err);
        gf_ks_schema_unref(s);
        gf_ks_schema_unref(s2);
        gf_ks_schema_cache_free(c);
    }
    cJSON_Delete(schema);
    cJSON_Delete(obj);
    return 0;
}
