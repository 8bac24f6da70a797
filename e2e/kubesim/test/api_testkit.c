/*
 * api_testkit: the in-memory server side of gf_ks_api_out for tests.
 */
#include "e2e/kubesim/test/api_testkit.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/err.h"

static void tk_reply(void *ctx, int code, const char *ctype, const char *body,
                     size_t len)
{
    struct ks_apitk_resp *r = ctx;
    assert_int_equal(r->code, 0); /* exactly one answer */
    assert_false(r->streaming);
    r->code = code;
    snprintf(r->ctype, sizeof(r->ctype), "%s", ctype);
    assert_int_equal(gf_buf_append(&r->body, body, len), 0);
}

static void tk_header(void *ctx, const char *name, const char *value)
{
    struct ks_apitk_resp *r = ctx;
    assert_int_equal(r->code, 0); /* before the answer */
    assert_int_equal(gf_buf_printf(&r->headers, "%s: %s\n", name, value), 0);
}

static void tk_begin(void *ctx, int code, const char *ctype)
{
    struct ks_apitk_resp *r = ctx;
    assert_int_equal(r->code, 0);
    r->code = code;
    r->streaming = true;
    snprintf(r->ctype, sizeof(r->ctype), "%s", ctype);
}

static int tk_write(void *ctx, const char *data, size_t len)
{
    struct ks_apitk_resp *r = ctx;
    assert_true(r->streaming);
    assert_false(r->ended);
    if (r->fail_writes > 0 && r->chunks >= (size_t)r->fail_writes)
        return GF_ETRANSPORT;
    r->chunks++;
    assert_int_equal(gf_buf_append(&r->body, data, len), 0);
    return r->behind_at > 0 && r->chunks == (size_t)r->behind_at ? 1 : 0;
}

static void tk_end(void *ctx)
{
    struct ks_apitk_resp *r = ctx;
    assert_true(r->streaming);
    assert_false(r->ended);
    r->ended = true;
    r->call = NULL; /* freed by the API layer */
}

void ks_apitk_resp_init(struct ks_apitk_resp *r)
{
    memset(r, 0, sizeof(*r));
    gf_buf_init(&r->body, (size_t)256 << 20);
    gf_buf_init(&r->headers, 1 << 20);
    r->out.header = tk_header;
    r->out.ctx = r;
    r->out.reply = tk_reply;
    r->out.stream_begin = tk_begin;
    r->out.stream_write = tk_write;
    r->out.stream_end = tk_end;
}

void ks_apitk_resp_free(struct ks_apitk_resp *r)
{
    gf_ks_api_call_cancel(r->call);
    r->call = NULL;
    gf_buf_free(&r->body);
    gf_buf_free(&r->headers);
}

void ks_apitk_start(struct ks_apitk_cluster *k, struct gf_ks_api_opts *opts)
{
    memset(k, 0, sizeof(*k));
    k->baseline = gf_alloc_live();
    /* 2026-11-24T10:00:00Z */
    gf_clock_init_manual(&k->clock, 1000, 1795514400000LL);
    k->catalog = gf_ks_catalog_new();
    struct gf_ks_api_opts o = {0};
    if (opts != NULL)
        o = *opts;
    o.clock = &k->clock;
    o.catalog = k->catalog;
    if (o.cluster == NULL)
        o.cluster = "test";
    if (o.uid_seed == 0)
        o.uid_seed = 42;
    k->api = gf_ks_api_new(&o);
    k->user = "admin";
}

void ks_apitk_stop(struct ks_apitk_cluster *k)
{
    gf_ks_api_free(k->api);
    gf_ks_catalog_free(k->catalog);
    assert_int_equal(gf_clock_active_timers(&k->clock), 0);
    gf_clock_close(&k->clock);
    assert_int_equal(gf_alloc_live(), k->baseline);
}

int ks_apitk_do(struct ks_apitk_cluster *k, struct ks_apitk_resp *r,
                const char *method, const char *target, const char *ctype,
                const char *accept, const char *body)
{
    return ks_apitk_do_len(k, r, method, target, ctype, accept, body,
                           body != NULL ? strlen(body) : 0);
}

int ks_apitk_do_len(struct ks_apitk_cluster *k, struct ks_apitk_resp *r,
                    const char *method, const char *target, const char *ctype,
                    const char *accept, const char *body, size_t len)
{
    char path[2048];
    snprintf(path, sizeof(path), "%s", target);
    char *q = strchr(path, '?');
    if (q != NULL)
        *q++ = '\0';
    struct gf_ks_api_req req = {
        .method = method,
        .path = path,
        .query = q,
        .content_type = ctype,
        .accept = accept,
        .body = body,
        .body_len = len,
        .user = k->user,
        .groups = k->groups,
        .impersonate_user = k->as_user,
        .impersonate_groups = k->as_groups,
    };
    gf_ks_api_handle(k->api, &req, &r->out, &r->call);
    if (r->call == NULL)
        assert_false(r->streaming && !r->ended);
    return r->code;
}

cJSON *ks_apitk_json(struct ks_apitk_cluster *k, const char *method,
                     const char *target, const char *ctype, const char *body,
                     int *code)
{
    struct ks_apitk_resp r;
    ks_apitk_resp_init(&r);
    if (ctype == NULL && body != NULL)
        ctype = "application/json";
    int c = ks_apitk_do(k, &r, method, target, ctype, NULL, body);
    assert_false(r.streaming);
    if (code != NULL)
        *code = c;
    cJSON *j = cJSON_ParseWithLength(gf_buf_cstr(&r.body), r.body.len);
    ks_apitk_resp_free(&r);
    return j;
}

size_t ks_apitk_events(const struct ks_apitk_resp *r)
{
    size_t n = 0;
    const char *s = gf_buf_cstr(&r->body);
    for (; *s != '\0'; s++)
        n += *s == '\n';
    return n;
}

cJSON *ks_apitk_event(const struct ks_apitk_resp *r, size_t n)
{
    const char *s = gf_buf_cstr(&r->body);
    for (size_t i = 0; i < n; i++) {
        s = strchr(s, '\n');
        if (s == NULL)
            return NULL;
        s++;
    }
    const char *e = strchr(s, '\n');
    if (e == NULL)
        return NULL;
    return cJSON_ParseWithLength(s, (size_t)(e - s));
}

char *ks_apitk_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    struct gf_buf b = GF_BUF_INIT((size_t)64 << 20);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        assert_int_equal(gf_buf_append(&b, chunk, n), 0);
    fclose(f);
    *len = b.len;
    if (b.data == NULL)
        return gf_strdup("");
    return gf_buf_steal(&b);
}

static bool is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

const char *ks_apitk_kueue_dir(void)
{
    static char dir[1024];
    /*
     * Absolute paths only, so a test finds the CRDs from any working
     * directory. The CRDs are part of the checkout: a missing copy is a
     * broken checkout and fails the test, never skips it.
     */
    const char *env = getenv("GF_SHARED");
    if (env != NULL && env[0] != '\0') {
        snprintf(dir, sizeof(dir), "%s/kueue", env);
    } else {
#ifdef GF_TESTDATA
        snprintf(dir, sizeof(dir), "%s/kueue", GF_TESTDATA);
#else
        fail_msg("GF_SHARED is not set: run the tests through make, or "
                 "export GF_SHARED=<the shared folder>");
#endif
    }
    char crds[1100];
    snprintf(crds, sizeof(crds), "%s/crds", dir);
    if (!is_dir(crds))
        fail_msg("no Kueue CRDs in %s: the checkout is incomplete", crds);
    return dir;
}

const char *ks_apitk_crd_dir(void)
{
    static char dir[1100];
    snprintf(dir, sizeof(dir), "%s/crds", ks_apitk_kueue_dir());
    return dir;
}
