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
 * For fault tests the monotonic clock may run at a skewed rate
 * (gf_clock_init_uv_rate): now_ms advances (1 + ppm/1e6) times as fast as
 * real time and every deadline is reached when the skewed now reaches it,
 * which is what a machine whose oscillator drifts looks like to the
 * process. That is the assumption the lease protocol bounds by rho
 * (docs/failure-semantics.md), made testable. Wall-clock time is left
 * alone: a drifting oscillator is corrected by NTP on the wall clock only.
 *
 * Loop thread only.
 */
#ifndef GF_KUBECLIENT_UVCLOCK_H
#define GF_KUBECLIENT_UVCLOCK_H

#include <stdint.h>
#include <uv.h>

#include "common/clock.h"

/* The largest |ppm| gf_clock_init_uv_rate accepts: a clock at half or one
 * and a half times real speed is already far past any real drift, and a
 * rate near zero would stop time. */
#define GF_CLOCK_RATE_MAX_PPM 500000

/*
 * Initialises clk on loop. Returns 0 or a negative uv error. gf_clock_close()
 * uv_close()s the timer, which is freed when the loop runs once more (uv_run
 * after close, as with any libuv handle); the struct gf_clock itself may go
 * at once. The loop must outlive the clock.
 */
int gf_clock_init_uv(struct gf_clock *clk, uv_loop_t *loop);

/*
 * Tests only: as gf_clock_init_uv, with a monotonic clock that runs at
 * (1 + ppm/1e6) times real time from this call on (ppm 0 is
 * gf_clock_init_uv). Returns -EINVAL when |ppm| > GF_CLOCK_RATE_MAX_PPM,
 * else as gf_clock_init_uv; after a failure gf_clock_close() is still
 * valid (and closes nothing).
 */
int gf_clock_init_uv_rate(struct gf_clock *clk, uv_loop_t *loop, int32_t ppm);

/*
 * Parses a rate in ppm, a signed decimal integer ("-200", "+150", "0")
 * within +-GF_CLOCK_RATE_MAX_PPM, as `gpufed` reads it from
 * GPUFED_CLOCK_RATE_PPM. 0 or -EINVAL (*ppm untouched).
 */
int gf_clock_rate_parse(const char *s, int32_t *ppm);

/*
 * The pure conversions behind a skewed clock, exposed for tests. base_ms is
 * the real time at which the skewed clock started (and the value it
 * started from). gf_clock_rate_skewed: the skewed time at real time
 * real_ms (>= base_ms), rounded down. gf_clock_rate_real: the earliest
 * real time at which the skewed time reaches skewed_ms, so that a uv timer
 * armed for it never wakes before the deadline.
 */
uint64_t gf_clock_rate_skewed(uint64_t base_ms, uint64_t real_ms, int32_t ppm);
uint64_t gf_clock_rate_real(uint64_t base_ms, uint64_t skewed_ms, int32_t ppm);

/* For tests: real ms until the libuv timer wakes the clock (libuv's
 * uv_timer_get_due_in), 0 when it is not armed or already due. */
uint64_t gf_clock_uv_due_in(const struct gf_clock *clk);

#endif
