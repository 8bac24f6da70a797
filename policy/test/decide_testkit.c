/*
 * decide_testkit: the fixture of the decide tests (decide_testkit.h).
 */
#include "policy/test/decide_testkit.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/buf.h"

struct gf_policy *gf_dtk_policy(const char *yaml)
{
    struct gf_policy *p = NULL;
    struct gf_policy_diag d;
    gf_policy_diag_init(&d);
    if (gf_policy_parse(yaml, strlen(yaml), &p, &d) != 0) {
        struct gf_buf out = GF_BUF_INIT(1 << 16);
        gf_policy_diag_format(&d, "test", &out);
        fail_msg("%s", gf_buf_cstr(&out));
    }
    gf_policy_diag_free(&d);
    return p;
}

void gf_dtk_init(struct gf_dtk *f, const char *yaml)
{
    memset(f, 0, sizeof(*f));
    f->baseline = gf_alloc_live();
    f->p = gf_dtk_policy(yaml);
    f->l = gf_ledger_new(GF_DTK_GPU);
    const char *m[] = {"east", "west", "north"};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(gf_ledger_member_set(f->l, m[i], GF_FRESH_SYNCED, 0),
                         0);
        assert_int_equal(gf_ledger_ns_set(f->l, m[i], "team", true), 0);
    }
}

void gf_dtk_done(struct gf_dtk *f)
{
    gf_actions_free(&f->a);
    gf_ledger_free(f->l);
    gf_policy_free(f->p);
    assert_int_equal(gf_alloc_live(), f->baseline);
}

struct gf_lease gf_dtk_lease(const char *name, const char *origin,
                             const char *lender, enum gf_lease_phase ph)
{
    /* The record's strings are not const: gf_ledger_lease_set copies
     * them and never writes through these. */
    return (struct gf_lease){.name = (char *)name,
                             .group = "ml",
                             .phase = ph,
                             .epoch = 1,
                             .origin_member = "east",
                             .origin_namespace = "team",
                             .origin_name = (char *)origin,
                             .origin_uid = (char *)origin,
                             .origin_cq = "ml",
                             .lender_member = (char *)lender,
                             .lender_cq = "ml",
                             .lender_flavor = "a100"};
}
