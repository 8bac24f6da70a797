/*
 * watch: framing, decoding and running Kubernetes watch streams (see
 * watch.h and docs/kubeclient.md).
 *
 * The API server writes one JSON object per event followed by a newline;
 * JSON text never contains a raw newline, so the newline is a safe frame
 * boundary. The framer decodes complete lines straight out of the chunk
 * that holds them and copies only an event's bytes that straddle chunks,
 * so the common case (whole events in a chunk) never copies.
 */
#include "kubeclient/watch.h"

#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/json.h"
#include "common/log.h"
#include "kubeclient/internal.h"

const char *gf_watch_type_name(enum gf_watch_type t)
{
    switch (t) {
    case GF_WATCH_ADDED:
        return "ADDED";
    case GF_WATCH_MODIFIED:
        return "MODIFIED";
    case GF_WATCH_DELETED:
        return "DELETED";
    case GF_WATCH_BOOKMARK:
        return "BOOKMARK";
    case GF_WATCH_ERROR:
        return "ERROR";
    }
    return "UNKNOWN";
}

static int parse_type(const char *s, enum gf_watch_type *t)
{
    static const struct {
        const char *name;
        enum gf_watch_type t;
    } types[] = {
        {"ADDED", GF_WATCH_ADDED},     {"MODIFIED", GF_WATCH_MODIFIED},
        {"DELETED", GF_WATCH_DELETED}, {"BOOKMARK", GF_WATCH_BOOKMARK},
        {"ERROR", GF_WATCH_ERROR},
    };
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (strcmp(s, types[i].name) == 0) {
            *t = types[i].t;
            return 0;
        }
    }
    return GF_EPARSE;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int gf_watch_event_decode(const char *p, size_t n, struct gf_watch_event *ev,
                          cJSON **root)
{
    *root = NULL;
    memset(ev, 0, sizeof(*ev));
    const char *end = NULL;
    /* Parsed exactly once; everything the caller sees points into it. */
    cJSON *j = cJSON_ParseWithLengthOpts(p, n, &end, false);
    if (j == NULL)
        return GF_EPARSE;
    for (; end != NULL && end < p + n; end++) {
        if (!is_space(*end)) {
            cJSON_Delete(j);
            return GF_EPARSE;
        }
    }
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
    const cJSON *obj = cJSON_GetObjectItemCaseSensitive(j, "object");
    if (!cJSON_IsString(type) || !cJSON_IsObject(obj) ||
        parse_type(type->valuestring, &ev->type) != 0) {
        cJSON_Delete(j);
        return GF_EPARSE;
    }
    ev->object = obj;
    ev->raw = p;
    ev->raw_len = n;
    if (ev->type == GF_WATCH_ERROR) {
        gf_api_status_from_json(obj, 0, 0, &ev->status);
        /* An ERROR event must never read as success. */
        if (ev->status.err == 0) {
            ev->status.err = GF_EAPI;
            ev->status.cls = gf_api_status_classify(&ev->status);
        }
    } else {
        ev->rv = gf_json_str(obj, "metadata.resourceVersion");
    }
    *root = j;
    return 0;
}

void gf_watch_framer_init(struct gf_watch_framer *f, size_t max_event)
{
    memset(f, 0, sizeof(*f));
    f->max_event = max_event ? max_event : GF_WATCH_DEFAULT_MAX_EVENT;
    gf_buf_init(&f->partial, f->max_event);
    /* A 2 KB object's tree takes about 9 KB: one chunk holds a few. */
    f->arena = gf_arena_new(65536);
}

void gf_watch_framer_free(struct gf_watch_framer *f)
{
    gf_buf_free(&f->partial);
    gf_arena_free(f->arena);
    f->arena = NULL;
}

static int emit(struct gf_watch_framer *f, const char *p, size_t n,
                gf_watch_event_cb cb, void *data)
{
    size_t i = 0;
    while (i < n && is_space(p[i]))
        i++;
    if (i == n)
        return 0; /* blank line: keep-alive */
    if (n > f->max_event)
        return GF_E2BIG;
    struct gf_watch_event ev;
    cJSON *root = NULL;
    /* Only the parse runs in the arena: what callbacks allocate with
     * cJSON (copies, prints) comes from the heap as usual. */
    struct gf_arena *prev = gf_arena_json_begin(f->arena);
    int rc = gf_watch_event_decode(p, n, &ev, &root);
    gf_arena_json_end(prev);
    if (rc == 0) {
        f->events++;
        rc = cb(data, &ev);
        /* A tree in the arena goes with the reset at once (cJSON_Delete
         * would walk every node to free nothing). Without the cJSON hooks
         * (gf_alloc_global_init not called) the arena took nothing and
         * the tree is on the heap. */
        if (gf_arena_bytes(f->arena) == 0)
            cJSON_Delete(root);
    }
    gf_arena_reset(f->arena);
    return rc;
}

int gf_watch_framer_feed(struct gf_watch_framer *f, const char *p, size_t n,
                         gf_watch_event_cb cb, void *data)
{
    f->bytes += n;
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t seg = nl != NULL ? (size_t)(nl - p) : n;
        int rc;
        if (f->partial.len == 0 && nl != NULL) {
            /* Whole event inside this chunk: decode in place. */
            rc = emit(f, p, seg, cb, data);
        } else {
            rc = gf_buf_append(&f->partial, p, seg);
            if (rc == 0 && nl != NULL) {
                rc = emit(f, f->partial.data, f->partial.len, cb, data);
                gf_buf_reset(&f->partial);
            }
        }
        if (rc != 0)
            return rc;
        if (nl == NULL)
            break;
        p += seg + 1;
        n -= seg + 1;
    }
    return 0;
}

int gf_watch_framer_finish(struct gf_watch_framer *f, gf_watch_event_cb cb,
                           void *data)
{
    if (f->partial.len == 0)
        return 0;
    /* A server may omit the final newline; a complete object is still an
     * event. Anything else is an event cut by a dropped connection. */
    struct gf_watch_event ev;
    cJSON *root = NULL;
    int rc = gf_watch_event_decode(f->partial.data, f->partial.len, &ev, &root);
    if (rc != 0) {
        size_t i = 0;
        while (i < f->partial.len && is_space(f->partial.data[i]))
            i++;
        rc = i == f->partial.len ? 0 : GF_ETRANSPORT;
    } else {
        f->events++;
        rc = cb(data, &ev);
        cJSON_Delete(root);
    }
    gf_buf_reset(&f->partial);
    return rc;
}

/* ------------------------------------------------------------------ */

struct gf_watch {
    struct gf_kube_client *c;
    struct gf_kube_call *call;
    struct gf_watch_framer framer;
    gf_watch_event_cb on_event;
    gf_watch_done_cb on_done;
    void *data;
    struct gf_api_status err_st; /* set when an ERROR event ends it */
    bool have_err_st;
    bool stopped;
    char rv[128];
    uint64_t events;
};

static int on_framed(void *data, const struct gf_watch_event *ev)
{
    struct gf_watch *w = data;
    if (w->stopped)
        return GF_ECANCELED;
    if (ev->type == GF_WATCH_ERROR) {
        w->err_st = ev->status;
        w->have_err_st = true;
        return ev->status.err;
    }
    if (ev->rv != NULL) {
        if (strlen(ev->rv) >= sizeof(w->rv))
            return GF_E2BIG;
        gf__strlcpy(w->rv, ev->rv, sizeof(w->rv));
    }
    w->events++;
    int rc = w->on_event != NULL ? w->on_event(w->data, ev) : 0;
    return w->stopped ? GF_ECANCELED : rc;
}

static int on_stream_data(void *data, const char *p, size_t n)
{
    struct gf_watch *w = data;
    return gf_watch_framer_feed(&w->framer, p, n, on_framed, w);
}

static void on_watch_done(void *data, const struct gf_kube_result *res)
{
    struct gf_watch *w = data;
    struct gf_api_status st = *res->status;
    int err = res->err;
    if (w->have_err_st) {
        st = w->err_st;
        err = st.err;
    } else if (err == 0) {
        err = gf_watch_framer_finish(&w->framer, on_framed, w);
        if (w->have_err_st) {
            st = w->err_st;
            err = st.err;
        } else if (err != 0) {
            gf_api_status_transport(err, "stream ended inside an event", &st);
        }
    } else if (w->stopped && err != GF_ECANCELED) {
        /* Our own stop aborted the transfer from inside a callback. */
        err = GF_ECANCELED;
        gf_api_status_transport(err, "canceled", &st);
    } else if (res->http_code == 0 ||
               (res->http_code >= 200 && res->http_code < 300)) {
        /* The transfer failed on our side (event too big, bad JSON, the
         * caller's callback): the status says what, not curl's words. */
        if (st.err != err)
            gf_api_status_transport(err, NULL, &st);
    }
    w->on_done(w->data, err, &st);
    gf_watch_framer_free(&w->framer);
    gf_free(w);
}

int gf_watch_start(struct gf_kube_client *c, const struct gf_watch_opts *o,
                   struct gf_watch **out)
{
    if (out != NULL)
        *out = NULL;
    if (o->res == NULL || o->on_done == NULL)
        return -EINVAL;
    struct gf_buf q = GF_BUF_INIT(8 << 10);
    char tos[24];
    int rc = gf__kube_query_add(&q, "watch", "1");
    if (rc == 0 && o->allow_bookmarks)
        rc = gf__kube_query_add(&q, "allowWatchBookmarks", "true");
    if (rc == 0 && o->resource_version != NULL && *o->resource_version)
        rc = gf__kube_query_add(&q, "resourceVersion", o->resource_version);
    if (rc == 0 && o->timeout_seconds > 0) {
        snprintf(tos, sizeof(tos), "%u", o->timeout_seconds);
        rc = gf__kube_query_add(&q, "timeoutSeconds", tos);
    }
    if (rc == 0)
        rc = gf__kube_query_add(&q, "labelSelector", o->label_selector);
    if (rc == 0)
        rc = gf__kube_query_add(&q, "fieldSelector", o->field_selector);
    if (rc != 0) {
        gf_buf_free(&q);
        return rc;
    }
    struct gf_watch *w = gf_calloc(1, sizeof(*w));
    w->c = c;
    w->on_event = o->on_event;
    w->on_done = o->on_done;
    w->data = o->data;
    gf_watch_framer_init(&w->framer, o->max_event);
    if (o->resource_version != NULL)
        gf__strlcpy(w->rv, o->resource_version, sizeof(w->rv));
    struct gf_kube_op op = {
        .method = "GET", .res = o->res, .ns = o->ns, .query = gf_buf_cstr(&q)};
    struct gf__kube_stream st = {.on_data = on_stream_data,
                                 .data = w,
                                 .idle_ms = o->idle_timeout_ms,
                                 .deadline_ms = o->deadline_ms};
    rc = gf__kube_call_start(c, &op, &st, on_watch_done, w, &w->call);
    gf_buf_free(&q);
    if (rc != 0) {
        gf_watch_framer_free(&w->framer);
        gf_free(w);
        return rc;
    }
    if (out != NULL)
        *out = w;
    return 0;
}

void gf_watch_stop(struct gf_watch *w)
{
    if (w == NULL || w->stopped)
        return;
    w->stopped = true;
    gf_kube_call_cancel(w->call);
}

const char *gf_watch_last_rv(const struct gf_watch *w)
{
    return w->rv[0] != '\0' ? w->rv : NULL;
}

uint64_t gf_watch_events(const struct gf_watch *w)
{
    return w->events;
}
