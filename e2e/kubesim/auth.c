/*
 * auth: a token table. A cluster has a handful of identities, so a linear
 * scan with a constant-time compare is both the fastest and the safest
 * lookup (no timing hints about which prefix of a token was right).
 */
#include "e2e/kubesim/auth.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/alloc.h"
#include "common/err.h"

/* A token longer than this is refused before comparing anything. */
#define GF_KS_TOKEN_MAX 512

struct gf_ks_auth {
    struct gf_ks_principal **ids; /* owned */
    size_t n, cap;
};

struct gf_ks_auth *gf_ks_auth_new(void)
{
    return gf_calloc(1, sizeof(struct gf_ks_auth));
}

static void principal_free(struct gf_ks_principal *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; p->groups != NULL && p->groups[i] != NULL; i++)
        gf_free(p->groups[i]);
    gf_free(p->groups);
    gf_free(p->identity);
    gf_free(p->user);
    if (p->token != NULL)
        OPENSSL_cleanse(p->token, strlen(p->token));
    gf_free(p->token);
    gf_free(p);
}

void gf_ks_auth_free(struct gf_ks_auth *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->n; i++)
        principal_free(a->ids[i]);
    gf_free(a->ids);
    gf_free(a);
}

static bool token_ok(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > GF_KS_TOKEN_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

/* A random 256-bit token as 64 hex digits (returned-owned). */
static char *random_token(void)
{
    unsigned char raw[32];
    static const char hex[] = "0123456789abcdef";
    /* The OS generator does not fail once the process is up. */
    GF_BUG_ON(RAND_bytes(raw, sizeof(raw)) != 1);
    char *t = gf_malloc(2 * sizeof(raw) + 1);
    for (size_t i = 0; i < sizeof(raw); i++) {
        t[2 * i] = hex[raw[i] >> 4];
        t[2 * i + 1] = hex[raw[i] & 15];
    }
    t[2 * sizeof(raw)] = '\0';
    OPENSSL_cleanse(raw, sizeof(raw));
    return t;
}

static bool has_group(const char *const *groups, const char *g)
{
    for (size_t i = 0; groups != NULL && groups[i] != NULL; i++)
        if (strcmp(groups[i], g) == 0)
            return true;
    return false;
}

static char **copy_groups(const char *const *groups)
{
    size_t n = 0;
    while (groups != NULL && groups[n] != NULL)
        n++;
    char **out = gf_calloc(n + 2, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        out[i] = gf_strdup(groups[i]);
    if (!has_group(groups, "system:authenticated"))
        out[n] = gf_strdup("system:authenticated");
    return out;
}

int gf_ks_auth_add(struct gf_ks_auth *a, const char *identity, const char *user,
                   const char *const *groups, const char *token)
{
    if (identity == NULL || identity[0] == '\0' || user == NULL ||
        user[0] == '\0' || (token != NULL && !token_ok(token)))
        return -EINVAL;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->ids[i]->identity, identity) == 0 ||
            (token != NULL && strcmp(a->ids[i]->token, token) == 0))
            return -EEXIST;
    if (a->n == a->cap) {
        a->cap = a->cap != 0 ? 2 * a->cap : 4;
        a->ids = gf_realloc(a->ids, a->cap * sizeof(*a->ids));
    }
    struct gf_ks_principal *p = gf_calloc(1, sizeof(*p));
    p->identity = gf_strdup(identity);
    p->user = gf_strdup(user);
    p->groups = copy_groups(groups);
    p->token = token != NULL ? gf_strdup(token) : random_token();
    a->ids[a->n++] = p;
    return 0;
}

int gf_ks_auth_add_defaults(struct gf_ks_auth *a)
{
    static const char *const masters[] = {"system:masters", NULL};
    /* The groups the token authenticator gives every service account. */
    static const char *const sa[] = {
        "system:serviceaccounts", "system:serviceaccounts:gpufed-system", NULL};
    int rc = gf_ks_auth_add(a, "admin", "kubesim-admin", masters, NULL);
    if (rc == 0)
        rc = gf_ks_auth_add(a, "gpufed-hub",
                            "system:serviceaccount:gpufed-system:gpufed-hub",
                            sa, NULL);
    if (rc == 0)
        rc = gf_ks_auth_add(a, "member-agent",
                            "system:serviceaccount:gpufed-system:gpufed-agent",
                            sa, NULL);
    return rc;
}

const struct gf_ks_principal *gf_ks_auth_identity(const struct gf_ks_auth *a,
                                                  const char *identity)
{
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->ids[i]->identity, identity) == 0)
            return a->ids[i];
    return NULL;
}

void gf_ks_auth_foreach(const struct gf_ks_auth *a,
                        void (*fn)(void *data, const struct gf_ks_principal *p),
                        void *data)
{
    for (size_t i = 0; i < a->n; i++)
        fn(data, a->ids[i]);
}

static int unauthorized(struct gf_ks_status *err)
{
    return gf_ks_status_set(err, 401, "Unauthorized", "Unauthorized");
}

int gf_ks_auth_check(const struct gf_ks_auth *a, const char *header,
                     const struct gf_ks_principal **out,
                     struct gf_ks_status *err)
{
    if (header == NULL || strncasecmp(header, "Bearer ", 7) != 0)
        return unauthorized(err);
    const char *tok = header + 7;
    while (*tok == ' ')
        tok++;
    size_t n = strlen(tok);
    while (n > 0 && (tok[n - 1] == ' ' || tok[n - 1] == '\t'))
        n--;
    if (n == 0 || n > GF_KS_TOKEN_MAX)
        return unauthorized(err);
    /* Scan every entry so the time taken does not say which one matched. */
    const struct gf_ks_principal *hit = NULL;
    for (size_t i = 0; i < a->n; i++) {
        const char *t = a->ids[i]->token;
        if (strlen(t) == n && CRYPTO_memcmp(t, tok, n) == 0)
            hit = a->ids[i];
    }
    if (hit == NULL)
        return unauthorized(err);
    *out = hit;
    return 0;
}
