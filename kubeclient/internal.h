/*
 * internal: helpers shared by the files of kubeclient/ and by nothing
 * else (STYLE.md §1). Loop thread only.
 */
#ifndef GF_KUBECLIENT_INTERNAL_H
#define GF_KUBECLIENT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/log.h"
#include "kubeclient/http.h"
#include "kubeclient/request.h"

/* Streaming variant of a call (watches): the 2xx body goes to on_data,
 * idle_ms arms the idle timer and deadline_ms bounds the whole stream
 * (0: no timer of either kind). */
struct gf__kube_stream {
    gf_http_data_cb on_data;
    void *data;
    uint64_t idle_ms;
    uint64_t deadline_ms;
};

/*
 * gf_kube_call() with an optional stream. Same contract: 0 means cb fires
 * exactly once; with a stream, res->json is always NULL and err 0 means
 * the server ended the stream normally.
 */
int gf__kube_call_start(struct gf_kube_client *c, const struct gf_kube_op *op,
                        const struct gf__kube_stream *st, gf_kube_cb cb,
                        void *data, struct gf_kube_call **out);

/* Appends "&key=escaped(val)" (no '&' when q is empty). NULL val: no-op. */
int gf__kube_query_add(struct gf_buf *q, const char *key, const char *val);

/* Log context naming the client's cluster (comp "kubeclient"). */
const struct gf_log_ctx *gf__kube_client_lc(const struct gf_kube_client *c);

/* The client is kept alive by every call or watch that uses it. */
void gf__kube_client_ref(struct gf_kube_client *c);
void gf__kube_client_unref(struct gf_kube_client *c);

/*
 * Tests only: fn runs on the loop thread right after a call's body was
 * queued for the thread pool, before the parse can have completed (its
 * after-work callback runs from a later loop turn), so a test can cancel
 * the call, or free the client and close the engine, with the parse in
 * flight, deterministically. NULL fn: none.
 */
void gf__kube_client_set_parse_hook(struct gf_kube_client *c,
                                    void (*fn)(void *data,
                                               struct gf_kube_call *k),
                                    void *data);

/* Copies at most cap-1 bytes of s (NULL: "") and NUL-terminates. */
void gf__strlcpy(char *dst, const char *s, size_t cap);

#endif
