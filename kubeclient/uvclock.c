/*
 * uvclock: struct gf_clock on one libuv timer (see uvclock.h).
 */
#include "kubeclient/uvclock.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <time.h>

#include "common/alloc.h"

/*
 * The backend's state: the one timer and, for a skewed clock, the rate
 * and the real time it started from. Freed in the timer's close
 * callback, since it embeds the handle.
 */
struct uvclock {
    uv_timer_t timer;
    int32_t ppm;      /* 0: real time */
    uint64_t base_ms; /* uv_now() at init */
};

#define PPM_ONE 1000000u

uint64_t gf_clock_rate_skewed(uint64_t base_ms, uint64_t real_ms, int32_t ppm)
{
    if (real_ms <= base_ms)
        return base_ms;
    /* Elapsed real ms times at most 1.5e6 stays far below 2^64 for any
     * process lifetime (centuries). */
    uint64_t rate = (uint64_t)((int64_t)PPM_ONE + ppm);
    return base_ms + (real_ms - base_ms) * rate / PPM_ONE;
}

uint64_t gf_clock_rate_real(uint64_t base_ms, uint64_t skewed_ms, int32_t ppm)
{
    if (skewed_ms <= base_ms)
        return base_ms;
    uint64_t rate = (uint64_t)((int64_t)PPM_ONE + ppm);
    /* Rounded up: skewed(real) rounds down, so the first whole real ms at
     * which it reaches skewed_ms is the ceiling. */
    return base_ms + ((skewed_ms - base_ms) * PPM_ONE + rate - 1) / rate;
}

static struct uvclock *state_of(const struct gf_clock *clk)
{
    return clk->backend_state;
}

static uint64_t uv_now_ms(const struct gf_clock *clk)
{
    const struct uvclock *u = state_of(clk);
    uint64_t real = uv_now(clk->backend);
    if (u == NULL || u->ppm == 0)
        return real;
    return gf_clock_rate_skewed(u->base_ms, real, u->ppm);
}

static int64_t uv_wall_ms(const struct gf_clock *clk)
{
    (void)clk;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_uv_timer(uv_timer_t *h)
{
    struct gf_clock *clk = h->data;
    uv_update_time(clk->backend);
    gf_clock_backend_fire(clk, uv_now_ms(clk));
}

/* due_ms is on the clock's (possibly skewed) time line; the uv timer
 * counts real milliseconds. */
static void uv_arm(struct gf_clock *clk, uint64_t due_ms)
{
    struct uvclock *u = state_of(clk);
    if (due_ms == UINT64_MAX) {
        uv_timer_stop(&u->timer);
        return;
    }
    uint64_t now = uv_now(clk->backend);
    uint64_t due_real =
        u->ppm == 0 ? due_ms : gf_clock_rate_real(u->base_ms, due_ms, u->ppm);
    uv_timer_start(&u->timer, on_uv_timer, due_real > now ? due_real - now : 0,
                   0);
}

static void on_timer_closed(uv_handle_t *h)
{
    gf_free(h->data);
}

static void uv_close_timer(struct gf_clock *clk)
{
    struct uvclock *u = state_of(clk);
    if (u == NULL) /* gf_clock_init_uv failed */
        return;
    /* From here on the handle belongs to libuv until its close callback;
     * data now points at the state to free, not at the clock. */
    u->timer.data = u;
    uv_close((uv_handle_t *)&u->timer, on_timer_closed);
    clk->backend_state = NULL;
}

static const struct gf_clock_ops uv_ops = {
    .now_ms = uv_now_ms,
    .wall_ms = uv_wall_ms,
    .arm = uv_arm,
    .close = uv_close_timer,
};

int gf_clock_init_uv_rate(struct gf_clock *clk, uv_loop_t *loop, int32_t ppm)
{
    /* Initialised first, so that gf_clock_close() is valid after any
     * failure (the backend's close sees no state and does nothing). */
    gf_clock_init_backend(clk, &uv_ops, loop);
    if (ppm > GF_CLOCK_RATE_MAX_PPM || ppm < -GF_CLOCK_RATE_MAX_PPM)
        return -EINVAL;
    struct uvclock *u = gf_calloc(1, sizeof(*u));
    int rc = uv_timer_init(loop, &u->timer);
    if (rc != 0) {
        gf_free(u);
        return rc;
    }
    u->timer.data = clk;
    u->ppm = ppm;
    u->base_ms = uv_now(loop);
    clk->backend_state = u;
    return 0;
}

int gf_clock_init_uv(struct gf_clock *clk, uv_loop_t *loop)
{
    return gf_clock_init_uv_rate(clk, loop, 0);
}

uint64_t gf_clock_uv_due_in(const struct gf_clock *clk)
{
    const struct uvclock *u = state_of(clk);
    /* libuv answers for a stopped timer too (its last deadline). */
    if (u == NULL || !uv_is_active((const uv_handle_t *)&u->timer))
        return 0;
    return uv_timer_get_due_in(&u->timer);
}

int gf_clock_rate_parse(const char *s, int32_t *ppm)
{
    if (s == NULL || *s == '\0')
        return -EINVAL;
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v > GF_CLOCK_RATE_MAX_PPM ||
        v < -GF_CLOCK_RATE_MAX_PPM)
        return -EINVAL;
    *ppm = (int32_t)v;
    return 0;
}
