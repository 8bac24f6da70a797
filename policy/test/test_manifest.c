/*
 * The annotated example in manifests/policy/ is what admins copy: it must
 * stay valid, and mean what its comments say. Tests run from the
 * repository root.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/file.h"
#include "policy/config.h"

#define MANIFEST "manifests/policy/federation-policy.yaml"

static struct gf_policy *load(void)
{
    char *data;
    size_t len;
    assert_int_equal(gf_file_read(MANIFEST, GF_POLICY_MAX_BYTES, &data, &len),
                     0);
    struct gf_policy *p = NULL;
    struct gf_policy_diag d;
    gf_policy_diag_init(&d);
    int rc = gf_policy_parse(data, len, &p, &d);
    if (rc != 0) {
        struct gf_buf out = GF_BUF_INIT(1 << 16);
        gf_policy_diag_format(&d, MANIFEST, &out);
        fail_msg("%s", gf_buf_cstr(&out));
    }
    gf_policy_diag_free(&d);
    gf_free(data);
    return p;
}

static void test_manifest_is_valid_and_complete(void **state)
{
    (void)state;
    int64_t live = gf_alloc_live();
    struct gf_policy *p = load();
    assert_string_equal(p->name, "gpu-federation");
    assert_string_equal(p->resource, "nvidia.com/gpu");
    assert_int_equal(p->n_members, 3);
    assert_int_equal(p->n_groups, 2);
    assert_int_equal(p->n_classes, 1);
    assert_int_equal(p->n_rules, 3);
    assert_true(p->default_deny);
    assert_int_equal(p->n_locality, 2);
    /* members: fencing, labels, caps */
    int east = gf_policy_member_index(p, "east");
    int north = gf_policy_member_index(p, "north");
    int west = gf_policy_member_index(p, "west");
    assert_true(east >= 0 && north >= 0 && west >= 0);
    assert_int_equal(p->members[east].fencing, GF_FENCING_AGENT);
    assert_int_equal(p->members[north].fencing, GF_FENCING_NONE);
    assert_string_equal(gf_policy_member_label(&p->members[east],
                                               "topology.kubernetes.io/region"),
                        "us-east");
    assert_int_equal(p->members[east].max_lent.gpus, 32);
    assert_int_equal(p->members[east].max_lent.fraction_ppm, 500000);
    assert_int_equal(p->members[west].max_lent.gpus, GF_NO_CAP);
    assert_int_equal(p->members[west].max_lent.fraction_ppm, 750000);
    /* flavor equivalence across names */
    assert_string_equal(gf_policy_flavor_class(p, "west", "gpu-a100-80gb"),
                        "a100-80g");
    assert_string_equal(gf_policy_flavor_class(p, "east", "a100"), "a100-80g");
    /* groups: modes, ClusterQueues, overflow filters, reserve, mapping */
    int ml = gf_policy_group_index(p, "ml-research");
    assert_true(ml >= 0);
    const struct gf_policy_group *g = &p->groups[ml];
    assert_int_equal(g->modes, GF_MODE_REDIRECT | GF_MODE_LOAN);
    /* loans move only the budget class, in every member's own name */
    assert_int_equal(g->n_budget_flavors, 1);
    assert_true(gf_policy_budget_flavor(p, g, "west", "gpu-a100-80gb"));
    assert_true(gf_policy_budget_flavor(p, g, "east", "a100"));
    assert_false(gf_policy_budget_flavor(p, g, "east", "h100"));
    assert_int_equal(gf_policy_group_of(p, "north", "research"), ml);
    assert_int_equal(gf_policy_group_of(p, "east", "serving"),
                     gf_policy_group_index(p, "inference"));
    assert_true(gf_policy_may_overflow(g, "research", "batch/Job", 100, NULL));
    assert_false(gf_policy_may_overflow(g, "research", "batch/Job", 99, NULL));
    assert_false(gf_policy_may_overflow(g, "default", "batch/Job", 500, NULL));
    assert_int_equal(gf_policy_reserve(&g->reserve, 40), 4);
    assert_int_equal(gf_policy_reserve(&g->reserve, 8), 2);
    assert_string_equal(gf_policy_map_namespace(g, (size_t)west, "research"),
                        "research-east-overflow");
    /* sharing: the member set, per-pair caps, default deny */
    struct gf_policy_pair pair;
    gf_policy_pair(p, (size_t)north, (size_t)west, (size_t)ml, &pair);
    assert_true(pair.allowed);
    assert_string_equal(pair.rule, "east-coast-shares");
    assert_int_equal(pair.max.gpus, 16);
    gf_policy_pair(p, (size_t)west, (size_t)east, (size_t)ml, &pair);
    assert_true(pair.allowed);
    assert_int_equal(pair.max.gpus, 24);
    gf_policy_pair(p, (size_t)north, (size_t)east,
                   (size_t)gf_policy_group_index(p, "inference"), &pair);
    assert_false(pair.allowed);
    /* timing as written */
    assert_int_equal(p->timing.overflow_after_ms, 120000);
    assert_int_equal(p->timing.lease_duration_ms, 30000);
    assert_int_equal(p->timing.clock_drift_ppm, 10000);
    assert_int_equal(p->n_victim_order, 2);
    assert_int_equal(p->timing.min_run_time_ms, 600000);
    assert_int_equal(p->groups[ml].max_reclaims_per_hour, 6);
    assert_int_equal(
        p->groups[gf_policy_group_index(p, "inference")].max_reclaims_per_hour,
        GF_NO_CAP);
    gf_policy_free(p);
    assert_int_equal(gf_alloc_live(), live);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_manifest_is_valid_and_complete),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
