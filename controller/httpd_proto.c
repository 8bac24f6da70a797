/*
 * httpd_proto: see httpd_proto.h for the contract.
 *
 * http-parser is paused in on_message_complete, so one call of
 * http_parser_execute never runs past the end of a request: the request
 * is answered outside the parser's callbacks (a handler never runs inside
 * the parser) and the caller decides whether to feed the next one now or
 * after its output has drained.
 */
#include "controller/httpd_proto.h"

#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"

/* A cap that only has to be finite: gf_buf computes max + 1. */
#define URL_MAX GF_HTTPD_MAX_HEADER

static struct gf_httpd_proto *proto_of(http_parser *hp)
{
    return hp->data;
}

static int count_header(struct gf_httpd_proto *p, size_t n)
{
    p->header_bytes += n;
    if (p->header_bytes > GF_HTTPD_MAX_HEADER) {
        p->header_too_big = true;
        return -1;
    }
    return 0;
}

static int on_message_begin(http_parser *hp)
{
    struct gf_httpd_proto *p = proto_of(hp);
    gf_buf_reset(&p->url);
    p->header_bytes = 0;
    p->body_bytes = 0;
    return 0;
}

static int on_url(http_parser *hp, const char *at, size_t n)
{
    struct gf_httpd_proto *p = proto_of(hp);
    if (count_header(p, n) != 0)
        return -1;
    return gf_buf_append(&p->url, at, n) == 0 ? 0 : -1;
}

/* Header names and values are only counted: no header changes an answer
 * that http-parser has not already decoded (keep-alive, length). */
static int on_header_bytes(http_parser *hp, const char *at, size_t n)
{
    (void)at;
    return count_header(proto_of(hp), n);
}

static int on_body(http_parser *hp, const char *at, size_t n)
{
    struct gf_httpd_proto *p = proto_of(hp);
    (void)at;
    p->body_bytes += n;
    if (p->body_bytes > GF_HTTPD_MAX_BODY) {
        p->body_too_big = true;
        return -1;
    }
    return 0;
}

static int on_message_complete(http_parser *hp)
{
    struct gf_httpd_proto *p = proto_of(hp);
    p->msg_done = true;
    p->keep_alive = http_should_keep_alive(hp) != 0;
    /* One request per step: the caller feeds the rest when it wants it. */
    http_parser_pause(hp, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_bytes,
    .on_header_value = on_header_bytes,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void gf_httpd_proto_init(struct gf_httpd_proto *p, const struct gf_htab *routes)
{
    memset(p, 0, sizeof(*p));
    http_parser_init(&p->parser, HTTP_REQUEST);
    p->parser.data = p;
    p->routes = routes;
    gf_buf_init(&p->url, URL_MAX);
}

void gf_httpd_proto_free(struct gf_httpd_proto *p)
{
    gf_buf_free(&p->url);
}

static const char *reason_phrase(int code)
{
    switch (code) {
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Payload Too Large";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return code < 300 ? "OK" : code < 500 ? "Error" : "Server Error";
    }
}

struct answer {
    int code;
    const char *ctype;
    const char *body;
    size_t len;
    bool head;  /* no body on the wire */
    bool allow; /* 405: name the methods we take */
};

static void put_answer(struct gf_httpd_proto *p, const struct answer *a,
                       struct gf_buf *out)
{
    size_t start = out->len;
    int rc = gf_buf_printf(out,
                           "HTTP/1.1 %d %s\r\n"
                           "Content-Type: %s\r\n"
                           "Content-Length: %zu\r\n"
                           "%s%s\r\n",
                           a->code, reason_phrase(a->code), a->ctype, a->len,
                           a->allow ? "Allow: GET, HEAD\r\n" : "",
                           p->closed ? "Connection: close\r\n" : "");
    if (rc == 0 && !a->head)
        rc = gf_buf_append(out, a->body, a->len);
    if (rc != 0) {
        /* Never a half answer: drop it and end the connection. */
        out->len = start;
        if (out->data != NULL)
            out->data[start] = '\0';
        p->closed = true;
        return;
    }
    p->answered++;
}

static void put_error(struct gf_httpd_proto *p, int code, const char *text,
                      struct gf_buf *out)
{
    struct answer a = {
        .code = code,
        .ctype = "text/plain; charset=utf-8",
        .body = text,
        .len = strlen(text),
        .allow = code == 405,
    };
    put_answer(p, &a, out);
}

/* The path of the request target (origin or absolute form), or NULL. */
static const char *target_path(const struct gf_httpd_proto *p, size_t *len)
{
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (p->url.len == 0 ||
        http_parser_parse_url(p->url.data, p->url.len, 0, &u) != 0 ||
        (u.field_set & (1u << UF_PATH)) == 0)
        return NULL;
    *len = u.field_data[UF_PATH].len;
    return p->url.data + u.field_data[UF_PATH].off;
}

static void call_handler(struct gf_httpd_proto *p,
                         const struct gf_httpd_route *r, bool head,
                         struct gf_buf *out)
{
    struct gf_buf body = GF_BUF_INIT(GF_HTTPD_MAX_ANSWER);
    const char *ctype = NULL;
    int code = r->fn(r->data, &body, &ctype);
    struct answer a = {
        .code = code,
        .ctype = ctype != NULL ? ctype : "text/plain; charset=utf-8",
        .body = gf_buf_cstr(&body),
        .len = body.len,
        .head = head,
    };
    if (code < 100 || code > 599) {
        a.code = 500;
        a.ctype = "text/plain; charset=utf-8";
        a.body = "internal error\n";
        a.len = strlen(a.body);
    }
    put_answer(p, &a, out);
    gf_buf_free(&body);
}

static void answer_request(struct gf_httpd_proto *p, struct gf_buf *out)
{
    /* An upgrade (or CONNECT) leaves bytes that are not HTTP behind. */
    if (!p->keep_alive || p->parser.upgrade)
        p->closed = true;
    size_t len = 0;
    const char *path = target_path(p, &len);
    if (path == NULL) {
        p->closed = true;
        put_error(p, 400, "bad request target\n", out);
        return;
    }
    const struct gf_httpd_route *r = gf_htab_get(p->routes, path, len);
    if (r == NULL) {
        put_error(p, 404, "404 page not found\n", out);
        return;
    }
    enum http_method m = (enum http_method)p->parser.method;
    if (m != HTTP_GET && m != HTTP_HEAD) {
        put_error(p, 405, "method not allowed\n", out);
        return;
    }
    call_handler(p, r, m == HTTP_HEAD, out);
}

static void answer_parse_error(struct gf_httpd_proto *p, struct gf_buf *out)
{
    enum http_errno e = HTTP_PARSER_ERRNO(&p->parser);
    p->closed = true;
    if (p->header_too_big || e == HPE_HEADER_OVERFLOW)
        put_error(p, 431, "request header fields too large\n", out);
    else if (p->body_too_big)
        put_error(p, 413, "request body too large\n", out);
    else
        put_error(p, 400, "bad request\n", out);
}

size_t gf_httpd_proto_step(struct gf_httpd_proto *p, const char *data, size_t n,
                           struct gf_buf *out)
{
    if (p->closed || n == 0)
        return 0;
    size_t used = http_parser_execute(&p->parser, &settings, data, n);
    enum http_errno e = HTTP_PARSER_ERRNO(&p->parser);
    if (p->msg_done) {
        p->msg_done = false;
        http_parser_pause(&p->parser, 0);
        answer_request(p, out);
        return used;
    }
    if (e != HPE_OK) {
        answer_parse_error(p, out);
        return used;
    }
    if (p->parser.upgrade) {
        /* Headers of an upgrade without a complete message: give up. */
        p->closed = true;
        return used;
    }
    return n;
}
