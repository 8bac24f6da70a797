/*
 * err: error codes shared by every module.
 *
 * Functions return 0 on success and a negative value on failure: either
 * -errno (e.g. -ENOMEM, -EINVAL) or one of the project codes below, which
 * live in a reserved range far from errno values so the two never clash.
 * gf_strerror() names both kinds.
 */
#ifndef GF_ERR_H
#define GF_ERR_H

#include <errno.h>

enum gf_err {
    GF_EBASE = -20000,
    GF_E2BIG,      /* input larger than its hard cap */
    GF_EPARSE,     /* malformed input (JSON, YAML, HTTP framing) */
    GF_EAPI,       /* API server answered with a failure Status */
    GF_EGONE,      /* 410 Gone / Expired: relist */
    GF_ECONFLICT,  /* 409 Conflict: requeue */
    GF_ENOTFOUND,  /* 404 Not Found */
    GF_EEXIST,     /* 409 AlreadyExists */
    GF_EUNAUTH,    /* 401 Unauthorized */
    GF_EFORBIDDEN, /* 403 Forbidden */
    GF_EINVALID,   /* 422 Invalid / 400 BadRequest */
    GF_ETHROTTLED, /* 429 Too Many Requests */
    GF_ESERVER,    /* 5xx */
    GF_ETRANSPORT, /* connection, DNS, reset, HTTP/2 stream error */
    GF_ETLS,       /* TLS handshake or peer verification failed */
    GF_ETIMEDOUT,  /* request or idle timeout */
    GF_ECANCELED,  /* the operation was canceled by its owner */
    GF_ECONFIG,    /* invalid configuration (kubeconfig, policy) */
    GF_ESTALE,     /* data is not known to be current (unknown != zero) */
    GF_ELAST
};

/* Returns a static string; never NULL. */
const char *gf_strerror(int err);

/*
 * The error for an HTTP status from a Kubernetes API server, the one
 * mapping that kubeclient (decoding answers) and kubesim (writing them)
 * share, so both sides agree on what a code means:
 *   2xx 0 · 400, 422 GF_EINVALID · 401 GF_EUNAUTH · 403 GF_EFORBIDDEN ·
 *   404 GF_ENOTFOUND · 405 -EOPNOTSUPP (the resource does not serve the
 *   verb) · 408 GF_ETIMEDOUT · 409 GF_EEXIST when reason is
 *   "AlreadyExists", else GF_ECONFLICT · 410 GF_EGONE · 429 GF_ETHROTTLED ·
 *   5xx GF_ESERVER · anything else GF_EAPI.
 * reason (Status.reason, may be NULL) decides only where the code cannot:
 * 409, and "Expired"/"Gone" with no code or a 2xx code (a watch ERROR
 * event without one) is GF_EGONE. A 429 or 5xx keeps its meaning
 * whatever its reason says.
 */
int gf_err_from_http(long code, const char *reason);

/*
 * Assertion for programmer errors only (never for input). Stays on in
 * release builds: continuing with a broken invariant is worse than a
 * restart that rebuilds state from observation.
 */
void gf__bug(const char *file, int line, const char *cond);
#define GF_BUG_ON(cond)                                                        \
    do {                                                                       \
        if (cond)                                                              \
            gf__bug(__FILE__, __LINE__, #cond);                                \
    } while (0)

#endif
