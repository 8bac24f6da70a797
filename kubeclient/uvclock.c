/*
 * uvclock: struct gf_clock on one libuv timer (see uvclock.h).
 */
#include "kubeclient/uvclock.h"

#include <time.h>

#include "common/alloc.h"

static uint64_t uv_now_ms(const struct gf_clock *clk)
{
    return uv_now(clk->backend);
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
    gf_clock_backend_fire(clk, uv_now(clk->backend));
}

static void uv_arm(struct gf_clock *clk, uint64_t due_ms)
{
    uv_timer_t *t = clk->backend_state;
    if (due_ms == UINT64_MAX) {
        uv_timer_stop(t);
        return;
    }
    uint64_t now = uv_now(clk->backend);
    uv_timer_start(t, on_uv_timer, due_ms > now ? due_ms - now : 0, 0);
}

static void on_timer_closed(uv_handle_t *h)
{
    gf_free(h);
}

static void uv_close_timer(struct gf_clock *clk)
{
    if (clk->backend_state == NULL) /* gf_clock_init_uv failed */
        return;
    uv_close(clk->backend_state, on_timer_closed);
    clk->backend_state = NULL;
}

static const struct gf_clock_ops uv_ops = {
    .now_ms = uv_now_ms,
    .wall_ms = uv_wall_ms,
    .arm = uv_arm,
    .close = uv_close_timer,
};

int gf_clock_init_uv(struct gf_clock *clk, uv_loop_t *loop)
{
    gf_clock_init_backend(clk, &uv_ops, loop);
    uv_timer_t *t = gf_malloc(sizeof(*t));
    int rc = uv_timer_init(loop, t);
    if (rc != 0) {
        gf_free(t);
        return rc;
    }
    t->data = clk;
    clk->backend_state = t;
    return 0;
}
