/*
 * httpd_proto: the HTTP/1.1 side of controller/httpd, without sockets.
 *
 * One struct gf_httpd_proto per connection turns the bytes a client sends
 * into the bytes the server answers: http-parser frames the requests, each
 * complete request is routed (GET and HEAD of a registered path; the query
 * string is ignored) and its answer appended to an output buffer, in
 * request order. Nothing here touches a socket, the loop or the clock, so
 * the request path is driven the same way by the server (httpd.c), the
 * unit tests and the fuzzer (controller/fuzz/fuzz_httpd.c).
 *
 * Answers:
 *   - a registered path: the handler's status, Content-Type and body (no
 *     body for HEAD, with the Content-Length a GET would have);
 *   - an unregistered path: 404; a registered one with a method other
 *     than GET or HEAD: 405 with "Allow: GET, HEAD";
 *   - request line and header fields together over GF_HTTPD_MAX_HEADER
 *     bytes: 431; a request body over GF_HTTPD_MAX_BODY: 413; anything
 *     http-parser refuses, or a request target without a path: 400.
 *     These three end the connection ("Connection: close"), because the
 *     rest of the stream cannot be framed any more. A request that is both
 *     malformed and over the cap gets 400 or 431, whichever http-parser
 *     meets first, which can depend on where the reads cut it;
 *   - a request that asks for it (Connection: close, HTTP/1.0 without
 *     keep-alive) or an upgrade also ends the connection after its answer.
 * Once the connection is to end, gf_httpd_proto_closed() is true and no
 * more input is taken.
 *
 * Loop thread only (handlers run on it).
 */
#ifndef GF_CONTROLLER_HTTPD_PROTO_H
#define GF_CONTROLLER_HTTPD_PROTO_H

#include <stdbool.h>
#include <stddef.h>

#include <http_parser.h>

#include "common/buf.h"
#include "common/htab.h"
#include "controller/httpd.h"

/* Request line plus header fields (names and values), in bytes. */
#define GF_HTTPD_MAX_HEADER (8u << 10)
/* Bodies are never read; a short one is skipped, a long one refused. */
#define GF_HTTPD_MAX_BODY (64u << 10)
/* The cap on a handler's answer body (the gf_buf it fills). */
#define GF_HTTPD_MAX_ANSWER (64u << 20)

/* A registered path: what gf_httpd_route stores in the routes table. */
struct gf_httpd_route {
    gf_httpd_handler fn;
    void *data;
};

struct gf_httpd_proto {
    http_parser parser;
    const struct gf_htab *routes; /* borrowed: path -> gf_httpd_route */
    struct gf_buf url;            /* the request target being read */
    size_t header_bytes, body_bytes;
    bool header_too_big, body_too_big;
    bool msg_done;   /* a request is complete, not yet answered */
    bool keep_alive; /* of the complete request */
    bool closed;     /* the connection ends after what out holds */
    unsigned long answered;
};

/* routes is borrowed and must outlive p. */
void gf_httpd_proto_init(struct gf_httpd_proto *p,
                         const struct gf_htab *routes);
void gf_httpd_proto_free(struct gf_httpd_proto *p);

/*
 * Parses data up to the end of the first request that completes in it,
 * and appends that request's answer to out. Returns the bytes consumed:
 * all n when no request completed (http-parser keeps its state, so the
 * caller drops them), fewer when the rest belongs to later requests (the
 * caller feeds them again, possibly after its output has drained). Returns
 * 0 and takes nothing once the connection is closed. If out's cap is
 * reached the connection is closed.
 */
size_t gf_httpd_proto_step(struct gf_httpd_proto *p, const char *data, size_t n,
                           struct gf_buf *out);

static inline bool gf_httpd_proto_closed(const struct gf_httpd_proto *p)
{
    return p->closed;
}

#endif
