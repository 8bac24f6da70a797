/*
 * json: read helpers over cJSON and parsers for Kubernetes scalar formats
 * (quantities and durations).
 */
#include "common/json.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

#define PATH_SEGMENT_MAX 256

const cJSON *gf__json_path(const cJSON *root, const char *path)
{
    const cJSON *node = root;
    const char *p = path;
    char key[PATH_SEGMENT_MAX];
    /*
     * Every segment is checked, found or not: paths are literals (see
     * json.h), so an over-long one is a typo that must fail on every
     * input, not only on objects that happen to hold its prefix.
     */
    while (*p != '\0') {
        const char *dot = strchr(p, '.');
        size_t n = dot != NULL ? (size_t)(dot - p) : strlen(p);
        GF_BUG_ON(n >= sizeof(key));
        if (node != NULL) {
            memcpy(key, p, n);
            key[n] = '\0';
            node = cJSON_IsObject(node)
                       ? cJSON_GetObjectItemCaseSensitive(node, key)
                       : NULL;
        }
        p += n;
        if (*p == '.')
            p++;
    }
    return node;
}

const cJSON *gf_json_at(const cJSON *root, const char *const *keys, size_t n)
{
    const cJSON *node = root;
    for (size_t i = 0; i < n && node != NULL; i++) {
        if (!cJSON_IsObject(node))
            return NULL;
        node = cJSON_GetObjectItemCaseSensitive(node, keys[i]);
    }
    return node;
}

const char *gf_json_as_str(const cJSON *node)
{
    return cJSON_IsString(node) ? node->valuestring : NULL;
}

int gf_json_as_int(const cJSON *node, int64_t *out)
{
    if (node == NULL)
        return -ENOENT;
    if (!cJSON_IsNumber(node))
        return -EINVAL;
    double v = node->valuedouble;
    /* Integers beyond 2^53 cannot be told apart in a double. */
    if (v != floor(v) || fabs(v) > 9007199254740992.0)
        return -EINVAL;
    *out = (int64_t)v;
    return 0;
}

int gf_json_as_bool(const cJSON *node, bool *out)
{
    if (node == NULL)
        return -ENOENT;
    if (!cJSON_IsBool(node))
        return -EINVAL;
    *out = cJSON_IsTrue(node);
    return 0;
}

const char *gf_json_label(const cJSON *obj, const char *key)
{
    return gf_json_as_str(GF_JSON_AT(obj, "metadata", "labels", key));
}

const char *gf_json_annotation(const cJSON *obj, const char *key)
{
    return gf_json_as_str(GF_JSON_AT(obj, "metadata", "annotations", key));
}

static int pow10_u64(unsigned e, uint64_t *out)
{
    uint64_t v = 1;
    for (unsigned i = 0; i < e; i++) {
        if (__builtin_mul_overflow(v, 10, &v))
            return -ERANGE;
    }
    *out = v;
    return 0;
}

/* Digits with at most one dot; leading zeros carry no precision. */
static int parse_mantissa(const char **pp, uint64_t *mant, unsigned *frac)
{
    const char *p = *pp;
    unsigned ndigits = 0;
    bool seen_dot = false, any = false;
    *mant = 0;
    *frac = 0;
    for (;; p++) {
        if (*p == '.' && !seen_dot) {
            seen_dot = true;
            continue;
        }
        if (*p < '0' || *p > '9')
            break;
        any = true;
        if (*mant == 0 && *p == '0' && !seen_dot)
            continue;
        if (++ndigits > 18)
            return -ERANGE;
        *mant = *mant * 10 + (uint64_t)(*p - '0');
        *frac += seen_dot;
    }
    *pp = p;
    return any ? 0 : -EINVAL;
}

/* Suffix: Ki..Ei (powers of 1024), n u m k M G T P E, or e<int>. */
static int parse_suffix(const char *p, int *dec_exp, unsigned *bin)
{
    static const char binary[] = "KMGTPE";
    static const char decimal[] = "numkMGTPE";
    static const int exps[] = {-9, -6, -3, 3, 6, 9, 12, 15, 18};
    *dec_exp = 0;
    *bin = 0;
    if (*p == '\0')
        return 0;
    if (p[1] == 'i' && p[2] == '\0' && strchr(binary, p[0])) {
        *bin = (unsigned)(strchr(binary, p[0]) - binary) + 1;
        return 0;
    }
    if (p[1] == '\0' && strchr(decimal, p[0])) {
        *dec_exp = exps[strchr(decimal, p[0]) - decimal];
        return 0;
    }
    if (p[0] == 'e' || p[0] == 'E') {
        int64_t e;
        if (gf_parse_i64(p + 1, &e) != 0 || e < -30 || e > 30)
            return -EINVAL;
        *dec_exp = (int)e;
        return 0;
    }
    return -EINVAL;
}

/* v * 10^e10, rounding up when e10 < 0 (far below one: rounds to one). */
static int scale10(uint64_t v, int e10, uint64_t *out)
{
    uint64_t scale;
    if (e10 >= 0) {
        if (pow10_u64((unsigned)e10, &scale) != 0 ||
            __builtin_mul_overflow(v, scale, out))
            return -ERANGE;
        return 0;
    }
    if (pow10_u64((unsigned)-e10, &scale) != 0)
        *out = v != 0;
    else
        *out = v / scale + (v % scale != 0);
    return 0;
}

/*
 * Quantity grammar (Kubernetes resource.Quantity):
 *   [+-] digits [. digits] [suffix]
 * The value in milli-units is rounded up, as Quantity.MilliValue() does.
 */
int gf_quantity_parse_milli(const char *s, int64_t *milli)
{
    const char *p = s;
    bool neg = false;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    uint64_t v;
    unsigned frac, bin;
    int dec_exp;
    int rc = parse_mantissa(&p, &v, &frac);
    if (rc == 0)
        rc = parse_suffix(p, &dec_exp, &bin);
    if (rc != 0)
        return rc;
    if (v == 0) {
        *milli = 0;
        return 0;
    }
    for (unsigned i = 0; i < bin; i++) {
        if (__builtin_mul_overflow(v, 1024, &v))
            return -ERANGE;
    }
    /* milli = mant * 1024^bin * 10^(dec_exp + 3 - frac) */
    if (scale10(v, dec_exp + 3 - (int)frac, &v) != 0 || v > (uint64_t)INT64_MAX)
        return -ERANGE;
    *milli = neg ? -(int64_t)v : (int64_t)v;
    return 0;
}

int gf_json_quantity_milli(const cJSON *node, int64_t *milli)
{
    if (cJSON_IsString(node))
        return gf_quantity_parse_milli(node->valuestring, milli);
    if (cJSON_IsNumber(node)) {
        double v = node->valuedouble * 1000.0;
        if (!(fabs(v) < 9.2e18))
            return -ERANGE;
        *milli = (int64_t)ceil(v);
        return 0;
    }
    return -EINVAL;
}

/* Digits and one dot only: strtod would also take exponents and hex
 * floats, which Go's durations do not allow. */
static int parse_decimal(const char **pp, double *out)
{
    double v = 0, scale = 1;
    bool dot = false, any = false;
    const char *p = *pp;
    for (; (*p >= '0' && *p <= '9') || (*p == '.' && !dot); p++) {
        if (*p == '.') {
            dot = true;
            continue;
        }
        any = true;
        if (dot)
            scale /= 10;
        v = dot ? v + (*p - '0') * scale : v * 10 + (*p - '0');
    }
    *pp = p;
    *out = v;
    return any && v <= 9.2e15 ? 0 : -EINVAL;
}

/* The longest unit at p, as a multiplier to ms; advances p. */
static int parse_unit(const char **pp, double *ms)
{
    static const struct {
        const char *unit;
        double ms;
    } units[] = {{"ns", 1e-6}, {"us", 1e-3}, {"\xc2\xb5s", 1e-3}, {"ms", 1},
                 {"s", 1000},  {"m", 60000}, {"h", 3600000}};
    size_t best = 0;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        size_t n = strlen(units[i].unit);
        if (n > best && strncmp(*pp, units[i].unit, n) == 0) {
            best = n;
            *ms = units[i].ms;
        }
    }
    *pp += best;
    return best > 0 ? 0 : -EINVAL;
}

/* Go's time.ParseDuration grammar without the sign: ("1.5" unit)+. */
int gf_duration_parse_ms(const char *s, int64_t *ms)
{
    if (strcmp(s, "0") == 0) {
        *ms = 0;
        return 0;
    }
    if (*s == '\0')
        return -EINVAL;
    const char *p = s;
    double total = 0;
    while (*p != '\0') {
        double v, unit;
        if (parse_decimal(&p, &v) != 0 || parse_unit(&p, &unit) != 0)
            return -EINVAL;
        total += v * unit;
        if (total > 9.2e15)
            return -ERANGE;
    }
    *ms = (int64_t)total;
    return 0;
}

int gf_parse_i64(const char *s, int64_t *out)
{
    if (s == NULL || *s == '\0' || *s == ' ')
        return -EINVAL;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno == ERANGE)
        return -ERANGE;
    if (*end != '\0' || end == s)
        return -EINVAL;
    *out = v;
    return 0;
}

cJSON *gf_json_cond(const cJSON *conds, const char *type)
{
    cJSON *it;
    cJSON_ArrayForEach(it, conds)
    {
        const char *t = gf_json_str(it, "type");
        if (t != NULL && strcmp(t, type) == 0)
            return it;
    }
    return NULL;
}

bool gf_json_cond_true(const cJSON *conds, const char *type)
{
    const char *st = gf_json_str(gf_json_cond(conds, type), "status");
    return st != NULL && strcmp(st, "True") == 0;
}

cJSON *gf_json_cond_ensure(cJSON *conds, const char *type)
{
    cJSON *c = gf_json_cond(conds, type);
    if (c == NULL) {
        c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "type", type);
        cJSON_AddItemToArray(conds, c);
    }
    return c;
}

void gf_json_set_str(cJSON *obj, const char *key, const char *val)
{
    cJSON *v = cJSON_CreateString(val);
    if (cJSON_GetObjectItemCaseSensitive(obj, key) != NULL)
        cJSON_ReplaceItemInObjectCaseSensitive(obj, key, v);
    else
        cJSON_AddItemToObject(obj, key, v);
}

/* ---- deep equality (see json.h) ---------------------------------------- */

static bool json_obj_equal(const cJSON *a, const cJSON *b)
{
    int na = 0, nb = 0;
    const cJSON *x, *y;
    cJSON_ArrayForEach(x, a)
    {
        na++;
    }
    cJSON_ArrayForEach(y, b)
    {
        nb++;
    }
    if (na != nb)
        return false;
    /*
     * Members in the same order (a copy, a re-parse) are compared in one
     * pass; from the first name that differs on, by lookup. Every member
     * is compared once, so the cost stays linear in the depth, and a tree
     * with duplicate member names is equal to itself.
     */
    x = a->child;
    y = b->child;
    for (; x != NULL && y != NULL && x->string != NULL && y->string != NULL &&
           strcmp(x->string, y->string) == 0;
         x = x->next, y = y->next)
        if (!gf_json_equal(x, y))
            return false;
    for (; x != NULL; x = x->next)
        if (x->string == NULL ||
            !gf_json_equal(x, cJSON_GetObjectItemCaseSensitive(b, x->string)))
            return false;
    return true;
}

bool gf_json_equal(const cJSON *a, const cJSON *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    int ta = a->type & 0xff, tb = b->type & 0xff;
    if (ta != tb)
        return false;
    switch (ta) {
    case cJSON_False:
    case cJSON_True:
    case cJSON_NULL:
        return true;
    case cJSON_Number:
        return a->valuedouble == b->valuedouble;
    case cJSON_String:
    case cJSON_Raw:
        return a->valuestring != NULL && b->valuestring != NULL &&
               strcmp(a->valuestring, b->valuestring) == 0;
    case cJSON_Array: {
        const cJSON *x = a->child, *y = b->child;
        for (; x != NULL && y != NULL; x = x->next, y = y->next)
            if (!gf_json_equal(x, y))
                return false;
        return x == NULL && y == NULL;
    }
    case cJSON_Object:
        return json_obj_equal(a, b);
    default:
        return false;
    }
}
