/*
 * kubeclient against a scripted API server: kubesim's real transport (TLS,
 * http-parser, faults) with a handler that the test scripts, so every
 * failure the reflector must survive is produced on the wire, byte for
 * byte: a watch event split at every offset, many events in one chunk,
 * bookmarks, 410 as an ERROR event and as an HTTP status, 429 with
 * Retry-After, a 500 burst, a connection cut mid-event, a server that
 * stops answering, a rotated token file and a wrong CA; and the owner
 * cutting a backoff short when it knows the server is back. Large pages
 * are parsed on libuv's thread pool: whole, in the same result, and
 * cancelable (or orphaned) while the parse is in flight.
 *
 * The reflector's timers (backoff, idle) run on the manual clock, so
 * waits are clock advances; only socket I/O runs on the loop. Every test
 * ends with all handles closed, uv_loop_close() == 0 and the allocation
 * counter back at its start.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/json.h"
#include "common/rand.h"
#include "e2e/kubesim/auth.h"
#include "e2e/kubesim/certs.h"
#include "e2e/kubesim/fault.h"
#include "e2e/kubesim/server.h"
#include "e2e/kubesim/test/ks_tclient.h"
#include "kubeclient/global.h"
#include "kubeclient/http.h"
/* For the parse hook only: a test cancels a call, or frees the client and
 * closes the engine, while the call's body is on the thread pool. */
#include "kubeclient/internal.h"
#include "kubeclient/reflector.h"
#include "kubeclient/request.h"
#include "kubeclient/store.h"

#define MAX_REQS 64

struct sreq {
    char method[8];
    char path[128];
    char query[256];
};

/* The one live watch stream, as the handler left it. */
struct swatch {
    const struct gf_ks_api_out *out;
};

struct fx {
    uv_loop_t loop;
    struct gf_clock clk;
    struct gf_ks_certs *certs, *other_ca;
    struct gf_ks_auth *auth;
    struct gf_ks_faults *faults;
    struct gf_ks_server *srv;
    struct gf_http *http;
    struct gf_kube_client *client;
    struct gf_store *store;
    struct gf_reflector *refl;
    struct gf_rand rng;
    char token_path[64];
    /* script */
    const char *list_body; /* answer to LIST */
    int list_code;         /* != 200: LISTs answered with this Status */
    unsigned list_fails;   /* how many LISTs get list_code */
    int watch_code;        /* != 200: WATCHes answered with this Status */
    unsigned watch_fails;  /* how many WATCHes get watch_code */
    /* Paged lists (page_items > 0): that many ConfigMaps in all, each
     * about item_size bytes, served `limit` at a time with continue
     * tokens that are offsets. */
    unsigned page_items;
    size_t item_size;
    size_t max_body;     /* the client's body cap; 0: the default */
    unsigned page_limit; /* the reflector's */
    struct swatch *watch;
    /* what the reflector reported through on_terminal */
    size_t nterminal;
    long terminal_code;
    char terminal_msg[512];
    /* log */
    struct sreq reqs[MAX_REQS];
    size_t nreq, nlist, nwatch;
    bool closed;
    int64_t baseline;
};

static const char list_ok[] =
    "{\"kind\":\"ConfigMapList\",\"apiVersion\":\"v1\",\"metadata\":"
    "{\"resourceVersion\":\"10\"},\"items\":[{\"metadata\":{\"name\":\"a\","
    "\"namespace\":\"default\",\"resourceVersion\":\"9\"}}]}";

static void status_body(char *out, size_t cap, int code, const char *reason)
{
    snprintf(out, cap,
             "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":"
             "\"Failure\",\"message\":\"scripted\",\"reason\":\"%s\","
             "\"code\":%d}",
             reason, code);
}

static const char *reason_of(int code)
{
    switch (code) {
    case 410:
        return "Expired";
    case 429:
        return "TooManyRequests";
    case 403:
        return "Forbidden";
    default:
        return "InternalError";
    }
}

/* An unsigned query parameter ("limit=8"), or 0. */
static unsigned query_uint(const char *q, const char *key)
{
    char pat[32];
    snprintf(pat, sizeof(pat), "%s=", key);
    for (const char *p = q; p != NULL && (p = strstr(p, pat)) != NULL; p++)
        if (p == q || p[-1] == '&')
            return (unsigned)strtoul(p + strlen(pat), NULL, 10);
    return 0;
}

/* One page of f->page_items ConfigMaps of about f->item_size bytes. */
static void reply_page(struct fx *f, const char *query,
                       const struct gf_ks_api_out *out)
{
    unsigned limit = query_uint(query, "limit");
    unsigned from = query_uint(query, "continue");
    if (limit == 0)
        limit = f->page_items;
    size_t cap = 256 + (size_t)f->page_items * (f->item_size + 256);
    char *body = malloc(cap);
    char *pad = malloc(f->item_size + 1);
    memset(pad, 'x', f->item_size);
    pad[f->item_size] = '\0';
    size_t n =
        (size_t)snprintf(body, cap,
                         "{\"kind\":\"ConfigMapList\",\"apiVersion\":\"v1\","
                         "\"metadata\":{\"resourceVersion\":\"10\"");
    unsigned end = from + limit < f->page_items ? from + limit : f->page_items;
    if (end < f->page_items)
        n += (size_t)snprintf(body + n, cap - n, ",\"continue\":\"%u\"", end);
    n += (size_t)snprintf(body + n, cap - n, "},\"items\":[");
    for (unsigned i = from; i < end; i++)
        n += (size_t)snprintf(
            body + n, cap - n,
            "%s{\"metadata\":{\"name\":\"big-%u\",\"namespace\":"
            "\"default\",\"resourceVersion\":\"%u\"},\"data\":{\"k\":"
            "\"%s\"}}",
            i > from ? "," : "", i, i + 1, pad);
    n += (size_t)snprintf(body + n, cap - n, "]}");
    out->reply(out->ctx, 200, "application/json", body, n);
    free(pad);
    free(body);
}

static void handle(void *data, const struct gf_ks_api_req *req,
                   const struct gf_ks_api_out *out,
                   struct gf_ks_api_call **call)
{
    struct fx *f = data;
    *call = NULL;
    bool watch = req->query != NULL && strstr(req->query, "watch=") != NULL;
    if (f->nreq < MAX_REQS) {
        struct sreq *r = &f->reqs[f->nreq++];
        snprintf(r->method, sizeof(r->method), "%s", req->method);
        snprintf(r->path, sizeof(r->path), "%s", req->path);
        snprintf(r->query, sizeof(r->query), "%s",
                 req->query != NULL ? req->query : "");
    }
    char body[512];
    if (!watch) {
        f->nlist++;
        if (f->list_fails > 0) {
            f->list_fails--;
            status_body(body, sizeof(body), f->list_code,
                        reason_of(f->list_code));
            out->reply(out->ctx, f->list_code, "application/json", body,
                       strlen(body));
            return;
        }
        if (f->page_items > 0) {
            reply_page(f, req->query, out);
            return;
        }
        out->reply(out->ctx, 200, "application/json", f->list_body,
                   strlen(f->list_body));
        return;
    }
    f->nwatch++;
    if (f->watch_fails > 0) {
        int code = f->watch_code;
        f->watch_fails--;
        status_body(body, sizeof(body), code, reason_of(code));
        out->reply(out->ctx, code, "application/json", body, strlen(body));
        return;
    }
    out->stream_begin(out->ctx, 200, "application/json");
    f->watch = calloc(1, sizeof(*f->watch));
    f->watch->out = out;
    *call = (struct gf_ks_api_call *)f->watch;
}

static void cancel(void *data, struct gf_ks_api_call *call)
{
    struct fx *f = data;
    assert_ptr_equal(call, f->watch);
    free(f->watch);
    f->watch = NULL;
}

/* ---- fixture -------------------------------------------------------------
 */

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    f->baseline = gf_alloc_live();
    assert_int_equal(uv_loop_init(&f->loop), 0);
    gf_clock_init_manual(&f->clk, 1000, 1700000000000);
    gf_rand_seed(&f->rng, 7);
    assert_int_equal(gf_ks_certs_new("test-ca", 1, &f->certs), 0);
    f->auth = gf_ks_auth_new();
    assert_int_equal(gf_ks_auth_add_defaults(f->auth), 0);
    f->faults = gf_ks_faults_new(&f->clk);
    f->list_body = list_ok;
    f->list_code = 200;
    f->watch_code = 200;
    f->item_size = 1000;
    struct gf_ks_server_opts o = {
        .loop = &f->loop,
        .clock = &f->clk,
        .name = "scripted",
        .tls = gf_ks_certs_server_ctx(f->certs),
        .auth = f->auth,
        .faults = f->faults,
        .handle = handle,
        .cancel = cancel,
        .data = f,
    };
    assert_int_equal(gf_ks_server_start(&o, &f->srv), 0);
    assert_int_equal(gf_http_new(&f->loop, &f->clk, &f->http), 0);
    *state = f;
    return 0;
}

/* A client for the server; token NULL: the admin's. */
static void make_client(struct fx *f, const struct gf_ks_certs *ca,
                        const char *token, const char *token_file)
{
    char server[64];
    snprintf(server, sizeof(server), "https://127.0.0.1:%d",
             gf_ks_server_port(f->srv));
    size_t ca_len;
    const char *ca_pem = gf_ks_certs_ca_pem(ca, &ca_len);
    struct gf_kube_creds creds = {
        .context = "t",
        .cluster = "t",
        .user = "t",
        .server = server,
        .ca_pem = (unsigned char *)ca_pem,
        .ca_pem_len = ca_len,
        .token = (char *)(token != NULL
                              ? token
                              : gf_ks_auth_identity(f->auth, "admin")->token),
        .token_file = (char *)token_file,
    };
    struct gf_kube_client_opts co = {.name = "scripted",
                                     .max_body = f->max_body};
    assert_int_equal(
        gf_kube_client_new(f->http, &f->clk, &creds, &co, &f->client), 0);
}

static void on_terminal(void *data, int err, const struct gf_api_status *st)
{
    struct fx *f = data;
    (void)err;
    f->nterminal++;
    f->terminal_code = st->code;
    snprintf(f->terminal_msg, sizeof(f->terminal_msg), "%s", st->message);
}

static void start_reflector(struct fx *f)
{
    if (f->client == NULL)
        make_client(f, f->certs, NULL, NULL);
    struct gf_store_opts so = {0};
    f->store = gf_store_new(&so);
    struct gf_reflector_opts ro = {
        .client = f->client,
        .store = f->store,
        .rng = &f->rng,
        .ns = "default",
        .page_limit = f->page_limit,
        .on_terminal = on_terminal,
        .data = f,
    };
    assert_int_equal(gf_kube_resource_parse("configmaps", &ro.res), 0);
    assert_int_equal(gf_reflector_new(&ro, &f->refl), 0);
    assert_int_equal(gf_reflector_start(f->refl), 0);
}

static void on_closed(void *data)
{
    struct fx *f = data;
    f->closed = true;
}

static bool is_closed(void *arg)
{
    return ((struct fx *)arg)->closed;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (f->refl != NULL) {
        gf_reflector_close(f->refl, on_closed, f);
        gf_kst_run_until(&f->loop, is_closed, f);
    }
    gf_store_free(f->store);
    gf_kube_client_free(f->client);
    if (f->http != NULL)
        gf_http_close(f->http, NULL, NULL);
    gf_ks_server_close(f->srv);
    assert_null(f->watch);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    gf_ks_faults_free(f->faults);
    gf_ks_auth_free(f->auth);
    gf_ks_certs_free(f->certs);
    gf_ks_certs_free(f->other_ca);
    assert_int_equal(gf_clock_active_timers(&f->clk), 0);
    gf_clock_close(&f->clk);
    if (f->token_path[0] != '\0')
        unlink(f->token_path);
    assert_int_equal(gf_alloc_live(), f->baseline);
    free(f);
    return 0;
}

/* ---- helpers --------------------------------------------------------------
 */

static struct gf_reflector_health health(const struct fx *f)
{
    struct gf_reflector_health h;
    gf_reflector_health(f->refl, &h);
    return h;
}

static bool watching(void *arg)
{
    struct fx *f = arg;
    return f->watch != NULL && health(f).watching;
}

struct want_events {
    struct fx *f;
    uint64_t n;
};

static bool has_events(void *arg)
{
    const struct want_events *w = arg;
    return health(w->f).events >= w->n;
}

static void wait_events(struct fx *f, uint64_t n)
{
    struct want_events w = {f, n};
    gf_kst_run_until(&f->loop, has_events, &w);
}

struct want_count {
    const size_t *counter;
    size_t n;
};

static bool count_reached(void *arg)
{
    const struct want_count *w = arg;
    return *w->counter >= w->n;
}

static void wait_count(struct fx *f, const size_t *counter, size_t n)
{
    struct want_count w = {counter, n};
    gf_kst_run_until(&f->loop, count_reached, &w);
}

static bool in_backoff(void *arg)
{
    return health(arg).state == GF_REFLECTOR_BACKOFF;
}

static void push(struct fx *f, const char *data, size_t len)
{
    assert_non_null(f->watch);
    assert_int_equal(f->watch->out->stream_write(f->watch->out->ctx, data, len),
                     0);
}

/* An ADDED event of ConfigMap name at resourceVersion rv. */
static int event(char *out, size_t cap, const char *type, const char *name,
                 int rv)
{
    return snprintf(out, cap,
                    "{\"type\":\"%s\",\"object\":{\"kind\":\"ConfigMap\","
                    "\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"%s\","
                    "\"namespace\":\"default\",\"resourceVersion\":\"%d\"},"
                    "\"data\":{\"k\":\"v\"}}}\n",
                    type, name, rv);
}

static void start_watching(struct fx *f)
{
    start_reflector(f);
    gf_kst_run_until(&f->loop, watching, f);
    assert_true(health(f).synced);
    assert_int_equal(gf_store_len(f->store), 1);
}

/* ---- tests ----------------------------------------------------------------
 */

struct burst {
    size_t done, reused, failed;
};

static void on_burst_done(void *data, const struct gf_http_resp *r)
{
    struct burst *b = data;
    b->done++;
    b->reused += r->reused_conn;
    b->failed += r->err != 0 || r->status != 200;
}

/* n GETs at once, straight through the engine; waits for every answer. */
static void burst(struct fx *f, struct burst *b, size_t n)
{
    char url[128], auth[256];
    snprintf(url, sizeof(url),
             "https://127.0.0.1:%d/api/v1/namespaces/default/configmaps",
             gf_ks_server_port(f->srv));
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s",
             gf_ks_auth_identity(f->auth, "admin")->token);
    const char *hdrs[] = {auth, NULL};
    size_t ca_len;
    const char *ca = gf_ks_certs_ca_pem(f->certs, &ca_len);
    struct gf_http_tls tls = {.ca_pem = (const unsigned char *)ca,
                              .ca_pem_len = ca_len};
    struct gf_http_req_opts o = {.method = "GET",
                                 .url = url,
                                 .headers = hdrs,
                                 .tls = &tls,
                                 .on_done = on_burst_done,
                                 .data = b};
    for (size_t i = 0; i < n; i++)
        assert_int_equal(gf_http_start(f->http, &o, NULL), 0);
    wait_count(f, &b->done, n);
    assert_int_equal(b->failed, 0);
}

/*
 * Over HTTP/1.1 a burst of n requests at once opens n connections; the
 * next burst finds them all, though a watch is the only transfer left in
 * between (curl's default cache, 4 connections per transfer in the multi
 * handle, closed them as the burst drained: a TCP and TLS handshake per
 * request of every burst).
 */
static void test_a_burst_keeps_its_connections(void **state)
{
    struct fx *f = *state;
    start_watching(f);
    enum { N = 12 };
    struct burst first = {0}, second = {0};
    burst(f, &first, N);
    burst(f, &second, N);
    print_message("first burst reused %zu connections, second %zu of %d\n",
                  first.reused, second.reused, N);
    assert_int_equal(second.reused, N);
}

/* The network may cut a chunked body anywhere: event i is sent as two
 * TLS records split at byte i, and every event is applied exactly once. */
static void test_event_split_at_every_offset(void **state)
{
    struct fx *f = *state;
    start_watching(f);
    char ev[512];
    int len = event(ev, sizeof(ev), "ADDED", "probe", 11);
    uint64_t base = health(f).events;
    for (int i = 1; i < len; i++) {
        char name[16];
        snprintf(name, sizeof(name), "s%d", i);
        len = event(ev, sizeof(ev), "ADDED", name, 100 + i);
        push(f, ev, (size_t)i);
        gf_kst_spin(&f->loop, 3);
        push(f, ev + i, (size_t)(len - i));
        wait_events(f, base + (uint64_t)i);
    }
    struct gf_reflector_health h = health(f);
    assert_int_equal(h.events, base + (uint64_t)len - 1);
    assert_int_equal(h.failures, 0);
    assert_int_equal(gf_store_len(f->store), (size_t)len);
    char rv[16];
    snprintf(rv, sizeof(rv), "%d", 100 + len - 1);
    assert_string_equal(h.rv, rv);
}

static void test_many_events_in_one_chunk(void **state)
{
    struct fx *f = *state;
    start_watching(f);
    char buf[64 * 256];
    size_t n = 0;
    for (int i = 0; i < 60; i++) {
        char name[16];
        snprintf(name, sizeof(name), "m%d", i);
        n += (size_t)event(buf + n, sizeof(buf) - n,
                           i % 2 ? "MODIFIED" : "ADDED", name, 200 + i);
    }
    push(f, buf, n);
    wait_events(f, 60);
    assert_int_equal(gf_store_len(f->store), 61);
    assert_string_equal(health(f).rv, "259");
    /* a DELETED removes */
    n = (size_t)event(buf, sizeof(buf), "DELETED", "m0", 260);
    push(f, buf, n);
    wait_events(f, 61);
    assert_null(gf_store_get(f->store, "default/m0"));
}

static void test_bookmark_moves_rv_only(void **state)
{
    struct fx *f = *state;
    start_watching(f);
    static const char bm[] =
        "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"ConfigMap\","
        "\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"500\"}}}\n";
    push(f, bm, sizeof(bm) - 1);
    wait_events(f, 1);
    struct gf_reflector_health h = health(f);
    assert_int_equal(h.bookmarks, 1);
    assert_string_equal(h.rv, "500");
    assert_int_equal(gf_store_len(f->store), 1);
    /* The next watch resumes from the bookmark's RV. */
    f->watch->out->stream_end(f->watch->out->ctx);
    free(f->watch);
    f->watch = NULL;
    wait_count(f, &f->nwatch, 2);
    assert_non_null(strstr(f->reqs[f->nreq - 1].query, "resourceVersion=500"));
    assert_non_null(
        strstr(f->reqs[f->nreq - 1].query, "allowWatchBookmarks=true"));
}

/* The query of the last request the server saw. */
static const char *last_query(const struct fx *f)
{
    assert_true(f->nreq > 0);
    return f->reqs[f->nreq - 1].query;
}

/* 410 as a watch ERROR event: after a backoff step, list the current
 * state (resourceVersion=""), never the RV that is gone: a paged list
 * from it would be served at exactly that old version. */
static void test_410_error_event_relists(void **state)
{
    struct fx *f = *state;
    start_watching(f);
    char ev[512];
    int n = event(ev, sizeof(ev), "ADDED", "b", 20);
    push(f, ev, (size_t)n);
    wait_events(f, 1);
    static const char gone[] =
        "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":"
        "\"v1\",\"status\":\"Failure\",\"message\":\"too old resource "
        "version: 20 (30)\",\"reason\":\"Expired\",\"code\":410}}\n";
    push(f, gone, sizeof(gone) - 1);
    gf_kst_run_until(&f->loop, in_backoff, f);
    gf_kst_spin(&f->loop, 20);
    assert_int_equal(f->nlist, 1); /* not at once */
    struct gf_reflector_health h = health(f);
    assert_int_equal(h.relists, 1);
    assert_int_equal(h.last_err, GF_EGONE);
    gf_clock_advance(&f->clk, h.backoff_ms);
    wait_count(f, &f->nlist, 2);
    assert_string_equal(last_query(f), "resourceVersion=");
    /* The relist replaced the store: "b" was not in the list. */
    gf_kst_run_until(&f->loop, watching, f);
    assert_int_equal(gf_store_len(f->store), 1);
    assert_null(gf_store_get(f->store, "default/b"));
}

/* 410 as the HTTP status of the watch request: relist too. */
static void test_410_http_relists(void **state)
{
    struct fx *f = *state;
    f->watch_code = 410;
    f->watch_fails = 1;
    start_reflector(f);
    gf_kst_run_until(&f->loop, in_backoff, f);
    assert_int_equal(health(f).relists, 1);
    /* The server has moved past the RV it called expired. */
    f->list_body =
        "{\"kind\":\"ConfigMapList\",\"apiVersion\":\"v1\",\"metadata\":"
        "{\"resourceVersion\":\"12\"},\"items\":[]}";
    gf_clock_advance(&f->clk, health(f).backoff_ms);
    wait_count(f, &f->nlist, 2);
    assert_string_equal(last_query(f), "resourceVersion=");
    gf_kst_run_until(&f->loop, watching, f);
    assert_true(health(f).synced);
    assert_non_null(strstr(last_query(f), "resourceVersion=12"));
}

/*
 * What a restarted API server did to the old reflector: every watch from
 * the list's RV gets 410, and every list hands back that same RV. The
 * reflector must neither spin (no request without the clock moving) nor
 * watch again from the RV it was told is expired; once the server has
 * moved on, it watches from the new RV.
 */
static void test_410_never_twice_from_same_rv(void **state)
{
    struct fx *f = *state;
    f->watch_code = 410;
    f->watch_fails = 1000;
    start_reflector(f);
    gf_kst_run_until(&f->loop, in_backoff, f);
    gf_kst_spin(&f->loop, 200);
    assert_int_equal(f->nlist, 1);
    assert_int_equal(f->nwatch, 1);
    /* The relist gets RV 10 again: no watch from it, back off again. */
    for (size_t i = 2; i <= 4; i++) {
        gf_clock_advance(&f->clk, health(f).backoff_ms);
        wait_count(f, &f->nlist, i);
        assert_string_equal(last_query(f), "resourceVersion=");
        gf_kst_run_until(&f->loop, in_backoff, f);
        gf_kst_spin(&f->loop, 20);
        assert_int_equal(f->nlist, i);
        assert_int_equal(f->nwatch, 1);
    }
    assert_int_equal(health(f).last_err, GF_EGONE);
    /* The server has moved on: RV 11, and its watch works. */
    f->list_body =
        "{\"kind\":\"ConfigMapList\",\"apiVersion\":\"v1\",\"metadata\":"
        "{\"resourceVersion\":\"11\"},\"items\":[]}";
    f->watch_fails = 0;
    gf_clock_advance(&f->clk, health(f).backoff_ms);
    gf_kst_run_until(&f->loop, watching, f);
    assert_int_equal(f->nwatch, 2);
    assert_non_null(strstr(last_query(f), "resourceVersion=11"));
    assert_int_equal(gf_store_len(f->store), 0);
}

static bool in_failed(void *arg)
{
    return health(arg).state == GF_REFLECTOR_FAILED;
}

/* A 403 on the watch is terminal: reported once with the server's
 * message, no retry before GF_REFLECTOR_TERMINAL_RETRY_MS (the old code
 * retried every 0.8-30 s forever), then one slow retry. */
static void test_403_watch_is_terminal(void **state)
{
    struct fx *f = *state;
    f->watch_code = 403;
    f->watch_fails = 1000;
    start_reflector(f);
    gf_kst_run_until(&f->loop, in_failed, f);
    assert_int_equal(f->nterminal, 1);
    assert_int_equal(f->terminal_code, 403);
    assert_string_equal(f->terminal_msg, "scripted");
    struct gf_reflector_health h = health(f);
    assert_int_equal(h.terminal, 1);
    assert_int_equal(h.last_err, GF_EFORBIDDEN);
    assert_non_null(strstr(h.last_error, "scripted"));
    gf_clock_advance(&f->clk, GF_REFLECTOR_TERMINAL_RETRY_MS - 1000);
    gf_kst_spin(&f->loop, 50);
    assert_int_equal(f->nwatch, 1);
    assert_int_equal(f->nlist, 1);
    assert_int_equal(health(f).state, GF_REFLECTOR_FAILED);
    gf_clock_advance(&f->clk, 1000);
    wait_count(f, &f->nwatch, 2);
    gf_kst_run_until(&f->loop, in_failed, f);
    assert_int_equal(f->nlist, 2);
    assert_int_equal(f->nterminal, 2);
}

/* A 403 on the list is terminal the same way. */
static void test_403_list_is_terminal(void **state)
{
    struct fx *f = *state;
    f->list_code = 403;
    f->list_fails = 1000;
    start_reflector(f);
    gf_kst_run_until(&f->loop, in_failed, f);
    assert_int_equal(f->nterminal, 1);
    gf_clock_advance(&f->clk, (uint64_t)GF_REFLECTOR_BACKOFF_MAX_MS * 4);
    gf_kst_spin(&f->loop, 50);
    assert_int_equal(f->nlist, 1);
    assert_int_equal(f->nwatch, 0);
    assert_false(health(f).synced);
}

/* The owner may close the reflector from on_terminal. */
static void close_on_terminal(void *data, int err,
                              const struct gf_api_status *st)
{
    struct fx *f = data;
    on_terminal(data, err, st);
    gf_reflector_close(f->refl, on_closed, f);
    assert_false(f->closed);
}

static void test_close_from_on_terminal(void **state)
{
    struct fx *f = *state;
    f->watch_code = 404;
    f->watch_fails = 1;
    make_client(f, f->certs, NULL, NULL);
    struct gf_store_opts so = {0};
    f->store = gf_store_new(&so);
    struct gf_reflector_opts ro = {
        .client = f->client,
        .store = f->store,
        .rng = &f->rng,
        .ns = "default",
        .on_terminal = close_on_terminal,
        .data = f,
    };
    assert_int_equal(gf_kube_resource_parse("configmaps", &ro.res), 0);
    assert_int_equal(gf_reflector_new(&ro, &f->refl), 0);
    assert_int_equal(gf_reflector_start(f->refl), 0);
    gf_kst_run_until(&f->loop, is_closed, f);
    f->refl = NULL;
    assert_int_equal(f->nterminal, 1);
    assert_int_equal(f->terminal_code, 404);
}

/* The close callback never runs inside gf_reflector_close(), even with
 * nothing in flight (libuv's contract; the old code called it inline). */
static void test_close_callback_deferred(void **state)
{
    struct fx *f = *state;
    make_client(f, f->certs, NULL, NULL);
    struct gf_store_opts so = {0};
    f->store = gf_store_new(&so);
    struct gf_reflector_opts ro = {
        .client = f->client, .store = f->store, .rng = &f->rng};
    assert_int_equal(gf_kube_resource_parse("configmaps", &ro.res), 0);
    /* Never started. */
    assert_int_equal(gf_reflector_new(&ro, &f->refl), 0);
    gf_reflector_close(f->refl, on_closed, f);
    assert_false(f->closed);
    gf_kst_run_until(&f->loop, is_closed, f);
    /* In backoff (a timer, nothing in flight). */
    f->closed = false;
    f->list_code = 500;
    f->list_fails = 1;
    assert_int_equal(gf_reflector_new(&ro, &f->refl), 0);
    assert_int_equal(gf_reflector_start(f->refl), 0);
    gf_kst_run_until(&f->loop, in_backoff, f);
    gf_reflector_close(f->refl, on_closed, f);
    assert_false(f->closed);
    gf_kst_run_until(&f->loop, is_closed, f);
    f->refl = NULL;
}

/* A list page over the client's body cap is asked for again with half
 * the limit until it fits; the store still gets every object. */
static void test_list_page_over_cap_halves(void **state)
{
    struct fx *f = *state;
    f->max_body = 3000; /* two 1 KB objects fit, three do not */
    f->page_items = 7;
    f->page_limit = 8;
    start_reflector(f);
    gf_kst_run_until(&f->loop, watching, f);
    assert_int_equal(gf_store_len(f->store), 7);
    assert_true(health(f).synced);
    assert_int_equal(health(f).failures, 0);
    assert_non_null(strstr(f->reqs[0].query, "limit=8"));
    assert_non_null(strstr(f->reqs[1].query, "limit=4"));
    assert_non_null(strstr(f->reqs[2].query, "limit=2"));
    assert_non_null(strstr(f->reqs[3].query, "continue=2"));
    assert_non_null(strstr(f->reqs[3].query, "limit=2"));
}

/* An unpaged list (rv=0) over the cap turns into a paged one. */
static void test_unpaged_list_over_cap_pages(void **state)
{
    struct fx *f = *state;
    f->max_body = 3000;
    f->page_items = 5;
    start_reflector(f);
    gf_kst_run_until(&f->loop, watching, f);
    assert_int_equal(gf_store_len(f->store), 5);
    assert_string_equal(f->reqs[0].query, "resourceVersion=0");
    assert_non_null(strstr(f->reqs[1].query, "limit=500"));
}

struct one_call {
    bool done;
    int err;
    long code;
    char message[512];
};

static void on_one_call(void *data, const struct gf_kube_result *res)
{
    struct one_call *c = data;
    c->done = true;
    c->err = res->err;
    c->code = res->status->code;
    snprintf(c->message, sizeof(c->message), "%s", res->status->message);
}

static bool call_done(void *arg)
{
    return ((struct one_call *)arg)->done;
}

/* One object over the cap cannot be paged away: the failure is ours,
 * reported as ours (no HTTP code, the cap named), not as the server's. */
static void test_object_over_cap_is_a_local_error(void **state)
{
    struct fx *f = *state;
    f->max_body = 3000;
    f->page_items = 3;
    f->item_size = 4000;
    make_client(f, f->certs, NULL, NULL);
    struct gf_kube_resource res;
    assert_int_equal(gf_kube_resource_parse("configmaps", &res), 0);
    struct gf_kube_list_opts lo = {.ns = "default", .limit = 4};
    struct one_call c = {0};
    assert_int_equal(gf_kube_list(f->client, &res, &lo, on_one_call, &c, NULL),
                     0);
    gf_kst_run_until(&f->loop, call_done, &c);
    assert_int_equal(c.err, GF_E2BIG);
    assert_int_equal(c.code, 0);
    assert_non_null(strstr(c.message, "cap of 3000 bytes"));
    assert_int_equal(f->nlist, 3); /* limit 4, 2, 1 */
}

/* ---- bodies parsed on the thread pool ------------------------------------
 */

struct pool_call {
    struct fx *f;
    unsigned ncb;
    int err;
    long code;
    int items;
    char last[32];
    char message[512];
    /* What the parse hook does while the body is on the pool. */
    bool cancel, orphan;
    unsigned queued;
};

static void on_pool_call(void *data, const struct gf_kube_result *res)
{
    struct pool_call *p = data;
    p->ncb++;
    p->err = res->err;
    p->code = res->status->code;
    snprintf(p->message, sizeof(p->message), "%s", res->status->message);
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(res->json, "items");
    p->items = cJSON_GetArraySize(items);
    const cJSON *last = cJSON_GetArrayItem(items, p->items - 1);
    const char *name = gf_json_str(last, "metadata.name");
    snprintf(p->last, sizeof(p->last), "%s", name != NULL ? name : "");
}

static bool pool_call_done(void *arg)
{
    return ((struct pool_call *)arg)->ncb > 0;
}

/* Runs on the loop right after the body went to the pool: the parse
 * cannot have been delivered yet, so what is done here happens while it
 * is in flight, on every run. */
static void on_parse_queued(void *data, struct gf_kube_call *k)
{
    struct pool_call *p = data;
    p->queued++;
    if (p->cancel)
        gf_kube_call_cancel(k);
    if (p->orphan) {
        struct fx *f = p->f;
        gf_kube_client_free(f->client);
        f->client = NULL;
        gf_http_close(f->http, NULL, NULL);
        f->http = NULL;
    }
}

/* One unpaged LIST of f->page_items ConfigMaps through gf_kube_list, with
 * the parse hook on; runs the loop until its callback. */
static void list_once(struct fx *f, struct pool_call *p)
{
    p->f = f;
    make_client(f, f->certs, NULL, NULL);
    gf__kube_client_set_parse_hook(f->client, on_parse_queued, p);
    struct gf_kube_resource res;
    assert_int_equal(gf_kube_resource_parse("configmaps", &res), 0);
    struct gf_kube_list_opts lo = {.ns = "default"};
    assert_int_equal(gf_kube_list(f->client, &res, &lo, on_pool_call, p, NULL),
                     0);
    gf_kst_run_until(&f->loop, pool_call_done, p);
}

/* Lists one page of n objects and checks it arrived whole; queued: how
 * many parses went to the pool (0 or 1). */
static void list_page_whole(struct fx *f, unsigned n, unsigned queued)
{
    f->page_items = n;
    struct pool_call p = {0};
    list_once(f, &p);
    char last[32];
    snprintf(last, sizeof(last), "big-%u", n - 1);
    assert_int_equal(p.err, 0);
    assert_int_equal(p.code, 200);
    assert_int_equal(p.items, n);
    assert_string_equal(p.last, last);
    assert_int_equal(p.queued, queued);
    assert_int_equal(gf_kube_client_pool_parses(f->client), queued);
}

/* A page over the threshold (300 objects of 1 KB, about 330 KB) is parsed
 * off the loop and delivered whole, as an inline parse would be. */
static void test_large_page_parsed_on_the_pool(void **state)
{
    list_page_whole(*state, 300, 1);
}

/* A page under it (a write's answer, a small list) is parsed inline: no
 * thread hop where latency matters more than the loop's CPU. */
static void test_small_page_parsed_inline(void **state)
{
    list_page_whole(*state, 20, 0);
}

/* A cancel while the body is being parsed: the answer has come, but the
 * caller asked to stop first, so it gets GF_ECANCELED, once, and no tree;
 * the body, the arena and the call are freed (teardown's counter). */
static void test_cancel_during_parse_is_one_canceled_callback(void **state)
{
    struct fx *f = *state;
    f->page_items = 300;
    struct pool_call p = {.cancel = true};
    list_once(f, &p);
    gf_kst_spin(&f->loop, 20);
    assert_int_equal(p.queued, 1);
    assert_int_equal(p.ncb, 1);
    assert_int_equal(p.err, GF_ECANCELED);
    assert_int_equal(p.code, 0);
    assert_int_equal(p.items, 0);
}

/* A body over the threshold that is not JSON fails as an inline parse
 * does: GF_EPARSE, with the server's code, "response is not JSON". */
static void test_large_body_not_json_is_a_parse_error(void **state)
{
    struct fx *f = *state;
    size_t n = 300u << 10;
    char *junk = malloc(n + 1);
    memset(junk, '{', n);
    junk[n] = '\0';
    f->list_body = junk;
    struct pool_call p = {0};
    list_once(f, &p);
    free(junk);
    assert_int_equal(p.queued, 1);
    assert_int_equal(p.err, GF_EPARSE);
    assert_int_equal(p.code, 200);
    assert_string_equal(p.message, "response is not JSON");
}

/* The owner drops the client and closes the engine while the parse is in
 * flight (a hub shutting down): the call holds what it needs, delivers
 * its answer from the loop, and nothing leaks or is touched after free. */
static void test_client_freed_during_parse(void **state)
{
    struct fx *f = *state;
    f->page_items = 300;
    struct pool_call p = {.orphan = true};
    list_once(f, &p);
    assert_int_equal(p.queued, 1);
    assert_int_equal(p.ncb, 1);
    assert_int_equal(p.err, 0);
    assert_int_equal(p.items, 300);
    assert_null(f->client);
}

/* 429 with Retry-After: nothing is retried before the server's delay. */
static void test_429_waits_retry_after(void **state)
{
    struct fx *f = *state;
    struct gf_ks_fault_spec spec = {
        .kind = GF_KS_FAULT_429, .retry_after_s = 7, .count = 1};
    assert_true(gf_ks_faults_add(f->faults, &spec) > 0);
    start_reflector(f);
    gf_kst_run_until(&f->loop, in_backoff, f);
    assert_int_equal(health(f).last_err, GF_ETHROTTLED);
    assert_int_equal(f->nlist, 0); /* the fault answered, not the handler */
    gf_clock_advance(&f->clk, 6900);
    gf_kst_spin(&f->loop, 20);
    assert_int_equal(f->nlist, 0);
    assert_int_equal(health(f).state, GF_REFLECTOR_BACKOFF);
    gf_clock_advance(&f->clk, 200);
    gf_kst_run_until(&f->loop, watching, f);
    assert_int_equal(f->nlist, 1);
}

/* A 500 burst: backoff doubles from 0.8 s, then the list succeeds. */
static void test_500_burst_backs_off_doubling(void **state)
{
    struct fx *f = *state;
    f->list_code = 500;
    f->list_fails = 3;
    start_reflector(f);
    uint64_t prev = 0;
    for (size_t i = 1; i <= 3; i++) {
        wait_count(f, &f->nlist, i);
        gf_kst_run_until(&f->loop, in_backoff, f);
        struct gf_reflector_health h = health(f);
        assert_int_equal(h.last_err, GF_ESERVER);
        uint64_t step = (uint64_t)GF_REFLECTOR_BACKOFF_MIN_MS << (i - 1);
        assert_in_range(h.backoff_ms, step * 8 / 10, step * 12 / 10);
        assert_true(h.backoff_ms > prev);
        prev = h.backoff_ms;
        gf_clock_advance(&f->clk, h.backoff_ms * 2);
    }
    gf_kst_run_until(&f->loop, watching, f);
    assert_int_equal(f->nlist, 4);
    assert_int_equal(health(f).failures, 3);
}

/*
 * The server is reachable again while the reflector waits out a long
 * backoff (the burst of faults the chaos suite found: up to 30 s of a
 * member unsynced after it came back). gf_reflector_retry_now lists at
 * once, with no clock advance, but keeps the step: each failure after a
 * retry waits the next, doubled step, so a flapping server is not
 * hammered.
 */
static void test_retry_now_cuts_backoff_short(void **state)
{
    struct fx *f = *state;
    f->list_code = 500;
    f->list_fails = 3;
    start_reflector(f);
    for (size_t i = 1; i <= 3; i++) {
        wait_count(f, &f->nlist, i);
        gf_kst_run_until(&f->loop, in_backoff, f);
        uint64_t step = (uint64_t)GF_REFLECTOR_BACKOFF_MIN_MS << (i - 1);
        assert_in_range(health(f).backoff_ms, step * 8 / 10, step * 12 / 10);
        /* Without a retry nothing happens before the wait is over. */
        gf_kst_spin(&f->loop, 20);
        assert_int_equal(f->nlist, i);
        assert_true(gf_reflector_retry_now(f->refl));
    }
    gf_kst_run_until(&f->loop, watching, f);
    assert_int_equal(f->nlist, 4);
    assert_true(health(f).synced);
    /* Watching: nothing to cut short. */
    assert_false(gf_reflector_retry_now(f->refl));
    gf_kst_spin(&f->loop, 20);
    assert_int_equal(f->nlist, 4);
    assert_int_equal(f->nwatch, 1);
}

/* After a broken watch the retry resumes the watch from the last RV; it
 * does not relist. */
static void test_retry_now_resumes_the_watch(void **state)
{
    struct fx *f = *state;
    start_watching(f);
    char ev[512];
    int n = event(ev, sizeof(ev), "ADDED", "b", 41);
    push(f, ev, (size_t)n);
    wait_events(f, 1);
    assert_true(gf_ks_server_cut(f->srv, NULL, true, false) >= 1);
    gf_kst_run_until(&f->loop, in_backoff, f);
    assert_true(gf_reflector_retry_now(f->refl));
    gf_kst_run_until(&f->loop, watching, f);
    assert_int_equal(f->nwatch, 2);
    assert_int_equal(f->nlist, 1);
    assert_non_null(strstr(f->reqs[f->nreq - 1].query, "resourceVersion=41"));
}

/* FAILED (a 403) is not a backoff: reachability does not fix RBAC, so a
 * retry does nothing and the slow terminal retry stays the only one. */
static void test_retry_now_leaves_terminal_alone(void **state)
{
    struct fx *f = *state;
    f->list_code = 403;
    f->list_fails = 1000;
    start_reflector(f);
    gf_kst_run_until(&f->loop, in_failed, f);
    assert_false(gf_reflector_retry_now(f->refl));
    gf_kst_spin(&f->loop, 20);
    assert_int_equal(f->nlist, 1);
    assert_int_equal(health(f).state, GF_REFLECTOR_FAILED);
}

/* The connection is cut in the middle of an event: the half event is
 * never applied and the watch resumes from the last whole one. */
static void test_connection_cut_mid_event(void **state)
{
    struct fx *f = *state;
    start_watching(f);
    char ev[512];
    int n = event(ev, sizeof(ev), "ADDED", "whole", 31);
    push(f, ev, (size_t)n);
    wait_events(f, 1);
    n = event(ev, sizeof(ev), "ADDED", "half", 32);
    push(f, ev, (size_t)n / 2);
    gf_kst_spin(&f->loop, 3);
    assert_true(gf_ks_server_cut(f->srv, NULL, true, false) >= 1);
    /* The client reconnects (after a backoff step) from RV 31. */
    gf_kst_run_until(&f->loop, in_backoff, f);
    gf_clock_advance(&f->clk, GF_REFLECTOR_BACKOFF_MAX_MS);
    wait_count(f, &f->nwatch, 2);
    assert_non_null(strstr(f->reqs[f->nreq - 1].query, "resourceVersion=31"));
    assert_null(gf_store_get(f->store, "default/half"));
    assert_non_null(gf_store_get(f->store, "default/whole"));
    assert_int_equal(f->nlist, 1); /* no relist was needed */
}

/* Advances the clock in 10 s steps, running the loop in between. */
static void advance_quietly(struct fx *f, uint64_t ms)
{
    for (uint64_t t = 0; t < ms; t += 10000) {
        gf_clock_advance(&f->clk, 10000);
        gf_kst_spin(&f->loop, 3);
    }
}

/* A resource that does not change sends nothing, not even bookmarks, for
 * minutes (a real 1.28 server: none in 200 s). Silence is not an error:
 * the watch stays the same stream and delivers the next event. */
static void test_quiet_watch_not_torn_down(void **state)
{
    struct fx *f = *state;
    start_watching(f);
    advance_quietly(f, 250000);
    struct gf_reflector_health h = health(f);
    assert_true(h.watching);
    assert_int_equal(h.failures, 0);
    assert_int_equal(h.watches, 1);
    assert_int_equal(f->nwatch, 1);
    char ev[512];
    int n = event(ev, sizeof(ev), "ADDED", "late", 40);
    push(f, ev, (size_t)n);
    wait_events(f, 1);
    assert_non_null(gf_store_get(f->store, "default/late"));
}

/* A server that stops answering (blackholed) looks quiet until the watch
 * outlives its timeoutSeconds (300-600 s) plus the grace: then the
 * client ends it and reconnects. */
static void test_silent_server_deadline(void **state)
{
    struct fx *f = *state;
    start_watching(f);
    uint64_t tos = query_uint(last_query(f), "timeoutSeconds");
    assert_in_range(tos, 300, 600);
    struct gf_ks_fault_spec spec = {.kind = GF_KS_FAULT_BLACKHOLE};
    assert_true(gf_ks_faults_add(f->faults, &spec) > 0);
    gf_kst_spin(&f->loop, 5);
    assert_true(health(f).watching);
    advance_quietly(f, 290000);
    gf_clock_advance(&f->clk,
                     tos * 1000 + GF_REFLECTOR_WATCH_GRACE_MS - 290000 - 1);
    gf_kst_spin(&f->loop, 5);
    assert_true(health(f).watching);
    assert_int_equal(health(f).failures, 0);
    gf_clock_advance(&f->clk, 1);
    gf_kst_run_until(&f->loop, in_backoff, f);
    assert_int_equal(health(f).last_err, GF_ETIMEDOUT);
    gf_ks_faults_clear(f->faults);
    gf_clock_advance(&f->clk, GF_REFLECTOR_BACKOFF_MAX_MS);
    gf_kst_run_until(&f->loop, watching, f);
    assert_int_equal(f->nwatch, 2);
}

/* A token file rotated on disk: the 401 makes the client read it again
 * and retry once with the new token. */
static void test_rotated_token_file(void **state)
{
    struct fx *f = *state;
    snprintf(f->token_path, sizeof(f->token_path), "/tmp/gf-token.XXXXXX");
    int fd = mkstemp(f->token_path);
    assert_true(fd >= 0);
    const char *fresh = gf_ks_auth_identity(f->auth, "gpufed-hub")->token;
    assert_int_equal(write(fd, fresh, strlen(fresh)), (ssize_t)strlen(fresh));
    close(fd);
    make_client(f, f->certs, "expired-token", f->token_path);
    start_reflector(f);
    gf_kst_run_until(&f->loop, watching, f);
    assert_int_equal(gf_kube_client_token_reloads(f->client), 1);
    assert_int_equal(f->nlist, 1);
    assert_int_equal(health(f).failures, 0);
}

static bool server_saw_tls_failure(void *arg)
{
    return gf_ks_server_stats(((struct fx *)arg)->srv)->tls_failures >= 1;
}

/* A server whose certificate is not signed by the CA we trust. */
static void test_wrong_ca_refused(void **state)
{
    struct fx *f = *state;
    assert_int_equal(gf_ks_certs_new("other-ca", 1, &f->other_ca), 0);
    make_client(f, f->other_ca, NULL, NULL);
    start_reflector(f);
    gf_kst_run_until(&f->loop, in_backoff, f);
    struct gf_reflector_health h = health(f);
    assert_int_equal(h.last_err, GF_ETLS);
    assert_false(h.synced);
    assert_int_equal(f->nlist, 0);
    /* The server sees the client's alert once it reads it. */
    gf_kst_run_until(&f->loop, server_saw_tls_failure, f);
}

int main(void)
{
    /* Writes to a connection the peer closed must fail, not kill us. */
    signal(SIGPIPE, SIG_IGN);
    assert_int_equal(gf_kube_global_init(), 0);
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_a_burst_keeps_its_connections),
        T(test_event_split_at_every_offset),
        T(test_many_events_in_one_chunk),
        T(test_bookmark_moves_rv_only),
        T(test_410_error_event_relists),
        T(test_410_http_relists),
        T(test_410_never_twice_from_same_rv),
        T(test_403_watch_is_terminal),
        T(test_403_list_is_terminal),
        T(test_close_from_on_terminal),
        T(test_close_callback_deferred),
        T(test_list_page_over_cap_halves),
        T(test_unpaged_list_over_cap_pages),
        T(test_object_over_cap_is_a_local_error),
        T(test_large_page_parsed_on_the_pool),
        T(test_small_page_parsed_inline),
        T(test_cancel_during_parse_is_one_canceled_callback),
        T(test_large_body_not_json_is_a_parse_error),
        T(test_client_freed_during_parse),
        T(test_429_waits_retry_after),
        T(test_500_burst_backs_off_doubling),
        T(test_connection_cut_mid_event),
        T(test_retry_now_cuts_backoff_short),
        T(test_retry_now_resumes_the_watch),
        T(test_retry_now_leaves_terminal_alone),
        T(test_quiet_watch_not_torn_down),
        T(test_silent_server_deadline),
        T(test_rotated_token_file),
        T(test_wrong_ca_refused),
#undef T
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_kube_global_cleanup();
    return rc;
}
