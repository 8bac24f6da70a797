/*
 * reflector: LIST then WATCH into a store, with relist and backoff (see
 * reflector.h and docs/kubeclient.md).
 *
 * The reflector is a small state machine: LISTING -> WATCHING, and from
 * either into BACKOFF on failure, whose timer leads back to LISTING or
 * WATCHING depending on what failed, or into FAILED on a terminal answer,
 * whose slow timer leads back to LISTING. At most one call (a list page
 * or a watch) is in flight at any time, which keeps cancellation simple:
 * close cancels that one call and frees the reflector when its callback
 * has fired.
 *
 * The relist rule is the one that matters against a real API server. A
 * paginated LIST (limit set) with a non-zero resourceVersion is answered
 * from etcd exactly at that version. After a server restart the watch
 * from our last RV gets 410, and a relist from that same RV would get
 * the old state and the old RV back, whose watch gets 410 again: a hot
 * loop that keeps the store stale until etcd compacts past that RV. So a
 * 410 marks the RV unavailable (client-go's
 * isLastSyncResourceVersionUnavailable): the next list asks for the
 * current state (resourceVersion=""), after a backoff step, and a list
 * that still hands back the RV we were told is expired is not watched
 * from.
 */
#include "kubeclient/reflector.h"

#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/json.h"
#include "kubeclient/internal.h"

enum next_step { STEP_LIST, STEP_WATCH };

struct gf_reflector {
    struct gf_kube_client *client;
    struct gf_store *store;
    struct gf_clock *clk;
    struct gf_rand *rng;
    struct gf_kube_resource res;
    char *ns, *label_selector, *field_selector;
    unsigned page_limit; /* page size of a list, 0: unpaged rv=0 lists */
    /* Of the next page: page_limit, or less once a page had to shrink to
     * fit the body cap. Kept across lists, so a relist does not fetch
     * the oversized pages again (nor outlive its continue token). */
    unsigned cur_limit;
    uint64_t grace_ms;
    size_t max_event;
    struct gf_log_ctx lc;
    gf_watch_event_cb on_event;
    void (*on_terminal)(void *data, int err, const struct gf_api_status *st);
    void *data;
    uv_loop_t *loop;
    uv_idle_t defer; /* only to defer the close callback (uv_close) */

    enum gf_reflector_state state;
    struct gf_kube_call *list_call; /* in flight */
    struct gf_watch *watch;         /* in flight */
    struct gf_timer backoff_timer;
    enum next_step next;
    char rv[128]; /* last RV (list or event), opaque */
    /* The RV a 410 said is gone: never watched from again. */
    char expired_rv[128];
    bool rv_unavailable; /* the next list asks for resourceVersion="" */
    uint64_t step_ms;    /* current backoff step, 0: none yet */
    uint64_t healthy_since_ms;
    uint64_t watch_started_ms;
    uint64_t watch_events;
    bool closing;
    void (*close_cb)(void *data);
    void *close_data;
    struct gf_reflector_health health;
};

static void do_list(struct gf_reflector *r, const char *continue_token);
static void do_watch(struct gf_reflector *r);

const char *gf_reflector_state_name(enum gf_reflector_state s)
{
    switch (s) {
    case GF_REFLECTOR_STOPPED:
        return "stopped";
    case GF_REFLECTOR_LISTING:
        return "listing";
    case GF_REFLECTOR_WATCHING:
        return "watching";
    case GF_REFLECTOR_BACKOFF:
        return "backoff";
    case GF_REFLECTOR_FAILED:
        return "failed";
    }
    return "unknown";
}

static char *dup_or_null(const char *s)
{
    return s != NULL && *s != '\0' ? gf_strdup(s) : NULL;
}

int gf_reflector_new(const struct gf_reflector_opts *o,
                     struct gf_reflector **out)
{
    *out = NULL;
    if (o->client == NULL || o->store == NULL || o->rng == NULL ||
        o->res.plural[0] == '\0')
        return -EINVAL;
    struct gf_reflector *r = gf_calloc(1, sizeof(*r));
    r->client = o->client;
    gf__kube_client_ref(r->client);
    r->store = o->store;
    r->clk = gf_kube_client_clock(o->client);
    r->rng = o->rng;
    r->res = o->res;
    r->ns = dup_or_null(o->ns);
    r->label_selector = dup_or_null(o->label_selector);
    r->field_selector = dup_or_null(o->field_selector);
    r->page_limit = o->page_limit;
    r->cur_limit = o->page_limit;
    r->grace_ms =
        o->watch_grace_ms ? o->watch_grace_ms : GF_REFLECTOR_WATCH_GRACE_MS;
    r->max_event = o->max_event;
    if (o->lc != NULL)
        r->lc = *o->lc;
    else
        r->lc = *gf__kube_client_lc(o->client);
    r->lc.comp = "reflector";
    r->on_event = o->on_event;
    r->on_terminal = o->on_terminal;
    r->data = o->data;
    r->loop = gf_http_loop(gf_kube_client_http(o->client));
    gf_timer_init(r->clk, &r->backoff_timer);
    r->backoff_timer.data = r;
    *out = r;
    return 0;
}

static void set_state(struct gf_reflector *r, enum gf_reflector_state s)
{
    r->state = s;
    r->health.state = s;
}

static void set_rv(struct gf_reflector *r, const char *rv)
{
    if (rv == NULL)
        return;
    gf__strlcpy(r->rv, rv, sizeof(r->rv));
    gf__strlcpy(r->health.rv, rv, sizeof(r->health.rv));
}

static void record_error(struct gf_reflector *r, int err,
                         const struct gf_api_status *st)
{
    r->health.last_err = err;
    snprintf(r->health.last_error, sizeof(r->health.last_error),
             "%.40s: %.150s (%ld %.50s)", gf_strerror(err), st->message,
             st->code, st->reason);
    r->health.failures++;
}

static void on_defer_closed(uv_handle_t *h)
{
    struct gf_reflector *r = h->data;
    void (*cb)(void *) = r->close_cb;
    void *data = r->close_data;
    gf_free(r);
    if (cb != NULL)
        cb(data);
}

/*
 * Nothing is in flight any more. The close callback still runs from the
 * loop, never inside gf_reflector_close() or a caller's callback: an
 * idle handle is opened only to be closed, because uv_close() always
 * calls back on a later loop iteration.
 */
static void finish_close(struct gf_reflector *r)
{
    gf_timer_stop(&r->backoff_timer);
    gf__kube_client_unref(r->client);
    r->client = NULL;
    GF_FREE(r->ns);
    GF_FREE(r->label_selector);
    GF_FREE(r->field_selector);
    uv_idle_init(r->loop, &r->defer); /* cannot fail */
    r->defer.data = r;
    uv_close((uv_handle_t *)&r->defer, on_defer_closed);
}

/* ------------------------------------------------------------------ */
/* Backoff                                                             */

static void on_backoff(struct gf_timer *t)
{
    struct gf_reflector *r = t->data;
    if (r->next == STEP_WATCH && r->rv[0] != '\0')
        do_watch(r);
    else
        do_list(r, NULL);
}

/*
 * 0.8 s doubling to 30 s, with +-20% jitter so that many reflectors that
 * failed together do not retry together; back to 0.8 s once the
 * reflector has been healthy for two minutes.
 */
static void backoff(struct gf_reflector *r, enum next_step next,
                    uint64_t retry_after_ms)
{
    uint64_t now = gf_clock_now_ms(r->clk);
    if (r->healthy_since_ms != 0 &&
        now - r->healthy_since_ms >= GF_REFLECTOR_HEALTHY_RESET_MS)
        r->step_ms = 0;
    r->healthy_since_ms = 0;
    if (r->step_ms == 0)
        r->step_ms = GF_REFLECTOR_BACKOFF_MIN_MS;
    else if (r->step_ms * 2 > GF_REFLECTOR_BACKOFF_MAX_MS)
        r->step_ms = GF_REFLECTOR_BACKOFF_MAX_MS;
    else
        r->step_ms *= 2;
    uint64_t lo = r->step_ms * 8 / 10, hi = r->step_ms * 12 / 10;
    uint64_t delay = gf_rand_range(r->rng, lo, hi);
    /* The server knows its load better than our schedule does, but a
     * hostile Retry-After must not park us for hours. */
    if (retry_after_ms > delay)
        delay = retry_after_ms < 60000 ? retry_after_ms : 60000;
    r->health.backoff_ms = delay;
    r->next = next;
    set_state(r, GF_REFLECTOR_BACKOFF);
    GF_LOG(&r->lc, GF_LOG_WARN, "backing off", "resource=%s delay_ms=%llu",
           r->res.plural, (unsigned long long)delay);
    gf_timer_start(&r->backoff_timer, delay, on_backoff);
}

/*
 * The server refused us for a reason that retrying will not change
 * (RBAC, a missing CRD, a bad selector). Say so once, loudly, with the
 * server's own words, and try again only every few minutes: someone has
 * to act, and a hot loop would only load the server and hide the cause.
 */
static void terminal(struct gf_reflector *r, const char *what, int err,
                     const struct gf_api_status *st)
{
    r->health.terminal++;
    r->health.backoff_ms = GF_REFLECTOR_TERMINAL_RETRY_MS;
    r->healthy_since_ms = 0;
    r->next = STEP_LIST;
    set_state(r, GF_REFLECTOR_FAILED);
    GF_LOG(&r->lc, GF_LOG_ERROR, what,
           "resource=%s err=%s code=%ld reason=%s message=%s retry_ms=%u",
           r->res.plural, gf_strerror(err), st->code, st->reason, st->message,
           GF_REFLECTOR_TERMINAL_RETRY_MS);
    gf_timer_start(&r->backoff_timer, GF_REFLECTOR_TERMINAL_RETRY_MS,
                   on_backoff);
    /* Last: the owner may close us from here. */
    if (r->on_terminal != NULL)
        r->on_terminal(r->data, err, st);
}

/* Only what the server said is terminal; our own failures (a bad event,
 * an object over the cap) back off like transport errors. */
static bool is_terminal(const struct gf_api_status *st)
{
    return st->cls == GF_API_TERMINAL && st->code != 0;
}

/* The RV we hold is gone: the next list reads the current state. */
static void mark_expired(struct gf_reflector *r, const char *rv)
{
    r->rv_unavailable = true;
    if (rv != NULL && *rv != '\0')
        gf__strlcpy(r->expired_rv, rv, sizeof(r->expired_rv));
    r->health.relists++;
}

/* ------------------------------------------------------------------ */
/* List                                                                */

static int apply_items(struct gf_reflector *r, const cJSON *list)
{
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(list, "items");
    if (items != NULL && !cJSON_IsArray(items) && !cJSON_IsNull(items))
        return GF_EPARSE;
    const cJSON *it;
    cJSON_ArrayForEach(it, items)
    {
        int rc = gf_store_replace_add(r->store, it);
        if (rc < 0)
            GF_LOG(&r->lc, GF_LOG_WARN, "object skipped", "err=%s",
                   gf_strerror(rc));
    }
    return 0;
}

/* A failed list page: terminal, or back off (from the current state
 * after a 410: the RV or continue token we asked with is gone). */
static void list_failed(struct gf_reflector *r, int err,
                        const struct gf_api_status *status)
{
    struct gf_api_status st = *status;
    if (st.err != err)
        gf_api_status_transport(err, "bad list body", &st);
    record_error(r, err, &st);
    if (err == GF_E2BIG && r->page_limit == 0) {
        /* One unpaged answer did not fit our cap: page from now on, and
         * let request.c shrink the pages until each fits. */
        GF_LOG(&r->lc, GF_LOG_INFO, "list over the cap, paging",
               "resource=%s limit=%u", r->res.plural,
               GF_REFLECTOR_FALLBACK_PAGE);
        r->page_limit = GF_REFLECTOR_FALLBACK_PAGE;
        r->cur_limit = r->page_limit;
        do_list(r, NULL);
        return;
    }
    if (is_terminal(&st)) {
        terminal(r, "list refused", err, &st);
        return;
    }
    if (st.cls == GF_API_RELIST)
        mark_expired(r, NULL);
    GF_LOG(&r->lc, GF_LOG_WARN, "list failed",
           "resource=%s err=%s code=%ld reason=%s message=%s", r->res.plural,
           gf_strerror(err), st.code, st.reason, st.message);
    backoff(r, STEP_LIST, st.retry_after_ms);
}

static void on_list(void *data, const struct gf_kube_result *res)
{
    struct gf_reflector *r = data;
    r->list_call = NULL;
    if (r->closing) {
        finish_close(r);
        return;
    }
    /* A page that had to shrink to fit the cap: the next ones are likely
     * as large, so ask them at the size that fitted. */
    if (res->limit > 0 && res->limit < r->cur_limit)
        r->cur_limit = res->limit;
    int err = res->err;
    if (err == 0 && res->json == NULL)
        err = GF_EPARSE;
    if (err == 0)
        err = apply_items(r, res->json);
    if (err != 0) {
        list_failed(r, err, res->status);
        return;
    }
    const char *rv = NULL, *cont = NULL;
    gf_kube_list_meta(res->json, &rv, &cont);
    if (cont != NULL && r->page_limit > 0) {
        do_list(r, cont);
        return;
    }
    gf_store_replace_end(r->store);
    r->rv_unavailable = false;
    set_rv(r, rv);
    r->health.synced = gf_store_has_synced(r->store);
    r->health.lists++;
    r->health.last_list_ms = gf_clock_now_ms(r->clk);
    GF_LOG(&r->lc, GF_LOG_INFO, "listed", "resource=%s items=%zu rv=%s",
           r->res.plural, gf_store_len(r->store), r->rv);
    if (r->expired_rv[0] != '\0' && strcmp(r->rv, r->expired_rv) == 0) {
        /* The server handed back the very RV it called expired: a watch
         * from it would be refused again. List again, later. */
        struct gf_api_status st;
        gf_api_status_transport(GF_EGONE, "list returned an expired RV", &st);
        record_error(r, GF_EGONE, &st);
        mark_expired(r, NULL);
        backoff(r, STEP_LIST, 0);
        return;
    }
    do_watch(r);
}

static void do_list(struct gf_reflector *r, const char *continue_token)
{
    set_state(r, GF_REFLECTOR_LISTING);
    r->health.watching = false;
    /* A new list (or the restart of a broken paginated one) begins a new
     * replace generation; keys not seen by its end get deletes. */
    if (continue_token == NULL)
        gf_store_replace_begin(r->store);
    struct gf_kube_list_opts lo = {
        .ns = r->ns,
        .label_selector = r->label_selector,
        .field_selector = r->field_selector,
        /* Only the first page names an RV; continue tokens carry it.
         * "0" (any state, from the watch cache) for the first unpaged
         * list; "" (the current state) for paged lists, which the server
         * serves from etcd, and after a 410. */
        .resource_version = continue_token != NULL                     ? NULL
                            : r->page_limit == 0 && !r->rv_unavailable ? "0"
                                                                       : "",
        .continue_token = continue_token,
        .limit = r->cur_limit,
    };
    int rc = gf_kube_list(r->client, &r->res, &lo, on_list, r, &r->list_call);
    if (rc != 0) {
        struct gf_api_status st;
        gf_api_status_transport(rc, "list not started", &st);
        record_error(r, rc, &st);
        backoff(r, STEP_LIST, 0);
    }
}

/* ------------------------------------------------------------------ */
/* Watch                                                               */

static int on_event(void *data, const struct gf_watch_event *ev)
{
    struct gf_reflector *r = data;
    int rc = 0;
    switch (ev->type) {
    case GF_WATCH_ADDED:
    case GF_WATCH_MODIFIED:
        rc = gf_store_upsert(r->store, ev->object);
        break;
    case GF_WATCH_DELETED:
        rc = gf_store_remove(r->store, ev->object);
        break;
    case GF_WATCH_BOOKMARK:
        r->health.bookmarks++;
        break;
    case GF_WATCH_ERROR:
        break; /* delivered through the watch's done callback */
    }
    if (rc < 0)
        GF_LOG(&r->lc, GF_LOG_WARN, "event skipped", "type=%s err=%s",
               gf_watch_type_name(ev->type), gf_strerror(rc));
    set_rv(r, ev->rv);
    r->watch_events++;
    r->health.events++;
    r->health.last_event_ms = gf_clock_now_ms(r->clk);
    if (r->on_event != NULL)
        return r->on_event(r->data, ev);
    return 0;
}

static void on_watch_done(void *data, int err, const struct gf_api_status *st)
{
    struct gf_reflector *r = data;
    r->watch = NULL;
    r->health.watching = false;
    if (r->closing) {
        finish_close(r);
        return;
    }
    uint64_t now = gf_clock_now_ms(r->clk);
    if (err == 0) {
        /* A normal end (timeoutSeconds elapsed): carry on from the last
         * RV. A server that ends streams at once without a single event
         * would make this spin, so that case backs off instead. */
        if (r->watch_events > 0 || now - r->watch_started_ms >= 1000) {
            do_watch(r);
            return;
        }
        struct gf_api_status empty;
        gf_api_status_transport(GF_ETRANSPORT, "watch ended at once", &empty);
        record_error(r, GF_ETRANSPORT, &empty);
        backoff(r, STEP_WATCH, 0);
        return;
    }
    record_error(r, err, st);
    if (st->cls == GF_API_RELIST) {
        /* Our RV is gone (compacted, or the server restarted with an
         * empty watch cache). Never list or watch from it again: list
         * the current state, after a backoff step so that a server that
         * keeps saying 410 is not hammered. */
        GF_LOG(&r->lc, GF_LOG_INFO, "relist", "resource=%s reason=%s rv=%s",
               r->res.plural, st->reason, r->rv);
        mark_expired(r, r->rv);
        backoff(r, STEP_LIST, st->retry_after_ms);
        return;
    }
    if (is_terminal(st)) {
        terminal(r, "watch refused", err, st);
        return;
    }
    GF_LOG(&r->lc, GF_LOG_WARN, "watch failed",
           "resource=%s err=%s code=%ld reason=%s message=%s", r->res.plural,
           gf_strerror(err), st->code, st->reason, st->message);
    backoff(r, STEP_WATCH, st->retry_after_ms);
}

static void do_watch(struct gf_reflector *r)
{
    set_state(r, GF_REFLECTOR_WATCHING);
    /* A random stream length spreads the reconnects of many watches. */
    unsigned tos = (unsigned)gf_rand_range(r->rng, 300, 600);
    struct gf_watch_opts wo = {
        .res = &r->res,
        .ns = r->ns,
        .label_selector = r->label_selector,
        .field_selector = r->field_selector,
        .resource_version = r->rv,
        .allow_bookmarks = true,
        .timeout_seconds = tos,
        /* No idle timer: a quiet resource sends nothing for minutes. The
         * server ends the stream after tos; past that plus a grace it
         * has gone silent on us. */
        .deadline_ms = (uint64_t)tos * 1000 + r->grace_ms,
        .max_event = r->max_event,
        .on_event = on_event,
        .on_done = on_watch_done,
        .data = r,
    };
    uint64_t now = gf_clock_now_ms(r->clk);
    r->watch_started_ms = now;
    r->watch_events = 0;
    if (r->healthy_since_ms == 0)
        r->healthy_since_ms = now;
    int rc = gf_watch_start(r->client, &wo, &r->watch);
    if (rc != 0) {
        struct gf_api_status st;
        gf_api_status_transport(rc, "watch not started", &st);
        record_error(r, rc, &st);
        backoff(r, STEP_WATCH, 0);
        return;
    }
    r->health.watches++;
    r->health.watching = true;
}

/* ------------------------------------------------------------------ */

/* See reflector.h for the rule: the wait goes, the step stays (step_ms
 * is untouched, and healthy_since_ms stays 0 until a watch opens). */
bool gf_reflector_retry_now(struct gf_reflector *r)
{
    if (r->closing || r->state != GF_REFLECTOR_BACKOFF)
        return false;
    gf_timer_stop(&r->backoff_timer);
    GF_LOG(&r->lc, GF_LOG_INFO, "retrying now", "resource=%s step_ms=%llu",
           r->res.plural, (unsigned long long)r->step_ms);
    on_backoff(&r->backoff_timer);
    return true;
}

int gf_reflector_start(struct gf_reflector *r)
{
    if (r->state != GF_REFLECTOR_STOPPED || r->closing)
        return -EALREADY;
    do_list(r, NULL);
    return 0;
}

void gf_reflector_close(struct gf_reflector *r, void (*cb)(void *data),
                        void *data)
{
    GF_BUG_ON(r->closing);
    r->closing = true;
    r->close_cb = cb;
    r->close_data = data;
    gf_timer_stop(&r->backoff_timer);
    set_state(r, GF_REFLECTOR_STOPPED);
    if (r->list_call != NULL) {
        gf_kube_call_cancel(r->list_call);
        return;
    }
    if (r->watch != NULL) {
        gf_watch_stop(r->watch);
        return;
    }
    finish_close(r);
}

void gf_reflector_health(const struct gf_reflector *r,
                         struct gf_reflector_health *out)
{
    *out = r->health;
    out->synced = gf_store_has_synced(r->store);
}
