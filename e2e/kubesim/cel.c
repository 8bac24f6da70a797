/*
 * cel: a recursive-descent parser and a tree-walking evaluator for the
 * CEL subset of CRD validation rules (see cel.h).
 *
 * The grammar, from CEL's language definition, top to bottom:
 *   expr    = or ["?" or ":" expr]
 *   or      = and {"||" and}
 *   and     = rel {"&&" rel}
 *   rel     = add [("<"|"<="|">"|">="|"=="|"!="|"in") add]
 *   add     = mul {("+"|"-") mul}
 *   mul     = unary {("*"|"/"|"%") unary}
 *   unary   = ("!"|"-") unary | member
 *   member  = primary {"." IDENT ["(" args ")"] | "[" expr "]"}
 *   primary = IDENT ["(" args ")"] | literal | "(" expr ")" | "[" args "]"
 * Macros (has, all, exists, exists_one, filter, map) are recognised at
 * parse time, as CEL's parser does, so `has` needs a field selection and
 * a comprehension's first argument must be a plain identifier.
 *
 * Evaluation allocates new lists (list literals, filter) as cJSON arrays
 * in a per-evaluation arena, so every list value is a cJSON array and
 * equality of lists and maps is the JSON deep equality.
 */
#include "e2e/kubesim/cel.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/json.h"

/* ---- syntax tree -------------------------------------------------------- */

enum node_kind {
    N_NULL,
    N_BOOL,
    N_INT,
    N_DBL,
    N_STR,
    N_IDENT,  /* s = name */
    N_SELECT, /* a.s */
    N_HAS,    /* has(a.s) */
    N_INDEX,  /* a[b] */
    N_CALL,   /* s(args) or a.s(args) when a != NULL */
    N_COMPRE, /* a.s(var, b): s is the macro, var the variable */
    N_LIST,   /* [args] */
    N_NOT,
    N_NEG,
    N_BIN, /* a op b */
    N_COND /* a ? b : c */
};

enum bin_op {
    B_OR,
    B_AND,
    B_EQ,
    B_NE,
    B_LT,
    B_LE,
    B_GT,
    B_GE,
    B_IN,
    B_ADD,
    B_SUB,
    B_MUL,
    B_DIV,
    B_MOD
};

struct node {
    enum node_kind kind;
    enum bin_op op;
    bool b;
    int64_t i;
    double d;
    char *s;   /* owned: identifier, field, function or string literal */
    char *var; /* owned: a comprehension's variable */
    struct node *a, *b2, *c;
    struct node **args; /* owned array of owned nodes */
    size_t n_args;
};

struct gf_ks_cel {
    struct node *root;
    bool old_self;
};

static void node_free(struct node *n)
{
    if (n == NULL)
        return;
    node_free(n->a);
    node_free(n->b2);
    node_free(n->c);
    for (size_t i = 0; i < n->n_args; i++)
        node_free(n->args[i]);
    gf_free(n->args);
    gf_free(n->s);
    gf_free(n->var);
    gf_free(n);
}

void gf_ks_cel_free(struct gf_ks_cel *c)
{
    if (c == NULL)
        return;
    node_free(c->root);
    gf_free(c);
}

bool gf_ks_cel_uses_old_self(const struct gf_ks_cel *c)
{
    return c->old_self;
}

/* ---- lexer -------------------------------------------------------------- */

enum tok_kind { T_EOF, T_IDENT, T_INT, T_UINT, T_DBL, T_STR, T_OP, T_BAD };

struct parser {
    const char *src, *p;
    enum tok_kind tk;
    char tok[256]; /* the current token's text (a string's value) */
    int64_t ival;
    double dval;
    int depth;
    int rc; /* first error: -EINVAL or -ENOTSUP */
    char *why;
    size_t why_len;
    bool old_self;
};

static void fail(struct parser *ps, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(struct parser *ps, int rc, const char *fmt, ...)
{
    if (ps->rc != 0)
        return;
    ps->rc = rc;
    va_list ap;
    va_start(ap, fmt);
    if (vsnprintf(ps->why, ps->why_len, fmt, ap) < 0)
        ps->why[0] = '\0';
    va_end(ap);
}

static bool is_ident_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* A quoted string (single or double quotes, no raw or triple forms). */
static void lex_string(struct parser *ps)
{
    char q = *ps->p++;
    size_t n = 0;
    while (*ps->p != '\0' && *ps->p != q) {
        char c = *ps->p++;
        if (c == '\\') {
            char e = *ps->p++;
            switch (e) {
            case 'n':
                c = '\n';
                break;
            case 't':
                c = '\t';
                break;
            case 'r':
                c = '\r';
                break;
            case '\\':
                c = '\\';
                break;
            case '\'':
                c = '\'';
                break;
            case '"':
                c = '"';
                break;
            default:
                fail(ps, -ENOTSUP, "unsupported escape in a string");
                ps->tk = T_BAD;
                return;
            }
        }
        if (n + 1 >= sizeof(ps->tok)) {
            fail(ps, -ENOTSUP, "string literal too long");
            ps->tk = T_BAD;
            return;
        }
        ps->tok[n++] = c;
    }
    ps->tok[n] = '\0';
    if (*ps->p != q) {
        fail(ps, -EINVAL, "unterminated string literal");
        ps->tk = T_BAD;
        return;
    }
    ps->p++;
    ps->tk = T_STR;
}

static void lex_number(struct parser *ps)
{
    const char *s = ps->p;
    while (is_digit(*ps->p))
        ps->p++;
    bool dbl = false;
    if (*ps->p == '.' && is_digit(ps->p[1])) {
        dbl = true;
        ps->p++;
        while (is_digit(*ps->p))
            ps->p++;
    }
    if (*ps->p == 'e' || *ps->p == 'E') {
        dbl = true;
        ps->p++;
        if (*ps->p == '+' || *ps->p == '-')
            ps->p++;
        while (is_digit(*ps->p))
            ps->p++;
    }
    size_t n = (size_t)(ps->p - s);
    if (n >= sizeof(ps->tok)) {
        fail(ps, -EINVAL, "number literal too long");
        ps->tk = T_BAD;
        return;
    }
    memcpy(ps->tok, s, n);
    ps->tok[n] = '\0';
    errno = 0;
    if (dbl) {
        ps->dval = strtod(ps->tok, NULL);
        ps->tk = T_DBL;
    } else {
        long long v = strtoll(ps->tok, NULL, 10);
        if (errno != 0) {
            fail(ps, -EINVAL, "integer literal out of range");
            ps->tk = T_BAD;
            return;
        }
        ps->ival = v;
        ps->tk = T_INT;
        if (*ps->p == 'u' || *ps->p == 'U') {
            ps->p++;
            ps->tk = T_UINT;
        }
    }
}

static void next(struct parser *ps)
{
    while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')
        ps->p++;
    char c = *ps->p;
    if (c == '\0') {
        ps->tk = T_EOF;
        ps->tok[0] = '\0';
        return;
    }
    if (is_ident_start(c)) {
        size_t n = 0;
        while (is_ident_start(*ps->p) || is_digit(*ps->p)) {
            if (n + 1 < sizeof(ps->tok))
                ps->tok[n++] = *ps->p;
            ps->p++;
        }
        ps->tok[n] = '\0';
        ps->tk = T_IDENT;
        return;
    }
    if (is_digit(c)) {
        lex_number(ps);
        return;
    }
    if (c == '"' || c == '\'') {
        lex_string(ps);
        return;
    }
    static const char *const ops[] = {
        "==", "!=", "<=", ">=", "&&", "||", "<", ">", "!", "?", ":", "(",
        ")",  "[",  "]",  ",",  ".",  "+",  "-", "*", "/", "%", "{", "}"};
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        size_t n = strlen(ops[i]);
        if (strncmp(ps->p, ops[i], n) == 0) {
            memcpy(ps->tok, ops[i], n + 1);
            ps->p += n;
            ps->tk = T_OP;
            return;
        }
    }
    fail(ps, -EINVAL, "unexpected character '%c'", c);
    ps->tk = T_BAD;
}

static bool is_op(const struct parser *ps, const char *op)
{
    return ps->tk == T_OP && strcmp(ps->tok, op) == 0;
}

static bool accept(struct parser *ps, const char *op)
{
    if (!is_op(ps, op))
        return false;
    next(ps);
    return true;
}

static void expect(struct parser *ps, const char *op)
{
    if (!accept(ps, op))
        fail(ps, -EINVAL, "expected '%s' near '%s'", op, ps->tok);
}

/* ---- parser ------------------------------------------------------------- */

static struct node *mk(enum node_kind k)
{
    struct node *n = gf_calloc(1, sizeof(*n));
    n->kind = k;
    return n;
}

static struct node *mk_bin(enum bin_op op, struct node *a, struct node *b)
{
    struct node *n = mk(N_BIN);
    n->op = op;
    n->a = a;
    n->b2 = b;
    return n;
}

static struct node *parse_expr(struct parser *ps);

/* "(" already consumed: arguments up to ")" (or "]" for a list). */
static void parse_args(struct parser *ps, struct node *n, const char *close)
{
    if (accept(ps, close))
        return;
    size_t cap = 0;
    do {
        if (ps->rc != 0)
            return;
        if (n->n_args == cap) {
            cap = cap ? cap * 2 : 4;
            n->args = gf_realloc(n->args, cap * sizeof(*n->args));
        }
        n->args[n->n_args++] = parse_expr(ps);
    } while (accept(ps, ","));
    expect(ps, close);
}

static bool is_macro(const char *f)
{
    return strcmp(f, "all") == 0 || strcmp(f, "exists") == 0 ||
           strcmp(f, "exists_one") == 0 || strcmp(f, "filter") == 0 ||
           strcmp(f, "map") == 0;
}

static bool known_function(const char *f, bool method, size_t n_args)
{
    if (strcmp(f, "size") == 0)
        return n_args == (method ? 0u : 1u);
    if (method && n_args == 1)
        return strcmp(f, "startsWith") == 0 || strcmp(f, "endsWith") == 0 ||
               strcmp(f, "contains") == 0;
    return false;
}

/* target.f(args): a macro or a method call. */
static struct node *parse_call(struct parser *ps, struct node *target, char *f)
{
    struct node *n = mk(N_CALL);
    n->a = target;
    n->s = f;
    parse_args(ps, n, ")");
    if (ps->rc != 0)
        return n;
    if (target != NULL && is_macro(f)) {
        if (n->n_args != 2 || n->args[0]->kind != N_IDENT) {
            fail(ps, -EINVAL, "%s() takes a variable and an expression", f);
            return n;
        }
        n->kind = N_COMPRE;
        n->var = n->args[0]->s;
        n->args[0]->s = NULL;
        node_free(n->args[0]);
        n->b2 = n->args[1];
        gf_free(n->args);
        n->args = NULL;
        n->n_args = 0;
        return n;
    }
    if (target == NULL && strcmp(f, "has") == 0) {
        if (n->n_args != 1 || n->args[0]->kind != N_SELECT) {
            fail(ps, -EINVAL, "invalid argument to has() macro");
            return n;
        }
        struct node *sel = n->args[0];
        gf_free(n->args);
        n->args = NULL;
        n->n_args = 0;
        gf_free(n->s);
        n->s = NULL;
        node_free(n);
        sel->kind = N_HAS;
        return sel;
    }
    if (!known_function(f, target != NULL, n->n_args))
        fail(ps, -ENOTSUP, "function %s() is not supported", f);
    return n;
}

static struct node *parse_primary(struct parser *ps)
{
    struct node *n = NULL;
    switch (ps->tk) {
    case T_INT:
        n = mk(N_INT);
        n->i = ps->ival;
        next(ps);
        return n;
    case T_UINT:
        fail(ps, -ENOTSUP, "unsigned integers are not supported");
        return mk(N_NULL);
    case T_DBL:
        n = mk(N_DBL);
        n->d = ps->dval;
        next(ps);
        return n;
    case T_STR:
        n = mk(N_STR);
        n->s = gf_strdup(ps->tok);
        next(ps);
        return n;
    case T_IDENT:
        break;
    case T_OP:
        if (accept(ps, "(")) {
            n = parse_expr(ps);
            expect(ps, ")");
            return n;
        }
        if (accept(ps, "[")) {
            n = mk(N_LIST);
            parse_args(ps, n, "]");
            return n;
        }
        if (is_op(ps, "{")) {
            fail(ps, -ENOTSUP, "map literals are not supported");
            return mk(N_NULL);
        }
        fail(ps, -EINVAL, "unexpected '%s'", ps->tok);
        return mk(N_NULL);
    default:
        fail(ps, -EINVAL, "unexpected end of expression");
        return mk(N_NULL);
    }
    char *id = gf_strdup(ps->tok);
    next(ps);
    if (accept(ps, "("))
        return parse_call(ps, NULL, id);
    if (strcmp(id, "true") == 0 || strcmp(id, "false") == 0) {
        n = mk(N_BOOL);
        n->b = id[0] == 't';
    } else if (strcmp(id, "null") == 0) {
        n = mk(N_NULL);
    } else {
        n = mk(N_IDENT);
        n->s = id;
        if (strcmp(id, "oldSelf") == 0)
            ps->old_self = true;
        return n;
    }
    gf_free(id);
    return n;
}

static struct node *parse_member(struct parser *ps)
{
    struct node *n = parse_primary(ps);
    while (ps->rc == 0) {
        if (accept(ps, ".")) {
            if (ps->tk != T_IDENT) {
                fail(ps, -EINVAL, "expected a field name after '.'");
                break;
            }
            char *f = gf_strdup(ps->tok);
            next(ps);
            if (accept(ps, "(")) {
                n = parse_call(ps, n, f);
                continue;
            }
            struct node *s = mk(N_SELECT);
            s->a = n;
            s->s = f;
            n = s;
        } else if (accept(ps, "[")) {
            struct node *x = mk(N_INDEX);
            x->a = n;
            x->b2 = parse_expr(ps);
            expect(ps, "]");
            n = x;
        } else {
            break;
        }
    }
    return n;
}

static struct node *parse_unary(struct parser *ps)
{
    if (++ps->depth > GF_KS_CEL_MAX_DEPTH) {
        fail(ps, -EINVAL, "expression nested too deeply");
        ps->depth--;
        return mk(N_NULL);
    }
    struct node *n;
    if (accept(ps, "!")) {
        n = mk(N_NOT);
        n->a = parse_unary(ps);
    } else if (accept(ps, "-")) {
        n = mk(N_NEG);
        n->a = parse_unary(ps);
    } else {
        n = parse_member(ps);
    }
    ps->depth--;
    return n;
}

static struct node *parse_mul(struct parser *ps)
{
    struct node *n = parse_unary(ps);
    while (ps->rc == 0) {
        enum bin_op op;
        if (accept(ps, "*"))
            op = B_MUL;
        else if (accept(ps, "/"))
            op = B_DIV;
        else if (accept(ps, "%"))
            op = B_MOD;
        else
            break;
        n = mk_bin(op, n, parse_unary(ps));
    }
    return n;
}

static struct node *parse_add(struct parser *ps)
{
    struct node *n = parse_mul(ps);
    while (ps->rc == 0) {
        enum bin_op op;
        if (accept(ps, "+"))
            op = B_ADD;
        else if (accept(ps, "-"))
            op = B_SUB;
        else
            break;
        n = mk_bin(op, n, parse_mul(ps));
    }
    return n;
}

static struct node *parse_rel(struct parser *ps)
{
    struct node *n = parse_add(ps);
    static const struct {
        const char *tok;
        enum bin_op op;
    } rel[] = {{"==", B_EQ}, {"!=", B_NE}, {"<=", B_LE},
               {">=", B_GE}, {"<", B_LT},  {">", B_GT}};
    while (ps->rc == 0) {
        bool found = false;
        for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++)
            if (accept(ps, rel[i].tok)) {
                n = mk_bin(rel[i].op, n, parse_add(ps));
                found = true;
                break;
            }
        if (!found && ps->tk == T_IDENT && strcmp(ps->tok, "in") == 0) {
            next(ps);
            n = mk_bin(B_IN, n, parse_add(ps));
            found = true;
        }
        if (!found)
            break;
    }
    return n;
}

static struct node *parse_and(struct parser *ps)
{
    struct node *n = parse_rel(ps);
    while (ps->rc == 0 && accept(ps, "&&"))
        n = mk_bin(B_AND, n, parse_rel(ps));
    return n;
}

static struct node *parse_or(struct parser *ps)
{
    struct node *n = parse_and(ps);
    while (ps->rc == 0 && accept(ps, "||"))
        n = mk_bin(B_OR, n, parse_and(ps));
    return n;
}

static struct node *parse_expr(struct parser *ps)
{
    if (++ps->depth > GF_KS_CEL_MAX_DEPTH) {
        fail(ps, -EINVAL, "expression nested too deeply");
        ps->depth--;
        return mk(N_NULL);
    }
    struct node *n = parse_or(ps);
    if (ps->rc == 0 && accept(ps, "?")) {
        struct node *c = mk(N_COND);
        c->a = n;
        c->b2 = parse_or(ps);
        expect(ps, ":");
        c->c = parse_expr(ps);
        n = c;
    }
    ps->depth--;
    return n;
}

int gf_ks_cel_compile(const char *rule, struct gf_ks_cel **out, char *why,
                      size_t why_len)
{
    *out = NULL;
    why[0] = '\0';
    if (strlen(rule) > GF_KS_CEL_MAX_LEN) {
        snprintf(why, why_len, "rule longer than %d bytes", GF_KS_CEL_MAX_LEN);
        return -EINVAL;
    }
    struct parser ps = {.src = rule, .p = rule, .why = why, .why_len = why_len};
    next(&ps);
    struct node *root = parse_expr(&ps);
    if (ps.rc == 0 && ps.tk != T_EOF)
        fail(&ps, -EINVAL, "unexpected '%s' after the expression", ps.tok);
    if (ps.rc != 0) {
        node_free(root);
        return ps.rc;
    }
    struct gf_ks_cel *c = gf_calloc(1, sizeof(*c));
    c->root = root;
    c->old_self = ps.old_self;
    *out = c;
    return 0;
}

/* ---- values ------------------------------------------------------------- */

enum val_kind { V_ERR, V_NULL, V_BOOL, V_INT, V_DBL, V_STR, V_LIST, V_MAP };

struct val {
    enum val_kind k;
    bool b;
    int64_t i;
    double d;
    const char *s;  /* V_STR; V_ERR: the message */
    const cJSON *j; /* V_LIST, V_MAP */
};

#define MAX_VARS 8

struct ectx {
    const cJSON *self, *old;
    cJSON *arena; /* owns what evaluation creates */
    const char *var_name[MAX_VARS];
    struct val var_val[MAX_VARS];
    size_t n_vars;
    size_t steps; /* caps the work a rule may do on a huge object */
};

/* Enough for a rule over every item of a large list of lists. */
#define MAX_STEPS 1000000

static struct val verr(struct ectx *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static struct val verr(struct ectx *e, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    if (vsnprintf(buf, sizeof(buf), fmt, ap) < 0)
        buf[0] = '\0';
    va_end(ap);
    cJSON *s = cJSON_CreateString(buf);
    cJSON_AddItemToArray(e->arena, s);
    return (struct val){.k = V_ERR, .s = s->valuestring};
}

static struct val vbool(bool b)
{
    return (struct val){.k = V_BOOL, .b = b};
}

static struct val of_json(const cJSON *j)
{
    if (cJSON_IsBool(j))
        return vbool(cJSON_IsTrue(j));
    if (cJSON_IsNumber(j)) {
        double d = j->valuedouble;
        if (d == floor(d) && fabs(d) < 9e15)
            return (struct val){.k = V_INT, .i = (int64_t)d};
        return (struct val){.k = V_DBL, .d = d};
    }
    if (cJSON_IsString(j))
        return (struct val){.k = V_STR, .s = j->valuestring};
    if (cJSON_IsArray(j))
        return (struct val){.k = V_LIST, .j = j};
    if (cJSON_IsObject(j))
        return (struct val){.k = V_MAP, .j = j};
    return (struct val){.k = V_NULL};
}

/* A new cJSON holding v (lists and maps are copied). */
static cJSON *to_json(const struct val *v)
{
    switch (v->k) {
    case V_BOOL:
        return cJSON_CreateBool(v->b);
    case V_INT:
        return cJSON_CreateNumber((double)v->i);
    case V_DBL:
        return cJSON_CreateNumber(v->d);
    case V_STR:
        return cJSON_CreateString(v->s);
    case V_LIST:
    case V_MAP:
        return cJSON_Duplicate(v->j, true);
    default:
        return cJSON_CreateNull();
    }
}

static cJSON *new_list(struct ectx *e)
{
    cJSON *l = cJSON_CreateArray();
    cJSON_AddItemToArray(e->arena, l);
    return l;
}

static bool is_num(const struct val *v)
{
    return v->k == V_INT || v->k == V_DBL;
}

static double num(const struct val *v)
{
    return v->k == V_INT ? (double)v->i : v->d;
}

static bool equal(const struct val *a, const struct val *b)
{
    if (is_num(a) && is_num(b))
        return a->k == V_INT && b->k == V_INT ? a->i == b->i : num(a) == num(b);
    if (a->k != b->k)
        return false;
    switch (a->k) {
    case V_NULL:
        return true;
    case V_BOOL:
        return a->b == b->b;
    case V_STR:
        return strcmp(a->s, b->s) == 0;
    case V_LIST:
    case V_MAP:
        return gf_json_equal(a->j, b->j);
    default:
        return false;
    }
}

/* Code points, as CEL's size() counts a string. */
static int64_t utf8_len(const char *s)
{
    int64_t n = 0;
    for (; *s != '\0'; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

/* ---- evaluator ---------------------------------------------------------- */

static struct val eval(struct ectx *e, const struct node *n);

static struct val eval_ident(struct ectx *e, const char *name)
{
    for (size_t i = e->n_vars; i-- > 0;)
        if (strcmp(e->var_name[i], name) == 0)
            return e->var_val[i];
    if (strcmp(name, "self") == 0)
        return of_json(e->self);
    if (strcmp(name, "oldSelf") == 0 && e->old != NULL)
        return of_json(e->old);
    return verr(e, "undeclared reference to '%s'", name);
}

static struct val eval_select(struct ectx *e, const struct node *n, bool has)
{
    struct val t = eval(e, n->a);
    if (t.k == V_ERR)
        return t;
    if (t.k != V_MAP)
        return verr(e, "no such overload");
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(t.j, n->s);
    /* A null field is absent to CEL (the server drops nulls first). */
    bool present = f != NULL && !cJSON_IsNull(f);
    if (has)
        return vbool(present);
    if (!present)
        return verr(e, "no such key: %s", n->s);
    return of_json(f);
}

static struct val eval_index(struct ectx *e, const struct node *n)
{
    struct val t = eval(e, n->a);
    if (t.k == V_ERR)
        return t;
    struct val x = eval(e, n->b2);
    if (x.k == V_ERR)
        return x;
    if (t.k == V_LIST) {
        if (x.k != V_INT)
            return verr(e, "no such overload");
        if (x.i < 0 || x.i >= cJSON_GetArraySize(t.j))
            return verr(e, "index out of bounds: %lld", (long long)x.i);
        return of_json(cJSON_GetArrayItem(t.j, (int)x.i));
    }
    if (t.k == V_MAP && x.k == V_STR) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(t.j, x.s);
        if (f == NULL || cJSON_IsNull(f))
            return verr(e, "no such key: %s", x.s);
        return of_json(f);
    }
    return verr(e, "no such overload");
}

static struct val eval_call(struct ectx *e, const struct node *n)
{
    struct val t;
    if (n->a != NULL)
        t = eval(e, n->a);
    else
        t = eval(e, n->args[0]);
    if (t.k == V_ERR)
        return t;
    if (strcmp(n->s, "size") == 0) {
        if (t.k == V_STR)
            return (struct val){.k = V_INT, .i = utf8_len(t.s)};
        if (t.k == V_LIST || t.k == V_MAP)
            return (struct val){.k = V_INT, .i = cJSON_GetArraySize(t.j)};
        return verr(e, "no such overload");
    }
    struct val arg = eval(e, n->args[0]);
    if (arg.k == V_ERR)
        return arg;
    if (t.k != V_STR || arg.k != V_STR)
        return verr(e, "no such overload");
    size_t lt = strlen(t.s), la = strlen(arg.s);
    if (strcmp(n->s, "startsWith") == 0)
        return vbool(lt >= la && strncmp(t.s, arg.s, la) == 0);
    if (strcmp(n->s, "endsWith") == 0)
        return vbool(lt >= la && strcmp(t.s + lt - la, arg.s) == 0);
    return vbool(strstr(t.s, arg.s) != NULL);
}

/* A comprehension's running state. */
struct compre {
    enum { C_ALL, C_EXISTS, C_ONE, C_FILTER, C_MAP } m;
    cJSON *out; /* filter and map: the list built */
    struct val err;
    int64_t count;
};

/*
 * One item's result r (x the item). Returns true when the comprehension
 * is decided, with *res its value.
 */
static bool compre_step(struct ectx *e, struct compre *c, const struct val *x,
                        const struct val *r, struct val *res)
{
    if (r->k == V_ERR) {
        if (c->m == C_ALL || c->m == C_EXISTS) {
            c->err = *r;
            return false;
        }
        *res = *r;
        return true;
    }
    if (c->m == C_MAP) {
        cJSON_AddItemToArray(c->out, to_json(r));
        return false;
    }
    if (r->k != V_BOOL) {
        *res = verr(e, "no such overload");
        return true;
    }
    if ((c->m == C_ALL && !r->b) || (c->m == C_EXISTS && r->b)) {
        *res = *r;
        return true;
    }
    if (c->m == C_ONE && r->b)
        c->count++;
    if (c->m == C_FILTER && r->b)
        cJSON_AddItemToArray(c->out, to_json(x));
    return false;
}

static struct val compre_result(const struct compre *c)
{
    if (c->err.k == V_ERR)
        return c->err;
    switch (c->m) {
    case C_ALL:
        return vbool(true);
    case C_EXISTS:
        return vbool(false);
    case C_ONE:
        return vbool(c->count == 1);
    default:
        return (struct val){.k = V_LIST, .j = c->out};
    }
}

/*
 * all/exists/exists_one/filter/map over a list's items or a map's keys.
 * all is false when any item is false, even if another one fails, and
 * exists is true when any is true: CEL's error absorption.
 */
static struct val eval_compre(struct ectx *e, const struct node *n)
{
    struct val t = eval(e, n->a);
    if (t.k == V_ERR)
        return t;
    if (t.k != V_LIST && t.k != V_MAP)
        return verr(e, "no such overload");
    if (e->n_vars >= MAX_VARS)
        return verr(e, "comprehensions nested too deeply");
    static const char *const names[] = {"all", "exists", "exists_one", "filter",
                                        "map"};
    struct compre c = {.m = C_MAP, .err = {.k = V_NULL}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(n->s, names[i]) == 0)
            c.m = i;
    if (c.m == C_FILTER || c.m == C_MAP)
        c.out = new_list(e);
    size_t slot = e->n_vars++;
    e->var_name[slot] = n->var;
    struct val res;
    bool decided = false;
    const cJSON *it;
    cJSON_ArrayForEach(it, t.j)
    {
        struct val x = t.k == V_MAP ? (struct val){.k = V_STR, .s = it->string}
                                    : of_json(it);
        e->var_val[slot] = x;
        struct val r = eval(e, n->b2);
        if ((decided = compre_step(e, &c, &x, &r, &res)))
            break;
    }
    e->n_vars--;
    return decided ? res : compre_result(&c);
}

/* && and ||: an error on one side is absorbed by the deciding value. */
static struct val eval_logic(struct ectx *e, const struct node *n)
{
    bool is_and = n->op == B_AND;
    struct val a = eval(e, n->a);
    if (a.k == V_BOOL && a.b != is_and)
        return a;
    if (a.k != V_BOOL && a.k != V_ERR)
        a = verr(e, "no such overload");
    struct val b = eval(e, n->b2);
    if (b.k == V_BOOL && b.b != is_and)
        return b;
    if (a.k == V_ERR)
        return a;
    if (b.k != V_BOOL && b.k != V_ERR)
        return verr(e, "no such overload");
    return b;
}

static struct val arith_int(struct ectx *e, enum bin_op op, int64_t x,
                            int64_t y)
{
    int64_t r = 0;
    bool over = false;
    switch (op) {
    case B_ADD:
        over = __builtin_add_overflow(x, y, &r);
        break;
    case B_SUB:
        over = __builtin_sub_overflow(x, y, &r);
        break;
    case B_MUL:
        over = __builtin_mul_overflow(x, y, &r);
        break;
    default:
        if (y == 0)
            return verr(e,
                        op == B_DIV ? "division by zero" : "modulus by zero");
        over = x == INT64_MIN && y == -1;
        if (!over)
            r = op == B_DIV ? x / y : x % y;
    }
    if (over)
        return verr(e, "integer overflow");
    return (struct val){.k = V_INT, .i = r};
}

/* + on strings and on lists: a new value in the arena. */
static struct val concat(struct ectx *e, const struct val *a,
                         const struct val *b)
{
    if (a->k == V_STR) {
        size_t la = strlen(a->s), lb = strlen(b->s);
        char *s = gf_malloc(la + lb + 1);
        memcpy(s, a->s, la);
        memcpy(s + la, b->s, lb + 1);
        cJSON *j = cJSON_CreateString(s);
        gf_free(s);
        cJSON_AddItemToArray(e->arena, j);
        return (struct val){.k = V_STR, .s = j->valuestring};
    }
    cJSON *l = new_list(e);
    const cJSON *it;
    cJSON_ArrayForEach(it, a->j)
    {
        cJSON_AddItemToArray(l, cJSON_Duplicate(it, true));
    }
    cJSON_ArrayForEach(it, b->j)
    {
        cJSON_AddItemToArray(l, cJSON_Duplicate(it, true));
    }
    return (struct val){.k = V_LIST, .j = l};
}

static struct val arith(struct ectx *e, enum bin_op op, const struct val *a,
                        const struct val *b)
{
    if (op == B_ADD && a->k == b->k && (a->k == V_STR || a->k == V_LIST))
        return concat(e, a, b);
    if (a->k == V_INT && b->k == V_INT)
        return arith_int(e, op, a->i, b->i);
    if (a->k == V_DBL && b->k == V_DBL && op != B_MOD) {
        double x = a->d, y = b->d;
        double r = op == B_ADD   ? x + y
                   : op == B_SUB ? x - y
                   : op == B_MUL ? x * y
                                 : x / y;
        return (struct val){.k = V_DBL, .d = r};
    }
    return verr(e, "no such overload");
}

static struct val compare(struct ectx *e, enum bin_op op, const struct val *a,
                          const struct val *b)
{
    int c;
    if (is_num(a) && is_num(b)) {
        double x = num(a), y = num(b);
        if (a->k == V_INT && b->k == V_INT)
            c = a->i < b->i ? -1 : a->i > b->i;
        else
            c = x < y ? -1 : x > y;
    } else if (a->k == V_STR && b->k == V_STR) {
        c = strcmp(a->s, b->s);
    } else if (a->k == V_BOOL && b->k == V_BOOL) {
        c = (int)a->b - (int)b->b;
    } else {
        return verr(e, "no such overload");
    }
    switch (op) {
    case B_LT:
        return vbool(c < 0);
    case B_LE:
        return vbool(c <= 0);
    case B_GT:
        return vbool(c > 0);
    default:
        return vbool(c >= 0);
    }
}

static struct val eval_bin(struct ectx *e, const struct node *n)
{
    if (n->op == B_AND || n->op == B_OR)
        return eval_logic(e, n);
    struct val a = eval(e, n->a);
    if (a.k == V_ERR)
        return a;
    struct val b = eval(e, n->b2);
    if (b.k == V_ERR)
        return b;
    switch (n->op) {
    case B_EQ:
        return vbool(equal(&a, &b));
    case B_NE:
        return vbool(!equal(&a, &b));
    case B_IN:
        if (b.k == V_MAP)
            return a.k == V_STR
                       ? vbool(cJSON_GetObjectItemCaseSensitive(b.j, a.s) !=
                               NULL)
                       : verr(e, "no such overload");
        if (b.k == V_LIST) {
            const cJSON *it;
            cJSON_ArrayForEach(it, b.j)
            {
                struct val x = of_json(it);
                if (equal(&a, &x))
                    return vbool(true);
            }
            return vbool(false);
        }
        return verr(e, "no such overload");
    case B_LT:
    case B_LE:
    case B_GT:
    case B_GE:
        return compare(e, n->op, &a, &b);
    default:
        return arith(e, n->op, &a, &b);
    }
}

static struct val eval(struct ectx *e, const struct node *n)
{
    if (++e->steps > MAX_STEPS)
        return verr(e, "operation cancelled: actual cost limit exceeded");
    switch (n->kind) {
    case N_NULL:
        return (struct val){.k = V_NULL};
    case N_BOOL:
        return vbool(n->b);
    case N_INT:
        return (struct val){.k = V_INT, .i = n->i};
    case N_DBL:
        return (struct val){.k = V_DBL, .d = n->d};
    case N_STR:
        return (struct val){.k = V_STR, .s = n->s};
    case N_IDENT:
        return eval_ident(e, n->s);
    case N_SELECT:
        return eval_select(e, n, false);
    case N_HAS:
        return eval_select(e, n, true);
    case N_INDEX:
        return eval_index(e, n);
    case N_CALL:
        return eval_call(e, n);
    case N_COMPRE:
        return eval_compre(e, n);
    case N_LIST: {
        cJSON *l = new_list(e);
        for (size_t i = 0; i < n->n_args; i++) {
            struct val x = eval(e, n->args[i]);
            if (x.k == V_ERR)
                return x;
            cJSON_AddItemToArray(l, to_json(&x));
        }
        return (struct val){.k = V_LIST, .j = l};
    }
    case N_NOT: {
        struct val x = eval(e, n->a);
        if (x.k == V_ERR)
            return x;
        return x.k == V_BOOL ? vbool(!x.b) : verr(e, "no such overload");
    }
    case N_NEG: {
        struct val x = eval(e, n->a);
        if (x.k == V_INT && x.i != INT64_MIN)
            return (struct val){.k = V_INT, .i = -x.i};
        if (x.k == V_DBL)
            return (struct val){.k = V_DBL, .d = -x.d};
        return x.k == V_ERR ? x : verr(e, "no such overload");
    }
    case N_BIN:
        return eval_bin(e, n);
    case N_COND: {
        struct val c = eval(e, n->a);
        if (c.k == V_ERR)
            return c;
        if (c.k != V_BOOL)
            return verr(e, "no such overload");
        return eval(e, c.b ? n->b2 : n->c);
    }
    }
    return verr(e, "no such overload");
}

int gf_ks_cel_eval(const struct gf_ks_cel *c, const cJSON *self,
                   const cJSON *old_self, char *why, size_t why_len)
{
    struct ectx e = {.self = self, .old = old_self};
    e.arena = cJSON_CreateArray();
    struct val v = eval(&e, c->root);
    int rc;
    why[0] = '\0';
    if (v.k == V_BOOL) {
        rc = v.b ? 1 : 0;
    } else {
        snprintf(why, why_len, "%s", v.k == V_ERR ? v.s : "no such overload");
        rc = -EINVAL;
    }
    cJSON_Delete(e.arena);
    return rc;
}
