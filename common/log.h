/*
 * log: structured logfmt logging with levels and context.
 *
 * One line per event:
 *   ts=2026-11-24T10:00:00.123Z level=info comp=reflector cluster=east
 *   key=ns/name rid=42 msg="watch restarted" rv=123 reason=expired
 *
 * GF_LOG tests the level before it evaluates any argument, so debug logging
 * on a hot path costs one branch when disabled (Redis serverLog).
 *
 * The format string is logfmt with printf conversions, e.g.
 *   GF_LOG(&lc, GF_LOG_INFO, "watch restarted", "rv=%s reason=%s", rv, why);
 * Every %s value is quoted and escaped as logfmt requires, so callers never
 * escape by hand. Supported conversions: %s %d %i %u %x %ld %lu %lld %llu
 * %zu %zd %g %f %.Nf %%. Never pass secrets (tokens, keys, kubeconfig text).
 *
 * Only this module writes to stdout or stderr. It runs on the loop thread
 * only, except that emitting from another thread is safe line-wise because
 * each line is written with a single write(2).
 */
#ifndef GF_LOG_H
#define GF_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum gf_log_level {
    GF_LOG_DEBUG = 0, /* per event */
    GF_LOG_INFO,      /* state transitions */
    GF_LOG_WARN,      /* degraded but healing itself */
    GF_LOG_ERROR,     /* a human must act */
    GF_LOG_OFF
};

/* Context carried by a component; any field may be NULL/0 and is skipped. */
struct gf_log_ctx {
    const char *comp;
    const char *cluster;
    const char *key;
    uint64_t rid; /* reconcile id */
};

/*
 * A sink receives each finished line (without newline). The default sink
 * writes to stderr. Tests install their own to capture lines.
 */
typedef void (*gf_log_sink_fn)(void *data, enum gf_log_level level,
                               const char *line, size_t len);

/*
 * Process-wide logging configuration. This is the one piece of global state
 * outside gf_ctx: logging must work before any context exists and from
 * every module, and it is configured once from main().
 */
void gf_log_set_level(enum gf_log_level level);
enum gf_log_level gf_log_get_level(void);
/* Parses "debug|info|warn|error|off"; returns 0 or -EINVAL. */
int gf_log_parse_level(const char *s, enum gf_log_level *out);
/* NULL restores the default stderr sink. */
void gf_log_set_sink(gf_log_sink_fn fn, void *data);
/* For tests: a fixed timestamp makes lines comparable. */
void gf_log_set_fixed_time(const char *ts);

static inline bool gf_log_enabled(enum gf_log_level level)
{
    return level >= gf_log_get_level();
}

void gf_log_emit(const struct gf_log_ctx *lc, enum gf_log_level level,
                 const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void gf_log_vemit(const struct gf_log_ctx *lc, enum gf_log_level level,
                  const char *msg, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

/* lc may be NULL. fmt may be "" when there are no extra fields. */
#define GF_LOG(lc, level, msg, ...)                                            \
    do {                                                                       \
        if (gf_log_enabled(level))                                             \
            gf_log_emit((lc), (level), (msg), __VA_ARGS__);                    \
    } while (0)

/*
 * Appends s to out as a logfmt value: bare when it has no space, quote,
 * '=' or control byte, otherwise quoted with \" \\ \n \t \xNN escapes.
 * Writes at most cap-1 bytes plus NUL; returns the bytes written.
 */
size_t gf_log_quote(char *out, size_t cap, const char *s);

#endif
