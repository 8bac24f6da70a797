/*
 * err: names for errno values and gpufed's own error codes.
 */
#include "common/err.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

static const char *const names[] = {
    [GF_E2BIG - GF_EBASE] = "input larger than its limit",
    [GF_EPARSE - GF_EBASE] = "malformed input",
    [GF_EAPI - GF_EBASE] = "API server returned a failure",
    [GF_EGONE - GF_EBASE] = "resource version expired (gone)",
    [GF_ECONFLICT - GF_EBASE] = "conflict",
    [GF_ENOTFOUND - GF_EBASE] = "not found",
    [GF_EEXIST - GF_EBASE] = "already exists",
    [GF_EUNAUTH - GF_EBASE] = "unauthorized",
    [GF_EFORBIDDEN - GF_EBASE] = "forbidden",
    [GF_EINVALID - GF_EBASE] = "invalid request",
    [GF_ETHROTTLED - GF_EBASE] = "too many requests",
    [GF_ESERVER - GF_EBASE] = "server error",
    [GF_ETRANSPORT - GF_EBASE] = "transport error",
    [GF_ETLS - GF_EBASE] = "TLS error",
    [GF_ETIMEDOUT - GF_EBASE] = "timed out",
    [GF_ECANCELED - GF_EBASE] = "canceled",
    [GF_ECONFIG - GF_EBASE] = "invalid configuration",
    [GF_ESTALE - GF_EBASE] = "data not known to be current",
};

const char *gf_strerror(int err)
{
    if (err == 0)
        return "success";
    if (err > GF_EBASE && err < GF_ELAST)
        return names[err - GF_EBASE];
    if (err < 0 && -err < 4096)
        /* strerror's buffer is static; gpufed calls this on the loop thread
         * only, so the reentrancy hazard does not arise. */
        return strerror(-err);
    return "unknown error";
}

static bool reason_is(const char *reason, const char *want)
{
    return reason != NULL && strcmp(reason, want) == 0;
}

int gf_err_from_http(long code, const char *reason)
{
    bool no_code = code == 0 || (code >= 200 && code < 300);
    if (no_code && (reason_is(reason, "Expired") || reason_is(reason, "Gone")))
        return GF_EGONE;
    if (code >= 200 && code < 300)
        return 0;
    switch (code) {
    case 400:
    case 422:
        return GF_EINVALID;
    case 401:
        return GF_EUNAUTH;
    case 403:
        return GF_EFORBIDDEN;
    case 404:
        return GF_ENOTFOUND;
    case 405:
        /* Not an authorization failure: no role change makes the verb
         * exist, so nothing but the request can fix it. */
        return -EOPNOTSUPP;
    case 408:
        /* The server gave up waiting for the request: worth a retry. */
        return GF_ETIMEDOUT;
    case 409:
        /* Both are 409; only the reason tells a lost race (re-read and
         * retry) from a name that is taken (adopt or give up). */
        return reason_is(reason, "AlreadyExists") ? GF_EEXIST : GF_ECONFLICT;
    case 410:
        return GF_EGONE;
    case 429:
        return GF_ETHROTTLED;
    default:
        break;
    }
    if (code >= 500 && code < 600)
        return GF_ESERVER;
    return GF_EAPI;
}

void gf__bug(const char *file, int line, const char *cond)
{
    GF_LOG(NULL, GF_LOG_ERROR, "bug: invariant broken",
           "file=%s line=%d cond=%s", file, line, cond);
    abort();
}
