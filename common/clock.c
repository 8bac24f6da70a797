/*
 * clock: one min-heap of timers behind two time sources (see clock.h).
 *
 * The heap is keyed by (due_ms, seq) so that timers with equal deadlines
 * fire in the order they were started, which keeps tests deterministic.
 */
#include "common/clock.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/err.h"

static bool before(const struct gf_timer *a, const struct gf_timer *b)
{
    return a->due_ms < b->due_ms || (a->due_ms == b->due_ms && a->seq < b->seq);
}

static void heap_set(struct gf_clock *clk, size_t i, struct gf_timer *t)
{
    clk->heap[i] = t;
    t->heap_idx = i;
}

static void sift_up(struct gf_clock *clk, size_t i)
{
    struct gf_timer *t = clk->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(t, clk->heap[parent]))
            break;
        heap_set(clk, i, clk->heap[parent]);
        i = parent;
    }
    heap_set(clk, i, t);
}

static void sift_down(struct gf_clock *clk, size_t i)
{
    struct gf_timer *t = clk->heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= clk->heap_len)
            break;
        if (child + 1 < clk->heap_len &&
            before(clk->heap[child + 1], clk->heap[child]))
            child++;
        if (!before(clk->heap[child], t))
            break;
        heap_set(clk, i, clk->heap[child]);
        i = child;
    }
    heap_set(clk, i, t);
}

static void heap_remove(struct gf_clock *clk, struct gf_timer *t)
{
    size_t i = t->heap_idx;
    GF_BUG_ON(i >= clk->heap_len || clk->heap[i] != t);
    t->heap_idx = SIZE_MAX;
    struct gf_timer *last = clk->heap[--clk->heap_len];
    if (last == t)
        return;
    heap_set(clk, i, last);
    sift_up(clk, i);
    sift_down(clk, last->heap_idx);
}

static void heap_push(struct gf_clock *clk, struct gf_timer *t)
{
    if (clk->heap_len == clk->heap_cap) {
        clk->heap_cap = clk->heap_cap ? clk->heap_cap * 2 : 16;
        /* The heap is an array of pointers; clang-tidy misreads this. */
        // NOLINTNEXTLINE(bugprone-sizeof-expression)
        clk->heap = gf_realloc(clk->heap, clk->heap_cap * sizeof(*clk->heap));
    }
    heap_set(clk, clk->heap_len++, t);
    sift_up(clk, t->heap_idx);
}

/* Fires every timer due at or before `now`, earliest first. */
static size_t fire_due(struct gf_clock *clk, uint64_t now)
{
    size_t fired = 0;
    bool manual = clk->ops == NULL;
    /* On a backend clock a callback that re-arms itself with a zero timeout
     * must wait for the next loop turn, or it would starve all I/O; timers
     * started during this pass therefore fire on the next one. The manual
     * clock fires them at once: advancing a test's time by a minute must
     * run a whole chain of backoff timers. */
    uint64_t seq_limit = manual ? UINT64_MAX : clk->next_seq;
    clk->firing = true;
    while (clk->heap_len > 0 && clk->heap[0]->due_ms <= now &&
           clk->heap[0]->seq < seq_limit) {
        struct gf_timer *t = clk->heap[0];
        heap_remove(clk, t);
        if (manual && t->due_ms > clk->manual_now_ms)
            clk->manual_now_ms = t->due_ms;
        fired++;
        t->cb(t);
    }
    clk->firing = false;
    return fired;
}

/* Points the backend's one wake-up at the earliest deadline. */
static void rearm(struct gf_clock *clk)
{
    if (clk->ops == NULL || clk->firing || clk->closed)
        return;
    clk->ops->arm(clk, clk->heap_len > 0 ? clk->heap[0]->due_ms : UINT64_MAX);
}

size_t gf_clock_backend_fire(struct gf_clock *clk, uint64_t now_ms)
{
    GF_BUG_ON(clk->ops == NULL);
    size_t fired = fire_due(clk, now_ms);
    rearm(clk);
    return fired;
}

void gf_clock_init_backend(struct gf_clock *clk, const struct gf_clock_ops *ops,
                           void *backend)
{
    memset(clk, 0, sizeof(*clk));
    clk->ops = ops;
    clk->backend = backend;
}

void gf_clock_init_manual(struct gf_clock *clk, uint64_t start_ms,
                          int64_t wall_start_ms)
{
    memset(clk, 0, sizeof(*clk));
    clk->manual_now_ms = start_ms;
    clk->manual_wall_offset_ms = wall_start_ms - (int64_t)start_ms;
}

void gf_clock_close(struct gf_clock *clk)
{
    GF_BUG_ON(clk->heap_len != 0);
    GF_FREE(clk->heap);
    clk->heap_cap = 0;
    if (clk->ops != NULL && !clk->closed) {
        clk->closed = true;
        clk->ops->close(clk);
    }
}

uint64_t gf_clock_now_ms(const struct gf_clock *clk)
{
    if (clk->ops == NULL)
        return clk->manual_now_ms;
    return clk->ops->now_ms(clk);
}

int64_t gf_clock_wall_ms(const struct gf_clock *clk)
{
    if (clk->ops == NULL)
        return clk->manual_wall_offset_ms + (int64_t)clk->manual_now_ms;
    return clk->ops->wall_ms(clk);
}

size_t gf_clock_active_timers(const struct gf_clock *clk)
{
    return clk->heap_len;
}

uint64_t gf_clock_next_due(const struct gf_clock *clk)
{
    return clk->heap_len > 0 ? clk->heap[0]->due_ms : UINT64_MAX;
}

size_t gf_clock_advance(struct gf_clock *clk, uint64_t ms)
{
    GF_BUG_ON(clk->ops != NULL);
    uint64_t target = clk->manual_now_ms + ms;
    size_t fired = fire_due(clk, target);
    clk->manual_now_ms = target;
    return fired;
}

void gf_timer_init(struct gf_clock *clk, struct gf_timer *t)
{
    t->clk = clk;
    t->cb = NULL;
    t->due_ms = 0;
    t->seq = 0;
    t->heap_idx = SIZE_MAX;
}

void gf_timer_start(struct gf_timer *t, uint64_t timeout_ms, gf_timer_cb cb)
{
    struct gf_clock *clk = t->clk;
    if (t->heap_idx != SIZE_MAX)
        heap_remove(clk, t);
    uint64_t now = gf_clock_now_ms(clk);
    t->cb = cb;
    t->due_ms = timeout_ms > UINT64_MAX - now ? UINT64_MAX : now + timeout_ms;
    t->seq = clk->next_seq++;
    heap_push(clk, t);
    rearm(clk);
}

void gf_timer_stop(struct gf_timer *t)
{
    if (t->clk == NULL || t->heap_idx == SIZE_MAX)
        return;
    heap_remove(t->clk, t);
    rearm(t->clk);
}

bool gf_timer_active(const struct gf_timer *t)
{
    return t->heap_idx != SIZE_MAX;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (civil calendar
 * arithmetic on 400-year eras; avoids timegm(), which POSIX lacks). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void gf_time_rfc3339(int64_t wall_ms, char out[32])
{
    time_t secs =
        (time_t)(wall_ms >= 0 ? wall_ms / 1000 : (wall_ms - 999) / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Reads exactly n digits. */
static int digits(const char **p, int n, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -EINVAL;
        v = v * 10 + (unsigned)(c - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static int expect(const char **p, char c)
{
    if (**p != c)
        return -EINVAL;
    (*p)++;
    return 0;
}

/* "YYYY-MM-DD" followed by 'T', 't' or ' '. */
static int parse_date(const char **p, unsigned *y, unsigned *mo, unsigned *d)
{
    if (digits(p, 4, y) || expect(p, '-') || digits(p, 2, mo) ||
        expect(p, '-') || digits(p, 2, d))
        return -EINVAL;
    if (**p != 'T' && **p != 't' && **p != ' ')
        return -EINVAL;
    (*p)++;
    return 0;
}

/* "HH:MM:SS" with an optional fraction, kept to milliseconds. */
static int parse_clock(const char **p, unsigned *h, unsigned *mi, unsigned *se,
                       unsigned *ms)
{
    if (digits(p, 2, h) || expect(p, ':') || digits(p, 2, mi) ||
        expect(p, ':') || digits(p, 2, se))
        return -EINVAL;
    *ms = 0;
    if (**p != '.')
        return 0;
    (*p)++;
    int n = 0;
    for (; **p >= '0' && **p <= '9'; (*p)++, n++) {
        if (n < 3)
            *ms = *ms * 10 + (unsigned)(**p - '0');
    }
    if (n == 0)
        return -EINVAL;
    for (int i = n; i < 3; i++)
        *ms *= 10;
    return 0;
}

/* "Z" or "+HH:MM" / "-HH:MM", then the end of the string. */
static int parse_offset(const char *p, int64_t *offset_min)
{
    *offset_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        unsigned oh, om;
        p++;
        if (digits(&p, 2, &oh) || expect(&p, ':') || digits(&p, 2, &om) ||
            oh > 23 || om > 59)
            return -EINVAL;
        *offset_min = sign * (int64_t)(oh * 60 + om);
    } else {
        return -EINVAL;
    }
    return *p == '\0' ? 0 : -EINVAL;
}

static bool valid_date(unsigned y, unsigned mo, unsigned d)
{
    static const unsigned mdays[] = {31, 29, 31, 30, 31, 30,
                                     31, 31, 30, 31, 30, 31};
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1])
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return !(mo == 2 && d == 29 && !leap);
}

int gf_time_parse_rfc3339(const char *s, int64_t *wall_ms)
{
    unsigned y, mo, d, h, mi, se, frac_ms;
    int64_t offset_min;
    const char *p = s;
    if (parse_date(&p, &y, &mo, &d) ||
        parse_clock(&p, &h, &mi, &se, &frac_ms) || parse_offset(p, &offset_min))
        return -EINVAL;
    if (!valid_date(y, mo, d) || h > 23 || mi > 59 || se > 60)
        return -EINVAL;
    int64_t days = days_from_civil(y, mo, d);
    int64_t secs = days * 86400 + (int64_t)h * 3600 + (int64_t)mi * 60 + se -
                   offset_min * 60;
    *wall_ms = secs * 1000 + frac_ms;
    return 0;
}
