/*
 * Tests for common/err: the HTTP status mapping that kubeclient decodes
 * answers with and kubesim writes them with, row by row, including the
 * codes the two used to disagree on (405, 408, 409 AlreadyExists).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/err.h"

struct http_case {
    long code;
    const char *reason;
    int err;
};

static void test_http_status_mapping(void **state)
{
    (void)state;
    static const struct http_case cases[] = {
        {200, NULL, 0},
        {201, "", 0},
        {400, "BadRequest", GF_EINVALID},
        {401, "Unauthorized", GF_EUNAUTH},
        {403, "Forbidden", GF_EFORBIDDEN},
        {404, "NotFound", GF_ENOTFOUND},
        /* the verb does not exist on the resource: not an RBAC denial */
        {405, "MethodNotAllowed", -EOPNOTSUPP},
        /* the server timed the request out: a retry may succeed */
        {408, "Timeout", GF_ETIMEDOUT},
        /* 409: the reason tells a lost race from a taken name */
        {409, "Conflict", GF_ECONFLICT},
        {409, "AlreadyExists", GF_EEXIST},
        {409, NULL, GF_ECONFLICT},
        {410, "Expired", GF_EGONE},
        {410, NULL, GF_EGONE},
        {413, "RequestEntityTooLarge", GF_EAPI},
        {422, "Invalid", GF_EINVALID},
        {429, "TooManyRequests", GF_ETHROTTLED},
        {500, "InternalError", GF_ESERVER},
        {503, "ServiceUnavailable", GF_ESERVER},
        {504, "Timeout", GF_ESERVER},
        /* a watch ERROR event may carry the reason alone */
        {0, "Expired", GF_EGONE},
        {0, "Gone", GF_EGONE},
        {200, "Expired", GF_EGONE},
        /* a 429 or 5xx keeps its meaning whatever the reason says */
        {500, "Expired", GF_ESERVER},
        {429, "AlreadyExists", GF_ETHROTTLED},
        {302, NULL, GF_EAPI},
        {0, NULL, GF_EAPI},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct http_case *c = &cases[i];
        int err = gf_err_from_http(c->code, c->reason);
        if (err != c->err)
            fail_msg("%ld %s: %d (%s), want %d (%s)", c->code,
                     c->reason != NULL ? c->reason : "(null)", err,
                     gf_strerror(err), c->err, gf_strerror(c->err));
    }
    assert_int_equal(gf_alloc_live(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_status_mapping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
