/*
 * Fuzz target for the Kubernetes Status decoder: every failure answer an
 * API server (or something in front of it) can send.
 *
 * Input: two bytes pick the HTTP status code and one the Retry-After
 * value; the rest is the body. Whatever the body, the decoded status must
 * be usable by the callers that act on it: strings NUL-terminated inside
 * their buffers, a negative error for every non-2xx code, the stored
 * class equal to a fresh classification, and a class that matches the
 * code where the code alone decides (the reflector relists on 410 and
 * backs off on 429/5xx whatever the body says).
 */
#include <stdint.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "kubeclient/request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_terminated(const char *s, size_t cap)
{
    GF_BUG_ON(memchr(s, '\0', cap) == NULL);
}

static void check_strings(const struct gf_api_status *st)
{
    check_terminated(st->reason, sizeof(st->reason));
    check_terminated(st->message, sizeof(st->message));
    check_terminated(st->kind, sizeof(st->kind));
    check_terminated(st->name, sizeof(st->name));
}

/* What the code alone decides, whatever the body says. */
static void check_class(const struct gf_api_status *st, long code)
{
    if (code >= 200 && code < 300) {
        /* Success, unless the body is a Status that says Failure (or
         * Expired, as a watch ERROR event would). */
        GF_BUG_ON(st->err != 0 && st->err != GF_EAPI && st->err != GF_EGONE);
        return;
    }
    GF_BUG_ON(st->err >= 0 || st->cls == GF_API_OK);
    GF_BUG_ON(code == 410 && st->cls != GF_API_RELIST);
    GF_BUG_ON((code == 429 || (code >= 500 && code < 600)) &&
              st->cls != GF_API_BACKOFF);
}

static void check(const struct gf_api_status *st, long code, int rc)
{
    GF_BUG_ON(rc != st->err);
    check_strings(st);
    GF_BUG_ON(gf_api_status_classify(st) != st->cls);
    GF_BUG_ON(gf_api_class_name(st->cls) == NULL);
    check_class(st, code);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    /* Codes 100..699, so that odd ones (1xx, 3xx, 6xx) are reached. */
    long code = 100 + (long)(((unsigned)data[0] << 8 | data[1]) % 600);
    uint64_t retry_after_ms = (uint64_t)data[2] * 1000;
    const char *body = (const char *)data + 3;
    size_t len = size - 3;
    struct gf_api_status st;
    memset(&st, 0xa5, sizeof(st)); /* no field may be left unset */
    int rc = gf_api_status_decode(body, len, code, retry_after_ms, &st);
    check(&st, code, rc);
    /* A body-less answer of the same code decodes too. */
    memset(&st, 0xa5, sizeof(st));
    rc = gf_api_status_decode(NULL, 0, code, 0, &st);
    check(&st, code, rc);
    return 0;
}
