/*
 * api_rules: what the registry strategies of built-in types refuse, for
 * the types gpufed writes and the real API server checks field by field
 * (built-in types carry no schema here).
 *
 * Leases (coordination.k8s.io/v1) are gpufed's heartbeats and leader
 * election, so they are exact: renewTime and acquireTime are MicroTime,
 * which the server's decoder reads with Go's layout
 * "2006-01-02T15:04:05.000000Z07:00" (exactly six fractional digits), and
 * validation wants leaseDurationSeconds > 0 and leaseTransitions >= 0.
 * A time the decoder cannot read is a 400 on create and update (the body
 * cannot be decoded) and a 422 naming "patch" on a patch (the patched
 * object cannot be decoded), with the server's words.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "common/json.h"
#include "e2e/kubesim/api_toolkit.h"

#define MICRO_LAYOUT "2006-01-02T15:04:05.000000Z07:00"

/* The layout's elements, in order: digits of a width, or a literal. */
struct elem {
    const char *layout; /* as Go names it in its error */
    int digits;         /* 0 for a literal */
};

static const struct elem micro_elems[] = {
    {"2006", 4}, {"-", 0}, {"01", 2}, {"-", 0}, {"02", 2}, {"T", 0},
    {"15", 2},   {":", 0}, {"04", 2}, {":", 0}, {"05", 2},
};

static bool digits(const char *s, int n)
{
    for (int i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return true;
}

/* ±hh:mm */
static bool offset(const char *s)
{
    return (s[0] == '+' || s[0] == '-') && digits(s + 1, 2) && s[3] == ':' &&
           digits(s + 4, 2);
}

/*
 * Parses v as Go parses a MicroTime. On failure writes Go's error,
 * `parsing time "V" as "LAYOUT": cannot parse "REST" as "ELEM"`, to why
 * and returns false.
 */
static bool micro_time_ok(const char *v, char *why, size_t cap)
{
    const char *p = v;
    const char *elem = NULL;
    for (size_t i = 0; i < sizeof(micro_elems) / sizeof(micro_elems[0]); i++) {
        const struct elem *e = &micro_elems[i];
        bool ok = e->digits > 0
                      ? strlen(p) >= (size_t)e->digits && digits(p, e->digits)
                      : p[0] == e->layout[0];
        if (!ok) {
            elem = e->layout;
            break;
        }
        p += e->digits > 0 ? e->digits : 1;
    }
    if (elem == NULL && !(p[0] == '.' && digits(p + 1, 6)))
        elem = ".000000";
    if (elem == NULL) {
        p += 7;
        if (strcmp(p, "Z") == 0 || (offset(p) && p[6] == '\0'))
            return true;
        if (p[0] == 'Z' || offset(p)) {
            snprintf(why, cap, "parsing time \"%s\": extra text: \"%s\"", v,
                     p + (p[0] == 'Z' ? 1 : 6));
            return false;
        }
        elem = "Z07:00";
    }
    snprintf(why, cap,
             "parsing time \"%s\" as \"%s\": cannot parse \"%s\" "
             "as \"%s\"",
             v, MICRO_LAYOUT, p, elem);
    return false;
}

static bool is_lease(const struct gf_ks_rtype *t)
{
    return strcmp(t->group, "coordination.k8s.io") == 0 &&
           strcmp(t->resource, "leases") == 0;
}

static int bad_time(const struct gf_ks_rtype *t, const cJSON *obj,
                    const char *why, bool patched, struct gf_ks_status *err)
{
    if (!patched)
        return gf_ks_status_set(err, 400, "BadRequest",
                                "%s in version \"v1\" cannot be handled as a "
                                "%s: %s",
                                t->kind, t->kind, why);
    /* The server shows the patched object as it failed to decode it. */
    char *js = cJSON_PrintUnformatted(obj);
    struct gf_buf q = GF_BUF_INIT(65536);
    cJSON *s = cJSON_CreateString(js != NULL ? js : "");
    char *quoted = cJSON_PrintUnformatted(s);
    gf_buf_printf(&q, "Invalid value: %s: %s", quoted != NULL ? quoted : "",
                  why);
    int rc = gf_ks_status_set(err, 422, "Invalid",
                              " \"\" is invalid: patch: %s", gf_buf_cstr(&q));
    gf_ks_status_cause(err, "FieldValueInvalid", gf_buf_cstr(&q), "patch");
    cJSON_free(quoted);
    cJSON_Delete(s);
    cJSON_free(js);
    gf_buf_free(&q);
    return rc;
}

static int invalid_int(const struct gf_ks_rtype *t, const char *name,
                       const char *field, long long v, const char *rule,
                       struct gf_ks_status *err)
{
    char msg[160];
    snprintf(msg, sizeof(msg), "Invalid value: %lld: %s", v, rule);
    int rc =
        gf_ks_status_set(err, 422, "Invalid", "%s.%s \"%s\" is invalid: %s: %s",
                         t->kind, t->group, name, field, msg);
    gf_ks_status_details(err, name, t->group, t->kind);
    gf_ks_status_cause(err, "FieldValueInvalid", msg, field);
    return rc;
}

static int lease_check(const struct gf_ks_rtype *t, const cJSON *obj,
                       const char *name, bool patched, struct gf_ks_status *err)
{
    static const char *const times[] = {"acquireTime", "renewTime"};
    char why[512];
    for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        const char *v = gf_json_as_str(GF_JSON_AT(obj, "spec", times[i]));
        if (v != NULL && !micro_time_ok(v, why, sizeof(why)))
            return bad_time(t, obj, why, patched, err);
    }
    int64_t n;
    if (gf_json_int(obj, "spec.leaseDurationSeconds", &n) == 0 && n <= 0)
        return invalid_int(t, name, "spec.leaseDurationSeconds", (long long)n,
                           "must be greater than 0", err);
    if (gf_json_int(obj, "spec.leaseTransitions", &n) == 0 && n < 0)
        return invalid_int(t, name, "spec.leaseTransitions", (long long)n,
                           "must be greater than or equal to 0", err);
    return 0;
}

int gf__ks_builtin_check(const struct gf_ks_rtype *t, const cJSON *obj,
                         const char *name, bool patched,
                         struct gf_ks_status *err)
{
    if (is_lease(t))
        return lease_check(t, obj, name != NULL ? name : "", patched, err);
    return 0;
}
