/*
 * server: the HTTP/1.1 (over TLS) front end of one simulated cluster.
 *
 * One listener on 127.0.0.1 per cluster. Each connection is a uv_tcp_t
 * with an OpenSSL SSL object on memory BIOs (so TLS runs on the loop
 * without blocking sockets) and an http_parser. Requests are parsed,
 * authenticated (auth.h), checked against the cluster's faults (fault.h)
 * and handed to the handler (the REST layer, api.h) with a struct
 * gf_ks_api_out through which the handler replies or streams.
 *
 * HTTP as the API server speaks it: keep-alive, pipelined requests are
 * served strictly one after another (parsing pauses while a request is in
 * progress), watches are chunked streams, request bodies are capped (413),
 * headers are capped (431). Streams are paced by the client (see
 * writable below); past max_queued, stream_write fails and the connection
 * is closed once the handler has ended the stream.
 *
 * The same code serves plain HTTP when no SSL_CTX is given (kubesim's
 * admin endpoint).
 *
 * Ownership: the server owns its connections. Everything in the options
 * is borrowed and must outlive the server. gf_ks_server_close() cancels
 * every streaming call synchronously (so the handler's state may be freed
 * right after it returns) and frees the server once libuv has closed its
 * handles. Loop thread only.
 */
#ifndef GF_KS_SERVER_H
#define GF_KS_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "common/clock.h"
#include "e2e/kubesim/api.h"
#include "e2e/kubesim/auth.h"
#include "e2e/kubesim/fault.h"

/* Serves one request; the contract of gf_ks_api_handle (api.h). */
typedef void (*gf_ks_server_handle_fn)(void *data,
                                       const struct gf_ks_api_req *req,
                                       const struct gf_ks_api_out *out,
                                       struct gf_ks_api_call **call);
/* Ends a streaming call whose client went away (no callbacks after). */
typedef void (*gf_ks_server_cancel_fn)(void *data, struct gf_ks_api_call *call);
/* The client of a streaming call that was behind has caught up
 * (gf_ks_api_call_writable). */
typedef void (*gf_ks_server_writable_fn)(void *data,
                                         struct gf_ks_api_call *call);

struct gf_ks_server_opts {
    uv_loop_t *loop;        /* required */
    struct gf_clock *clock; /* required: latency faults */
    const char *name;       /* for logs ("east"); copied */
    const char *host;       /* NULL = "127.0.0.1" */
    int port;               /* 0 = ephemeral */
    SSL_CTX *tls;           /* NULL = plain HTTP */
    /* NULL = no authentication: every request is "system:anonymous". */
    const struct gf_ks_auth *auth;
    struct gf_ks_faults *faults;   /* NULL = none */
    gf_ks_server_handle_fn handle; /* required */
    gf_ks_server_cancel_fn cancel; /* required if handle may stream */
    /*
     * NULL: stream_write always takes the chunk (0) until max_queued.
     * Set: stream_write returns 1 once a quarter of max_queued waits for
     * the client, and writable is called when that has drained to a
     * sixteenth: the stream is paced by the client, as the API server's
     * watch is by TCP, and max_queued only guards against a handler that
     * ignores the 1.
     */
    gf_ks_server_writable_fn writable;
    void *data;
    size_t max_body;   /* 0 = 3 MiB, the API server's limit */
    size_t max_header; /* 0 = 1 MiB */
    size_t max_queued; /* bytes queued per streaming connection; 0 = 8 MiB */
};

struct gf_ks_server_stats {
    uint64_t accepted;     /* connections */
    uint64_t requests;     /* requests dispatched to the handler */
    uint64_t streams;      /* streaming responses begun */
    uint64_t dropped;      /* streams dropped at the max_queued cap */
    uint64_t faulted;      /* requests answered or cut by a fault */
    uint64_t tls_failures; /* failed handshakes */
};

struct gf_ks_server;

/*
 * Binds and listens. Returns 0 and *out, or a negative uv error (e.g.
 * UV_EADDRINUSE); on error nothing is left behind once the loop has run
 * (the listener handle is closed asynchronously, as libuv requires).
 * Registers itself as the faults' listener when faults is given.
 */
int gf_ks_server_start(const struct gf_ks_server_opts *o,
                       struct gf_ks_server **out);
/*
 * Stops listening, cancels every streaming call, closes every connection;
 * the struct is freed when libuv has closed the last handle (run the loop).
 * Accepts NULL.
 */
void gf_ks_server_close(struct gf_ks_server *s);

/* The bound port (useful with port 0). */
int gf_ks_server_port(const struct gf_ks_server *s);
/* Open connections. */
size_t gf_ks_server_conns(const struct gf_ks_server *s);
const struct gf_ks_server_stats *
gf_ks_server_stats(const struct gf_ks_server *s);

/*
 * Cuts connections now: every one (watches_only false) or only those with
 * a stream in progress, of one identity (NULL = all); reset sends a TCP
 * RST instead of a FIN. Streaming calls are cancelled first. Returns the
 * number cut. Used for faults (API server restart, watch drops).
 */
size_t gf_ks_server_cut(struct gf_ks_server *s, const char *identity,
                        bool watches_only, bool reset);

/*
 * Stops listening for ms (clients get "connection refused", as while an
 * API server restarts), cutting every connection first; then listens on
 * the same port again (retrying every 100 ms if it is taken). A pause
 * during a pause restarts the wait. Returns the connections cut.
 */
size_t gf_ks_server_pause(struct gf_ks_server *s, uint64_t ms);
/* False during a pause. */
bool gf_ks_server_listening(const struct gf_ks_server *s);

#endif
