/*
 * select: parsing and matching of label and field selectors.
 *
 * A hand-written lexer over the selector grammar of
 * k8s.io/apimachinery/pkg/labels: identifiers, the operators
 * = == != in notin !, parentheses and commas. Requirements are ANDed.
 */
#include "e2e/kubesim/select.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/json.h"

enum op { OP_EQ, OP_NE, OP_IN, OP_NOTIN, OP_EXISTS, OP_NOTEXISTS };

struct field_def;

struct req {
    char *key;
    enum op op;
    char **values;
    size_t n_values;
    const struct field_def *fd; /* field selectors: where the field is */
};

struct gf_ks_selector {
    bool field;
    struct req *reqs;
    size_t n;
};

/* Selectors come from query strings; bound them like any input. */
#define SEL_MAX_LEN 8192
#define SEL_MAX_VALUES 256

static void req_free(struct req *r)
{
    gf_free(r->key);
    for (size_t i = 0; i < r->n_values; i++)
        gf_free(r->values[i]);
    gf_free(r->values);
}

void gf_ks_selector_free(struct gf_ks_selector *sel)
{
    if (sel == NULL)
        return;
    for (size_t i = 0; i < sel->n; i++)
        req_free(&sel->reqs[i]);
    gf_free(sel->reqs);
    gf_free(sel);
}

struct gf_ks_selector *gf_ks_selector_dup(const struct gf_ks_selector *sel)
{
    if (sel == NULL)
        return NULL;
    struct gf_ks_selector *d = gf_calloc(1, sizeof(*d));
    d->field = sel->field;
    d->n = sel->n;
    d->reqs = gf_calloc(sel->n ? sel->n : 1, sizeof(*d->reqs));
    for (size_t i = 0; i < sel->n; i++) {
        const struct req *r = &sel->reqs[i];
        d->reqs[i].key = gf_strdup(r->key);
        d->reqs[i].op = r->op;
        d->reqs[i].fd = r->fd;
        d->reqs[i].n_values = r->n_values;
        d->reqs[i].values =
            gf_calloc(r->n_values ? r->n_values : 1, sizeof(char *));
        for (size_t j = 0; j < r->n_values; j++)
            d->reqs[i].values[j] = gf_strdup(r->values[j]);
    }
    return d;
}

struct lexer {
    const char *p;
    bool field;
};

static void skip_ws(struct lexer *lx)
{
    while (*lx->p == ' ' || *lx->p == '\t')
        lx->p++;
}

static bool ident_char(char c, bool field)
{
    /*
     * As in the API server's lexer, an identifier runs until whitespace or
     * an operator character; whether it is a valid label key or value is
     * checked afterwards, so "a=b@c" is an invalid value, not a syntax
     * error. Field selector values may also hold parentheses.
     */
    if (c == '\0' || c == ' ' || c == '\t' || c == ',' || c == '=' || c == '!')
        return false;
    return field || (c != '(' && c != ')');
}

static bool alnum(char c)
{
    return isalnum((unsigned char)c) != 0;
}

/* A label value, or the name part of a key: ([A-Za-z0-9][-A-Za-z0-9_.]*)?
 * [A-Za-z0-9], at most 63 bytes; empty only where allow_empty. */
static bool label_name_ok(const char *s, size_t n, bool allow_empty)
{
    if (n == 0)
        return allow_empty;
    if (n > 63 || !alnum(s[0]) || !alnum(s[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return false;
    return true;
}

/* A DNS subdomain: the optional prefix of a label key. */
static bool dns_prefix_ok(const char *s, size_t n)
{
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++) {
        bool ok = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9');
        if (!ok && (i == 0 || i == n - 1 || (s[i] != '-' && s[i] != '.')))
            return false;
    }
    return true;
}

/* A qualified name: [prefix/]name. */
static bool label_key_ok(const char *k)
{
    const char *slash = strchr(k, '/');
    if (slash == NULL)
        return label_name_ok(k, strlen(k), false);
    return dns_prefix_ok(k, (size_t)(slash - k)) &&
           label_name_ok(slash + 1, strlen(slash + 1), false);
}

static int bad_label(struct gf_ks_status *err, const char *what, const char *v)
{
    return gf_ks_status_set(err, 400, "BadRequest",
                            "unable to parse requirement: Invalid value: "
                            "\"%s\": %s",
                            v, what);
}

/* Label selectors only: checks the key and every value of r. */
static int check_label_req(const struct req *r, struct gf_ks_status *err)
{
    if (!label_key_ok(r->key))
        return bad_label(err,
                         "name part must consist of alphanumeric "
                         "characters, '-', '_' or '.', and must start and "
                         "end with an alphanumeric character (at most 63), "
                         "with an optional DNS subdomain prefix and '/'",
                         r->key);
    for (size_t i = 0; i < r->n_values; i++)
        if (!label_name_ok(r->values[i], strlen(r->values[i]), true))
            return bad_label(err,
                             "a valid label must be an empty string or "
                             "consist of alphanumeric characters, '-', '_' "
                             "or '.', and must start and end with an "
                             "alphanumeric character (at most 63)",
                             r->values[i]);
    if ((r->op == OP_IN || r->op == OP_NOTIN) && r->n_values == 0)
        return bad_label(err,
                         "for 'in', 'notin' operators, values set can't be "
                         "empty",
                         r->key);
    return 0;
}

/* Returned-owned identifier, or NULL when none is at the cursor. */
static char *ident(struct lexer *lx)
{
    skip_ws(lx);
    const char *s = lx->p;
    while (ident_char(*lx->p, lx->field))
        lx->p++;
    if (lx->p == s)
        return NULL;
    return gf_strndup(s, (size_t)(lx->p - s));
}

static bool word(struct lexer *lx, const char *w)
{
    size_t n = strlen(w);
    if (strncmp(lx->p, w, n) != 0)
        return false;
    char next = lx->p[n];
    if (isalnum((unsigned char)next))
        return false;
    lx->p += n;
    return true;
}

static void push_value(struct req *r, char *v)
{
    r->values = gf_realloc(r->values, (r->n_values + 1) * sizeof(char *));
    r->values[r->n_values++] = v;
}

static int bad(struct gf_ks_status *err, const char *what, const char *s)
{
    return gf_ks_status_set(err, 400, "BadRequest",
                            "unable to parse requirement: %s in \"%s\"", what,
                            s);
}

static int parse_set(struct lexer *lx, struct req *r, const char *s,
                     struct gf_ks_status *err)
{
    skip_ws(lx);
    if (*lx->p != '(')
        return bad(err, "found '', expected: '('", s);
    lx->p++;
    skip_ws(lx);
    if (*lx->p == ')') {
        lx->p++;
        return 0; /* "()": refused by check_label_req */
    }
    for (;;) {
        skip_ws(lx);
        char *v = ident(lx);
        if (r->n_values >= SEL_MAX_VALUES) {
            gf_free(v);
            return bad(err, "too many values", s);
        }
        /* "(a,,b)" holds an empty value, as the API server reads it. */
        push_value(r, v != NULL ? v : gf_strdup(""));
        skip_ws(lx);
        if (*lx->p == ',') {
            lx->p++;
            continue;
        }
        if (*lx->p == ')') {
            lx->p++;
            return 0;
        }
        return bad(err, "found unexpected token, expected: ',' or ')'", s);
    }
}

static int parse_req(struct lexer *lx, struct req *r, const char *s,
                     struct gf_ks_status *err)
{
    skip_ws(lx);
    if (!lx->field && *lx->p == '!') {
        lx->p++;
        r->key = ident(lx);
        if (r->key == NULL)
            return bad(err, "found '', expected: identifier", s);
        r->op = OP_NOTEXISTS;
        return 0;
    }
    r->key = ident(lx);
    if (r->key == NULL)
        return bad(err, "found '', expected: identifier", s);
    skip_ws(lx);
    if (strncmp(lx->p, "==", 2) == 0) {
        lx->p += 2;
        r->op = OP_EQ;
    } else if (strncmp(lx->p, "!=", 2) == 0) {
        lx->p += 2;
        r->op = OP_NE;
    } else if (*lx->p == '=') {
        lx->p++;
        r->op = OP_EQ;
    } else if (!lx->field && word(lx, "notin")) {
        r->op = OP_NOTIN;
        return parse_set(lx, r, s, err);
    } else if (!lx->field && word(lx, "in")) {
        r->op = OP_IN;
        return parse_set(lx, r, s, err);
    } else if (!lx->field && (*lx->p == ',' || *lx->p == '\0')) {
        r->op = OP_EXISTS;
        return 0;
    } else {
        return bad(err, "found unexpected token, expected an operator", s);
    }
    char *v = ident(lx);
    push_value(r, v != NULL ? v : gf_strdup(""));
    return 0;
}

/* ---- selectable fields ---------------------------------------------------
 *
 * A field selector may name only the fields the API server extracts for
 * the type (its "selectable fields"), each at a fixed place in the object.
 * The places are arrays of object keys, so no field name is ever read as
 * a dotted path. The lists and the three error messages are those of
 * kube-apiserver v1.28.
 */

enum field_kind {
    F_STR,
    F_BOOL, /* absent reads "false", as the server's FormatBool does */
    F_INT,  /* absent reads "0" */
};

#define FIELD_KEYS_MAX 3

struct field_def {
    const char *name;                     /* as selectors name it */
    const char *keys[FIELD_KEYS_MAX + 1]; /* its place; NULL-terminated */
    enum field_kind kind;
};

#define META_NAME                                                              \
    {                                                                          \
        "metadata.name", {"metadata", "name"}, F_STR                           \
    }
#define META_NS                                                                \
    {                                                                          \
        "metadata.namespace", {"metadata", "namespace"}, F_STR                 \
    }
#define FIELD2(a, b, k)                                                        \
    {                                                                          \
        a "." b, {a, b}, k                                                     \
    }
#define FIELDS_END                                                             \
    {                                                                          \
        NULL, {NULL}, F_STR                                                    \
    }

static const struct field_def meta_fields[] = {META_NAME, META_NS, FIELDS_END};
static const struct field_def cluster_cr_fields[] = {META_NAME, FIELDS_END};
static const struct field_def namespace_fields[] = {
    META_NAME, FIELD2("status", "phase", F_STR), FIELDS_END};
static const struct field_def node_fields[] = {
    META_NAME, FIELD2("spec", "unschedulable", F_BOOL), FIELDS_END};
static const struct field_def pod_fields[] = {
    META_NAME,
    META_NS,
    FIELD2("spec", "nodeName", F_STR),
    FIELD2("spec", "restartPolicy", F_STR),
    FIELD2("spec", "schedulerName", F_STR),
    FIELD2("spec", "serviceAccountName", F_STR),
    FIELD2("spec", "hostNetwork", F_BOOL),
    FIELD2("status", "phase", F_STR),
    FIELD2("status", "podIP", F_STR),
    FIELD2("status", "nominatedNodeName", F_STR),
    FIELDS_END};
static const struct field_def secret_fields[] = {
    META_NAME, META_NS, {"type", {"type"}, F_STR}, FIELDS_END};
static const struct field_def event_fields[] = {
    META_NAME,
    META_NS,
    FIELD2("involvedObject", "kind", F_STR),
    FIELD2("involvedObject", "namespace", F_STR),
    FIELD2("involvedObject", "name", F_STR),
    FIELD2("involvedObject", "uid", F_STR),
    FIELD2("involvedObject", "apiVersion", F_STR),
    FIELD2("involvedObject", "resourceVersion", F_STR),
    FIELD2("involvedObject", "fieldPath", F_STR),
    {"reason", {"reason"}, F_STR},
    {"reportingComponent", {"reportingComponent"}, F_STR},
    {"source", {"source", "component"}, F_STR},
    {"type", {"type"}, F_STR},
    FIELDS_END};
static const struct field_def event2_fields[] = {
    META_NAME,
    META_NS,
    FIELD2("regarding", "kind", F_STR),
    FIELD2("regarding", "namespace", F_STR),
    FIELD2("regarding", "name", F_STR),
    FIELD2("regarding", "uid", F_STR),
    FIELD2("regarding", "apiVersion", F_STR),
    FIELD2("regarding", "resourceVersion", F_STR),
    FIELD2("regarding", "fieldPath", F_STR),
    {"reason", {"reason"}, F_STR},
    {"reportingController", {"reportingController"}, F_STR},
    {"type", {"type"}, F_STR},
    FIELDS_END};
static const struct field_def job_fields[] = {
    META_NAME, META_NS, FIELD2("status", "successful", F_INT), FIELDS_END};

/* How the server words a field it does not support, by type family. */
enum field_msg {
    MSG_DEFAULT,     /* "x" is not a known field selector: only ... */
    MSG_UNSUPPORTED, /* field label not supported: x */
    MSG_FOR_KIND,    /* field label "x" not supported for Kind */
};

static const struct {
    const char *group, *resource;
    const struct field_def *fields;
    enum field_msg msg;
} typed_fields[] = {
    {"", "namespaces", namespace_fields, MSG_UNSUPPORTED},
    {"", "nodes", node_fields, MSG_UNSUPPORTED},
    {"", "pods", pod_fields, MSG_UNSUPPORTED},
    {"", "secrets", secret_fields, MSG_UNSUPPORTED},
    {"", "events", event_fields, MSG_UNSUPPORTED},
    {"events.k8s.io", "events", event2_fields, MSG_UNSUPPORTED},
    {"batch", "jobs", job_fields, MSG_FOR_KIND},
};

static const struct field_def *field_find(const struct field_def *set,
                                          const char *name)
{
    for (; set->name != NULL; set++)
        if (strcmp(set->name, name) == 0)
            return set;
    return NULL;
}

/*
 * Resolves every requirement of a field selector against set; the first
 * unsupported field in name order is the one reported, as the server
 * sorts requirements before converting them.
 */
static int resolve_fields(struct gf_ks_selector *sel,
                          const struct field_def *set, enum field_msg msg,
                          const char *kind, struct gf_ks_status *err)
{
    const char *bad_key = NULL;
    for (size_t i = 0; i < sel->n; i++) {
        struct req *r = &sel->reqs[i];
        r->fd = field_find(set, r->key);
        if (r->fd == NULL && (bad_key == NULL || strcmp(r->key, bad_key) < 0))
            bad_key = r->key;
    }
    if (bad_key == NULL)
        return 0;
    switch (msg) {
    case MSG_UNSUPPORTED:
        return gf_ks_status_set(err, 400, "BadRequest",
                                "field label not supported: %s", bad_key);
    case MSG_FOR_KIND:
        return gf_ks_status_set(err, 400, "BadRequest",
                                "field label \"%s\" not supported for %s",
                                bad_key, kind);
    case MSG_DEFAULT:
        break;
    }
    return gf_ks_status_set(err, 400, "BadRequest",
                            "\"%s\" is not a known field selector: only "
                            "\"metadata.name\", \"metadata.namespace\"",
                            bad_key);
}

static int parse_any(const char *s, bool field, struct gf_ks_selector **out,
                     struct gf_ks_status *err);

int gf_ks_selector_parse(const char *s, bool field, struct gf_ks_selector **out,
                         struct gf_ks_status *err)
{
    int rc = parse_any(s, field, out, err);
    if (rc == 0 && field && *out != NULL) {
        rc = resolve_fields(*out, meta_fields, MSG_DEFAULT, NULL, err);
        if (rc != 0) {
            gf_ks_selector_free(*out);
            *out = NULL;
        }
    }
    return rc;
}

int gf_ks_selector_parse_fields(const char *s, const struct gf_ks_field_type *t,
                                struct gf_ks_selector **out,
                                struct gf_ks_status *err)
{
    int rc = parse_any(s, true, out, err);
    if (rc != 0 || *out == NULL)
        return rc;
    const struct field_def *set = meta_fields;
    enum field_msg msg = MSG_DEFAULT;
    if (t->custom) {
        /* A CRD's objects: metadata only (selectableFields is v1.30). */
        set = t->namespaced ? meta_fields : cluster_cr_fields;
        msg = MSG_UNSUPPORTED;
    } else {
        for (size_t i = 0; i < sizeof(typed_fields) / sizeof(typed_fields[0]);
             i++)
            if (strcmp(typed_fields[i].group, t->group) == 0 &&
                strcmp(typed_fields[i].resource, t->resource) == 0) {
                set = typed_fields[i].fields;
                msg = typed_fields[i].msg;
            }
    }
    rc = resolve_fields(*out, set, msg, t->kind, err);
    if (rc != 0) {
        gf_ks_selector_free(*out);
        *out = NULL;
    }
    return rc;
}

static int parse_any(const char *s, bool field, struct gf_ks_selector **out,
                     struct gf_ks_status *err)
{
    *out = NULL;
    if (s == NULL)
        return 0;
    if (strlen(s) > SEL_MAX_LEN)
        return gf_ks_status_set(err, 400, "BadRequest",
                                "selector longer than %d bytes", SEL_MAX_LEN);
    struct lexer lx = {s, field};
    skip_ws(&lx);
    if (*lx.p == '\0')
        return 0;
    struct gf_ks_selector *sel = gf_calloc(1, sizeof(*sel));
    sel->field = field;
    for (;;) {
        sel->reqs = gf_realloc(sel->reqs, (sel->n + 1) * sizeof(*sel->reqs));
        struct req *r = &sel->reqs[sel->n++];
        memset(r, 0, sizeof(*r));
        int rc = parse_req(&lx, r, s, err);
        if (rc == 0 && !field)
            rc = check_label_req(r, err);
        if (rc < 0) {
            gf_ks_selector_free(sel);
            return rc;
        }
        skip_ws(&lx);
        if (*lx.p == '\0')
            break;
        if (*lx.p != ',') {
            gf_ks_selector_free(sel);
            return bad(err, "found unexpected token, expected: ','", s);
        }
        lx.p++;
    }
    *out = sel;
    return 0;
}

static bool in_values(const struct req *r, const char *v)
{
    for (size_t i = 0; i < r->n_values; i++)
        if (strcmp(r->values[i], v) == 0)
            return true;
    return false;
}

static bool req_match(const struct req *r, const char *v)
{
    switch (r->op) {
    case OP_EQ:
    case OP_IN:
        return v != NULL && in_values(r, v);
    case OP_NE:
    case OP_NOTIN:
        return v == NULL || !in_values(r, v);
    case OP_EXISTS:
        return v != NULL;
    case OP_NOTEXISTS:
        return v == NULL;
    }
    return false;
}

bool gf_ks_selector_match_labels(const struct gf_ks_selector *sel,
                                 const cJSON *labels)
{
    if (sel == NULL)
        return true;
    for (size_t i = 0; i < sel->n; i++) {
        const cJSON *l =
            cJSON_GetObjectItemCaseSensitive(labels, sel->reqs[i].key);
        const char *v = cJSON_IsString(l) ? l->valuestring : NULL;
        if (!req_match(&sel->reqs[i], v))
            return false;
    }
    return true;
}

/* The field's value as the server's field set holds it. */
static const char *field_value(const struct field_def *fd, const cJSON *obj,
                               char *buf, size_t cap)
{
    size_t n = 0;
    while (n < FIELD_KEYS_MAX && fd->keys[n] != NULL)
        n++;
    const cJSON *v = gf_json_at(obj, fd->keys, n);
    switch (fd->kind) {
    case F_BOOL:
        return cJSON_IsTrue(v) ? "true" : "false";
    case F_INT:
        snprintf(buf, cap, "%lld",
                 cJSON_IsNumber(v) ? (long long)v->valuedouble : 0LL);
        return buf;
    case F_STR:
        break;
    }
    /*
     * A field that is absent compares as the empty string (the server
     * compares against the field set it extracted, where an unset
     * namespace is "").
     */
    return cJSON_IsString(v) ? v->valuestring : "";
}

bool gf_ks_selector_match_fields(const struct gf_ks_selector *sel,
                                 const cJSON *obj)
{
    if (sel == NULL)
        return true;
    for (size_t i = 0; i < sel->n; i++) {
        char buf[32];
        /* Parsing resolved every field; an unresolved one matches none. */
        const char *v =
            sel->reqs[i].fd != NULL
                ? field_value(sel->reqs[i].fd, obj, buf, sizeof(buf))
                : NULL;
        if (v == NULL || !req_match(&sel->reqs[i], v))
            return false;
    }
    return true;
}

bool gf_ks_selector_match(const struct gf_ks_selector *sel, const cJSON *obj)
{
    if (sel == NULL)
        return true;
    if (sel->field)
        return gf_ks_selector_match_fields(sel, obj);
    return gf_ks_selector_match_labels(sel,
                                       gf_json_path(obj, "metadata.labels"));
}
