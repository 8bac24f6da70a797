/*
 * ks_tclient: see ks_tclient.h. A test client is allowed to be simple:
 * one connection, responses kept in a small fixed array.
 */
#include "e2e/kubesim/test/ks_tclient.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "common/alloc.h"

static struct gf_kst_resp *cur(struct gf_kst_client *c)
{
    return c->n_resp > 0 ? &c->resp[c->n_resp - 1] : NULL;
}

static int on_begin(http_parser *p)
{
    struct gf_kst_client *c = p->data;
    assert_true(c->n_resp < GF_KST_MAX_RESP);
    struct gf_kst_resp *r = &c->resp[c->n_resp++];
    gf_buf_init(&r->body, 64u << 20);
    return 0;
}

static int on_hfield(http_parser *p, const char *at, size_t n)
{
    struct gf_kst_client *c = p->data;
    snprintf(c->hname, sizeof(c->hname), "%.*s", (int)n, at);
    return 0;
}

static int on_hvalue(http_parser *p, const char *at, size_t n)
{
    struct gf_kst_client *c = p->data;
    struct gf_kst_resp *r = cur(c);
    if (strcasecmp(c->hname, "Retry-After") == 0)
        snprintf(r->retry_after, sizeof(r->retry_after), "%.*s", (int)n, at);
    if (strcasecmp(c->hname, "Transfer-Encoding") == 0)
        r->chunked = true;
    return 0;
}

static int on_headers(http_parser *p)
{
    struct gf_kst_client *c = p->data;
    cur(c)->status = (int)p->status_code;
    if (c->expect_head) {
        c->expect_head = false;
        return 1; /* http_parser: this response has no body */
    }
    return 0;
}

static int on_rbody(http_parser *p, const char *at, size_t n)
{
    struct gf_kst_client *c = p->data;
    gf_buf_append(&cur(c)->body, at, n);
    return 0;
}

static int on_done(http_parser *p)
{
    struct gf_kst_client *c = p->data;
    cur(c)->complete = true;
    return 0;
}

static const http_parser_settings rsettings = {
    .on_message_begin = on_begin,
    .on_header_field = on_hfield,
    .on_header_value = on_hvalue,
    .on_headers_complete = on_headers,
    .on_body = on_rbody,
    .on_message_complete = on_done,
};

static void feed(struct gf_kst_client *c, const char *d, size_t n)
{
    c->bytes += n;
    http_parser_execute(&c->parser, &rsettings, d, n);
}

static void on_wr(uv_write_t *w, int status)
{
    (void)status;
    gf_free(w);
}

static void raw_write(struct gf_kst_client *c, const char *d, size_t n)
{
    if (c->closed || n == 0)
        return;
    uv_write_t *w = gf_malloc(sizeof(*w) + n);
    char *copy = (char *)(w + 1);
    memcpy(copy, d, n);
    uv_buf_t b = uv_buf_init(copy, (unsigned)n);
    if (uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, on_wr) != 0)
        gf_free(w);
}

static void flush(struct gf_kst_client *c)
{
    char buf[16384];
    int n;
    while ((n = BIO_read(c->wbio, buf, sizeof(buf))) > 0)
        raw_write(c, buf, (size_t)n);
}

static void drive_tls(struct gf_kst_client *c)
{
    if (!c->tls_ok) {
        int r = SSL_do_handshake(c->ssl);
        flush(c);
        if (r != 1) {
            ERR_clear_error();
            return;
        }
        c->tls_ok = true;
    }
    char buf[16384];
    int n;
    while ((n = SSL_read(c->ssl, buf, sizeof(buf))) > 0)
        feed(c, buf, (size_t)n);
    ERR_clear_error();
    flush(c);
}

static void on_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
    (void)h;
    b->base = gf_malloc(s);
    b->len = s;
}

static void on_rd(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct gf_kst_client *c = s->data;
    if (n < 0) {
        c->eof = true;
        c->read_err = (int)n;
        uv_read_stop(s);
    } else if (n > 0 && c->ssl != NULL) {
        BIO_write(c->rbio, b->base, (int)n);
        drive_tls(c);
    } else if (n > 0) {
        feed(c, b->base, (size_t)n);
    }
    gf_free(b->base);
}

static void on_conn(uv_connect_t *req, int status)
{
    struct gf_kst_client *c = req->data;
    c->conn_err = status;
    if (status < 0) {
        c->eof = true;
        return;
    }
    c->connected = true;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_rd);
    if (c->ssl != NULL)
        drive_tls(c);
}

static void setup_tls(struct gf_kst_client *c, const char *ca_pem)
{
    c->ctx = SSL_CTX_new(TLS_client_method());
    BIO *b = BIO_new_mem_buf(ca_pem, -1);
    X509 *ca = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    assert_non_null(ca);
    X509_STORE_add_cert(SSL_CTX_get_cert_store(c->ctx), ca);
    X509_free(ca);
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    c->ssl = SSL_new(c->ctx);
    SSL_set1_host(c->ssl, "localhost");
    SSL_set_tlsext_host_name(c->ssl, "localhost");
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(c->rbio, -1);
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    SSL_set_connect_state(c->ssl);
}

void gf_kst_connect(struct gf_kst_client *c, uv_loop_t *loop, int port,
                    const char *ca_pem)
{
    memset(c, 0, sizeof(*c));
    c->loop = loop;
    http_parser_init(&c->parser, HTTP_RESPONSE);
    c->parser.data = c;
    if (ca_pem != NULL)
        setup_tls(c, ca_pem);
    assert_int_equal(uv_tcp_init(loop, &c->tcp), 0);
    c->tcp.data = c;
    c->open = true;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", port, &a);
    c->creq.data = c;
    assert_int_equal(
        uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&a, on_conn),
        0);
}

void gf_kst_send(struct gf_kst_client *c, const char *data)
{
    if (c->ssl == NULL) {
        raw_write(c, data, strlen(data));
        return;
    }
    assert_int_equal(SSL_write(c->ssl, data, (int)strlen(data)),
                     (int)strlen(data));
    flush(c);
}

void gf_kst_pause(struct gf_kst_client *c, bool paused)
{
    if (paused)
        uv_read_stop((uv_stream_t *)&c->tcp);
    else
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_rd);
}

static void on_closed(uv_handle_t *h)
{
    struct gf_kst_client *c = h->data;
    c->open = false;
}

void gf_kst_close(struct gf_kst_client *c)
{
    if (c->closed)
        return;
    c->closed = true;
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

void gf_kst_free(struct gf_kst_client *c)
{
    for (size_t i = 0; i < c->n_resp; i++)
        gf_buf_free(&c->resp[i].body);
    SSL_free(c->ssl);
    SSL_CTX_free(c->ctx);
    c->ssl = NULL;
    c->ctx = NULL;
    c->n_resp = 0;
}

void gf_kst_run_until(uv_loop_t *loop, bool (*pred)(void *), void *arg)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!pred(arg)) {
        uv_run(loop, UV_RUN_NOWAIT);
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 20)
            fail_msg("condition not reached within 20 s");
    }
}

void gf_kst_spin(uv_loop_t *loop, int n)
{
    for (int i = 0; i < n; i++)
        uv_run(loop, UV_RUN_NOWAIT);
}

bool gf_kst_has_responses(void *arg)
{
    struct gf_kst_wait *w = arg;
    size_t done = 0;
    for (size_t i = 0; i < w->c->n_resp; i++)
        done += w->c->resp[i].complete;
    return done >= w->n;
}

bool gf_kst_is_eof(void *client)
{
    return ((struct gf_kst_client *)client)->eof;
}

bool gf_kst_is_connected(void *client)
{
    struct gf_kst_client *c = client;
    return c->connected && (c->ssl == NULL || c->tls_ok);
}
