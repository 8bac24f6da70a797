/*
 * ks_tclient: a minimal HTTP/1.1 client (optionally over TLS with peer
 * verification) on the test's own libuv loop, for kubesim's server tests.
 * Responses are parsed with http_parser (chunked bodies decoded), so a
 * test sees status codes, headers it asks about and bodies exactly as a
 * client would. Test code only.
 */
#ifndef GF_KST_CLIENT_H
#define GF_KST_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <http_parser.h>
#include <openssl/ssl.h>
#include <uv.h>

#include "common/buf.h"

#define GF_KST_MAX_RESP 48

struct gf_kst_resp {
    int status;
    struct gf_buf body;
    char retry_after[16];
    bool chunked, complete;
};

struct gf_kst_client {
    uv_loop_t *loop;
    uv_tcp_t tcp;
    uv_connect_t creq;
    SSL_CTX *ctx;
    SSL *ssl;
    BIO *rbio, *wbio;
    http_parser parser;
    char hname[64];
    bool connected, tls_ok, eof, closed, open;
    int read_err; /* last read error (UV_ECONNRESET ...) */
    int conn_err;
    size_t bytes; /* plaintext bytes received */
    struct gf_kst_resp resp[GF_KST_MAX_RESP];
    size_t n_resp;    /* responses begun */
    bool expect_head; /* the next response answers a HEAD: no body */
};

/*
 * Connects to 127.0.0.1:port. ca_pem NULL = plain HTTP; otherwise TLS
 * trusting only that CA and verifying the name "localhost".
 */
void gf_kst_connect(struct gf_kst_client *c, uv_loop_t *loop, int port,
                    const char *ca_pem);
/* Sends plaintext (through TLS when connected with it). */
void gf_kst_send(struct gf_kst_client *c, const char *data);
/* Stops or restarts reading (to make a slow client). */
void gf_kst_pause(struct gf_kst_client *c, bool paused);
/* Closes the connection; run the loop to finish. Idempotent. */
void gf_kst_close(struct gf_kst_client *c);
/* Frees buffers and TLS state after the close callback has run. */
void gf_kst_free(struct gf_kst_client *c);

/*
 * Runs the loop one turn at a time until pred(arg) holds; fails the test
 * if that has not happened within 20 s of wall time (a guard against a
 * hang, never a wait: local sockets answer in microseconds).
 */
void gf_kst_run_until(uv_loop_t *loop, bool (*pred)(void *), void *arg);
/* Runs n non-blocking turns (to show that something does NOT happen). */
void gf_kst_spin(uv_loop_t *loop, int n);

/* Predicates for gf_kst_run_until. */
bool gf_kst_has_responses(void *client_and_n);
struct gf_kst_wait {
    struct gf_kst_client *c;
    size_t n;
};
bool gf_kst_is_eof(void *client);
bool gf_kst_is_connected(void *client);

#endif
