/*
 * httpd: see httpd.h for the contract; the request path is httpd_proto.c.
 *
 * Data path of one connection:
 *
 *   socket -> on_read -> conn->in -> gf_httpd_proto_step (one request at a
 *   time) -> conn->out -> uv_write (one write per read's worth of answers)
 *
 * A connection keeps unparsed bytes in conn->in only while it is blocked
 * (its queued answers are over OUT_HIGH); reading stops then, and resumes
 * from the write callback once the client has taken enough.
 *
 * Closing. A connection that ends normally (after a "Connection: close"
 * answer) is shut down after its queued writes, so the last answer
 * arrives; one that fails, times out, or is closed with the server is
 * closed at once. The server counts its open handles (listener,
 * connections, refused sockets) and, when the last has closed, closes one
 * more (an idle handle that was never started) whose close callback calls
 * the user: libuv runs close callbacks queued by a close callback on the
 * next turn, so by then the timer of the server's own clock, closed
 * earlier, is gone too.
 */
#include "controller/httpd.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/htab.h"
#include "common/list.h"
#include "common/log.h"
#include "controller/httpd_proto.h"
#include "kubeclient/uvclock.h"

#define READ_CHUNK (64u << 10)
/* Stop parsing a connection past this many bytes of unsent answers. */
#define OUT_HIGH (1u << 20)
/* Unparsed input is kept only while blocked, and reading stops at this. */
#define IN_MAX ((size_t)2 * READ_CHUNK)
/* Answers are bounded by the handler cap; this only has to be finite. */
#define OUT_MAX ((size_t)1 << 40)

struct conn {
    uv_tcp_t tcp;
    struct gf_httpd *h;
    struct gf_list link; /* in h->conns */
    struct gf_httpd_proto proto;
    struct gf_buf in;  /* bytes read, not yet parsed (only while blocked) */
    struct gf_buf out; /* answers not yet handed to uv_write */
    size_t queued;     /* bytes in uv_write requests not yet completed */
    struct gf_timer idle;
    uv_shutdown_t shutdown;
    bool reading, shutting, closing;
    bool peer_done; /* the client sent EOF (a half-close) */
};

struct gf_httpd {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_idle_t fin; /* never started: its close is the last step */
    struct gf_clock own_clock;
    bool own_clock_live;
    struct gf_clock *clk;
    struct gf_htab routes; /* path -> struct gf_httpd_route, owned */
    struct gf_list conns;  /* struct conn */
    size_t n_conns, max_conns;
    uint64_t idle_ms;
    int port;
    int open_handles; /* listener + connections + refused sockets */
    bool closing, listener_open, at_limit, ran;
    void (*close_cb)(void *data);
    void *close_data;
    struct gf_log_ctx lc;
    char rbuf[READ_CHUNK]; /* one read at a time on the loop thread */
};

struct wreq {
    uv_write_t req;
    struct conn *c;
    char *data; /* owned (stolen from conn->out) */
    size_t len;
};

static void conn_close(struct conn *c);
static void conn_pump(struct conn *c);
static void on_idle_timeout(struct gf_timer *t);
static void set_reading(struct conn *c, bool on);
static void maybe_finish(struct gf_httpd *h);

/* ---- address ----------------------------------------------------------- */

static int parse_port(const char *s, int *port)
{
    if (*s == '\0' || strlen(s) > 5)
        return -EINVAL;
    for (const char *q = s; *q != '\0'; q++) {
        if (*q < '0' || *q > '9')
            return -EINVAL;
    }
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < 0 || v > 65535)
        return -EINVAL;
    *port = (int)v;
    return 0;
}

/* "HOST:PORT", ":PORT", "[V6]:PORT" -> a socket address. */
static int parse_addr(const char *addr, struct sockaddr_storage *ss)
{
    const char *colon = addr != NULL ? strrchr(addr, ':') : NULL;
    if (colon == NULL)
        return -EINVAL;
    int port;
    if (parse_port(colon + 1, &port) != 0)
        return -EINVAL;
    char host[64];
    size_t hlen = (size_t)(colon - addr);
    if (hlen >= sizeof(host))
        return -EINVAL;
    memcpy(host, addr, hlen);
    host[hlen] = '\0';
    if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
        host[hlen - 1] = '\0';
        return uv_ip6_addr(host + 1, port, (struct sockaddr_in6 *)ss) == 0
                   ? 0
                   : -EINVAL;
    }
    if (hlen == 0)
        snprintf(host, sizeof(host), "0.0.0.0");
    else if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    return uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0 ? 0 : -EINVAL;
}

/* ---- writing ----------------------------------------------------------- */

static void on_write(uv_write_t *req, int status)
{
    struct wreq *w = req->data;
    struct conn *c = w->c;
    c->queued -= w->len;
    gf_free(w->data);
    gf_free(w);
    if (c->closing)
        return;
    if (status < 0) {
        GF_LOG(&c->h->lc, GF_LOG_DEBUG, "write failed", "error=%s",
               uv_strerror(status));
        conn_close(c);
        return;
    }
    /* An answer reached the client: that is progress. */
    gf_timer_start(&c->idle, c->h->idle_ms, on_idle_timeout);
    if (!c->shutting && c->queued + c->out.len < OUT_HIGH)
        conn_pump(c);
}

/* Hands what out holds to libuv in one write. */
static int conn_flush(struct conn *c)
{
    if (c->out.len == 0)
        return 0;
    struct wreq *w = gf_calloc(1, sizeof(*w));
    w->c = c;
    w->len = c->out.len;
    w->data = gf_buf_steal(&c->out);
    w->req.data = w;
    uv_buf_t b = uv_buf_init(w->data, (unsigned)w->len);
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc != 0) {
        GF_LOG(&c->h->lc, GF_LOG_DEBUG, "write refused", "error=%s",
               uv_strerror(rc));
        gf_free(w->data);
        gf_free(w);
        return rc;
    }
    c->queued += w->len;
    return 0;
}

/* ---- connections ------------------------------------------------------- */

static void on_conn_closed(uv_handle_t *hd)
{
    struct conn *c = hd->data;
    struct gf_httpd *h = c->h;
    gf_list_remove(&c->link);
    h->n_conns--;
    if (h->n_conns < h->max_conns)
        h->at_limit = false;
    gf_httpd_proto_free(&c->proto);
    gf_buf_free(&c->in);
    gf_buf_free(&c->out);
    gf_free(c);
    h->open_handles--;
    maybe_finish(h);
}

static void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    c->reading = false;
    gf_timer_stop(&c->idle);
    /* Queued writes are cancelled: their callbacks run before ours. */
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    conn_close(req->data);
}

/* Ends the connection after its queued answers (a FIN, not a reset). */
static void conn_shutdown(struct conn *c)
{
    if (c->shutting || c->closing)
        return;
    c->shutting = true;
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
    c->shutdown.data = c;
    /* The idle timer stays armed: a client that never reads the last
     * answer is closed at its deadline. */
    if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
        conn_close(c);
}

static void on_idle_timeout(struct gf_timer *t)
{
    struct conn *c = t->data;
    GF_LOG(&c->h->lc, GF_LOG_DEBUG, "idle connection closed", "after_ms=%llu",
           (unsigned long long)c->h->idle_ms);
    conn_close(c);
}

static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = hd->data;
    (void)suggested;
    /* One shared buffer: read callbacks run one at a time and take all. */
    *buf = uv_buf_init(c->h->rbuf, sizeof(c->h->rbuf));
}

static void on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf)
{
    struct conn *c = stream->data;
    if (n == 0 || c->closing)
        return;
    if (n == UV_EOF) {
        /*
         * A half-close ("printf 'GET /healthz ...' | nc"): the requests
         * already sent are still answered, then the connection ends.
         */
        c->peer_done = true;
        set_reading(c, false);
        conn_pump(c);
        return;
    }
    if (n < 0) {
        conn_close(c); /* a reset: nobody is left to answer */
        return;
    }
    if (gf_buf_append(&c->in, buf->base, (size_t)n) != 0) {
        conn_close(c); /* cannot happen: reading stops well before */
        return;
    }
    conn_pump(c);
}

static void set_reading(struct conn *c, bool on)
{
    if (on == c->reading)
        return;
    int rc = on ? uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read)
                : uv_read_stop((uv_stream_t *)&c->tcp);
    if (rc != 0) {
        conn_close(c);
        return;
    }
    c->reading = on;
}

/* Answers what can be answered, writes it, and sets read backpressure. */
static void conn_pump(struct conn *c)
{
    size_t off = 0;
    while (off < c->in.len && c->queued + c->out.len < OUT_HIGH &&
           !gf_httpd_proto_closed(&c->proto))
        off += gf_httpd_proto_step(&c->proto, c->in.data + off, c->in.len - off,
                                   &c->out);
    gf_buf_consume(&c->in, off);
    if (conn_flush(c) != 0) {
        conn_close(c);
        return;
    }
    if (gf_httpd_proto_closed(&c->proto) || (c->peer_done && c->in.len == 0)) {
        conn_shutdown(c);
        return;
    }
    bool blocked = c->queued >= OUT_HIGH || c->in.len >= READ_CHUNK;
    set_reading(c, !blocked && !c->peer_done);
}

static void on_refused_closed(uv_handle_t *hd)
{
    struct gf_httpd *h = hd->data;
    gf_free(hd);
    h->open_handles--;
    maybe_finish(h);
}

/* Over the limit: accept (or the listener keeps waking us) and close. */
static void refuse(struct gf_httpd *h, uv_stream_t *server)
{
    uv_tcp_t *t = gf_malloc(sizeof(*t));
    if (uv_tcp_init(h->loop, t) != 0) {
        gf_free(t);
        return;
    }
    t->data = h;
    h->open_handles++;
    (void)uv_accept(server, (uv_stream_t *)t);
    uv_close((uv_handle_t *)t, on_refused_closed);
    if (!h->at_limit) {
        /* Once per episode, not once per connection. */
        h->at_limit = true;
        GF_LOG(&h->lc, GF_LOG_WARN, "connection limit reached", "limit=%zu",
               h->max_conns);
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    struct gf_httpd *h = server->data;
    if (status < 0 || h->closing)
        return;
    h->ran = true;
    if (h->n_conns >= h->max_conns) {
        refuse(h, server);
        return;
    }
    struct conn *c = gf_calloc(1, sizeof(*c));
    if (uv_tcp_init(h->loop, &c->tcp) != 0) {
        gf_free(c);
        return;
    }
    c->h = h;
    c->tcp.data = c;
    gf_httpd_proto_init(&c->proto, &h->routes);
    gf_buf_init(&c->in, IN_MAX);
    gf_buf_init(&c->out, OUT_MAX);
    gf_timer_init(h->clk, &c->idle);
    c->idle.data = c;
    h->open_handles++;
    h->n_conns++;
    gf_list_push_back(&h->conns, &c->link);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    gf_timer_start(&c->idle, h->idle_ms, on_idle_timeout);
    set_reading(c, true);
}

/* ---- server ------------------------------------------------------------ */

static void on_fin_closed(uv_handle_t *hd)
{
    struct gf_httpd *h = hd->data;
    if (h->close_cb != NULL)
        h->close_cb(h->close_data);
    gf_htab_free_all(&h->routes, gf_free);
    gf_free(h);
}

static void maybe_finish(struct gf_httpd *h)
{
    if (h->closing && h->open_handles == 0 &&
        !uv_is_closing((uv_handle_t *)&h->fin))
        uv_close((uv_handle_t *)&h->fin, on_fin_closed);
}

static void on_listener_closed(uv_handle_t *hd)
{
    struct gf_httpd *h = hd->data;
    h->open_handles--;
    maybe_finish(h);
}

/* Closes whatever is open; the struct goes in on_fin_closed. */
static void server_teardown(struct gf_httpd *h)
{
    h->closing = true;
    if (h->listener_open) {
        h->listener_open = false;
        uv_close((uv_handle_t *)&h->listener, on_listener_closed);
    }
    struct gf_list *pos, *tmp;
    GF_LIST_FOREACH_SAFE(pos, tmp, &h->conns)
    {
        conn_close(GF_LIST_ENTRY(pos, struct conn, link));
    }
    if (h->own_clock_live) {
        h->own_clock_live = false;
        gf_clock_close(&h->own_clock);
    }
    maybe_finish(h);
}

static int server_listen(struct gf_httpd *h, const struct sockaddr *sa)
{
    int rc = uv_tcp_init(h->loop, &h->listener);
    if (rc != 0)
        return rc;
    h->listener.data = h;
    h->listener_open = true;
    h->open_handles++;
    rc = uv_tcp_bind(&h->listener, sa, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&h->listener, 128, on_connection);
    if (rc != 0)
        return rc;
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    rc = uv_tcp_getsockname(&h->listener, (struct sockaddr *)&bound, &len);
    if (rc != 0)
        return rc;
    h->port = bound.ss_family == AF_INET6
                  ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                  : ntohs(((struct sockaddr_in *)&bound)->sin_port);
    return 0;
}

int gf_httpd_new(uv_loop_t *loop, const char *addr, struct gf_httpd **out)
{
    *out = NULL;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (parse_addr(addr, &ss) != 0)
        return -EINVAL;
    struct gf_httpd *h = gf_calloc(1, sizeof(*h));
    h->loop = loop;
    h->lc.comp = "httpd";
    h->max_conns = GF_HTTPD_MAX_CONNS;
    h->idle_ms = GF_HTTPD_IDLE_TIMEOUT_MS;
    gf_htab_init(&h->routes, GF_HTAB_OWN_KEYS);
    /* uv_idle_init cannot fail; the handle anchors the final close. */
    GF_BUG_ON(uv_idle_init(loop, &h->fin) != 0);
    h->fin.data = h;
    int rc = gf_clock_init_uv(&h->own_clock, loop);
    if (rc == 0) {
        h->own_clock_live = true;
        h->clk = &h->own_clock;
        rc = server_listen(h, (const struct sockaddr *)&ss);
    }
    if (rc != 0) {
        GF_LOG(&h->lc, GF_LOG_ERROR, "cannot listen", "addr=%s error=%s", addr,
               uv_strerror(rc));
        server_teardown(h);
        return rc;
    }
    GF_LOG(&h->lc, GF_LOG_INFO, "listening", "addr=%s port=%d", addr, h->port);
    *out = h;
    return 0;
}

int gf_httpd_route(struct gf_httpd *h, const char *path, gf_httpd_handler fn,
                   void *data)
{
    if (path == NULL || path[0] != '/' || strchr(path, '?') != NULL ||
        fn == NULL)
        return -EINVAL;
    if (gf_htab_get_str(&h->routes, path) != NULL)
        return -EEXIST;
    struct gf_httpd_route *r = gf_malloc(sizeof(*r));
    r->fn = fn;
    r->data = data;
    gf_htab_put_str(&h->routes, path, r);
    return 0;
}

int gf_httpd_port(const struct gf_httpd *h)
{
    return h->port;
}

size_t gf_httpd_conns(const struct gf_httpd *h)
{
    return h->n_conns;
}

void gf_httpd_set_idle_timeout_ms(struct gf_httpd *h, uint64_t ms)
{
    GF_BUG_ON(ms == 0);
    h->idle_ms = ms;
}

void gf_httpd_set_clock(struct gf_httpd *h, struct gf_clock *clk)
{
    GF_BUG_ON(h->ran || h->n_conns > 0);
    if (h->own_clock_live) {
        h->own_clock_live = false;
        gf_clock_close(&h->own_clock);
    }
    h->clk = clk;
}

void gf_httpd_close(struct gf_httpd *h, void (*cb)(void *data), void *data)
{
    GF_BUG_ON(h->closing);
    h->close_cb = cb;
    h->close_data = data;
    GF_LOG(&h->lc, GF_LOG_INFO, "closing", "port=%d conns=%zu", h->port,
           h->n_conns);
    server_teardown(h);
}
