/*
 * Fuzz target for the CEL subset of CRD validation rules: arbitrary bytes
 * compiled as a rule. A rule that compiles is evaluated on a fixed object
 * as self and as oldSelf; compiling and evaluating must never crash, leak
 * or overflow the stack, and every failure must say why.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "e2e/kubesim/cel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char obj_json[] =
    "{\"coveredResources\":[\"cpu\",\"nvidia.com/gpu\"],\"flavors\":[{"
    "\"name\":\"a100\",\"resources\":[{\"name\":\"cpu\",\"nominalQuota\":8},"
    "{\"name\":\"nvidia.com/gpu\",\"nominalQuota\":4,\"borrowingLimit\":2}]"
    "}],\"levels\":[{\"nodeLabel\":\"rack\"},{\"nodeLabel\":"
    "\"kubernetes.io/hostname\"}],\"n\":1.5,\"b\":true,\"z\":null}";

static void check_eval(const struct gf_ks_cel *c, const cJSON *self,
                       const cJSON *old)
{
    char why[256];
    int rc = gf_ks_cel_eval(c, self, old, why, sizeof(why));
    GF_BUG_ON(rc != 0 && rc != 1 && rc != -EINVAL);
    GF_BUG_ON(rc == -EINVAL && why[0] == '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > GF_KS_CEL_MAX_LEN)
        return 0;
    char *rule = gf_malloc(size + 1);
    memcpy(rule, data, size);
    rule[size] = '\0';
    struct gf_ks_cel *c = NULL;
    char why[256];
    int rc = gf_ks_cel_compile(rule, &c, why, sizeof(why));
    GF_BUG_ON(rc != 0 && rc != -EINVAL && rc != -ENOTSUP);
    GF_BUG_ON(rc != 0 && (c != NULL || why[0] == '\0'));
    if (rc == 0) {
        cJSON *obj = cJSON_Parse(obj_json);
        check_eval(c, obj, obj);
        check_eval(c, cJSON_GetObjectItem(obj, "flavors"), NULL);
        cJSON_Delete(obj);
        gf_ks_cel_free(c);
    }
    gf_free(rule);
    return 0;
}
