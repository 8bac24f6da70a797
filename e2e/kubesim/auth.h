/*
 * auth: bearer-token authentication of one simulated cluster.
 *
 * The API server's token authenticator maps an opaque token to a user
 * name and groups; so does this one. Each cluster gets its own table of
 * identities (admin, the gpufed hub, the member agent), each with a
 * random token made at start, so a kubeconfig written for one cluster
 * does not open another. Every authenticated user is also in
 * "system:authenticated", as on a real server.
 *
 * A request without a valid token gets 401 with the Status the API server
 * writes ({"reason":"Unauthorized","message":"Unauthorized","code":401}).
 *
 * A struct gf_ks_auth owns its identities. Lookups return
 * returned-borrowed principals valid until the table is freed. Loop
 * thread only.
 */
#ifndef GF_KS_AUTH_H
#define GF_KS_AUTH_H

#include <stddef.h>

#include "e2e/kubesim/status.h"

/* Who a token stands for. */
struct gf_ks_principal {
    char *identity; /* "admin", "gpufed-hub", "member-agent" */
    char *user;     /* the user name RBAC sees */
    char **groups;  /* NULL-terminated; includes system:authenticated */
    char *token;
};

struct gf_ks_auth;

/* Returned-owned; free with gf_ks_auth_free. Never NULL. */
struct gf_ks_auth *gf_ks_auth_new(void);
/* Accepts NULL. */
void gf_ks_auth_free(struct gf_ks_auth *a);

/*
 * Adds an identity. groups is NULL-terminated (may be NULL); token NULL
 * makes a random 256-bit token (hex). Everything is copied. Returns 0,
 * -EEXIST when the identity or token is already known, -EINVAL for an
 * empty name or a token with characters outside [A-Za-z0-9._-].
 */
int gf_ks_auth_add(struct gf_ks_auth *a, const char *identity, const char *user,
                   const char *const *groups, const char *token);

/*
 * Adds kubesim's three standard identities with random tokens:
 *   admin        user "kubesim-admin", group system:masters;
 *   gpufed-hub   "system:serviceaccount:gpufed-system:gpufed-hub";
 *   member-agent "system:serviceaccount:gpufed-system:gpufed-agent";
 * (service accounts carry the groups system:serviceaccounts and
 * system:serviceaccounts:gpufed-system, as real ones do). Returns 0 or
 * the first error of gf_ks_auth_add.
 */
int gf_ks_auth_add_defaults(struct gf_ks_auth *a);

/* Returned-borrowed principal of an identity, or NULL. */
const struct gf_ks_principal *gf_ks_auth_identity(const struct gf_ks_auth *a,
                                                  const char *identity);

/* Calls fn for every identity in the order they were added. */
void gf_ks_auth_foreach(const struct gf_ks_auth *a,
                        void (*fn)(void *data, const struct gf_ks_principal *p),
                        void *data);

/*
 * Authenticates the value of an Authorization header ("Bearer TOKEN";
 * the scheme is case-insensitive). header may be NULL. Returns 0 with
 * *out (returned-borrowed), or GF_EUNAUTH with err filled with the 401
 * Status (err may be NULL).
 */
int gf_ks_auth_check(const struct gf_ks_auth *a, const char *header,
                     const struct gf_ks_principal **out,
                     struct gf_ks_status *err);

#endif
