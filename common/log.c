/*
 * log: logfmt lines built in a stack buffer and written with one write(2).
 *
 * The formatter walks the caller's format string itself instead of handing
 * it to vsnprintf whole, because every %s value must be quoted and escaped
 * as logfmt requires; the other conversions are formatted one at a time
 * with snprintf. Lines longer than the buffer are truncated and marked, so
 * logging never allocates (it must work while reporting out-of-memory).
 */
#include "common/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096

static enum gf_log_level current_level = GF_LOG_INFO;
static gf_log_sink_fn sink_fn;
static void *sink_data;
static char fixed_time[40];

static const char *const level_names[] = {"debug", "info", "warn", "error",
                                          "off"};

void gf_log_set_level(enum gf_log_level level)
{
    current_level = level;
}

enum gf_log_level gf_log_get_level(void)
{
    return current_level;
}

int gf_log_parse_level(const char *s, enum gf_log_level *out)
{
    for (int i = GF_LOG_DEBUG; i <= GF_LOG_OFF; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum gf_log_level)i;
            return 0;
        }
    }
    if (strcmp(s, "warning") == 0) {
        *out = GF_LOG_WARN;
        return 0;
    }
    return -EINVAL;
}

void gf_log_set_sink(gf_log_sink_fn fn, void *data)
{
    sink_fn = fn;
    sink_data = data;
}

void gf_log_set_fixed_time(const char *ts)
{
    if (ts == NULL) {
        fixed_time[0] = '\0';
        return;
    }
    snprintf(fixed_time, sizeof(fixed_time), "%s", ts);
}

static bool needs_quoting(const char *s)
{
    if (*s == '\0')
        return true;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p == 0x7f)
            return true;
    }
    return false;
}

/* Appends one byte if room remains (one byte is kept for the NUL). */
static bool put_char(char *out, size_t cap, size_t *n, char c)
{
    if (*n + 1 >= cap)
        return false;
    out[(*n)++] = c;
    return true;
}

/* Writes the logfmt escape of one byte of a quoted value. */
static bool put_escaped(char *out, size_t cap, size_t *n, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";
    char esc[4];
    size_t len = 0;
    if (c == '"' || c == '\\') {
        esc[len++] = '\\';
        esc[len++] = (char)c;
    } else if (c == '\n' || c == '\t') {
        esc[len++] = '\\';
        esc[len++] = c == '\n' ? 'n' : 't';
    } else if (c < ' ' || c == 0x7f) {
        esc[len++] = '\\';
        esc[len++] = 'x';
        esc[len++] = hex[c >> 4];
        esc[len++] = hex[c & 15];
    } else {
        esc[len++] = (char)c;
    }
    /* An escape is written whole or not at all. */
    if (*n + len >= cap)
        return false;
    memcpy(out + *n, esc, len);
    *n += len;
    return true;
}

size_t gf_log_quote(char *out, size_t cap, const char *s)
{
    if (cap == 0)
        return 0;
    size_t n = 0;
    if (s == NULL)
        s = "(null)";
    if (!needs_quoting(s)) {
        while (*s && put_char(out, cap, &n, *s))
            s++;
    } else if (put_char(out, cap, &n, '"')) {
        const unsigned char *p = (const unsigned char *)s;
        while (*p && put_escaped(out, cap, &n, *p))
            p++;
        if (*p == '\0')
            put_char(out, cap, &n, '"');
    }
    out[n] = '\0';
    return n;
}

struct line {
    char buf[LINE_MAX_BYTES];
    size_t len;
    bool truncated;
};

static void put_raw(struct line *l, const char *s, size_t n)
{
    /* Keep room for the truncation marker and the newline. */
    const size_t limit = sizeof(l->buf) - 16;
    if (l->len + n > limit) {
        n = limit > l->len ? limit - l->len : 0;
        l->truncated = true;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void put_str(struct line *l, const char *s)
{
    put_raw(l, s, strlen(s));
}

static void put_quoted(struct line *l, const char *s)
{
    const size_t limit = sizeof(l->buf) - 16;
    if (l->len >= limit) {
        l->truncated = true;
        return;
    }
    size_t room = limit - l->len + 1;
    size_t n = gf_log_quote(l->buf + l->len, room, s);
    if (n + 1 >= room)
        l->truncated = true;
    l->len += n;
}

static void put_field(struct line *l, const char *key, const char *value)
{
    put_raw(l, " ", 1);
    put_str(l, key);
    put_raw(l, "=", 1);
    put_quoted(l, value);
}

static void put_timestamp(struct line *l)
{
    if (fixed_time[0] != '\0') {
        put_str(l, fixed_time);
        return;
    }
    struct timespec ts;
    struct tm tm;
    char tmp[40];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(tmp, sizeof(tmp), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(tmp + n, sizeof(tmp) - n, ".%03ldZ", ts.tv_nsec / 1000000);
    put_str(l, tmp);
}

/*
 * The conversion spec below is rebuilt from the caller's format string,
 * which the compiler already checked at the GF_LOG call site through the
 * format attribute; the non-literal format here is therefore safe.
 */
#pragma GCC diagnostic ignored "-Wformat-nonliteral"

/* ssize_t and size_t are long-sized on the LP64 targets gpufed runs on, so
 * %zd and %ld read the same argument type. */
_Static_assert(sizeof(size_t) == sizeof(unsigned long), "LP64 expected");

static intmax_t arg_signed(va_list *ap, int longs, bool size_mod)
{
    if (longs >= 2)
        return va_arg(*ap, long long);
    if (longs == 1 || size_mod)
        return va_arg(*ap, long);
    return va_arg(*ap, int);
}

static uintmax_t arg_unsigned(va_list *ap, int longs, bool size_mod)
{
    if (longs >= 2)
        return va_arg(*ap, unsigned long long);
    if (longs == 1 || size_mod)
        return va_arg(*ap, unsigned long);
    return va_arg(*ap, unsigned);
}

/*
 * Formats one printf conversion starting at fmt (which points at '%').
 * Integers are widened to intmax_t/uintmax_t according to their length
 * modifier and printed with 'j', so each class needs one snprintf.
 * Returns the pointer after the conversion.
 */
static const char *put_conversion(struct line *l, const char *fmt, va_list *ap)
{
    char spec[32];
    size_t n = 0;
    const char *p = fmt + 1;
    spec[n++] = '%';
    while (*p && strchr("-+ #0123456789.", *p) && n < sizeof(spec) - 4)
        spec[n++] = *p++;
    int longs = 0;
    bool size_mod = false;
    for (; *p == 'l' || *p == 'z'; p++) {
        longs += *p == 'l';
        size_mod = size_mod || *p == 'z';
    }
    char conv = *p;
    if (conv == '\0')
        return p;
    char tmp[64];
    tmp[0] = '\0';
    if (conv == 's') {
        put_quoted(l, va_arg(*ap, const char *));
    } else if (conv == '%') {
        put_raw(l, "%", 1);
    } else if (conv == 'd' || conv == 'i') {
        memcpy(spec + n, "jd", 3);
        snprintf(tmp, sizeof(tmp), spec, arg_signed(ap, longs, size_mod));
    } else if (conv == 'u' || conv == 'x' || conv == 'X') {
        spec[n] = 'j';
        spec[n + 1] = conv;
        spec[n + 2] = '\0';
        snprintf(tmp, sizeof(tmp), spec, arg_unsigned(ap, longs, size_mod));
    } else if (conv == 'f' || conv == 'g' || conv == 'e') {
        spec[n] = conv;
        spec[n + 1] = '\0';
        snprintf(tmp, sizeof(tmp), spec, va_arg(*ap, double));
    } else if (conv == 'c') {
        char c[2] = {(char)va_arg(*ap, int), '\0'};
        put_quoted(l, c);
    } else if (conv == 'p') {
        snprintf(tmp, sizeof(tmp), "%p", va_arg(*ap, void *));
    } else {
        /* An unsupported conversion is a programmer error, but logging must
         * not crash: print it verbatim and consume no argument. */
        put_raw(l, fmt, (size_t)(p + 1 - fmt));
    }
    put_str(l, tmp);
    return p + 1;
}

static void default_sink(void *data, enum gf_log_level level, const char *line,
                         size_t len)
{
    (void)data;
    (void)level;
    /* One write per line so that lines from concurrent writers never
     * interleave. A short write to stderr is not worth retrying. */
    ssize_t rc = write(STDERR_FILENO, line, len);
    (void)rc;
}

static void put_context(struct line *l, const struct gf_log_ctx *lc)
{
    if (lc->comp != NULL)
        put_field(l, "comp", lc->comp);
    if (lc->cluster != NULL)
        put_field(l, "cluster", lc->cluster);
    if (lc->key != NULL)
        put_field(l, "key", lc->key);
    if (lc->rid != 0) {
        char rid[24];
        snprintf(rid, sizeof(rid), "%llu", (unsigned long long)lc->rid);
        put_field(l, "rid", rid);
    }
}

static void put_fields(struct line *l, const char *fmt, va_list *ap)
{
    const char *p = fmt;
    while (*p) {
        if (*p == '%') {
            p = put_conversion(l, p, ap);
        } else {
            const char *q = strchr(p, '%');
            size_t n = q != NULL ? (size_t)(q - p) : strlen(p);
            put_raw(l, p, n);
            p += n;
        }
    }
}

void gf_log_vemit(const struct gf_log_ctx *lc, enum gf_log_level level,
                  const char *msg, const char *fmt, va_list ap)
{
    if (level < current_level || level >= GF_LOG_OFF)
        return;
    struct line l;
    l.len = 0;
    l.truncated = false;
    put_str(&l, "ts=");
    put_timestamp(&l);
    put_str(&l, " level=");
    put_str(&l, level_names[level]);
    if (lc != NULL)
        put_context(&l, lc);
    put_field(&l, "msg", msg != NULL ? msg : "");
    if (fmt != NULL && *fmt != '\0') {
        va_list aq;
        va_copy(aq, ap);
        put_raw(&l, " ", 1);
        put_fields(&l, fmt, &aq);
        va_end(aq);
    }
    if (l.truncated) {
        memcpy(l.buf + l.len, " truncated=1", 12);
        l.len += 12;
    }
    if (sink_fn != NULL) {
        l.buf[l.len] = '\0';
        sink_fn(sink_data, level, l.buf, l.len);
        return;
    }
    l.buf[l.len++] = '\n';
    default_sink(NULL, level, l.buf, l.len);
}

void gf_log_emit(const struct gf_log_ctx *lc, enum gf_log_level level,
                 const char *msg, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gf_log_vemit(lc, level, msg, fmt, ap);
    va_end(ap);
}
