/*
 * err: names for errno values and gpufed's own error codes.
 */
#include "common/err.h"

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

void gf__bug(const char *file, int line, const char *cond)
{
    GF_LOG(NULL, GF_LOG_ERROR, "bug: invariant broken",
           "file=%s line=%d cond=%s", file, line, cond);
    abort();
}
