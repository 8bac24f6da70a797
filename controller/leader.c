/*
 * leader: the elector (controller/leader.h). One loop of read, decide,
 * write, on the retry period; one timer for the renew deadline. The
 * decision is a pure function so that the rules can be tested on their
 * own with the manual clock; the engine only feeds it what it observed.
 */
#include "controller/leader.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/json.h"
#include "kubeclient/request.h"

#define DEFAULT_LEASE_MS 15000
#define RETRY_MAX_MS 2000

/* --- the decision ---------------------------------------------------- */

enum gf_leader_step gf_leader_decide(const struct gf_leader_view *v)
{
    const struct gf_leader_record *r = v->rec;
    bool mine = r != NULL && strcmp(r->holder, v->me) == 0;
    if (v->leading) {
        /* Checked first: past the deadline another replica may already
         * be allowed to take over, so even a record that still names us
         * must not be written on as leader. */
        if (v->now_ms >= v->renewed_ms + v->renew_deadline_ms)
            return GF_LEADER_LOST;
        if (r != NULL && !mine)
            return GF_LEADER_LOST;
    }
    if (r == NULL || r->holder[0] == '\0')
        return GF_LEADER_ACQUIRE;
    if (mine)
        return GF_LEADER_RENEW;
    uint64_t lease =
        r->duration_s > 0 ? (uint64_t)r->duration_s * 1000 : v->lease_ms;
    /* The holder's promise is its lease: it stops writing within its
     * renew deadline, which is shorter. Our own clock times it. */
    if (v->now_ms < v->changed_ms + lease)
        return GF_LEADER_WAIT;
    return GF_LEADER_ACQUIRE;
}

const char *gf_leader_step_name(enum gf_leader_step s)
{
    switch (s) {
    case GF_LEADER_WAIT:
        return "wait";
    case GF_LEADER_ACQUIRE:
        return "acquire";
    case GF_LEADER_RENEW:
        return "renew";
    case GF_LEADER_LOST:
        return "lost";
    }
    return "?";
}

uint64_t gf_leader_retry_ms(uint64_t lease_ms)
{
    uint64_t r = lease_ms / 7;
    return r < RETRY_MAX_MS ? (r > 0 ? r : 1) : RETRY_MAX_MS;
}

uint64_t gf_leader_renew_deadline_ms(uint64_t lease_ms)
{
    return lease_ms * 2 / 3;
}

void gf_leader_micro_time(int64_t wall_ms, char out[40])
{
    char s[32];
    gf_time_rfc3339(wall_ms, s);
    /* "YYYY-MM-DDTHH:MM:SSZ" -> the same with ".mmm000" before the Z. */
    size_t n = strlen(s);
    int64_t frac =
        wall_ms >= 0 ? wall_ms % 1000 : (1000 + wall_ms % 1000) % 1000;
    snprintf(out, 40, "%.*s.%03lld000Z", (int)(n > 0 ? n - 1 : 0), s,
             (long long)frac);
}

/* --- the engine ------------------------------------------------------ */

struct gf_leader {
    struct gf_clock *clk;
    char *id, *ns;
    uint64_t lease_ms, rd_ms, retry_ms;
    struct gf_leader_api api;
    struct gf_kube_client *client;
    struct gf_kube_call *call; /* the kube API's call in flight */
    gf_leader_api_cb kcb;      /* and the engine's callback for it */
    void (*on_change)(void *data, bool leading);
    void *data;
    struct gf_log_ctx lc;
    struct gf_timer tick, deadline, closer;
    /* What was observed last. */
    bool have_rec;
    struct gf_leader_record rec;
    char rv[64];
    uint64_t changed_ms;
    char holder_seen[128];
    bool seen_any;
    uint64_t transitions;
    /* Ourselves. */
    bool leading;
    uint64_t renewed_ms;
    bool busy; /* one call at a time */
    uint64_t sent_ms;
    bool closing;
    void (*close_cb)(void *data);
    void *close_data;
};

static void tick_cb(struct gf_timer *t);

static void schedule(struct gf_leader *l, uint64_t after_ms)
{
    if (!l->closing)
        gf_timer_start(&l->tick, after_ms, tick_cb);
}

static void finish_close(struct gf_leader *l)
{
    gf_timer_stop(&l->tick);
    gf_timer_stop(&l->deadline);
    gf_timer_stop(&l->closer);
    void (*cb)(void *) = l->close_cb;
    void *d = l->close_data;
    gf_free(l->id);
    gf_free(l->ns);
    gf_free(l);
    if (cb != NULL)
        cb(d);
}

static void lose(struct gf_leader *l, const char *why)
{
    if (!l->leading)
        return;
    l->leading = false;
    gf_timer_stop(&l->deadline);
    /* A write in flight is abandoned: if it lands, the record names us
     * and the next read renews it with a fresh precondition; if it does
     * not, another replica takes over in its own time. */
    if (l->busy)
        l->api.cancel(l->api.ctx);
    GF_LOG(&l->lc, GF_LOG_WARN, "stopped leading", "id=%s reason=%s", l->id,
           why);
    if (l->on_change != NULL)
        l->on_change(l->data, false);
    schedule(l, l->retry_ms);
}

static void deadline_cb(struct gf_timer *t)
{
    lose(t->data, "renew deadline passed");
}

/* Notes what a read or our own write showed, on our monotonic clock. */
static void observe(struct gf_leader *l, const struct gf_leader_record *r,
                    const char *rv)
{
    uint64_t now = gf_clock_now_ms(l->clk);
    bool changed;
    if (r == NULL) {
        changed = l->have_rec;
        l->have_rec = false;
        l->rv[0] = '\0';
    } else {
        changed = !l->have_rec || strcmp(l->rv, rv != NULL ? rv : "") != 0 ||
                  memcmp(&l->rec, r, sizeof(*r)) != 0;
        /* Compared whole: copies are zero-filled first. */
        memset(&l->rec, 0, sizeof(l->rec));
        snprintf(l->rec.holder, sizeof(l->rec.holder), "%s", r->holder);
        l->rec.duration_s = r->duration_s;
        l->rec.acquire_ms = r->acquire_ms;
        l->rec.renew_ms = r->renew_ms;
        l->rec.transitions = r->transitions;
        l->have_rec = true;
        snprintf(l->rv, sizeof(l->rv), "%s", rv != NULL ? rv : "");
    }
    if (changed || !l->seen_any)
        l->changed_ms = now;
    const char *holder = l->have_rec ? l->rec.holder : "";
    if (l->seen_any && strcmp(holder, l->holder_seen) != 0 &&
        holder[0] != '\0') {
        l->transitions++;
        GF_LOG(&l->lc, GF_LOG_INFO, "leader changed", "holder=%s was=%s",
               holder, l->holder_seen[0] != '\0' ? l->holder_seen : "none");
    }
    snprintf(l->holder_seen, sizeof(l->holder_seen), "%s", holder);
    l->seen_any = true;
}

/* A write acknowledged: it counts from its send time, if that is still
 * within the renew deadline. */
static void renewed(struct gf_leader *l, const struct gf_leader_record *rec)
{
    uint64_t now = gf_clock_now_ms(l->clk);
    if (now >= l->sent_ms + l->rd_ms)
        return; /* acknowledged too late to count; the next round renews */
    l->renewed_ms = l->sent_ms;
    gf_timer_start(&l->deadline, l->renewed_ms + l->rd_ms - now, deadline_cb);
    if (l->leading)
        return;
    l->leading = true;
    GF_LOG(&l->lc, GF_LOG_INFO, "became leader",
           "id=%s lease_ms=%llu transitions=%lld", l->id,
           (unsigned long long)l->lease_ms, (long long)rec->transitions);
    if (l->on_change != NULL)
        l->on_change(l->data, true);
}

static void put_done(void *data, int err, const struct gf_leader_record *rec,
                     const char *rv)
{
    struct gf_leader *l = data;
    l->busy = false;
    if (l->closing) {
        finish_close(l);
        return;
    }
    if (err == GF_ECANCELED)
        return; /* lose() has rescheduled */
    if (err != 0) {
        bool raced = err == GF_ECONFLICT || err == GF_EEXIST;
        GF_LOG(&l->lc, raced ? GF_LOG_INFO : GF_LOG_WARN,
               "leader lease not written", "id=%s err=%s", l->id,
               gf_strerror(err));
        /* A race: read again at once, the winner's record decides. */
        schedule(l, raced ? 0 : l->retry_ms);
        return;
    }
    observe(l, rec, rv);
    renewed(l, rec);
    schedule(l, l->retry_ms);
}

static void write_record(struct gf_leader *l, enum gf_leader_step step)
{
    struct gf_leader_record r = {0};
    int64_t wall = gf_clock_wall_ms(l->clk);
    snprintf(r.holder, sizeof(r.holder), "%s", l->id);
    r.duration_s = (int64_t)((l->lease_ms + 999) / 1000);
    r.renew_ms = wall;
    if (step == GF_LEADER_RENEW) {
        r.acquire_ms = l->rec.acquire_ms;
        r.transitions = l->rec.transitions;
    } else {
        r.acquire_ms = wall;
        r.transitions = l->have_rec ? l->rec.transitions + 1 : 0;
    }
    l->sent_ms = gf_clock_now_ms(l->clk);
    int rc = l->api.put(l->api.ctx, &r, l->have_rec ? l->rv : NULL, l->retry_ms,
                        put_done, l);
    if (rc == 0)
        l->busy = true;
    else
        schedule(l, l->retry_ms);
}

static void get_done(void *data, int err, const struct gf_leader_record *rec,
                     const char *rv)
{
    struct gf_leader *l = data;
    l->busy = false;
    if (l->closing) {
        finish_close(l);
        return;
    }
    if (err == GF_ECANCELED)
        return;
    if (err != 0 && err != GF_ENOTFOUND) {
        /* The deadline timer ends leadership if this goes on. */
        GF_LOG(&l->lc, GF_LOG_WARN, "leader lease not read", "id=%s err=%s",
               l->id, gf_strerror(err));
        schedule(l, l->retry_ms);
        return;
    }
    observe(l, err == 0 ? rec : NULL, rv);
    uint64_t now = gf_clock_now_ms(l->clk);
    struct gf_leader_view v = {.me = l->id,
                               .rec = l->have_rec ? &l->rec : NULL,
                               .now_ms = now,
                               .changed_ms = l->changed_ms,
                               .lease_ms = l->lease_ms,
                               .leading = l->leading,
                               .renewed_ms = l->renewed_ms,
                               .renew_deadline_ms = l->rd_ms};
    enum gf_leader_step s = gf_leader_decide(&v);
    if (s == GF_LEADER_LOST) {
        lose(l, strcmp(l->rec.holder, l->id) != 0 && l->have_rec
                    ? "another holder"
                    : "renew deadline passed");
        return;
    }
    if (s == GF_LEADER_WAIT) {
        uint64_t lease = l->rec.duration_s > 0
                             ? (uint64_t)l->rec.duration_s * 1000
                             : l->lease_ms;
        uint64_t left = l->changed_ms + lease - now;
        /* Look again exactly when a takeover becomes possible, if that
         * comes before the next round. */
        schedule(l, left < l->retry_ms ? left : l->retry_ms);
        return;
    }
    write_record(l, s);
}

static void tick_cb(struct gf_timer *t)
{
    struct gf_leader *l = t->data;
    if (l->busy) {
        schedule(l, l->retry_ms);
        return;
    }
    if (l->api.get(l->api.ctx, l->retry_ms, get_done, l) == 0)
        l->busy = true;
    else
        schedule(l, l->retry_ms);
}

static void closer_cb(struct gf_timer *t)
{
    finish_close(t->data);
}

/* --- the Lease over HTTP --------------------------------------------- */

static int parse_record(const cJSON *obj, struct gf_leader_record *r,
                        const char **rv)
{
    memset(r, 0, sizeof(*r));
    const char *h = gf_json_as_str(GF_JSON_AT(obj, "spec", "holderIdentity"));
    snprintf(r->holder, sizeof(r->holder), "%s", h != NULL ? h : "");
    gf_json_as_int(GF_JSON_AT(obj, "spec", "leaseDurationSeconds"),
                   &r->duration_s);
    gf_json_as_int(GF_JSON_AT(obj, "spec", "leaseTransitions"),
                   &r->transitions);
    const char *t = gf_json_as_str(GF_JSON_AT(obj, "spec", "acquireTime"));
    if (t != NULL)
        gf_time_parse_rfc3339(t, &r->acquire_ms);
    t = gf_json_as_str(GF_JSON_AT(obj, "spec", "renewTime"));
    if (t != NULL)
        gf_time_parse_rfc3339(t, &r->renew_ms);
    *rv = gf_json_as_str(GF_JSON_AT(obj, "metadata", "resourceVersion"));
    return *rv != NULL ? 0 : GF_EPARSE;
}

/* The engine makes one call at a time, so the callback due is kept in the
 * elector itself. */
static void kube_done(void *data, const struct gf_kube_result *res)
{
    struct gf_leader *l = data;
    gf_leader_api_cb cb = l->kcb;
    l->call = NULL;
    l->kcb = NULL;
    struct gf_leader_record r;
    const char *rv = NULL;
    int err = res->err;
    if (err == 0 &&
        (res->json == NULL || parse_record(res->json, &r, &rv) != 0))
        err = GF_EPARSE;
    cb(l, err, err == 0 ? &r : NULL, err == 0 ? rv : NULL);
}

static int kube_get(void *ctx, uint64_t timeout_ms, gf_leader_api_cb cb,
                    void *data)
{
    struct gf_leader *l = ctx;
    (void)data; /* the elector itself */
    struct gf_kube_resource res;
    gf_kube_resource_parse("leases.coordination.k8s.io", &res);
    struct gf_kube_op op = {.method = "GET",
                            .res = &res,
                            .ns = l->ns,
                            .name = GF_LEADER_LEASE,
                            .timeout_ms = timeout_ms};
    l->kcb = cb;
    int rc = gf_kube_call(l->client, &op, kube_done, l, &l->call);
    if (rc != 0)
        l->kcb = NULL;
    return rc;
}

static cJSON *spec_json(const struct gf_leader_record *r)
{
    char at[40], rt[40];
    gf_leader_micro_time(r->acquire_ms, at);
    gf_leader_micro_time(r->renew_ms, rt);
    cJSON *spec = cJSON_CreateObject();
    cJSON_AddStringToObject(spec, "holderIdentity", r->holder);
    cJSON_AddNumberToObject(spec, "leaseDurationSeconds",
                            (double)r->duration_s);
    cJSON_AddStringToObject(spec, "acquireTime", at);
    cJSON_AddStringToObject(spec, "renewTime", rt);
    cJSON_AddNumberToObject(spec, "leaseTransitions", (double)r->transitions);
    return spec;
}

static int kube_put(void *ctx, const struct gf_leader_record *r, const char *rv,
                    uint64_t timeout_ms, gf_leader_api_cb cb, void *data)
{
    struct gf_leader *l = ctx;
    (void)data;
    struct gf_kube_resource res;
    gf_kube_resource_parse("leases.coordination.k8s.io", &res);
    cJSON *o = cJSON_CreateObject();
    if (rv == NULL) {
        cJSON_AddStringToObject(o, "apiVersion", "coordination.k8s.io/v1");
        cJSON_AddStringToObject(o, "kind", "Lease");
        cJSON *md = cJSON_AddObjectToObject(o, "metadata");
        cJSON_AddStringToObject(md, "name", GF_LEADER_LEASE);
        cJSON_AddStringToObject(md, "namespace", l->ns);
    }
    cJSON_AddItemToObject(o, "spec", spec_json(r));
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    struct gf_buf body = GF_BUF_INIT(16 << 10);
    int rc = 0;
    struct gf_kube_op op = {.res = &res,
                            .ns = l->ns,
                            .content_type = "application/json",
                            .timeout_ms = timeout_ms};
    if (rv == NULL) {
        op.method = "POST";
        gf_buf_puts(&body, text);
    } else {
        /* A merge patch of the fields we own, carrying the resourceVersion
         * it was computed from: the server answers 409 when another
         * replica wrote in between (STYLE: never a re-serialised PUT). */
        op.method = "PATCH";
        op.name = GF_LEADER_LEASE;
        op.content_type = "application/merge-patch+json";
        rc = gf_kube_patch_body(&body, GF_PATCH_MERGE, text, strlen(text), rv);
    }
    cJSON_free(text);
    op.body = gf_buf_cstr(&body);
    op.body_len = strlen(op.body);
    l->kcb = cb;
    if (rc == 0)
        rc = gf_kube_call(l->client, &op, kube_done, l, &l->call);
    if (rc != 0)
        l->kcb = NULL;
    gf_buf_free(&body);
    return rc;
}

static void kube_cancel(void *ctx)
{
    struct gf_leader *l = ctx;
    gf_kube_call_cancel(l->call);
}

/* --- lifecycle ------------------------------------------------------- */

int gf_leader_start(const struct gf_leader_opts *o, struct gf_leader **out)
{
    *out = NULL;
    if (o->id == NULL || o->id[0] == '\0' || strlen(o->id) >= 128 ||
        (o->api == NULL && o->client == NULL))
        return -EINVAL;
    struct gf_leader *l = gf_calloc(1, sizeof(*l));
    l->clk = o->clk;
    l->id = gf_strdup(o->id);
    l->ns = gf_strdup(o->ns != NULL ? o->ns : "gpufed-system");
    l->lease_ms = o->lease_ms ? o->lease_ms : DEFAULT_LEASE_MS;
    l->rd_ms = gf_leader_renew_deadline_ms(l->lease_ms);
    l->retry_ms = gf_leader_retry_ms(l->lease_ms);
    l->client = o->client;
    if (o->api != NULL)
        l->api = *o->api;
    else
        l->api = (struct gf_leader_api){
            .get = kube_get, .put = kube_put, .cancel = kube_cancel, .ctx = l};
    l->on_change = o->on_change;
    l->data = o->data;
    l->lc = (struct gf_log_ctx){.comp = "leader"};
    gf_timer_init(l->clk, &l->tick);
    gf_timer_init(l->clk, &l->deadline);
    gf_timer_init(l->clk, &l->closer);
    l->tick.data = l->deadline.data = l->closer.data = l;
    GF_LOG(&l->lc, GF_LOG_INFO, "candidate",
           "id=%s lease=%s/%s lease_ms=%llu renew_deadline_ms=%llu "
           "retry_ms=%llu",
           l->id, l->ns, GF_LEADER_LEASE, (unsigned long long)l->lease_ms,
           (unsigned long long)l->rd_ms, (unsigned long long)l->retry_ms);
    schedule(l, 0);
    *out = l;
    return 0;
}

void gf_leader_close(struct gf_leader *l, void (*cb)(void *data), void *data)
{
    l->closing = true;
    l->close_cb = cb;
    l->close_data = data;
    gf_timer_stop(&l->tick);
    gf_timer_stop(&l->deadline);
    if (l->busy)
        l->api.cancel(l->api.ctx); /* its callback finishes the close */
    else
        gf_timer_start(&l->closer, 0, closer_cb);
}

bool gf_leader_leading(const struct gf_leader *l)
{
    return l->leading;
}

const char *gf_leader_holder(const struct gf_leader *l)
{
    return l->holder_seen;
}

const char *gf_leader_id(const struct gf_leader *l)
{
    return l->id;
}

uint64_t gf_leader_transitions(const struct gf_leader *l)
{
    return l->transitions;
}
