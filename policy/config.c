/*
 * config: FederationPolicy parse and validate (see config.h).
 *
 * Two passes over a position-marked tree (ytree.c). The first pass reads
 * every field it knows, checks types and ranges, and reports unknown and
 * duplicate keys; it keeps going after an error so that one run reports
 * everything. The second pass checks references between sections
 * (members named by groups, flavor classes, member sets and rules),
 * which needs all names first. Errors are sorted by position at the end,
 * so the output reads top to bottom whatever pass found them.
 */
#include "policy/config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/json.h"
#include "common/htab.h"
#include "common/ytree.h"
#include "policy/internal.h"

#define PATH_MAX_LEN 256

struct gf__policy_index {
    struct gf_htab members; /* name -> index + 1 */
    struct gf_htab groups;  /* name -> index + 1 */
    struct gf_htab queues;  /* member\0cq -> group index + 1 */
    struct gf_htab flavors; /* member\0flavor -> class index + 1 */
    /* Per rule: membership bitmaps over members, for O(1) pair tests. */
    unsigned char **rule_lenders, **rule_borrowers;
};

/* ---- diagnostics -------------------------------------------------------- */

void gf_policy_diag_init(struct gf_policy_diag *d)
{
    memset(d, 0, sizeof(*d));
}

void gf_policy_diag_free(struct gf_policy_diag *d)
{
    for (size_t i = 0; i < d->n; i++) {
        gf_free(d->errs[i].path);
        gf_free(d->errs[i].msg);
    }
    GF_FREE(d->errs);
    d->n = d->cap = d->dropped = 0;
}

static void diag_add(struct gf_policy_diag *d, int line, int col,
                     const char *path, const char *msg)
{
    if (d->n >= GF_POLICY_MAX_ERRORS) {
        d->dropped++;
        return;
    }
    if (d->n == d->cap) {
        d->cap = d->cap == 0 ? 8 : d->cap * 2;
        d->errs = gf_realloc(d->errs, d->cap * sizeof(*d->errs));
    }
    struct gf_policy_error *e = &d->errs[d->n++];
    e->line = line;
    e->col = col;
    e->path = gf_strdup(path);
    e->msg = gf_strdup(msg);
}

static int err_cmp(const void *a, const void *b)
{
    const struct gf_policy_error *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return strcmp(x->msg, y->msg);
}

int gf_policy_diag_format(const struct gf_policy_diag *d, const char *file,
                          struct gf_buf *out)
{
    const char *f = file != NULL ? file : "<input>";
    for (size_t i = 0; i < d->n; i++) {
        const struct gf_policy_error *e = &d->errs[i];
        int rc = gf_buf_printf(out, "%s:%d:%d: error: %s%s%s\n", f, e->line,
                               e->col, e->path, e->path[0] ? ": " : "", e->msg);
        if (rc != 0)
            return rc;
    }
    if (d->dropped > 0)
        return gf_buf_printf(out, "%s: %zu more errors not shown\n", f,
                             d->dropped);
    return 0;
}

/* ---- walking context ---------------------------------------------------- */

/* A member set, kept only during parse for expansion. */
struct mset {
    char *name;
    const struct gf_ynode *node; /* the set's mapping */
    const struct gf_ynode *list; /* its members sequence */
    char path[PATH_MAX_LEN];
    int state;           /* 0 unvisited, 1 on stack, 2 done */
    unsigned char *bits; /* expanded members (n_members bytes) */
};

struct pctx {
    struct gf_policy *p;
    struct gf_policy_diag *d;
    struct mset *sets;
    size_t n_sets;
    /* Nodes kept for pass two. */
    const struct gf_ynode **group_nodes, **rule_nodes, **class_nodes;
};

static void perr(struct pctx *c, const struct gf_ynode *n, const char *path,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void perr(struct pctx *c, const struct gf_ynode *n, const char *path,
                 const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    diag_add(c->d, n ? n->line : 0, n ? n->col : 0, path, msg);
}

/*
 * Path building: out may alias path (sub(cp, cp, "name") extends in
 * place), so the pieces are measured first and copied with memmove.
 * Over-long paths are truncated; they only label messages.
 */
static const char *join(char *out, const char *path, const char *sep,
                        const char *tail)
{
    size_t pl = strlen(path), sl = strlen(sep), tl = strlen(tail);
    if (pl > PATH_MAX_LEN - 1)
        pl = PATH_MAX_LEN - 1;
    memmove(out, path, pl);
    if (sl > PATH_MAX_LEN - 1 - pl)
        sl = PATH_MAX_LEN - 1 - pl;
    memcpy(out + pl, sep, sl);
    if (tl > PATH_MAX_LEN - 1 - pl - sl)
        tl = PATH_MAX_LEN - 1 - pl - sl;
    memcpy(out + pl + sl, tail, tl);
    out[pl + sl + tl] = '\0';
    return out;
}

static const char *sub(char *buf, const char *path, const char *key)
{
    return join(buf, path, path[0] ? "." : "", key);
}

static const char *idx(char *buf, const char *path, size_t i)
{
    char num[32];
    snprintf(num, sizeof(num), "[%zu]", i);
    return join(buf, path, "", num);
}

static const char *kind_name(const struct gf_ynode *n)
{
    switch (n->kind) {
    case GF_Y_MAP:
        return "a mapping";
    case GF_Y_SEQ:
        return "a list";
    default:
        return gf_ynode_is_null(n) ? "null" : "a scalar";
    }
}

static bool is_kind(struct pctx *c, const struct gf_ynode *n, enum gf_ykind k,
                    const char *path)
{
    if (n->kind == k)
        return true;
    perr(c, n, path, "wrong type: expected %s, got %s",
         k == GF_Y_MAP   ? "a mapping"
         : k == GF_Y_SEQ ? "a list"
                         : "a scalar",
         kind_name(n));
    return false;
}

/*
 * Reports unknown and duplicate keys of a mapping. allowed is
 * NULL-terminated; the message lists it so the fix is obvious.
 */
static bool field_allowed(const char *key, const char *const *allowed)
{
    for (size_t a = 0; allowed[a] != NULL; a++)
        if (strcmp(allowed[a], key) == 0)
            return true;
    return false;
}

/* "a, b, c" into list (cut short if it does not fit). */
static void join_allowed(char *list, size_t cap, const char *const *allowed)
{
    size_t off = 0;
    list[0] = '\0';
    for (size_t a = 0; allowed[a] != NULL; a++) {
        int w =
            snprintf(list + off, cap - off, "%s%s", a ? ", " : "", allowed[a]);
        if (w < 0 || (size_t)w >= cap - off)
            break;
        off += (size_t)w;
    }
}

/* The earlier key of map equal to key number i, or NULL. */
static const struct gf_ynode *earlier_key(const struct gf_ynode *map, size_t i)
{
    const char *key = map->kids[i]->str;
    for (size_t j = 0; j < i; j += 2) {
        const struct gf_ynode *prev = map->kids[j];
        if (prev->kind == GF_Y_SCALAR && strcmp(prev->str, key) == 0)
            return prev;
    }
    return NULL;
}

/*
 * Reports unknown and duplicate keys of a mapping. allowed is
 * NULL-terminated; the message lists it so the fix is obvious.
 */
static void check_fields(struct pctx *c, const struct gf_ynode *map,
                         const char *path, const char *const *allowed)
{
    char cp[PATH_MAX_LEN];
    for (size_t i = 0; i + 1 < map->n; i += 2) {
        const struct gf_ynode *k = map->kids[i];
        if (k->kind != GF_Y_SCALAR) {
            perr(c, k, path, "wrong type: mapping keys must be strings");
            continue;
        }
        if (!field_allowed(k->str, allowed)) {
            char list[256];
            join_allowed(list, sizeof(list), allowed);
            perr(c, k, sub(cp, path, k->str),
                 "unknown field \"%s\"; expected one of: %s", k->str, list);
            continue;
        }
        const struct gf_ynode *prev = earlier_key(map, i);
        if (prev != NULL)
            perr(c, k, sub(cp, path, k->str),
                 "duplicate field \"%s\" (first at line %d)", k->str,
                 prev->line);
    }
}

/* The key node of field key in map (for positions of missing values). */
static const struct gf_ynode *field(const struct gf_ynode *map, const char *key)
{
    return gf_ymap_get(map, key);
}

static bool missing(struct pctx *c, const struct gf_ynode *map,
                    const char *path, const char *key)
{
    if (field(map, key) != NULL)
        return false;
    perr(c, map, path, "missing required field \"%s\"", key);
    return true;
}

/* DNS-1123 label (max 63) or subdomain (max 253). */
static bool dns_name(const char *s, size_t max, bool dots)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
        bool inner = ch == '-' || (dots && ch == '.');
        if (!alnum && !(inner && i > 0 && i + 1 < n))
            return false;
    }
    return true;
}

enum name_kind { NAME_LABEL, NAME_SUBDOMAIN, NAME_ANY };

/* A required or optional string field; returns an owned copy or NULL. */
static char *get_str(struct pctx *c, const struct gf_ynode *map,
                     const char *path, const char *key, bool required,
                     enum name_kind nk)
{
    char cp[PATH_MAX_LEN];
    const struct gf_ynode *v = field(map, key);
    if (v == NULL) {
        if (required)
            missing(c, map, path, key);
        return NULL;
    }
    sub(cp, path, key);
    if (!is_kind(c, v, GF_Y_SCALAR, cp))
        return NULL;
    if (v->len == 0 || strlen(v->str) != v->len) {
        perr(c, v, cp, "expected a non-empty string");
        return NULL;
    }
    if (nk == NAME_LABEL && !dns_name(v->str, 63, false)) {
        perr(c, v, cp,
             "invalid name \"%s\": expected a DNS-1123 label (lower-case "
             "letters, digits and '-', at most 63 characters)",
             v->str);
        return NULL;
    }
    if (nk == NAME_SUBDOMAIN && !dns_name(v->str, 253, true)) {
        perr(c, v, cp,
             "invalid name \"%s\": expected a DNS-1123 subdomain (lower-case "
             "letters, digits, '-' and '.', at most 253 characters)",
             v->str);
        return NULL;
    }
    return gf_strdup(v->str);
}

/* Whole non-negative GPUs. */
static bool get_gpus(struct pctx *c, const struct gf_ynode *v, const char *path,
                     int64_t *out)
{
    if (!is_kind(c, v, GF_Y_SCALAR, path))
        return false;
    int64_t x;
    int rc = gf_parse_i64(v->str, &x);
    if (rc == -ERANGE) {
        perr(c, v, path, "quota %s is out of range", v->str);
        return false;
    }
    if (rc != 0) {
        perr(c, v, path,
             "wrong type: expected a whole number of GPUs, got \"%s\"", v->str);
        return false;
    }
    if (x < 0) {
        perr(c, v, path,
             "negative quota %lld: expected a whole number of GPUs >= 0",
             (long long)x);
        return false;
    }
    *out = x;
    return true;
}

/* A whole count >= 0 (maxReclaimsPerHour). */
static bool get_count(struct pctx *c, const struct gf_ynode *v,
                      const char *path, int64_t *out)
{
    if (!is_kind(c, v, GF_Y_SCALAR, path))
        return false;
    int64_t x;
    if (gf_parse_i64(v->str, &x) != 0 || x < 0) {
        perr(c, v, path, "wrong type: expected a whole number >= 0, got \"%s\"",
             v->str);
        return false;
    }
    *out = x;
    return true;
}

/* A fraction in [0, 1], kept in ppm. */
static bool get_fraction(struct pctx *c, const struct gf_ynode *v,
                         const char *path, int32_t *ppm)
{
    if (!is_kind(c, v, GF_Y_SCALAR, path))
        return false;
    char *end;
    errno = 0;
    double f = strtod(v->str, &end);
    if (v->len == 0 || *end != '\0' || errno != 0 || !isfinite(f)) {
        perr(c, v, path,
             "wrong type: expected a fraction between 0 and 1, got \"%s\"",
             v->str);
        return false;
    }
    if (f < 0) {
        perr(c, v, path,
             "negative fraction %s: expected a fraction between 0 and 1",
             v->str);
        return false;
    }
    if (f > 1) {
        perr(c, v, path,
             "fraction %s is greater than 1: expected a fraction between 0 "
             "and 1",
             v->str);
        return false;
    }
    *ppm = (int32_t)llround(f * GF_PPM);
    return true;
}

static bool get_duration(struct pctx *c, const struct gf_ynode *v,
                         const char *path, int64_t *ms)
{
    if (!is_kind(c, v, GF_Y_SCALAR, path))
        return false;
    if (v->str[0] == '-') {
        perr(c, v, path, "negative duration %s: expected a duration >= 0",
             v->str);
        return false;
    }
    if (gf_duration_parse_ms(v->str, ms) != 0) {
        perr(c, v, path,
             "wrong type: expected a duration such as 90s, 5m or 1h30m, got "
             "\"%s\"",
             v->str);
        return false;
    }
    return true;
}

/* One of names[]; returns its index or -1 (reported). */
static int get_enum(struct pctx *c, const struct gf_ynode *v, const char *path,
                    const char *const *names)
{
    if (!is_kind(c, v, GF_Y_SCALAR, path))
        return -1;
    char list[160] = "";
    size_t off = 0;
    for (int i = 0; names[i] != NULL; i++) {
        if (strcmp(v->str, names[i]) == 0)
            return i;
        int w = snprintf(list + off, sizeof(list) - off, "%s%s", i ? ", " : "",
                         names[i]);
        if (w > 0 && (size_t)w < sizeof(list) - off)
            off += (size_t)w;
    }
    perr(c, v, path, "invalid value \"%s\": expected one of: %s", v->str, list);
    return -1;
}

/* A cap mapping {maxGPUs, maxFraction} (or {gpus, fraction} for reserves). */
static void get_cap(struct pctx *c, const struct gf_ynode *map,
                    const char *path, const char *gkey, const char *fkey,
                    struct gf_policy_cap *out)
{
    char cp[PATH_MAX_LEN];
    const struct gf_ynode *v;
    out->gpus = GF_NO_CAP;
    out->fraction_ppm = -1;
    if ((v = field(map, gkey)) != NULL &&
        !get_gpus(c, v, sub(cp, path, gkey), &out->gpus))
        out->gpus = GF_NO_CAP;
    if ((v = field(map, fkey)) != NULL &&
        !get_fraction(c, v, sub(cp, path, fkey), &out->fraction_ppm))
        out->fraction_ppm = -1;
}

static void get_sub_cap(struct pctx *c, const struct gf_ynode *parent,
                        const char *path, const char *key,
                        struct gf_policy_cap *out)
{
    static const char *const allowed[] = {"maxGPUs", "maxFraction", NULL};
    char cp[PATH_MAX_LEN];
    const struct gf_ynode *m = field(parent, key);
    out->gpus = GF_NO_CAP;
    out->fraction_ppm = -1;
    if (m == NULL || !is_kind(c, m, GF_Y_MAP, sub(cp, path, key)))
        return;
    check_fields(c, m, cp, allowed);
    get_cap(c, m, cp, "maxGPUs", "maxFraction", out);
}

/* A list of strings; returns the count and an owned array in *out. */
static size_t get_str_list(struct pctx *c, const struct gf_ynode *v,
                           const char *path, char ***out)
{
    char cp[PATH_MAX_LEN];
    *out = NULL;
    if (!is_kind(c, v, GF_Y_SEQ, path))
        return 0;
    char **arr = gf_calloc(v->n + 1, sizeof(*arr));
    size_t n = 0;
    for (size_t i = 0; i < v->n; i++) {
        const struct gf_ynode *it = v->kids[i];
        idx(cp, path, i);
        if (!is_kind(c, it, GF_Y_SCALAR, cp))
            continue;
        if (it->len == 0 || strlen(it->str) != it->len) {
            perr(c, it, cp, "expected a non-empty string");
            continue;
        }
        arr[n++] = gf_strdup(it->str);
    }
    *out = arr;
    return n;
}

static void free_str_list(char **l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        gf_free(l[i]);
    gf_free(l);
}

/* ---- sections ----------------------------------------------------------- */

/* "NAMESPACE/NAME" with both parts valid DNS names. */
static bool secret_ref_ok(const char *ref)
{
    const char *slash = strchr(ref, '/');
    if (slash == NULL || strchr(slash + 1, '/') != NULL)
        return false;
    char ns[256];
    size_t nl = (size_t)(slash - ref);
    if (nl >= sizeof(ns))
        return false;
    memcpy(ns, ref, nl);
    ns[nl] = '\0';
    return dns_name(ns, 63, false) && dns_name(slash + 1, 253, true);
}

/* A member's labels mapping v (at path cp). */
static void parse_labels(struct pctx *c, const struct gf_ynode *v,
                         const char *cp, struct gf_policy_member *out)
{
    out->labels = gf_calloc(v->n / 2 + 1, sizeof(*out->labels));
    for (size_t i = 0; i + 1 < v->n; i += 2) {
        const struct gf_ynode *k = v->kids[i], *val = v->kids[i + 1];
        char lp[PATH_MAX_LEN];
        if (k->kind != GF_Y_SCALAR) {
            perr(c, k, cp, "wrong type: label keys must be strings");
            continue;
        }
        sub(lp, cp, k->str);
        if (!is_kind(c, val, GF_Y_SCALAR, lp))
            continue;
        struct gf_policy_label *l = &out->labels[out->n_labels++];
        l->key = gf_strdup(k->str);
        l->value = gf_strdup(val->str);
    }
}

static void parse_member(struct pctx *c, const struct gf_ynode *m,
                         const char *path, struct gf_policy_member *out)
{
    static const char *const allowed[] = {
        "name",   "apiServer", "credentialsSecret", "fencing",
        "labels", "lending",   "borrowing",         NULL};
    static const char *const fencing[] = {"agent", "none", NULL};
    char cp[PATH_MAX_LEN];
    const struct gf_ynode *v;

    out->pos.line = m->line;
    out->pos.col = m->col;
    out->max_lent.gpus = out->max_borrowed.gpus = GF_NO_CAP;
    out->max_lent.fraction_ppm = out->max_borrowed.fraction_ppm = -1;
    if (!is_kind(c, m, GF_Y_MAP, path))
        return;
    check_fields(c, m, path, allowed);
    out->name = get_str(c, m, path, "name", true, NAME_LABEL);
    out->api_server = get_str(c, m, path, "apiServer", true, NAME_ANY);
    if (out->api_server != NULL &&
        strncmp(out->api_server, "https://", 8) != 0) {
        perr(c, field(m, "apiServer"), sub(cp, path, "apiServer"),
             "invalid URL \"%s\": expected https://HOST[:PORT] (TLS is "
             "always verified)",
             out->api_server);
    }
    out->credentials_secret =
        get_str(c, m, path, "credentialsSecret", true, NAME_ANY);
    if (out->credentials_secret != NULL &&
        !secret_ref_ok(out->credentials_secret))
        perr(c, field(m, "credentialsSecret"),
             sub(cp, path, "credentialsSecret"),
             "invalid Secret reference \"%s\": expected NAMESPACE/NAME",
             out->credentials_secret);
    out->fencing = GF_FENCING_AGENT;
    if ((v = field(m, "fencing")) != NULL) {
        int e = get_enum(c, v, sub(cp, path, "fencing"), fencing);
        if (e >= 0)
            out->fencing = (enum gf_fencing)e;
    }
    if ((v = field(m, "labels")) != NULL &&
        is_kind(c, v, GF_Y_MAP, sub(cp, path, "labels")))
        parse_labels(c, v, cp, out);
    get_sub_cap(c, m, path, "lending", &out->max_lent);
    get_sub_cap(c, m, path, "borrowing", &out->max_borrowed);
}

static void parse_members(struct pctx *c, const struct gf_ynode *spec)
{
    const char *path = "spec.members";
    char cp[PATH_MAX_LEN];
    const struct gf_ynode *l = field(spec, "members");
    struct gf_policy *p = c->p;
    if (l == NULL) {
        missing(c, spec, "spec", "members");
        return;
    }
    if (!is_kind(c, l, GF_Y_SEQ, path))
        return;
    if (l->n == 0) {
        perr(c, l, path, "expected at least one member");
        return;
    }
    if (l->n > GF_POLICY_MAX_MEMBERS) {
        perr(c, l, path, "too many members (%zu): at most %d", l->n,
             GF_POLICY_MAX_MEMBERS);
        return;
    }
    p->members = gf_calloc(l->n, sizeof(*p->members));
    p->n_members = l->n;
    for (size_t i = 0; i < l->n; i++) {
        struct gf_policy_member *m = &p->members[i];
        parse_member(c, l->kids[i], idx(cp, path, i), m);
        if (m->name == NULL)
            continue;
        uintptr_t prev =
            (uintptr_t)gf_htab_get(&p->idx->members, m->name, strlen(m->name));
        if (prev != 0) {
            perr(c, field(l->kids[i], "name"), sub(cp, cp, "name"),
                 "duplicate member \"%s\" (first at line %d)", m->name,
                 p->members[prev - 1].pos.line);
            continue;
        }
        gf_htab_put(&p->idx->members, m->name, strlen(m->name),
                    (void *)(i + 1));
    }
}

/* A member reference: its index, or -1 (reported). */
static int member_ref(struct pctx *c, const struct gf_ynode *v,
                      const char *path)
{
    if (!is_kind(c, v, GF_Y_SCALAR, path))
        return -1;
    int i = gf_policy_member_index(c->p, v->str);
    if (i < 0)
        perr(c, v, path,
             "unknown member \"%s\": expected a name from spec.members",
             v->str);
    return i;
}

static void parse_sets(struct pctx *c, const struct gf_ynode *spec)
{
    static const char *const allowed[] = {"name", "members", NULL};
    const char *path = "spec.memberSets";
    char cp[PATH_MAX_LEN];
    const struct gf_ynode *l = field(spec, "memberSets");
    if (l == NULL || !is_kind(c, l, GF_Y_SEQ, path))
        return;
    c->sets = gf_calloc(l->n + 1, sizeof(*c->sets));
    for (size_t i = 0; i < l->n; i++) {
        const struct gf_ynode *s = l->kids[i];
        idx(cp, path, i);
        if (!is_kind(c, s, GF_Y_MAP, cp))
            continue;
        check_fields(c, s, cp, allowed);
        char *name = get_str(c, s, cp, "name", true, NAME_LABEL);
        const struct gf_ynode *ml = field(s, "members");
        char mp[PATH_MAX_LEN];
        if (ml == NULL)
            missing(c, s, cp, "members");
        else if (!is_kind(c, ml, GF_Y_SEQ, sub(mp, cp, "members")))
            ml = NULL;
        if (name == NULL || ml == NULL) {
            gf_free(name);
            continue;
        }
        char np[PATH_MAX_LEN];
        sub(np, cp, "name");
        if (gf_policy_member_index(c->p, name) >= 0) {
            perr(c, field(s, "name"), np,
                 "member set \"%s\" has the name of a member", name);
            gf_free(name);
            continue;
        }
        bool dup = false;
        for (size_t j = 0; j < c->n_sets && !dup; j++)
            dup = strcmp(c->sets[j].name, name) == 0;
        if (dup || strcmp(name, "*") == 0) {
            perr(c, field(s, "name"), np, "duplicate member set \"%s\"", name);
            gf_free(name);
            continue;
        }
        struct mset *ms = &c->sets[c->n_sets++];
        ms->name = name;
        ms->node = s;
        ms->list = ml;
        snprintf(ms->path, sizeof(ms->path), "%s", mp);
    }
}

static struct mset *find_set(struct pctx *c, const char *name)
{
    for (size_t i = 0; i < c->n_sets; i++)
        if (strcmp(c->sets[i].name, name) == 0)
            return &c->sets[i];
    return NULL;
}

/*
 * Expands a set depth-first. A set met again while it is still on the
 * stack is a cycle; the message names the whole chain so the admin sees
 * which definitions to untangle.
 */
static void expand_set(struct pctx *c, struct mset *s, struct mset **stack,
                       size_t depth)
{
    size_t nm = c->p->n_members;
    s->state = 1;
    s->bits = gf_calloc(nm + 1, 1);
    stack[depth] = s;
    for (size_t i = 0; i < s->list->n; i++) {
        const struct gf_ynode *v = s->list->kids[i];
        char cp[PATH_MAX_LEN];
        idx(cp, s->path, i);
        if (!is_kind(c, v, GF_Y_SCALAR, cp))
            continue;
        int m = gf_policy_member_index(c->p, v->str);
        if (m >= 0) {
            s->bits[m] = 1;
            continue;
        }
        struct mset *t = find_set(c, v->str);
        if (t == NULL) {
            perr(c, v, cp,
                 "unknown member or member set \"%s\": expected a name from "
                 "spec.members or spec.memberSets",
                 v->str);
            continue;
        }
        if (t->state == 1) {
            char chain[400] = "";
            size_t off = 0, from = 0;
            while (stack[from] != t)
                from++;
            for (size_t k = from; k <= depth; k++) {
                int w = snprintf(chain + off, sizeof(chain) - off, "%s -> ",
                                 stack[k]->name);
                if (w > 0 && (size_t)w < sizeof(chain) - off)
                    off += (size_t)w;
            }
            perr(c, v, cp, "cycle in member sets: %s%s", chain, t->name);
            continue;
        }
        if (t->state == 0)
            expand_set(c, t, stack, depth + 1);
        for (size_t k = 0; k < nm; k++)
            s->bits[k] |= t->bits[k];
    }
    s->state = 2;
}

static void expand_sets(struct pctx *c)
{
    struct mset **stack = gf_calloc(c->n_sets + 1, sizeof(*stack));
    for (size_t i = 0; i < c->n_sets; i++)
        if (c->sets[i].state == 0)
            expand_set(c, &c->sets[i], stack, 0);
    gf_free(stack);
}

/* One {member, flavor} entry r (at rp) of flavor class ci. */
static void parse_class_ref(struct pctx *c, const struct gf_ynode *r,
                            const char *rp, size_t ci)
{
    static const char *const ref_allowed[] = {"member", "flavor", NULL};
    struct gf_policy *p = c->p;
    struct gf_policy_flavor_class *fc = &p->classes[ci];
    if (!is_kind(c, r, GF_Y_MAP, rp))
        return;
    check_fields(c, r, rp, ref_allowed);
    const struct gf_ynode *mv = field(r, "member");
    char mp[PATH_MAX_LEN];
    if (mv == NULL) {
        missing(c, r, rp, "member");
        return;
    }
    int m = member_ref(c, mv, sub(mp, rp, "member"));
    char *fname = get_str(c, r, rp, "flavor", true, NAME_SUBDOMAIN);
    if (m < 0 || fname == NULL) {
        gf_free(fname);
        return;
    }
    char key[600];
    size_t kl =
        gf__key(key, sizeof(key), p->members[m].name, fname, NULL, NULL);
    uintptr_t prev = (uintptr_t)gf_htab_get(&p->idx->flavors, key, kl);
    if (prev != 0) {
        perr(c, field(r, "flavor"), sub(mp, rp, "flavor"),
             "flavor %s/%s is already in flavor class \"%s\"",
             p->members[m].name, fname, p->classes[prev - 1].name);
        gf_free(fname);
        return;
    }
    gf_htab_put(&p->idx->flavors, key, kl, (void *)(ci + 1));
    fc->flavors[fc->n_flavors].member = (size_t)m;
    fc->flavors[fc->n_flavors++].flavor = fname;
}

/* One flavorEquivalence entry e (at cp). */
static void parse_class(struct pctx *c, const struct gf_ynode *e,
                        const char *cp)
{
    static const char *const allowed[] = {"name", "flavors", NULL};
    char fp[PATH_MAX_LEN], rp[PATH_MAX_LEN];
    struct gf_policy *p = c->p;
    if (!is_kind(c, e, GF_Y_MAP, cp))
        return;
    check_fields(c, e, cp, allowed);
    char *name = get_str(c, e, cp, "name", true, NAME_SUBDOMAIN);
    const struct gf_ynode *fl = field(e, "flavors");
    if (fl == NULL)
        missing(c, e, cp, "flavors");
    else if (!is_kind(c, fl, GF_Y_SEQ, sub(fp, cp, "flavors")))
        fl = NULL;
    if (name == NULL || fl == NULL) {
        gf_free(name);
        return;
    }
    for (size_t j = 0; j < p->n_classes; j++)
        if (strcmp(p->classes[j].name, name) == 0)
            perr(c, field(e, "name"), sub(rp, cp, "name"),
                 "duplicate flavor class \"%s\"", name);
    size_t ci = p->n_classes++;
    p->classes[ci].name = name;
    p->classes[ci].flavors = gf_calloc(fl->n + 1, sizeof(*p->classes->flavors));
    for (size_t j = 0; j < fl->n; j++)
        parse_class_ref(c, fl->kids[j], idx(rp, fp, j), ci);
}

static void parse_classes(struct pctx *c, const struct gf_ynode *spec)
{
    const char *path = "spec.flavorEquivalence";
    char cp[PATH_MAX_LEN];
    struct gf_policy *p = c->p;
    const struct gf_ynode *l = field(spec, "flavorEquivalence");
    if (l == NULL || !is_kind(c, l, GF_Y_SEQ, path))
        return;
    p->classes = gf_calloc(l->n + 1, sizeof(*p->classes));
    for (size_t i = 0; i < l->n; i++)
        parse_class(c, l->kids[i], idx(cp, path, i));
}

/* An optional boolean field of map m. YAML 1.2's core spelling only
 * (true, false): a "yes" that YAML 1.1 would read as true must not open
 * something by accident. */
static void get_bool(struct pctx *c, const struct gf_ynode *m, const char *path,
                     const char *key, bool *out)
{
    char vp[PATH_MAX_LEN];
    const struct gf_ynode *v = field(m, key);
    if (v == NULL || !is_kind(c, v, GF_Y_SCALAR, sub(vp, path, key)))
        return;
    if (strcmp(v->str, "true") == 0)
        *out = true;
    else if (strcmp(v->str, "false") == 0)
        *out = false;
    else
        perr(c, v, vp, "wrong type: expected true or false, got \"%s\"",
             v->str);
}

static void parse_overflow(struct pctx *c, const struct gf_ynode *g,
                           const char *path, struct gf_policy_group *out)
{
    static const char *const allowed[] = {
        "namespaces", "jobKinds", "minPriority", "allowHostAccess", NULL};
    char cp[PATH_MAX_LEN], vp[PATH_MAX_LEN];
    const struct gf_ynode *o = field(g, "overflow"), *v;
    if (o != NULL && is_kind(c, o, GF_Y_MAP, sub(cp, path, "overflow"))) {
        check_fields(c, o, cp, allowed);
        if ((v = field(o, "namespaces")) != NULL) {
            out->n_namespaces =
                get_str_list(c, v, sub(vp, cp, "namespaces"), &out->namespaces);
            for (size_t i = 0; i < out->n_namespaces; i++)
                if (strcmp(out->namespaces[i], "*") != 0 &&
                    !dns_name(out->namespaces[i], 63, false))
                    perr(c, v->kids[i], idx(vp, vp, i),
                         "invalid namespace \"%s\": expected a DNS-1123 "
                         "label or \"*\"",
                         out->namespaces[i]);
        }
        if ((v = field(o, "jobKinds")) != NULL)
            out->n_job_kinds =
                get_str_list(c, v, sub(vp, cp, "jobKinds"), &out->job_kinds);
        if ((v = field(o, "minPriority")) != NULL &&
            is_kind(c, v, GF_Y_SCALAR, sub(vp, cp, "minPriority"))) {
            int64_t x;
            if (gf_parse_i64(v->str, &x) != 0 || x < INT32_MIN || x > INT32_MAX)
                perr(c, v, vp,
                     "wrong type: expected a 32-bit integer priority, got "
                     "\"%s\"",
                     v->str);
            else {
                out->has_min_priority = true;
                out->min_priority = (int32_t)x;
            }
        }
        get_bool(c, o, cp, "allowHostAccess", &out->allow_host_access);
    }
    if (out->job_kinds == NULL || out->n_job_kinds == 0) {
        gf_free(out->job_kinds);
        out->job_kinds = gf_calloc(2, sizeof(char *));
        out->job_kinds[0] = gf_strdup(GF_POLICY_DEFAULT_JOB_KIND);
        out->n_job_kinds = 1;
    }
}

/*
 * budgetFlavors: the flavor classes whose quota is a budget rather than
 * hardware, the only ones a loan may move (a loan of hardware quota would
 * admit Jobs in a cluster whose nodes cannot run them). A group that may
 * lend by loan must name at least one: with none, its loans could never
 * start, and a silent redirect-only group is not what its author meant.
 */
static void parse_budget_flavors(struct pctx *c, const struct gf_ynode *g,
                                 const char *path, struct gf_policy_group *out)
{
    char cp[PATH_MAX_LEN], ep[PATH_MAX_LEN];
    const struct gf_ynode *v = field(g, "budgetFlavors");
    if (v != NULL)
        out->n_budget_flavors = get_str_list(
            c, v, sub(cp, path, "budgetFlavors"), &out->budget_flavors);
    for (size_t i = 0; i < out->n_budget_flavors; i++) {
        /* get_str_list drops the entries it reports: positions then only
         * point at the list. */
        const struct gf_ynode *at =
            out->n_budget_flavors == v->n ? v->kids[i] : v;
        idx(ep, cp, i);
        if (!dns_name(out->budget_flavors[i], 253, true))
            perr(c, at, ep,
                 "invalid flavor class \"%s\": expected a DNS-1123 "
                 "subdomain (a spec.flavorEquivalence name or a "
                 "ResourceFlavor name)",
                 out->budget_flavors[i]);
        for (size_t j = 0; j < i; j++)
            if (strcmp(out->budget_flavors[i], out->budget_flavors[j]) == 0)
                perr(c, at, ep, "duplicate flavor class \"%s\"",
                     out->budget_flavors[i]);
    }
    if ((out->modes & GF_MODE_LOAN) && out->n_budget_flavors == 0) {
        const struct gf_ynode *at = field(g, "mode");
        perr(c, v != NULL ? v : at, sub(cp, path, v ? "budgetFlavors" : "mode"),
             "mode %s needs budgetFlavors: the flavor classes whose quota is "
             "a budget that a loan may move (at least one)",
             out->modes & GF_MODE_REDIRECT ? "both" : "loan");
    }
}

static void parse_group(struct pctx *c, const struct gf_ynode *g,
                        const char *path, struct gf_policy_group *out)
{
    static const char *const allowed[] = {
        "name",     "mode",    "budgetFlavors",    "clusterQueues",
        "overflow", "reserve", "namespaceMapping", "maxReclaimsPerHour",
        NULL};
    static const char *const modes[] = {"redirect", "loan", "both", NULL};
    static const char *const res_allowed[] = {"gpus", "fraction", NULL};
    char cp[PATH_MAX_LEN];
    const struct gf_ynode *v;

    out->pos.line = g->line;
    out->pos.col = g->col;
    out->modes = GF_MODE_REDIRECT;
    out->reserve.gpus = GF_NO_CAP;
    out->reserve.fraction_ppm = -1;
    out->max_reclaims_per_hour = GF_NO_CAP;
    if (!is_kind(c, g, GF_Y_MAP, path))
        return;
    check_fields(c, g, path, allowed);
    out->name = get_str(c, g, path, "name", true, NAME_LABEL);
    if ((v = field(g, "mode")) != NULL) {
        int e = get_enum(c, v, sub(cp, path, "mode"), modes);
        if (e >= 0)
            out->modes = e == 0   ? GF_MODE_REDIRECT
                         : e == 1 ? GF_MODE_LOAN
                                  : GF_MODE_REDIRECT | GF_MODE_LOAN;
    }
    parse_budget_flavors(c, g, path, out);
    if (field(g, "clusterQueues") == NULL)
        missing(c, g, path, "clusterQueues");
    parse_overflow(c, g, path, out);
    if ((v = field(g, "reserve")) != NULL &&
        is_kind(c, v, GF_Y_MAP, sub(cp, path, "reserve"))) {
        check_fields(c, v, cp, res_allowed);
        get_cap(c, v, cp, "gpus", "fraction", &out->reserve);
    }
    if ((v = field(g, "maxReclaimsPerHour")) != NULL)
        get_count(c, v, sub(cp, path, "maxReclaimsPerHour"),
                  &out->max_reclaims_per_hour);
}

/* The member named by entry e's "member" field (at ep), or -1. */
static int entry_member(struct pctx *c, const struct gf_ynode *e,
                        const char *ep)
{
    char fp[PATH_MAX_LEN];
    const struct gf_ynode *mv = field(e, "member");
    if (mv == NULL) {
        missing(c, e, ep, "member");
        return -1;
    }
    return member_ref(c, mv, sub(fp, ep, "member"));
}

/* One clusterQueues entry q (at qp) of group gi. */
static void resolve_queue(struct pctx *c, const struct gf_ynode *q,
                          const char *qp, size_t gi)
{
    static const char *const q_allowed[] = {"member", "name", NULL};
    struct gf_policy *p = c->p;
    struct gf_policy_group *out = &p->groups[gi];
    if (!is_kind(c, q, GF_Y_MAP, qp))
        return;
    check_fields(c, q, qp, q_allowed);
    int m = entry_member(c, q, qp);
    char *cq = get_str(c, q, qp, "name", true, NAME_SUBDOMAIN);
    if (m < 0 || cq == NULL) {
        gf_free(cq);
        return;
    }
    char key[600];
    size_t kl = gf__key(key, sizeof(key), p->members[m].name, cq, NULL, NULL);
    uintptr_t prev = (uintptr_t)gf_htab_get(&p->idx->queues, key, kl);
    if (prev != 0) {
        const struct gf_policy_group *pg = &p->groups[prev - 1];
        perr(c, q, qp,
             "ClusterQueue %s/%s is claimed by two groups: \"%s\" "
             "(line %d) and \"%s\"",
             p->members[m].name, cq, pg->name ? pg->name : "?", pg->pos.line,
             out->name ? out->name : "?");
        gf_free(cq);
        return;
    }
    gf_htab_put(&p->idx->queues, key, kl, (void *)(gi + 1));
    struct gf_policy_queue *pq = &out->queues[out->n_queues++];
    pq->member = (size_t)m;
    pq->cluster_queue = cq;
    pq->pos.line = q->line;
    pq->pos.col = q->col;
}

/* One namespaceMapping entry e (at ep) of group out. */
static void resolve_ns_map(struct pctx *c, const struct gf_ynode *e,
                           const char *ep, struct gf_policy_group *out)
{
    static const char *const m_allowed[] = {"member", "from", "to", NULL};
    if (!is_kind(c, e, GF_Y_MAP, ep))
        return;
    check_fields(c, e, ep, m_allowed);
    int m = entry_member(c, e, ep);
    char *from = get_str(c, e, ep, "from", true, NAME_LABEL);
    char *to = get_str(c, e, ep, "to", true, NAME_LABEL);
    if (m < 0 || from == NULL || to == NULL) {
        gf_free(from);
        gf_free(to);
        return;
    }
    for (size_t j = 0; j < out->n_ns_map; j++)
        if (out->ns_map[j].member == (size_t)m &&
            strcmp(out->ns_map[j].from, from) == 0)
            perr(c, e, ep, "namespace \"%s\" is mapped twice for member \"%s\"",
                 from, c->p->members[m].name);
    struct gf_policy_ns_map *nm = &out->ns_map[out->n_ns_map++];
    nm->member = (size_t)m;
    nm->from = from;
    nm->to = to;
}

/* Pass two for a group: member references and ClusterQueue claims. */
static void resolve_group(struct pctx *c, const struct gf_ynode *g,
                          const char *path, size_t gi)
{
    struct gf_policy_group *out = &c->p->groups[gi];
    char cp[PATH_MAX_LEN], ep[PATH_MAX_LEN];
    const struct gf_ynode *l = field(g, "clusterQueues");
    if (l != NULL && is_kind(c, l, GF_Y_SEQ, sub(cp, path, "clusterQueues"))) {
        if (l->n == 0)
            perr(c, l, cp, "expected at least one ClusterQueue");
        out->queues = gf_calloc(l->n + 1, sizeof(*out->queues));
        for (size_t i = 0; i < l->n; i++)
            resolve_queue(c, l->kids[i], idx(ep, cp, i), gi);
    }
    l = field(g, "namespaceMapping");
    if (l != NULL &&
        is_kind(c, l, GF_Y_SEQ, sub(cp, path, "namespaceMapping"))) {
        out->ns_map = gf_calloc(l->n + 1, sizeof(*out->ns_map));
        for (size_t i = 0; i < l->n; i++)
            resolve_ns_map(c, l->kids[i], idx(ep, cp, i), out);
    }
}

static void parse_groups(struct pctx *c, const struct gf_ynode *spec)
{
    const char *path = "spec.groups";
    char cp[PATH_MAX_LEN];
    struct gf_policy *p = c->p;
    const struct gf_ynode *l = field(spec, "groups");
    if (l == NULL) {
        missing(c, spec, "spec", "groups");
        return;
    }
    if (!is_kind(c, l, GF_Y_SEQ, path))
        return;
    if (l->n > GF_POLICY_MAX_GROUPS) {
        perr(c, l, path, "too many groups (%zu): at most %d", l->n,
             GF_POLICY_MAX_GROUPS);
        return;
    }
    p->groups = gf_calloc(l->n + 1, sizeof(*p->groups));
    p->n_groups = l->n;
    c->group_nodes = gf_calloc(l->n + 1, sizeof(*c->group_nodes));
    for (size_t i = 0; i < l->n; i++) {
        struct gf_policy_group *g = &p->groups[i];
        parse_group(c, l->kids[i], idx(cp, path, i), g);
        c->group_nodes[i] = l->kids[i];
        if (g->name == NULL)
            continue;
        uintptr_t prev =
            (uintptr_t)gf_htab_get(&p->idx->groups, g->name, strlen(g->name));
        if (prev != 0) {
            perr(c, field(l->kids[i], "name"), sub(cp, cp, "name"),
                 "duplicate group \"%s\" (first at line %d)", g->name,
                 p->groups[prev - 1].pos.line);
            continue;
        }
        gf_htab_put(&p->idx->groups, g->name, strlen(g->name), (void *)(i + 1));
    }
    for (size_t i = 0; i < l->n; i++)
        if (l->kids[i]->kind == GF_Y_MAP)
            resolve_group(c, l->kids[i], idx(cp, path, i), i);
}

/* Expands a lenders/borrowers list into a member bitmap. */
static unsigned char *member_list(struct pctx *c, const struct gf_ynode *r,
                                  const char *path, const char *key)
{
    char cp[PATH_MAX_LEN], ip[PATH_MAX_LEN];
    size_t nm = c->p->n_members;
    const struct gf_ynode *l = field(r, key);
    if (l == NULL) {
        missing(c, r, path, key);
        return NULL;
    }
    if (!is_kind(c, l, GF_Y_SEQ, sub(cp, path, key)))
        return NULL;
    if (l->n == 0) {
        perr(c, l, cp, "expected at least one member, member set or \"*\"");
        return NULL;
    }
    unsigned char *bits = gf_calloc(nm + 1, 1);
    for (size_t i = 0; i < l->n; i++) {
        const struct gf_ynode *v = l->kids[i];
        idx(ip, cp, i);
        if (!is_kind(c, v, GF_Y_SCALAR, ip))
            continue;
        if (strcmp(v->str, "*") == 0) {
            memset(bits, 1, nm);
            continue;
        }
        int m = gf_policy_member_index(c->p, v->str);
        if (m >= 0) {
            bits[m] = 1;
            continue;
        }
        struct mset *s = find_set(c, v->str);
        if (s == NULL) {
            perr(c, v, ip,
                 "unknown member or member set \"%s\": expected a name from "
                 "spec.members or spec.memberSets, or \"*\"",
                 v->str);
            continue;
        }
        for (size_t k = 0; k < nm && s->bits != NULL; k++)
            bits[k] |= s->bits[k];
    }
    return bits;
}

static size_t *bits_to_list(const unsigned char *bits, size_t n, size_t *len)
{
    size_t *l = gf_calloc(n + 1, sizeof(*l));
    *len = 0;
    for (size_t i = 0; i < n; i++)
        if (bits[i])
            l[(*len)++] = i;
    return l;
}

static void parse_rule(struct pctx *c, const struct gf_ynode *r,
                       const char *path, size_t ri)
{
    static const char *const allowed[] = {"name",        "lenders", "borrowers",
                                          "groups",      "action",  "maxGPUs",
                                          "maxFraction", NULL};
    static const char *const actions[] = {"allow", "deny", NULL};
    struct gf_policy *p = c->p;
    struct gf_policy_rule *out = &p->rules[ri];
    char cp[PATH_MAX_LEN], ip[PATH_MAX_LEN];
    const struct gf_ynode *v;

    out->pos.line = r->line;
    out->pos.col = r->col;
    out->max.gpus = GF_NO_CAP;
    out->max.fraction_ppm = -1;
    if (!is_kind(c, r, GF_Y_MAP, path))
        return;
    check_fields(c, r, path, allowed);
    out->name = get_str(c, r, path, "name", false, NAME_SUBDOMAIN);
    if (out->name == NULL) {
        char nm[32];
        snprintf(nm, sizeof(nm), "rule-%zu", ri);
        out->name = gf_strdup(nm);
    }
    if ((v = field(r, "action")) != NULL)
        out->deny = get_enum(c, v, sub(cp, path, "action"), actions) == 1;
    get_cap(c, r, path, "maxGPUs", "maxFraction", &out->max);
    if (out->deny && (out->max.gpus != GF_NO_CAP || out->max.fraction_ppm >= 0))
        perr(c, r, path,
             "contradiction: a deny rule cannot carry maxGPUs or maxFraction");
    p->idx->rule_lenders[ri] = member_list(c, r, path, "lenders");
    p->idx->rule_borrowers[ri] = member_list(c, r, path, "borrowers");
    if (p->idx->rule_lenders[ri] != NULL)
        out->lenders = bits_to_list(p->idx->rule_lenders[ri], p->n_members,
                                    &out->n_lenders);
    if (p->idx->rule_borrowers[ri] != NULL)
        out->borrowers = bits_to_list(p->idx->rule_borrowers[ri], p->n_members,
                                      &out->n_borrowers);
    if ((v = field(r, "groups")) != NULL &&
        is_kind(c, v, GF_Y_SEQ, sub(cp, path, "groups"))) {
        out->groups = gf_calloc(v->n + 1, sizeof(*out->groups));
        for (size_t i = 0; i < v->n; i++) {
            const struct gf_ynode *gv = v->kids[i];
            idx(ip, cp, i);
            if (!is_kind(c, gv, GF_Y_SCALAR, ip))
                continue;
            int g = gf_policy_group_index(p, gv->str);
            if (g < 0) {
                perr(c, gv, ip,
                     "unknown group \"%s\": expected a name from spec.groups",
                     gv->str);
                continue;
            }
            out->groups[out->n_groups++] = (size_t)g;
        }
        if (out->n_groups == 0)
            out->groups[out->n_groups++] = SIZE_MAX; /* matches nothing */
    }
}

static bool rule_has_group(const struct gf_policy_rule *r, size_t g)
{
    if (r->n_groups == 0)
        return true;
    for (size_t i = 0; i < r->n_groups; i++)
        if (r->groups[i] == g)
            return true;
    return false;
}

/*
 * Two rules contradict when one allows and the other denies the same
 * lender -> borrower pair in the same group. Order-dependent "first match
 * wins" semantics would hide such mistakes, so they are refused and both
 * rules are named.
 */
/* The first group both rules cover, or SIZE_MAX. */
static size_t common_group(const struct gf_policy *p,
                           const struct gf_policy_rule *a,
                           const struct gf_policy_rule *b)
{
    for (size_t g = 0; g < p->n_groups; g++)
        if (rule_has_group(a, g) && rule_has_group(b, g))
            return g;
    return SIZE_MAX;
}

/*
 * A lender both rules name and a borrower (not that lender) both name:
 * true with *lender and *borrower set.
 */
static bool common_pair(const struct gf_policy *p, size_t i, size_t j,
                        size_t *lender, size_t *borrower)
{
    const unsigned char *al = p->idx->rule_lenders[i];
    const unsigned char *ab = p->idx->rule_borrowers[i];
    const unsigned char *bl = p->idx->rule_lenders[j];
    const unsigned char *bb = p->idx->rule_borrowers[j];
    for (size_t l = 0; l < p->n_members; l++) {
        if (!al[l] || !bl[l])
            continue;
        for (size_t m = 0; m < p->n_members; m++)
            if (ab[m] && bb[m] && m != l) {
                *lender = l;
                *borrower = m;
                return true;
            }
    }
    return false;
}

static void check_contradictions(struct pctx *c,
                                 const struct gf_ynode *const *nodes)
{
    struct gf_policy *p = c->p;
    char cp[PATH_MAX_LEN];
    for (size_t j = 0; j < p->n_rules; j++) {
        const struct gf_policy_rule *b = &p->rules[j];
        if (p->idx->rule_lenders[j] == NULL ||
            p->idx->rule_borrowers[j] == NULL)
            continue;
        for (size_t i = 0; i < j; i++) {
            const struct gf_policy_rule *a = &p->rules[i];
            if (a->deny == b->deny || p->idx->rule_lenders[i] == NULL ||
                p->idx->rule_borrowers[i] == NULL)
                continue;
            size_t g = common_group(p, a, b), l, m;
            if (g == SIZE_MAX || !common_pair(p, i, j, &l, &m))
                continue;
            perr(c, nodes[j], idx(cp, "spec.sharing.rules", j),
                 "contradiction: rule \"%s\" %s %s -> %s in group \"%s\" "
                 "that rule \"%s\" (line %d) %s",
                 b->name, b->deny ? "denies" : "allows", p->members[l].name,
                 p->members[m].name,
                 p->groups[g].name ? p->groups[g].name : "?", a->name,
                 a->pos.line, a->deny ? "denies" : "allows");
        }
    }
}

static void parse_sharing(struct pctx *c, const struct gf_ynode *spec)
{
    static const char *const allowed[] = {"default", "rules", NULL};
    static const char *const defaults[] = {"allow", "deny", NULL};
    const char *path = "spec.sharing";
    char cp[PATH_MAX_LEN], rp[PATH_MAX_LEN];
    struct gf_policy *p = c->p;
    const struct gf_ynode *s = field(spec, "sharing"), *v;
    if (s == NULL || !is_kind(c, s, GF_Y_MAP, path))
        return;
    check_fields(c, s, path, allowed);
    if ((v = field(s, "default")) != NULL)
        p->default_deny =
            get_enum(c, v, sub(cp, path, "default"), defaults) == 1;
    const struct gf_ynode *l = field(s, "rules");
    if (l == NULL || !is_kind(c, l, GF_Y_SEQ, sub(cp, path, "rules")))
        return;
    if (l->n > GF_POLICY_MAX_RULES) {
        perr(c, l, cp, "too many rules (%zu): at most %d", l->n,
             GF_POLICY_MAX_RULES);
        return;
    }
    p->rules = gf_calloc(l->n + 1, sizeof(*p->rules));
    p->n_rules = l->n;
    p->idx->rule_lenders = gf_calloc(l->n + 1, sizeof(unsigned char *));
    p->idx->rule_borrowers = gf_calloc(l->n + 1, sizeof(unsigned char *));
    for (size_t i = 0; i < l->n; i++)
        parse_rule(c, l->kids[i], idx(rp, cp, i), i);
    check_contradictions(c, (const struct gf_ynode *const *)l->kids);
}

static void timing_defaults(struct gf_policy *p)
{
    struct gf_policy_timing *t = &p->timing;
    t->overflow_after_ms = GF_POLICY_DEFAULT_OVERFLOW_AFTER_MS;
    t->lease_duration_ms = GF_POLICY_DEFAULT_LEASE_DURATION_MS;
    t->clock_drift_ppm = GF_POLICY_DEFAULT_CLOCK_DRIFT_PPM;
    t->fence_margin_ms = GF_POLICY_DEFAULT_FENCE_MARGIN_MS;
    t->admit_timeout_ms = GF_POLICY_DEFAULT_ADMIT_TIMEOUT_MS;
    t->reclaim_after_ms = GF_POLICY_DEFAULT_RECLAIM_AFTER_MS;
    t->grace_period_ms = GF_POLICY_DEFAULT_GRACE_PERIOD_MS;
    t->min_run_time_ms = GF_POLICY_DEFAULT_MIN_RUN_TIME_MS;
    p->victim_order[0] = GF_VICTIM_LOWEST_PRIORITY;
    p->victim_order[1] = GF_VICTIM_NEWEST;
    p->n_victim_order = 2;
}

/* The durations of spec.timing (m), and their lower bounds. */
static void timing_durations(struct pctx *c, const struct gf_ynode *m,
                             const char *path)
{
    char cp[PATH_MAX_LEN];
    struct gf_policy_timing *t = &c->p->timing;
    const struct gf_ynode *v;
    struct {
        const char *key;
        int64_t *dst;
    } durs[] = {{"overflowAfter", &t->overflow_after_ms},
                {"leaseDuration", &t->lease_duration_ms},
                {"fenceMargin", &t->fence_margin_ms},
                {"admitTimeout", &t->admit_timeout_ms},
                {"reclaimAfter", &t->reclaim_after_ms},
                {"gracePeriod", &t->grace_period_ms},
                {"minRunTime", &t->min_run_time_ms}};
    for (size_t i = 0; i < sizeof(durs) / sizeof(durs[0]); i++) {
        int64_t ms;
        if ((v = field(m, durs[i].key)) != NULL &&
            get_duration(c, v, sub(cp, path, durs[i].key), &ms))
            *durs[i].dst = ms;
    }
    v = field(m, "leaseDuration");
    if (v != NULL && t->lease_duration_ms < 3000)
        perr(c, v, sub(cp, path, "leaseDuration"),
             "lease duration %lldms is too short: expected at least 3s (the "
             "heartbeat is renewed every D/3)",
             (long long)t->lease_duration_ms);
    v = field(m, "admitTimeout");
    if (v != NULL && t->admit_timeout_ms == 0)
        perr(c, v, sub(cp, path, "admitTimeout"),
             "expected a duration greater than 0");
}

static void timing_drift(struct pctx *c, const struct gf_ynode *m,
                         const char *path)
{
    char cp[PATH_MAX_LEN];
    const struct gf_ynode *v = field(m, "clockDrift");
    int32_t ppm;
    if (v == NULL || !get_fraction(c, v, sub(cp, path, "clockDrift"), &ppm))
        return;
    if (ppm > GF_PPM / 2)
        perr(c, v, cp, "clock drift %s is implausible: expected at most 0.5",
             v->str);
    else
        c->p->timing.clock_drift_ppm = ppm;
}

/* Appends victim key e unless it is already there (then an error). */
static void add_victim(struct pctx *c, const struct gf_ynode *v, const char *ip,
                       int e, const char *const *victims)
{
    struct gf_policy *p = c->p;
    for (size_t j = 0; j < p->n_victim_order; j++)
        if (p->victim_order[j] == (enum gf_victim_key)e) {
            perr(c, v, ip, "duplicate key \"%s\"", victims[e]);
            return;
        }
    p->victim_order[p->n_victim_order++] = (enum gf_victim_key)e;
}

static void timing_victims(struct pctx *c, const struct gf_ynode *m,
                           const char *path)
{
    static const char *const victims[] = {
        "lowestPriority", "newest", "oldest", "largest", "smallest", NULL};
    char cp[PATH_MAX_LEN], ip[PATH_MAX_LEN];
    struct gf_policy *p = c->p;
    const struct gf_ynode *v = field(m, "victimOrder");
    if (v == NULL || !is_kind(c, v, GF_Y_SEQ, sub(cp, path, "victimOrder")))
        return;
    if (v->n == 0 || v->n > GF_VICTIM_MAX_KEYS) {
        perr(c, v, cp, "expected 1 to %d keys", GF_VICTIM_MAX_KEYS);
        return;
    }
    p->n_victim_order = 0;
    for (size_t i = 0; i < v->n; i++) {
        int e = get_enum(c, v->kids[i], idx(ip, cp, i), victims);
        if (e >= 0)
            add_victim(c, v->kids[i], ip, e, victims);
    }
    if (p->n_victim_order == 0) {
        p->victim_order[0] = GF_VICTIM_LOWEST_PRIORITY;
        p->n_victim_order = 1;
    }
}

static void parse_timing(struct pctx *c, const struct gf_ynode *spec)
{
    static const char *const allowed[] = {"overflowAfter", "leaseDuration",
                                          "clockDrift",    "fenceMargin",
                                          "admitTimeout",  "reclaimAfter",
                                          "gracePeriod",   "victimOrder",
                                          "minRunTime",    NULL};
    const char *path = "spec.timing";
    const struct gf_ynode *m = field(spec, "timing");
    timing_defaults(c->p);
    if (m == NULL || !is_kind(c, m, GF_Y_MAP, path))
        return;
    check_fields(c, m, path, allowed);
    timing_durations(c, m, path);
    timing_drift(c, m, path);
    timing_victims(c, m, path);
}

static void parse_spec(struct pctx *c, const struct gf_ynode *spec)
{
    static const char *const allowed[] = {
        "resource", "locality", "members", "memberSets", "flavorEquivalence",
        "groups",   "sharing",  "timing",  NULL};
    char cp[PATH_MAX_LEN];
    struct gf_policy *p = c->p;
    const struct gf_ynode *v;
    check_fields(c, spec, "spec", allowed);
    p->resource = get_str(c, spec, "spec", "resource", false, NAME_ANY);
    if (p->resource == NULL)
        p->resource = gf_strdup(GF_POLICY_DEFAULT_RESOURCE);
    if ((v = field(spec, "locality")) != NULL)
        p->n_locality =
            get_str_list(c, v, sub(cp, "spec", "locality"), &p->locality);
    parse_members(c, spec);
    parse_sets(c, spec);
    expand_sets(c);
    parse_classes(c, spec);
    parse_groups(c, spec);
    parse_sharing(c, spec);
    parse_timing(c, spec);
}

static void parse_root(struct pctx *c, const struct gf_ynode *root)
{
    static const char *const allowed[] = {"apiVersion", "kind", "metadata",
                                          "spec", NULL};
    static const char *const meta_allowed[] = {"name", "namespace", "labels",
                                               "annotations", NULL};
    const struct gf_ynode *v;
    if (!is_kind(c, root, GF_Y_MAP, ""))
        return;
    check_fields(c, root, "", allowed);
    if ((v = field(root, "apiVersion")) == NULL)
        missing(c, root, "", "apiVersion");
    else if (v->kind != GF_Y_SCALAR ||
             strcmp(v->str, GF_POLICY_API_VERSION) != 0)
        perr(c, v, "apiVersion", "expected \"%s\"", GF_POLICY_API_VERSION);
    if ((v = field(root, "kind")) == NULL)
        missing(c, root, "", "kind");
    else if (v->kind != GF_Y_SCALAR || strcmp(v->str, GF_POLICY_KIND) != 0)
        perr(c, v, "kind", "expected \"%s\"", GF_POLICY_KIND);
    if ((v = field(root, "metadata")) != NULL &&
        is_kind(c, v, GF_Y_MAP, "metadata")) {
        check_fields(c, v, "metadata", meta_allowed);
        c->p->name = get_str(c, v, "metadata", "name", false, NAME_SUBDOMAIN);
    }
    if (c->p->name == NULL)
        c->p->name = gf_strdup("default");
    if ((v = field(root, "spec")) == NULL)
        missing(c, root, "", "spec");
    else if (is_kind(c, v, GF_Y_MAP, "spec"))
        parse_spec(c, v);
}

int gf_policy_parse(const char *buf, size_t len, struct gf_policy **out,
                    struct gf_policy_diag *diag)
{
    struct gf_ynode *root = NULL;
    struct gf_yaml_error yerr;
    struct pctx c;
    int rc;
    size_t first = diag->n;

    *out = NULL;
    if (len > GF_POLICY_MAX_BYTES) {
        char m[128];
        snprintf(m, sizeof(m), "file is %zu bytes: the limit is %u", len,
                 GF_POLICY_MAX_BYTES);
        diag_add(diag, 0, 0, "", m);
        return GF_E2BIG;
    }
    /* The defaults: no aliases, one document, the hard caps. */
    rc = gf_yaml_load(buf, len, NULL, &root, &yerr);
    if (rc != 0) {
        diag_add(diag, yerr.line, yerr.col, "", yerr.msg);
        return GF_ECONFIG;
    }
    if (root == NULL) {
        diag_add(diag, 1, 1, "", "empty document: expected a FederationPolicy");
        return GF_ECONFIG;
    }
    memset(&c, 0, sizeof(c));
    c.d = diag;
    c.p = gf_calloc(1, sizeof(*c.p));
    c.p->idx = gf_calloc(1, sizeof(*c.p->idx));
    parse_root(&c, root);

    for (size_t i = 0; i < c.n_sets; i++) {
        gf_free(c.sets[i].name);
        gf_free(c.sets[i].bits);
    }
    gf_free(c.sets);
    gf_free(c.group_nodes);
    gf_ynode_free(root);
    if (diag->n > first || diag->dropped > 0) {
        qsort(diag->errs + first, diag->n - first, sizeof(*diag->errs),
              err_cmp);
        gf_policy_free(c.p);
        return GF_ECONFIG;
    }
    *out = c.p;
    return 0;
}

void gf_policy_free(struct gf_policy *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n_members; i++) {
        struct gf_policy_member *m = &p->members[i];
        gf_free(m->name);
        gf_free(m->api_server);
        gf_free(m->credentials_secret);
        for (size_t j = 0; j < m->n_labels; j++) {
            gf_free(m->labels[j].key);
            gf_free(m->labels[j].value);
        }
        gf_free(m->labels);
    }
    gf_free(p->members);
    for (size_t i = 0; i < p->n_classes; i++) {
        for (size_t j = 0; j < p->classes[i].n_flavors; j++)
            gf_free(p->classes[i].flavors[j].flavor);
        gf_free(p->classes[i].flavors);
        gf_free(p->classes[i].name);
    }
    gf_free(p->classes);
    for (size_t i = 0; i < p->n_groups; i++) {
        struct gf_policy_group *g = &p->groups[i];
        gf_free(g->name);
        for (size_t j = 0; j < g->n_queues; j++)
            gf_free(g->queues[j].cluster_queue);
        gf_free(g->queues);
        free_str_list(g->namespaces, g->n_namespaces);
        free_str_list(g->job_kinds, g->n_job_kinds);
        free_str_list(g->budget_flavors, g->n_budget_flavors);
        for (size_t j = 0; j < g->n_ns_map; j++) {
            gf_free(g->ns_map[j].from);
            gf_free(g->ns_map[j].to);
        }
        gf_free(g->ns_map);
    }
    gf_free(p->groups);
    for (size_t i = 0; i < p->n_rules; i++) {
        gf_free(p->rules[i].name);
        gf_free(p->rules[i].lenders);
        gf_free(p->rules[i].borrowers);
        gf_free(p->rules[i].groups);
        if (p->idx->rule_lenders != NULL) {
            gf_free(p->idx->rule_lenders[i]);
            gf_free(p->idx->rule_borrowers[i]);
        }
    }
    gf_free(p->rules);
    free_str_list(p->locality, p->n_locality);
    gf_free(p->name);
    gf_free(p->resource);
    if (p->idx != NULL) {
        gf_htab_free(&p->idx->members);
        gf_htab_free(&p->idx->groups);
        gf_htab_free(&p->idx->queues);
        gf_htab_free(&p->idx->flavors);
        gf_free(p->idx->rule_lenders);
        gf_free(p->idx->rule_borrowers);
        gf_free(p->idx);
    }
    gf_free(p);
}

/* ---- lookups ------------------------------------------------------------ */

int gf_policy_member_index(const struct gf_policy *p, const char *name)
{
    uintptr_t v = (uintptr_t)gf_htab_get(&p->idx->members, name, strlen(name));
    return (int)v - 1;
}

int gf_policy_group_index(const struct gf_policy *p, const char *name)
{
    uintptr_t v = (uintptr_t)gf_htab_get(&p->idx->groups, name, strlen(name));
    return (int)v - 1;
}

int gf_policy_group_of(const struct gf_policy *p, const char *member,
                       const char *cluster_queue)
{
    char key[600];
    size_t kl = gf__key(key, sizeof(key), member, cluster_queue, NULL, NULL);
    if (kl == 0)
        return -1;
    return (int)(uintptr_t)gf_htab_get(&p->idx->queues, key, kl) - 1;
}

const char *gf_policy_flavor_class(const struct gf_policy *p,
                                   const char *member, const char *flavor)
{
    char key[600];
    size_t kl = gf__key(key, sizeof(key), member, flavor, NULL, NULL);
    uintptr_t v = kl ? (uintptr_t)gf_htab_get(&p->idx->flavors, key, kl) : 0;
    return v != 0 ? p->classes[v - 1].name : flavor;
}

const char *gf_policy_member_label(const struct gf_policy_member *m,
                                   const char *key)
{
    for (size_t i = 0; i < m->n_labels; i++)
        if (strcmp(m->labels[i].key, key) == 0)
            return m->labels[i].value;
    return NULL;
}

static void cap_min(struct gf_policy_cap *dst, const struct gf_policy_cap *c)
{
    if (c->gpus < dst->gpus)
        dst->gpus = c->gpus;
    if (c->fraction_ppm >= 0 &&
        (dst->fraction_ppm < 0 || c->fraction_ppm < dst->fraction_ppm))
        dst->fraction_ppm = c->fraction_ppm;
}

void gf_policy_pair(const struct gf_policy *p, size_t lender, size_t borrower,
                    size_t group, struct gf_policy_pair *out)
{
    bool matched = false;
    out->allowed = !p->default_deny;
    out->rule = NULL;
    out->max.gpus = GF_NO_CAP;
    out->max.fraction_ppm = -1;
    if (lender == borrower) {
        out->allowed = false;
        return;
    }
    /* Contradictions were refused at parse, so matching rules agree on
     * allow/deny; allow rules combine by taking the tightest cap. */
    for (size_t i = 0; i < p->n_rules; i++) {
        const struct gf_policy_rule *r = &p->rules[i];
        if (p->idx->rule_lenders[i] == NULL ||
            !p->idx->rule_lenders[i][lender] ||
            !p->idx->rule_borrowers[i][borrower] || !rule_has_group(r, group))
            continue;
        if (!matched || r->deny) {
            out->rule = r->name;
            matched = true;
        }
        if (r->deny) {
            out->allowed = false;
            return;
        }
        out->allowed = true;
        cap_min(&out->max, &r->max);
    }
}

int64_t gf_policy_cap_limit(const struct gf_policy_cap *c, int64_t nominal)
{
    int64_t lim = c->gpus;
    if (c->fraction_ppm >= 0) {
        int64_t n = nominal < 0 ? 0 : nominal;
        /* n <= 2^63 / 10^6 in any real cluster; saturate otherwise. */
        int64_t f = n > INT64_MAX / GF_PPM ? n / GF_PPM * c->fraction_ppm
                                           : n * c->fraction_ppm / GF_PPM;
        if (f < lim)
            lim = f;
    }
    return lim;
}

int64_t gf_policy_reserve(const struct gf_policy_cap *c, int64_t nominal)
{
    int64_t r = c->gpus == GF_NO_CAP ? 0 : c->gpus;
    if (c->fraction_ppm >= 0) {
        int64_t n = nominal < 0 ? 0 : nominal;
        int64_t f = n > INT64_MAX / GF_PPM
                        ? n / GF_PPM * c->fraction_ppm
                        : (n * c->fraction_ppm + GF_PPM - 1) / GF_PPM;
        if (f > r)
            r = f;
    }
    return r;
}

bool gf_policy_budget_flavor(const struct gf_policy *p,
                             const struct gf_policy_group *g,
                             const char *member, const char *flavor)
{
    const char *cls = gf_policy_flavor_class(p, member, flavor);
    for (size_t i = 0; i < g->n_budget_flavors; i++)
        if (strcmp(g->budget_flavors[i], cls) == 0)
            return true;
    return false;
}

bool gf_policy_may_overflow(const struct gf_policy_group *g, const char *ns,
                            const char *kind, int32_t priority,
                            const char **why)
{
    const char *dummy;
    if (why == NULL)
        why = &dummy;
    if (g->has_min_priority && priority < g->min_priority) {
        *why = "priority below the group's minPriority";
        return false;
    }
    bool ok = g->n_namespaces == 0;
    for (size_t i = 0; i < g->n_namespaces && !ok; i++)
        ok = strcmp(g->namespaces[i], "*") == 0 ||
             strcmp(g->namespaces[i], ns) == 0;
    if (!ok) {
        *why = "namespace not listed in overflow.namespaces";
        return false;
    }
    ok = false;
    for (size_t i = 0; i < g->n_job_kinds && !ok; i++)
        ok = strcmp(g->job_kinds[i], "*") == 0 ||
             (kind != NULL && strcmp(g->job_kinds[i], kind) == 0);
    if (!ok) {
        *why = "job kind not listed in overflow.jobKinds";
        return false;
    }
    return true;
}

const char *gf_policy_map_namespace(const struct gf_policy_group *g,
                                    size_t member, const char *ns)
{
    for (size_t i = 0; i < g->n_ns_map; i++)
        if (g->ns_map[i].member == member && strcmp(g->ns_map[i].from, ns) == 0)
            return g->ns_map[i].to;
    return ns;
}

const char *gf_fencing_name(enum gf_fencing f)
{
    return f == GF_FENCING_AGENT ? "agent" : "none";
}

const char *gf_victim_key_name(enum gf_victim_key k)
{
    static const char *const names[] = {"lowestPriority", "newest", "oldest",
                                        "largest", "smallest"};
    return (unsigned)k < 5 ? names[k] : "?";
}
