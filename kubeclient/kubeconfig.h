/*
 * kubeconfig: how to reach one API server and who to be there.
 *
 * Loads a kubeconfig file (clusters, users, contexts, current-context) with
 * libyaml and resolves one context into a struct gf_kube_creds: the server
 * URL, the TLS trust and client identity as PEM bytes, and the bearer token
 * or token file. In-cluster service-account credentials resolve to the same
 * struct. Errors name the file, line and column.
 *
 * TLS is verified by default; insecure_skip_tls_verify is set only when the
 * kubeconfig itself says so for that cluster.
 *
 * Files are read synchronously: kubeconfigs and token files are small
 * (capped at GF_KUBECONFIG_MAX bytes) and are read at start-up or on a 401.
 */
#ifndef GF_KUBECONFIG_H
#define GF_KUBECONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define GF_KUBECONFIG_MAX (1u << 20) /* 1 MiB: larger files are refused */

/* Resolved credentials for one context. All strings owned by the struct. */
struct gf_kube_creds {
    char *context;         /* context name ("in-cluster" for SA creds) */
    char *cluster;         /* cluster entry name */
    char *user;            /* user entry name */
    char *server;          /* "https://host:port" without trailing slash */
    char *tls_server_name; /* optional SNI / verification name */
    char *namespace;       /* default namespace of the context, or NULL */
    unsigned char *ca_pem; /* NULL: use the system trust store */
    size_t ca_pem_len;
    unsigned char *cert_pem; /* client certificate, or NULL */
    size_t cert_pem_len;
    unsigned char *key_pem; /* client key, or NULL; never logged */
    size_t key_pem_len;
    char *token;      /* bearer token, or NULL; never logged */
    char *token_file; /* path re-read on 401, or NULL */
    bool insecure_skip_tls_verify;
};

/* Where a kubeconfig problem is: file, 1-based line and column. */
struct gf_kubeconfig_error {
    char file[256];
    unsigned line, column;
    char msg[256];
};

/*
 * Loads `path` (NULL: $KUBECONFIG's first entry, else ~/.kube/config) and
 * resolves `context` (NULL: current-context). Relative file references
 * inside the kubeconfig resolve against the kubeconfig's directory.
 * On success *out is returned-owned (gf_kube_creds_free). On failure
 * returns GF_ECONFIG (or -errno for I/O), fills *err if non-NULL and
 * leaves *out NULL.
 */
int gf_kubeconfig_load(const char *path, const char *context,
                       struct gf_kube_creds **out,
                       struct gf_kubeconfig_error *err);

/* Same from a buffer; `name` is used in error messages and `dir` resolves
 * relative paths (may be NULL: the current directory). */
int gf_kubeconfig_parse(const char *name, const char *dir, const char *data,
                        size_t len, const char *context,
                        struct gf_kube_creds **out,
                        struct gf_kubeconfig_error *err);

/*
 * In-cluster credentials from the service-account mount (`sa_dir`, NULL:
 * /var/run/secrets/kubernetes.io/serviceaccount) and the
 * KUBERNETES_SERVICE_HOST/PORT environment. The token is a token_file so
 * that rotation is picked up on 401.
 */
int gf_kubeconfig_in_cluster(const char *sa_dir, struct gf_kube_creds **out,
                             struct gf_kubeconfig_error *err);

/* Re-reads token_file into token. 0 if changed, 1 if unchanged, <0 error. */
int gf_kube_creds_reload_token(struct gf_kube_creds *c);

/* Returned-owned deep copy. */
struct gf_kube_creds *gf_kube_creds_dup(const struct gf_kube_creds *c);
void gf_kube_creds_free(struct gf_kube_creds *c);

/*
 * Decodes standard base64 (newlines and spaces allowed; Secret data and
 * kubeconfig *-data fields) with OpenSSL's EVP decoder. 0, -EINVAL or
 * -ENOMEM; *out is returned-owned (gf_free), NUL-terminated after
 * *outlen bytes; wipe it first when it held a secret.
 */
int gf_kube_base64_decode(const char *in, size_t n, unsigned char **out,
                          size_t *outlen);

/* Formats "file:line:col: msg" into out. */
void gf_kubeconfig_error_format(const struct gf_kubeconfig_error *e, char *out,
                                size_t cap);

#endif
