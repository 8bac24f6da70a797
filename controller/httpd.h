/*
 * httpd: the hub's small HTTP/1.1 server for /metrics, /healthz and
 * /readyz, on the hub's libuv loop (no threads).
 *
 * What it serves (the request path is controller/httpd_proto.h): GET and
 * HEAD of registered paths, the query string ignored; 404 for other paths,
 * 405 for other methods, 400 for what does not parse, 431 past 8 KiB of
 * request line and headers. Connections are kept alive and pipelined
 * requests are answered in order.
 *
 * What protects the hub from its clients:
 *   - at most 64 connections; one more is accepted and closed at once,
 *     without an answer (a scraper retries, a probe fails: both right
 *     when something is hammering the port);
 *   - a connection that makes no progress for 30 s (no request completed
 *     and answered, or a client that reads no answer) is closed: the
 *     deadline is set at accept and reset each time an answer has been
 *     written, never by incoming bytes, so a client trickling a request
 *     one byte at a time cannot hold a slot;
 *   - writes never block: each answer is queued with uv_write, and a
 *     connection stops being parsed and read while more than 1 MiB of its
 *     answers wait for the client, so a slow reader costs bounded memory
 *     and never delays another connection;
 *   - every write is checked: a failed uv_write or write callback closes
 *     that connection.
 *
 * Handler contract: called on the loop, synchronously, for GET and HEAD of
 * its path. body is a gf_buf already initialised with a cap (64 MiB) and
 * owned by httpd; the handler appends to it. *content_type, if set, must
 * be a static string ("text/plain; charset=utf-8" when left NULL). The
 * return value is the HTTP status; one outside 100..599 is answered as
 * 500. A handler must not call gf_httpd_close.
 *
 * Time: idle deadlines are timers of a struct gf_clock. By default the
 * server runs its own libuv clock (kubeclient/uvclock.h);
 * gf_httpd_set_clock lets the hub share its clock, and tests drive the
 * manual one.
 *
 * Ownership: the server owns its connections and its copies of route
 * paths; route data is borrowed and must stay valid until the close
 * callback. Loop thread only. Log lines carry comp=httpd.
 */
#ifndef GF_CONTROLLER_HTTPD_H
#define GF_CONTROLLER_HTTPD_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "common/buf.h"
#include "common/clock.h"

struct gf_httpd;

/*
 * Fills body (a capped gf_buf from common/buf.h, already initialised) and
 * *content_type (static string); returns the HTTP status code. Called on
 * the loop for GET/HEAD of a registered path (query string ignored).
 */
typedef int (*gf_httpd_handler)(void *data, struct gf_buf *body,
                                const char **content_type);

/* Defaults (DESIGN: a production server, not a demo). */
#define GF_HTTPD_MAX_CONNS 64
#define GF_HTTPD_IDLE_TIMEOUT_MS 30000

/*
 * addr: "HOST:PORT", ":PORT" (all interfaces) or "127.0.0.1:0" (any free
 * port). HOST is a numeric IPv4 address, a bracketed IPv6 one ("[::1]") or
 * "localhost" (127.0.0.1); names are not resolved (that would block the
 * loop). Listens at once. Returns 0 and *out, or a negative error: -EINVAL
 * for a bad address, a uv error (UV_EADDRINUSE, UV_EACCES) from bind or
 * listen; after an error nothing is left once the loop has run.
 */
int gf_httpd_new(uv_loop_t *loop, const char *addr, struct gf_httpd **out);

/*
 * Serves path (exact match, e.g. "/metrics"; it must start with '/' and
 * hold no '?') with fn. Returns 0, -EEXIST for a path already registered,
 * -EINVAL for a bad path.
 */
int gf_httpd_route(struct gf_httpd *h, const char *path, gf_httpd_handler fn,
                   void *data);

/* The bound port (useful with port 0). */
int gf_httpd_port(const struct gf_httpd *h);

/* Open connections (tests, and a figure for /metrics). */
size_t gf_httpd_conns(const struct gf_httpd *h);

/*
 * The idle deadline of new and current connections (counted from their
 * next reset); GF_HTTPD_IDLE_TIMEOUT_MS by default. 0 is refused
 * (GF_BUG_ON): a connection must never live forever.
 */
void gf_httpd_set_idle_timeout_ms(struct gf_httpd *h, uint64_t ms);

/*
 * Uses clk (borrowed; it must outlive the server) for idle deadlines
 * instead of the server's own libuv clock. Call before the loop has run
 * with the server, i.e. before the first connection (GF_BUG_ON).
 */
void gf_httpd_set_clock(struct gf_httpd *h, struct gf_clock *clk);

/*
 * Closes the listener and every connection (answers not yet written are
 * dropped); cb fires exactly once, later, from the loop (libuv close
 * contract), after every handle of the server has been closed, and the
 * server is freed right after it returns. cb may be NULL.
 */
void gf_httpd_close(struct gf_httpd *h, void (*cb)(void *data), void *data);

#endif
