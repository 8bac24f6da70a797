/*
 * Fuzz target for kubesim's request handling behind the HTTP parser: the
 * path and query (percent-decoding, routing, every query parameter, label
 * and field selectors, limit/continue, watch parameters) and the body of
 * a write, against a fresh cluster with a few objects.
 *
 * Input: byte 0 picks the method and the content type; the bytes up to
 * the first newline are the request target ("/api/v1/...?..."); the rest
 * is the body. Every request must get exactly one answer (a reply, or a
 * stream that is then cancelled), with a valid status code, and leave
 * nothing behind.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/err.h"
#include "e2e/kubesim/api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct answer {
    int replies, begins, ends, code;
};

static void on_reply(void *ctx, int code, const char *ctype, const char *body,
                     size_t len)
{
    struct answer *a = ctx;
    (void)ctype;
    (void)body;
    (void)len;
    a->replies++;
    a->code = code;
}

static void on_begin(void *ctx, int code, const char *ctype)
{
    struct answer *a = ctx;
    (void)ctype;
    a->begins++;
    a->code = code;
}

static int on_write(void *ctx, const char *data, size_t len)
{
    (void)ctx;
    (void)data;
    (void)len;
    return 0;
}

static void on_end(void *ctx)
{
    struct answer *a = ctx;
    a->ends++;
}

static void handle(struct gf_ks_api *api, const char *method, const char *path,
                   const char *query, const char *ctype, const char *body,
                   size_t len)
{
    struct answer a = {0};
    struct gf_ks_api_out out = {.ctx = &a,
                                .reply = on_reply,
                                .stream_begin = on_begin,
                                .stream_write = on_write,
                                .stream_end = on_end};
    struct gf_ks_api_req req = {.method = method,
                                .path = path,
                                .query = query,
                                .content_type = ctype,
                                .body = body,
                                .body_len = len,
                                .user = "admin"};
    struct gf_ks_api_call *call = NULL;
    gf_ks_api_handle(api, &req, &out, &call);
    GF_BUG_ON(a.replies + a.begins != 1);
    GF_BUG_ON(a.replies == 1 && call != NULL);
    GF_BUG_ON(a.code < 200 || a.code > 599);
    gf_ks_api_call_cancel(call);
}

static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};
static const char *const ctypes[] = {
    "application/json", "application/merge-patch+json",
    "application/json-patch+json", "application/strategic-merge-patch+json",
    "application/yaml"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    int64_t live = gf_alloc_live();
    struct gf_clock clock;
    gf_clock_init_manual(&clock, 1000, 1795514400000LL);
    struct gf_ks_catalog *cat = gf_ks_catalog_new();
    struct gf_ks_api_opts o = {
        .clock = &clock, .catalog = cat, .cluster = "fuzz", .uid_seed = 1};
    struct gf_ks_api *api = gf_ks_api_new(&o);
    const char *seed =
        "{\"metadata\":{\"name\":\"a\",\"labels\":{\"k\":\"v\"}},"
        "\"data\":{\"x\":\"y\"}}";
    handle(api, "POST", "/api/v1/namespaces/default/configmaps", NULL,
           "application/json", seed, strlen(seed));

    const char *method = methods[data[0] % 5];
    const char *ctype = ctypes[(data[0] / 5) % 5];
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    const char *nl = memchr(p, '\n', n);
    size_t tlen = nl != NULL ? (size_t)(nl - p) : n;
    char *target = gf_strndup(p, tlen);
    /* The HTTP layer hands over NUL-free strings. */
    if (strlen(target) == tlen && target[0] == '/') {
        char *q = strchr(target, '?');
        if (q != NULL)
            *q++ = '\0';
        const char *body = nl != NULL ? nl + 1 : "";
        size_t blen = nl != NULL ? n - tlen - 1 : 0;
        handle(api, method, target, q, ctype, body, blen);
    }
    gf_free(target);
    gf_ks_api_free(api);
    gf_ks_catalog_free(cat);
    GF_BUG_ON(gf_clock_active_timers(&clock) != 0);
    gf_clock_close(&clock);
    GF_BUG_ON(gf_alloc_live() != live);
    return 0;
}
