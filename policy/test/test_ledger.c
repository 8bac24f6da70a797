/*
 * Tests for policy/ledger: Kueue's arithmetic for nominal, borrowingLimit
 * and lendingLimit, Workload and lease transitions, freshness (unknown is
 * never zero), and a seeded random sequence of incremental updates checked
 * against a full recompute.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/rand.h"
#include "policy/ledger.h"

#define GPU "nvidia.com/gpu"

static int64_t baseline;

static int setup(void **state)
{
    (void)state;
    baseline = gf_alloc_live();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(gf_alloc_live(), baseline);
    return 0;
}

static void assert_verified(const struct gf_ledger *l)
{
    char why[256] = "";
    int rc = gf_ledger_verify(l, why, sizeof(why));
    if (rc != 0)
        print_error("verify: %s\n", why);
    assert_int_equal(rc, 0);
}

static void test_kueue_arithmetic(void **state)
{
    (void)state;
    /* nominal, lendingLimit, borrowingLimit, used, reserved, lease_out ->
     * borrowed, free, lendable, borrow headroom. The first rows are the
     * examples of Kueue's ClusterQueue page. */
    static const struct {
        int64_t nom, lend, borrow, used, res, out;
        int64_t borrowed, free, lendable, headroom;
    } t[] = {
        /* team-b-cq: nominal 12, lendingLimit 1: lends at most 1 while
         * its usage stays within 12-1=11. */
        {12, 1, GF_NO_LIMIT, 0, 0, 0, 0, 12, 1, INT64_MAX},
        {12, 1, GF_NO_LIMIT, 11, 0, 0, 0, 1, 1, INT64_MAX},
        {12, 1, GF_NO_LIMIT, 12, 0, 0, 0, 0, 0, INT64_MAX},
        /* No lendingLimit: everything unused can be lent. */
        {12, GF_NO_LIMIT, GF_NO_LIMIT, 3, 0, 0, 0, 9, 9, INT64_MAX},
        /* team-a-cq: nominal 9, borrowingLimit 1, borrowing 1 already. */
        {9, GF_NO_LIMIT, 1, 10, 0, 0, 1, 0, 0, 0},
        {9, GF_NO_LIMIT, 1, 9, 0, 0, 0, 0, 0, 1},
        /* Reserved counts as in use, as in Kueue's flavorsUsage. */
        {8, GF_NO_LIMIT, 4, 2, 3, 0, 0, 3, 3, 4},
        {8, GF_NO_LIMIT, 4, 7, 3, 0, 2, 0, 0, 2},
        /* Leases already lent reduce both free and lendable. */
        {16, 8, GF_NO_LIMIT, 4, 0, 5, 0, 7, 3, INT64_MAX},
        {16, 8, GF_NO_LIMIT, 10, 0, 5, 0, 1, 1, INT64_MAX},
        {16, 8, GF_NO_LIMIT, 0, 0, 8, 0, 8, 0, INT64_MAX},
        /* A lendingLimit above nominal lends at most nominal. */
        {4, 100, GF_NO_LIMIT, 1, 0, 0, 0, 3, 3, INT64_MAX},
        {0, GF_NO_LIMIT, GF_NO_LIMIT, 0, 0, 0, 0, 0, 0, INT64_MAX},
        {4, 0, GF_NO_LIMIT, 0, 0, 0, 0, 4, 0, INT64_MAX},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        struct gf_ledger *l = gf_ledger_new(GPU);
        struct gf_cq_quota q = {"a100", GPU, t[i].nom, t[i].borrow, t[i].lend};
        assert_int_equal(gf_ledger_member_set(l, "m", GF_FRESH_SYNCED, 0), 0);
        assert_int_equal(gf_ledger_cq_set(l, "m", "cq", &q, 1), 0);
        if (t[i].used > 0) {
            struct gf_workload w = {
                "m",         "ns",      "used", "u1",           "cq", "a100",
                "batch/Job", t[i].used, 0,      GF_WL_ADMITTED, 0};
            assert_int_equal(gf_ledger_workload_set(l, &w), 0);
        }
        if (t[i].res > 0) {
            struct gf_workload w = {
                "m",         "ns",     "res", "u2",           "cq", "a100",
                "batch/Job", t[i].res, 0,     GF_WL_RESERVED, 0};
            assert_int_equal(gf_ledger_workload_set(l, &w), 0);
        }
        if (t[i].out > 0) {
            struct gf_lease x = {0};
            x.name = "l1";
            x.phase = GF_LEASE_ACTIVE;
            x.epoch = 1;
            x.origin_member = "o";
            x.origin_namespace = "ns";
            x.origin_name = "job";
            x.lender_member = "m";
            x.lender_cq = "cq";
            x.lender_flavor = "a100";
            x.gpus = t[i].out;
            assert_int_equal(gf_ledger_lease_set(l, &x), 0);
        }
        const struct gf_ledger_cell *c =
            gf_ledger_cell(l, "m", "cq", "a100", GPU);
        assert_non_null(c);
        int64_t lendable;
        assert_int_equal(gf_ledger_lendable(c, &lendable), 0);
        if (gf_ledger_cell_borrowed(c) != t[i].borrowed ||
            gf_ledger_cell_free(c) != t[i].free || lendable != t[i].lendable ||
            gf_ledger_cell_borrow_headroom(c) != t[i].headroom) {
            print_error("row %zu: borrowed %lld free %lld lendable %lld "
                        "headroom %lld\n",
                        i, (long long)gf_ledger_cell_borrowed(c),
                        (long long)gf_ledger_cell_free(c), (long long)lendable,
                        (long long)gf_ledger_cell_borrow_headroom(c));
            fail();
        }
        assert_verified(l);
        gf_ledger_free(l);
    }
}

static void test_unknown_is_not_zero(void **state)
{
    (void)state;
    struct gf_ledger *l = gf_ledger_new(GPU);
    struct gf_cq_quota q = {"a100", GPU, 8, GF_NO_LIMIT, GF_NO_LIMIT};
    assert_int_equal(gf_ledger_cq_set(l, "m", "cq", &q, 1), 0);
    const struct gf_ledger_cell *c = gf_ledger_cell(l, "m", "cq", "a100", GPU);
    int64_t v = 99;
    /* Never listed: the member is unknown, nothing is lendable. */
    assert_int_equal(gf_ledger_member(l, "m")->fresh, GF_FRESH_UNKNOWN);
    assert_int_equal(gf_ledger_lendable(c, &v), GF_ESTALE);
    assert_int_equal(v, 0);
    static const enum gf_freshness states[] = {GF_FRESH_STALE,
                                               GF_FRESH_SUSPECT};
    for (size_t i = 0; i < 2; i++) {
        gf_ledger_member_set(l, "m", states[i], 100);
        v = 99;
        assert_int_equal(gf_ledger_lendable(c, &v), GF_ESTALE);
        assert_int_equal(v, 0);
    }
    gf_ledger_member_set(l, "m", GF_FRESH_SYNCED, 100);
    assert_int_equal(gf_ledger_lendable(c, &v), 0);
    assert_int_equal(v, 8);
    assert_int_equal(gf_ledger_member(l, "m")->last_heartbeat_ms, 100);
    gf_ledger_free(l);
}

static void test_workload_transitions(void **state)
{
    (void)state;
    struct gf_ledger *l = gf_ledger_new(GPU);
    struct gf_cq_quota q[] = {{"a100", GPU, 8, GF_NO_LIMIT, GF_NO_LIMIT},
                              {"a100", "cpu", 64, GF_NO_LIMIT, GF_NO_LIMIT},
                              {"h100", GPU, 4, 2, 1}};
    gf_ledger_member_set(l, "m", GF_FRESH_SYNCED, 0);
    assert_int_equal(gf_ledger_cq_set(l, "m", "cq", q, 3), 0);
    const struct gf_ledger_member *m = gf_ledger_member(l, "m");
    assert_int_equal(m->nominal, 12); /* cpu is not the resource */
    const struct gf_ledger_cq *cq = gf_ledger_cq(l, "m", "cq");
    const struct gf_ledger_cell *a = gf_ledger_cell(l, "m", "cq", "a100", GPU);
    const struct gf_ledger_cell *h = gf_ledger_cell(l, "m", "cq", "h100", GPU);
    assert_int_equal(h->borrowing_limit, 2);
    assert_int_equal(h->lending_limit, 1);

    struct gf_workload w = {"m",         "ns", "j", "uid-1",       "cq", NULL,
                            "batch/Job", 3,    5,   GF_WL_PENDING, 1000};
    assert_int_equal(gf_ledger_workload_set(l, &w), 0);
    assert_int_equal(cq->pending, 3);
    assert_int_equal(cq->n_pending, 1);
    assert_int_equal(gf_ledger_n_pending(l), 1);
    assert_ptr_equal(gf_ledger_pending_first(l),
                     gf_ledger_workload(l, "m", "ns", "j"));
    assert_verified(l);

    w.state = GF_WL_RESERVED;
    w.flavor = "a100";
    assert_int_equal(gf_ledger_workload_set(l, &w), 0);
    assert_int_equal(cq->pending, 0);
    assert_int_equal(gf_ledger_n_pending(l), 0);
    assert_int_equal(a->reserved, 3);
    assert_verified(l);

    w.state = GF_WL_ADMITTED;
    assert_int_equal(gf_ledger_workload_set(l, &w), 0);
    assert_int_equal(a->reserved, 0);
    assert_int_equal(a->used, 3);
    /* Evicted and requeued onto another flavor, then admitted there. */
    w.flavor = "h100";
    w.gpus = 4;
    assert_int_equal(gf_ledger_workload_set(l, &w), 0);
    assert_int_equal(a->used, 0);
    assert_int_equal(h->used, 4);
    assert_int_equal(gf_ledger_cell_borrowed(h), 0);
    assert_verified(l);

    w.state = GF_WL_FINISHED;
    assert_int_equal(gf_ledger_workload_set(l, &w), 0);
    assert_int_equal(h->used, 0);
    assert_int_equal(gf_ledger_n_workloads(l), 1);
    assert_int_equal(gf_ledger_workload_delete(l, "m", "ns", "j"), 0);
    assert_int_equal(gf_ledger_workload_delete(l, "m", "ns", "j"),
                     GF_ENOTFOUND);
    assert_int_equal(gf_ledger_n_workloads(l), 0);
    assert_int_equal(cq->n_workloads, 0);

    /* Spec change: h100 removed, a100 resized; usage kept. */
    w.state = GF_WL_ADMITTED;
    w.flavor = "h100";
    gf_ledger_workload_set(l, &w);
    struct gf_cq_quota q2[] = {{"a100", GPU, 16, GF_NO_LIMIT, GF_NO_LIMIT}};
    assert_int_equal(gf_ledger_cq_set(l, "m", "cq", q2, 1), 0);
    assert_int_equal(m->nominal, 16);
    assert_false(h->in_spec);
    assert_int_equal(h->nominal, 0);
    assert_int_equal(h->used, 4);
    assert_int_equal(gf_ledger_cell_borrowed(h), 4);
    assert_verified(l);
    assert_int_equal(gf_ledger_cq_delete(l, "m", "cq"), 0);
    assert_int_equal(m->nominal, 0);
    assert_false(cq->known);
    assert_int_equal(gf_ledger_cq_delete(l, "m", "nope"), GF_ENOTFOUND);
    assert_verified(l);
    gf_ledger_free(l);
}

static struct gf_lease mk_lease(const char *name, enum gf_lease_phase ph,
                                int64_t gpus)
{
    struct gf_lease x;
    memset(&x, 0, sizeof(x));
    x.name = (char *)name;
    x.group = "ml";
    x.phase = ph;
    x.epoch = 1;
    x.origin_member = "east";
    x.origin_namespace = "ns";
    x.origin_name = "job";
    x.origin_cq = "ml";
    x.lender_member = "west";
    x.lender_cq = "ml";
    x.lender_flavor = "a100";
    x.gpus = gpus;
    return x;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The names on the pending list, sorted, as "a b c"; each at most once. */
static const char *pending_names(const struct gf_ledger *l)
{
    static char out[256];
    const char *names[16] = {0};
    size_t n = 0, off = 0;
    for (const struct gf_ledger_wl *w = gf_ledger_pending_first(l); w != NULL;
         w = gf_ledger_pending_next(l, w)) {
        assert_true(n < 16);
        names[n++] = w->name;
    }
    assert_int_equal(n, gf_ledger_n_pending(l));
    qsort(names, n, sizeof(names[0]), cmp_str);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            assert_int_not_equal(strcmp(names[i - 1], names[i]), 0);
        off += (size_t)snprintf(out + off, sizeof(out) - off, "%s%s",
                                i ? " " : "", names[i]);
    }
    return out;
}

/* The pending list through gf_ledger_pending_first/next, as decide walks
 * it: removal from its front, middle and back, a Workload pending again,
 * a replaced pending Workload (on the list once), and one whose
 * ClusterQueue is unknown (never on it). */
static void test_pending_walk(void **state)
{
    (void)state;
    struct gf_ledger *l = gf_ledger_new(GPU);
    struct gf_cq_quota q = {"a100", GPU, 8, GF_NO_LIMIT, GF_NO_LIMIT};
    assert_int_equal(gf_ledger_member_set(l, "m", GF_FRESH_SYNCED, 0), 0);
    assert_int_equal(gf_ledger_cq_set(l, "m", "cq", &q, 1), 0);
    assert_null(gf_ledger_pending_first(l));
    assert_string_equal(pending_names(l), "");

    static const char *const names[] = {"w0", "w1", "w2", "w3", "w4"};
    struct gf_workload w = {"m",         "ns", NULL, "uid",         "cq", NULL,
                            "batch/Job", 1,    0,    GF_WL_PENDING, 0};
    for (size_t i = 0; i < 5; i++) {
        w.name = names[i];
        assert_int_equal(gf_ledger_workload_set(l, &w), 0);
    }
    struct gf_workload lost = w;
    lost.name = "lost";
    lost.cluster_queue = NULL;
    assert_int_equal(gf_ledger_workload_set(l, &lost), 0);
    assert_string_equal(pending_names(l), "w0 w1 w2 w3 w4");
    assert_verified(l);

    /* Replacing a pending Workload keeps it on the list once. */
    w.name = "w1";
    w.gpus = 2;
    assert_int_equal(gf_ledger_workload_set(l, &w), 0);
    assert_string_equal(pending_names(l), "w0 w1 w2 w3 w4");

    /* Off the list from both ends and the middle. */
    w.name = "w4";
    w.state = GF_WL_ADMITTED;
    w.flavor = "a100";
    assert_int_equal(gf_ledger_workload_set(l, &w), 0);
    w.name = "w0";
    w.state = GF_WL_RESERVED;
    assert_int_equal(gf_ledger_workload_set(l, &w), 0);
    assert_int_equal(gf_ledger_workload_delete(l, "m", "ns", "w2"), 0);
    assert_string_equal(pending_names(l), "w1 w3");
    assert_verified(l);

    /* Evicted: pending again. */
    w.name = "w0";
    w.state = GF_WL_PENDING;
    w.flavor = NULL;
    assert_int_equal(gf_ledger_workload_set(l, &w), 0);
    assert_string_equal(pending_names(l), "w0 w1 w3");
    assert_int_equal(gf_ledger_cq(l, "m", "cq")->n_pending, 3);
    assert_verified(l);

    /* A new uid or kind (the record and its strings are one block, made
     * anew): pending or not, it keeps its place and its strings. */
    w.name = "w1";
    w.uid = "uid-2";
    assert_int_equal(gf_ledger_workload_set(l, &w), 0);
    w.name = "w4";
    w.kind = "v1/Pod";
    w.state = GF_WL_ADMITTED;
    w.flavor = "a100";
    assert_int_equal(gf_ledger_workload_set(l, &w), 0);
    assert_string_equal(pending_names(l), "w0 w1 w3");
    assert_string_equal(gf_ledger_workload(l, "m", "ns", "w1")->uid, "uid-2");
    assert_string_equal(gf_ledger_workload(l, "m", "ns", "w4")->kind, "v1/Pod");
    assert_string_equal(gf_ledger_workload(l, "m", "ns", "w4")->name, "w4");
    assert_verified(l);

    assert_int_equal(gf_ledger_workload_delete(l, "m", "ns", "w1"), 0);
    assert_int_equal(gf_ledger_workload_delete(l, "m", "ns", "w3"), 0);
    assert_int_equal(gf_ledger_workload_delete(l, "m", "ns", "w0"), 0);
    assert_int_equal(gf_ledger_workload_delete(l, "m", "ns", "w4"), 0);
    assert_null(gf_ledger_pending_first(l));
    assert_verified(l);
    gf_ledger_free(l);
}

static void test_lease_phases(void **state)
{
    (void)state;
    static const struct {
        enum gf_lease_phase ph;
        bool holds;
    } t[] = {{GF_LEASE_PENDING, true},   {GF_LEASE_ACTIVE, true},
             {GF_LEASE_RELEASING, true}, {GF_LEASE_RECLAIMING, true},
             {GF_LEASE_SUSPECT, true},   {GF_LEASE_EXPIRED, true},
             {GF_LEASE_RELEASED, false}, {GF_LEASE_FENCED, false},
             {GF_LEASE_FAILED, false}};
    struct gf_ledger *l = gf_ledger_new(GPU);
    struct gf_cq_quota q = {"a100", GPU, 10, GF_NO_LIMIT, GF_NO_LIMIT};
    gf_ledger_cq_set(l, "west", "ml", &q, 1);
    gf_ledger_member_set(l, "west", GF_FRESH_SYNCED, 0);
    const struct gf_ledger_cell *c =
        gf_ledger_cell(l, "west", "ml", "a100", GPU);
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        struct gf_lease x = mk_lease("l", t[i].ph, 4);
        x.epoch = i + 1;
        assert_int_equal(gf_ledger_lease_set(l, &x), 0);
        assert_int_equal(gf_lease_holds_quota(t[i].ph), t[i].holds);
        int64_t want = t[i].holds ? 4 : 0;
        int64_t lendable;
        gf_ledger_lendable(c, &lendable);
        assert_int_equal(c->lease_out, want);
        assert_int_equal(lendable, 10 - want);
        assert_int_equal(gf_ledger_member(l, "west")->lent, want);
        assert_int_equal(gf_ledger_member(l, "west")->leases_out,
                         t[i].holds ? 1 : 0);
        assert_int_equal(gf_ledger_member(l, "east")->borrowed, want);
        assert_int_equal(gf_ledger_cq(l, "east", "ml")->lease_in, want);
        assert_int_equal(gf_ledger_pair_lent(l, "west", "east"), want);
        assert_int_equal(gf_ledger_pair_lent(l, "east", "west"), 0);
        size_t live;
        uint64_t epoch;
        gf_ledger_workload_leases(l, "east", "ns", "job", &live, &epoch);
        assert_int_equal(live, t[i].holds ? 1 : 0);
        assert_int_equal(epoch, i + 1);
        assert_verified(l);
        /* Phase names round-trip. */
        enum gf_lease_phase back;
        assert_int_equal(
            gf_lease_phase_parse(gf_lease_phase_name(t[i].ph), &back), 0);
        assert_int_equal(back, t[i].ph);
    }
    assert_int_equal(gf_ledger_lease_delete(l, "l"), 0);
    assert_int_equal(gf_ledger_lease_delete(l, "l"), GF_ENOTFOUND);
    assert_int_equal(c->lease_out, 0);
    assert_verified(l);
    gf_ledger_free(l);
}

/* A deleted lease leaves the Workload's highest epoch (its copy's name
 * must not be reused); a retracted one, set ahead of a create that
 * failed, gives its epoch back so the next lease has the same name. */
static void test_retract_gives_the_epoch_back(void **state)
{
    (void)state;
    struct gf_ledger *l = gf_ledger_new(GPU);
    struct gf_cq_quota q = {"a100", GPU, 10, GF_NO_LIMIT, GF_NO_LIMIT};
    gf_ledger_cq_set(l, "west", "ml", &q, 1);
    size_t live;
    uint64_t epoch;
    struct gf_lease x = mk_lease("l1", GF_LEASE_FAILED, 4);
    x.epoch = 1;
    assert_int_equal(gf_ledger_lease_set(l, &x), 0);
    assert_int_equal(gf_ledger_lease_delete(l, "l1"), 0);
    gf_ledger_workload_leases(l, "east", "ns", "job", &live, &epoch);
    assert_int_equal(epoch, 1);

    x = mk_lease("l2", GF_LEASE_PENDING, 4);
    x.epoch = 2;
    assert_int_equal(gf_ledger_lease_set(l, &x), 0);
    gf_ledger_workload_leases(l, "east", "ns", "job", &live, &epoch);
    assert_int_equal(live, 1);
    assert_int_equal(epoch, 2);
    assert_int_equal(gf_ledger_lease_retract(l, "l2"), 0);
    gf_ledger_workload_leases(l, "east", "ns", "job", &live, &epoch);
    assert_int_equal(live, 0);
    assert_int_equal(epoch, 1);
    assert_int_equal(gf_ledger_lease_retract(l, "l2"), GF_ENOTFOUND);
    assert_int_equal(gf_ledger_cell(l, "west", "ml", "a100", GPU)->lease_out,
                     0);
    assert_verified(l);
    gf_ledger_free(l);
}

static void test_invalid_input(void **state)
{
    (void)state;
    struct gf_ledger *l = gf_ledger_new(GPU);
    char longname[300];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(gf_ledger_member_set(l, longname, GF_FRESH_SYNCED, 0),
                     -ENAMETOOLONG);
    assert_int_equal(gf_ledger_member_set(l, NULL, GF_FRESH_SYNCED, 0),
                     -EINVAL);
    struct gf_cq_quota q = {"a", GPU, -1, GF_NO_LIMIT, GF_NO_LIMIT};
    assert_int_equal(gf_ledger_cq_set(l, "m", "cq", &q, 1), -EINVAL);
    q.nominal = 1;
    q.lending_limit = -5;
    assert_int_equal(gf_ledger_cq_set(l, "m", "cq", &q, 1), -EINVAL);
    struct gf_workload w = {"m",  "ns", "j", NULL,          "cq", NULL,
                            NULL, -2,   0,   GF_WL_PENDING, 0};
    assert_int_equal(gf_ledger_workload_set(l, &w), -EINVAL);
    w.gpus = 1;
    w.name = longname;
    assert_int_equal(gf_ledger_workload_set(l, &w), -EINVAL);
    struct gf_lease x = mk_lease("l", GF_LEASE_ACTIVE, 1);
    x.lender_flavor = NULL;
    assert_int_equal(gf_ledger_lease_set(l, &x), -EINVAL);
    assert_int_equal(gf_ledger_n_workloads(l), 0);
    gf_ledger_free(l);
}

static void test_verify_detects_drift(void **state)
{
    (void)state;
    struct gf_ledger *l = gf_ledger_new(GPU);
    struct gf_cq_quota q = {"a100", GPU, 8, GF_NO_LIMIT, GF_NO_LIMIT};
    gf_ledger_cq_set(l, "m", "cq", &q, 1);
    struct gf_workload w = {"m",    "ns",        "j", "u", "cq",
                            "a100", "batch/Job", 2,   0,   GF_WL_ADMITTED,
                            0};
    gf_ledger_workload_set(l, &w);
    assert_verified(l);
    /* Simulate a lost update: the cross-check must notice. */
    struct gf_ledger_cell *c =
        (struct gf_ledger_cell *)gf_ledger_cell(l, "m", "cq", "a100", GPU);
    c->used++;
    char why[256];
    assert_int_equal(gf_ledger_verify(l, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, "cell m/cq/a100"));
    c->used--;
    assert_verified(l);
    gf_ledger_free(l);
}

/* Random updates of every kind, cross-checked against a recompute. */
static void test_incremental_matches_recompute(void **state)
{
    (void)state;
    static const char *const members[] = {"a", "b", "c"};
    static const char *const cqs[] = {"q1", "q2"};
    static const char *const flavors[] = {"f1", "f2", "f3"};
    int ops = getenv("GF_UNDER_VALGRIND") ? 3000 : 30000;
    struct gf_rand r;
    gf_rand_seed(&r, 42);
    struct gf_ledger *l = gf_ledger_new(GPU);
    char name[32];
    for (int i = 0; i < ops; i++) {
        const char *m = members[gf_rand_range(&r, 0, 2)];
        const char *cq = cqs[gf_rand_range(&r, 0, 1)];
        const char *f = flavors[gf_rand_range(&r, 0, 2)];
        unsigned op = (unsigned)gf_rand_range(&r, 0, 9);
        if (op == 0) {
            struct gf_cq_quota q[2] = {
                {f, GPU, (int64_t)gf_rand_range(&r, 0, 20), GF_NO_LIMIT,
                 (int64_t)gf_rand_range(&r, 0, 5)},
                {flavors[gf_rand_range(&r, 0, 2)], GPU,
                 (int64_t)gf_rand_range(&r, 0, 20), 3, GF_NO_LIMIT}};
            assert_int_equal(
                gf_ledger_cq_set(l, m, cq, q, gf_rand_range(&r, 0, 2)), 0);
        } else if (op == 1) {
            gf_ledger_cq_delete(l, m, cq);
        } else if (op <= 6) {
            snprintf(name, sizeof(name), "w%u",
                     (unsigned)gf_rand_range(&r, 0, 60));
            struct gf_workload w = {m,
                                    "ns",
                                    name,
                                    "uid",
                                    gf_rand_range(&r, 0, 9) == 0 ? NULL : cq,
                                    f,
                                    "batch/Job",
                                    (int64_t)gf_rand_range(&r, 0, 8),
                                    (int32_t)gf_rand_range(&r, 0, 3),
                                    (enum gf_wl_state)gf_rand_range(&r, 0, 4),
                                    (int64_t)i};
            assert_int_equal(gf_ledger_workload_set(l, &w), 0);
        } else if (op == 7) {
            snprintf(name, sizeof(name), "w%u",
                     (unsigned)gf_rand_range(&r, 0, 60));
            gf_ledger_workload_delete(l, m, "ns", name);
        } else if (op == 8) {
            snprintf(name, sizeof(name), "l%u",
                     (unsigned)gf_rand_range(&r, 0, 20));
            struct gf_lease x = mk_lease(name, GF_LEASE_ACTIVE, 1);
            x.phase = (enum gf_lease_phase)gf_rand_range(
                &r, 0, GF_LEASE_PHASE_COUNT - 1);
            x.lender_member = (char *)m;
            x.lender_cq = (char *)cq;
            x.lender_flavor = (char *)f;
            x.origin_member = (char *)members[gf_rand_range(&r, 0, 2)];
            x.origin_name = name;
            x.gpus = (int64_t)gf_rand_range(&r, 0, 6);
            assert_int_equal(gf_ledger_lease_set(l, &x), 0);
        } else {
            snprintf(name, sizeof(name), "l%u",
                     (unsigned)gf_rand_range(&r, 0, 20));
            gf_ledger_lease_delete(l, name);
        }
        if (i % 97 == 0)
            assert_verified(l);
    }
    assert_verified(l);
    gf_ledger_free(l);
}

int main(void)
{
    gf_alloc_global_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kueue_arithmetic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_is_not_zero, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_workload_transitions, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pending_walk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_phases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retract_gives_the_epoch_back,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_detects_drift, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_incremental_matches_recompute,
                                        setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_alloc_global_cleanup();
    return rc;
}
