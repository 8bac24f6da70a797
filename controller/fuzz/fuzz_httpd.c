/*
 * Fuzz target for the request path of controller/httpd: whatever a client
 * sends on a connection, without a socket (httpd_proto.h).
 *
 * Input: the first byte picks how the stream is cut (pieces of 1 to 256
 * bytes, as reads arrive); the rest is the client's byte stream. Checks:
 * the answers do not depend on how the stream was cut (the same bytes fed
 * at once give the same output, but for 400 against 431, see
 * check_last_differs), every answer starts a status line, a
 * closed connection takes no more input, and nothing leaks (the replayer
 * checks the allocation counter after each input).
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/htab.h"
#include "controller/httpd_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int metrics(void *data, struct gf_buf *body, const char **ctype)
{
    (void)data;
    *ctype = "text/plain; version=0.0.4; charset=utf-8";
    return gf_buf_puts(body, "# TYPE gpufed_up gauge\ngpufed_up 1\n") == 0
               ? 200
               : 500;
}

static int healthz(void *data, struct gf_buf *body, const char **ctype)
{
    (void)data;
    (void)ctype;
    return gf_buf_puts(body, "ok\n") == 0 ? 200 : 500;
}

/* Feeds one piece; false once the connection is closed. */
static bool feed_piece(struct gf_httpd_proto *p, const char *in, size_t len,
                       struct gf_buf *out)
{
    size_t done = 0;
    while (done < len && !gf_httpd_proto_closed(p)) {
        size_t before = out->len;
        size_t k = gf_httpd_proto_step(p, in + done, len - done, out);
        /* Progress until the end: no caller can loop forever. */
        GF_BUG_ON(k > len - done || (k == 0 && !gf_httpd_proto_closed(p)));
        /* What was added is whole answers, each a status line first. */
        GF_BUG_ON(out->len > before &&
                  strncmp(out->data + before, "HTTP/1.1 ", 9) != 0);
        done += k;
    }
    return !gf_httpd_proto_closed(p);
}

/* Feeds the stream in pieces of chunk bytes; returns answers written. */
static unsigned long run(const struct gf_htab *routes, const char *in, size_t n,
                         size_t chunk, struct gf_buf *out, bool *closed)
{
    struct gf_httpd_proto p;
    gf_httpd_proto_init(&p, routes);
    for (size_t off = 0; off < n; off += chunk) {
        size_t len = n - off < chunk ? n - off : chunk;
        if (!feed_piece(&p, in + off, len, out)) {
            /* A closed connection takes nothing more. */
            GF_BUG_ON(gf_httpd_proto_step(&p, in, n, out) != 0);
            break;
        }
    }
    unsigned long answered = p.answered;
    *closed = gf_httpd_proto_closed(&p);
    gf_httpd_proto_free(&p);
    return answered;
}

/* Where the last answer in out starts (answers hold no status line). */
static size_t last_answer(const struct gf_buf *out)
{
    size_t at = 0;
    for (const char *q = out->data; q != NULL;) {
        at = (size_t)(q - out->data);
        q = strstr(q + 1, "HTTP/1.1 ");
    }
    return at;
}

static bool refused(const char *answer)
{
    return strncmp(answer, "HTTP/1.1 400 ", 13) == 0 ||
           strncmp(answer, "HTTP/1.1 431 ", 13) == 0;
}

/*
 * A request that is both malformed and over the header cap is refused
 * with 400 or 431 depending on which http-parser sees first, which
 * depends on the cuts. Only that last answer may differ.
 */
static void check_last_differs(const struct gf_buf *x, const struct gf_buf *y,
                               bool closed)
{
    GF_BUG_ON(!closed || x->len == 0 || y->len == 0);
    size_t lx = last_answer(x), ly = last_answer(y);
    GF_BUG_ON(lx != ly || memcmp(x->data, y->data, lx) != 0);
    GF_BUG_ON(!refused(x->data + lx) || !refused(y->data + ly));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool closed_cut, closed_whole;
    if (size < 1)
        return 0;
    size_t chunk = (size_t)data[0] + 1;
    const char *in = (const char *)data + 1;
    size_t n = size - 1;
    struct gf_htab routes;
    gf_htab_init(&routes, GF_HTAB_OWN_KEYS);
    struct gf_httpd_route rm = {metrics, NULL}, rh = {healthz, NULL};
    gf_htab_put_str(&routes, "/metrics", &rm);
    gf_htab_put_str(&routes, "/healthz", &rh);
    struct gf_buf cut = GF_BUF_INIT(64u << 20);
    struct gf_buf whole = GF_BUF_INIT(64u << 20);
    unsigned long a = run(&routes, in, n, chunk, &cut, &closed_cut);
    unsigned long b =
        run(&routes, in, n, n != 0 ? n : 1, &whole, &closed_whole);
    GF_BUG_ON(a != b || closed_cut != closed_whole);
    if (cut.len != whole.len || memcmp(cut.data, whole.data, cut.len) != 0)
        check_last_differs(&cut, &whole, closed_cut);
    gf_buf_free(&cut);
    gf_buf_free(&whole);
    gf_htab_free(&routes);
    return 0;
}
