/*
 * http: libcurl's multi interface driven by libuv (see http.h).
 *
 * The shape follows curl's docs/examples/multi-uv.c: curl tells us which
 * sockets to watch (CURLMOPT_SOCKETFUNCTION) and when to call it back
 * (CURLMOPT_TIMERFUNCTION); we keep one uv_poll_t per socket, attached to
 * the socket with curl_multi_assign, and one uv_timer_t for curl's own
 * timeout. After every curl_multi_socket_action we drain
 * curl_multi_info_read, because a transfer may finish on any call.
 *
 * Re-entrancy is the subtle part. curl forbids calling multi functions
 * from inside its callbacks, and our streaming data callback runs inside
 * curl's write callback, where the user may want to cancel or start
 * requests. So completions never happen inline: a finished, canceled or
 * timed-out request is put on a done queue, and the queue is flushed
 * (remove the easy handle, call the user's done callback, free) only at
 * points where no curl function is on the stack: after socket_action
 * returns, and from a uv_idle_t for work queued from elsewhere. Starts
 * requested while curl is on the stack are queued the same way.
 */
#include "kubeclient/http.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/htab.h"
#include "common/json.h"
#include "common/list.h"
#include "common/log.h"

struct gf_http_sock {
    uv_poll_t poll;
    curl_socket_t fd;
    struct gf_http *h;
    struct gf_list link; /* in gf_http.socks */
};

struct gf_http_req {
    struct gf_http *h;
    CURL *easy;
    struct curl_slist *hdrs;
    struct gf_buf body;
    gf_http_data_cb on_data;
    gf_http_done_cb on_done;
    void *data;
    struct gf_timer deadline;
    struct gf_timer idle;
    uint64_t idle_ms;
    int err;          /* result decided before curl finished, or 0 */
    bool in_multi;    /* added to the multi handle */
    bool queued_done; /* on the done queue */
    bool streaming;   /* 2xx body goes to on_data */
    bool status_seen; /* first body byte has been classified */
    long status;
    CURLcode cres;
    char errbuf[CURL_ERROR_SIZE]; /* curl's own words (ERRORBUFFER) */
    /* Our words when we ended the transfer (cap, cancel, timers): curl
     * would otherwise write its generic "Failure writing output". */
    char local[CURL_ERROR_SIZE];
    struct gf_list link;           /* in gf_http.reqs: all live requests */
    struct gf_http_origin *origin; /* its server's connection count */
    struct gf_http_req *qnext;     /* add queue or done queue */
};

/* One server (scheme://host:port): its requests live now and at most. */
struct gf_http_origin {
    size_t active, peak;
};

struct gf_http {
    uv_loop_t *loop;
    struct gf_clock *clk;
    CURLM *multi;
    uv_timer_t timer;
    uv_idle_t idle;
    unsigned open_handles;
    int in_curl; /* > 0 while a curl function is on the stack */
    bool flushing;
    bool closing;
    bool cleaned;
    struct gf_list reqs; /* struct gf_http_req, all live */
    struct gf_http_req *add_head, *add_tail;
    struct gf_http_req *done_head, *done_tail;
    struct gf_list socks; /* struct gf_http_sock */
    size_t active;
    struct gf_htab origins; /* "scheme://host:port" -> gf_http_origin */
    size_t conns_kept;      /* the sum of the origins' peaks */
    bool want_maxconnects;  /* conns_kept grew: tell curl, outside it */
    gf_http_close_cb close_cb;
    void *close_data;
    struct gf_http_stats stats;
};

static const struct gf_log_ctx lc_http = {.comp = "http"};

static void flush(struct gf_http *h);
static void check_multi_info(struct gf_http *h);
static void maybe_finish_close(struct gf_http *h);

/* ------------------------------------------------------------------ */
/* Handles                                                             */

/* The engine is freed when its last handle has closed (STYLE.md §3). */
static void handle_released(struct gf_http *h)
{
    GF_BUG_ON(h->open_handles == 0);
    if (--h->open_handles > 0)
        return;
    gf_http_close_cb cb = h->close_cb;
    void *data = h->close_data;
    gf_htab_free_all(&h->origins, gf_free);
    gf_free(h);
    if (cb != NULL)
        cb(data);
}

static void handle_closed(uv_handle_t *hd)
{
    handle_released(hd->data);
}

static void sock_closed(uv_handle_t *hd)
{
    struct gf_http_sock *s = hd->data;
    struct gf_http *h = s->h;
    gf_free(s);
    handle_released(h);
}

static void sock_unlink_close(struct gf_http_sock *s)
{
    gf_list_remove(&s->link);
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, sock_closed);
}

static void idle_start(struct gf_http *h);

/* Runs one socket_action with the re-entrancy guard up, then drains. */
static void socket_action(struct gf_http *h, curl_socket_t fd, int flags)
{
    int running = 0;
    h->in_curl++;
    CURLMcode mc = curl_multi_socket_action(h->multi, fd, flags, &running);
    h->in_curl--;
    if (mc != CURLM_OK)
        GF_LOG(&lc_http, GF_LOG_WARN, "socket_action failed", "err=%s",
               curl_multi_strerror(mc));
    check_multi_info(h);
    flush(h);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    struct gf_http_sock *s = p->data;
    int flags = 0;
    /* A poll error is reported to curl as an error on that socket, so
     * curl fails the transfers that use it instead of waiting forever. */
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    socket_action(s->h, s->fd, flags);
}

static void on_curl_timeout(uv_timer_t *t)
{
    struct gf_http *h = t->data;
    socket_action(h, CURL_SOCKET_TIMEOUT, 0);
}

/* CURLMOPT_SOCKETFUNCTION: only uv calls and curl_multi_assign (which
 * curl documents as allowed here). */
static int curl_sock_cb(CURL *easy, curl_socket_t fd, int what, void *userp,
                        void *sockp)
{
    (void)easy;
    struct gf_http *h = userp;
    struct gf_http_sock *s = sockp;
    if (what == CURL_POLL_REMOVE) {
        if (s != NULL) {
            /* During curl_multi_cleanup the socket hash is being torn
             * down; only detach while the multi handle is live. */
            if (!h->cleaned)
                curl_multi_assign(h->multi, fd, NULL);
            sock_unlink_close(s);
        }
        return 0;
    }
    if (s == NULL) {
        s = gf_calloc(1, sizeof(*s));
        s->fd = fd;
        s->h = h;
        if (uv_poll_init_socket(h->loop, &s->poll, fd) != 0) {
            gf_free(s);
            return -1;
        }
        s->poll.data = s;
        h->open_handles++;
        gf_list_push_front(&h->socks, &s->link);
        curl_multi_assign(h->multi, fd, s);
    }
    int ev = 0;
    if (what & CURL_POLL_IN)
        ev |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        ev |= UV_WRITABLE;
    uv_poll_start(&s->poll, ev, on_poll);
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: arm or disarm the single uv timer. */
static int curl_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct gf_http *h = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&h->timer);
    else
        uv_timer_start(&h->timer, on_curl_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

int gf_http_new(uv_loop_t *loop, struct gf_clock *clk, struct gf_http **out)
{
    *out = NULL;
    struct gf_http *h = gf_calloc(1, sizeof(*h));
    h->loop = loop;
    h->clk = clk;
    h->multi = curl_multi_init();
    if (h->multi == NULL) {
        gf_free(h);
        return -ENOMEM;
    }
    int rc = uv_timer_init(loop, &h->timer);
    if (rc != 0) {
        curl_multi_cleanup(h->multi);
        gf_free(h);
        return rc;
    }
    h->timer.data = h;
    h->open_handles++;
    uv_idle_init(loop, &h->idle); /* cannot fail */
    h->idle.data = h;
    h->open_handles++;
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, curl_sock_cb);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    *out = h;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Completion                                                          */

static void on_idle(uv_idle_t *i)
{
    struct gf_http *h = i->data;
    uv_idle_stop(i);
    flush(h);
    maybe_finish_close(h);
}

static void idle_start(struct gf_http *h)
{
    uv_idle_start(&h->idle, on_idle);
}

/* Puts a request on the done queue with `err` (unless it is already
 * there); the queue is flushed where no curl function is running. */
static void queue_done(struct gf_http_req *r, int err)
{
    if (r->queued_done)
        return;
    if (r->err == 0)
        r->err = err;
    r->queued_done = true;
    r->qnext = NULL;
    struct gf_http *h = r->h;
    if (h->done_tail != NULL)
        h->done_tail->qnext = r;
    else
        h->done_head = r;
    h->done_tail = r;
    gf_timer_stop(&r->deadline);
    gf_timer_stop(&r->idle);
    idle_start(h);
}

static int curl_err(struct gf_http_req *r, CURLcode c)
{
    switch (c) {
    case CURLE_OK:
        return 0;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_USE_SSL_FAILED:
        return GF_ETLS;
    case CURLE_OPERATION_TIMEDOUT:
        return GF_ETIMEDOUT;
    case CURLE_OUT_OF_MEMORY:
        return -ENOMEM;
    default:
        (void)r;
        return GF_ETRANSPORT;
    }
}

/* Retry-After is either delta-seconds or an HTTP date. */
static uint64_t retry_after(struct gf_http_req *r, const struct gf_clock *clk)
{
    struct curl_header *hd = NULL;
    if (curl_easy_header(r->easy, "Retry-After", 0, CURLH_HEADER, -1, &hd) !=
            CURLHE_OK ||
        hd == NULL || hd->value == NULL)
        return 0;
    int64_t secs = 0;
    if (gf_parse_i64(hd->value, &secs) == 0)
        return secs > 0 && secs < 86400 ? (uint64_t)secs * 1000 : 0;
    time_t when = curl_getdate(hd->value, NULL);
    if (when < 0)
        return 0;
    int64_t now = gf_clock_wall_ms(clk);
    int64_t d = (int64_t)when * 1000 - now;
    return d > 0 && d < 86400000 ? (uint64_t)d : 0;
}

static void deliver(struct gf_http *h, struct gf_http_req *r)
{
    if (r->in_multi) {
        curl_multi_remove_handle(h->multi, r->easy);
        r->in_multi = false;
    }
    struct gf_http_resp resp = {0};
    resp.err = r->err;
    if (resp.err == 0)
        resp.err = curl_err(r, r->cres);
    long code = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
    resp.status = code;
    long ver = 0;
    curl_easy_getinfo(r->easy, CURLINFO_HTTP_VERSION, &ver);
    resp.http_version = ver == CURL_HTTP_VERSION_2_0 ? 2 : (ver ? 1 : 0);
    long nconn = -1;
    curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS, &nconn);
    resp.reused_conn = code != 0 && nconn == 0;
    if (resp.reused_conn)
        h->stats.conns_reused++;
    resp.body = gf_buf_cstr(&r->body);
    resp.body_len = r->body.len;
    resp.retry_after_ms = code != 0 ? retry_after(r, h->clk) : 0;
    /* curl leaves its buffer empty for some failures; its code's text
     * still says more than our class does. */
    if (r->errbuf[0] == '\0' && r->cres != CURLE_OK)
        snprintf(r->errbuf, sizeof(r->errbuf), "%s",
                 curl_easy_strerror(r->cres));
    resp.err_detail = r->local[0] != '\0' ? r->local : r->errbuf;
    if (resp.err == GF_ECANCELED)
        h->stats.canceled++;
    else if (resp.err == GF_ETIMEDOUT)
        h->stats.timeouts++;
    h->stats.completed++;

    gf_list_remove(&r->link);
    h->active--;
    r->origin->active--;

    r->on_done(r->data, &resp);

    curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->hdrs);
    gf_buf_free(&r->body);
    gf_free(r);
}

static void add_now(struct gf_http *h, struct gf_http_req *r)
{
    /* Set here, where no curl function is on the stack (count_origin). */
    if (h->want_maxconnects) {
        h->want_maxconnects = false;
        curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)h->conns_kept);
    }
    CURLMcode mc = curl_multi_add_handle(h->multi, r->easy);
    if (mc != CURLM_OK) {
        snprintf(r->local, sizeof(r->local), "%s", curl_multi_strerror(mc));
        queue_done(r, GF_ETRANSPORT);
        return;
    }
    r->in_multi = true;
}

/* Only ever called with no curl function on the stack. */
static void flush(struct gf_http *h)
{
    if (h->flushing || h->in_curl > 0)
        return;
    h->flushing = true;
    for (;;) {
        struct gf_http_req *r = h->add_head;
        if (r != NULL) {
            h->add_head = r->qnext;
            if (h->add_head == NULL)
                h->add_tail = NULL;
            if (!r->queued_done)
                add_now(h, r);
            continue;
        }
        r = h->done_head;
        if (r == NULL)
            break;
        h->done_head = r->qnext;
        if (h->done_head == NULL)
            h->done_tail = NULL;
        deliver(h, r);
    }
    h->flushing = false;
}

static void check_multi_info(struct gf_http *h)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct gf_http_req *r = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        if (r == NULL)
            continue;
        r->cres = m->data.result;
        queue_done(r, 0);
    }
}

/* ------------------------------------------------------------------ */
/* Requests                                                            */

static void on_idle_timeout(struct gf_timer *t);

static size_t write_cb(char *p, size_t size, size_t nmemb, void *userp)
{
    struct gf_http_req *r = userp;
    size_t n = size * nmemb;
    if (r->queued_done)
        return 0; /* canceled or timed out: make curl stop */
    r->h->stats.bytes_in += n;
    if (!r->status_seen) {
        r->status_seen = true;
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
        if (r->on_data != NULL && r->status >= 200 && r->status < 300)
            r->streaming = true;
        else if (r->on_data != NULL)
            r->body.max = GF_HTTP_ERROR_BODY_MAX;
    }
    if (r->streaming) {
        if (r->idle_ms > 0)
            gf_timer_start(&r->idle, r->idle_ms, on_idle_timeout);
        int rc = r->on_data(r->data, p, n);
        if (rc != 0) {
            r->err = rc < 0 ? rc : GF_ETRANSPORT;
            return 0;
        }
        return r->queued_done ? 0 : n;
    }
    if (r->on_data != NULL) {
        /* A failure answer to a stream: keep what fits of the Status and
         * drop the rest rather than fail the transfer. */
        size_t room = r->body.max - r->body.len;
        gf_buf_append(&r->body, p, n < room ? n : room);
        return n;
    }
    if (gf_buf_append(&r->body, p, n) != 0) {
        /* Our cap, not the server's doing: say so, with the figure. */
        snprintf(r->local, sizeof(r->local),
                 "response body over the client's cap of %zu bytes",
                 r->body.max);
        r->err = GF_E2BIG;
        return 0;
    }
    return n;
}

static void on_deadline(struct gf_timer *t)
{
    struct gf_http_req *r = t->data;
    snprintf(r->local, sizeof(r->local), "request timed out");
    queue_done(r, GF_ETIMEDOUT);
    flush(r->h);
}

static void on_idle_timeout(struct gf_timer *t)
{
    struct gf_http_req *r = t->data;
    snprintf(r->local, sizeof(r->local), "stream idle");
    queue_done(r, GF_ETIMEDOUT);
    flush(r->h);
}

static int set_blob(CURL *e, CURLoption opt, const unsigned char *p, size_t n)
{
    struct curl_blob b = {(void *)p, n, CURL_BLOB_COPY};
    return curl_easy_setopt(e, opt, &b) == CURLE_OK ? 0 : -EINVAL;
}

static int setup_tls(CURL *e, const struct gf_http_tls *t)
{
    if (t == NULL)
        return 0;
    if (t->insecure) {
        /* Rule zero: only reachable when a kubeconfig explicitly asks for
         * insecure-skip-tls-verify on that cluster. */
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (t->ca_pem != NULL &&
        set_blob(e, CURLOPT_CAINFO_BLOB, t->ca_pem, t->ca_pem_len) != 0)
        return -EINVAL;
    if (t->cert_pem != NULL) {
        if (set_blob(e, CURLOPT_SSLCERT_BLOB, t->cert_pem, t->cert_pem_len))
            return -EINVAL;
        curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
    }
    if (t->key_pem != NULL) {
        if (set_blob(e, CURLOPT_SSLKEY_BLOB, t->key_pem, t->key_pem_len))
            return -EINVAL;
        curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
    }
    return 0;
}

static int setup_method(CURL *e, const struct gf_http_req_opts *o)
{
    if (strcmp(o->method, "GET") == 0 && o->body == NULL)
        return curl_easy_setopt(e, CURLOPT_HTTPGET, 1L) == CURLE_OK ? 0
                                                                    : -EINVAL;
    if (strcmp(o->method, "POST") != 0)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, o->method);
    if (o->body != NULL || strcmp(o->method, "GET") != 0) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)o->body_len);
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS,
                         o->body != NULL ? (const char *)o->body : "");
    }
    return 0;
}

/*
 * Counts r against its server. Over HTTP/1.1 (an API server without
 * HTTP/2, kubesim) a connection carries one request at a time, so n
 * writes at once to one server open n connections to it. curl's default
 * cache keeps 4 per transfer in the multi handle at the moment one ends:
 * as a burst drained, it closed the connections the burst had opened,
 * and the next burst paid a TCP and TLS handshake per request again
 * (about 30 new connections a second in a hub redirecting 20 Jobs a
 * second into 3 members). The cache is sized instead to what each server
 * ever had in use at once, summed over the servers (the peaks of
 * different servers come at different times, and a connection serves one
 * server only). curl still closes connections idle for
 * CURLOPT_MAXAGE_CONN (118 s); over HTTP/2 there is one per server.
 */
static void count_origin(struct gf_http *h, struct gf_http_req *r,
                         const char *url)
{
    const char *host = strstr(url, "://");
    host = host != NULL ? host + 3 : url;
    size_t len = (size_t)(host - url) + strcspn(host, "/?#");
    struct gf_http_origin *og = gf_htab_get(&h->origins, url, len);
    if (og == NULL) {
        og = gf_calloc(1, sizeof(*og));
        gf_htab_put(&h->origins, url, len, og);
    }
    r->origin = og;
    if (++og->active <= og->peak)
        return;
    og->peak = og->active;
    h->conns_kept++;
    h->want_maxconnects = true;
}

int gf_http_start(struct gf_http *h, const struct gf_http_req_opts *o,
                  struct gf_http_req **out)
{
    if (out != NULL)
        *out = NULL;
    if (h->closing)
        return GF_ECANCELED;
    if (o->method == NULL || o->url == NULL || o->on_done == NULL)
        return -EINVAL;
    struct gf_http_req *r = gf_calloc(1, sizeof(*r));
    r->h = h;
    r->on_data = o->on_data;
    r->on_done = o->on_done;
    r->data = o->data;
    gf_buf_init(&r->body, o->max_body ? o->max_body : GF_HTTP_DEFAULT_MAX_BODY);
    r->easy = curl_easy_init();
    if (r->easy == NULL) {
        gf_free(r);
        return -ENOMEM;
    }
    CURL *e = r->easy;
    int rc = -EINVAL;
    if (curl_easy_setopt(e, CURLOPT_URL, o->url) != CURLE_OK)
        goto fail;
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    /* Wait for an HTTP/2 connection in progress rather than opening a
     * second one: many requests to one API server share one connection. */
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    /* A peer that vanished (host down, cable cut, NAT entry dropped) is
     * found by TCP keepalive within about a minute even on a long quiet
     * watch: silence at the HTTP level is normal, so there is no
     * client-side idle timer for watches (see docs/kubeclient.md). */
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 30L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 10L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    if (setup_tls(e, o->tls) != 0 || setup_method(e, o) != 0)
        goto fail;
    /* curl would otherwise send "Expect: 100-continue" on large bodies
     * and stall a round trip waiting for the API server's interim 100. */
    r->hdrs = curl_slist_append(NULL, "Expect:");
    for (const char *const *hd = o->headers; hd != NULL && *hd != NULL; hd++) {
        struct curl_slist *n = curl_slist_append(r->hdrs, *hd);
        if (n == NULL) {
            rc = -ENOMEM;
            goto fail;
        }
        r->hdrs = n;
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);

    gf_timer_init(h->clk, &r->deadline);
    r->deadline.data = r;
    gf_timer_init(h->clk, &r->idle);
    r->idle.data = r;
    if (o->timeout_ms > 0)
        gf_timer_start(&r->deadline, o->timeout_ms, on_deadline);
    if (o->on_data != NULL && o->idle_timeout_ms > 0) {
        r->idle_ms = o->idle_timeout_ms;
        gf_timer_start(&r->idle, r->idle_ms, on_idle_timeout);
    }

    gf_list_push_front(&h->reqs, &r->link);
    h->active++;
    count_origin(h, r, o->url);
    h->stats.started++;
    if (h->in_curl > 0) {
        if (h->add_tail != NULL)
            h->add_tail->qnext = r;
        else
            h->add_head = r;
        h->add_tail = r;
    } else {
        add_now(h, r);
    }
    if (out != NULL)
        *out = r;
    return 0;

fail:
    curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->hdrs);
    gf_buf_free(&r->body);
    gf_free(r);
    return rc;
}

void gf_http_cancel(struct gf_http_req *r)
{
    if (r == NULL)
        return;
    snprintf(r->local, sizeof(r->local), "canceled");
    queue_done(r, GF_ECANCELED);
}

char *gf_http_body_take(struct gf_http_req *r, size_t *len)
{
    /* deliver() frees r->body after the callback: emptied here, that
     * frees nothing, and the bytes are the caller's. */
    *len = r->body.len;
    return gf_buf_steal(&r->body);
}

uv_loop_t *gf_http_loop(const struct gf_http *h)
{
    return h->loop;
}

size_t gf_http_active(const struct gf_http *h)
{
    return h->active;
}

void gf_http_stats(const struct gf_http *h, struct gf_http_stats *out)
{
    *out = h->stats;
}

/* ------------------------------------------------------------------ */
/* Close                                                               */

static void maybe_finish_close(struct gf_http *h)
{
    if (!h->closing || h->cleaned || h->active > 0 || h->flushing ||
        h->in_curl > 0)
        return;
    h->cleaned = true;
    /* Closes the cached connections; curl reports each socket removal
     * through the socket callback, which closes its poll handle. */
    h->in_curl++;
    curl_multi_cleanup(h->multi);
    h->in_curl--;
    h->multi = NULL;
    struct gf_list *n;
    while ((n = gf_list_first(&h->socks)) != NULL)
        sock_unlink_close(GF_LIST_ENTRY(n, struct gf_http_sock, link));
    uv_timer_stop(&h->timer);
    uv_idle_stop(&h->idle);
    uv_close((uv_handle_t *)&h->timer, handle_closed);
    uv_close((uv_handle_t *)&h->idle, handle_closed);
}

void gf_http_close(struct gf_http *h, gf_http_close_cb cb, void *data)
{
    GF_BUG_ON(h->closing);
    h->closing = true;
    h->close_cb = cb;
    h->close_data = data;
    struct gf_list *n;
    for (n = gf_list_first(&h->reqs); n != NULL;
         n = gf_list_next(&h->reqs, n)) {
        struct gf_http_req *r = GF_LIST_ENTRY(n, struct gf_http_req, link);
        if (!r->queued_done) {
            snprintf(r->local, sizeof(r->local), "canceled");
            queue_done(r, GF_ECANCELED);
        }
    }
    flush(h);
    maybe_finish_close(h);
    if (!h->cleaned)
        idle_start(h);
}

int gf_http_escape(struct gf_buf *out, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
                    c == '_' || c == '~';
        int rc;
        if (keep) {
            rc = gf_buf_putc(out, (char)c);
        } else {
            char enc[3] = {'%', hex[c >> 4], hex[c & 15]};
            rc = gf_buf_append(out, enc, 3);
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}
