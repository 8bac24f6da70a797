/*
 * kubeconfig: loads a kubeconfig file with libyaml and resolves one context
 * into struct gf_kube_creds.
 *
 * The YAML is read into common/ytree.h's tree, which caps nesting depth
 * and node count before anything is allocated in proportion to hostile
 * input, and keeps every node's line and column for error messages.
 * Aliases are allowed (kubectl reads anchors) and resolve by sharing the
 * anchored node; the resolver only ever looks up a fixed, shallow set of
 * keys, so shared nodes cannot make it walk more than the file holds. Only
 * the first document is read, as kubectl does.
 *
 * Secrets (tokens, keys) are never written into error messages or logs,
 * and are wiped with OPENSSL_cleanse when freed.
 */
#include "kubeclient/kubeconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/file.h"
#include "common/ytree.h"

/* Deeper nesting than this is not a kubeconfig; refusing it early keeps
 * hostile input from building deep trees. */
#define KC_MAX_DEPTH 32
/* A 1 MiB file holds at most ~500k one-character scalars; real kubeconfigs
 * have a few hundred nodes. */
#define KC_MAX_NODES 65536

#define SA_DIR_DEFAULT "/var/run/secrets/kubernetes.io/serviceaccount"

/* What the resolver needs to report a problem. */
struct kc_doc {
    const char *name; /* file name for errors; borrowed */
    struct gf_kubeconfig_error *err;
};

/* ------------------------------------------------------------------ */
/* errors                                                              */

static void set_err(struct gf_kubeconfig_error *err, const char *file,
                    unsigned line, unsigned col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void set_err(struct gf_kubeconfig_error *err, const char *file,
                    unsigned line, unsigned col, const char *fmt, ...)
{
    if (err == NULL)
        return;
    snprintf(err->file, sizeof(err->file), "%s", file ? file : "");
    err->line = line;
    err->column = col;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}

#define NODE_ERR(d, nd, ...)                                                   \
    set_err((d)->err, (d)->name, (unsigned)(nd)->line, (unsigned)(nd)->col,    \
            __VA_ARGS__)

void gf_kubeconfig_error_format(const struct gf_kubeconfig_error *e, char *out,
                                size_t cap)
{
    if (out == NULL || cap == 0)
        return;
    if (e->line == 0)
        snprintf(out, cap, "%s: %s", e->file, e->msg);
    else
        snprintf(out, cap, "%s:%u:%u: %s", e->file, e->line, e->column, e->msg);
}

/* ------------------------------------------------------------------ */
/* small helpers                                                       */

static void free_secret(void *p, size_t len)
{
    if (p == NULL)
        return;
    OPENSSL_cleanse(p, len);
    gf_free(p);
}

static const char *io_strerror(int rc)
{
    if (rc == GF_E2BIG)
        return "file larger than 1 MiB";
    if (rc == -EINVAL)
        return "not a regular file";
    return gf_strerror(rc);
}

/* `path` if absolute or dir is NULL/empty, else dir/path. Owned. */
static char *resolve_path(const char *dir, const char *path)
{
    if (path[0] == '/' || dir == NULL || dir[0] == '\0')
        return gf_strdup(path);
    struct gf_buf b = GF_BUF_INIT(SIZE_MAX / 2);
    (void)gf_buf_printf(&b, "%s/%s", dir, path);
    return gf_buf_steal(&b);
}

/* True for bytes that must never reach an HTTP header or URL. */
static bool has_ctl(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return true;
    }
    return false;
}

/* Trims ASCII whitespace at both ends in place; returns the new length.
 * client-go trims token files the same way. */
static size_t trim(char *s, size_t n)
{
    size_t a = 0;
    while (a < n &&
           (s[a] == ' ' || s[a] == '\t' || s[a] == '\n' || s[a] == '\r'))
        a++;
    while (n > a && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' ||
                     s[n - 1] == '\r'))
        n--;
    memmove(s, s + a, n - a);
    OPENSSL_cleanse(s + (n - a), a);
    s[n - a] = '\0';
    return n - a;
}

/* ------------------------------------------------------------------ */
/* YAML -> tree                                                        */

/* Parses the first YAML document of data into *root (returned-owned).
 * 0, GF_ECONFIG or -ENOMEM. */
static int doc_parse(struct kc_doc *d, const char *data, size_t len,
                     struct gf_ynode **root)
{
    static const struct gf_yaml_opts opts = {
        .max_depth = KC_MAX_DEPTH,
        .max_nodes = KC_MAX_NODES,
        .aliases = true,
        .first_document = true,
    };
    struct gf_yaml_error yerr;
    int rc = gf_yaml_load(data, len, &opts, root, &yerr);
    if (rc != 0) {
        set_err(d->err, d->name, (unsigned)yerr.line, (unsigned)yerr.col, "%s",
                yerr.msg);
        return rc == -ENOMEM ? rc : GF_ECONFIG;
    }
    if (*root == NULL) {
        set_err(d->err, d->name, 1, 1, "kubeconfig is empty");
        return GF_ECONFIG;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* tree lookups                                                        */

/* Value node of `key` in mapping `map`, or NULL. Absent and null are the
 * same to a kubeconfig reader. */
static const struct gf_ynode *get(const struct gf_ynode *map, const char *key)
{
    const struct gf_ynode *v = gf_ymap_get(map, key);
    return gf_ynode_is_null(v) ? NULL : v;
}

static int want_kind(struct kc_doc *d, const struct gf_ynode *nd,
                     enum gf_ykind kind, const char *what)
{
    static const char *const names[] = {"a string", "a list", "a mapping"};
    if (nd->kind == kind)
        return 0;
    NODE_ERR(d, nd, "%s must be %s", what, names[kind]);
    return GF_ECONFIG;
}

/* A scalar that must be a string without NUL; *out borrowed or NULL. */
static int get_str(struct kc_doc *d, const struct gf_ynode *map,
                   const char *key, const char **out)
{
    *out = NULL;
    const struct gf_ynode *v = get(map, key);
    if (v == NULL)
        return 0;
    if (want_kind(d, v, GF_Y_SCALAR, key) != 0)
        return GF_ECONFIG;
    if (strlen(v->str) != v->len) {
        NODE_ERR(d, v, "%s contains a NUL byte", key);
        return GF_ECONFIG;
    }
    *out = v->str;
    return 0;
}

static int get_bool(struct kc_doc *d, const struct gf_ynode *map,
                    const char *key, bool *out)
{
    *out = false;
    const struct gf_ynode *v = get(map, key);
    if (v == NULL)
        return 0;
    if (v->kind == GF_Y_SCALAR && v->plain) {
        const char *s = v->str;
        if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) {
            *out = true;
            return 0;
        }
        if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
            return 0;
    }
    NODE_ERR(d, v, "%s must be true or false", key);
    return GF_ECONFIG;
}

/*
 * Finds the entry called `name` in the list under `list_key` ("clusters")
 * and returns its inner mapping under `inner_key` ("cluster"), which may
 * be NULL when the entry has none. -ENOENT when there is no such entry.
 */
static int find_named(struct kc_doc *d, const struct gf_ynode *root,
                      const char *list_key, const char *inner_key,
                      const char *name, const struct gf_ynode **entry,
                      const struct gf_ynode **inner)
{
    *entry = *inner = NULL;
    const struct gf_ynode *list = get(root, list_key);
    if (list == NULL)
        return -ENOENT;
    if (want_kind(d, list, GF_Y_SEQ, list_key) != 0)
        return GF_ECONFIG;
    for (size_t i = 0; i < list->n; i++) {
        const struct gf_ynode *it = list->kids[i];
        if (want_kind(d, it, GF_Y_MAP, "an entry of a kubeconfig list") != 0)
            return GF_ECONFIG;
        const char *n;
        if (get_str(d, it, "name", &n) != 0)
            return GF_ECONFIG;
        if (n == NULL) {
            NODE_ERR(d, it, "%s entry without a name", list_key);
            return GF_ECONFIG;
        }
        if (strcmp(n, name) != 0)
            continue;
        *entry = it;
        const struct gf_ynode *in = get(it, inner_key);
        if (in != NULL && want_kind(d, in, GF_Y_MAP, inner_key) != 0)
            return GF_ECONFIG;
        *inner = in;
        return 0;
    }
    return -ENOENT;
}

/* ------------------------------------------------------------------ */
/* field loaders                                                       */

int gf_kube_base64_decode(const char *in, size_t n, unsigned char **out,
                          size_t *outlen)
{
    if (n > INT_MAX / 2)
        return -EINVAL;
    EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
    if (ctx == NULL)
        return -ENOMEM;
    unsigned char *buf = gf_malloc(n / 4 * 3 + 4);
    int l1 = 0, l2 = 0, rc = 0;
    EVP_DecodeInit(ctx);
    if (EVP_DecodeUpdate(ctx, buf, &l1, (const unsigned char *)in, (int)n) <
            0 ||
        EVP_DecodeFinal(ctx, buf + l1, &l2) != 1)
        rc = -EINVAL;
    EVP_ENCODE_CTX_free(ctx);
    if (rc != 0) {
        free_secret(buf, n / 4 * 3 + 4);
        return rc;
    }
    *outlen = (size_t)l1 + (size_t)l2;
    buf[*outlen] = '\0';
    *out = buf;
    return 0;
}

/*
 * Loads PEM material from `<key>-data` (base64) or `<key>` (a file path,
 * relative to dir). The inline data wins, as in client-go.
 */
static int load_pem(struct kc_doc *d, const struct gf_ynode *map,
                    const char *key, const char *dir, unsigned char **out,
                    size_t *outlen)
{
    char datakey[64];
    snprintf(datakey, sizeof(datakey), "%s-data", key);
    const char *s;
    if (get_str(d, map, datakey, &s) != 0)
        return GF_ECONFIG;
    if (s != NULL && s[0] != '\0') {
        if (gf_kube_base64_decode(s, strlen(s), out, outlen) != 0 ||
            *outlen == 0) {
            NODE_ERR(d, get(map, datakey), "%s is not valid base64", datakey);
            return GF_ECONFIG;
        }
        return 0;
    }
    if (get_str(d, map, key, &s) != 0)
        return GF_ECONFIG;
    if (s == NULL || s[0] == '\0')
        return 0;
    char *path = resolve_path(dir, s);
    char *data;
    size_t len;
    int rc = gf_file_read(path, GF_KUBECONFIG_MAX, &data, &len);
    if (rc != 0) {
        NODE_ERR(d, get(map, key), "%s: cannot read %s: %s", key, path,
                 io_strerror(rc));
        gf_free(path);
        return GF_ECONFIG;
    }
    gf_free(path);
    *out = (unsigned char *)data;
    *outlen = len;
    return 0;
}

/* Reads a token file; 0, -errno, GF_E2BIG, -EINVAL (not a regular file)
 * or GF_EPARSE (empty, or control bytes that would corrupt a header). */
static int read_token(const char *path, char **out)
{
    char *data;
    size_t len;
    int rc = gf_file_read(path, GF_KUBECONFIG_MAX, &data, &len);
    if (rc != 0)
        return rc;
    size_t n = trim(data, len);
    if (n == 0 || has_ctl(data, n)) {
        free_secret(data, len + 1);
        return GF_EPARSE;
    }
    *out = data;
    return 0;
}

static int token_err_msg(int rc, char *out, size_t cap)
{
    if (rc == GF_EPARSE)
        snprintf(out, cap, "is empty or holds control characters");
    else
        snprintf(out, cap, "cannot be read: %s", io_strerror(rc));
    return 0;
}

static int load_cluster(struct kc_doc *d, const struct gf_ynode *cl,
                        const char *dir, struct gf_kube_creds *c)
{
    const char *server, *sni;
    if (get_str(d, cl, "server", &server) != 0 ||
        get_str(d, cl, "tls-server-name", &sni) != 0)
        return GF_ECONFIG;
    if (server == NULL || server[0] == '\0') {
        NODE_ERR(d, cl, "cluster \"%s\" has no server", c->cluster);
        return GF_ECONFIG;
    }
    if ((strncmp(server, "https://", 8) != 0 &&
         strncmp(server, "http://", 7) != 0) ||
        has_ctl(server, strlen(server)) || strchr(server, ' ') != NULL) {
        NODE_ERR(d, get(cl, "server"),
                 "server must be an http:// or https:// URL");
        return GF_ECONFIG;
    }
    size_t n = strlen(server);
    while (n > 0 && server[n - 1] == '/')
        n--;
    c->server = gf_strndup(server, n);
    if (sni != NULL && sni[0] != '\0')
        c->tls_server_name = gf_strdup(sni);
    if (get_bool(d, cl, "insecure-skip-tls-verify",
                 &c->insecure_skip_tls_verify) != 0)
        return GF_ECONFIG;
    return load_pem(d, cl, "certificate-authority", dir, &c->ca_pem,
                    &c->ca_pem_len);
}

/* Credential kinds we cannot honour are refused rather than ignored: a
 * silently unauthenticated client would fail later and less clearly. */
static int refuse_unsupported(struct kc_doc *d, const struct gf_ynode *us)
{
    static const char *const keys[] = {"exec", "auth-provider", "username",
                                       "password", "as"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const struct gf_ynode *v = get(us, keys[i]);
        if (v != NULL) {
            NODE_ERR(d, v, "user field \"%s\" is not supported", keys[i]);
            return GF_ECONFIG;
        }
    }
    return 0;
}

static int load_user(struct kc_doc *d, const struct gf_ynode *us,
                     const char *dir, struct gf_kube_creds *c)
{
    if (us == NULL)
        return 0;
    if (refuse_unsupported(d, us) != 0)
        return GF_ECONFIG;
    int rc = load_pem(d, us, "client-certificate", dir, &c->cert_pem,
                      &c->cert_pem_len);
    if (rc == 0)
        rc = load_pem(d, us, "client-key", dir, &c->key_pem, &c->key_pem_len);
    if (rc != 0)
        return rc;
    if ((c->cert_pem == NULL) != (c->key_pem == NULL)) {
        NODE_ERR(d, us, "user \"%s\" has a client %s without a client %s",
                 c->user, c->cert_pem ? "certificate" : "key",
                 c->cert_pem ? "key" : "certificate");
        return GF_ECONFIG;
    }
    const char *tok, *tfile;
    if (get_str(d, us, "token", &tok) != 0 ||
        get_str(d, us, "tokenFile", &tfile) != 0)
        return GF_ECONFIG;
    if (tok != NULL && tok[0] != '\0') {
        if (has_ctl(tok, strlen(tok))) {
            /* Never echo the token itself. */
            NODE_ERR(d, get(us, "token"), "token holds control characters");
            return GF_ECONFIG;
        }
        c->token = gf_strdup(tok);
    }
    if (tfile != NULL && tfile[0] != '\0') {
        c->token_file = resolve_path(dir, tfile);
        /* An inline token wins (client-go); the file is still kept so a
         * 401 can pick up a rotated token. */
        if (c->token == NULL) {
            rc = read_token(c->token_file, &c->token);
            if (rc != 0) {
                char why[128];
                token_err_msg(rc, why, sizeof(why));
                NODE_ERR(d, get(us, "tokenFile"), "tokenFile %s %s",
                         c->token_file, why);
                return GF_ECONFIG;
            }
        }
    }
    return 0;
}

/* Picks the context: the caller's, else current-context. */
static int pick_context(struct kc_doc *d, const struct gf_ynode *root,
                        const char *want, const char **name,
                        const struct gf_ynode **where)
{
    *where = root;
    if (want != NULL && want[0] != '\0') {
        /* The name came from the caller: the list it is missing from is
         * the most useful place to point at. */
        const struct gf_ynode *list = get(root, "contexts");
        if (list != NULL)
            *where = list;
        *name = want;
        return 0;
    }
    if (get_str(d, root, "current-context", name) != 0)
        return GF_ECONFIG;
    if (*name == NULL || (*name)[0] == '\0') {
        NODE_ERR(d, root, "no context given and no current-context set");
        return GF_ECONFIG;
    }
    *where = get(root, "current-context");
    return 0;
}

static int resolve(struct kc_doc *d, const struct gf_ynode *root,
                   const char *dir, const char *want, struct gf_kube_creds *c)
{
    if (want_kind(d, root, GF_Y_MAP, "a kubeconfig") != 0)
        return GF_ECONFIG;
    const char *ctxname;
    const struct gf_ynode *where, *entry, *ctx, *cl, *us;
    int rc = pick_context(d, root, want, &ctxname, &where);
    if (rc != 0)
        return rc;
    rc = find_named(d, root, "contexts", "context", ctxname, &entry, &ctx);
    if (rc == -ENOENT) {
        NODE_ERR(d, where, "context \"%s\" not found", ctxname);
        return GF_ECONFIG;
    }
    if (rc != 0)
        return rc;
    c->context = gf_strdup(ctxname);
    const char *cln, *usn, *ns;
    if (get_str(d, ctx, "cluster", &cln) != 0 ||
        get_str(d, ctx, "user", &usn) != 0 ||
        get_str(d, ctx, "namespace", &ns) != 0)
        return GF_ECONFIG;
    if (cln == NULL || cln[0] == '\0') {
        NODE_ERR(d, ctx ? ctx : entry, "context \"%s\" names no cluster",
                 ctxname);
        return GF_ECONFIG;
    }
    c->cluster = gf_strdup(cln);
    if (ns != NULL && ns[0] != '\0')
        c->namespace = gf_strdup(ns);
    rc = find_named(d, root, "clusters", "cluster", cln, &entry, &cl);
    if (rc == -ENOENT) {
        NODE_ERR(d, get(ctx, "cluster"), "cluster \"%s\" not found", cln);
        return GF_ECONFIG;
    }
    if (rc != 0)
        return rc;
    if (cl == NULL) {
        NODE_ERR(d, entry, "cluster \"%s\" has no server", cln);
        return GF_ECONFIG;
    }
    rc = load_cluster(d, cl, dir, c);
    if (rc != 0 || usn == NULL || usn[0] == '\0')
        return rc; /* no user: anonymous access */
    c->user = gf_strdup(usn);
    rc = find_named(d, root, "users", "user", usn, &entry, &us);
    if (rc == -ENOENT) {
        NODE_ERR(d, get(ctx, "user"), "user \"%s\" not found", usn);
        return GF_ECONFIG;
    }
    if (rc != 0)
        return rc;
    return load_user(d, us, dir, c);
}

/* ------------------------------------------------------------------ */
/* public                                                              */

void gf_kube_creds_free(struct gf_kube_creds *c)
{
    if (c == NULL)
        return;
    gf_free(c->context);
    gf_free(c->cluster);
    gf_free(c->user);
    gf_free(c->server);
    gf_free(c->tls_server_name);
    gf_free(c->namespace);
    gf_free(c->ca_pem);
    gf_free(c->cert_pem);
    free_secret(c->key_pem, c->key_pem_len);
    if (c->token != NULL)
        free_secret(c->token, strlen(c->token));
    gf_free(c->token_file);
    gf_free(c);
}

int gf_kubeconfig_parse(const char *name, const char *dir, const char *data,
                        size_t len, const char *context,
                        struct gf_kube_creds **out,
                        struct gf_kubeconfig_error *err)
{
    *out = NULL;
    if (name == NULL)
        name = "kubeconfig";
    if (err != NULL)
        memset(err, 0, sizeof(*err));
    if (len > GF_KUBECONFIG_MAX) {
        set_err(err, name, 0, 0, "kubeconfig larger than 1 MiB");
        return GF_E2BIG;
    }
    struct kc_doc d = {.name = name, .err = err};
    struct gf_ynode *root = NULL;
    int rc = doc_parse(&d, data, len, &root);
    struct gf_kube_creds *c = NULL;
    if (rc == 0) {
        c = gf_calloc(1, sizeof(*c));
        rc = resolve(&d, root, dir, context, c);
    }
    gf_ynode_free(root);
    if (rc != 0) {
        gf_kube_creds_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

/* The kubeconfig path to use when the caller gives none. Owned. */
static char *default_path(void)
{
    const char *kc = getenv("KUBECONFIG");
    if (kc != NULL && kc[0] != '\0') {
        const char *colon = strchr(kc, ':');
        return colon ? gf_strndup(kc, (size_t)(colon - kc)) : gf_strdup(kc);
    }
    const char *home = getenv("HOME");
    struct gf_buf b = GF_BUF_INIT(SIZE_MAX / 2);
    (void)gf_buf_printf(&b, "%s/.kube/config", home ? home : "");
    return gf_buf_steal(&b);
}

int gf_kubeconfig_load(const char *path, const char *context,
                       struct gf_kube_creds **out,
                       struct gf_kubeconfig_error *err)
{
    *out = NULL;
    if (err != NULL)
        memset(err, 0, sizeof(*err));
    char *p = path ? gf_strdup(path) : default_path();
    char *data;
    size_t len;
    int rc = gf_file_read(p, GF_KUBECONFIG_MAX, &data, &len);
    if (rc != 0) {
        set_err(err, p, 0, 0, "%s", io_strerror(rc));
        gf_free(p);
        return rc;
    }
    char *slash = strrchr(p, '/');
    char *dir = slash ? gf_strndup(p, (size_t)(slash - p)) : NULL;
    if (dir != NULL && dir[0] == '\0') {
        gf_free(dir);
        dir = gf_strdup("/");
    }
    rc = gf_kubeconfig_parse(p, dir, data, len, context, out, err);
    free_secret(data, len + 1);
    gf_free(dir);
    gf_free(p);
    return rc;
}

int gf_kubeconfig_in_cluster(const char *sa_dir, struct gf_kube_creds **out,
                             struct gf_kubeconfig_error *err)
{
    *out = NULL;
    if (err != NULL)
        memset(err, 0, sizeof(*err));
    if (sa_dir == NULL)
        sa_dir = SA_DIR_DEFAULT;
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    const char *port = getenv("KUBERNETES_SERVICE_PORT");
    if (host == NULL || host[0] == '\0' || port == NULL || port[0] == '\0') {
        set_err(err, "in-cluster", 0, 0,
                "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are "
                "not set: not running in a pod");
        return GF_ECONFIG;
    }
    if (has_ctl(host, strlen(host)) || has_ctl(port, strlen(port)) ||
        strpbrk(host, "/ ") != NULL || strpbrk(port, "/ ") != NULL) {
        set_err(err, "in-cluster", 0, 0,
                "KUBERNETES_SERVICE_HOST/PORT are malformed");
        return GF_ECONFIG;
    }
    struct gf_kube_creds *c = gf_calloc(1, sizeof(*c));
    c->context = gf_strdup("in-cluster");
    c->cluster = gf_strdup("in-cluster");
    c->user = gf_strdup("in-cluster");
    struct gf_buf b = GF_BUF_INIT(4096);
    /* An IPv6 service address needs brackets in a URL. */
    (void)gf_buf_printf(&b,
                        strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s",
                        host, port);
    c->server = gf_buf_steal(&b);
    char *path = resolve_path(sa_dir, "token");
    c->token_file = path;
    int rc = read_token(path, &c->token);
    if (rc != 0) {
        char why[128];
        token_err_msg(rc, why, sizeof(why));
        set_err(err, path, 0, 0, "service-account token %s", why);
        goto fail;
    }
    path = resolve_path(sa_dir, "ca.crt");
    char *ca;
    size_t calen;
    rc = gf_file_read(path, GF_KUBECONFIG_MAX, &ca, &calen);
    if (rc != 0) {
        set_err(err, path, 0, 0, "service-account CA: %s", io_strerror(rc));
        gf_free(path);
        goto fail;
    }
    gf_free(path);
    c->ca_pem = (unsigned char *)ca;
    c->ca_pem_len = calen;
    /* The namespace file is optional: without it callers use "default". */
    path = resolve_path(sa_dir, "namespace");
    char *ns;
    size_t nslen;
    if (gf_file_read(path, 256, &ns, &nslen) == 0) {
        nslen = trim(ns, nslen);
        if (nslen > 0 && !has_ctl(ns, nslen))
            c->namespace = ns;
        else
            gf_free(ns);
    }
    gf_free(path);
    *out = c;
    return 0;
fail:
    gf_kube_creds_free(c);
    return rc == -ENOENT || rc == -EACCES ? rc : GF_ECONFIG;
}

int gf_kube_creds_reload_token(struct gf_kube_creds *c)
{
    if (c == NULL || c->token_file == NULL)
        return -EINVAL;
    char *tok;
    int rc = read_token(c->token_file, &tok);
    if (rc != 0)
        return rc;
    if (c->token != NULL && strcmp(c->token, tok) == 0) {
        free_secret(tok, strlen(tok));
        return 1;
    }
    if (c->token != NULL)
        free_secret(c->token, strlen(c->token));
    c->token = tok;
    return 0;
}

static unsigned char *dup_bytes(const unsigned char *p, size_t n)
{
    if (p == NULL)
        return NULL;
    unsigned char *q = gf_malloc(n + 1);
    memcpy(q, p, n);
    q[n] = '\0';
    return q;
}

struct gf_kube_creds *gf_kube_creds_dup(const struct gf_kube_creds *c)
{
    if (c == NULL)
        return NULL;
    struct gf_kube_creds *n = gf_calloc(1, sizeof(*n));
    n->context = gf_strdup(c->context);
    n->cluster = gf_strdup(c->cluster);
    n->user = gf_strdup(c->user);
    n->server = gf_strdup(c->server);
    n->tls_server_name = gf_strdup(c->tls_server_name);
    n->namespace = gf_strdup(c->namespace);
    n->ca_pem = dup_bytes(c->ca_pem, c->ca_pem_len);
    n->ca_pem_len = c->ca_pem_len;
    n->cert_pem = dup_bytes(c->cert_pem, c->cert_pem_len);
    n->cert_pem_len = c->cert_pem_len;
    n->key_pem = dup_bytes(c->key_pem, c->key_pem_len);
    n->key_pem_len = c->key_pem_len;
    n->token = gf_strdup(c->token);
    n->token_file = gf_strdup(c->token_file);
    n->insecure_skip_tls_verify = c->insecure_skip_tls_verify;
    return n;
}
