/*
 * Tests for controller/httpd: a real loop, the server on 127.0.0.1:0 and
 * raw TCP clients written here (uv_tcp; answers framed by http-parser in
 * response mode), so every rule is checked on the wire: answers and their
 * order, keep-alive, pipelining, a request split byte by byte, the header
 * cap, garbage, the connection limit, the idle deadline (on the manual
 * clock: time is advanced, never waited for), a client that does not read,
 * and close with clients connected. The request path is also driven
 * without sockets (httpd_proto.h), byte by byte against all at once.
 *
 * Nothing sleeps: the loop runs until the condition a test waits for
 * holds, under a watchdog timer that fails the test instead of hanging.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>
#include <http_parser.h>
#include <uv.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/htab.h"
#include "controller/httpd.h"
#include "controller/httpd_proto.h"
#include "controller/metrics.h"
#include "kubeclient/global.h"

#define MAX_RESP 32
#define WATCHDOG_MS 20000

/* ---- a route whose answer the test sets -------------------------------- */

struct page {
    int code;
    const char *ctype; /* NULL: the server's default */
    const char *body;
    size_t repeat; /* body written this many times (a big answer) */
    int calls;
};

static int page_handler(void *data, struct gf_buf *body,
                        const char **content_type)
{
    struct page *p = data;
    p->calls++;
    for (size_t i = 0; i < (p->repeat != 0 ? p->repeat : 1); i++)
        assert_int_equal(gf_buf_puts(body, p->body), 0);
    if (p->ctype != NULL)
        *content_type = p->ctype;
    return p->code;
}

/* ---- a raw client ------------------------------------------------------ */

struct resp {
    int code;
    char ctype[128];
    char allow[64];
    bool conn_close;
    uint64_t content_length;
    struct gf_buf body;
};

struct client {
    uv_tcp_t tcp;
    uv_connect_t creq;
    struct fx *f;
    http_parser rp;
    bool head[MAX_RESP]; /* the method of each request sent, in order */
    size_t nsent;
    struct resp resp[MAX_RESP];
    size_t nresp;
    char hname[64];
    struct gf_buf hval;
    bool in_value;
    size_t bytes; /* received */
    bool connected, eof, closed, parse_error, no_read;
    int conn_status;
};

struct fx {
    uv_loop_t loop;
    struct gf_clock clk;
    struct gf_httpd *h;
    uv_timer_t watchdog;
    bool expired;
    int closed_cb;
    int64_t live;
    struct page metrics, healthz;
};

static struct client *client_of(http_parser *p)
{
    return p->data;
}

static struct resp *cur_resp(struct client *c)
{
    assert_true(c->nresp < MAX_RESP);
    return &c->resp[c->nresp];
}

static void end_header(struct client *c)
{
    struct resp *r = cur_resp(c);
    const char *v = gf_buf_cstr(&c->hval);
    if (strcasecmp(c->hname, "Content-Type") == 0)
        snprintf(r->ctype, sizeof(r->ctype), "%s", v);
    else if (strcasecmp(c->hname, "Allow") == 0)
        snprintf(r->allow, sizeof(r->allow), "%s", v);
    else if (strcasecmp(c->hname, "Connection") == 0)
        r->conn_close = strcasecmp(v, "close") == 0;
    c->hname[0] = '\0';
    gf_buf_reset(&c->hval);
    c->in_value = false;
}

static int rp_begin(http_parser *p)
{
    struct resp *r = cur_resp(client_of(p));
    memset(r, 0, sizeof(*r));
    gf_buf_init(&r->body, 64u << 20);
    return 0;
}

static int rp_field(http_parser *p, const char *at, size_t n)
{
    struct client *c = client_of(p);
    if (c->in_value)
        end_header(c);
    size_t old = strlen(c->hname);
    assert_true(old + n < sizeof(c->hname));
    memcpy(c->hname + old, at, n);
    c->hname[old + n] = '\0';
    return 0;
}

static int rp_value(http_parser *p, const char *at, size_t n)
{
    struct client *c = client_of(p);
    c->in_value = true;
    return gf_buf_append(&c->hval, at, n) == 0 ? 0 : -1;
}

static int rp_headers_complete(http_parser *p)
{
    struct client *c = client_of(p);
    if (c->in_value)
        end_header(c);
    struct resp *r = cur_resp(c);
    r->code = (int)p->status_code;
    r->content_length = p->content_length;
    /* The answer to a HEAD has no body whatever its length says. */
    assert_true(c->nresp < c->nsent);
    return c->head[c->nresp] ? 1 : 0;
}

static int rp_body(http_parser *p, const char *at, size_t n)
{
    return gf_buf_append(&cur_resp(client_of(p))->body, at, n) == 0 ? 0 : -1;
}

static int rp_complete(http_parser *p)
{
    client_of(p)->nresp++;
    return 0;
}

static const http_parser_settings rp_settings = {
    .on_message_begin = rp_begin,
    .on_header_field = rp_field,
    .on_header_value = rp_value,
    .on_headers_complete = rp_headers_complete,
    .on_body = rp_body,
    .on_message_complete = rp_complete,
};

static void on_client_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf)
{
    (void)hd;
    static char rbuf[64u << 10];
    (void)suggested;
    *buf = uv_buf_init(rbuf, sizeof(rbuf));
}

static void on_client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct client *c = s->data;
    if (n < 0) {
        c->eof = true;
        uv_read_stop(s);
        return;
    }
    c->bytes += (size_t)n;
    size_t used =
        http_parser_execute(&c->rp, &rp_settings, buf->base, (size_t)n);
    if (used != (size_t)n || HTTP_PARSER_ERRNO(&c->rp) != HPE_OK)
        c->parse_error = true;
}

static void on_client_connect(uv_connect_t *req, int status)
{
    struct client *c = req->data;
    c->conn_status = status;
    c->connected = status == 0;
    if (status == 0 && !c->no_read)
        uv_read_start((uv_stream_t *)&c->tcp, on_client_alloc, on_client_read);
}

static void client_start(struct fx *f, struct client *c)
{
    memset(c, 0, sizeof(*c));
    c->f = f;
    http_parser_init(&c->rp, HTTP_RESPONSE);
    c->rp.data = c;
    gf_buf_init(&c->hval, 1u << 20);
    assert_int_equal(uv_tcp_init_ex(&f->loop, &c->tcp, AF_INET), 0);
    c->tcp.data = c;
    c->creq.data = c;
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", gf_httpd_port(f->h), &sa);
    assert_int_equal(uv_tcp_connect(&c->creq, &c->tcp,
                                    (const struct sockaddr *)&sa,
                                    on_client_connect),
                     0);
}

static void on_client_closed(uv_handle_t *hd)
{
    struct client *c = hd->data;
    c->closed = true;
}

static void client_close(struct client *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, on_client_closed);
}

static void client_free(struct client *c)
{
    for (size_t i = 0; i < MAX_RESP; i++)
        gf_buf_free(&c->resp[i].body);
    gf_buf_free(&c->hval);
}

/* Writes raw bytes (small: they fit the socket buffer at once). */
static void client_send_raw(struct client *c, const char *data, size_t n)
{
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)n);
    assert_int_equal(uv_try_write((uv_stream_t *)&c->tcp, &b, 1), (int)n);
}

/* Sends "METHOD PATH HTTP/1.1" with a Host header and notes the method. */
static void client_send(struct client *c, const char *method, const char *path)
{
    char req[512];
    int n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: x\r\n\r\n",
                     method, path);
    assert_true(c->nsent < MAX_RESP);
    c->head[c->nsent++] = strcmp(method, "HEAD") == 0;
    client_send_raw(c, req, (size_t)n);
}

/* ---- fixture and loop driving ------------------------------------------ */

static void on_watchdog(uv_timer_t *t)
{
    struct fx *f = t->data;
    f->expired = true;
}

static struct fx *fx_new(void)
{
    static struct fx f;
    memset(&f, 0, sizeof(f));
    f.live = gf_alloc_live();
    assert_int_equal(uv_loop_init(&f.loop), 0);
    gf_clock_init_manual(&f.clk, 1000, 1700000000000);
    assert_int_equal(gf_httpd_new(&f.loop, "127.0.0.1:0", &f.h), 0);
    gf_httpd_set_clock(f.h, &f.clk);
    assert_true(gf_httpd_port(f.h) > 0);
    f.metrics = (struct page){
        .code = 200, .ctype = GF_METRICS_CONTENT_TYPE, .body = "gpufed_up 1\n"};
    f.healthz = (struct page){.code = 200, .body = "ok\n"};
    assert_int_equal(gf_httpd_route(f.h, "/metrics", page_handler, &f.metrics),
                     0);
    assert_int_equal(gf_httpd_route(f.h, "/healthz", page_handler, &f.healthz),
                     0);
    uv_timer_init(&f.loop, &f.watchdog);
    f.watchdog.data = &f;
    uv_timer_start(&f.watchdog, on_watchdog, WATCHDOG_MS, 0);
    return &f;
}

static void on_server_closed(void *data)
{
    struct fx *f = data;
    f->closed_cb++;
}

/* Closes the server and the given clients, runs the loop dry, checks. */
static void fx_free(struct fx *f, struct client **cl, size_t n)
{
    for (size_t i = 0; i < n; i++)
        client_close(cl[i]);
    if (f->h != NULL) {
        gf_httpd_close(f->h, on_server_closed, f);
        assert_int_equal(f->closed_cb, 0); /* later, from the loop */
    }
    uv_close((uv_handle_t *)&f->watchdog, NULL);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(f->closed_cb, f->h != NULL ? 1 : 0);
    for (size_t i = 0; i < n; i++)
        client_free(cl[i]);
    assert_int_equal(gf_clock_active_timers(&f->clk), 0);
    gf_clock_close(&f->clk);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    assert_int_equal(gf_alloc_live(), f->live);
}

typedef bool (*pred_fn)(const void *arg);

static void run_until(struct fx *f, pred_fn pred, const void *arg)
{
    while (!pred(arg)) {
        assert_false(f->expired);
        uv_run(&f->loop, UV_RUN_ONCE);
    }
}

/* Runs every callback that is ready now, without waiting for more. */
static void run_ready(struct fx *f)
{
    for (int i = 0; i < 8; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
}

static bool got1(const void *c)
{
    return ((const struct client *)c)->nresp >= 1;
}

static bool got2(const void *c)
{
    return ((const struct client *)c)->nresp >= 2;
}

static bool got3(const void *c)
{
    return ((const struct client *)c)->nresp >= 3;
}

static bool got_eof(const void *c)
{
    return ((const struct client *)c)->eof;
}

static bool is_connected(const void *c)
{
    const struct client *cl = c;
    return cl->connected || cl->conn_status != 0;
}

struct conns_at {
    const struct gf_httpd *h;
    size_t n;
};

static bool conns_equal(const void *arg)
{
    const struct conns_at *a = arg;
    return gf_httpd_conns(a->h) == a->n;
}

static void wait_conns(struct fx *f, size_t n)
{
    struct conns_at a = {f->h, n};
    run_until(f, conns_equal, &a);
}

/* ---- answers ----------------------------------------------------------- */

static void test_get_answers_200_with_body_and_content_type(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    struct client c;
    client_start(f, &c);
    run_until(f, is_connected, &c);
    client_send(&c, "GET", "/metrics?name[]=gpufed_up");
    run_until(f, got1, &c);
    assert_int_equal(c.resp[0].code, 200);
    assert_string_equal(c.resp[0].ctype,
                        "text/plain; version=0.0.4; charset=utf-8");
    assert_string_equal(gf_buf_cstr(&c.resp[0].body), "gpufed_up 1\n");
    assert_int_equal(c.resp[0].content_length, 12);
    assert_false(c.resp[0].conn_close);
    assert_int_equal(f->metrics.calls, 1);
    /* A handler that leaves the type alone gets text/plain. */
    client_send(&c, "GET", "/healthz");
    run_until(f, got2, &c);
    assert_string_equal(c.resp[1].ctype, "text/plain; charset=utf-8");
    assert_string_equal(gf_buf_cstr(&c.resp[1].body), "ok\n");
    struct client *all[] = {&c};
    fx_free(f, all, 1);
}

static void test_unknown_path_404_other_method_405(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    struct client c;
    client_start(f, &c);
    run_until(f, is_connected, &c);
    client_send(&c, "GET", "/metricsx");
    run_until(f, got1, &c);
    assert_int_equal(c.resp[0].code, 404);
    /* A body is skipped, and the connection still serves what follows. */
    const char *post = "POST /metrics HTTP/1.1\r\nHost: x\r\n"
                       "Content-Length: 5\r\n\r\nhello";
    c.head[c.nsent++] = false;
    client_send_raw(&c, post, strlen(post));
    client_send(&c, "GET", "/metrics");
    run_until(f, got3, &c);
    assert_int_equal(c.resp[1].code, 405);
    assert_string_equal(c.resp[1].allow, "GET, HEAD");
    assert_false(c.resp[1].conn_close);
    assert_int_equal(c.resp[2].code, 200);
    /* Neither the 404 nor the 405 reached a handler. */
    assert_int_equal(f->metrics.calls, 1);
    struct client *all[] = {&c};
    fx_free(f, all, 1);
}

static void test_head_has_length_and_no_body(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    struct client c;
    client_start(f, &c);
    run_until(f, is_connected, &c);
    client_send(&c, "HEAD", "/metrics");
    client_send(&c, "GET", "/healthz");
    run_until(f, got2, &c);
    assert_int_equal(c.resp[0].code, 200);
    assert_int_equal(c.resp[0].content_length, strlen("gpufed_up 1\n"));
    assert_int_equal(c.resp[0].body.len, 0);
    /* Had the HEAD answer carried a body, the GET's would not parse. */
    assert_false(c.parse_error);
    assert_string_equal(gf_buf_cstr(&c.resp[1].body), "ok\n");
    struct client *all[] = {&c};
    fx_free(f, all, 1);
}

static void test_keep_alive_serves_two_requests_on_one_connection(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    struct client c;
    client_start(f, &c);
    run_until(f, is_connected, &c);
    client_send(&c, "GET", "/metrics");
    run_until(f, got1, &c);
    f->metrics.body = "gpufed_up 2\n";
    client_send(&c, "GET", "/metrics");
    run_until(f, got2, &c);
    assert_string_equal(gf_buf_cstr(&c.resp[1].body), "gpufed_up 2\n");
    assert_int_equal(gf_httpd_conns(f->h), 1);
    assert_false(c.eof);
    struct client *all[] = {&c};
    fx_free(f, all, 1);
}

static void test_pipelined_requests_answered_in_order(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    struct client c;
    client_start(f, &c);
    run_until(f, is_connected, &c);
    const char *three = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                        "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
                        "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    c.head[0] = false;
    c.head[1] = false;
    c.head[2] = true;
    c.nsent = 3;
    client_send_raw(&c, three, strlen(three));
    run_until(f, got3, &c);
    assert_int_equal(c.resp[0].code, 200);
    assert_string_equal(gf_buf_cstr(&c.resp[0].body), "ok\n");
    assert_int_equal(c.resp[1].code, 404);
    assert_int_equal(c.resp[2].code, 200);
    assert_int_equal(c.resp[2].body.len, 0);
    assert_false(c.parse_error);
    struct client *all[] = {&c};
    fx_free(f, all, 1);
}

static void test_request_split_byte_by_byte(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    struct client c;
    client_start(f, &c);
    run_until(f, is_connected, &c);
    const char *req = "GET /metrics HTTP/1.1\r\nHost: hub\r\n"
                      "Accept: text/plain;version=0.0.4\r\n\r\n";
    c.head[c.nsent++] = false;
    for (size_t i = 0; req[i] != '\0'; i++) {
        client_send_raw(&c, req + i, 1);
        run_ready(f);
        if (req[i + 1] != '\0')
            assert_int_equal(c.nresp, 0);
    }
    run_until(f, got1, &c);
    assert_int_equal(c.resp[0].code, 200);
    assert_string_equal(gf_buf_cstr(&c.resp[0].body), "gpufed_up 1\n");
    assert_int_equal(f->metrics.calls, 1);
    struct client *all[] = {&c};
    fx_free(f, all, 1);
}

/* Headers of total size n bytes (request line and fields). */
static size_t send_with_headers(struct client *c, size_t fill)
{
    struct gf_buf b = GF_BUF_INIT(1u << 20);
    assert_int_equal(gf_buf_puts(&b, "GET /metrics HTTP/1.1\r\nX-Fill: "), 0);
    for (size_t i = 0; i < fill; i++)
        assert_int_equal(gf_buf_putc(&b, 'a'), 0);
    assert_int_equal(gf_buf_puts(&b, "\r\n\r\n"), 0);
    c->head[c->nsent++] = false;
    client_send_raw(c, b.data, b.len);
    size_t n = b.len;
    gf_buf_free(&b);
    return n;
}

static void test_oversized_headers_431_and_close(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    struct client ok, big;
    client_start(f, &ok);
    client_start(f, &big);
    run_until(f, is_connected, &ok);
    run_until(f, is_connected, &big);
    /* Counted: "/metrics" (8) + "X-Fill" (6) + the value. */
    send_with_headers(&ok, GF_HTTPD_MAX_HEADER - 14);
    run_until(f, got1, &ok);
    assert_int_equal(ok.resp[0].code, 200);
    send_with_headers(&big, GF_HTTPD_MAX_HEADER - 13);
    run_until(f, got1, &big);
    assert_int_equal(big.resp[0].code, 431);
    assert_true(big.resp[0].conn_close);
    run_until(f, got_eof, &big);
    assert_int_equal(f->metrics.calls, 1);
    struct client *all[] = {&ok, &big};
    fx_free(f, all, 2);
}

static void test_garbage_400_and_close(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    struct client c;
    client_start(f, &c);
    run_until(f, is_connected, &c);
    c.head[c.nsent++] = false;
    const char *junk = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 hello";
    client_send_raw(&c, junk, strlen(junk));
    run_until(f, got1, &c);
    assert_int_equal(c.resp[0].code, 400);
    assert_true(c.resp[0].conn_close);
    run_until(f, got_eof, &c);
    wait_conns(f, 0);
    struct client *all[] = {&c};
    fx_free(f, all, 1);
}

static void test_connection_close_request_ends_connection(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    struct client c;
    client_start(f, &c);
    run_until(f, is_connected, &c);
    const char *req = "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n"
                      "GET /healthz HTTP/1.1\r\n\r\n";
    c.head[c.nsent++] = false;
    c.head[c.nsent++] = false;
    client_send_raw(&c, req, strlen(req));
    run_until(f, got_eof, &c);
    /* The last answer arrives before the FIN; nothing after it. */
    assert_int_equal(c.nresp, 1);
    assert_true(c.resp[0].conn_close);
    assert_int_equal(f->healthz.calls, 1);
    struct client *all[] = {&c};
    fx_free(f, all, 1);
}

static void test_handler_status_out_of_range_is_500(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    f->healthz.code = 7;
    struct client c;
    client_start(f, &c);
    run_until(f, is_connected, &c);
    client_send(&c, "GET", "/healthz");
    run_until(f, got1, &c);
    assert_int_equal(c.resp[0].code, 500);
    struct client *all[] = {&c};
    fx_free(f, all, 1);
}

/* ---- limits ------------------------------------------------------------ */

static void test_connection_limit_closes_new_ones_at_once(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    static struct client cl[GF_HTTPD_MAX_CONNS + 2];
    struct client *all[GF_HTTPD_MAX_CONNS + 2];
    for (size_t i = 0; i < GF_HTTPD_MAX_CONNS; i++) {
        all[i] = &cl[i];
        client_start(f, &cl[i]);
        run_until(f, is_connected, &cl[i]);
        client_send(&cl[i], "GET", "/healthz");
        run_until(f, got1, &cl[i]);
    }
    assert_int_equal(gf_httpd_conns(f->h), GF_HTTPD_MAX_CONNS);
    /* One more: the kernel completes the handshake, we close at once. */
    struct client *extra = &cl[GF_HTTPD_MAX_CONNS];
    all[GF_HTTPD_MAX_CONNS] = extra;
    client_start(f, extra);
    run_until(f, got_eof, extra);
    assert_int_equal(extra->nresp, 0);
    assert_int_equal(gf_httpd_conns(f->h), GF_HTTPD_MAX_CONNS);
    /* Every admitted connection still works. */
    client_send(&cl[0], "GET", "/healthz");
    run_until(f, got2, &cl[0]);
    /* A slot freed is a slot given to the next client. */
    client_close(&cl[1]);
    wait_conns(f, GF_HTTPD_MAX_CONNS - 1);
    struct client *next = &cl[GF_HTTPD_MAX_CONNS + 1];
    all[GF_HTTPD_MAX_CONNS + 1] = next;
    client_start(f, next);
    run_until(f, is_connected, next);
    client_send(next, "GET", "/healthz");
    run_until(f, got1, next);
    assert_int_equal(next->resp[0].code, 200);
    fx_free(f, all, GF_HTTPD_MAX_CONNS + 2);
}

static void test_idle_connection_closed_after_30s(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    struct client c;
    client_start(f, &c);
    run_until(f, is_connected, &c);
    wait_conns(f, 1);
    gf_clock_advance(&f->clk, GF_HTTPD_IDLE_TIMEOUT_MS - 1);
    run_ready(f);
    assert_int_equal(gf_httpd_conns(f->h), 1);
    gf_clock_advance(&f->clk, 1);
    run_until(f, got_eof, &c);
    wait_conns(f, 0);
    struct client *all[] = {&c};
    fx_free(f, all, 1);
}

/*
 * The deadline is reset by an answer written, not by bytes received: a
 * client trickling a request is closed on time.
 */
static void test_idle_deadline_reset_by_answers_not_by_bytes(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    gf_httpd_set_idle_timeout_ms(f->h, 1000);
    struct client slow, busy;
    client_start(f, &slow);
    client_start(f, &busy);
    run_until(f, is_connected, &slow);
    run_until(f, is_connected, &busy);
    wait_conns(f, 2);
    client_send_raw(&slow, "GET /metr", 9);
    gf_clock_advance(&f->clk, 600);
    client_send(&busy, "GET", "/healthz");
    run_until(f, got1, &busy);
    client_send_raw(&slow, "ics HTTP/1.1\r\n", 14);
    run_ready(f);
    gf_clock_advance(&f->clk, 400);
    /* slow: 1000 ms since accept; busy: answered 400 ms ago. */
    run_until(f, got_eof, &slow);
    assert_int_equal(slow.nresp, 0);
    wait_conns(f, 1);
    gf_clock_advance(&f->clk, 599);
    run_ready(f);
    assert_false(busy.eof);
    gf_clock_advance(&f->clk, 1);
    run_until(f, got_eof, &busy);
    struct client *all[] = {&slow, &busy};
    fx_free(f, all, 2);
}

struct after {
    const struct fx *f;
    int64_t base;
};

/*
 * A client that pipelines requests for a big answer and reads nothing:
 * the server stops taking its requests once 1 MiB waits for it, so its
 * memory stays bounded, and another client is served meanwhile.
 */
static void test_slow_reader_bounded_and_others_served(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    f->metrics.body = "gpufed_quota_nominal{member=\"east\",cluster_queue="
                      "\"team-a\",resource=\"nvidia.com/gpu\"} 8\n";
    f->metrics.repeat = 40000; /* about 3.5 MB per answer */
    struct client hog, other;
    memset(&hog, 0, sizeof(hog));
    client_start(f, &hog);
    hog.no_read = true;
    client_start(f, &other);
    run_until(f, is_connected, &hog);
    run_until(f, is_connected, &other);
    wait_conns(f, 2);
    int64_t base = gf_alloc_live_bytes();
    for (int i = 0; i < 20; i++)
        client_send(&hog, "GET", "/metrics");
    run_ready(f);
    client_send(&other, "GET", "/healthz");
    run_until(f, got1, &other);
    assert_int_equal(other.resp[0].code, 200);
    run_ready(f);
    /* Twenty answers would be 70 MB; at most a few are built. */
    assert_true(f->metrics.calls < 5);
    assert_true(gf_alloc_live_bytes() - base < (int64_t)(16u << 20));
    struct client *all[] = {&hog, &other};
    fx_free(f, all, 2);
}

static void on_client_shutdown(uv_shutdown_t *req, int status)
{
    assert_int_equal(status, 0);
    *(bool *)req->data = true;
}

static bool flag_set(const void *b)
{
    return *(const bool *)b;
}

/*
 * "printf 'GET ...' | nc": a request sent before a half-close is answered
 * in full (the client reads nothing until the server has read its EOF).
 */
static void test_half_close_still_answered(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    f->metrics.body = "gpufed_up 1 # padding padding padding padding\n";
    f->metrics.repeat = 20000; /* 900 KB: under the 1 MiB pause */
    struct client c;
    memset(&c, 0, sizeof(c));
    client_start(f, &c);
    c.no_read = true;
    run_until(f, is_connected, &c);
    client_send(&c, "GET", "/metrics");
    bool shut = false;
    uv_shutdown_t sreq;
    sreq.data = &shut;
    assert_int_equal(
        uv_shutdown(&sreq, (uv_stream_t *)&c.tcp, on_client_shutdown), 0);
    run_until(f, flag_set, &shut);
    run_ready(f); /* the server reads the EOF */
    assert_int_equal(f->metrics.calls, 1);
    uv_read_start((uv_stream_t *)&c.tcp, on_client_alloc, on_client_read);
    run_until(f, got_eof, &c);
    assert_int_equal(c.nresp, 1);
    assert_int_equal(c.resp[0].body.len, 20000 * strlen(f->metrics.body));
    wait_conns(f, 0);
    struct client *all[] = {&c};
    fx_free(f, all, 1);
}

/* A client that resets with answers queued: the failed write or read
 * closes that connection, and the server serves on. */
static void test_reset_with_answers_queued(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    f->metrics.body = "gpufed_up 1 # padding padding padding padding\n";
    f->metrics.repeat = 100000; /* about 5 MB */
    struct client hog, other;
    client_start(f, &hog);
    hog.no_read = true;
    client_start(f, &other);
    run_until(f, is_connected, &hog);
    run_until(f, is_connected, &other);
    for (int i = 0; i < 3; i++)
        client_send(&hog, "GET", "/metrics");
    run_ready(f);
    assert_true(f->metrics.calls >= 1);
    assert_int_equal(uv_tcp_close_reset(&hog.tcp, on_client_closed), 0);
    wait_conns(f, 1);
    client_send(&other, "GET", "/healthz");
    run_until(f, got1, &other);
    assert_int_equal(other.resp[0].code, 200);
    struct client *all[] = {&hog, &other};
    fx_free(f, all, 2);
}

/* ---- lifecycle --------------------------------------------------------- */

static void test_close_with_clients_connected(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    struct client idle, half;
    client_start(f, &idle);
    client_start(f, &half);
    run_until(f, is_connected, &idle);
    run_until(f, is_connected, &half);
    wait_conns(f, 2);
    client_send_raw(&half, "GET /metrics HTTP/1.1\r\nHo", 25);
    run_ready(f);
    gf_httpd_close(f->h, on_server_closed, f);
    assert_int_equal(f->closed_cb, 0);
    run_until(f, got_eof, &idle);
    run_until(f, got_eof, &half);
    assert_int_equal(half.nresp, 0);
    struct client *all[] = {&idle, &half};
    f->h = NULL; /* closed above */
    for (size_t i = 0; i < 2; i++)
        client_close(all[i]);
    uv_close((uv_handle_t *)&f->watchdog, NULL);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(f->closed_cb, 1);
    for (size_t i = 0; i < 2; i++)
        client_free(all[i]);
    gf_clock_close(&f->clk);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    assert_int_equal(gf_alloc_live(), f->live);
}

/* The server's own libuv clock: created, closed, nothing left behind. */
static void test_default_clock_and_close_without_clients(void **state)
{
    (void)state;
    int64_t live = gf_alloc_live();
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct gf_httpd *h;
    assert_int_equal(gf_httpd_new(&loop, "localhost:0", &h), 0);
    gf_httpd_close(h, NULL, NULL);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(gf_alloc_live(), live);
}

static void test_bad_addresses_and_routes(void **state)
{
    (void)state;
    int64_t live = gf_alloc_live();
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct gf_httpd *h = (struct gf_httpd *)&loop;
    const char *bad[] = {"",        "8080",    "nohost:80",     ":",
                         ":65536",  ":-1",     ":8o",           "1.2.3:80",
                         "[::1:80", "[zz]:80", "127.0.0.1:+80", "127.0.0.1: 80",
                         "::1:0"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(gf_httpd_new(&loop, bad[i], &h), -EINVAL);
        assert_null(h);
    }
    assert_int_equal(gf_httpd_new(&loop, NULL, &h), -EINVAL);

    assert_int_equal(gf_httpd_new(&loop, "127.0.0.1:0", &h), 0);
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", gf_httpd_port(h));
    struct gf_httpd *h2;
    assert_int_equal(gf_httpd_new(&loop, addr, &h2), UV_EADDRINUSE);
    assert_null(h2);

    struct page p = {.code = 200, .body = "ok\n"};
    assert_int_equal(gf_httpd_route(h, "/readyz", page_handler, &p), 0);
    assert_int_equal(gf_httpd_route(h, "/readyz", page_handler, &p), -EEXIST);
    assert_int_equal(gf_httpd_route(h, "readyz", page_handler, &p), -EINVAL);
    assert_int_equal(gf_httpd_route(h, "/a?b", page_handler, &p), -EINVAL);
    assert_int_equal(gf_httpd_route(h, "/x", NULL, &p), -EINVAL);
    gf_httpd_close(h, NULL, NULL);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(gf_alloc_live(), live);
}

/* ---- the request path without sockets ---------------------------------- */

static int fixed_handler(void *data, struct gf_buf *body,
                         const char **content_type)
{
    (void)data;
    *content_type = "text/plain; version=0.0.4; charset=utf-8";
    return gf_buf_puts(body, "gpufed_up 1\n") == 0 ? 200 : 500;
}

/* Feeds all of in, split in pieces of at most chunk bytes. */
static void feed(struct gf_htab *routes, const char *in, size_t n, size_t chunk,
                 struct gf_buf *out)
{
    struct gf_httpd_proto p;
    gf_httpd_proto_init(&p, routes);
    for (size_t off = 0; off < n && !gf_httpd_proto_closed(&p);) {
        size_t len = n - off < chunk ? n - off : chunk;
        /* A piece may hold several requests: step until it is taken. */
        size_t done = 0;
        while (done < len && !gf_httpd_proto_closed(&p))
            done += gf_httpd_proto_step(&p, in + off + done, len - done, out);
        off += len;
    }
    gf_httpd_proto_free(&p);
}

static void test_proto_byte_by_byte_equals_all_at_once(void **state)
{
    (void)state;
    int64_t live = gf_alloc_live();
    struct gf_htab routes;
    gf_htab_init(&routes, GF_HTAB_OWN_KEYS);
    struct gf_httpd_route r = {fixed_handler, NULL};
    gf_htab_put_str(&routes, "/metrics", &r);
    const char *in = "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n"
                     "HEAD /metrics?x=1 HTTP/1.1\r\n\r\n"
                     "DELETE /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
                     "GET http://hub:8080/metrics HTTP/1.1\r\n\r\n"
                     "GET /other HTTP/1.0\r\n\r\n"
                     "GET /metrics HTTP/1.1\r\n\r\n";
    struct gf_buf whole = GF_BUF_INIT(1u << 20);
    struct gf_buf bytes = GF_BUF_INIT(1u << 20);
    feed(&routes, in, strlen(in), strlen(in), &whole);
    feed(&routes, in, strlen(in), 1, &bytes);
    assert_string_equal(gf_buf_cstr(&bytes), gf_buf_cstr(&whole));
    const char *want =
        "HTTP/1.1 200 OK\r\n"
        "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
        "Content-Length: 12\r\n\r\ngpufed_up 1\n"
        "HTTP/1.1 200 OK\r\n"
        "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
        "Content-Length: 12\r\n\r\n"
        "HTTP/1.1 405 Method Not Allowed\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Length: 19\r\nAllow: GET, HEAD\r\n\r\nmethod not allowed\n"
        "HTTP/1.1 200 OK\r\n"
        "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
        "Content-Length: 12\r\n\r\ngpufed_up 1\n"
        /* HTTP/1.0 without keep-alive: the last answer. */
        "HTTP/1.1 404 Not Found\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Length: 19\r\nConnection: close\r\n\r\n404 page not found\n";
    assert_string_equal(gf_buf_cstr(&whole), want);
    gf_buf_free(&whole);
    gf_buf_free(&bytes);
    gf_htab_free(&routes);
    assert_int_equal(gf_alloc_live(), live);
}

static void test_proto_body_over_cap_413(void **state)
{
    (void)state;
    struct gf_htab routes;
    gf_htab_init(&routes, GF_HTAB_OWN_KEYS);
    char in[128];
    snprintf(in, sizeof(in),
             "POST /metrics HTTP/1.1\r\nContent-Length: %u\r\n\r\n",
             GF_HTTPD_MAX_BODY + 1);
    struct gf_buf out = GF_BUF_INIT(1u << 20);
    struct gf_httpd_proto p;
    gf_httpd_proto_init(&p, &routes);
    char zeros[4096];
    memset(zeros, 'z', sizeof(zeros));
    gf_httpd_proto_step(&p, in, strlen(in), &out);
    for (size_t i = 0; i < 17 && !gf_httpd_proto_closed(&p); i++)
        gf_httpd_proto_step(&p, zeros, sizeof(zeros), &out);
    assert_true(gf_httpd_proto_closed(&p));
    assert_true(strncmp(gf_buf_cstr(&out), "HTTP/1.1 413 ", 13) == 0);
    gf_httpd_proto_free(&p);
    gf_buf_free(&out);
    gf_htab_free(&routes);
}

int main(void)
{
    if (gf_kube_global_init() != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_answers_200_with_body_and_content_type),
        cmocka_unit_test(test_unknown_path_404_other_method_405),
        cmocka_unit_test(test_head_has_length_and_no_body),
        cmocka_unit_test(test_keep_alive_serves_two_requests_on_one_connection),
        cmocka_unit_test(test_pipelined_requests_answered_in_order),
        cmocka_unit_test(test_request_split_byte_by_byte),
        cmocka_unit_test(test_oversized_headers_431_and_close),
        cmocka_unit_test(test_garbage_400_and_close),
        cmocka_unit_test(test_connection_close_request_ends_connection),
        cmocka_unit_test(test_handler_status_out_of_range_is_500),
        cmocka_unit_test(test_connection_limit_closes_new_ones_at_once),
        cmocka_unit_test(test_idle_connection_closed_after_30s),
        cmocka_unit_test(test_idle_deadline_reset_by_answers_not_by_bytes),
        cmocka_unit_test(test_slow_reader_bounded_and_others_served),
        cmocka_unit_test(test_half_close_still_answered),
        cmocka_unit_test(test_reset_with_answers_queued),
        cmocka_unit_test(test_close_with_clients_connected),
        cmocka_unit_test(test_default_clock_and_close_without_clients),
        cmocka_unit_test(test_bad_addresses_and_routes),
        cmocka_unit_test(test_proto_byte_by_byte_equals_all_at_once),
        cmocka_unit_test(test_proto_body_over_cap_413),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_kube_global_cleanup();
    return rc;
}
