/*
 * request: one Kubernetes API call, and the decoding of failures into
 * struct gf_api_status.
 *
 * A struct gf_kube_client stands for one API server: it holds a private
 * copy of the credentials (so it can re-read a token file on 401), the
 * shared transfer engine (struct gf_http) and the clock. Calls are
 * asynchronous with libuv's contract: an error return means the callback
 * never fires; 0 means it fires exactly once (GF_ECANCELED after
 * gf_kube_call_cancel()).
 *
 * Resources are addressed by plural ("pods"), plural.group
 * ("workloads.kueue.x-k8s.io") or plural.version.group; paths are built
 * without discovery from a table of known groups, and anything else can be
 * described explicitly with gf_kube_resource_set().
 *
 * Every failure, from the server or from the transport, is decoded into a
 * struct gf_api_status and classified (STYLE.md §4): backoff for transport
 * errors, 401, 429 and 5xx; requeue for 409; relist for 410/Expired;
 * terminal for 400, 403, 404, 422 and anything else.
 *
 * A 401 on a client whose credentials name a token file re-reads the file
 * once and retries the call with the new token if it changed.
 *
 * A large 2xx body (a LIST page of 256 KiB or more) is parsed on libuv's
 * thread pool, so that many clusters' pages parse in parallel and the loop
 * stays free; the callback still runs on the loop, with the same result as
 * an inline parse. A loop with such a parse pending stays alive until its
 * callback has run (uv_run returns after it).
 *
 * Loop thread only (the pool threads run cJSON alone, nothing of this API).
 */
#ifndef GF_REQUEST_H
#define GF_REQUEST_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/clock.h"
#include "kubeclient/http.h"
#include "kubeclient/kubeconfig.h"

/* ------------------------------------------------------------------ */
/* Status                                                              */

enum gf_api_class {
    GF_API_OK = 0,   /* success */
    GF_API_BACKOFF,  /* transport, 401, 429, 5xx: retry after a delay */
    GF_API_REQUEUE,  /* 409 Conflict/AlreadyExists: re-read and retry */
    GF_API_RELIST,   /* 410 Gone / Expired: list again */
    GF_API_TERMINAL, /* 400, 403, 404, 422 ...: log, never retry */
};

/* A decoded Kubernetes Status (or a transport failure in the same shape).
 * Strings are truncated copies, always NUL-terminated. */
struct gf_api_status {
    int err;         /* GF_E* code for this failure, 0 for success */
    long code;       /* HTTP status (or Status.code), 0 for transport errors */
    char reason[64]; /* Status.reason: "Expired", "Conflict", ... */
    char message[512]; /* Status.message or transport detail */
    char kind[64];     /* Status.details.kind, if any */
    char name[256];    /* Status.details.name, if any */
    /* Retry-After header, else details.retryAfterSeconds, in ms; 0 none */
    uint64_t retry_after_ms;
    enum gf_api_class cls;
};

/*
 * Decodes a failure answer: `body` (may be NULL/0 or not JSON) with HTTP
 * status `http_code` and the Retry-After header value already in ms.
 * Always fills *out (from the code alone when the body is not a Status)
 * and classifies it. Returns out->err: negative, or 0 for 2xx codes
 * unless the body is a Status saying "Failure" (then GF_EAPI).
 */
int gf_api_status_decode(const char *body, size_t len, long http_code,
                         uint64_t retry_after_ms, struct gf_api_status *out);
/* Same from an already parsed Status object (watch ERROR events).
 * http_code 0 takes Status.code. */
int gf_api_status_from_json(const cJSON *st, long http_code,
                            uint64_t retry_after_ms, struct gf_api_status *out);
/* A transport failure (GF_ETRANSPORT, GF_ETLS, GF_ETIMEDOUT, ...). */
void gf_api_status_transport(int err, const char *detail,
                             struct gf_api_status *out);
/* Classification by err/code/reason (also stored in out->cls). */
enum gf_api_class gf_api_status_classify(const struct gf_api_status *st);
/* "ok", "backoff", "requeue", "relist", "terminal". */
const char *gf_api_class_name(enum gf_api_class cls);

/* ------------------------------------------------------------------ */
/* Resources                                                           */

struct gf_kube_resource {
    char group[128];  /* "" for the core group */
    char version[32]; /* "v1", "v1beta2" */
    char plural[64];  /* "pods", "workloads" */
    char kind[64];    /* "Pod", "Workload"; "" if unknown */
    bool namespaced;
};

/*
 * Resolves "plural", "plural.group" or "plural.version.group" (kubectl's
 * forms). Known groups (core, apps, batch, coordination.k8s.io,
 * apiextensions.k8s.io, rbac.authorization.k8s.io, kueue.x-k8s.io,
 * gpufed.io, ...) resolve without discovery; an unknown plural.group
 * without a version returns -ENOENT. Returns 0, -ENOENT or -EINVAL.
 */
int gf_kube_resource_parse(const char *name, struct gf_kube_resource *out);
/* Explicit description; -EINVAL if a string does not fit. */
int gf_kube_resource_set(struct gf_kube_resource *out, const char *group,
                         const char *version, const char *plural,
                         const char *kind, bool namespaced);

/*
 * Appends the URL path of a collection (name NULL) or object to out:
 * /api/v1[/namespaces/NS]/PLURAL[/NAME[/SUBRESOURCE]] or
 * /apis/GROUP/VERSION/... . ns NULL or "" on a namespaced resource means
 * all namespaces (collections only). Path segments are escaped.
 * Returns 0, -EINVAL (name without namespace on a namespaced resource) or
 * GF_E2BIG.
 */
int gf_kube_path(struct gf_buf *out, const struct gf_kube_resource *r,
                 const char *ns, const char *name, const char *subresource);

/* ------------------------------------------------------------------ */
/* Client                                                              */

struct gf_kube_client;
struct gf_kube_call;

struct gf_kube_client_opts {
    uint64_t timeout_ms;    /* per call; 0: 30 s */
    size_t max_body;        /* response cap; 0: GF_HTTP_DEFAULT_MAX_BODY */
    const char *user_agent; /* NULL: "gpufed" */
    const char *name;       /* cluster name for logs, may be NULL */
};

/*
 * Creates a client for the server in `creds` (deep-copied). `http` and
 * `clk` are borrowed and must outlive the client and all its calls.
 * *out is returned-owned: gf_kube_client_free(). 0, -EINVAL (no server).
 */
int gf_kube_client_new(struct gf_http *http, struct gf_clock *clk,
                       const struct gf_kube_creds *creds,
                       const struct gf_kube_client_opts *opts,
                       struct gf_kube_client **out);
/*
 * Drops the owner's reference. Calls and watches in flight keep the client
 * alive until their callbacks have fired; cancel them to finish sooner.
 * Accepts NULL.
 */
void gf_kube_client_free(struct gf_kube_client *c);

/* Returned-borrowed accessors. */
struct gf_http *gf_kube_client_http(const struct gf_kube_client *c);
struct gf_clock *gf_kube_client_clock(const struct gf_kube_client *c);
const char *gf_kube_client_server(const struct gf_kube_client *c);
const char *gf_kube_client_name(const struct gf_kube_client *c);
/* Default namespace from the credentials, or "default". */
const char *gf_kube_client_namespace(const struct gf_kube_client *c);
/* Number of token reloads after a 401 (tests, metrics). */
uint64_t gf_kube_client_token_reloads(const struct gf_kube_client *c);
/* Number of response bodies parsed on libuv's thread pool rather than on
 * the loop (2xx bodies of 256 KiB or more; tests, metrics). */
uint64_t gf_kube_client_pool_parses(const struct gf_kube_client *c);

/*
 * The result of a call, valid only during the callback.
 * err == 0: 2xx; `json` is the parsed body (NULL if empty or not JSON).
 * err < 0: `status` describes the failure (server Status or transport).
 */
struct gf_kube_result {
    int err;
    long http_code;
    const cJSON *json; /* returned-borrowed */
    const char *body;  /* raw body, returned-borrowed */
    size_t body_len;
    /* gf_kube_list(): the limit the page was finally asked with, smaller
     * than the caller's when a page over the body cap was halved (ask
     * the next page with it); 0 for unpaged lists and other calls. */
    unsigned limit;
    const struct gf_api_status *status; /* never NULL */
};
typedef void (*gf_kube_cb)(void *data, const struct gf_kube_result *res);

/* A generic call; the verbs below fill this in. All fields borrowed. */
struct gf_kube_op {
    const char *method; /* "GET", "POST", "PATCH", "DELETE", "PUT" */
    /* An absolute path ("/apis") instead of res/ns/name/subresource, for
     * what is not a resource (discovery). NULL: built from res. */
    const char *path;
    const char *accept; /* Accept header value; NULL: application/json */
    const struct gf_kube_resource *res;
    const char *ns;           /* NULL/"": cluster scope or all namespaces */
    const char *name;         /* NULL for collections */
    const char *subresource;  /* e.g. "status", or NULL */
    const char *query;        /* already-encoded "a=b&c=d", or NULL */
    const char *content_type; /* request body type, or NULL */
    const void *body;
    size_t body_len;
    uint64_t timeout_ms; /* 0: the client's default */
};

/*
 * Starts `op`. *out (may be NULL) is a returned-borrowed handle for
 * gf_kube_call_cancel(), valid until the callback returns. Returns 0 (cb
 * fires exactly once), -EINVAL or GF_E2BIG (bad op; cb never fires).
 */
int gf_kube_call(struct gf_kube_client *c, const struct gf_kube_op *op,
                 gf_kube_cb cb, void *data, struct gf_kube_call **out);
/* cb fires with GF_ECANCELED (unless already completed). Accepts NULL. */
void gf_kube_call_cancel(struct gf_kube_call *call);

int gf_kube_get(struct gf_kube_client *c, const struct gf_kube_resource *r,
                const char *ns, const char *name, gf_kube_cb cb, void *data,
                struct gf_kube_call **out);

struct gf_kube_list_opts {
    const char *ns;             /* NULL/"": all namespaces */
    const char *label_selector; /* NULL: none */
    const char *field_selector;
    const char *resource_version; /* NULL: most recent (quorum read) */
    const char *continue_token;   /* from the previous page */
    unsigned limit;               /* page size, 0: no paging */
};
/*
 * One page. Use gf_kube_list_meta() on res->json for continue/rv. A page
 * over the client's body cap is asked for again with half the limit, down
 * to limit=1, so the page may hold fewer items than `limit` (as the API
 * allows); only a single object over the cap fails, with GF_E2BIG and
 * status->code 0 (our cap, not the server's answer). An unpaged list
 * (limit 0) over the cap fails the same way.
 */
int gf_kube_list(struct gf_kube_client *c, const struct gf_kube_resource *r,
                 const struct gf_kube_list_opts *o, gf_kube_cb cb, void *data,
                 struct gf_kube_call **out);
/* Returned-borrowed metadata.resourceVersion / metadata.continue of a
 * list (either may be NULL). */
void gf_kube_list_meta(const cJSON *list, const char **rv, const char **cont);

/* POST a JSON object (body is serialized text). */
int gf_kube_create(struct gf_kube_client *c, const struct gf_kube_resource *r,
                   const char *ns, const char *body, size_t len, gf_kube_cb cb,
                   void *data, struct gf_kube_call **out);

enum gf_patch_type {
    GF_PATCH_MERGE, /* application/merge-patch+json */
    GF_PATCH_JSON,  /* application/json-patch+json */
    GF_PATCH_APPLY, /* application/apply-patch+yaml (server-side apply) */
};

struct gf_kube_patch_opts {
    enum gf_patch_type type;
    const char *subresource;   /* "status" or NULL */
    const char *field_manager; /* required for APPLY, else optional */
    bool force;                /* APPLY: force=true */
    /*
     * Optimistic concurrency: for JSON patches a {"op":"replace",
     * "path":"/metadata/resourceVersion"} is prepended to the array; for
     * merge patches metadata.resourceVersion is set in the object. Either
     * way the patched object carries the expected resourceVersion, and
     * the server's own update check answers 409 Conflict (requeue) when
     * the stored one differs. A "test" op would fail with a 422 instead,
     * which kube-apiserver words generically, so a lost race could not be
     * told from an invalid patch. NULL: no precondition.
     */
    const char *resource_version;
};
/* body: a JSON object (merge) or array (JSON patch); serialized text. */
int gf_kube_patch(struct gf_kube_client *c, const struct gf_kube_resource *r,
                  const char *ns, const char *name,
                  const struct gf_kube_patch_opts *o, const char *body,
                  size_t len, gf_kube_cb cb, void *data,
                  struct gf_kube_call **out);

struct gf_kube_delete_opts {
    const char *precondition_uid; /* NULL: none */
    const char *precondition_rv;  /* NULL: none */
    const char *propagation;      /* "Foreground", "Background", "Orphan" */
    bool grace_period_set;        /* false: the server's default grace */
    long grace_period_seconds;
};
int gf_kube_delete(struct gf_kube_client *c, const struct gf_kube_resource *r,
                   const char *ns, const char *name,
                   const struct gf_kube_delete_opts *o, gf_kube_cb cb,
                   void *data, struct gf_kube_call **out);

/*
 * Builds the patch body used by gf_kube_patch() for a precondition, so
 * callers and tests can see it. `patch` is the caller's body text.
 * Appends to out; 0, GF_EPARSE (patch not of the right JSON type) or
 * GF_E2BIG.
 */
int gf_kube_patch_body(struct gf_buf *out, enum gf_patch_type type,
                       const char *patch, size_t len,
                       const char *resource_version);

#endif
