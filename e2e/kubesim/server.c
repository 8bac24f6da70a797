/*
 * server: HTTP/1.1 over TLS on libuv, for the simulated API servers.
 *
 * Data path of one connection:
 *
 *   socket -> read_cb -> BIO_write(rbio) -> SSL_read -> conn->in
 *          -> http_parser (paused after each complete request)
 *          -> dispatch: auth, faults, handler
 *   handler -> reply/stream_* -> SSL_write -> wbio -> uv_write -> socket
 *
 * Only one request per connection is in progress at a time: the parser
 * is paused in on_message_complete and resumed (from an idle handle, never
 * from inside a handler callback) when the response has been written.
 * That is what makes pipelining safe and keeps the handler free of
 * re-entrancy.
 */
#include "e2e/kubesim/server.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>
#include <openssl/bio.h>
#include <openssl/err.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/list.h"
#include "common/log.h"

#define DEFAULT_MAX_BODY (3u << 20)
#define DEFAULT_MAX_HEADER (1u << 20)
#define DEFAULT_MAX_QUEUED (8u << 20)
#define READ_CHUNK (64u << 10)
/* Impersonate-Group headers kept per request (kubectl sends one each). */
#define MAX_IMP_GROUPS 32
/*
 * Output buffers hold what the handler gave us (already bounded by the
 * store); the cap only has to be finite. Not SIZE_MAX: gf_buf computes
 * max + 1.
 */
#define OUT_MAX ((size_t)1 << 40)
/*
 * TLS output is coalesced: records collect in the write BIO and go to the
 * socket in one write at the end of the loop turn (a burst of watch
 * events costs one syscall, not one each), or at once past this size.
 */
#define FLUSH_NOW (256u << 10)
/*
 * Plaintext is sealed into TLS records of this size (the protocol's
 * largest): a backlog of small watch events goes out as a few big records,
 * as the API server's buffered writer sends one, rather than one record
 * per event, which would cost the client two reads per event.
 */
#define TLS_RECORD 16384u
#define KEEP_BUF (64u << 10)

enum conn_state {
    CONN_IDLE,      /* parsing, no request in progress */
    CONN_BUSY,      /* a request is delayed or being served */
    CONN_STREAMING, /* a chunked response is open */
};

struct conn {
    uv_tcp_t tcp;
    struct gf_ks_server *srv;
    struct gf_list link; /* in srv->conns */
    SSL *ssl;            /* NULL for plain HTTP */
    BIO *rbio, *wbio;
    bool handshake_done;
    http_parser parser;
    enum conn_state state;
    /*
     * closing: no more HTTP output, close under way; io_done: the handle
     * is being shut down or closed, nothing more may be queued on it;
     * failed: a write failed inside a handler callback, close at the next
     * loop turn (never re-enter the handler with a cancel).
     */
    bool closing, io_done, failed;
    bool close_after; /* the reply was the last (Connection: close) */
    bool reading, resume, blackhole, drop, stream_ended;
    bool flush_pending; /* output waits in plain or wbio for the next turn */
    bool write_blocked; /* parsing waits for the client to read replies */
    bool stream_behind; /* stream_write said 1: writable() owed */
    bool writable_due;  /* ... and the queue has drained: call it */
    bool keep_alive;
    /* The request being parsed; reset after each response. */
    struct gf_buf url, body, in;
    struct gf_buf xhdr;  /* extra headers of the next response */
    struct gf_buf plain; /* TLS plaintext not yet sealed into records */
    char *hname;         /* the header whose value is being read */
    struct gf_buf hval;
    char *authz, *ctype, *accept, *agent; /* owned header values */
    char *imp_user;                       /* Impersonate-User, owned */
    char **imp_groups; /* Impersonate-Group values, owned, NULL-ended */
    size_t n_imp_groups;
    bool expect_continue;
    size_t header_bytes;
    bool in_value, too_big, msg_done;
    const struct gf_ks_principal *who; /* borrowed from auth */
    struct gf_ks_api_out out;
    struct gf_ks_api_call *call;
    struct gf_timer delay; /* latency fault */
    uv_shutdown_t shutdown;
};

struct gf_ks_server {
    struct gf_ks_server_opts o;
    char *name;
    struct gf_log_ctx lc;
    uv_tcp_t *listener; /* NULL while paused; freed in its close callback */
    struct sockaddr_in addr;
    struct gf_timer relisten; /* ends a pause */
    uv_idle_t idle;
    uv_check_t check; /* the same work, right after the poll phase */
    bool idle_active, closing;
    int open_handles; /* listener + idle + check + connections */
    int port;
    struct gf_list conns; /* struct conn */
    size_t n_conns;
    struct gf_ks_server_stats stats;
    char rbuf[READ_CHUNK]; /* one read at a time on the loop thread */
};

static struct conn *conn_at(struct gf_list *l)
{
    return l != NULL ? GF_LIST_ENTRY(l, struct conn, link) : NULL;
}

static struct conn *first_conn(const struct gf_ks_server *s)
{
    return conn_at(gf_list_first(&s->conns));
}

static struct conn *next_conn(const struct gf_ks_server *s,
                              const struct conn *c)
{
    return conn_at(gf_list_next(&s->conns, &c->link));
}

struct wreq {
    uv_write_t req;
    size_t len;
    char data[];
};

static void conn_close(struct conn *c, bool reset);
static void conn_pump(struct conn *c);
static void conn_schedule_resume(struct conn *c);
static void schedule_idle(struct gf_ks_server *s);

/* ---- small helpers ----------------------------------------------------- */

static const char *reason_phrase(int code)
{
    switch (code) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 406:
        return "Not Acceptable";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 413:
        return "Request Entity Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Entity";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Unknown";
    }
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/*
 * Percent-decodes the path part of a request target in place. Returns
 * false for a malformed escape or an encoded NUL or slash (which the API
 * server refuses as well, since they change what a path names).
 */
static bool decode_path(char *p)
{
    char *w = p;
    for (const char *r = p; *r != '\0'; r++) {
        if (*r != '%') {
            *w++ = *r;
            continue;
        }
        int hi = hexval(r[1]);
        int lo = hi >= 0 ? hexval(r[2]) : -1;
        if (lo < 0)
            return false;
        char ch = (char)(hi * 16 + lo);
        if (ch == '\0' || ch == '/')
            return false;
        *w++ = ch;
        r += 2;
    }
    *w = '\0';
    return true;
}

/* ---- output ------------------------------------------------------------ */

static size_t queued_bytes(const struct conn *c);

static void on_write(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    struct conn *c = req->data;
    gf_free(w);
    if (status < 0 && status != UV_ECANCELED && !c->io_done) {
        GF_LOG(&c->srv->lc, GF_LOG_DEBUG, "write failed", "error=%s",
               uv_strerror(status));
        conn_close(c, false);
        return;
    }
    /* Hysteresis: resume at half the cap, not at every drained byte. */
    if (c->write_blocked && !c->io_done &&
        queued_bytes(c) <= c->srv->o.max_queued / 2) {
        c->write_blocked = false;
        conn_schedule_resume(c);
    }
    /* A stream that was behind goes on once most of it is read; from the
     * idle turn, not from inside libuv's write callback. */
    if (c->stream_behind && !c->io_done &&
        queued_bytes(c) <= c->srv->o.max_queued / 16) {
        c->stream_behind = false;
        c->writable_due = true;
        schedule_idle(c->srv);
    }
}

/* Takes a filled wreq and queues it on the socket. */
static int queue_write(struct conn *c, struct wreq *w)
{
    if (c->io_done || c->failed) {
        gf_free(w);
        return UV_ECANCELED;
    }
    w->req.data = c;
    uv_buf_t b = uv_buf_init(w->data, (unsigned)w->len);
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc < 0) {
        gf_free(w);
        /* Closed at the next turn: we may be inside a handler callback. */
        c->failed = true;
        conn_schedule_resume(c);
    }
    return rc;
}

/* Queues bytes for the socket as they are (ciphertext or plain HTTP). */
static int write_raw(struct conn *c, const char *data, size_t len)
{
    if (len == 0)
        return 0;
    struct wreq *w = gf_malloc(sizeof(*w) + len);
    memcpy(w->data, data, len);
    w->len = len;
    return queue_write(c, w);
}

/* Turns plaintext into TLS records in the write BIO. */
static int write_records(struct conn *c, const char *p, size_t len)
{
    while (len > 0) {
        /* Memory BIOs never block, so SSL_write takes everything. */
        int chunk = len > INT_MAX ? INT_MAX : (int)len;
        int n = SSL_write(c->ssl, p, chunk);
        if (n <= 0) {
            ERR_clear_error();
            c->failed = true;
            conn_schedule_resume(c);
            return GF_ETLS;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Seals the collected plaintext. */
static int seal_tls(struct conn *c)
{
    int rc = write_records(c, c->plain.data, c->plain.len);
    gf_buf_reset(&c->plain);
    return rc;
}

/* Moves everything OpenSSL has produced into the socket queue. */
static int flush_tls(struct conn *c)
{
    int rc = seal_tls(c);
    if (rc != 0)
        return rc;
    size_t pending;
    while ((pending = BIO_ctrl_pending(c->wbio)) > 0) {
        struct wreq *w = gf_malloc(sizeof(*w) + pending);
        int n = BIO_read(c->wbio, w->data, (int)pending);
        if (n <= 0) {
            gf_free(w);
            return GF_ETLS;
        }
        w->len = (size_t)n;
        rc = queue_write(c, w);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Sends plaintext HTTP bytes: through TLS when the connection has it. */
static int send_bytes(struct conn *c, const char *data, size_t len)
{
    if (c->closing || c->failed)
        return UV_ECANCELED;
    if (c->ssl == NULL)
        return write_raw(c, data, len);
    int rc = 0;
    while (len > 0 && rc == 0) {
        if (c->plain.len == 0 && len >= TLS_RECORD) {
            /* Whole records of a big reply (a LIST page) need no copy. */
            size_t whole = len - len % TLS_RECORD;
            rc = write_records(c, data, whole);
            data += whole;
            len -= whole;
            continue;
        }
        size_t take = TLS_RECORD - c->plain.len;
        take = take < len ? take : len;
        rc = gf_buf_append(&c->plain, data, take);
        data += take;
        len -= take;
        if (rc == 0 && c->plain.len == TLS_RECORD)
            rc = seal_tls(c);
    }
    if (rc == 0 && BIO_ctrl_pending(c->wbio) >= FLUSH_NOW)
        rc = flush_tls(c);
    if (rc != 0)
        return rc;
    if ((c->plain.len > 0 || BIO_ctrl_pending(c->wbio) > 0) &&
        !c->flush_pending) {
        c->flush_pending = true;
        schedule_idle(c->srv);
    }
    return 0;
}

static size_t queued_bytes(const struct conn *c)
{
    size_t n = uv_stream_get_write_queue_size((const uv_stream_t *)&c->tcp);
    n += c->plain.len;
    if (c->wbio != NULL)
        n += BIO_ctrl_pending(c->wbio);
    return n;
}

static void put_header(struct conn *c, struct gf_buf *h, int code,
                       const char *ctype, int retry_after)
{
    gf_buf_printf(h, "HTTP/1.1 %d %s\r\n", code, reason_phrase(code));
    gf_buf_puts(h, "Cache-Control: no-cache, private\r\n");
    if (ctype != NULL)
        gf_buf_printf(h, "Content-Type: %s\r\n", ctype);
    if (retry_after > 0)
        gf_buf_printf(h, "Retry-After: %d\r\n", retry_after);
    if (!c->keep_alive)
        gf_buf_puts(h, "Connection: close\r\n");
    gf_buf_append(h, c->xhdr.data, c->xhdr.len);
    gf_buf_reset(&c->xhdr);
}

static void out_header(void *ctx, const char *name, const char *value)
{
    struct conn *c = ctx;
    /* Values come from the API layer; a CR or LF would split the header. */
    if (strpbrk(value, "\r\n") == NULL)
        gf_buf_printf(&c->xhdr, "%s: %s\r\n", name, value);
}

/* Request-scoped state goes; the connection stays. */
/*
 * Gives back the memory of an empty buffer that grew large (one big
 * request must not pin megabytes for the life of a keep-alive connection).
 */
static void shrink(struct gf_buf *b)
{
    if (b->len == 0 && b->cap > KEEP_BUF) {
        size_t max = b->max;
        gf_buf_free(b);
        gf_buf_init(b, max);
    }
}

static void request_reset(struct conn *c)
{
    gf_buf_reset(&c->url);
    gf_buf_reset(&c->body);
    shrink(&c->body);
    gf_buf_reset(&c->hval);
    GF_FREE(c->hname);
    GF_FREE(c->authz);
    GF_FREE(c->ctype);
    GF_FREE(c->imp_user);
    for (size_t i = 0; i < c->n_imp_groups; i++)
        gf_free(c->imp_groups[i]);
    GF_FREE(c->imp_groups);
    c->n_imp_groups = 0;
    GF_FREE(c->accept);
    GF_FREE(c->agent);
    c->expect_continue = false;
    c->header_bytes = 0;
    c->in_value = c->too_big = c->msg_done = false;
    c->stream_ended = false;
}

/*
 * Ends the current request: the next one may be parsed. The request's
 * strings stay valid (the handler may still be running); they are reset
 * when the next message begins.
 */
static void request_done(struct conn *c)
{
    c->call = NULL;
    c->stream_behind = c->writable_due = false;
    c->state = CONN_IDLE;
    /* Safe: the parser is not running while a request is being served. */
    shrink(&c->in);
    if (c->closing)
        return;
    /* Closed at the next turn: we may be inside a handler callback. */
    if (c->drop || c->failed) {
        c->failed = true;
        c->state = CONN_BUSY;
    } else if (!c->keep_alive) {
        /* Not failed: the reply must still go out before the close. */
        c->close_after = true;
        c->state = CONN_BUSY;
    }
    conn_schedule_resume(c);
}

static void send_full(struct conn *c, int code, const char *ctype,
                      const char *body, size_t len, int retry_after)
{
    struct gf_buf h = GF_BUF_INIT(OUT_MAX);
    put_header(c, &h, code, ctype, retry_after);
    gf_buf_printf(&h, "Content-Length: %zu\r\n\r\n", len);
    /* A HEAD response has the GET's headers and no body (RFC 9110). */
    if (c->parser.method == HTTP_HEAD)
        len = 0;
    /* Small bodies go in the same TLS record as the header. */
    if (len <= 16384)
        gf_buf_append(&h, body, len);
    int rc = send_bytes(c, h.data, h.len);
    if (rc == 0 && len > 16384)
        send_bytes(c, body, len);
    gf_buf_free(&h);
}

static void out_reply(void *ctx, int code, const char *ctype, const char *body,
                      size_t len)
{
    struct conn *c = ctx;
    send_full(c, code, ctype, body, len, 0);
    request_done(c);
}

static void out_stream_begin(void *ctx, int code, const char *ctype)
{
    struct conn *c = ctx;
    struct gf_buf h = GF_BUF_INIT(OUT_MAX);
    put_header(c, &h, code, ctype, 0);
    gf_buf_puts(&h, "Transfer-Encoding: chunked\r\n\r\n");
    send_bytes(c, h.data, h.len);
    gf_buf_free(&h);
    c->state = CONN_STREAMING;
    c->srv->stats.streams++;
}

static int out_stream_write(void *ctx, const char *data, size_t len)
{
    struct conn *c = ctx;
    if (c->closing || c->drop || c->blackhole || c->failed)
        return GF_ECANCELED;
    if (len == 0)
        return 0; /* an empty chunk would end the stream */
    if (queued_bytes(c) + len > c->srv->o.max_queued) {
        /* The client cannot keep up: drop it, as the API server does. */
        c->drop = true;
        c->srv->stats.dropped++;
        GF_LOG(&c->srv->lc, GF_LOG_WARN, "slow watcher dropped",
               "user=%s queued=%zu", c->who != NULL ? c->who->user : "",
               queued_bytes(c));
        return GF_E2BIG;
    }
    char head[24];
    int n = snprintf(head, sizeof(head), "%zx\r\n", len);
    int rc;
    /* One watch event is usually small: frame it without a heap copy. */
    char small[4096];
    if ((size_t)n + len + 2 <= sizeof(small)) {
        snprintf(small, sizeof(small), "%s", head);
        memcpy(small + n, data, len);
        small[(size_t)n + len] = '\r';
        small[(size_t)n + len + 1] = '\n';
        rc = send_bytes(c, small, (size_t)n + len + 2);
    } else {
        rc = send_bytes(c, head, (size_t)n);
        if (rc == 0)
            rc = send_bytes(c, data, len);
        if (rc == 0)
            rc = send_bytes(c, "\r\n", 2);
    }
    if (rc != 0)
        return GF_ETRANSPORT;
    if (c->srv->o.writable != NULL &&
        queued_bytes(c) >= c->srv->o.max_queued / 4) {
        c->stream_behind = true;
        return 1;
    }
    return 0;
}

static void out_stream_end(void *ctx)
{
    struct conn *c = ctx;
    c->stream_ended = true;
    if (!c->drop)
        send_bytes(c, "0\r\n\r\n", 5);
    request_done(c);
}

/* A Status reply written by the server itself (401, 413, faults). */
static void reply_status(struct conn *c, const struct gf_ks_status *st)
{
    cJSON *j = gf_ks_status_to_json(st);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    send_full(c, st->code, "application/json", s, strlen(s), st->retry_after);
    cJSON_free(s);
}

/* ---- dispatch ---------------------------------------------------------- */

static const char *who_identity(const struct conn *c)
{
    return c->who != NULL ? c->who->identity : NULL;
}

static const char *who_user(const struct conn *c)
{
    return c->who != NULL ? c->who->user : NULL;
}

static void enter_blackhole(struct conn *c)
{
    if (c->call != NULL) {
        struct gf_ks_api_call *call = c->call;
        c->call = NULL;
        c->srv->o.cancel(c->srv->o.data, call);
    }
    gf_timer_stop(&c->delay);
    c->blackhole = true;
    c->resume = false;
    c->state = CONN_BUSY; /* nothing more is parsed or answered */
}

static void call_handler(struct conn *c)
{
    struct gf_ks_server *s = c->srv;
    const char *q = strchr(c->url.data, '?');
    char *path = gf_strndup(c->url.data,
                            q != NULL ? (size_t)(q - c->url.data) : c->url.len);
    if (!decode_path(path)) {
        struct gf_ks_status st;
        gf_ks_status_init(&st);
        gf_ks_status_set(&st, 400, "BadRequest", "malformed request path");
        reply_status(c, &st);
        gf_free(path);
        request_done(c);
        return;
    }
    struct gf_ks_api_req req = {
        .method = http_method_str((enum http_method)c->parser.method),
        .path = path,
        .query = q != NULL ? q + 1 : NULL,
        .content_type = c->ctype,
        .accept = c->accept,
        .user_agent = c->agent,
        .body = c->body.data,
        .body_len = c->body.len,
        .user = c->who != NULL ? c->who->user : "system:anonymous",
        .groups = c->who != NULL ? (const char *const *)c->who->groups : NULL,
        .impersonate_user = c->imp_user,
        .impersonate_groups = (const char *const *)c->imp_groups,
    };
    struct gf_ks_api_call *call = NULL;
    s->stats.requests++;
    c->state = CONN_BUSY;
    s->o.handle(s->o.data, &req, &c->out, &call);
    gf_free(path);
    if (c->state != CONN_STREAMING || c->stream_ended || c->closing)
        return;
    c->call = call;
    if (s->o.faults != NULL &&
        gf_ks_faults_match(s->o.faults, GF_KS_FAULT_WATCH_DROP, who_identity(c),
                           who_user(c)) != NULL) {
        s->stats.faulted++;
        conn_close(c, false);
    }
}

static void on_delay(struct gf_timer *t)
{
    call_handler(t->data);
}

/* Faults that answer or swallow a request; true when one did. */
static bool apply_request_faults(struct conn *c)
{
    struct gf_ks_faults *f = c->srv->o.faults;
    struct gf_ks_fault ft;
    const char *id = who_identity(c), *user = who_user(c);
    if (f == NULL)
        return false;
    if (gf_ks_faults_match(f, GF_KS_FAULT_BLACKHOLE, id, user) != NULL) {
        enter_blackhole(c);
        return true;
    }
    if (gf_ks_faults_match(f, GF_KS_FAULT_RESET, id, user) != NULL) {
        conn_close(c, true);
        return true;
    }
    bool throttled = gf_ks_faults_take(f, GF_KS_FAULT_429, id, user, &ft);
    if (throttled || gf_ks_faults_take(f, GF_KS_FAULT_5XX, id, user, &ft)) {
        struct gf_ks_status st;
        gf_ks_status_init(&st);
        if (ft.code == 429)
            gf_ks_status_set(&st, 429, "TooManyRequests",
                             "Too many requests, please try again later.");
        else if (ft.code == 503)
            gf_ks_status_set(&st, 503, "ServiceUnavailable",
                             "the server is currently unable to handle the "
                             "request");
        else if (ft.code == 504)
            gf_ks_status_set(&st, 504, "Timeout",
                             "the server was unable to return a response in "
                             "the time allotted");
        else
            gf_ks_status_set(&st, ft.code, "InternalError",
                             "Internal error occurred: injected fault");
        st.retry_after = (int)ft.retry_after_s;
        reply_status(c, &st);
        request_done(c);
        return true;
    }
    return false;
}

static void dispatch(struct conn *c)
{
    struct gf_ks_server *s = c->srv;
    c->state = CONN_BUSY;
    c->keep_alive = http_should_keep_alive(&c->parser) != 0;
    if (s->o.auth != NULL) {
        struct gf_ks_status st;
        gf_ks_status_init(&st);
        if (gf_ks_auth_check(s->o.auth, c->authz, &c->who, &st) != 0) {
            reply_status(c, &st);
            request_done(c);
            return;
        }
    }
    if (apply_request_faults(c)) {
        s->stats.faulted++;
        return;
    }
    const struct gf_ks_fault *lat =
        s->o.faults != NULL
            ? gf_ks_faults_match(s->o.faults, GF_KS_FAULT_LATENCY,
                                 who_identity(c), who_user(c))
            : NULL;
    if (lat != NULL) {
        gf_timer_start(&c->delay, lat->latency_ms, on_delay);
        return;
    }
    call_handler(c);
}

/* ---- parsing ----------------------------------------------------------- */

static struct conn *conn_of(http_parser *p)
{
    return p->data;
}

static int count_header(struct conn *c, size_t n)
{
    c->header_bytes += n;
    if (c->header_bytes > c->srv->o.max_header) {
        c->too_big = true;
        return -1;
    }
    return 0;
}

static int on_message_begin(http_parser *p)
{
    request_reset(conn_of(p));
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    struct conn *c = conn_of(p);
    if (count_header(c, n) != 0)
        return -1;
    return gf_buf_append(&c->url, at, n) == 0 ? 0 : -1;
}

/* Keeps the headers the server and the handler use. */
static void end_header(struct conn *c)
{
    if (c->hname == NULL)
        return;
    char **slot = NULL;
    if (strcasecmp(c->hname, "Authorization") == 0)
        slot = &c->authz;
    else if (strcasecmp(c->hname, "Content-Type") == 0)
        slot = &c->ctype;
    else if (strcasecmp(c->hname, "Accept") == 0)
        slot = &c->accept;
    else if (strcasecmp(c->hname, "User-Agent") == 0)
        slot = &c->agent;
    else if (strcasecmp(c->hname, "Impersonate-User") == 0)
        slot = &c->imp_user;
    else if (strcasecmp(c->hname, "Impersonate-Group") == 0 &&
             c->n_imp_groups < MAX_IMP_GROUPS) {
        /* One header per group, as kubectl sends them. */
        c->imp_groups = gf_realloc(c->imp_groups, (c->n_imp_groups + 2) *
                                                      sizeof(*c->imp_groups));
        c->imp_groups[c->n_imp_groups++] = gf_strdup(gf_buf_cstr(&c->hval));
        c->imp_groups[c->n_imp_groups] = NULL;
    } else if (strcasecmp(c->hname, "Expect") == 0)
        c->expect_continue =
            strcasecmp(gf_buf_cstr(&c->hval), "100-continue") == 0;
    if (slot != NULL) {
        gf_free(*slot);
        *slot = gf_strdup(gf_buf_cstr(&c->hval));
    }
    GF_FREE(c->hname);
    gf_buf_reset(&c->hval);
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    struct conn *c = conn_of(p);
    if (count_header(c, n) != 0)
        return -1;
    if (c->in_value) {
        end_header(c);
        c->in_value = false;
    }
    /* A name may arrive in pieces: keep extending it. */
    size_t old = c->hname != NULL ? strlen(c->hname) : 0;
    c->hname = gf_realloc(c->hname, old + n + 1);
    memcpy(c->hname + old, at, n);
    c->hname[old + n] = '\0';
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    struct conn *c = conn_of(p);
    if (count_header(c, n) != 0)
        return -1;
    c->in_value = true;
    return gf_buf_append(&c->hval, at, n) == 0 ? 0 : -1;
}

static int on_headers_complete(http_parser *p)
{
    struct conn *c = conn_of(p);
    end_header(c);
    c->in_value = false;
    if (p->content_length != ULLONG_MAX &&
        p->content_length > c->srv->o.max_body) {
        c->too_big = true;
        return -1;
    }
    /*
     * libcurl asks before sending a large body; answering at once (as Go's
     * server does when the handler reads the body) saves it a 1 s wait.
     */
    if (c->expect_continue && p->content_length != 0)
        send_bytes(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    struct conn *c = conn_of(p);
    if (gf_buf_append(&c->body, at, n) != 0) {
        c->too_big = true;
        return -1;
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct conn *c = conn_of(p);
    c->msg_done = true;
    /* One request at a time: the rest waits in c->in. */
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void reply_parse_error(struct conn *c)
{
    struct gf_ks_status st;
    gf_ks_status_init(&st);
    bool header = c->too_big && c->body.len == 0 &&
                  c->header_bytes > c->srv->o.max_header;
    if (header)
        gf_ks_status_set(&st, 431, "RequestHeaderFieldsTooLarge",
                         "request header fields too large");
    else if (c->too_big)
        gf_ks_status_set(&st, 413, "RequestEntityTooLarge",
                         "Request entity too large: limit is %zu",
                         c->srv->o.max_body);
    else
        gf_ks_status_set(&st, 400, "BadRequest", "malformed HTTP request: %s",
                         http_errno_description(HTTP_PARSER_ERRNO(&c->parser)));
    c->keep_alive = false;
    reply_status(c, &st);
    c->state = CONN_BUSY;
    conn_close(c, false);
    gf_ks_status_clear(&st);
}

/* Parses buffered input until a request is complete or input runs out. */
static void parse_input(struct conn *c)
{
    while (!c->closing && c->state == CONN_IDLE && c->in.len > 0) {
        /*
         * A client that pipelines requests and never reads the replies
         * would make us queue replies without bound: stop serving it
         * until it has read some.
         */
        if (queued_bytes(c) > c->srv->o.max_queued) {
            c->write_blocked = true;
            return;
        }
        size_t n =
            http_parser_execute(&c->parser, &settings, c->in.data, c->in.len);
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (e != HPE_OK && e != HPE_PAUSED) {
            reply_parse_error(c);
            return;
        }
        gf_buf_consume(&c->in, n);
        if (!c->msg_done)
            continue;
        http_parser_pause(&c->parser, 0);
        c->msg_done = false;
        dispatch(c);
    }
}

/* ---- input ------------------------------------------------------------- */

static size_t in_limit(const struct gf_ks_server *s)
{
    return s->o.max_body + s->o.max_header + READ_CHUNK;
}

/* Drains decrypted bytes into c->in while there is room. */
static int drain_tls(struct conn *c)
{
    char buf[16384];
    while (c->in.len < in_limit(c->srv)) {
        int n = SSL_read(c->ssl, buf, sizeof(buf));
        if (n > 0) {
            if (gf_buf_append(&c->in, buf, (size_t)n) != 0)
                return GF_E2BIG;
            continue;
        }
        int e = SSL_get_error(c->ssl, n);
        ERR_clear_error();
        if (e == SSL_ERROR_WANT_READ)
            return flush_tls(c);
        /* A close_notify or a protocol error: the client is done. */
        return e == SSL_ERROR_ZERO_RETURN ? UV_EOF : GF_ETLS;
    }
    return flush_tls(c);
}

static int handshake(struct conn *c)
{
    int r = SSL_do_handshake(c->ssl);
    int rc = flush_tls(c);
    if (r == 1) {
        c->handshake_done = true;
        return rc;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return rc;
    unsigned long le = ERR_get_error();
    char why[200];
    ERR_error_string_n(le, why, sizeof(why));
    ERR_clear_error();
    c->srv->stats.tls_failures++;
    GF_LOG(&c->srv->lc, GF_LOG_DEBUG, "tls handshake failed", "error=%s", why);
    return GF_ETLS;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = h->data;
    (void)suggested;
    /*
     * One shared buffer: read callbacks run one at a time and consume it
     * fully. A nested allocation cannot happen on one loop thread.
     */
    *buf = uv_buf_init(c->srv->rbuf, sizeof(c->srv->rbuf));
}

static void stop_reading(struct conn *c)
{
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

static void on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf);

static void start_reading(struct conn *c)
{
    if (!c->reading && !c->closing) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
            c->reading = true;
    }
}

/* Takes freshly read bytes in, then parses what can be parsed. */
static int take_input(struct conn *c, const char *data, size_t n)
{
    if (c->blackhole)
        return 0; /* accepted, never answered */
    if (c->ssl == NULL)
        return gf_buf_append(&c->in, data, n);
    if (BIO_write(c->rbio, data, (int)n) != (int)n)
        return GF_ETLS;
    if (!c->handshake_done) {
        int rc = handshake(c);
        if (rc != 0 || !c->handshake_done)
            return rc;
    }
    return drain_tls(c);
}

static void on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf)
{
    struct conn *c = stream->data;
    if (n == 0)
        return;
    if (n < 0) {
        conn_close(c, false);
        return;
    }
    int rc = take_input(c, buf->base, (size_t)n);
    if (rc != 0) {
        conn_close(c, rc != UV_EOF && rc != GF_ETLS);
        return;
    }
    conn_pump(c);
}

/* Parses, and applies read backpressure while a request is in progress. */
static void conn_pump(struct conn *c)
{
    if (c->failed || c->close_after) {
        conn_close(c, false);
        return;
    }
    if (c->closing || c->blackhole)
        return;
    if (c->ssl != NULL && c->handshake_done && drain_tls(c) < 0) {
        conn_close(c, false);
        return;
    }
    parse_input(c);
    if (c->closing)
        return;
    if (c->in.len >= in_limit(c->srv))
        stop_reading(c);
    else
        start_reading(c);
}

static void run_deferred(struct gf_ks_server *s)
{
    uv_idle_stop(&s->idle);
    uv_check_stop(&s->check);
    s->idle_active = false;
    /* Resumes may schedule more resumes; those run on the next turn. */
    for (struct conn *c = first_conn(s); c != NULL;) {
        struct conn *next = next_conn(s, c);
        if (c->flush_pending) {
            c->flush_pending = false;
            flush_tls(c);
        }
        if (c->writable_due) {
            c->writable_due = false;
            if (c->call != NULL && !c->closing)
                s->o.writable(s->o.data, c->call);
        }
        if (c->resume) {
            c->resume = false;
            conn_pump(c);
        }
        c = next;
    }
}

static void on_idle(uv_idle_t *h)
{
    run_deferred(h->data);
}

static void on_check(uv_check_t *h)
{
    run_deferred(h->data);
}

/*
 * Two handles for the same work. The idle handle: while it is active the
 * loop does not block in poll, so work queued from a timer callback is
 * done in the same turn. The check handle runs right after the poll
 * phase: an answer written by a handler goes out in the turn its request
 * was read, before the next turn's timers run the simulated controllers
 * (Kueue-lite's reconcile, the job runner). With the idle handle alone
 * every answer waited for that work, all of it, as a real API server's
 * answers never wait for the controllers (3 members: 20 redirects at
 * once took about 40 ms per protocol write).
 */
static void schedule_idle(struct gf_ks_server *s)
{
    if (!s->idle_active && !s->closing) {
        uv_idle_start(&s->idle, on_idle);
        uv_check_start(&s->check, on_check);
        s->idle_active = true;
    }
}

static void conn_schedule_resume(struct conn *c)
{
    c->resume = true;
    schedule_idle(c->srv);
}

/* ---- connections ------------------------------------------------------- */

static void server_maybe_free(struct gf_ks_server *s)
{
    if (s->closing && s->open_handles == 0) {
        gf_free(s->name);
        gf_free(s);
    }
}

static void on_conn_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    struct gf_ks_server *s = c->srv;
    gf_list_remove(&c->link);
    s->n_conns--;
    SSL_free(c->ssl); /* frees both BIOs */
    request_reset(c);
    gf_buf_free(&c->url);
    gf_buf_free(&c->body);
    gf_buf_free(&c->xhdr);
    gf_buf_free(&c->hval);
    gf_buf_free(&c->in);
    gf_buf_free(&c->plain);
    gf_free(c);
    s->open_handles--;
    server_maybe_free(s);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct conn *c = req->data;
    (void)status;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void conn_close(struct conn *c, bool reset)
{
    if (c->closing)
        return;
    c->closing = true;
    c->resume = false;
    gf_timer_stop(&c->delay);
    if (c->call != NULL) {
        struct gf_ks_api_call *call = c->call;
        c->call = NULL;
        c->srv->o.cancel(c->srv->o.data, call);
    }
    if (reset) {
        c->io_done = true;
        /* Pending writes are dropped with the RST: that is the point. */
        if (uv_tcp_close_reset(&c->tcp, on_conn_closed) == 0)
            return;
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
        return;
    }
    if (c->drop || c->failed || c->srv->closing) {
        /*
         * Nothing queued is worth delivering (or the server is going away):
         * a slow reader may never take it, and must not hold us up.
         */
        c->io_done = true;
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
        return;
    }
    if (c->ssl != NULL && c->handshake_done) {
        /* The last reply's records go before the close_notify alert. */
        seal_tls(c);
        SSL_shutdown(c->ssl);
        ERR_clear_error();
        flush_tls(c);
    }
    c->io_done = true;
    c->shutdown.data = c;
    /* A FIN after the queued writes, so a final response is delivered. */
    if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void conn_init_tls(struct conn *c)
{
    c->ssl = SSL_new(c->srv->o.tls);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    GF_BUG_ON(c->ssl == NULL || c->rbio == NULL || c->wbio == NULL);
    /* An empty read BIO means "wait for more", not end of file. */
    BIO_set_mem_eof_return(c->rbio, -1);
    BIO_set_mem_eof_return(c->wbio, -1);
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    SSL_set_accept_state(c->ssl);
}

static struct conn *conn_new(struct gf_ks_server *s)
{
    struct conn *c = gf_calloc(1, sizeof(*c));
    c->srv = s;
    c->tcp.data = c;
    gf_buf_init(&c->url, s->o.max_header);
    gf_buf_init(&c->hval, s->o.max_header);
    gf_buf_init(&c->body, s->o.max_body);
    gf_buf_init(&c->xhdr, 64 << 10);
    gf_buf_init(&c->in, in_limit(s) + READ_CHUNK);
    gf_buf_init(&c->plain, TLS_RECORD);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->keep_alive = true;
    gf_timer_init(s->o.clock, &c->delay);
    c->delay.data = c;
    c->out = (struct gf_ks_api_out){
        .ctx = c,
        .reply = out_reply,
        .stream_begin = out_stream_begin,
        .stream_write = out_stream_write,
        .stream_end = out_stream_end,
        .header = out_header,
    };
    return c;
}

static void on_connection(uv_stream_t *server, int status)
{
    struct gf_ks_server *s = server->data;
    if (status < 0 || s->closing)
        return;
    struct conn *c = conn_new(s);
    if (uv_tcp_init(s->o.loop, &c->tcp) != 0) {
        gf_buf_free(&c->in);
        gf_free(c);
        return;
    }
    s->open_handles++;
    gf_list_push_front(&s->conns, &c->link);
    s->n_conns++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c, false);
        return;
    }
    s->stats.accepted++;
    uv_tcp_nodelay(&c->tcp, 1);
    if (s->o.tls != NULL)
        conn_init_tls(c);
    struct gf_ks_faults *f = s->o.faults;
    if (f != NULL &&
        gf_ks_faults_match(f, GF_KS_FAULT_RESET, NULL, NULL) != NULL) {
        s->stats.faulted++;
        conn_close(c, true);
        return;
    }
    if (f != NULL &&
        gf_ks_faults_match(f, GF_KS_FAULT_BLACKHOLE, NULL, NULL) != NULL) {
        s->stats.faulted++;
        enter_blackhole(c);
    }
    start_reading(c);
}

/* ---- faults on existing connections ------------------------------------ */

static bool conn_matches(const struct conn *c, const struct gf_ks_fault *f)
{
    if (f->identity == NULL)
        return true;
    return c->who != NULL &&
           gf_ks_fault_applies(f, c->who->identity, c->who->user);
}

static void on_fault(void *data, enum gf_ks_fault_change ch,
                     const struct gf_ks_fault *f)
{
    struct gf_ks_server *s = data;
    for (struct conn *c = first_conn(s); c != NULL; c = next_conn(s, c)) {
        if (c->closing)
            continue;
        if (ch == GF_KS_FAULT_ENDED) {
            /*
             * A healed partition: connections that were silenced are
             * reset, as a middlebox that lost their state would do, so
             * clients reconnect instead of hanging forever.
             */
            bool still =
                gf_ks_faults_match(s->o.faults, GF_KS_FAULT_BLACKHOLE,
                                   who_identity(c), who_user(c)) != NULL;
            if (c->blackhole && !still)
                conn_close(c, true);
            continue;
        }
        if (!conn_matches(c, f))
            continue;
        if (f->kind == GF_KS_FAULT_BLACKHOLE)
            enter_blackhole(c);
        else if (f->kind == GF_KS_FAULT_RESET)
            conn_close(c, true);
        else if (f->kind == GF_KS_FAULT_WATCH_DROP &&
                 c->state == CONN_STREAMING)
            conn_close(c, false);
    }
}

size_t gf_ks_server_cut(struct gf_ks_server *s, const char *identity,
                        bool watches_only, bool reset)
{
    size_t n = 0;
    struct gf_ks_fault match = {.identity = (char *)identity};
    for (struct conn *c = first_conn(s); c != NULL; c = next_conn(s, c)) {
        if (c->closing || (watches_only && c->state != CONN_STREAMING))
            continue;
        if (identity != NULL && !conn_matches(c, &match))
            continue;
        conn_close(c, reset);
        n++;
    }
    return n;
}

/* ---- server ------------------------------------------------------------ */

static void on_handle_closed(uv_handle_t *h)
{
    struct gf_ks_server *s = h->data;
    s->open_handles--;
    server_maybe_free(s);
}

static void on_listener_closed(uv_handle_t *h)
{
    struct gf_ks_server *s = h->data;
    gf_free(h);
    s->open_handles--;
    server_maybe_free(s);
}

static void close_listener(struct gf_ks_server *s)
{
    if (s->listener != NULL) {
        uv_close((uv_handle_t *)s->listener, on_listener_closed);
        s->listener = NULL;
    }
}

/* Binds s->addr and listens. Returns 0 or a uv error (nothing left open). */
static int listen_now(struct gf_ks_server *s)
{
    uv_tcp_t *l = gf_malloc(sizeof(*l));
    int rc = uv_tcp_init(s->o.loop, l);
    if (rc != 0) {
        gf_free(l);
        return rc;
    }
    l->data = s;
    s->open_handles++;
    s->listener = l;
    rc = uv_tcp_bind(l, (const struct sockaddr *)&s->addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)l, 511, on_connection);
    if (rc != 0)
        close_listener(s);
    return rc;
}

static void on_relisten(struct gf_timer *t)
{
    struct gf_ks_server *s = t->data;
    int rc = listen_now(s);
    if (rc == 0) {
        GF_LOG(&s->lc, GF_LOG_INFO, "listening again", "port=%d", s->port);
        return;
    }
    /* Someone took the port meanwhile: keep trying, as a restart would. */
    GF_LOG(&s->lc, GF_LOG_WARN, "cannot listen again", "port=%d error=%s",
           s->port, uv_strerror(rc));
    gf_timer_start(&s->relisten, 100, on_relisten);
}

int gf_ks_server_start(const struct gf_ks_server_opts *o,
                       struct gf_ks_server **out)
{
    struct gf_ks_server *s = gf_calloc(1, sizeof(*s));
    s->o = *o;
    s->name = gf_strdup(o->name != NULL ? o->name : "");
    s->o.name = s->name;
    s->lc = (struct gf_log_ctx){.comp = "kubesim-server", .cluster = s->name};
    if (s->o.max_body == 0)
        s->o.max_body = DEFAULT_MAX_BODY;
    if (s->o.max_header == 0)
        s->o.max_header = DEFAULT_MAX_HEADER;
    if (s->o.max_queued == 0)
        s->o.max_queued = DEFAULT_MAX_QUEUED;
    gf_timer_init(o->clock, &s->relisten);
    s->relisten.data = s;
    int rc =
        uv_ip4_addr(o->host != NULL ? o->host : "127.0.0.1", o->port, &s->addr);
    if (rc == 0)
        rc = listen_now(s);
    if (rc != 0) {
        /* Freed by the listener's close callback, if it got that far. */
        s->closing = true;
        if (s->open_handles == 0)
            server_maybe_free(s);
        return rc;
    }
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    uv_tcp_getsockname(s->listener, (struct sockaddr *)&bound, &len);
    s->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
    /* A pause re-binds the same port, even if it was ephemeral. */
    s->addr.sin_port = htons((uint16_t)s->port);
    uv_idle_init(o->loop, &s->idle);
    s->idle.data = s;
    s->open_handles++;
    uv_check_init(o->loop, &s->check);
    s->check.data = s;
    s->open_handles++;
    if (o->faults != NULL)
        gf_ks_faults_listen(o->faults, on_fault, s);
    *out = s;
    return 0;
}

void gf_ks_server_close(struct gf_ks_server *s)
{
    if (s == NULL || s->closing)
        return;
    s->closing = true;
    gf_timer_stop(&s->relisten);
    if (s->o.faults != NULL)
        gf_ks_faults_listen(s->o.faults, NULL, NULL);
    for (struct conn *c = first_conn(s); c != NULL; c = next_conn(s, c))
        conn_close(c, false);
    close_listener(s);
    uv_close((uv_handle_t *)&s->idle, on_handle_closed);
    uv_close((uv_handle_t *)&s->check, on_handle_closed);
}

size_t gf_ks_server_pause(struct gf_ks_server *s, uint64_t ms)
{
    size_t cut = gf_ks_server_cut(s, NULL, false, false);
    close_listener(s);
    gf_timer_start(&s->relisten, ms, on_relisten);
    GF_LOG(&s->lc, GF_LOG_INFO, "not listening", "port=%d for_ms=%llu", s->port,
           (unsigned long long)ms);
    return cut;
}

bool gf_ks_server_listening(const struct gf_ks_server *s)
{
    return s->listener != NULL;
}

int gf_ks_server_port(const struct gf_ks_server *s)
{
    return s->port;
}

size_t gf_ks_server_conns(const struct gf_ks_server *s)
{
    return s->n_conns;
}

const struct gf_ks_server_stats *
gf_ks_server_stats(const struct gf_ks_server *s)
{
    return &s->stats;
}
