/*
 * hub_http: the hub's /healthz, /readyz and /metrics (controller/httpd.h,
 * controller/metrics.h). The figures are read from the hub when they are
 * scraped, so nothing on the hot paths pays for them.
 *
 *   /healthz  200 while the loop turns (the process is alive and serving)
 *   /readyz   200 once every member, the hub's QuotaLeases and the drain
 *             ConfigMap have synced (the gate of the decision pass); 503
 *             with what is missing. Drained members are listed.
 *             Leader or standby alike: a synced standby is ready to take
 *             over, which is what a readiness probe should say. The body
 *             names the leader and whether this replica is it.
 *   /metrics  Prometheus text: members synced and drained, leases by
 *             phase, pending Workloads, quota per member and ClusterQueue,
 *             the workqueue, and totals of passes, leases started, writes
 *             and failures
 */
#include "controller/internal.h"

#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/err.h"
#include "controller/httpd.h"
#include "controller/metrics.h"

struct gf__hub_http {
    struct gf_httpd *httpd;
    struct gf_metrics *m;
    struct gf_metric *synced, *leases, *pending, *quota, *wq_depth,
        *wq_inflight;
    struct gf_metric *passes, *starts, *writes, *write_errors;
    uint64_t last_passes, last_starts, last_writes, last_write_errors;
    struct gf_metric *leader, *leader_holder, *leader_transitions;
    uint64_t last_transitions;
    struct gf_metric *hb_age, *suspect, *renewals, *twice, *drained;
    struct gf_metric *hb_term, *fence_term, *recovering;
    struct gf_metric *watch_lists, *watch_relists;
    uint64_t last_twice;
    struct gf_metric *reclaims;
    void (*cb)(void *);
    void *cb_data;
};

static int healthz(void *data, struct gf_buf *body, const char **ct)
{
    (void)data;
    *ct = "text/plain; charset=utf-8";
    gf_buf_puts(body, "ok\n");
    return 200;
}

static int readyz(void *data, struct gf_buf *body, const char **ct)
{
    struct gf_hub *h = data;
    *ct = "text/plain; charset=utf-8";
    bool ready = gf__hub_synced(h);
    if (h->leases == NULL || !gf_store_has_synced(h->leases))
        gf_buf_puts(body, "quotaleases: not synced\n");
    if (h->drain_cm == NULL || !gf_store_has_synced(h->drain_cm))
        gf_buf_puts(body, "configmap " GF_DRAIN_CONFIGMAP ": not synced\n");
    /* Ready once every member has synced once (the pass's gate): a
     * member partitioned later is reported, not a reason to take the hub
     * out of its Service; its leases are Suspect and the hub goes on. */
    for (size_t i = 0; i < h->n_members; i++) {
        const struct gf__member *m = h->members[i];
        const struct gf__hb *hb = h->hb != NULL ? &h->hb[i] : NULL;
        if (hb != NULL && hb->ever_synced && hb->suspect)
            gf_buf_printf(body, "member %s: suspect: %s\n", m->name, hb->why);
        else if ((hb == NULL || !hb->ever_synced) && !gf__member_synced(m)) {
            gf_buf_printf(body, "member %s: not synced\n", m->name);
            ready = false;
        }
    }
    /* Drained members are not a reason to be unready, but whoever looks
     * at a hub should see them (an admin's drain is easy to forget). */
    const struct gf_drain_set *ds = gf__hub_drained(h);
    for (size_t i = 0; ds != NULL && i < ds->n; i++) {
        char since[32] = "";
        if (ds->e[i].since_ms > 0)
            gf_time_rfc3339(ds->e[i].since_ms, since);
        gf_buf_printf(body, "member %s: drained%s%s%s\n", ds->e[i].member,
                      since[0] ? " since " : "", since,
                      gf__hub_member(h, ds->e[i].member) != NULL
                          ? ""
                          : " (not a member of the policy: ignored)");
    }
    if (ready)
        gf_buf_puts(body, "ok\n");
    gf_buf_printf(body, "leader=%s\nleading=%s\n",
                  h->leader != NULL ? gf_leader_holder(h->leader) : "",
                  h->leading ? "true" : "false");
    return ready ? 200 : 503;
}

static void add_delta(struct gf_metric *c, uint64_t now, uint64_t *last)
{
    if (now > *last)
        gf_metric_add(c, (double)(now - *last), NULL);
    *last = now;
}

static void quota_of(struct gf__hub_http *x, const struct gf_ledger_cq *cq)
{
    for (size_t i = 0; i < cq->n_cells; i++) {
        const struct gf_ledger_cell *c = cq->cells[i];
        if (!c->in_spec)
            continue;
        struct {
            const char *kind;
            int64_t v;
        } rows[] = {
            {"nominal", c->nominal},
            {"used", c->used + c->reserved},
            {"lent", c->lease_out},
            {"borrowed", gf_ledger_cell_borrowed(c)},
        };
        for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
            const char *v[] = {cq->member->name, cq->name, c->flavor,
                               c->resource, rows[r].kind};
            gf_metric_set(x->quota, (double)rows[r].v, v);
        }
    }
}

static int count_phase(void *data, const struct gf_store_entry *e)
{
    size_t *n = data;
    const struct gf__lease_proj *p = e->proj;
    if ((unsigned)p->l.phase < GF_LEASE_PHASE_COUNT)
        n[p->l.phase]++;
    return 0;
}

/* Per member: heartbeat age (since the last acknowledged renewal; since
 * the start when none was), suspect, renewals by result. */
static void heartbeat_metrics(struct gf_hub *h, struct gf__hub_http *x)
{
    uint64_t now = gf_clock_now_ms(&h->clk);
    for (size_t i = 0; h->hb != NULL && i < h->n_members; i++) {
        struct gf__hb *hb = &h->hb[i];
        const char *v[] = {h->members[i]->name};
        uint64_t since = hb->ok_ms != 0 ? hb->ok_ms : hb->sent_ms;
        gf_metric_set(x->hb_age,
                      now > since ? (double)(now - since) / 1000.0 : 0, v);
        gf_metric_set(x->suspect, hb->suspect ? 1 : 0, v);
        gf_metric_set(x->hb_term, (double)hb->d_ms / 1000.0, v);
        gf_metric_set(x->fence_term, (double)gf__hb_bound_d_ms(hb) / 1000.0, v);
        gf_metric_set(x->recovering,
                      gf__hb_recovering_until_wall_ms(hb) != 0 ? 1 : 0, v);
        const char *ok[] = {h->members[i]->name, "ok"};
        const char *err[] = {h->members[i]->name, "error"};
        gf_metric_add(x->renewals, (double)(hb->n_ok - hb->last_ok), ok);
        gf_metric_add(x->renewals, (double)(hb->n_err - hb->last_err), err);
        hb->last_ok = hb->n_ok;
        hb->last_err = hb->n_err;
    }
}

/* The hub's totals, "lender\ncause" -> count, as the family's series
 * (set afresh: a counter's series is its total). */
static void reclaim_counts(const struct gf_hub *h, struct gf__hub_http *x)
{
    gf_metric_clear(x->reclaims);
    struct gf_htab_iter it;
    const char *k;
    void *v;
    gf_htab_iter_init(&it, &h->reclaims);
    while (gf_htab_next(&it, &k, NULL, &v)) {
        char lender[160];
        snprintf(lender, sizeof(lender), "%s", k);
        char *nl = strchr(lender, '\n');
        if (nl == NULL)
            continue;
        *nl = '\0';
        const char *vals[] = {lender, nl + 1};
        gf_metric_add(x->reclaims, (double)*(const uint64_t *)v, vals);
    }
}

/* gpufed_reclaim_seconds, a Prometheus histogram (the registry has
 * counters and gauges only; the exposition format lets a family follow
 * the others). */
static void reclaim_histogram(const struct gf_hub *h, struct gf_buf *body)
{
    gf_buf_puts(body,
                "# HELP gpufed_reclaim_seconds seconds from a lease turning "
                "Reclaiming to its copy's quota being free in the lender\n"
                "# TYPE gpufed_reclaim_seconds histogram\n");
    for (size_t i = 0; i < GF__RECLAIM_BUCKETS; i++)
        gf_buf_printf(body, "gpufed_reclaim_seconds_bucket{le=\"%g\"} %llu\n",
                      gf__reclaim_bounds[i],
                      (unsigned long long)h->reclaim_secs_buckets[i]);
    gf_buf_printf(body,
                  "gpufed_reclaim_seconds_bucket{le=\"+Inf\"} %llu\n"
                  "gpufed_reclaim_seconds_sum %.3f\n"
                  "gpufed_reclaim_seconds_count %llu\n",
                  (unsigned long long)h->reclaim_secs_count,
                  h->reclaim_secs_sum,
                  (unsigned long long)h->reclaim_secs_count);
}

/* The growth of a reflector counter since it was last exported. A
 * reflector made anew (the member's client rebuilt) starts again from 0. */
static uint64_t grown(uint64_t now, uint64_t *last)
{
    uint64_t d = now >= *last ? now - *last : now;
    *last = now;
    return d;
}

/*
 * Lists and relists per member and resource. A relist is a list forced
 * by 410 Gone (a compacted resourceVersion, or an API server restart that
 * lost its watch cache): an operator reads a restart of a member's API
 * server here, and the e2e fault tests assert it.
 */
static void watch_metrics(struct gf_hub *h, struct gf__hub_http *x)
{
    for (size_t i = 0; i < h->n_members; i++) {
        struct gf__member *m = h->members[i];
        for (int k = 0; k < GF__M_KINDS; k++) {
            if (m->refl[k] == NULL)
                continue;
            struct gf_reflector_health hl;
            gf_reflector_health(m->refl[k], &hl);
            const char *v[] = {m->name,
                               gf__member_kind_name((enum gf__mkind)k)};
            gf_metric_add(x->watch_lists,
                          (double)grown(hl.lists, &m->exported_lists[k]), v);
            gf_metric_add(x->watch_relists,
                          (double)grown(hl.relists, &m->exported_relists[k]),
                          v);
        }
    }
}

static int metrics(void *data, struct gf_buf *body, const char **ct)
{
    struct gf_hub *h = data;
    struct gf__hub_http *x = h->http_srv;
    *ct = GF_METRICS_CONTENT_TYPE;
    for (size_t i = 0; i < h->n_members; i++) {
        const char *v[] = {h->members[i]->name};
        gf_metric_set(x->synced, gf__member_synced(h->members[i]) ? 1 : 0, v);
    }
    heartbeat_metrics(h, x);
    for (size_t i = 0; i < h->n_members; i++) {
        const char *v[] = {h->members[i]->name};
        const struct gf_ledger_member *lm =
            gf_ledger_member(h->ledger, h->members[i]->name);
        gf_metric_set(x->drained, lm != NULL && lm->drained ? 1 : 0, v);
    }
    watch_metrics(h, x);
    size_t phases[GF_LEASE_PHASE_COUNT] = {0};
    if (h->leases != NULL)
        gf_store_foreach(h->leases, count_phase, phases);
    for (int p = 0; p < GF_LEASE_PHASE_COUNT; p++) {
        const char *v[] = {gf_lease_phase_name((enum gf_lease_phase)p)};
        gf_metric_set(x->leases, (double)phases[p], v);
    }
    gf_metric_set(x->pending, (double)gf_ledger_n_pending(h->ledger), NULL);
    gf_metric_clear(x->quota);
    size_t n = gf_ledger_cqs(h->ledger, NULL, 0);
    const struct gf_ledger_cq **cqs = gf_calloc(n ? n : 1, sizeof(*cqs));
    n = gf_ledger_cqs(h->ledger, cqs, n);
    for (size_t i = 0; i < n; i++)
        quota_of(x, cqs[i]);
    gf_free(cqs);
    struct gf_wq_stats st;
    gf_wq_stats(h->wq, &st);
    gf_metric_set(x->wq_depth, (double)st.depth, NULL);
    gf_metric_set(x->wq_inflight, (double)st.inflight, NULL);
    add_delta(x->passes, h->n_passes, &x->last_passes);
    add_delta(x->starts, h->n_starts, &x->last_starts);
    add_delta(x->writes, h->n_writes, &x->last_writes);
    add_delta(x->write_errors, h->n_write_errors, &x->last_write_errors);
    if (h->leader != NULL) {
        const char *self[] = {gf_leader_id(h->leader)};
        gf_metric_set(x->leader, h->leading ? 1 : 0, self);
        gf_metric_clear(x->leader_holder);
        const char *holder[] = {gf_leader_holder(h->leader)};
        if (holder[0][0] != '\0')
            gf_metric_set(x->leader_holder, 1, holder);
        add_delta(x->leader_transitions, gf_leader_transitions(h->leader),
                  &x->last_transitions);
    }
    add_delta(x->twice, h->n_double_completions, &x->last_twice);
    reclaim_counts(h, x);
    if (gf_metrics_render(x->m, body) != 0)
        return 500;
    reclaim_histogram(h, body);
    return 200;
}

static void registry(struct gf__hub_http *x)
{
    static const char *const lender_cause[] = {"lender", "cause", NULL};
    static const char *const member[] = {"member", NULL};
    static const char *const phase[] = {"phase", NULL};
    static const char *const quota[] = {"member",   "cluster_queue", "flavor",
                                        "resource", "kind",          NULL};
    static const char *const none[] = {NULL};
    static const char *const id[] = {"id", NULL};
    static const char *const holder[] = {"holder", NULL};
    static const char *const member_result[] = {"member", "result", NULL};
    static const char *const member_res[] = {"member", "resource", NULL};
    x->m = gf_metrics_new();
    x->hb_age = gf_metrics_gauge(x->m, "gpufed_member_heartbeat_age_seconds",
                                 "seconds since the member's heartbeat Lease "
                                 "was last renewed (acknowledged)",
                                 member);
    x->suspect = gf_metrics_gauge(x->m, "gpufed_member_suspect",
                                  "1 while the member is suspect: a renewal "
                                  "failed or its watches stopped",
                                  member);
    x->hb_term = gf_metrics_gauge(
        x->m, "gpufed_member_heartbeat_term_seconds",
        "the term D the member's heartbeat Lease carries; while a lowered "
        "leaseDuration is stepped down, longer than the policy's",
        member);
    x->fence_term = gf_metrics_gauge(
        x->m, "gpufed_member_fence_term_seconds",
        "the term D the hub's fencing bound counts for the member: the "
        "longest its agent may still believe",
        member);
    x->recovering = gf_metrics_gauge(
        x->m, "gpufed_member_recovering",
        "1 while the member has just healed and its agent may still be "
        "fenced: it lends nothing new",
        member);
    x->drained = gf_metrics_gauge(x->m, "gpufed_member_drained",
                                  "1 while the member is drained (gpufedctl "
                                  "drain): it lends nothing new",
                                  member);
    x->twice = gf_metrics_counter(
        x->m, "gpufed_double_completions_total",
        "jobs that ran to their end twice: a copy finished unseen before its "
        "lender's agent fenced it, and the origin ran again meanwhile",
        none);
    x->renewals = gf_metrics_counter(x->m, "gpufed_heartbeat_renewals_total",
                                     "heartbeat Lease renewals, by result",
                                     member_result);
    x->watch_lists = gf_metrics_counter(
        x->m, "gpufed_watch_lists_total",
        "complete LISTs of a member's resource by its reflector", member_res);
    x->watch_relists = gf_metrics_counter(
        x->m, "gpufed_watch_relists_total",
        "LISTs forced by 410 Gone: the resourceVersion was compacted or the "
        "API server lost its watch cache (a restart)",
        member_res);
    x->synced = gf_metrics_gauge(x->m, "gpufed_member_synced",
                                 "1 when every watch of the member has "
                                 "listed and is watching",
                                 member);
    x->leases = gf_metrics_gauge(x->m, "gpufed_leases",
                                 "QuotaLeases in the hub, by phase", phase);
    x->pending =
        gf_metrics_gauge(x->m, "gpufed_pending_workloads",
                         "Workloads waiting for quota, all members", none);
    x->quota = gf_metrics_gauge(
        x->m, "gpufed_quota",
        "Quota per member, ClusterQueue, flavor and resource: nominal, used "
        "(admitted or reserved), lent and borrowed",
        quota);
    x->wq_depth = gf_metrics_gauge(x->m, "gpufed_workqueue_depth",
                                   "keys ready for a worker", none);
    x->wq_inflight = gf_metrics_gauge(x->m, "gpufed_workqueue_inflight",
                                      "keys being reconciled", none);
    x->passes = gf_metrics_counter(x->m, "gpufed_decision_passes_total",
                                   "decision passes run", none);
    x->starts = gf_metrics_counter(x->m, "gpufed_leases_started_total",
                                   "QuotaLeases recorded", none);
    x->writes = gf_metrics_counter(x->m, "gpufed_writes_total",
                                   "writes to API servers", none);
    x->write_errors =
        gf_metrics_counter(x->m, "gpufed_write_errors_total",
                           "writes that failed and were retried", none);
    x->leader = gf_metrics_gauge(x->m, "gpufed_leader",
                                 "1 while this replica (id) leads and "
                                 "writes, 0 while it stands by",
                                 id);
    x->leader_holder =
        gf_metrics_gauge(x->m, "gpufed_leader_holder",
                         "the leader as this replica last saw the "
                         "gpufed-hub-leader Lease",
                         holder);
    x->reclaims = gf_metrics_counter(
        x->m, "gpufed_reclaims_total",
        "copies reclaimed by their lender, by cause: reclaim (gpufed's, after "
        "reclaimAfter), drain, kueue (the lender's Kueue preempted the copy)",
        lender_cause);
    x->leader_transitions = gf_metrics_counter(
        x->m, "gpufed_leader_transitions_total",
        "changes of leader this replica has seen (its own included)", none);
}

int gf__hub_http_start(struct gf_hub *h, const char *addr)
{
    struct gf__hub_http *x = gf_calloc(1, sizeof(*x));
    int rc = gf_httpd_new(h->loop, addr, &x->httpd);
    if (rc != 0) {
        GF_LOG(&h->lc, GF_LOG_ERROR, "cannot listen", "addr=%s err=%s", addr,
               gf_strerror(rc));
        gf_free(x);
        return rc;
    }
    gf_httpd_set_clock(x->httpd, &h->clk);
    registry(x);
    gf_httpd_route(x->httpd, "/healthz", healthz, h);
    gf_httpd_route(x->httpd, "/readyz", readyz, h);
    gf_httpd_route(x->httpd, "/metrics", metrics, h);
    h->http_srv = x;
    GF_LOG(&h->lc, GF_LOG_INFO, "serving", "addr=%s port=%d", addr,
           gf_httpd_port(x->httpd));
    return 0;
}

static void on_httpd_closed(void *data)
{
    struct gf__hub_http *x = data;
    void (*cb)(void *) = x->cb;
    void *d = x->cb_data;
    gf_metrics_free(x->m);
    gf_free(x);
    if (cb != NULL)
        cb(d);
}

void gf__hub_http_close(struct gf_hub *h, void (*cb)(void *), void *data)
{
    struct gf__hub_http *x = h->http_srv;
    h->http_srv = NULL;
    x->cb = cb;
    x->cb_data = data;
    gf_httpd_close(x->httpd, on_httpd_closed, x);
}
