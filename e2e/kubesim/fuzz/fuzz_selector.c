/*
 * Fuzz target for label and field selectors: arbitrary bytes parsed as
 * both kinds. Whatever parses must match consistently with its copy on a
 * fixed object, and failures must carry a 400 Status. Nothing may leak.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "e2e/kubesim/select.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char obj_json[] =
    "{\"metadata\":{\"name\":\"w-1\",\"namespace\":\"team-a\",\"labels\":"
    "{\"app\":\"web\",\"env\":\"prod\",\"kueue.x-k8s.io/queue-name\":\"q\"}},"
    "\"spec\":{\"nodeName\":\"n1\"}}";

static void one(const char *s, bool field, const cJSON *obj)
{
    struct gf_ks_selector *sel = NULL;
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    int rc = gf_ks_selector_parse(s, field, &sel, &err);
    if (rc != 0) {
        GF_BUG_ON(rc != GF_EINVALID || err.code != 400 || sel != NULL);
        GF_BUG_ON(err.message[0] == '\0');
    } else {
        struct gf_ks_selector *d = gf_ks_selector_dup(sel);
        GF_BUG_ON(gf_ks_selector_match(sel, obj) !=
                  gf_ks_selector_match(d, obj));
        gf_ks_selector_match_labels(sel, NULL);
        gf_ks_selector_match_fields(sel, obj);
        gf_ks_selector_free(d);
    }
    gf_ks_selector_free(sel);
    gf_ks_status_clear(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384)
        return 0;
    char *s = gf_strndup((const char *)data, size);
    cJSON *obj = cJSON_Parse(obj_json);
    one(s, false, obj);
    one(s, true, obj);
    cJSON_Delete(obj);
    gf_free(s);
    return 0;
}
