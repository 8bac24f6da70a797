/*
 * Tests for kubesim's HTTPS server with a fake handler in place of the
 * REST layer: TLS with verification against the generated CA, keep-alive
 * and pipelining, chunked streams, a client leaving mid-watch, body and
 * header caps, slow watchers, authentication, and every fault kind as a
 * client socket sees it. Latency and fault expiry run on the manual
 * clock; the sockets are real (127.0.0.1) on the test's own loop.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/err.h"
#include "e2e/kubesim/auth.h"
#include "e2e/kubesim/certs.h"
#include "e2e/kubesim/cluster.h"
#include "e2e/kubesim/fault.h"
#include "e2e/kubesim/server.h"
#include "e2e/kubesim/test/ks_tclient.h"
#include "kubeclient/global.h"
#include "kubeclient/kubeconfig.h"

struct fake_call {
    const struct gf_ks_api_out *out;
};

struct fx {
    uv_loop_t loop;
    struct gf_clock clk;
    struct gf_ks_certs *certs;
    struct gf_ks_auth *auth;
    struct gf_ks_faults *faults;
    struct gf_ks_server *srv;
    struct fake_call *call; /* the live stream, if any */
    int cancels;
    int writables; /* writable() calls */
    bool paced;    /* start_server sets the writable hook */
    int handled;
    char last_user[128];
    int64_t baseline;
    /* /ctl: a controller's turn, queued by the handler as Kueue-lite's
     * reconcile is by a write, and whether the answer was on the wire
     * when it ran. */
    uv_timer_t ctl;
    struct gf_kst_client *ctl_client;
    int ctl_turns;
    bool ctl_answer_sent;
};

static void on_ctl_turn(uv_timer_t *t)
{
    struct fx *f = t->data;
    uv_os_fd_t fd;
    char b;
    f->ctl_turns++;
    f->ctl_answer_sent =
        uv_fileno((const uv_handle_t *)&f->ctl_client->tcp, &fd) == 0 &&
        recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 1;
}

static void fake_handle(void *data, const struct gf_ks_api_req *req,
                        const struct gf_ks_api_out *out,
                        struct gf_ks_api_call **call)
{
    struct fx *f = data;
    f->handled++;
    snprintf(f->last_user, sizeof(f->last_user), "%s", req->user);
    *call = NULL;
    if (strcmp(req->path, "/watch") == 0) {
        out->stream_begin(out->ctx, 200, "application/json");
        assert_int_equal(out->stream_write(out->ctx, "{\"n\":1}\n", 8), 0);
        f->call = calloc(1, sizeof(*f->call));
        f->call->out = out;
        *call = (struct gf_ks_api_call *)f->call;
        return;
    }
    if (strcmp(req->path, "/echo") == 0) {
        out->reply(out->ctx, 200, "text/plain", req->body, req->body_len);
        return;
    }
    if (strcmp(req->path, "/big") == 0) {
        static char big[256 << 10];
        memset(big, 'b', sizeof(big));
        out->reply(out->ctx, 200, "text/plain", big, sizeof(big));
        return;
    }
    if (strcmp(req->path, "/ctl") == 0) {
        out->reply(out->ctx, 200, "text/plain", "written", 7);
        uv_timer_start(&f->ctl, on_ctl_turn, 0, 0);
        return;
    }
    if (strcmp(req->path, "/a b") == 0) {
        out->reply(out->ctx, 200, "text/plain", "decoded", 7);
        return;
    }
    char body[256];
    int n = snprintf(body, sizeof(body), "%s %s?%s", req->method, req->path,
                     req->query != NULL ? req->query : "");
    out->reply(out->ctx, 200, "text/plain", body, (size_t)n);
}

static void fake_cancel(void *data, struct gf_ks_api_call *call)
{
    struct fx *f = data;
    assert_ptr_equal(call, f->call);
    f->cancels++;
    free(f->call);
    f->call = NULL;
}

static void fake_writable(void *data, struct gf_ks_api_call *call)
{
    struct fx *f = data;
    assert_ptr_equal(call, f->call);
    f->writables++;
}

/* What the API layer does when it ends a stream. */
static void fake_end(struct fx *f)
{
    struct fake_call *fc = f->call;
    assert_non_null(fc);
    f->call = NULL;
    fc->out->stream_end(fc->out->ctx);
    free(fc);
}

static void start_server(struct fx *f, bool tls, size_t max_body,
                         size_t max_queued)
{
    struct gf_ks_server_opts o = {
        .loop = &f->loop,
        .clock = &f->clk,
        .name = "t",
        .tls = tls ? gf_ks_certs_server_ctx(f->certs) : NULL,
        .auth = f->auth,
        .faults = f->faults,
        .handle = fake_handle,
        .cancel = fake_cancel,
        .writable = f->paced ? fake_writable : NULL,
        .data = f,
        .max_body = max_body,
        .max_header = 4096,
        .max_queued = max_queued,
    };
    assert_int_equal(gf_ks_server_start(&o, &f->srv), 0);
    assert_true(gf_ks_server_port(f->srv) > 0);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    f->baseline = gf_alloc_live();
    assert_int_equal(uv_loop_init(&f->loop), 0);
    gf_clock_init_manual(&f->clk, 1000, 1700000000000);
    assert_int_equal(gf_ks_certs_new("test-ca", 1, &f->certs), 0);
    f->auth = gf_ks_auth_new();
    assert_int_equal(gf_ks_auth_add_defaults(f->auth), 0);
    f->faults = gf_ks_faults_new(&f->clk);
    start_server(f, true, 1024, 1 << 20);
    uv_timer_init(&f->loop, &f->ctl);
    f->ctl.data = f;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    gf_ks_server_close(f->srv);
    uv_close((uv_handle_t *)&f->ctl, NULL);
    /* Closing cancels a live stream synchronously. */
    assert_null(f->call);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    gf_ks_faults_free(f->faults);
    gf_ks_auth_free(f->auth);
    gf_ks_certs_free(f->certs);
    assert_int_equal(gf_clock_active_timers(&f->clk), 0);
    gf_clock_close(&f->clk);
    assert_int_equal(gf_alloc_live(), f->baseline);
    free(f);
    return 0;
}

/* ---- helpers ----------------------------------------------------------- */

static const char *token(struct fx *f, const char *identity)
{
    return gf_ks_auth_identity(f->auth, identity)->token;
}

static void connect_tls(struct fx *f, struct gf_kst_client *c)
{
    gf_kst_connect(c, &f->loop, gf_ks_server_port(f->srv),
                   gf_ks_certs_ca_pem(f->certs, NULL));
    gf_kst_run_until(&f->loop, gf_kst_is_connected, c);
}

static void send_req(struct fx *f, struct gf_kst_client *c, const char *method,
                     const char *path, const char *identity, const char *body)
{
    char buf[8192];
    char auth[200] = "";
    if (identity != NULL)
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n",
                 token(f, identity));
    snprintf(buf, sizeof(buf),
             "%s %s HTTP/1.1\r\nHost: localhost\r\n%sContent-Length: "
             "%zu\r\n\r\n%s",
             method, path, auth, body != NULL ? strlen(body) : 0,
             body != NULL ? body : "");
    gf_kst_send(c, buf);
}

static void wait_responses(struct fx *f, struct gf_kst_client *c, size_t n)
{
    struct gf_kst_wait w = {c, n};
    gf_kst_run_until(&f->loop, gf_kst_has_responses, &w);
}

static void finish(struct fx *f, struct gf_kst_client *c)
{
    gf_kst_close(c);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    gf_kst_free(c);
}

static bool no_conns(void *arg)
{
    struct fx *f = arg;
    return gf_ks_server_conns(f->srv) == 0;
}

static bool canceled(void *arg)
{
    struct fx *f = arg;
    return f->cancels > 0;
}

static const char *body_of(const struct gf_kst_client *c, size_t i)
{
    return gf_buf_cstr(&c->resp[i].body);
}

/* ---- tests ------------------------------------------------------------- */

static void test_tls_verified_and_keepalive_pipelined(void **state)
{
    struct fx *f = *state;
    struct gf_kst_client c;
    connect_tls(f, &c);
    assert_int_equal(SSL_get_verify_result(c.ssl), X509_V_OK);
    /* Two requests in one write: answered in order, on one connection. */
    char two[1024];
    snprintf(two, sizeof(two),
             "GET /api?x=1 HTTP/1.1\r\nAuthorization: Bearer %s\r\n\r\n"
             "GET /apis HTTP/1.1\r\nAuthorization: Bearer %s\r\n\r\n",
             token(f, "admin"), token(f, "admin"));
    gf_kst_send(&c, two);
    wait_responses(f, &c, 2);
    assert_int_equal(c.resp[0].status, 200);
    assert_string_equal(body_of(&c, 0), "GET /api?x=1");
    assert_string_equal(body_of(&c, 1), "GET /apis?");
    send_req(f, &c, "GET", "/a%20b", "admin", NULL);
    wait_responses(f, &c, 3);
    assert_string_equal(body_of(&c, 2), "decoded");
    /* HEAD: the headers of a GET, no body; the connection stays usable. */
    c.expect_head = true;
    send_req(f, &c, "HEAD", "/api", "admin", NULL);
    send_req(f, &c, "GET", "/api", "admin", NULL);
    wait_responses(f, &c, 5);
    assert_int_equal(c.resp[3].status, 200);
    assert_int_equal(c.resp[3].body.len, 0);
    assert_string_equal(body_of(&c, 4), "GET /api?");
    assert_int_equal(gf_ks_server_stats(f->srv)->accepted, 1);
    assert_string_equal(f->last_user, "kubesim-admin");
    finish(f, &c);
}

/*
 * An answer goes out in the loop turn its request was read, before the
 * next turn's timers run the simulated controllers (Kueue-lite's
 * reconcile after a write): a real API server's answer never waits for
 * them. It used to be flushed from an idle handle, after those timers.
 */
static void test_answer_is_sent_before_the_controllers_turn(void **state)
{
    struct fx *f = *state;
    struct gf_kst_client c;
    connect_tls(f, &c);
    f->ctl_client = &c;
    send_req(f, &c, "PATCH", "/ctl", "admin", NULL);
    wait_responses(f, &c, 1);
    assert_string_equal(body_of(&c, 0), "written");
    assert_int_equal(f->ctl_turns, 1);
    assert_true(f->ctl_answer_sent);
    finish(f, &c);
}

static void test_unauthenticated_gets_401_status(void **state)
{
    struct fx *f = *state;
    struct gf_kst_client c;
    connect_tls(f, &c);
    send_req(f, &c, "GET", "/api", NULL, NULL);
    gf_kst_send(&c, "GET /api HTTP/1.1\r\nAuthorization: Bearer nope\r\n\r\n");
    send_req(f, &c, "GET", "/api", "member-agent", NULL);
    wait_responses(f, &c, 3);
    assert_int_equal(c.resp[0].status, 401);
    assert_non_null(strstr(body_of(&c, 0), "\"reason\":\"Unauthorized\""));
    assert_non_null(strstr(body_of(&c, 0), "\"kind\":\"Status\""));
    assert_int_equal(c.resp[1].status, 401);
    assert_int_equal(c.resp[2].status, 200);
    assert_string_equal(f->last_user,
                        "system:serviceaccount:gpufed-system:gpufed-agent");
    assert_int_equal(f->handled, 1);
    finish(f, &c);
}

static bool got_bytes(void *arg)
{
    struct gf_kst_client *c = arg;
    return c->n_resp > 0 && c->resp[0].body.len > 0;
}

static bool got_bytes_at5(void *arg)
{
    struct gf_kst_client *c = arg;
    return c->n_resp > 5 && c->resp[5].body.len > 0;
}

static void open_watch(struct fx *f, struct gf_kst_client *c,
                       const char *identity)
{
    send_req(f, c, "GET", "/watch", identity, NULL);
    gf_kst_run_until(&f->loop, got_bytes, c);
    assert_non_null(f->call);
}

static void test_chunked_stream_then_keepalive(void **state)
{
    struct fx *f = *state;
    struct gf_kst_client c;
    connect_tls(f, &c);
    open_watch(f, &c, "admin");
    /* Pipelined behind the stream: it must wait until the stream ends. */
    send_req(f, &c, "GET", "/after", "admin", NULL);
    gf_kst_spin(&f->loop, 50);
    assert_int_equal(f->handled, 1);
    assert_int_equal(c.n_resp, 1);
    assert_true(c.resp[0].chunked);
    assert_false(c.resp[0].complete);
    assert_int_equal(
        f->call->out->stream_write(f->call->out->ctx, "{\"n\":2}\n", 8), 0);
    fake_end(f);
    wait_responses(f, &c, 2);
    assert_string_equal(body_of(&c, 0), "{\"n\":1}\n{\"n\":2}\n");
    assert_string_equal(body_of(&c, 1), "GET /after?");
    assert_int_equal(gf_ks_server_stats(f->srv)->streams, 1);
    assert_int_equal(gf_ks_server_stats(f->srv)->accepted, 1);
    finish(f, &c);
}

static void test_client_gone_mid_watch_cancels(void **state)
{
    struct fx *f = *state;
    struct gf_kst_client c;
    connect_tls(f, &c);
    open_watch(f, &c, "admin");
    finish(f, &c);
    gf_kst_run_until(&f->loop, canceled, f);
    assert_int_equal(f->cancels, 1);
    assert_null(f->call);
    gf_kst_run_until(&f->loop, no_conns, f);
}

static void test_body_and_header_caps(void **state)
{
    struct fx *f = *state;
    char body[2001];
    memset(body, 'x', sizeof(body) - 1);
    body[sizeof(body) - 1] = '\0';
    body[1000] = '\0';
    struct gf_kst_client c;
    connect_tls(f, &c);
    send_req(f, &c, "POST", "/echo", "admin", body);
    wait_responses(f, &c, 1);
    assert_int_equal(c.resp[0].status, 200);
    assert_int_equal(c.resp[0].body.len, 1000);
    /* Over the cap: 413 before the handler sees anything, then close. */
    body[1000] = 'x';
    send_req(f, &c, "POST", "/echo", "admin", body);
    wait_responses(f, &c, 2);
    assert_int_equal(c.resp[1].status, 413);
    assert_non_null(strstr(body_of(&c, 1), "RequestEntityTooLarge"));
    gf_kst_run_until(&f->loop, gf_kst_is_eof, &c);
    assert_int_equal(f->handled, 1);
    finish(f, &c);

    struct gf_kst_client h;
    connect_tls(f, &h);
    char big[6000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    char req[7000];
    snprintf(req, sizeof(req), "GET /api HTTP/1.1\r\nX-Big: %s\r\n\r\n", big);
    gf_kst_send(&h, req);
    wait_responses(f, &h, 1);
    assert_int_equal(h.resp[0].status, 431);
    gf_kst_run_until(&f->loop, gf_kst_is_eof, &h);
    finish(f, &h);
}

static void test_expect_continue(void **state)
{
    struct fx *f = *state;
    struct gf_kst_client c;
    connect_tls(f, &c);
    char req[512];
    snprintf(req, sizeof(req),
             "POST /echo HTTP/1.1\r\nAuthorization: Bearer %s\r\nExpect: "
             "100-continue\r\nContent-Length: 5\r\n\r\n",
             token(f, "admin"));
    gf_kst_send(&c, req);
    /* The interim answer comes before any body byte is sent. */
    wait_responses(f, &c, 1);
    assert_int_equal(c.resp[0].status, 100);
    gf_kst_send(&c, "hello");
    wait_responses(f, &c, 2);
    assert_int_equal(c.resp[1].status, 200);
    assert_string_equal(body_of(&c, 1), "hello");
    finish(f, &c);
}

static bool all_40(void *arg)
{
    struct gf_kst_wait w = {arg, 40};
    return gf_kst_has_responses(&w);
}

static void test_pipelined_replies_wait_for_a_slow_reader(void **state)
{
    struct fx *f = *state;
    struct gf_kst_client c;
    connect_tls(f, &c);
    gf_kst_pause(&c, true);
    char one[256];
    snprintf(one, sizeof(one),
             "GET /big HTTP/1.1\r\nAuthorization: Bearer %s\r\n\r\n",
             token(f, "admin"));
    static char many[40 * 256];
    many[0] = '\0';
    for (int i = 0; i < 40; i++)
        strncat(many, one, sizeof(many) - strlen(many) - 1);
    gf_kst_send(&c, many);
    gf_kst_spin(&f->loop, 300);
    /* 10 MB asked for, 1 MB of queue allowed: the server stopped early. */
    assert_true(f->handled > 0);
    assert_true(f->handled < 40);
    gf_kst_pause(&c, false);
    gf_kst_run_until(&f->loop, all_40, &c);
    assert_int_equal(f->handled, 40);
    assert_int_equal(c.resp[39].body.len, 256 << 10);
    finish(f, &c);
}

static void test_not_tls_on_the_tls_port(void **state)
{
    struct fx *f = *state;
    struct gf_kst_client c;
    /* Plain HTTP to the TLS port: a failed handshake, the socket closed. */
    gf_kst_connect(&c, &f->loop, gf_ks_server_port(f->srv), NULL);
    send_req(f, &c, "GET", "/api", "admin", NULL);
    gf_kst_run_until(&f->loop, gf_kst_is_eof, &c);
    assert_int_equal(c.n_resp, 0);
    assert_int_equal(gf_ks_server_stats(f->srv)->tls_failures, 1);
    assert_int_equal(f->handled, 0);
    finish(f, &c);
    gf_kst_run_until(&f->loop, no_conns, f);
}

static void test_close_cancels_streams_at_once(void **state)
{
    struct fx *f = *state;
    struct gf_kst_client c;
    connect_tls(f, &c);
    open_watch(f, &c, "admin");
    gf_ks_server_close(f->srv);
    /* The server frees itself once libuv has closed its handles. */
    f->srv = NULL;
    /* Synchronous: the handler's state may be freed right after close. */
    assert_int_equal(f->cancels, 1);
    assert_null(f->call);
    gf_kst_run_until(&f->loop, gf_kst_is_eof, &c);
    finish(f, &c);
}

static bool refused_or_connected(void *arg)
{
    struct gf_kst_client *c = arg;
    return c->conn_err != 0 || gf_kst_is_connected(c);
}

static void test_pause_refuses_then_listens_again(void **state)
{
    struct fx *f = *state;
    struct gf_kst_client w, r, ok;
    connect_tls(f, &w);
    open_watch(f, &w, "admin");
    int port = gf_ks_server_port(f->srv);
    assert_int_equal(gf_ks_server_pause(f->srv, 2000), 1);
    assert_false(gf_ks_server_listening(f->srv));
    assert_int_equal(f->cancels, 1);
    gf_kst_run_until(&f->loop, gf_kst_is_eof, &w);
    /* While down: connection refused. */
    gf_kst_connect(&r, &f->loop, port, gf_ks_certs_ca_pem(f->certs, NULL));
    gf_kst_run_until(&f->loop, refused_or_connected, &r);
    assert_int_equal(r.conn_err, UV_ECONNREFUSED);
    /* A second pause extends the first. */
    gf_clock_advance(&f->clk, 1000);
    gf_ks_server_pause(f->srv, 2000);
    gf_clock_advance(&f->clk, 1500);
    assert_false(gf_ks_server_listening(f->srv));
    gf_clock_advance(&f->clk, 500);
    assert_true(gf_ks_server_listening(f->srv));
    /* Back on the same port. */
    connect_tls(f, &ok);
    send_req(f, &ok, "GET", "/api", "admin", NULL);
    wait_responses(f, &ok, 1);
    assert_int_equal(gf_ks_server_port(f->srv), port);
    finish(f, &w);
    finish(f, &r);
    finish(f, &ok);
}

static void test_port_in_use(void **state)
{
    struct fx *f = *state;
    struct gf_ks_server_opts o = {
        .loop = &f->loop,
        .clock = &f->clk,
        .port = gf_ks_server_port(f->srv),
        .handle = fake_handle,
        .cancel = fake_cancel,
        .writable = f->paced ? fake_writable : NULL,
        .data = f,
    };
    struct gf_ks_server *second = NULL;
    assert_int_equal(gf_ks_server_start(&o, &second), UV_EADDRINUSE);
    assert_null(second);
    /* Teardown runs the loop and checks that nothing leaked. */
}

static void test_malformed_request_400(void **state)
{
    struct fx *f = *state;
    struct gf_kst_client c;
    connect_tls(f, &c);
    gf_kst_send(&c, "GARBAGE\r\n\r\n");
    wait_responses(f, &c, 1);
    assert_int_equal(c.resp[0].status, 400);
    gf_kst_run_until(&f->loop, gf_kst_is_eof, &c);
    assert_int_equal(f->handled, 0);
    finish(f, &c);
}

static void test_slow_watcher_dropped(void **state)
{
    struct fx *f = *state;
    struct gf_kst_client c;
    connect_tls(f, &c);
    open_watch(f, &c, "admin");
    gf_kst_pause(&c, true);
    static char chunk[64 << 10];
    memset(chunk, 'e', sizeof(chunk));
    int rc = 0;
    /* The guard is 256 MB: far beyond any socket buffer. */
    for (int i = 0; i < 4096 && rc == 0; i++)
        rc =
            f->call->out->stream_write(f->call->out->ctx, chunk, sizeof(chunk));
    assert_int_equal(rc, GF_E2BIG);
    assert_int_equal(gf_ks_server_stats(f->srv)->dropped, 1);
    /* The API layer ends the stream; the server closes the connection. */
    fake_end(f);
    gf_kst_run_until(&f->loop, no_conns, f);
    assert_int_equal(f->cancels, 0);
    finish(f, &c);
}

static bool got_writable(void *arg)
{
    struct fx *f = arg;
    return f->writables > 0;
}

/* With the writable hook, a stream is paced by its client: stream_write
 * says "behind" long before the drop cap, and writable() follows once
 * the client has read. */
static void test_stream_paced_by_the_client(void **state)
{
    struct fx *f = *state;
    gf_ks_server_close(f->srv);
    f->paced = true;
    start_server(f, true, 1024, 1 << 20);
    struct gf_kst_client c;
    connect_tls(f, &c);
    open_watch(f, &c, "admin");
    gf_kst_pause(&c, true);
    static char chunk[64 << 10];
    memset(chunk, 'e', sizeof(chunk));
    int rc = 0, n = 0;
    while (rc == 0 && n < 4096) {
        rc =
            f->call->out->stream_write(f->call->out->ctx, chunk, sizeof(chunk));
        n++;
    }
    assert_int_equal(rc, 1);
    assert_int_equal(gf_ks_server_stats(f->srv)->dropped, 0);
    /* Nothing is owed while the client does not read. */
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->writables, 0);
    gf_kst_pause(&c, false);
    gf_kst_run_until(&f->loop, got_writable, f);
    assert_int_equal(f->writables, 1);
    /* Everything written arrived: nothing was dropped on the way. */
    assert_int_equal(gf_ks_server_stats(f->srv)->dropped, 0);
    fake_end(f);
    finish(f, &c);
}

/* Connection: close over TLS: the reply goes out, then the close. */
static void test_connection_close_gets_its_reply(void **state)
{
    struct fx *f = *state;
    struct gf_kst_client c;
    connect_tls(f, &c);
    char req[512];
    snprintf(req, sizeof(req),
             "GET /x HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer "
             "%s\r\nConnection: close\r\n\r\n",
             token(f, "admin"));
    gf_kst_send(&c, req);
    wait_responses(f, &c, 1);
    assert_string_equal(body_of(&c, 0), "GET /x?");
    gf_kst_run_until(&f->loop, gf_kst_is_eof, &c);
    finish(f, &c);
}

static void test_plain_http(void **state)
{
    struct fx *f = *state;
    gf_ks_server_close(f->srv);
    start_server(f, false, 1024, 1 << 20);
    struct gf_kst_client c;
    gf_kst_connect(&c, &f->loop, gf_ks_server_port(f->srv), NULL);
    send_req(f, &c, "DELETE", "/x", "admin", NULL);
    wait_responses(f, &c, 1);
    assert_string_equal(body_of(&c, 0), "DELETE /x?");
    finish(f, &c);
}

static void test_cut_all_cancels_streams(void **state)
{
    struct fx *f = *state;
    struct gf_kst_client w, idle;
    connect_tls(f, &w);
    connect_tls(f, &idle);
    open_watch(f, &w, "gpufed-hub");
    assert_int_equal(gf_ks_server_cut(f->srv, "admin", true, false), 0);
    assert_int_equal(gf_ks_server_cut(f->srv, "gpufed-hub", true, false), 1);
    assert_int_equal(f->cancels, 1);
    gf_kst_run_until(&f->loop, gf_kst_is_eof, &w);
    assert_false(w.resp[0].complete);
    assert_int_equal(gf_ks_server_cut(f->srv, NULL, false, false), 1);
    gf_kst_run_until(&f->loop, gf_kst_is_eof, &idle);
    finish(f, &w);
    finish(f, &idle);
}

/* ---- faults, each as a client sees it ---------------------------------- */

static void add_fault(struct fx *f, enum gf_ks_fault_kind kind,
                      const char *identity, uint64_t for_ms)
{
    struct gf_ks_fault_spec sp = {
        .kind = kind, .identity = identity, .for_ms = for_ms};
    assert_true(gf_ks_faults_add(f->faults, &sp) > 0);
}

static void test_fault_blackhole(void **state)
{
    struct fx *f = *state;
    struct gf_kst_client old, fresh, other;
    connect_tls(f, &old);
    connect_tls(f, &other);
    send_req(f, &other, "GET", "/api", "admin", NULL);
    wait_responses(f, &other, 1);
    add_fault(f, GF_KS_FAULT_BLACKHOLE, NULL, 0);
    /* An existing connection falls silent. */
    send_req(f, &old, "GET", "/api", "admin", NULL);
    /* A new one connects (TCP) but never completes the handshake. */
    gf_kst_connect(&fresh, &f->loop, gf_ks_server_port(f->srv),
                   gf_ks_certs_ca_pem(f->certs, NULL));
    gf_kst_spin(&f->loop, 200);
    assert_true(fresh.connected);
    assert_false(fresh.tls_ok);
    assert_int_equal(old.n_resp, 0);
    assert_false(old.eof);
    assert_int_equal(f->handled, 1);
    /* Healing resets the silenced connections so clients reconnect. */
    gf_ks_faults_clear(f->faults);
    gf_kst_run_until(&f->loop, gf_kst_is_eof, &old);
    gf_kst_run_until(&f->loop, gf_kst_is_eof, &fresh);
    gf_kst_run_until(&f->loop, gf_kst_is_eof, &other);
    finish(f, &old);
    finish(f, &fresh);
    finish(f, &other);
}

static void test_fault_blackhole_one_identity(void **state)
{
    struct fx *f = *state;
    struct gf_kst_client hub, admin;
    connect_tls(f, &hub);
    connect_tls(f, &admin);
    add_fault(f, GF_KS_FAULT_BLACKHOLE, "gpufed-hub", 0);
    send_req(f, &hub, "GET", "/api", "gpufed-hub", NULL);
    send_req(f, &admin, "GET", "/api", "admin", NULL);
    wait_responses(f, &admin, 1);
    gf_kst_spin(&f->loop, 100);
    assert_int_equal(hub.n_resp, 0);
    assert_false(hub.eof);
    finish(f, &hub);
    finish(f, &admin);
}

static void test_fault_reset(void **state)
{
    struct fx *f = *state;
    struct gf_kst_client old, fresh;
    connect_tls(f, &old);
    send_req(f, &old, "GET", "/api", "admin", NULL);
    wait_responses(f, &old, 1);
    add_fault(f, GF_KS_FAULT_RESET, NULL, 1000);
    gf_kst_run_until(&f->loop, gf_kst_is_eof, &old);
    assert_int_equal(old.read_err, UV_ECONNRESET);
    gf_kst_connect(&fresh, &f->loop, gf_ks_server_port(f->srv),
                   gf_ks_certs_ca_pem(f->certs, NULL));
    gf_kst_run_until(&f->loop, gf_kst_is_eof, &fresh);
    assert_false(fresh.tls_ok);
    finish(f, &old);
    finish(f, &fresh);
    /* The fault ends with its duration. */
    gf_clock_advance(&f->clk, 1000);
    struct gf_kst_client later;
    connect_tls(f, &later);
    send_req(f, &later, "GET", "/api", "admin", NULL);
    wait_responses(f, &later, 1);
    finish(f, &later);
}

static void test_fault_reset_one_identity(void **state)
{
    struct fx *f = *state;
    add_fault(f, GF_KS_FAULT_RESET, "member-agent", 0);
    struct gf_kst_client agent, admin;
    connect_tls(f, &agent);
    connect_tls(f, &admin);
    send_req(f, &agent, "GET", "/api", "member-agent", NULL);
    send_req(f, &admin, "GET", "/api", "admin", NULL);
    gf_kst_run_until(&f->loop, gf_kst_is_eof, &agent);
    assert_int_equal(agent.read_err, UV_ECONNRESET);
    assert_int_equal(agent.n_resp, 0);
    wait_responses(f, &admin, 1);
    finish(f, &agent);
    finish(f, &admin);
}

static void test_fault_latency_on_manual_clock(void **state)
{
    struct fx *f = *state;
    struct gf_ks_fault_spec sp = {.kind = GF_KS_FAULT_LATENCY,
                                  .latency_ms = 500};
    assert_true(gf_ks_faults_add(f->faults, &sp) > 0);
    struct gf_kst_client c;
    connect_tls(f, &c);
    send_req(f, &c, "GET", "/api", "admin", NULL);
    gf_kst_spin(&f->loop, 100);
    assert_int_equal(c.n_resp, 0);
    gf_clock_advance(&f->clk, 499);
    gf_kst_spin(&f->loop, 50);
    assert_int_equal(c.n_resp, 0);
    gf_clock_advance(&f->clk, 1);
    wait_responses(f, &c, 1);
    assert_int_equal(c.resp[0].status, 200);
    finish(f, &c);
}

static void test_fault_5xx_burst_with_retry_after(void **state)
{
    struct fx *f = *state;
    struct gf_ks_fault_spec sp = {
        .kind = GF_KS_FAULT_5XX, .retry_after_s = 3, .count = 2};
    assert_true(gf_ks_faults_add(f->faults, &sp) > 0);
    struct gf_kst_client c;
    connect_tls(f, &c);
    for (int i = 0; i < 3; i++)
        send_req(f, &c, "GET", "/api", "admin", NULL);
    wait_responses(f, &c, 3);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(c.resp[i].status, 503);
        assert_string_equal(c.resp[i].retry_after, "3");
        assert_non_null(strstr(body_of(&c, (size_t)i), "ServiceUnavailable"));
        assert_non_null(
            strstr(body_of(&c, (size_t)i), "\"retryAfterSeconds\":3"));
    }
    assert_int_equal(c.resp[2].status, 200);
    assert_int_equal(gf_ks_faults_count(f->faults), 0);
    finish(f, &c);
}

static void test_fault_429_one_identity_until_expiry(void **state)
{
    struct fx *f = *state;
    add_fault(f, GF_KS_FAULT_429, "gpufed-hub", 2000);
    struct gf_kst_client c;
    connect_tls(f, &c);
    send_req(f, &c, "GET", "/api", "gpufed-hub", NULL);
    send_req(f, &c, "GET", "/api", "admin", NULL);
    wait_responses(f, &c, 2);
    assert_int_equal(c.resp[0].status, 429);
    assert_string_equal(c.resp[0].retry_after, "1");
    assert_non_null(strstr(body_of(&c, 0), "TooManyRequests"));
    assert_int_equal(c.resp[1].status, 200);
    gf_clock_advance(&f->clk, 2000);
    send_req(f, &c, "GET", "/api", "gpufed-hub", NULL);
    wait_responses(f, &c, 3);
    assert_int_equal(c.resp[2].status, 200);
    finish(f, &c);
}

static void test_fault_watch_drop(void **state)
{
    struct fx *f = *state;
    struct gf_kst_client w1, w2, plain;
    connect_tls(f, &w1);
    connect_tls(f, &plain);
    open_watch(f, &w1, "gpufed-hub");
    add_fault(f, GF_KS_FAULT_WATCH_DROP, NULL, 5000);
    /* The open watch is cut mid-stream: no terminating chunk. */
    gf_kst_run_until(&f->loop, gf_kst_is_eof, &w1);
    assert_false(w1.resp[0].complete);
    assert_int_equal(f->cancels, 1);
    /* A new watch is cut too; plain requests are served. */
    connect_tls(f, &w2);
    send_req(f, &w2, "GET", "/watch", "gpufed-hub", NULL);
    gf_kst_run_until(&f->loop, gf_kst_is_eof, &w2);
    assert_int_equal(f->cancels, 2);
    send_req(f, &plain, "GET", "/api", "gpufed-hub", NULL);
    wait_responses(f, &plain, 1);
    finish(f, &w1);
    finish(f, &w2);
    /* After the duration, watches stay open again. */
    gf_clock_advance(&f->clk, 5000);
    struct gf_kst_client w3;
    connect_tls(f, &w3);
    open_watch(f, &w3, "gpufed-hub");
    gf_kst_spin(&f->loop, 50);
    assert_false(w3.eof);
    fake_end(f);
    wait_responses(f, &w3, 1);
    finish(f, &w3);
    finish(f, &plain);
}

/* ---- through real clusters: api + rbac + auth + admin endpoint --------- */

struct world_fx {
    struct gf_ks_world *w;
    char dir[64];
};

static void world_start(struct fx *f, struct world_fx *x)
{
    static const char *const names[] = {"hub", "east"};
    static const char *const devs[] = {"devs", NULL};
    static const struct gf_ks_identity_spec extra[] = {
        {"team-a", "alice", devs}};
    struct gf_ks_world_opts o = {
        .loop = &f->loop,
        .clock = &f->clk,
        .clusters = names,
        .n_clusters = 2,
        .seed = 11,
        .identities = extra,
        .n_identities = 1,
    };
    assert_int_equal(gf_ks_world_new(&o, &x->w), 0);
    snprintf(x->dir, sizeof(x->dir), "/tmp/kubesim-test-XXXXXX");
    assert_non_null(mkdtemp(x->dir));
    assert_int_equal(gf_ks_world_write_files(x->w, x->dir), 0);
}

static void rm_file(const char *dir, const char *name)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    unlink(p);
}

static void world_stop(struct world_fx *x)
{
    gf_ks_world_close(x->w);
    static const char *const files[] = {"hub/kubeconfig-admin.yaml",
                                        "hub/kubeconfig-gpufed-hub.yaml",
                                        "hub/kubeconfig-member-agent.yaml",
                                        "east/kubeconfig-admin.yaml",
                                        "east/kubeconfig-gpufed-hub.yaml",
                                        "east/kubeconfig-member-agent.yaml",
                                        "admin",
                                        "ready",
                                        "ca.crt",
                                        "admin-token",
                                        "hub/kubeconfig-team-a.yaml",
                                        "east/kubeconfig-team-a.yaml"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        rm_file(x->dir, files[i]);
    char p[256];
    snprintf(p, sizeof(p), "%s/hub", x->dir);
    assert_int_equal(rmdir(p), 0);
    snprintf(p, sizeof(p), "%s/east", x->dir);
    assert_int_equal(rmdir(p), 0);
    assert_int_equal(rmdir(x->dir), 0);
}

static char *slurp(const char *dir, const char *name)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *fp = fopen(p, "r");
    assert_non_null(fp);
    static char buf[8192];
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    return buf;
}

static void test_world_files(void **state)
{
    struct fx *f = *state;
    struct world_fx x;
    world_start(f, &x);
    struct gf_ks_cluster *hub = gf_ks_world_find(x.w, "hub");
    assert_non_null(hub);
    char want[64];
    snprintf(want, sizeof(want), "hub %d\neast %d\n", gf_ks_cluster_port(hub),
             gf_ks_cluster_port(gf_ks_world_find(x.w, "east")));
    assert_string_equal(slurp(x.dir, "ready"), want);
    snprintf(want, sizeof(want), "127.0.0.1:%d\n", gf_ks_world_admin_port(x.w));
    assert_string_equal(slurp(x.dir, "admin"), want);

    struct stat sb;
    char p[256];
    snprintf(p, sizeof(p), "%s/hub/kubeconfig-member-agent.yaml", x.dir);
    assert_int_equal(stat(p, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    cJSON *kc = cJSON_Parse(slurp(x.dir, "hub/kubeconfig-member-agent.yaml"));
    assert_non_null(kc);
    const cJSON *cl =
        cJSON_GetArrayItem(cJSON_GetObjectItem(kc, "clusters"), 0);
    snprintf(want, sizeof(want), "https://127.0.0.1:%d",
             gf_ks_cluster_port(hub));
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(cl, "cluster"), "server")
            ->valuestring,
        want);
    const cJSON *u = cJSON_GetArrayItem(cJSON_GetObjectItem(kc, "users"), 0);
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(u, "user"), "token")
            ->valuestring,
        gf_ks_auth_identity(gf_ks_cluster_auth(hub), "member-agent")->token);
    assert_string_equal(cJSON_GetObjectItem(kc, "current-context")->valuestring,
                        "member-agent@hub");
    cJSON_Delete(kc);
    /* gpufed's own kubeconfig loader reads what we wrote. */
    struct gf_kube_creds *cr = NULL;
    struct gf_kubeconfig_error kerr;
    snprintf(p, sizeof(p), "%s/hub/kubeconfig-gpufed-hub.yaml", x.dir);
    if (gf_kubeconfig_load(p, NULL, &cr, &kerr) != 0)
        fail_msg("kubeconfig: %s:%u:%u %s", kerr.file, kerr.line, kerr.column,
                 kerr.msg);
    assert_string_equal(cr->server, want);
    assert_string_equal(
        cr->token,
        gf_ks_auth_identity(gf_ks_cluster_auth(hub), "gpufed-hub")->token);
    const char *ca = gf_ks_world_ca_pem(x.w);
    assert_int_equal(cr->ca_pem_len, strlen(ca));
    assert_memory_equal(cr->ca_pem, ca, cr->ca_pem_len);
    assert_false(cr->insecure_skip_tls_verify);
    gf_kube_creds_free(cr);
    /* Extra identities: a kubeconfig each, groups plus authenticated. */
    const struct gf_ks_principal *alice =
        gf_ks_auth_identity(gf_ks_cluster_auth(hub), "team-a");
    assert_non_null(alice);
    assert_string_equal(alice->user, "alice");
    assert_string_equal(alice->groups[0], "devs");
    assert_string_equal(alice->groups[1], "system:authenticated");
    assert_null(alice->groups[2]);
    snprintf(p, sizeof(p), "%s/east/kubeconfig-team-a.yaml", x.dir);
    assert_int_equal(stat(p, &sb), 0);
    /* Tokens differ per cluster. */
    assert_string_not_equal(
        gf_ks_auth_identity(gf_ks_cluster_auth(hub), "admin")->token,
        gf_ks_auth_identity(gf_ks_cluster_auth(gf_ks_world_find(x.w, "east")),
                            "admin")
            ->token);
    world_stop(&x);
}

struct hooks {
    int attached, detached, fail_at;
};

static int hook_attach(void *data, struct gf_ks_cluster *c)
{
    struct hooks *h = data;
    if (h->attached == h->fail_at)
        return -EIO;
    /* Attach runs on a cluster that is fully set up. */
    assert_non_null(gf_ks_api_store(gf_ks_cluster_api(c)));
    assert_true(gf_ks_cluster_port(c) > 0);
    gf_ks_cluster_set_user(c, h);
    h->attached++;
    return 0;
}

static void hook_detach(void *data, struct gf_ks_cluster *c)
{
    struct hooks *h = data;
    assert_ptr_equal(gf_ks_cluster_user(c), h);
    h->detached++;
}

static void test_world_hooks(void **state)
{
    struct fx *f = *state;
    static const char *const names[] = {"a", "b", "c"};
    struct hooks h = {.fail_at = -1};
    struct gf_ks_world_opts o = {
        .loop = &f->loop,
        .clock = &f->clk,
        .clusters = names,
        .n_clusters = 3,
        .attach = hook_attach,
        .detach = hook_detach,
        .hook_data = &h,
    };
    struct gf_ks_world *w = NULL;
    assert_int_equal(gf_ks_world_new(&o, &w), 0);
    assert_int_equal(h.attached, 3);
    gf_ks_world_close(w);
    assert_int_equal(h.detached, 3);
    /* A failing attach fails the world and detaches those that attached. */
    h = (struct hooks){.fail_at = 1};
    assert_int_equal(gf_ks_world_new(&o, &w), -EIO);
    assert_int_equal(h.attached, 1);
    assert_int_equal(h.detached, 1);
    /* Bad names are refused before anything starts. */
    static const char *const bad[] = {"ok", "Not_A_Label"};
    static const char *const dup[] = {"x", "x"};
    struct gf_ks_world_opts b = {
        .loop = &f->loop, .clock = &f->clk, .clusters = bad, .n_clusters = 2};
    assert_int_equal(gf_ks_world_new(&b, &w), -EINVAL);
    b.clusters = dup;
    assert_int_equal(gf_ks_world_new(&b, &w), -EINVAL);
}

static void send_tok(struct gf_kst_client *c, const char *method,
                     const char *path, const char *tok, const char *body)
{
    char buf[4096];
    snprintf(buf, sizeof(buf),
             "%s %s HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer "
             "%s\r\nContent-Type: application/json\r\nContent-Length: "
             "%zu\r\n\r\n%s",
             method, path, tok, body != NULL ? strlen(body) : 0,
             body != NULL ? body : "");
    gf_kst_send(c, buf);
}

static void test_world_rbac_and_admin_faults(void **state)
{
    struct fx *f = *state;
    struct world_fx x;
    world_start(f, &x);
    struct gf_ks_cluster *hub = gf_ks_world_find(x.w, "hub");
    const struct gf_ks_auth *au = gf_ks_cluster_auth(hub);
    const char *agent = gf_ks_auth_identity(au, "member-agent")->token;
    const char *admin = gf_ks_auth_identity(au, "admin")->token;

    struct gf_kst_client c;
    gf_kst_connect(&c, &f->loop, gf_ks_cluster_port(hub),
                   gf_ks_world_ca_pem(x.w));
    gf_kst_run_until(&f->loop, gf_kst_is_connected, &c);
    assert_int_equal(SSL_get_verify_result(c.ssl), X509_V_OK);
    send_tok(&c, "GET", "/api", agent, NULL);
    send_tok(&c, "GET", "/api/v1/namespaces/default/pods", agent, NULL);
    send_tok(&c, "GET", "/api/v1/namespaces/default/pods", admin, NULL);
    wait_responses(f, &c, 3);
    assert_int_equal(c.resp[0].status, 200); /* bootstrap discovery role */
    assert_int_equal(c.resp[1].status, 403);
    assert_non_null(strstr(body_of(&c, 1),
                           "pods is forbidden: User "
                           "\\\"system:serviceaccount:gpufed-system:gpufed-"
                           "agent\\\" cannot list resource \\\"pods\\\""));
    assert_int_equal(c.resp[2].status, 200);

    /* The admin endpoint, as the CLI uses it. */
    const char *at = gf_ks_world_admin_token(x.w);
    assert_string_equal(slurp(x.dir, "admin-token"), at);
    struct gf_kst_client a;
    gf_kst_connect(&a, &f->loop, gf_ks_world_admin_port(x.w), NULL);
    send_tok(&a, "POST", "/faults/hub", "wrong", "{\"kind\":\"reset\"}");
    send_tok(&a, "POST", "/faults/hub", at,
             "{\"kind\":\"429\",\"identity\":\"member-agent\"}");
    send_tok(&a, "POST", "/faults/nope", at, "{\"kind\":\"reset\"}");
    send_tok(&a, "POST", "/faults/*", at, "{\"kind\":\"latency\"}");
    send_tok(&a, "POST", "/faults/hub", at, "not json");
    send_tok(&a, "GET", "/faults", at, NULL);
    wait_responses(f, &a, 6);
    assert_int_equal(a.resp[0].status, 401);
    assert_int_equal(a.resp[1].status, 201);
    assert_string_equal(body_of(&a, 1), "{\"ids\":[1]}");
    assert_int_equal(a.resp[2].status, 404);
    assert_int_equal(a.resp[3].status, 400);
    assert_non_null(strstr(body_of(&a, 3), "latencyMs"));
    assert_int_equal(a.resp[4].status, 400);
    assert_non_null(strstr(body_of(&a, 5), "\"hub\":[{\"id\":1"));

    send_tok(&c, "GET", "/api", agent, NULL);
    send_tok(&c, "GET", "/api", admin, NULL);
    wait_responses(f, &c, 5);
    assert_int_equal(c.resp[3].status, 429);
    assert_int_equal(c.resp[4].status, 200);

    /* Watch, then an API server restart cuts it; data stays. */
    send_tok(&c, "GET", "/api/v1/namespaces?watch=true", admin, NULL);
    wait_responses(f, &c, 5);
    gf_kst_run_until(&f->loop, got_bytes_at5, &c);
    send_tok(&a, "DELETE", "/faults", at, NULL);
    send_tok(&a, "POST", "/faults/hub", at,
             "{\"kind\":\"restart\",\"forMs\":90000}");
    send_tok(&a, "POST", "/faults/hub", at,
             "{\"kind\":\"restart\",\"forMs\":3000}");
    wait_responses(f, &a, 9);
    assert_int_equal(a.resp[6].status, 200);
    assert_int_equal(a.resp[7].status, 400); /* longer than a minute */
    assert_int_equal(a.resp[8].status, 201);
    gf_kst_run_until(&f->loop, gf_kst_is_eof, &c);
    assert_false(c.resp[5].complete);
    assert_int_equal(gf_ks_faults_count(gf_ks_cluster_faults(hub)), 0);
    assert_false(gf_ks_server_listening(gf_ks_cluster_server(hub)));
    gf_clock_advance(&f->clk, 3000);
    assert_true(gf_ks_server_listening(gf_ks_cluster_server(hub)));
    finish(f, &c);
    finish(f, &a);
    world_stop(&x);
}

int main(void)
{
    if (gf_kube_global_init() != 0)
        return 1;
    /* As in kubesim: a client that goes away with replies unread makes a
     * write fail with EPIPE, not kill the process. */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_tls_verified_and_keepalive_pipelined, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_answer_is_sent_before_the_controllers_turn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unauthenticated_gets_401_status,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunked_stream_then_keepalive,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_gone_mid_watch_cancels,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_and_header_caps, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_expect_continue, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_pipelined_replies_wait_for_a_slow_reader, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_tls_on_the_tls_port, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_close_cancels_streams_at_once,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_port_in_use, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pause_refuses_then_listens_again,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_request_400, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_slow_watcher_dropped, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stream_paced_by_the_client, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_connection_close_gets_its_reply,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_plain_http, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cut_all_cancels_streams, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fault_blackhole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fault_blackhole_one_identity,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_fault_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fault_reset_one_identity, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fault_latency_on_manual_clock,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_fault_5xx_burst_with_retry_after,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_fault_429_one_identity_until_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fault_watch_drop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_world_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_world_hooks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_world_rbac_and_admin_faults, setup,
                                        teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    gf_kube_global_cleanup();
    return failed;
}
