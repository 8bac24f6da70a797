/*
 * Fuzz target for the kubeconfig parser: arbitrary bytes as a kubeconfig,
 * resolved with the current context and with a fixed one. Whatever parses
 * must satisfy the invariants the HTTP layer relies on (an http(s) server
 * URL without control bytes or trailing slash, a token fit for a header),
 * and copying and freeing must not leak.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "kubeclient/kubeconfig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A printable string: what may go into a URL or an HTTP header. */
static void check_printable(const char *s, bool allow_empty)
{
    GF_BUG_ON(!allow_empty && s[0] == '\0');
    for (const char *p = s; *p; p++)
        GF_BUG_ON((unsigned char)*p < 0x20 || *p == 0x7f);
}

static void check(const struct gf_kube_creds *c)
{
    GF_BUG_ON(c->server == NULL || c->context == NULL || c->cluster == NULL);
    GF_BUG_ON(strncmp(c->server, "http", 4) != 0);
    check_printable(c->server, false);
    GF_BUG_ON(c->server[strlen(c->server) - 1] == '/');
    if (c->token != NULL)
        check_printable(c->token, false);
    GF_BUG_ON((c->cert_pem == NULL) != (c->key_pem == NULL));
}

/* memmem is a GNU extension; the build is strict POSIX. */
static bool contains(const uint8_t *p, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(p + i, needle, k) == 0)
            return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* File references are resolved against a directory that does not
     * exist; absolute ones into the host's special trees are skipped so
     * a run never depends on (or reads from) the machine it runs on. */
    static const char *const host[] = {"/dev", "/proc", "/sys", "/etc"};
    for (size_t i = 0; i < sizeof(host) / sizeof(host[0]); i++)
        if (contains(data, size, host[i]))
            return 0;
    static const char *const contexts[] = {NULL, "x"};
    for (size_t i = 0; i < 2; i++) {
        struct gf_kube_creds *c = NULL;
        struct gf_kubeconfig_error err;
        int rc = gf_kubeconfig_parse("fuzz", "/nonexistent-gf-fuzz",
                                     (const char *)data, size, contexts[i], &c,
                                     &err);
        if (rc == 0) {
            check(c);
            struct gf_kube_creds *d = gf_kube_creds_dup(c);
            gf_kube_creds_free(c);
            check(d);
            gf_kube_creds_free(d);
        } else {
            GF_BUG_ON(c != NULL);
            char line[600];
            gf_kubeconfig_error_format(&err, line, sizeof(line));
        }
    }
    return 0;
}
