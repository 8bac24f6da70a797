/*
 * api: the Kubernetes REST layer of one simulated cluster.
 *
 * The server hands every authenticated HTTP request to gf_ks_api_handle();
 * this module parses the URL the way the API server does, asks the
 * authorizer (RBAC, wired in by main) about the request's attributes,
 * and answers from the cluster's store (store.h): discovery (/api, /apis,
 * /api/v1, /apis/GROUP/VERSION), /version, /healthz, /readyz, /livez,
 * get, list (label/field selectors, limit/continue, Table output for
 * kubectl), watch (resourceVersion, allowWatchBookmarks, timeoutSeconds),
 * create, update, patch (merge, JSON, strategic merge), delete
 * (preconditions, propagationPolicy), deletecollection, and the status
 * subresource. Built-in types are registered at creation; a created
 * CustomResourceDefinition registers its type, with its schema, the way
 * the apiextensions server does. Every error is a Status body (status.h).
 *
 * Where kubesim differs from the API server, on purpose:
 *   - discovery: aggregated (apidiscovery.k8s.io/v2) for /api and /apis
 *     when asked for, the legacy documents otherwise; no v2beta1;
 *   - /openapi/v3 lists only each kind's PATCH operation with the
 *     fieldValidation parameter, enough for kubectl to leave validation
 *     to the server; there is no /openapi/v2 and no schema for explain;
 *   - dryRun=All is honoured: the request is checked and answered, and
 *     nothing is stored (the answer has no uid or resourceVersion);
 *   - server-side apply creates or merges with apply's list semantics
 *     (list-type map/set from the CRD schema; strategic merge keys for
 *     built-ins), and metadata.managedFields are kept for every write
 *     (managed.h): an apply removes the fields its manager no longer
 *     applies and is a 409 on another manager's fields unless forced;
 *   - request bodies are JSON or YAML, plus protobuf for the kinds
 *     kubectl's typed `create` subcommands send (api_proto.c); others 415;
 *   - a watch from a compacted resourceVersion is answered as the watch
 *     cache answers it: HTTP 200 and one ERROR event with 410 Expired.
 *
 * A struct gf_ks_api is per cluster and owns its store. A struct
 * gf_ks_catalog is per process and owns what clusters share (interned CRD
 * schemas). Loop thread only.
 *
 * Answers go through struct gf_ks_api_out, which the server provides per
 * request: either one reply() or, for a watch, stream_begin(), any number
 * of stream_write() and one stream_end(). The server tells the API layer
 * that a streaming client went away with gf_ks_api_call_cancel().
 */
#ifndef GF_KS_API_H
#define GF_KS_API_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "common/clock.h"
#include "e2e/kubesim/status.h"
#include "e2e/kubesim/store.h"

struct gf_ks_api;
struct gf_ks_api_call;
struct gf_ks_catalog;

/* ---- catalog (process-wide) -------------------------------------------- */

/* Returned-owned; free after every api that uses it. */
struct gf_ks_catalog *gf_ks_catalog_new(void);
void gf_ks_catalog_free(struct gf_ks_catalog *c);

/* ---- authorization ----------------------------------------------------- */

/*
 * The attributes the API server's authorizer sees for a request
 * (k8s.io/apiserver authorizer.Attributes). Resource requests have
 * resource != NULL; others (discovery, /version, /healthz) have path set
 * and resource NULL. Strings are borrowed for the call; absent ones are
 * "" (never NULL) except resource.
 */
struct gf_ks_authz_attrs {
    const char *user;
    const char *const *groups; /* NULL-terminated; may be NULL */
    const char *verb;          /* get list watch create update patch delete
                                  deletecollection; for non-resource: get, post.. */
    const char *api_group;
    const char *api_version;
    const char *resource;    /* "workloads", NULL for non-resource requests */
    const char *subresource; /* "status" or "" */
    const char *ns;
    const char *name;
    const char *path; /* the request path */
};

/*
 * Returns 0 to allow, or a negative error with err filled (403 Forbidden,
 * usually from the RBAC module's message) to deny.
 */
typedef int (*gf_ks_authorize_fn)(void *data, const struct gf_ks_authz_attrs *a,
                                  struct gf_ks_status *err);

/* ---- per-cluster API --------------------------------------------------- */

struct gf_ks_api_opts {
    struct gf_clock *clock;        /* borrowed, required */
    struct gf_ks_catalog *catalog; /* borrowed, required */
    const char *cluster;           /* name, copied */
    size_t watch_cache;            /* per type; 0 = store default */
    uint64_t uid_seed;             /* 0 = random uids */
    gf_ks_authorize_fn authorize;  /* NULL = allow everything */
    void *authorize_data;
    /* Upper bound of a watch's timeoutSeconds; 0 = 1800 s. */
    unsigned max_watch_s;
    /* Interval between watch bookmarks; 0 = 60 s (as the server does). */
    unsigned bookmark_s;
};

/*
 * Creates the cluster's store and registers the built-in types
 * (Namespace, Secret, ConfigMap, Event, Pod, Node, ServiceAccount,
 * batch/v1 Job, coordination.k8s.io/v1 Lease, rbac.authorization.k8s.io/v1
 * Role/ClusterRole/RoleBinding/ClusterRoleBinding,
 * apiextensions.k8s.io/v1 CustomResourceDefinition, events.k8s.io/v1
 * Event, scheduling.k8s.io/v1 PriorityClass,
 * authorization.k8s.io/v1 SelfSubjectAccessReview), and the namespaces
 * default, kube-system, kube-public and kube-node-lease.
 * Returned-owned; free with gf_ks_api_free() (which closes every watch
 * without calling the server back). Never NULL.
 */
struct gf_ks_api *gf_ks_api_new(const struct gf_ks_api_opts *o);
void gf_ks_api_free(struct gf_ks_api *api);

/* Returned-borrowed store of the cluster (for controllers and RBAC). */
struct gf_ks_store *gf_ks_api_store(struct gf_ks_api *api);

/*
 * Creates every object in a YAML or JSON document stream (several "---"
 * documents, or a List) as the system, the way `kubectl create -f` would;
 * CRDs are registered as they are created. Used to install the Kueue CRDs
 * at start. Returns 0 or the first error (err filled); objects created
 * before the error stay.
 */
int gf_ks_api_apply_yaml(struct gf_ks_api *api, const char *text, size_t len,
                         struct gf_ks_status *err);

/* ---- requests ---------------------------------------------------------- */

struct gf_ks_api_req {
    const char *method;       /* "GET", "POST", "PUT", "PATCH", "DELETE" */
    const char *path;         /* percent-decoded path, without the query */
    const char *query;        /* raw query string without '?', or NULL */
    const char *content_type; /* NULL when absent */
    const char *accept;       /* NULL when absent */
    /* User-Agent, or NULL: names the field manager of a write without
     * fieldManager, as the server derives it (managed.h). */
    const char *user_agent;
    const char *body; /* len bytes, may be NULL when len == 0 */
    size_t body_len;
    const char *user;          /* authenticated user name */
    const char *const *groups; /* NULL-terminated, may be NULL */
    /*
     * Impersonate-User and Impersonate-Group headers (kubectl --as,
     * --as-group), or NULL: the request runs as that identity once the
     * authenticated user may "impersonate" it (api_impersonate.c).
     */
    const char *impersonate_user;
    const char *const *impersonate_groups; /* NULL-terminated */
};

/* Provided by the server for one request; all pointers borrowed. */
struct gf_ks_api_out {
    void *ctx;
    /* A complete response. body is borrowed for the call. */
    void (*reply)(void *ctx, int code, const char *content_type,
                  const char *body, size_t len);
    /*
     * A streamed response (watch): status line and headers now,
     * Transfer-Encoding chunked. Then stream_write() per chunk (data
     * borrowed for the call) and one stream_end(). stream_write returns 0;
     * 1 when the chunk was taken but the client is behind (the API layer
     * then holds the watch back until gf_ks_api_call_writable()); or a
     * negative error when the client is gone (the API layer then stops
     * the watch and calls stream_end).
     */
    void (*stream_begin)(void *ctx, int code, const char *content_type);
    /*
     * Optional (may be NULL): one more header of the response about to
     * be sent (Warning), called before reply() or stream_begin().
     */
    void (*header)(void *ctx, const char *name, const char *value);
    int (*stream_write)(void *ctx, const char *data, size_t len);
    void (*stream_end)(void *ctx);
};

/*
 * Serves one request. Exactly one of these happens:
 *   - out->reply() is called once before the function returns, and
 *     *call is set to NULL;
 *   - out->stream_begin() is called before it returns, *call is set to a
 *     live call, and out->stream_write()/stream_end() follow later on the
 *     loop. After stream_end() the call is freed by the API layer. If the
 *     client disconnects first, the server calls gf_ks_api_call_cancel()
 *     and receives no further callbacks (not even stream_end).
 * req and out are borrowed; out must stay valid while the call lives.
 */
void gf_ks_api_handle(struct gf_ks_api *api, const struct gf_ks_api_req *req,
                      const struct gf_ks_api_out *out,
                      struct gf_ks_api_call **call);
/* Ends a streaming call without callbacks. Accepts NULL. */
void gf_ks_api_call_cancel(struct gf_ks_api_call *call);
/*
 * The client of a call that stream_write() found behind has caught up:
 * the watch goes on (what it missed first, from the watch cache). May
 * write, and may end the call (stream_end), before it returns.
 */
void gf_ks_api_call_writable(struct gf_ks_api_call *call);

/* Open streaming calls of this cluster (tests, metrics). */
size_t gf_ks_api_calls(const struct gf_ks_api *api);

/*
 * CRD validation rules (x-kubernetes-validations) installed in this
 * cluster that kubesim cannot evaluate and therefore does not enforce,
 * counted per CRD version each time a CRD is (re)installed; each one is
 * also logged as a warning naming the CRD, the path and the rule.
 */
size_t gf_ks_api_cel_unsupported(const struct gf_ks_api *api);

/*
 * The "API server restart" fault: ends every watch stream (stream_end)
 * and empties the watch caches (gf_ks_store_restart); data is kept.
 */
void gf_ks_api_restart(struct gf_ks_api *api);

#endif
