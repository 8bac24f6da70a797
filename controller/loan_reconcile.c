/*
 * loan_reconcile: one reconcile of one loan lease (spec.mode Loan). It
 * builds the loan machine's view (controller/loan_machine.h) from the
 * caches, unknown where a member is not observed, asks the machine for
 * the next step, and carries that one write out with its precondition:
 * the hold in the lender, the grant (gpufed-loan-<queue>) in the
 * borrower, the notes and spec.active of the origin Workload, or the
 * QuotaLease's status. What the API servers themselves answered (a hold
 * confirmed gone, a create refused for good) is kept in the lease's
 * memory; everything else is observed again on the next reconcile.
 *
 * The grant is shared by every loan of one borrowing ClusterQueue: its
 * nominal quota is the sum of their GPUs and its annotation
 * gpufed.io/loans lists them, both changed in one update guarded by the
 * resourceVersion the reconcile saw, so two loans (or the agent's revert)
 * can never lose each other's change: the loser gets 409 and looks again.
 */
#include "controller/internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/json.h"
#include "controller/copy.h"
#include "controller/fence.h"

#define WL_RES "workloads.kueue.x-k8s.io"
#define CQ_RES "clusterqueues.kueue.x-k8s.io"
#define LQ_RES "localqueues.kueue.x-k8s.io"

/* One write in flight: everything its callbacks need, owned. */
struct lctx {
    struct gf_hub *h;
    char key[300];
    char lease[64];
    struct gf_ln_step step;
    struct gf_lease l; /* deep copy */
    char hold[64];
    char overflow[64]; /* gpufed-<lender cq>: CQ and LQ in the lender */
    char grant[256];   /* gpufed-loan-<origin cq> */
    char flavor[254];  /* F' in the borrower */
    char cohort[254];  /* the origin ClusterQueue's */
    char grant_rv[32]; /* the grant as seen ("" when absent) */
    char *grant_loans; /* its gpufed.io/loans as seen; owned */
    int64_t grant_nominal;
    char hold_uid[64];
    char origin_rv[32], lease_rv[32];
    char origin_job[254], origin_job_uid[64];
    /* A Workload the agent fenced for this loan (reactivate-other). */
    char other_ns[254], other_name[254];
    int stage;
    bool wrote;
};

static struct gf_kube_resource resource(const char *name)
{
    struct gf_kube_resource r;
    gf_kube_resource_parse(name, &r);
    return r;
}

static struct gf_kube_client *client_of(struct gf_hub *h, const char *member)
{
    struct gf__member *m = gf__hub_member(h, member);
    return m != NULL ? m->client : NULL;
}

/* FNV-1a: a short stable tag for names that must be cut. */
static uint32_t fnv(const char *s)
{
    uint32_t x = 2166136261u;
    for (; *s != '\0'; s++)
        x = (x ^ (uint8_t)*s) * 16777619u;
    return x;
}

void gf__hold_name(const char *lease, char out[64])
{
    size_t pre = strlen(GF_HOLD_PREFIX);
    if (pre + strlen(lease) <= 63) {
        snprintf(out, 64, "%s%s", GF_HOLD_PREFIX, lease);
        return;
    }
    /* Lease names end in their uid hash and epoch: a cut tail would make
     * two epochs share a hold, so the whole name is hashed instead. */
    snprintf(out, 64, "%s%.*s-%08" PRIx32, GF_HOLD_PREFIX, (int)(63 - pre - 9),
             lease, fnv(lease));
}

/* Whether list (comma-separated, may be NULL) names lease. */
static bool list_has(const char *list, const char *lease)
{
    size_t n = strlen(lease);
    for (const char *p = list; p != NULL && *p != '\0';) {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, lease, n) == 0)
            return true;
        p = end != NULL ? end + 1 : NULL;
    }
    return false;
}

/* list with lease added (add) or taken out; returned-owned (gf_free). */
static char *list_with(const char *list, const char *lease, bool add)
{
    struct gf_buf b = GF_BUF_INIT((size_t)64 * 1024);
    for (const char *p = list; p != NULL && *p != '\0';) {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        if (len > 0 && !(len == strlen(lease) && strncmp(p, lease, len) == 0)) {
            if (b.len > 0)
                gf_buf_puts(&b, ",");
            gf_buf_append(&b, p, len);
        }
        p = end != NULL ? end + 1 : NULL;
    }
    if (add) {
        if (b.len > 0)
            gf_buf_puts(&b, ",");
        gf_buf_puts(&b, lease);
    }
    char *s = gf_strdup(gf_buf_cstr(&b));
    gf_buf_free(&b);
    return s;
}

/* --- the view --------------------------------------------------------- */

/* F': the borrower's flavor in the origin ClusterQueue equivalent to the
 * lender's flavor (policy flavor classes; same name by default). */
static bool origin_flavor(const struct gf_hub *h, const struct gf_lease *l,
                          const struct gf_obs_cq *q, char *out, size_t cap)
{
    const char *want =
        gf_policy_flavor_class(h->policy, l->lender_member, l->lender_flavor);
    for (size_t i = 0; q != NULL && i < q->n_quotas; i++) {
        const struct gf_cq_quota *c = &q->quotas[i];
        if (strcmp(c->resource, h->resource) != 0)
            continue;
        const char *cls =
            gf_policy_flavor_class(h->policy, l->origin_member, c->flavor);
        if (cls != NULL && want != NULL && strcmp(cls, want) == 0) {
            snprintf(out, cap, "%s", c->flavor);
            return true;
        }
    }
    return false;
}

static int64_t cq_nominal(const struct gf_obs_cq *q, const char *flavor,
                          const char *res)
{
    for (size_t i = 0; q != NULL && i < q->n_quotas; i++)
        if (strcmp(q->quotas[i].flavor, flavor) == 0 &&
            strcmp(q->quotas[i].resource, res) == 0)
            return q->quotas[i].nominal;
    return 0;
}

static int sum_cq(void *data, const struct gf_store_entry *e)
{
    gf_obs_cohort_add(data, e->proj);
    return 0;
}

/*
 * Whether the cohort's usage of F' in the borrower is above the sum of
 * its nominal quotas (the grant's as observed): what the loan backed is
 * still used. Both come from Kueue's ClusterQueue status, not from the
 * ledger: the status counts every Workload holding the cohort's quota
 * (copies in gpufed's overflow queue, holds of other loans, Workloads
 * admitted on the grant), and it comes through the same watch as the
 * lowered grant, so whatever Kueue admitted before the lowering is seen
 * with it. The Workload watch is not ordered with that one: the ledger
 * may not yet know of a Workload the grant admitted (chaos S2). The
 * sums are stale until Kueue has written every queue's status since its
 * last spec change, the lowered grant's among them.
 */
static void cohort_state(const struct gf_hub *h, const struct gf__member *m,
                         const struct lctx *c, struct gf_ln_view *v)
{
    struct gf_obs_cohort s = {
        .cohort = c->cohort, .flavor = c->flavor, .resource = h->resource};
    gf_store_foreach(m->stores[GF__M_CQ], sum_cq, &s);
    v->cohort_over = s.usage > s.nominal;
    v->cohort_stale = s.stale;
}

static void view_grant(struct gf_hub *h, const struct gf__lease_proj *lp,
                       struct gf_ln_view *v, struct lctx *c)
{
    const struct gf_lease *l = &lp->l;
    struct gf__member *m = gf__hub_member(h, l->origin_member);
    v->grant.granted = lp->granted;
    if (m == NULL || !gf__member_observed(m)) {
        v->grant.cq = GF_LM_UNKNOWN;
        v->origin.wl = v->origin.job = GF_LM_UNKNOWN;
        return;
    }
    const struct gf_obs_cq *qa = gf__member_cq(m, l->origin_cq);
    if (qa != NULL && qa->cohort != NULL)
        snprintf(c->cohort, sizeof(c->cohort), "%s", qa->cohort);
    origin_flavor(h, l, qa, c->flavor, sizeof(c->flavor));
    const struct gf_store_entry *ge =
        gf_store_get(m->stores[GF__M_CQ], c->grant);
    const struct gf_obs_cq *g = ge != NULL ? ge->proj : NULL;
    v->grant.cq = g != NULL ? GF_LM_PRESENT : GF_LM_ABSENT;
    if (g != NULL) {
        snprintf(c->grant_rv, sizeof(c->grant_rv), "%s", ge->rv);
        c->grant_loans = g->loans != NULL ? gf_strdup(g->loans) : NULL;
        c->grant_nominal = cq_nominal(g, c->flavor, h->resource);
        v->grant.nominal = c->grant_nominal;
        v->grant.share_in = list_has(g->loans, l->name);
    }
    if (c->cohort[0] != '\0' && c->flavor[0] != '\0')
        cohort_state(h, m, c, v);

    char key[600];
    snprintf(key, sizeof(key), "%s/%s", l->origin_namespace, l->origin_name);
    const struct gf_store_entry *we = gf_store_get(m->stores[GF__M_WL], key);
    const struct gf_obs_workload *w = we != NULL ? we->proj : NULL;
    v->origin.wl = w != NULL ? GF_LM_PRESENT : GF_LM_ABSENT;
    v->origin.job = GF_LM_PRESENT;
    if (w == NULL)
        return;
    snprintf(c->origin_rv, sizeof(c->origin_rv), "%s", we->rv);
    if (w->owner_name != NULL) {
        const struct gf_obs_job *j = gf__member_job(m, w->ns, w->owner_name);
        v->origin.job = j != NULL ? GF_LM_PRESENT : GF_LM_ABSENT;
        snprintf(c->origin_job, sizeof(c->origin_job), "%s", w->owner_name);
        if (j != NULL)
            snprintf(c->origin_job_uid, sizeof(c->origin_job_uid), "%s",
                     j->uid);
    }
    v->origin.reserved = (w->quota_reserved || w->admitted) && !w->finished;
    v->origin.finished = w->finished;
    v->origin.revoked = !w->active && w->loan_revoked && w->lease != NULL &&
                        strcmp(w->lease, l->name) == 0;
    v->origin.deadline_ms = w->reclaim_deadline_ms;
    v->origin.marked = w->loan != NULL && strcmp(w->loan, l->name) == 0;
    v->origin.fenced = v->origin.marked && w->fenced;
}

struct other_find {
    const char *lease;
    struct lctx *c;
    bool found;
};

static int find_other(void *data, const struct gf_store_entry *e)
{
    struct other_find *f = data;
    const struct gf_obs_workload *w = e->proj;
    if (w->fenced_for == NULL || !w->fenced ||
        strcmp(w->fenced_for, f->lease) != 0)
        return 0;
    snprintf(f->c->other_ns, sizeof(f->c->other_ns), "%s", w->ns);
    snprintf(f->c->other_name, sizeof(f->c->other_name), "%s", w->name);
    f->found = true;
    return 1;
}

/* Workloads the borrower's agent fenced for this loan (the cohort was
 * over its quota without the grant): looked for only once the loan is
 * on its way out, the only time they matter, so that a running loan does
 * not scan the borrower's Workloads on every reconcile. */
static void view_others(struct gf_hub *h, const struct gf_lease *l,
                        struct gf_ln_view *v, struct lctx *c)
{
    if (v->phase == GF_LEASE_PENDING || v->phase == GF_LEASE_ACTIVE ||
        v->phase == GF_LEASE_SUSPECT || v->phase == GF_LEASE_EXPIRED)
        return;
    struct gf__member *m = gf__hub_member(h, l->origin_member);
    if (m == NULL || !gf__member_observed(m))
        return;
    struct other_find f = {.lease = l->name, .c = c};
    gf_store_foreach(m->stores[GF__M_WL], find_other, &f);
    v->others_fenced = f.found;
}

static void view_hold(struct gf_hub *h, const struct gf_lease *l,
                      const struct gf__lease_mem *mem, struct gf_ln_hold *hd,
                      struct lctx *c)
{
    hd->create_refused = mem->create_refused;
    hd->confirmed_gone = mem->confirmed_gone;
    struct gf__member *m = gf__hub_member(h, l->lender_member);
    if (m == NULL || !gf__member_observed(m)) {
        hd->wl = GF_LM_UNKNOWN;
        return;
    }
    const struct gf_obs_workload *w = gf__member_wl(m, GF_LOAN_NS, c->hold);
    hd->wl = w != NULL ? GF_LM_PRESENT : GF_LM_ABSENT;
    if (w == NULL)
        return;
    if (w->uid != NULL)
        snprintf(c->hold_uid, sizeof(c->hold_uid), "%s", w->uid);
    hd->ours = w->lease != NULL && strcmp(w->lease, l->name) == 0;
    hd->reserved = (w->quota_reserved || w->admitted) && !w->finished;
    hd->evicted = w->evicted;
}

/* --- finishing a write ------------------------------------------------ */

static void finish(struct lctx *c, enum gf_wq_result r, uint64_t after)
{
    struct gf_hub *h = c->h;
    h->inflight_writes--;
    if (c->wrote)
        gf__hub_wrote(h, gf_ln_write_name(c->step.write));
    if (r == GF_WQ_ERROR)
        h->n_write_errors++;
    gf_wq_done(h->wq, c->key, r, after);
    gf_lease_clear(&c->l);
    gf_free(c->grant_loans);
    gf_free(c);
}

static void log_fail(struct lctx *c, const struct gf_kube_result *res)
{
    struct gf_log_ctx lc = {.comp = "loan", .key = c->lease};
    GF_LOG(&lc, GF_LOG_WARN, "write failed", "write=%s err=%s message=%s",
           gf_ln_write_name(c->step.write), gf_strerror(res->err),
           res->status != NULL ? res->status->message : "");
}

/* Records the step's Event on the origin's Job (else its Workload). */
static void emit_event(struct lctx *c)
{
    struct gf__member *m = gf__hub_member(c->h, c->l.origin_member);
    if (c->step.event == NULL || m == NULL)
        return;
    char msg[512];
    snprintf(msg, sizeof(msg),
             "%s: %" PRId64 " GPUs of %s/%s (flavor %s) lent to %s; lease %s",
             c->step.rule, c->l.gpus, c->l.lender_member, c->l.lender_cq,
             c->l.lender_flavor, c->l.origin_cq, c->l.name);
    bool job = c->origin_job[0] != '\0';
    const struct gf__event e = {
        .ns = c->l.origin_namespace,
        .api_version = job ? "batch/v1" : "kueue.x-k8s.io/v1beta2",
        .kind = job ? "Job" : "Workload",
        .name = job ? c->origin_job : c->l.origin_name,
        .uid = job ? c->origin_job_uid : c->l.origin_uid,
        .reason = c->step.event,
        .message = msg,
        .component = "gpufed",
        .warning = strcmp(c->step.event, "LoanRevoked") == 0,
    };
    gf__event_post(c->h, m->client, &e);
}

/* The common ending: success (the answer into kind's cache of member),
 * or a retry with backoff. */
static void done_into(struct lctx *c, const struct gf_kube_result *res,
                      const char *member, enum gf__mkind kind)
{
    if (res->err != 0) {
        log_fail(c, res);
        finish(c, GF_WQ_ERROR, 0);
        return;
    }
    c->wrote = true;
    if (member != NULL)
        gf__member_write_through(gf__hub_member(c->h, member), kind, res->json);
    emit_event(c);
    finish(c, GF_WQ_OK, 0);
}

/* --- set-phase -------------------------------------------------------- */

static void phase_patched(void *data, const struct gf_kube_result *res)
{
    struct lctx *c = data;
    if (res->err == 0) {
        struct gf__lease_mem *mem = gf__lease_mem(c->h, c->lease);
        snprintf(mem->stale_rv, sizeof(mem->stale_rv), "%s", c->lease_rv);
        if (res->json != NULL)
            gf_store_write_through(c->h->leases, res->json);
        struct gf_log_ctx lc = {.comp = "loan", .key = c->lease};
        GF_LOG(&lc, GF_LOG_INFO, "lease phase",
               "phase=%s reason=%s granted=%d rule=%s",
               gf_lease_phase_name(c->step.phase),
               gf_ln_reason_name(c->step.reason), c->step.granted,
               c->step.rule);
    }
    done_into(c, res, NULL, GF__M_KINDS);
}

static void phase_got(void *data, const struct gf_kube_result *res)
{
    struct lctx *c = data;
    if (res->err != 0) {
        done_into(c, res, NULL, GF__M_KINDS);
        return;
    }
    struct gf_hub *h = c->h;
    const cJSON *st = GF_JSON_AT(res->json, "status");
    const char *rv = gf_json_str(res->json, "metadata.resourceVersion");
    int64_t now = gf_clock_wall_ms(&h->clk);
    int64_t started =
        c->step.phase == GF_LEASE_ACTIVE && c->l.started_ms == 0 ? now : 0;
    char *patch = gf_obs_lease_status_patch(
        st, gf_lease_phase_name(c->step.phase),
        gf_ln_reason_name(c->step.reason), c->step.rule, c->l.epoch, now,
        started, 0, 0, 0);
    /* status.granted goes with the phase, in the same patch. */
    cJSON *p = patch != NULL ? cJSON_Parse(patch) : NULL;
    cJSON_free(patch);
    patch = NULL;
    cJSON *pst = cJSON_GetObjectItemCaseSensitive(p, "status");
    if (pst != NULL) {
        cJSON_AddBoolToObject(pst, "granted", c->step.granted);
        patch = cJSON_PrintUnformatted(p);
    }
    cJSON_Delete(p);
    struct gf_kube_resource r = resource("quotaleases.gpufed.io");
    struct gf_kube_patch_opts po = {.type = GF_PATCH_MERGE,
                                    .subresource = "status",
                                    .resource_version = rv};
    int rc = patch == NULL
                 ? -EINVAL
                 : gf_kube_patch(h->hubc, &r, h->ns, c->lease, &po, patch,
                                 strlen(patch), phase_patched, c, NULL);
    cJSON_free(patch);
    if (rc != 0)
        finish(c, GF_WQ_ERROR, 0);
}

static void set_phase(struct lctx *c)
{
    struct gf_kube_resource r = resource("quotaleases.gpufed.io");
    if (gf_kube_get(c->h->hubc, &r, c->h->ns, c->lease, phase_got, c, NULL) !=
        0)
        finish(c, GF_WQ_ERROR, 0);
}

/* --- create-hold: overflow queues in the lender, then the hold --------- */

static void refuse(struct lctx *c, const char *why)
{
    struct gf__lease_mem *mem = gf__lease_mem(c->h, c->lease);
    mem->create_refused = true;
    snprintf(mem->refused_why, sizeof(mem->refused_why), "%s", why);
    struct gf_log_ctx lc = {.comp = "loan", .key = c->lease};
    GF_LOG(&lc, GF_LOG_WARN, "hold refused", "why=%s", why);
    finish(c, GF_WQ_REQUEUE_AFTER, 1);
}

/* The hold: a pod-less Workload asking for the loan's GPUs, queued to
 * gpufed's overflow queue for the lending ClusterQueue (nominal 0, in its
 * cohort, offering only the lender's flavors), so the lender's Kueue
 * reserves it only against idle quota and under every limit it has. */
static char *hold_body(const struct lctx *c)
{
    const struct gf_lease *l = &c->l;
    char epoch[24], gpus[24];
    snprintf(epoch, sizeof(epoch), "%" PRIu64, l->epoch);
    snprintf(gpus, sizeof(gpus), "%" PRId64, l->gpus);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "apiVersion", "kueue.x-k8s.io/v1beta2");
    cJSON_AddStringToObject(o, "kind", "Workload");
    cJSON *md = cJSON_AddObjectToObject(o, "metadata");
    cJSON_AddStringToObject(md, "name", c->hold);
    cJSON_AddStringToObject(md, "namespace", GF_LOAN_NS);
    cJSON *lb = cJSON_AddObjectToObject(md, "labels");
    cJSON_AddStringToObject(lb, GF_LABEL_LEASE, l->name);
    cJSON_AddStringToObject(lb, "gpufed.io/epoch", epoch);
    cJSON_AddStringToObject(lb, "gpufed.io/origin-cluster", l->origin_member);
    cJSON_AddStringToObject(lb, GF_LABEL_MANAGED_BY, GF_MANAGED_BY_GPUFED);
    /* The annotation is what the hub's Workload cache keeps (it wakes the
     * lease on every change of the hold). */
    cJSON *an = cJSON_AddObjectToObject(md, "annotations");
    cJSON_AddStringToObject(an, GF_ANN_LEASE, l->name);
    cJSON *sp = cJSON_AddObjectToObject(o, "spec");
    cJSON_AddStringToObject(sp, "queueName", c->overflow);
    cJSON_AddNumberToObject(sp, "priority", l->priority);
    cJSON *pss = cJSON_AddArrayToObject(sp, "podSets");
    cJSON *ps = cJSON_CreateObject();
    cJSON_AddItemToArray(pss, ps);
    cJSON_AddStringToObject(ps, "name", "hold");
    cJSON_AddNumberToObject(ps, "count", 1);
    cJSON *ts = cJSON_AddObjectToObject(cJSON_AddObjectToObject(ps, "template"),
                                        "spec");
    cJSON_AddStringToObject(ts, "restartPolicy", "Never");
    cJSON *cs = cJSON_AddArrayToObject(ts, "containers");
    cJSON *ct = cJSON_CreateObject();
    cJSON_AddItemToArray(cs, ct);
    cJSON_AddStringToObject(ct, "name", "hold");
    cJSON_AddStringToObject(ct, "image", "registry.k8s.io/pause:3.9");
    cJSON *rs = cJSON_AddObjectToObject(ct, "resources");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(rs, "requests"),
                            c->h->resource, gpus);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(rs, "limits"),
                            c->h->resource, gpus);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static void hold_step(struct lctx *c);

static void hold_stage_done(void *data, const struct gf_kube_result *res)
{
    struct lctx *c = data;
    static const enum gf__mkind kinds[] = {GF__M_CQ, GF__M_LQ, GF__M_WL};
    if (res->err == 0)
        gf__member_write_through(gf__hub_member(c->h, c->l.lender_member),
                                 kinds[c->stage], res->json);
    if (c->stage == 2 && (res->err == 0 || res->err == GF_EEXIST)) {
        /* An existing hold of another lease is seen as not ours. */
        c->wrote = res->err == 0;
        if (res->err == 0)
            emit_event(c);
        finish(c, GF_WQ_OK, 0);
        return;
    }
    if (res->err != 0 && res->err != GF_EEXIST) {
        log_fail(c, res);
        if (res->status != NULL && res->status->cls == GF_API_TERMINAL) {
            char why[600];
            snprintf(why, sizeof(why), "the lender refused it: %s",
                     res->status->message);
            refuse(c, why);
        } else {
            finish(c, GF_WQ_ERROR, 0);
        }
        return;
    }
    c->stage++;
    hold_step(c);
}

static void hold_step(struct lctx *c)
{
    struct gf__member *lm = gf__hub_member(c->h, c->l.lender_member);
    if (lm == NULL || lm->client == NULL) {
        finish(c, GF_WQ_ERROR, 0);
        return;
    }
    char *body = NULL;
    const char *res = WL_RES;
    const char *ns = GF_LOAN_NS;
    if (c->stage == 0 && gf__member_cq(lm, c->overflow) == NULL) {
        body = gf__overflow_cq_body(lm, c->l.lender_cq, c->overflow);
        if (body == NULL) {
            refuse(c, "the lending ClusterQueue has no cohort to lend from");
            return;
        }
        res = CQ_RES;
        ns = NULL;
    } else if (c->stage <= 1 &&
               gf__member_lq(lm, GF_LOAN_NS, c->overflow) == NULL) {
        c->stage = 1;
        body = gf__overflow_lq_body(GF_LOAN_NS, c->overflow, c->overflow);
        res = LQ_RES;
    } else {
        c->stage = 2;
        body = hold_body(c);
    }
    struct gf_kube_resource r = resource(res);
    int rc = gf_kube_create(lm->client, &r, ns, body, strlen(body),
                            hold_stage_done, c, NULL);
    cJSON_free(body);
    if (rc != 0)
        finish(c, GF_WQ_ERROR, 0);
}

static void create_hold(struct lctx *c)
{
    struct gf__member *lm = gf__hub_member(c->h, c->l.lender_member);
    const struct gf_obs_ns *ns =
        lm != NULL ? gf__member_ns(lm, GF_LOAN_NS) : NULL;
    if (ns == NULL || !ns->accept_overflow) {
        char why[200];
        snprintf(why, sizeof(why),
                 "namespace " GF_LOAN_NS " in member %s does not accept "
                 "holds (label gpufed.io/accept-overflow=true)",
                 c->l.lender_member);
        refuse(c, why);
        return;
    }
    c->stage = 0;
    hold_step(c);
}

/* --- delete-hold, confirm-hold-gone ------------------------------------ */

static void hold_gone_answer(void *data, const struct gf_kube_result *res)
{
    struct lctx *c = data;
    if (res->err == GF_ENOTFOUND ||
        (res->err == 0 && c->step.write == GF_LN_DELETE_HOLD))
        c->wrote = true;
    if (res->err == GF_ENOTFOUND) {
        gf__lease_mem(c->h, c->lease)->confirmed_gone = true;
        finish(c, GF_WQ_REQUEUE_AFTER, 1);
        return;
    }
    if (res->err != 0) {
        log_fail(c, res);
        finish(c, GF_WQ_ERROR, 0);
        return;
    }
    /* Deleted (or still there): ask again, which a 404 ends. */
    finish(c, GF_WQ_REQUEUE_AFTER, 200);
}

static void delete_hold(struct lctx *c)
{
    struct gf_kube_client *cl = client_of(c->h, c->l.lender_member);
    struct gf_kube_resource r = resource(WL_RES);
    struct gf_kube_delete_opts o = {.precondition_uid =
                                        c->hold_uid[0] ? c->hold_uid : NULL};
    if (cl == NULL || gf_kube_delete(cl, &r, GF_LOAN_NS, c->hold, &o,
                                     hold_gone_answer, c, NULL) != 0)
        finish(c, GF_WQ_ERROR, 0);
}

static void confirm_hold_gone(struct lctx *c)
{
    struct gf_kube_client *cl = client_of(c->h, c->l.lender_member);
    struct gf_kube_resource r = resource(WL_RES);
    if (cl == NULL || gf_kube_get(cl, &r, GF_LOAN_NS, c->hold, hold_gone_answer,
                                  c, NULL) != 0)
        finish(c, GF_WQ_ERROR, 0);
}

/* --- the grant ---------------------------------------------------------- */

bool gf__loan_answer_lost(const struct gf_kube_result *res)
{
    return res->err != 0 && res->err != GF_ECANCELED &&
           (res->status == NULL || res->status->code < 400 ||
            res->status->code >= 500);
}

static void grant_done(void *data, const struct gf_kube_result *res)
{
    struct lctx *c = data;
    /* A raise that may have landed unseen: W could be admitted through
     * it while the cache still shows the grant without this lease, and a
     * release would delete the hold that backs it. */
    if (c->step.write == GF_LN_RAISE_GRANT && gf__loan_answer_lost(res))
        gf__lease_mem(c->h, c->lease)->grant_unsure = true;
    /* 409: another loan of the queue (or the agent's revert) changed the
     * grant since we looked; the next reconcile sees its change. */
    done_into(c, res, c->l.origin_member, GF__M_CQ);
}

static void grant_got(void *data, const struct gf_kube_result *res)
{
    struct lctx *c = data;
    if (res->err != 0 && res->err != GF_ENOTFOUND) {
        log_fail(c, res);
        finish(c, GF_WQ_ERROR, 0);
        return;
    }
    /* The borrower's API server answered: what it holds now is the
     * grant (into the cache when newer than the watch's). */
    if (res->err == 0)
        gf__member_write_through(gf__hub_member(c->h, c->l.origin_member),
                                 GF__M_CQ, res->json);
    gf__lease_mem(c->h, c->lease)->grant_unsure = false;
    finish(c, GF_WQ_REQUEUE_AFTER, 1);
}

static void get_grant(struct lctx *c)
{
    struct gf_kube_client *cl = client_of(c->h, c->l.origin_member);
    struct gf_kube_resource r = resource(CQ_RES);
    if (cl == NULL ||
        gf_kube_get(cl, &r, NULL, c->grant, grant_got, c, NULL) != 0)
        finish(c, GF_WQ_ERROR, 0);
}

/* The grant as a whole object (create) or as a merge patch guarded by the
 * resourceVersion seen (update): nominal quota and the leases counted. */
static char *grant_body(const struct lctx *c, int64_t nominal,
                        const char *loans, bool create, bool raise)
{
    cJSON *o = cJSON_CreateObject();
    if (create) {
        cJSON_AddStringToObject(o, "apiVersion", "kueue.x-k8s.io/v1beta2");
        cJSON_AddStringToObject(o, "kind", "ClusterQueue");
    }
    cJSON *md = cJSON_AddObjectToObject(o, "metadata");
    if (create) {
        cJSON_AddStringToObject(md, "name", c->grant);
        cJSON *lb = cJSON_AddObjectToObject(md, "labels");
        cJSON_AddStringToObject(lb, GF_LABEL_MANAGED_BY, GF_MANAGED_BY_GPUFED);
    } else {
        cJSON_AddStringToObject(md, "resourceVersion", c->grant_rv);
    }
    cJSON *an = cJSON_AddObjectToObject(md, "annotations");
    cJSON_AddStringToObject(an, GF_ANN_LOANS, loans);
    /* A raise lends anew: the agent's record of the leases of an earlier
     * revert (for the Workloads its per-cohort rule stops) no longer
     * applies to this grant. */
    if (raise && !create)
        cJSON_AddNullToObject(an, GF_FENCE_ANN_REVERTED_LOANS);
    cJSON *sp = cJSON_AddObjectToObject(o, "spec");
    if (create) {
        cJSON_AddStringToObject(sp, "cohortName", c->cohort);
        /* No namespace matches: no LocalQueue can use the grant directly;
         * it only lends to the cohort. */
        cJSON *sel = cJSON_AddObjectToObject(sp, "namespaceSelector");
        cJSON *me = cJSON_AddArrayToObject(sel, "matchExpressions");
        cJSON *ex = cJSON_CreateObject();
        cJSON_AddItemToArray(me, ex);
        cJSON_AddStringToObject(ex, "key", "kubernetes.io/metadata.name");
        cJSON_AddStringToObject(ex, "operator", "DoesNotExist");
    }
    cJSON *rgs = cJSON_AddArrayToObject(sp, "resourceGroups");
    cJSON *rg = cJSON_CreateObject();
    cJSON_AddItemToArray(rgs, rg);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(rg, "coveredResources"),
                         cJSON_CreateString(c->h->resource));
    cJSON *fl = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(rg, "flavors"), fl);
    cJSON_AddStringToObject(fl, "name", c->flavor);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(fl, "resources"), r);
    cJSON_AddStringToObject(r, "name", c->h->resource);
    char q[24];
    snprintf(q, sizeof(q), "%" PRId64, nominal);
    cJSON_AddStringToObject(r, "nominalQuota", q);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static void change_grant(struct lctx *c, bool raise)
{
    struct gf_kube_client *cl = client_of(c->h, c->l.origin_member);
    if (c->flavor[0] == '\0' || c->cohort[0] == '\0') {
        struct gf_log_ctx lc = {.comp = "loan", .key = c->lease};
        GF_LOG(&lc, GF_LOG_WARN, "grant has no flavor or cohort",
               "origin_cq=%s", c->l.origin_cq);
        finish(c, GF_WQ_ERROR, 0);
        return;
    }
    bool create = c->grant_rv[0] == '\0';
    int64_t nominal = c->grant_nominal + (raise ? c->l.gpus : -c->l.gpus);
    if (nominal < 0)
        nominal = 0;
    char *loans = list_with(c->grant_loans, c->lease, raise);
    char *body = grant_body(c, nominal, loans, create, raise);
    gf_free(loans);
    struct gf_kube_resource r = resource(CQ_RES);
    struct gf_kube_patch_opts po = {.type = GF_PATCH_MERGE};
    int rc = cl == NULL ? -ENOTCONN
             : create   ? gf_kube_create(cl, &r, NULL, body, strlen(body),
                                         grant_done, c, NULL)
                        : gf_kube_patch(cl, &r, NULL, c->grant, &po, body,
                                        strlen(body), grant_done, c, NULL);
    cJSON_free(body);
    if (rc != 0)
        finish(c, GF_WQ_ERROR, 0);
}

/* --- the origin --------------------------------------------------------- */

static void origin_done(void *data, const struct gf_kube_result *res)
{
    struct lctx *c = data;
    done_into(c, res, c->l.origin_member, GF__M_WL);
}

static void patch_origin(struct lctx *c, cJSON *p)
{
    struct gf_kube_client *cl = client_of(c->h, c->l.origin_member);
    cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(p, "metadata"),
                            "resourceVersion", c->origin_rv);
    char *body = cJSON_PrintUnformatted(p);
    cJSON_Delete(p);
    struct gf_kube_resource r = resource(WL_RES);
    struct gf_kube_patch_opts po = {.type = GF_PATCH_MERGE};
    int rc = cl == NULL ? -ENOTCONN
                        : gf_kube_patch(cl, &r, c->l.origin_namespace,
                                        c->l.origin_name, &po, body,
                                        strlen(body), origin_done, c, NULL);
    cJSON_free(body);
    if (rc != 0)
        finish(c, GF_WQ_ERROR, 0);
}

static void mark_deadline(struct lctx *c)
{
    char ts[32];
    int64_t grace = c->h->policy->timing.grace_period_ms;
    gf_time_rfc3339(gf_clock_wall_ms(&c->h->clk) + grace, ts);
    cJSON *p = cJSON_CreateObject();
    cJSON *md = cJSON_AddObjectToObject(p, "metadata");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(md, "annotations"),
                            GF_ANN_RECLAIM_DEADLINE, ts);
    patch_origin(c, p);
}

static void deactivate_origin(struct lctx *c)
{
    char ts[32];
    gf_time_rfc3339(gf_clock_wall_ms(&c->h->clk), ts);
    cJSON *p = cJSON_CreateObject();
    cJSON *md = cJSON_AddObjectToObject(p, "metadata");
    cJSON *an = cJSON_AddObjectToObject(md, "annotations");
    cJSON_AddStringToObject(an, GF_ANN_LOAN_REVOKED_AT, ts);
    cJSON_AddStringToObject(an, GF_ANN_LEASE, c->lease);
    cJSON_AddFalseToObject(cJSON_AddObjectToObject(p, "spec"), "active");
    patch_origin(c, p);
}

static void reactivated(void *data, const struct gf_kube_result *res)
{
    struct lctx *c = data;
    if (res->err == GF_ENOTFOUND || res->err == GF_EINVALID) {
        /* Gone, or no longer revoked by this lease (the test op): either
         * way nothing of ours is left on it. An unmark's failed test may
         * also be a cache behind W: look again once it may have caught
         * up, not at once. */
        c->wrote = true;
        finish(c, GF_WQ_REQUEUE_AFTER,
               c->step.write == GF_LN_UNMARK_ORIGIN ? 250 : 1);
        return;
    }
    /* The mark's writes change nothing the lease is woken by once they
     * land (the Workload may be finished, its watch event no news): the
     * loan looks again at once for its next step. */
    if (res->err == 0 && (c->step.write == GF_LN_UNMARK_ORIGIN ||
                          c->step.write == GF_LN_REACTIVATE_FENCED ||
                          c->step.write == GF_LN_REACTIVATE_OTHER)) {
        c->wrote = true;
        gf__member_write_through(gf__hub_member(c->h, c->l.origin_member),
                                 GF__M_WL, res->json);
        emit_event(c);
        finish(c, GF_WQ_REQUEUE_AFTER, 1);
        return;
    }
    done_into(c, res, c->l.origin_member, GF__M_WL);
}

/* A JSON patch of a Workload in the borrower; reactivated() ends it. */
static void json_patch_wl(struct lctx *c, const char *ns, const char *name,
                          const char *body)
{
    struct gf_kube_client *cl = client_of(c->h, c->l.origin_member);
    struct gf_kube_resource r = resource(WL_RES);
    struct gf_kube_patch_opts po = {.type = GF_PATCH_JSON};
    int rc = cl == NULL ? -ENOTCONN
                        : gf_kube_patch(cl, &r, ns, name, &po, body,
                                        strlen(body), reactivated, c, NULL);
    if (rc != 0)
        finish(c, GF_WQ_ERROR, 0);
}

static void mark_origin(struct lctx *c)
{
    cJSON *p = cJSON_CreateObject();
    cJSON *md = cJSON_AddObjectToObject(p, "metadata");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(md, "annotations"),
                            GF_ANN_LOAN, c->lease);
    patch_origin(c, p);
}

/*
 * The mark off W (unmark-origin), and with it the agent's fence
 * (reactivate-fenced): every op after the test, which requires the mark
 * to name this lease, so a W marked since for another loan is left alone.
 */
static void clear_origin(struct lctx *c, bool reactivate)
{
    char loan_ptr[128], fenced_ptr[128];
    gf_json_pointer_escape(GF_ANN_LOAN, loan_ptr, sizeof(loan_ptr));
    gf_json_pointer_escape(GF_ANN_FENCED_AT, fenced_ptr, sizeof(fenced_ptr));
    char body[1024];
    /* An unmark also tests the resourceVersion the view was built from: a
     * cache that lags the agent's fence (the borrower's watches still
     * relisting after a heal) shows W active, and unmarking a fenced W
     * would leave it inactive with nothing to wake its loan. The failed
     * test is retried once the cache has caught up. */
    char rv_test[96] = "";
    if (!reactivate && c->origin_rv[0] != '\0')
        snprintf(rv_test, sizeof(rv_test),
                 "{\"op\":\"test\",\"path\":\"/metadata/resourceVersion\","
                 "\"value\":\"%s\"},",
                 c->origin_rv);
    int n =
        snprintf(body, sizeof(body),
                 "[%s{\"op\":\"test\",\"path\":\"/metadata/annotations/%s\","
                 "\"value\":\"%s\"},"
                 "{\"op\":\"remove\",\"path\":\"/metadata/annotations/%s\"}",
                 rv_test, loan_ptr, c->lease, loan_ptr);
    if (reactivate && n > 0 && (size_t)n < sizeof(body))
        snprintf(body + n, sizeof(body) - (size_t)n,
                 ",{\"op\":\"remove\",\"path\":\"/metadata/annotations/%s\"},"
                 "{\"op\":\"replace\",\"path\":\"/spec/active\","
                 "\"value\":true}]",
                 fenced_ptr);
    else if (n > 0 && (size_t)n < sizeof(body))
        snprintf(body + n, sizeof(body) - (size_t)n, "]");
    json_patch_wl(c, c->l.origin_namespace, c->l.origin_name, body);
}

/* Another Workload the agent fenced for this loan queues again. */
static void reactivate_other(struct lctx *c)
{
    char for_ptr[128], fenced_ptr[128];
    gf_json_pointer_escape(GF_ANN_FENCED_FOR_LOAN, for_ptr, sizeof(for_ptr));
    gf_json_pointer_escape(GF_ANN_FENCED_AT, fenced_ptr, sizeof(fenced_ptr));
    char body[1024];
    snprintf(body, sizeof(body),
             "[{\"op\":\"test\",\"path\":\"/metadata/annotations/%s\","
             "\"value\":\"%s\"},"
             "{\"op\":\"remove\",\"path\":\"/metadata/annotations/%s\"},"
             "{\"op\":\"remove\",\"path\":\"/metadata/annotations/%s\"},"
             "{\"op\":\"replace\",\"path\":\"/spec/active\",\"value\":true}]",
             for_ptr, c->lease, for_ptr, fenced_ptr);
    struct gf_log_ctx lc = {.comp = "loan", .key = c->lease};
    GF_LOG(&lc, GF_LOG_INFO, "reactivating a Workload fenced for the loan",
           "workload=%s/%s", c->other_ns, c->other_name);
    json_patch_wl(c, c->other_ns, c->other_name, body);
}

static void reactivate_origin(struct lctx *c)
{
    struct gf_kube_client *cl = client_of(c->h, c->l.origin_member);
    /* The reclaim-deadline note, if any, stays: a JSON patch cannot
     * remove what may be absent, and it is only a hint. */
    char lease_ptr[128], revoked_ptr[128];
    gf_json_pointer_escape(GF_ANN_LEASE, lease_ptr, sizeof(lease_ptr));
    gf_json_pointer_escape(GF_ANN_LOAN_REVOKED_AT, revoked_ptr,
                           sizeof(revoked_ptr));
    char body[1024];
    snprintf(body, sizeof(body),
             "[{\"op\":\"test\",\"path\":\"/metadata/annotations/%s\","
             "\"value\":\"%s\"},"
             "{\"op\":\"remove\",\"path\":\"/metadata/annotations/%s\"},"
             "{\"op\":\"remove\",\"path\":\"/metadata/annotations/%s\"},"
             "{\"op\":\"replace\",\"path\":\"/spec/active\",\"value\":true}]",
             lease_ptr, c->lease, lease_ptr, revoked_ptr);
    struct gf_kube_resource r = resource(WL_RES);
    struct gf_kube_patch_opts po = {.type = GF_PATCH_JSON};
    int rc = cl == NULL ? -ENOTCONN
                        : gf_kube_patch(cl, &r, c->l.origin_namespace,
                                        c->l.origin_name, &po, body,
                                        strlen(body), reactivated, c, NULL);
    if (rc != 0)
        finish(c, GF_WQ_ERROR, 0);
}

/* --- the reconcile ------------------------------------------------------ */

static enum gf_ln_cmd loan_cmd(enum gf_lm_cmd cmd)
{
    switch (cmd) {
    case GF_LM_CMD_WITHDRAW:
        return GF_LN_CMD_WITHDRAW;
    case GF_LM_CMD_SUSPECT:
        return GF_LN_CMD_SUSPECT;
    case GF_LM_CMD_FENCE:
        return GF_LN_CMD_FENCE;
    case GF_LM_CMD_RECLAIM:
        /* A loan has no copy to warn and stop: the lender gets its quota
         * back by the loan's own release (grant lowered, W stopped after
         * gracePeriod if it must, then the hold deleted). */
        return GF_LN_CMD_RELEASE;
    case GF_LM_CMD_NONE:
        break;
    }
    return GF_LN_CMD_NONE;
}

/* Why decide asked for a loan's release: a drain or a reclaim. */
static enum gf_ln_reason loan_cmd_reason(const struct gf__lease_mem *mem)
{
    if (mem->cmd != GF_LM_CMD_RECLAIM)
        return GF_LN_R_NONE;
    return mem->reclaim_cause != NULL &&
                   strcmp(mem->reclaim_cause, "drain") == 0
               ? GF_LN_R_DRAINED
               : GF_LN_R_RECLAIMED;
}

/* A waiting loan looks again in 10 s, or just after its term ends if
 * sooner: nothing else wakes an Active loan whose W stopped using it, and
 * such a loan is released within one term. */
static uint64_t wait_ms(const struct lctx *c)
{
    int64_t left = c->l.expires_ms - gf_clock_wall_ms(&c->h->clk);
    if (c->l.phase == GF_LEASE_ACTIVE && c->l.expires_ms > 0 && left >= 0 &&
        left < 10000)
        return (uint64_t)left + 1;
    return 10000;
}

static void dispatch(struct lctx *c)
{
    switch (c->step.write) {
    case GF_LN_WAIT:
        finish(c, GF_WQ_REQUEUE_AFTER, wait_ms(c));
        break;
    case GF_LN_SET_PHASE:
        set_phase(c);
        break;
    case GF_LN_CREATE_HOLD:
        create_hold(c);
        break;
    case GF_LN_DELETE_HOLD:
        delete_hold(c);
        break;
    case GF_LN_CONFIRM_HOLD_GONE:
        confirm_hold_gone(c);
        break;
    case GF_LN_RAISE_GRANT:
        change_grant(c, true);
        break;
    case GF_LN_LOWER_GRANT:
        change_grant(c, false);
        break;
    case GF_LN_MARK_DEADLINE:
        mark_deadline(c);
        break;
    case GF_LN_DEACTIVATE_ORIGIN:
        deactivate_origin(c);
        break;
    case GF_LN_REACTIVATE_ORIGIN:
        reactivate_origin(c);
        break;
    case GF_LN_MARK_ORIGIN:
        mark_origin(c);
        break;
    case GF_LN_UNMARK_ORIGIN:
        clear_origin(c, false);
        break;
    case GF_LN_REACTIVATE_FENCED:
        clear_origin(c, true);
        break;
    case GF_LN_REACTIVATE_OTHER:
        reactivate_other(c);
        break;
    }
}

struct gf_ln_step gf__loan_step(struct gf_ln_view *v, bool grant_unsure,
                                bool *get)
{
    /* After a raise whose answer was lost the cache may not show it yet:
     * the machine sees the grant unknown (and acts only where that is
     * safe), and a wait becomes a GET that settles it. */
    if (grant_unsure)
        v->grant.cq = GF_LM_UNKNOWN;
    struct gf_ln_step st = gf_ln_next(v);
    *get = grant_unsure && st.write == GF_LN_WAIT;
    return st;
}

void gf__loan_reconcile(struct gf_hub *h, const char *key,
                        const struct gf__lease_proj *lp, const char *lease_rv)
{
    struct gf__lease_mem *mem = gf__lease_mem(h, lp->l.name);
    struct lctx *c = gf_calloc(1, sizeof(*c));
    c->h = h;
    snprintf(c->key, sizeof(c->key), "%s", key);
    snprintf(c->lease, sizeof(c->lease), "%s", lp->l.name);
    snprintf(c->lease_rv, sizeof(c->lease_rv), "%s", lease_rv);
    gf_lease_copy(&c->l, &lp->l);
    gf__hold_name(c->lease, c->hold);
    snprintf(c->overflow, sizeof(c->overflow), "gpufed-%.56s", c->l.lender_cq);
    snprintf(c->grant, sizeof(c->grant), GF_LOAN_CQ_PREFIX "%.240s",
             c->l.origin_cq != NULL ? c->l.origin_cq : "");

    struct gf_ln_view v = {
        .phase = lp->l.phase,
        .reason = lp->ln_reason,
        .cmd = loan_cmd(mem->cmd),
        .cmd_reason = loan_cmd_reason(mem),
        .now_ms = gf_clock_wall_ms(&h->clk),
        .expires_ms = lp->l.expires_ms,
    };
    view_grant(h, lp, &v, c);
    view_hold(h, &c->l, mem, &v.hold, c);
    view_others(h, &c->l, &v, c);
    bool get = false;
    c->step = gf__loan_step(&v, mem->grant_unsure, &get);
    struct gf_log_ctx lc = {.comp = "loan", .key = c->lease};
    GF_LOG(&lc, GF_LOG_DEBUG, "step", "phase=%s write=%s rule=%s unsure=%d",
           gf_lease_phase_name(v.phase), gf_ln_write_name(c->step.write),
           c->step.rule, mem->grant_unsure);
    h->inflight_writes++;
    if (c->step.write != GF_LN_WAIT)
        h->n_writes++;
    if (get)
        get_grant(c);
    else
        dispatch(c);
}
