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

static void check(const struct gf_kube_creds *c)
{
    GF_BUG_ON(c->server == NULL || c->context == NULL || c->cluster == NULL);
    GF_BUG_ON(strncmp(c->server, "http", 4) != 0);
    size_t n = strlen(c->server);
    GF_BUG_ON(n == 0 || c->server[n - 1] == '/');
    for (size_t i = 0; i < n; i++)
        GF_BUG_ON((unsigned char)c->server[i] < 0x20);
    if (c->token != NULL) {
        GF_BUG_ON(c->token[0] == '\0');
        for (const char *p = c->token; *p; p++)
            GF_BUG_ON((unsigned char)*p < 0x20 || *p == 0x7f);
    }
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
