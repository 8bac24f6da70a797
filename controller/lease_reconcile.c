/*
 * lease_reconcile: one reconcile of one QuotaLease. It builds the lease
 * machine's view from the caches (unknown where a member is not synced),
 * asks the machine for the next step, and carries that one write out with
 * its precondition. The write's effect comes back through the watches and
 * wakes the key again; the API servers' own answers that the machine
 * relies on (a copy confirmed gone, an origin confirmed free) are kept in
 * the lease's memory.
 */
#include "controller/internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/json.h"
#include "controller/copy.h"

/* One write in flight: everything its callbacks need, owned. */
struct wctx {
    struct gf_hub *h;
    char key[300];
    char lease[64];
    struct gf_lm_step step;
    struct gf_lease l; /* deep copy */
    char lender_ns[64], copy[64], lq[64], cq[64];
    char origin_job[254], origin_job_uid[64];
    char copy_uid[64];
    char copy_wl[254], copy_wl_rv[32]; /* the copy's Workload, if seen */
    char origin_rv[32], lease_rv[32];
    int64_t origin_created_ms;
    int64_t deadline_ms;           /* the view's reclaim deadline */
    enum gf_obs_preempt preempted; /* Kueue's reason, on the copy */
    int stage;
    bool wrote; /* the API server accepted the step's write */
};

static struct gf_kube_resource resource(const char *name)
{
    struct gf_kube_resource r;
    gf_kube_resource_parse(name, &r);
    return r;
}

static struct gf_kube_resource res_of_lease(void)
{
    return resource("quotaleases.gpufed.io");
}

/* Named after the submitter's Job where the lease knows it (people
 * recognise it), else the Workload; either way unique by uid and epoch. */
static void copy_name(const struct gf_lease *l, char out[GF_COPY_NAME_MAX])
{
    const char *base = l->origin_job != NULL ? l->origin_job : l->origin_name;
    if (gf_copy_name(base, l->origin_uid, l->epoch, out) != 0)
        out[0] = '\0';
}

/* --- the view --------------------------------------------------------- */

static void view_origin(struct gf_hub *h, const struct gf_lease *l,
                        const struct gf__lease_mem *mem, struct gf_lm_origin *o,
                        struct wctx *c)
{
    struct gf__member *m = gf__hub_member(h, l->origin_member);
    if (m == NULL || !gf__member_observed(m)) {
        o->wl = o->job = GF_LM_UNKNOWN;
        return;
    }
    char key[600];
    snprintf(key, sizeof(key), "%s/%s", l->origin_namespace, l->origin_name);
    const struct gf_store_entry *e = gf_store_get(m->stores[GF__M_WL], key);
    const struct gf_obs_workload *w = e != NULL ? e->proj : NULL;
    const struct gf_obs_job *j = w != NULL && w->owner_name != NULL
                                     ? gf__member_job(m, w->ns, w->owner_name)
                                     : NULL;
    o->wl = w != NULL ? GF_LM_PRESENT : GF_LM_ABSENT;
    o->job = j != NULL ? GF_LM_PRESENT : GF_LM_ABSENT;
    if (w != NULL) {
        o->held_by_us =
            !w->active && w->lease != NULL && strcmp(w->lease, l->name) == 0;
        o->active = w->active;
        o->reserved = (w->quota_reserved || w->admitted) && !w->finished;
        o->finished = w->finished;
        c->origin_created_ms = w->created_ms;
        snprintf(c->origin_rv, sizeof(c->origin_rv), "%s", e->rv);
    }
    if (j == NULL && l->origin_job != NULL)
        snprintf(c->origin_job, sizeof(c->origin_job), "%s", l->origin_job);
    if (j != NULL) {
        o->outcome_marked = j->outcome != NULL;
        snprintf(c->origin_job, sizeof(c->origin_job), "%s", j->name);
        snprintf(c->origin_job_uid, sizeof(c->origin_job_uid), "%s", j->uid);
    }
    o->confirmed_free = mem->confirmed_free;
}

static void view_copy(struct gf_hub *h, const struct gf_lease *l,
                      struct gf__lease_mem *mem, struct gf_lm_copy *cp,
                      struct wctx *c)
{
    cp->outcome = mem->last_outcome;
    cp->finished_ms = mem->finished_ms;
    cp->create_refused = mem->create_refused;
    cp->confirmed_gone = mem->confirmed_gone;
    struct gf__member *m = gf__hub_member(h, l->lender_member);
    if (m == NULL || !gf__member_observed(m)) {
        cp->job = GF_LM_UNKNOWN;
        return;
    }
    const struct gf_obs_job *j = gf__member_job(m, c->lender_ns, c->copy);
    cp->job = j != NULL ? GF_LM_PRESENT : GF_LM_ABSENT;
    if (j == NULL)
        return;
    snprintf(c->copy_uid, sizeof(c->copy_uid), "%s", j->uid);
    cp->ours = j->lease != NULL && strcmp(j->lease, l->name) == 0 &&
               j->epoch == l->epoch;
    cp->deleting = j->deleting;
    cp->reclaim_marked =
        c->deadline_ms != 0 && j->reclaim_deadline_ms == c->deadline_ms;
    const struct gf_obs_workload *w =
        gf__member_job_wl(m, c->lender_ns, c->copy);
    if (w != NULL) {
        cp->reserved = (w->quota_reserved || w->admitted) && !w->finished;
        cp->evicted = w->evicted;
        cp->deactivated = !w->active;
        cp->reclaim_deactivated = !w->active && w->reclaimed;
        c->preempted = w->preempted;
        char key[600];
        snprintf(key, sizeof(key), "%s/%s", w->ns, w->name);
        const struct gf_store_entry *we =
            gf_store_get(m->stores[GF__M_WL], key);
        snprintf(c->copy_wl, sizeof(c->copy_wl), "%s", w->name);
        snprintf(c->copy_wl_rv, sizeof(c->copy_wl_rv), "%s",
                 we != NULL ? we->rv : "");
    }
    if (cp->ours && (j->complete || j->failed)) {
        /* A finished Job stays finished: remember it past a partition. */
        mem->last_outcome = j->complete ? GF_LM_SUCCEEDED : GF_LM_FAILED;
        mem->finished_ms = j->finished_ms;
        cp->outcome = mem->last_outcome;
        cp->finished_ms = mem->finished_ms;
    }
}

/* --- events ----------------------------------------------------------- */

static const char *event_message(const struct wctx *c, char *out, size_t cap)
{
    const struct gf_lease *l = &c->l;
    const char *ev = c->step.event;
    if (strcmp(ev, "Redirected") == 0)
        snprintf(out, cap,
                 "Redirected to member %s (ClusterQueue %s, flavor %s): "
                 "%" PRId64 " GPUs idle there; lease %s",
                 l->lender_member, l->lender_cq, l->lender_flavor, l->gpus,
                 l->name);
    else if (strcmp(ev, "CopyAdmitted") == 0)
        snprintf(out, cap, "Copy %s admitted in member %s; lease %s", c->copy,
                 l->lender_member, l->name);
    else if (strcmp(ev, "CopySucceeded") == 0 || strcmp(ev, "CopyFailed") == 0)
        snprintf(out, cap, "Copy %s in member %s %s", c->copy, l->lender_member,
                 ev[4] == 'S' ? "succeeded" : "failed");
    else if (strcmp(ev, "Reclaiming") == 0) {
        char dl[GF_OBS_TIME_MAX];
        gf_obs_time_ms(c->deadline_ms, dl);
        snprintf(out, cap,
                 "Member %s needs its quota back (ClusterQueue %s): copy "
                 "%s/%s there is stopped at %s; checkpoint now. It then "
                 "runs again here or elsewhere; lease %s",
                 l->lender_member, l->lender_cq, c->lender_ns, c->copy, dl,
                 l->name);
    } else if (strcmp(ev, "Reclaimed") == 0) {
        char created[32];
        gf_time_rfc3339(c->origin_created_ms, created);
        snprintf(out, cap,
                 "Member %s took its quota back: copy %s stopped and removed; "
                 "requeued here, keeping its place in the queue (created %s, "
                 "priority %d); lease %s",
                 l->lender_member, c->copy, created, (int)l->priority, l->name);
    } else if (strcmp(ev, "Preempted") == 0)
        snprintf(out, cap,
                 "The lender's Kueue preempted copy %s in member %s "
                 "(Preempted: %s); it runs again here or elsewhere; lease %s",
                 c->copy, l->lender_member,
                 c->preempted != GF_OBS_PREEMPT_NONE
                     ? gf_obs_preempt_name(c->preempted)
                     : "evicted",
                 l->name);
    else
        snprintf(out, cap, "%s: %s; lease %s", ev, c->step.rule, l->name);
    return out;
}

/* Records the step's Event on the origin Job (best effort). */
static void emit_event(struct wctx *c)
{
    struct gf__member *m = gf__hub_member(c->h, c->l.origin_member);
    if (c->step.event == NULL || m == NULL)
        return;
    char msg[512];
    const char *ev = c->step.event;
    const struct gf__event e = {
        .ns = c->l.origin_namespace,
        .api_version = "batch/v1",
        .kind = "Job",
        .name = c->origin_job,
        .uid = c->origin_job_uid,
        .reason = ev,
        .message = event_message(c, msg, sizeof(msg)),
        .component = "gpufed",
        .warning = strcmp(ev, "CopyFailed") == 0 ||
                   strcmp(ev, "CopyLost") == 0 || strcmp(ev, "Preempted") == 0,
    };
    gf__event_post(c->h, m->client, &e);
}

/* --- finishing a write ------------------------------------------------ */

static void finish(struct wctx *c, enum gf_wq_result r, uint64_t after)
{
    struct gf_hub *h = c->h;
    h->inflight_writes--;
    if (c->wrote)
        gf__hub_wrote(h, gf_lm_write_name(c->step.write));
    if (r == GF_WQ_ERROR)
        h->n_write_errors++;
    gf_wq_done(h->wq, c->key, r, after);
    gf_lease_clear(&c->l);
    gf_free(c);
}

static void log_fail(struct wctx *c, const struct gf_kube_result *res)
{
    struct gf_log_ctx lc = {.comp = "lease", .key = c->lease};
    GF_LOG(&lc, GF_LOG_WARN, "write failed", "write=%s err=%s message=%s",
           gf_lm_write_name(c->step.write), gf_strerror(res->err),
           res->status->message);
}

/* An answer that is an error: logged, and the reconcile ends with ERROR
 * (a retry with backoff; after a 409 the machine looks again at what
 * changed). True when it was; c is then freed. */
static bool write_failed(struct wctx *c, const struct gf_kube_result *res)
{
    if (res->err == 0)
        return false;
    log_fail(c, res);
    finish(c, GF_WQ_ERROR, 0);
    return true;
}

/* The common ending: success, or a retry with backoff. */
static void done_simple(void *data, const struct gf_kube_result *res)
{
    struct wctx *c = data;
    if (write_failed(c, res))
        return;
    c->wrote = true;
    emit_event(c);
    finish(c, GF_WQ_OK, 0);
}

static struct gf_kube_client *member_client(struct wctx *c, const char *name)
{
    struct gf__member *m = gf__hub_member(c->h, name);
    return m != NULL ? m->client : NULL;
}

/* Sends the write as a patch of type to name in ns of res through cl, and
 * frees body (cJSON's). cb runs with c unless the patch cannot be sent
 * (no client, or a refused call): then the reconcile ends with ERROR. */
static void patch_or_error(struct wctx *c, struct gf_kube_client *cl,
                           const char *res, const char *ns, const char *name,
                           enum gf_patch_type type, char *body, gf_kube_cb cb)
{
    struct gf_kube_resource r = resource(res);
    struct gf_kube_patch_opts po = {.type = type};
    int rc = cl == NULL ? -ENOTCONN
                        : gf_kube_patch(cl, &r, ns, name, &po, body,
                                        strlen(body), cb, c, NULL);
    cJSON_free(body);
    if (rc != 0)
        finish(c, GF_WQ_ERROR, 0);
}

/* --- set-phase: GET the lease, append a transition, PATCH /status ------ */

/*
 * The reclaim figures, once per transition: a reclaim begins (a victim
 * turns Reclaiming: gpufed's reclaim or a drain), the lender's Kueue
 * preempts a copy (cause kueue), and a reclaim ends with the copy's
 * quota free (Releasing from Reclaiming): its duration.
 */
static void reclaim_begun(struct wctx *c)
{
    const struct gf_lease *l = &c->l;
    const struct gf__lease_mem *mem = gf__lease_mem(c->h, c->lease);
    const char *cause =
        mem->reclaim_cause != NULL ? mem->reclaim_cause : "reclaim";
    gf__hub_count_reclaim(c->h, l->lender_member, cause);
    struct gf_log_ctx lc = {.comp = "lease", .key = c->lease};
    char dl[GF_OBS_TIME_MAX];
    gf_obs_time_ms(c->deadline_ms, dl);
    GF_LOG(&lc, GF_LOG_INFO, "reclaim begun",
           "lender=%s cq=%s copy=%s/%s deadline=%s cause=%s", l->lender_member,
           l->lender_cq, c->lender_ns, c->copy, dl, cause);
}

static void reclaim_ended(struct wctx *c)
{
    const struct gf_lease *l = &c->l;
    int64_t took = gf_clock_wall_ms(&c->h->clk) - l->reclaim_started_ms;
    double secs = took > 0 ? (double)took / 1000.0 : 0.0;
    gf__hub_observe_reclaim(c->h, secs);
    struct gf_log_ctx lc = {.comp = "lease", .key = c->lease};
    GF_LOG(&lc, GF_LOG_INFO, "reclaim done",
           "lender=%s copy=%s/%s seconds=%.3f reason=%s", l->lender_member,
           c->lender_ns, c->copy, secs, gf_lm_reason_name(c->step.reason));
}

static void count_reclaim(struct wctx *c)
{
    const struct gf_lease *l = &c->l;
    enum gf_lm_reason r = c->step.reason;
    if (c->step.phase == GF_LEASE_RECLAIMING && c->step.event != NULL)
        reclaim_begun(c);
    if (c->step.phase != GF_LEASE_RELEASING)
        return;
    if (r == GF_LM_R_PREEMPTED)
        gf__hub_count_reclaim(c->h, l->lender_member, "kueue");
    if (l->phase == GF_LEASE_RECLAIMING && l->reclaim_started_ms != 0 &&
        (r == GF_LM_R_RECLAIMED || r == GF_LM_R_PREEMPTED))
        reclaim_ended(c);
}

static void phase_patched(void *data, const struct gf_kube_result *res)
{
    struct wctx *c = data;
    if (res->err == 0) {
        struct gf__lease_mem *mem = gf__lease_mem(c->h, c->lease);
        /* Unless the answer moves the cache past the version we wrote
         * over, wait for the watch instead of writing the same transition
         * twice. */
        snprintf(mem->stale_rv, sizeof(mem->stale_rv), "%s", c->lease_rv);
        if (res->json != NULL)
            gf_store_write_through(c->h->leases, res->json);
        struct gf_log_ctx lc = {.comp = "lease", .key = c->lease};
        GF_LOG(&lc, GF_LOG_INFO, "lease phase", "phase=%s reason=%s rule=%s",
               gf_lease_phase_name(c->step.phase),
               gf_lm_reason_name(c->step.reason), c->step.rule);
        count_reclaim(c);
        if (c->step.ran_twice) {
            /* The phase changes once: this is counted once. */
            c->h->n_double_completions++;
            GF_LOG(&lc, GF_LOG_ERROR, "job ran to its end twice",
                   "origin=%s/%s/%s lender=%s epoch=%llu why=\"its copy "
                   "finished unseen before the fence, and the origin ran "
                   "again at home\"",
                   c->l.origin_member, c->l.origin_namespace, c->l.origin_name,
                   c->l.lender_member, (unsigned long long)c->l.epoch);
        }
    }
    done_simple(data, res);
}

static void phase_got(void *data, const struct gf_kube_result *res)
{
    struct wctx *c = data;
    if (res->err != 0) {
        done_simple(data, res);
        return;
    }
    struct gf_hub *h = c->h;
    const cJSON *st = GF_JSON_AT(res->json, "status");
    const char *rv = gf_json_str(res->json, "metadata.resourceVersion");
    int64_t now = gf_clock_wall_ms(&h->clk);
    int64_t started =
        c->step.phase == GF_LEASE_ACTIVE && c->l.started_ms == 0 ? now : 0;
    /* Turning Reclaiming: when, and until when (the command's deadline).
     * A reclaim that resumes (its copy already stopped) keeps what the
     * status has. */
    int64_t rc_started = 0, rc_deadline = 0;
    if (c->step.phase == GF_LEASE_RECLAIMING) {
        bool fresh = c->deadline_ms != 0 && c->step.event != NULL;
        const struct gf__lease_mem *mem = gf__lease_mem(h, c->lease);
        rc_started = fresh && mem->reclaim_started_ms != 0
                         ? mem->reclaim_started_ms /* a resumed mark */
                     : fresh || c->l.reclaim_started_ms == 0
                         ? now
                         : c->l.reclaim_started_ms;
        rc_deadline = fresh                           ? c->deadline_ms
                      : c->l.reclaim_deadline_ms != 0 ? c->l.reclaim_deadline_ms
                                                      : now;
        c->deadline_ms = rc_deadline;
    }
    char *patch = gf_obs_lease_status_patch(
        st, gf_lease_phase_name(c->step.phase),
        gf_lm_reason_name(c->step.reason), c->step.rule, c->l.epoch, now,
        started, 0, rc_started, rc_deadline);
    struct gf_kube_resource r = res_of_lease();
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

static void set_phase(struct wctx *c)
{
    struct gf_kube_resource r = res_of_lease();
    if (gf_kube_get(c->h->hubc, &r, c->h->ns, c->lease, phase_got, c, NULL) !=
        0)
        finish(c, GF_WQ_ERROR, 0);
}

/* --- hold-origin -------------------------------------------------------- */

static void placement_done(void *data, const struct gf_kube_result *res)
{
    /* The Job's placement annotation is for people; the Workload's hold
     * is what counts. */
    (void)res;
    struct gf_hub *h = data;
    h->inflight_writes--;
}

static void hold_done(void *data, const struct gf_kube_result *res)
{
    struct wctx *c = data;
    /* 409: Kueue changed it (maybe admitted it) since we looked;
     * re-observe. */
    if (write_failed(c, res))
        return;
    c->wrote = true;
    /* The held Workload as the server answered (the resourceVersion
     * precondition made it the version we saw, plus our hold): the next
     * step (the copy) is taken on it without waiting for the watch. */
    gf__member_write_through(gf__hub_member(c->h, c->l.origin_member), GF__M_WL,
                             res->json);
    /* The placement on the Job goes out beside the next step rather than
     * before it: nothing waits for it. */
    struct gf_kube_client *cl = member_client(c, c->l.origin_member);
    char body[256];
    snprintf(body, sizeof(body),
             "{\"metadata\":{\"annotations\":{\"" GF_ANN_PLACEMENT
             "\":\"%s\"}}}",
             c->l.lender_member);
    struct gf_kube_resource r = resource("jobs.batch");
    struct gf_kube_patch_opts po = {.type = GF_PATCH_MERGE};
    if (cl != NULL && c->origin_job[0] != '\0' &&
        gf_kube_patch(cl, &r, c->l.origin_namespace, c->origin_job, &po, body,
                      strlen(body), placement_done, c->h, NULL) == 0) {
        c->h->inflight_writes++;
        c->h->n_writes++;
    }
    emit_event(c);
    finish(c, GF_WQ_OK, 0);
}

/* The origin Job read beside the hold: the copy is built from it, and
 * reading it after the hold would put one more round trip between the
 * hold and the copy. Reading before the hold is as good as after: the
 * hold's precondition is on the Workload, and the Job's template is the
 * submitter's either way. */
struct job_read {
    struct gf_hub *h;
    char lease[64];
};

static void job_read_done(void *data, const struct gf_kube_result *res)
{
    struct job_read *jr = data;
    struct gf_hub *h = jr->h;
    h->inflight_writes--;
    struct gf__lease_mem *mem = gf_htab_get_str(&h->lease_mem, jr->lease);
    if (res->err == 0 && res->json != NULL && mem != NULL && mem->job_wanted) {
        cJSON_Delete(mem->origin_job);
        mem->origin_job = cJSON_Duplicate(res->json, true);
    }
    gf_free(jr);
}

static void read_job_ahead(struct wctx *c, struct gf_kube_client *cl)
{
    if (cl == NULL || c->origin_job[0] == '\0')
        return;
    struct gf__lease_mem *mem = gf__lease_mem(c->h, c->lease);
    struct job_read *jr = gf_calloc(1, sizeof(*jr));
    jr->h = c->h;
    snprintf(jr->lease, sizeof(jr->lease), "%s", c->lease);
    struct gf_kube_resource r = resource("jobs.batch");
    if (gf_kube_get(cl, &r, c->l.origin_namespace, c->origin_job, job_read_done,
                    jr, NULL) != 0) {
        gf_free(jr);
        return;
    }
    mem->job_wanted = true;
    c->h->inflight_writes++;
}

/* The Job read ahead, if it is the one wanted now (else NULL); the
 * caller takes it. No read is wanted after this. */
static cJSON *job_read_ahead(struct wctx *c)
{
    struct gf__lease_mem *mem = gf__lease_mem(c->h, c->lease);
    cJSON *j = mem->origin_job;
    mem->origin_job = NULL;
    mem->job_wanted = false;
    const char *uid = gf_json_str(j, "metadata.uid");
    if (j != NULL && (uid == NULL || (c->origin_job_uid[0] != '\0' &&
                                      strcmp(uid, c->origin_job_uid) != 0))) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

static void hold(struct wctx *c)
{
    struct gf_kube_client *cl = member_client(c, c->l.origin_member);
    read_job_ahead(c, cl);
    patch_or_error(
        c, cl, "workloads.kueue.x-k8s.io", c->l.origin_namespace,
        c->l.origin_name, GF_PATCH_MERGE,
        gf_copy_hold_patch(c->origin_rv, c->lease, c->l.lender_member),
        hold_done);
}

/* --- create-copy: overflow queues, the origin Job, the copy ------------- */

static void refuse(struct wctx *c, const char *why)
{
    struct gf__lease_mem *mem = gf__lease_mem(c->h, c->lease);
    mem->create_refused = true;
    snprintf(mem->refused_why, sizeof(mem->refused_why), "%s", why);
    struct gf_log_ctx lc = {.comp = "lease", .key = c->lease};
    GF_LOG(&lc, GF_LOG_WARN, "copy refused", "why=%s", why);
    /* The machine moves on from the refusal at once. */
    finish(c, GF_WQ_REQUEUE_AFTER, 1);
}

static void create_step(struct wctx *c);

static void create_stage_done(void *data, const struct gf_kube_result *res)
{
    struct wctx *c = data;
    if (c->stage == 100 && res->err == 0)
        c->wrote = true;
    if (res->err == 0) {
        /* What we created, in the lender's cache at once: the overflow
         * queues (the next lease's copy needs no second create) and the
         * copy (its admission is bound on the next reconcile). */
        static const enum gf__mkind kinds[] = {GF__M_CQ, GF__M_LQ};
        gf__member_write_through(gf__hub_member(c->h, c->l.lender_member),
                                 c->stage < 2 ? kinds[c->stage] : GF__M_JOB,
                                 res->json);
    }
    if (c->stage == 100 && res->err == GF_EEXIST) {
        /* Adopted: a create repeated from a cache that had not seen the
         * first one yet. The first one had its Event. */
        finish(c, GF_WQ_OK, 0);
        return;
    }
    if (res->err != 0 && res->err != GF_EEXIST) {
        log_fail(c, res);
        if (res->status->cls == GF_API_TERMINAL) {
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
    create_step(c);
}

/* gpufed's own ClusterQueue in the lender's cohort: nominal 0 for every
 * flavor and resource the lending ClusterQueue covers, so Kueue admits a
 * copy only by borrowing what the cohort has idle, and every limit of the
 * lender still holds. */
char *gf__overflow_cq_body(const struct gf__member *m, const char *lender_cq,
                           const char *name)
{
    const struct gf_obs_cq *q = gf__member_cq(m, lender_cq);
    if (q == NULL || q->cohort == NULL)
        return NULL;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "apiVersion", "kueue.x-k8s.io/v1beta2");
    cJSON_AddStringToObject(o, "kind", "ClusterQueue");
    cJSON *md = cJSON_AddObjectToObject(o, "metadata");
    cJSON_AddStringToObject(md, "name", name);
    cJSON *lb = cJSON_AddObjectToObject(md, "labels");
    cJSON_AddStringToObject(lb, "app.kubernetes.io/managed-by", "gpufed");
    cJSON *sp = cJSON_AddObjectToObject(o, "spec");
    cJSON_AddStringToObject(sp, "cohortName", q->cohort);
    cJSON *ns = cJSON_AddObjectToObject(sp, "namespaceSelector");
    cJSON *ml = cJSON_AddObjectToObject(ns, "matchLabels");
    cJSON_AddStringToObject(ml, "gpufed.io/accept-overflow", "true");
    cJSON *rgs = cJSON_AddArrayToObject(sp, "resourceGroups");
    cJSON *rg = cJSON_CreateObject();
    cJSON_AddItemToArray(rgs, rg);
    cJSON *cov = cJSON_AddArrayToObject(rg, "coveredResources");
    cJSON *fls = cJSON_AddArrayToObject(rg, "flavors");
    for (size_t i = 0; i < q->n_quotas; i++) {
        const struct gf_cq_quota *qq = &q->quotas[i];
        bool seen = false;
        const cJSON *x;
        cJSON_ArrayForEach(x, cov) seen =
            seen || strcmp(x->valuestring, qq->resource) == 0;
        if (!seen)
            cJSON_AddItemToArray(cov, cJSON_CreateString(qq->resource));
        cJSON *fl = NULL;
        cJSON_ArrayForEach(x, fls)
        {
            const cJSON *n = GF_JSON_AT(x, "name");
            if (strcmp(n->valuestring, qq->flavor) == 0)
                fl = (cJSON *)x;
        }
        if (fl == NULL) {
            fl = cJSON_CreateObject();
            cJSON_AddStringToObject(fl, "name", qq->flavor);
            cJSON_AddArrayToObject(fl, "resources");
            cJSON_AddItemToArray(fls, fl);
        }
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "name", qq->resource);
        cJSON_AddNumberToObject(r, "nominalQuota", 0);
        cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(fl, "resources"),
                             r);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

char *gf__overflow_lq_body(const char *ns, const char *name, const char *cq)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "apiVersion", "kueue.x-k8s.io/v1beta2");
    cJSON_AddStringToObject(o, "kind", "LocalQueue");
    cJSON *md = cJSON_AddObjectToObject(o, "metadata");
    cJSON_AddStringToObject(md, "name", name);
    cJSON_AddStringToObject(md, "namespace", ns);
    cJSON *lb = cJSON_AddObjectToObject(md, "labels");
    cJSON_AddStringToObject(lb, "app.kubernetes.io/managed-by", "gpufed");
    cJSON *sp = cJSON_AddObjectToObject(o, "spec");
    cJSON_AddStringToObject(sp, "clusterQueue", cq);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* The group's overflow.allowHostAccess in the policy in force now (a
 * reload that narrows it applies to the next copy). */
static bool allow_host_access(const struct gf_hub *h, const char *group)
{
    int g = group != NULL ? gf_policy_group_index(h->policy, group) : -1;
    return g >= 0 && h->policy->groups[g].allow_host_access;
}

static void build_copy(struct wctx *c, const cJSON *job)
{
    /* gpufed.io/origin-uid names the submitter's Job (what a user and a
     * checker find copies by), not its Workload. */
    const char *job_uid = gf_json_str(job, "metadata.uid");
    struct gf_copy_spec s = {
        .name = c->copy,
        .namespace = c->lender_ns,
        .local_queue = c->lq,
        .lease = c->lease,
        .origin_member = c->l.origin_member,
        .origin_namespace = c->l.origin_namespace,
        .origin_uid = job_uid != NULL ? job_uid : c->l.origin_uid,
        .epoch = c->l.epoch,
        .allow_host_access = allow_host_access(c->h, c->l.group),
    };
    cJSON *copy = NULL;
    char why[160];
    int rc = gf_copy_job_build(job, &s, &copy, why, sizeof(why));
    if (rc != 0) {
        refuse(c, why);
        return;
    }
    char *body = cJSON_PrintUnformatted(copy);
    cJSON_Delete(copy);
    struct gf_kube_client *cl = member_client(c, c->l.lender_member);
    struct gf_kube_resource r = resource("jobs.batch");
    c->stage = 100; /* the copy itself: its answer ends the write */
    rc = cl == NULL ? -ENOTCONN
                    : gf_kube_create(cl, &r, c->lender_ns, body, strlen(body),
                                     create_stage_done, c, NULL);
    cJSON_free(body);
    if (rc != 0)
        finish(c, GF_WQ_ERROR, 0);
}

static void origin_job_got(void *data, const struct gf_kube_result *res)
{
    struct wctx *c = data;
    if (write_failed(c, res))
        return;
    build_copy(c, res->json);
}

static void create_step(struct wctx *c)
{
    struct gf__member *lm = gf__hub_member(c->h, c->l.lender_member);
    struct gf__member *om = gf__hub_member(c->h, c->l.origin_member);
    if (lm == NULL || lm->client == NULL || om == NULL || om->client == NULL) {
        finish(c, GF_WQ_ERROR, 0);
        return;
    }
    int rc = 0;
    char *body = NULL;
    if (c->stage == 0 && gf__member_cq(lm, c->cq) == NULL) {
        body = gf__overflow_cq_body(lm, c->l.lender_cq, c->cq);
        if (body == NULL) {
            refuse(c, "the lending ClusterQueue has no cohort to borrow from");
            return;
        }
        struct gf_kube_resource r = resource("clusterqueues.kueue.x-k8s.io");
        rc = gf_kube_create(lm->client, &r, NULL, body, strlen(body),
                            create_stage_done, c, NULL);
    } else if (c->stage <= 1 &&
               gf__member_lq(lm, c->lender_ns, c->lq) == NULL) {
        c->stage = 1;
        body = gf__overflow_lq_body(c->lender_ns, c->lq, c->cq);
        struct gf_kube_resource r = resource("localqueues.kueue.x-k8s.io");
        rc = gf_kube_create(lm->client, &r, c->lender_ns, body, strlen(body),
                            create_stage_done, c, NULL);
    } else if (c->stage < 100) {
        c->stage = 2;
        cJSON *job = job_read_ahead(c);
        if (job != NULL) {
            build_copy(c, job);
            cJSON_Delete(job);
            return;
        }
        struct gf_kube_resource r = resource("jobs.batch");
        rc = gf_kube_get(om->client, &r, c->l.origin_namespace, c->origin_job,
                         origin_job_got, c, NULL);
    } else {
        struct gf_log_ctx lc = {.comp = "lease", .key = c->lease};
        GF_LOG(&lc, GF_LOG_INFO, "copy created",
               "origin=%s/%s/%s lender=%s copy=%s/%s", c->l.origin_member,
               c->l.origin_namespace, c->l.origin_name, c->l.lender_member,
               c->lender_ns, c->copy);
        emit_event(c);
        finish(c, GF_WQ_OK, 0);
        return;
    }
    cJSON_free(body);
    if (rc != 0)
        finish(c, GF_WQ_ERROR, 0);
}

static void create_copy(struct wctx *c)
{
    struct gf__member *lm = gf__hub_member(c->h, c->l.lender_member);
    const struct gf_obs_ns *ns =
        lm != NULL ? gf__member_ns(lm, c->lender_ns) : NULL;
    if (ns == NULL || !ns->accept_overflow) {
        char why[200];
        snprintf(why, sizeof(why),
                 "namespace %s in member %s does not accept overflow "
                 "(label gpufed.io/accept-overflow=true)",
                 c->lender_ns, c->l.lender_member);
        refuse(c, why);
        return;
    }
    if (c->origin_job[0] == '\0') {
        finish(c, GF_WQ_ERROR, 0);
        return;
    }
    c->stage = 0;
    create_step(c);
}

/* --- delete-copy, confirm-gone ----------------------------------------- */

static void gone_answer(void *data, const struct gf_kube_result *res)
{
    struct wctx *c = data;
    if (res->err == GF_ENOTFOUND ||
        (res->err == 0 && c->step.write == GF_LM_DELETE_COPY))
        c->wrote = true;
    if (res->err == GF_ENOTFOUND) {
        gf__lease_mem(c->h, c->lease)->confirmed_gone = true;
        finish(c, GF_WQ_REQUEUE_AFTER, 1);
        return;
    }
    if (res->err != 0 && c->step.write == GF_LM_DELETE_COPY) {
        log_fail(c, res);
        finish(c, GF_WQ_ERROR, 0);
        return;
    }
    /* Still there (deleting, or a cache behind): the watch wakes us. */
    finish(c, GF_WQ_REQUEUE_AFTER, 2000);
}

static void delete_now(struct wctx *c)
{
    struct gf_kube_client *cl = member_client(c, c->l.lender_member);
    struct gf_kube_resource r = resource("jobs.batch");
    struct gf_kube_delete_opts o = {.propagation = "Foreground",
                                    .precondition_uid =
                                        c->copy_uid[0] ? c->copy_uid : NULL};
    if (cl == NULL || gf_kube_delete(cl, &r, c->lender_ns, c->copy, &o,
                                     gone_answer, c, NULL) != 0)
        finish(c, GF_WQ_ERROR, 0);
}

/* A condition of the copy Job's status that is True, or NULL. */
static const cJSON *job_condition(const cJSON *job, const char *type)
{
    const cJSON *cs = GF_JSON_AT(job, "status", "conditions"), *x;
    cJSON_ArrayForEach(x, cs)
    {
        const char *t = gf_json_str(x, "type");
        const char *st = gf_json_str(x, "status");
        if (t != NULL && st != NULL && strcmp(t, type) == 0 &&
            strcmp(st, "True") == 0)
            return x;
    }
    return NULL;
}

/*
 * The copy as its API server has it, read before it is deleted. After a
 * partition the hub's cache can still show a copy running that finished
 * meanwhile (a watch resumed from its resourceVersion has not replayed
 * the change yet): deleting it then would lose its outcome, and the job
 * would run again (the blind window's heal rule needs the outcome). So
 * the outcome comes from the server: a finished copy the hub had not
 * seen finish is not deleted, its outcome is kept for the machine, which
 * decides again with it.
 */
static void copy_read(void *data, const struct gf_kube_result *res)
{
    struct wctx *c = data;
    if (res->err == GF_ENOTFOUND) {
        gone_answer(c, res);
        return;
    }
    if (write_failed(c, res))
        return;
    struct gf__lease_mem *mem = gf__lease_mem(c->h, c->lease);
    bool ok = job_condition(res->json, "Complete") != NULL;
    bool failed = job_condition(res->json, "Failed") != NULL;
    if ((ok || failed) && mem->last_outcome == GF_LM_RUNNING) {
        mem->last_outcome = ok ? GF_LM_SUCCEEDED : GF_LM_FAILED;
        /* The TTL counts on the wall clock, from when it was seen. */
        mem->finished_ms = gf_clock_wall_ms(&c->h->clk);
        struct gf_log_ctx lc = {.comp = "lease", .key = c->lease};
        GF_LOG(&lc, GF_LOG_INFO, "copy found finished before its delete",
               "copy=%s/%s outcome=%s", c->lender_ns, c->copy,
               ok ? "Succeeded" : "Failed");
        finish(c, GF_WQ_REQUEUE_AFTER, 1);
        return;
    }
    if (c->copy_uid[0] == '\0') {
        const char *uid = gf_json_str(res->json, "metadata.uid");
        if (uid != NULL)
            snprintf(c->copy_uid, sizeof(c->copy_uid), "%s", uid);
    }
    delete_now(c);
}

static void delete_copy(struct gf_hub *h, struct wctx *c)
{
    struct gf_kube_client *cl = member_client(c, c->l.lender_member);
    struct gf_kube_resource r = resource("jobs.batch");
    (void)h;
    if (cl == NULL ||
        gf_kube_get(cl, &r, c->lender_ns, c->copy, copy_read, c, NULL) != 0)
        finish(c, GF_WQ_ERROR, 0);
}

static void confirm_gone(struct wctx *c)
{
    struct gf_kube_client *cl = member_client(c, c->l.lender_member);
    struct gf_kube_resource r = resource("jobs.batch");
    if (cl == NULL ||
        gf_kube_get(cl, &r, c->lender_ns, c->copy, gone_answer, c, NULL) != 0)
        finish(c, GF_WQ_ERROR, 0);
}

/* --- reactivate-origin -------------------------------------------------- */

static void free_confirmed(struct wctx *c)
{
    c->wrote = true;
    gf__lease_mem(c->h, c->lease)->confirmed_free = true;
    finish(c, GF_WQ_REQUEUE_AFTER, 1);
}

static void reactivate_job_done(void *data, const struct gf_kube_result *res)
{
    (void)res;
    struct wctx *c = data;
    emit_event(c);
    free_confirmed(c);
}

static void reactivate_checked(void *data, const struct gf_kube_result *res)
{
    struct wctx *c = data;
    const char *ann =
        res->err == 0 ? gf_json_annotation(res->json, GF_ANN_LEASE) : NULL;
    if (res->err == GF_ENOTFOUND ||
        (res->err == 0 && (ann == NULL || strcmp(ann, c->lease) != 0))) {
        free_confirmed(c);
        return;
    }
    log_fail(c, res);
    finish(c, GF_WQ_ERROR, 0);
}

static void reactivated(void *data, const struct gf_kube_result *res)
{
    struct wctx *c = data;
    struct gf_kube_client *cl = member_client(c, c->l.origin_member);
    if (res->err == GF_ENOTFOUND) {
        free_confirmed(c);
        return;
    }
    if (res->err == GF_EINVALID && cl != NULL) {
        /* The test op failed, or the patch was refused for another
         * reason: a kube-apiserver words both alike, so look. */
        struct gf_kube_resource r = resource("workloads.kueue.x-k8s.io");
        if (gf_kube_get(cl, &r, c->l.origin_namespace, c->l.origin_name,
                        reactivate_checked, c, NULL) == 0)
            return;
    }
    if (write_failed(c, res))
        return;
    /* Take the placement off the Job too (people read it there). */
    const char *body =
        "{\"metadata\":{\"annotations\":{\"" GF_ANN_PLACEMENT "\":null}}}";
    struct gf_kube_resource r = resource("jobs.batch");
    struct gf_kube_patch_opts po = {.type = GF_PATCH_MERGE};
    if (cl == NULL || c->origin_job[0] == '\0' ||
        gf_kube_patch(cl, &r, c->l.origin_namespace, c->origin_job, &po, body,
                      strlen(body), reactivate_job_done, c, NULL) != 0) {
        emit_event(c);
        free_confirmed(c);
    }
}

static void reactivate(struct wctx *c)
{
    patch_or_error(c, member_client(c, c->l.origin_member),
                   "workloads.kueue.x-k8s.io", c->l.origin_namespace,
                   c->l.origin_name, GF_PATCH_JSON,
                   gf_copy_reactivate_patch(c->lease), reactivated);
}

/* --- mark-outcome ------------------------------------------------------- */

/* The origin's watch wakes the lease its gpufed.io/lease annotation
 * names; after a re-dispatch (the blind window) that is a later epoch's,
 * so the lease that marked comes back by itself to take its next step. */
static void outcome_marked(void *data, const struct gf_kube_result *res)
{
    struct wctx *c = data;
    if (write_failed(c, res))
        return;
    c->wrote = true;
    emit_event(c);
    finish(c, GF_WQ_REQUEUE_AFTER, 500);
}

static void mark_outcome(struct wctx *c, bool succeeded)
{
    /* An origin whose Job is unknown has nothing to mark: as unreachable. */
    struct gf_kube_client *cl =
        c->origin_job[0] == '\0' ? NULL : member_client(c, c->l.origin_member);
    patch_or_error(c, cl, "jobs.batch", c->l.origin_namespace, c->origin_job,
                   GF_PATCH_MERGE, gf_copy_outcome_patch(succeeded),
                   outcome_marked);
}

/* --- mark-reclaim, deactivate-copy -------------------------------------- */

/* The reclaim told to whoever watches the copy in the lender: an Event
 * on the copy Job (best effort). */
static void copy_event(struct wctx *c, const char *reason, bool warning)
{
    struct gf__member *m = gf__hub_member(c->h, c->l.lender_member);
    if (m == NULL)
        return;
    char dl[GF_OBS_TIME_MAX], msg[512];
    gf_obs_time_ms(c->deadline_ms, dl);
    snprintf(msg, sizeof(msg),
             "Member %s needs its quota back (ClusterQueue %s): this job is "
             "stopped at %s; checkpoint now. It then runs again in member %s "
             "or elsewhere; lease %s",
             c->l.lender_member, c->l.lender_cq, dl, c->l.origin_member,
             c->lease);
    const struct gf__event e = {
        .ns = c->lender_ns,
        .api_version = "batch/v1",
        .kind = "Job",
        .name = c->copy,
        .uid = c->copy_uid,
        .reason = reason,
        .message = msg,
        .component = "gpufed",
        .warning = warning,
    };
    gf__event_post(c->h, m->client, &e);
}

static void mark_wl_done(void *data, const struct gf_kube_result *res)
{
    /* The Workload's copy of the hint is for tools that look there; the
     * Job's is the one the machine reads. */
    struct wctx *c = data;
    if (res->err != 0)
        log_fail(c, res);
    finish(c, GF_WQ_REQUEUE_AFTER, 1);
}

static void mark_job_done(void *data, const struct gf_kube_result *res)
{
    struct wctx *c = data;
    if (write_failed(c, res))
        return;
    c->wrote = true;
    struct gf__member *m = gf__hub_member(c->h, c->l.lender_member);
    gf__member_write_through(m, GF__M_JOB, res->json);
    char dl[GF_OBS_TIME_MAX];
    gf_obs_time_ms(c->deadline_ms, dl);
    char *body = gf_copy_reclaim_mark_patch(dl);
    struct gf_kube_resource r = resource("workloads.kueue.x-k8s.io");
    struct gf_kube_patch_opts po = {.type = GF_PATCH_MERGE};
    int rc = m == NULL || m->client == NULL || c->copy_wl[0] == '\0'
                 ? -ENOENT
                 : gf_kube_patch(m->client, &r, c->lender_ns, c->copy_wl, &po,
                                 body, strlen(body), mark_wl_done, c, NULL);
    cJSON_free(body);
    if (rc != 0)
        finish(c, GF_WQ_REQUEUE_AFTER, 1);
}

/* The checkpoint hint: gpufed.io/reclaim-deadline on the copy Job (and
 * then its Workload), where the job's own code can read it through the
 * downward API or the API server. */
static void mark_reclaim(struct wctx *c)
{
    struct gf_kube_client *cl = member_client(c, c->l.lender_member);
    /* The Event goes out before the mark: once the mark is there the
     * machine does not mark again, so an Event sent after it would be
     * lost with a hub that died in between (the mark is what lasts; an
     * Event repeated by a retried mark is harmless). */
    copy_event(c, "Reclaiming", true);
    char dl[GF_OBS_TIME_MAX];
    gf_obs_time_ms(c->deadline_ms, dl);
    patch_or_error(c, cl, "jobs.batch", c->lender_ns, c->copy, GF_PATCH_MERGE,
                   gf_copy_reclaim_mark_patch(dl), mark_job_done);
}

static void deactivated_done(void *data, const struct gf_kube_result *res)
{
    struct wctx *c = data;
    /* 409: the Workload changed since we looked (finished, or Kueue
     * evicted it): the machine looks again. */
    if (write_failed(c, res))
        return;
    c->wrote = true;
    gf__member_write_through(gf__hub_member(c->h, c->l.lender_member), GF__M_WL,
                             res->json);
    struct gf_log_ctx lc = {.comp = "lease", .key = c->lease};
    GF_LOG(&lc, GF_LOG_INFO, "copy stopped for a reclaim",
           "lender=%s copy=%s/%s workload=%s", c->l.lender_member, c->lender_ns,
           c->copy, c->copy_wl);
    finish(c, GF_WQ_REQUEUE_AFTER, 1);
}

/* The deadline has passed: the copy's Workload is deactivated (the
 * lender's Kueue evicts it and its pods stop), conditional on the
 * version seen. */
static void deactivate_copy(struct wctx *c)
{
    struct gf_kube_client *cl = member_client(c, c->l.lender_member);
    if (cl == NULL || c->copy_wl[0] == '\0' || c->copy_wl_rv[0] == '\0') {
        /* Its Workload is not in the cache yet: the watch brings it. */
        finish(c, GF_WQ_REQUEUE_AFTER, 1000);
        return;
    }
    char at[GF_OBS_TIME_MAX];
    gf_obs_time_ms(gf_clock_wall_ms(&c->h->clk), at);
    char *body = gf_copy_reclaim_stop_patch(c->copy_wl_rv, at);
    struct gf_kube_resource r = resource("workloads.kueue.x-k8s.io");
    struct gf_kube_patch_opts po = {.type = GF_PATCH_MERGE};
    int rc = gf_kube_patch(cl, &r, c->lender_ns, c->copy_wl, &po, body,
                           strlen(body), deactivated_done, c, NULL);
    cJSON_free(body);
    if (rc != 0)
        finish(c, GF_WQ_ERROR, 0);
}

/* --- the reconcile ------------------------------------------------------ */

static const char *lease_key(const struct gf_hub *h, const char *name,
                             char *buf)
{
    snprintf(buf, 320, "%s/%s", h->ns, name);
    return buf;
}

void gf__lease_reconcile(struct gf_hub *h, const char *key, const char *name)
{
    char keybuf[320];
    const struct gf_store_entry *e =
        h->leases != NULL ? gf_store_get(h->leases, lease_key(h, name, keybuf))
                          : NULL;
    if (e == NULL) {
        gf_wq_done(h->wq, key, GF_WQ_OK, 0);
        return;
    }
    const struct gf__lease_proj *lp = e->proj;
    struct gf__lease_mem *mem = gf__lease_mem(h, name);
    if (mem->stale_rv[0] != '\0' && strcmp(mem->stale_rv, e->rv) == 0) {
        gf_wq_done(h->wq, key, GF_WQ_OK, 0); /* the watch brings ours */
        return;
    }
    mem->stale_rv[0] = '\0';
    if (mem->phase_seen != lp->l.phase) {
        /* Confirmations hold for one phase. */
        mem->phase_seen = lp->l.phase;
        mem->confirmed_gone = mem->confirmed_free = false;
    }
    if (lp->l.mode == GF_LEASE_LOAN) {
        gf__loan_reconcile(h, key, lp, e->rv);
        return;
    }
    struct wctx *c = gf_calloc(1, sizeof(*c));
    c->h = h;
    snprintf(c->key, sizeof(c->key), "%s", key);
    snprintf(c->lease, sizeof(c->lease), "%s", name);
    snprintf(c->lease_rv, sizeof(c->lease_rv), "%s", e->rv);
    gf_lease_copy(&c->l, &lp->l);
    snprintf(c->lender_ns, sizeof(c->lender_ns), "%s",
             gf__copy_namespace(h, c->l.group, c->l.lender_member,
                                c->l.origin_namespace));
    copy_name(&c->l, c->copy);
    /* One overflow queue per lending ClusterQueue; its LocalQueue's name
     * is a label value on copies, so 63 characters at most. */
    snprintf(c->cq, sizeof(c->cq), "gpufed-%.56s", c->l.lender_cq);
    memcpy(c->lq, c->cq, sizeof(c->lq));

    /* Reclaiming: the status's deadline (it survives a restart), or the
     * command's until the status shows it. */
    if (lp->l.phase == GF_LEASE_RECLAIMING && lp->l.reclaim_deadline_ms != 0)
        c->deadline_ms = lp->l.reclaim_deadline_ms;
    else if (mem->cmd == GF_LM_CMD_RECLAIM ||
             lp->l.phase == GF_LEASE_RECLAIMING)
        c->deadline_ms = mem->reclaim_deadline_ms;
    struct gf_lm_view v = {
        .phase = lp->l.phase,
        .reason = lp->reason,
        .cmd = mem->cmd,
        .now_ms = gf_clock_wall_ms(&h->clk),
        .copy_ttl_ms = (int64_t)h->copy_ttl_ms,
        .reclaim_deadline_ms = c->deadline_ms,
    };
    view_origin(h, &c->l, mem, &v.origin, c);
    view_copy(h, &c->l, mem, &v.copy, c);
    c->step = gf_lm_next(&v);
    struct gf_log_ctx lc = {.comp = "lease", .key = name};
    GF_LOG(&lc, GF_LOG_DEBUG, "step", "phase=%s write=%s rule=%s",
           gf_lease_phase_name(v.phase), gf_lm_write_name(c->step.write),
           c->step.rule);
    h->inflight_writes++;
    if (c->step.write != GF_LM_WAIT)
        h->n_writes++;
    switch (c->step.write) {
    case GF_LM_WAIT: {
        /* Level-triggered: the watches (and a member syncing) wake us;
         * the requeue is a resync for what only time changes (a copy's
         * TTL) and for anything a watch could not tell us. A reclaim
         * deadline is woken for on the millisecond (1 past it: the
         * machine compares with <). */
        uint64_t after = 10000;
        if (c->step.wake_ms > v.now_ms && c->step.wake_ms - v.now_ms < 10000)
            after = (uint64_t)(c->step.wake_ms - v.now_ms) + 1;
        finish(c, GF_WQ_REQUEUE_AFTER, after);
        break;
    }
    case GF_LM_SET_PHASE:
        set_phase(c);
        break;
    case GF_LM_HOLD_ORIGIN:
        hold(c);
        break;
    case GF_LM_CREATE_COPY:
        create_copy(c);
        break;
    case GF_LM_DELETE_COPY:
        delete_copy(h, c);
        break;
    case GF_LM_CONFIRM_GONE:
        confirm_gone(c);
        break;
    case GF_LM_REACTIVATE_ORIGIN:
        reactivate(c);
        break;
    case GF_LM_MARK_OUTCOME:
        mark_outcome(c, v.copy.outcome == GF_LM_SUCCEEDED);
        break;
    case GF_LM_MARK_RECLAIM:
        mark_reclaim(c);
        break;
    case GF_LM_DEACTIVATE_COPY:
        deactivate_copy(c);
        break;
    }
}
