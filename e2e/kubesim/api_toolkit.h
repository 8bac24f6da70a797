/*
 * api_toolkit: what every handler of the REST layer (api_*.c) may use.
 *
 * The REST layer is layered router -> handlers -> toolkit:
 *   - api.c, the router, parses, authorizes, resolves and dispatches a
 *     request to a handler (api_handlers.h);
 *   - the handlers answer one verb or path each: api_read.c (get, list),
 *     api_write.c (create, update, patch, delete, deletecollection),
 *     api_watch.c, api_discovery.c, api_review.c; api_builtin.c and
 *     api_crd.c register types;
 *   - the toolkit, declared here: request parsing (api_req.c) and replies
 *     (api_reply.c), plus the services handlers share, each implemented
 *     next to the handler it belongs to (body decoding, tables, CRD
 *     checks).
 * The toolkit includes no handler header, so it cannot call up; handlers
 * call no other handler's entry point; .ci/layering checks both.
 *
 * Everything here is loop-thread only and internal to the module.
 */
#ifndef GF_KS_API_TOOLKIT_H
#define GF_KS_API_TOOLKIT_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "common/buf.h"
#include "common/list.h"
#include "common/log.h"
#include "e2e/kubesim/api.h"
#include "e2e/kubesim/schema.h"

/* Request bodies are capped before parsing (the server's default is 3 MB;
 * CRDs such as Kueue's Workload are larger, so allow more). */
#define GF__KS_BODY_MAX (8u << 20)
/* A list answer is built in memory; this bounds it. */
#define GF__KS_LIST_MAX ((size_t)1 << 30)
#define GF__KS_MAX_PARAMS 32

struct gf_ks_catalog {
    struct gf_ks_schema_cache *schemas;
};

struct gf_ks_api {
    struct gf_clock *clock;
    struct gf_ks_catalog *catalog;
    char *cluster;
    struct gf_log_ctx lc;
    struct gf_ks_store *store;
    gf_ks_authorize_fn authorize;
    void *authorize_data;
    unsigned max_watch_s, bookmark_s;
    struct gf_ks_observer *crd_observer;
    struct gf_list calls; /* open watches (struct gf_ks_api_call) */
    size_t ncalls;
    /*
     * The request being served (requests are served one at a time, on
     * the loop): where warnings go, and whether unknown fields get one
     * (fieldValidation Warn, the server's default).
     */
    const struct gf_ks_api_out *out_now;
    bool warn_unknown;
    /* CRD validation rules kubesim cannot evaluate, over every CRD
     * version installed (api_crd.c logs each one). */
    size_t cel_unsupported;
};

/* One query parameter, percent-decoded. */
struct gf__ks_param {
    const char *key, *value;
};

/* The parsed request (the API server's RequestInfo). */
struct gf__ks_rreq {
    const struct gf_ks_api_req *req;
    const struct gf_ks_api_out *out;
    bool resource_request;
    const char *verb; /* authorizer verb */
    char group[128], version[64], resource[128], sub[64];
    char ns[254], name[254];
    const struct gf_ks_rtype *t;     /* NULL when unknown */
    const struct gf_ks_version *ver; /* the version addressed */
    /* Query parameters; strings point into qbuf. */
    char *qbuf;
    struct gf__ks_param params[GF__KS_MAX_PARAMS];
    size_t nparams;
    bool table; /* Accept asks for meta.k8s.io Table */
};

/* ---- request (api_req.c) ---------------------------------------------- */

/*
 * Fills r (r->req and r->out set, the rest zero) from its request: the
 * query, the RequestInfo of the path and whether a Table is asked for.
 * Returns 0, or a negative code with err filled (400 for a bad escape,
 * 414 for an over-long query, 404 for a malformed resource path).
 */
int gf__ks_req_parse(struct gf__ks_rreq *r, struct gf_ks_status *err);
/* Frees what gf__ks_req_parse allocated (r itself is the caller's). */
void gf__ks_req_done(struct gf__ks_rreq *r);
/* Value of a query parameter, or NULL. */
const char *gf__ks_param(const struct gf__ks_rreq *r, const char *key);
/* True for what Go's ParseBool takes as true ("true", "True", "1"...). */
bool gf__ks_param_true(const struct gf__ks_rreq *r, const char *key);

/* The served version of t named version, or NULL. */
const struct gf_ks_version *gf__ks_find_version(const struct gf_ks_rtype *t,
                                                const char *version);

/* labelSelector and fieldSelector of a request (owned, may be NULL). */
struct gf__ks_sels {
    struct gf_ks_selector *label, *field;
};
int gf__ks_parse_selectors(const struct gf__ks_rreq *r, struct gf__ks_sels *s,
                           struct gf_ks_status *err);
void gf__ks_sels_free(struct gf__ks_sels *s);

/* ---- replies (api_reply.c) -------------------------------------------- */

/* Replies with the Status in err (its code is the HTTP code). */
void gf__ks_reply_status(const struct gf_ks_api_out *out,
                         const struct gf_ks_status *err);
/* Replies with a cJSON document (borrowed) as application/json. */
void gf__ks_reply_json(const struct gf_ks_api_out *out, int code,
                       const cJSON *j);
/* The group/version string of a type version ("v1", "batch/v1"). */
void gf__ks_gv(const char *group, const char *version, char *out, size_t cap);
/*
 * The object as served at version ver: when ver is not the storage
 * version the apiVersion is rewritten (conversion strategy None).
 * Appends the JSON to b. Returns 0 or GF_E2BIG.
 */
int gf__ks_put_obj(struct gf_buf *b, const struct gf_ks_obj *o,
                   const struct gf_ks_version *ver);

/* Adds key: value as the first member of obj (obj has no such key). */
void gf__ks_put_first(cJSON *obj, const char *key, const char *value);

/* Replies with the bytes of b as application/json. */
void gf__ks_reply_buf(const struct gf_ks_api_out *out, int code,
                      const struct gf_buf *b);
/* Replies with an object as served at the request's version. */
void gf__ks_reply_obj(const struct gf__ks_rreq *r, int code,
                      const struct gf_ks_obj *o);
/* Fills err with the server's 404 for a path it does not serve. */
int gf__ks_not_found_path(struct gf_ks_status *err);
/*
 * The plain-text 404 of a path no API group serves (an unknown group or
 * version, a discovery path that does not exist): Go's http.NotFound,
 * not a Status.
 */
void gf__ks_reply_not_found_text(const struct gf_ks_api_out *out);

/* Appends a List of l's items (kind, apiVersion, metadata) to b. */
int gf__ks_list_body(struct gf_buf *b, const struct gf__ks_rreq *r,
                     const struct gf_ks_list *l);

/* ---- impersonation (api_impersonate.c) -------------------------------- */

/* The identity a request runs as, after impersonation. */
struct gf__ks_acting {
    struct gf_ks_api_req req; /* a copy of the request, user/groups set */
    char **groups;            /* owned, NULL-terminated, or NULL */
};

/*
 * Resolves Impersonate-User/Impersonate-Group of q: each impersonated
 * user (or service account) and group is authorized with the verb
 * "impersonate" for the authenticated user, then acting->req is q running
 * as that identity (plus system:authenticated, and a service account's
 * groups when none are asked for). Without the headers acting->req is q.
 * Returns 0; or a negative code after answering through out (403 naming
 * what may not be impersonated; 500 for groups without a user, as the
 * server does). Release with gf__ks_acting_done() either way.
 */
int gf__ks_impersonate(struct gf_ks_api *api, const struct gf_ks_api_req *q,
                       const struct gf_ks_api_out *out,
                       struct gf__ks_acting *acting);
void gf__ks_acting_done(struct gf__ks_acting *acting);

/* ---- shared by handlers ----------------------------------------------- */

/*
 * Adds a Warning header (code 299, as the API server writes them) to the
 * answer of the request being served.
 */
void gf__ks_warn(struct gf_ks_api *api, const char *text);

/* Types (api_builtin.c, api_crd.c). */
/* True for a type that api_builtin.c registered. */
bool gf__ks_builtin(const struct gf_ks_rtype *t);
/* True for a group that some built-in type belongs to ("" for core). */
bool gf__ks_builtin_group(const char *group);
/*
 * True for SelfSubjectAccessReview: a create-only type that answers from
 * the authorizer and stores nothing (api_review.c).
 */
bool gf__ks_review(const struct gf_ks_rtype *t);
/* True when group/version is served by some type. */
bool gf__ks_gv_served(struct gf_ks_api *api, const char *group,
                      const char *version);

/*
 * Checks a CRD about to be created or replaced (422 when malformed or
 * when it would take a built-in's name). Returns 0 or GF_EINVALID.
 */
int gf__ks_crd_check(struct gf_ks_api *api, const cJSON *crd,
                     struct gf_ks_status *err);

/*
 * The checks of built-in types' registry strategies (api_rules.c): 0, or
 * the server's 400/422 in err. patched: obj is the result of a PATCH.
 */
int gf__ks_builtin_check(const struct gf_ks_rtype *t, const cJSON *obj,
                         const char *name, bool patched,
                         struct gf_ks_status *err);

/*
 * Deletes every object of the type a CRD defines, before the CRD itself
 * is deleted, so that watchers see them go (the cleanup finalizer's job).
 */
void gf__ks_crd_cleanup(struct gf_ks_api *api, const char *crd_name);

/* Sets the status of a newly created CRD (Established, accepted names). */
void gf__ks_crd_initial_status(struct gf_ks_api *api, cJSON *crd);

/* The batch/v1 Job registry (api_job.c). True for batch/v1 jobs. */
bool gf__ks_is_job(const struct gf_ks_rtype *t);
/* Applies the API defaults of a Job and its pod template to job. */
void gf__ks_job_defaults(cJSON *job);
/*
 * Registers the Job's create step with the store: the selector and the
 * template labels that name the new uid, and an empty status.
 */
void gf__ks_job_register(struct gf_ks_store *st);
/*
 * Validates a defaulted Job; old is the stored Job on an update (NULL on
 * a create). Returns 0 or GF_EINVALID with err as the server's 422.
 */
int gf__ks_job_validate(const cJSON *job, const cJSON *old, const char *name,
                        struct gf_ks_status *err);

/* Bodies (api_write.c, api_yaml.c, api_proto.c, api_apply.c). */
/* Decodes a create/update body (JSON, YAML, protobuf); *out owned. */
int gf__ks_parse_body(const struct gf__ks_rreq *r, cJSON **out,
                      struct gf_ks_status *err);

/*
 * Creates obj (owned, taken) as a client's POST would: apiVersion and
 * kind checked and set, schema validation for CRD types (strict: unknown
 * fields are a 400 instead of being pruned), CRD checks. mf, when not
 * NULL, records the create as its manager's Update in managedFields
 * (managed.h); kubesim's own objects pass NULL.
 * *out is returned-borrowed (see gf_ks_store_create).
 */
struct gf_ks_managed_op;
int gf__ks_create(struct gf_ks_api *api, const struct gf_ks_rtype *t,
                  const struct gf_ks_version *ver, const char *ns, cJSON *obj,
                  bool strict, const struct gf_ks_managed_op *mf,
                  struct gf_ks_obj **out, struct gf_ks_status *err);

/*
 * Converts a single YAML (or JSON) document to cJSON; *out is
 * returned-owned. Returns 0 or GF_EINVALID (400, err filled).
 */
int gf__ks_yaml_doc(const char *text, size_t len, cJSON **out,
                    struct gf_ks_status *err);

/*
 * Decodes a protobuf-encoded object (api_proto.c) into JSON; *out is
 * returned-owned. Returns 0, GF_EINVALID (400) for a malformed body, or
 * 415 (GF_EAPI) for a kind it does not know.
 */
int gf__ks_proto_decode(const char *body, size_t len, cJSON **out,
                        struct gf_ks_status *err);

/*
 * Merges a server-side apply configuration (borrowed) into *doc as apply
 * merges (api_apply.c). Returns 0 or an error from the strategic merge of
 * built-in types (err filled).
 */
int gf__ks_apply_merge(const struct gf_ks_rtype *t,
                       const struct gf_ks_version *ver, cJSON **doc,
                       const cJSON *cfg, struct gf_ks_status *err);

/*
 * The /openapi/v3 index or one group/version document (api_openapi.c);
 * NULL when path names none. Returned-owned.
 */
cJSON *gf__ks_openapi(struct gf_ks_api *api, const char *path);

/*
 * Appends a meta.k8s.io/v1 Table of the objects to b. include is the
 * includeObject parameter (NULL = PartialObjectMetadata). rv is the list
 * resourceVersion (NULL for watch events), cont the continue token.
 */
int gf__ks_table(struct gf_ks_api *api, struct gf_buf *b,
                 const struct gf_ks_rtype *t, const struct gf_ks_version *ver,
                 struct gf_ks_obj *const *objs, size_t n, const char *rv,
                 const char *cont, const char *include);

#endif
