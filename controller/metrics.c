/*
 * metrics: see metrics.h for the contract.
 *
 * Families live in an array kept sorted by name at registration (a handful
 * of families, registered once at start), so rendering never sorts them.
 * Series live in one hash table per family; the table borrows its keys
 * from the series, which carry their key bytes inline (one allocation per
 * series). Rendering collects a family's series into a scratch array and
 * sorts it: the table's iteration order depends on insertion history.
 */
#include "controller/metrics.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/htab.h"

enum metric_type { METRIC_COUNTER, METRIC_GAUGE };

struct series {
    double v;
    size_t klen;
    char key[]; /* label values, each followed by a NUL */
};

struct gf_metric {
    char *name, *help;
    enum metric_type type;
    char **labels; /* owned, nlabels entries */
    size_t nlabels;
    struct gf_htab series; /* key -> struct series, keys borrowed */
};

struct gf_metrics {
    struct gf_metric **fams; /* sorted by name */
    size_t n, cap;
};

/* Keys longer than this are a programmer error (label values are names). */
#define KEY_MAX (64u << 10)

struct gf_metrics *gf_metrics_new(void)
{
    return gf_calloc(1, sizeof(struct gf_metrics));
}

static void series_free(void *p)
{
    gf_free(p);
}

static void metric_free(struct gf_metric *f)
{
    gf_htab_free_all(&f->series, series_free);
    for (size_t i = 0; i < f->nlabels; i++)
        gf_free(f->labels[i]);
    gf_free(f->labels);
    gf_free(f->name);
    gf_free(f->help);
    gf_free(f);
}

void gf_metrics_free(struct gf_metrics *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n; i++)
        metric_free(m->fams[i]);
    gf_free(m->fams);
    gf_free(m);
}

static bool name_char(char c, bool first, bool colon)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
        return true;
    if (c == ':')
        return colon;
    return !first && c >= '0' && c <= '9';
}

/* Prometheus' metric name (colon allowed) or label name rule. */
static bool valid_name(const char *s, bool colon)
{
    if (s == NULL || s[0] == '\0')
        return false;
    for (size_t i = 0; s[i] != '\0'; i++) {
        if (!name_char(s[i], i == 0, colon))
            return false;
    }
    return true;
}

static bool valid_label(const char *s)
{
    return valid_name(s, false) && strncmp(s, "__", 2) != 0;
}

/* Index where name is, or would be inserted, in the sorted array. */
static size_t find_slot(const struct gf_metrics *m, const char *name,
                        bool *found)
{
    size_t lo = 0, hi = m->n;
    *found = false;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m->fams[mid]->name, name);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Copies a NULL-terminated list of label names, checking each. */
static void copy_labels(struct gf_metric *f, const char *const *labels)
{
    while (labels != NULL && labels[f->nlabels] != NULL)
        f->nlabels++;
    f->labels = gf_calloc(f->nlabels + 1, sizeof(*f->labels));
    for (size_t i = 0; i < f->nlabels; i++) {
        GF_BUG_ON(!valid_label(labels[i]));
        for (size_t j = 0; j < i; j++)
            GF_BUG_ON(strcmp(labels[i], labels[j]) == 0);
        f->labels[i] = gf_strdup(labels[i]);
    }
}

static struct gf_metric *family_new(struct gf_metrics *m, const char *name,
                                    const char *help, const char *const *labels,
                                    enum metric_type type)
{
    GF_BUG_ON(!valid_name(name, true));
    bool found;
    size_t at = find_slot(m, name, &found);
    GF_BUG_ON(found);

    struct gf_metric *f = gf_calloc(1, sizeof(*f));
    f->name = gf_strdup(name);
    f->help = gf_strdup(help != NULL ? help : "");
    f->type = type;
    gf_htab_init(&f->series, GF_HTAB_BORROW_KEYS);
    copy_labels(f, labels);

    if (m->n == m->cap) {
        m->cap = m->cap != 0 ? 2 * m->cap : 16;
        m->fams = gf_realloc(m->fams, m->cap * sizeof(*m->fams));
    }
    memmove(m->fams + at + 1, m->fams + at, (m->n - at) * sizeof(*m->fams));
    m->fams[at] = f;
    m->n++;
    /* A plain counter or gauge reads 0 before its first update. */
    if (f->nlabels == 0) {
        static const char *const none[] = {NULL};
        gf_metric_add(f, 0, none);
    }
    return f;
}

struct gf_metric *gf_metrics_counter(struct gf_metrics *m, const char *name,
                                     const char *help,
                                     const char *const *labels)
{
    return family_new(m, name, help, labels, METRIC_COUNTER);
}

struct gf_metric *gf_metrics_gauge(struct gf_metrics *m, const char *name,
                                   const char *help, const char *const *labels)
{
    return family_new(m, name, help, labels, METRIC_GAUGE);
}

/* The series for values, created at 0 if new. */
static struct series *series_get(struct gf_metric *f, const char *const *values)
{
    char stack[512];
    stack[0] = '\0'; /* no labels: an empty key */
    size_t klen = 0;
    for (size_t i = 0; i < f->nlabels; i++)
        klen += strlen(values[i]) + 1;
    GF_BUG_ON(klen > KEY_MAX);
    char *key = klen <= sizeof(stack) ? stack : gf_malloc(klen);
    size_t off = 0;
    for (size_t i = 0; i < f->nlabels; i++) {
        size_t n = strlen(values[i]) + 1;
        memcpy(key + off, values[i], n);
        off += n;
    }
    struct series *s = gf_htab_get(&f->series, key, klen);
    if (s == NULL) {
        s = gf_malloc(sizeof(*s) + klen + 1);
        s->v = 0;
        s->klen = klen;
        memcpy(s->key, key, klen);
        s->key[klen] = '\0';
        gf_htab_put(&f->series, s->key, klen, s);
    }
    if (key != stack)
        gf_free(key);
    return s;
}

void gf_metric_add(struct gf_metric *c, double v, const char *const *values)
{
    /* A counter only goes up (a restart is the only way down). */
    GF_BUG_ON(c->type == METRIC_COUNTER && !(v >= 0));
    series_get(c, values)->v += v;
}

void gf_metric_set(struct gf_metric *g, double v, const char *const *values)
{
    GF_BUG_ON(g->type != METRIC_GAUGE);
    series_get(g, values)->v = v;
}

void gf_metric_clear(struct gf_metric *g)
{
    gf_htab_free_all(&g->series, series_free);
    gf_htab_init(&g->series, GF_HTAB_BORROW_KEYS);
}

size_t gf_metric_series(const struct gf_metric *g)
{
    return gf_htab_len(&g->series);
}

/* ---- rendering --------------------------------------------------------- */

/* HELP escapes backslash and newline; label values also double quotes. */
static int put_escaped(struct gf_buf *out, const char *s, size_t n, bool quote)
{
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        const char *esc = NULL;
        if (s[i] == '\\')
            esc = "\\\\";
        else if (s[i] == '\n')
            esc = "\\n";
        else if (s[i] == '"' && quote)
            esc = "\\\"";
        if (esc == NULL)
            continue;
        if (gf_buf_append(out, s + start, i - start) != 0 ||
            gf_buf_puts(out, esc) != 0)
            return GF_E2BIG;
        start = i + 1;
    }
    return gf_buf_append(out, s + start, n - start);
}

/* The shortest %g form that reads back as v, as Go's FormatFloat('g', -1). */
static int put_value(struct gf_buf *out, double v)
{
    if (isnan(v))
        return gf_buf_puts(out, "NaN");
    if (isinf(v))
        return gf_buf_puts(out, v > 0 ? "+Inf" : "-Inf");
    char tmp[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    return gf_buf_puts(out, tmp);
}

static int cmp_series(const void *a, const void *b)
{
    const struct series *x = *(const struct series *const *)a;
    const struct series *y = *(const struct series *const *)b;
    /*
     * Values are NUL-terminated in the key and NUL sorts first, so a
     * bytewise compare of the keys orders value by value.
     */
    size_t n = x->klen < y->klen ? x->klen : y->klen;
    int c = memcmp(x->key, y->key, n);
    if (c != 0)
        return c;
    return x->klen < y->klen ? -1 : x->klen > y->klen;
}

static int put_sample(struct gf_buf *out, const struct gf_metric *f,
                      const struct series *s)
{
    int rc = gf_buf_puts(out, f->name);
    const char *val = s->key;
    for (size_t i = 0; rc == 0 && i < f->nlabels; i++) {
        size_t n = strlen(val);
        rc = gf_buf_printf(out, "%s%s=\"", i == 0 ? "{" : ",", f->labels[i]);
        if (rc == 0)
            rc = put_escaped(out, val, n, true);
        if (rc == 0)
            rc = gf_buf_putc(out, '"');
        val += n + 1;
    }
    if (rc == 0 && f->nlabels > 0)
        rc = gf_buf_putc(out, '}');
    if (rc == 0)
        rc = gf_buf_putc(out, ' ');
    if (rc == 0)
        rc = put_value(out, s->v);
    if (rc == 0)
        rc = gf_buf_putc(out, '\n');
    return rc;
}

static int render_family(const struct gf_metric *f, struct gf_buf *out)
{
    size_t n = gf_htab_len(&f->series);
    if (n == 0)
        return 0;
    int rc = gf_buf_printf(out, "# HELP %s ", f->name);
    if (rc == 0)
        rc = put_escaped(out, f->help, strlen(f->help), false);
    if (rc == 0)
        rc = gf_buf_printf(out, "\n# TYPE %s %s\n", f->name,
                           f->type == METRIC_COUNTER ? "counter" : "gauge");
    if (rc != 0)
        return rc;
    const struct series **all = gf_malloc(n * sizeof(*all));
    size_t pos = 0, i = 0;
    void *val;
    while (gf_htab_scan(&f->series, &pos, NULL, &val))
        all[i++] = val;
    qsort(all, n, sizeof(*all), cmp_series);
    for (i = 0; rc == 0 && i < n; i++)
        rc = put_sample(out, f, all[i]);
    gf_free(all);
    return rc;
}

int gf_metrics_render(const struct gf_metrics *m, struct gf_buf *out)
{
    size_t start = out->len;
    for (size_t i = 0; i < m->n; i++) {
        if (render_family(m->fams[i], out) != 0) {
            /* All or nothing: a truncated exposition would be misread. */
            out->len = start;
            if (out->data != NULL)
                out->data[start] = '\0';
            return GF_E2BIG;
        }
    }
    return 0;
}
