/*
 * request: Kubernetes calls on top of http, Status decoding and resource
 * addressing (see request.h).
 *
 * A call owns a copy of everything it needs to be re-sent (URL, body), so
 * that a 401 can be answered by re-reading the token file and sending the
 * same request again, once, without bothering the caller. Every failure
 * reaches the caller as a struct gf_api_status: the Kubernetes Status body
 * when the server sent one, otherwise one synthesised from the HTTP code
 * or from the transport error, so callers classify one shape only.
 */
#include "kubeclient/request.h"

#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/json.h"
#include "common/log.h"
#include "kubeclient/internal.h"

void gf__strlcpy(char *dst, const char *s, size_t cap)
{
    if (cap == 0)
        return;
    if (s == NULL)
        s = "";
    size_t n = strnlen(s, cap - 1);
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* ------------------------------------------------------------------ */
/* Status                                                              */

enum gf_api_class gf_api_status_classify(const struct gf_api_status *st)
{
    switch (st->err) {
    case 0:
        return GF_API_OK;
    case GF_EGONE:
        return GF_API_RELIST;
    case GF_ECONFLICT:
    case GF_EEXIST:
        return GF_API_REQUEUE;
    /* 401 backs off: the token may rotate (token files, exec plugins),
     * and a wrong CA may be fixed by a credentials update. */
    case GF_EUNAUTH:
    case GF_ETHROTTLED:
    case GF_ESERVER:
    case GF_ETRANSPORT:
    case GF_ETLS:
    case GF_ETIMEDOUT:
    case -ENOMEM:
        return GF_API_BACKOFF;
    default:
        return GF_API_TERMINAL;
    }
}

const char *gf_api_class_name(enum gf_api_class cls)
{
    switch (cls) {
    case GF_API_OK:
        return "ok";
    case GF_API_BACKOFF:
        return "backoff";
    case GF_API_REQUEUE:
        return "requeue";
    case GF_API_RELIST:
        return "relist";
    case GF_API_TERMINAL:
        return "terminal";
    }
    return "unknown";
}

/* The canonical reason for a code, used when no Status body came. */
static const char *reason_for(long code)
{
    switch (code) {
    case 400:
        return "BadRequest";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "NotFound";
    case 405:
        return "MethodNotAllowed";
    case 406:
        return "NotAcceptable";
    case 408:
        return "Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Expired";
    case 413:
        return "RequestEntityTooLarge";
    case 415:
        return "UnsupportedMediaType";
    case 422:
        return "Invalid";
    case 429:
        return "TooManyRequests";
    case 500:
        return "InternalError";
    case 503:
        return "ServiceUnavailable";
    case 504:
        return "Timeout";
    default:
        return "";
    }
}

int gf_api_status_from_json(const cJSON *st, long http_code,
                            uint64_t retry_after_ms, struct gf_api_status *out)
{
    memset(out, 0, sizeof(*out));
    int64_t code = 0;
    if (http_code == 0 && gf_json_int(st, "code", &code) == 0 && code > 0 &&
        code < 1000)
        http_code = (long)code;
    out->code = http_code;
    const char *reason = gf_json_str(st, "reason");
    gf__strlcpy(out->reason, reason != NULL ? reason : reason_for(http_code),
                sizeof(out->reason));
    gf__strlcpy(out->message, gf_json_str(st, "message"), sizeof(out->message));
    gf__strlcpy(out->kind, gf_json_str(st, "details.kind"), sizeof(out->kind));
    gf__strlcpy(out->name, gf_json_str(st, "details.name"), sizeof(out->name));
    int64_t secs = 0;
    out->retry_after_ms = retry_after_ms;
    if (retry_after_ms == 0 &&
        gf_json_int(st, "details.retryAfterSeconds", &secs) == 0 && secs > 0 &&
        secs < 86400)
        out->retry_after_ms = (uint64_t)secs * 1000;
    out->err = gf_err_from_http(http_code, out->reason);
    /* A Status with a success code but "Failure" still is a failure. */
    if (out->err == 0) {
        const char *s = gf_json_str(st, "status");
        if (s != NULL && strcmp(s, "Failure") == 0)
            out->err = GF_EAPI;
    }
    out->cls = gf_api_status_classify(out);
    return out->err;
}

int gf_api_status_decode(const char *body, size_t len, long http_code,
                         uint64_t retry_after_ms, struct gf_api_status *out)
{
    cJSON *root = NULL;
    if (body != NULL && len > 0)
        root = cJSON_ParseWithLength(body, len);
    if (cJSON_IsObject(root)) {
        gf_api_status_from_json(root, http_code, retry_after_ms, out);
        /* The HTTP code wins over a confused body for classification. */
        if (http_code != 0)
            out->code = http_code;
        cJSON_Delete(root);
        return out->err;
    }
    cJSON_Delete(root);
    memset(out, 0, sizeof(*out));
    out->code = http_code;
    out->retry_after_ms = retry_after_ms;
    gf__strlcpy(out->reason, reason_for(http_code), sizeof(out->reason));
    snprintf(out->message, sizeof(out->message), "HTTP %ld", http_code);
    out->err = gf_err_from_http(http_code, out->reason);
    out->cls = gf_api_status_classify(out);
    return out->err;
}

void gf_api_status_transport(int err, const char *detail,
                             struct gf_api_status *out)
{
    memset(out, 0, sizeof(*out));
    out->err = err;
    gf__strlcpy(out->reason, gf_strerror(err), sizeof(out->reason));
    gf__strlcpy(out->message,
                detail != NULL && *detail ? detail : gf_strerror(err),
                sizeof(out->message));
    out->cls = gf_api_status_classify(out);
}

/* ------------------------------------------------------------------ */
/* Resources                                                           */

struct known_resource {
    const char *group, *version, *plural, *kind, *shortname;
    bool namespaced;
};

/* Resources we address without discovery. Kueue is at its storage
 * version (DESIGN.md); anything else is given explicitly. */
static const struct known_resource known[] = {
    {"", "v1", "pods", "Pod", "po", true},
    {"", "v1", "namespaces", "Namespace", "ns", false},
    {"", "v1", "nodes", "Node", "no", false},
    {"", "v1", "services", "Service", "svc", true},
    {"", "v1", "configmaps", "ConfigMap", "cm", true},
    {"", "v1", "secrets", "Secret", NULL, true},
    {"", "v1", "events", "Event", "ev", true},
    {"", "v1", "serviceaccounts", "ServiceAccount", "sa", true},
    {"", "v1", "endpoints", "Endpoints", "ep", true},
    {"", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", "pvc", true},
    {"", "v1", "limitranges", "LimitRange", "limits", true},
    {"", "v1", "resourcequotas", "ResourceQuota", "quota", true},
    {"apps", "v1", "deployments", "Deployment", "deploy", true},
    {"apps", "v1", "statefulsets", "StatefulSet", "sts", true},
    {"apps", "v1", "daemonsets", "DaemonSet", "ds", true},
    {"apps", "v1", "replicasets", "ReplicaSet", "rs", true},
    {"batch", "v1", "jobs", "Job", NULL, true},
    {"batch", "v1", "cronjobs", "CronJob", "cj", true},
    {"coordination.k8s.io", "v1", "leases", "Lease", NULL, true},
    {"events.k8s.io", "v1", "events", "Event", NULL, true},
    {"apiextensions.k8s.io", "v1", "customresourcedefinitions",
     "CustomResourceDefinition", "crd", false},
    {"rbac.authorization.k8s.io", "v1", "roles", "Role", NULL, true},
    {"rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", NULL,
     true},
    {"rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", NULL,
     false},
    {"rbac.authorization.k8s.io", "v1", "clusterrolebindings",
     "ClusterRoleBinding", NULL, false},
    {"scheduling.k8s.io", "v1", "priorityclasses", "PriorityClass", "pc",
     false},
    {"kueue.x-k8s.io", "v1beta2", "workloads", "Workload", "wl", true},
    {"kueue.x-k8s.io", "v1beta2", "localqueues", "LocalQueue", "lq", true},
    {"kueue.x-k8s.io", "v1beta2", "clusterqueues", "ClusterQueue", "cq", false},
    {"kueue.x-k8s.io", "v1beta2", "resourceflavors", "ResourceFlavor", "rf",
     false},
    {"kueue.x-k8s.io", "v1beta2", "cohorts", "Cohort", NULL, false},
    {"kueue.x-k8s.io", "v1beta2", "admissionchecks", "AdmissionCheck", NULL,
     false},
    {"kueue.x-k8s.io", "v1beta2", "workloadpriorityclasses",
     "WorkloadPriorityClass", NULL, false},
    {"kueue.x-k8s.io", "v1beta2", "multikueueclusters", "MultiKueueCluster",
     NULL, false},
    {"kueue.x-k8s.io", "v1beta2", "multikueueconfigs", "MultiKueueConfig", NULL,
     false},
    {"kueue.x-k8s.io", "v1beta2", "topologies", "Topology", NULL, false},
    {"gpufed.io", "v1alpha1", "quotaleases", "QuotaLease", "ql", true},
    {"gpufed.io", "v1alpha1", "federationpolicies", "FederationPolicy", NULL,
     false},
};

int gf_kube_resource_set(struct gf_kube_resource *out, const char *group,
                         const char *version, const char *plural,
                         const char *kind, bool namespaced)
{
    if (group == NULL || version == NULL || plural == NULL ||
        *version == '\0' || *plural == '\0' ||
        strlen(group) >= sizeof(out->group) ||
        strlen(version) >= sizeof(out->version) ||
        strlen(plural) >= sizeof(out->plural) ||
        (kind != NULL && strlen(kind) >= sizeof(out->kind)))
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    gf__strlcpy(out->group, group, sizeof(out->group));
    gf__strlcpy(out->version, version, sizeof(out->version));
    gf__strlcpy(out->plural, plural, sizeof(out->plural));
    gf__strlcpy(out->kind, kind, sizeof(out->kind));
    out->namespaced = namespaced;
    return 0;
}

static int from_known(const struct known_resource *k,
                      struct gf_kube_resource *out)
{
    return gf_kube_resource_set(out, k->group, k->version, k->plural, k->kind,
                                k->namespaced);
}

/* "v1", "v1beta2", "v2alpha1": kubectl's test for a version label. */
static bool looks_like_version(const char *s, size_t n)
{
    if (n < 2 || s[0] != 'v' || s[1] < '1' || s[1] > '9')
        return false;
    size_t i = 2;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    if (i == n)
        return true;
    const char *rest = s + i;
    size_t rn = n - i;
    size_t tag = 0;
    if (rn > 5 && strncmp(rest, "alpha", 5) == 0)
        tag = 5;
    else if (rn > 4 && strncmp(rest, "beta", 4) == 0)
        tag = 4;
    if (tag == 0)
        return false;
    for (i = tag; i < rn; i++)
        if (rest[i] < '0' || rest[i] > '9')
            return false;
    return true;
}

static bool valid_name_chars(const char *s)
{
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '.'))
            return false;
    }
    return true;
}

/* Whether k is named by plural (its plural or its short name). */
static bool known_named(const struct known_resource *k, const char *plural)
{
    return strcmp(k->plural, plural) == 0 ||
           (k->shortname != NULL && strcmp(k->shortname, plural) == 0);
}

/* "plural" alone: the first match wins, so core and built-in groups
 * shadow CRDs as kubectl's default resource priority does. */
static int resource_by_plural(const char *plural, struct gf_kube_resource *out)
{
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (known_named(&known[i], plural))
            return from_known(&known[i], out);
    return -ENOENT;
}

/* "plural.[version.]group"; version (vlen bytes) may be NULL. */
static int resource_in_group(const char *plural, const char *version,
                             size_t vlen, const char *group,
                             struct gf_kube_resource *out)
{
    char v[32];
    if (version != NULL) {
        if (vlen >= sizeof(v) || vlen >= sizeof(out->version))
            return -EINVAL;
        memcpy(v, version, vlen);
        v[vlen] = '\0';
    }
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (strcmp(known[i].group, group) != 0 ||
            !known_named(&known[i], plural))
            continue;
        int rc = from_known(&known[i], out);
        if (rc == 0 && version != NULL)
            memcpy(out->version, v, vlen + 1);
        return rc;
    }
    if (version == NULL)
        return -ENOENT;
    /* An unknown group with an explicit version: most custom resources
     * are namespaced; callers that know better use resource_set. */
    return gf_kube_resource_set(out, group, v, plural, NULL, true);
}

int gf_kube_resource_parse(const char *name, struct gf_kube_resource *out)
{
    if (name == NULL || *name == '\0' || strlen(name) > 200 ||
        !valid_name_chars(name))
        return -EINVAL;
    const char *dot = strchr(name, '.');
    char plural[64];
    size_t pl = dot != NULL ? (size_t)(dot - name) : strlen(name);
    if (pl == 0 || pl >= sizeof(plural))
        return -EINVAL;
    memcpy(plural, name, pl);
    plural[pl] = '\0';
    if (dot == NULL)
        return resource_by_plural(plural, out);
    const char *rest = dot + 1;
    const char *version = NULL;
    size_t vlen = 0;
    const char *dot2 = strchr(rest, '.');
    if (dot2 != NULL && looks_like_version(rest, (size_t)(dot2 - rest))) {
        version = rest;
        vlen = (size_t)(dot2 - rest);
        rest = dot2 + 1;
    }
    if (*rest == '\0')
        return -EINVAL;
    return resource_in_group(plural, version, vlen, rest, out);
}

int gf_kube_path(struct gf_buf *out, const struct gf_kube_resource *r,
                 const char *ns, const char *name, const char *subresource)
{
    bool has_ns = r->namespaced && ns != NULL && *ns != '\0';
    if (name != NULL && *name == '\0')
        name = NULL;
    if (name != NULL && r->namespaced && !has_ns)
        return -EINVAL;
    if (subresource != NULL && name == NULL)
        return -EINVAL;
    int rc;
    if (r->group[0] == '\0')
        rc = gf_buf_printf(out, "/api/%s", r->version);
    else
        rc = gf_buf_printf(out, "/apis/%s/%s", r->group, r->version);
    if (rc == 0 && has_ns) {
        rc = gf_buf_puts(out, "/namespaces/");
        if (rc == 0)
            rc = gf_http_escape(out, ns);
    }
    if (rc == 0)
        rc = gf_buf_printf(out, "/%s", r->plural);
    if (rc == 0 && name != NULL) {
        rc = gf_buf_putc(out, '/');
        if (rc == 0)
            rc = gf_http_escape(out, name);
    }
    if (rc == 0 && subresource != NULL) {
        rc = gf_buf_putc(out, '/');
        if (rc == 0)
            rc = gf_http_escape(out, subresource);
    }
    return rc;
}

int gf__kube_query_add(struct gf_buf *q, const char *key, const char *val)
{
    if (val == NULL)
        return 0;
    int rc = q->len > 0 ? gf_buf_putc(q, '&') : 0;
    if (rc == 0)
        rc = gf_buf_puts(q, key);
    if (rc == 0)
        rc = gf_buf_putc(q, '=');
    if (rc == 0)
        rc = gf_http_escape(q, val);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Client                                                              */

struct gf_kube_client {
    unsigned refs;
    struct gf_http *http;
    struct gf_clock *clk;
    struct gf_kube_creds *creds;
    uint64_t token_gen; /* bumped when the token changes */
    uint64_t token_reloads;
    uint64_t pool_parses; /* bodies parsed on the thread pool */
    /* Tests only: see gf__kube_client_set_parse_hook(). */
    void (*parse_hook)(void *data, struct gf_kube_call *k);
    void *parse_hook_data;
    uint64_t timeout_ms;
    size_t max_body;
    char *user_agent;
    char *name;
    struct gf_log_ctx lc;
};

struct gf_kube_call {
    struct gf_kube_client *c;
    char *method;
    char *url;
    char *content_type;
    char *accept;
    char *body;
    size_t body_len;
    uint64_t timeout_ms;
    struct gf__kube_stream stream;
    bool streaming;
    uint64_t token_gen; /* token generation the request was sent with */
    bool retried;
    /* Lists only: the page size asked for, and what the URL is rebuilt
     * from when a page over the body cap is asked for again, halved. */
    unsigned limit;
    size_t path_len; /* server and path, without "?" */
    char *query;     /* the query without limit, or NULL */
    struct gf_http_req *req;
    gf_kube_cb cb;
    void *data;
    /* A large 2xx body on the thread pool (parse_on_pool): the call owns
     * the body and, once the worker made it, the arena with the tree. The
     * worker writes json and arena; the loop reads them only in the
     * after-work callback, which libuv orders after the work. */
    uv_work_t work;
    char *resp_body;
    size_t resp_len;
    long resp_status;
    cJSON *json;
    struct gf_arena *arena;
    bool parsing;  /* the work is queued or running */
    bool canceled; /* gf_kube_call_cancel() while parsing */
};

int gf_kube_client_new(struct gf_http *http, struct gf_clock *clk,
                       const struct gf_kube_creds *creds,
                       const struct gf_kube_client_opts *opts,
                       struct gf_kube_client **out)
{
    *out = NULL;
    if (creds == NULL || creds->server == NULL || *creds->server == '\0')
        return -EINVAL;
    struct gf_kube_client *c = gf_calloc(1, sizeof(*c));
    c->refs = 1;
    c->http = http;
    c->clk = clk;
    c->creds = gf_kube_creds_dup(creds);
    c->timeout_ms = opts != NULL && opts->timeout_ms ? opts->timeout_ms : 30000;
    c->max_body = opts != NULL && opts->max_body ? opts->max_body
                                                 : GF_HTTP_DEFAULT_MAX_BODY;
    c->user_agent = gf_strdup(
        opts != NULL && opts->user_agent ? opts->user_agent : "gpufed");
    const char *nm = opts != NULL && opts->name ? opts->name
                     : creds->context != NULL   ? creds->context
                                                : "";
    c->name = gf_strdup(nm);
    c->lc.comp = "kubeclient";
    c->lc.cluster = *c->name ? c->name : NULL;
    *out = c;
    return 0;
}

void gf__kube_client_ref(struct gf_kube_client *c)
{
    c->refs++;
}

void gf__kube_client_unref(struct gf_kube_client *c)
{
    if (c == NULL)
        return;
    GF_BUG_ON(c->refs == 0);
    if (--c->refs > 0)
        return;
    gf_kube_creds_free(c->creds);
    gf_free(c->user_agent);
    gf_free(c->name);
    gf_free(c);
}

void gf_kube_client_free(struct gf_kube_client *c)
{
    gf__kube_client_unref(c);
}

struct gf_http *gf_kube_client_http(const struct gf_kube_client *c)
{
    return c->http;
}

struct gf_clock *gf_kube_client_clock(const struct gf_kube_client *c)
{
    return c->clk;
}

const char *gf_kube_client_server(const struct gf_kube_client *c)
{
    return c->creds->server;
}

const char *gf_kube_client_name(const struct gf_kube_client *c)
{
    return c->name;
}

const char *gf_kube_client_namespace(const struct gf_kube_client *c)
{
    return c->creds->namespace != NULL && *c->creds->namespace
               ? c->creds->namespace
               : "default";
}

uint64_t gf_kube_client_token_reloads(const struct gf_kube_client *c)
{
    return c->token_reloads;
}

uint64_t gf_kube_client_pool_parses(const struct gf_kube_client *c)
{
    return c->pool_parses;
}

void gf__kube_client_set_parse_hook(struct gf_kube_client *c,
                                    void (*fn)(void *data,
                                               struct gf_kube_call *k),
                                    void *data)
{
    c->parse_hook = fn;
    c->parse_hook_data = data;
}

const struct gf_log_ctx *gf__kube_client_lc(const struct gf_kube_client *c)
{
    return &c->lc;
}

/* ------------------------------------------------------------------ */
/* Calls                                                               */

static void call_free(struct gf_kube_call *k)
{
    gf__kube_client_unref(k->c);
    gf_free(k->method);
    gf_free(k->url);
    gf_free(k->content_type);
    gf_free(k->accept);
    gf_free(k->body);
    gf_free(k->query);
    gf_free(k->resp_body);
    gf_free(k);
}

static void on_http_done(void *data, const struct gf_http_resp *resp);

/* The transfer's user data is the call; the stream wants its own. */
static int call_on_data(void *data, const char *p, size_t n)
{
    struct gf_kube_call *k = data;
    return k->stream.on_data(k->stream.data, p, n);
}

/* Wipes a header buffer that held the bearer token before freeing it. */
static void buf_wipe_free(struct gf_buf *b)
{
    if (b->data != NULL)
        memset(b->data, 0, b->cap);
    gf_buf_free(b);
}

static int call_send(struct gf_kube_call *k)
{
    struct gf_kube_client *c = k->c;
    const struct gf_kube_creds *cr = c->creds;
    struct gf_buf auth = GF_BUF_INIT(64 << 10);
    struct gf_buf ua = GF_BUF_INIT(512);
    struct gf_buf ct = GF_BUF_INIT(256);
    const char *hdrs[7];
    size_t nh = 0;
    int rc = 0;
    struct gf_buf acc = GF_BUF_INIT(512);
    if (gf_buf_printf(&acc, "Accept: %s",
                      k->accept != NULL ? k->accept : "application/json") == 0)
        hdrs[nh++] = gf_buf_cstr(&acc);
    if (gf_buf_printf(&ua, "User-Agent: %s", c->user_agent) == 0)
        hdrs[nh++] = gf_buf_cstr(&ua);
    if (cr->token != NULL && *cr->token != '\0') {
        rc = gf_buf_printf(&auth, "Authorization: Bearer %s", cr->token);
        if (rc != 0)
            goto out;
        hdrs[nh++] = gf_buf_cstr(&auth);
    }
    if (k->content_type != NULL) {
        rc = gf_buf_printf(&ct, "Content-Type: %s", k->content_type);
        if (rc != 0)
            goto out;
        hdrs[nh++] = gf_buf_cstr(&ct);
    }
    hdrs[nh] = NULL;
    struct gf_http_tls tls = {
        .ca_pem = cr->ca_pem,
        .ca_pem_len = cr->ca_pem_len,
        .cert_pem = cr->cert_pem,
        .cert_pem_len = cr->cert_pem_len,
        .key_pem = cr->key_pem,
        .key_pem_len = cr->key_pem_len,
        .server_name = cr->tls_server_name,
        .insecure = cr->insecure_skip_tls_verify,
    };
    struct gf_http_req_opts o = {
        .method = k->method,
        .url = k->url,
        .headers = hdrs,
        .body = k->body,
        .body_len = k->body_len,
        .tls = &tls,
        .max_body = c->max_body,
        .timeout_ms = k->streaming ? k->stream.deadline_ms : k->timeout_ms,
        .idle_timeout_ms = k->streaming ? k->stream.idle_ms : 0,
        .on_data = k->streaming ? call_on_data : NULL,
        .on_done = on_http_done,
        .data = k,
    };
    k->token_gen = c->token_gen;
    rc = gf_http_start(c->http, &o, &k->req);
out:
    buf_wipe_free(&auth);
    gf_buf_free(&acc);
    gf_buf_free(&ua);
    gf_buf_free(&ct);
    return rc;
}

/*
 * A 401 with a token file: re-read the file (small and local, so read on
 * the loop as kubeconfig.h allows) and resend once if the token we sent
 * is no longer the current one. Returns true when a retry is running.
 */
static bool retry_unauthorized(struct gf_kube_call *k)
{
    struct gf_kube_client *c = k->c;
    if (k->retried || c->creds->token_file == NULL)
        return false;
    k->retried = true;
    if (k->token_gen == c->token_gen) {
        int rc = gf_kube_creds_reload_token(c->creds);
        if (rc < 0) {
            GF_LOG(&c->lc, GF_LOG_WARN, "token file unreadable", "err=%s",
                   gf_strerror(rc));
            return false;
        }
        if (rc != 0)
            return false; /* unchanged: the 401 stands */
        c->token_gen++;
        c->token_reloads++;
        GF_LOG(&c->lc, GF_LOG_INFO, "token reloaded after 401", "");
    }
    return call_send(k) == 0;
}

/* "SERVER/PATH?limit=N&QUERY" into a fresh k->url. */
static int build_list_url(struct gf_kube_call *k)
{
    struct gf_buf url = GF_BUF_INIT(16 << 10);
    int rc = gf_buf_append(&url, k->url, k->path_len);
    if (rc == 0)
        rc = gf_buf_printf(&url, "?limit=%u", k->limit);
    if (rc == 0 && k->query != NULL)
        rc = gf_buf_printf(&url, "&%s", k->query);
    if (rc != 0) {
        gf_buf_free(&url);
        return rc;
    }
    gf_free(k->url);
    k->url = gf_buf_steal(&url);
    return 0;
}

/*
 * A list page larger than the body cap: ask for the same page (same
 * continue token or resourceVersion) with half the limit, down to one
 * object. A page is then never more than the cap, however large the
 * objects (kubectl lists 90 ConfigMaps of 900 KB; at limit=500 that one
 * page is 81 MB), and memory stays bounded by the cap. The caller sees
 * a shorter page, which the API allows for any limit. Returns true when
 * the smaller page is on its way.
 */
static bool retry_smaller_page(struct gf_kube_call *k)
{
    if (k->limit <= 1 || k->streaming)
        return false;
    k->limit /= 2;
    if (build_list_url(k) != 0)
        return false;
    GF_LOG(&k->c->lc, GF_LOG_INFO, "list page over the cap, halving",
           "limit=%u max_body=%zu", k->limit, k->c->max_body);
    return call_send(k) == 0;
}

/*
 * Bodies at least this large are parsed on libuv's thread pool. A LIST
 * page of Workloads is megabytes, milliseconds of cJSON on the one loop
 * thread (a hub's cold start is hundreds of them); the protocol's writes
 * and their answers are a few KB, parsed in microseconds, for which the
 * hop to a worker and back (two thread wakeups) would cost more than it
 * saves, and their latency is what the protocol waits on.
 */
#define POOL_PARSE_MIN (256u << 10)

/* Parses a body into a fresh arena, *arena (freed by the caller with the
 * tree). Any thread: the arena routing of cJSON is per thread. */
static cJSON *parse_body(const char *body, size_t len, struct gf_arena **arena)
{
    *arena = gf_arena_new(65536);
    struct gf_arena *prev = gf_arena_json_begin(*arena);
    cJSON *json = cJSON_ParseWithLength(body, len);
    gf_arena_json_end(prev);
    return json;
}

/* What every result of a call carries: the answer's code and body. */
static void result_init(struct gf_kube_result *res, struct gf_api_status *st,
                        const struct gf_kube_call *k, long code,
                        const char *body, size_t len)
{
    *res = (struct gf_kube_result){0};
    res->http_code = code;
    res->limit = k->limit;
    res->body = body;
    res->body_len = len;
    res->status = st;
}

/* The result of a 2xx answer whose body (if any) was parsed into json. */
static void result_2xx(struct gf_kube_result *res, struct gf_api_status *st,
                       long code, bool parsed, const cJSON *json)
{
    memset(st, 0, sizeof(*st));
    st->code = code;
    if (parsed && json == NULL) {
        gf_api_status_transport(GF_EPARSE, "response is not JSON", st);
        st->code = code;
        res->err = GF_EPARSE;
    }
    res->json = json;
}

/* Runs the caller's callback, then frees the tree, its arena and the call. */
static void call_finish(struct gf_kube_call *k,
                        const struct gf_kube_result *res, cJSON *json,
                        struct gf_arena *arena)
{
    k->cb(k->data, res);
    /* A tree in the arena goes with it at once: cJSON_Delete would walk
     * every node of a LIST page to free nothing. Without the cJSON hooks
     * (gf_alloc_global_init not called) the tree is on the heap. */
    if (arena == NULL || gf_arena_bytes(arena) == 0)
        cJSON_Delete(json);
    gf_arena_free(arena);
    call_free(k);
}

/*
 * On a pool thread. cJSON may parse on several threads at once as long as
 * nobody uses cJSON_GetErrorPtr (cJSON's README; we never do: its global
 * is written by every parse) and the hooks were set before (main()).
 * Nothing else of gpufed runs here: no log, no loop, no call state but the
 * body, the tree and the arena, which only this thread touches until the
 * after-work callback.
 */
static void parse_work(uv_work_t *w)
{
    struct gf_kube_call *k = w->data;
    k->json = parse_body(k->resp_body, k->resp_len, &k->arena);
}

/* On the loop, after parse_work (or instead of it, status UV_ECANCELED,
 * when a cancel came before a thread took it). */
static void parse_done(uv_work_t *w, int status)
{
    struct gf_kube_call *k = w->data;
    k->parsing = false;
    struct gf_api_status st;
    struct gf_kube_result res;
    result_init(&res, &st, k, k->resp_status, k->resp_body, k->resp_len);
    if (k->canceled || status != 0) {
        /* As a cancel during the transfer: no code (not the server's
         * answer as far as the caller is concerned) and no tree. */
        gf_api_status_transport(GF_ECANCELED, "canceled", &st);
        res.err = GF_ECANCELED;
    } else {
        result_2xx(&res, &st, k->resp_status, true, k->json);
    }
    call_finish(k, &res, k->json, k->arena);
}

/*
 * Hands a large 2xx body to the thread pool, taking it from the transfer
 * (no copy); the callback runs from parse_done. Pages of one list stay in
 * order because a reflector (like any lister) asks for the next page only
 * from the callback of the one before: there is never more than one page
 * of a list on the pool. Pages of different clusters parse in parallel,
 * as client-go's reflectors decode in their own goroutines.
 */
static void parse_on_pool(struct gf_kube_call *k, struct gf_http_req *req,
                          long status)
{
    struct gf_kube_client *c = k->c;
    k->resp_body = gf_http_body_take(req, &k->resp_len);
    k->resp_status = status;
    k->work.data = k;
    k->parsing = true;
    /* Fails only without a work callback. */
    int rc =
        uv_queue_work(gf_http_loop(c->http), &k->work, parse_work, parse_done);
    GF_BUG_ON(rc != 0);
    c->pool_parses++;
    if (c->parse_hook != NULL)
        c->parse_hook(c->parse_hook_data, k);
}

static void on_http_done(void *data, const struct gf_http_resp *resp)
{
    struct gf_kube_call *k = data;
    struct gf_http_req *req = k->req;
    k->req = NULL;
    if (resp->err == 0 && resp->status == 401 && retry_unauthorized(k))
        return;
    if (resp->err == GF_E2BIG && retry_smaller_page(k))
        return;
    bool ok = resp->err == 0 && resp->status >= 200 && resp->status < 300;
    if (ok && !k->streaming && resp->body_len >= POOL_PARSE_MIN) {
        parse_on_pool(k, req, resp->status);
        return;
    }
    struct gf_api_status st;
    struct gf_kube_result res;
    cJSON *json = NULL;
    struct gf_arena *arena = NULL;
    result_init(&res, &st, k, resp->status, resp->body, resp->body_len);
    if (resp->err != 0) {
        gf_api_status_transport(resp->err, resp->err_detail, &st);
        /* A 2xx whose body we did not take whole (our cap, a cut, a
         * cancel) is not the server's answer: no code, so nobody prints
         * it as "Error from server". */
        if (resp->status < 200 || resp->status >= 300)
            st.code = resp->status;
        res.err = resp->err;
    } else if (ok) {
        /* The tree lives only for the callback (res.json is borrowed):
         * parse it into an arena, freed in one go. */
        bool parse = !k->streaming && resp->body_len > 0;
        if (parse)
            json = parse_body(resp->body, resp->body_len, &arena);
        result_2xx(&res, &st, resp->status, parse, json);
    } else {
        res.err = gf_api_status_decode(resp->body, resp->body_len, resp->status,
                                       resp->retry_after_ms, &st);
        if (res.err == 0)
            res.err = GF_EAPI; /* 1xx/3xx: not something we can use */
        st.err = res.err;
        res.err = st.err;
        st.cls = gf_api_status_classify(&st);
    }
    call_finish(k, &res, json, arena);
}

/* The call's URL: server, path, then limit first in the query (so that a
 * page over the body cap can be asked for again with another limit).
 * *path_len is where the query starts. */
static int build_url(const struct gf_kube_client *c,
                     const struct gf_kube_op *op, unsigned limit,
                     struct gf_buf *url, size_t *path_len)
{
    int rc = gf_buf_puts(url, c->creds->server);
    if (rc == 0 && op->path != NULL)
        rc = gf_buf_puts(url, op->path);
    else if (rc == 0)
        rc = gf_kube_path(url, op->res, op->ns, op->name, op->subresource);
    *path_len = url->len;
    bool has_query = op->query != NULL && *op->query != '\0';
    if (rc == 0 && limit > 0)
        rc = gf_buf_printf(url, "?limit=%u%s", limit, has_query ? "&" : "");
    else if (rc == 0 && has_query)
        rc = gf_buf_putc(url, '?');
    if (rc == 0 && has_query)
        rc = gf_buf_puts(url, op->query);
    return rc;
}

/* gf__kube_call_start(), and for lists the page size (0: none). */
static int call_start(struct gf_kube_client *c, const struct gf_kube_op *op,
                      const struct gf__kube_stream *st, unsigned limit,
                      gf_kube_cb cb, void *data, struct gf_kube_call **out)
{
    if (out != NULL)
        *out = NULL;
    if (op == NULL || op->method == NULL || cb == NULL ||
        (op->res == NULL && (op->path == NULL || op->path[0] != '/')))
        return -EINVAL;
    struct gf_buf url = GF_BUF_INIT(16 << 10);
    size_t path_len = 0;
    int rc = build_url(c, op, limit, &url, &path_len);
    if (rc != 0) {
        gf_buf_free(&url);
        return rc;
    }
    bool has_query = op->query != NULL && *op->query != '\0';
    struct gf_kube_call *k = gf_calloc(1, sizeof(*k));
    k->c = c;
    gf__kube_client_ref(c);
    k->method = gf_strdup(op->method);
    k->url = gf_buf_steal(&url);
    k->limit = limit;
    k->path_len = path_len;
    k->query = limit > 0 && has_query ? gf_strdup(op->query) : NULL;
    k->content_type =
        op->content_type != NULL ? gf_strdup(op->content_type) : NULL;
    k->accept = op->accept != NULL ? gf_strdup(op->accept) : NULL;
    if (op->body != NULL) {
        k->body = gf_malloc(op->body_len + 1);
        memcpy(k->body, op->body, op->body_len);
        k->body[op->body_len] = '\0';
        k->body_len = op->body_len;
    }
    k->timeout_ms = op->timeout_ms ? op->timeout_ms : c->timeout_ms;
    if (st != NULL) {
        k->stream = *st;
        k->streaming = true;
    }
    k->cb = cb;
    k->data = data;
    rc = call_send(k);
    if (rc != 0) {
        call_free(k);
        return rc;
    }
    if (out != NULL)
        *out = k;
    return 0;
}

int gf__kube_call_start(struct gf_kube_client *c, const struct gf_kube_op *op,
                        const struct gf__kube_stream *st, gf_kube_cb cb,
                        void *data, struct gf_kube_call **out)
{
    return call_start(c, op, st, 0, cb, data, out);
}

int gf_kube_call(struct gf_kube_client *c, const struct gf_kube_op *op,
                 gf_kube_cb cb, void *data, struct gf_kube_call **out)
{
    return call_start(c, op, NULL, 0, cb, data, out);
}

void gf_kube_call_cancel(struct gf_kube_call *call)
{
    if (call == NULL)
        return;
    if (call->req != NULL) {
        gf_http_cancel(call->req);
    } else if (call->parsing) {
        /* The answer came but the callback has not run: it still gets
         * GF_ECANCELED (parse_done). uv_cancel saves the parse when no
         * thread has taken it yet; a parse already running finishes and
         * its tree is dropped. */
        call->canceled = true;
        uv_cancel((uv_req_t *)&call->work);
    }
}

/* ------------------------------------------------------------------ */
/* Verbs                                                               */

int gf_kube_get(struct gf_kube_client *c, const struct gf_kube_resource *r,
                const char *ns, const char *name, gf_kube_cb cb, void *data,
                struct gf_kube_call **out)
{
    if (name == NULL || *name == '\0')
        return -EINVAL;
    struct gf_kube_op op = {.method = "GET", .res = r, .ns = ns, .name = name};
    return gf_kube_call(c, &op, cb, data, out);
}

int gf_kube_list(struct gf_kube_client *c, const struct gf_kube_resource *r,
                 const struct gf_kube_list_opts *o, gf_kube_cb cb, void *data,
                 struct gf_kube_call **out)
{
    struct gf_buf q = GF_BUF_INIT(8 << 10);
    /* limit goes first in the URL, from call_start(), so that a page over
     * the body cap can be asked for again with a smaller one. */
    int rc = gf__kube_query_add(&q, "continue", o->continue_token);
    if (rc == 0)
        rc = gf__kube_query_add(&q, "resourceVersion", o->resource_version);
    if (rc == 0)
        rc = gf__kube_query_add(&q, "labelSelector", o->label_selector);
    if (rc == 0)
        rc = gf__kube_query_add(&q, "fieldSelector", o->field_selector);
    if (rc == 0) {
        struct gf_kube_op op = {
            .method = "GET", .res = r, .ns = o->ns, .query = gf_buf_cstr(&q)};
        rc = call_start(c, &op, NULL, o->limit, cb, data, out);
    }
    gf_buf_free(&q);
    return rc;
}

void gf_kube_list_meta(const cJSON *list, const char **rv, const char **cont)
{
    if (rv != NULL)
        *rv = gf_json_str(list, "metadata.resourceVersion");
    if (cont != NULL) {
        const char *s = gf_json_str(list, "metadata.continue");
        *cont = s != NULL && *s != '\0' ? s : NULL;
    }
}

int gf_kube_create(struct gf_kube_client *c, const struct gf_kube_resource *r,
                   const char *ns, const char *body, size_t len, gf_kube_cb cb,
                   void *data, struct gf_kube_call **out)
{
    struct gf_kube_op op = {.method = "POST",
                            .res = r,
                            .ns = ns,
                            .content_type = "application/json",
                            .body = body,
                            .body_len = len};
    return gf_kube_call(c, &op, cb, data, out);
}

static char *print_json(const cJSON *j)
{
    return cJSON_PrintUnformatted(j);
}

int gf_kube_patch_body(struct gf_buf *out, enum gf_patch_type type,
                       const char *patch, size_t len,
                       const char *resource_version)
{
    if (resource_version == NULL || type == GF_PATCH_APPLY)
        return resource_version != NULL ? -EINVAL
                                        : gf_buf_append(out, patch, len);
    cJSON *root = cJSON_ParseWithLength(patch, len);
    int rc = GF_EPARSE;
    if (type == GF_PATCH_MERGE && cJSON_IsObject(root)) {
        cJSON *md = cJSON_GetObjectItemCaseSensitive(root, "metadata");
        if (md == NULL)
            md = cJSON_AddObjectToObject(root, "metadata");
        if (cJSON_IsObject(md)) {
            cJSON_DeleteItemFromObjectCaseSensitive(md, "resourceVersion");
            cJSON_AddStringToObject(md, "resourceVersion", resource_version);
            rc = 0;
        }
    } else if (type == GF_PATCH_JSON && cJSON_IsArray(root)) {
        /* Not a "test" op: its failure is a 422 that kube-apiserver words
         * like any invalid patch. With the expected version written into
         * the object, the server's update check answers 409 Conflict. */
        cJSON *t = cJSON_CreateObject();
        cJSON_AddStringToObject(t, "op", "replace");
        cJSON_AddStringToObject(t, "path", "/metadata/resourceVersion");
        cJSON_AddStringToObject(t, "value", resource_version);
        cJSON_InsertItemInArray(root, 0, t);
        rc = 0;
    }
    if (rc == 0) {
        char *s = print_json(root);
        rc = gf_buf_puts(out, s);
        cJSON_free(s);
    }
    cJSON_Delete(root);
    return rc;
}

int gf_kube_patch(struct gf_kube_client *c, const struct gf_kube_resource *r,
                  const char *ns, const char *name,
                  const struct gf_kube_patch_opts *o, const char *body,
                  size_t len, gf_kube_cb cb, void *data,
                  struct gf_kube_call **out)
{
    if (name == NULL || *name == '\0' || body == NULL)
        return -EINVAL;
    static const char *const ctype[] = {
        [GF_PATCH_MERGE] = "application/merge-patch+json",
        [GF_PATCH_JSON] = "application/json-patch+json",
        [GF_PATCH_APPLY] = "application/apply-patch+yaml",
    };
    if ((unsigned)o->type > GF_PATCH_APPLY)
        return -EINVAL;
    if (o->type == GF_PATCH_APPLY && o->field_manager == NULL)
        return -EINVAL;
    struct gf_buf b = GF_BUF_INIT(c->max_body);
    struct gf_buf q = GF_BUF_INIT(1024);
    int rc = gf_kube_patch_body(&b, o->type, body, len, o->resource_version);
    if (rc == 0)
        rc = gf__kube_query_add(&q, "fieldManager", o->field_manager);
    if (rc == 0 && o->type == GF_PATCH_APPLY && o->force)
        rc = gf__kube_query_add(&q, "force", "true");
    if (rc == 0) {
        struct gf_kube_op op = {.method = "PATCH",
                                .res = r,
                                .ns = ns,
                                .name = name,
                                .subresource = o->subresource,
                                .query = gf_buf_cstr(&q),
                                .content_type = ctype[o->type],
                                .body = gf_buf_cstr(&b),
                                .body_len = b.len};
        rc = call_start(c, &op, NULL, 0, cb, data, out);
    }
    gf_buf_free(&b);
    gf_buf_free(&q);
    return rc;
}

int gf_kube_delete(struct gf_kube_client *c, const struct gf_kube_resource *r,
                   const char *ns, const char *name,
                   const struct gf_kube_delete_opts *o, gf_kube_cb cb,
                   void *data, struct gf_kube_call **out)
{
    if (name == NULL || *name == '\0')
        return -EINVAL;
    cJSON *opts = cJSON_CreateObject();
    cJSON_AddStringToObject(opts, "kind", "DeleteOptions");
    cJSON_AddStringToObject(opts, "apiVersion", "v1");
    if (o != NULL) {
        if (o->propagation != NULL)
            cJSON_AddStringToObject(opts, "propagationPolicy", o->propagation);
        if (o->grace_period_set)
            cJSON_AddNumberToObject(opts, "gracePeriodSeconds",
                                    (double)o->grace_period_seconds);
        if (o->precondition_uid != NULL || o->precondition_rv != NULL) {
            cJSON *p = cJSON_AddObjectToObject(opts, "preconditions");
            if (o->precondition_uid != NULL)
                cJSON_AddStringToObject(p, "uid", o->precondition_uid);
            if (o->precondition_rv != NULL)
                cJSON_AddStringToObject(p, "resourceVersion",
                                        o->precondition_rv);
        }
    }
    char *body = print_json(opts);
    cJSON_Delete(opts);
    struct gf_kube_op op = {.method = "DELETE",
                            .res = r,
                            .ns = ns,
                            .name = name,
                            .content_type = "application/json",
                            .body = body,
                            .body_len = strlen(body)};
    int rc = gf_kube_call(c, &op, cb, data, out);
    cJSON_free(body);
    return rc;
}
