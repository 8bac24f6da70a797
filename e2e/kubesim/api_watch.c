/*
 * api_watch: watch streams.
 *
 * A watch call ties a store watch (store.h) to a streaming response: every
 * event becomes one line {"type":"ADDED","object":{...}} written with
 * stream_write(). Each call owns two timers on the cluster's clock: the
 * timeout (timeoutSeconds, capped by max_watch_s) and, when the client
 * allows bookmarks, the bookmark interval. Before a timeout ends a stream
 * that allows bookmarks, a last BOOKMARK tells the client where to resume,
 * as the watch cache does.
 *
 * A watch from a resourceVersion the watch cache no longer holds is
 * answered the way the API server's watch cache answers it: HTTP 200 and
 * a single ERROR event carrying a 410 Expired Status, then the end of the
 * stream. Malformed parameters are plain 400 replies.
 *
 * Ending a call always goes through finish(); while the call is still
 * being set up inside gf_ks_api_handle() (initial events are written
 * synchronously), the end is deferred to a zero-delay timer so that the
 * server has its call pointer before stream_end() arrives.
 */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/json.h"
#include "common/list.h"
#include "e2e/kubesim/api_handlers.h"

/* One watch event is at most one object plus framing. */
#define EVENT_MAX (64u << 20)

struct gf_ks_api_call {
    struct gf_list link; /* in api->calls */
    struct gf_ks_api *api;
    const struct gf_ks_api_out *out;
    struct gf_ks_watch *w;
    const struct gf_ks_rtype *t;
    char version[64];
    bool table, bookmarks;
    bool initial_events; /* sendInitialEvents=true */
    char *include;       /* includeObject for Table watches */
    /* An end asked for now is only marked (failed) and left to the code
     * that set this: gf_ks_api_handle(), a resume, the timeout. */
    bool hold_end;
    bool init_end_sent; /* the initial-events-end BOOKMARK is out */
    bool failed;        /* a write failed: the client is gone */
    bool ending;        /* the end timer is armed */
    struct gf_timer timeout, bookmark, end;
};

static void call_unlink(struct gf_ks_api_call *c)
{
    gf_list_remove(&c->link);
    c->api->ncalls--;
}

static void call_free(struct gf_ks_api_call *c)
{
    gf_timer_stop(&c->timeout);
    gf_timer_stop(&c->bookmark);
    gf_timer_stop(&c->end);
    gf_ks_watch_stop(c->w);
    c->w = NULL;
    call_unlink(c);
    gf_free(c->include);
    gf_free(c);
}

static void end_now(struct gf_ks_api_call *c)
{
    const struct gf_ks_api_out *out = c->out;
    call_free(c);
    out->stream_end(out->ctx);
}

static void on_end_timer(struct gf_timer *t)
{
    end_now(t->data);
}

/*
 * Ends the stream. The store watch is stopped first (never after a CLOSED
 * callback: the store has already freed it, and c->w is NULL then).
 */
static void finish(struct gf_ks_api_call *c)
{
    if (c->ending)
        return;
    gf_timer_stop(&c->timeout);
    gf_timer_stop(&c->bookmark);
    if (c->hold_end) {
        /* Stopping the watch from inside gf_ks_watch_start() (or a
         * resume) is unsafe; the caller stops it after that returns.
         * Paused, the store sends nothing more meanwhile. */
        c->failed = true;
        if (c->w != NULL)
            gf_ks_watch_pause(c->w);
        return;
    }
    gf_ks_watch_stop(c->w);
    c->w = NULL;
    end_now(c);
}

static const struct gf_ks_version *call_version(const struct gf_ks_api_call *c)
{
    /* Looked up per event: a CRD update replaces the versions array. */
    const struct gf_ks_version *v = gf__ks_find_version(c->t, c->version);
    return v != NULL ? v : &c->t->versions[c->t->storage];
}

static cJSON *bookmark_obj(const struct gf_ks_api_call *c, uint64_t rv)
{
    char gv[256], rvs[24];
    gf__ks_gv(c->t->group, call_version(c)->name, gv, sizeof(gv));
    snprintf(rvs, sizeof(rvs), "%llu", (unsigned long long)rv);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", c->t->kind);
    cJSON_AddStringToObject(o, "apiVersion", gv);
    cJSON *m = cJSON_AddObjectToObject(o, "metadata");
    cJSON_AddStringToObject(m, "resourceVersion", rvs);
    return o;
}

static int put_bookmark(struct gf_buf *b, const struct gf_ks_api_call *c,
                        uint64_t rv)
{
    cJSON *o = bookmark_obj(c, rv);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    int rc = gf_buf_puts(b, s);
    gf_free(s);
    return rc;
}

static int put_object(struct gf_buf *b, const struct gf_ks_api_call *c,
                      const struct gf_ks_obj *obj)
{
    if (!c->table)
        return gf__ks_put_obj(b, obj, call_version(c));
    struct gf_ks_obj *o = (struct gf_ks_obj *)obj; /* read only */
    return gf__ks_table(c->api, b, c->t, call_version(c), &o, 1, NULL, NULL,
                        c->include);
}

/* Returns 0, 1 when the client is behind (stream_write), or a negative
 * error when the client is gone. status: an object written as is (an
 * ERROR's Status, a bookmark). */
static int write_event(struct gf_ks_api_call *c, const char *type,
                       const struct gf_ks_obj *obj, uint64_t rv,
                       const cJSON *status)
{
    struct gf_buf b = GF_BUF_INIT(EVENT_MAX);
    gf_buf_printf(&b, "{\"type\":\"%s\",\"object\":", type);
    int rc;
    if (status != NULL) {
        char *s = cJSON_PrintUnformatted(status);
        rc = gf_buf_puts(&b, s);
        gf_free(s);
    } else if (obj != NULL) {
        rc = put_object(&b, c, obj);
    } else {
        rc = put_bookmark(&b, c, rv);
    }
    if (rc == 0)
        rc = gf_buf_puts(&b, "}\n");
    if (rc == 0) {
        rc = c->out->stream_write(c->out->ctx, gf_buf_cstr(&b), b.len);
        rc = rc < 0 ? GF_ETRANSPORT : rc > 0 ? 1 : 0;
    }
    gf_buf_free(&b);
    return rc;
}

/*
 * sendInitialEvents: the store's first BOOKMARK for the call comes right
 * after the last initial ADDED event (at once, or after several resumes
 * for a client that reads slowly), with the version of that state; it
 * goes out annotated k8s.io/initial-events-end.
 */
static int write_initial_end(struct gf_ks_api_call *c, uint64_t rv)
{
    c->init_end_sent = true;
    cJSON *bm = bookmark_obj(c, rv);
    cJSON *ann = cJSON_AddObjectToObject(
        cJSON_GetObjectItemCaseSensitive(bm, "metadata"), "annotations");
    cJSON_AddStringToObject(ann, "k8s.io/initial-events-end", "true");
    int rc = write_event(c, "BOOKMARK", NULL, 0, bm);
    cJSON_Delete(bm);
    return rc;
}

static void on_watch(void *data, enum gf_ks_ev_type type,
                     const struct gf_ks_obj *obj, uint64_t rv, int err)
{
    struct gf_ks_api_call *c = data;
    (void)err;
    if (type == GF_KS_EV_CLOSED) {
        c->w = NULL; /* freed by the store after this callback */
        finish(c);
        return;
    }
    if (c->failed || c->ending)
        return;
    int rc = type == GF_KS_EV_BOOKMARK && c->initial_events && !c->init_end_sent
                 ? write_initial_end(c, rv)
                 : write_event(c, gf_ks_ev_name(type), obj, rv, NULL);
    if (rc < 0)
        finish(c);
    else if (rc > 0)
        /* The client is behind: the rest waits in the watch cache. */
        gf_ks_watch_pause(c->w);
}

static void on_bookmark(struct gf_timer *t)
{
    struct gf_ks_api_call *c = t->data;
    gf_timer_start(&c->bookmark, (uint64_t)c->api->bookmark_s * 1000,
                   on_bookmark);
    gf_ks_watch_bookmark_periodic(c->w);
}

static void on_timeout(struct gf_timer *t)
{
    struct gf_ks_api_call *c = t->data;
    /* A last BOOKMARK tells the client where to resume. The store picks
     * its version: what this watch has been sent (a watch held back by a
     * slow client is not at the store's head), and none mid-way through
     * the initial events. */
    if (c->bookmarks && c->w != NULL) {
        c->hold_end = true;
        gf_ks_watch_bookmark(c->w);
        c->hold_end = false;
    }
    finish(c);
}

/* ---- setup -------------------------------------------------------------- */

static int watch_timeout(struct gf_ks_api *api, const struct gf__ks_rreq *r,
                         uint64_t *ms, struct gf_ks_status *err)
{
    const char *ts = gf__ks_param(r, "timeoutSeconds");
    int64_t s = api->max_watch_s;
    if (ts != NULL && ts[0] != '\0') {
        if (gf_parse_i64(ts, &s) != 0 || s < 0)
            return gf_ks_status_set(err, 400, "BadRequest",
                                    "invalid timeoutSeconds: %s", ts);
        if (s == 0 || s > (int64_t)api->max_watch_s)
            s = api->max_watch_s;
    }
    *ms = (uint64_t)s * 1000;
    return 0;
}

static int check_rv(const char *rv, struct gf_ks_status *err)
{
    int64_t v;
    if (rv == NULL || rv[0] == '\0')
        return 0;
    if (gf_parse_i64(rv, &v) != 0 || v < 0)
        return gf_ks_status_set(err, 400, "BadRequest",
                                "invalid resource version: %s", rv);
    return 0;
}

static struct gf_ks_api_call *call_new(struct gf_ks_api *api,
                                       const struct gf__ks_rreq *r)
{
    struct gf_ks_api_call *c = gf_calloc(1, sizeof(*c));
    c->api = api;
    c->out = r->out;
    c->t = r->t;
    snprintf(c->version, sizeof(c->version), "%s", r->ver->name);
    c->table = r->table;
    const char *inc = gf__ks_param(r, "includeObject");
    c->include = inc != NULL ? gf_strdup(inc) : NULL;
    c->bookmarks = gf__ks_param_true(r, "allowWatchBookmarks");
    c->initial_events = gf__ks_param_true(r, "sendInitialEvents");
    c->hold_end = true;
    gf_timer_init(api->clock, &c->timeout);
    gf_timer_init(api->clock, &c->bookmark);
    gf_timer_init(api->clock, &c->end);
    c->timeout.data = c->bookmark.data = c->end.data = c;
    gf_list_push_front(&api->calls, &c->link);
    api->ncalls++;
    return c;
}

/* Defers the end of a call that failed while it was being set up. */
static void defer_end(struct gf_ks_api_call *c)
{
    gf_ks_watch_stop(c->w);
    c->w = NULL;
    c->ending = true;
    gf_timer_stop(&c->timeout);
    gf_timer_stop(&c->bookmark);
    gf_timer_start(&c->end, 0, on_end_timer);
}

static void start_watch(struct gf_ks_api *api, struct gf__ks_rreq *r,
                        struct gf_ks_api_call *c, const struct gf__ks_sels *s,
                        uint64_t timeout_ms)
{
    struct gf_ks_watch_opts wo = {
        .ns = r->ns,
        .label = s->label,
        .field = s->field,
        .rv = gf__ks_param(r, "resourceVersion"),
    };
    /*
     * sendInitialEvents (the watch-list protocol): the current state as
     * ADDED events, whatever resourceVersion was asked for (the current
     * state is "not older than" it), then a BOOKMARK annotated
     * k8s.io/initial-events-end.
     */
    if (c->initial_events) {
        wo.rv = NULL;
        wo.initial_end_bookmark = true;
    }
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    int rc = gf_ks_watch_start(api->store, r->t, &wo, on_watch, c, &c->w, &err);
    if (rc < 0) {
        /* 410 and anything else after the 200: one ERROR event. */
        c->w = NULL;
        cJSON *st = gf_ks_status_to_json(&err);
        write_event(c, "ERROR", NULL, 0, st);
        cJSON_Delete(st);
        c->failed = true;
    }
    gf_ks_status_clear(&err);
    c->hold_end = false;
    if (c->failed) {
        defer_end(c);
        return;
    }
    gf_timer_start(&c->timeout, timeout_ms, on_timeout);
    if (c->bookmarks)
        gf_timer_start(&c->bookmark, (uint64_t)api->bookmark_s * 1000,
                       on_bookmark);
}

void gf__ks_watch(struct gf_ks_api *api, struct gf__ks_rreq *r,
                  struct gf_ks_api_call **call)
{
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    struct gf__ks_sels s;
    uint64_t timeout_ms = 0;
    int rc = gf__ks_parse_selectors(r, &s, &err);
    if (rc == 0)
        rc = watch_timeout(api, r, &timeout_ms, &err);
    if (rc == 0)
        rc = check_rv(gf__ks_param(r, "resourceVersion"), &err);
    if (rc < 0) {
        gf__ks_reply_status(r->out, &err);
    } else {
        struct gf_ks_api_call *c = call_new(api, r);
        r->out->stream_begin(r->out->ctx, 200, "application/json");
        *call = c;
        start_watch(api, r, c, &s, timeout_ms);
    }
    gf__ks_sels_free(&s);
    gf_ks_status_clear(&err);
}

void gf_ks_api_call_cancel(struct gf_ks_api_call *call)
{
    if (call != NULL)
        call_free(call);
}

void gf_ks_api_call_writable(struct gf_ks_api_call *call)
{
    if (call == NULL || call->ending || call->failed || call->w == NULL)
        return;
    /* As during the start: an end inside the resume is deferred, so that
     * call stays valid here. */
    call->hold_end = true;
    gf_ks_watch_resume(call->w);
    call->hold_end = false;
    if (call->failed)
        defer_end(call);
}

static struct gf_ks_api_call *first_call(const struct gf_ks_api *api)
{
    return GF_LIST_ENTRY(gf_list_first(&api->calls), struct gf_ks_api_call,
                         link);
}

void gf__ks_watch_free_all(struct gf_ks_api *api)
{
    while (!gf_list_empty(&api->calls))
        call_free(first_call(api));
}

void gf_ks_api_restart(struct gf_ks_api *api)
{
    /* Every store watch is closed with CLOSED, which ends its call. */
    gf_ks_store_restart(api->store);
    /* Calls that were already ending go now too. */
    while (!gf_list_empty(&api->calls))
        end_now(first_call(api));
}
