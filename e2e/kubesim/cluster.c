/*
 * cluster: wiring of one simulated cluster (api + rbac + auth + faults +
 * server) and of the process around them (certs, catalog, admin endpoint,
 * the files clients read). See cluster.h.
 */
#include "e2e/kubesim/cluster.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "e2e/kubesim/certs.h"
#include "e2e/kubesim/rbac.h"

/* A CRD file larger than this is not a CRD we ship. */
#define CRD_FILE_MAX (8u << 20)
#define ADMIN_BODY_MAX (64u << 10)

struct gf_ks_cluster {
    struct gf_ks_world *world; /* borrowed back-pointer */
    char *name;
    size_t index;
    struct gf_ks_api *api;
    struct gf_ks_rbac *rbac;
    struct gf_ks_auth *auth;
    struct gf_ks_faults *faults;
    struct gf_ks_server *server;
    struct gf_log_ctx lc;
    bool attached;
    void *user;
};

struct crd_file {
    char *name;
    char *text;
    size_t len;
};

struct gf_ks_world {
    struct gf_ks_world_opts o;
    struct gf_ks_certs *certs;
    struct gf_ks_catalog *catalog;
    struct gf_ks_cluster **clusters;
    size_t n;
    struct gf_ks_server *admin;
    /* One identity: whoever can read DIR/admin-token may inject faults. */
    struct gf_ks_auth *admin_auth;
    struct crd_file *crds;
    size_t n_crds;
};

static const struct gf_log_ctx lc = {.comp = "kubesim"};

/* ---- one cluster ------------------------------------------------------- */

static int cluster_authorize(void *data, const struct gf_ks_authz_attrs *a,
                             struct gf_ks_status *err)
{
    struct gf_ks_cluster *c = data;
    return gf_ks_rbac_authorize(c->rbac, a, err);
}

static void cluster_handle(void *data, const struct gf_ks_api_req *req,
                           const struct gf_ks_api_out *out,
                           struct gf_ks_api_call **call)
{
    struct gf_ks_cluster *c = data;
    gf_ks_api_handle(c->api, req, out, call);
}

static void cluster_cancel(void *data, struct gf_ks_api_call *call)
{
    (void)data;
    gf_ks_api_call_cancel(call);
}

static void cluster_writable(void *data, struct gf_ks_api_call *call)
{
    (void)data;
    gf_ks_api_call_writable(call);
}

/* Lower-case DNS label: what a cluster name must be to sit in paths. */
static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '-'))
            return false;
    return true;
}

static void cluster_free(struct gf_ks_cluster *c)
{
    if (c == NULL)
        return;
    if (c->attached && c->world->o.detach != NULL)
        c->world->o.detach(c->world->o.hook_data, c);
    /* The server first: it cancels the API layer's streaming calls. */
    gf_ks_server_close(c->server);
    gf_ks_rbac_free(c->rbac);
    gf_ks_api_free(c->api);
    gf_ks_faults_free(c->faults);
    gf_ks_auth_free(c->auth);
    gf_free(c->name);
    gf_free(c);
}

static int install_crds(struct gf_ks_world *w, struct gf_ks_cluster *c)
{
    for (size_t i = 0; i < w->n_crds; i++) {
        struct gf_ks_status st;
        gf_ks_status_init(&st);
        int rc =
            gf_ks_api_apply_yaml(c->api, w->crds[i].text, w->crds[i].len, &st);
        if (rc != 0) {
            GF_LOG(&c->lc, GF_LOG_ERROR, "CRD install failed", "file=%s why=%s",
                   w->crds[i].name, st.message);
            gf_ks_status_clear(&st);
            return rc;
        }
    }
    return 0;
}

static int cluster_start(struct gf_ks_world *w, struct gf_ks_cluster *c)
{
    struct gf_ks_status st;
    gf_ks_status_init(&st);
    int rc = gf_ks_rbac_bootstrap(gf_ks_api_store(c->api), &st);
    if (rc != 0) {
        GF_LOG(&c->lc, GF_LOG_ERROR, "RBAC bootstrap failed", "why=%s",
               st.message);
        gf_ks_status_clear(&st);
        return rc;
    }
    rc = install_crds(w, c);
    if (rc != 0)
        return rc;
    struct gf_ks_server_opts so = {
        .loop = w->o.loop,
        .clock = w->o.clock,
        .name = c->name,
        .port = w->o.base_port != 0 ? w->o.base_port + (int)c->index : 0,
        .tls = gf_ks_certs_server_ctx(w->certs),
        .auth = c->auth,
        .faults = c->faults,
        .handle = cluster_handle,
        .cancel = cluster_cancel,
        .writable = cluster_writable,
        .data = c,
        .max_queued = w->o.watch_queue,
    };
    rc = gf_ks_server_start(&so, &c->server);
    if (rc != 0) {
        GF_LOG(&c->lc, GF_LOG_ERROR, "listen failed", "port=%d error=%s",
               so.port, uv_strerror(rc));
        return rc;
    }
    /* Listening, but nothing is served until the loop runs. */
    if (w->o.attach != NULL) {
        rc = w->o.attach(w->o.hook_data, c);
        if (rc != 0) {
            GF_LOG(&c->lc, GF_LOG_ERROR, "attach failed", "error=%s",
                   gf_strerror(rc));
            return rc;
        }
        c->attached = true;
    }
    return 0;
}

static int cluster_new(struct gf_ks_world *w, size_t index, const char *name,
                       struct gf_ks_cluster **out)
{
    struct gf_ks_cluster *c = gf_calloc(1, sizeof(*c));
    c->world = w;
    c->index = index;
    c->name = gf_strdup(name);
    c->lc = (struct gf_log_ctx){.comp = "kubesim", .cluster = c->name};
    c->auth = gf_ks_auth_new();
    c->faults = gf_ks_faults_new(w->o.clock);
    int rc = gf_ks_auth_add_defaults(c->auth);
    GF_BUG_ON(rc != 0);
    for (size_t i = 0; rc == 0 && i < w->o.n_identities; i++) {
        const struct gf_ks_identity_spec *id = &w->o.identities[i];
        rc = gf_ks_auth_add(c->auth, id->identity, id->user, id->groups, NULL);
        if (rc != 0)
            GF_LOG(&c->lc, GF_LOG_ERROR, "bad identity", "identity=%s error=%s",
                   id->identity, gf_strerror(rc));
    }
    if (rc != 0) {
        cluster_free(c);
        return rc;
    }
    struct gf_ks_api_opts ao = {
        .clock = w->o.clock,
        .catalog = w->catalog,
        .cluster = name,
        .watch_cache = w->o.watch_cache,
        .bookmark_s = w->o.bookmark_s,
        /* Distinct per cluster so uids never collide across clusters. */
        .uid_seed = w->o.seed != 0 ? w->o.seed * 1000003u + index + 1 : 0,
        .authorize = cluster_authorize,
        .authorize_data = c,
    };
    c->api = gf_ks_api_new(&ao);
    c->rbac = gf_ks_rbac_new(gf_ks_api_store(c->api));
    rc = cluster_start(w, c);
    if (rc != 0) {
        cluster_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

const char *gf_ks_cluster_name(const struct gf_ks_cluster *c)
{
    return c->name;
}

int gf_ks_cluster_port(const struct gf_ks_cluster *c)
{
    return gf_ks_server_port(c->server);
}

struct gf_ks_api *gf_ks_cluster_api(struct gf_ks_cluster *c)
{
    return c->api;
}

struct gf_ks_faults *gf_ks_cluster_faults(struct gf_ks_cluster *c)
{
    return c->faults;
}

const struct gf_ks_auth *gf_ks_cluster_auth(const struct gf_ks_cluster *c)
{
    return c->auth;
}

struct gf_ks_server *gf_ks_cluster_server(struct gf_ks_cluster *c)
{
    return c->server;
}

double gf_ks_cluster_time_scale(const struct gf_ks_cluster *c)
{
    return c->world->o.time_scale > 0 ? c->world->o.time_scale : 1.0;
}

struct gf_clock *gf_ks_cluster_clock(const struct gf_ks_cluster *c)
{
    return c->world->o.clock;
}

void gf_ks_cluster_set_user(struct gf_ks_cluster *c, void *user)
{
    c->user = user;
}

void *gf_ks_cluster_user(const struct gf_ks_cluster *c)
{
    return c->user;
}

void gf_ks_cluster_restart(struct gf_ks_cluster *c, uint64_t down_ms)
{
    /*
     * Connections first, so every watch is cancelled by its connection
     * (no stream_end into a socket that is about to go), then the API
     * layer drops its watch caches.
     */
    size_t cut = down_ms > 0 ? gf_ks_server_pause(c->server, down_ms)
                             : gf_ks_server_cut(c->server, NULL, false, false);
    gf_ks_api_restart(c->api);
    GF_LOG(&c->lc, GF_LOG_INFO, "API server restarted",
           "connections=%zu down_ms=%llu", cut, (unsigned long long)down_ms);
}

/* ---- CRD files --------------------------------------------------------- */

static int cmp_names(const void *a, const void *b)
{
    return strcmp(((const struct crd_file *)a)->name,
                  ((const struct crd_file *)b)->name);
}

static bool is_yaml(const char *n)
{
    size_t l = strlen(n);
    return (l > 5 && strcmp(n + l - 5, ".yaml") == 0) ||
           (l > 4 && strcmp(n + l - 4, ".yml") == 0) ||
           (l > 5 && strcmp(n + l - 5, ".json") == 0);
}

/* Reads a whole file, refusing more than max bytes. */
static int read_file(const char *path, size_t max, struct gf_buf *out)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -errno;
    gf_buf_init(out, max);
    char chunk[65536];
    size_t n;
    int rc = 0;
    while (rc == 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        rc = gf_buf_append(out, chunk, n);
    if (rc == 0 && ferror(f))
        rc = -EIO;
    fclose(f);
    if (rc != 0)
        gf_buf_free(out);
    return rc;
}

/*
 * Loads the CRD files once for all clusters. Blocking reads are fine
 * here: this runs before the loop serves anything.
 */
static int load_crds(struct gf_ks_world *w, const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        int rc = -errno;
        GF_LOG(&lc, GF_LOG_ERROR, "cannot open CRD directory",
               "dir=%s error=%s", dir, strerror(-rc));
        return rc;
    }
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (!is_yaml(e->d_name))
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        struct gf_buf b;
        rc = read_file(path, CRD_FILE_MAX, &b);
        if (rc != 0) {
            GF_LOG(&lc, GF_LOG_ERROR, "cannot read CRD file",
                   "file=%s error=%s", path, gf_strerror(rc));
            break;
        }
        w->crds = gf_realloc(w->crds, (w->n_crds + 1) * sizeof(*w->crds));
        struct crd_file *cf = &w->crds[w->n_crds++];
        cf->name = gf_strdup(e->d_name);
        cf->len = b.len;
        cf->text = gf_buf_steal(&b);
    }
    closedir(d);
    if (rc == 0)
        qsort(w->crds, w->n_crds, sizeof(*w->crds), cmp_names);
    return rc;
}

/* ---- admin endpoint ---------------------------------------------------- */

static void reply_json(const struct gf_ks_api_out *out, int code, cJSON *j)
{
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    out->reply(out->ctx, code, "application/json", s, strlen(s));
    cJSON_free(s);
}

static void reply_error(const struct gf_ks_api_out *out, int code,
                        const char *msg)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "error", msg);
    reply_json(out, code, j);
}

static cJSON *clusters_json(const struct gf_ks_world *w)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < w->n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", w->clusters[i]->name);
        cJSON_AddNumberToObject(o, "port", gf_ks_cluster_port(w->clusters[i]));
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

static cJSON *faults_json(const struct gf_ks_world *w)
{
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; i < w->n; i++)
        cJSON_AddItemToObject(o, w->clusters[i]->name,
                              gf_ks_faults_to_json(w->clusters[i]->faults));
    return o;
}

/* Applies a fault (or a restart) to one cluster; adds its id to ids. */
static int inject(struct gf_ks_cluster *c, const cJSON *spec_j, cJSON *ids,
                  const char **why)
{
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(spec_j, "kind");
    if (cJSON_IsString(kind) && strcmp(kind->valuestring, "restart") == 0) {
        const cJSON *ms = cJSON_GetObjectItemCaseSensitive(spec_j, "forMs");
        /* Down for at most a minute: a restart, not an outage. */
        if (ms != NULL && (!cJSON_IsNumber(ms) || ms->valuedouble < 0 ||
                           ms->valuedouble > 60000)) {
            *why = "restart forMs must be within 0..60000";
            return -EINVAL;
        }
        gf_ks_cluster_restart(c, ms != NULL ? (uint64_t)ms->valuedouble : 0);
        return 0;
    }
    struct gf_ks_fault_spec spec;
    int rc = gf_ks_fault_spec_from_json(spec_j, &spec, why);
    if (rc != 0)
        return rc;
    int64_t id = gf_ks_faults_add(c->faults, &spec);
    if (id < 0) {
        *why = "invalid fault";
        return (int)id;
    }
    GF_LOG(&c->lc, GF_LOG_INFO, "fault injected",
           "kind=%s identity=%s for_ms=%llu", gf_ks_fault_kind_name(spec.kind),
           spec.identity != NULL ? spec.identity : "*",
           (unsigned long long)spec.for_ms);
    cJSON_AddItemToArray(ids, cJSON_CreateNumber((double)id));
    return 0;
}

static void admin_post(struct gf_ks_world *w, const char *target,
                       const struct gf_ks_api_req *req,
                       const struct gf_ks_api_out *out)
{
    struct gf_ks_cluster *one = NULL;
    if (strcmp(target, "*") != 0 &&
        (one = gf_ks_world_find(w, target)) == NULL) {
        reply_error(out, 404, "unknown cluster");
        return;
    }
    cJSON *spec = cJSON_ParseWithLength(req->body != NULL ? req->body : "",
                                        req->body_len);
    if (!cJSON_IsObject(spec)) {
        cJSON_Delete(spec);
        reply_error(out, 400, "body must be a JSON object");
        return;
    }
    cJSON *ids = cJSON_CreateArray();
    const char *why = NULL;
    int rc = 0;
    for (size_t i = 0; i < w->n && rc == 0; i++)
        if (one == NULL || one == w->clusters[i])
            rc = inject(w->clusters[i], spec, ids, &why);
    cJSON_Delete(spec);
    if (rc != 0) {
        cJSON_Delete(ids);
        reply_error(out, 400, why != NULL ? why : "invalid fault");
        return;
    }
    cJSON *res = cJSON_CreateObject();
    cJSON_AddItemToObject(res, "ids", ids);
    reply_json(out, 201, res);
}

static void admin_clear(struct gf_ks_world *w, const char *target,
                        const struct gf_ks_api_out *out)
{
    struct gf_ks_cluster *one = NULL;
    if (target != NULL && strcmp(target, "*") != 0 &&
        (one = gf_ks_world_find(w, target)) == NULL) {
        reply_error(out, 404, "unknown cluster");
        return;
    }
    for (size_t i = 0; i < w->n; i++)
        if (one == NULL || one == w->clusters[i])
            gf_ks_faults_clear(w->clusters[i]->faults);
    GF_LOG(&lc, GF_LOG_INFO, "faults cleared", "cluster=%s",
           target != NULL ? target : "*");
    reply_json(out, 200, cJSON_CreateObject());
}

static void admin_handle(void *data, const struct gf_ks_api_req *req,
                         const struct gf_ks_api_out *out,
                         struct gf_ks_api_call **call)
{
    struct gf_ks_world *w = data;
    *call = NULL;
    const char *p = req->path;
    bool get = strcmp(req->method, "GET") == 0;
    if (get && strcmp(p, "/clusters") == 0)
        reply_json(out, 200, clusters_json(w));
    else if (get && strcmp(p, "/faults") == 0)
        reply_json(out, 200, faults_json(w));
    else if (strcmp(req->method, "POST") == 0 && strncmp(p, "/faults/", 8) == 0)
        admin_post(w, p + 8, req, out);
    else if (strcmp(req->method, "DELETE") == 0 && strcmp(p, "/faults") == 0)
        admin_clear(w, NULL, out);
    else if (strcmp(req->method, "DELETE") == 0 &&
             strncmp(p, "/faults/", 8) == 0)
        admin_clear(w, p + 8, out);
    else
        reply_error(out, 404, "no such admin endpoint");
}

static void admin_cancel(void *data, struct gf_ks_api_call *call)
{
    /* The admin endpoint never streams. */
    (void)data;
    (void)call;
}

/* ---- world ------------------------------------------------------------- */

static void free_crds(struct gf_ks_world *w)
{
    for (size_t i = 0; i < w->n_crds; i++) {
        gf_free(w->crds[i].name);
        gf_free(w->crds[i].text);
    }
    GF_FREE(w->crds);
    w->n_crds = 0;
}

static int start_admin(struct gf_ks_world *w)
{
    w->admin_auth = gf_ks_auth_new();
    int rc = gf_ks_auth_add(w->admin_auth, "fault-injector", "kubesim-admin",
                            NULL, NULL);
    GF_BUG_ON(rc != 0);
    struct gf_ks_server_opts so = {
        .loop = w->o.loop,
        .clock = w->o.clock,
        .name = "admin",
        .port = w->o.admin_port,
        .auth = w->admin_auth,
        .handle = admin_handle,
        .cancel = admin_cancel,
        .data = w,
        .max_body = ADMIN_BODY_MAX,
    };
    rc = gf_ks_server_start(&so, &w->admin);
    if (rc != 0)
        GF_LOG(&lc, GF_LOG_ERROR, "admin listen failed", "port=%d error=%s",
               so.port, uv_strerror(rc));
    return rc;
}

/* A name that goes into paths: a DNS label, unique in its list. */
static int check_name(const char *what, const char *const *names, size_t i)
{
    if (!name_ok(names[i])) {
        GF_LOG(&lc, GF_LOG_ERROR, "invalid name", "kind=%s name=%s", what,
               names[i]);
        return -EINVAL;
    }
    for (size_t j = 0; j < i; j++)
        if (strcmp(names[i], names[j]) == 0) {
            GF_LOG(&lc, GF_LOG_ERROR, "duplicate name", "kind=%s name=%s", what,
                   names[i]);
            return -EINVAL;
        }
    return 0;
}

static int check_names(const struct gf_ks_world_opts *o)
{
    int rc = o->n_clusters > 0 ? 0 : -EINVAL;
    for (size_t i = 0; rc == 0 && i < o->n_clusters; i++)
        rc = check_name("cluster", o->clusters, i);
    for (size_t i = 0; rc == 0 && i < o->n_identities; i++) {
        if (!name_ok(o->identities[i].identity)) {
            GF_LOG(&lc, GF_LOG_ERROR, "invalid name", "kind=identity name=%s",
                   o->identities[i].identity);
            rc = -EINVAL;
        }
    }
    return rc;
}

int gf_ks_world_new(const struct gf_ks_world_opts *o, struct gf_ks_world **out)
{
    int rc = check_names(o);
    if (rc != 0)
        return rc;
    struct gf_ks_world *w = gf_calloc(1, sizeof(*w));
    w->o = *o;
    w->o.clusters = NULL; /* names are copied into the clusters */
    rc = gf_ks_certs_new("kubesim-ca", 0, &w->certs);
    if (rc == 0 && o->crd_dir != NULL)
        rc = load_crds(w, o->crd_dir);
    if (rc != 0)
        goto fail;
    w->catalog = gf_ks_catalog_new();
    w->clusters = gf_calloc(o->n_clusters, sizeof(*w->clusters));
    for (size_t i = 0; i < o->n_clusters; i++) {
        rc = cluster_new(w, i, o->clusters[i], &w->clusters[i]);
        if (rc != 0)
            goto fail;
        w->n++;
    }
    rc = start_admin(w);
    if (rc != 0)
        goto fail;
    /* The CRD texts were only needed to install them. */
    free_crds(w);
    *out = w;
    return 0;
fail:
    gf_ks_world_close(w);
    return rc;
}

void gf_ks_world_close(struct gf_ks_world *w)
{
    if (w == NULL)
        return;
    gf_ks_server_close(w->admin);
    gf_ks_auth_free(w->admin_auth);
    for (size_t i = 0; i < w->n; i++)
        cluster_free(w->clusters[i]);
    gf_free(w->clusters);
    gf_ks_catalog_free(w->catalog);
    gf_ks_certs_free(w->certs);
    free_crds(w);
    gf_free(w);
}

size_t gf_ks_world_count(const struct gf_ks_world *w)
{
    return w->n;
}

struct gf_ks_cluster *gf_ks_world_cluster(const struct gf_ks_world *w, size_t i)
{
    return i < w->n ? w->clusters[i] : NULL;
}

struct gf_ks_cluster *gf_ks_world_find(const struct gf_ks_world *w,
                                       const char *name)
{
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->clusters[i]->name, name) == 0)
            return w->clusters[i];
    return NULL;
}

int gf_ks_world_admin_port(const struct gf_ks_world *w)
{
    return gf_ks_server_port(w->admin);
}

const char *gf_ks_world_admin_token(const struct gf_ks_world *w)
{
    return gf_ks_auth_identity(w->admin_auth, "fault-injector")->token;
}

const char *gf_ks_world_ca_pem(const struct gf_ks_world *w)
{
    return gf_ks_certs_ca_pem(w->certs, NULL);
}

/* ---- files ------------------------------------------------------------- */

/* Writes data to path atomically with the given mode. */
static int write_atomic(const char *path, const char *data, size_t len,
                        mode_t mode)
{
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return -errno;
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int rc = -errno;
            close(fd);
            unlink(tmp);
            return rc;
        }
        off += (size_t)n;
    }
    /* open() honours the umask; the mode must be exact for credentials. */
    if (fchmod(fd, mode) != 0 || close(fd) != 0) {
        int rc = -errno;
        unlink(tmp);
        return rc;
    }
    return rename(tmp, path) == 0 ? 0 : -errno;
}

/*
 * A kubeconfig. JSON is YAML, and every client reads it as such; cJSON
 * does the quoting, so no value can break the file.
 */
static char *kubeconfig(const struct gf_ks_cluster *c,
                        const struct gf_ks_principal *p, const char *ca_b64)
{
    char server[64], ctx[200];
    snprintf(server, sizeof(server), "https://127.0.0.1:%d",
             gf_ks_cluster_port(c));
    snprintf(ctx, sizeof(ctx), "%s@%s", p->identity, c->name);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "apiVersion", "v1");
    cJSON_AddStringToObject(root, "kind", "Config");
    cJSON *clusters = cJSON_AddArrayToObject(root, "clusters");
    cJSON *ce = cJSON_CreateObject();
    cJSON_AddItemToArray(clusters, ce);
    cJSON_AddStringToObject(ce, "name", c->name);
    cJSON *cl = cJSON_AddObjectToObject(ce, "cluster");
    cJSON_AddStringToObject(cl, "server", server);
    cJSON_AddStringToObject(cl, "certificate-authority-data", ca_b64);
    cJSON *users = cJSON_AddArrayToObject(root, "users");
    cJSON *u = cJSON_CreateObject();
    cJSON_AddItemToArray(users, u);
    cJSON_AddStringToObject(u, "name", ctx);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(u, "user"), "token",
                            p->token);
    cJSON *ctxs = cJSON_AddArrayToObject(root, "contexts");
    cJSON *cx = cJSON_CreateObject();
    cJSON_AddItemToArray(ctxs, cx);
    cJSON_AddStringToObject(cx, "name", ctx);
    cJSON *cxx = cJSON_AddObjectToObject(cx, "context");
    cJSON_AddStringToObject(cxx, "cluster", c->name);
    cJSON_AddStringToObject(cxx, "user", ctx);
    cJSON_AddStringToObject(cxx, "namespace", "default");
    cJSON_AddStringToObject(root, "current-context", ctx);
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

struct kc_write {
    const struct gf_ks_cluster *c;
    const char *dir, *ca_b64;
    int rc;
};

static void write_one_kubeconfig(void *data, const struct gf_ks_principal *p)
{
    struct kc_write *k = data;
    if (k->rc != 0)
        return;
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s/kubeconfig-%s.yaml", k->dir, k->c->name,
             p->identity);
    char *s = kubeconfig(k->c, p, k->ca_b64);
    k->rc = write_atomic(path, s, strlen(s), 0600);
    cJSON_free(s);
    if (k->rc != 0)
        GF_LOG(&lc, GF_LOG_ERROR, "cannot write kubeconfig", "path=%s error=%s",
               path, strerror(-k->rc));
}

static int make_dir(const char *path)
{
    if (mkdir(path, 0700) == 0 || errno == EEXIST)
        return 0;
    int rc = -errno;
    GF_LOG(&lc, GF_LOG_ERROR, "cannot create directory", "path=%s error=%s",
           path, strerror(-rc));
    return rc;
}

int gf_ks_world_write_files(const struct gf_ks_world *w, const char *dir)
{
    int rc = make_dir(dir);
    char *ca_b64 = gf_ks_certs_ca_b64(w->certs);
    struct gf_buf ready = GF_BUF_INIT((size_t)1 << 30);
    for (size_t i = 0; rc == 0 && i < w->n; i++) {
        const struct gf_ks_cluster *c = w->clusters[i];
        char sub[4096];
        snprintf(sub, sizeof(sub), "%s/%s", dir, c->name);
        rc = make_dir(sub);
        struct kc_write k = {c, dir, ca_b64, rc};
        gf_ks_auth_foreach(c->auth, write_one_kubeconfig, &k);
        rc = k.rc;
        gf_buf_printf(&ready, "%s %d\n", c->name, gf_ks_cluster_port(c));
    }
    char path[4096];
    if (rc == 0) {
        char admin[64];
        int n = snprintf(admin, sizeof(admin), "127.0.0.1:%d\n",
                         gf_ks_world_admin_port(w));
        snprintf(path, sizeof(path), "%s/admin", dir);
        rc = write_atomic(path, admin, (size_t)n, 0600);
    }
    if (rc == 0) {
        const char *tok = gf_ks_world_admin_token(w);
        snprintf(path, sizeof(path), "%s/admin-token", dir);
        rc = write_atomic(path, tok, strlen(tok), 0600);
    }
    if (rc == 0) {
        snprintf(path, sizeof(path), "%s/ca.crt", dir);
        size_t len;
        const char *pem = gf_ks_certs_ca_pem(w->certs, &len);
        rc = write_atomic(path, pem, len, 0644);
    }
    /* Last: its presence tells scripts that everything above is there. */
    if (rc == 0) {
        snprintf(path, sizeof(path), "%s/ready", dir);
        rc = write_atomic(path, ready.data, ready.len, 0644);
    }
    gf_buf_free(&ready);
    gf_free(ca_b64);
    return rc;
}
