/*
 * Fuzz target for the FederationPolicy parser: any byte string must either
 * parse into a policy or produce diagnostics, never crash or leak, and
 * every diagnostic must format.
 */
#include <stddef.h>
#include <stdint.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "policy/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gf_policy_diag d;
    struct gf_policy *p = NULL;
    struct gf_buf out = GF_BUF_INIT(1 << 20);

    gf_policy_diag_init(&d);
    if (gf_policy_parse((const char *)data, size, &p, &d) == 0) {
        /* Exercise the lookups decide() uses on whatever was accepted. */
        for (size_t l = 0; l < p->n_members; l++)
            for (size_t b = 0; b < p->n_members && b < 8; b++)
                for (size_t g = 0; g < p->n_groups && g < 4; g++) {
                    struct gf_policy_pair pr;
                    gf_policy_pair(p, l, b, g, &pr);
                }
        for (size_t g = 0; g < p->n_groups; g++)
            for (size_t q = 0; q < p->groups[g].n_queues; q++)
                (void)gf_policy_group_of(
                    p, p->members[p->groups[g].queues[q].member].name,
                    p->groups[g].queues[q].cluster_queue);
    }
    (void)gf_policy_diag_format(&d, "fuzz", &out);
    gf_buf_free(&out);
    gf_policy_free(p);
    gf_policy_diag_free(&d);
    return 0;
}
