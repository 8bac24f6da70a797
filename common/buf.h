/*
 * buf: a growable byte buffer with a hard cap.
 *
 * Every buffer fed from the network or from a file has a maximum size;
 * growing past it fails with GF_E2BIG and leaves the buffer unchanged
 * (curl's dynbuf rule), so hostile input can never make us allocate
 * without bound. The data is always NUL-terminated for convenience; the
 * terminator is not counted in len.
 */
#ifndef GF_BUF_H
#define GF_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct gf_buf {
    char *data; /* owned; NULL until the first append */
    size_t len; /* bytes in use, excluding the NUL */
    size_t cap; /* bytes allocated */
    size_t max; /* hard cap on len */
};

#define GF_BUF_INIT(maxlen)                                                    \
    {                                                                          \
        NULL, 0, 0, (maxlen)                                                   \
    }

void gf_buf_init(struct gf_buf *b, size_t max);
/* Releases the memory; the buffer can be reused after gf_buf_init. */
void gf_buf_free(struct gf_buf *b);
/* Empties the buffer but keeps its memory. */
void gf_buf_reset(struct gf_buf *b);
/* 0, or GF_E2BIG if len would exceed max (buffer unchanged). */
int gf_buf_append(struct gf_buf *b, const void *p, size_t n);
int gf_buf_puts(struct gf_buf *b, const char *s);
int gf_buf_putc(struct gf_buf *b, char c);
int gf_buf_printf(struct gf_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int gf_buf_vprintf(struct gf_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Drops the first n bytes (n <= len), moving the rest to the front. */
void gf_buf_consume(struct gf_buf *b, size_t n);
/* Returned-borrowed: always a valid C string, "" when empty. */
const char *gf_buf_cstr(const struct gf_buf *b);
/* Takes the data out: returned-owned (gf_free), buffer left empty. */
char *gf_buf_steal(struct gf_buf *b);

#endif
