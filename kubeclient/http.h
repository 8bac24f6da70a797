/*
 * http: HTTP/1.1 and HTTP/2 transfers over one libcurl multi handle driven
 * by libuv.
 *
 * One struct gf_http owns one CURLM, one uv_timer_t for curl's timeout and
 * one uv_poll_t per socket (attached with curl_multi_assign), exactly as
 * curl's multi-uv example does. Transfers share connections (and HTTP/2
 * streams when the server offers h2 over TLS). Each transfer is a
 * struct gf_http_req; its context lives in CURLOPT_PRIVATE.
 *
 * Time that matters to callers (per-request timeouts and the idle timer of
 * streaming requests) is measured on the injected struct gf_clock, so tests
 * move time instead of sleeping; curl itself gets no CURLOPT_TIMEOUT.
 *
 * TLS always verifies the peer unless the caller passes insecure=true (only
 * done when a kubeconfig explicitly says so). Header values given to a
 * request (including "Authorization: Bearer ...") are never logged.
 *
 * Callback contract (libuv's): gf_http_start() returning an error means the
 * done callback never fires; returning 0 means it fires exactly once, with
 * GF_ECANCELED after gf_http_cancel() or gf_http_close(). Done callbacks are
 * never called from inside a libcurl callback, and may start, cancel or
 * close freely. The streaming data callback IS called from inside curl's
 * write callback; from there the caller may call gf_http_cancel() and
 * gf_http_start() (both are queued and flushed after curl returns) but
 * nothing else of this module.
 *
 * Loop thread only.
 */
#ifndef GF_HTTP_H
#define GF_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/buf.h"
#include "common/clock.h"

struct gf_http;
struct gf_http_req;

/* Default cap for a buffered response body (GF_E2BIG beyond it). */
#define GF_HTTP_DEFAULT_MAX_BODY (64u << 20)
/* Cap on the buffered body of a non-2xx answer to a streaming request. */
#define GF_HTTP_ERROR_BODY_MAX (64u << 10)

/* TLS material; all borrowed for the duration of gf_http_start() (curl
 * copies the blobs). NULL/0 fields mean "not set". */
struct gf_http_tls {
    const unsigned char *ca_pem; /* NULL: the system trust store */
    size_t ca_pem_len;
    const unsigned char *cert_pem; /* client certificate */
    size_t cert_pem_len;
    const unsigned char *key_pem; /* client key; never logged */
    size_t key_pem_len;
    const char *server_name; /* SNI/verification name override, or NULL */
    bool insecure;           /* skip peer verification (kubeconfig only) */
};

/* Outcome of one transfer, valid only during the done callback. */
struct gf_http_resp {
    /*
     * 0 when an HTTP answer was received completely (whatever its status),
     * else GF_ETRANSPORT, GF_ETLS, GF_ETIMEDOUT, GF_E2BIG, GF_ECANCELED or
     * the error returned by the data callback.
     */
    int err;
    long status;      /* HTTP status, 0 if none was received */
    int http_version; /* 1 or 2, 0 if unknown */
    /* Buffered body (non-streaming requests, or a streaming request that
     * got a non-2xx answer). Returned-borrowed. */
    const char *body;
    size_t body_len;
    uint64_t retry_after_ms; /* from a Retry-After header, 0 if absent */
    bool reused_conn;        /* the transfer reused a connection */
    /* Why it failed, in curl's words (CURLOPT_ERRORBUFFER: "SSL certificate
     * problem: unable to get local issuer certificate") or ours for
     * failures we decided (cap, timeout, cancel); "" if none, never NULL. */
    const char *err_detail;
};

/*
 * Streaming: called with each chunk of a 2xx body, in order. Return 0 to
 * continue; a negative value aborts the transfer and becomes resp->err.
 */
typedef int (*gf_http_data_cb)(void *data, const char *p, size_t n);
/* Completion: fires exactly once per successfully started request. */
typedef void (*gf_http_done_cb)(void *data, const struct gf_http_resp *resp);
typedef void (*gf_http_close_cb)(void *data);

struct gf_http_req_opts {
    const char *method; /* "GET", "POST", "PATCH", "PUT", "DELETE" */
    const char *url;    /* absolute URL; borrowed for the call */
    /* NULL-terminated "Name: value" lines; borrowed for the call (copied). */
    const char *const *headers;
    const void *body; /* request body; borrowed for the call (copied) */
    size_t body_len;
    const struct gf_http_tls *tls; /* may be NULL for plain http */
    size_t max_body;               /* 0: GF_HTTP_DEFAULT_MAX_BODY */
    uint64_t timeout_ms; /* whole-transfer deadline on the clock; 0: none */
    /* Streaming only: fail with GF_ETIMEDOUT when no byte arrives for this
     * long (0: no idle timer). Re-armed by every received chunk. */
    uint64_t idle_timeout_ms;
    gf_http_data_cb on_data; /* non-NULL: stream the 2xx body to it */
    gf_http_done_cb on_done; /* required */
    void *data;
};

/*
 * Creates the transfer engine on `loop`, measuring timeouts on `clk`
 * (borrowed; must outlive the engine). *out is returned-owned and freed by
 * gf_http_close(). Returns 0, or a negative error (nothing to free).
 */
int gf_http_new(uv_loop_t *loop, struct gf_clock *clk, struct gf_http **out);

/*
 * Cancels every request (each done callback fires with GF_ECANCELED),
 * closes all handles and frees the engine; `cb` (may be NULL) fires once
 * everything is closed, from the loop. The engine must not be used after
 * this call. Run the loop until cb has fired before uv_loop_close().
 */
void gf_http_close(struct gf_http *h, gf_http_close_cb cb, void *data);

/*
 * Starts a request. *out (may be NULL) receives a returned-borrowed handle
 * valid until the done callback returns, usable only for gf_http_cancel()
 * and, in the done callback, gf_http_body_take().
 * Returns 0 (done fires exactly once), -EINVAL for bad options or
 * GF_ECANCELED when the engine is closing (done never fires).
 */
int gf_http_start(struct gf_http *h, const struct gf_http_req_opts *o,
                  struct gf_http_req **out);

/*
 * Cancels a running request: its done callback fires later from the loop
 * with GF_ECANCELED (unless it already completed in the same turn, in which
 * case it fires with that result). Idempotent; accepts NULL.
 */
void gf_http_cancel(struct gf_http_req *req);

/*
 * From inside `req`'s done callback only: moves the buffered body out of
 * the transfer, without a copy, so that the caller may keep it past the
 * callback (request.c parses large bodies on the thread pool). Returns the
 * body, returned-owned (gf_free), NUL-terminated, with its length in *len;
 * resp->body points at the same bytes, now the caller's. An empty body is
 * returned as "" (still to be freed).
 */
char *gf_http_body_take(struct gf_http_req *req, size_t *len);

/* Returned-borrowed: the loop the engine runs on (for deferred work). */
uv_loop_t *gf_http_loop(const struct gf_http *h);

/* Number of requests started and not yet completed (tests, metrics). */
size_t gf_http_active(const struct gf_http *h);

/* Counters since creation. */
struct gf_http_stats {
    uint64_t started, completed, canceled, timeouts, conns_reused;
    uint64_t bytes_in;
};
void gf_http_stats(const struct gf_http *h, struct gf_http_stats *out);

/*
 * Appends `s` to `out`, percent-encoded for use in a URL path segment or
 * query value (RFC 3986 unreserved characters pass through). GF_E2BIG if
 * out is full.
 */
int gf_http_escape(struct gf_buf *out, const char *s);

#endif
