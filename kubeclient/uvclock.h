/*
 * uvclock: the production backend of struct gf_clock (common/clock.h), on
 * libuv.
 *
 * It lives here, not in common/, because common/ links no libuv: the
 * modules that own a loop (kubesim, the controller, the benches) all sit
 * above kubeclient, the lowest module that may use libuv.
 *
 * One uv_timer_t, armed for the earliest deadline of the clock's heap,
 * serves any number of struct gf_timer. now_ms is uv_now() (the loop's
 * cached monotonic time), wall_ms is CLOCK_REALTIME.
 *
 * Loop thread only.
 */
#ifndef GF_KUBECLIENT_UVCLOCK_H
#define GF_KUBECLIENT_UVCLOCK_H

#include <uv.h>

#include "common/clock.h"

/*
 * Initialises clk on loop. Returns 0 or a negative uv error. gf_clock_close()
 * uv_close()s the timer, which is freed when the loop runs once more (uv_run
 * after close, as with any libuv handle); the struct gf_clock itself may go
 * at once. The loop must outlive the clock.
 */
int gf_clock_init_uv(struct gf_clock *clk, uv_loop_t *loop);

#endif
