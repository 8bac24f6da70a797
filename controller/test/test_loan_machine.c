/*
 * Tests for controller/loan_machine.
 *
 * First the loan protocol step by step, one test per row of the table
 * (happy path, hold not reserved in time, W admitted without the loan, W
 * finished or deleted, the term run out, the hold lost, the grant reverted,
 * a release that must stop W's borrowing, a partition on either side, the
 * borrower fenced, strays after the end). Then the S2 property: random
 * interleavings of three loans' writes with what the world does meanwhile
 * (Kueue in both members, stale caches, hub crashes between any two
 * writes, partitions, the borrower's agent reverting its grants), with the
 * granted quota checked against the reserved holds in every state, and
 * every run settling to no hold and no grant once the faults stop.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/err.h"
#include "controller/internal.h"
#include "controller/loan_machine.h"

/* --- step by step ------------------------------------------------------ */

static struct gf_ln_view fresh(void)
{
    /* Just recorded: W pends at home, no hold yet, no grant CQ yet. */
    return (struct gf_ln_view){
        .phase = GF_LEASE_PENDING,
        .origin = {.wl = GF_LM_PRESENT, .job = GF_LM_PRESENT},
        .hold = {.wl = GF_LM_ABSENT},
        .grant = {.cq = GF_LM_ABSENT},
        .now_ms = 1000000,
        .expires_ms = 1030000,
    };
}

#define EXPECT_WRITE(v, w)                                                     \
    do {                                                                       \
        struct gf_ln_step st_ = gf_ln_next(&(v));                              \
        assert_string_equal(gf_ln_write_name(st_.write), gf_ln_write_name(w)); \
    } while (0)

#define EXPECT_PHASE(v, p, r)                                                  \
    do {                                                                       \
        struct gf_ln_step st_ = gf_ln_next(&(v));                              \
        assert_int_equal(st_.write, GF_LN_SET_PHASE);                          \
        assert_string_equal(gf_lease_phase_name(st_.phase),                    \
                            gf_lease_phase_name(p));                           \
        assert_string_equal(gf_ln_reason_name(st_.reason),                     \
                            gf_ln_reason_name(r));                             \
    } while (0)

/* Moves the view to the phase the last step set. */
static void take(struct gf_ln_view *v)
{
    struct gf_ln_step st = gf_ln_next(v);
    assert_int_equal(st.write, GF_LN_SET_PHASE);
    v->phase = st.phase;
    v->reason = st.reason;
    v->grant.granted = st.granted;
    v->cmd = GF_LN_CMD_NONE;
}

static struct gf_ln_view active_loan(void)
{
    struct gf_ln_view v = fresh();
    v.phase = GF_LEASE_ACTIVE;
    v.hold = (struct gf_ln_hold){
        .wl = GF_LM_PRESENT, .ours = true, .reserved = true};
    v.grant = (struct gf_ln_grant){
        .cq = GF_LM_PRESENT, .nominal = 4, .share_in = true, .granted = true};
    v.origin.reserved = true;
    v.origin.marked = true;
    return v;
}

static void test_loan_happy_path_in_protocol_order(void **state)
{
    (void)state;
    struct gf_ln_view v = fresh();
    /* 1. the hold in B */
    EXPECT_WRITE(v, GF_LN_CREATE_HOLD);
    v.hold = (struct gf_ln_hold){.wl = GF_LM_PRESENT, .ours = true};
    /* 2. no raise before B's Kueue has reserved it (S2) */
    EXPECT_WRITE(v, GF_LN_WAIT);
    v.hold.reserved = true;
    /* 3. mark W, so that A's agent can find it without the hub, and only
     * then raise the grant in A */
    EXPECT_WRITE(v, GF_LN_MARK_ORIGIN);
    v.origin.marked = true;
    EXPECT_WRITE(v, GF_LN_RAISE_GRANT);
    v.grant = (struct gf_ln_grant){
        .cq = GF_LM_PRESENT, .nominal = 4, .share_in = true};
    /* 4. Active, with status.granted recorded */
    struct gf_ln_step st = gf_ln_next(&v);
    assert_string_equal(st.event, "LoanGranted");
    assert_true(st.granted);
    EXPECT_PHASE(v, GF_LEASE_ACTIVE, GF_LN_R_NONE);
    take(&v);
    assert_true(v.grant.granted);
    v.origin.reserved = true;
    EXPECT_WRITE(v, GF_LN_WAIT);
    /* 5. W finished: release, lower first, then the hold */
    v.origin.reserved = false;
    v.origin.finished = true;
    EXPECT_PHASE(v, GF_LEASE_RELEASING, GF_LN_R_COMPLETED);
    take(&v);
    EXPECT_WRITE(v, GF_LN_LOWER_GRANT);
    v.grant.share_in = false;
    v.grant.nominal = 0;
    EXPECT_WRITE(v, GF_LN_DELETE_HOLD);
    v.hold.deleting = true;
    EXPECT_WRITE(v, GF_LN_WAIT);
    v.hold = (struct gf_ln_hold){.wl = GF_LM_ABSENT};
    EXPECT_WRITE(v, GF_LN_CONFIRM_HOLD_GONE);
    v.hold.confirmed_gone = true;
    /* 6. the mark goes last */
    EXPECT_WRITE(v, GF_LN_UNMARK_ORIGIN);
    v.origin.marked = false;
    st = gf_ln_next(&v);
    assert_false(st.granted);
    EXPECT_PHASE(v, GF_LEASE_RELEASED, GF_LN_R_COMPLETED);
    take(&v);
    EXPECT_WRITE(v, GF_LN_WAIT);
}

static void test_unknown_never_reads_as_absent(void **state)
{
    (void)state;
    struct gf_ln_view v = fresh();
    v.hold.wl = GF_LM_UNKNOWN;
    EXPECT_WRITE(v, GF_LN_WAIT); /* no second hold on a cache not synced */
    v.hold = (struct gf_ln_hold){
        .wl = GF_LM_PRESENT, .ours = true, .reserved = true};
    v.grant.cq = GF_LM_UNKNOWN;
    EXPECT_WRITE(v, GF_LN_WAIT); /* no raise into an unknown grant */
    v.origin.wl = GF_LM_UNKNOWN;
    v.grant.cq = GF_LM_PRESENT;
    EXPECT_WRITE(v, GF_LN_WAIT);
    /* Releasing: an unknown grant is never taken as lowered. */
    v = active_loan();
    v.phase = GF_LEASE_RELEASING;
    v.reason = GF_LN_R_RECLAIMED;
    v.grant.cq = GF_LM_UNKNOWN;
    EXPECT_WRITE(v, GF_LN_WAIT);
    v.grant = (struct gf_ln_grant){.cq = GF_LM_PRESENT};
    v.origin.reserved = false;
    v.hold.wl = GF_LM_UNKNOWN;
    EXPECT_WRITE(v, GF_LN_WAIT); /* hold not known gone */
}

static void test_hold_not_reserved_in_time_is_withdrawn(void **state)
{
    (void)state;
    struct gf_ln_view v = fresh();
    v.hold = (struct gf_ln_hold){.wl = GF_LM_PRESENT, .ours = true};
    v.cmd = GF_LN_CMD_WITHDRAW;
    assert_string_equal(gf_ln_next(&v).event, "Withdrawn");
    EXPECT_PHASE(v, GF_LEASE_RELEASING, GF_LN_R_NOT_ADMITTED);
    take(&v);
    /* Nothing was granted: the hold goes at once. */
    EXPECT_WRITE(v, GF_LN_DELETE_HOLD);
    v.hold = (struct gf_ln_hold){.wl = GF_LM_ABSENT};
    EXPECT_WRITE(v, GF_LN_CONFIRM_HOLD_GONE);
    v.hold.confirmed_gone = true;
    EXPECT_PHASE(v, GF_LEASE_RELEASED, GF_LN_R_NOT_ADMITTED);
}

static void test_hold_reserved_after_withdraw_is_not_granted(void **state)
{
    (void)state;
    /* B's Kueue reserved the hold while the withdrawal was under way:
     * the release never raises. */
    struct gf_ln_view v = fresh();
    v.phase = GF_LEASE_RELEASING;
    v.reason = GF_LN_R_NOT_ADMITTED;
    v.hold = (struct gf_ln_hold){
        .wl = GF_LM_PRESENT, .ours = true, .reserved = true};
    EXPECT_WRITE(v, GF_LN_DELETE_HOLD);
}

static void test_origin_admitted_without_the_loan(void **state)
{
    (void)state;
    struct gf_ln_view v = fresh();
    v.hold = (struct gf_ln_hold){.wl = GF_LM_PRESENT, .ours = true};
    v.origin.reserved = true; /* its ClusterQueue had room again */
    EXPECT_PHASE(v, GF_LEASE_RELEASING, GF_LN_R_ORIGIN_ADMITTED);
    take(&v);
    /* No grant to lower, and W's borrowing is not the loan's: W is left
     * alone, the hold goes. */
    EXPECT_WRITE(v, GF_LN_DELETE_HOLD);
}

static void
test_crash_after_raise_goes_active_without_second_raise(void **state)
{
    (void)state;
    /* The raise landed, the phase write did not: status.granted is still
     * false, the grant's own annotation says the share is in. */
    struct gf_ln_view v = fresh();
    v.hold = (struct gf_ln_hold){
        .wl = GF_LM_PRESENT, .ours = true, .reserved = true};
    v.grant = (struct gf_ln_grant){
        .cq = GF_LM_PRESENT, .nominal = 4, .share_in = true};
    EXPECT_PHASE(v, GF_LEASE_ACTIVE, GF_LN_R_NONE);
    /* Before A's API server has answered, W admitted through the loan is
     * not taken for W admitted without it. */
    v.grant = (struct gf_ln_grant){.cq = GF_LM_UNKNOWN};
    v.origin.reserved = true;
    EXPECT_WRITE(v, GF_LN_WAIT);
    v.grant = (struct gf_ln_grant){
        .cq = GF_LM_PRESENT, .nominal = 4, .share_in = true};
    EXPECT_PHASE(v, GF_LEASE_ACTIVE, GF_LN_R_NONE);
    /* Even with a WITHDRAW from decide: Active's rules take over. */
    v.cmd = GF_LN_CMD_WITHDRAW;
    EXPECT_PHASE(v, GF_LEASE_ACTIVE, GF_LN_R_NONE);
}

static void test_finished_or_deleted_origin_releases_at_once(void **state)
{
    (void)state;
    struct gf_ln_view v = active_loan();
    v.origin.job = GF_LM_ABSENT;
    EXPECT_PHASE(v, GF_LEASE_RELEASING, GF_LN_R_CANCELLED);
    v = active_loan();
    v.origin.wl = GF_LM_ABSENT;
    EXPECT_PHASE(v, GF_LEASE_RELEASING, GF_LN_R_CANCELLED);
    v = active_loan();
    v.origin.finished = true;
    v.origin.reserved = false;
    EXPECT_PHASE(v, GF_LEASE_RELEASING, GF_LN_R_COMPLETED);
    /* In Pending too: no hold is created for a W that has gone. */
    v = fresh();
    v.origin.job = GF_LM_ABSENT;
    EXPECT_PHASE(v, GF_LEASE_RELEASING, GF_LN_R_CANCELLED);
}

static void test_unrenewed_term_releases(void **state)
{
    (void)state;
    struct gf_ln_view v = active_loan();
    v.origin.reserved = false; /* evicted at home: decide stops renewing */
    EXPECT_WRITE(v, GF_LN_WAIT);
    v.now_ms = v.expires_ms;
    EXPECT_PHASE(v, GF_LEASE_RELEASING, GF_LN_R_UNUSED);
}

/* A term that ran out while W holds quota under the loan (a partition or
 * a hub restart kept decide from renewing it) is no reason to take the
 * loan back: W is using it, and decide renews it on its next pass. */
static void test_missed_renewal_of_a_used_loan_keeps_it(void **state)
{
    (void)state;
    struct gf_ln_view v = active_loan();
    v.origin.reserved = true;
    v.now_ms = v.expires_ms + 5000;
    EXPECT_WRITE(v, GF_LN_WAIT);
    /* Nor while W cannot be seen. */
    v.origin.reserved = false;
    v.origin.wl = GF_LM_UNKNOWN;
    EXPECT_WRITE(v, GF_LN_WAIT);
}

/*
 * A raise whose answer was lost may have landed unseen: the cache then
 * shows the grant without this lease's share while it is in. The hub
 * must not act on that (a release would delete the hold that backs the
 * grant): the grant is unknown, and the wait becomes a GET of it.
 */
static void test_a_lost_raise_leaves_the_grant_unknown(void **state)
{
    (void)state;
    struct gf_ln_view v = active_loan();
    v.phase = GF_LEASE_RELEASING;
    v.reason = GF_LN_R_COMPLETED;
    v.origin.reserved = false;
    v.origin.finished = true;
    v.grant.share_in = false; /* what the lagging cache shows */
    bool get = true;
    struct gf_ln_view w = v;
    assert_int_equal(gf__loan_step(&w, false, &get).write, GF_LN_DELETE_HOLD);
    assert_false(get);
    w = v;
    assert_int_equal(gf__loan_step(&w, true, &get).write, GF_LN_WAIT);
    assert_true(get);
    /* Pending, W admitted through the unseen raise is not W admitted
     * without the loan. */
    v = active_loan();
    v.phase = GF_LEASE_PENDING;
    v.grant.share_in = false;
    w = v;
    assert_int_equal(gf__loan_step(&w, false, &get).write, GF_LN_SET_PHASE);
    w = v;
    assert_int_equal(gf__loan_step(&w, true, &get).write, GF_LN_WAIT);
    assert_true(get);
    /* Where the machine may act with the grant unknown it does: a fenced
     * borrower's agent has reverted its grants, so the hold may go. */
    v = active_loan();
    v.phase = GF_LEASE_FENCED;
    w = v;
    assert_int_equal(gf__loan_step(&w, true, &get).write, GF_LN_DELETE_HOLD);
    assert_false(get);
}

/* Which answers leave a raise's outcome unknown. */
static void test_which_answers_are_lost(void **state)
{
    (void)state;
    struct gf_api_status st = {0};
    struct gf_kube_result r = {.status = &st};
    assert_false(gf__loan_answer_lost(&r)); /* 200 */
    r.err = st.err = GF_ETRANSPORT;         /* no answer at all */
    assert_true(gf__loan_answer_lost(&r));
    st.code = 503;
    r.err = st.err = GF_ESERVER;
    assert_true(gf__loan_answer_lost(&r));
    st.code = 409;
    r.err = st.err = GF_ECONFLICT;
    assert_false(gf__loan_answer_lost(&r));
    st.code = 422;
    r.err = st.err = GF_EINVALID;
    assert_false(gf__loan_answer_lost(&r));
    r.err = GF_ECANCELED;
    st.code = 0;
    assert_false(gf__loan_answer_lost(&r));
}

static void test_hold_lost_releases_grant(void **state)
{
    (void)state;
    struct gf_ln_view v = active_loan();
    v.hold.evicted = true;
    v.hold.reserved = false;
    assert_string_equal(gf_ln_next(&v).event, "LoanLost");
    EXPECT_PHASE(v, GF_LEASE_RELEASING, GF_LN_R_HOLD_LOST);
    take(&v);
    EXPECT_WRITE(v, GF_LN_LOWER_GRANT);
    /* Lowered, and W still over the cohort's quota: the lender's Kueue
     * took its quota back (reclaimWithinCohort preempted the hold), so W
     * is deactivated at once, with no grace period. */
    v.grant.share_in = false;
    v.grant.nominal = 0;
    v.cohort_over = true;
    EXPECT_WRITE(v, GF_LN_DEACTIVATE_ORIGIN);
    assert_int_equal(v.origin.deadline_ms, 0);
    /* With the hold still reserved (any other release) the grace period
     * comes first, announced on W. */
    v.hold.evicted = false;
    v.hold.reserved = true;
    EXPECT_WRITE(v, GF_LN_MARK_DEADLINE);
    v = active_loan();
    v.hold = (struct gf_ln_hold){.wl = GF_LM_ABSENT};
    EXPECT_PHASE(v, GF_LEASE_RELEASING, GF_LN_R_HOLD_LOST);
    /* An unknown lender is not a lost hold. */
    v = active_loan();
    v.hold.wl = GF_LM_UNKNOWN;
    EXPECT_WRITE(v, GF_LN_WAIT);
}

static void test_grant_reverted_by_the_agent(void **state)
{
    (void)state;
    struct gf_ln_view v = active_loan();
    v.grant.share_in = false;
    v.grant.nominal = 0;
    assert_string_equal(gf_ln_next(&v).event, "LoanReverted");
    EXPECT_PHASE(v, GF_LEASE_RELEASING, GF_LN_R_REVERTED);
    take(&v);
    assert_false(v.grant.granted);
    v.origin.reserved = false;
    EXPECT_WRITE(v, GF_LN_DELETE_HOLD);
}

static void test_release_stops_borrowing_before_the_hold_goes(void **state)
{
    (void)state;
    struct gf_ln_view v = active_loan();
    v.cmd = GF_LN_CMD_RELEASE;
    v.cmd_reason = GF_LN_R_RECLAIMED;
    EXPECT_PHASE(v, GF_LEASE_RELEASING, GF_LN_R_RECLAIMED);
    take(&v);
    EXPECT_WRITE(v, GF_LN_LOWER_GRANT);
    v.grant.share_in = false;
    v.grant.nominal = 0;
    /* The cohort is over its quota of F' now: W, which runs, gets the
     * reclaim's deadline first, then is deactivated once it passes. */
    v.cohort_over = true;
    struct gf_ln_step st = gf_ln_next(&v);
    assert_int_equal(st.write, GF_LN_MARK_DEADLINE);
    assert_string_equal(st.event, "LoanRevoking");
    v.origin.deadline_ms = v.now_ms + 30000;
    EXPECT_WRITE(v, GF_LN_WAIT);
    v.now_ms = v.origin.deadline_ms;
    st = gf_ln_next(&v);
    assert_int_equal(st.write, GF_LN_DEACTIVATE_ORIGIN);
    assert_string_equal(st.event, "LoanRevoked");
    v.origin.revoked = true;
    /* Until W holds no quota, the hold stays (S2). */
    EXPECT_WRITE(v, GF_LN_WAIT);
    v.origin.reserved = false;
    v.cohort_over = false;
    EXPECT_WRITE(v, GF_LN_DELETE_HOLD);
    v.hold = (struct gf_ln_hold){.wl = GF_LM_ABSENT, .confirmed_gone = true};
    /* W queues at home again like any Workload. */
    st = gf_ln_next(&v);
    assert_int_equal(st.write, GF_LN_REACTIVATE_ORIGIN);
    assert_string_equal(st.event, "Requeued");
    v.origin.revoked = false;
    EXPECT_WRITE(v, GF_LN_UNMARK_ORIGIN);
    v.origin.marked = false;
    EXPECT_PHASE(v, GF_LEASE_RELEASED, GF_LN_R_RECLAIMED);
}

static void test_release_leaves_w_alone_when_the_cohort_has_room(void **state)
{
    (void)state;
    struct gf_ln_view v = active_loan();
    v.phase = GF_LEASE_RELEASING;
    v.reason = GF_LN_R_DRAINED;
    v.grant.share_in = false;
    v.cohort_over = false; /* W fits in the cohort without the loan */
    EXPECT_WRITE(v, GF_LN_DELETE_HOLD);
}

/* Kueue pools A's cohort: the grant admitted other Workloads ahead of W,
 * so W holds nothing while the cohort runs over its quota on the loan.
 * Chaos seeds 2 and 5 found the hold deleted at that moment and B's own
 * Workloads admitted on it: more GPUs ran across members than budgets. */
static void test_release_keeps_the_hold_while_others_borrow(void **state)
{
    (void)state;
    struct gf_ln_view v = active_loan();
    v.origin.reserved = false; /* W still pends at home */
    v.phase = GF_LEASE_RECLAIMING;
    EXPECT_WRITE(v, GF_LN_LOWER_GRANT);
    v.grant.share_in = false;
    v.grant.nominal = 0;
    v.cohort_over = true;
    struct gf_ln_step st = gf_ln_next(&v);
    assert_int_equal(st.write, GF_LN_WAIT);
    assert_string_equal(st.rule,
                        "cohort over quota without the origin: others borrow");
    /* W finished or deleted meanwhile: the others still borrow. */
    v.origin.finished = true;
    EXPECT_WRITE(v, GF_LN_WAIT);
    v.origin.finished = false;
    v.origin.wl = GF_LM_ABSENT;
    EXPECT_WRITE(v, GF_LN_WAIT);
    v.origin.wl = GF_LM_PRESENT;
    /* The others finished: the cohort fits, the hold goes. */
    v.cohort_over = false;
    EXPECT_WRITE(v, GF_LN_DELETE_HOLD);
    /* A hold already gone (a fenced borrower's) has nothing to wait for. */
    v.cohort_over = true;
    v.hold = (struct gf_ln_hold){.wl = GF_LM_ABSENT, .confirmed_gone = true};
    EXPECT_WRITE(v, GF_LN_UNMARK_ORIGIN);
    v.origin.marked = false;
    EXPECT_PHASE(v, GF_LEASE_RELEASED, GF_LN_R_RECLAIMED);
}

/* Chaos S2 (quick run): north reclaimed west's loan 50 ms after the
 * grant admitted W, and the hold went 20 ms later. Until Kueue has
 * written the cohort's ClusterQueue status since the lowering, the usage
 * that says whether the cohort fits is older than the lowered grant:
 * unknown, and the hold stays whatever the stale figures say. */
static void
test_release_waits_for_usage_written_after_the_lowering(void **state)
{
    (void)state;
    struct gf_ln_view v = active_loan();
    v.phase = GF_LEASE_RECLAIMING;
    v.grant.share_in = false;
    v.grant.nominal = 0;
    v.cohort_over = false;
    v.cohort_stale = true;
    struct gf_ln_step st = gf_ln_next(&v);
    assert_int_equal(st.write, GF_LN_WAIT);
    assert_string_equal(st.rule,
                        "cohort's usage not yet written since the lowering");
    /* Neither does a stale "over" revoke W: W is left alone until known. */
    v.cohort_over = true;
    EXPECT_WRITE(v, GF_LN_WAIT);
    v.origin.reserved = false;
    v.cohort_over = false;
    EXPECT_WRITE(v, GF_LN_WAIT);
    /* Written: the cohort fits without the loan, the hold goes. */
    v.cohort_stale = false;
    EXPECT_WRITE(v, GF_LN_DELETE_HOLD);
    /* A hold already gone has nothing to protect. */
    v.cohort_stale = true;
    v.hold = (struct gf_ln_hold){.wl = GF_LM_ABSENT, .confirmed_gone = true};
    EXPECT_WRITE(v, GF_LN_UNMARK_ORIGIN);
}

static void test_reclaiming_phase_is_a_release(void **state)
{
    (void)state;
    struct gf_ln_view v = active_loan();
    v.phase = GF_LEASE_RECLAIMING;
    EXPECT_WRITE(v, GF_LN_LOWER_GRANT);
    v.grant.share_in = false;
    v.origin.reserved = false;
    v.hold = (struct gf_ln_hold){.wl = GF_LM_ABSENT, .confirmed_gone = true};
    EXPECT_WRITE(v, GF_LN_UNMARK_ORIGIN);
    v.origin.marked = false;
    EXPECT_PHASE(v, GF_LEASE_RELEASED, GF_LN_R_RECLAIMED);
}

static void test_partition_keeps_hold_and_grant_then_heals(void **state)
{
    (void)state;
    struct gf_ln_view v = active_loan();
    v.cmd = GF_LN_CMD_SUSPECT;
    v.hold.wl = GF_LM_UNKNOWN; /* the lender went silent */
    EXPECT_PHASE(v, GF_LEASE_SUSPECT, GF_LN_R_NONE);
    take(&v);
    assert_true(v.grant.granted);
    /* Nothing is written while a member is unknown. */
    v.cmd = GF_LN_CMD_SUSPECT;
    EXPECT_WRITE(v, GF_LN_WAIT);
    v.cmd = GF_LN_CMD_NONE;
    EXPECT_WRITE(v, GF_LN_WAIT);
    /* Healed: observation decides. */
    v.hold.wl = GF_LM_PRESENT;
    EXPECT_PHASE(v, GF_LEASE_ACTIVE, GF_LN_R_NONE);
    v.grant.share_in = false;
    EXPECT_PHASE(v, GF_LEASE_PENDING, GF_LN_R_NONE);
    v.hold = (struct gf_ln_hold){.wl = GF_LM_ABSENT};
    EXPECT_PHASE(v, GF_LEASE_RELEASING, GF_LN_R_HOLD_LOST);
    /* A Pending loan goes Suspect too, and an unknown grant's status is
     * recorded as it was. */
    v = fresh();
    v.grant = (struct gf_ln_grant){.cq = GF_LM_UNKNOWN, .granted = true};
    v.cmd = GF_LN_CMD_SUSPECT;
    struct gf_ln_step st = gf_ln_next(&v);
    assert_true(st.granted);
    EXPECT_PHASE(v, GF_LEASE_SUSPECT, GF_LN_R_NONE);
}

static void test_fenced_borrower_frees_the_hold_while_silent(void **state)
{
    (void)state;
    struct gf_ln_view v = active_loan();
    v.phase = GF_LEASE_SUSPECT;
    v.grant.cq = GF_LM_UNKNOWN;
    v.origin.wl = v.origin.job = GF_LM_UNKNOWN;
    v.cmd = GF_LN_CMD_FENCE;
    EXPECT_PHASE(v, GF_LEASE_FENCED, GF_LN_R_FENCED);
    take(&v);
    /* The borrower's agent has set its grants to 0: the hold may go
     * although the borrower cannot be seen. */
    EXPECT_WRITE(v, GF_LN_DELETE_HOLD);
    v.hold = (struct gf_ln_hold){.wl = GF_LM_ABSENT, .confirmed_gone = true};
    EXPECT_WRITE(v, GF_LN_WAIT);
    /* Back: a grant still raised (the agent failed) is lowered. */
    v.grant = (struct gf_ln_grant){
        .cq = GF_LM_PRESENT, .nominal = 4, .share_in = true};
    v.origin.wl = v.origin.job = GF_LM_PRESENT;
    EXPECT_WRITE(v, GF_LN_LOWER_GRANT);
    v.grant = (struct gf_ln_grant){.cq = GF_LM_PRESENT};
    EXPECT_WRITE(v, GF_LN_UNMARK_ORIGIN);
    v.origin.marked = false;
    EXPECT_PHASE(v, GF_LEASE_RELEASED, GF_LN_R_FENCED);
}

static void test_mark_comes_before_the_raise_and_grants_nothing(void **state)
{
    (void)state;
    struct gf_ln_view v = fresh();
    /* Marked, hold not yet reserved: no raise (the mark grants nothing) */
    v.origin.marked = true;
    v.hold = (struct gf_ln_hold){.wl = GF_LM_PRESENT, .ours = true};
    EXPECT_WRITE(v, GF_LN_WAIT);
    /* Reserved but unmarked (a mark lost, another lease's mark): mark
     * first, never raise a grant the agent could not trace to W. */
    v.hold.reserved = true;
    v.origin.marked = false;
    EXPECT_WRITE(v, GF_LN_MARK_ORIGIN);
    v.origin.marked = true;
    EXPECT_WRITE(v, GF_LN_RAISE_GRANT);
    /* A loan released before its raise takes its mark off too. */
    v.cmd = GF_LN_CMD_WITHDRAW;
    EXPECT_PHASE(v, GF_LEASE_RELEASING, GF_LN_R_NOT_ADMITTED);
    take(&v);
    EXPECT_WRITE(v, GF_LN_DELETE_HOLD);
    v.hold = (struct gf_ln_hold){.wl = GF_LM_ABSENT, .confirmed_gone = true};
    EXPECT_WRITE(v, GF_LN_UNMARK_ORIGIN);
    v.origin.marked = false;
    EXPECT_PHASE(v, GF_LEASE_RELEASED, GF_LN_R_NOT_ADMITTED);
}

/* The agent fenced W (the borrower lost the hub): the loan ends Fenced,
 * and W runs again at home once, after the grant is lowered and the hold
 * is gone. */
static void test_fenced_origin_ends_the_loan_and_runs_once_after(void **state)
{
    (void)state;
    struct gf_ln_view v = active_loan();
    /* The agent reverted the grant and fenced W; Kueue has not yet
     * evicted W. Fenced, not Reverted. */
    v.grant.share_in = false;
    v.grant.nominal = 0;
    v.origin.fenced = true;
    struct gf_ln_step st = gf_ln_next(&v);
    assert_string_equal(st.event, "LoanFenced");
    EXPECT_PHASE(v, GF_LEASE_RELEASING, GF_LN_R_FENCED);
    take(&v);
    /* W still holds quota: the hold waits, cohort over or not. */
    EXPECT_WRITE(v, GF_LN_WAIT);
    v.origin.reserved = false;
    EXPECT_WRITE(v, GF_LN_DELETE_HOLD);
    v.hold = (struct gf_ln_hold){.wl = GF_LM_ABSENT, .confirmed_gone = true};
    /* Only now W queues at home again, fence and mark off in one write. */
    st = gf_ln_next(&v);
    assert_int_equal(st.write, GF_LN_REACTIVATE_FENCED);
    assert_string_equal(st.event, "Requeued");
    v.origin.fenced = false;
    v.origin.marked = false;
    EXPECT_PHASE(v, GF_LEASE_RELEASED, GF_LN_R_FENCED);
    take(&v);
    /* Once: W admitted at home again is not touched. */
    v.origin.reserved = true;
    EXPECT_WRITE(v, GF_LN_WAIT);

    /* A heal before the hub's own fencing time: Suspect sees W fenced
     * and releases, instead of going back to Pending and raising again. */
    v = active_loan();
    v.phase = GF_LEASE_SUSPECT;
    v.grant.share_in = false;
    v.origin.fenced = true;
    v.origin.reserved = false;
    EXPECT_PHASE(v, GF_LEASE_RELEASING, GF_LN_R_FENCED);
    /* The same in Pending (fenced between the mark and the raise). */
    v = fresh();
    v.hold = (struct gf_ln_hold){
        .wl = GF_LM_PRESENT, .ours = true, .reserved = true};
    v.origin.marked = v.origin.fenced = true;
    EXPECT_PHASE(v, GF_LEASE_RELEASING, GF_LN_R_FENCED);
    /* A W that finished before the fence is simply complete. */
    v.origin.finished = true;
    EXPECT_PHASE(v, GF_LEASE_RELEASING, GF_LN_R_COMPLETED);
}

/* The cohort's other Workloads the agent fenced for this loan queue again
 * when it ends, after the hold is gone, even after the lease is final. */
static void test_others_fenced_for_the_loan_are_reactivated(void **state)
{
    (void)state;
    struct gf_ln_view v = active_loan();
    v.phase = GF_LEASE_RELEASING;
    v.reason = GF_LN_R_FENCED;
    v.grant.share_in = false;
    v.origin.reserved = false;
    v.origin.fenced = true;
    v.others_fenced = true;
    EXPECT_WRITE(v, GF_LN_DELETE_HOLD);
    v.hold = (struct gf_ln_hold){.wl = GF_LM_ABSENT, .confirmed_gone = true};
    EXPECT_WRITE(v, GF_LN_REACTIVATE_FENCED);
    v.origin.fenced = v.origin.marked = false;
    EXPECT_WRITE(v, GF_LN_REACTIVATE_OTHER);
    v.others_fenced = false;
    EXPECT_PHASE(v, GF_LEASE_RELEASED, GF_LN_R_FENCED);
    take(&v);
    /* One fenced after the end (the agent's patch landed late). */
    v.others_fenced = true;
    EXPECT_WRITE(v, GF_LN_REACTIVATE_OTHER);
    /* ...but never while a stray hold of ours may still back a grant. */
    v.hold = (struct gf_ln_hold){
        .wl = GF_LM_PRESENT, .ours = true, .reserved = true};
    EXPECT_WRITE(v, GF_LN_DELETE_HOLD);
}

static void test_failures_end_failed_without_touching_others(void **state)
{
    (void)state;
    struct gf_ln_view v = fresh();
    v.hold.create_refused = true;
    EXPECT_PHASE(v, GF_LEASE_RELEASING, GF_LN_R_CREATE_REFUSED);
    take(&v);
    EXPECT_WRITE(v, GF_LN_CONFIRM_HOLD_GONE);
    v.hold.confirmed_gone = true;
    EXPECT_PHASE(v, GF_LEASE_FAILED, GF_LN_R_CREATE_REFUSED);
    v = fresh();
    v.hold = (struct gf_ln_hold){.wl = GF_LM_PRESENT, .reserved = true};
    EXPECT_PHASE(v, GF_LEASE_RELEASING, GF_LN_R_NAME_TAKEN);
    take(&v);
    /* Someone else's object under the name: never deleted. */
    EXPECT_PHASE(v, GF_LEASE_FAILED, GF_LN_R_NAME_TAKEN);
}

static void test_strays_after_the_end_go_in_s2_order(void **state)
{
    (void)state;
    struct gf_ln_view v = active_loan();
    v.phase = GF_LEASE_RELEASED;
    v.reason = GF_LN_R_COMPLETED;
    EXPECT_WRITE(v, GF_LN_LOWER_GRANT);
    v.grant.share_in = false;
    EXPECT_WRITE(v, GF_LN_DELETE_HOLD);
    v.hold.deleting = true;
    EXPECT_WRITE(v, GF_LN_WAIT);
    /* A stray hold is not deleted while the grant is unknown. */
    v.hold.deleting = false;
    v.grant.cq = GF_LM_UNKNOWN;
    EXPECT_WRITE(v, GF_LN_WAIT);
}

static void test_reason_names_round_trip(void **state)
{
    (void)state;
    for (int r = 1; r < GF_LN_R_COUNT; r++) {
        enum gf_ln_reason back = GF_LN_R_NONE;
        const char *name = gf_ln_reason_name((enum gf_ln_reason)r);
        assert_true(name[0] != '\0');
        assert_int_equal(gf_ln_reason_parse(name, &back), 0);
        assert_int_equal(back, r);
    }
    enum gf_ln_reason out;
    assert_int_equal(gf_ln_reason_parse("Nope", &out), -EINVAL);
    for (int w = GF_LN_WAIT; w <= GF_LN_REACTIVATE_OTHER; w++)
        assert_string_not_equal(gf_ln_write_name((enum gf_ln_write)w), "?");
}

/* --- S2 under random interleavings --------------------------------------- */

/*
 * The world: one borrower ClusterQueue Q_A whose own quota is in use, so
 * its Workloads run only on loans, and one lender with LENDER_IDLE idle
 * GPUs; NL loans, each for its own W. The truth is what the API servers
 * hold; the hub sees each member through a cache that lags Kueue (it is
 * refreshed by a sync event) and is write-through for the hub's own writes
 * whose answers arrive. A crash loses an answer after its write landed and
 * the caches with it: the restarted hub sees the members as unknown until
 * it has listed them again.
 */
#define NL 3
#define LENDER_IDLE 6
#define GRACE_MS 50

struct obj_hold {
    bool exists, deleting, reserved;
};

struct obj_w {
    bool exists, reserved, finished, revoked;
    int64_t deadline_ms;
    /* the mark, the agent's fence of a marked W, and the agent's fence of
     * another Workload for loan fenced_for (-1: none) */
    bool marked, fenced;
    int fenced_for;
};

struct member_a {
    bool cq_exists;
    int64_t nominal;
    unsigned loans; /* gpufed.io/loans: one bit per lease */
    struct obj_w w[NL];
};

struct member_b {
    struct obj_hold hold[NL];
};

struct loan {
    enum gf_lease_phase phase;
    enum gf_ln_reason reason;
    bool granted;
    bool confirmed_gone; /* the hub's memory, per phase */
    int64_t g, expires_ms;
};

struct world {
    struct member_a a, sa; /* truth and the hub's cache */
    struct member_b b, sb;
    bool a_up, b_up, a_synced, b_synced;
    bool reverted; /* the borrower's agent has fenced (reverted grants) */
    struct loan l[NL];
    int64_t now_ms;
    uint64_t rng;
};

static uint64_t rnd(struct world *w)
{
    /* xorshift64: deterministic, so a failing seed replays. */
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    return w->rng;
}

static bool chance(struct world *w, unsigned percent)
{
    return rnd(w) % 100 < percent;
}

static bool live(enum gf_lease_phase p)
{
    return p != GF_LEASE_RELEASED && p != GF_LEASE_FAILED;
}

static int64_t cohort_usage(const struct member_a *a, const struct world *w)
{
    int64_t u = 0;
    for (int i = 0; i < NL; i++)
        u += a->w[i].reserved ? w->l[i].g : 0;
    return u;
}

static int64_t reserved_holds(const struct world *w)
{
    int64_t r = 0;
    for (int i = 0; i < NL; i++)
        r += w->b.hold[i].reserved ? w->l[i].g : 0;
    return r;
}

static struct gf_ln_view view_of(const struct world *w, int i,
                                 enum gf_ln_cmd cmd, enum gf_ln_reason why)
{
    const struct loan *l = &w->l[i];
    struct gf_ln_view v = {
        .phase = l->phase,
        .reason = l->reason,
        .cmd = cmd,
        .cmd_reason = why,
        .now_ms = w->now_ms,
        .expires_ms = l->expires_ms,
    };
    v.grant.granted = l->granted;
    if (!w->a_synced) {
        v.grant.cq = GF_LM_UNKNOWN;
        v.origin.wl = v.origin.job = GF_LM_UNKNOWN;
    } else {
        const struct obj_w *o = &w->sa.w[i];
        v.grant.cq = w->sa.cq_exists ? GF_LM_PRESENT : GF_LM_ABSENT;
        v.grant.nominal = w->sa.nominal;
        v.grant.share_in = (w->sa.loans >> i) & 1U;
        v.origin.wl = v.origin.job = o->exists ? GF_LM_PRESENT : GF_LM_ABSENT;
        v.origin.reserved = o->reserved;
        v.origin.finished = o->finished;
        v.origin.revoked = o->revoked;
        v.origin.deadline_ms = o->deadline_ms;
        v.origin.marked = o->marked;
        v.origin.fenced = o->marked && o->fenced;
        v.cohort_over = cohort_usage(&w->sa, w) > w->sa.nominal;
        for (int j = 0; j < NL; j++)
            v.others_fenced |= w->sa.w[j].fenced_for == i;
    }
    if (!w->b_synced) {
        v.hold.wl = GF_LM_UNKNOWN;
    } else {
        const struct obj_hold *h = &w->sb.hold[i];
        v.hold.wl = h->exists ? GF_LM_PRESENT : GF_LM_ABSENT;
        v.hold.ours = true;
        v.hold.deleting = h->deleting;
        v.hold.reserved = h->reserved;
    }
    v.hold.confirmed_gone = l->confirmed_gone;
    return v;
}

static bool w_cache_fresh(const struct world *w, int i)
{
    const struct obj_w *t = &w->a.w[i], *c = &w->sa.w[i];
    return t->exists && c->exists == t->exists && c->reserved == t->reserved &&
           c->finished == t->finished && c->revoked == t->revoked &&
           c->deadline_ms == t->deadline_ms && c->marked == t->marked &&
           c->fenced == t->fenced && c->fenced_for == t->fenced_for;
}

/* RAISE_GRANT or LOWER_GRANT, as the writer does them. */
static void apply_grant(struct world *w, int i, bool raise)
{
    unsigned bit = 1U << i;
    /* The resourceVersion precondition: a cache behind the truth makes
     * the update fail (409), and the hub re-observes. */
    if (!w->a_up || w->sa.cq_exists != w->a.cq_exists ||
        w->sa.nominal != w->a.nominal || w->sa.loans != w->a.loans)
        return;
    w->a.cq_exists = true;
    if (raise && !(w->a.loans & bit)) {
        w->a.loans |= bit;
        w->a.nominal += w->l[i].g;
    } else if (!raise && (w->a.loans & bit)) {
        w->a.loans &= ~bit;
        w->a.nominal -= w->l[i].g;
    }
    w->sa.cq_exists = true;
    w->sa.nominal = w->a.nominal;
    w->sa.loans = w->a.loans;
}

/* The mark and the agent's fences, as A's API server takes them. */
static void apply_notes(struct world *w, int i, enum gf_ln_write wr)
{
    struct obj_w *t = &w->a.w[i], *c = &w->sa.w[i];
    if (!w->a_up)
        return;
    if (wr == GF_LN_MARK_ORIGIN) {
        /* W's resourceVersion precondition */
        if (w_cache_fresh(w, i))
            t->marked = c->marked = true;
    } else if (wr == GF_LN_REACTIVATE_OTHER) {
        for (int j = 0; j < NL; j++) {
            if (w->a.w[j].fenced_for != i)
                continue;
            w->a.w[j].fenced_for = w->sa.w[j].fenced_for = -1;
            return;
        }
    } else if (t->exists && t->marked) {
        /* the test op on the mark */
        t->marked = c->marked = false;
        if (wr == GF_LN_REACTIVATE_FENCED)
            t->fenced = c->fenced = false;
    }
}

/* Carries out one write as the API servers would. The answer reaches
 * the cache unless the hub crashes right after the write landed. */
static void apply(struct world *w, int i, const struct gf_ln_step *st)
{
    struct loan *l = &w->l[i];
    switch (st->write) {
    case GF_LN_WAIT:
        return;
    case GF_LN_SET_PHASE:
        l->phase = st->phase;
        l->reason = st->reason;
        l->granted = st->granted;
        l->confirmed_gone = false;
        return;
    case GF_LN_CREATE_HOLD:
        if (!w->b_up || w->b.hold[i].exists)
            return;
        w->b.hold[i] = (struct obj_hold){.exists = true};
        w->sb.hold[i] = w->b.hold[i];
        return;
    case GF_LN_DELETE_HOLD:
        if (!w->b_up || !w->b.hold[i].exists)
            return;
        w->b.hold[i].deleting = true;
        w->sb.hold[i] = w->b.hold[i];
        return;
    case GF_LN_CONFIRM_HOLD_GONE:
        if (w->b_up && !w->b.hold[i].exists)
            l->confirmed_gone = true;
        return;
    case GF_LN_RAISE_GRANT:
    case GF_LN_LOWER_GRANT:
        apply_grant(w, i, st->write == GF_LN_RAISE_GRANT);
        return;
    case GF_LN_MARK_DEADLINE:
        if (!w->a_up || !w_cache_fresh(w, i))
            return;
        w->a.w[i].deadline_ms = w->now_ms + GRACE_MS;
        w->sa.w[i].deadline_ms = w->a.w[i].deadline_ms;
        return;
    case GF_LN_DEACTIVATE_ORIGIN:
        /* W's resourceVersion precondition: a W that finished or was
         * evicted since the cache saw it is left alone. */
        if (!w->a_up || !w_cache_fresh(w, i))
            return;
        w->a.w[i].revoked = true;
        w->sa.w[i].revoked = true;
        return;
    case GF_LN_REACTIVATE_ORIGIN:
        if (!w->a_up || !w->a.w[i].exists)
            return;
        w->a.w[i].revoked = false;
        w->sa.w[i].revoked = false;
        return;
    case GF_LN_MARK_ORIGIN:
    case GF_LN_UNMARK_ORIGIN:
    case GF_LN_REACTIVATE_FENCED:
    case GF_LN_REACTIVATE_OTHER:
        apply_notes(w, i, st->write);
        return;
    }
}

/* What decide would command for loan i now: SUSPECT while a member is
 * unknown, WITHDRAW (admitTimeout) and RELEASE (a reclaim or a drain) at
 * random, FENCE only once the borrower's agent has certainly reverted. */
static enum gf_ln_cmd command(struct world *w, int i, bool faults,
                              enum gf_ln_reason *why)
{
    const struct loan *l = &w->l[i];
    *why = GF_LN_R_NONE;
    if (l->phase == GF_LEASE_SUSPECT && w->reverted && !w->a_up)
        return GF_LN_CMD_FENCE;
    if ((!w->a_synced || !w->b_synced) &&
        (l->phase == GF_LEASE_PENDING || l->phase == GF_LEASE_ACTIVE))
        return GF_LN_CMD_SUSPECT;
    if (l->phase == GF_LEASE_PENDING && chance(w, faults ? 5 : 10))
        return GF_LN_CMD_WITHDRAW;
    if (faults && l->phase == GF_LEASE_ACTIVE && chance(w, 3)) {
        *why = chance(w, 50) ? GF_LN_R_RECLAIMED : GF_LN_R_DRAINED;
        return GF_LN_CMD_RELEASE;
    }
    return GF_LN_CMD_NONE;
}

/* Kueue in both members: B reserves a hold against its idle quota and
 * finishes a deletion; A admits an active W while the cohort has room,
 * evicts a revoked one, and runs an admitted one to its end. Decide
 * renews an Active loan whose W holds quota. */
static void kueue(struct world *w)
{
    int i = (int)(rnd(w) % NL);
    struct obj_hold *h = &w->b.hold[i];
    struct obj_w *o = &w->a.w[i];
    switch (rnd(w) % 5) {
    case 0:
        if (h->exists && !h->deleting && !h->reserved &&
            reserved_holds(w) + w->l[i].g <= LENDER_IDLE)
            h->reserved = true;
        break;
    case 1:
        if (h->deleting)
            *h = (struct obj_hold){0};
        break;
    case 2:
        if (o->exists && !o->revoked && !o->fenced && o->fenced_for < 0 &&
            !o->reserved && !o->finished &&
            cohort_usage(&w->a, w) + w->l[i].g <= w->a.nominal)
            o->reserved = true;
        break;
    case 3:
        if ((o->revoked || o->fenced || o->fenced_for >= 0) && o->reserved)
            o->reserved = false;
        else if (o->reserved && chance(w, 30)) {
            o->reserved = false;
            o->finished = true;
        }
        break;
    default:
        if (w->l[i].phase == GF_LEASE_ACTIVE && o->reserved)
            w->l[i].expires_ms = w->now_ms + 100;
        break;
    }
}

/* The borrower's agent fences: every marked W is deactivated, every
 * other W that holds quota (the cohort is over once the grant is 0) is
 * deactivated for the first loan the grant names, and the grant is
 * reverted. With no loan named, the agent knows no lease to name and
 * leaves the cohort alone. */
static void agent_fences(struct world *w)
{
    int first = -1;
    for (int i = 0; i < NL && first < 0; i++)
        if ((w->a.loans >> i) & 1U)
            first = i;
    for (int i = 0; i < NL; i++) {
        struct obj_w *o = &w->a.w[i];
        if (!o->exists || o->finished)
            continue;
        if (o->marked)
            o->fenced = true;
        else if (o->reserved && !o->revoked && first >= 0)
            o->fenced_for = first;
    }
    w->a.nominal = 0;
    w->a.loans = 0;
    w->reverted = true;
}

/* A partition of either member, a heal, the borrower's agent fencing once
 * its heartbeat has lapsed, the submitter deleting W, a hub crash. */
static void fault(struct world *w)
{
    switch (rnd(w) % 6) {
    case 0:
        w->a_up = w->a_synced = false;
        break;
    case 1:
        w->b_up = w->b_synced = false;
        break;
    case 2:
        if (!w->a_up && !w->reverted)
            agent_fences(w);
        break;
    case 3: {
        int i = (int)(rnd(w) % NL);
        if (w->a_up && w->a.w[i].exists && !w->a.w[i].finished)
            w->a.w[i] = (struct obj_w){.fenced_for = -1};
        break;
    }
    case 4:
        w->a_synced = w->b_synced = false;
        for (int i = 0; i < NL; i++)
            w->l[i].confirmed_gone = false;
        break;
    default:
        /* The heartbeat reaches the agent again: it unfences. */
        if (!w->a_up)
            w->reverted = false;
        w->a_up = w->b_up = true;
        break;
    }
}

static void sync(struct world *w)
{
    if (w->a_up && chance(w, 50)) {
        w->sa = w->a;
        w->a_synced = true;
    }
    if (w->b_up && chance(w, 50)) {
        w->sb = w->b;
        w->b_synced = true;
    }
}

/* S2: the quota granted in A never exceeds what B's holds reserve, and
 * every share counted in the grant is backed by its own reserved hold. */
static void check_s2(const struct world *w, uint64_t seed, int step)
{
    int64_t backed = 0;
    for (int i = 0; i < NL; i++) {
        if (!((w->a.loans >> i) & 1U))
            continue;
        if (!w->b.hold[i].reserved)
            print_message("seed %llu step %d: loan %d granted, hold not "
                          "reserved\n",
                          (unsigned long long)seed, step, i);
        assert_true(w->b.hold[i].reserved);
        backed += w->l[i].g;
    }
    assert_int_equal(w->a.nominal, backed);
    assert_true(w->a.nominal <= reserved_holds(w));
}

static void machine(struct world *w, bool faults)
{
    int i = (int)(rnd(w) % NL);
    enum gf_ln_reason why;
    enum gf_ln_cmd cmd = command(w, i, faults, &why);
    struct gf_ln_view v = view_of(w, i, cmd, why);
    struct gf_ln_step st = gf_ln_next(&v);
    apply(w, i, &st);
    /* A crash right after the write landed: its answer, and the caches,
     * are lost. */
    if (faults && st.write != GF_LN_WAIT && chance(w, 5)) {
        w->a_synced = w->b_synced = false;
        for (int j = 0; j < NL; j++)
            w->l[j].confirmed_gone = false;
    }
}

static void world_init(struct world *w, uint64_t seed)
{
    memset(w, 0, sizeof(*w));
    w->rng = seed * 0x9E3779B97F4A7C15ULL + 1;
    w->a_up = w->b_up = w->a_synced = w->b_synced = true;
    for (int i = 0; i < NL; i++) {
        w->l[i].phase = GF_LEASE_PENDING;
        w->l[i].g = 2 + (int64_t)(rnd(w) % 3);
        w->l[i].expires_ms = 300;
        w->a.w[i].exists = true;
        w->a.w[i].fenced_for = -1;
    }
    w->sa = w->a;
    w->sb = w->b;
}

#define SEEDS 2000
#define STEPS 400
#define SETTLE 4000

struct s2_figures {
    long granted_states, max_settle;
    long ended[GF_LN_R_COUNT];
};

/* STEPS random moves with faults; S2 checked after each. */
static void run_with_faults(struct world *w, uint64_t seed,
                            struct s2_figures *f)
{
    for (int s = 0; s < STEPS; s++) {
        w->now_ms += (int64_t)(rnd(w) % 4);
        unsigned pick = (unsigned)(rnd(w) % 100);
        if (pick < 40)
            machine(w, true);
        else if (pick < 75)
            kueue(w);
        else if (pick < 90)
            sync(w);
        else
            fault(w);
        check_s2(w, seed, s);
        f->granted_states += w->a.nominal > 0;
    }
}

static bool settled(const struct world *w)
{
    for (int i = 0; i < NL; i++)
        if (live(w->l[i].phase))
            return false;
    return w->a.nominal == 0 && w->a.loans == 0;
}

/* The faults stop: every loan must end within SETTLE moves. */
static void settle(struct world *w, uint64_t seed, struct s2_figures *f)
{
    w->a_up = w->b_up = true;
    int s = 0;
    for (; s < SETTLE && !settled(w); s++) {
        w->now_ms += 1;
        unsigned pick = (unsigned)(rnd(w) % 100);
        if (pick < 50)
            machine(w, false);
        else if (pick < 80)
            kueue(w);
        else
            sync(w);
        check_s2(w, seed, STEPS + s);
    }
    f->max_settle = s > f->max_settle ? s : f->max_settle;
    if (s == SETTLE)
        print_message("seed %llu did not settle\n", (unsigned long long)seed);
    assert_true(s < SETTLE);
}

/* Once settled, nothing is left: no hold, no grant, no revoked W. */
static void check_nothing_left(const struct world *w, uint64_t seed,
                               struct s2_figures *f)
{
    for (int i = 0; i < NL; i++) {
        const struct obj_w *o = &w->a.w[i];
        bool left = o->revoked || o->fenced || o->fenced_for >= 0 ||
                    (o->exists && o->marked);
        if (w->b.hold[i].exists || left)
            print_message("seed %llu loan %d: %s %s\n",
                          (unsigned long long)seed, i,
                          gf_lease_phase_name(w->l[i].phase),
                          gf_ln_reason_name(w->l[i].reason));
        assert_false(w->b.hold[i].exists);
        assert_false(left);
        f->ended[w->l[i].reason]++;
    }
    assert_int_equal(w->a.nominal, 0);
}

static void test_s2_holds_over_random_interleavings(void **state)
{
    (void)state;
    int64_t live_allocs = gf_alloc_live();
    struct s2_figures f = {0};
    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        struct world w;
        world_init(&w, seed);
        run_with_faults(&w, seed, &f);
        settle(&w, seed, &f);
        check_nothing_left(&w, seed, &f);
    }
    /* Not vacuous: loans were granted, and ended every way the world
     * allows. */
    assert_true(f.granted_states > 0);
    assert_true(f.ended[GF_LN_R_COMPLETED] > 0);
    assert_true(f.ended[GF_LN_R_NOT_ADMITTED] > 0);
    assert_true(f.ended[GF_LN_R_CANCELLED] > 0);
    assert_true(f.ended[GF_LN_R_RECLAIMED] > 0);
    assert_true(f.ended[GF_LN_R_FENCED] > 0);
    print_message("S2: %d seeds x %d steps, %ld states with a grant; longest "
                  "settle %ld steps; ends: completed %ld, notAdmitted %ld, "
                  "cancelled %ld, reclaimed %ld, drained %ld, fenced %ld, "
                  "reverted %ld, unused %ld, originAdmitted %ld, holdLost "
                  "%ld\n",
                  SEEDS, STEPS, f.granted_states, f.max_settle,
                  f.ended[GF_LN_R_COMPLETED], f.ended[GF_LN_R_NOT_ADMITTED],
                  f.ended[GF_LN_R_CANCELLED], f.ended[GF_LN_R_RECLAIMED],
                  f.ended[GF_LN_R_DRAINED], f.ended[GF_LN_R_FENCED],
                  f.ended[GF_LN_R_REVERTED], f.ended[GF_LN_R_UNUSED],
                  f.ended[GF_LN_R_ORIGIN_ADMITTED], f.ended[GF_LN_R_HOLD_LOST]);
    assert_int_equal(gf_alloc_live(), live_allocs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loan_happy_path_in_protocol_order),
        cmocka_unit_test(test_unknown_never_reads_as_absent),
        cmocka_unit_test(test_hold_not_reserved_in_time_is_withdrawn),
        cmocka_unit_test(test_hold_reserved_after_withdraw_is_not_granted),
        cmocka_unit_test(test_origin_admitted_without_the_loan),
        cmocka_unit_test(
            test_crash_after_raise_goes_active_without_second_raise),
        cmocka_unit_test(test_finished_or_deleted_origin_releases_at_once),
        cmocka_unit_test(test_unrenewed_term_releases),
        cmocka_unit_test(test_missed_renewal_of_a_used_loan_keeps_it),
        cmocka_unit_test(test_a_lost_raise_leaves_the_grant_unknown),
        cmocka_unit_test(test_which_answers_are_lost),
        cmocka_unit_test(test_hold_lost_releases_grant),
        cmocka_unit_test(test_grant_reverted_by_the_agent),
        cmocka_unit_test(test_release_stops_borrowing_before_the_hold_goes),
        cmocka_unit_test(test_release_leaves_w_alone_when_the_cohort_has_room),
        cmocka_unit_test(test_release_keeps_the_hold_while_others_borrow),
        cmocka_unit_test(
            test_release_waits_for_usage_written_after_the_lowering),
        cmocka_unit_test(test_reclaiming_phase_is_a_release),
        cmocka_unit_test(test_partition_keeps_hold_and_grant_then_heals),
        cmocka_unit_test(test_fenced_borrower_frees_the_hold_while_silent),
        cmocka_unit_test(test_mark_comes_before_the_raise_and_grants_nothing),
        cmocka_unit_test(test_fenced_origin_ends_the_loan_and_runs_once_after),
        cmocka_unit_test(test_others_fenced_for_the_loan_are_reactivated),
        cmocka_unit_test(test_failures_end_failed_without_touching_others),
        cmocka_unit_test(test_strays_after_the_end_go_in_s2_order),
        cmocka_unit_test(test_reason_names_round_trip),
        cmocka_unit_test(test_s2_holds_over_random_interleavings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
