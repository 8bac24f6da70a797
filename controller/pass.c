/*
 * pass: one decision pass. It refreshes each member's freshness in the
 * ledger from its reflectors, waits until every member has synced (no
 * decision rests on a member that was never listed), runs policy/decide
 * and turns its actions into work: a new lease is recorded in the hub
 * (the write-ahead record of DESIGN.md §3 step 2), commands go to the
 * leases' memory and their keys, renewals are written.
 *
 * The pass requeues itself every pass_period_ms: overflowAfter and
 * admitTimeout are times, and nothing else would wake them.
 */
#include "controller/internal.h"

#include <errno.h>
#include <inttypes.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "controller/copy.h"
#include "policy/decide.h"

static int64_t wall(const struct gf_hub *h)
{
    return gf_clock_wall_ms(&h->clk);
}

/* Lease names: the origin member and Workload, a hash of its uid and the
 * epoch, cut to 63 characters like the copy's name. */
int gf__lease_name(const char *member, const char *wl, const char *uid,
                   uint64_t epoch, char out[GF_COPY_NAME_MAX])
{
    char prefix[320];
    snprintf(prefix, sizeof(prefix), "%s-%s", member, wl);
    return gf_copy_name(prefix, uid, epoch, out);
}

/* --- start: record a lease ------------------------------------------- */

struct start_ctx {
    struct gf_hub *h;
    char key[400]; /* "member/ns/name" in h->starting */
    struct gf_lease l;
};

static void start_done(void *data, const struct gf_kube_result *res)
{
    struct start_ctx *c = data;
    struct gf_hub *h = c->h;
    h->inflight_writes--;
    if (res->err == 0 || res->err == GF_EEXIST) {
        /* The lease's reconcile sees it now (the server's answer, in
         * the cache if the watch has not brought it yet): the hold
         * follows the record without waiting for the watch. */
        if (res->err == 0 && res->json != NULL)
            gf_store_write_through(h->leases, res->json);
        gf__hub_enqueue_lease(h, c->l.name);
        h->n_starts += res->err == 0;
        if (res->err == 0)
            gf__hub_wrote(h, "record");
        GF_LOG(&h->lc, GF_LOG_INFO, "lease recorded",
               "lease=%s origin=%s/%s/%s lender=%s cq=%s flavor=%s gpus=%lld "
               "epoch=%llu",
               c->l.name, c->l.origin_member, c->l.origin_namespace,
               c->l.origin_name, c->l.lender_member, c->l.lender_cq,
               c->l.lender_flavor, (long long)c->l.gpus,
               (unsigned long long)c->l.epoch);
    } else {
        h->n_write_errors++;
        GF_LOG(&h->lc, GF_LOG_WARN, "lease not recorded",
               "lease=%s err=%s message=%s", c->l.name, gf_strerror(res->err),
               res->status->message);
        /*
         * The reservation made with the create goes, and with it any
         * command a pass gave it meanwhile, unless the watch has brought
         * the lease (an answer lost after the write landed): then the
         * ledger holds the server's. A create that landed unseen and is
         * not in the cache yet is safe too: the retraction gives the
         * epoch back, so the next START of the Workload has the same
         * name, and its AlreadyExists counts as recorded.
         */
        char key[320];
        snprintf(key, sizeof(key), "%s/%s", h->ns, c->l.name);
        if (gf_store_get(h->leases, key) == NULL) {
            gf_ledger_lease_retract(h->ledger, c->l.name);
            gf__lease_mem_drop(h, c->l.name);
        }
    }
    gf_free(gf_htab_del_str(&h->starting, c->key));
    gf_lease_clear(&c->l);
    gf_free(c);
}

/* A lender namespace that has not opted in would refuse the copy every
 * time: do not record a lease that can only fail. decide already skips
 * such lenders (the ledger has the opt-ins); this is the last look at
 * the cache before the write. */
static bool lender_accepts(const struct gf_hub *h, const struct gf_action *a)
{
    const struct gf__member *m = gf__hub_member(h, a->lender);
    const struct gf_obs_ns *ns =
        m != NULL ? gf__member_ns(m, gf__copy_namespace(h, a->group, a->lender,
                                                        a->namespace))
                  : NULL;
    return ns != NULL && ns->accept_overflow;
}

static void start_lease(struct gf_hub *h, const struct gf_action *a,
                        int64_t now)
{
    /* A loan runs nothing in the lender: its namespaces need not opt in
     * (the hold goes to gpufed-system, checked when it is created). */
    if (a->mode != GF_LEASE_LOAN && !lender_accepts(h, a)) {
        GF_LOG(&h->lc, GF_LOG_DEBUG,
               "lender namespace does not accept overflow",
               "origin=%s/%s/%s lender=%s namespace=%s", a->member,
               a->namespace, a->name, a->lender,
               gf__copy_namespace(h, a->group, a->lender, a->namespace));
        return;
    }
    char key[400];
    snprintf(key, sizeof(key), "%s/%s/%s", a->member, a->namespace, a->name);
    if (gf_htab_get_str(&h->starting, key) != NULL)
        return; /* already being recorded */
    const struct gf_ledger_wl *w =
        gf_ledger_workload(h->ledger, a->member, a->namespace, a->name);
    if (w == NULL || w->uid == NULL)
        return;
    struct start_ctx *c = gf_calloc(1, sizeof(*c));
    c->h = h;
    snprintf(c->key, sizeof(c->key), "%s", key);
    /* The submitter's Job names the lease where it is known. */
    struct gf__member *om = gf__hub_member(h, a->member);
    const struct gf_obs_workload *ow =
        om != NULL ? gf__member_wl(om, a->namespace, a->name) : NULL;
    const char *job = ow != NULL ? ow->owner_name : NULL;
    char name[GF_COPY_NAME_MAX];
    if (gf__lease_name(a->member, job != NULL ? job : a->name, w->uid, a->epoch,
                       name) != 0) {
        gf_free(c);
        return;
    }
    struct gf_lease l = {
        .name = name,
        .group = a->group,
        .mode = a->mode,
        .phase = GF_LEASE_PENDING,
        .epoch = a->epoch,
        .origin_member = a->member,
        .origin_namespace = a->namespace,
        .origin_name = a->name,
        .origin_uid = w->uid,
        .origin_job = (char *)job,
        .origin_cq = w->cq != NULL ? w->cq->name : NULL,
        .lender_member = a->lender,
        .lender_cq = a->lender_cq,
        .lender_flavor = a->flavor,
        .gpus = a->gpus,
        .priority = w->priority,
        .created_ms = now,
        .expires_ms = now + h->policy->timing.lease_duration_ms,
    };
    gf_lease_copy(&c->l, &l);
    cJSON *obj = gf_obs_lease_to_json(&c->l, h->ns, h->policy->resource);
    char *body = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    struct gf_kube_resource r;
    gf_kube_resource_parse("quotaleases.gpufed.io", &r);
    int rc = gf_kube_create(h->hubc, &r, h->ns, body, strlen(body), start_done,
                            c, NULL);
    cJSON_free(body);
    if (rc != 0) {
        gf_lease_clear(&c->l);
        gf_free(c);
        return;
    }
    h->inflight_writes++;
    h->n_writes++;
    gf_htab_put_str(&h->starting, key, gf_strdup(key));
    /*
     * The ledger counts the lease from the moment its create is sent, not
     * answered: a pass that runs before the answer then neither promises
     * the same idle quota to another Workload nor starts a second lease
     * for this one (S1). A create that fails takes it back (start_done).
     * Until the lease reaches the store, decide's upkeep may give it a
     * command (SUSPECT, WITHDRAW): its memory keeps it for the lease's
     * first reconcile, which finds nothing to do before then. It is
     * Pending, so it is never a reclaim's victim, and the store's relists
     * generate no delete for a key they never had.
     */
    gf_ledger_lease_set(h->ledger, &c->l);
    GF_LOG(&h->lc, GF_LOG_INFO,
           a->mode == GF_LEASE_LOAN ? "loan decided" : "redirect decided",
           "origin=%s/%s/%s lender=%s cq=%s flavor=%s gpus=%lld why=%s",
           a->member, a->namespace, a->name, a->lender, a->lender_cq, a->flavor,
           (long long)a->gpus, a->why.text);
}

/* --- renew ------------------------------------------------------------ */

static void renew_done(void *data, const struct gf_kube_result *res)
{
    struct gf_hub *h = data;
    h->inflight_writes--;
    if (res->err != 0)
        h->n_write_errors++;
}

static void renew(struct gf_hub *h, const struct gf_action *a)
{
    char ts[32];
    gf_time_rfc3339(a->until_ms, ts);
    char body[128];
    snprintf(body, sizeof(body), "{\"status\":{\"expiresAt\":\"%s\"}}", ts);
    struct gf_kube_resource r;
    gf_kube_resource_parse("quotaleases.gpufed.io", &r);
    struct gf_kube_patch_opts po = {.type = GF_PATCH_MERGE,
                                    .subresource = "status"};
    if (gf_kube_patch(h->hubc, &r, h->ns, a->lease, &po, body, strlen(body),
                      renew_done, h, NULL) == 0) {
        h->inflight_writes++;
        h->n_writes++;
    }
}

/* --- orphans ---------------------------------------------------------- */

struct orphan_ctx {
    struct gf_hub *h;
    struct gf__member *m;
};

static void orphan_deleted(void *data, const struct gf_kube_result *res)
{
    struct gf_hub *h = data;
    h->inflight_writes--;
    if (res->err != 0 && res->err != GF_ENOTFOUND)
        h->n_write_errors++;
}

/* A copy whose QuotaLease does not exist (deleted by hand, or a hub that
 * died between creating a copy and anything else can leave none: the
 * lease is written first) is removed by rule: no lease, no copy. */
static int orphan_one(void *data, const struct gf_store_entry *e)
{
    struct orphan_ctx *c = data;
    const struct gf_obs_job *j = e->proj;
    if (j->lease == NULL || j->deleting)
        return 0;
    char key[320];
    snprintf(key, sizeof(key), "%s/%s", c->h->ns, j->lease);
    if (gf_store_get(c->h->leases, key) != NULL)
        return 0;
    GF_LOG(&c->m->lc, GF_LOG_WARN, "orphan copy deleted", "job=%s/%s lease=%s",
           j->ns, j->name, j->lease);
    struct gf_kube_resource r;
    gf_kube_resource_parse("jobs.batch", &r);
    struct gf_kube_delete_opts o = {.propagation = "Foreground",
                                    .precondition_uid = j->uid};
    if (gf_kube_delete(c->m->client, &r, j->ns, j->name, &o, orphan_deleted,
                       c->h, NULL) == 0) {
        c->h->inflight_writes++;
        c->h->n_writes++;
    }
    return 0;
}

/* Runs with the pass, once everything has synced (an unsynced lease
 * store would make every copy look orphaned). */
static void resolve_orphans(struct gf_hub *h)
{
    for (size_t i = 0; i < h->n_members; i++) {
        struct orphan_ctx c = {.h = h, .m = h->members[i]};
        if (c.m->client != NULL && c.m->stores[GF__M_JOB] != NULL &&
            gf__member_observed(c.m))
            gf_store_foreach(c.m->stores[GF__M_JOB], orphan_one, &c);
    }
}

/* --- the pass --------------------------------------------------------- */

static int enqueue_one(void *data, const struct gf_store_entry *e)
{
    const struct gf__lease_proj *p = e->proj;
    gf__hub_enqueue_lease(data, p->l.name);
    return 0;
}

/*
 * Freshness from the heartbeat (heartbeat.c): SYNCED while the member is
 * healthy (renewals answered, every watch synced), SUSPECT once it has
 * synced and then lost either, UNKNOWN before its first sync. The
 * ledger's last heartbeat is the send time of the latest renewal that
 * may have landed: decide fences from it. True when every member has
 * synced at least once (the gate: a member never listed is never read
 * as empty; one that is suspect counts as used, not as zero). A member
 * that has just become healthy wakes every lease: what waited on it
 * being unknown may move now.
 */
static bool refresh_members(struct gf_hub *h, int64_t now)
{
    (void)now;
    bool all = true;
    for (size_t i = 0; i < h->n_members; i++) {
        struct gf__member *m = h->members[i];
        struct gf__hb *hb = &h->hb[i];
        gf__hb_set_timing(hb, h->policy->timing.lease_duration_ms,
                          h->policy->timing.fence_margin_ms,
                          h->policy->timing.clock_drift_ppm);
        gf__hb_check(hb);
        const struct gf_ledger_member *lm =
            gf_ledger_member(h->ledger, m->name);
        enum gf_freshness f = !hb->ever_synced     ? GF_FRESH_UNKNOWN
                              : gf__hb_healthy(hb) ? GF_FRESH_SYNCED
                                                   : GF_FRESH_SUSPECT;
        int64_t sent = gf__hb_sent_wall_ms(hb);
        if (f == GF_FRESH_SYNCED &&
            (lm == NULL || lm->fresh != GF_FRESH_SYNCED))
            gf_store_foreach(h->leases, enqueue_one, h);
        if (lm == NULL || lm->fresh != f || lm->last_heartbeat_ms != sent)
            gf_ledger_member_set(h->ledger, m->name, f, sent);
        /* The term the agent may believe (a lowered D is stepped down)
         * and a heal its agent may not have seen yet. */
        int64_t term = gf__hb_bound_d_ms(hb);
        int64_t rec = gf__hb_recovering_until_wall_ms(hb);
        lm = gf_ledger_member(h->ledger, m->name);
        if (lm == NULL || lm->term_ms != term || lm->recovering_until_ms != rec)
            gf_ledger_member_heartbeat(h->ledger, m->name, term, rec);
        all = all && hb->ever_synced;
    }
    return all;
}

static void set_cmd(struct gf_hub *h, const char *lease, enum gf_lm_cmd cmd)
{
    struct gf__lease_mem *m = gf__lease_mem(h, lease);
    if (m->cmd != cmd) {
        m->cmd = cmd;
        gf__hub_enqueue_lease(h, lease);
    }
}

/* A victim of a RECLAIM action: the command, with the action's deadline
 * and its cause (a drain's rule is "drain"; every other is gpufed's own
 * reclaim after reclaimAfter). */
static void set_reclaim(struct gf_hub *h, const char *lease,
                        const struct gf_action *a)
{
    struct gf__lease_mem *m = gf__lease_mem(h, lease);
    m->reclaim_deadline_ms = a->until_ms;
    m->reclaim_started_ms = 0;
    /*
     * A reclaim marked again after a blip (its lender turned Suspect for a
     * moment, which drops the Reclaiming phase) resumes the first mark: the
     * copy was told its deadline then, and the lender has waited since
     * (S4). A deadline already past stops the copy now. A mark older than
     * gracePeriod + D is an earlier reclaim that was dropped for good: this
     * one gets a full grace period.
     */
    const struct gf_ledger_lease *ll = gf_ledger_lease(h->ledger, lease);
    int64_t now = gf_clock_wall_ms(&h->clk);
    const struct gf_policy_timing *t = &h->policy->timing;
    if (ll != NULL && ll->l.reclaim_started_ms != 0 &&
        ll->l.reclaim_deadline_ms != 0 &&
        now - ll->l.reclaim_started_ms <=
            t->grace_period_ms + t->lease_duration_ms) {
        m->reclaim_started_ms = ll->l.reclaim_started_ms;
        m->reclaim_deadline_ms =
            ll->l.reclaim_deadline_ms > now ? ll->l.reclaim_deadline_ms : now;
    }
    m->reclaim_cause = a->why.rule != NULL && strcmp(a->why.rule, "drain") == 0
                           ? "drain"
                           : "reclaim";
    set_cmd(h, lease, GF_LM_CMD_RECLAIM);
}

/* Whether an action of this pass names the lease (as its lease, or as
 * one of a reclaim's victims). */
static bool acted_on(const struct gf_actions *acts, const char *lease)
{
    for (size_t i = 0; i < acts->n; i++) {
        const struct gf_action *a = &acts->v[i];
        if (a->lease != NULL && strcmp(a->lease, lease) == 0)
            return true;
        for (size_t k = 0; k < a->n_victims; k++)
            if (strcmp(a->victims[k], lease) == 0)
                return true;
    }
    return false;
}

/* Commands hold for one pass: a lease decide says nothing about has
 * none. */
static void clear_cmds(struct gf_hub *h, const struct gf_actions *acts)
{
    struct gf_htab_iter it;
    void *v;
    gf_htab_iter_init(&it, &h->lease_mem);
    while (gf_htab_next(&it, NULL, NULL, &v)) {
        struct gf__lease_mem *m = v;
        if (m->cmd == GF_LM_CMD_NONE)
            continue;
        if (!acted_on(acts, m->name)) {
            m->cmd = GF_LM_CMD_NONE;
            m->reclaim_deadline_ms = 0;
            m->reclaim_started_ms = 0;
            gf__hub_enqueue_lease(h, m->name);
        }
    }
}

static void act(struct gf_hub *h, const struct gf_action *a, int64_t now)
{
    switch (a->kind) {
    case GF_ACT_START:
        start_lease(h, a, now);
        break;
    case GF_ACT_WITHDRAW:
        set_cmd(h, a->lease, GF_LM_CMD_WITHDRAW);
        break;
    case GF_ACT_SUSPECT:
        set_cmd(h, a->lease, GF_LM_CMD_SUSPECT);
        break;
    case GF_ACT_FENCE:
        set_cmd(h, a->lease, GF_LM_CMD_FENCE);
        break;
    case GF_ACT_RENEW:
        renew(h, a);
        break;
    case GF_ACT_RECLAIM:
        /* Each victim turns Reclaiming with this deadline; from then on
         * its status keeps the deadline (the command lasts one pass). */
        GF_LOG(&h->lc, GF_LOG_INFO, "reclaim decided",
               "lender=%s cq=%s victims=%zu gpus=%lld why=%s", a->lender,
               a->lender_cq, a->n_victims, (long long)a->gpus, a->why.text);
        for (size_t i = 0; i < a->n_victims; i++)
            set_reclaim(h, a->victims[i], a);
        break;
    }
}

/*
 * When the next pass is due: at the period, or sooner when a pending
 * Workload reaches overflowAfter before that, so that it is decided the
 * moment it becomes eligible rather than up to a period later, or when a
 * silent member's leases become fenceable. One walk
 * of the pending list, next to decide's own.
 */
static uint64_t next_pass_ms(const struct gf_hub *h, int64_t now)
{
    int64_t after = h->policy->timing.overflow_after_ms;
    int64_t due = now + (int64_t)h->pass_period_ms;
    const struct gf_ledger_wl *w;
    for (w = gf_ledger_pending_first(h->ledger); w != NULL;
         w = gf_ledger_pending_next(h->ledger, w)) {
        int64_t at = w->pending_since_ms + after;
        if (at > now && at < due)
            due = at;
    }
    /* A silent member's fencing instant: its leases are released the
     * moment the agent has certainly stopped the copies. */
    int64_t fence = gf_decide_next_fence_ms(h->ledger, h->policy, now);
    if (fence < due)
        due = fence;
    /* The instant a reclaim becomes due: an own Workload of a lender
     * reaching reclaimAfter, a copy outgrowing minRunTime, a reclaim
     * leaving the hourly window. */
    int64_t reclaim = gf_decide_next_reclaim_ms(h->ledger, h->policy, now);
    if (reclaim < due)
        due = reclaim;
    /* A member that has just healed may lend from the instant its agent
     * can have seen the heartbeat move. */
    int64_t lend = gf_decide_next_recovered_ms(h->ledger, h->policy, now);
    if (lend < due)
        due = lend;
    /* 1 ms past the instant: decide compares with >=. */
    return (uint64_t)(due - now) + 1;
}

void gf__pass_abandon(struct gf_hub *h)
{
    gf_decide_pass_free(h->dpass);
    h->dpass = NULL;
    h->dpass_policy = NULL;
}

static void act_all(struct gf_hub *h, const struct gf_actions *acts)
{
    /* A lease is recorded with the time it is written, not the time its
     * pass began. */
    int64_t now = wall(h);
    for (size_t i = 0; i < acts->n; i++)
        act(h, &acts->v[i], now);
}

/* A new pass: orphans, then decide's lease upkeep and reclaim, whose
 * commands replace the last pass's. */
static int pass_begin(struct gf_hub *h, int64_t now)
{
    h->n_passes++;
    resolve_orphans(h);
    struct gf_actions acts = {0};
    int rc = gf_decide_begin(h->ledger, h->policy, now, &acts, &h->dpass);
    if (rc == 0) {
        h->dpass_now = now;
        h->dpass_policy = h->policy;
        clear_cmds(h, &acts);
        act_all(h, &acts);
    }
    gf_actions_free(&acts);
    return rc;
}

/*
 * One slice of the pass: at most pass_budget pending Workloads considered
 * for START, then the key is requeued for the next loop turn, so that
 * watches, write answers and timers run between slices (a cold pass over
 * 33k pending Workloads takes seconds of decide). The pass's time is the
 * time it began; the gate is checked at every slice, and a pass whose
 * policy was reloaded begins anew.
 */
void gf__pass_run(struct gf_hub *h)
{
    int64_t now = wall(h);
    bool ready = refresh_members(h, now) && gf__hub_synced(h);
    if (!ready) {
        /* The gate: nothing is decided on a partial view. */
        gf__pass_abandon(h);
        gf_wq_done(h->wq, "pass", GF_WQ_REQUEUE_AFTER, h->pass_period_ms);
        return;
    }
    if (!h->heap_trimmed) {
        /* The first lists went through megabytes of JSON, freed in an
         * order that leaves the heap fragmented: give the free pages back
         * once, so that what stays resident is what is tracked. */
        h->heap_trimmed = true;
#ifdef __GLIBC__
        malloc_trim(0);
#endif
    }
    if (h->dpass != NULL && h->dpass_policy != h->policy)
        gf__pass_abandon(h);
    if (h->dpass == NULL) {
        int rc = pass_begin(h, now);
        if (rc != 0) {
            GF_LOG(&h->lc, GF_LOG_ERROR, "decide failed", "err=%s",
                   gf_strerror(rc));
            gf_wq_done(h->wq, "pass", GF_WQ_REQUEUE_AFTER, h->pass_period_ms);
            return;
        }
    }
    struct gf_actions acts = {0};
    size_t budget = h->pass_budget != 0 ? h->pass_budget : GF__PASS_BUDGET;
    int done = gf_decide_step(h->dpass, h->ledger, h->policy, budget, &acts);
    h->n_pass_slices++;
    act_all(h, &acts);
    gf_actions_free(&acts);
    if (!done) {
        /* 1 ms, not 0: a delayed key goes back through the loop's timers,
         * where a ready one could run again in the same dispatch batch. */
        gf_wq_done(h->wq, "pass", GF_WQ_REQUEUE_AFTER, 1);
        return;
    }
    /* The next pass is due at an instant reckoned from this pass's time
     * (a Workload that became eligible while the slices ran is due at
     * once). */
    int64_t began = h->dpass_now;
    gf__pass_abandon(h);
    int64_t at = began + (int64_t)next_pass_ms(h, began);
    int64_t later = wall(h);
    gf_wq_done(h->wq, "pass", GF_WQ_REQUEUE_AFTER,
               at > later ? (uint64_t)(at - later) : 1);
}
