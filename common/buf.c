/*
 * buf: growable byte buffer with a hard cap (see buf.h).
 */
#include "common/buf.h"

#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"

void gf_buf_init(struct gf_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void gf_buf_free(struct gf_buf *b)
{
    GF_FREE(b->data);
    b->len = 0;
    b->cap = 0;
}

void gf_buf_reset(struct gf_buf *b)
{
    b->len = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

/* Makes room for `extra` more bytes plus the NUL, growing geometrically so
 * that appends are amortised O(1), but never beyond max + 1. */
static int reserve(struct gf_buf *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra)
        return GF_E2BIG;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap < 64 ? 64 : b->cap;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (b->max < SIZE_MAX && cap > b->max + 1)
        cap = b->max + 1;
    b->data = gf_realloc(b->data, cap);
    b->cap = cap;
    return 0;
}

int gf_buf_append(struct gf_buf *b, const void *p, size_t n)
{
    int rc = reserve(b, n);
    if (rc != 0)
        return rc;
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int gf_buf_puts(struct gf_buf *b, const char *s)
{
    return gf_buf_append(b, s, strlen(s));
}

int gf_buf_putc(struct gf_buf *b, char c)
{
    return gf_buf_append(b, &c, 1);
}

int gf_buf_vprintf(struct gf_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return -EINVAL;
    int rc = reserve(b, (size_t)n);
    if (rc != 0)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int gf_buf_printf(struct gf_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = gf_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void gf_buf_consume(struct gf_buf *b, size_t n)
{
    if (n >= b->len) {
        gf_buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

const char *gf_buf_cstr(const struct gf_buf *b)
{
    return b->data != NULL ? b->data : "";
}

char *gf_buf_steal(struct gf_buf *b)
{
    char *p = b->data != NULL ? b->data : gf_strdup("");
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}
